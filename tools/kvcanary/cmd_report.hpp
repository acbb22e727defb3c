#pragma once
// kvcanary report RESULTS.jsonl [MORE.jsonl...] --out DIR [--bootstrap N] [--seed S]:
// RESULTS.md, divergence.svg and divergence.png from one or more results files (joined as
// `merge` joins shards: identical duplicates once, conflicting ones an error naming both files).

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "args.hpp"
#include "cmd_merge.hpp"
#include "kvcanary/core/error.hpp"
#include "kvcanary/run/metrics.hpp"
#include "kvcanary/run/report.hpp"

namespace kvcanary::cli {

// argv[0] is "report".
inline int run_report(int argc, char** argv) {
  const std::set<std::string> valued = {"--out", "--bootstrap", "--seed"};
  SplitArgs split = split_positionals(argc, argv, 1, valued);
  Args args(int(split.flags.size()), split.flags.data(), 1, valued, {});
  const std::string out = args.require("--out");
  if (split.positional.empty()) fail("command line", "RESULTS.jsonl", "at least one results file is required");
  run::MetricsOptions options;
  options.bootstrap = static_cast<std::size_t>(args.integer("--bootstrap", static_cast<long long>(options.bootstrap), 0));
  options.seed = static_cast<std::uint64_t>(args.integer("--seed", static_cast<long long>(options.seed), 0));

  const MergedRows merged = merge_result_files(split.positional);
  const run::Analysis analysis = run::analyze(merged.rows, options);
  const run::ReportFiles files = run::write_report(analysis, out);

  nlohmann::ordered_json j;
  j["out"] = out;
  j["rows"] = merged.rows.size();
  j["cells"] = analysis.cells.size();
  j["written"] = {files.markdown.string(), files.svg.string(), files.png.string()};
  std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  return 0;
}

}  // namespace kvcanary::cli
