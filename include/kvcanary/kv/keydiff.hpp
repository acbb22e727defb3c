#pragma once
// `keydiff`: KeyDiff (Park et al. 2025, "KeyDiff: Key Similarity-Based KV Cache Eviction for
// Long-Context LLM Inference in Resource-Constrained Environments", arXiv:2504.15364). Keys that
// point where most keys point carry little that the others do not; the cache keeps the most
// *distinctive* keys, by their cosine to the mean normalised key of the head:
//
//   a   = mean_j k_j / ‖k_j‖                      (the anchor, per layer and KV head)
//   s_j = −cos(k_j, a) = −k_j·a / (max(‖k_j‖, ε) · max(‖a‖, ε))      ε = 1e-8
//   keep = topk(s, C)
//
// as KVPress's KeyDiffPress scores it (F.normalize with eps 1e-12 for the anchor, then
// F.cosine_similarity). No attention is needed, so it suits fused attention kernels. Stored keys
// are post-RoPE, as KVPress's cache keys. Accumulation in double, one fixed order.
//
// Deviations: the paper compresses block-wise while prefilling (KVPress: BlockPress around
// this scorer); kvcanary's prefill is one block, so prompt mode is KVPress's KeyDiffPress.
// Decode mode re-scores every row after each step — with capacity fixed, one eviction per new
// token, the paper's block size 1. Budget: C = ceil(budget · n) (KVPress: int(n · (1 − ratio))).
// Ties: lowest row kept (kv/eviction.hpp). Bytes: kept rows in fp16.

#include <cmath>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/core/model_config.hpp"

namespace kvcanary::kv {

struct KeyDiff {
  static constexpr std::string_view name = "keydiff";
  static constexpr Mode default_mode = Mode::Prompt;
  static std::string_view summary() {
    return "KeyDiff (Park et al. 2025): keep the keys least similar (cosine) to the head's mean normalised key";
  }
  static constexpr auto parameter_table() { return std::tuple{}; }  // budget, mode and capacity only
  static KeyDiff create(const PolicyOptions& o, const ModelConfig&) { return eviction::create<KeyDiff>(o); }

  eviction::Common common;

  std::size_t attention_rows(StepKind, std::size_t) const { return 0; }

  // s_j for the n rows of `keys` ([n, head_dim], post-RoPE).
  static std::vector<float> scores(std::span<const float> keys, std::size_t n, std::size_t head_dim) {
    std::vector<double> anchor(head_dim, 0.0), norm(n, 0.0);
    for (std::size_t r = 0; r < n; ++r) {
      const float* k = &keys[r * head_dim];
      double ss = 0;
      for (std::size_t d = 0; d < head_dim; ++d) ss += static_cast<double>(k[d]) * k[d];
      norm[r] = std::sqrt(ss);
      const double inv = 1.0 / std::max(norm[r], 1e-12);
      for (std::size_t d = 0; d < head_dim; ++d) anchor[d] += k[d] * inv;
    }
    double anorm = 0;
    for (double& a : anchor) {
      a /= static_cast<double>(n);
      anorm += a * a;
    }
    anorm = std::max(std::sqrt(anorm), 1e-8);
    std::vector<float> s(n);
    for (std::size_t r = 0; r < n; ++r) {
      const float* k = &keys[r * head_dim];
      double dot = 0;
      for (std::size_t d = 0; d < head_dim; ++d) dot += k[d] * anchor[d];
      s[r] = static_cast<float>(-dot / (std::max(norm[r], 1e-8) * anorm));
    }
    return s;
  }

  void after_step(KvCache& cache, const AttentionRecord&, StepKind kind) {
    if (!common.compresses(kind)) return;
    common.observe(cache, kind);
    const std::size_t D = cache.head_dim();
    eviction::keep_best_rows(cache, common, [&](std::size_t, std::size_t, const HeadStore& store) {
      return scores(store.materialize_keys(D), store.size(), D);
    });
  }

  std::size_t stored_bytes(const KvCache& c) const { return eviction::stored_fp16_bytes(c); }
  std::string identity() const { return common.prefix(name) + identity_suffix(*this) + ")"; }
};

static_assert(CachePolicy<KeyDiff>);

}  // namespace kvcanary::kv
