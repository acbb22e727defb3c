// adakv: Ada-KV's head-wise allocation against the numpy transcription of KVPress's AdaKVPress
// (scripts/golden/make_eviction_goldens.py), over the keydiff scorer: heads keep different row
// counts, each at least floor(alpha · C), the layer exactly kv_heads · C — and the rows are
// really gone: the measured bytes are the budget's.

#include <doctest/doctest.h>

#include "eviction_test_support.hpp"
#include "kvcanary/kv/adakv.hpp"

using namespace kvcanary;
using namespace kvcanary::test;

TEST_CASE("adakv: kept rows per head equal the goldens, heads differ, bytes are the budget's") {
  JsonFile g(test_data("kv/eviction_goldens.json"));
  int cases = 0;
  for (auto c : g.root["adakv"].get_array()) {
    const auto n = static_cast<std::size_t>(c["n"].get_int64().value());
    const auto d = static_cast<std::size_t>(c["head_dim"].get_int64().value());
    const double budget = c["budget"].get_double().value(), alpha = c["alpha"].get_double().value();
    std::vector<std::vector<float>> keys;
    for (auto k : c["keys"].get_array()) keys.push_back(float_list(k));
    kv::KvCache cache(1, keys.size(), d);
    std::vector<float> v(d, 0.0f);
    for (std::size_t h = 0; h < keys.size(); ++h)
      for (std::size_t r = 0; r < n; ++r) {
        v[0] = static_cast<float>(r);
        cache.head(0, h).append(&keys[h][r * d], v.data(), static_cast<std::int32_t>(r), d);
      }
    cache.advance(static_cast<std::int64_t>(n));
    auto p = kv::AdaKv::create(
        kv::PolicyOptions(budget, kv::Mode::Prompt, {{"scorer", "keydiff"}, {"alpha", kv::format_number(alpha)}}),
        ModelConfig{});
    CHECK(p.attention_rows(kv::StepKind::Prefill, n) == 0);
    p.after_step(cache, {}, kv::StepKind::Prefill);
    const std::size_t C = kv::eviction::budget_rows(budget, static_cast<std::int64_t>(n));
    std::size_t h = 0, rows = 0;
    for (auto k : c["kept"].get_array()) {
      const auto want = int_list(k);
      const auto& s = cache.head(0, h++);
      std::vector<std::int32_t> got;
      for (std::size_t r = 0; r < s.size(); ++r) got.push_back(static_cast<std::int32_t>(s.values[r * d]));
      CHECK(got == want);
      CHECK(s.size() >= static_cast<std::size_t>(std::floor(alpha * static_cast<double>(C) + 1e-9)));
      rows += s.size();
    }
    CHECK(rows == keys.size() * C);
    CHECK(p.stored_bytes(cache) == kv::fp16_kv_bytes(keys.size() * C, d));
    CHECK(cache.resident_bytes() ==
          keys.size() * C * (2 * d * sizeof(float) + sizeof(std::int32_t)));  // really evicted
    ++cases;
  }
  CHECK(cases == 3);
}

TEST_CASE("adakv: heads hold different row counts on the tiny model, identity, prompt only") {
  auto p = kv::AdaKv::create(kv::PolicyOptions(0.25, std::nullopt, {{"window", "4"}}), test::eviction::tiny().config());
  CHECK(p.identity() == "adakv(budget=0.25,mode=prompt,capacity=fixed,scorer=snapkv,alpha=0.2,window=4,kernel=7)");
  std::vector<kv::KvCache> caches;
  const auto g = engine::generate_greedy(test::eviction::tiny(), std::span(&test::eviction::prompts()[0], 1),
                                         test::eviction::no_eos(1), {}, p, &caches);
  std::size_t total = 0;
  bool differ = false;
  for (std::size_t l = 0; l < caches[0].layers(); ++l)
    for (std::size_t h = 0; h < caches[0].kv_heads(); ++h) {
      total += caches[0].head(l, h).size();
      differ = differ || caches[0].head(l, h).size() != caches[0].head(l, 0).size();
    }
  CHECK(differ);
  CHECK(total == caches[0].layers() * caches[0].kv_heads() * 10);  // C = ceil(0.25 · 40)
  CHECK(g[0].memory.kv_bytes_end == kv::fp16_kv_bytes(total, caches[0].head_dim()));
  CHECK_THROWS_WITH_AS(kv::AdaKv::create(kv::PolicyOptions(0.5, kv::Mode::Decode), ModelConfig{}),
                       doctest::Contains("prompt-only"), Error);
  CHECK_THROWS_WITH_AS(kv::AdaKv::create(kv::PolicyOptions(0.5, kv::Mode::Prompt, {{"scorer", "h2o"}}), ModelConfig{}),
                       doctest::Contains("scorer"), Error);
}
