// The sweep on a tiny model: every cell × sample becomes one row of the prototype's schema; a run
// interrupted anywhere (even mid-line) and resumed gives the rows of an uninterrupted run; shards
// partition the matrix; a bad config is one error naming the file and key.

#include <doctest/doctest.h>

#include "kvcanary/task/code_exec.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "kvcanary/model/model_dir.hpp"
#include "kvcanary/run/config.hpp"
#include "kvcanary/run/results_file.hpp"
#include "kvcanary/run/sweep.hpp"
#include "sweep_test_support.hpp"

using namespace kvcanary;

namespace {

run::SweepConfig config_from(const std::string& text, const std::string& name = "tiny.toml") {
  return run::parse_sweep_config(io::parse_toml_string(text, name), name, "unused");
}

// Everything but the timing: what must not change between an interrupted and a clean run.
std::map<std::pair<std::string, std::string>, std::string> by_key(const std::vector<run::Row>& rows) {
  std::map<std::pair<std::string, std::string>, std::string> out;
  for (run::Row r : rows) {
    r.latency_s = 0;
    const bool fresh = out.emplace(std::make_pair(r.cell_id, r.sample_id), run::to_json_line(r)).second;
    CHECK_MESSAGE(fresh, "duplicate row " << r.cell_id << " " << r.sample_id);
  }
  return out;
}

std::string first_difference(const std::map<std::pair<std::string, std::string>, std::string>& a,
                             const std::map<std::pair<std::string, std::string>, std::string>& b) {
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end()) return "only on the left: " + k.first + " " + k.second;
    if (it->second != v) return "differs:\n  " + v + "\n  " + it->second;
  }
  for (const auto& [k, v] : b)
    if (!a.count(k)) return "only on the right: " + k.first + " " + k.second;
  return "";
}

}  // namespace

TEST_CASE(
    "sweep: one row per cell and sample, in the prototype's schema, with measured budgets and paired gold scores") {
  if (!test::sweep_data_available()) return;
  test::TempDir tmp;
  const auto model_dir = test::make_tiny_chat_model(tmp.path);
  auto m = model::ModelDir<float>::load(model_dir, 2);
  run::Sweep<float> sweep(config_from(test::tiny_sweep_toml(model_dir)), m, task::run_python);
  // 4 (compressor, budget) pairs × 4 tasks.
  REQUIRE(sweep.cells().size() == 16);
  const auto out = tmp.path / "rows.jsonl";
  const auto summary = sweep.run(out);
  CHECK(summary.rows_written == 4 * (3 + 3 + 4 + 3));
  const auto rows = run::read_results(out).rows;
  REQUIRE(rows.size() == summary.rows_written);
  CHECK(by_key(rows).size() == rows.size());
  for (const auto& r : rows) {
    CAPTURE(r.cell_id);
    CAPTURE(r.sample_id);
    CHECK(r.cell_id == run::make_cell_id("tiny", r.method, r.budget, r.task));
    CHECK(r.model_hash == sweep.model_hash());
    CHECK(r.prompt_hash.size() == 16);
    CHECK(r.config_hash.size() == 16);
    CHECK(r.latency_s > 0);
    CHECK(r.kv_bytes_retained > 0);
    if (r.method == "full") CHECK(r.budget_measured == 1.0);
    if (r.method == "streamingllm") CHECK(r.budget_measured <= r.budget + 0.05);  // decode mode: kept within budget
    // Semantics (docs/COMPRESSORS.md "Capacity", "Scope"): streamingllm runs its paper's decode
    // mode at the fixed capacity over the whole prompt; full and kivi (prompt mode) compress the
    // context and append each functional task's question uncompressed.
    if (r.method == "streamingllm") {
      CHECK(r.mode == "decode");
      CHECK(r.capacity == "fixed");
      CHECK(r.scope == "prompt");
      CHECK(r.question_tokens == 0);
    } else {
      CHECK(r.mode == "prompt");
      CHECK(r.capacity == "none");
      CHECK(r.scope == "context");
      if (r.kind == run::TaskKind::Functional) {
        CHECK(r.question_tokens > 0);
        CHECK(r.question_tokens < r.prompt_tokens);
      } else {
        CHECK(r.question_tokens == 0);
      }
    }
    if (r.kind == run::TaskKind::Functional) {
      CHECK(r.scores.count("functional"));
      CHECK(r.scores.count("gold_nll"));
      CHECK(r.scores.at("gold_ppl") == doctest::Approx(std::exp(r.scores.at("gold_nll"))));
      CHECK(r.n_tokens >= 1);
      CHECK(!r.finish_reason.empty());
    } else {
      CHECK(r.task == "wikitext2");
      CHECK(r.scores.at("n_scored") == 12);
      CHECK(r.scores.at("perplexity") == doctest::Approx(std::exp(r.scores.at("nll_sum") / 12)));
    }
  }
  // Running again resumes: nothing left to do.
  const auto again = sweep.run(out);
  CHECK(again.rows_written == 0);
  CHECK(again.rows_skipped == rows.size());
}

