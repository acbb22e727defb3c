// kvcanary report and kvcanary merge through the program, on the fixtures in tests/data/run:
// outputs exist and hold the expected values; bad input ends with one stderr line naming the
// file, exit 2, and no half-written output.

#include <doctest/doctest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../support/temp_dir.hpp"

namespace fs = std::filesystem;

namespace {

struct Run {
  int exit_code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

Run run_cli(const std::string& args) {
  kvcanary::test::TempDir s;
  const std::string cmd = quote(KVCANARY_CLI_PATH) + " " + args + " >" + quote((s.path / "out").string()) + " 2>" +
                          quote((s.path / "err").string());
  const int status = std::system(cmd.c_str());
  Run r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(s.path / "out");
  r.err = slurp(s.path / "err");
  return r;
}

std::string fixture(const std::string& name) { return quote(std::string(KVCANARY_TEST_DATA_DIR) + "/run/" + name); }

void expect_bad_input(const Run& r, std::initializer_list<std::string> mentions) {
  CHECK_MESSAGE(r.exit_code == 2, r.err);
  CHECK(r.out.empty());
  CHECK_MESSAGE(std::count(r.err.begin(), r.err.end(), '\n') == 1, r.err);
  for (const auto& m : mentions) CHECK_MESSAGE(r.err.find(m) != std::string::npos, "'" << m << "' not in: " << r.err);
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace

TEST_CASE("cli report: two shard files → RESULTS.md, divergence.svg, divergence.png") {
  kvcanary::test::TempDir dir;
  const fs::path out = dir.path / "report";
  const Run r = run_cli("report " + fixture("shard_a.jsonl") + " " + fixture("shard_b.jsonl") + " --out " +
                        quote(out.string()) + " --bootstrap 200");
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.find("\"rows\":12") != std::string::npos);  // 13 rows, one identical duplicate
  CHECK(r.out.find("\"cells\":4") != std::string::npos);
  REQUIRE(fs::exists(out / "RESULTS.md"));
  REQUIRE(fs::exists(out / "divergence.svg"));
  REQUIRE(fs::exists(out / "divergence.png"));
  const std::string md = slurp(out / "RESULTS.md");
  CHECK(md.find("- model(s): `tiny-llama`") != std::string::npos);
  CHECK(md.find("B = 200") != std::string::npos);
  // code: 0.75 → 0.5 (−33.3%), perplexity 10 → 11 (+10%): SDS (1/3) / 0.1 = 3.33.
  CHECK(md.find("| snapkv | 0.5 | 49.0% | 0.500 | 11.00 |") != std::string::npos);
  CHECK(md.find("| -33.3% | +10.0% | 3.33 [") != std::string::npos);
  CHECK(slurp(out / "divergence.png").compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  CHECK(slurp(out / "divergence.svg").find("</svg>") != std::string::npos);
}

TEST_CASE("cli report: the prototype's rows report too") {
  kvcanary::test::TempDir dir;
  const Run r =
      run_cli("report " + fixture("prototype.jsonl") + " --out " + quote(dir.path.string()) + " --bootstrap 100");
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const std::string md = slurp(dir.path / "RESULTS.md");
  // pass@1 2/3 → 1/3, perplexity (mean of the rows') 30 → 31.5: SDS 0.5 / 0.05 = 10.
  CHECK(md.find("| streamingllm | 0.5 | 50.0% | 0.333 | 31.50 |") != std::string::npos);
  CHECK(md.find("| 10.0 [") != std::string::npos);
  CHECK(md.find("- 10 rows carry no program_version (written by the Python prototype)") != std::string::npos);
}

TEST_CASE("cli report: bad input names the file, exits 2") {
  kvcanary::test::TempDir dir;
  const std::string out = " --out " + quote((dir.path / "r").string());
  expect_bad_input(run_cli("report " + fixture("no_such.jsonl") + out), {"no_such.jsonl"});
  expect_bad_input(run_cli("report " + fixture("bad_line.jsonl") + out), {"bad_line.jsonl:2", "method"});
  expect_bad_input(run_cli("report " + fixture("shard_a.jsonl") + " " + fixture("shard_conflict.jsonl") + out),
                   {"shard_a.jsonl", "shard_conflict.jsonl"});
  expect_bad_input(run_cli("report" + out), {"RESULTS.jsonl"});
  expect_bad_input(run_cli("report " + fixture("shard_a.jsonl")), {"--out"});
  expect_bad_input(run_cli("report " + fixture("shard_a.jsonl") + out + " --bootstrap many"), {"--bootstrap"});
  CHECK_FALSE(fs::exists(dir.path / "r" / "RESULTS.md"));
}

TEST_CASE("cli merge: shards joined, duplicates once, sorted, same bytes whatever the order") {
  kvcanary::test::TempDir dir;
  const fs::path ab = dir.path / "ab.jsonl", ba = dir.path / "sub" / "ba.jsonl";
  const Run r =
      run_cli("merge --out " + quote(ab.string()) + " " + fixture("shard_a.jsonl") + " " + fixture("shard_b.jsonl"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.find("\"rows\":12") != std::string::npos);
  CHECK(r.out.find("\"duplicates\":1") != std::string::npos);
  const auto merged = lines(slurp(ab));
  REQUIRE(merged.size() == 12);
  // Sorted by (cell_id, sample_id): the full cells come before snapkv's.
  CHECK(merged.front().find("\"cell_id\":\"tiny-llama|full|1.0|code\",\"sample_id\":\"he0\"") != std::string::npos);
  CHECK(merged.back().find("\"cell_id\":\"tiny-llama|snapkv|0.5|wikitext2\",\"sample_id\":\"doc1\"") !=
        std::string::npos);
  const Run r2 =
      run_cli("merge " + fixture("shard_b.jsonl") + " " + fixture("shard_a.jsonl") + " --out " + quote(ba.string()));
  REQUIRE_MESSAGE(r2.exit_code == 0, r2.err);
  CHECK(slurp(ba) == slurp(ab));
  // The merged file reports like its shards.
  const Run rep =
      run_cli("report " + quote(ab.string()) + " --out " + quote((dir.path / "rep").string()) + " --bootstrap 50");
  CHECK_MESSAGE(rep.exit_code == 0, rep.err);
  CHECK(rep.out.find("\"rows\":12") != std::string::npos);
}

TEST_CASE("cli merge: a conflict names both files, exits 2 and writes nothing") {
  kvcanary::test::TempDir dir;
  const fs::path out = dir.path / "merged.jsonl";
  expect_bad_input(run_cli("merge --out " + quote(out.string()) + " " + fixture("shard_a.jsonl") + " " +
                           fixture("shard_conflict.jsonl")),
                   {"shard_a.jsonl", "shard_conflict.jsonl", "he1"});
  CHECK_FALSE(fs::exists(out));
  CHECK(fs::is_empty(dir.path));  // no temporary file left behind either

  // An existing output is left untouched by a failed merge.
  std::ofstream(out) << "previous\n";
  expect_bad_input(run_cli("merge --out " + quote(out.string()) + " " + fixture("shard_a.jsonl") + " " +
                           fixture("shard_conflict.jsonl")),
                   {"shard_conflict.jsonl"});
  CHECK(slurp(out) == "previous\n");

  expect_bad_input(run_cli("merge --out " + quote(out.string()) + " " + fixture("missing.jsonl")), {"missing.jsonl"});
  expect_bad_input(run_cli("merge --out " + quote(out.string())), {"SHARD.jsonl"});
  expect_bad_input(run_cli("merge " + fixture("shard_a.jsonl")), {"--out"});
}
