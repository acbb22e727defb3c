// One prefill serving every compressor gives each exactly what its own prefill would have: the
// records of one multi-request pass equal separate passes, and jobs run through a shared
// prefill equal jobs run alone — for policies that record no rows, a window, the last row, or
// every row, in prompt and decode mode; and in a whole sweep, rows equal with sharing on or off.

#include <doctest/doctest.h>

#include "kvcanary/task/code_exec.hpp"

#include <map>

#include "../run/sweep_test_support.hpp"
#include "../support/synthetic_tokens.hpp"
#include "../support/json_file.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/kv/expected_attention.hpp"
#include "kvcanary/kv/full.hpp"
#include "kvcanary/kv/h2o.hpp"
#include "kvcanary/kv/kivi.hpp"
#include "kvcanary/kv/snapkv.hpp"
#include "kvcanary/kv/streamingllm.hpp"
#include "kvcanary/kv/tova.hpp"
#include "kvcanary/engine/batch_decode.hpp"
#include "kvcanary/model/model_dir.hpp"
#include "kvcanary/engine/prefill_share.hpp"
#include "kvcanary/run/config.hpp"
#include "kvcanary/run/results_file.hpp"
#include "kvcanary/run/sweep.hpp"

using namespace kvcanary;

namespace {
std::vector<std::int32_t> tokens(std::size_t n, std::size_t salt) { return test::synthetic_tokens(n, salt, 53, 97); }

std::vector<engine::DecodeJob> some_jobs() {
  std::vector<engine::DecodeJob> jobs;
  // Job 1 only generates, job 3 only scores, jobs 0 and 2 do both (a forked cache).
  for (std::size_t j = 0; j < 4; ++j)
    jobs.push_back({tokens(30 + 9 * j, j), j != 3, j == 1 ? std::vector<std::int32_t>{} : tokens(6 + j, j + 40)});
  return jobs;
}

template <class Policy>
void check_shared_equals_alone(model::Transformer<float>& m, engine::PrefillShare& share, const Policy& policy) {
  CAPTURE(policy.identity());
  const auto jobs = some_jobs();
  engine::GenerateOptions opt;
  opt.max_new_tokens = 10;
  opt.eos_ids = {-1};
  engine::BatchOptions shared;
  shared.prefill_share = &share;
  const auto with = engine::run_jobs(m, std::span<const engine::DecodeJob>(jobs), policy, opt, {}, shared);
  const auto without = engine::run_jobs(m, std::span<const engine::DecodeJob>(jobs), policy, opt);
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    CAPTURE(j);
    CHECK(with[j].generation.tokens == without[j].generation.tokens);
    CHECK(with[j].forced.logprobs == without[j].forced.logprobs);
    CHECK(with[j].generation.memory.kv_bytes_end == without[j].generation.memory.kv_bytes_end);
    CHECK(with[j].generation.memory.kv_fraction_peak == without[j].generation.memory.kv_fraction_peak);
    CHECK(with[j].forced.memory.kv_bytes_end == without[j].forced.memory.kv_bytes_end);
    CHECK(with[j].generation.prefill_seconds > 0);
  }
}
}  // namespace

TEST_CASE("prefill share: one pass recording several row counts equals one pass per count") {
  const auto dir = test::test_data("tiny/llama_gqa_untied");
  model::Transformer<float> m(io::load_hf_config(dir), dir, 2);
  const auto ids = tokens(40, 7);
  const std::vector<std::size_t> counts = {1, 5, 40, 64};  // 64 > n: clamped to every row
  std::map<std::size_t, kv::AttentionRecord> together;
  std::vector<model::RecordRequest> requests;
  for (std::size_t r : counts) requests.push_back({&together[r], r});
  kv::KvCache c = m.new_cache();
  std::vector<float> logits_together;
  const model::Segment seg{&c, ids, model::Logits::Last, requests};
  m.forward(std::span<const model::Segment>(&seg, 1), logits_together);
  for (std::size_t r : counts) {
    CAPTURE(r);
    kv::AttentionRecord alone;
    const model::RecordRequest req{&alone, r};
    kv::KvCache c1 = m.new_cache();
    std::vector<float> logits_alone;
    const model::Segment s1{&c1, ids, model::Logits::Last, std::span<const model::RecordRequest>(&req, 1)};
    m.forward(std::span<const model::Segment>(&s1, 1), logits_alone);
    CHECK(logits_alone == logits_together);
    CHECK(alone.rows == std::min<std::size_t>(r, ids.size()));
    CHECK(together[r].rows == alone.rows);
    CHECK(together[r].per_layer_head == alone.per_layer_head);  // bit-identical sums
  }
}

