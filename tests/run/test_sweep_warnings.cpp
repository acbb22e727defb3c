// `[sweep] warning_signals` on the tiny model: every compressed functional row gets the warning signals
// (agreement with the full cache's own generation; evicted attention or K/V reconstruction
// error), the full cell none; rows are bit-identical batched or not, with the prefill share or
// without, interrupted and resumed; turning the signals off leaves every other field as it was.

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

const std::set<std::string> kSignalScores = {"agree_top1",        "first_disagree", "kl_full",       "agree_positions",
                                             "evicted_attention", "kv_rel_error_k", "kv_rel_error_v"};

// Eviction in decode and prompt mode, a cache type, and eviction followed by a cache type.
std::string warnings_toml(const std::filesystem::path& model, const std::string& sweep_keys, int batch = 4) {
  return "[sweep]\nbatch = " + std::to_string(batch) + "\n" + sweep_keys + "\n[model]\ndir = \"" + model.string() +
         "\"\nlabel = \"tiny\"\nthreads = 1\n\n"
         "[[compressors]]\nname = \"full\"\n\n"
         "[[compressors]]\nname = \"streamingllm\"\nbudgets = [0.25]\nmode = \"decode\"\nparams = { sinks = 2 }\n\n"
         "[[compressors]]\nname = \"h2o\"\nbudgets = [0.5]\nmode = \"prompt\"\n\n"
         "[[compressors]]\nname = \"q4_0\"\nmode = \"decode\"\n\n"
         "[[compressors]]\nname = \"snapkv+q8_0\"\nbudgets = [0.5]\nparams = { window = 8 }\n\n"
         "[[tasks]]\ntype = \"seed_tool_calls\"\nfile = \"" +
         (std::filesystem::path(KVCANARY_SOURCE_DIR) / "configs/data/seed_tool_calls.jsonl").string() +
         "\"\nlimit = 5\nmax_new_tokens = 14\n";
}

run::SweepConfig config_from(const std::string& text, const std::string& name = "warn.toml") {
  return run::parse_sweep_config(io::parse_toml_string(text, name), name, "unused");
}

std::vector<run::Row> run_sweep(model::ModelDir<float>& m, const std::string& toml, const std::filesystem::path& out) {
  run::Sweep<float> sweep(config_from(toml), m, task::run_python);
  sweep.run(out);
  return run::read_results(out).rows;
}

// Every field but the timing and the config's hash (the configs compared differ in their text),
// by (cell, sample); `drop_signals` erases the signal scores first.
std::map<std::pair<std::string, std::string>, std::string> by_key(std::vector<run::Row> rows,
                                                                  bool drop_signals = false) {
  std::map<std::pair<std::string, std::string>, std::string> out;
  for (run::Row& r : rows) {
    r.latency_s = 0;
    r.config_hash.clear();
    if (drop_signals)
      for (const auto& s : kSignalScores) r.scores.erase(s);
    out.emplace(std::make_pair(r.cell_id, r.sample_id), run::to_json_line(r));
  }
  return out;
}

using Keyed = std::map<std::pair<std::string, std::string>, std::string>;

std::string first_difference(const Keyed& a, const Keyed& b) {
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end()) return "only on the left: " + k.first + " " + k.second;
    if (it->second != v) return "differs:\n  " + v + "\n  " + it->second;
  }
  return a.size() == b.size() ? "" : "more rows on the right";
}

}  // namespace

