// What a compressor's prompt step did to the cache, on the tiny model: the last query's attention
// mass on the evicted rows (checked against the rows each policy's rule names, recomputed here
// from the record), and the quantizers' K/V reconstruction error (checked against a direct
// recomputation and against the codes' precision order).

#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <vector>

#include "eviction_test_support.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/kv/cache_type_quant.hpp"
#include "kvcanary/kv/composed.hpp"
#include "kvcanary/kv/compression_signals.hpp"
#include "kvcanary/kv/full.hpp"
#include "kvcanary/kv/h2o.hpp"
#include "kvcanary/kv/registry.hpp"
#include "kvcanary/kv/streamingllm.hpp"

using namespace kvcanary;

namespace {

struct Prefilled {
  kv::KvCache cache;
  kv::AttentionRecord record, last_query;
};

// The tiny model with head_dim 32: the llama.cpp cache types code whole 32-value blocks per row.
model::Transformer<float>& tiny32() {
  static model::Transformer<float> m(io::load_hf_config(test::test_data("tiny/llama3_rope")),
                                     test::test_data("tiny/llama3_rope"), 2);
  return m;
}

// The prompt's prefill with the policy's record and the last query row's, before any policy.
Prefilled prefill(model::Transformer<float>& m, std::size_t policy_rows) {
  const auto& prompt = test::eviction::prompts()[0];
  Prefilled p{m.new_cache(), {}, {}};
  std::vector<model::RecordRequest> requests = {{&p.last_query, 1}};
  if (policy_rows) requests.push_back({&p.record, policy_rows});
  const model::Segment seg{&p.cache, std::span<const std::int32_t>(prompt), model::Logits::Last, requests};
  std::vector<float> logits;
  m.forward(std::span<const model::Segment>(&seg, 1), logits);
  return p;
}

template <class P>
kv::CompressionSignals signals_of(const P& policy, kv::KvCache* compressed_out = nullptr,
                                  Prefilled* prefilled_out = nullptr,
                                  model::Transformer<float>& m = test::eviction::tiny()) {
  const std::size_t n = test::eviction::prompts()[0].size();
  Prefilled p = prefill(m, policy.attention_rows(kv::StepKind::Prefill, n));
  kv::KvCache compressed = p.cache;
  P stepped = policy;
  stepped.after_step(compressed, p.record, kv::StepKind::Prefill);
  const auto s = kv::compression_signals(p.cache, p.record, p.last_query, policy, compressed);
  if (compressed_out) *compressed_out = compressed;
  if (prefilled_out) *prefilled_out = p;
  return s;
}

// Mean over (layer, query head) of the last query's mass on the rows `evicted(l, kvh)` names.
template <class Evicted>
double expected_mass(const Prefilled& p, Evicted&& evicted) {
  const auto& rec = p.last_query;
  double total = 0;
  for (std::size_t l = 0; l < rec.num_layers; ++l)
    for (std::size_t h = 0; h < rec.num_heads; ++h) {
      const std::set<std::size_t> gone = evicted(l, h / rec.group);
      for (std::size_t r : gone) total += rec.mass(l, h)[r];
    }
  return total / double(rec.num_layers * rec.num_heads);
}

}  // namespace

TEST_CASE("compression signals: the full cache evicts nothing and reconstructs exactly") {
  const auto s = signals_of(kv::FullCache{});
  CHECK_FALSE(s.evicted_attention.has_value());
  REQUIRE(s.kv_rel_error_k.has_value());
  CHECK(*s.kv_rel_error_k == 0.0);
  CHECK(*s.kv_rel_error_v == 0.0);
}

TEST_CASE(
    "compression signals: StreamingLLM's evicted mass is the last query's mass between the sinks and the window") {
  const auto& config = test::eviction::tiny().config();
  // 40 rows, budget 0.5 (fixed capacity): sinks 0..3 and the newest 16 (24..39) stay.
  const auto policy = kv::StreamingLlm::create(kv::PolicyOptions(0.5, kv::Mode::Prompt, {{"sinks", "4"}}), config);
  Prefilled p{test::eviction::tiny().new_cache(), {}, {}};
  const auto s = signals_of(policy, nullptr, &p);
  REQUIRE(s.evicted_attention.has_value());
  CHECK_FALSE(s.kv_rel_error_k.has_value());
  const double expected = expected_mass(p, [](std::size_t, std::size_t) {
    std::set<std::size_t> gone;
    for (std::size_t r = 4; r < 24; ++r) gone.insert(r);
    return gone;
  });
  CHECK(*s.evicted_attention == doctest::Approx(expected).epsilon(1e-9));
  CHECK(*s.evicted_attention > 0.0);
  CHECK(*s.evicted_attention < 1.0);
  // Keeping everything evicts no mass.
  const auto all = kv::StreamingLlm::create(kv::PolicyOptions(1.0, kv::Mode::Prompt), config);
  CHECK(*signals_of(all).evicted_attention == 0.0);
}

