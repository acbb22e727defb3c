// TOVA: evict the rows the current (last) query attends to least.

#include <doctest/doctest.h>

#include "eviction_test_support.hpp"
#include "kvcanary/kv/tova.hpp"

using namespace kvcanary;
using namespace kvcanary::test::eviction;
using kv::Tova;

namespace {
using Ints = std::vector<int>;
// 4 query heads on 2 KV heads (group 2); the last query's attention over 6 rows.
const std::vector<float> h0 = {.1f, .4f, 0, 0, .2f, .3f}, h1 = {.1f, .4f, 0, .1f, .1f, .3f};
const std::vector<float> h2 = {.5f, 0, .3f, 0, 0, .2f}, h3 = {.4f, 0, .4f, 0, .1f, .1f};
}  // namespace

TEST_CASE("tova: identity string and parameters") {
  CHECK(make<Tova>(0.25, kv::Mode::Prompt).identity() == "tova(budget=0.25,mode=prompt,capacity=seen,scope=layer)");
  CHECK(make<Tova>(0.5, kv::Mode::Decode, {{"scope", "head"}}).identity() ==
        "tova(budget=0.5,mode=decode,capacity=seen,scope=head)");
  CHECK_THROWS(make<Tova>(0.5, kv::Mode::Prompt, {{"scope", "group"}}));
  CHECK_THROWS(make<Tova>(0.5, kv::Mode::Prompt, {{"window", "4"}}));
  CHECK(make<Tova>(0.5, kv::Mode::Prompt).attention_rows(kv::StepKind::Prefill, 100) == 1);
  CHECK(make<Tova>(0.5, kv::Mode::Prompt).attention_rows(kv::StepKind::Decode, 1) == 0);
  CHECK(make<Tova>(0.5, kv::Mode::Decode).attention_rows(kv::StepKind::Decode, 1) == 1);
}

TEST_CASE("tova: budget 1 is bit-identical to full in both modes") {
  check_budget_one_is_full<Tova>();
  check_budget_one_is_full<Tova>({{"scope", "head"}});
}

TEST_CASE("tova: selection by the last query, per KV head or per layer") {
  const auto rec = synthetic_record(1, 1, 4, 2, {h0, h1, h2, h3});
  {
    // Per KV head: [.2, .8, 0, .1, .3, .6] → {1, 4, 5}; [.9, 0, .7, 0, .1, .3] → {0, 2, 5}.
    auto p = make<Tova>(0.5, kv::Mode::Prompt, {{"scope", "head"}});
    kv::KvCache c = synthetic_cache(1, 2, 16, 6);
    p.after_step(c, rec, kv::StepKind::Prefill);
    CHECK(kept_rows(c, 0, 0) == Ints{1, 4, 5});
    CHECK(kept_rows(c, 0, 1) == Ints{0, 2, 5});
  }
  {
    // Per layer (the paper): all heads summed [1.1, .8, .7, .1, .4, .9] → {0, 1, 5} on both.
    auto p = make<Tova>(0.5, kv::Mode::Prompt);
    kv::KvCache c = synthetic_cache(1, 2, 16, 6);
    p.after_step(c, rec, kv::StepKind::Prefill);
    CHECK(kept_rows(c, 0, 0) == Ints{0, 1, 5});
    CHECK(kept_rows(c, 0, 1) == Ints{0, 1, 5});
    CHECK(positions(c.head(0, 1)) == std::vector<std::int32_t>{0, 1, 5});
  }
  {
    // Ties: the lowest rows.
    auto p = make<Tova>(0.5, kv::Mode::Prompt);
    kv::KvCache c = synthetic_cache(1, 1, 16, 6);
    p.after_step(c, synthetic_record(1, 1, 1, 1, {std::vector<float>(6, .25f)}), kv::StepKind::Prefill);
    CHECK(kept_rows(c, 0, 0) == Ints{0, 1, 2});
  }
}

TEST_CASE("tova: decode mode uses only the newest query, nothing accumulated") {
  auto p = make<Tova>(0.5, kv::Mode::Decode);
  kv::KvCache c = synthetic_cache(1, 1, 16, 6);
  p.after_step(c, synthetic_record(1, 1, 1, 1, {{.5f, .4f, .1f, 0, 0, 0}}), kv::StepKind::Prefill);
  CHECK(kept_rows(c, 0, 0) == Ints{0, 1, 2});
  append_row(c, 6);  // 7 seen → 4 rows: nothing evicted
  p.after_step(c, synthetic_record(1, 1, 1, 1, {{0, 0, .1f, .9f}}), kv::StepKind::Decode);
  CHECK(kept_rows(c, 0, 0) == Ints{0, 1, 2, 6});
  append_row(c, 7);  // 8 seen → 4 rows: the current query drops row 0 despite its past mass
  p.after_step(c, synthetic_record(1, 1, 1, 1, {{0, .3f, .3f, .2f, .2f}}), kv::StepKind::Decode);
  CHECK(kept_rows(c, 0, 0) == Ints{1, 2, 6, 7});
}

TEST_CASE("tova: decode mode stays within ceil(budget x tokens_seen) after every step") {
  check_decode_within_budget<Tova>(0.25);
  check_decode_within_budget<Tova>(0.5, {{"scope", "head"}});
}

TEST_CASE("tova: byte accounting") {
  auto g =
      engine::generate_greedy(tiny(), std::span(&prompts()[0], 1), no_eos(10), {}, make<Tova>(0.25, kv::Mode::Prompt));
  check_bytes(g[0], 19, 19.0 / 49.0);
  g = engine::generate_greedy(tiny(), std::span(&prompts()[0], 1), no_eos(10), {}, make<Tova>(0.25, kv::Mode::Decode));
  check_bytes(g[0], 13, decode_peak(0.25));
}
