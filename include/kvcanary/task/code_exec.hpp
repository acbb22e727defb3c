#pragma once
// Sandboxed execution of a model-written Python program against its unit tests.
//
// The verdict has to be trustworthy in both directions: a broken program must not pass, and a
// correct one must not be marked broken because the harness interfered. Hence a real
// interpreter in a fresh directory, limits that map to distinct verdicts (timeout, oom, crash),
// and an isolation record that states what was actually in force on this machine rather than
// what was asked for (netns and cgroups depend on privileges; RLIMIT_NPROC is ignored for root).
//
// When the harness runs as root (CI, containers) the program does not: it gets a uid of its own
// for the run (so it cannot signal the harness, other runs or any other process, cannot move
// itself out of its cgroup, and RLIMIT_NPROC applies), a private mount namespace in which the
// whole filesystem is read-only, and a size-capped tmpfs as its working directory (so it cannot
// write anywhere else, fill the disk, or leave files behind). docs/RELIABILITY.md lists what
// hostile programs were run against it and what a non-root harness does not get.
//
// Linux only. The child between fork() and exec() calls only async-signal-safe functions, so
// run_python may be called from several threads at once.

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/task/exec_result.hpp"

extern char** environ;

namespace kvcanary::task {

namespace exec_detail {

inline std::string errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case ENOENT: return "ENOENT";
    case EROFS: return "EROFS";
    case ENOSYS: return "ENOSYS";
    case EUSERS: return "EUSERS";
    case EBUSY: return "EBUSY";
    case EAGAIN: return "EAGAIN";
    default: return "errno " + std::to_string(e);
  }
}

// A pair of pipe ends with close-on-exec, so a fork on another thread never inherits them (an
// inherited write end would hold our EOF back until that unrelated child exits).
struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) fail("", "pipe", std::string("pipe2 failed: ") + std::strerror(errno));
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() { close_r(), close_w(); }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  void close_r() {
    if (r >= 0) ::close(r), r = -1;
  }
  void close_w() {
    if (w >= 0) ::close(w), w = -1;
  }
};

inline std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string_view rest = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const auto colon = rest.find(':');
    const std::string dir(rest.substr(0, colon));
    if (!dir.empty()) {
      const std::string cand = dir + "/" + name;
      if (::access(cand.c_str(), X_OK) == 0) return cand;
    }
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return {};
}

inline void read_all(int fd, std::string& out) {
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0)
      out.append(buf, static_cast<std::size_t>(n));
    else if (n < 0 && errno == EINTR)
      continue;
    else
      break;
  }
}

// Runs a trusted helper (gzip, the interpreter probe) with our own environment and returns its
// stdout; exit status in *status. Not for untrusted code: no limits, no sandbox.
inline std::string capture_stdout(const std::string& exe, const std::vector<std::string>& args, int* status) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  Pipe out;
  const pid_t pid = ::fork();
  if (pid < 0) fail(exe, "fork", std::strerror(errno));
  if (pid == 0) {
    ::dup2(out.w, 1);
    ::execve(exe.c_str(), argv.data(), environ);
    ::_exit(127);
  }
  out.close_w();
  std::string text;
  read_all(out.r, text);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  *status = st;
  return text;
}

// The interpreter is resolved once to a real binary: a PATH entry may be a shim script (pyenv)
// that needs the very environment variables the sandbox clears.
inline const std::string& python_path() {
  static const std::string path = [] {
    const std::string on_path = find_on_path("python3");
    if (on_path.empty()) fail("PATH", "python3", "no python3 on PATH (the code-execution harness needs it)");
    int st = 0;
    std::string real = capture_stdout(on_path, {on_path, "-c", "import sys; print(sys.executable)"}, &st);
    while (!real.empty() && (real.back() == '\n' || real.back() == '\r')) real.pop_back();
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || real.empty() || ::access(real.c_str(), X_OK) != 0) return on_path;
    return real;
  }();
  return path;
}

// Whether a user other than the file's owner may execute it: every directory on its real path
// searchable and the file executable by "others". A root harness's interpreter is often under
// /root (pyenv), which the program's own uid cannot reach.
inline bool executable_by_others(const std::string& path) {
  std::error_code ec;
  const auto real = std::filesystem::canonical(path, ec);
  if (ec) return false;
  struct stat st {};
  if (::stat(real.c_str(), &st) != 0 || !(st.st_mode & S_IXOTH) || !(st.st_mode & S_IROTH)) return false;
  for (auto dir = real.parent_path();; dir = dir.parent_path()) {
    if (::stat(dir.c_str(), &st) != 0 || !(st.st_mode & S_IXOTH)) return false;
    if (dir == dir.root_path()) return true;
  }
}

