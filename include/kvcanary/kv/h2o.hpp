#pragma once
// `h2o`: H2O, the Heavy-Hitter Oracle (Zhang et al. 2023, "H2O: Heavy-Hitter Oracle for
// Efficient Generative Inference of Large Language Models", arXiv:2306.14048). A row's
// importance is the attention it has accumulated over every query so far,
//
//   F_j = Σ_{queries i so far} Σ_{h ∈ group} softmax(q_i^h K^T)_j       (the paper's Alg. 1)
//
// and the cache keeps the heavy hitters (largest F) plus the most recent rows. The budget k (the capacity:
// kv/eviction.hpp) is split: recent = ceil(recent_ratio · k) newest rows, heavy =
// k − recent rows by F among the others (the paper's experiments use equal heavy and recent
// ratios, hence the default 0.5).
//
// The prefill records every query row (the accumulated score of a prompt token is the mass
// all later prompt tokens gave it); each decode step records its one query. F follows its
// rows through evictions: an evicted row's score leaves with it, a new row starts with the
// mass of the step that appended it. GQA: per KV head, group summed (the paper is per head;
// a shared KV head must keep one set of rows for its group).

#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/parameter_table.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/core/model_config.hpp"

namespace kvcanary::kv {

struct H2o {
  static constexpr std::string_view name = "h2o";
  static constexpr Mode default_mode = Mode::Decode;  // the paper evicts while generating
  static std::string_view summary() {
    return "H2O (Zhang et al. 2023): heavy hitters by accumulated attention + the most recent rows";
  }
  static constexpr auto parameter_table() {
    return std::tuple{Parameter{"recent_ratio", &H2o::recent_ratio,
                                "share of the kept rows given to the most recent tokens (the rest: heavy hitters)", 0,
                                1}};
  }
  static H2o create(const PolicyOptions& o, const ModelConfig&) { return eviction::create<H2o>(o); }

  eviction::Common common;
  double recent_ratio = 0.5;
  std::vector<std::vector<float>> accumulated;  // [layer * kv_heads + kv_head][row]

  std::size_t attention_rows(StepKind kind, std::size_t n_tokens) const {
    if (kind == StepKind::Prefill) return n_tokens;
    return common.mode == Mode::Decode ? n_tokens : 0;
  }

  // Rows kept by one head of n rows from its accumulated scores.
  std::vector<std::size_t> selection(std::span<const float> score, std::size_t n, std::int64_t seen) const {
    const std::size_t k = common.keep(seen, 0, n);
    if (k >= n) return eviction::last_rows(n, n);
    const std::size_t recent = std::min(k, eviction::budget_rows(recent_ratio, static_cast<std::int64_t>(k)));
    const auto protect = eviction::last_rows(n, recent);
    return eviction::select<float>(score, n, protect, k);
  }

  void after_step(KvCache& cache, const AttentionRecord& record, StepKind kind) {
    if (!common.compresses(kind)) return;
    common.observe(cache, kind);
    const std::size_t L = cache.layers(), KVH = cache.kv_heads(), D = cache.head_dim();
    // Scores persist across steps (a chunked prefill keeps accumulating); rows only grow
    // between our evictions, so more scores than rows means a different or cleared cache.
    if (accumulated.size() != L * KVH) accumulated.assign(L * KVH, {});
    for (std::size_t l = 0; l < L; ++l)
      for (std::size_t h = 0; h < KVH; ++h) {
        HeadStore& store = cache.head(l, h);
        auto& acc = accumulated[l * KVH + h];
        if (acc.size() > store.size()) acc.clear();
        acc.resize(store.size(), 0.0f);
        if (record.rows) {
          const auto mass = record.kv_head_mass(l, h);
          for (std::size_t j = 0; j < mass.size(); ++j) acc[j] += mass[j];
        }
        const auto kept = selection(acc, store.size(), cache.tokens_seen());
        if (kept.size() == store.size()) continue;
        store.keep(kept, D);
        for (std::size_t i = 0; i < kept.size(); ++i) acc[i] = acc[kept[i]];
        acc.resize(kept.size());
      }
  }

  std::size_t stored_bytes(const KvCache& c) const { return eviction::stored_fp16_bytes(c); }
  std::string identity() const { return common.prefix(name) + identity_suffix(*this) + ")"; }
};

static_assert(CachePolicy<H2o>);

}  // namespace kvcanary::kv
