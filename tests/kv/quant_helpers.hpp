#pragma once
// Test helpers for the quantizing policies: teacher-forced logits of a whole text under a
// policy (chunked; the first chunk is the prefill, later chunks are steps of kind Decode), the
// perplexity those logits give, and the real model's location.

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "../support/resources.hpp"
#include "kvcanary/engine/generate.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/kv/full.hpp"
#include "kvcanary/engine/perplexity.hpp"

namespace kvcanary::test {

// Logits [ids.size(), vocab] with `policy` compressing the cache after every chunk.
template <class WT, class Policy>
std::vector<float> logits_under(model::Transformer<WT>& m, std::span<const std::int32_t> ids, Policy policy,
                                std::size_t chunk, std::size_t* bytes = nullptr, std::size_t* full_bytes = nullptr) {
  kv::KvCache cache = m.new_cache();
  std::vector<float> all, step;
  Policy* p = &policy;
  for (std::size_t begin = 0; begin < ids.size(); begin += chunk) {
    const std::size_t end = std::min(begin + chunk, ids.size());
    std::vector<model::Segment> seg = {{&cache, ids.subspan(begin, end - begin), model::Logits::All}};
    engine::forward_with_policies(m, seg, std::span<Policy* const>(&p, 1),
                                  begin == 0 ? kv::StepKind::Prefill : kv::StepKind::Decode, step);
    all.insert(all.end(), step.begin(), step.end());
  }
  if (bytes) *bytes = policy.stored_bytes(cache);
  if (full_bytes) *full_bytes = kv::full_cache_bytes(cache);
  return all;
}

inline double perplexity_of(const std::vector<float>& logits, std::span<const std::int32_t> ids, std::size_t V) {
  double nll = 0;
  for (std::size_t i = 0; i + 1 < ids.size(); ++i) nll -= engine::log_softmax_at(&logits[i * V], V, ids[i + 1]);
  return std::exp(nll / static_cast<double>(ids.size() - 1));
}

inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

inline std::filesystem::path smollm2_dir() { return default_model_dir(); }
inline bool smollm2_available() { return default_model_available(); }

inline model::Transformer<float>& smollm2_quant() {
  static auto m = std::make_unique<model::Transformer<float>>(io::load_hf_config(smollm2_dir()), smollm2_dir(), 2);
  return *m;
}

// Perplexity of the reference paragraph under `full` in the same 32-token chunks, computed
// once per process for every test that compares against it.
inline double smollm2_paragraph_full_ppl(std::span<const std::int32_t> ids) {
  static const double ppl = perplexity_of(logits_under(smollm2_quant(), ids, kv::FullCache{}, 32), ids,
                                          static_cast<std::size_t>(smollm2_quant().config().vocab_size));
  return ppl;
}

}  // namespace kvcanary::test
