// Hostile programs through the code-execution sandbox: each gets the right verdict, the harness
// survives it, and afterwards nothing it started is alive, nothing it wrote exists outside its
// working directory, and the harness's memory stayed bounded. docs/RELIABILITY.md lists the
// cases with their verdicts; run them alone with
//   build/tests/kvcanary_tests -tc='sandbox_hostile*'
//
// Every program marks itself with a string unique to the case (in its command line, or in the
// name of a directory it chdir()s into, which forks inherit), so survivors are found by scanning
// /proc for it, not by guessing pids.

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../support/temp_dir.hpp"
#include "kvcanary/task/code_exec.hpp"

namespace {

using kvcanary::task::ExecLimits;
using kvcanary::task::ExecResult;
using kvcanary::task::run_python;

ExecLimits limits(double timeout_s = 5) {
  ExecLimits l;
  l.timeout_s = timeout_s;
  return l;
}

std::string make_marker() {
  std::random_device rd;
  return "kvhostile" + std::to_string(::getpid()) + "x" + std::to_string(rd() % 1000000);
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Live (not zombie) processes whose command line or working directory carries the marker.
std::vector<pid_t> marked_processes(const std::string& marker) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == ::getpid()) continue;
    const std::string base = std::string("/proc/") + e->d_name;
    std::string stat = slurp(base + "/stat");
    const auto paren = stat.rfind(')');
    if (stat.empty() ||
        (paren != std::string::npos && paren + 2 < stat.size() && (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X')))
      continue;
    std::string cmdline = slurp(base + "/cmdline");
    std::error_code ec;
    const std::string cwd = std::filesystem::read_symlink(base + "/cwd", ec).string();
    if (cmdline.find(marker) != std::string::npos || cwd.find(marker) != std::string::npos)
      out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return out;
}

// Waits up to 3 s for every marked process to be gone (SIGKILL is asynchronous); kills and
// reports any that are left, so a failing case does not leave them for the next one.
std::size_t survivors(const std::string& marker) {
  std::vector<pid_t> left;
  for (int i = 0; i < 150; ++i) {
    left = marked_processes(marker);
    if (left.empty()) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (pid_t p : left) ::kill(p, SIGKILL);
  return left.size();
}

long status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::strlen(field)));
  return -1;
}

const std::string& probe_isolation() {
  static const std::string iso = run_python("pass\n", limits()).isolation;
  return iso;
}
bool has_pids_cgroup() { return probe_isolation().find("pids cgroup: max") != std::string::npos; }
bool own_uid() { return probe_isolation().find("(own, unprivileged)") != std::string::npos; }
bool fs_isolated() { return probe_isolation().find("filesystem: read-only") != std::string::npos; }
bool netns() { return probe_isolation().find("netns: private") != std::string::npos; }

// Runs the program in a forked copy of this process, so that a program which kills its parent
// kills that copy, not the test binary; the verdict comes back over a pipe.
struct Shielded {
  bool parent_died = false;
  std::string status, stderr_tail, isolation;
};
Shielded run_shielded(const std::string& program, const ExecLimits& l) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string msg;
    try {
      const ExecResult r = run_python(program, l);
      msg = r.status + '\0' + r.stderr_tail + '\0' + r.isolation;
    } catch (const std::exception& e) { msg = std::string("exception") + '\0' + e.what() + '\0'; }
    std::size_t done = 0;
    while (done < msg.size()) {
      const ssize_t n = ::write(fds[1], msg.data() + done, msg.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string msg;
  kvcanary::task::exec_detail::read_all(fds[0], msg);
  ::close(fds[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  Shielded s;
  s.parent_died = !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  const auto a = msg.find('\0'), b = msg.find('\0', a == std::string::npos ? 0 : a + 1);
  if (a != std::string::npos && b != std::string::npos) {
    s.status = msg.substr(0, a);
    s.stderr_tail = msg.substr(a + 1, b - a - 1);
    s.isolation = msg.substr(b + 1);
  }
  return s;
}

}  // namespace

TEST_CASE("sandbox_hostile: infinite loop is a timeout") {
  const ExecResult r = run_python("while True:\n    pass\n", limits(1));
  CHECK(r.status == "timeout");
  CHECK(r.seconds < 3.0);
}

TEST_CASE("sandbox_hostile: a stopped program (SIGSTOP to itself) is a timeout") {
  const ExecResult r = run_python("import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\n", limits(1));
  CHECK(r.status == "timeout");
  CHECK(r.seconds < 3.0);
}

TEST_CASE("sandbox_hostile: fork bomb is contained and leaves no process") {
  if (!has_pids_cgroup() && ::geteuid() == 0 && !own_uid()) {
    MESSAGE(
        "skipped: root harness without a pids cgroup or an own uid would let a fork bomb loose: " << probe_isolation());
    return;
  }
  const std::string m = make_marker();
  ExecLimits l = limits(2);
  l.max_processes = 32;
  const auto t0 = std::chrono::steady_clock::now();
  const ExecResult r = run_python(
      "import os\n"
      "os.mkdir('" +
          m + "'); os.chdir('" + m +
          "')\n"
          "while True:\n"
          "    try:\n"
          "        os.fork()\n"
          "    except OSError:\n"
          "        pass\n",
      l);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK((r.status == "timeout" || r.status == "error" || r.status == "crash"));
  CHECK(s < 6.0);
  CHECK(survivors(m) == 0);
  MESSAGE("fork bomb: " << r.status << " in " << s << " s; " << r.isolation);
}

TEST_CASE("sandbox_hostile: memory hog is oom") {
  ExecLimits l = limits(10);
  l.memory_bytes = 256u << 20;
  const ExecResult grow = run_python("x = []\nwhile True:\n    x.append(bytearray(16 << 20))\n", l);
  CHECK(grow.status == "oom");
  const ExecResult big = run_python("s = 'x' * (1 << 34)\n", l);
  CHECK(big.status == "oom");
}

TEST_CASE("sandbox_hostile: deep recursion is an error, or a crash when the limit is raised") {
  const ExecResult plain = run_python("def f(n):\n    return f(n + 1)\nf(0)\n", limits());
  CHECK(plain.status == "error");
  CHECK(plain.stderr_tail.find("RecursionError") != std::string::npos);
  // CPython >= 3.11 keeps Python-to-Python calls off the C stack, so the recursion goes through
  // a C slot (__call__) to overflow the C stack: SIGSEGV. Another version may run out of memory
  // or hit the limit instead.
  const ExecResult raised = run_python(
      "import sys\nsys.setrecursionlimit(10 ** 7)\ndef f(n):\n    return f.__call__(n + 1)\nf(0)\n", limits(10));
  CHECK((raised.status == "crash" || raised.status == "oom" || raised.status == "error"));
  MESSAGE("recursion with the limit raised: " << raised.status << " (signal " << raised.signal << ")");
}

TEST_CASE("sandbox_hostile: network access fails: loopback, outside address, DNS, abstract unix socket") {
  if (!netns()) {
    MESSAGE("skipped: no network namespace here: " << probe_isolation());
    return;
  }
  // Our own listeners: reachable from the program only if it shares our network namespace.
  const int srv = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  REQUIRE(srv >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(srv, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(srv, 4) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(srv, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const int port = ntohs(addr.sin_port);
  const std::string abstract_name = make_marker();
  const int usrv = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  REQUIRE(usrv >= 0);
  sockaddr_un ua{};
  ua.sun_family = AF_UNIX;
  std::memcpy(ua.sun_path + 1, abstract_name.data(), abstract_name.size());
  REQUIRE(::bind(usrv, reinterpret_cast<sockaddr*>(&ua),
                 static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + abstract_name.size())) == 0);
  REQUIRE(::listen(usrv, 4) == 0);

  const ExecResult r = run_python(
      "import socket\n"
      "def attempt(name, f):\n"
      "    try:\n"
      "        f(); print(name, 'OPEN')\n"
      "    except OSError as e:\n"
      "        print(name, 'blocked')\n"
      "attempt('loopback', lambda: socket.create_connection(('127.0.0.1', " +
          std::to_string(port) +
          "), timeout=1).close())\n"
          "attempt('outside-tcp', lambda: socket.create_connection(('1.1.1.1', 443), timeout=1).close())\n"
          "def udp():\n"
          "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)\n"
          "    s.sendto(b'x', ('8.8.8.8', 53)); s.recv(10)\n"
          "attempt('outside-udp', udp)\n"
          "attempt('dns', lambda: socket.getaddrinfo('example.com', 80))\n"
          "def unix():\n"
          "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(1)\n"
          "    s.connect('\\0" +
          abstract_name +
          "')\n"
          "attempt('abstract-unix', unix)\n",
      limits(10));
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  const int got_tcp = ::accept(srv, reinterpret_cast<sockaddr*>(&peer), &plen);
  plen = sizeof peer;
  const int got_unix = ::accept(usrv, reinterpret_cast<sockaddr*>(&peer), &plen);
  if (got_tcp >= 0) ::close(got_tcp);
  if (got_unix >= 0) ::close(got_unix);
  ::close(srv);
  ::close(usrv);
  CHECK(r.status == "pass");
  CHECK(r.stdout_tail ==
        "loopback blocked\noutside-tcp blocked\noutside-udp blocked\ndns blocked\nabstract-unix blocked\n");
  CHECK(got_tcp < 0);
  CHECK(got_unix < 0);
  CHECK(r.isolation.find("netns: private") != std::string::npos);
}

TEST_CASE("sandbox_hostile: writes outside the working directory fail and leave nothing") {
  kvcanary::test::TempDir own;  // a directory of the harness's, as a results directory would be
  const std::string m = make_marker();
  const std::vector<std::filesystem::path> targets = {
      own.path / (m + "-file"), std::filesystem::temp_directory_path() / (m + "-tmp"),
      std::filesystem::path("/dev/shm") / (m + "-shm"), std::filesystem::path("/var/tmp") / (m + "-vartmp")};
  std::string program = "import os\nopen('inside.txt', 'w').write('ok'); print('inside ok')\n";
  for (const auto& t : targets)
    program +=
        "try:\n    open('" + t.string() + "', 'w').write('x'); print('WROTE')\nexcept OSError:\n    print('refused')\n";
  // The working directory's parent, by a relative path.
  program +=
      "try:\n    open('../" + m + "-rel', 'w').write('x'); print('WROTE')\nexcept OSError:\n    print('refused')\n";
  const ExecResult r = run_python(program, limits());
  CHECK(r.status == "pass");
  const bool harness_dir_written = std::filesystem::exists(targets[0]);
  std::size_t written = 0;
  for (auto t : targets) {
    if (std::filesystem::exists(t)) ++written, std::filesystem::remove(t);
  }
  const auto rel = std::filesystem::temp_directory_path() / (m + "-rel");
  if (std::filesystem::exists(rel)) ++written, std::filesystem::remove(rel);
  if (fs_isolated()) {
    CHECK(r.stdout_tail == "inside ok\nrefused\nrefused\nrefused\nrefused\nrefused\n");
    CHECK(written == 0);
  } else if (own_uid()) {  // no mount namespace: only permissions protect, world-writable dirs do not
    CHECK_FALSE(harness_dir_written);
    MESSAGE("no read-only filesystem here ("
            << probe_isolation() << "): " << written
            << " files written to world-writable directories were removed by the test");
  } else {
    MESSAGE("no filesystem isolation here (" << probe_isolation() << "): " << written
                                             << " files written outside were removed by the test");
  }
}

TEST_CASE("sandbox_hostile: a full working directory is contained (tmpfs cap or RLIMIT_FSIZE)") {
  if (!fs_isolated()) {
    MESSAGE("skipped: the working directory is not a capped tmpfs here");
    return;
  }
  ExecLimits l = limits(10);
  l.workdir_bytes = 32u << 20;
  const ExecResult r = run_python(
      "import os\n"
      "n = 0\n"
      "try:\n"
      "    for i in range(100):\n"
      "        with open('f%d' % i, 'wb') as f:\n"
      "            f.write(b'x' * (4 << 20))\n"
      "        n += 1\n"
      "except OSError as e:\n"
      "    print(n, e.errno)\n",
      l);
  CHECK(r.status == "pass");
  CHECK(r.stdout_tail.find(" 28\n") != std::string::npos);  // ENOSPC after about 8 files
  const ExecResult big = run_python("open('big', 'wb').write(b'x' * (100 << 20))\n", limits(10));
  // RLIMIT_FSIZE (64 MB): CPython ignores SIGXFSZ, so the write fails with EFBIG.
  CHECK(big.status == "error");
  CHECK(big.stderr_tail.find("File too large") != std::string::npos);
}

TEST_CASE("sandbox_hostile: the harness's private files and environment are not readable") {
  if (!own_uid()) {
    MESSAGE("skipped: the program runs as the harness's own user here, so it can read what the harness can: "
            << probe_isolation());
    return;
  }
  kvcanary::test::TempDir own;
  const auto secret = own.path / "secret.txt";
  std::ofstream(secret) << "s3cr3t";
  std::filesystem::permissions(secret, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  ::setenv("KVCANARY_HOSTILE_SECRET", "s3cr3t", 1);
  const ExecResult r = run_python(
      "import os\n"
      "for p in ['" +
          secret.string() +
          "', '/proc/%d/environ' % os.getppid(), '/proc/%d/mem' % os.getppid()]:\n"
          "    try:\n"
          "        print('READ', open(p, 'rb').read(64))\n"
          "    except OSError as e:\n"
          "        print('refused')\n",
      limits());
  ::unsetenv("KVCANARY_HOSTILE_SECRET");
  CHECK(r.status == "pass");
  CHECK(r.stdout_tail == "refused\nrefused\nrefused\n");
  CHECK(r.stdout_tail.find("s3cr3t") == std::string::npos);
}

TEST_CASE("sandbox_hostile: a 1 GB stdout flood is capped and the harness's memory stays bounded") {
  std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM to the current RSS
  const long hwm_before = status_kb("VmHWM:");
  const auto t0 = std::chrono::steady_clock::now();
  const ExecResult r = run_python(
      "import sys\n"
      "chunk = b'x' * (1 << 20)\n"
      "for _ in range(1024):\n"
      "    sys.stdout.buffer.write(chunk)\n"
      "sys.stdout.flush()\n"
      "print('end', file=sys.stderr)\n",
      limits(60));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const long hwm_after = status_kb("VmHWM:");
  CHECK(r.status == "pass");
  CHECK(r.stdout_bytes == (std::size_t{1} << 30));
  CHECK(r.stdout_tail.size() == ExecLimits{}.output_cap);
  CHECK(r.stderr_tail == "end\n");
  REQUIRE(hwm_before > 0);
  CHECK(hwm_after - hwm_before < 16 * 1024);  // KiB: the capture is a few hundred KB at most
  MESSAGE("1 GB flood: " << s << " s; harness VmHWM " << hwm_before << " -> " << hwm_after << " KiB");
}

TEST_CASE("sandbox_hostile: a daemon (double fork + setsid) does not outlive the verdict") {
  const std::string m = make_marker();
  const ExecResult r = run_python(
      "import os, sys\n"
      "if os.fork() == 0:\n"
      "    os.setsid()\n"
      "    if os.fork() == 0:\n"
      "        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', '" +
          m +
          "'])\n"
          "    os._exit(0)\n"
          "os.wait()\n"
          "print('parent done')\n",
      limits());
  CHECK(r.status == "pass");
  CHECK(r.seconds < 4.0);
  if (has_pids_cgroup()) {
    CHECK(survivors(m) == 0);
  } else {  // setsid() left the process group, and nothing else tracks it
    MESSAGE("no pids cgroup here: a daemon escapes the process-group kill (known limitation); "
            << survivors(m) << " killed by the test");
  }
}

TEST_CASE("sandbox_hostile: a daemon that leaves its cgroup first does not outlive the verdict") {
  if (!has_pids_cgroup()) {
    MESSAGE("skipped: no pids cgroup here");
    return;
  }
  const std::string m = make_marker();
  const ExecResult r = run_python(
      "import os, sys\n"
      "for p in ['/sys/fs/cgroup/pids/cgroup.procs', '/sys/fs/cgroup/cgroup.procs']:\n"
      "    try:\n"
      "        open(p, 'w').write(str(os.getpid())); print('MOVED')\n"
      "    except OSError:\n"
      "        pass\n"
      "if os.fork() == 0:\n"
      "    os.setsid()\n"
      "    if os.fork() == 0:\n"
      "        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', '" +
          m +
          "'])\n"
          "    os._exit(0)\n"
          "os.wait()\n",
      limits());
  CHECK(r.status == "pass");
  CHECK(r.stdout_tail.find("MOVED") == std::string::npos);
  CHECK(survivors(m) == 0);
}

TEST_CASE("sandbox_hostile: killing its parent does not kill the harness") {
  // The shield (a forked copy of the test process) is what dies if the program succeeds.
  const Shielded s = run_shielded("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", limits());
  if (own_uid()) {
    REQUIRE_FALSE(s.parent_died);
    CHECK(s.status == "error");
    CHECK(s.stderr_tail.find("PermissionError") != std::string::npos);
  } else {
    MESSAGE(
        "the program shares the harness's uid here and can signal it (known limitation of a non-root harness); parent "
        "died: "
        << s.parent_died);
  }
}

TEST_CASE("sandbox_hostile: kill(-1, SIGKILL) and killing the harness's group reach nothing else") {
  if (!own_uid()) {
    MESSAGE("skipped: without an own uid kill(-1) would reach every process of this user: " << probe_isolation());
    return;
  }
  // A bystander of ours: it must survive.
  const pid_t bystander = ::fork();
  REQUIRE(bystander >= 0);
  if (bystander == 0) {
    ::pause();
    ::_exit(0);
  }
  const Shielded s = run_shielded(
      "import os, signal\n"
      "try:\n"
      "    os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)\n"
      "except OSError:\n"
      "    print('killpg refused')\n"
      "os.kill(-1, signal.SIGKILL)\n",
      limits());
  const bool bystander_alive = ::kill(bystander, 0) == 0 && ::waitpid(bystander, nullptr, WNOHANG) == 0;
  ::kill(bystander, SIGKILL);
  ::waitpid(bystander, nullptr, 0);
  REQUIRE_FALSE(s.parent_died);
  CHECK(bystander_alive);
  CHECK(s.status == "pass");  // Linux's kill(-1) skips the caller; nothing else had its uid
}

TEST_CASE("sandbox_hostile: closing its stdout and stderr") {
  const ExecResult done = run_python("import os, time\nos.close(1); os.close(2)\ntime.sleep(0.3)\n", limits());
  CHECK(done.status == "pass");
  CHECK(done.seconds >= 0.3);
  const ExecResult looping = run_python("import os\nos.close(1); os.close(2)\nwhile True:\n    pass\n", limits(1));
  CHECK(looping.status == "timeout");
  CHECK(looping.seconds < 3.0);
}

TEST_CASE("sandbox_hostile: a harness killed with SIGKILL mid-run takes the program with it") {
  // The shield runs the sandbox and is killed from outside, as kill -9 of a sweep would be.
  const std::string m = make_marker();
  const pid_t shield = ::fork();
  REQUIRE(shield >= 0);
  if (shield == 0) {
    run_python("import os, sys\nos.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(30)', '" + m +
                   "'])\n",
               limits(20));
    ::_exit(0);
  }
  bool started = false;
  for (int i = 0; i < 200 && !started; ++i) {
    started = !marked_processes(m).empty();
    if (!started) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(shield, SIGKILL);
  ::waitpid(shield, nullptr, 0);
  CHECK(started);
  // The program itself dies (parent-death signal); a process it forked would not, and the
  // harness's working directory and cgroup stay behind (docs/RELIABILITY.md).
  CHECK(survivors(m) == 0);
}
