// core/stop_signal.hpp, in forked children (the handler is process-wide): the first SIGINT or
// SIGTERM only raises the flag; a second one exits at once with 128 + signal, except inside a
// row write, which it lets finish first.

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#include "kvcanary/core/stop_signal.hpp"

namespace {

// Runs `body` in a child with stderr silenced; its exit status (or minus the killing signal).
int child_status(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::FILE* null = std::fopen("/dev/null", "w");
    if (null) ::dup2(fileno(null), 2);
    ::_exit(body());
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

}  // namespace

TEST_CASE("stop_signal: the first signal sets the flag and returns, the second exits at once with 128 + signal") {
  using namespace kvcanary::stop_signal;
  for (int sig : {SIGINT, SIGTERM}) {
    CAPTURE(sig);
    CHECK(child_status([sig] {
            install();
            if (requested()) return 10;
            ::raise(sig);
            if (!requested() || signal_number() != sig || exit_status() != 128 + sig) return 11;
            ::raise(sig);  // does not return
            return 12;
          }) == 128 + sig);
  }
}

TEST_CASE("stop_signal: a second signal inside a row write waits for the row, then exits") {
  using namespace kvcanary::stop_signal;
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const int status = child_status([&] {
    install();
    ::raise(SIGINT);
    {
      RowWriteGuard row;
      ::raise(SIGINT);                         // held off: the row is being written
      (void)!::write(fds[1], "whole-row", 9);  // the rest of the row still gets out
    }                                          // exits here, the row complete
    (void)!::write(fds[1], "-after", 6);       // never reached
    return 0;
  });
  ::close(fds[1]);
  char buf[64] = {};
  const ssize_t n = ::read(fds[0], buf, sizeof buf - 1);
  ::close(fds[0]);
  CHECK(status == 130);
  CHECK(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0) == "whole-row");
}
