// H2O: heavy hitters by attention accumulated over all queries so far + recent rows.

#include <doctest/doctest.h>

#include "eviction_test_support.hpp"
#include "kvcanary/kv/h2o.hpp"

using namespace kvcanary;
using namespace kvcanary::test::eviction;
using kv::H2o;

namespace {
using Ints = std::vector<int>;
kv::AttentionRecord one(std::size_t rows, std::vector<float> m) {
  return synthetic_record(rows, 1, 1, 1, {std::move(m)});
}
}  // namespace

TEST_CASE("h2o: identity string and parameters") {
  CHECK(make<H2o>(0.25, kv::Mode::Prompt).identity() == "h2o(budget=0.25,mode=prompt,capacity=seen,recent_ratio=0.5)");
  CHECK(make<H2o>(0.1, kv::Mode::Decode, {{"recent_ratio", "0.25"}}).identity() ==
        "h2o(budget=0.1,mode=decode,capacity=seen,recent_ratio=0.25)");
  CHECK_THROWS(make<H2o>(0.5, kv::Mode::Prompt, {{"recent_ratio", "1.5"}}));
  CHECK_THROWS(make<H2o>(0.5, kv::Mode::Prompt, {{"heavy", "0.5"}}));
  // Every prefill query is recorded; a decode step's query only in decode mode.
  CHECK(make<H2o>(0.5, kv::Mode::Prompt).attention_rows(kv::StepKind::Prefill, 100) == 100);
  CHECK(make<H2o>(0.5, kv::Mode::Prompt).attention_rows(kv::StepKind::Decode, 1) == 0);
  CHECK(make<H2o>(0.5, kv::Mode::Decode).attention_rows(kv::StepKind::Decode, 1) == 1);
}

TEST_CASE("h2o: budget 1 is bit-identical to full in both modes") {
  check_budget_one_is_full<H2o>();
  check_budget_one_is_full<H2o>({{"recent_ratio", "0.25"}});
}

TEST_CASE("h2o: accumulated scores follow rows through evictions and decide over the current query") {
  auto p = make<H2o>(0.5, kv::Mode::Decode);
  kv::KvCache c = synthetic_cache(1, 1, 16, 6);
  // Prefill, 6 seen → 3 rows: recent ceil(.5·3) = 2 (rows 4, 5) + 1 heavy hitter (row 0).
  p.after_step(c, one(6, {2.0f, .5f, 1.2f, .3f, .6f, 1.0f}), kv::StepKind::Prefill);
  CHECK(kept_rows(c, 0, 0) == Ints{0, 4, 5});
  REQUIRE(p.accumulated[0].size() == 3);
  CHECK(p.accumulated[0][1] == doctest::Approx(.6));
  // Step 1: 7 seen → 4 rows: nothing evicted, scores accumulate.
  append_row(c, 6);
  p.after_step(c, one(1, {.1f, .5f, .2f, .2f}), kv::StepKind::Decode);
  CHECK(kept_rows(c, 0, 0) == Ints{0, 4, 5, 6});
  // Step 2: 8 seen → 4 rows: recent {6, 7}, heavy 2 of rows {0, 4, 5} by accumulated
  // [2.1, 1.3, 1.25]: row 5 goes. The current query alone ([0, .2, .05]) would evict row 0.
  append_row(c, 7);
  p.after_step(c, one(1, {0, .2f, .05f, .45f, .3f}), kv::StepKind::Decode);
  CHECK(kept_rows(c, 0, 0) == Ints{0, 4, 6, 7});
  REQUIRE(p.accumulated[0].size() == 4);
  CHECK(p.accumulated[0][0] == doctest::Approx(2.1));
  CHECK(p.accumulated[0][1] == doctest::Approx(1.3));
  CHECK(p.accumulated[0][2] == doctest::Approx(.65));
  CHECK(p.accumulated[0][3] == doctest::Approx(.3));
  // Step 3: 9 seen → 5 rows: nothing evicted.
  append_row(c, 8);
  p.after_step(c, one(1, {.1f, .1f, .1f, .1f, .6f}), kv::StepKind::Decode);
  CHECK(kept_rows(c, 0, 0) == Ints{0, 4, 6, 7, 8});
  // Step 4: 10 seen → 5 rows: recent ceil(2.5) = 3 (rows 7, 8, 9), heavy 2 of {0, 4, 6}
  // by [2.2, 1.4, .75]: row 6 goes although it is newer.
  append_row(c, 9);
  p.after_step(c, one(1, {0, 0, 0, 0, 0, 1}), kv::StepKind::Decode);
  CHECK(kept_rows(c, 0, 0) == Ints{0, 4, 7, 8, 9});
  REQUIRE(p.accumulated[0].size() == 5);
  CHECK(p.accumulated[0][0] == doctest::Approx(2.2));
  CHECK(p.accumulated[0][1] == doctest::Approx(1.4));
  CHECK(p.accumulated[0][2] == doctest::Approx(.4));
  CHECK(p.accumulated[0][3] == doctest::Approx(.6));
  CHECK(p.accumulated[0][4] == doctest::Approx(1.0));
}

