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
// Base scorers (`scorer`): `keydiff` (default), `knorm` (−‖k‖), `snapkv` (the observation
// window's max-pooled votes, window rows +∞, as KVPress's SnapKVPress pads them with its max + 1).
// Prompt only (KVPress's press compresses the prefill).
//
// Budget: KVPress's chunk count ⌊chunks · (1 − ratio)⌋, so the kept rows are whole chunks, not
// exactly C = ceil(budget · n): the measured bytes (kept rows in fp16) show the difference.
// Deviations: SnapKV's votes are kvcanary's (sums, max-pooled); deterministic ties.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/keydiff.hpp"
#include "kvcanary/kv/knorm.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/kv/snapkv.hpp"
#include "kvcanary/model/config.hpp"

namespace kvcanary::kv {

struct ChunkKv {
  enum class Scorer { KeyDiff, KNorm, SnapKv };

  static constexpr std::string_view name = "chunkkv";
  static constexpr Mode default_mode = Mode::Prompt;
  static constexpr bool prompt_only = true;
  static std::string_view summary() {
    return "ChunkKV (Liu et al. 2025): whole chunks of rows kept by their mean base score over the layer's heads; prompt only";
  }
  static std::vector<ParameterDoc> parameters() {
    return {{"chunk_length", "20", "rows per chunk (KVPress's default)"},
            {"scorer", "keydiff", "base scores: keydiff, knorm, snapkv"},
            {"window", "32", "snapkv scorer: observation window"},
            {"kernel", "7", "snapkv scorer: max-pooling kernel (odd)"}};
  }
  static ChunkKv create(const PolicyOptions& o, const model::Config&) {
    ChunkKv p;
    p.common = eviction::Common::from(o, default_mode);
    if (p.common.mode == Mode::Decode) fail(o.source(), "mode", "chunkkv is prompt-only (KVPress's press compresses the prefill)");
    p.chunk_length = static_cast<std::size_t>(o.get_int("chunk_length", 20, 1));
    const std::string s = o.get_string("scorer", "keydiff");
    if (s == "keydiff") p.scorer = Scorer::KeyDiff;
    else if (s == "knorm") p.scorer = Scorer::KNorm;
    else if (s == "snapkv") p.scorer = Scorer::SnapKv;
    else fail(o.source(), "scorer", "'" + s + "' is not one of keydiff, knorm, snapkv");
    p.window = static_cast<std::size_t>(o.get_int("window", 32, 1));
    p.kernel = static_cast<std::size_t>(o.get_int("kernel", 7, 1));
    if (p.kernel % 2 == 0) fail(o.source(), "kernel", "must be odd");
    o.reject_unknown(std::string(name));
    return p;
  }

  eviction::Common common;
  std::size_t chunk_length = 20, window = 32, kernel = 7;
  Scorer scorer = Scorer::KeyDiff;

  std::size_t attention_rows(StepKind kind, std::size_t n_tokens) const {
    return kind == StepKind::Prefill && scorer == Scorer::SnapKv ? std::min(window, n_tokens) : 0;
  }

  std::vector<float> head_scores(const KvCache& cache, const AttentionRecord& record, std::size_t l, std::size_t h) const {
    const HeadStore& store = cache.head(l, h);
    const std::size_t n = store.size(), D = cache.head_dim();
    if (scorer == Scorer::KeyDiff) return KeyDiff::scores(store.materialize_keys(D), n, D);
    if (scorer == Scorer::KNorm) return KNorm::scores(store, D);
    const std::size_t w = std::min(window, n);
    std::vector<float> s(n, std::numeric_limits<float>::infinity());
    const std::vector<float> vote = record.kv_head_mass(l, h);
    const std::vector<float> pooled = max_pool_1d(std::span<const float>(vote).first(n - w), kernel);
    std::copy(pooled.begin(), pooled.end(), s.begin());
    return s;
  }

  // The chunks kept of a layer of n rows from its per-head scores: ascending chunk indices.
  static std::vector<std::size_t> chunks_kept(const std::vector<std::vector<float>>& scores, std::size_t n, std::size_t chunk_length,
                                              double budget) {
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
    const auto keep = std::max<std::size_t>(1, static_cast<std::size_t>(std::floor(static_cast<double>(chunks) * budget + 1e-9)));
    std::vector<std::size_t> all(chunks);
    std::iota(all.begin(), all.end(), 0);
    return eviction::top_k<double>(mean, std::move(all), keep);
  }

  void after_step(KvCache& cache, const AttentionRecord& record, StepKind kind) {
    if (!common.compresses(kind)) return;
    if (scorer == Scorer::SnapKv && record.rows == 0) return;
    common.observe(cache, kind);
    const std::size_t D = cache.head_dim(), H = cache.kv_heads();
    for (std::size_t l = 0; l < cache.layers(); ++l) {
      const std::size_t n = cache.head(l, 0).size();
      if (common.keep(cache.tokens_seen(), 0, n) >= n) continue;  // the prompt fits the capacity
      std::vector<std::vector<float>> scores(H);
      for (std::size_t h = 0; h < H; ++h) scores[h] = head_scores(cache, record, l, h);
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
    std::string id = common.prefix(name) + ",chunk_length=" + std::to_string(chunk_length) + ",scorer=" +
                     (scorer == Scorer::KeyDiff ? "keydiff" : scorer == Scorer::KNorm ? "knorm" : "snapkv");
    if (scorer == Scorer::SnapKv) id += ",window=" + std::to_string(window) + ",kernel=" + std::to_string(kernel);
    return id + ")";
  }
};

static_assert(CachePolicy<ChunkKv>);

}  // namespace kvcanary::kv
