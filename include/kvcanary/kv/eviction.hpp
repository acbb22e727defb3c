#pragma once
// Shared machinery of the token-eviction policies (StreamingLLM, SnapKV, H2O, TOVA, KNorm,
// random): the budget → kept-rows rule, top-k with deterministic ties, the common
// budget/mode options, and identity formatting. Written once so that every policy reads the
// budget the same way and breaks ties the same way.
//
// Budget rule (shared by all eviction policies): after a compressing step each KV head keeps
//   k = min(stored, max(target, protected))
// rows, where `protected` is what the method always keeps (sinks, recent window) and `target`
// depends on the capacity semantics (kv/policy.hpp, docs/COMPRESSORS.md "Capacity"):
//   fixed: C = ceil(budget · tokens seen at the last prefill step), frozen for the decode steps;
//   seen:  ceil(budget · tokens_seen) at this step.
// At budget 1 k ≥ stored rows after the prefill, so prompt mode touches nothing and is the
// same computation as `full` (tested bit-exact); decode mode with `fixed` then keeps a sliding
// cache of prompt-length rows.
//
// Ties: rows are ranked by (score descending, row index ascending) — a strict total order, so
// equal scores resolve to the lowest row index (the oldest row), on every platform.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/kv/cache.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/parameter_table.hpp"
#include "kvcanary/kv/policy.hpp"

namespace kvcanary::kv::eviction {

// ceil(budget · seen) computed so that an exact product (0.25 · 8 = 2) is not pushed up by a
// rounding error in the last bit: budgets come from decimal strings, and 0.1 · 30 is
// 3.0000000000000004 in binary, which must keep 3 rows, not 4.
inline std::size_t budget_rows(double budget, std::int64_t seen) {
  const double exact = budget * static_cast<double>(seen);
  const double rounded = std::round(exact);
  const double k = std::abs(exact - rounded) <= 1e-9 * std::max(1.0, exact) ? rounded : std::ceil(exact);
  return static_cast<std::size_t>(std::max(0.0, k));
}

// Rows a head keeps: the budget, raised to what the method protects, capped at what it has.
inline std::size_t keep_count(double budget, std::int64_t seen, std::size_t protected_rows, std::size_t stored) {
  return std::min(stored, std::max(budget_rows(budget, seen), protected_rows));
}

// The k best of `candidates` by `score` (higher is kept), ties to the lower row index;
// returned in ascending row order. O(n + k log k) via nth_element on a strict total order.
template <class Score>
std::vector<std::size_t> top_k(std::span<const Score> score, std::vector<std::size_t> candidates, std::size_t k) {
  if (k >= candidates.size()) {
    std::sort(candidates.begin(), candidates.end());
    return candidates;
  }
  auto better = [&](std::size_t a, std::size_t b) { return score[a] > score[b] || (score[a] == score[b] && a < b); };
  if (k > 0)
    std::nth_element(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(k - 1), candidates.end(),
                     better);
  candidates.resize(k);
  std::sort(candidates.begin(), candidates.end());
  return candidates;
}

// Keep `protect` (rows always kept, any order) plus the best k − |protect| of the other rows
// of an n-row head; ascending row indices, ready for HeadStore::keep.
template <class Score>
std::vector<std::size_t> select(std::span<const Score> score, std::size_t n, std::span<const std::size_t> protect,
                                std::size_t k) {
  std::vector<char> is_protected(n, 0);
  for (std::size_t r : protect) is_protected[r] = 1;
  std::vector<std::size_t> others;
  others.reserve(n);
  for (std::size_t r = 0; r < n; ++r)
    if (!is_protected[r]) others.push_back(r);
  const std::size_t n_prot = n - others.size();
  std::vector<std::size_t> kept = top_k<Score>(score, std::move(others), k > n_prot ? k - n_prot : 0);
  for (std::size_t r = 0; r < n; ++r)
    if (is_protected[r]) kept.push_back(r);
  std::sort(kept.begin(), kept.end());
  return kept;
}

// The last `w` rows of an n-row head (the recent window): rows are in append order.
inline std::vector<std::size_t> last_rows(std::size_t n, std::size_t w) {
  std::vector<std::size_t> r(std::min(n, w));
  std::iota(r.begin(), r.end(), n - r.size());
  return r;
}

// Policy P's mode from its options: P's paper mode unless `mode` says otherwise. A policy that
// declares `prompt_only_because` (its reason, as data) refuses decode mode here, once for all.
template <class P>
Mode mode_of_options(const PolicyOptions& o) {
  const Mode m = o.mode_or(P::default_mode);
  if constexpr (requires { P::prompt_only_because; })
    if (m == Mode::Decode)
      fail(o.source(), "mode", std::string(P::name) + " is prompt-only: " + std::string(P::prompt_only_because));
  return m;
}

// Budget, mode and capacity, shared by every eviction policy.
struct Common {
  double budget = 1.0;
  Mode mode = Mode::Prompt;
  Capacity capacity = Capacity::Fixed;
  std::int64_t prompt_seen = 0;  // tokens seen after the last prefill step (fixed capacity's base)

