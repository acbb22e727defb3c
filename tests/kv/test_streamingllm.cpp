// StreamingLLM: sinks + recent window, keys re-rotated to contiguous cache positions.

#include <doctest/doctest.h>

#include <cmath>
#include <numeric>

#include "eviction_test_support.hpp"
#include "kvcanary/kv/streamingllm.hpp"
#include "kvcanary/ops/rope.hpp"

using namespace kvcanary;
using namespace kvcanary::test::eviction;
using kv::StreamingLlm;

namespace {

// The pre-RoPE key of a stored key rotated to position p: R(−p)·k, in double.
std::vector<float> unrotate(const float* k, std::size_t d, std::int64_t p, const std::vector<float>& inv) {
  std::vector<float> out(k, k + d);
  const std::size_t half = d / 2;
  for (std::size_t i = 0; i < half; ++i) {
    // The forward pass's angle, fp32 product as rope.hpp computes it, negated.
    const double a = -static_cast<double>(static_cast<float>(p) * inv[i]);
    const double c = std::cos(a), s = std::sin(a);
    out[i] = static_cast<float>(k[i] * c - k[i + half] * s);
    out[i + half] = static_cast<float>(k[i + half] * c + k[i] * s);
  }
  return out;
}

std::vector<float> query(std::size_t d, std::int64_t pos, ops::Rope& rope) {
  std::vector<float> q(d);
  for (std::size_t i = 0; i < d; ++i) q[i] = std::sin(0.7f * static_cast<float>(i) + 0.3f);
  rope.apply(q.data(), 1, pos);
  return q;
}

// For every layer and KV head, the scores of a query at the next position against the stored
// keys, and against the original pre-RoPE keys (from `reference`, rotated to text index
// `text_index[i]`) rotated afresh to cache slot i. Returns the largest difference.
double worst_score_gap(const kv::KvCache& cache, const kv::KvCache& reference,
                       const std::vector<std::int64_t>& text_index, std::size_t layers) {
  const auto& cfg = tiny().config();
  const auto inv = ops::rope_inverse_frequencies(cfg);
  ops::Rope rope(cfg);
  const std::size_t D = cache.head_dim();
  const auto q = query(D, cache.next_position(), rope);
  double worst = 0;
  for (std::size_t l = 0; l < layers; ++l)
    for (std::size_t h = 0; h < cache.kv_heads(); ++h) {
      const auto& s = cache.head(l, h);
      REQUIRE(s.size() == text_index.size());
      for (std::size_t i = 0; i < s.size(); ++i) {
        CHECK(s.positions[i] == static_cast<std::int32_t>(i));
        auto ref =
            unrotate(&reference.head(l, h).keys[static_cast<std::size_t>(text_index[i]) * D], D, text_index[i], inv);
        rope.apply(ref.data(), 1, static_cast<std::int64_t>(i));
        double a = 0, b = 0;
        for (std::size_t d = 0; d < D; ++d) {
          a += static_cast<double>(q[d]) * s.keys[i * D + d];
          b += static_cast<double>(q[d]) * ref[d];
        }
        worst = std::max(worst, std::abs(a - b));
      }
    }
  return worst;
}

}  // namespace

TEST_CASE("streamingllm: identity string and parameters") {
  CHECK(make<StreamingLlm>(0.25, kv::Mode::Prompt).identity() ==
        "streamingllm(budget=0.25,mode=prompt,capacity=seen,sinks=4)");
  CHECK(make<StreamingLlm>(0.5, kv::Mode::Decode, {{"sinks", "2"}}).identity() ==
        "streamingllm(budget=0.5,mode=decode,capacity=seen,sinks=2)");
  CHECK_THROWS(make<StreamingLlm>(0.5, kv::Mode::Decode, {{"sink", "2"}}));
  CHECK_THROWS(make<StreamingLlm>(0.5, kv::Mode::Decode, {{"sinks", "-1"}}));
}

TEST_CASE("streamingllm: budget 1 is bit-identical to full in both modes") { check_budget_one_is_full<StreamingLlm>(); }

