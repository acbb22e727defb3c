#pragma once
// Eviction followed by quantization, as deployments stack them (a KVPress-style press on top
// of a quantized cache): the compressor `snapkv+q4_0` (spaces around `+` allowed) runs, after
// every compressing step, the eviction policy and then the quantizer on the rows it kept.
//
//   * The budget is the eviction's (rows kept per head); the quantizer's width comes from its
//     own parameters: a cache type fixes it, `absmax`/`kivi` need `bits` (their budget→bits
//     mapping would read the eviction budget).
//   * Parameters go to the part that lists them (`kvcanary compressors`); the two families'
//     names are disjoint, so `{ window = 16, v = "q8_0" }` needs no prefix. A name both or
//     neither part knows is an error naming it.
//   * One mode for both. `prompt`: one eviction after the prefill, then the kept prompt rows
//     are coded; generated rows stay full precision. `decode`: every step evicts — from rows
//     already coded, whose codes leave with them (PackedRows::keep; KIVI's key groups cannot
//     lose a row and refuse) — and then codes the step's rows. StreamingLLM's re-rotation
//     decodes, rotates and re-encodes coded keys (llama.cpp's K-shift); absmax/KIVI refuse it.
//   * Except a prompt-only press (SnapKV, PyramidKV, AdaKV, ChunkKV, observed_attention) under
//     `decode`: it cannot run every step, so it runs in its paper's mode — once, on the prefill
//     — while the quantizer codes every row, the prompt's survivors and each generated one. That
//     is the deployment "a press at prefill on a server whose KV cache is quantized"
//     (KVPress's press + vLLM/llama.cpp's cache type). The identity shows both modes.
//   * Measured bytes are the quantizer's count of what is left: kept rows × bytes per row
//     (+ its scales). Identity: `<eviction identity>+<quantizer identity>`.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/type_list.hpp"
#include "kvcanary/kv/absmax.hpp"
#include "kvcanary/kv/any_policy.hpp"
#include "kvcanary/kv/cache_type_quant.hpp"
#include "kvcanary/kv/h2o.hpp"
#include "kvcanary/kv/kivi.hpp"
#include "kvcanary/kv/knorm.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/random.hpp"
#include "kvcanary/kv/snapkv.hpp"
#include "kvcanary/kv/snapkv_rolling.hpp"
#include "kvcanary/kv/keydiff.hpp"
#include "kvcanary/kv/observed_attention.hpp"
#include "kvcanary/kv/expected_attention.hpp"
#include "kvcanary/kv/pyramidkv.hpp"
#include "kvcanary/kv/adakv.hpp"
#include "kvcanary/kv/chunkkv.hpp"
#include "kvcanary/kv/kvzip.hpp"
#include "kvcanary/kv/streamingllm.hpp"
#include "kvcanary/kv/tova.hpp"

namespace kvcanary::kv {

using EvictionPolicies = std::tuple<StreamingLlm, SnapKv, SnapKvRolling, H2o, Tova, KNorm, RandomEviction, KeyDiff,
                                    ObservedAttention, ExpectedAttention, PyramidKv, AdaKv, ChunkKv, KvZip>;
using QuantizationPolicies = std::tuple<AbsmaxQuant, KiviQuant, CacheTypeQuant>;

namespace compose {

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// "evict+quant" → (evict, quant); false when `name` has no single '+'.
inline bool split(std::string_view name, std::string_view& evict, std::string_view& quant) {
  const auto plus = name.find('+');
  if (plus == std::string_view::npos || name.find('+', plus + 1) != std::string_view::npos) return false;
  evict = trim(name.substr(0, plus));
  quant = trim(name.substr(plus + 1));
  return true;
}

template <class P>
bool accepts(std::string_view n) {
  if constexpr (requires { P::accepts(n); })
    return P::accepts(n);
  else
    return P::name == n;
}

template <class P>
P create(std::string_view n, const PolicyOptions& o, const ModelConfig& c) {
  if constexpr (requires { P::create(n, o, c); })
    return P::create(n, o, c);
  else
    return P::create(o, c);
}

template <class P>
bool lists(const std::string& param) {
  for (const auto& d : parameters_of<P>())
    if (d.name == param) return true;
  return false;
}

// The policy of `Policies` called `n`, built with `o`, wrapped in AnyPolicyOf; `found` false
// if none is.
template <class Policies>
AnyPolicyOf<Policies> build(std::string_view n, const PolicyOptions& o, const ModelConfig& c, bool& found) {
  AnyPolicyOf<Policies> out;
  found = type_list::find_first<Policies>([&]<class P>() { return accepts<P>(n); },
                                          [&]<class P>() { out.policy = create<P>(n, o, c); });
  return out;
}

template <class Policies>
bool any_lists(std::string_view n, const std::string& param) {
  return type_list::any_of<Policies>([&]<class P>() { return accepts<P>(n) && lists<P>(param); });
}

template <class P>
constexpr bool prompt_only = requires {
  P::prompt_only_because;
};

// Whether the policy of `Policies` called `n` runs on the prefill only.
template <class Policies>
bool any_prompt_only(std::string_view n) {
  return type_list::any_of<Policies>([&]<class P>() { return accepts<P>(n) && prompt_only<P>; });
}

template <class Policies>
std::string names() {
  return type_list::join_names<Policies>([]<class P>() { return P::name; });
}

}  // namespace compose

struct Composed {
  static constexpr std::string_view name = "EVICTION+QUANTIZER";
  static bool accepts(std::string_view n) {
    std::string_view e, q;
    return compose::split(n, e, q);
  }
  static std::string_view summary() {
    return "an eviction policy, then a quantizer on the rows it keeps, e.g. snapkv+q4_0 (budget: the eviction's; "
           "parameters: each to the part "
           "that lists it)";
  }
  static std::vector<ParameterDoc> parameters() { return {}; }

