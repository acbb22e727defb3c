// The task policies: built from their config table, they expose samples whose prompts follow
// docs/TASKS.md, score completions with the task's own rule, and k-shot examples never leak the
// sample's own answer.

#include <doctest/doctest.h>

#include <algorithm>
#include <functional>

#include "../support/resources.hpp"
#include "kvcanary/io/config_table.hpp"
#include "kvcanary/task/bfcl_task.hpp"
#include "kvcanary/task/heldout_perplexity.hpp"
#include "kvcanary/task/code_exec.hpp"
#include "kvcanary/task/humaneval_task.hpp"
#include "kvcanary/task/seed_tool_task.hpp"

using namespace kvcanary;

namespace {
const std::filesystem::path kSeed = std::filesystem::path(KVCANARY_SOURCE_DIR) / "configs/data/seed_tool_calls.jsonl";

template <class T>
T build(const std::string& toml_text, const task::TaskContext& ctx = {}) {
  const toml::table t = io::parse_toml_string(toml_text, "t.toml");
  return T::from_config(io::ConfigTable(t, "t.toml", "tasks[0]"), ctx);
}
}  // namespace

TEST_CASE("task: seed tool calls score as the prototype did, k-shot examples are other samples' solved exchanges") {
  const auto zero = build<task::SeedToolTask>("file = \"" + kSeed.string() + "\"\n");
  REQUIRE(zero.samples().size() == 12);
  CHECK(zero.samples()[0].messages.size() == 1);
  const auto gold = zero.samples()[3].gold;
  const auto right = zero.score(3, "Sure: " + gold);
  CHECK(right.scores.at("functional") == 1);
  CHECK(right.scores.at("arg_match") == 1);
  CHECK(right.detail.empty());
  const auto wrong = zero.score(3, "no idea");
  CHECK(wrong.scores.at("functional") == 0);
  CHECK(wrong.scores.at("json_valid") == 0);
  CHECK(wrong.detail == "no JSON");

  const auto two = build<task::SeedToolTask>("file = \"" + kSeed.string() + "\"\nshots = 2\noffset = 10\n");
  REQUIRE(two.samples().size() == 2);
  // Sample 11 (the last) takes samples 0 and 1 as its examples: wrapping, never itself.
  const auto& m = two.samples()[1].messages;
  REQUIRE(m.size() == 5);
  CHECK(m[0].content == zero.samples()[0].messages[0].content);
  CHECK(m[1].role == "assistant");
  CHECK(m[1].content == zero.samples()[0].gold);
  CHECK(m[3].content == zero.samples()[1].gold);
  CHECK(m[4].content == zero.samples()[11].messages[0].content);
  for (const auto& msg : m) CHECK(msg.content != two.samples()[1].gold);
  CHECK_THROWS_WITH_AS(build<task::SeedToolTask>("file = \"" + kSeed.string() + "\"\nshot = 1\n"),
                       doctest::Contains("t.toml: tasks[0].shot: unknown key"), Error);
  CHECK_THROWS_WITH_AS(build<task::SeedToolTask>("file = \"/nonexistent.jsonl\"\n"), doctest::Contains("tasks[0].file"),
                       Error);
}