TEST_CASE("sweep warnings: compressed rows carry the signals their compressor has, the full cell none") {
  test::TempDir tmp;
  const auto model_dir = test::make_tiny_chat_model(tmp.path, "llama3_rope");  // head_dim 32: q4_0 blocks
  auto m = model::ModelDir<float>::load(model_dir, 1);
  const auto rows = run_sweep(m, warnings_toml(model_dir, "warning_signals = true"), tmp.path / "rows.jsonl");
  REQUIRE(rows.size() == 5 * 5);
  std::map<std::string, const run::Row*> full;  // by sample
  for (const auto& r : rows)
    if (r.method == "full") full[r.sample_id] = &r;
  REQUIRE(full.size() == 5);
  std::size_t departed = 0;
  for (const auto& r : rows) {
    CAPTURE(r.cell_id);
    CAPTURE(r.sample_id);
    if (r.method == "full") {
      for (const auto& s : kSignalScores) CHECK_FALSE(r.scores.count(s));
      // Its generated ids, so a resumed run has the references without generating them again.
      CHECK(r.output_tokens.size() == std::size_t(r.n_tokens));
      CHECK(m.tokenizer.decode(r.output_tokens, true) == r.raw_output);
      continue;
    }
    CHECK(r.output_tokens.empty());
    const run::Row& f = *full.at(r.sample_id);
    // Agreement is scored on the full cache's own generation: as many positions as it generated.
    REQUIRE(r.scores.count("agree_positions"));
    const double n = r.scores.at("agree_positions");
    CHECK(n == double(f.n_tokens));
    const double agree = r.scores.at("agree_top1"), first = r.scores.at("first_disagree"), kl = r.scores.at("kl_full");
    CHECK(agree >= 0.0);
    CHECK(agree <= 1.0);
    CHECK(kl >= 0.0);
    CHECK(first >= 0.0);
    CHECK(first <= n);
    if (first == n) {
      // No disagreement: the compressed cache generated the full cache's tokens.
      CHECK(agree == 1.0);
      CHECK(r.raw_output == f.raw_output);
    } else {
      ++departed;
      CHECK(agree < 1.0);
      CHECK(kl > 0.0);
    }
    const bool evicts = r.method != "q4_0", quantizes = r.method == "q4_0" || r.method == "snapkv+q8_0";
    CHECK(r.scores.count("evicted_attention") == std::size_t(evicts));
    CHECK(r.scores.count("kv_rel_error_k") == std::size_t(quantizes));
    CHECK(r.scores.count("kv_rel_error_v") == std::size_t(quantizes));
    if (evicts) {
      CHECK(r.scores.at("evicted_attention") >= 0.0);
      CHECK(r.scores.at("evicted_attention") <= 1.0);
    }
    if (quantizes) {
      CHECK(r.scores.at("kv_rel_error_k") > 0.0);
      CHECK(r.scores.at("kv_rel_error_k") < (r.method == "q4_0" ? 0.5 : 0.05));
    }
  }
  CHECK(departed > 0);  // some compressor changed some output, so the checks above are not vacuous
}

