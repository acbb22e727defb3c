#pragma once
// Agreement of a compressed cache with the full cache's own output: the cheap warning signal of
// issue 20. VeriCache (arXiv 2605.17613) drafts with a compressed cache and verifies against the
// full one because the two drift apart as decoding goes on; here the drift is measured instead
// of corrected.
//
// The full cache's greedy generation g (the reference) is teacher-forced under both caches in
// lockstep (engine/batch_decode.hpp, DecodeJob::reference). At position t both have seen the
// prompt and g[0, t); the full cache's next-token distribution is p_t (whose argmax is g[t] by
// construction), the compressed cache's q_t. Per position:
//
//   agree     argmax q_t == g[t]      — the compressed cache would have produced the same token
//   KL        Σ_i p_t(i) · (log p_t(i) − log q_t(i))   — KL(full ‖ compressed), in nats
//
// and over the n = |g| positions: agree_top1 = agreed / n, first_disagree = the first t that
// does not agree (n when none does not: "agreed all the way", right-censored at the
// generation's length), kl_full = mean KL. Positions are those of the reference, so a
// compressed generation that drifted is still scored on the full cache's path, where a
// deployment would have been.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "kvcanary/engine/decode_step.hpp"

namespace kvcanary::engine {

// KL(p ‖ q) of the softmaxes of two logit rows of length n, in double. Identical rows give
// exactly 0; rounding can take nearly identical rows a hair below 0, which is clamped (KL ≥ 0).
inline double kl_of_logits(const float* p_logits, const float* q_logits, std::size_t n) {
  double mp = p_logits[0], mq = q_logits[0];
  for (std::size_t i = 1; i < n; ++i) {
    mp = std::max(mp, static_cast<double>(p_logits[i]));
    mq = std::max(mq, static_cast<double>(q_logits[i]));
  }
  double sp = 0.0, sq = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    sp += std::exp(static_cast<double>(p_logits[i]) - mp);
    sq += std::exp(static_cast<double>(q_logits[i]) - mq);
  }
  const double lp = mp + std::log(sp), lq = mq + std::log(sq);  // log-sum-exps
  double kl = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double a = static_cast<double>(p_logits[i]) - lp, b = static_cast<double>(q_logits[i]) - lq;
    kl += std::exp(a) * (a - b);
  }
  return std::max(0.0, kl);
}

struct Agreement {
  std::size_t positions = 0, agreed = 0;
  std::optional<std::size_t> first_mismatch;  // none: every position agreed
  double kl_sum = 0.0;

  // Position `positions`: the full cache's logits row, the compressed cache's, and the
  // reference token (the full cache's greedy choice there).
  void add(const float* full_row, const float* compressed_row, std::size_t vocab, std::int32_t reference_token) {
    if (argmax(compressed_row, vocab) == reference_token)
      ++agreed;  // the token greedy decoding would pick
    else if (!first_mismatch)
      first_mismatch = positions;
    kl_sum += kl_of_logits(full_row, compressed_row, vocab);
    ++positions;
  }

  bool measured() const { return positions > 0; }
  double top1() const { return positions ? static_cast<double>(agreed) / static_cast<double>(positions) : 0.0; }
  std::size_t first_disagree() const { return first_mismatch.value_or(positions); }
  double kl_mean() const { return positions ? kl_sum / static_cast<double>(positions) : 0.0; }
};

}  // namespace kvcanary::engine
