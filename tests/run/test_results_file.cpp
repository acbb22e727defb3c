// Crash safety of the JSONL results file (run/results_file.hpp): a torn tail is never read as a
// result and is cut before appending; a corrupt line elsewhere is an error naming file:line; a
// write that fails (file size limit, a really full filesystem, a read-only directory) raises an
// Error naming the file and leaves only complete rows behind. docs/RELIABILITY.md lists these.
//
// The failure cases run in a forked child: the limits they set (RLIMIT_FSIZE, a private mount
// namespace) must not touch the test process.

#include <doctest/doctest.h>

#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>

#include "../support/in_child.hpp"
#include "../support/temp_dir.hpp"
#include "kvcanary/run/results_file.hpp"

namespace {

namespace fs = std::filesystem;
using kvcanary::run::read_results;
using kvcanary::run::Row;
using kvcanary::run::RowWriter;

Row make_row(int i) {
  Row r;
  r.model = "m";
  r.method = "kivi";
  r.budget = 0.25;
  r.task = "humaneval";
  r.cell_id = kvcanary::run::make_cell_id(r.model, r.method, r.budget, r.task);
  r.sample_id = "HumanEval/" + std::to_string(i);
  r.scores = {{"functional", i % 2}, {"pass@1", i % 2}};
  r.raw_output = "def f():\n    return " + std::to_string(i) + "\n";
  r.n_tokens = 10 + i;
  r.latency_s = 0.5;
  r.kv_bytes_retained = 1024;
  return r;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

std::string line(int i) { return kvcanary::run::to_json_line(make_row(i)) + "\n"; }

using kvcanary::test::can_mount;
using kvcanary::test::in_child;

}  // namespace

TEST_CASE("results_file: rows round-trip, appended by RowWriter") {
  kvcanary::test::TempDir dir;
  const auto path = dir.path / "sub" / "results.jsonl";  // the directory is created
  {
    RowWriter w(path);
    CHECK(w.rows_before() == 0);
    for (int i = 0; i < 3; ++i) w.append(make_row(i));
  }
  const auto c = read_results(path);
  REQUIRE(c.rows.size() == 3);
  CHECK_FALSE(c.torn_tail);
  CHECK(c.valid_bytes == fs::file_size(path));
  CHECK(c.rows[2].sample_id == "HumanEval/2");
  CHECK(c.rows[2].raw_output == make_row(2).raw_output);
  CHECK(read_results(dir.path / "absent.jsonl").rows.empty());
}

TEST_CASE("results_file: a torn last line is ignored by the reader and cut by the writer") {
  kvcanary::test::TempDir dir;
  const auto path = dir.path / "results.jsonl";
  const std::string complete = line(0) + line(1);
  SUBCASE("no newline: the write was cut inside the row") { write_file(path, complete + line(2).substr(0, 37)); }
  SUBCASE("no newline: the row is complete but its newline is missing") {
    const std::string l = line(2);
    write_file(path, complete + l.substr(0, l.size() - 1));
  }
  SUBCASE("a newline, but the last line is not a complete row") {
    write_file(path, complete + "{\"model\": \"m\", \"method\"\n");
  }
  const auto c = read_results(path);
  CHECK(c.rows.size() == 2);
  CHECK(c.torn_tail);
  CHECK(c.valid_bytes == complete.size());
  {
    RowWriter w(path);
    CHECK(w.rows_before() == 2);
    w.append(make_row(7));
  }
  CHECK(slurp(path) == complete + line(7));
  const auto after = read_results(path);
  CHECK(after.rows.size() == 3);
  CHECK_FALSE(after.torn_tail);
}

TEST_CASE("results_file: a corrupt line before the end is an error naming file:line") {
  kvcanary::test::TempDir dir;
  const auto path = dir.path / "results.jsonl";
  SUBCASE("not JSON") { write_file(path, line(0) + "garbage\n" + line(2)); }
  SUBCASE("JSON but not a row") { write_file(path, line(0) + "{\"model\": \"m\"}\n" + line(2)); }
  SUBCASE("a torn row followed by more rows") { write_file(path, line(0) + line(1).substr(0, 30) + "\n" + line(2)); }
  try {
    read_results(path);
    FAIL("expected kvcanary::Error");
  } catch (const kvcanary::Error& e) {
    CHECK(e.file() == path.string() + ":2");
    CHECK(std::string(e.what()).find(path.string() + ":2") != std::string::npos);
  }
  // The writer refuses it too, and leaves the file as it was.
  const std::string before = slurp(path);
  CHECK_THROWS_AS(RowWriter{path}, kvcanary::Error);
  CHECK(slurp(path) == before);
}

TEST_CASE("results_file: a write past the file size limit raises an Error and leaves only complete rows") {
  kvcanary::test::TempDir dir;
  const auto path = dir.path / "results.jsonl";
  // RLIMIT_FSIZE with SIGXFSZ ignored: the first pwrite of the row is short (it stops at the
  // limit), the next fails with EFBIG — the same path as a disk that fills up mid-row.
  const std::string msg = in_child([&] {
    RowWriter w(path);
    w.append(make_row(0));
    w.append(make_row(1));
    ::signal(SIGXFSZ, SIG_IGN);
    const rlim_t limit = static_cast<rlim_t>(fs::file_size(path) + 20);
    const rlimit rl{limit, limit};
    ::setrlimit(RLIMIT_FSIZE, &rl);
    w.append(make_row(2));
    return std::string("no error");
  });
  CHECK(msg.rfind("Error: ", 0) == 0);
  CHECK(msg.find("file=" + path.string()) != std::string::npos);
  CHECK(msg.find("File too large") != std::string::npos);
  CHECK(slurp(path) == line(0) + line(1));  // the 20 bytes that got out were cut again
  const auto c = read_results(path);
  CHECK(c.rows.size() == 2);
  CHECK_FALSE(c.torn_tail);
}

TEST_CASE("results_file: a full filesystem (ENOSPC on a 64 KiB tmpfs) raises an Error and leaves only complete rows") {
  if (!can_mount()) {
    MESSAGE("skipped: mounting a small tmpfs needs root and a mount namespace");
    return;
  }
  kvcanary::test::TempDir dir;
  const std::string msg = in_child([&] {
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("kvcanary-full", dir.path.c_str(), "tmpfs", 0, "size=64k") != 0)
      return std::string("setup failed");
    const auto path = dir.path / "results.jsonl";
    std::size_t written = 0;
    std::string out;
    try {
      RowWriter w(path);
      for (int i = 0; i < 10000; ++i) {
        w.append(make_row(i));
        ++written;
      }
      out = "no error";
    } catch (const kvcanary::Error& e) { out = std::string("Error: ") + e.what() + "\nfile=" + e.file(); }
    // Still inside the namespace: what a resumed run would read from the full disk.
    const auto c = read_results(path);
    std::string expect;
    for (std::size_t i = 0; i < written; ++i) expect += line(static_cast<int>(i));
    return out + "\nrows=" + std::to_string(c.rows.size()) + " written=" + std::to_string(written) +
           " torn=" + std::to_string(c.torn_tail) + " exact=" + std::to_string(slurp(path) == expect);
  });
  REQUIRE(msg != "setup failed");
  CHECK(msg.rfind("Error: ", 0) == 0);
  CHECK(msg.find("No space left on device") != std::string::npos);
  CHECK(msg.find("file=" + (dir.path / "results.jsonl").string()) != std::string::npos);
  CHECK(msg.find(" torn=0 exact=1") != std::string::npos);
  const auto rows = msg.find("rows="), written = msg.find(" written=");
  REQUIRE(rows != std::string::npos);
  REQUIRE(written != std::string::npos);
  CHECK(std::stoul(msg.substr(rows + 5)) > 10);
  CHECK(msg.substr(rows + 5, written - rows - 5) == msg.substr(written + 9, msg.find(' ', written + 9) - written - 9));
}

