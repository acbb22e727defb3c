// kvzip: KVzip's selection against the numpy transcription of KVPress's KVzipPress
// (scripts/golden/make_eviction_goldens.py: the reconstruction queries' softmax, its maximum over
// queries and group, one threshold over every layer and head), and the engine's reconstruction
// pass (kv/policy.hpp step 1c) on the tiny model: the forward pass's max-over-rows record equals
// the per-row records' maximum, budget 1 is the full cache, layers and heads keep different
// counts that add up to the budget, the question is never evicted, and the pass leaves the cache
// as it found it.

#include <doctest/doctest.h>

#include <algorithm>

#include "eviction_test_support.hpp"
#include "kvcanary/engine/batch_decode.hpp"
#include "kvcanary/kv/h2o.hpp"
#include "kvcanary/kv/kvzip.hpp"

using namespace kvcanary;
using namespace kvcanary::test;
using namespace kvcanary::test::eviction;

TEST_CASE("kvzip: kept rows per layer and head equal the goldens, one threshold or per layer") {
  JsonFile g(test_data("kv/eviction_goldens.json"));
  int cases = 0;
  for (auto c : g.root["kvzip"].get_array()) {
    const auto n = static_cast<std::size_t>(c["n"].get_int64().value());
    const auto n_sink = static_cast<std::size_t>(c["n_sink"].get_int64().value());
    const auto group = static_cast<std::size_t>(c["group"].get_int64().value());
    const auto rows = static_cast<std::size_t>(c["rows"].get_int64().value());
    const double budget = c["budget"].get_double().value();
    std::vector<std::vector<float>> masses;  // (layer · query heads + head)
    std::size_t layers = 0;
    for (auto layer : c["masses"].get_array()) {
      ++layers;
      for (auto m : layer.get_array()) masses.push_back(float_list(m));
    }
    const std::size_t heads = masses.size() / layers, kv_heads = heads / group;
    kv::AttentionRecord record = synthetic_record(rows, layers, heads, group, masses);
    record.max_over_rows = true;
    const std::size_t C = kv::eviction::budget_rows(budget, static_cast<std::int64_t>(n));
    for (const bool layerwise : {false, true}) {
      CAPTURE(layerwise);
      kv::KvCache cache = synthetic_cache(layers, kv_heads, 4, n);
      auto p = kv::KvZip::create(
          kv::PolicyOptions(budget, kv::Mode::Prompt,
                            {{"n_sink", std::to_string(n_sink)}, {"layerwise", layerwise ? "1" : "0"}}),
          ModelConfig{});
      p.after_step(cache, record, kv::StepKind::Prefill);
      std::size_t l = 0, total = 0;
      for (auto layer : c[layerwise ? "kept_layerwise" : "kept"].get_array()) {
        std::size_t h = 0;
        for (auto k : layer.get_array()) {
          std::vector<int> want;
          for (auto x : k.get_array()) want.push_back(static_cast<int>(x.get_int64().value()));
          const std::vector<int> got = kept_rows(cache, l, h);
          CHECK(got == want);
          total += got.size();
          ++h;
        }
        ++l;
      }
      CHECK(total == layers * kv_heads * C);
      CHECK(p.stored_bytes(cache) == kv::fp16_kv_bytes(total, 4));
    }
    ++cases;
  }
  CHECK(cases == 3);
}

TEST_CASE("kvzip: the forward pass's max-over-rows record is each row's own record's maximum") {
  auto& m = tiny();
  const std::vector<std::int32_t> tokens = prompts()[0];
  const std::size_t n = tokens.size(), R = 12;
  kv::AttentionRecord max_record;
  {
    kv::KvCache cache = m.new_cache();
    const model::RecordRequest request{&max_record, R, false, true};
    const model::Segment seg{&cache, std::span(tokens), model::Logits::None,
                             std::span<const model::RecordRequest>(&request, 1)};
    std::vector<float> unused;
    m.forward(std::span<const model::Segment>(&seg, 1), unused);
  }
  REQUIRE(max_record.max_over_rows);
  REQUIRE(max_record.rows == R);
  std::vector<std::vector<float>> want(max_record.per_layer_head.size(), std::vector<float>(n, 0.0f));
  for (std::size_t i = n - R; i < n; ++i) {  // row i alone: the last row of a pass over tokens[0, i]
    kv::AttentionRecord one;
    kv::KvCache cache = m.new_cache();
    const model::RecordRequest request{&one, 1};
    const model::Segment seg{&cache, std::span(tokens).first(i + 1), model::Logits::None,
                             std::span<const model::RecordRequest>(&request, 1)};
    std::vector<float> unused;
    m.forward(std::span<const model::Segment>(&seg, 1), unused);
    for (std::size_t k = 0; k < want.size(); ++k)
      for (std::size_t j = 0; j < one.per_layer_head[k].size(); ++j)
        want[k][j] = std::max(want[k][j], one.per_layer_head[k][j]);
  }
  for (std::size_t k = 0; k < want.size(); ++k) {
    CAPTURE(k);
    CHECK(max_record.per_layer_head[k] == want[k]);  // the same probabilities, the max exact
  }
}