  static Composed create(std::string_view n, const PolicyOptions& o, const ModelConfig& c) {
    std::string_view e, q;
    if (!compose::split(n, e, q)) fail(o.source(), "compressor", "'" + std::string(n) + "' is not EVICTION+QUANTIZER");
    std::map<std::string, std::string> pe, pq;
    for (const auto& [k, v] : o.params()) {
      const bool in_e = compose::any_lists<EvictionPolicies>(e, k),
                 in_q = compose::any_lists<QuantizationPolicies>(q, k);
      if (in_e && in_q)
        fail(o.source(), k, "is a parameter of both '" + std::string(e) + "' and '" + std::string(q) + "'");
      if (!in_e && !in_q)
        fail(o.source(), k,
             "is a parameter of neither '" + std::string(e) + "' nor '" + std::string(q) +
                 "' (see `kvcanary compressors`)");
      (in_e ? pe : pq)[k] = v;
    }
    Composed p;
    bool found = false;
    // A prompt-only press asked for decode mode runs on the prefill, the quantizer every step.
    const bool press_at_prefill = o.mode_asked() == Mode::Decode && compose::any_prompt_only<EvictionPolicies>(e);
    const std::optional<Mode> evict_mode = press_at_prefill ? std::nullopt : o.mode_asked();
    p.evict = compose::build<EvictionPolicies>(
        e, PolicyOptions(o.budget(), evict_mode, pe, o.source(), o.capacity_asked()), c, found);
    if (!found)
      fail(
          o.source(), "compressor",
          "'" + std::string(e) + "' before '+' is not an eviction policy (" + compose::names<EvictionPolicies>() + ")");
    p.mode_ = press_at_prefill ? Mode::Decode : p.evict.mode();
    p.quant = compose::build<QuantizationPolicies>(q, PolicyOptions(1.0, p.mode_, pq, o.source()), c, found);
    if (!found)
      fail(o.source(), "compressor",
           "'" + std::string(q) + "' after '+' is not a quantizer (absmax, kivi, " + cache_type_names() + ")");
    return p;
  }

  AnyPolicyOf<EvictionPolicies> evict;
  AnyPolicyOf<QuantizationPolicies> quant;
  Mode mode_ = Mode::Prompt;  // the quantizer's: the eviction's, or decode for a press at prefill

  Mode mode() const { return mode_; }

  std::size_t attention_rows(StepKind kind, std::size_t n) const { return evict.attention_rows(kind, n); }
  void after_step(KvCache& cache, const AttentionRecord& record, StepKind kind) {
    evict.after_step(cache, record, kind);
    quant.after_step(cache, record, kind);
  }
  std::size_t stored_bytes(const KvCache& c) const { return quant.stored_bytes(c); }
  std::string identity() const { return evict.identity() + "+" + quant.identity(); }
};

static_assert(CachePolicy<Composed>);

}  // namespace kvcanary::kv
