#pragma once
// `expected_attention`: Expected Attention (Devoto et al. 2025, "Expected Attention: KV Cache
// Compression by Estimating Attention from Future Queries Distribution", arXiv:2510.00636;
// NVIDIA KVPress's ExpectedAttentionPress). A row matters by the attention the *next* queries
// will pay it, not the past ones: the prefill's queries are modelled as a Gaussian, carried to
// the next F positions by RoPE's average rotation, and each key's expected attention is the
// closed form of E[exp(q·k/√d)] under that Gaussian.
//
// Per layer and query head h (μ, Σ: mean and population covariance of the prefill's pre-RoPE
// queries of head h, rows n_sink … n−1; d = head_dim; n = prompt rows):
//
//   R̄       = (1/F) Σ_{t=0}^{F−1} R(n + t)           RoPE's rotation matrix, averaged over the
//                                                     next F positions (rotate_half layout:
//                                                     R̄ = diag(c̄) + diag(s̄)·P, c̄_i, s̄_i the
//                                                     means of cos and sin of (n+t)·θ_i)
//   μ̄ = R̄ μ,   Σ̄ = R̄ Σ R̄ᵀ
//   z_j^h   = μ̄·k_j / √d + k_jᵀ Σ̄ k_j / (2d)          log E[exp(q·k_j/√d)], q ~ N(μ̄, Σ̄)
//   s_j     = ( (1/G) Σ_{h ∈ group} softmax_j(z^h) + ε ) · ‖v_j‖      j = n_sink … n−1
//   keep    = rows 0 … n_sink−1  ∪  topk(s, C − n_sink)
//
// Keys k_j are the cache's, post-RoPE (KVPress's cache keys are too); the softmax runs over
// the non-sink rows of one head; the group mean is KVPress's GQA handling. The forward pass
// sums the moments (kv/policy.hpp, step 1b): attention_rows = n − n_sink, so the record is
// exactly the rows KVPress takes (hidden_states[:, n_sink:]).
//
// Deviations, each deliberate:
//   * μ includes q_proj's bias. KVPress forms μ = W_q·mean(h) without it; Qwen2 has a
//     q bias, and the Gaussian is of the queries themselves. Σ is unaffected.
//   * Sinks are protected rows of the selection; KVPress pads their scores with the maximum,
//     which keeps the same rows except on an exact tie with the maximum.
//   * C = ceil(budget · n) (KVPress: int(n · (1 − ratio))); ties to the lowest row.
//   * Arithmetic in double (KVPress: the model's dtype); cos/sin of fp32 angles as the forward
//     pass's RoPE table.
// Prompt only: the statistics are the prefill's queries. The paper's decoding variant keeps
// running statistics of generated queries (KVPress's DecodingPress wrapper), not built here.
// Bytes: kept rows in fp16.

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/parameter_table.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/core/model_config.hpp"
#include "kvcanary/ops/rope.hpp"

namespace kvcanary::kv {

// The Gaussian of one query head's future queries: μ̄ (head_dim) and Σ̄ (head_dim, head_dim).
struct FutureQueries {
  std::vector<double> mean;
  std::vector<double> cov;  // empty without covariance
};

struct ExpectedAttention {
  static constexpr std::string_view name = "expected_attention";
  static constexpr Mode default_mode = Mode::Prompt;
  static constexpr std::string_view prompt_only_because =
      "its Gaussian is fitted to the prefill's queries; the paper's decoding variant (running statistics of generated "
      "queries) is not built";
  static std::string_view summary() {
    return "Expected Attention (Devoto et al. 2025): attention future queries are expected to pay, from a Gaussian of "
           "the prefill's "
           "queries carried forward by RoPE, times ‖V‖";
  }
  static constexpr auto parameter_table() {
    using P = ExpectedAttention;
    return std::tuple{
        Parameter{"n_future_positions", &P::n_future, "F: future positions whose RoPE rotations are averaged", 1},
        Parameter{"n_sink", &P::n_sink,
                  "first rows always kept and left out of the query statistics (attention sinks)"},
        Parameter{"use_covariance", &P::use_covariance, "1: the Σ term k·Σ̄·k / 2d; 0: the mean query only"},
        Parameter{"use_vnorm", &P::use_vnorm,
                  "1: scores times ‖v_j‖ (after adding epsilon); 0: expected attention alone"},
        Parameter{"epsilon", &P::epsilon, "ε added to the expected attention before the ‖v‖ rescaling", 0}};
  }
  static ExpectedAttention create(const PolicyOptions& o, const ModelConfig& c) {
    ExpectedAttention p = eviction::create<ExpectedAttention>(o);
    if (c.head_dim > 0) p.inv_freq = ops::rope_inverse_frequencies(c);
    return p;
  }