TEST_CASE("sweep: interrupted at any row, even mid-line, and resumed, it writes exactly the uninterrupted rows") {
  if (!test::sweep_data_available()) return;
  test::TempDir tmp;
  const auto model_dir = test::make_tiny_chat_model(tmp.path);
  auto m = model::ModelDir<float>::load(model_dir, 2);
  run::Sweep<float> sweep(config_from(test::tiny_sweep_toml(model_dir)), m, task::run_python);
  const auto clean_path = tmp.path / "clean.jsonl";
  sweep.run(clean_path);
  std::ifstream in(clean_path, std::ios::binary);
  const std::string clean((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto reference = by_key(run::read_results(clean_path).rows);

  // Cut points: after a few whole rows, and inside a row (a torn write), at three places.
  std::vector<std::size_t> cuts;
  std::size_t nl = 0;
  for (int k = 0; k < 3; ++k) nl = clean.find('\n', nl) + 1;
  cuts.push_back(nl);                // 3 whole rows
  cuts.push_back(nl + 17);           // 3 rows + a torn fourth
  cuts.push_back(clean.size() / 2);  // somewhere in the middle
  cuts.push_back(clean.size() - 5);  // the last row torn
  for (std::size_t cut : cuts) {
    CAPTURE(cut);
    const auto path = tmp.path / ("resumed-" + std::to_string(cut) + ".jsonl");
    std::ofstream(path, std::ios::binary) << clean.substr(0, cut);
    sweep.run(path);
    const auto resumed = run::read_results(path);
    CHECK_FALSE(resumed.torn_tail);
    CHECK_MESSAGE(by_key(resumed.rows) == reference, first_difference(by_key(resumed.rows), reference));
  }
}

TEST_CASE("sweep: shards i/N partition the cells, their union is the whole run") {
  if (!test::sweep_data_available()) return;
  test::TempDir tmp;
  const auto model_dir = test::make_tiny_chat_model(tmp.path);
  auto m = model::ModelDir<float>::load(model_dir, 2);
  run::Sweep<float> sweep(config_from(test::tiny_sweep_toml(model_dir)), m, task::run_python);
  sweep.run(tmp.path / "all.jsonl");
  std::vector<run::Row> shards;
  std::size_t owned = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto path = tmp.path / ("shard" + std::to_string(i) + ".jsonl");
    owned += sweep.run(path, run::Shard{i, 3}).cells_owned;
    for (auto& r : run::read_results(path).rows) shards.push_back(r);
  }
  CHECK(owned == sweep.cells().size());
  const auto all = by_key(run::read_results(tmp.path / "all.jsonl").rows);
  CHECK_MESSAGE(by_key(shards) == all, first_difference(by_key(shards), all));
  CHECK(run::parse_shard("2/3").index == 2);
  CHECK_THROWS_WITH_AS(run::parse_shard("3/3"), doctest::Contains("--shard"), Error);
  CHECK_THROWS_AS(run::parse_shard("1"), Error);
}

TEST_CASE("sweep config: bad input is one error naming the file and the key") {
  const std::string base = "[[compressors]]\nname = \"full\"\n[[tasks]]\ntype = \"seed_tool_calls\"\n";
  CHECK_THROWS_WITH_AS(config_from(base + "[sweep]\nbatchh = 3\n", "c.toml"),
                       doctest::Contains("c.toml: sweep.batchh: unknown key"), Error);
  CHECK_THROWS_WITH_AS(
      config_from("[[compressors]]\nname = \"snapkv\"\nbudgets = [0.5, 1.5]\n[[tasks]]\ntype = \"x\"\n", "c.toml"),
      doctest::Contains("c.toml: compressors[0].budgets[1]: must be in (0, 1]"), Error);
  CHECK_THROWS_WITH_AS(config_from("[[tasks]]\ntype = \"x\"\n", "c.toml"), doctest::Contains("no [[compressors]]"),
                       Error);
  CHECK_THROWS_WITH_AS(config_from(base + "[[compressors]]\nname = \"full\"\n", "c.toml"),
                       doctest::Contains("compressors[1].label"), Error);
  CHECK_THROWS_WITH_AS(config_from(base + "[model]\ndtype = \"f8\"\n", "c.toml"),
                       doctest::Contains("c.toml: model.dtype: must be f32, bf16, f16 or stored"), Error);
  CHECK_THROWS_WITH_AS(io::parse_toml_string("[[compressors]\nname=1", "c.toml"), doctest::Contains("c.toml: line 1"),
                       Error);
  const auto ok = config_from(base +
                              "[[compressors]]\nname = \"kivi\"\nlabel = \"kivi-r32\"\nbudgets = [0.25, 0.125]\nmode = "
                              "\"decode\"\nparams = { residual = 32, group = 64 }\n");
  REQUIRE(ok.compressors.size() == 2);
  CHECK(ok.compressors[1].label == "kivi-r32");
  CHECK(ok.compressors[1].mode == kv::Mode::Decode);
  CHECK(ok.compressors[1].params.at("residual") == "32");
  CHECK(ok.compressors[1].budgets == std::vector<double>{0.25, 0.125});
}

TEST_CASE("sweep: unknown compressor, bad parameter, unknown task type or key fail before anything runs") {
  if (!test::sweep_data_available()) return;
  test::TempDir tmp;
  const auto model_dir = test::make_tiny_chat_model(tmp.path);
  auto m = model::ModelDir<float>::load(model_dir, 1);
  const std::string head = "[model]\ndir = \"x\"\n[data]\ndir = \"" + test::project_data().string() + "\"\n";
  const std::string seed =
      "[[tasks]]\ntype = \"seed_tool_calls\"\nfile = \"" +
      (std::filesystem::path(KVCANARY_SOURCE_DIR) / "configs/data/seed_tool_calls.jsonl").string() + "\"\n";
  auto build = [&](const std::string& text) {
    run::Sweep<float> s(config_from(head + text, "c.toml"), m, task::run_python);
  };
  CHECK_THROWS_WITH_AS(build("[[compressors]]\nname = \"snapkvv\"\n" + seed),
                       doctest::Contains("unknown compressor 'snapkvv'"), Error);
  CHECK_THROWS_WITH_AS(build("[[compressors]]\nname = \"snapkv\"\nbudgets = [0.5]\nparams = { windw = 8 }\n" + seed),
                       doctest::Contains("c.toml: compressors[0]: windw"), Error);
  CHECK_THROWS_WITH_AS(build("[[compressors]]\nname = \"full\"\n[[tasks]]\ntype = \"mbpp\"\n"),
                       doctest::Contains("c.toml: tasks[0].type: unknown task type 'mbpp'"), Error);
  CHECK_THROWS_WITH_AS(build("[[compressors]]\nname = \"full\"\n" + seed + "limt = 3\n"),
                       doctest::Contains("c.toml: tasks[0].limt: unknown key"), Error);
  CHECK_THROWS_WITH_AS(build("[[compressors]]\nname = \"full\"\n[[tasks]]\ntype = \"bfcl\"\ncategory = \"simple\"\n"),
                       doctest::Contains("tasks[0].category"), Error);
  // Semantics: snapkv is prompt-only; scope context cannot go with decode mode; bad values.
  CHECK_THROWS_WITH_AS(build("[[compressors]]\nname = \"snapkv\"\nmode = \"decode\"\n" + seed),
                       doctest::Contains("snapkv_rolling"), Error);
  CHECK_THROWS_WITH_AS(build("[[compressors]]\nname = \"h2o\"\nscope = \"context\"\n" + seed),
                       doctest::Contains("c.toml: compressors[0].scope"), Error);
  CHECK_THROWS_WITH_AS(build("[[compressors]]\nname = \"h2o\"\ncapacity = \"grow\"\n" + seed),
                       doctest::Contains("c.toml: compressors[0].capacity: must be fixed or seen"), Error);
  CHECK_THROWS_WITH_AS(build("[[compressors]]\nname = \"h2o\"\nscope = \"question\"\n" + seed),
                       doctest::Contains("c.toml: compressors[0].scope: must be context or prompt"), Error);
}

TEST_CASE("sweep: prompt_format = native renders BFCL and the seed calls through the template's tools") {
  // The tiny model with the Qwen2.5-Coder-1.5B GGUF's template: the sweep renders each BFCL
  // sample with its functions as the template's tools, exactly as transformers does
  // (tests/data/toolcall/bfcl_native_prompts.jsonl), and names the prompt by that text.
  test::TempDir tmp;
  const auto model_dir = test::make_tiny_chat_model(tmp.path);
  std::filesystem::copy_file(test::test_data("chat/qwen2.5-coder-1.5b.tokenizer_config.json"),
                             model_dir / "tokenizer_config.json", std::filesystem::copy_options::overwrite_existing);
  auto m = model::ModelDir<float>::load(model_dir, 2);
  const std::string toml =
      "[model]\ndir = \"" + model_dir.string() + "\"\nlabel = \"tiny\"\nthreads = 2\n\n[data]\ndir = \"" +
      test::test_data("").string() + "\"\n\n[[compressors]]\nname = \"full\"\n\n" +
      "[[tasks]]\ntype = \"bfcl\"\ncategory = \"parallel\"\nquestions = \"" +
      test::test_data("toolcall/bfcl_native_questions.jsonl").string() + "\"\nanswers = \"" +
      test::test_data("toolcall/bfcl_native_answers.jsonl").string() +
      "\"\nprompt_format = \"native\"\nmax_new_tokens = 2\n\n" + "[[tasks]]\ntype = \"seed_tool_calls\"\nfile = \"" +
      (std::filesystem::path(KVCANARY_SOURCE_DIR) / "configs/data/seed_tool_calls.jsonl").string() +
      "\"\nprompt_format = \"native\"\nlimit = 1\nmax_new_tokens = 2\n";
  run::Sweep<float> sweep(config_from(toml), m, task::run_python);
  const auto out = tmp.path / "rows.jsonl";
  sweep.run(out);
  std::map<std::string, std::string> want;  // sample id -> hash of transformers' rendering
  std::ifstream golden(test::test_data("toolcall/bfcl_native_prompts.jsonl"));
  for (std::string line; std::getline(golden, line);) {
    const auto g = task::parse_json(line);
    REQUIRE(g);
    want[g->find("id")->s] = task::prompt_hash(g->find("prompt_1.5b")->s);
  }
  // The seed sample, rendered by hand from the prototype's "Tool available: get_weather(city: string)".
  const std::vector<io::ChatMessage> seed_msgs{
      {"user", "Make the function call that gets the current weather for Paris."}};
  const std::vector<std::string> seed_tools{
      "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\", "
      "\"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}"};
  want["weather_paris"] = task::prompt_hash(m.chat_template().render(seed_msgs, true, seed_tools));
  const auto rows = run::read_results(out).rows;
  REQUIRE(rows.size() == 3);
  for (const auto& r : rows) {
    CAPTURE(r.sample_id);
    CHECK(r.prompt_hash == want.at(r.sample_id));
  }
}