// The interpreter for a program that runs under its own unprivileged uid (root harness): the
// one on PATH if that uid can execute it, else the system's; empty when there is none.
inline const std::string& unprivileged_python_path() {
  static const std::string path = [] {
    if (executable_by_others(python_path())) return python_path();
    for (const char* cand : {"/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"}) {
      std::error_code ec;
      const auto real = std::filesystem::canonical(cand, ec);
      if (!ec && executable_by_others(real.string())) return real.string();
    }
    return std::string();
  }();
  return path;
}

// The pids cgroup (v1 hierarchy or v2 unified) this process sits in, or empty when none is
// writable. Probed per run via mkdir, so this only locates the directory.
inline std::filesystem::path own_pids_cgroup() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  std::string v1, v2;
  while (std::getline(in, line)) {
    const auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), rel = line.substr(b + 1);
    if (controllers == "pids" || controllers.find("pids,") == 0 || controllers.find(",pids") != std::string::npos)
      v1 = rel;
    if (line.rfind("0::", 0) == 0) v2 = rel;
  }
  if (!v1.empty() && std::filesystem::exists("/sys/fs/cgroup/pids/cgroup.procs"))
    return std::filesystem::path("/sys/fs/cgroup/pids") / std::filesystem::path(v1).relative_path();
  if (!v2.empty() && std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers")) {
    const auto dir = std::filesystem::path("/sys/fs/cgroup") / std::filesystem::path(v2).relative_path();
    std::ifstream c(dir / "cgroup.subtree_control");
    std::string ctl;
    std::getline(c, ctl);
    if (ctl.find("pids") != std::string::npos) return dir;
  }
  return {};
}

// A per-run pids cgroup: caps the process count even for root, and lists every descendant, so
// one that called setsid() (escaping our process group) is still found and killed.
class PidsCgroup {
 public:
  explicit PidsCgroup(int max_processes) {
    static std::atomic<unsigned> counter{0};
    const auto base = own_pids_cgroup();
    if (base.empty()) {
      note_ = "pids cgroup: unavailable (no pids controller)";
      return;
    }
    dir_ = base / ("kvcanary-exec-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    if (::mkdir(dir_.c_str(), 0755) != 0) {
      note_ = "pids cgroup: unavailable (" + errno_name(errno) + ")";
      dir_.clear();
      return;
    }
    std::ofstream(dir_ / "pids.max") << max_processes;
    procs_fd_ = ::open((dir_ / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (procs_fd_ < 0) {
      note_ = "pids cgroup: unavailable (" + errno_name(errno) + ")";
      ::rmdir(dir_.c_str());
      dir_.clear();
      return;
    }
    note_ = "pids cgroup: max " + std::to_string(max_processes);
  }
  ~PidsCgroup() {
    if (procs_fd_ >= 0) ::close(procs_fd_);
    if (dir_.empty()) return;
    kill_all();
    // Members leave the cgroup as they exit; rmdir can lag the SIGKILL by a moment.
    for (int i = 0; i < 200 && ::rmdir(dir_.c_str()) != 0 && errno == EBUSY; ++i) ::usleep(5000);
  }
  PidsCgroup(const PidsCgroup&) = delete;
  PidsCgroup& operator=(const PidsCgroup&) = delete;

  int procs_fd() const { return procs_fd_; }
  bool active() const { return procs_fd_ >= 0; }
  const std::string& note() const { return note_; }

  // SIGKILL until empty: a member may fork between our read and our kill.
  void kill_all() const {
    if (dir_.empty()) return;
    for (int round = 0; round < 100; ++round) {
      std::ifstream in(dir_ / "cgroup.procs");
      pid_t p = 0;
      bool any = false;
      while (in >> p) {
        any = true;
        ::kill(p, SIGKILL);
      }
      if (!any) return;
      ::usleep(1000);
    }
  }

 private:
  std::filesystem::path dir_;
  int procs_fd_ = -1;
  std::string note_;
};

// Exception class named by the last line of the last traceback in stderr, or empty.
inline std::string last_exception(const std::string& err) {
  const auto tb = err.rfind("Traceback (most recent call last):");
  if (tb == std::string::npos) return {};
  std::istringstream lines(err.substr(tb));
  std::string line, name;
  std::getline(lines, line);
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == ' ' || line[0] == '\t' || line[0] == '^' || line[0] == '~') continue;
    std::size_t i = 0;
    while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_' || line[i] == '.'))
      ++i;
    if (i == 0 || (i < line.size() && line[i] != ':')) continue;
    std::string n = line.substr(0, i);
    const auto dot = n.rfind('.');
    if (dot != std::string::npos) n = n.substr(dot + 1);
    name = n;
  }
  return name;
}

