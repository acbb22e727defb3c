#pragma once
// `observed_attention`: the attention each prompt row received during the prefill, averaged
// over the queries that could see it (KVPress's ObservedAttentionPress; the prefill-time score
// of H2O, Zhang et al. 2023, arXiv:2306.14048, without its decode-time accumulation):
//
//   s_j = (1/G) Σ_{h ∈ group} (1/(n − j)) Σ_{i ≥ j} softmax(q_i^h K^T)_j       j = 0 … n−1
//   keep = topk(s, C)
//
// n − j is the number of causal queries that saw row j: without it, early rows win on the
// number of queries alone (H2O's accumulated score favours them). The prefill records every
// query row (AttentionRecord sums them per query head); the group mean is KVPress's GQA
// handling (scores.view(..., group, n).mean(2)).
//
// Prompt only: the score is defined over the prefill's queries, as KVPress's press (decode-time
// accumulation is `h2o`). Deviations: C = ceil(budget · n) (KVPress: int(n · (1 − ratio)));
// ties to the lowest row. With a record of fewer rows than the prefill (never asked for here)
// the count becomes min(rows recorded, n − j). Bytes: kept rows in fp16.

#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/core/model_config.hpp"

namespace kvcanary::kv {

struct ObservedAttention {
  static constexpr std::string_view name = "observed_attention";
  static constexpr Mode default_mode = Mode::Prompt;
  static constexpr std::string_view prompt_only_because =
      "its score averages the prefill's queries; decode-time accumulation is `h2o`";
  static std::string_view summary() {
    return "observed attention (KVPress; H2O's prefill score): prefill attention per row, averaged over the queries "
           "that saw it";
  }
  static constexpr auto parameter_table() { return std::tuple{}; }  // budget, mode and capacity only
  static ObservedAttention create(const PolicyOptions& o, const ModelConfig&) {
    return eviction::create<ObservedAttention>(o);
  }

  eviction::Common common;

  std::size_t attention_rows(StepKind kind, std::size_t n_tokens) const {
    return kind == StepKind::Prefill ? n_tokens : 0;
  }

  // s_j of one KV head from the record: masses of its group's query heads.
  static std::vector<float> scores(const AttentionRecord& record, std::size_t layer, std::size_t kvh, std::size_t n) {
    std::vector<double> acc(n, 0.0);
    for (std::size_t g = 0; g < record.group; ++g) {
      const auto& m = record.mass(layer, kvh * record.group + g);
      for (std::size_t j = 0; j < n && j < m.size(); ++j)
        acc[j] += static_cast<double>(m[j]) / static_cast<double>(std::min(record.rows, n - j));
    }
    std::vector<float> s(n);
    for (std::size_t j = 0; j < n; ++j) s[j] = static_cast<float>(acc[j] / static_cast<double>(record.group));
    return s;
  }

  void after_step(KvCache& cache, const AttentionRecord& record, StepKind kind) {
    if (!common.compresses(kind) || record.rows == 0) return;
    common.observe(cache, kind);
    eviction::keep_best_rows(cache, common, [&](std::size_t l, std::size_t h, const HeadStore& store) {
      return scores(record, l, h, store.size());
    });
  }

  std::size_t stored_bytes(const KvCache& c) const { return eviction::stored_fp16_bytes(c); }
  std::string identity() const { return common.prefix(name) + identity_suffix(*this) + ")"; }
};

static_assert(CachePolicy<ObservedAttention>);

}  // namespace kvcanary::kv
