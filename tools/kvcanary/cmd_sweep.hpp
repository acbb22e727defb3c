#pragma once
// kvcanary sweep CONFIG.toml --out RESULTS.jsonl [--shard i/N] [--progress]
// Runs the config's matrix, appending one row per (cell, sample) to --out; rerunning with the
// same --out resumes. Prints a one-line JSON summary on stdout.

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "args.hpp"
#include "cmd_model.hpp"
#include "kvcanary/run/config.hpp"
#include "kvcanary/run/sweep.hpp"

namespace kvcanary::cli {

inline int run_sweep(int argc, char** argv) {
  if (argc < 3 || std::string(argv[2]).rfind("--", 0) == 0) fail("command line", "CONFIG", "usage: kvcanary sweep CONFIG.toml --out RESULTS.jsonl [--shard i/N] [--progress]");
  const std::string config_path = argv[2];
  Args args(argc, argv, 3, {"--out", "--shard", "--threads"}, {"--progress"});
  const std::string out = args.require("--out");
  const run::Shard shard = run::parse_shard(args.get("--shard", "0/1"));
  run::SweepConfig config = run::load_sweep_config(config_path, default_model_dir());
  std::size_t threads = config.threads ? config.threads : ops::ThreadPool::default_threads();
  threads = static_cast<std::size_t>(args.integer("--threads", static_cast<long long>(threads), 1));

  auto go = [&](auto& model) {
    using WT = typename std::decay_t<decltype(model)>::weight_type;
    run::Sweep<WT> sweep(config, model);
    const auto s = sweep.run(out, shard, run::Progress::style_for(args.has("--progress")));
    nlohmann::ordered_json j;
    j["out"] = out;
    j["config"] = config_path;
    j["shard"] = std::to_string(shard.index) + "/" + std::to_string(shard.count);
    j["cells_total"] = s.cells_total;
    j["cells_in_shard"] = s.cells_owned;
    j["rows_written"] = s.rows_written;
    j["rows_already_there"] = s.rows_skipped;
    j["prefills_shared"] = s.prefills_shared;
    j["wall_s"] = s.wall_seconds;
    std::printf("%s\n", j.dump().c_str());
    return 0;
  };
  if (config.dtype == "bf16") {
    auto m = model::ModelDir<bf16_t>::load(config.model_dir, threads);
    return go(m);
  }
  if (config.dtype == "f16") {
    auto m = model::ModelDir<f16_t>::load(config.model_dir, threads);
    return go(m);
  }
  auto m = model::ModelDir<float>::load(config.model_dir, threads);
  return go(m);
}

}  // namespace kvcanary::cli
