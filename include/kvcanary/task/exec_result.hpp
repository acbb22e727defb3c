#pragma once
// What running a model-written program asks for and returns, and the one function type a task
// runs programs through. Portable and free of the sandbox: the sandbox itself
// (task/code_exec.hpp, Linux only: namespaces, cgroups, rlimits) is opt-in. A program that runs
// HumanEval includes it and hands `task::run_python` to the sweep (run::Sweep's constructor) or
// to the TaskContext; the umbrella header does not include it.

#include <cstddef>
#include <functional>
#include <string>

namespace kvcanary::task {

struct ExecLimits {
  double timeout_s = 10;                   // wall clock, enforced by the parent; CPU limit follows it
  std::size_t memory_bytes = 1u << 30;     // RLIMIT_AS
  int max_processes = 64;                  // pids cgroup (and RLIMIT_NPROC where the kernel honours it)
  std::size_t output_cap = 64u << 10;      // bytes kept of each of stdout and stderr (the tail)
  std::size_t file_bytes = 64u << 20;      // RLIMIT_FSIZE: largest file the program may write
  std::size_t workdir_bytes = 256u << 20;  // size of the tmpfs working directory (root harness only)
  // A wall-clock timeout with under half of timeout_s spent on the CPU by the program was the
  // machine's load (or a sleep), not the program's work: it runs again, at most this many more
  // times. Off by default: the CPU time is the program's own (wait4), so a program whose work is
  // in children it never reaps (a fork bomb) looks idle. HumanEval sets it (humaneval_task.hpp).
  int starved_retries = 0;
};

struct ExecResult {
  std::string status;      // pass | fail | error | timeout | oom | crash
  int exit_code = -1;      // -1 when killed by a signal
  int signal = 0;          // 0 when it exited
  double seconds = 0;      // wall clock from spawn to exit (of the last attempt)
  double cpu_seconds = 0;  // user + system CPU time of the program (of the last attempt)
  int attempts = 1;        // runs it took: > 1 after a starved timeout (ExecLimits::starved_retries)
  std::string stdout_tail, stderr_tail;
  std::size_t stdout_bytes = 0, stderr_bytes = 0;  // totals, including what the cap discarded
  std::string isolation;                           // what was in force for this run
};

// Runs a Python program under limits and says how it ended (task/code_exec.hpp's run_python).
using ProgramRunner = std::function<ExecResult(const std::string& program, const ExecLimits& limits)>;

}  // namespace kvcanary::task
