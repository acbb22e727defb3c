#pragma once
// The base scorer of a press that ranks rows by another method's scores (KVPress's
// "press over a scorer press"): Ada-KV (kv/adakv.hpp) allocates rows across heads by them, ChunkKV
// (kv/chunkkv.hpp) ranks whole chunks by their mean. One piece so that every such press parses
// `scorer`/`window`/`kernel` the same way, scores a head the same way and names it the same way in
// its identity (a cell id: rows written before this header existed keep their ids).
//
// Scores per KV head, one per stored row, higher kept:
//   snapkv              the observation window's votes over the prefix, max-pooled (kv/snapkv.hpp);
//                       the window's own rows +∞, so every head keeps them (KVPress pads them with
//                       its max + 1, which ranks the same)
//   keydiff             −cos(k_j, mean k) (kv/keydiff.hpp)
//   knorm               −‖k_j‖ (kv/knorm.hpp)
//   observed_attention  the prefill's attention per row, averaged over the queries that saw it
//                       (kv/observed_attention.hpp)

#include <algorithm>
#include <array>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/kv/cache.hpp"
#include "kvcanary/kv/keydiff.hpp"
#include "kvcanary/kv/knorm.hpp"
#include "kvcanary/kv/parameter_table.hpp"
#include "kvcanary/kv/observed_attention.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/kv/snapkv.hpp"

namespace kvcanary::kv {

struct BaseScorer {
  enum class Kind { SnapKv, KeyDiff, KNorm, ObservedAttention };
  static constexpr std::size_t default_window = 32, default_kernel = 7;  // SnapKV's paper defaults

  Kind kind = Kind::SnapKv;
  std::size_t window = default_window;  // snapkv: observation window, its rows kept in every head
  std::size_t kernel = default_kernel;  // snapkv: max-pooling kernel (odd)

  static constexpr std::string_view name_of(Kind k) {
    switch (k) {
      case Kind::SnapKv: return "snapkv";
      case Kind::KeyDiff: return "keydiff";
      case Kind::KNorm: return "knorm";
      case Kind::ObservedAttention: return "observed_attention";
    }
    return "";
  }

  // "a, b, c": the names of `allowed`, in order.
  static std::string names(std::span<const Kind> allowed) {
    std::string s;
    for (Kind k : allowed) s += (s.empty() ? "" : ", ") + std::string(name_of(k));
    return s;
  }

  // The `scorer`, `window` and `kernel` docs of a press whose scorers are `allowed`, the first
  // being its default.
  static std::vector<ParameterDoc> parameters(std::span<const Kind> allowed) {
    return {
        {"scorer", std::string(name_of(allowed.front())), "base scores: " + names(allowed)},
        {"window", std::to_string(default_window), "snapkv scorer: observation window, its rows kept in every head"},
        {"kernel", std::to_string(default_kernel), "snapkv scorer: max-pooling kernel (odd)"}};
  }

  // Reads `scorer` (one of `allowed`; default the first), `window` and `kernel`.
  static BaseScorer from(const PolicyOptions& o, std::span<const Kind> allowed) {
    BaseScorer b;
    const std::string s = o.get_string("scorer", std::string(name_of(allowed.front())));
    const auto it = std::find_if(allowed.begin(), allowed.end(), [&](Kind k) { return name_of(k) == s; });
    if (it == allowed.end()) fail(o.source(), "scorer", "'" + s + "' is not one of " + names(allowed));
    b.kind = *it;
    b.window = static_cast<std::size_t>(o.get_int("window", static_cast<std::int64_t>(default_window), 1));
    b.kernel = static_cast<std::size_t>(o.get_int("kernel", static_cast<std::int64_t>(default_kernel), 1));
    if (const char* broken = odd_kernel(static_cast<double>(b.kernel)))
      fail(o.source(), "kernel", "must be " + std::string(broken));
    return b;
  }

  // Query rows of attention the scorer reads after a step of n tokens (the engine records them).
  std::size_t attention_rows(StepKind step, std::size_t n_tokens) const {
    if (step != StepKind::Prefill) return 0;
    if (kind == Kind::SnapKv) return std::min(window, n_tokens);
    if (kind == Kind::ObservedAttention) return n_tokens;
    return 0;
  }
  // Whether it scores from the attention record (and so has nothing to say without one).
  bool reads_attention() const { return kind == Kind::SnapKv || kind == Kind::ObservedAttention; }

  // The scores of KV head h of layer l, one per stored row.
  std::vector<float> scores(const KvCache& cache, const AttentionRecord& record, std::size_t l, std::size_t h) const {
    const HeadStore& store = cache.head(l, h);
    const std::size_t n = store.size(), D = cache.head_dim();
    switch (kind) {
      case Kind::KeyDiff: return KeyDiff::scores(store.materialize_keys(D), n, D);
      case Kind::KNorm: return KNorm::scores(store, D);
      case Kind::ObservedAttention: return ObservedAttention::scores(record, l, h, n);
      case Kind::SnapKv: break;
    }
    const std::size_t w = std::min(window, n);
    std::vector<float> s(n, std::numeric_limits<float>::infinity());
    const std::vector<float> vote = record.kv_head_mass(l, h);
    const std::vector<float> pooled = max_pool_1d(std::span<const float>(vote).first(n - w), kernel);
    std::copy(pooled.begin(), pooled.end(), s.begin());
    return s;
  }

  // The identity's parts: ",scorer=NAME", and ",window=W,kernel=K" for snapkv (else empty).
  std::string scorer_part() const { return ",scorer=" + std::string(name_of(kind)); }
  std::string window_part() const {
    return kind == Kind::SnapKv ? ",window=" + std::to_string(window) + ",kernel=" + std::to_string(kernel) : "";
  }
};

}  // namespace kvcanary::kv
