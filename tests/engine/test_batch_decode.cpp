// The decode loop gives each job exactly what it would get alone: generation and forced scoring
// equal a textbook loop written here from the step primitives (one prefill, then one forward
// call per token), and neither depends on which jobs share the batch or on the number of lanes.

#include <doctest/doctest.h>

#include <atomic>
#include <numeric>

#include "../support/json_file.hpp"
#include "../support/synthetic_tokens.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/kv/full.hpp"
#include "kvcanary/kv/h2o.hpp"
#include "kvcanary/kv/kivi.hpp"
#include "kvcanary/kv/streamingllm.hpp"
#include "kvcanary/engine/batch_decode.hpp"
#include "kvcanary/engine/perplexity.hpp"

using namespace kvcanary;

namespace {
std::vector<std::int32_t> tokens(std::size_t n, std::size_t salt) { return test::synthetic_tokens(n, salt); }

// The textbook loop: prefill under the policy, then one decode step per token — greedy when
// `forced` is empty, else each forced token fed and scored. Returns (tokens or log-probs, memory).
struct Textbook {
  std::vector<std::int32_t> tokens;
  std::vector<double> logprobs;
  kv::KvMemory memory;
};

template <class Policy>
Textbook textbook(model::Transformer<float>& m, const std::vector<std::int32_t>& prompt,
                  const std::vector<std::int32_t>& forced, std::size_t max_new, const Policy& prototype) {
  const std::size_t V = static_cast<std::size_t>(m.config().vocab_size);
  Textbook out;
  kv::KvCache cache = m.new_cache();
  Policy policy = prototype;
  Policy* p = &policy;
  std::vector<float> logits;
  engine::prefill_with_policy(m, cache, std::span<const std::int32_t>(prompt), 0, policy, logits);
  kv::observe_memory(out.memory, policy, cache);
  const std::size_t steps = forced.empty() ? max_new : forced.size();
  for (std::size_t t = 0; t < steps; ++t) {
    std::int32_t next = engine::argmax(logits.data(), V);
    if (!forced.empty()) {
      out.logprobs.push_back(engine::log_softmax_at(logits.data(), V, forced[t]));
      next = forced[t];
    } else {
      out.tokens.push_back(next);
    }
    if (t + 1 == steps) break;
    std::vector<model::Segment> step = {{&cache, std::span<const std::int32_t>(&next, 1), model::Logits::Last}};
    engine::forward_with_policies(m, step, std::span<Policy* const>(&p, 1), kv::StepKind::Decode, logits);
    kv::observe_memory(out.memory, policy, cache);
  }
  return out;
}

std::vector<engine::DecodeJob> some_jobs() {
  std::vector<engine::DecodeJob> jobs;
  for (std::size_t j = 0; j < 6; ++j) {
    engine::DecodeJob job;
    job.prompt = tokens(20 + 7 * j, j);
    job.generate = j % 3 != 2;                               // jobs 2 and 5 only score
    if (j % 3 != 1) job.forced = tokens(5 + 3 * j, j + 50);  // jobs 1 and 4 only generate
    jobs.push_back(job);
  }
  return jobs;
}

template <class Policy>
void check_against_references(model::Transformer<float>& m, const Policy& policy) {
  const auto jobs = some_jobs();
  engine::GenerateOptions opt;
  opt.max_new_tokens = 12;
  opt.eos_ids = {-1};  // never: every generation runs to the cap, so lengths differ only by design
  std::vector<std::size_t> order;
  engine::BatchOptions wide;
  wide.max_lanes = 16;
  wide.on_job_done = [&](std::size_t j, const engine::JobResult&) { order.push_back(j); };
  const auto batched = engine::run_jobs(m, std::span<const engine::DecodeJob>(jobs), policy, opt, {}, wide);
  CHECK(order.size() == jobs.size());
  engine::BatchOptions narrow;
  narrow.max_lanes = 3;  // lanes refilled from the queue as jobs finish
  const auto refilled = engine::run_jobs(m, std::span<const engine::DecodeJob>(jobs), policy, opt, {}, narrow);

  for (std::size_t j = 0; j < jobs.size(); ++j) {
    CAPTURE(j);
    const auto alone = engine::run_jobs(m, std::span<const engine::DecodeJob>(&jobs[j], 1), policy, opt);
    CHECK(batched[j].generation.tokens == alone[0].generation.tokens);
    CHECK(refilled[j].generation.tokens == alone[0].generation.tokens);
    CHECK(batched[j].forced.logprobs == alone[0].forced.logprobs);
    CHECK(refilled[j].forced.logprobs == alone[0].forced.logprobs);
    CHECK(batched[j].prompt_tokens == jobs[j].prompt.size());
    if (jobs[j].generate) {
      const auto ref = textbook(m, jobs[j].prompt, {}, opt.max_new_tokens, policy);
      CHECK(batched[j].generation.tokens == ref.tokens);
      CHECK(batched[j].generation.finish_reason == "length");
      CHECK(batched[j].generation.memory.kv_bytes_end == ref.memory.kv_bytes_end);
      CHECK(batched[j].generation.memory.kv_fraction_end == ref.memory.kv_fraction_end);
      CHECK(batched[j].generation.memory.kv_fraction_peak == ref.memory.kv_fraction_peak);
    } else {
      CHECK(batched[j].generation.tokens.empty());
    }
    if (!jobs[j].forced.empty()) {
      const auto ref = textbook(m, jobs[j].prompt, jobs[j].forced, 0, policy);
      REQUIRE(batched[j].forced.n_scored == jobs[j].forced.size());
      CHECK(batched[j].forced.logprobs == ref.logprobs);  // the fork continues from the very same compressed cache
      CHECK(batched[j].forced.memory.kv_bytes_end == ref.memory.kv_bytes_end);
      CHECK(batched[j].forced.nll_sum ==
            doctest::Approx(-std::accumulate(ref.logprobs.begin(), ref.logprobs.end(), 0.0)).epsilon(1e-12));
    }
    CHECK(batched[j].seconds > 0);
  }
}
}  // namespace

