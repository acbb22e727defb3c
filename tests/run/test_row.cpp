// The result row: our rows round-trip, the prototype's rows load, and our rows satisfy a reader
// written for the prototype's schema (its 11 keys with its JSON types, its cell ids).

#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../support/temp_dir.hpp"
#include "kvcanary/run/results_file.hpp"
#include "kvcanary/run/row.hpp"

using namespace kvcanary::run;

namespace {

// A reader for the prototype's rows, as strict as its CellResult: these 11 keys with these JSON
// types (Python writes budget/latency/bytes as floats, n_tokens as an int), first and in order.
// Keys after them are additions it ignores.
void check_prototype_schema(const std::string& line) {
  const auto j = nlohmann::ordered_json::parse(line);
  REQUIRE(j.is_object());
  const std::vector<std::pair<std::string, std::string>> schema = {
      {"model", "string"},     {"method", "string"},    {"budget", "float"},           {"task", "string"},
      {"cell_id", "string"},   {"sample_id", "string"}, {"scores", "object"},          {"raw_output", "string"},
      {"n_tokens", "integer"}, {"latency_s", "float"},  {"kv_bytes_retained", "float"}};
  REQUIRE(j.size() >= schema.size());
  auto it = j.begin();
  for (const auto& [key, type] : schema) {
    INFO("key " << key);
    CHECK(it.key() == key);
    const auto& v = j.at(key);
    if (type == "string") CHECK(v.is_string());
    if (type == "float") CHECK(v.is_number_float());
    if (type == "integer") CHECK(v.is_number_integer());
    if (type == "object") {
      CHECK(v.is_object());
      for (const auto& [name, score] : v.items()) {
        INFO("score " << name);
        CHECK((score.is_number() || score.is_null()));
      }
    }
    ++it;
  }
  CHECK(j.at("cell_id").get<std::string>() ==
        j.at("model").get<std::string>() + "|" + j.at("method").get<std::string>() + "|" +
            python_float(j.at("budget").get<double>()) + "|" + j.at("task").get<std::string>());
}

Row full_row() {
  Row r;
  r.model = "SmolLM2-360M-Instruct";
  r.method = "snapkv";
  r.budget = 0.25;
  r.task = "bfcl_simple";
  r.cell_id = make_cell_id(r.model, r.method, r.budget, r.task);
  r.sample_id = "simple_7";
  r.scores = {{"functional", 1.0}, {"gold_nll", 0.4375}, {"gold_ppl", std::exp(0.4375)}, {"gold_tokens", 31}};
  r.raw_output = "{\"name\": \"f\", \"arguments\": {\"x\": \"é\\n\"}}\n";
  r.n_tokens = 24;
  r.latency_s = 1.25;
  r.kv_bytes_retained = 196608.0;
  r.kind = TaskKind::Functional;
  r.budget_measured = 0.2571;
  r.budget_peak = 0.31;
  r.policy = "snapkv(window=32,kernel=7)";
  r.mode = "prompt";
  r.capacity = "fixed";
  r.scope = "context";
  r.question_tokens = 37;
  r.prompt_hash = "p-1";
  r.model_hash = "m-2";
  r.config_hash = "c-3";
  r.prompt_tokens = 812;
  r.finish_reason = "eos";
  return r;
}

}  // namespace

TEST_CASE("run row: Row → line → Row keeps every field") {
  const Row r = full_row();
  const std::string line = to_json_line(r);
  CHECK(line.find('\n') == std::string::npos);
  const Row back = row_from_json_line(line, "t:1");
  CHECK(back.model == r.model);
  CHECK(back.method == r.method);
  CHECK(back.budget == r.budget);
  CHECK(back.task == r.task);
  CHECK(back.cell_id == r.cell_id);
  CHECK(back.sample_id == r.sample_id);
  CHECK(back.scores == r.scores);
  CHECK(back.raw_output == r.raw_output);
  CHECK(back.n_tokens == r.n_tokens);
  CHECK(back.latency_s == r.latency_s);
  CHECK(back.kv_bytes_retained == r.kv_bytes_retained);
  CHECK(back.kind == r.kind);
  CHECK(back.budget_measured == r.budget_measured);
  CHECK(back.budget_peak == r.budget_peak);
  CHECK(back.policy == r.policy);
  CHECK(back.mode == r.mode);
  CHECK(back.capacity == r.capacity);
  CHECK(back.scope == r.scope);
  CHECK(back.question_tokens == r.question_tokens);
  CHECK(back.prompt_hash == r.prompt_hash);
  CHECK(back.model_hash == r.model_hash);
  CHECK(back.config_hash == r.config_hash);
  CHECK(back.program_version == r.program_version);
  CHECK(back.prompt_tokens == r.prompt_tokens);
  CHECK(back.finish_reason == r.finish_reason);
  CHECK(back.output_tokens.empty());
  CHECK(line.find("output_tokens") == std::string::npos);  // absent unless set (the full cache's rows)
  CHECK(to_json_line(back) == line);                       // and writes the same line again

  // The full cache's rows carry their generated token ids.
  Row f = r;
  f.output_tokens = {151643, 0, 42, 7};
  const std::string fline = to_json_line(f);
  CHECK(fline.find("\"output_tokens\":[151643,0,42,7]") != std::string::npos);
  CHECK(row_from_json_line(fline, "t:3").output_tokens == f.output_tokens);
  for (const char* bad : {"\"x\"", "[1,-2]", "[1.5]", "[\"7\"]", "[4294967296]"}) {
    const std::string l = fline.substr(0, fline.find("\"output_tokens\"")) + "\"output_tokens\":" + bad + "}";
    CAPTURE(l);
    try {
      (void)row_from_json_line(l, "rows.jsonl:9");
      FAIL("accepted");
    } catch (const kvcanary::Error& e) {
      CHECK(std::string(e.what()).find("rows.jsonl:9") != std::string::npos);
      CHECK(std::string(e.what()).find("output_tokens") != std::string::npos);
    }
  }

  // A NaN score (Python's float('nan') is written as null) survives as NaN.
  Row n = r;
  n.scores["gold_nll"] = std::nan("");
  const Row nb = row_from_json_line(to_json_line(n), "t:2");
  CHECK(std::isnan(nb.scores.at("gold_nll")));
}