TEST_CASE("kvzip: budget 1 is the full cache, in both scopes") {
  check_budget_one_is_full<kv::KvZip>({});
  check_budget_one_is_full<kv::KvZip>({{"layerwise", "1"}});
}

TEST_CASE("kvzip: on the tiny model layers and heads keep different counts adding up to the budget, question kept") {
  auto& m = tiny();
  const std::vector<std::vector<std::int32_t>> one = {prompts()[0]};  // 40 tokens: 30 context + 10 question
  std::vector<kv::KvCache> ref, caches;
  engine::generate_greedy(m, one, no_eos(6), {}, kv::FullCache{}, &ref);
  auto opt = no_eos(6);
  opt.question_tokens = {10};
  const auto p = kv::KvZip::create(kv::PolicyOptions(0.25, std::nullopt), m.config());
  CHECK(p.identity() == "kvzip(budget=0.25,mode=prompt,capacity=fixed,n_sink=4,layerwise=0)");
  const auto g = engine::generate_greedy(m, one, opt, {}, p, &caches);
  const kv::KvCache& c = caches[0];
  const std::size_t C = kv::eviction::budget_rows(0.25, 30), D = c.head_dim();
  std::size_t context_rows = 0;
  std::vector<std::size_t> counts;
  for (std::size_t l = 0; l < c.layers(); ++l)
    for (std::size_t h = 0; h < c.kv_heads(); ++h) {
      const kv::HeadStore& s = c.head(l, h);
      REQUIRE(s.size() >= 15);
      const std::size_t kept = s.size() - 15;  // the 10 question rows and 5 generated rows follow the context's
      counts.push_back(kept);
      context_rows += kept;
      for (std::size_t r = 0; r < 4; ++r) CHECK(s.positions[r] == static_cast<std::int32_t>(r));  // the sinks
      for (std::size_t r = kept; r + 1 < s.size(); ++r) CHECK(s.positions[r + 1] == s.positions[r] + 1);
      if (l > 0) continue;
      // The question's rows stay (layer 0's K/V depend on the token alone, so they are the full cache's).
      const auto& f = ref[0].head(l, h);
      const std::vector<float> got(s.values.begin() + static_cast<std::ptrdiff_t>(kept * D),
                                   s.values.begin() + static_cast<std::ptrdiff_t>((kept + 10) * D));
      const std::vector<float> want(f.values.begin() + static_cast<std::ptrdiff_t>(30 * D),
                                    f.values.begin() + static_cast<std::ptrdiff_t>(40 * D));
      CHECK(got == want);
    }
  CHECK(context_rows == c.layers() * c.kv_heads() * C);
  CHECK(std::adjacent_find(counts.begin(), counts.end(), std::not_equal_to<>()) != counts.end());  // not uniform
  CHECK(g[0].memory.kv_bytes_end == kv::fp16_kv_bytes(context_rows + c.layers() * c.kv_heads() * 15, D));
}

TEST_CASE("kvzip: the reconstruction tokens, the pass's cache copy, and the errors") {
  auto& m = tiny();
  ModelConfig config = m.config();
  config.repeat_instruction = {7, 8, 9};
  const auto p = kv::KvZip::create(kv::PolicyOptions(0.5, std::nullopt, {{"n_sink", "2"}}), config);
  const std::vector<std::int32_t> context = {1, 2, 3, 4, 5};
  CHECK(kv::reconstruction_tokens(p, std::span(context)) == std::vector<std::int32_t>{7, 8, 9, 3, 4, 5});
  CHECK(kv::reconstruction_tokens(kv::H2o::create(kv::PolicyOptions(0.5, std::nullopt), config), std::span(context))
            .empty());
  // The pass runs on a copy: the cache it scored is unchanged.
  kv::KvCache cache = m.new_cache();
  std::vector<float> logits;
  const model::Segment seg{&cache, std::span(prompts()[0]), model::Logits::Last};
  m.forward(std::span<const model::Segment>(&seg, 1), logits);
  const kv::KvCache before = cache;
  const auto record = engine::reconstruction_record(m, cache, std::span(prompts()[1]));
  CHECK(record.max_over_rows);
  CHECK(record.rows == prompts()[1].size());
  CHECK(cache.head(0, 0).keys == before.head(0, 0).keys);
  CHECK(cache.tokens_seen() == before.tokens_seen());
  // Without the pass (a caller that skips step 1c), kvzip refuses instead of selecting at random.
  auto q = kv::KvZip::create(kv::PolicyOptions(0.25, std::nullopt), config);
  CHECK_THROWS_WITH_AS(q.after_step(cache, kv::AttentionRecord{}, kv::StepKind::Prefill),
                       doctest::Contains("reconstruction pass"), Error);
  CHECK_THROWS_WITH_AS(kv::KvZip::create(kv::PolicyOptions(0.5, kv::Mode::Decode), config),
                       doctest::Contains("prompt-only"), Error);
}