  eviction::Common common;
  std::size_t n_future = 512, n_sink = 4;
  bool use_covariance = true, use_vnorm = true;
  double epsilon = 0.0;
  std::vector<float> inv_freq;  // (head_dim / 2): the model's RoPE frequencies

  // The prefill's rows after the sinks; their pre-RoPE query moments come with them.
  std::size_t attention_rows(StepKind kind, std::size_t n_tokens) const {
    return kind == StepKind::Prefill && n_tokens > n_sink ? n_tokens - n_sink : 0;
  }
  bool query_moments(StepKind kind) const { return kind == StepKind::Prefill; }

  // R̄ of the positions first_position … first_position + n_future − 1: the means c̄_i, s̄_i of
  // cos and sin of each frequency's angle (fp32 angles, as the forward pass's RoPE table). The
  // same for every layer and head, so after_step builds it once.
  struct MeanRotation {
    std::vector<double> cos, sin;  // (head_dim / 2)

    // R̄·x in the rotate_half layout: (R̄x)_i = c̄_i x_i − s̄_i x_{i+d/2}, (R̄x)_{i+d/2} = c̄_i x_{i+d/2} + s̄_i x_i.
    void apply(const double* x, std::size_t stride, double* out, std::size_t out_stride) const {
      const std::size_t half = cos.size();
      for (std::size_t i = 0; i < half; ++i) {
        const double a = x[i * stride], b = x[(i + half) * stride];
        out[i * out_stride] = cos[i] * a - sin[i] * b;
        out[(i + half) * out_stride] = cos[i] * b + sin[i] * a;
      }
    }
  };
  static MeanRotation mean_rotation(std::span<const float> inv_freq, std::int64_t first_position,
                                    std::size_t n_future) {
    MeanRotation r{std::vector<double>(inv_freq.size(), 0.0), std::vector<double>(inv_freq.size(), 0.0)};
    for (std::size_t t = 0; t < n_future; ++t)
      for (std::size_t i = 0; i < inv_freq.size(); ++i) {
        const float angle = static_cast<float>(first_position + static_cast<std::int64_t>(t)) * inv_freq[i];
        r.cos[i] += std::cos(static_cast<double>(angle));
        r.sin[i] += std::sin(static_cast<double>(angle));
      }
    for (std::size_t i = 0; i < inv_freq.size(); ++i)
      r.cos[i] /= static_cast<double>(n_future), r.sin[i] /= static_cast<double>(n_future);
    return r;
  }

  // μ̄ and Σ̄ of one query head from the moments of `count` queries (Σq, Σqqᵀ), carried by R̄.
  static FutureQueries future_queries(const double* sum, const double* outer, std::size_t count, std::size_t head_dim,
                                      const MeanRotation& rotation, bool with_covariance) {
    const std::size_t D = head_dim;
    FutureQueries f;
    std::vector<double> mu(D);
    for (std::size_t i = 0; i < D; ++i) mu[i] = sum[i] / static_cast<double>(count);
    f.mean.resize(D);
    rotation.apply(mu.data(), 1, f.mean.data(), 1);
    if (!with_covariance) return f;
    std::vector<double> cov(D * D), a(D * D);
    for (std::size_t i = 0; i < D; ++i)
      for (std::size_t j = 0; j < D; ++j)
        cov[i * D + j] = outer[i * D + j] / static_cast<double>(count) - mu[i] * mu[j];
    for (std::size_t j = 0; j < D; ++j) rotation.apply(&cov[j], D, &a[j], D);  // A = R̄Σ, column by column
    f.cov.resize(D * D);
    for (std::size_t i = 0; i < D; ++i)
      rotation.apply(&a[i * D], 1, &f.cov[i * D], 1);  // Σ̄ = A·R̄ᵀ: R̄ applied to A's rows
    return f;
  }

