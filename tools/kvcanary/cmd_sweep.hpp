#pragma once
// kvcanary sweep CONFIG.toml --out RESULTS.jsonl [--shard i/N] [--progress] [--threads N]
// Runs the config's matrix, appending one row per (cell, sample) to --out; rerunning with the
// same --out resumes. Prints a one-line JSON summary on stdout.
//
// One writer per results file: the lock on --out (core/writer_lock.hpp) is taken before the
// model is loaded, so a second sweep (or a merge) on the same file is refused at once, exit 2.
// SIGINT/SIGTERM (core/stop_signal.hpp): the sweep stops between engine steps with only whole
// rows on disk, prints the command that resumes it, and exits 130/143; a second signal quits at
// once (still whole rows). docs/RELIABILITY.md describes both, with their tests.

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "args.hpp"
#include "cmd_model.hpp"
#include "kvcanary/core/stop_signal.hpp"
#include "kvcanary/core/writer_lock.hpp"
#include "kvcanary/run/config.hpp"
#include "kvcanary/run/sweep.hpp"
#include "kvcanary/task/code_exec.hpp"
#include "options.hpp"

namespace kvcanary::cli {

inline const Command& sweep_command() {
  static const Command c{
      "sweep",
      "CONFIG.toml",
      1,
      1,
      "run a compressors x budgets x tasks matrix, one JSON row per (cell, sample)",
      "Runs the config's matrix, appending one JSON row per (cell, sample) to --out; rerun with the same --out\n"
      "to resume (docs/SWEEPS.md). One writer per file: a second sweep or a merge on --out is refused (exit 2).\n"
      "Ctrl-C/SIGTERM stop after the steps in flight with only whole rows written, print the command that\n"
      "resumes, and exit 130/143; a second Ctrl-C quits at once.",
      {{"--out", "FILE", "required", "the results file (JSONL), created or resumed"},
       {"--shard", "i/N", "0/1", "run only the cells k with k % N == i"},
       {"--progress", "", "off",
        "redraw a progress line on stderr (else a line every [sweep] progress_every_s when stderr is not a terminal)"},
       {"--threads", "N", "[model] threads of the config, else all cores", "worker threads"}}};
  return c;
}

// A word the shell reads back as itself.
inline std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%_+=:,./-") ==
                        std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The command line that resumes this sweep: the same arguments, since a rerun with the same
// --out skips the rows already written.
inline std::string resume_command(int argc, char** argv) {
  std::string cmd;
  for (int i = 0; i < argc; ++i) {
    if (i) cmd += ' ';
    cmd += shell_quote(argv[i]);
  }
  return cmd;
}

inline int run_sweep(const Args& args, int argc, char** argv) {
  stop_signal::install();  // first: from here on a signal stops the sweep cleanly
  const std::string config_path = args.positional().at(0);
  const std::string out = args.get("--out");
  const run::Shard shard = run::parse_shard(args.get("--shard", "0/1"));
  const WriterLock lock(out);  // before anything slow: a second writer is refused at once
  run::SweepConfig config = run::load_sweep_config(config_path, default_model_dir());
  std::size_t threads = config.threads ? config.threads : ops::ThreadPool::default_threads();
  threads = static_cast<std::size_t>(args.integer("--threads", static_cast<long long>(threads), 1));

  auto go = [&](auto& model) {
    using WT = typename std::decay_t<decltype(model)>::weight_type;
    run::Sweep<WT> sweep(config, model, task::run_python);
    sweep.set_stop(&stop_signal::flag());
    const auto s = sweep.run(out, shard, run::Progress::style_for(args.has("--progress")), &lock);
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
    if (stop_signal::requested()) {
      j["interrupted"] = stop_signal::signal_number() == SIGINT ? "SIGINT" : "SIGTERM";
      j["rows_left"] = s.rows_left;
    }
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
    if (!stop_signal::requested()) return 0;
    // Every written row was fdatasync'ed by RowWriter; the lock goes with the process.
    std::fprintf(stderr, "kvcanary: stopped by %s: %zu rows written this run, %zu still to do; resume with:\n  %s\n",
                 stop_signal::signal_number() == SIGINT ? "SIGINT" : "SIGTERM", s.rows_written, s.rows_left,
                 resume_command(argc, argv).c_str());
    return stop_signal::exit_status();
  };
  auto load_and_go = [&](auto tag) {
    using WT = decltype(tag);
    auto m = model::ModelDir<WT>::load(config.model_dir, threads);
    return go(m);
  };
  if (config.dtype == "bf16") return load_and_go(bf16_t{});
  if (config.dtype == "f16") return load_and_go(f16_t{});
  if (config.dtype == "stored") return load_and_go(stored_t{});
  return load_and_go(float{});
}

}  // namespace kvcanary::cli
