#pragma once
// `tova`: TOVA, Token Omission Via Attention (Oren et al. 2024, "Transformers are Multi-State
// RNNs", arXiv:2401.06104). Whenever the cache is over budget, drop the rows the *current*
// (last) query attends to least:
//
//   s_j = Σ_{h} softmax(q_t^h K^T)_j,      keep topk(s, k),   k = the capacity (kv/eviction.hpp; fixed: the paper's
//   cache_size)
//
// No recent window and no sinks: the last query's attention is the whole criterion.
//
// Scope. The paper keeps one set of tokens per layer, scoring with the last query's attention
// averaged over all heads of the layer (the authors' reference cache does the same), so
// `scope=layer` (default) sums every query head of the layer and applies one selection to all
// KV heads. `scope=head` selects per KV head with the GQA group's query heads summed.

#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/core/model_config.hpp"

namespace kvcanary::kv {

struct Tova {
  static constexpr std::string_view name = "tova";
  static constexpr Mode default_mode = Mode::Decode;  // the paper's multi-state RNN drops a row per token
  static std::string_view summary() {
    return "TOVA (Oren et al. 2024): evict the rows the last query attends to least";
  }
  static std::vector<ParameterDoc> parameters() {
    return {{"scope", "layer",
             "layer: one selection per layer from the last query's attention summed over all heads (the paper); "
             "head: per KV head, GQA group summed"}};
  }
  static Tova create(const PolicyOptions& o, const ModelConfig&) {
    Tova p;
    p.common = eviction::Common::from<Tova>(o);
    const std::string scope = o.get_string("scope", "layer");
    if (scope != "layer" && scope != "head")
      fail(o.source(), "scope", "must be 'layer' or 'head', got '" + scope + "'");
    p.per_head = scope == "head";
    o.reject_unknown(std::string(name));
    return p;
  }

  eviction::Common common;
  bool per_head = false;

  std::size_t attention_rows(StepKind kind, std::size_t) const { return common.compresses(kind) ? 1 : 0; }

  // Rows kept by one head of n rows from the last query's attention.
  std::vector<std::size_t> selection(std::span<const float> score, std::size_t n, std::int64_t seen) const {
    const std::size_t k = common.keep(seen, 0, n);
    if (k >= n) return eviction::last_rows(n, n);
    std::vector<std::size_t> all(n);
    std::iota(all.begin(), all.end(), 0);
    return eviction::top_k<float>(score, std::move(all), k);
  }

  void after_step(KvCache& cache, const AttentionRecord& record, StepKind kind) {
    if (!common.compresses(kind) || record.rows == 0) return;
    common.observe(cache, kind);
    const std::size_t L = cache.layers(), KVH = cache.kv_heads(), D = cache.head_dim();
    for (std::size_t l = 0; l < L; ++l) {
      std::vector<float> layer_score;
      if (!per_head) {
        layer_score = record.kv_head_mass(l, 0);
        for (std::size_t h = 1; h < KVH; ++h) {
          const auto m = record.kv_head_mass(l, h);
          for (std::size_t j = 0; j < m.size(); ++j) layer_score[j] += m[j];
        }
      }
      for (std::size_t h = 0; h < KVH; ++h) {
        HeadStore& store = cache.head(l, h);
        const auto kept = per_head ? selection(record.kv_head_mass(l, h), store.size(), cache.tokens_seen())
                                   : selection(layer_score, store.size(), cache.tokens_seen());
        if (kept.size() != store.size()) store.keep(kept, D);
      }
    }
  }

  std::size_t stored_bytes(const KvCache& c) const { return eviction::stored_fp16_bytes(c); }
  std::string identity() const { return common.prefix(name) + ",scope=" + (per_head ? "head" : "layer") + ")"; }
};

static_assert(CachePolicy<Tova>);

}  // namespace kvcanary::kv