  // s_j of one KV head's n rows (keys and values [n, head_dim]) under its group's future
  // queries; the first n_sink rows get the maximum of the others (KVPress's padding).
  static std::vector<double> scores(std::span<const float> keys, std::span<const float> values, std::size_t n,
                                    std::size_t head_dim, std::span<const FutureQueries> group, std::size_t n_sink,
                                    bool use_vnorm, double epsilon) {
    const std::size_t D = head_dim;
    std::vector<double> s(n, 0.0), z(n);
    if (n <= n_sink) return s;
    const double inv_sqrt_d = 1.0 / std::sqrt(static_cast<double>(D));
    for (const FutureQueries& f : group) {
      double zmax = -INFINITY;
      for (std::size_t j = n_sink; j < n; ++j) {
        const float* k = &keys[j * D];
        double dot = 0;
        for (std::size_t i = 0; i < D; ++i) dot += f.mean[i] * k[i];
        z[j] = dot * inv_sqrt_d;
        if (!f.cov.empty()) {
          double quad = 0;
          for (std::size_t i = 0; i < D; ++i) {
            double row = 0;
            for (std::size_t m = 0; m < D; ++m) row += f.cov[i * D + m] * k[m];
            quad += k[i] * row;
          }
          z[j] += quad / static_cast<double>(D) / 2.0;
        }
        zmax = std::max(zmax, z[j]);
      }
      double total = 0;
      for (std::size_t j = n_sink; j < n; ++j) total += (z[j] = std::exp(z[j] - zmax));
      for (std::size_t j = n_sink; j < n; ++j) s[j] += z[j] / total;
    }
    double best = -INFINITY;
    for (std::size_t j = n_sink; j < n; ++j) {
      s[j] /= static_cast<double>(group.size());
      if (use_vnorm) {
        double vv = 0;
        for (std::size_t i = 0; i < D; ++i) vv += static_cast<double>(values[j * D + i]) * values[j * D + i];
        s[j] = (s[j] + epsilon) * std::sqrt(vv);
      }
      best = std::max(best, s[j]);
    }
    for (std::size_t j = 0; j < n_sink; ++j) s[j] = best;
    return s;
  }

  void after_step(KvCache& cache, const AttentionRecord& record, StepKind kind) {
    if (!common.compresses(kind) || record.rows == 0) return;
    if (!record.has_query_moments())
      fail("<expected_attention>", "record", "the prefill's query moments were not recorded (kv/policy.hpp, step 1b)");
    common.observe(cache, kind);
    const std::size_t D = cache.head_dim(), G = record.group;
    const MeanRotation rotation = mean_rotation(inv_freq, cache.next_position(), n_future);
    std::vector<std::size_t> sinks;
    for (std::size_t l = 0; l < cache.layers(); ++l)
      for (std::size_t h = 0; h < cache.kv_heads(); ++h) {
        HeadStore& store = cache.head(l, h);
        const std::size_t n = store.size(), protect = std::min(n_sink, n),
                          k = common.keep(cache.tokens_seen(), protect, n);
        if (k >= n) continue;
        std::vector<FutureQueries> group;
        for (std::size_t g = 0; g < G; ++g)
          group.push_back(future_queries(record.sum_of_queries(l, h * G + g), record.outer_of_queries(l, h * G + g),
                                         record.rows, D, rotation, use_covariance));
        const std::vector<float> keys = store.materialize_keys(D), values = store.materialize_values(D);
        const std::vector<double> s = scores(keys, values, n, D, group, n_sink, use_vnorm, epsilon);
        sinks.resize(protect);
        std::iota(sinks.begin(), sinks.end(), 0);
        store.keep(eviction::select<double>(s, n, sinks, k), D);
      }
  }

  std::size_t stored_bytes(const KvCache& c) const { return eviction::stored_fp16_bytes(c); }
  std::string identity() const { return common.prefix(name) + identity_suffix(*this) + ")"; }
};

static_assert(CachePolicy<ExpectedAttention>);

}  // namespace kvcanary::kv
