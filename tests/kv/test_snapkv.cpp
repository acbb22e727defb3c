// SnapKV: observation-window votes, max-pooled, top-k per KV head + the window; prompt only.
// snapkv_rolling: kvcanary 0.2's decode-mode re-selection, kept under its own name.

#include <doctest/doctest.h>

#include "eviction_test_support.hpp"
#include "kvcanary/kv/snapkv.hpp"
#include "kvcanary/kv/snapkv_rolling.hpp"

using namespace kvcanary;
using namespace kvcanary::test::eviction;
using kv::SnapKv;
using kv::SnapKvRolling;

namespace {
using Ints = std::vector<int>;
}

TEST_CASE("snapkv: identity string and parameters") {
  CHECK(make<SnapKv>(0.25, kv::Mode::Prompt).identity() ==
        "snapkv(budget=0.25,mode=prompt,capacity=seen,window=32,kernel=7)");
  CHECK(make<SnapKvRolling>(0.1, kv::Mode::Decode, {{"window", "8"}, {"kernel", "5"}}).identity() ==
        "snapkv_rolling(budget=0.1,mode=decode,capacity=seen,window=8,kernel=5)");
  CHECK_THROWS_WITH_AS(make<SnapKv>(0.5, kv::Mode::Decode), doctest::Contains("prompt-only"), Error);
  CHECK_THROWS(make<SnapKv>(0.5, kv::Mode::Prompt, {{"kernel", "4"}}));
  CHECK_THROWS(make<SnapKv>(0.5, kv::Mode::Prompt, {{"window", "0"}}));
  CHECK_THROWS(make<SnapKv>(0.5, kv::Mode::Prompt, {{"windw", "8"}}));
  // Records the window in the prefill, never more rows than the capacity (0.25 · 40 = 10);
  // snapkv_rolling in decode mode one row per decode step.
  CHECK(make<SnapKv>(0.5, kv::Mode::Prompt).attention_rows(kv::StepKind::Prefill, 100) == 32);
  CHECK(make<SnapKv>(0.25, kv::Mode::Prompt).attention_rows(kv::StepKind::Prefill, 40) == 10);
  CHECK(make<SnapKv>(0.5, kv::Mode::Prompt).attention_rows(kv::StepKind::Decode, 1) == 0);
  CHECK(make<SnapKvRolling>(0.5, kv::Mode::Decode).attention_rows(kv::StepKind::Decode, 1) == 1);
}

TEST_CASE("snapkv: budget 1 is bit-identical to full (snapkv: prompt mode, snapkv_rolling: both modes)") {
  check_budget_one_is_full<SnapKv>();
  check_budget_one_is_full<SnapKv>({{"window", "4"}, {"kernel", "3"}});
  check_budget_one_is_full<SnapKvRolling>({{"window", "4"}, {"kernel", "3"}});
}

TEST_CASE("snapkv: max_pool1d with padding kernel/2") {
  const std::vector<float> x = {1, 0, 0, 0, 2};
  CHECK(kv::max_pool_1d(x, 3) == std::vector<float>{1, 1, 0, 2, 2});
  CHECK(kv::max_pool_1d(x, 5) == std::vector<float>{1, 1, 2, 2, 2});
  CHECK(kv::max_pool_1d(x, 1) == x);
}

