#pragma once
// A persistent pool for data-parallel loops. Decode issues ~200 matmuls per token, so
// threads are created once; each parallel_for wakes the workers, the caller takes a share
// of the range too, and all return before parallel_for does.

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kvcanary::ops {

class ThreadPool {
 public:
  explicit ThreadPool(std::size_t threads = default_threads()) : n_(std::max<std::size_t>(1, threads)) {
    for (std::size_t i = 1; i < n_; ++i) workers_.emplace_back([this, i] { work(i); });
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
      ++generation_;
    }
    cv_.notify_all();
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
    {
      std::lock_guard lk(mu_);
      task_ = &fn;
      total_ = n;
      pending_ = n_ - 1;
      ++generation_;
    }
    cv_.notify_all();
    run_chunk(0, fn, n);
    std::unique_lock lk(mu_);
    done_cv_.wait(lk, [this] { return pending_ == 0; });
    task_ = nullptr;
  }

 private:
  void run_chunk(std::size_t index, const std::function<void(std::size_t, std::size_t)>& fn, std::size_t n) {
    const std::size_t chunk = (n + n_ - 1) / n_;
    const std::size_t b = std::min(n, index * chunk), e = std::min(n, b + chunk);
    if (b < e) fn(b, e);
  }

  void work(std::size_t index) {
    std::size_t seen = 0;
    for (;;) {
      const std::function<void(std::size_t, std::size_t)>* task;
      std::size_t n;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return generation_ != seen; });
        seen = generation_;
        if (stop_) return;
        task = task_;
        n = total_;
      }
      run_chunk(index, *task, n);
      {
        std::lock_guard lk(mu_);
        if (--pending_ == 0) done_cv_.notify_one();
      }
    }
  }

  std::size_t n_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(std::size_t, std::size_t)>* task_ = nullptr;
  std::size_t total_ = 0, pending_ = 0, generation_ = 0;
  bool stop_ = false;
};

}  // namespace kvcanary::ops
