// The kvcanary program as a user meets it (issue 13): `--help` on every subcommand, the same
// text flags wherever text is read, unknown flags refused clearly, and one writer per results
// file (a second sweep, or a merge, against a file a sweep is writing is refused at once, exit 2,
// and the sweep's rows come out intact). docs/RELIABILITY.md lists these.

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../run/sweep_test_support.hpp"
#include "../support/spawn.hpp"
#include "../support/temp_dir.hpp"
#include "kvcanary/run/results_file.hpp"

namespace fs = std::filesystem;
using kvcanary::test::run_cli_args;

namespace {

// Every subcommand and every option it accepts: the interface as documented, stated
// independently of the program so a dropped or renamed option fails here.
const std::map<std::string, std::vector<std::string>>& interface() {
  static const std::vector<std::string> model = {"--model", "--dtype", "--threads"};
  static const std::vector<std::string> compress = {"--compressor", "--budget", "--mode", "--capacity", "--param"};
  static const std::vector<std::string> text = {"--text", "--text-file"};
  auto cat = [](std::initializer_list<std::vector<std::string>> parts) {
    std::vector<std::string> v;
    for (const auto& p : parts) v.insert(v.end(), p.begin(), p.end());
    return v;
  };
  static const std::map<std::string, std::vector<std::string>> m = {
      {"generate",
       cat({text, {"--chat", "--system", "--max-new-tokens", "--stop", "--show-ids", "--prompt"}, model, compress})},
      {"ppl", cat({text, {"--window", "--stride", "--context"}, model, compress})},
      {"compressors", {}},
      {"tokenize", cat({text, {"--model"}})},
      {"logits", cat({text, {"--top"}, model})},
      {"check-reference", cat({{"--source", "--clear-margin"}, model})},
      {"convert-gguf", {"--gguf", "--out", "--dtype", "--force"}},
      {"exec", {"--timeout"}},
      {"toolcheck", cat({{"--question", "--answer", "--id", "--prompt-format", "--output-file"}, text})},
      {"report", {"--out", "--bootstrap", "--seed"}},
      {"merge", {"--out"}},
      {"sweep", {"--out", "--shard", "--progress", "--threads"}},
  };
  return m;
}

fs::path tiny_model(const fs::path& into) {
  const fs::path src = kvcanary::test::test_data("tiny/llama_gqa_untied");
  fs::create_directories(into);
  fs::copy_file(src / "config.json", into / "config.json");
  fs::copy_file(src / "model.safetensors", into / "model.safetensors");
  fs::copy_file(kvcanary::test::test_data("tiny/byte_tokenizer.json"), into / "tokenizer.json");
  return into;
}

std::size_t lines(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

bool alive(pid_t pid) { return ::waitpid(pid, nullptr, WNOHANG) == 0; }

}  // namespace

TEST_CASE("cli help: `kvcanary CMD --help` on every subcommand: usage and every option with its default, exit 0") {
  const auto top = run_cli_args({"--help"});
  REQUIRE(top.exit_code == 0);
  std::set<std::string> listed;  // the commands `kvcanary --help` names
  std::istringstream in(top.out);
  for (std::string l; std::getline(in, l);)
    if (l.rfind("  ", 0) == 0 && l.size() > 2 && l[2] != ' ') listed.insert(l.substr(2, l.find(' ', 2) - 2));
  std::set<std::string> expected;
  for (const auto& [cmd, options] : interface()) expected.insert(cmd);
  CHECK(listed == expected);

  for (const auto& [cmd, options] : interface()) {
    CAPTURE(cmd);
    for (const char* flag : {"--help", "-h"}) {
      const auto r = run_cli_args({cmd, flag});
      CHECK(r.exit_code == 0);
      CHECK(r.err.empty());
      CHECK(r.out.rfind("usage: kvcanary " + cmd, 0) == 0);
      for (const auto& o : options) CHECK_MESSAGE(r.out.find(o) != std::string::npos, o << " not in:\n" << r.out);
      // Every option line states its default (or that it is required).
      std::istringstream help(r.out);
      std::size_t option_lines = 0;
      for (std::string l; std::getline(help, l);) {
        if (l.rfind("  --", 0) != 0 || l.rfind("  --help", 0) == 0) continue;
        ++option_lines;
        std::string entry = l;  // a long option head puts its text on the next line
        if (l.find("   ", 4) == std::string::npos) {
          std::string next;
          std::getline(help, next);
          entry += next;
        }
        CHECK_MESSAGE((entry.find("(default: ") != std::string::npos || entry.find("required") != std::string::npos),
                      entry);
      }
      const std::size_t aliases = (cmd == "generate" || cmd == "toolcheck") ? 1 : 0;  // shown as "[also --prompt]"
      CHECK(option_lines + aliases == options.size());
    }
    // --help wins over anything else on the line, even bad input.
    CHECK(run_cli_args({cmd, "--no-such-flag", "--help"}).exit_code == 0);
  }
}

TEST_CASE("cli: an unknown flag on any subcommand is one clear line naming it, exit 2") {
  for (const auto& [cmd, options] : interface()) {
    CAPTURE(cmd);
    const auto r = run_cli_args({cmd, "--frobnicate", "1"});
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(lines(r.err) == 1);
    CHECK_MESSAGE(r.err.find("--frobnicate: unknown option") != std::string::npos, r.err);
    CHECK(r.err.find("kvcanary " + cmd + " --help") != std::string::npos);
  }
  const auto missing = run_cli_args({"logits", "--top"});
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("--top: needs a value") != std::string::npos);
}