// Keeps the last `cap` bytes; trimming in blocks keeps a 50 MB flood linear.
inline void append_tail(std::string& tail, const char* data, std::size_t n, std::size_t cap) {
  tail.append(data, n);
  if (tail.size() > 2 * cap + 65536) tail.erase(0, tail.size() - cap);
}
inline void trim_tail(std::string& tail, std::size_t cap) {
  if (tail.size() > cap) tail.erase(0, tail.size() - cap);
}

inline void format_int(char* buf, long v, std::size_t* len) {  // async-signal-safe itoa
  char tmp[24];
  std::size_t n = 0;
  do tmp[n++] = static_cast<char>('0' + v % 10), v /= 10;
  while (v > 0);
  for (std::size_t i = 0; i < n; ++i) buf[i] = tmp[n - 1 - i];
  *len = n;
}

struct ChildReport {  // sent from child to parent over the status pipe before exec
  char what;  // 'N' netns refused, 'U' netns only via a user namespace, 'C' cgroup join failed, 'E' exec failed,
              // 'F' filesystem isolation failed (a = step), 'S' uid drop failed
  int err;
  char step = 0;
};

// The uid a root harness gives one run: unique among the runs alive at once (pid, counter), far
// above any real account, never 0. Nothing needs to exist for it: the kernel accepts any uid.
inline uid_t sandbox_uid() {
  static std::atomic<unsigned> counter{0};
  return static_cast<uid_t>(0x40000000u + ((static_cast<unsigned>(::getpid()) & 0x3fffffu) << 8) + (counter++ & 0xffu));
}

#ifdef SYS_mount_setattr
inline int set_mount_readonly(const char* path, bool readonly, bool recursive) {
  struct mount_attr attr {};
  (readonly ? attr.attr_set : attr.attr_clr) = MOUNT_ATTR_RDONLY;
  return static_cast<int>(
      ::syscall(SYS_mount_setattr, AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &attr, sizeof attr));
}
#else
inline int set_mount_readonly(const char*, bool, bool) {
  errno = ENOSYS;
  return -1;
}
#endif

}  // namespace exec_detail

namespace exec_detail {
inline ExecResult run_python_once(const std::string& program, const ExecLimits& limits);
}  // namespace exec_detail

// Runs `program` in the sandbox. Verdicts must not depend on what else the machine runs: on a
// loaded 2-core machine four one-line HumanEval solutions timed out at the 10 s wall clock in
// one batch (the baseline runs of 2026-12-02, docs/TASKS.md). So a timeout whose CPU time is under
// half the budget is retried (ExecLimits::starved_retries); a busy loop spends its CPU and is a
// timeout at the first attempt.
inline ExecResult run_python(const std::string& program, const ExecLimits& limits) {
  for (int attempt = 1;; ++attempt) {
    ExecResult r = exec_detail::run_python_once(program, limits);
    r.attempts = attempt;
    const bool starved = r.status == "timeout" && r.cpu_seconds < 0.5 * limits.timeout_s;
    if (!starved || attempt > limits.starved_retries) return r;
  }
}

