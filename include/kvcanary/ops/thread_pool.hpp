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
    for (std::size_t i = 1; i < n_; ++i) workers_.emplace_back([this, i] { work(i); });
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

  // fn(begin, end) over [0, n) split into contiguous chunks, one per thread.
  void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn) {
    if (n == 0) return;
    if (n_ == 1 || n == 1) {
      fn(0, n);
      return;
    }
    task_ = &fn;
    total_ = n;
    pending_.store(n_ - 1);
    publish();
    run_chunk(0, fn, n);
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
  // wake-up per call costs as much as the work, so a waiter spins briefly (about the gap
  // between two calls) before it blocks.
  template <class Ready>
  void wait_until(Ready ready, std::size_t& sleeping, std::condition_variable& cv) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
    for (unsigned spin = 1;; ++spin) {
      if (ready()) return;
#if defined(__x86_64__) || defined(__i386__)
      _mm_pause();
#endif
      if (spin % 64 == 0 && std::chrono::steady_clock::now() > deadline) break;
    }
    std::unique_lock lk(mu_);
    ++sleeping;
    cv.wait(lk, ready);
    --sleeping;
  }

  void run_chunk(std::size_t index, const std::function<void(std::size_t, std::size_t)>& fn, std::size_t n) {
    const std::size_t chunk = (n + n_ - 1) / n_;
    const std::size_t b = std::min(n, index * chunk), e = std::min(n, b + chunk);
    if (b < e) fn(b, e);
  }

  void work(std::size_t index) {
    std::size_t seen = 0;
    for (;;) {
      wait_until([&] { return generation_.load() != seen; }, workers_sleeping_, cv_);
      seen = generation_.load();
      if (stop_.load()) return;
      run_chunk(index, *task_, total_);
      if (pending_.fetch_sub(1) == 1) {
        std::lock_guard lk(mu_);
        if (main_sleeping_) done_cv_.notify_one();
      }
    }
  }

  std::size_t n_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::size_t workers_sleeping_ = 0, main_sleeping_ = 0;  // guarded by mu_
  // Written by parallel_for before generation_ is bumped, read by workers after they see it.
  const std::function<void(std::size_t, std::size_t)>* task_ = nullptr;
  std::size_t total_ = 0;
  std::atomic<std::size_t> pending_{0}, generation_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace kvcanary::ops
