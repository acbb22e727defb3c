#pragma once
// Ctrl-C and SIGTERM for long runs (a sweep stopped by hand, or by a Slurm time limit).
//
// The first SIGINT/SIGTERM only sets an atomic flag (the handler does nothing else that is not
// async-signal-safe: a lock-free atomic store and one write(2) of a fixed message). The engine
// polls the flag between steps (engine/batch_decode.hpp BatchOptions::stop): it admits no new job,
// drops the jobs in flight — their rows were never written — and returns; the caller flushes,
// says how to resume and exits 128 + signal (130 for SIGINT, 143 for SIGTERM).
//
// A second signal means "now": the handler _exit()s at once, unless the process is inside a
// RowWriteGuard (one row's pwrite + fdatasync, milliseconds): then the guard exits as soon as the
// row is whole. So even the impatient exit leaves only whole rows on disk. The protocol, all
// seq_cst: the handler stores exit_now, then reads in_row_write; the writer stores in_row_write,
// then reads exit_now before writing, and after writing clears in_row_write and reads exit_now
// again. Whichever order the two threads interleave in, either the handler sees no write in
// progress (and the writer, seeing exit_now, never starts one), or the writer sees exit_now
// after its row is complete.

#include <signal.h>
#include <unistd.h>

#include <atomic>

namespace kvcanary::stop_signal {

namespace detail {
inline std::atomic<bool> requested{false};
inline std::atomic<int> first_signal{0};
inline std::atomic<int> count{0};
inline std::atomic<bool> in_row_write{false};
inline std::atomic<int> exit_now{0};  // the exit status the second signal asked for, else 0
static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
              "the signal handler may only touch lock-free atomics");

inline void say(const char* s) {
  std::size_t n = 0;
  while (s[n]) ++n;
  (void)!::write(2, s, n);
}

inline void on_signal(int sig) {
  const int n = count.fetch_add(1) + 1;
  if (n == 1) {
    first_signal.store(sig);
    requested.store(true);
    say(sig == SIGINT
            ? "\nkvcanary: SIGINT: finishing the rows in flight (Ctrl-C again to quit at once; whole rows are kept)\n"
            : "\nkvcanary: SIGTERM: finishing the rows in flight (a second signal quits at once; whole rows are "
              "kept)\n");
    return;
  }
  exit_now.store(128 + sig);
  if (!in_row_write.load()) ::_exit(128 + sig);
}
}  // namespace detail

// Installs the handler for SIGINT and SIGTERM (SA_RESTART: an interrupted read/write resumes).
inline void install() {
  struct sigaction sa {};
  sa.sa_handler = detail::on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

// The flag the engine polls.
inline const std::atomic<bool>& flag() { return detail::requested; }
inline bool requested() { return detail::requested.load(); }
inline int signal_number() { return detail::first_signal.load(); }
// 128 + the first signal: the shell's convention for "killed by it" (130 SIGINT, 143 SIGTERM).
inline int exit_status() { return 128 + detail::first_signal.load(); }

// Brackets one row's write: a second signal that arrives inside waits for the row to be whole.
class RowWriteGuard {
 public:
  RowWriteGuard() {
    detail::in_row_write.store(true);
    if (const int code = detail::exit_now.load()) ::_exit(code);
  }
  ~RowWriteGuard() {
    detail::in_row_write.store(false);
    if (const int code = detail::exit_now.load()) ::_exit(code);
  }
  RowWriteGuard(const RowWriteGuard&) = delete;
  RowWriteGuard& operator=(const RowWriteGuard&) = delete;
};

}  // namespace kvcanary::stop_signal
