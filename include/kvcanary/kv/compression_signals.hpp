#pragma once
// What a compressor did to the cache at its prompt step, measured against the cache it was given:
// two cheap warning signals of issue 20 ("what warns, if perplexity doesn't?").
//
//   evicted_attention  (eviction policies, and the eviction part of EVICTION+QUANTIZER)
//       The attention the rows it removed were getting: for every layer l and query head h, the
//       softmax probabilities of the step's last query row (the prompt's last token; scope
//       context: the context's last token) summed over the rows of KV head h / group that the
//       policy evicted, then averaged over the L · H (layer, query head) pairs. Each head's
//       probabilities sum to 1, so this is the share of the last query's attention that
//       compression took away, in [0, 1]: 0 when the policy kept every row the query looked at.
//
//   kv_rel_error_k, kv_rel_error_v  (quantizers and cache types, and the quantizer part of
//       EVICTION+QUANTIZER)
//       Relative Frobenius reconstruction error of the rows the cache stores after the step,
//       ‖K̂ − K‖_F / ‖K‖_F over every layer, KV head and stored row pooled (likewise V), where K̂ is
//       what attention reads (packed rows dequantized) and K the same rows before quantization
//       (after the eviction part's re-rotation, if any). Rows a quantizer keeps in full
//       precision (KIVI's residual) count with zero error, as attention sees them.
//
// Measured once, at the prompt step (StepKind::Prefill) — the step every compressor compresses
// at; decode-mode policies compress every generated token too, and that later loss is what the
// agreement signals (engine/agreement.hpp) see. Nothing here touches attend()'s hot path: the
// forward pass records one extra query row only when the signals are asked for, and the rest
// runs once per job after its prefill.
//
// How evicted rows are found without asking the policy: no eviction policy reads V (they score
// keys and attention), and HeadStore::keep moves a row's V with it, so a copy of the policy is run
// on a copy of the uncompressed cache whose V rows carry their own row index; the survivors' tags
// are the kept rows — exact even where the policy re-positions keys (StreamingLLM).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/kv/any_policy.hpp"
#include "kvcanary/kv/cache.hpp"
#include "kvcanary/kv/policy.hpp"

