#pragma once
// Shared checks of the eviction policies' tests: budget 1 ≡ full through generate_greedy,
// the per-step budget invariant in decode mode, and synthetic caches/records for hand-worked
// selections.

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../support/json_file.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/full.hpp"
#include "kvcanary/engine/generate.hpp"

namespace kvcanary::test::eviction {

inline model::Transformer<float>& tiny() {
  static model::Transformer<float> m(io::load_hf_config(test_data("tiny/llama_gqa_untied")),
                                     test_data("tiny/llama_gqa_untied"), 2);
  return m;
}

// A one-layer model shape for synthetic caches and records: `heads` query heads over `kv_heads`
// KV heads of head_dim `d`, RoPE base `theta`.
inline ModelConfig one_layer_shape(std::size_t heads, std::size_t kv_heads, std::size_t d, double theta = 10000.0) {
  ModelConfig c;
  c.num_layers = 1;
  c.num_heads = static_cast<std::int64_t>(heads);
  c.num_kv_heads = static_cast<std::int64_t>(kv_heads);
  c.head_dim = static_cast<std::int64_t>(d);
  c.rope_theta = theta;
  return c;
}

// A 40-token prompt (longer than SnapKV's default window) and a short one.
inline const std::vector<std::vector<std::int32_t>>& prompts() {
  static const std::vector<std::vector<std::int32_t>> p = [] {
    std::vector<std::int32_t> long_prompt;
    for (int i = 0; i < 40; ++i) long_prompt.push_back((i * 37 + 11) % 256);
    return std::vector<std::vector<std::int32_t>>{long_prompt, {200, 1, 45, 7, 9}};
  }();
  return p;
}

inline engine::GenerateOptions no_eos(std::size_t n) {
  engine::GenerateOptions o;
  o.max_new_tokens = n;
  o.eos_ids = {-1};
  return o;
}

// The per-policy tests below were written for the `seen` capacity (ceil(budget · tokens seen)),
// kvcanary ≤ 0.2's meaning, and keep testing it; the `fixed` capacity has its own checks
// (check_decode_fixed_capacity, tests/kv/test_eviction_semantics.cpp).
template <class P>
P make(double budget, kv::Mode mode, std::map<std::string, std::string> params = {},
       kv::Capacity capacity = kv::Capacity::Seen) {
  return P::create(kv::PolicyOptions(budget, mode, std::move(params), "options", capacity), tiny().config());
}

template <class P>
constexpr bool decode_allowed() {
  if constexpr (requires { P::prompt_only_because; })
    return false;
  else
    return true;
}

// Budget 1: same tokens, same cache bits and positions, same measured bytes as `full` — in
// prompt mode with both capacities and both scopes (scope context: the last 8 and 2 tokens of
// the two prompts appended uncompressed), and in decode mode with capacity `seen` (decode mode
// with `fixed` keeps a sliding prompt-length cache: check_decode_fixed_capacity).
template <class P>
void check_budget_one_is_full(std::map<std::string, std::string> params = {}) {
  auto& m = tiny();
  std::vector<kv::KvCache> ref_caches;
  const auto ref = engine::generate_greedy(m, prompts(), no_eos(12), {}, kv::FullCache{}, &ref_caches);
  struct Setting {
    kv::Mode mode;
    kv::Capacity capacity;
    bool context;
  };
  std::vector<Setting> settings;
  for (kv::Capacity c : {kv::Capacity::Fixed, kv::Capacity::Seen})
    for (bool context : {false, true}) settings.push_back({kv::Mode::Prompt, c, context});
  if constexpr (decode_allowed<P>()) settings.push_back({kv::Mode::Decode, kv::Capacity::Seen, false});
  for (const Setting& s : settings) {
    CAPTURE(kv::mode_name(s.mode));
    CAPTURE(kv::capacity_name(s.capacity));
    CAPTURE(s.context);
    auto opt = no_eos(12);
    if (s.context) opt.question_tokens = {8, 2};
    std::vector<kv::KvCache> caches;
    const auto gens = engine::generate_greedy(m, prompts(), opt, {}, make<P>(1.0, s.mode, params, s.capacity), &caches);
    for (std::size_t b = 0; b < prompts().size(); ++b) {
      CHECK(gens[b].tokens == ref[b].tokens);
      CHECK(gens[b].memory.kv_bytes_end == ref[b].memory.kv_bytes_end);
      CHECK(gens[b].memory.kv_fraction_peak == 1.0);
      CHECK(caches[b].next_position() == ref_caches[b].next_position());
      for (std::size_t l = 0; l < caches[b].layers(); ++l)
        for (std::size_t h = 0; h < caches[b].kv_heads(); ++h) {
          const auto& a = caches[b].head(l, h);
          const auto& r = ref_caches[b].head(l, h);
          REQUIRE(a.size() == r.size());
          CHECK(a.keys == r.keys);
          CHECK(a.values == r.values);
          CHECK(a.positions == r.positions);
        }
    }
  }
}

// The excesses every lane's copy of a Checked policy reports. Lanes run `after_step` on the
// thread pool's threads at the same time (kv/policy.hpp: a policy instance is one lane's
// alone), so this log — the one thing the copies share, on purpose — is locked.
struct ExcessLog {
  std::mutex mutex;
  std::vector<long> values;

