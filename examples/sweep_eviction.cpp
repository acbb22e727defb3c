// A sweep restricted to eviction: the full cache and five eviction policies, three tasks, from a
// TOML config (default examples/configs/eviction.toml), then the report of the rows it wrote.
// Rerunning with the same OUT resumes: finished (cell, sample) pairs are skipped.
//
//   build/bin/examples/sweep_eviction [CONFIG.toml] [OUT.jsonl] [REPORT_DIR]      (from the repository root)
//
// The two lists below are all this program compiles: the engine is instantiated for these six
// policies (snapkv_rolling: kvcanary 0.2's snapkv decode mode, which the config pins) and the cell loop for these three
// tasks, nothing else. A config naming a compressor outside the list (kivi, say) stops before anything runs, with the
// registry's error
//   CONFIG.toml: compressors[N]: compressor: unknown compressor 'kivi' (known: full, streamingllm, snapkv,
//   snapkv_rolling, h2o, tova)
// and a task type outside it (bfcl) with
//   CONFIG.toml: tasks[N].type: unknown task type 'bfcl' (known: humaneval, seed_tool_calls, perplexity)

#include <kvcanary/kvcanary.hpp>
#include <kvcanary/task/code_exec.hpp>  // the sandbox HumanEval runs its programs in (opt-in)

#include <cstdio>
#include <string>
#include <tuple>

namespace kv = kvcanary::kv;
namespace run = kvcanary::run;
namespace task = kvcanary::task;

using Policies = std::tuple<kv::FullCache, kv::StreamingLlm, kv::SnapKv, kv::SnapKvRolling, kv::H2o, kv::Tova>;
using Tasks = std::tuple<task::HumanEvalTask, task::SeedToolTask, task::HeldOutPerplexity>;

int main(int argc, char** argv) try {
  const std::string config_path = argc > 1 ? argv[1] : "examples/configs/eviction.toml";
  const std::string out = argc > 2 ? argv[2] : "results/eviction.jsonl";
  const std::string report_dir = argc > 3 ? argv[3] : "results/eviction-report";

  const run::SweepConfig config = run::load_sweep_config(config_path, KVCANARY_DEFAULT_MODEL_DIR);
  if (config.dtype != "f32") kvcanary::fail(config_path, "model.dtype", "this example is built for f32 weights only");
  auto model = kvcanary::model::ModelDir<float>::load(
      config.model_dir, config.threads ? config.threads : kvcanary::ops::ThreadPool::default_threads());

  run::Sweep<float, Policies, Tasks> sweep(config, model,
                                           task::run_python);  // unknown names fail here, before any cell runs
  const run::SweepSummary s = sweep.run(out, run::Shard{}, run::Progress::style_for(/*asked=*/true));
  std::printf("%zu cells: %zu rows written, %zu already in %s (%.1f s)\n", s.cells_total, s.rows_written,
              s.rows_skipped, out.c_str(), s.wall_seconds);

  const run::ReportFiles files = run::write_report(run::read_results(out).rows, report_dir);
  std::printf("report: %s\n", files.markdown.c_str());
  return 0;
} catch (const kvcanary::Error& e) {
  std::fprintf(stderr, "sweep_eviction: error: %s\n", e.what());
  return kvcanary::kBadInputExitCode;
}