TEST_CASE("h2o: GQA group summed per KV head, recent_ratio, ties to the lowest row") {
  // 2 query heads on one KV head, summed [3, 3, 2.5, 0, …, 0, 2]: row 9, second for head 0
  // alone, goes.
  auto p = make<H2o>(0.3, kv::Mode::Prompt, {{"recent_ratio", "0"}});  // 3 heavy hitters, no recent rows
  kv::KvCache c = synthetic_cache(1, 1, 16, 10);
  p.after_step(c, synthetic_record(10, 1, 2, 2, {{3, 0, 1, 0, 0, 0, 0, 0, 0, 2}, {0, 3, 1.5f, 0, 0, 0, 0, 0, 0, 0}}),
               kv::StepKind::Prefill);
  CHECK(kept_rows(c, 0, 0) == Ints{0, 1, 2});
  // All equal: heavy hitters are the lowest rows, the recent rows the newest.
  auto q = make<H2o>(0.5, kv::Mode::Prompt, {{"recent_ratio", "0.4"}});  // 5 rows: 2 recent, 3 heavy
  kv::KvCache d = synthetic_cache(1, 1, 16, 10);
  q.after_step(d, one(10, std::vector<float>(10, 1.0f)), kv::StepKind::Prefill);
  CHECK(kept_rows(d, 0, 0) == Ints{0, 1, 2, 8, 9});
  // Prompt mode: a decode step changes nothing.
  append_row(d, 10);
  q.after_step(d, {}, kv::StepKind::Decode);
  CHECK(d.head(0, 0).size() == 6);
}

TEST_CASE("h2o: decode mode stays within ceil(budget x tokens_seen) after every step") {
  check_decode_within_budget<H2o>(0.25);
  check_decode_within_budget<H2o>(0.5, {{"recent_ratio", "0.25"}});
}

TEST_CASE("h2o: byte accounting") {
  auto g =
      engine::generate_greedy(tiny(), std::span(&prompts()[0], 1), no_eos(10), {}, make<H2o>(0.25, kv::Mode::Prompt));
  check_bytes(g[0], 19, 19.0 / 49.0);
  g = engine::generate_greedy(tiny(), std::span(&prompts()[0], 1), no_eos(10), {}, make<H2o>(0.25, kv::Mode::Decode));
  check_bytes(g[0], 13, decode_peak(0.25));
}

TEST_CASE("h2o: scores keep accumulating over a chunked prefill, a cleared cache starts afresh") {
  auto p = make<H2o>(0.5, kv::Mode::Decode);
  kv::KvCache c = synthetic_cache(1, 1, 16, 2);  // 2 seen → 1 row: nothing to evict below
  p.after_step(c, one(2, {.5f, .5f}), kv::StepKind::Prefill);
  REQUIRE(c.head(0, 0).size() == 1);  // recent ceil(.5) = 1: row 1
  CHECK(p.accumulated[0] == std::vector<float>{.5f});
  append_row(c, 2);
  append_row(c, 3);  // a second prefill chunk of 2 tokens: 4 seen → 2 rows
  p.after_step(c, one(2, {.25f, 1.0f, .75f}), kv::StepKind::Prefill);
  CHECK(kept_rows(c, 0, 0) == Ints{2, 3});  // recent 1 (row 3) + heavy of {1: .75, 2: 1.0}
  CHECK(p.accumulated[0] == std::vector<float>{1.0f, .75f});
  kv::KvCache fresh = synthetic_cache(1, 1, 16, 1);
  p.after_step(fresh, one(1, {1.0f}), kv::StepKind::Prefill);
  CHECK(p.accumulated[0] == std::vector<float>{1.0f});
}
