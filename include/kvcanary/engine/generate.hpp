#pragma once
// Greedy generation for many independent prompts at once: jobs that only generate, run through
// the decode loop (engine/batch_decode.hpp) with every prompt in one batch. Each prompt is
// prefilled into its own cache; then all unfinished sequences advance together, one token per
// step, in a single forward call, so weights are read once per step for the batch. Stopping
// follows transformers' generate() (engine/decode_step.hpp stop_reason).

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "kvcanary/kv/cache.hpp"
#include "kvcanary/kv/full.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/engine/batch_decode.hpp"
#include "kvcanary/engine/decode_step.hpp"
#include "kvcanary/model/llama.hpp"

namespace kvcanary::engine {

// Each prompt under its own copy of `policy`, scope `context` where options.question_tokens
// says so. `caches_out`, when set, receives each sequence's cache after its last step.
template <class WT, kv::CachePolicy Policy = kv::FullCache>
std::vector<Generation> generate_greedy(model::Transformer<WT>& model,
                                        std::span<const std::vector<std::int32_t>> prompts,
                                        const GenerateOptions& options, const Detokenizer& detokenize = {},
                                        const Policy& policy = {}, std::vector<kv::KvCache>* caches_out = nullptr) {
  std::vector<DecodeJob> jobs(prompts.size());
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    jobs[b].prompt = prompts[b];
    jobs[b].question_tokens = b < options.question_tokens.size() ? options.question_tokens[b] : 0;
  }
  BatchOptions batch;
  batch.max_lanes = std::max<std::size_t>(1, prompts.size());
  batch.generation_caches = caches_out;
  GenerateOptions per_job = options;
  per_job.question_tokens.clear();  // now in each job
  const std::vector<JobResult> results =
      run_jobs(model, std::span<const DecodeJob>(jobs), policy, per_job, detokenize, batch);
  std::vector<Generation> out;
  out.reserve(results.size());
  for (const JobResult& r : results) out.push_back(r.generation);
  return out;
}

}  // namespace kvcanary::engine