TEST_CASE("results_file: a read-only output directory is a clear Error and existing rows stay readable") {
  kvcanary::test::TempDir dir;
  const auto out = dir.path / "out";
  fs::create_directories(out);
  const auto path = out / "results.jsonl";
  write_file(path, line(0));
  const auto fresh = out / "new.jsonl";
  // Root ignores permission bits, so for root the directory is made read-only for real: a
  // read-only bind mount of it in a private mount namespace. Otherwise chmod 0555 does it.
  auto attempt = [&] {
    std::string r;
    for (const auto& p : {path, fresh}) {
      try {
        RowWriter w(p);
        w.append(make_row(1));
        r += "no error;";
      } catch (const kvcanary::Error& e) { r += std::string("Error: ") + e.what() + " file=" + e.file() + ";"; }
    }
    return r + " rows=" + std::to_string(read_results(path).rows.size());
  };
  std::string msg;
  if (::geteuid() == 0) {
    if (!can_mount()) {
      MESSAGE("skipped: root without a mount namespace cannot make a directory read-only for itself");
      return;
    }
    msg = in_child([&] {
      if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
          ::mount(out.c_str(), out.c_str(), nullptr, MS_BIND, nullptr) != 0 ||
          ::mount(nullptr, out.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0)
        return std::string("setup failed");
      return attempt();
    });
    REQUIRE(msg != "setup failed");
  } else {
    fs::permissions(out, fs::perms::owner_read | fs::perms::owner_exec);
    msg = attempt();
    fs::permissions(out, fs::perms::owner_all);
  }
  CHECK(msg.find("no error") == std::string::npos);
  CHECK(msg.find("Error: " + path.string() + ": cannot open for writing: ") != std::string::npos);
  CHECK(msg.find("Error: " + fresh.string() + ": cannot open for writing: ") != std::string::npos);
  CHECK(msg.find(" rows=1") != std::string::npos);
  CHECK(slurp(path) == line(0));
  CHECK_FALSE(fs::exists(fresh));
}

// A non-finite number in a row (a latency or byte count that came out NaN/inf) is written as JSON
// null; it must read back as NaN, or one such row would make the whole file unreadable for resume.
TEST_CASE("results_file: a row with a non-finite number is read back") {
  kvcanary::test::TempDir dir;
  const auto path = dir.path / "results.jsonl";
  {
    RowWriter w(path);
    Row r = make_row(0);
    r.latency_s = std::numeric_limits<double>::quiet_NaN();
    w.append(r);
    w.append(make_row(1));
  }
  const auto rows = read_results(path).rows;
  REQUIRE(rows.size() == 2);
  CHECK(std::isnan(rows[0].latency_s));
  CHECK(rows[1].latency_s == make_row(1).latency_s);
}