TEST_CASE("cli: --text and --text-file wherever text is read give the same result, both or neither is an error") {
  kvcanary::test::TempDir s;
  const std::string model = tiny_model(s.path / "m").string();
  const std::string text = "The quick brown fox jumps over the lazy dog.";
  const fs::path file = s.path / "text.txt";
  std::ofstream(file, std::ios::binary) << text;

  auto strip_seconds = [](std::string out) {
    const auto at = out.find(", \"seconds\": ");
    return at == std::string::npos ? out : out.substr(0, at);
  };
  const std::vector<std::pair<std::string, std::vector<std::string>>> commands = {
      {"tokenize", {}},
      {"logits", {"--top", "3"}},
      {"ppl", {}},
      {"generate", {"--max-new-tokens", "4"}},
  };
  for (const auto& [cmd, extra] : commands) {
    CAPTURE(cmd);
    std::vector<std::string> base = {cmd, "--model", model};
    base.insert(base.end(), extra.begin(), extra.end());
    auto with = [&](std::vector<std::string> more) {
      auto a = base;
      a.insert(a.end(), more.begin(), more.end());
      return run_cli_args(a);
    };
    const auto inline_text = with({"--text", text});
    const auto from_file = with({"--text-file", file.string()});
    REQUIRE_MESSAGE(inline_text.exit_code == 0, inline_text.err);
    REQUIRE_MESSAGE(from_file.exit_code == 0, from_file.err);
    CHECK(!inline_text.out.empty());
    CHECK(strip_seconds(inline_text.out) == strip_seconds(from_file.out));
    if (cmd == "generate") CHECK(with({"--prompt", text}).out == inline_text.out);  // the older spelling still works

    const auto both = with({"--text", text, "--text-file", file.string()});
    CHECK(both.exit_code == 2);
    CHECK(both.err.find("--text/--text-file: give one of them, not both") != std::string::npos);
    const auto neither = with({});
    CHECK(neither.exit_code == 2);
    CHECK(neither.err.find("--text/--text-file: one of them is required") != std::string::npos);
  }
  const auto missing = run_cli_args({"tokenize", "--model", model, "--text-file", (s.path / "absent.txt").string()});
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find((s.path / "absent.txt").string() + ": --text-file: cannot open") != std::string::npos);
}

TEST_CASE(
    "cli sweep: one writer per results file — a second sweep and a merge are refused at once, the first's rows stay "
    "whole") {
  kvcanary::test::TempDir tmp;
  const auto model_dir = kvcanary::test::make_tiny_chat_model(tmp.path);
  const auto config = tmp.path / "seed.toml";
  std::ofstream(config) << kvcanary::test::seed_sweep_toml(model_dir, 12, 256, 1);
  const fs::path out = tmp.path / "r.jsonl";
  const std::string o = out.string();

  const pid_t first =
      kvcanary::test::spawn_cli({"sweep", config.string(), "--out", o}, tmp.path / "first.out", tmp.path / "first.err");
  // Wait until the first sweep is mid-run: it holds the lock and has written a row.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (kvcanary::run::read_results(out).rows.empty() && std::chrono::steady_clock::now() < deadline && alive(first))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(alive(first));

  const auto second = run_cli_args({"sweep", config.string(), "--out", o});
  const auto merge_from = run_cli_args({"merge", "--out", (tmp.path / "m.jsonl").string(), o});
  const auto merge_onto = run_cli_args({"merge", "--out", o, config.string()});
  const bool first_still_running = alive(first);  // so both were refused while it wrote

  CHECK(second.exit_code == 2);
  CHECK(second.out.empty());
  CHECK(lines(second.err) == 1);
  CHECK_MESSAGE(second.err.find(o + ": is being written by another kvcanary process (pid " + std::to_string(first) +
                                ",") != std::string::npos,
                second.err);
  for (const auto* m : {&merge_from, &merge_onto}) {
    CHECK(m->exit_code == 2);
    CHECK_MESSAGE(m->err.find(o + ": is being written by another kvcanary process (pid " + std::to_string(first)) !=
                      std::string::npos,
                  m->err);
  }
  CHECK_FALSE(fs::exists(tmp.path / "m.jsonl"));  // nothing written by the refused merge
  CHECK(first_still_running);

  REQUIRE(kvcanary::test::wait_exit(first) == 0);
  const auto contents = kvcanary::run::read_results(out);
  CHECK_FALSE(contents.torn_tail);
  std::set<std::pair<std::string, std::string>> keys;
  for (const auto& r : contents.rows) keys.emplace(r.cell_id, r.sample_id);
  CHECK(contents.rows.size() == 48);  // 4 cells x 12 samples, each once
  CHECK(keys.size() == 48);
  CHECK_FALSE(fs::exists(o + ".lock"));  // a finished writer removes its lock file

  // Once it is done, the same merge goes through.
  const auto merged = run_cli_args({"merge", "--out", (tmp.path / "m.jsonl").string(), o});
  CHECK_MESSAGE(merged.exit_code == 0, merged.err);
  CHECK(kvcanary::run::read_results(tmp.path / "m.jsonl").rows.size() == 48);
}
