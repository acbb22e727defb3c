#pragma once
// The decode loop: continuous batching of many jobs, each under its own compressor policy. The
// one loop of the engine — the sweep's jobs, `generate_greedy` (engine/generate.hpp) and the
// CLI's compressed perplexity all run through it, so generation, gold-answer scoring and
// agreement share every step.
//
// A job is a prompt plus what to do after it: generate greedily, score a teacher-forced
// continuation (a gold answer, a held-out text), or both. Its prompt is prefilled once; when it
// asks for both, the compressed cache is forked after the prefill step, so generation and
// scoring continue from the very same compressed state (what "paired" means in the results).
// Every unfinished lane of every admitted job then advances in one forward call per step, so
// weights are read once per step for the whole batch; a finished lane's slot is refilled from
// the queue at the next step (continuous batching).
//
// Same tokens out: each lane's cache, positions and policy state are its own, and the forward
// pass's matmul is batch-invariant (ops/matmul.hpp), so a lane's logits do not depend on
// which other lanes share its step — a job gives the same result alone or in a batch
// (tests/engine/test_batch_decode.cpp).
//
// Warning signals (issue 20, docs/METRICS.md "What warns?"): a job may also carry a reference —
// the full cache's own greedy generation of its prompt — which is teacher-forced through one more
// lane forked at the prefill like the gold lane, under the job's compressed cache and policy (a
// decode-mode policy keeps compressing as the forced tokens go in, exactly as while generating).
// Its rows are compared (engine/agreement.hpp) with the uncompressed cache's rows for the same
// positions. Those depend only on the prompt, its question split and the reference, so jobs that
// share all three (a sweep's cells of one sample) share one uncompressed Reference lane: it is
// started by the first such job admitted, runs ahead of or level with every Agree lane of its key
// (all lanes advance one token per step), and keeps each step's logits row until the key's last
// job has read it. One lane per sample instead of one per compressed job: a quarter of a warning
// sweep's lane-steps. The memory is (reference length, vocab) floats per live key, so a caller
// with many jobs per key admits them together (the sweep orders its jobs sample by sample). With
// `compression_signals`, the prompt step's evicted attention and reconstruction error are
// measured too (kv/compression_signals.hpp).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "kvcanary/kv/cache.hpp"
#include "kvcanary/kv/compression_signals.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/engine/agreement.hpp"
#include "kvcanary/engine/decode_step.hpp"
#include "kvcanary/model/llama.hpp"
#include "kvcanary/engine/perplexity.hpp"
#include "kvcanary/engine/prefill_share.hpp"