  // The options of policy P, in P's paper mode unless `mode` says otherwise (mode_of_options).
  template <class P>
  static Common from(const PolicyOptions& o) {
    return Common{o.budget(), mode_of_options<P>(o), o.capacity(), 0};
  }
  // Whether this step compresses: prompt mode compresses once, after the prefill; decode
  // mode after the prefill and after every decode step.
  bool compresses(StepKind kind) const { return kind == StepKind::Prefill || mode == Mode::Decode; }
  // Call first in after_step: a prefill step (re)sets the prompt length fixed capacity reads.
  void observe(const KvCache& c, StepKind kind) {
    if (kind == StepKind::Prefill || prompt_seen == 0) prompt_seen = c.tokens_seen();
  }
  // The budget's rows before the protected floor: C (fixed) or ceil(budget · seen) (seen).
  std::size_t target(std::int64_t seen) const {
    return budget_rows(budget, capacity == Capacity::Fixed ? prompt_seen : seen);
  }
  // Rows a head of `stored` rows keeps at a step with `seen` tokens seen.
  std::size_t keep(std::int64_t seen, std::size_t protected_rows, std::size_t stored) const {
    return std::min(stored, std::max(target(seen), protected_rows));
  }
  std::string prefix(std::string_view name) const {
    return std::string(name) + "(budget=" + format_number(budget) + ",mode=" + mode_name(mode) +
           ",capacity=" + capacity_name(capacity);
  }
};

// An eviction policy P from its options: budget, mode and capacity (Common), then every row of
// its parameter table, then any name left over is refused. A policy with more to set (RoPE
// frequencies from the model config) sets it on the result.
template <class P>
P create(const PolicyOptions& o) {
  P p;
  p.common = Common::from<P>(o);
  read_parameters(p, o);
  o.reject_unknown(std::string(P::name));
  return p;
}

// Every KV head of every layer keeps its best rows by `scores(layer, kv_head, store)` (one per
// stored row; higher kept, ties to the older row), as many as the budget allows with nothing
// protected: the whole selection of KeyDiff and of observed attention.
template <class Scores>
void keep_best_rows(KvCache& cache, const Common& common, Scores&& scores) {
  const std::size_t D = cache.head_dim();
  for (std::size_t l = 0; l < cache.layers(); ++l)
    for (std::size_t h = 0; h < cache.kv_heads(); ++h) {
      HeadStore& store = cache.head(l, h);
      const std::size_t n = store.size(), k = common.keep(cache.tokens_seen(), 0, n);
      if (k >= n) continue;
      std::vector<std::size_t> all(n);
      std::iota(all.begin(), all.end(), 0);
      const std::vector<float> s = scores(l, h, std::as_const(store));
      store.keep(top_k<float>(s, std::move(all), k), D);
    }
}

// fp16 K and V of every stored row: eviction keeps rows as they are.
inline std::size_t stored_fp16_bytes(const KvCache& c) { return fp16_kv_bytes(c.stored_rows(), c.head_dim()); }

}  // namespace kvcanary::kv::eviction
