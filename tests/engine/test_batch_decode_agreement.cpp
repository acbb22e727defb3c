// The batched engine's agreement lanes (issue 20): the full cache's own generation teacher-forced
// under the job's compressed cache and, in lockstep, under the uncompressed one. Under the full
// cache agreement is total by construction; under a compressor that changes the output, the first
// disagreement is where generate_greedy under that compressor departs from the reference; the
// mean KL equals a recomputation from separate passes; nothing depends on the batch, and adding
// the lanes changes neither the generation nor the gold scores.

#include <doctest/doctest.h>

#include "../support/json_file.hpp"
#include "../support/synthetic_tokens.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/kv/any_policy.hpp"
#include "kvcanary/kv/full.hpp"
#include "kvcanary/kv/h2o.hpp"
#include "kvcanary/kv/snapkv.hpp"
#include "kvcanary/kv/streamingllm.hpp"
#include "kvcanary/engine/batch_decode.hpp"
#include "kvcanary/engine/generate.hpp"

using namespace kvcanary;

namespace {

std::vector<std::int32_t> tokens(std::size_t n, std::size_t salt) { return test::synthetic_tokens(n, salt); }

engine::GenerateOptions options() {
  engine::GenerateOptions opt;
  opt.max_new_tokens = 16;
  opt.eos_ids = {-1};  // never: every generation runs to the cap
  return opt;
}

// Jobs with prompts of several lengths (one with a question appended uncompressed, scope
// context), each carrying the full cache's greedy generation of its prompt as the reference.
std::vector<engine::DecodeJob> jobs_with_references(model::Transformer<float>& m) {
  std::vector<engine::DecodeJob> jobs;
  for (std::size_t j = 0; j < 5; ++j) {
    engine::DecodeJob job;
    job.prompt = tokens(24 + 9 * j, j);
    job.generate = j != 3;  // job 3 only scores
    if (j % 2 == 0) job.forced = tokens(6 + j, j + 40);
    if (j == 1) job.question_tokens = 7;
    jobs.push_back(job);
  }
  std::vector<engine::DecodeJob> plain = jobs;
  for (auto& job : plain) {
    job.generate = true;
    job.forced.clear();
  }
  const auto refs = engine::run_jobs(m, std::span<const engine::DecodeJob>(plain), kv::FullCache{}, options());
  for (std::size_t j = 0; j < jobs.size(); ++j) jobs[j].reference = refs[j].generation.tokens;
  return jobs;
}

bool same(const engine::Agreement& a, const engine::Agreement& b) {
  return a.positions == b.positions && a.agreed == b.agreed && a.first_mismatch == b.first_mismatch &&
         a.kl_sum == b.kl_sum;
}

}  // namespace

TEST_CASE("batch decode agreement: under the full cache, top-1 agreement 1, KL 0, no disagreement") {
  const auto dir = test::test_data("tiny/llama_gqa_untied");
  model::Transformer<float> m(io::load_hf_config(dir), dir, 2);
  const auto jobs = jobs_with_references(m);
  const auto r = engine::run_jobs(m, std::span<const engine::DecodeJob>(jobs), kv::FullCache{}, options());
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    CAPTURE(j);
    const engine::Agreement& a = r[j].agreement;
    CHECK(a.positions == jobs[j].reference.size());
    CHECK(a.top1() == 1.0);
    CHECK(a.kl_sum == 0.0);  // the two lanes compute the very same rows
    CHECK_FALSE(a.first_mismatch.has_value());
    CHECK(a.first_disagree() == a.positions);
  }
  // The sweep generates the reference with `full`'s question split (scope context) and scores a
  // scope-prompt compressor against it with a one-pass prefill: the two prefills give the same
  // rows bit for bit, so the uncompressed twin still agrees exactly.
  engine::DecodeJob one_pass = jobs[1];
  REQUIRE(one_pass.question_tokens > 0);
  one_pass.question_tokens = 0;
  const auto o = engine::run_jobs(m, std::span<const engine::DecodeJob>(&one_pass, 1), kv::FullCache{}, options());
  CHECK(o[0].agreement.top1() == 1.0);
  CHECK(o[0].agreement.kl_sum == 0.0);
}

