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
//   keep    = topk(pool, k − window) ∪ window,   k = ceil(budget · tokens_seen)
//
// GQA: selection is per KV head with the group's query heads summed (AttentionRecord::
// kv_head_mass); the paper's code repeats K/V per query head and selects per query head,
// which a shared cache cannot store.
//
// Decode mode (not in the paper, which compresses the prompt once): after every decode step
// the policy re-selects with the last `window` queries. Each step records its one new query;
// the policy keeps the last `window` per-step votes (following rows through evictions). Until
// `window` decode steps have passed, the prompt's window queries that are still among the
// last `window` are represented by their mean vote (the prefill records only their sum):
// vote = Σ decode votes + (window − steps)/rows_recorded · prompt vote.

#include <deque>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/model/config.hpp"

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

struct SnapKv {
  static constexpr std::string_view name = "snapkv";
  static std::string_view summary() {
    return "SnapKV (Li et al. 2024): prefix rows voted by the last `window` queries, max-pooled, top-k + window kept";
  }
  static std::vector<ParameterDoc> parameters() {
    return {{"window", "32", "observation window: the last `window` queries vote and their rows are always kept"},
            {"kernel", "7", "max-pooling kernel over the votes (odd; 1 disables pooling)"}};
  }
  static SnapKv create(const PolicyOptions& o, const model::Config&) {
    SnapKv p;
    p.common = eviction::Common::from(o);
    p.window = static_cast<std::size_t>(o.get_int("window", 32, 1));
    p.kernel = static_cast<std::size_t>(o.get_int("kernel", 7, 1));
    if (p.kernel % 2 == 0) fail(o.source(), "kernel", "must be odd (max_pool1d with padding kernel/2 keeps the length only then)");
    o.reject_unknown(std::string(name));
    return p;
  }

  eviction::Common common;
  std::size_t window = 32, kernel = 7;

  // Decode-mode observation state, per [layer * kv_heads + kv_head] and row.
  std::vector<std::vector<float>> prompt_vote;
  double prompt_rows = 0;  // query rows the prompt vote sums
  std::deque<std::vector<std::vector<float>>> step_votes;  // newest last, at most `window`

  std::size_t attention_rows(StepKind kind, std::size_t) const {
    if (kind == StepKind::Prefill) return window;
    return common.mode == Mode::Decode ? 1 : 0;
  }

  // Rows kept by one head of n rows from its votes (one per row; window rows' votes unused).
  std::vector<std::size_t> selection(std::span<const float> vote, std::size_t n, std::int64_t seen) const {
    const std::size_t w = std::min(window, n);
    const std::size_t k = eviction::keep_count(common.budget, seen, w, n);
    if (k >= n) return eviction::last_rows(n, n);
    const std::size_t prefix = n - w;
    const std::vector<float> pooled = max_pool_1d(vote.first(prefix), kernel);
    std::vector<std::size_t> candidates(prefix);
    std::iota(candidates.begin(), candidates.end(), 0);
    std::vector<std::size_t> kept = eviction::top_k<float>(pooled, std::move(candidates), k - w);
    for (std::size_t r = prefix; r < n; ++r) kept.push_back(r);
    return kept;
  }

  void after_step(KvCache& cache, const AttentionRecord& record, StepKind kind) {
    if (!common.compresses(kind)) return;
    const std::size_t L = cache.layers(), KVH = cache.kv_heads(), D = cache.head_dim();
    const bool tracking = common.mode == Mode::Decode;
    if (kind == StepKind::Prefill || prompt_vote.size() != L * KVH) {
      prompt_vote.assign(L * KVH, {});
      step_votes.clear();
      prompt_rows = kind == StepKind::Prefill ? static_cast<double>(record.rows) : 0.0;
    }
    std::vector<std::vector<float>> now(L * KVH);
    for (std::size_t l = 0; l < L; ++l)
      for (std::size_t h = 0; h < KVH; ++h) now[l * KVH + h] = record.rows ? record.kv_head_mass(l, h) : std::vector<float>{};
    if (kind == StepKind::Prefill) {
      if (tracking) prompt_vote = now;
    } else {
      step_votes.push_back(std::move(now));
      if (step_votes.size() > window) step_votes.pop_front();
    }

    for (std::size_t l = 0; l < L; ++l)
      for (std::size_t h = 0; h < KVH; ++h) {
        HeadStore& store = cache.head(l, h);
        const std::size_t n = store.size(), idx = l * KVH + h;
        std::vector<float> vote(n, 0.0f);
        if (kind == StepKind::Prefill) {
          vote = now[idx];
        } else {
          // Prompt queries still among the last `window`, as their mean vote.
          const double left = static_cast<double>(window) - static_cast<double>(step_votes.size());
          if (left > 0 && prompt_rows > 0) {
            const float scale = static_cast<float>(std::min(left, prompt_rows) / prompt_rows);
            for (std::size_t j = 0; j < prompt_vote[idx].size(); ++j) vote[j] += scale * prompt_vote[idx][j];
          }
          for (const auto& step : step_votes)
            for (std::size_t j = 0; j < step[idx].size(); ++j) vote[j] += step[idx][j];
        }
        const auto kept = selection(vote, n, cache.tokens_seen());
        if (kept.size() == n) continue;
        store.keep(kept, D);
        if (tracking) {
          compact(prompt_vote[idx], kept);
          for (auto& step : step_votes) compact(step[idx], kept);
        }
      }
  }

  std::size_t stored_bytes(const KvCache& c) const { return eviction::stored_fp16_bytes(c); }
  std::string identity() const {
    return common.prefix(name) + ",window=" + std::to_string(window) + ",kernel=" + std::to_string(kernel) + ")";
  }

 private:
  // A vote vector follows its rows through an eviction; rows appended after it was recorded
  // (indices past its end) stay past its end, since kept rows keep their order.
  static void compact(std::vector<float>& v, std::span<const std::size_t> kept) {
    std::size_t dst = 0;
    for (std::size_t r : kept) {
      if (r >= v.size()) break;
      v[dst++] = v[r];
    }
    v.resize(dst);
  }
};

static_assert(CachePolicy<SnapKv>);

}  // namespace kvcanary::kv
