#pragma once
// The contract between the forward pass and a KV-cache compressor.
//
// A policy is a small copyable struct; each sequence owns one instance (its state: H2O's
// accumulated attention, KIVI's quantized groups, ...). A copy shares no mutable state with the
// instance it was copied from — no pointer to a common buffer, RNG or counter: the batched
// engine copies one policy into every lane and runs the lanes' `after_step` on the thread pool's
// threads at the same time (tests/kv/test_policy.cpp checks this for every registered policy).
// The generation loop drives it:
//
//   1. before a step, `attention_rows(kind, n_tokens)` says how many of the step's last query
//      rows the forward pass must record attention for (0: none — then recording costs nothing);
//   2. the forward pass appends the step's K/V and attends with them exactly: compression
//      applies to what is *stored*, so the step that produces a K/V sees it at full precision
//      (the same rule for every policy, and the prototype's);
//   3. after the step, `after_step(cache, record, kind)` evicts rows, rewrites their contents
//      (quantization) or re-positions keys — per layer and per KV head;
//   1b. optionally, `query_moments(kind)` (true) asks that the recorded rows' pre-RoPE queries
//      be summed too, as first and second moments (Expected Attention's Gaussian of future
//      queries, kv/expected_attention.hpp); absent means no, and nothing extra is computed;
//   1c. optionally, `reconstruction_tokens(context)` (non-empty) asks that the prompt step be
//      scored by a second pass instead of its own rows: those tokens — the model asked to repeat
//      the context — run over a copy of the uncompressed cache, every one of their rows is
//      recorded as a maximum (AttentionRecord::max_over_rows), and that record is what
//      `after_step` gets (KVzip, kv/kvzip.hpp; engine/decode_step.hpp reconstruction_record).
//      The copy is dropped: the cache never holds the pass's rows;
//   4. `stored_bytes(cache)` reports the bytes the compressed cache holds (payload, scales,
//      zero points, full-precision residual), the numerator of the measured budget.
//
// Adding a compressor = one header defining such a struct + one test file.

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kvcanary/kv/cache.hpp"

namespace kvcanary::kv {

enum class StepKind { Prefill, Decode };

// When an eviction policy runs: once after the prompt (the prototype's regime), or after every
// step so the cache stays within budget while tokens are generated (where the published
// functional failures accumulate).
enum class Mode { Prompt, Decode };

inline const char* mode_name(Mode m) { return m == Mode::Prompt ? "prompt" : "decode"; }

// How many rows an eviction policy's budget means (docs/COMPRESSORS.md "Capacity"):
//   Fixed: C = ceil(budget · prompt length) rows per head, set at the prefill — the papers'
//          cache size (StreamingLLM's sinks + recent, H2O's heavy + recent, TOVA's cache_size,
//          SnapKV's max_capacity_prompt). In decode mode the cache stays at C: each new token
//          evicts one row. In prompt mode generated rows are appended (SnapKV, KVPress).
//   Seen:  ceil(budget · tokens seen) after every compressing step, so a decode-mode cache grows
//          with the generation (KVPress's CompressionRatioDecodingPress; kvcanary ≤ 0.2's meaning,
//          and how rows without a `capacity` field read).
// In prompt mode both are the same computation (the only compressing step is the prefill).
enum class Capacity { Fixed, Seen };

inline const char* capacity_name(Capacity c) { return c == Capacity::Fixed ? "fixed" : "seen"; }

// What the compressor sees of a prompt (docs/TASKS.md "Scope"):
//   Context: only the task's reusable prefix (the system turn with its tools, the instruction
//            and distractor preamble) is prefilled and compressed; the question is then appended
//            uncompressed — KVPress's context/question split, the deployment case of a shared
//            prefix compressed once and reused.
//   Prompt:  the whole prompt is prefilled, then compressed (question-aware).
enum class Scope { Context, Prompt };

inline const char* scope_name(Scope s) { return s == Scope::Context ? "context" : "prompt"; }

// Attention probabilities recorded by the forward pass for one step: for every layer and
// query head, the attention mass each stored row of that head's KV head received, summed over
// the recorded query rows (the step's last `rows` tokens). mass(l, h) has one entry per row
// of cache.head(l, h / group) as it stood after the step's append.
struct AttentionRecord {
  std::size_t rows = 0;  // query rows summed (0: nothing recorded)
  std::size_t num_layers = 0, num_heads = 0, group = 1;
  std::vector<std::vector<float>> per_layer_head;  // [layer * num_heads + head][row]
  // Step 1c: per_layer_head holds, for each stored row, the largest probability any recorded
  // query row gave it (KVzip's max over the reconstruction's queries), not the sum.
  bool max_over_rows = false;

  // Pre-RoPE query moments of the same recorded rows, only when the policy asked (step 1b):
  // Σ_i q_i and Σ_i q_i q_iᵀ per layer and query head, in double, rows summed in order.
  std::size_t head_dim = 0;
  std::vector<double> query_sum;    // (layer, num_heads, head_dim)
  std::vector<double> query_outer;  // (layer, num_heads, head_dim, head_dim)
  // Σ_i (q_i after RoPE)_c² of the recorded rows, always (d per row and query head: ThinK's
  // query-channel norms, kv/think.hpp).
  std::vector<double> rotated_query_energy;  // (layer, num_heads, head_dim)