TEST_CASE("streamingllm: keeps the sinks and the newest rows, positions 0..n-1") {
  auto p = make<StreamingLlm>(0.5, kv::Mode::Prompt, {{"sinks", "2"}});
  kv::KvCache c = synthetic_cache(2, 2, 16, 10);
  p.after_step(c, {}, kv::StepKind::Prefill);
  for (std::size_t l = 0; l < 2; ++l)
    for (std::size_t h = 0; h < 2; ++h) {
      CHECK(kept_rows(c, l, h) == std::vector<int>{0, 1, 7, 8, 9});  // ceil(0.5·10) = 5 = 2 sinks + 3 recent
      CHECK(positions(c.head(l, h)) == std::vector<std::int32_t>{0, 1, 2, 3, 4});
    }
  CHECK(c.next_position() == 5);
  CHECK(c.tokens_seen() == 10);

  // The sinks are protected even when the budget is smaller.
  auto tight = make<StreamingLlm>(0.1, kv::Mode::Prompt, {{"sinks", "2"}});
  kv::KvCache c2 = synthetic_cache(1, 1, 16, 10);
  tight.after_step(c2, {}, kv::StepKind::Prefill);
  CHECK(kept_rows(c2, 0, 0) == std::vector<int>{0, 1});

  // No sinks: a pure recent window.
  auto window = make<StreamingLlm>(0.3, kv::Mode::Prompt, {{"sinks", "0"}});
  kv::KvCache c3 = synthetic_cache(1, 1, 16, 10);
  window.after_step(c3, {}, kv::StepKind::Prefill);
  CHECK(kept_rows(c3, 0, 0) == std::vector<int>{7, 8, 9});

  // Prompt mode does nothing after a decode step; decode mode evicts again.
  kv::KvCache c4 = synthetic_cache(1, 1, 16, 10);
  c4.advance(6);  // 16 tokens seen, 10 stored: ceil(0.5·16) = 8
  p.after_step(c4, {}, kv::StepKind::Decode);
  CHECK(c4.head(0, 0).size() == 10);
  auto d = make<StreamingLlm>(0.5, kv::Mode::Decode, {{"sinks", "2"}});
  d.after_step(c4, {}, kv::StepKind::Decode);
  CHECK(kept_rows(c4, 0, 0) == std::vector<int>{0, 1, 4, 5, 6, 7, 8, 9});
  CHECK(c4.next_position() == 8);
}

TEST_CASE("streamingllm: re-rotated keys score like original keys placed at contiguous positions") {
  auto& m = tiny();
  const auto& prompt = prompts()[0];  // 40 tokens
  std::vector<float> logits;

  // Prompt mode: one eviction after the prefill; ceil(0.25·40) = 10 rows = 4 sinks + 6 recent.
  kv::KvCache full = m.new_cache(), comp = m.new_cache();
  model::Segment fs{&full, prompt, model::Logits::Last};
  m.forward(std::span<const model::Segment>(&fs, 1), logits);
  auto p = make<StreamingLlm>(0.25, kv::Mode::Prompt);
  StreamingLlm* pp = &p;
  std::vector<model::Segment> segs = {{&comp, prompt, model::Logits::Last}};
  engine::forward_with_policies(m, segs, std::span<StreamingLlm* const>(&pp, 1), kv::StepKind::Prefill, logits);
  CHECK(comp.next_position() == 10);
  CHECK(comp.tokens_seen() == 40);
  const std::vector<std::int64_t> kept = {0, 1, 2, 3, 34, 35, 36, 37, 38, 39};
  const double gap = worst_score_gap(comp, full, kept, comp.layers());
  MESSAGE("prompt mode: max |q.k - q.k_ref| = " << gap);
  CHECK(gap <= 1e-5);

  // Decode mode over 40 decode steps: every step shifts the window by one slot, so keys are
  // re-rotated up to ~40 times. Layer 0's pre-RoPE keys depend only on the token, so a plain
  // forward over the same 79 tokens gives the reference.
  std::vector<kv::KvCache> caches;
  const auto gens = engine::generate_greedy(m, std::span(&prompt, 1), no_eos(40), {},
                                            make<StreamingLlm>(0.25, kv::Mode::Decode), &caches);
  std::vector<std::int32_t> fed = prompt;
  fed.insert(fed.end(), gens[0].tokens.begin(), gens[0].tokens.end() - 1);
  REQUIRE(fed.size() == 79);
  kv::KvCache all = m.new_cache();
  model::Segment as{&all, fed, model::Logits::Last};
  m.forward(std::span<const model::Segment>(&as, 1), logits);
  const std::size_t n = kv::eviction::budget_rows(0.25, 79);  // 20
  std::vector<std::int64_t> text_index;
  for (std::size_t i = 0; i < n; ++i)
    text_index.push_back(i < 4 ? static_cast<std::int64_t>(i) : static_cast<std::int64_t>(79 - (n - i)));
  CHECK(caches[0].next_position() == static_cast<std::int64_t>(n));
  const double drift = worst_score_gap(caches[0], all, text_index, 1);
  MESSAGE("decode mode, 40 steps: max |q.k - q.k_ref| (layer 0) = " << drift);
  CHECK(drift <= 1e-5);
}

TEST_CASE("streamingllm: decode mode stays within ceil(budget x tokens_seen) after every step") {
  check_decode_within_budget<StreamingLlm>(0.25, {{"sinks", "1"}});
  check_decode_within_budget<StreamingLlm>(0.5, {{"sinks", "2"}});
}

TEST_CASE("streamingllm: byte accounting") {
  // Prompt mode: 10 rows after the prefill, then the 9 fed-back tokens are appended.
  auto g = engine::generate_greedy(tiny(), std::span(&prompts()[0], 1), no_eos(10), {},
                                   make<StreamingLlm>(0.25, kv::Mode::Prompt));
  check_bytes(g[0], 19, 19.0 / 49.0);
  // Decode mode: ceil(0.25·49) = 13 rows at the end.
  g = engine::generate_greedy(tiny(), std::span(&prompts()[0], 1), no_eos(10), {},
                              make<StreamingLlm>(0.25, kv::Mode::Decode));
  check_bytes(g[0], 13, decode_peak(0.25));
}
