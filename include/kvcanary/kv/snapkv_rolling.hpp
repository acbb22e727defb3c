#pragma once
// `snapkv_rolling`: kvcanary ≤ 0.2's `snapkv` in decode mode, kept under an honest name so that
// its rows stay reproducible (docs/COMPRESSORS.md "snapkv_rolling"). SnapKV's scoring (Li et al.
// 2024, arXiv:2404.14469) — the observation window's votes, max-pooled, top-k + the window —
// re-run after every decode step from a rolling window of the last `window` queries. The paper
// compresses the prompt once (that is `snapkv`); re-selecting every step from accumulated votes
// behaves like H2O, not like SnapKV. Differences from `snapkv`: decode mode allowed (its
// default: this policy exists for it), and the window is a floor on the kept rows
// (k = max(capacity, window)), as it was.
//
//   vote_j  = Σ_{i ∈ window} Σ_{h ∈ group} softmax(q_i^h K^T)_j        j in the prefix
//   pool_j  = max(vote_{j−⌊kernel/2⌋} … vote_{j+⌊kernel/2⌋})
//   keep    = topk(pool, k − window) ∪ window
//
// Decode mode: each step records its one new query; the policy keeps the last `window`
// per-step votes (following rows through evictions). Until `window` decode steps have passed,
// the prompt's window queries that are still among the last `window` are represented by their
// mean vote (the prefill records only their sum):
// vote = Σ decode votes + (window − steps)/rows_recorded · prompt vote.
// With capacity=seen this is bit for bit the old `snapkv(mode=decode)`.

#include <deque>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/parameter_table.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/kv/snapkv.hpp"
#include "kvcanary/kv/snapkv.hpp"
#include "kvcanary/core/model_config.hpp"

namespace kvcanary::kv {

struct SnapKvRolling {
  static constexpr std::string_view name = "snapkv_rolling";
  static constexpr Mode default_mode = Mode::Decode;
  static std::string_view summary() {
    return "kvcanary 0.2's snapkv decode mode: SnapKV's votes re-selected every step from the last `window` queries "
           "(not the paper; kept so old rows reproduce)";
  }
  static constexpr auto parameter_table() {
    return std::tuple{Parameter{"window", &SnapKvRolling::window,
                                "observation window: the last `window` queries vote and their rows are always kept", 1},
                      Parameter{"kernel", &SnapKvRolling::kernel,
                                "max-pooling kernel over the votes (odd; 1 disables pooling)", 1, no_max, odd_kernel}};
  }
  static SnapKvRolling create(const PolicyOptions& o, const ModelConfig&) { return eviction::create<SnapKvRolling>(o); }

  eviction::Common common;
  std::size_t window = 32, kernel = 7;

  // Decode-mode observation state, per [layer * kv_heads + kv_head] and row.
  std::vector<std::vector<float>> prompt_vote;
  double prompt_rows = 0;                                  // query rows the prompt vote sums
  std::deque<std::vector<std::vector<float>>> step_votes;  // newest last, at most `window`

  std::size_t attention_rows(StepKind kind, std::size_t) const {
    if (kind == StepKind::Prefill) return window;
    return common.mode == Mode::Decode ? 1 : 0;
  }

  // Rows kept by one head of n rows from its votes (one per row; window rows' votes unused).
  // SnapKV's own selection with the window protected: k ≥ min(window, n), so its window is never
  // trimmed by the budget (the paper's is, kv/snapkv.hpp) and the window rows are always kept.
  std::vector<std::size_t> selection(std::span<const float> vote, std::size_t n, std::int64_t seen) const {
    return snapkv_select(vote, n, common.keep(seen, std::min(window, n), n), window, kernel);
  }

  void after_step(KvCache& cache, const AttentionRecord& record, StepKind kind) {
    if (!common.compresses(kind)) return;
    common.observe(cache, kind);
    const std::size_t L = cache.layers(), KVH = cache.kv_heads(), D = cache.head_dim();
    const bool tracking = common.mode == Mode::Decode;
    if (kind == StepKind::Prefill || prompt_vote.size() != L * KVH) {
      prompt_vote.assign(L * KVH, {});
      step_votes.clear();
      prompt_rows = kind == StepKind::Prefill ? static_cast<double>(record.rows) : 0.0;
    }
    std::vector<std::vector<float>> now(L * KVH);
    for (std::size_t l = 0; l < L; ++l)
      for (std::size_t h = 0; h < KVH; ++h)
        now[l * KVH + h] = record.rows ? record.kv_head_mass(l, h) : std::vector<float>{};
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
  std::string identity() const { return common.prefix(name) + identity_suffix(*this) + ")"; }

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

static_assert(CachePolicy<SnapKvRolling>);

}  // namespace kvcanary::kv
