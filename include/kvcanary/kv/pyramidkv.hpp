#pragma once
// `pyramidkv`: PyramidKV (Cai et al. 2024, "PyramidKV: Dynamic KV Cache Compression based on
// Pyramidal Information Funneling", arXiv:2406.02069). Lower layers spread their attention
// wide, upper layers focus it, so the rows are allocated in a pyramid: more in the first
// layers, fewer in the last, the same total as a uniform budget. Within a layer the rows are
// SnapKV's (kv/snapkv.hpp: the observation window's max-pooled votes, top-k + the window).
//
// Layer budgets, as KVPress's PyramidKVPress.get_layer_budget (after the authors'
// KVCache-Factory), with C the capacity (kv/eviction.hpp), n the prompt rows, w the window,
// L layers and β the steepness:
//
//   min = C / β,   max = 2C − min;   if max ≥ n − w: max = n − w, min = 2C − max
//   k_l = round(max − l · (max − min)/(L − 1))         if n ≥ max ≥ min ≥ w
//   k_l = C                                            otherwise (SnapKV's uniform budget)
//
// (round: half to even, Python's). Σ_l k_l ≈ L·C, so the measured bytes match the budget's
// up to rounding. KVPress writes max_capacity_prompt = w + C and subtracts w again; the
// algebra is the same.
//
// Prompt only, as SnapKV. Deviations: SnapKV's scoring is kvcanary's (votes summed over the
// window and the GQA group, max-pooled as the SnapKV paper; KVPress averages and avg-pools —
// a monotone rescaling of the sum, but not of the pooling); ties to the lowest row. Bytes: each
// layer's kept rows in fp16, so layers hold different row counts.

#include <cmath>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/parameter_table.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/kv/snapkv.hpp"
#include "kvcanary/core/model_config.hpp"

namespace kvcanary::kv {

struct PyramidKv {
  static constexpr std::string_view name = "pyramidkv";
  static constexpr Mode default_mode = Mode::Prompt;
  static constexpr std::string_view prompt_only_because = "as SnapKV, whose selection it uses";
  static std::string_view summary() {
    return "PyramidKV (Cai et al. 2024): SnapKV's selection with a pyramid of per-layer budgets (more rows low, fewer "
           "high); prompt only";
  }
  static constexpr auto parameter_table() {
    return std::tuple{
        Parameter{"window", &PyramidKv::window, "SnapKV's observation window (as snapkv)", 1},
        Parameter{"kernel", &PyramidKv::kernel, "SnapKV's max-pooling kernel (as snapkv)", 1, no_max, odd_kernel},
        Parameter{"beta", &PyramidKv::beta,
                  "pyramid steepness: the last layer gets C/beta rows before the n − window cap", 1}};
  }
  static PyramidKv create(const PolicyOptions& o, const ModelConfig&) { return eviction::create<PyramidKv>(o); }

  eviction::Common common;
  std::size_t window = 32, kernel = 7;
  double beta = 20.0;

  // Python's round(): half to even.
  static double round_half_even(double x) {
    const double r = std::round(x);
    return std::abs(x - std::trunc(x)) == 0.5 ? 2.0 * std::round(x / 2.0) : r;
  }

  // k_l for layer l of L, capacity C, n prompt rows, window w.
  static std::size_t layer_budget(std::size_t l, std::size_t L, double C, std::size_t n, std::size_t w, double beta) {
    double min_num = C / beta, max_num = 2.0 * C - min_num;
    const double cap = static_cast<double>(n) - static_cast<double>(w);
    if (max_num >= cap) {
      max_num = cap;
      min_num = 2.0 * C - max_num;
    }
    if (L < 2 || !(static_cast<double>(n) >= max_num && max_num >= min_num && min_num >= static_cast<double>(w)))
      return static_cast<std::size_t>(C);
    const double steps = (max_num - min_num) / static_cast<double>(L - 1);
    return static_cast<std::size_t>(round_half_even(max_num - static_cast<double>(l) * steps));
  }

  // The observation window is recorded for every prompt; its rows are the last `window`.
  std::size_t attention_rows(StepKind kind, std::size_t n_tokens) const {
    return kind == StepKind::Prefill ? std::min(window, n_tokens) : 0;
  }

  void after_step(KvCache& cache, const AttentionRecord& record, StepKind kind) {
    if (!common.compresses(kind) || record.rows == 0) return;
    common.observe(cache, kind);
    const std::size_t D = cache.head_dim(), L = cache.layers();
    for (std::size_t l = 0; l < L; ++l)
      for (std::size_t h = 0; h < cache.kv_heads(); ++h) {
        HeadStore& store = cache.head(l, h);
        const std::size_t n = store.size();
        const std::size_t C = common.keep(cache.tokens_seen(), 0, n);
        if (C >= n) continue;  // SnapKV's rule: a prompt within the capacity is not compressed
        const std::size_t k = std::min(n, layer_budget(l, L, static_cast<double>(C), n, window, beta));
        const auto kept = snapkv_select(record.kv_head_mass(l, h), n, k, window, kernel);
        if (kept.size() != n) store.keep(kept, D);
      }
  }

  std::size_t stored_bytes(const KvCache& c) const { return eviction::stored_fp16_bytes(c); }
  std::string identity() const { return common.prefix(name) + identity_suffix(*this) + ")"; }
};

static_assert(CachePolicy<PyramidKv>);

}  // namespace kvcanary::kv
