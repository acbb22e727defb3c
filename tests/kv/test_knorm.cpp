// KNorm: keep the rows whose key has the lowest L2 norm.

#include <doctest/doctest.h>

#include "eviction_test_support.hpp"
#include "kvcanary/kv/knorm.hpp"

using namespace kvcanary;
using namespace kvcanary::test::eviction;
using kv::KNorm;

namespace {
using Ints = std::vector<int>;
// 8 rows whose keys have norms 3, 1, 4, 1, 5, 9, 2, 6 (spread over two dimensions).
kv::KvCache normed_cache(std::size_t layers = 1) {
  kv::KvCache c = synthetic_cache(layers, 1, 16, 8);
  const float norms[] = {3, 1, 4, 1, 5, 9, 2, 6};
  for (std::size_t l = 0; l < layers; ++l)
    for (std::size_t r = 0; r < 8; ++r) {
      float* k = &c.head(l, 0).keys[r * 16];
      std::fill(k, k + 16, 0.0f);
      k[r % 16] = 0.6f * norms[r];
      k[(r + 5) % 16] = 0.8f * norms[r];
    }
  return c;
}
}  // namespace

TEST_CASE("knorm: identity string and parameters") {
  CHECK(make<KNorm>(0.25, kv::Mode::Prompt).identity() ==
        "knorm(budget=0.25,mode=prompt,capacity=seen,window=0,skip_layers=0)");
  CHECK(make<KNorm>(0.5, kv::Mode::Decode, {{"window", "4"}, {"skip_layers", "2"}}).identity() ==
        "knorm(budget=0.5,mode=decode,capacity=seen,window=4,skip_layers=2)");
  CHECK_THROWS(make<KNorm>(0.5, kv::Mode::Prompt, {{"recent", "4"}}));
  CHECK(make<KNorm>(0.5, kv::Mode::Decode).attention_rows(kv::StepKind::Prefill, 100) == 0);
}

TEST_CASE("knorm: budget 1 is bit-identical to full in both modes") {
  check_budget_one_is_full<KNorm>();
  check_budget_one_is_full<KNorm>({{"window", "3"}});
}

TEST_CASE("knorm: lowest key norms kept, window, skipped layers, ties to the lowest row") {
  auto keep = [](double budget, std::map<std::string, std::string> params, std::size_t layers = 1) {
    auto p = make<KNorm>(budget, kv::Mode::Prompt, std::move(params));
    kv::KvCache c = normed_cache(layers);
    p.after_step(c, {}, kv::StepKind::Prefill);
    return c;
  };
  CHECK(kept_rows(keep(0.5, {}), 0, 0) == Ints{0, 1, 3, 6});  // norms 3, 1, 1, 2
  CHECK(kept_rows(keep(0.25, {}), 0, 0) == Ints{1, 3});
  CHECK(kept_rows(keep(0.125, {}), 0, 0) == Ints{1});  // rows 1 and 3 tie at norm 1
  CHECK(kept_rows(keep(0.5, {{"window", "2"}}), 0, 0) == Ints{1, 3, 6, 7});
  const auto skipped = keep(0.5, {{"skip_layers", "1"}}, 2);
  CHECK(kept_rows(skipped, 0, 0) == Ints{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(kept_rows(skipped, 1, 0) == Ints{0, 1, 3, 6});
}

TEST_CASE("knorm: decode mode stays within ceil(budget x tokens_seen) after every step") {
  check_decode_within_budget<KNorm>(0.25);
  check_decode_within_budget<KNorm>(0.5, {{"window", "2"}});
}

TEST_CASE("knorm: byte accounting") {
  auto g =
      engine::generate_greedy(tiny(), std::span(&prompts()[0], 1), no_eos(10), {}, make<KNorm>(0.25, kv::Mode::Prompt));
  check_bytes(g[0], 19, 19.0 / 49.0);
  g = engine::generate_greedy(tiny(), std::span(&prompts()[0], 1), no_eos(10), {}, make<KNorm>(0.25, kv::Mode::Decode));
  check_bytes(g[0], 13, decode_peak(0.25));
  // skip_layers=1: layer 0 keeps all 49 rows, layer 1 keeps 13 → bytes of (49 + 13)/2 rows per head.
  g = engine::generate_greedy(tiny(), std::span(&prompts()[0], 1), no_eos(10), {},
                              make<KNorm>(0.25, kv::Mode::Decode, {{"skip_layers", "1"}}));
  CHECK(g[0].memory.kv_bytes_end == (49 + 13) * 2 * 16 * 2 * 2);
}
