// The Python prototype's v1 matrix, built in code (no config file): full; absmax labelled
// "quantized" at 0.5/0.25/0.125; StreamingLLM and SnapKV at 0.75/0.5/0.25/0.125 — all in prompt
// mode, as the prototype compressed the prompt once and kept what it generated. Tasks: HumanEval,
// the prototype's seed tool calls (1-shot) and held-out WikiText-2 perplexity (one span: the
// prototype's single context/continuation split, unless SPANS is given).
//
//   build/bin/examples/sweep_prototype_v1 [OUT.jsonl] [REPORT_DIR] [LIMIT=2] [SPANS=1]   (from the repository root)
//
// LIMIT caps the samples of each functional task (0: all 164 problems and all 12 tool calls).
// Only the four policies below are compiled in; configs/v1.toml is the full, file-based matrix.

#include <kvcanary/kvcanary.hpp>
#include <kvcanary/task/code_exec.hpp>  // the sandbox HumanEval runs its programs in (opt-in)

#include <cstdio>
#include <string>
#include <tuple>

namespace kv = kvcanary::kv;
namespace run = kvcanary::run;
namespace task = kvcanary::task;

using Policies = std::tuple<kv::FullCache, kv::AbsmaxQuant, kv::StreamingLlm, kv::SnapKv>;
using Tasks = std::tuple<task::HumanEvalTask, task::SeedToolTask, task::HeldOutPerplexity>;

int main(int argc, char** argv) try {
  const std::string out = argc > 1 ? argv[1] : "results/prototype_v1.jsonl";
  const std::string report_dir = argc > 2 ? argv[2] : "results/prototype_v1-report";
  auto count = [&](int i, const char* what, const char* fallback) {
    const std::string v = argc > i ? argv[i] : fallback;
    if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 9)
      kvcanary::fail("command line", what, "'" + v + "' is not a count");
    return v;
  };
  const std::string limit = count(3, "LIMIT", "2"), spans = count(4, "SPANS", "1");

  const std::string text = R"([sweep]
name = "prototype_v1"
[data]
dir = "data"
[[compressors]]
name = "full"
scope = "prompt"
[[compressors]]
name = "absmax"
label = "quantized"
budgets = [0.5, 0.25, 0.125]
mode = "prompt"
scope = "prompt"
[[compressors]]
name = "streamingllm"
budgets = [0.75, 0.5, 0.25, 0.125]
mode = "prompt"
scope = "prompt"
[[compressors]]
name = "snapkv"
budgets = [0.75, 0.5, 0.25, 0.125]
mode = "prompt"
scope = "prompt"
[[tasks]]
type = "humaneval"
limit = )" + limit + R"(
[[tasks]]
type = "seed_tool_calls"
shots = 1
limit = )" + limit + R"(
[[tasks]]
type = "perplexity"
spans = )" + spans + "\n";
  const std::string name = "<prototype_v1>";  // stands for the file name in config errors
  run::SweepConfig config =
      run::parse_sweep_config(kvcanary::io::parse_toml_string(text, name), name, KVCANARY_DEFAULT_MODEL_DIR);
  config.hash = task::prompt_hash(text);  // rows' config_hash (load_sweep_config hashes the file)

  auto model = kvcanary::model::ModelDir<float>::load(config.model_dir);
  run::Sweep<float, Policies, Tasks> sweep(config, model, task::run_python);
  const run::SweepSummary s = sweep.run(out, run::Shard{}, run::Progress::style_for(/*asked=*/true));
  std::printf("%zu cells: %zu rows written, %zu already in %s (%.1f s)\n", s.cells_total, s.rows_written,
              s.rows_skipped, out.c_str(), s.wall_seconds);

  const run::ReportFiles files = run::write_report(run::read_results(out).rows, report_dir);
  std::printf("report: %s\n", files.markdown.c_str());
  return 0;
} catch (const kvcanary::Error& e) {
  std::fprintf(stderr, "sweep_prototype_v1: error: %s\n", e.what());
  return kvcanary::kBadInputExitCode;
}