namespace kvcanary::engine {

struct DecodeJob {
  std::vector<std::int32_t> prompt;
  bool generate = true;              // greedy continuation until EOS, a stop string or the cap
  std::vector<std::int32_t> forced;  // a continuation to score teacher-forced (may be empty)
  // Scope `context`: the prompt's last `question_tokens` tokens are appended uncompressed after
  // the rest is prefilled and compressed (engine/decode_step.hpp prefill_with_policy); 0: scope
  // `prompt`. With a prefill share, the compressed context is what is shared.
  std::size_t question_tokens = 0;
  // The full cache's greedy generation of this prompt (empty: no agreement signals): scored for
  // agreement under the compressed cache, in lockstep with the uncompressed cache.
  std::vector<std::int32_t> reference = {};
  // Measure the prompt step's evicted attention / reconstruction error (kv/compression_signals.hpp).
  bool compression_signals = false;
};

struct JobResult {
  Generation generation;               // when the job generated; its `memory` is the generating lane's
  TokenScores forced;                  // log p of each forced token given the prompt and the forced tokens before it
  Agreement agreement;                 // when the job had a reference
  kv::CompressionSignals compression;  // when the job asked for compression_signals
  std::size_t prompt_tokens = 0;
  double seconds = 0;  // this job's share of the wall time: its prefill + its share of every step it was in
};

struct BatchOptions {
  std::size_t max_lanes = 16;  // lanes advanced per forward call
  // When set, prompts are prefilled through it: one pass per prompt for every policy that runs
  // it (engine/prefill_share.hpp). A job's prefill_seconds is then the shared pass's time plus
  // its own fork and compression — what the job would have cost alone, so latencies still
  // compare across policies; the sweep's wall time is what the sharing saves.
  PrefillShare* prefill_share = nullptr;
  // Called once per job, as soon as it has finished (its result is final), with the job's index.
  std::function<void(std::size_t, const JobResult&)> on_job_done;
  // When set and true, the run stops before its next admission or step: no new job starts, the
  // jobs in flight are dropped (on_job_done is never called for them; their results stay
  // default) and run_jobs_each returns. Polled, never waited on, so a signal handler may set it
  // (core/stop_signal.hpp); a stop takes at most one forward call (one step or one prefill).
  const std::atomic<bool>* stop = nullptr;
  // When set: resized to the jobs, and each generating job's cache after its last step is moved
  // into its slot — for callers that inspect the compressed state (tests, `generate_greedy`).
  std::vector<kv::KvCache>* generation_caches = nullptr;
};

namespace batch_detail {

// Generate: greedy; Forced: the gold continuation under the compressed cache; Agree: the
// reference under the compressed cache; Reference: the reference under the uncompressed cache
// (its policy never runs), one per reference key.
enum class LaneKind { Generate, Forced, Agree, Reference };

// The uncompressed cache's logits along one reference, shared by the jobs of one key: the
// same prompt, question split and reference (equal_reference_key).
struct SharedReference {
  bool started = false;     // its Reference lane was created (its rows grow from there)
  std::size_t readers = 0;  // jobs of this key whose Agree lane has not finished reading
  std::vector<float> rows;  // (positions produced, vocab): row t is the full cache's logits at reference position t
};

inline bool equal_reference_key(const DecodeJob& a, std::size_t context_a, const DecodeJob& b, std::size_t context_b) {
  return context_a == context_b && a.reference == b.reference && a.prompt == b.prompt;
}

template <class Policy>
struct Lane {
  std::size_t job = 0;
  LaneKind kind = LaneKind::Generate;
  kv::KvCache cache;
  Policy policy;
  std::int32_t next = 0;  // the token fed at the next step
  std::size_t fed = 0;    // teacher-forced lanes: tokens fed so far
  bool done = false;
};

}  // namespace batch_detail

// Runs every job, job j under its own copy of policies[j] — lanes of different policies (a
// kv::AnyPolicyOf) share each forward call, so a sweep batches all the cells of a task.
template <class WT, kv::CachePolicy Policy>
std::vector<JobResult> run_jobs_each(model::Transformer<WT>& model, std::span<const DecodeJob> jobs,
                                     std::span<const Policy> policies, const GenerateOptions& options,
                                     const Detokenizer& detokenize = {}, const BatchOptions& batch = {}) {
  if (policies.size() != jobs.size()) fail("<run_jobs_each>", "policies", "one policy per job is needed");
  if (!options.question_tokens.empty())
    fail("<run_jobs_each>", "options.question_tokens",
         "is read by generate_greedy only; here each job's scope is its DecodeJob::question_tokens");
  using clock = std::chrono::steady_clock;
  using Lane = batch_detail::Lane<Policy>;
  using LaneKind = batch_detail::LaneKind;
  const std::size_t V = static_cast<std::size_t>(model.config().vocab_size);
  const std::vector<std::int32_t>& eos = options.eos_ids.empty() ? model.config().eos_token_ids : options.eos_ids;
  std::vector<JobResult> out(jobs.size());
  std::vector<int> lanes_open(jobs.size(), 0);
  std::vector<float> logits;
  std::deque<std::size_t> queue;
  for (std::size_t j = 0; j < jobs.size(); ++j) queue.push_back(j);
  std::vector<Lane> lanes;

  // Reference keys: key_of[j] is the first job with job j's key, whose SharedReference serves them all.
  std::vector<std::size_t> key_of(jobs.size(), SIZE_MAX);
  std::vector<batch_detail::SharedReference> shared(jobs.size());
  {
    std::unordered_map<std::uint64_t, std::vector<std::size_t>> keys_by_hash;
    for (std::size_t j = 0; j < jobs.size(); ++j) {
      const DecodeJob& job = jobs[j];
      if (job.reference.empty()) continue;
      const std::size_t context = context_length(job.prompt.size(), job.question_tokens);
      std::uint64_t h = 1469598103934665603ull ^ context;  // FNV-1a over the split and both token lists
      for (const auto* list : {&job.prompt, &job.reference})
        for (std::int32_t t : *list) h = (h ^ static_cast<std::uint32_t>(t)) * 1099511628211ull;
      auto& candidates = keys_by_hash[h];
      for (std::size_t c : candidates)
        if (batch_detail::equal_reference_key(jobs[c], context_length(jobs[c].prompt.size(), jobs[c].question_tokens),
                                              job, context))
          key_of[j] = c;
      if (key_of[j] == SIZE_MAX) candidates.push_back(key_of[j] = j);
      ++shared[key_of[j]].readers;
    }
  }

  if (batch.generation_caches) batch.generation_caches->assign(jobs.size(), model.new_cache());
  auto finish_job = [&](std::size_t j) {
    if (batch.on_job_done) batch.on_job_done(j, out[j]);
  };
  auto close_lane = [&](Lane& l) {
    l.done = true;
    if (l.kind == LaneKind::Generate && batch.generation_caches) (*batch.generation_caches)[l.job] = std::move(l.cache);
    if (l.kind == LaneKind::Agree) {
      batch_detail::SharedReference& s = shared[key_of[l.job]];
      if (--s.readers == 0) std::vector<float>().swap(s.rows);  // the key's last reader: free its rows
    }
    if (--lanes_open[l.job] == 0) finish_job(l.job);
  };
  // A lane's memory after its step, into the result that reports it.
  auto observe_memory = [&](const Lane& l) {
    kv::KvMemory& m = l.kind == LaneKind::Forced ? out[l.job].forced.memory : out[l.job].generation.memory;
    kv::observe_memory(m, l.policy, l.cache);
  };
  auto score_forced = [&](Lane& l, const float* row) {
    out[l.job].forced.add(log_softmax_at(row, V, jobs[l.job].forced[l.fed]));
  };
  // After a generating lane produced `tok`: record it and decide whether it is finished.
  auto emit = [&](Lane& l, std::int32_t tok) {
    Generation& g = out[l.job].generation;
    g.tokens.push_back(tok);
    l.next = tok;
    if (const char* reason = stop_reason(g.tokens, eos, options, detokenize)) {
      g.finish_reason = reason;
      close_lane(l);
    }
  };
  // A teacher-forced lane after scoring its tokens[fed]: feed it next, unless it was the last.
  auto advance_forced = [&](Lane& l) {
    const auto& f = l.kind == LaneKind::Forced ? jobs[l.job].forced : jobs[l.job].reference;
    if (l.fed + 1 >= f.size()) return close_lane(l);
    l.next = f[l.fed];
    ++l.fed;
  };

  // Prefill a job, fork its lanes, and take the predictions the prefill already made.
  auto admit = [&](std::size_t j) {
    const auto t0 = clock::now();
    const DecodeJob& job = jobs[j];
    JobResult& r = out[j];
    r.prompt_tokens = job.prompt.size();
    const bool want_gen = job.generate && options.max_new_tokens > 0;
    const bool want_forced = !job.forced.empty();
    const bool want_agree = !job.reference.empty();
    // The first job of its reference key starts the key's Reference lane from its own prefill.
    const bool starts_reference = want_agree && !shared[key_of[j]].started;
    // The uncompressed cache after the prompt step, kept when a signal compares against it.
    const bool keep_uncompressed = starts_reference || job.compression_signals;
    Lane base{j, LaneKind::Generate, model.new_cache(), policies[j]};
    if (!want_gen && !want_forced && !want_agree) {
      if (job.generate) r.generation.finish_reason = "length";
      finish_job(j);
      return;
    }
    double shared_seconds = 0;  // the shared pass's time when another job ran it
    static const kv::AttentionRecord no_record;
    std::optional<kv::KvCache> uncompressed;  // keep_uncompressed: the prompt step's cache before the policy
    std::vector<float> reference_logits;      // starts_reference: the uncompressed cache's first prediction
    const std::span<const std::int32_t> prompt(job.prompt);
    const std::size_t context = context_length(prompt.size(), job.question_tokens);
    // The prompt step's policy run, with what the signals need kept on the side: the cache before
    // it, the policy before it, and the step's last query row's attention.
    auto compress_prompt = [&](const kv::AttentionRecord& record, const kv::AttentionRecord& last_query) {
      if (keep_uncompressed) uncompressed = base.cache;
      std::optional<Policy> before;
      if (job.compression_signals) before = base.policy;
      // A reconstructing policy (KVzip, kv/policy.hpp step 1c) is scored by its own pass instead.
      const auto repeat = kv::reconstruction_tokens(base.policy, prompt.first(context));
      const kv::AttentionRecord reconstructed =
          repeat.empty() ? kv::AttentionRecord{} : reconstruction_record(model, base.cache, repeat);
      const kv::AttentionRecord& used = repeat.empty() ? record : reconstructed;
      base.policy.after_step(base.cache, used, kv::StepKind::Prefill);
      if (job.compression_signals)
        r.compression =
            kv::compression_signals(*uncompressed, used, last_query, *before, base.cache, kv::StepKind::Prefill);
      if (starts_reference) reference_logits = logits;
    };
    if (batch.prefill_share) {
      const std::size_t rows = base.policy.attention_rows(kv::StepKind::Prefill, context);
      const std::size_t misses = batch.prefill_share->misses();
      // The last-query record first: the sweep asks the share for it up front (one pass), and a
      // second get for the policy's rows then hits the same entry.
      auto entry = job.compression_signals ? batch.prefill_share->get(model, prompt.first(context), 1) : nullptr;
      if (!entry || (rows && !entry->records.count(rows)))
        entry = batch.prefill_share->get(model, prompt.first(context), rows);
      if (batch.prefill_share->misses() == misses) shared_seconds = entry->seconds;
      base.cache = entry->cache;
      logits = entry->logits;
      compress_prompt(rows ? entry->records.at(rows) : no_record,
                      job.compression_signals ? entry->records.at(1) : no_record);
      append_question(model, base.cache, prompt.subspan(context), logits);
    } else if (keep_uncompressed) {
      // prefill_with_policy unrolled: the same forward pass and policy step, plus the signals'
      // record of the last query row (recording never changes the logits or the cache).
      kv::AttentionRecord record, last_query;
      const std::size_t rows = base.policy.attention_rows(kv::StepKind::Prefill, context);
      std::vector<model::RecordRequest> requests;
      if (rows) requests.push_back({&record, rows, kv::wants_query_moments(base.policy, kv::StepKind::Prefill)});
      if (job.compression_signals) requests.push_back({&last_query, 1});
      const model::Segment seg{&base.cache, prompt.first(context), model::Logits::Last, requests};
      model.forward(std::span<const model::Segment>(&seg, 1), logits);
      compress_prompt(rows ? record : no_record, last_query);
      append_question(model, base.cache, prompt.subspan(context), logits);
    } else {
      prefill_with_policy(model, base.cache, prompt, job.question_tokens, base.policy, logits);
    }
    // The uncompressed twin gets the question appended the same way (scope context), so its first
    // prediction is the full cache's.
    if (starts_reference) append_question(model, *uncompressed, prompt.subspan(context), reference_logits);
    r.generation.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count() + shared_seconds;
    r.seconds += r.generation.prefill_seconds;  // before any lane can finish the job
    lanes_open[j] = int(want_gen) + int(want_forced) + int(want_agree) + int(starts_reference);
    if (want_forced) {
      Lane f = base;  // the fork: a copy of the compressed cache and of the policy's state
      f.kind = LaneKind::Forced;
      observe_memory(f);
      score_forced(f, logits.data());
      lanes.push_back(std::move(f));
      advance_forced(lanes.back());
    }
    if (starts_reference) {
      batch_detail::SharedReference& s = shared[key_of[j]];
      s.started = true;
      s.rows = std::move(reference_logits);  // row 0
      s.rows.reserve(job.reference.size() * V);
      lanes.push_back(Lane{j, LaneKind::Reference, std::move(*uncompressed), base.policy});
      advance_forced(lanes.back());
    }
    if (want_agree) {
      Lane a = base;  // another fork of the compressed state
      a.kind = LaneKind::Agree;
      r.agreement.add(shared[key_of[j]].rows.data(), logits.data(), V, job.reference[0]);
      lanes.push_back(std::move(a));
      advance_forced(lanes.back());
    }
    if (want_gen) {
      Lane& g = lanes.emplace_back(std::move(base));
      g.kind = LaneKind::Generate;
      observe_memory(g);
      emit(g, argmax(logits.data(), V));
    }
  };

  auto stopping = [&] { return batch.stop && batch.stop->load(std::memory_order_relaxed); };
  for (;;) {
    lanes.erase(std::remove_if(lanes.begin(), lanes.end(), [](const Lane& l) { return l.done; }), lanes.end());
    if (stopping()) break;
    while (!queue.empty() && lanes.size() < batch.max_lanes) {
      if (stopping()) break;
      const std::size_t j = queue.front();
      queue.pop_front();
      admit(j);
      lanes.erase(std::remove_if(lanes.begin(), lanes.end(), [](const Lane& l) { return l.done; }), lanes.end());
    }
    if (lanes.empty() || stopping()) break;

    std::vector<model::Segment> step;
    std::vector<Policy*> step_policies;
    step.reserve(lanes.size());
    for (std::size_t i = 0; i < lanes.size(); ++i) {
      Lane& l = lanes[i];
      step.push_back({&l.cache, std::span<const std::int32_t>(&l.next, 1), model::Logits::Last});
      step_policies.push_back(l.kind == LaneKind::Reference ? nullptr : &l.policy);  // the full cache: no policy
    }
    const auto t0 = clock::now();
    forward_with_policies(model, step, std::span<Policy* const>(step_policies), kv::StepKind::Decode, logits);
    // Each Reference lane's row joins its key's rows first: an Agree lane of the key reads the
    // row of its own position, at most the one just produced.
    std::vector<std::size_t> agree_lanes;
    for (std::size_t i = 0; i < lanes.size(); ++i) {
      const Lane& l = lanes[i];
      if (l.kind == LaneKind::Agree) agree_lanes.push_back(i);
      if (l.kind != LaneKind::Reference) continue;
      std::vector<float>& rows = shared[key_of[l.job]].rows;
      if (rows.size() != l.fed * V) fail("<run_jobs_each>", "reference", "a shared reference row out of order");
      rows.insert(rows.end(), logits.begin() + static_cast<std::ptrdiff_t>(i * V),
                  logits.begin() + static_cast<std::ptrdiff_t>((i + 1) * V));
    }
    // Agreement rows (a softmax over the vocabulary each, twice) run across the pool: one lane
    // per job, so each writes only its own job's result.
    if (!agree_lanes.empty())
      model.pool().parallel_for(agree_lanes.size(), [&](std::size_t begin, std::size_t end) {
        for (std::size_t k = begin; k < end; ++k) {
          const Lane& l = lanes[agree_lanes[k]];
          const float* full_row = &shared[key_of[l.job]].rows[l.fed * V];
          out[l.job].agreement.add(full_row, &logits[agree_lanes[k] * V], V, jobs[l.job].reference[l.fed]);
        }
      });
    const double share = std::chrono::duration<double>(clock::now() - t0).count() / static_cast<double>(lanes.size());
    for (std::size_t i = 0; i < lanes.size(); ++i) {
      Lane& l = lanes[i];
      JobResult& r = out[l.job];
      r.seconds += share;
      const float* row = &logits[i * V];
      if (l.kind == LaneKind::Forced) {
        observe_memory(l);
        score_forced(l, row);
        advance_forced(l);
      } else if (l.kind == LaneKind::Agree || l.kind == LaneKind::Reference) {
        advance_forced(l);  // the agreement row was taken above
      } else {
        observe_memory(l);
        r.generation.decode_seconds += share;
        emit(l, argmax(row, V));
      }
    }
  }
  return out;
}

// Every job under the same policy.
template <class WT, kv::CachePolicy Policy>
std::vector<JobResult> run_jobs(model::Transformer<WT>& model, std::span<const DecodeJob> jobs, const Policy& policy,
                                const GenerateOptions& options, const Detokenizer& detokenize = {},
                                const BatchOptions& batch = {}) {
  const std::vector<Policy> each(jobs.size(), policy);
  return run_jobs_each(model, jobs, std::span<const Policy>(each), options, detokenize, batch);
}

}  // namespace kvcanary::engine