TEST_CASE("compression signals: H2O's evicted mass is the mass on the positions it no longer holds") {
  const auto& config = test::eviction::tiny().config();
  const auto policy = kv::H2o::create(kv::PolicyOptions(0.25, kv::Mode::Prompt), config);
  kv::KvCache compressed = test::eviction::tiny().new_cache();
  Prefilled p{test::eviction::tiny().new_cache(), {}, {}};
  const auto s = signals_of(policy, &compressed, &p);
  REQUIRE(s.evicted_attention.has_value());
  // H2O keeps positions as they are: what left is what the compressed head no longer lists.
  const double expected = expected_mass(p, [&](std::size_t l, std::size_t kvh) {
    std::set<std::size_t> gone;
    const auto& u = p.cache.head(l, kvh);
    const auto& c = compressed.head(l, kvh);
    const std::set<std::int32_t> kept(c.positions.begin(), c.positions.end());
    for (std::size_t r = 0; r < u.size(); ++r)
      if (!kept.count(u.positions[r])) gone.insert(r);
    return gone;
  });
  CHECK(*s.evicted_attention == doctest::Approx(expected).epsilon(1e-9));
  CHECK(*s.evicted_attention > 0.0);
}

TEST_CASE("compression signals: reconstruction error of the cache types, K and V, ordered by precision") {
  const auto& config = tiny32().config();
  auto error_of = [&](const char* type) {
    kv::KvCache compressed = tiny32().new_cache();
    Prefilled p{tiny32().new_cache(), {}, {}};
    const auto policy = kv::CacheTypeQuant::create(type, kv::PolicyOptions(1.0, kv::Mode::Prompt), config);
    const auto s = signals_of(policy, &compressed, &p, tiny32());
    CHECK_FALSE(s.evicted_attention.has_value());
    REQUIRE(s.kv_rel_error_k.has_value());
    // Recomputed directly: every stored row against the same row before coding.
    double dk = 0, nk = 0;
    const std::size_t D = compressed.head_dim();
    for (std::size_t l = 0; l < compressed.layers(); ++l)
      for (std::size_t h = 0; h < compressed.kv_heads(); ++h) {
        const auto k = compressed.head(l, h).materialize_keys(D);
        const auto& ref = p.cache.head(l, h).keys;
        REQUIRE(k.size() == ref.size());
        for (std::size_t i = 0; i < k.size(); ++i)
          dk += (double(k[i]) - ref[i]) * (double(k[i]) - ref[i]), nk += double(ref[i]) * ref[i];
      }
    CHECK(*s.kv_rel_error_k == doctest::Approx(std::sqrt(dk / nk)).epsilon(1e-9));
    return s;
  };
  const auto q8 = error_of("q8_0"), q4 = error_of("q4_0");
  CHECK(*q8.kv_rel_error_k > 0.0);
  CHECK(*q8.kv_rel_error_k < 0.02);  // 8-bit blocks: well under 1 % of the norm per element on average
  CHECK(*q8.kv_rel_error_v > 0.0);
  CHECK(*q4.kv_rel_error_k > *q8.kv_rel_error_k);
  CHECK(*q4.kv_rel_error_v > *q8.kv_rel_error_v);
}

TEST_CASE(
    "compression signals: EVICTION+QUANTIZER reports the eviction's mass and the quantizer's error on the kept rows") {
  const auto& config = tiny32().config();
  const auto composed =
      kv::Composed::create("streamingllm+q8_0", kv::PolicyOptions(0.5, kv::Mode::Prompt, {{"sinks", "4"}}), config);
  const auto alone = kv::StreamingLlm::create(kv::PolicyOptions(0.5, kv::Mode::Prompt, {{"sinks", "4"}}), config);
  const auto s = signals_of(composed, nullptr, nullptr, tiny32());
  REQUIRE(s.evicted_attention.has_value());
  CHECK(*s.evicted_attention == *signals_of(alone, nullptr, nullptr, tiny32()).evicted_attention);
  REQUIRE(s.kv_rel_error_k.has_value());
  CHECK(*s.kv_rel_error_k > 0.0);
  CHECK(*s.kv_rel_error_k < 0.02);  // against the re-rotated kept keys, not against rows it never held
  CHECK(*s.kv_rel_error_v > 0.0);
  CHECK(*s.kv_rel_error_v < 0.02);
  // Through AnyPolicyOf, as the sweep holds it: the same numbers.
  const auto any = kv::with_policy_from<kv::AllPolicies>(
      "streamingllm+q8_0", kv::PolicyOptions(0.5, kv::Mode::Prompt, {{"sinks", "4"}}), config,
      [](auto p) { return kv::AnyPolicyOf<kv::AllPolicies>{p}; });
  const auto via_any = signals_of(any, nullptr, nullptr, tiny32());
  CHECK(via_any.evicted_attention == s.evicted_attention);
  CHECK(via_any.kv_rel_error_k == s.kv_rel_error_k);
}
