#pragma once
// `adakv`: Ada-KV (Feng et al. 2024, "Ada-KV: Optimizing KV Cache Eviction by Adaptive Budget
// Allocation for Efficient LLM Inference", arXiv:2407.11550). A uniform budget gives every head
// the same number of rows, although some heads concentrate their attention on a few rows and
// others spread it. Ada-KV ranks the rows of all KV heads of a layer together and keeps the
// layer's total, so heads hold different row counts; a floor per head (the "safeguard") keeps
// every head at least α·C of its best rows. As KVPress's AdaKVPress, per layer with H KV heads:
//
//   s_{h,j}            the base scorer's scores, per KV head (`scorer`, below)
//   safe               = floor(α · C) best rows of each head, forced to +∞
//   keep               = the H·C best (h, j) of the layer (ties: lower head, then lower row)
//
// so Σ_h kept_h = H·C (the budget's bytes, exactly) and kept_h ≥ floor(α·C).
//
// It really evicts: KVPress's AdaKVPress masks the pruned rows in attention and keeps them in
// memory (its cache does not shrink); here each head's HeadStore drops them, and stored_bytes
// counts what each head holds — the measured bytes are the budget's.
//
// Scorers (`scorer`, kv/base_scorer.hpp): `snapkv` (default: the paper's Ada-SnapKV), `keydiff`,
// `knorm`, `observed_attention` (KVPress cannot combine it, as its eager attention conflicts with
// the mask — here it is only a record). Prompt only, as the paper (it compresses the prefill).
//
// Deviations: C = ceil(budget · n) (KVPress: int(n·(1 − ratio))); SnapKV's votes are sums,
// max-pooled (kvcanary's snapkv), not KVPress's means, avg-pooled; ties are deterministic.

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kvcanary/kv/base_scorer.hpp"
#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/parameter_table.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/core/model_config.hpp"

namespace kvcanary::kv {

struct AdaKv {
  static constexpr std::string_view name = "adakv";
  static constexpr Mode default_mode = Mode::Prompt;
  static constexpr std::string_view prompt_only_because = "as the paper, it allocates the prefill's rows";
  static constexpr std::array scorers = {BaseScorer::Kind::SnapKv, BaseScorer::Kind::KeyDiff, BaseScorer::Kind::KNorm,
                                         BaseScorer::Kind::ObservedAttention};  // the first is the default (Ada-SnapKV)

  static std::string_view summary() {
    return "Ada-KV (Feng et al. 2024): a layer's rows ranked across its KV heads, per-head floor alpha*C; heads keep "
           "different counts; prompt only";
  }
  static constexpr auto parameter_table() {
    return std::tuple{Parameter{"alpha", &AdaKv::alpha,
                                "safeguard: each head keeps at least floor(alpha * C) of its best rows", 0, 1}};
  }
  // The base scorer's `scorer`, `window` and `kernel` around the table's alpha.
  static std::vector<ParameterDoc> parameters() {
    std::vector<ParameterDoc> docs = BaseScorer::parameters(scorers);
    const std::vector<ParameterDoc> own = parameter_docs<AdaKv>();
    docs.insert(docs.begin() + 1, own.begin(), own.end());
    return docs;
  }
  static AdaKv create(const PolicyOptions& o, const ModelConfig&) {
    AdaKv p;
    p.common = eviction::Common::from<AdaKv>(o);
    p.base = BaseScorer::from(o, scorers);
    read_parameters(p, o);
    o.reject_unknown(std::string(name));
    return p;
  }

  eviction::Common common;
  BaseScorer base;     // the per-head scores the layer's rows are ranked by
  double alpha = 0.2;  // the paper's safeguard share

  std::size_t attention_rows(StepKind kind, std::size_t n_tokens) const { return base.attention_rows(kind, n_tokens); }

  // Ada-KV's allocation over one layer's per-head scores: the rows each head keeps (ascending),
  // C per head on average, at least floor(alpha · C) each.
  static std::vector<std::vector<std::size_t>> allocate(std::vector<std::vector<float>> scores, std::size_t C,
                                                        double alpha) {
    const std::size_t H = scores.size();
    const std::size_t safe = static_cast<std::size_t>(std::floor(static_cast<double>(C) * alpha + 1e-9));
    struct Cand {
      float score;
      std::size_t head, row;
    };
    std::vector<Cand> all;
    for (std::size_t h = 0; h < H; ++h) {
      const std::size_t n = scores[h].size();
      std::vector<std::size_t> rows(n);
      std::iota(rows.begin(), rows.end(), 0);
      for (std::size_t r : eviction::top_k<float>(scores[h], rows, std::min(safe, n)))
        scores[h][r] = std::numeric_limits<float>::infinity();
      for (std::size_t r = 0; r < n; ++r) all.push_back({scores[h][r], h, r});
    }
    const std::size_t total = std::min(all.size(), H * C);
    auto better = [](const Cand& a, const Cand& b) {
      if (a.score != b.score) return a.score > b.score;
      return a.head != b.head ? a.head < b.head : a.row < b.row;
    };
    if (total < all.size())
      std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(total), all.end(), better);
    std::vector<std::vector<std::size_t>> kept(H);
    for (std::size_t i = 0; i < total; ++i) kept[all[i].head].push_back(all[i].row);
    for (auto& k : kept) std::sort(k.begin(), k.end());
    return kept;
  }

  void after_step(KvCache& cache, const AttentionRecord& record, StepKind kind) {
    if (!common.compresses(kind)) return;
    if (base.reads_attention() && record.rows == 0) return;
    common.observe(cache, kind);
    const std::size_t D = cache.head_dim(), H = cache.kv_heads();
    for (std::size_t l = 0; l < cache.layers(); ++l) {
      const std::size_t n = cache.head(l, 0).size();
      const std::size_t C = common.keep(cache.tokens_seen(), 0, n);
      if (C >= n) continue;  // the prompt fits the capacity
      std::vector<std::vector<float>> scores(H);
      for (std::size_t h = 0; h < H; ++h) scores[h] = base.scores(cache, record, l, h);
      const auto kept = allocate(std::move(scores), C, alpha);
      for (std::size_t h = 0; h < H; ++h)
        if (kept[h].size() != cache.head(l, h).size()) cache.head(l, h).keep(kept[h], D);
    }
  }

  std::size_t stored_bytes(const KvCache& c) const { return eviction::stored_fp16_bytes(c); }
  std::string identity() const {
    return common.prefix(name) + base.scorer_part() + identity_suffix(*this) + base.window_part() + ")";
  }
};

static_assert(CachePolicy<AdaKv>);

}  // namespace kvcanary::kv
