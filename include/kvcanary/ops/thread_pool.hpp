#pragma once
// A persistent pool for data-parallel loops. Decode issues ~150 parallel loops per token, so
// threads are created once; each parallel_for wakes the workers, the caller takes a share
// of the range too, and all return before parallel_for does.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace kvcanary::ops {

class ThreadPool {
 public:
  explicit ThreadPool(std::size_t threads = default_threads()) : n_(std::max<std::size_t>(1, threads)) {
    for (std::size_t i = 1; i < n_; ++i) workers_.emplace_back([this] { work(); });
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    stop_.store(true);
    publish();
    for (auto& t : workers_) t.join();
  }

  std::size_t size() const { return n_; }

  static std::size_t default_threads() {
    const unsigned hc = std::thread::hardware_concurrency();
    return hc == 0 ? 1 : hc;
  }

  // fn(begin, end) over [0, n) split into contiguous chunks, a few per thread, taken in any
  // order by whichever thread is free: uneven chunks (causal attention, where later rows see
  // more keys) and a thread descheduled by other load do not leave the rest waiting. The
  // chunk boundaries depend only on n and the pool size, never on timing.
  void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn) {
    if (n == 0) return;
    if (n_ == 1 || n == 1) {
      fn(0, n);
      return;
    }
    task_ = &fn;
    total_ = n;
    chunk_ = (n + n_ * kChunksPerThread - 1) / (n_ * kChunksPerThread);
    next_.store(0);
    pending_.store(n_ - 1);
    publish();
    run_chunks();
    wait_until([this] { return pending_.load() == 0; }, main_sleeping_, done_cv_);
    task_ = nullptr;
  }

 private:
  // Hand-off without a lost wake-up: the flag is raised before the mutex is taken, and a
  // sleeper re-checks it under the mutex before sleeping, so a notify is only skipped when
  // nobody can be asleep on the old value.
  void publish() {
    generation_.fetch_add(1);
    std::lock_guard lk(mu_);
    if (workers_sleeping_) cv_.notify_all();
  }

  // Decode calls parallel_for ~150 times per token, microseconds apart: a futex sleep and
  // wake-up per call costs as much as the work, so a waiter polls briefly (about the gap
  // between two calls) before it blocks. It polls with sched_yield, not a pause loop: when
  // the cores are oversubscribed the thread being waited for gets the core instead of a
  // spinner burning it (a pure spin made batch-1 decode 3x slower on a loaded machine).
  template <class Ready>
  void wait_until(Ready ready, std::size_t& sleeping, std::condition_variable& cv) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(kPollMicros);
    for (unsigned poll = 1;; ++poll) {
      if (ready()) return;
      if (poll % 8 == 0) {
        if (std::chrono::steady_clock::now() > deadline) break;
        std::this_thread::yield();
      } else {
#if defined(__x86_64__) || defined(__i386__)
        _mm_pause();
#endif
      }
    }
    std::unique_lock lk(mu_);
    ++sleeping;
    cv.wait(lk, ready);
    --sleeping;
  }

  void run_chunks() {
    for (;;) {
      const std::size_t b = next_.fetch_add(1) * chunk_;
      if (b >= total_) return;
      (*task_)(b, std::min(total_, b + chunk_));
    }
  }

  void work() {
    std::size_t seen = 0;
    for (;;) {
      wait_until([&] { return generation_.load() != seen; }, workers_sleeping_, cv_);
      seen = generation_.load();
      if (stop_.load()) return;
      run_chunks();
      if (pending_.fetch_sub(1) == 1) {
        std::lock_guard lk(mu_);
        if (main_sleeping_) done_cv_.notify_one();
      }
    }
  }

  static constexpr int kPollMicros = 100;
  static constexpr std::size_t kChunksPerThread = 4;
  std::size_t n_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::size_t workers_sleeping_ = 0, main_sleeping_ = 0;  // guarded by mu_
  // Written by parallel_for before generation_ is bumped, read by workers after they see it.
  const std::function<void(std::size_t, std::size_t)>* task_ = nullptr;
  std::size_t total_ = 0, chunk_ = 1;
  std::atomic<std::size_t> next_{0}, pending_{0}, generation_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace kvcanary::ops
