#pragma once
// Teacher-forced log-probabilities and perplexity over the full cache, in one pass: the prefill
// path of the measure. Log-softmax is taken in double from the fp32 logits. Long inputs are
// processed in chunks through the same cache (a chunked prefill is exactly a prefill), so memory
// holds chunk × vocab logits, never n × vocab. Scoring under a compressor needs a decode step per
// token (the policy runs after each): a job's `forced` continuation in the decode loop
// (engine/batch_decode.hpp), which with `full` gives exactly these log-probabilities (tested).
//
// strided_perplexity follows the sliding-window protocol of the transformers perplexity
// guide: windows of `window` tokens start every `stride` tokens; each window scores only
// the tokens the previous window did not, each with up to window − 1 tokens of context.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "kvcanary/kv/full.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/model/llama.hpp"

namespace kvcanary::engine {

struct TokenScores {
  std::vector<double> logprobs;  // log p(token_i | tokens_<i) for every scored token
  double nll_sum = 0.0;
  std::size_t n_scored = 0;
  kv::KvMemory memory;  // the cache the tokens were scored through, after the last one

  void add(double logprob) {
    logprobs.push_back(logprob);
    nll_sum -= logprob;
    ++n_scored;
  }
  double perplexity() const { return n_scored ? std::exp(nll_sum / static_cast<double>(n_scored)) : 0.0; }
};

inline double log_softmax_at(const float* logits, std::size_t n, std::int32_t target) {
  double m = logits[0];
  for (std::size_t i = 1; i < n; ++i) m = std::max(m, static_cast<double>(logits[i]));
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - m);
  return static_cast<double>(logits[static_cast<std::size_t>(target)]) - m - std::log(sum);
}

// Scores ids[first_scored..] given everything before them, in one pass from an empty cache.
template <class WT>
TokenScores score_tokens(model::Transformer<WT>& model, std::span<const std::int32_t> ids, std::size_t first_scored = 1,
                         std::size_t chunk = 256) {
  TokenScores s;
  if (ids.size() < 2) return s;
  first_scored = std::max<std::size_t>(first_scored, 1);
  const std::size_t V = static_cast<std::size_t>(model.config().vocab_size);
  kv::KvCache cache = model.new_cache();
  std::vector<float> logits;
  // Position i's logits predict token i + 1; the last token predicts nothing.
  for (std::size_t begin = 0; begin + 1 < ids.size(); begin += chunk) {
    const std::size_t end = std::min(begin + chunk, ids.size() - 1);
    const bool wanted = end > first_scored - 1;
    const model::Segment seg{&cache, ids.subspan(begin, end - begin),
                             wanted ? model::Logits::All : model::Logits::None};
    model.forward(std::span<const model::Segment>(&seg, 1), logits);
    if (!wanted) continue;
    for (std::size_t i = begin; i < end; ++i) {
      if (i + 1 < first_scored) continue;
      s.add(log_softmax_at(&logits[(i - begin) * V], V, ids[i + 1]));
    }
  }
  kv::observe_memory(s.memory, kv::FullCache{}, cache);
  return s;
}

template <class WT>
TokenScores strided_perplexity(model::Transformer<WT>& model, std::span<const std::int32_t> ids, std::size_t window,
                               std::size_t stride) {
  TokenScores total;
  if (ids.size() < 2) return total;
  window = std::max<std::size_t>(window, 2);
  stride = std::clamp<std::size_t>(stride, 1, window);
  std::size_t scored_until = 1;  // tokens [1, scored_until) already scored
  for (std::size_t begin = 0;; begin += stride) {
    const std::size_t end = std::min(begin + window, ids.size());
    const std::size_t first = std::max(scored_until, begin + 1);
    if (first < end) {
      TokenScores w = score_tokens(model, ids.subspan(begin, end - begin), first - begin);
      total.logprobs.insert(total.logprobs.end(), w.logprobs.begin(), w.logprobs.end());
      total.nll_sum += w.nll_sum;
      total.n_scored += w.n_scored;
      scored_until = end;
    }
    if (end == ids.size()) break;
  }
  return total;
}

}  // namespace kvcanary::engine
