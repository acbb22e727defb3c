#pragma once
// kvcanary merge --out MERGED.jsonl SHARD.jsonl...: one results file from the shards of a sweep.
//
// A (cell_id, sample_id) key present in several shards (a resumed or re-run shard) is kept once
// when the copies agree on scores and raw_output; when they disagree, which one is right cannot
// be known here, so the merge stops and names both files. Rows come out sorted by
// (cell_id, sample_id), so the same shards always give the same file, and the file is written to
// a temporary name and renamed into place: a failed merge leaves no half-written output.

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "args.hpp"
#include "kvcanary/core/atomic_file.hpp"
#include "kvcanary/core/error.hpp"
#include "kvcanary/core/writer_lock.hpp"
#include "kvcanary/run/results_file.hpp"
#include "kvcanary/run/row.hpp"

namespace kvcanary::cli {

struct MergedRows {
  std::vector<run::Row> rows;  // sorted by (cell_id, sample_id)
  std::size_t duplicates = 0;  // identical copies dropped
  std::size_t torn_tails = 0;  // shards whose unfinished last line was left out
};

inline bool same_result(const run::Row& a, const run::Row& b) {
  if (a.raw_output != b.raw_output || a.scores.size() != b.scores.size()) return false;
  for (auto ia = a.scores.begin(), ib = b.scores.begin(); ia != a.scores.end(); ++ia, ++ib) {
    if (ia->first != ib->first) return false;
    const bool both_nan = std::isnan(ia->second) && std::isnan(ib->second);
    if (!both_nan && ia->second != ib->second) return false;
  }
  return true;
}

// Reads every file (each must exist: a missing shard is a mistake, not an empty one) and joins
// the rows by key.
inline MergedRows merge_result_files(const std::vector<std::string>& files) {
  std::map<std::pair<std::string, std::string>, std::pair<run::Row, std::string>> by_key;
  MergedRows out;
  for (const std::string& file : files) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) fail(file, "", "no such results file");
    const run::ResultsContents contents = run::read_results(file);
    out.torn_tails += contents.torn_tail;
    for (const run::Row& r : contents.rows) {
      auto [it, fresh] = by_key.try_emplace({r.cell_id, r.sample_id}, r, file);
      if (fresh) continue;
      if (!same_result(it->second.first, r))
        fail(file, "cell_id '" + r.cell_id + "' sample_id '" + r.sample_id + "'",
             "conflicts with the row of the same key in " + it->second.second + " (different scores or raw_output)");
      ++out.duplicates;
    }
  }
  out.rows.reserve(by_key.size());
  for (auto& [key, v] : by_key) out.rows.push_back(std::move(v.first));
  return out;
}

// Writes rows to `path` atomically (core/atomic_file.hpp): readers see the old file or the whole new one.
inline void write_results_atomically(const std::filesystem::path& path, const std::vector<run::Row>& rows) {
  std::string data;
  for (const run::Row& r : rows) data += run::to_json_line(r) + "\n";
  write_file_atomically(path, data);
}

inline const Command& merge_command() {
  static const Command c{
      "merge",
      "SHARD.jsonl [MORE.jsonl...]",
      1,
      kMany,
      "join shard files: duplicates once, conflicting rows an error, sorted, written atomically",
      "Joins the shards of a sweep into one results file: a row present in several shards is kept once when\n"
      "the copies agree, a disagreement is an error naming both files; rows sorted by (cell_id, sample_id);\n"
      "written to a temporary file and renamed into place. Refused while a sweep or another merge writes\n"
      "--out or any of the shards (each writer holds FILE.lock).",
      {{"--out", "FILE", "required", "the merged results file"}}};
  return c;
}

// Every file involved is locked for the merge's duration: --out (one writer at a time) and each
// shard (a shard a sweep is still appending to would be merged half-done).
inline std::vector<std::unique_ptr<WriterLock>> lock_for_merge(const std::string& out,
                                                               const std::vector<std::string>& shards) {
  std::vector<std::unique_ptr<WriterLock>> locks;
  std::set<std::filesystem::path> seen;
  auto lock = [&](const std::string& f, WriterLock::Use use) {
    std::error_code ec;
    const auto key = std::filesystem::weakly_canonical(f, ec);
    if (!seen.insert(ec ? std::filesystem::path(f) : key).second) return;
    locks.push_back(std::make_unique<WriterLock>(f, use));
  };
  lock(out, WriterLock::Use::Output);
  for (const auto& f : shards) lock(f, WriterLock::Use::Input);
  return locks;
}

inline int run_merge(const Args& args) {
  const std::string out = args.get("--out");
  const std::vector<std::string>& shards = args.positional();
  const auto locks = lock_for_merge(out, shards);
  const MergedRows merged = merge_result_files(shards);
  write_results_atomically(out, merged.rows);
  nlohmann::ordered_json j;
  j["out"] = out;
  j["files"] = shards.size();
  j["rows"] = merged.rows.size();
  j["duplicates"] = merged.duplicates;
  j["torn_tails"] = merged.torn_tails;
  std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  return 0;
}

}  // namespace kvcanary::cli