TEST_CASE("task: sample_seed draws the same subset of `limit` samples on every platform, in dataset order") {
  task::CommonTaskSettings s;
  s.limit = 4;
  CHECK(s.indices(10) == std::vector<std::size_t>{0, 1, 2, 3});  // no seed: the file's order
  s.sample_seed = 7;
  // Pinned: SplitMix64 from 7, Fisher–Yates from the back (an independent Python transcription
  // gives the same); a change of generator or shuffle would silently change every seeded sweep.
  CHECK(s.indices(10) == std::vector<std::size_t>{2, 3, 4, 5});
  s.offset = 4;
  CHECK(s.indices(10) == std::vector<std::size_t>{1, 6, 8, 9});  // the next 4 of the same permutation
  s.offset = 0;
  s.limit = 100;
  s.sample_seed = 1;
  const auto hundred = s.indices(400);
  REQUIRE(hundred.size() == 100);
  CHECK(std::vector<std::size_t>(hundred.begin(), hundred.begin() + 10) ==
        std::vector<std::size_t>{4, 13, 14, 22, 24, 28, 29, 30, 33, 42});
  CHECK(std::adjacent_find(hundred.begin(), hundred.end(), std::greater_equal<>()) ==
        hundred.end());         // ascending, distinct
  CHECK(hundred.back() > 300);  // spread over the file, not its head
  s.limit = 0;
  CHECK(s.indices(5) == std::vector<std::size_t>{0, 1, 2, 3, 4});  // all of them, whatever the seed

  // Through a task's config: the samples are the drawn ones, ids and examples as without a seed.
  const auto all = build<task::SeedToolTask>("file = \"" + kSeed.string() + "\"\n");
  const auto some = build<task::SeedToolTask>("file = \"" + kSeed.string() + "\"\nlimit = 4\nsample_seed = 7\n");
  REQUIRE(some.samples().size() == 4);
  task::CommonTaskSettings twelve;
  twelve.limit = 4;
  twelve.sample_seed = 7;
  const auto picked = twelve.indices(12);
  for (std::size_t k = 0; k < 4; ++k) {
    CHECK(some.samples()[k].id == all.samples()[picked[k]].id);
    CHECK(some.score(k, all.samples()[picked[k]].gold).scores.at("functional") == 1);  // verdicts follow the sample
  }
  CHECK_THROWS_WITH_AS(build<task::SeedToolTask>("file = \"" + kSeed.string() + "\"\nsample_seed = \"x\"\n"),
                       doctest::Contains("tasks[0].sample_seed"), Error);
}

TEST_CASE("task: HumanEval — canonical answer passes, a wrong one fails, the fence closing ends generation") {
  if (!test::available(test::project_data("HumanEval.jsonl.gz"))) return;
  const std::string he_toml = "file = \"" + test::project_data("HumanEval.jsonl.gz").string() + "\"\nlimit = 2\n";
  // Without a sandbox the task refuses to start, naming the field and the way out.
  try {
    build<task::HumanEvalTask>(he_toml);
    FAIL("humaneval built without a program runner");
  } catch (const std::exception& e) {
    CHECK(std::string(e.what()).find("type") != std::string::npos);
    CHECK(std::string(e.what()).find("task/code_exec.hpp") != std::string::npos);
  }
  task::TaskContext with_sandbox;
  with_sandbox.run_program = task::run_python;
  const auto he = build<task::HumanEvalTask>(he_toml, with_sandbox);
  REQUIRE(he.samples().size() == 2);
  CHECK(he.samples()[0].id == "HumanEval/0");
  CHECK(he.score(0, he.samples()[0].gold).scores.at("functional") == 1);
  const auto bad = he.score(1, "```python\ndef separate_paren_groups(s):\n    return []\n```");
  CHECK(bad.scores.at("pass@1") == 0);
  CHECK(bad.detail.rfind("fail", 0) == 0);
  CHECK(bad.detail.find("kvcanary-exec-") == std::string::npos);  // rows never name the random sandbox dir
  CHECK_FALSE(he.complete("```python\ndef f():\n"));
  CHECK(he.complete("```python\ndef f():\n    return 1\n```"));
}

TEST_CASE("task: BFCL — the gold call passes the AST check in both formats, prose fails with BFCL's error type") {
  if (!test::available(test::project_data("bfcl"))) return;
  for (const std::string format : {"python", "json"}) {
    const auto t = build<task::BfclTask>("category = \"parallel\"\nlimit = 3\nformat = \"" + format + "\"\n",
                                         task::TaskContext{test::project_data(), nullptr, {}});
    REQUIRE(t.samples().size() == 3);
    CHECK(t.name() == "bfcl_parallel");
    for (std::size_t i = 0; i < 3; ++i) {
      const auto v = t.score(i, t.samples()[i].gold);
      CHECK(v.scores.at("functional") == 1);
      CHECK(v.scores.at("func_correct") == 1);
    }
    const auto prose = t.score(0, "The weather is nice.");
    CHECK(prose.scores.at("functional") == 0);
    CHECK(prose.detail == "ast_decoder:decoder_failed");
  }
}