TEST_CASE("run row: a row exactly as the prototype's CellResult.to_row() writes it loads") {
  const std::string proto =
      R"({"model": "distilgpt2", "method": "streamingllm", "budget": 0.5, "task": "code", )"
      R"("cell_id": "distilgpt2|streamingllm|0.5|code", "sample_id": "he0", "scores": {"pass@1": 0.0}, )"
      R"("raw_output": "def f():", "n_tokens": 12, "latency_s": 0.8, "kv_bytes_retained": 512.0})";
  const Row r = row_from_json_line(proto, "proto.jsonl:1");
  CHECK(r.model == "distilgpt2");
  CHECK(r.method == "streamingllm");
  CHECK(r.budget == 0.5);
  CHECK(r.task == "code");
  CHECK(r.cell_id == "distilgpt2|streamingllm|0.5|code");
  CHECK(r.cell_id == make_cell_id(r.model, r.method, r.budget, r.task));
  CHECK(r.sample_id == "he0");
  CHECK(r.scores.size() == 1);
  CHECK(r.scores.at("pass@1") == 0.0);
  CHECK(r.raw_output == "def f():");
  CHECK(r.n_tokens == 12);
  CHECK(r.latency_s == 0.8);
  CHECK(r.kv_bytes_retained == 512.0);
  // The additions get their defaults: functional (no perplexity score), measured = nominal.
  CHECK(r.kind == TaskKind::Functional);
  CHECK(r.budget_measured == 0.5);
  CHECK(r.policy == "streamingllm");
  // Rows from before eviction v2: the budget grew with the tokens seen, the whole prompt was compressed.
  CHECK(r.capacity == "seen");
  CHECK(r.scope == "prompt");
  CHECK(r.question_tokens == 0);
  CHECK(r.program_version.empty());

  // A prototype perplexity row is recognised by its score.
  const Row p = row_from_json_line(
      R"({"model": "distilgpt2", "method": "full", "budget": 1.0, "task": "ppl", "cell_id": "distilgpt2|full|1.0|ppl", )"
      R"("sample_id": "w0", "scores": {"perplexity": 41.5}, "raw_output": "", "n_tokens": 512, "latency_s": 2.0, "kv_bytes_retained": 0.0})",
      "proto.jsonl:2");
  CHECK(p.kind == TaskKind::Perplexity);

  // Loaded from a file too, through the results reader.
  kvcanary::test::TempDir dir;
  std::ofstream(dir.path / "proto.jsonl") << proto << "\n";
  const auto contents = read_results(dir.path / "proto.jsonl");
  REQUIRE(contents.rows.size() == 1);
  CHECK_FALSE(contents.torn_tail);
  CHECK(contents.rows[0].cell_id == r.cell_id);
}

TEST_CASE("run row: our rows satisfy a reader of the prototype's schema") {
  check_prototype_schema(to_json_line(full_row()));
  Row whole = full_row();
  whole.budget = 1.0;  // still a float in JSON, not the integer 1
  whole.kv_bytes_retained = 4096;
  whole.latency_s = 2;
  whole.cell_id = make_cell_id(whole.model, whole.method, whole.budget, whole.task);
  check_prototype_schema(to_json_line(whole));
  Row ppl;
  ppl.model = "m";
  ppl.method = "full";
  ppl.task = "wikitext2";
  ppl.kind = TaskKind::Perplexity;
  ppl.cell_id = make_cell_id(ppl.model, ppl.method, ppl.budget, ppl.task);
  ppl.sample_id = "doc0";
  ppl.scores = {{"perplexity", 12.5}, {"nll_sum", 1234.5}, {"n_scored", 512}};
  check_prototype_schema(to_json_line(ppl));
}

TEST_CASE("run row: make_cell_id matches Python's f\"{model}|{method}|{budget}|{task}\"") {
  CHECK(make_cell_id("m", "full", 1.0, "code") == "m|full|1.0|code");
  CHECK(make_cell_id("m", "snapkv", 0.5, "code") == "m|snapkv|0.5|code");
  CHECK(make_cell_id("m", "h2o", 0.125, "tools") == "m|h2o|0.125|tools");
  CHECK(make_cell_id("m", "tova", 0.75, "ppl") == "m|tova|0.75|ppl");
  // str(float) is the shortest repr that round-trips.
  CHECK(python_float(0.1) == "0.1");
  CHECK(python_float(1.0 / 3.0) == "0.3333333333333333");
  CHECK(python_float(0.0625) == "0.0625");
  CHECK(python_float(2.0) == "2.0");
}