namespace kvcanary::kv {

struct CompressionSignals {
  std::optional<double> evicted_attention;
  std::optional<double> kv_rel_error_k, kv_rel_error_v;
};

namespace signals_detail {

template <class T>
struct is_any_policy : std::false_type {};
template <class... P>
struct is_any_policy<AnyPolicyOf<std::tuple<P...>>> : std::true_type {};

// The uncompressed cache after `evict` ran on it, V rows replaced by their row index in the
// uncompressed cache (a float holds indices exactly up to 2^24 rows).
template <class E>
KvCache tagged_eviction(const KvCache& uncompressed, const AttentionRecord& record, E evict, StepKind kind) {
  KvCache probe = uncompressed;
  const std::size_t D = probe.head_dim();
  for (std::size_t l = 0; l < probe.layers(); ++l)
    for (std::size_t h = 0; h < probe.kv_heads(); ++h) {
      HeadStore& s = probe.head(l, h);
      if (s.has_packed_rows()) fail("<compression signals>", "cache", "the uncompressed cache holds packed rows");
      for (std::size_t r = 0; r < s.size(); ++r)
        std::fill_n(s.values.begin() + static_cast<std::ptrdiff_t>(r * D), D, static_cast<float>(r));
    }
  evict.after_step(probe, record, kind);
  return probe;
}

inline std::vector<std::size_t> kept_rows(const HeadStore& tagged, std::size_t D) {
  std::vector<std::size_t> kept(tagged.size());
  for (std::size_t i = 0; i < kept.size(); ++i) kept[i] = static_cast<std::size_t>(tagged.values[i * D]);
  return kept;
}

// Mean over (layer, query head) of the last query's mass on the rows `tagged` no longer holds.
inline double evicted_mass(const KvCache& uncompressed, const KvCache& tagged, const AttentionRecord& last_query) {
  const std::size_t D = uncompressed.head_dim();
  if (last_query.rows == 0 || last_query.num_layers != uncompressed.layers())
    fail("<compression signals>", "record",
         "evicted_attention needs the last query row's attention of the compressing step");
  double total = 0.0;
  for (std::size_t l = 0; l < uncompressed.layers(); ++l)
    for (std::size_t h = 0; h < last_query.num_heads; ++h) {
      const std::size_t kvh = h / last_query.group;
      const std::size_t n = uncompressed.head(l, kvh).size();
      std::vector<char> kept(n, 0);
      for (std::size_t r : kept_rows(tagged.head(l, kvh), D))
        if (r < n) kept[r] = 1;
      const std::vector<float>& mass = last_query.mass(l, h);
      double evicted = 0.0;
      for (std::size_t r = 0; r < n && r < mass.size(); ++r)
        if (!kept[r]) evicted += mass[r];
      total += evicted;
    }
  return total / static_cast<double>(uncompressed.layers() * last_query.num_heads);
}

// ‖Σ (x̂ − x)²‖ / ‖Σ x²‖ over every head, K and V separately. `reference(l, h)` gives the fp32 K and V
// rows the compressed head's rows were made from; unset when any head's row count differs.
template <class Ref>
void relative_errors(const KvCache& compressed, Ref&& reference, CompressionSignals& out) {
  const std::size_t D = compressed.head_dim();
  double dk = 0, nk = 0, dv = 0, nv = 0;
  for (std::size_t l = 0; l < compressed.layers(); ++l)
    for (std::size_t h = 0; h < compressed.kv_heads(); ++h) {
      const HeadStore& c = compressed.head(l, h);
      const auto [k_ref, v_ref] = reference(l, h);
      const std::vector<float> k = c.materialize_keys(D), v = c.materialize_values(D);
      if (k.size() != k_ref.size() || v.size() != v_ref.size()) return;
      for (std::size_t i = 0; i < k.size(); ++i) {
        const double e = double(k[i]) - double(k_ref[i]);
        dk += e * e;
        nk += double(k_ref[i]) * double(k_ref[i]);
      }
      for (std::size_t i = 0; i < v.size(); ++i) {
        const double e = double(v[i]) - double(v_ref[i]);
        dv += e * e;
        nv += double(v_ref[i]) * double(v_ref[i]);
      }
    }
  out.kv_rel_error_k = nk > 0 ? std::sqrt(dk / nk) : 0.0;
  out.kv_rel_error_v = nv > 0 ? std::sqrt(dv / nv) : 0.0;
}

template <class P>
CompressionSignals of_policy(const KvCache& uncompressed, const AttentionRecord& record,
                             const AttentionRecord& last_query, const P& before, const KvCache& compressed,
                             StepKind kind) {
  CompressionSignals out;
  if constexpr (is_any_policy<P>::value) {
    return std::visit([&](const auto& p) { return of_policy(uncompressed, record, last_query, p, compressed, kind); },
                      before.policy);
  } else if constexpr (requires {
                         before.evict;
                         before.quant;
                       }) {
    // EVICTION+QUANTIZER: the eviction part alone says what left; the quantizer then coded the
    // kept rows, whose fp32 originals are the tagged probe's keys (re-rotated as the eviction
    // left them) and the uncompressed V rows its tags name.
    const KvCache tagged = tagged_eviction(uncompressed, record, before.evict, kind);
    out.evicted_attention = evicted_mass(uncompressed, tagged, last_query);
    const std::size_t D = uncompressed.head_dim();
    relative_errors(
        compressed,
        [&](std::size_t l, std::size_t h) {
          const HeadStore& t = tagged.head(l, h);
          std::vector<float> v;
          v.reserve(t.size() * D);
          const HeadStore& u = uncompressed.head(l, h);
          for (std::size_t r : kept_rows(t, D))
            v.insert(v.end(), u.values.begin() + static_cast<std::ptrdiff_t>(r * D),
                     u.values.begin() + static_cast<std::ptrdiff_t>((r + 1) * D));
          return std::pair<std::vector<float>, std::vector<float>>{t.keys, std::move(v)};
        },
        out);
  } else if (capacity_of(before).has_value()) {
    const KvCache tagged = tagged_eviction(uncompressed, record, before, kind);
    out.evicted_attention = evicted_mass(uncompressed, tagged, last_query);
  } else {
    // Keeps every row (a quantizer, a cache type, full): row i is uncompressed row i.
    relative_errors(
        compressed,
        [&](std::size_t l, std::size_t h) {
          const HeadStore& u = uncompressed.head(l, h);
          return std::pair<std::vector<float>, std::vector<float>>{u.keys, u.values};
        },
        out);
  }
  return out;
}

}  // namespace signals_detail

// The signals of one compressing step. `uncompressed`: the cache right after the step's forward
// pass, before the policy ran; `record`: the attention record the policy was given;
// `last_query`: a record of the step's last query row (rows = 1); `before`: a copy of the policy
// as it was before the step; `compressed`: the cache after it.
template <class Policy>
CompressionSignals compression_signals(const KvCache& uncompressed, const AttentionRecord& record,
                                       const AttentionRecord& last_query, const Policy& before,
                                       const KvCache& compressed, StepKind kind = StepKind::Prefill) {
  return signals_detail::of_policy(uncompressed, record, last_query, before, compressed, kind);
}

}  // namespace kvcanary::kv
