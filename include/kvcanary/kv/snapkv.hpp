#pragma once
// `snapkv`: SnapKV (Li et al. 2024, "SnapKV: LLM Knows What You are Looking for Before
// Generation", arXiv:2404.14469). The last `window` prompt tokens (the observation window)
// vote for the prefix rows they attend to; votes are smoothed by 1-D max-pooling so that a
// selected row brings its neighbours (the paper's clustering step, which keeps a token's
// context intact); the top-k prefix rows plus the window itself are kept.
//
//   vote_j  = Σ_{i ∈ window} Σ_{h ∈ group} softmax(q_i^h K^T)_j        j in the prefix
//   pool_j  = max(vote_{j−⌊kernel/2⌋} … vote_{j+⌊kernel/2⌋})           (max_pool1d, stride 1,
//             padding kernel/2 with −∞, as the paper's listing)
//   keep    = topk(pool, C − w) ∪ window,   w = min(window, C)
//
// C is the capacity (kv/eviction.hpp; fixed: the paper's max_capacity_prompt as a share of the
// prompt). As the paper's code: a prompt of at most C rows is not compressed, and the
// observation window never exceeds the capacity (w = min(window, C): below `window` rows of
// capacity SnapKV keeps the last C rows, as the authors' and KVPress's window-first selection
// would — there is no floor that keeps more rows than the budget).
//
// GQA: selection is per KV head with the group's query heads summed (AttentionRecord::
// kv_head_mass); the paper's code repeats K/V per query head and selects per query head,
// which a shared cache cannot store.
//
// Prompt only, as the paper: the prompt is compressed once and generated rows are appended.
// Decode mode is refused; kvcanary ≤ 0.2's decode mode (a rolling re-selection that behaves
// like H2O) is `snapkv_rolling` (kv/snapkv_rolling.hpp).

#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/parameter_table.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/core/model_config.hpp"

namespace kvcanary::kv {

// max_pool1d(x, kernel, stride 1, padding kernel/2) for odd kernel: same length as x,
// out-of-range neighbours ignored (PyTorch pads max-pooling with −∞).
inline std::vector<float> max_pool_1d(std::span<const float> x, std::size_t kernel) {
  const std::size_t n = x.size(), r = kernel / 2;
  std::vector<float> out(n);
  for (std::size_t j = 0; j < n; ++j) {
    float m = -std::numeric_limits<float>::infinity();
    const std::size_t lo = j >= r ? j - r : 0, hi = std::min(n - 1, j + r);
    for (std::size_t t = lo; t <= hi; ++t) m = std::max(m, x[t]);
    out[j] = m;
  }
  return out;
}

// SnapKV's selection of k rows of an n-row head from the observation window's votes (one per
// row; the window rows' own votes unused): the last w = min(window, k) rows, and the k − w
// prefix rows with the largest max-pooled vote. k ≥ n: every row (not compressed). Shared with
// PyramidKV, which only changes k per layer.
inline std::vector<std::size_t> snapkv_select(std::span<const float> vote, std::size_t n, std::size_t k,
                                              std::size_t window, std::size_t kernel) {
  if (k >= n) return eviction::last_rows(n, n);
  const std::size_t w = std::min(window, k);
  const std::size_t prefix = n - w;
  const std::vector<float> pooled = max_pool_1d(vote.first(prefix), kernel);
  std::vector<std::size_t> candidates(prefix);
  std::iota(candidates.begin(), candidates.end(), 0);
  std::vector<std::size_t> kept = eviction::top_k<float>(pooled, std::move(candidates), k - w);
  for (std::size_t r = prefix; r < n; ++r) kept.push_back(r);
  return kept;
}

struct SnapKv {
  static constexpr std::string_view name = "snapkv";
  static constexpr Mode default_mode = Mode::Prompt;  // the paper compresses the prompt once
  static constexpr std::string_view prompt_only_because =
      "as the paper, it compresses the prompt once; kvcanary 0.2's decode-mode re-selection is `snapkv_rolling`";
  static std::string_view summary() {
    return "SnapKV (Li et al. 2024): prefix rows voted by the last `window` queries, max-pooled, top-k + window kept; "
           "prompt only";
  }
  static constexpr auto parameter_table() {
    return std::tuple{
        Parameter{"window", &SnapKv::window,
                  "observation window: the last min(window, capacity) queries vote and their rows are kept", 1},
        Parameter{"kernel", &SnapKv::kernel, "max-pooling kernel over the votes (odd; 1 disables pooling)", 1, no_max,
                  odd_kernel}};
  }
  static SnapKv create(const PolicyOptions& o, const ModelConfig&) { return eviction::create<SnapKv>(o); }

  eviction::Common common;
  std::size_t window = 32, kernel = 7;

  // The observation window of a prefill of n tokens: never more than the capacity. A chunked
  // prefill's later chunk compresses against the whole prompt's capacity, which it cannot know
  // here, so it records `window` rows and selection trims the window.
  std::size_t attention_rows(StepKind kind, std::size_t n_tokens) const {
    if (kind != StepKind::Prefill) return 0;
    return std::min(
        window, std::max<std::size_t>(1, eviction::budget_rows(common.budget, static_cast<std::int64_t>(n_tokens))));
  }

  // Rows kept by one head of n rows from its votes (one per row; window rows' votes unused).
  std::vector<std::size_t> selection(std::span<const float> vote, std::size_t n, std::int64_t seen) const {
    return snapkv_select(vote, n, common.keep(seen, 0, n), window, kernel);
  }

  void after_step(KvCache& cache, const AttentionRecord& record, StepKind kind) {
    if (!common.compresses(kind)) return;
    common.observe(cache, kind);
    const std::size_t L = cache.layers(), KVH = cache.kv_heads(), D = cache.head_dim();
    for (std::size_t l = 0; l < L; ++l)
      for (std::size_t h = 0; h < KVH; ++h) {
        HeadStore& store = cache.head(l, h);
        const std::size_t n = store.size();
        const std::vector<float> vote = record.rows ? record.kv_head_mass(l, h) : std::vector<float>(n, 0.0f);
        const auto kept = selection(vote, n, cache.tokens_seen());
        if (kept.size() != n) store.keep(kept, D);
      }
  }

  std::size_t stored_bytes(const KvCache& c) const { return eviction::stored_fp16_bytes(c); }
  std::string identity() const { return common.prefix(name) + identity_suffix(*this) + ")"; }
};

static_assert(CachePolicy<SnapKv>);

}  // namespace kvcanary::kv
