#pragma once
// kvcanary report RESULTS.jsonl [MORE.jsonl...] --out DIR [--bootstrap N] [--seed S]:
// RESULTS.md, divergence.svg/.png and silence.svg/.png from one or more results files (joined as
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

inline const Command& report_command() {
  static const Command c{
      "report",
      "RESULTS.jsonl [MORE.jsonl...]",
      1,
      kMany,
      "RESULTS.md (SDS, AUROC with 95% CIs), divergence.svg and divergence.png in DIR",
      "Joins the results files (as merge does) and writes RESULTS.md, divergence.svg and divergence.png to\n"
      "DIR, each atomically.",
      {{"--out", "DIR", "required", "the report directory"},
       {"--bootstrap", "N", std::to_string(run::MetricsOptions{}.bootstrap),
        "bootstrap resamples per interval; 0 = no intervals"},
       {"--seed", "S", std::to_string(run::MetricsOptions{}.seed), "bootstrap seed"}}};
  return c;
}

inline int run_report(const Args& args) {
  const std::string out = args.get("--out");
  const std::vector<std::string>& inputs = args.positional();
  run::MetricsOptions options;
  options.bootstrap =
      static_cast<std::size_t>(args.integer("--bootstrap", static_cast<long long>(options.bootstrap), 0));
  options.seed = static_cast<std::uint64_t>(args.integer("--seed", static_cast<long long>(options.seed), 0));

  const MergedRows merged = merge_result_files(inputs);
  const run::Analysis analysis = run::analyze(merged.rows, options);
  const run::ReportFiles files = run::write_report(analysis, out);

  nlohmann::ordered_json j;
  j["out"] = out;
  j["rows"] = merged.rows.size();
  j["cells"] = analysis.cells.size();
  j["written"] = {files.markdown.string(), files.svg.string(), files.png.string(), files.silence_svg.string(),
                  files.silence_png.string()};
  std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  return 0;
}

}  // namespace kvcanary::cli