TEST_CASE(
    "batch decode agreement: a compressor that changes the output disagrees first where its own greedy generation "
    "departs") {
  const auto dir = test::test_data("tiny/llama_gqa_untied");
  const auto config = io::load_hf_config(dir);
  model::Transformer<float> m(config, dir, 2);
  const auto jobs = jobs_with_references(m);
  auto check_policy = [&](const auto& policy) {
    const auto r = engine::run_jobs(m, std::span<const engine::DecodeJob>(jobs), policy, options());
    std::size_t departed = 0;
    for (std::size_t j = 0; j < jobs.size(); ++j) {
      CAPTURE(j);
      const auto& ref = jobs[j].reference;
      // Independently: the compressed cache's own greedy generation, by generate_greedy.
      engine::GenerateOptions opt = options();
      opt.question_tokens = {jobs[j].question_tokens};
      const std::vector<std::vector<std::int32_t>> prompt = {jobs[j].prompt};
      const auto own =
          engine::generate_greedy(m, std::span<const std::vector<std::int32_t>>(prompt), opt, {}, policy)[0].tokens;
      REQUIRE(own.size() == ref.size());
      std::size_t d = 0;
      while (d < ref.size() && own[d] == ref[d]) ++d;
      const engine::Agreement& a = r[j].agreement;
      CHECK(a.positions == ref.size());
      CHECK(a.first_disagree() == d);  // the same prefix fed to both: the first differing argmax is the departure
      if (d < ref.size()) {
        ++departed;
        CHECK(a.top1() < 1.0);
        CHECK(a.kl_sum > 0.0);
      }
      CHECK(a.top1() >= 0.0);
    }
    CHECK(departed > 0);  // the check above is not vacuous
    return r;
  };
  check_policy(kv::StreamingLlm::create(kv::PolicyOptions(0.25, kv::Mode::Decode, {{"sinks", "2"}}), config));
  check_policy(kv::H2o::create(kv::PolicyOptions(0.25, kv::Mode::Decode), config));
}

TEST_CASE(
    "batch decode agreement: the mean KL equals a recomputation from a full pass and a compressed step-by-step pass") {
  const auto dir = test::test_data("tiny/llama_gqa_untied");
  const auto config = io::load_hf_config(dir);
  model::Transformer<float> m(config, dir, 2);
  const auto jobs = jobs_with_references(m);
  const auto policy = kv::StreamingLlm::create(kv::PolicyOptions(0.25, kv::Mode::Decode, {{"sinks", "2"}}), config);
  const auto r = engine::run_jobs(m, std::span<const engine::DecodeJob>(jobs), policy, options());
  const std::size_t V = static_cast<std::size_t>(config.vocab_size);
  const engine::DecodeJob& job = jobs[0];  // scope prompt
  const auto& ref = job.reference;
  // The full cache's rows: one pass over the prompt and the reference, every row's logits.
  std::vector<std::int32_t> all = job.prompt;
  all.insert(all.end(), ref.begin(), ref.end() - 1);
  kv::KvCache full = m.new_cache();
  std::vector<float> full_logits;
  const model::Segment seg{&full, std::span<const std::int32_t>(all), model::Logits::All};
  m.forward(std::span<const model::Segment>(&seg, 1), full_logits);
  // The compressed cache's rows: the prompt step, then one decode step per reference token.
  kv::KvCache cache = m.new_cache();
  auto pol = policy;
  decltype(pol)* pp = &pol;
  std::vector<float> logits;
  engine::prefill_with_policy(m, cache, std::span<const std::int32_t>(job.prompt), 0, pol, logits);
  double kl = 0;
  for (std::size_t t = 0; t < ref.size(); ++t) {
    if (t > 0) {
      std::vector<model::Segment> step = {{&cache, std::span<const std::int32_t>(&ref[t - 1], 1), model::Logits::Last}};
      engine::forward_with_policies(m, step, std::span<decltype(pp) const>(&pp, 1), kv::StepKind::Decode, logits);
    }
    kl += engine::kl_of_logits(&full_logits[(job.prompt.size() - 1 + t) * V], logits.data(), V);
  }
  CHECK(r[0].agreement.kl_mean() == doctest::Approx(kl / double(ref.size())).epsilon(1e-6));
  CHECK(r[0].agreement.kl_mean() > 0.0);
}

