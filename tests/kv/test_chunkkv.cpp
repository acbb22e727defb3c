// chunkkv: whole chunks kept by their mean keydiff score over the layer's heads, against the
// numpy transcription of KVPress's ChunkKVPress (scripts/golden/make_eviction_goldens.py),
// including a partial last chunk and all-tied chunks.

#include <doctest/doctest.h>

#include "eviction_test_support.hpp"
#include "kvcanary/kv/chunkkv.hpp"

using namespace kvcanary;
using namespace kvcanary::test;

TEST_CASE("chunkkv: kept rows equal the goldens, the same rows in every head of the layer") {
  JsonFile g(test_data("kv/eviction_goldens.json"));
  int cases = 0;
  for (auto c : g.root["chunkkv"].get_array()) {
    const auto n = static_cast<std::size_t>(c["n"].get_int64().value());
    const auto d = static_cast<std::size_t>(c["head_dim"].get_int64().value());
    const auto chunk = c["chunk_length"].get_int64().value();
    const double budget = c["budget"].get_double().value();
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
    auto p = kv::ChunkKv::create(kv::PolicyOptions(budget, kv::Mode::Prompt, {{"chunk_length", std::to_string(chunk)}}),
                                 ModelConfig{});
    p.after_step(cache, {}, kv::StepKind::Prefill);
    const auto want = int_list(c["kept"]);
    for (std::size_t h = 0; h < keys.size(); ++h) {
      const auto& s = cache.head(0, h);
      std::vector<std::int32_t> got;
      for (std::size_t r = 0; r < s.size(); ++r) got.push_back(static_cast<std::int32_t>(s.values[r * d]));
      CHECK(got == want);
    }
    CHECK(p.stored_bytes(cache) == kv::fp16_kv_bytes(keys.size() * want.size(), d));
    ++cases;
  }
  CHECK(cases == 3);
}

TEST_CASE("chunkkv: identity, prompt only, scorer checked") {
  CHECK(kv::ChunkKv::create(kv::PolicyOptions(0.5, std::nullopt), ModelConfig{}).identity() ==
        "chunkkv(budget=0.5,mode=prompt,capacity=fixed,chunk_length=20,scorer=keydiff)");
  CHECK_THROWS_WITH_AS(kv::ChunkKv::create(kv::PolicyOptions(0.5, kv::Mode::Decode), ModelConfig{}),
                       doctest::Contains("prompt-only"), Error);
  CHECK_THROWS_WITH_AS(
      kv::ChunkKv::create(kv::PolicyOptions(0.5, kv::Mode::Prompt, {{"scorer", "h2o"}}), ModelConfig{}),
      doctest::Contains("scorer"), Error);
}