TEST_CASE("snapkv: pooling changes the selection, GQA groups vote together, ties to the lowest row") {
  // 10 rows, window 2 (rows 8, 9 kept), budget 0.5 → 5 rows → 3 prefix rows. One KV head
  // shared by 2 query heads; their votes (window's mass) are summed: prefix vote
  // [0, 0, .9, 0, 0, .5, 0, .4].
  const std::vector<float> h0 = {0, 0, .9f, 0, 0, 0, 0, .1f, .7f, .9f}, h1 = {0, 0, 0, 0, 0, .5f, 0, .3f, .6f, .8f};
  const auto rec = synthetic_record(2, 1, 2, 2, {h0, h1});
  {
    auto p = make<SnapKv>(0.5, kv::Mode::Prompt, {{"window", "2"}, {"kernel", "1"}});
    kv::KvCache c = synthetic_cache(1, 1, 16, 10);
    p.after_step(c, rec, kv::StepKind::Prefill);
    CHECK(kept_rows(c, 0, 0) == Ints{2, 5, 7, 8, 9});                            // raw top-3: .9, .5, .4
    CHECK(positions(c.head(0, 0)) == std::vector<std::int32_t>{2, 5, 7, 8, 9});  // no re-positioning
  }
  {
    // kernel 3: pooled = [0, .9, .9, .9, .5, .5, .5, .4]: the three .9 tie, lowest rows win.
    auto p = make<SnapKv>(0.5, kv::Mode::Prompt, {{"window", "2"}, {"kernel", "3"}});
    kv::KvCache c = synthetic_cache(1, 1, 16, 10);
    p.after_step(c, rec, kv::StepKind::Prefill);
    CHECK(kept_rows(c, 0, 0) == Ints{1, 2, 3, 8, 9});
  }
  {
    // Two KV heads with 2 query heads each (4 query heads). KV head 1: neither query head
    // alone ranks row 4 first, their sum does. budget 0.3 → 3 rows → 1 prefix row.
    const std::vector<float> g2 = {.6f, 0, 0, 0, .5f, 0, 0, 0, .1f, .1f}, g3 = {0, 0, 0, 0, .5f, 0, .6f, 0, .1f, .1f};
    const auto rec4 = synthetic_record(2, 1, 4, 2, {h0, h1, g2, g3});
    auto p = make<SnapKv>(0.3, kv::Mode::Prompt, {{"window", "2"}, {"kernel", "1"}});
    kv::KvCache c = synthetic_cache(1, 2, 16, 10);
    p.after_step(c, rec4, kv::StepKind::Prefill);
    CHECK(kept_rows(c, 0, 0) == Ints{2, 8, 9});
    CHECK(kept_rows(c, 0, 1) == Ints{4, 8, 9});
  }
  {
    // All votes equal: the lowest prefix rows win.
    auto p = make<SnapKv>(0.5, kv::Mode::Prompt, {{"window", "2"}, {"kernel", "3"}});
    kv::KvCache c = synthetic_cache(1, 1, 16, 10);
    p.after_step(c, synthetic_record(2, 1, 1, 1, {std::vector<float>(10, 0.1f)}), kv::StepKind::Prefill);
    CHECK(kept_rows(c, 0, 0) == Ints{0, 1, 2, 8, 9});
  }
  {
    // The window never exceeds the capacity: budget 0.1 → 1 row, the last one. (snapkv_rolling
    // keeps kvcanary 0.2's floor: the whole window of 2.)
    auto p = make<SnapKv>(0.1, kv::Mode::Prompt, {{"window", "2"}, {"kernel", "1"}});
    kv::KvCache c = synthetic_cache(1, 1, 16, 10);
    p.after_step(c, synthetic_record(1, 1, 1, 1, {h0}), kv::StepKind::Prefill);
    CHECK(kept_rows(c, 0, 0) == Ints{9});
    auto old = make<SnapKvRolling>(0.1, kv::Mode::Prompt, {{"window", "2"}, {"kernel", "1"}});
    kv::KvCache c2 = synthetic_cache(1, 1, 16, 10);
    old.after_step(c2, synthetic_record(2, 1, 1, 1, {h0}), kv::StepKind::Prefill);
    CHECK(kept_rows(c2, 0, 0) == Ints{8, 9});
  }
  {
    // "Compress only when the prompt exceeds the capacity": 10 rows, budget 0.95 → C = 10.
    auto p = make<SnapKv>(0.95, kv::Mode::Prompt, {{"window", "2"}, {"kernel", "1"}});
    kv::KvCache c = synthetic_cache(1, 1, 16, 10);
    p.after_step(c, synthetic_record(2, 1, 1, 1, {h0}), kv::StepKind::Prefill);
    CHECK(kept_rows(c, 0, 0) == Ints{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  }
}

TEST_CASE("snapkv_rolling: decode mode re-selects with the last `window` queries (kvcanary 0.2's snapkv decode mode)") {
  // window 2, kernel 1, budget 0.4, one head.
  auto p = make<SnapKvRolling>(0.4, kv::Mode::Decode, {{"window", "2"}, {"kernel", "1"}});
  kv::KvCache c = synthetic_cache(1, 1, 16, 6);
  auto one = [](std::vector<float> m) { return synthetic_record(1, 1, 1, 1, {std::move(m)}); };
  // Prefill, 6 seen → 3 rows: window {4, 5} + best prefix row 1 (.5).
  p.after_step(c, synthetic_record(2, 1, 1, 1, {{.1f, .5f, .2f, .3f, 0, 1}}), kv::StepKind::Prefill);
  CHECK(kept_rows(c, 0, 0) == Ints{1, 4, 5});
  // Step 1: 7 seen → 3 rows; rows [1, 4 | 5, 6]. The last 2 queries are this step's and
  // one prompt query, counted as half the prompt's vote: [.25, 0] + [0, .1] → row 1 stays
  // (this step's query alone would keep row 4).
  append_row(c, 6);
  p.after_step(c, one({0, .1f, .4f, .5f}), kv::StepKind::Decode);
  CHECK(kept_rows(c, 0, 0) == Ints{1, 5, 6});
  // Step 2: 8 seen → 4 rows: nothing to evict.
  append_row(c, 7);
  p.after_step(c, one({.3f, 0, .1f, .6f}), kv::StepKind::Decode);
  CHECK(kept_rows(c, 0, 0) == Ints{1, 5, 6, 7});
  // Step 3: 9 seen → 4 rows; rows [1, 5, 6 | 7, 8]. Votes of steps 2 and 3 only (step 1's
  // query has left the window): [.3, .1, .2] → keep 1 and 6, evict 5. With step 1's vote
  // (.4 on row 5) row 5 would have stayed.
  append_row(c, 8);
  p.after_step(c, one({0, .1f, .1f, .4f, .4f}), kv::StepKind::Decode);
  CHECK(kept_rows(c, 0, 0) == Ints{1, 6, 7, 8});
}

TEST_CASE("snapkv_rolling: decode mode stays within ceil(budget x tokens_seen) after every step") {
  check_decode_within_budget<SnapKvRolling>(0.5, {{"window", "2"}});
  check_decode_within_budget<SnapKvRolling>(0.25, {{"window", "1"}, {"kernel", "3"}});
}

TEST_CASE("snapkv: byte accounting") {
  auto g = engine::generate_greedy(tiny(), std::span(&prompts()[0], 1), no_eos(10), {},
                                   make<SnapKv>(0.25, kv::Mode::Prompt, {{"window", "8"}}));
  check_bytes(g[0], 19, 19.0 / 49.0);  // 10 after the prefill (8 window + 2 voted) + 9 appended
  g = engine::generate_greedy(tiny(), std::span(&prompts()[0], 1), no_eos(10), {},
                              make<SnapKvRolling>(0.25, kv::Mode::Decode, {{"window", "8"}}));
  check_bytes(g[0], 13, decode_peak(0.25));
}
