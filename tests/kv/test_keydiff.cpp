// keydiff: scores and selections against the numpy transcription of KVPress's KeyDiffPress
// (scripts/golden/make_eviction_goldens.py → tests/data/kv/eviction_goldens.json), plus the
// shared eviction semantics (tests/kv/test_eviction_semantics.cpp).

#include <doctest/doctest.h>

#include "eviction_test_support.hpp"
#include "kvcanary/kv/keydiff.hpp"

using namespace kvcanary;
using namespace kvcanary::test;

namespace {

// A cache of one layer whose head h holds `keys[h]` ([n, d]); value[0] of a row is its index.
kv::KvCache cache_with_keys(const std::vector<std::vector<float>>& keys, std::size_t n, std::size_t d) {
  kv::KvCache c(1, keys.size(), d);
  std::vector<float> v(d, 0.0f);
  for (std::size_t h = 0; h < keys.size(); ++h)
    for (std::size_t r = 0; r < n; ++r) {
      v[0] = static_cast<float>(r);
      c.head(0, h).append(&keys[h][r * d], v.data(), static_cast<std::int32_t>(r), d);
    }
  c.advance(static_cast<std::int64_t>(n));
  return c;
}

std::vector<int> rows_of(const kv::HeadStore& s, std::size_t d) {
  std::vector<int> out;
  for (std::size_t r = 0; r < s.size(); ++r) out.push_back(static_cast<int>(s.values[r * d]));
  return out;
}

}  // namespace

TEST_CASE("keydiff: scores and kept rows equal the numpy goldens (per head, ties to the lowest row)") {
  JsonFile g(test_data("kv/eviction_goldens.json"));
  int cases = 0;
  for (auto c : g.root["keydiff"].get_array()) {
    const auto n = static_cast<std::size_t>(c["n"].get_int64().value());
    const auto d = static_cast<std::size_t>(c["head_dim"].get_int64().value());
    const double budget = c["budget"].get_double().value();
    std::vector<std::vector<float>> keys;
    std::vector<std::vector<std::int32_t>> kept;
    for (auto h : c["heads"].get_array()) {
      keys.push_back(float_list(h["keys"]));
      const std::vector<float> want = float_list(h["scores"]);
      const std::vector<float> got = kv::KeyDiff::scores(keys.back(), n, d);
      REQUIRE(got.size() == want.size());
      for (std::size_t j = 0; j < n; ++j) CHECK(got[j] == doctest::Approx(want[j]).epsilon(1e-6));
      kept.push_back(int_list(h["kept"]));
    }
    auto cache = cache_with_keys(keys, n, d);
    auto p = kv::KeyDiff::create(kv::PolicyOptions(budget, kv::Mode::Prompt), ModelConfig{});
    p.after_step(cache, {}, kv::StepKind::Prefill);
    for (std::size_t h = 0; h < keys.size(); ++h) {
      const auto rows = rows_of(cache.head(0, h), d);
      CHECK(std::vector<std::int32_t>(rows.begin(), rows.end()) == kept[h]);
    }
    ++cases;
  }
  CHECK(cases == 3);
}

TEST_CASE("keydiff: identity, no attention recorded, both modes") {
  const auto p = kv::KeyDiff::create(kv::PolicyOptions(0.5, std::nullopt), ModelConfig{});
  CHECK(p.identity() == "keydiff(budget=0.5,mode=prompt,capacity=fixed)");
  CHECK(p.attention_rows(kv::StepKind::Prefill, 40) == 0);
  CHECK(kv::KeyDiff::create(kv::PolicyOptions(0.5, kv::Mode::Decode), ModelConfig{}).common.mode == kv::Mode::Decode);
}
