// The thread pool: every index runs exactly once per call, whether the workers are spinning
// (back-to-back calls) or asleep (calls far apart), and destruction joins cleanly.

#include <doctest/doctest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "kvcanary/ops/thread_pool.hpp"

TEST_CASE("thread pool covers each index once, back to back and after sleeping") {
  for (std::size_t threads : {1, 2, 3, 5}) {
    kvcanary::ops::ThreadPool pool(threads);
    std::vector<int> hits(37);
    for (int call = 0; call < 2000; ++call) {
      const std::size_t n = 1 + static_cast<std::size_t>(call) % hits.size();
      pool.parallel_for(n, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) ++hits[i];
      });
      if (call % 400 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    std::vector<int> want(hits.size());
    for (int call = 0; call < 2000; ++call)
      for (std::size_t i = 0; i < 1 + static_cast<std::size_t>(call) % hits.size(); ++i) ++want[i];
    CHECK(hits == want);
  }
}
