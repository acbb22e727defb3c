#pragma once
// kvcanary merge --out MERGED.jsonl SHARD.jsonl...: one results file from the shards of a sweep.
//
// A (cell_id, sample_id) key present in several shards (a resumed or re-run shard) is kept once
// when the copies agree on scores and raw_output; when they disagree, which one is right cannot
// be known here, so the merge stops and names both files. Rows come out sorted by
// (cell_id, sample_id), so the same shards always give the same file, and the file is written to
// a temporary name and renamed into place: a failed merge leaves no half-written output.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "args.hpp"
#include "kvcanary/core/error.hpp"
#include "kvcanary/run/results_file.hpp"
#include "kvcanary/run/row.hpp"

namespace kvcanary::cli {

// Splits a subcommand's arguments into positional ones and flags (with their values), so that
// `report A.jsonl B.jsonl --out DIR` can use Args for the flags. argv[first - 1] stays the
// program slot Args skips.
struct SplitArgs {
  std::vector<std::string> positional;
  std::vector<std::string> flag_storage;
  std::vector<char*> flags;  // argv-like: [0] is a placeholder
};

inline SplitArgs split_positionals(int argc, char** argv, int first, const std::set<std::string>& valued) {
  SplitArgs s;
  s.flag_storage.push_back("");
  for (int i = first; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      s.positional.push_back(a);
      continue;
    }
    s.flag_storage.push_back(a);
    if (valued.count(a) && i + 1 < argc) s.flag_storage.push_back(argv[++i]);
  }
  for (auto& f : s.flag_storage) s.flags.push_back(f.data());
  return s;
}

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

// Writes rows to `path` through a temporary file in the same directory, flushed to disk and
// renamed over the target, so readers see the old file or the whole new one.
inline void write_results_atomically(const std::filesystem::path& path, const std::vector<run::Row>& rows) {
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail(path.string(), "", "cannot create its directory: " + ec.message());
  const std::filesystem::path tmp = dir / ("." + path.filename().string() + ".tmp." + std::to_string(::getpid()));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path.string(), "", std::string("cannot create a temporary file next to it: ") + std::strerror(errno));
  auto give_up = [&](const std::string& what) {
    const int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(path.string(), "", what + ": " + std::strerror(e));
  };
  std::string data;
  for (const run::Row& r : rows) data += run::to_json_line(r) + "\n";
  for (std::size_t done = 0; done < data.size();) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) give_up("cannot write");
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) give_up("cannot flush to disk");
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    fail(path.string(), "", std::string("cannot close: ") + std::strerror(e));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    fail(path.string(), "", std::string("cannot rename the merged file into place: ") + std::strerror(e));
  }
}

// argv[0] is "merge".
inline int run_merge(int argc, char** argv) {
  SplitArgs split = split_positionals(argc, argv, 1, {"--out"});
  Args args(int(split.flags.size()), split.flags.data(), 1, {"--out"}, {});
  const std::string out = args.require("--out");
  if (split.positional.empty()) fail("command line", "SHARD.jsonl", "at least one shard file is required");
  const MergedRows merged = merge_result_files(split.positional);
  write_results_atomically(out, merged.rows);
  nlohmann::ordered_json j;
  j["out"] = out;
  j["files"] = split.positional.size();
  j["rows"] = merged.rows.size();
  j["duplicates"] = merged.duplicates;
  j["torn_tails"] = merged.torn_tails;
  std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  return 0;
}

}  // namespace kvcanary::cli