TEST_CASE("batch decode: full cache — batched, refilled and alone agree with the references") {
  const auto dir = test::test_data("tiny/llama_gqa_untied");
  model::Transformer<float> m(io::load_hf_config(dir), dir, 2);
  check_against_references(m, kv::FullCache{});
}

TEST_CASE("batch decode: compressed caches in decode mode agree too (eviction, re-positioning, quantization)") {
  const auto dir = test::test_data("tiny/llama_gqa_untied");
  const auto config = io::load_hf_config(dir);
  model::Transformer<float> m(config, dir, 2);
  check_against_references(
      m, kv::StreamingLlm::create(kv::PolicyOptions(0.5, kv::Mode::Decode, {{"sinks", "2"}}), config));
  check_against_references(m, kv::H2o::create(kv::PolicyOptions(0.5, kv::Mode::Decode), config));
  check_against_references(
      m,
      kv::KiviQuant::create(kv::PolicyOptions(0.25, kv::Mode::Decode, {{"residual", "32"}, {"group", "32"}}), config));
}

TEST_CASE("batch decode: a stop condition ends generation with finish_reason stop") {
  const auto dir = test::test_data("tiny/llama_gqa_untied");
  model::Transformer<float> m(io::load_hf_config(dir), dir, 1);
  std::vector<engine::DecodeJob> jobs = {{tokens(10, 1), true, {}}};
  engine::GenerateOptions opt;
  opt.max_new_tokens = 20;
  opt.eos_ids = {-1};
  opt.stop_when = [](std::string_view text) { return text.size() >= 3; };
  const engine::Detokenizer count = [](std::span<const std::int32_t> ids) { return std::string(ids.size(), 'x'); };
  const auto r = engine::run_jobs(m, std::span<const engine::DecodeJob>(jobs), kv::FullCache{}, opt, count);
  CHECK(r[0].generation.tokens.size() == 3);
  CHECK(r[0].generation.finish_reason == "stop");
}

TEST_CASE(
    "batch decode: a raised stop flag admits nothing more and drops the jobs in flight, finished jobs are unchanged") {
  const auto dir = test::test_data("tiny/llama_gqa_untied");
  model::Transformer<float> m(io::load_hf_config(dir), dir, 1);
  const auto jobs = some_jobs();
  engine::GenerateOptions opt;
  opt.max_new_tokens = 12;
  opt.eos_ids = {-1};
  const auto full = engine::run_jobs(m, std::span<const engine::DecodeJob>(jobs), kv::FullCache{}, opt);

  std::atomic<bool> stop{false};
  std::vector<std::size_t> done;
  engine::BatchOptions batch;
  batch.max_lanes = 2;
  batch.stop = &stop;
  batch.on_job_done = [&](std::size_t j, const engine::JobResult&) {
    done.push_back(j);
    if (done.size() == 2) stop = true;  // as a signal handler would, between two steps
  };
  const auto cut = engine::run_jobs(m, std::span<const engine::DecodeJob>(jobs), kv::FullCache{}, opt, {}, batch);
  // Jobs finishing in the step that raised it still count; the queued ones never start.
  CHECK(done.size() >= 2);
  CHECK(done.size() < jobs.size());
  for (std::size_t j : done) {
    CHECK(cut[j].generation.tokens == full[j].generation.tokens);
    CHECK(cut[j].forced.logprobs == full[j].forced.logprobs);
  }

  std::atomic<bool> raised{true};
  engine::BatchOptions before;
  before.stop = &raised;
  std::size_t called = 0;
  before.on_job_done = [&](std::size_t, const engine::JobResult&) { ++called; };
  engine::run_jobs(m, std::span<const engine::DecodeJob>(jobs), kv::FullCache{}, opt, {}, before);
  CHECK(called == 0);
}

TEST_CASE("batch decode: a scope split in the options instead of the jobs is refused, not ignored") {
  const auto dir = test::test_data("tiny/llama_gqa_untied");
  model::Transformer<float> m(io::load_hf_config(dir), dir, 1);
  std::vector<engine::DecodeJob> jobs(1);
  jobs[0].prompt = tokens(20, 1);
  engine::GenerateOptions opt;
  opt.max_new_tokens = 2;
  opt.question_tokens = {5};  // generate_greedy's per-prompt field: each DecodeJob carries its own
  CHECK_THROWS_WITH_AS(engine::run_jobs(m, std::span<const engine::DecodeJob>(jobs), kv::FullCache{}, opt),
                       doctest::Contains("DecodeJob::question_tokens"), Error);
}
