#pragma once
// Failure cases that change process state (RLIMIT_FSIZE, a private mount namespace with a tiny
// tmpfs) run in a forked child so the test process is untouched.

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

#include <doctest/doctest.h>

#include "kvcanary/core/error.hpp"

namespace kvcanary::test {

// Runs `body` in a forked child; its return value (or the text of a thrown kvcanary::Error,
// prefixed "Error: " and followed by "\nfile=<its file>") comes back. A crash or another
// exception comes back as "died".
inline std::string in_child(const std::function<std::string()>& body) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string msg;
    try {
      msg = body();
    } catch (const kvcanary::Error& e) { msg = std::string("Error: ") + e.what() + "\nfile=" + e.file(); } catch (...) {
      ::_exit(3);
    }
    (void)!::write(fds[1], msg.data(), msg.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return "died";
  return msg;
}

// Whether a child may mount a tmpfs in a private mount namespace (root with CAP_SYS_ADMIN).
inline bool can_mount() {
  static const bool ok =
      ::geteuid() == 0 && in_child([] { return ::unshare(CLONE_NEWNS) == 0 ? "yes" : "no"; }) == "yes";
  return ok;
}

}  // namespace kvcanary::test
