// Ctrl-C and SIGTERM of a real `kvcanary sweep` process (core/stop_signal.hpp): at 20 seeded
// moments over a run, alternating SIGINT and SIGTERM, the sweep must stop within a few seconds
// with exit 130 / 143, leave only whole rows, remove its lock, and print the exact command that
// resumes it; resumed every time, the final rows must equal an uninterrupted run's (every field
// but latency_s, the only wall-clock one). A second Ctrl-C must quit at once, still leaving only
// whole rows. Uses the committed seed tool-call set, so it needs nothing from data/.

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "../support/spawn.hpp"
#include "kvcanary/run/results_file.hpp"
#include "sweep_test_support.hpp"

using namespace kvcanary;
namespace fs = std::filesystem;

namespace {

using clock_type = std::chrono::steady_clock;

std::map<std::pair<std::string, std::string>, std::string> by_key(const std::vector<run::Row>& rows,
                                                                  std::size_t& duplicates) {
  std::map<std::pair<std::string, std::string>, std::string> out;
  for (run::Row r : rows) {
    r.latency_s = 0;
    if (!out.emplace(std::make_pair(r.cell_id, r.sample_id), run::to_json_line(r)).second) ++duplicates;
  }
  return out;
}

// The resume command the sweep prints after "resume with:", on the next line.
std::string printed_resume_command(const std::string& err) {
  const std::string mark = "; resume with:\n  ";
  const auto at = err.find(mark);
  if (at == std::string::npos) return "";
  const auto begin = at + mark.size();
  return err.substr(begin, err.find('\n', begin) - begin);
}

struct Stopped {
  int code = 0;
  double seconds_after_signal = 0;
};

// Sends `signals` (one after another, `gap` apart) at `moment` after the start and waits for the exit.
Stopped interrupt_at(pid_t pid, double moment, std::initializer_list<int> signals, double gap = 0) {
  std::this_thread::sleep_for(std::chrono::duration<double>(moment));
  const auto t = clock_type::now();
  for (int sig : signals) {
    ::kill(pid, sig);
    if (gap > 0) std::this_thread::sleep_for(std::chrono::duration<double>(gap));
  }
  Stopped s;
  s.code = test::wait_exit(pid);
  s.seconds_after_signal = std::chrono::duration<double>(clock_type::now() - t).count();
  return s;
}

}  // namespace

