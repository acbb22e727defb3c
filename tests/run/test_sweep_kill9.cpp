// Crash safety of a real sweep process: `kvcanary sweep` is SIGKILLed at 20 moments spread over
// an uninterrupted run's duration, resumed each time with the same --out, until it completes.
// The final rows must equal the uninterrupted run's (same keys, same values except timings),
// with no duplicates and no torn line left behind. docs/RELIABILITY.md records the outcome.

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "kvcanary/run/results_file.hpp"
#include "sweep_test_support.hpp"

using namespace kvcanary;

namespace {

pid_t spawn_sweep(const std::filesystem::path& config, const std::filesystem::path& out) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::FILE* null = std::fopen("/dev/null", "w");
    ::dup2(fileno(null), 1);
    ::dup2(fileno(null), 2);
    ::execl(KVCANARY_CLI_PATH, KVCANARY_CLI_PATH, "sweep", config.c_str(), "--out", out.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

std::map<std::pair<std::string, std::string>, std::string> by_key(const std::vector<run::Row>& rows,
                                                                  std::size_t& duplicates) {
  std::map<std::pair<std::string, std::string>, std::string> out;
  for (run::Row r : rows) {
    r.latency_s = 0;
    if (!out.emplace(std::make_pair(r.cell_id, r.sample_id), run::to_json_line(r)).second) ++duplicates;
  }
  return out;
}

}  // namespace

TEST_CASE("sweep kill -9: 20 kills at spread moments, each resumed — the rows equal an uninterrupted run's") {
  if (!test::sweep_data_available()) return;
  test::TempDir tmp;
  const auto model_dir = test::make_tiny_chat_model(tmp.path);
  const auto config = tmp.path / "tiny.toml";
  std::ofstream(config) << test::tiny_sweep_toml(model_dir);

  const auto clean = tmp.path / "clean.jsonl";
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(wait_exit(spawn_sweep(config, clean)) == 0);
  const double run_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::size_t dup_clean = 0;
  const auto reference = by_key(run::read_results(clean).rows, dup_clean);
  REQUIRE(dup_clean == 0);
  REQUIRE(reference.size() == 52);

  // Kill moments: uniform over the time the resumed run still needs (the clean run's duration
  // scaled by the rows still missing, plus start-up), seeded — so kills land in model loading,
  // prefill, decode, scoring and row writing alike, and most land before the run completes.
  std::mt19937_64 rng(20261129);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const auto resumed = tmp.path / "resumed.jsonl";
  int kills = 0, killed_mid_run = 0, completed_early = 0;
  std::size_t torn_seen = 0;
  for (; kills < 20; ++kills) {
    const double missing =
        1.0 - static_cast<double>(run::read_results(resumed).rows.size()) / static_cast<double>(reference.size());
    const double moment = unit(rng) * (0.1 + run_s * missing);
    const pid_t pid = spawn_sweep(config, resumed);
    std::this_thread::sleep_for(std::chrono::duration<double>(moment));
    ::kill(pid, SIGKILL);
    const int code = wait_exit(pid);
    if (code == -SIGKILL)
      ++killed_mid_run;
    else
      ++completed_early;  // it finished before the kill landed: the next runs only resume
    if (run::read_results(resumed).torn_tail) ++torn_seen;
  }
  REQUIRE(wait_exit(spawn_sweep(config, resumed)) == 0);  // the final resume completes the matrix
  const auto contents = run::read_results(resumed);
  CHECK_FALSE(contents.torn_tail);
  std::size_t duplicates = 0;
  const auto final_rows = by_key(contents.rows, duplicates);
  CHECK(duplicates == 0);
  CHECK(final_rows == reference);
  MESSAGE("kill -9: " << kills << " kills (" << killed_mid_run << " mid-run, " << completed_early
                      << " after completion), " << torn_seen << " left a torn last line; clean run " << run_s
                      << " s; final rows " << contents.rows.size() << " = uninterrupted " << reference.size());
  CHECK(killed_mid_run >= 10);
}
