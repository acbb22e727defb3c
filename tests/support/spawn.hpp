#pragma once
// Starting the kvcanary program as a separate process, for what only a process can show:
// signals, locks between processes, exit statuses.

#include <signal.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "temp_dir.hpp"

namespace kvcanary::test {

// `kvcanary ARGS...` with stdout and stderr sent to the given files (/dev/null when empty).
inline pid_t spawn_cli(const std::vector<std::string>& args, const std::filesystem::path& out = {},
                       const std::filesystem::path& err = {}) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    auto redirect = [](const std::filesystem::path& p, int fd) {
      const int f = ::open(p.empty() ? "/dev/null" : p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (f >= 0) ::dup2(f, fd);
    };
    redirect(out, 1);
    redirect(err, 2);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(KVCANARY_CLI_PATH));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(KVCANARY_CLI_PATH, argv.data());
    ::_exit(127);
  }
  return pid;
}

// The exit status, or minus the signal that killed the process.
inline int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

inline std::string slurp_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct CliRun {
  int exit_code = -1;
  std::string out, err;
};

// Runs `kvcanary ARGS...` to completion (no shell involved: arguments go as they are).
inline CliRun run_cli_args(const std::vector<std::string>& args) {
  TempDir scratch("kvcanary-cli-");
  const pid_t pid = spawn_cli(args, scratch.path / "out", scratch.path / "err");
  CliRun r;
  r.exit_code = wait_exit(pid);
  r.out = slurp_file(scratch.path / "out");
  r.err = slurp_file(scratch.path / "err");
  return r;
}

}  // namespace kvcanary::test
