// pyramidkv: the per-layer budgets of KVPress's PyramidKVPress.get_layer_budget and the rows
// kept per layer and KV head, against scripts/golden/make_eviction_goldens.py; layers hold
// different row counts and the measured bytes show it.

#include <doctest/doctest.h>

#include "eviction_test_support.hpp"
#include "kvcanary/kv/pyramidkv.hpp"

using namespace kvcanary;
using namespace kvcanary::test;
using kvcanary::test::eviction::kept_rows;
using kvcanary::test::eviction::synthetic_cache;
using kvcanary::test::eviction::synthetic_record;

TEST_CASE("pyramidkv: layer budgets equal KVPress's get_layer_budget (numpy goldens)") {
  JsonFile g(test_data("kv/eviction_goldens.json"));
  int cases = 0;
  for (auto c : g.root["pyramidkv"]["budgets"].get_array()) {
    const double C = c["C"].get_double().value();
    const auto n = static_cast<std::size_t>(c["n"].get_int64().value());
    const auto w = static_cast<std::size_t>(c["window"].get_int64().value());
    const auto L = static_cast<std::size_t>(c["layers"].get_int64().value());
    const double beta = c["beta"].get_double().value();
    const auto want = int_list(c["k"]);
    for (std::size_t l = 0; l < L; ++l)
      CHECK(kv::PyramidKv::layer_budget(l, L, C, n, w, beta) == static_cast<std::size_t>(want[l]));
    ++cases;
  }
  CHECK(cases == 7);
}

TEST_CASE("pyramidkv: kept rows per layer and head equal the goldens, bytes are the layers' sum") {
  JsonFile g(test_data("kv/eviction_goldens.json"));
  auto c = g.root["pyramidkv"]["selections"].at(0).value();
  const auto n = static_cast<std::size_t>(c["n"].get_int64().value());
  const auto L = static_cast<std::size_t>(c["layers"].get_int64().value());
  const auto kvh = static_cast<std::size_t>(c["kv_heads"].get_int64().value());
  const auto group = static_cast<std::size_t>(c["group"].get_int64().value());
  std::vector<std::vector<float>> masses;
  for (auto m : c["masses"].get_array()) masses.push_back(float_list(m));
  const std::map<std::string, std::string> params = {{"window", std::to_string(c["window"].get_int64().value())},
                                                     {"kernel", std::to_string(c["kernel"].get_int64().value())},
                                                     {"beta", std::to_string(c["beta"].get_double().value())}};
  auto p = kv::PyramidKv::create(kv::PolicyOptions(c["budget"].get_double().value(), kv::Mode::Prompt, params),
                                 ModelConfig{});
  auto cache = synthetic_cache(L, kvh, 4, n);
  p.after_step(cache, synthetic_record(2, L, kvh * group, group, masses), kv::StepKind::Prefill);
  std::size_t i = 0, rows = 0;
  for (auto k : c["kept"].get_array()) {
    const auto want = int_list(k);
    const auto got = kept_rows(cache, i / kvh, i % kvh);
    CHECK(std::vector<std::int32_t>(got.begin(), got.end()) == want);
    rows += want.size();
    ++i;
  }
  CHECK(i == L * kvh);
  CHECK(cache.head(0, 0).size() != cache.head(1, 0).size());  // the pyramid: 12 rows low, 4 high
  CHECK(p.stored_bytes(cache) == kv::fp16_kv_bytes(rows, 4));
  CHECK(rows == L * kvh * kv::eviction::budget_rows(0.25, static_cast<std::int64_t>(n)));  // (12 + 4) / 2 = C = 8
}

TEST_CASE("pyramidkv: prompt only, identity") {
  CHECK(kv::PyramidKv::create(kv::PolicyOptions(0.5, std::nullopt), ModelConfig{}).identity() ==
        "pyramidkv(budget=0.5,mode=prompt,capacity=fixed,window=32,kernel=7,beta=20)");
  CHECK_THROWS_WITH_AS(kv::PyramidKv::create(kv::PolicyOptions(0.5, kv::Mode::Decode), ModelConfig{}),
                       doctest::Contains("prompt-only"), Error);
}