  void add(long v) {
    const std::lock_guard lock(mutex);
    values.push_back(v);
  }
};

// Wraps a policy and records, after every compressing step, the largest excess of stored
// rows per head over ceil(budget · tokens_seen) (decode mode's invariant).
template <class P>
struct Checked {
  P inner;
  double budget = 1.0;
  std::shared_ptr<ExcessLog> excess = std::make_shared<ExcessLog>();

  std::size_t attention_rows(kv::StepKind k, std::size_t n) const { return inner.attention_rows(k, n); }
  void after_step(kv::KvCache& c, const kv::AttentionRecord& r, kv::StepKind k) {
    inner.after_step(c, r, k);
    const long allowed = static_cast<long>(kv::eviction::budget_rows(budget, c.tokens_seen()));
    long worst = -1000000;
    for (std::size_t l = 0; l < c.layers(); ++l)
      for (std::size_t h = 0; h < c.kv_heads(); ++h)
        worst = std::max(worst, static_cast<long>(c.head(l, h).size()) - allowed);
    excess->add(worst);
  }
  std::size_t stored_bytes(const kv::KvCache& c) const { return inner.stored_bytes(c); }
  std::string identity() const { return inner.identity(); }
};

// Decode mode: after the prefill and every decode step, every head holds at most
// ceil(budget · tokens_seen) rows.
template <class P>
void check_decode_within_budget(double budget, std::map<std::string, std::string> params = {}) {
  Checked<P> c{make<P>(budget, kv::Mode::Decode, params), budget};
  const auto gens = engine::generate_greedy(tiny(), prompts(), no_eos(20), {}, c);
  // Two sequences, each a prefill + 19 decode steps.
  REQUIRE(c.excess->values.size() == 2 * 20);
  for (long e : c.excess->values) CHECK(e <= 0);
  for (const auto& g : gens) CHECK(g.tokens.size() == 20);
}

// Decode mode with the `fixed` capacity (the papers' meaning): after the prefill and after each
// of 64 decode steps every head holds exactly min(C, tokens seen) rows, C = max(ceil(budget ·
// prompt length), floor) — `floor` the rows the method protects (StreamingLLM's sinks).
template <class P>
void check_decode_fixed_capacity(double budget, std::map<std::string, std::string> params = {}, std::size_t floor = 0) {
  struct Log {
    std::mutex mutex;
    std::vector<std::pair<long, long>> rows_vs_expected;  // per step: worst head's rows, expected
  };
  struct Watch {
    P inner;
    double budget = 1.0;
    std::size_t floor = 0;
    std::shared_ptr<Log> log = std::make_shared<Log>();
    std::int64_t prompt = 0;
    std::size_t attention_rows(kv::StepKind k, std::size_t n) const { return inner.attention_rows(k, n); }
    void after_step(kv::KvCache& c, const kv::AttentionRecord& r, kv::StepKind k) {
      inner.after_step(c, r, k);
      if (k == kv::StepKind::Prefill) prompt = c.tokens_seen();
      const std::size_t C = std::max(kv::eviction::budget_rows(budget, prompt), floor);
      const long expected = static_cast<long>(std::min<std::int64_t>(static_cast<std::int64_t>(C), c.tokens_seen()));
      long worst = expected;
      for (std::size_t l = 0; l < c.layers(); ++l)
        for (std::size_t h = 0; h < c.kv_heads(); ++h)
          if (static_cast<long>(c.head(l, h).size()) != expected) worst = static_cast<long>(c.head(l, h).size());
      const std::lock_guard lock(log->mutex);
      log->rows_vs_expected.emplace_back(worst, expected);
    }
    std::size_t stored_bytes(const kv::KvCache& c) const { return inner.stored_bytes(c); }
    std::string identity() const { return inner.identity(); }
  };
  Watch w{make<P>(budget, kv::Mode::Decode, params, kv::Capacity::Fixed), budget, floor};
  const auto gens = engine::generate_greedy(tiny(), prompts(), no_eos(65), {}, w);
  // Two sequences, each a prefill + 64 decode steps.
  REQUIRE(w.log->rows_vs_expected.size() == 2 * 65);
  for (const auto& [rows, expected] : w.log->rows_vs_expected) CHECK(rows == expected);
  for (const auto& g : gens) CHECK(g.tokens.size() == 65);
}

// Scope context in prompt mode: the question's rows are appended after the context is compressed
// and never evicted. The 40-token prompt with its last 10 tokens the question, 6 tokens
// generated (5 fed back): every head holds min(C, 30) context rows, then the 10 question rows and
// the 5 generated rows at consecutive positions; layer 0's question values (no attention before
// them) are bit for bit those of an uncompressed run.
// `context_rows(layer)`, when given, replaces C for policies whose layers keep different counts;
// `per_layer_total`: heads keep different counts (adakv), only their sum is kv_heads · C.
template <class P>
void check_context_scope_keeps_question(double budget, std::map<std::string, std::string> params = {},
                                        std::size_t floor = 0,
                                        std::function<std::size_t(std::size_t)> context_rows = {},
                                        bool per_layer_total = false) {
  auto& m = tiny();
  const std::vector<std::vector<std::int32_t>> one = {prompts()[0]};
  std::vector<kv::KvCache> ref, caches;
  engine::generate_greedy(m, one, no_eos(6), {}, kv::FullCache{}, &ref);
  auto opt = no_eos(6);
  opt.question_tokens = {10};
  engine::generate_greedy(m, one, opt, {}, make<P>(budget, kv::Mode::Prompt, params, kv::Capacity::Fixed), &caches);
  const std::size_t D = caches[0].head_dim();
  for (std::size_t l = 0; l < caches[0].layers(); ++l) {
    const std::size_t layer_C = context_rows
                                    ? context_rows(l)
                                    : std::min<std::size_t>(30, std::max(kv::eviction::budget_rows(budget, 30), floor));
    std::size_t layer_rows = 0;
    for (std::size_t h = 0; h < caches[0].kv_heads(); ++h) {
      const auto& s = caches[0].head(l, h);
      REQUIRE(s.size() >= 15);
      const std::size_t C = per_layer_total ? s.size() - 15 : layer_C;
      layer_rows += C;
      REQUIRE(s.size() == C + 10 + 5);
      for (std::size_t r = C; r + 1 < s.size(); ++r) CHECK(s.positions[r + 1] == s.positions[r] + 1);
      if (l == 0) {
        const auto& f = ref[0].head(0, h);
        const std::vector<float> got(s.values.begin() + static_cast<std::ptrdiff_t>(C * D),
                                     s.values.begin() + static_cast<std::ptrdiff_t>((C + 10) * D));
        const std::vector<float> want(f.values.begin() + static_cast<std::ptrdiff_t>(30 * D),
                                      f.values.begin() + static_cast<std::ptrdiff_t>(40 * D));
        CHECK(got == want);
      }
    }
    CHECK(layer_rows == layer_C * caches[0].kv_heads());
  }
}

// Byte accounting on the 40-token prompt with 10 generated tokens (9 fed back): `rows_end`
// rows per head at the end; bytes = rows · head_dim 16 · (K,V) · fp16 · 2 layers · 2 KV heads.
inline void check_bytes(const engine::Generation& g, std::size_t rows_end, double peak) {
  const std::size_t per_row = 16 * 2 * 2 * 2 * 2;
  CHECK(g.memory.kv_bytes_end == rows_end * per_row);
  CHECK(g.memory.kv_full_bytes_end == 49 * per_row);
  CHECK(g.memory.kv_fraction_end == static_cast<double>(rows_end) / 49.0);
  CHECK(g.memory.kv_fraction_peak == doctest::Approx(peak).epsilon(1e-12));
}

// Peak of ceil(budget·s)/s over the steps of a decode-mode run (s = 40 … 49 tokens seen).
inline double decode_peak(double budget) {
  double peak = 0;
  for (int s = 40; s <= 49; ++s) peak = std::max(peak, static_cast<double>(kv::eviction::budget_rows(budget, s)) / s);
  return peak;
}

// A synthetic cache: `n` rows per head at positions 0..n−1, keys/values from `fill`.
inline kv::KvCache synthetic_cache(std::size_t layers, std::size_t kv_heads, std::size_t head_dim, std::size_t n) {
  kv::KvCache c(layers, kv_heads, head_dim);
  std::vector<float> k(head_dim), v(head_dim);
  for (std::size_t l = 0; l < layers; ++l)
    for (std::size_t h = 0; h < kv_heads; ++h)
      for (std::size_t r = 0; r < n; ++r) {
        for (std::size_t d = 0; d < head_dim; ++d) {
          k[d] = static_cast<float>(r + 1) * 0.01f * static_cast<float>(d + 1);
          v[d] = static_cast<float>(1000 * l + 100 * h + r);
        }
        c.head(l, h).append(k.data(), v.data(), static_cast<std::int32_t>(r), head_dim);
      }
  c.advance(static_cast<std::int64_t>(n));
  return c;
}

// A synthetic record: mass(l, h) = masses[l * heads + h].
inline kv::AttentionRecord synthetic_record(std::size_t rows, std::size_t layers, std::size_t heads, std::size_t group,
                                            std::vector<std::vector<float>> masses) {
  kv::AttentionRecord r;
  r.rows = rows;
  r.num_layers = layers;
  r.num_heads = heads;
  r.group = group;
  r.per_layer_head = std::move(masses);
  return r;
}

inline std::vector<std::int32_t> positions(const kv::HeadStore& s) { return s.positions; }

// The rows a head kept, identified by their first value component (synthetic_cache encodes
// the original row in it).
inline std::vector<int> kept_rows(const kv::KvCache& c, std::size_t l, std::size_t h) {
  std::vector<int> out;
  const auto& s = c.head(l, h);
  for (std::size_t r = 0; r < s.size(); ++r)
    out.push_back(static_cast<int>(s.values[r * c.head_dim()]) - static_cast<int>(1000 * l + 100 * h));
  return out;
}

}  // namespace kvcanary::test::eviction

namespace kvcanary::test::eviction {

// Append one row (original index r, encoded like synthetic_cache) to every head; one token.
inline void append_row(kv::KvCache& c, std::size_t r) {
  std::vector<float> k(c.head_dim()), v(c.head_dim());
  for (std::size_t l = 0; l < c.layers(); ++l)
    for (std::size_t h = 0; h < c.kv_heads(); ++h) {
      for (std::size_t d = 0; d < c.head_dim(); ++d) {
        k[d] = static_cast<float>(r + 1) * 0.01f * static_cast<float>(d + 1);
        v[d] = static_cast<float>(1000 * l + 100 * h + r);
      }
      c.head(l, h).append(k.data(), v.data(), static_cast<std::int32_t>(c.next_position()), c.head_dim());
    }
  c.advance(1);
}

}  // namespace kvcanary::test::eviction
