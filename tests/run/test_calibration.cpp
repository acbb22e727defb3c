// Calibration (run/calibration.hpp): the full cache's noise floor between prompt variants of a
// task — pairs by sample id, counts verdict flips, the Wilson interval — on hand-computed rows;
// the variants stay out of the study's comparisons and appear in the report's own section.

#include <doctest/doctest.h>

#include <cmath>

#include "kvcanary/run/calibration.hpp"
#include "kvcanary/run/report.hpp"

using namespace kvcanary::run;

namespace {

Row full_row(const std::string& task, const std::string& id, double pass) {
  Row r;
  r.model = "m";
  r.method = kFullMethod;
  r.budget = 1.0;
  r.task = task;
  r.cell_id = make_cell_id(r.model, r.method, r.budget, task);
  r.sample_id = id;
  r.scores = {{"functional", pass}, {"gold_nll", 1.0}};
  r.kind = TaskKind::Functional;
  r.budget_measured = 1.0;
  return r;
}

void add(std::vector<Row>& rows, const std::string& task, const std::vector<int>& pass, std::size_t first = 0) {
  for (std::size_t i = 0; i < pass.size(); ++i)
    rows.push_back(full_row(task, "s" + std::to_string(first + i), pass[i]));
}

}  // namespace

TEST_CASE("calibration: the Wilson interval matches its closed form at 0, 5 and 10 of 10") {
  const Interval none = wilson_interval(0, 10), half = wilson_interval(5, 10), all = wilson_interval(10, 10);
  CHECK(none.lo == 0.0);
  CHECK(none.hi == doctest::Approx(0.27753).epsilon(1e-4));  // z²/(n + z²) at p = 0
  CHECK(half.lo == doctest::Approx(0.23659).epsilon(1e-4));
  CHECK(half.hi == doctest::Approx(0.76341).epsilon(1e-4));
  CHECK(all.lo == doctest::Approx(0.72247).epsilon(1e-4));
  CHECK(all.hi == 1.0);
  CHECK_FALSE(wilson_interval(0, 0).defined());
}

TEST_CASE("calibration: every pair of variants, paired by sample id, flips counted") {
  std::vector<Row> rows;
  add(rows, "t", {1, 1, 0, 0, 1});       // the plain task (variant "")
  add(rows, "t@a", {1, 0, 0, 1, 1, 1});  // s5 has no partner in "t"
  add(rows, "t@b", {1, 0, 0, 1}, 0);     // s0..s3
  add(rows, "u", {1, 0});                // no variant: no floor
  const auto floors = noise_floors(build_cells(rows));
  REQUIRE(floors.size() == 3);
  // ("", a): s0..s4 paired, verdicts differ at s1 and s3.
  CHECK(floors[0].task == "t");
  CHECK(floors[0].variant_a == "");
  CHECK(floors[0].variant_b == "a");
  CHECK(floors[0].paired == 5);
  CHECK(floors[0].flips == 2);
  CHECK(floors[0].rate() == doctest::Approx(0.4));
  CHECK(floors[0].accuracy_a == doctest::Approx(0.6));
  CHECK(floors[0].accuracy_b == doctest::Approx(0.6));
  // ("", b): s0..s3, differ at s1 and s3.  (a, b): s0..s3, identical.
  CHECK(floors[1].variant_b == "b");
  CHECK(floors[1].paired == 4);
  CHECK(floors[1].flips == 2);
  CHECK(floors[2].variant_a == "a");
  CHECK(floors[2].variant_b == "b");
  CHECK(floors[2].paired == 4);
  CHECK(floors[2].flips == 0);
  CHECK(floors[2].ci.lo == 0.0);
  CHECK(floors[2].ci.hi == doctest::Approx(wilson_interval(0, 4).hi));
}

TEST_CASE("calibration: variants stay out of the comparisons and the pooled accuracy, and get their report section") {
  std::vector<Row> rows;
  add(rows, "t", {1, 1, 0, 0});
  add(rows, "t@a", {0, 0, 0, 0});
  MetricsOptions opt;
  opt.bootstrap = 0;
  const Analysis a = analyze(rows, opt);
  for (const Comparison& c : a.comparisons) CHECK(c.task.find('@') == std::string::npos);
  const std::string md = results_markdown(a);
  CHECK(md.find("## Calibration: the full cache's own noise floor") != std::string::npos);
  CHECK(md.find("| t | (plain) vs @a | 4 | 2 | 0.500 [") != std::string::npos);
  CHECK(md.find("Task `t@a`") == std::string::npos);
}