  const std::vector<float>& mass(std::size_t layer, std::size_t head) const {
    return per_layer_head[layer * num_heads + head];
  }
  bool has_query_moments() const { return !query_sum.empty(); }
  const double* query_energy(std::size_t layer, std::size_t head) const {
    return &rotated_query_energy[(layer * num_heads + head) * head_dim];
  }
  const double* sum_of_queries(std::size_t layer, std::size_t head) const {
    return &query_sum[(layer * num_heads + head) * head_dim];
  }
  const double* outer_of_queries(std::size_t layer, std::size_t head) const {
    return &query_outer[(layer * num_heads + head) * head_dim * head_dim];
  }

  // GQA: the query heads that share KV head kvh, summed — selection is per KV head, so a
  // group's queries vote together (as SnapKV's and KVPress's GQA handling do).
  std::vector<float> kv_head_mass(std::size_t layer, std::size_t kvh) const {
    std::vector<float> out = mass(layer, kvh * group);
    for (std::size_t g = 1; g < group; ++g) {
      const auto& m = mass(layer, kvh * group + g);
      for (std::size_t j = 0; j < out.size(); ++j) out[j] += m[j];
    }
    return out;
  }
};

// Bytes of `rows` K and V rows held in fp16: the unit of the budget axis.
inline std::size_t fp16_kv_bytes(std::size_t rows, std::size_t head_dim) {
  return rows * head_dim * 2 /*K,V*/ * 2 /*bytes*/;
}

// A quantized cache's bytes before its scales: every packed row's codes, and the rows still in
// full precision (rows not coded yet) at fp16. Each quantizer adds its scales as it stores them
// (absmax: one per layer and tensor; the cache types: per block inside the codes, per tensor).
inline std::size_t codes_and_fp16_row_bytes(const KvCache& c) {
  std::size_t bytes = 0;
  for (std::size_t l = 0; l < c.layers(); ++l)
    for (std::size_t h = 0; h < c.kv_heads(); ++h) {
      const HeadStore& s = c.head(l, h);
      bytes +=
          s.packed_keys.codes.size() + s.packed_values.codes.size() + (s.keys.size() + s.values.size()) * 2 /*fp16*/;
    }
  return bytes;
}

// The uncompressed reference for a sequence: every token it has seen, in every layer and KV
// head, in fp16.
inline std::size_t full_cache_bytes(const KvCache& c) {
  return fp16_kv_bytes(static_cast<std::size_t>(c.tokens_seen()), c.head_dim()) * c.layers() * c.kv_heads();
}

// A sequence's KV memory as its policy measures it (`stored_bytes` against `full_cache_bytes`),
// observed after every step's compression: the last step's bytes and ratio, and the largest
// ratio any step reached (a decode-mode cache can shrink again after its peak). The one record
// of the budget axis: every decode loop observes into it and rows read it (budget_measured,
// budget_peak, kv_bytes_retained).
struct KvMemory {
  std::size_t kv_bytes_end = 0, kv_full_bytes_end = 0;  // after the last observed step
  double kv_fraction_end = 0, kv_fraction_peak = 0;     // stored / full; 0 for an empty cache

  void observe(std::size_t stored, std::size_t full) {
    kv_bytes_end = stored;
    kv_full_bytes_end = full;
    kv_fraction_end = full ? static_cast<double>(stored) / static_cast<double>(full) : 0.0;
    kv_fraction_peak = std::max(kv_fraction_peak, kv_fraction_end);
  }
};

template <class P>
concept CachePolicy = std::copyable<P> && requires(P p, const P cp, KvCache& cache, const KvCache& ccache,
                                                   const AttentionRecord& record, StepKind kind, std::size_t n) {
  { cp.attention_rows(kind, n) } -> std::convertible_to<std::size_t>;
  {p.after_step(cache, record, kind)};
  { cp.stored_bytes(ccache) } -> std::convertible_to<std::size_t>;
  { cp.identity() } -> std::convertible_to<std::string>;  // name and every parameter: part of a cell's id
};

// After a step: what `policy` holds of `cache`, into `memory`.
template <CachePolicy P>
void observe_memory(KvMemory& memory, const P& policy, const KvCache& cache) {
  memory.observe(policy.stored_bytes(cache), full_cache_bytes(cache));
}

// Step 1b of the contract: whether P wants the step's query moments recorded. A policy that
// wraps another (`evict`, the composed eviction + quantizer) asks what the wrapped one asks.
template <class P>
bool wants_query_moments(const P& p, StepKind kind) {
  if constexpr (requires {
                  { p.query_moments(kind) } -> std::convertible_to<bool>;
                })
    return p.query_moments(kind);
  else if constexpr (requires { p.evict; })
    return wants_query_moments(p.evict, kind);
  else
    return false;
}

// Step 1c of the contract: the tokens of P's reconstruction pass after a prompt step over
// `context` (empty: none). A policy that wraps another asks the wrapped one, as in 1b.
template <class P>
std::vector<std::int32_t> reconstruction_tokens(const P& p, std::span<const std::int32_t> context) {
  if constexpr (requires {
                  { p.reconstruction_tokens(context) } -> std::convertible_to<std::vector<std::int32_t>>;
                })
    return p.reconstruction_tokens(context);
  else if constexpr (requires { p.evict; })
    return reconstruction_tokens(p.evict, context);
  else
    return {};
}

}  // namespace kvcanary::kv