inline ExecResult exec_detail::run_python_once(const std::string& program, const ExecLimits& limits) {
  using namespace exec_detail;
  using clock = std::chrono::steady_clock;
  namespace fs = std::filesystem;
  if (!(limits.timeout_s > 0)) fail("", "timeout_s", "must be positive");

  ExecResult res;
  // A root harness drops the program to a uid of its own inside a read-only filesystem with a
  // tmpfs working directory (see the top of this file), provided an interpreter exists that
  // such a uid can execute; the program text is written into that tmpfs by the child.
  const bool as_root = ::geteuid() == 0 && !unprivileged_python_path().empty();
  const std::string& python = as_root ? unprivileged_python_path() : python_path();

  std::string tmpl = (fs::temp_directory_path() / "kvcanary-exec-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) fail(tmpl, "mkdtemp", std::strerror(errno));
  const fs::path workdir = tmpl;
  struct DirGuard {
    fs::path p;
    ~DirGuard() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } dir_guard{workdir};
  if (!as_root) {  // a root harness writes it from the child, into the tmpfs
    std::ofstream f(workdir / "main.py", std::ios::binary);
    f << program;
    if (!f) fail((workdir / "main.py").string(), "program", "cannot write");
  }

  // Everything the child needs is built before fork: after it, no allocation is allowed.
  const std::string wd = workdir.string();
  std::vector<std::string> args = {python, "-I", "-B", "main.py"};
  const uid_t uid = as_root ? sandbox_uid() : ::geteuid();
  const std::string tmpfs_opts = "size=" + std::to_string(std::max<std::size_t>(limits.workdir_bytes, 1u << 20)) +
                                 ",mode=0700,uid=" + std::to_string(uid) + ",gid=" + std::to_string(uid);
  const std::string main_py = (workdir / "main.py").string();
  if (as_root && ::chown(wd.c_str(), uid, uid) != 0) fail(wd, "chown", std::strerror(errno));
  std::vector<std::string> env = {"PATH=/usr/local/bin:/usr/bin:/bin",
                                  "HOME=" + wd,
                                  "TMPDIR=" + wd,
                                  "LANG=C.UTF-8",
                                  "LC_ALL=C.UTF-8",
                                  "PYTHONIOENCODING=utf-8"};
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  const rlim_t cpu = static_cast<rlim_t>(std::ceil(limits.timeout_s)) + 1;
  const struct rlimit rl_cpu = {cpu, cpu + 1}, rl_as = {limits.memory_bytes, limits.memory_bytes},
                      rl_nproc = {static_cast<rlim_t>(limits.max_processes), static_cast<rlim_t>(limits.max_processes)},
                      rl_fsize = {limits.file_bytes, limits.file_bytes}, rl_core = {0, 0};

  PidsCgroup cgroup(limits.max_processes);
  const int cg_fd = cgroup.procs_fd();
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) fail("/dev/null", "open", std::strerror(errno));
  Pipe out, err, status;

  const auto start = clock::now();
  const pid_t harness_pid = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(devnull);
    fail("", "fork", std::strerror(errno));
  }
  if (pid == 0) {
    auto report = [&](char what, int e, char step = 0) {
      const ChildReport r{what, e, step};
      (void)!::write(status.w, &r, sizeof r);
    };
    ::setpgid(0, 0);
    if (cg_fd >= 0) {  // joined before exec so every descendant is counted and findable
      char buf[24];
      std::size_t n = 0;
      format_int(buf, ::getpid(), &n);
      if (::write(cg_fd, buf, n) < 0) report('C', errno);
    }
    // Dispositions and the mask survive exec; the program should start from the defaults.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s = 1; s < NSIG; ++s)
      if (s != SIGKILL && s != SIGSTOP) ::signal(s, SIG_DFL);
    ::dup2(devnull, 0);
    ::dup2(out.w, 1);
    ::dup2(err.w, 2);
    // Unprivileged: a user namespace grants the capability to create the network one. A root
    // harness without that capability (a container) tries it only after dropping to the run's
    // uid: created before, the user namespace would leave that uid unmapped and the drop would fail.
    const bool netns = ::unshare(CLONE_NEWNET) == 0;
    const int netns_errno = errno;
    auto netns_via_userns = [&] {
      if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0)
        report('U', netns_errno);
      else
        report('N', netns_errno);
    };
    if (!netns && !as_root) netns_via_userns();
    if (as_root) {
      // Private mounts (nothing propagates back to the host), a tmpfs over the working
      // directory, then everything read-only except that tmpfs. The program cannot undo it: it
      // runs under another uid, so without capabilities.
      const char* step = nullptr;
      if (::unshare(CLONE_NEWNS) != 0)
        step = "unshare";
      else if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        step = "private";
      else if (::mount("kvcanary-exec", wd.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, tmpfs_opts.c_str()) != 0)
        step = "tmpfs";
      else if (set_mount_readonly("/", true, true) != 0)
        step = "readonly";
      else if (set_mount_readonly(wd.c_str(), false, false) != 0)
        step = "workdir";
      if (step) report('F', errno, step[0]);
      // The program file: in the tmpfs when it is mounted, else in the host directory (where the
      // parent would otherwise have put it).
      const int pf = ::open(main_py.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      std::size_t done = 0;
      while (pf >= 0 && done < program.size()) {
        const ssize_t n = ::write(pf, program.data() + done, program.size() - done);
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
      }
      if (pf < 0 || done != program.size()) {
        report('E', pf < 0 ? errno : EIO);
        ::_exit(127);
      }
      ::close(pf);
    }
    if (::chdir(wd.c_str()) != 0) {
      report('E', errno);
      ::_exit(127);
    }
    ::setrlimit(RLIMIT_CPU, &rl_cpu);
    ::setrlimit(RLIMIT_AS, &rl_as);
    ::setrlimit(RLIMIT_NPROC, &rl_nproc);
    ::setrlimit(RLIMIT_FSIZE, &rl_fsize);
    ::setrlimit(RLIMIT_CORE, &rl_core);
    if (as_root &&
        (::setgroups(0, nullptr) != 0 || ::setresgid(uid, uid, uid) != 0 || ::setresuid(uid, uid, uid) != 0)) {
      report('S', errno);  // never run a hostile program as root
      ::_exit(127);
    }
    if (!netns && as_root) netns_via_userns();
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);  // no setuid binary gives privileges back
    // A harness killed outright (kill -9 of a sweep) takes the program with it. Set after the
    // uid change, which clears it; the check covers a harness that died before this line.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (::getppid() != harness_pid) ::_exit(127);
    // Descriptors the host process opened without O_CLOEXEC (sockets, model files) must not
    // reach the program; marking them rather than closing keeps the status pipe open until exec.
    ::syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */);
    ::execve(argv[0], argv.data(), envp.data());
    report('E', errno);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here: the group must exist before we may need to kill it
  ::close(devnull);
  out.close_w();
  err.close_w();
  status.close_w();

  std::string isolation_net = "netns: private (no interfaces up)";
  std::string cg_note = cgroup.note();
  std::string fs_note = as_root ? "filesystem: read-only except a " +
                                      std::to_string(std::max<std::size_t>(limits.workdir_bytes, 1u << 20)) +
                                      " B tmpfs working directory (private mount namespace)"
                                : "filesystem: shared with the harness (no mount namespace)";
  std::string uid_note =
      as_root ? "uid " + std::to_string(uid) + " (own, unprivileged)"
              : "uid " + std::to_string(uid) + " (the harness's" +
                    (uid == 0 ? std::string(": no python3 that an unprivileged uid can execute)") : std::string(")"));
  bool exec_failed = false, uid_failed = false;
  int exec_errno = 0;
  {
    ChildReport r;
    while (true) {
      const ssize_t n = ::read(status.r, &r, sizeof r);
      if (n < 0 && errno == EINTR) continue;
      if (n != static_cast<ssize_t>(sizeof r)) break;
      if (r.what == 'N') isolation_net = "netns: unavailable (" + errno_name(r.err) + ")";
      if (r.what == 'U') isolation_net = "netns: private via user namespace";
      if (r.what == 'C') cg_note = "pids cgroup: join failed (" + errno_name(r.err) + ")";
      if (r.what == 'E') exec_failed = true, exec_errno = r.err;
      if (r.what == 'S') uid_failed = true, exec_errno = r.err;
      if (r.what == 'F')
        fs_note = std::string("filesystem: shared with the harness (mount namespace failed at ") +
                  (r.step == 'u'   ? "unshare"
                   : r.step == 'p' ? "private"
                   : r.step == 't' ? "tmpfs"
                   : r.step == 'r' ? "readonly"
                                   : "workdir") +
                  ": " + errno_name(r.err) + ")";
    }
    status.close_r();
  }

  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  const auto deadline =
      start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(limits.timeout_s));
  bool timed_out = false, exited = false;
  auto pump = [&](int& fd, std::string& tail, std::size_t& total) {
    char buf[65536];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      total += static_cast<std::size_t>(n);
      append_tail(tail, buf, static_cast<std::size_t>(n), limits.output_cap);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      ::close(fd);
      fd = -1;
    }
  };
  int ofd = out.r, efd = err.r;
  out.r = err.r = -1;
  auto child_gone = [&] {
    siginfo_t si{};
    return ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
  };
  while (!exited) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[3] = {{ofd, POLLIN, 0}, {efd, POLLIN, 0}, {pidfd, POLLIN, 0}};
    // Without a pidfd the exit is only seen by polling waitid, so wake up often.
    const int wait_ms = static_cast<int>(std::min<long long>(left, pidfd >= 0 ? 1000 : 10));
    const int rc = ::poll(fds, 3, wait_ms);
    if (rc < 0 && errno != EINTR) break;
    if (rc > 0) {
      if (ofd >= 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) pump(ofd, res.stdout_tail, res.stdout_bytes);
      if (efd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) pump(efd, res.stderr_tail, res.stderr_bytes);
    }
    exited = (pidfd >= 0 && rc > 0 && (fds[2].revents & POLLIN)) || (pidfd < 0 && child_gone());
  }
  // The child is a zombie or still running, so its pid (= group id) cannot have been reused.
  ::kill(-pid, SIGKILL);
  cgroup.kill_all();
  int st = 0;
  struct rusage ru {};
  while (::wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {}
  res.seconds = std::chrono::duration<double>(clock::now() - start).count();
  if (pidfd >= 0) ::close(pidfd);

  // Whatever is still buffered belongs to the verdict; the writers are dead, so EOF is near.
  // The grace bound covers a descendant that escaped both group and cgroup.
  const auto grace = clock::now() + std::chrono::seconds(2);
  while ((ofd >= 0 || efd >= 0) && clock::now() < grace) {
    pollfd fds[2] = {{ofd, POLLIN, 0}, {efd, POLLIN, 0}};
    const int rc = ::poll(fds, 2, 100);
    if (rc < 0 && errno != EINTR) break;
    if (ofd >= 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) pump(ofd, res.stdout_tail, res.stdout_bytes);
    if (efd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) pump(efd, res.stderr_tail, res.stderr_bytes);
  }
  if (ofd >= 0) ::close(ofd);
  if (efd >= 0) ::close(efd);
  trim_tail(res.stdout_tail, limits.output_cap);
  trim_tail(res.stderr_tail, limits.output_cap);

  const bool root = ::geteuid() == 0;
  res.isolation = isolation_net + "; " + cg_note + "; " + uid_note + "; " + fs_note + "; rlimits: CPU " +
                  std::to_string(cpu) + " s, AS " + std::to_string(limits.memory_bytes) + " B, NPROC " +
                  std::to_string(limits.max_processes) + (root && !as_root ? " (not enforced: root)" : "") +
                  ", FSIZE " + std::to_string(limits.file_bytes) +
                  " B, CORE 0; own process group killed at end; private temp dir; env cleared; stdin /dev/null; " +
                  python + " -I -B";
  if (uid_failed)
    fail(python, "setuid", std::string("cannot drop the program to its own uid: ") + std::strerror(exec_errno));
  if (exec_failed) fail(python, "exec", std::strerror(exec_errno));

  if (WIFEXITED(st)) res.exit_code = WEXITSTATUS(st), res.signal = 0;
  if (WIFSIGNALED(st)) res.exit_code = -1, res.signal = WTERMSIG(st);
  const double cpu_used = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                          1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  res.cpu_seconds = cpu_used;
  const std::string exc = last_exception(res.stderr_tail);
  const bool memory_msg = exc == "MemoryError" || res.stderr_tail.find("MemoryError") != std::string::npos ||
                          res.stderr_tail.find("Cannot allocate memory") != std::string::npos;
  if (timed_out)
    res.status = "timeout";
  else if (res.signal == SIGXCPU || (res.signal == SIGKILL && cpu_used >= static_cast<double>(cpu) - 0.5))
    res.status = "timeout";
  else if (res.signal != 0)
    res.status = memory_msg ? "oom" : "crash";
  else if (res.exit_code == 0)
    res.status = "pass";
  else if (exc == "AssertionError")
    res.status = "fail";
  else if (exc == "MemoryError" || (exc.empty() && memory_msg))
    res.status = "oom";
  else
    res.status = "error";
  return res;
}

}  // namespace kvcanary::task