TEST_CASE("prefill share: jobs through one shared prefill equal jobs prefilled alone, for every kind of policy") {
  const auto dir = test::test_data("tiny/llama_gqa_untied");
  const auto config = io::load_hf_config(dir);
  model::Transformer<float> m(config, dir, 2);
  const auto snap = kv::SnapKv::create(kv::PolicyOptions(0.5, kv::Mode::Prompt, {{"window", "8"}}), config);
  const auto h2o = kv::H2o::create(kv::PolicyOptions(0.5, kv::Mode::Decode), config);
  const auto tova = kv::Tova::create(kv::PolicyOptions(0.5, kv::Mode::Decode), config);
  const auto stream = kv::StreamingLlm::create(kv::PolicyOptions(0.5, kv::Mode::Decode, {{"sinks", "2"}}), config);
  const auto kivi =
      kv::KiviQuant::create(kv::PolicyOptions(0.25, kv::Mode::Decode, {{"residual", "32"}, {"group", "32"}}), config);

  // The share is told every row count these policies ask for, so one pass per prompt serves all.
  engine::PrefillShare share([&](std::size_t n) {
    return std::vector<std::size_t>{snap.attention_rows(kv::StepKind::Prefill, n),
                                    h2o.attention_rows(kv::StepKind::Prefill, n),
                                    tova.attention_rows(kv::StepKind::Prefill, n)};
  });
  check_shared_equals_alone(m, share, kv::FullCache{});
  const std::size_t prompts = some_jobs().size();
  CHECK(share.misses() == prompts);
  check_shared_equals_alone(m, share, snap);
  check_shared_equals_alone(m, share, h2o);
  check_shared_equals_alone(m, share, tova);
  check_shared_equals_alone(m, share, stream);
  check_shared_equals_alone(m, share, kivi);
  CHECK(share.misses() == prompts);  // nothing prefilled twice
  CHECK(share.hits() == 5 * prompts);
  CHECK(share.kept_bytes() > 0);

  SUBCASE("a policy whose row count the share was not told about is still served exactly") {
    const auto other = kv::SnapKv::create(kv::PolicyOptions(0.5, kv::Mode::Prompt, {{"window", "3"}}), config);
    check_shared_equals_alone(m, share, other);
    CHECK(share.misses() == 2 * prompts);
  }
  SUBCASE("a policy that wants the prefill's query moments, through a share that records them") {
    const auto ea = kv::ExpectedAttention::create(kv::PolicyOptions(0.5, kv::Mode::Prompt), config);
    engine::PrefillShare with_moments(
        [&](std::size_t n) { return std::vector<std::size_t>{ea.attention_rows(kv::StepKind::Prefill, n)}; },
        std::size_t{2} << 30, true);
    check_shared_equals_alone(m, with_moments, ea);
    CHECK(with_moments.misses() == prompts);
  }
  SUBCASE("over the memory limit nothing is kept, and results are unchanged") {
    engine::PrefillShare tight({}, 0);
    check_shared_equals_alone(m, tight, snap);
    check_shared_equals_alone(m, tight, stream);
    CHECK(tight.hits() == 0);
    CHECK(tight.kept_bytes() == 0);
  }
}

TEST_CASE("prefill share: a whole sweep writes the same rows with sharing on and off") {
  if (!test::sweep_data_available()) return;
  test::TempDir tmp;
  const auto model_dir = test::make_tiny_chat_model(tmp.path);
  auto m = model::ModelDir<float>::load(model_dir, 2);
  const std::string extra_policies =
      "\n[[compressors]]\nname = \"snapkv\"\nbudgets = [0.5]\nparams = { window = 4 }\n"
      "\n[[compressors]]\nname = \"h2o\"\nbudgets = [0.5]\nmode = \"decode\"\n"
      "\n[[compressors]]\nname = \"expected_attention\"\nbudgets = [0.5]\n";
  auto run_with = [&](const std::string& sweep_key, const std::string& file) {
    std::string toml = test::tiny_sweep_toml(model_dir, extra_policies);
    toml.replace(toml.find("[sweep]\n"), 8, "[sweep]\n" + sweep_key);
    run::Sweep<float> sweep(run::parse_sweep_config(io::parse_toml_string(toml, "t.toml"), "t.toml", "unused"), m,
                            task::run_python);
    const auto summary = sweep.run(tmp.path / file);
    std::map<std::pair<std::string, std::string>, std::string> rows;
    for (run::Row r : run::read_results(tmp.path / file).rows) {
      r.latency_s = 0;
      r.config_hash.clear();
      rows[{r.cell_id, r.sample_id}] = run::to_json_line(r);
    }
    return std::make_pair(rows, summary);
  };
  const auto [shared, s_on] = run_with("share_prefill_mb = 64\n", "on.jsonl");
  const auto [separate, s_off] = run_with("share_prefill_mb = 0\n", "off.jsonl");
  CHECK(s_on.rows_written == s_off.rows_written);
  CHECK(s_on.prefills_shared > 0);
  CHECK(s_off.prefills_shared == 0);
  CHECK(shared.size() == s_on.rows_written);
  for (const auto& [key, line] : shared) {
    CAPTURE(key.first);
    CAPTURE(key.second);
    REQUIRE(separate.count(key));
    CHECK(separate.at(key) == line);
  }
}
