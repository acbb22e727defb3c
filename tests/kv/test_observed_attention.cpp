// observed_attention: scores and selections against the numpy transcription of KVPress's
// ObservedAttentionPress (scripts/golden/make_eviction_goldens.py), GQA group 2, ties; the shared
// eviction semantics are in tests/kv/test_eviction_semantics.cpp.

#include <doctest/doctest.h>

#include "eviction_test_support.hpp"
#include "kvcanary/kv/observed_attention.hpp"

using namespace kvcanary;
using namespace kvcanary::test;
using kvcanary::test::eviction::kept_rows;
using kvcanary::test::eviction::synthetic_cache;
using kvcanary::test::eviction::synthetic_record;

TEST_CASE("observed_attention: scores and kept rows equal the numpy goldens (GQA group mean, ties to the lowest row)") {
  JsonFile g(test_data("kv/eviction_goldens.json"));
  int cases = 0;
  for (auto c : g.root["observed_attention"].get_array()) {
    const auto n = static_cast<std::size_t>(c["n"].get_int64().value());
    const auto heads = static_cast<std::size_t>(c["heads"].get_int64().value());
    const auto group = static_cast<std::size_t>(c["group"].get_int64().value());
    const double budget = c["budget"].get_double().value();
    std::vector<std::vector<float>> masses;
    for (auto m : c["masses"].get_array()) masses.push_back(float_list(m));
    const auto record = synthetic_record(n, 1, heads, group, masses);
    std::vector<std::vector<float>> want;
    for (auto s : c["scores"].get_array()) want.push_back(float_list(s));
    const std::size_t kvh = heads / group;
    for (std::size_t h = 0; h < kvh; ++h) {
      const auto got = kv::ObservedAttention::scores(record, 0, h, n);
      for (std::size_t j = 0; j < n; ++j) CHECK(got[j] == doctest::Approx(want[h][j]).epsilon(1e-6));
    }
    auto cache = synthetic_cache(1, kvh, 4, n);
    auto p = kv::ObservedAttention::create(kv::PolicyOptions(budget, kv::Mode::Prompt), ModelConfig{});
    CHECK(p.attention_rows(kv::StepKind::Prefill, n) == n);
    p.after_step(cache, record, kv::StepKind::Prefill);
    std::size_t h = 0;
    for (auto k : c["kept"].get_array()) {
      const auto want_rows = int_list(k);
      const auto got = kept_rows(cache, 0, h++);
      CHECK(std::vector<std::int32_t>(got.begin(), got.end()) == want_rows);
    }
    ++cases;
  }
  CHECK(cases == 3);
}

TEST_CASE("observed_attention: prompt only, identity") {
  CHECK(kv::ObservedAttention::create(kv::PolicyOptions(0.5, std::nullopt), ModelConfig{}).identity() ==
        "observed_attention(budget=0.5,mode=prompt,capacity=fixed)");
  CHECK_THROWS_WITH_AS(kv::ObservedAttention::create(kv::PolicyOptions(0.5, kv::Mode::Decode), ModelConfig{}),
                       doctest::Contains("prompt-only"), Error);
}