TEST_CASE(
    "sweep warnings: bit-identical batched or not, shared prefill or not, interrupted and resumed, and off leaves the "
    "rest unchanged") {
  test::TempDir tmp;
  const auto model_dir = test::make_tiny_chat_model(tmp.path, "llama3_rope");  // head_dim 32: q4_0 blocks
  auto m = model::ModelDir<float>::load(model_dir, 1);
  const auto clean_path = tmp.path / "clean.jsonl";
  const auto reference = by_key(run_sweep(m, warnings_toml(model_dir, "warning_signals = true"), clean_path));
  REQUIRE(reference.size() == 25);
  const auto unbatched =
      by_key(run_sweep(m, warnings_toml(model_dir, "warning_signals = true", 1), tmp.path / "b1.jsonl"));
  CHECK_MESSAGE(unbatched == reference, first_difference(unbatched, reference));
  const auto unshared = by_key(run_sweep(m, warnings_toml(model_dir, "warning_signals = true\nshare_prefill_mb = 0"),
                                         tmp.path / "noshare.jsonl"));
  CHECK_MESSAGE(unshared == reference, first_difference(unshared, reference));

  // Interrupted after a few rows (the last one torn), resumed: the full rows are then on disk
  // already, and the compressed rows still get their reference.
  std::ifstream in(clean_path, std::ios::binary);
  const std::string clean((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t cut = 0;
  for (int k = 0; k < 7; ++k) cut = clean.find('\n', cut) + 1;
  const auto resumed = tmp.path / "resumed.jsonl";
  std::ofstream(resumed, std::ios::binary) << clean.substr(0, cut + 20);
  const auto resumed_rows = by_key(run_sweep(m, warnings_toml(model_dir, "warning_signals = true"), resumed));
  CHECK_MESSAGE(resumed_rows == reference, first_difference(resumed_rows, reference));

  // Off (the default): every other score and field as with them on.
  const auto off = by_key(run_sweep(m, warnings_toml(model_dir, ""), tmp.path / "off.jsonl"));
  const auto on_without = by_key(run::read_results(clean_path).rows, /*drop_signals=*/true);
  CHECK_MESSAGE(off == on_without, first_difference(off, on_without));
  for (const auto& r : run::read_results(tmp.path / "off.jsonl").rows)
    for (const auto& s : kSignalScores) CHECK_FALSE(r.scores.count(s));
}

TEST_CASE("sweep warnings: a resumed sweep takes the references from the full cell's rows on disk") {
  test::TempDir tmp;
  const auto model_dir = test::make_tiny_chat_model(tmp.path, "llama3_rope");
  auto m = model::ModelDir<float>::load(model_dir, 1);
  const std::string toml = warnings_toml(model_dir, "warning_signals = true");
  const auto clean_rows = run_sweep(m, toml, tmp.path / "clean.jsonl");
  REQUIRE(clean_rows.size() == 25);

  // Only the full cell's rows on disk: the rest resumes and equals the uninterrupted run.
  auto write_full_rows = [&](const std::filesystem::path& path, std::size_t keep_tokens) {
    std::ofstream f(path, std::ios::binary);
    for (run::Row r : clean_rows)
      if (r.method == "full") {
        if (r.output_tokens.size() > keep_tokens) r.output_tokens.resize(keep_tokens);
        f << run::to_json_line(r) << "\n";
      }
  };
  write_full_rows(tmp.path / "resumed.jsonl", SIZE_MAX);
  const auto resumed = by_key(run_sweep(m, toml, tmp.path / "resumed.jsonl"));
  const auto reference = by_key(clean_rows);
  CHECK_MESSAGE(resumed == reference, first_difference(resumed, reference));

  // The references really come from the file: cut to 3 tokens there, every compressed row is
  // scored for agreement on exactly those 3 positions.
  write_full_rows(tmp.path / "cut.jsonl", 3);
  std::map<std::string, double> positions;  // by sample: min(3, what the full cache generated)
  for (const auto& r : clean_rows)
    if (r.method == "full") positions[r.sample_id] = std::min(3.0, double(r.n_tokens));
  std::size_t compressed = 0, shortened = 0;
  for (const auto& r : run_sweep(m, toml, tmp.path / "cut.jsonl")) {
    if (r.method == "full") continue;
    ++compressed;
    CAPTURE(r.cell_id);
    CHECK(r.scores.at("agree_positions") == positions.at(r.sample_id));
    for (const auto& c : clean_rows)
      if (c.cell_id == r.cell_id && c.sample_id == r.sample_id) shortened += c.scores.at("agree_positions") > 3.0;
  }
  CHECK(shortened > 0);  // the cut changed something, so the check is not vacuous
  CHECK(compressed == 20);
}

TEST_CASE(
    "sweep warnings: the option is declared with its default, a malformed value is one error naming file and key") {
  const std::string base = "[[compressors]]\nname = \"full\"\n[[tasks]]\ntype = \"seed_tool_calls\"\n";
  CHECK_FALSE(config_from(base).warning_signals);
  CHECK(config_from("[sweep]\nwarning_signals = true\n" + base).warning_signals);
  CHECK_THROWS_WITH_AS(config_from("[sweep]\nwarning_signals = \"yes\"\n" + base, "c.toml"),
                       doctest::Contains("c.toml: sweep.warning_signals: must be true or false"), Error);
  CHECK_THROWS_WITH_AS(config_from("[sweep]\nwarning_signals = 1\n" + base, "c.toml"),
                       doctest::Contains("c.toml: sweep.warning_signals"), Error);
}