TEST_CASE("batch decode agreement: the same alone or batched, and the generation and gold scores do not move") {
  const auto dir = test::test_data("tiny/llama_gqa_untied");
  const auto config = io::load_hf_config(dir);
  model::Transformer<float> m(config, dir, 2);
  const auto jobs = jobs_with_references(m);
  const auto policy = kv::H2o::create(kv::PolicyOptions(0.25, kv::Mode::Decode), config);
  engine::BatchOptions wide, narrow;
  wide.max_lanes = 16;
  narrow.max_lanes = 2;
  const auto batched = engine::run_jobs(m, std::span<const engine::DecodeJob>(jobs), policy, options(), {}, wide);
  const auto refilled = engine::run_jobs(m, std::span<const engine::DecodeJob>(jobs), policy, options(), {}, narrow);
  std::vector<engine::DecodeJob> without = jobs;
  for (auto& job : without) job.reference.clear();
  const auto plain = engine::run_jobs(m, std::span<const engine::DecodeJob>(without), policy, options(), {}, wide);
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    CAPTURE(j);
    const auto alone = engine::run_jobs(m, std::span<const engine::DecodeJob>(&jobs[j], 1), policy, options());
    CHECK(same(batched[j].agreement, alone[0].agreement));
    CHECK(same(refilled[j].agreement, alone[0].agreement));
    CHECK(batched[j].generation.tokens == plain[j].generation.tokens);
    CHECK(batched[j].forced.logprobs == plain[j].forced.logprobs);
    CHECK(batched[j].generation.memory.kv_fraction_peak == plain[j].generation.memory.kv_fraction_peak);
    CHECK_FALSE(plain[j].agreement.measured());
  }
}

TEST_CASE(
    "batch decode agreement: jobs of one prompt, split and reference share the uncompressed reference, read early or "
    "late") {
  // A sweep's cells of one sample: the same prompt and reference under different compressors.
  // They share one Reference lane (engine/batch_decode.hpp); a job admitted after the lane ran
  // ahead reads its kept rows. Each job's agreement must still be what it is alone.
  const auto dir = test::test_data("tiny/llama_gqa_untied");
  const auto config = io::load_hf_config(dir);
  model::Transformer<float> m(config, dir, 2);
  const auto samples = jobs_with_references(m);
  using Mixed = kv::AnyPolicyOf<std::tuple<kv::StreamingLlm, kv::H2o, kv::SnapKv>>;
  const std::vector<Mixed> cells = {
      Mixed{kv::StreamingLlm::create(kv::PolicyOptions(0.25, kv::Mode::Decode, {{"sinks", "2"}}), config)},
      Mixed{kv::H2o::create(kv::PolicyOptions(0.25, kv::Mode::Decode), config)},
      Mixed{kv::SnapKv::create(kv::PolicyOptions(0.5, kv::Mode::Prompt, {{"window", "4"}}), config)}};
  std::vector<engine::DecodeJob> jobs;
  std::vector<Mixed> policies;
  for (const std::size_t i : {0, 1, 2})
    for (const Mixed& cell : cells) {
      jobs.push_back(samples[i]);
      policies.push_back(cell);
    }
  // Sample 1 also in scope prompt: another split, so another key.
  jobs.push_back(samples[1]);
  jobs.back().question_tokens = 0;
  policies.push_back(cells[2]);
  for (const std::size_t lanes : {std::size_t{3}, std::size_t{64}}) {
    CAPTURE(lanes);
    engine::BatchOptions b;
    b.max_lanes = lanes;  // 3: one job at a time, so the later cells of a sample join a running reference
    const auto r = engine::run_jobs_each(m, std::span<const engine::DecodeJob>(jobs), std::span<const Mixed>(policies),
                                         options(), {}, b);
    std::size_t disagreeing = 0;
    for (std::size_t j = 0; j < jobs.size(); ++j) {
      CAPTURE(j);
      std::visit(
          [&](const auto& concrete) {
            const auto alone =
                engine::run_jobs(m, std::span<const engine::DecodeJob>(&jobs[j], 1), concrete, options());
            CHECK(same(r[j].agreement, alone[0].agreement));
            CHECK(r[j].agreement.positions == jobs[j].reference.size());
            CHECK(r[j].generation.tokens == alone[0].generation.tokens);
          },
          policies[j].policy);
      disagreeing += r[j].agreement.first_mismatch.has_value();
    }
    CHECK(disagreeing > 0);  // the rows compared are not all one cache's
  }
}