TEST_CASE(
    "sweep signals: SIGINT/SIGTERM at 20 seeded moments, each resumed by the printed command — rows equal an "
    "uninterrupted run's") {
  test::TempDir tmp;
  const auto model_dir = test::make_tiny_chat_model(tmp.path);
  const auto config = tmp.path / "seed.toml";
  std::ofstream(config) << test::seed_sweep_toml(model_dir);

  const auto clean = tmp.path / "clean.jsonl";
  const auto t0 = clock_type::now();
  REQUIRE(test::wait_exit(test::spawn_cli({"sweep", config.string(), "--out", clean.string()})) == 0);
  const double run_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  std::size_t dup_clean = 0;
  const auto reference = by_key(run::read_results(clean).rows, dup_clean);
  REQUIRE(dup_clean == 0);
  REQUIRE(reference.size() == 48);

  const auto resumed = tmp.path / "resumed.jsonl";
  const std::vector<std::string> args = {"sweep", config.string(), "--out", resumed.string()};
  const std::string expected_command =
      std::string(KVCANARY_CLI_PATH) + " sweep " + config.string() + " --out " + resumed.string();
  std::mt19937_64 rng(20261201);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int stopped = 0, finished_first = 0, before_handler = 0;
  double slowest_stop = 0;
  for (int i = 0; i < 20; ++i) {
    const int sig = i % 2 ? SIGTERM : SIGINT;
    const double missing =
        1.0 - static_cast<double>(run::read_results(resumed).rows.size()) / static_cast<double>(reference.size());
    const double moment = unit(rng) * (0.05 + run_s * missing);
    const auto err = tmp.path / ("err" + std::to_string(i));
    const Stopped s = interrupt_at(test::spawn_cli(args, {}, err), moment, {sig});
    CAPTURE(i);
    CAPTURE(moment);
    const std::string text = test::slurp_file(err);
    if (s.code == 128 + sig) {
      ++stopped;
      slowest_stop = std::max(slowest_stop, s.seconds_after_signal);
      CHECK(s.seconds_after_signal < 5.0);
      CHECK_MESSAGE(printed_resume_command(text) == expected_command, text);
      CHECK(text.find(sig == SIGINT ? "stopped by SIGINT" : "stopped by SIGTERM") != std::string::npos);
    } else if (s.code == 0) {
      ++finished_first;  // the signal came after it had finished
    } else {
      CHECK_MESSAGE(s.code == -sig, "exit " << s.code << ": " << text);  // before main() installed the handler
      ++before_handler;
    }
    const auto contents = run::read_results(resumed);
    CHECK_FALSE(contents.torn_tail);  // only whole rows, whatever the moment
    CHECK_FALSE(fs::exists(resumed.string() + ".lock"));
  }
  // The printed command is what completes the matrix.
  REQUIRE(std::system((expected_command + " >/dev/null 2>&1").c_str()) == 0);
  const auto contents = run::read_results(resumed);
  CHECK_FALSE(contents.torn_tail);
  std::size_t duplicates = 0;
  const auto final_rows = by_key(contents.rows, duplicates);
  CHECK(duplicates == 0);
  CHECK(final_rows == reference);
  MESSAGE("signals: 20 (" << stopped << " stopped a run, " << finished_first << " came after it finished, "
                          << before_handler << " before the handler); slowest stop " << slowest_stop << " s; clean run "
                          << run_s << " s; final rows " << contents.rows.size() << " = uninterrupted "
                          << reference.size());
  CHECK(stopped >= 10);
}

TEST_CASE("sweep signals: a second signal quits at once, still leaving only whole rows") {
  // The graceful stop of the tiny model takes milliseconds, so a second kill() from here would
  // race it. Instead the sweep is frozen (SIGSTOP) mid-run, SIGINT and SIGTERM are queued (two
  // different signals do not merge), and SIGCONT delivers both at once: the second must end the
  // process without the graceful path — no resume message — with only whole rows on disk.
  test::TempDir tmp;
  const auto model_dir = test::make_tiny_chat_model(tmp.path);
  const auto config = tmp.path / "seed.toml";
  std::ofstream(config) << test::seed_sweep_toml(model_dir, 12, 256, 1);
  const auto out = tmp.path / "r.jsonl";
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    const auto err = tmp.path / ("err" + std::to_string(i));
    const pid_t pid = test::spawn_cli({"sweep", config.string(), "--out", out.string()}, {}, err);
    const std::size_t before = run::read_results(out).rows.size();
    const auto deadline = clock_type::now() + std::chrono::seconds(30);
    while (run::read_results(out).rows.size() <= before && clock_type::now() < deadline)  // mid-run: a new row is out
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ::kill(pid, SIGSTOP);
    const Stopped s = interrupt_at(pid, 0.0, {SIGINT, SIGTERM, SIGCONT});
    CHECK((s.code == 143 || s.code == 130));  // 128 + the second signal delivered
    CHECK(s.seconds_after_signal < 2.0);
    const std::string text = test::slurp_file(err);
    CHECK_MESSAGE(text.find("resume with:") == std::string::npos, text);  // it did not take the graceful path
    const auto contents = run::read_results(out);
    CHECK_FALSE(contents.torn_tail);
    CHECK(contents.rows.size() > before);
  }
  // What the impatient exits left resumes like any other run.
  REQUIRE(test::wait_exit(test::spawn_cli({"sweep", config.string(), "--out", out.string()})) == 0);
  std::size_t duplicates = 0;
  CHECK(by_key(run::read_results(out).rows, duplicates).size() == 48);
  CHECK(duplicates == 0);
}
