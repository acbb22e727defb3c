#pragma once
// `chunkkv`: ChunkKV (Liu et al. 2025, "ChunkKV: Semantic-Preserving KV Cache Compression for
// Efficient Long-Context LLM Inference", arXiv:2502.00299). Token-level selection keeps
// scattered tokens and breaks the phrases they belong to; ChunkKV keeps whole chunks of
// `chunk_length` consecutive rows, ranked by the mean base score of their rows, summed over the
// layer's KV heads — one selection per layer, shared by its heads. As KVPress's ChunkKVPress:
//
//   S_c  = mean_{j ∈ chunk c} Σ_h s_{h,j}           (the last, partial chunk: the mean of its rows)
//   keep = the rows of the top max(1, ⌊chunks · budget⌋) chunks      (ties: the lower chunk)
//   no complete chunk (n < chunk_length): the base scorer's own top-C per head
//
// Base scorers (`scorer`, kv/base_scorer.hpp): `keydiff` (default), `knorm`, `snapkv`.
// Prompt only (KVPress's press compresses the prefill).
//
// Budget: KVPress's chunk count ⌊chunks · (1 − ratio)⌋, so the kept rows are whole chunks, not
// exactly C = ceil(budget · n): the measured bytes (kept rows in fp16) show the difference.
// Deviations: SnapKV's votes are kvcanary's (sums, max-pooled); deterministic ties.

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

struct ChunkKv {
  static constexpr std::string_view name = "chunkkv";
  static constexpr Mode default_mode = Mode::Prompt;
  static constexpr std::string_view prompt_only_because = "KVPress's press compresses the prefill";
  static constexpr std::array scorers = {BaseScorer::Kind::KeyDiff, BaseScorer::Kind::KNorm,
                                         BaseScorer::Kind::SnapKv};  // the first is the default (KVPress's)

  static std::string_view summary() {
    return "ChunkKV (Liu et al. 2025): whole chunks of rows kept by their mean base score over the layer's heads; "
           "prompt only";
  }
  static constexpr auto parameter_table() {
    return std::tuple{Parameter{"chunk_length", &ChunkKv::chunk_length, "rows per chunk (KVPress's default)", 1}};
  }
  // The table's chunk_length, then the base scorer's `scorer`, `window` and `kernel`.
  static std::vector<ParameterDoc> parameters() {
    std::vector<ParameterDoc> docs = parameter_docs<ChunkKv>();
    const std::vector<ParameterDoc> base_docs = BaseScorer::parameters(scorers);
    docs.insert(docs.end(), base_docs.begin(), base_docs.end());
    return docs;
  }
  static ChunkKv create(const PolicyOptions& o, const ModelConfig&) {
    ChunkKv p;
    p.common = eviction::Common::from<ChunkKv>(o);
    read_parameters(p, o);
    p.base = BaseScorer::from(o, scorers);
    o.reject_unknown(std::string(name));
    return p;
  }

  eviction::Common common;
  std::size_t chunk_length = 20;                  // KVPress's default
  BaseScorer base = {BaseScorer::Kind::KeyDiff};  // the per-row scores a chunk's mean is taken of

  std::size_t attention_rows(StepKind kind, std::size_t n_tokens) const { return base.attention_rows(kind, n_tokens); }

  // The chunks kept of a layer of n rows from its per-head scores: ascending chunk indices.
  static std::vector<std::size_t> chunks_kept(const std::vector<std::vector<float>>& scores, std::size_t n,
                                              std::size_t chunk_length, double budget) {
    const std::size_t complete = n / chunk_length, chunks = complete + (n % chunk_length ? 1 : 0);
    std::vector<double> mean(chunks, 0.0);
    for (std::size_t c = 0; c < chunks; ++c) {
      const std::size_t lo = c * chunk_length, hi = std::min(n, lo + chunk_length);
      double acc = 0;
      for (std::size_t j = lo; j < hi; ++j) {
        double col = 0;
        for (const auto& s : scores) col += static_cast<double>(s[j]);
        acc += col;
      }
      mean[c] = acc / static_cast<double>(hi - lo);
    }
    const auto keep =
        std::max<std::size_t>(1, static_cast<std::size_t>(std::floor(static_cast<double>(chunks) * budget + 1e-9)));
    std::vector<std::size_t> all(chunks);
    std::iota(all.begin(), all.end(), 0);
    return eviction::top_k<double>(mean, std::move(all), keep);
  }

  void after_step(KvCache& cache, const AttentionRecord& record, StepKind kind) {
    if (!common.compresses(kind)) return;
    if (base.reads_attention() && record.rows == 0) return;
    common.observe(cache, kind);
    const std::size_t D = cache.head_dim(), H = cache.kv_heads();
    for (std::size_t l = 0; l < cache.layers(); ++l) {
      const std::size_t n = cache.head(l, 0).size();
      if (common.keep(cache.tokens_seen(), 0, n) >= n) continue;  // the prompt fits the capacity
      std::vector<std::vector<float>> scores(H);
      for (std::size_t h = 0; h < H; ++h) scores[h] = base.scores(cache, record, l, h);
      if (n < chunk_length) {  // no complete chunk: the base scorer's top-C per head
        const std::size_t C = common.keep(cache.tokens_seen(), 0, n);
        for (std::size_t h = 0; h < H; ++h) {
          std::vector<std::size_t> all(n);
          std::iota(all.begin(), all.end(), 0);
          cache.head(l, h).keep(eviction::top_k<float>(scores[h], std::move(all), C), D);
        }
        continue;
      }
      std::vector<std::size_t> rows;
      for (std::size_t c : chunks_kept(scores, n, chunk_length, common.budget))
        for (std::size_t j = c * chunk_length; j < std::min(n, (c + 1) * chunk_length); ++j) rows.push_back(j);
      if (rows.size() == n) continue;
      for (std::size_t h = 0; h < H; ++h) cache.head(l, h).keep(rows, D);
    }
  }

  std::size_t stored_bytes(const KvCache& c) const { return eviction::stored_fp16_bytes(c); }
  std::string identity() const {
    return common.prefix(name) + identity_suffix(*this) + base.scorer_part() + base.window_part() + ")";
  }
};

static_assert(CachePolicy<ChunkKv>);

}  // namespace kvcanary::kv
