// Lanes of different compressors in one forward call: each job's result under an AnyPolicy
// batch equals the job run with its concrete policy alone (what lets the sweep batch all the
// cells of a task together).

#include <doctest/doctest.h>

#include "../support/json_file.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/kv/any_policy.hpp"
#include "kvcanary/kv/full.hpp"
#include "kvcanary/kv/h2o.hpp"
#include "kvcanary/kv/kivi.hpp"
#include "kvcanary/kv/snapkv.hpp"
#include "kvcanary/kv/streamingllm.hpp"
#include "kvcanary/engine/batch_decode.hpp"

using namespace kvcanary;

TEST_CASE("any policy: mixed-compressor batches give each job what its own policy gives alone") {
  const auto dir = test::test_data("tiny/llama_gqa_untied");
  const auto config = io::load_hf_config(dir);
  model::Transformer<float> m(config, dir, 2);
  using Mixed = kv::AnyPolicyOf<std::tuple<kv::FullCache, kv::StreamingLlm, kv::H2o, kv::KiviQuant, kv::SnapKv>>;
  const std::vector<Mixed> kinds = {
      Mixed{kv::FullCache{}},
      Mixed{kv::StreamingLlm::create(kv::PolicyOptions(0.5, kv::Mode::Decode, {{"sinks", "2"}}), config)},
      Mixed{kv::H2o::create(kv::PolicyOptions(0.5, kv::Mode::Decode), config)},
      Mixed{kv::KiviQuant::create(kv::PolicyOptions(0.25, kv::Mode::Decode, {{"residual", "32"}, {"group", "32"}}),
                                  config)},
      Mixed{kv::SnapKv::create(kv::PolicyOptions(0.5, kv::Mode::Prompt, {{"window", "4"}}), config)}};

  std::vector<engine::DecodeJob> jobs;
  std::vector<Mixed> policies;
  for (std::size_t j = 0; j < 10; ++j) {
    std::vector<std::int32_t> prompt(25 + 3 * j), forced(4 + j % 3);
    for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<std::int32_t>(3 + (i * 31 + j * 7) % 250);
    for (std::size_t i = 0; i < forced.size(); ++i) forced[i] = static_cast<std::int32_t>(5 + (i * 11 + j) % 200);
    jobs.push_back({prompt, true, forced});
    policies.push_back(kinds[j % kinds.size()]);
  }
  engine::GenerateOptions opt;
  opt.max_new_tokens = 9;
  opt.eos_ids = {-1};
  engine::BatchOptions b;
  b.max_lanes = 7;  // refilled as lanes finish: every step mixes policies
  const auto mixed =
      engine::run_jobs_each(m, std::span<const engine::DecodeJob>(jobs), std::span<const Mixed>(policies), opt, {}, b);
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    CAPTURE(j);
    CAPTURE(policies[j].identity());
    std::visit(
        [&](const auto& concrete) {
          const auto alone = engine::run_jobs(m, std::span<const engine::DecodeJob>(&jobs[j], 1), concrete, opt);
          CHECK(mixed[j].generation.tokens == alone[0].generation.tokens);
          CHECK(mixed[j].forced.logprobs == alone[0].forced.logprobs);
          CHECK(mixed[j].generation.memory.kv_bytes_end == alone[0].generation.memory.kv_bytes_end);
        },
        policies[j].policy);
  }
  CHECK_THROWS_AS(engine::run_jobs_each(m, std::span<const engine::DecodeJob>(jobs),
                                        std::span<const Mixed>(policies).first(3), opt),
                  Error);
}
