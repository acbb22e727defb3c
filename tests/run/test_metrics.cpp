// Metrics: SDS as the prototype defines it, paired-bootstrap intervals, the "does perplexity
// warn?" AUROC, cells and pooling — on small hand-computed inputs.

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kvcanary/run/metrics.hpp"

using namespace kvcanary::run;

namespace {

const std::string kModel = "m";

Row functional_row(const std::string& method, double budget, const std::string& task, const std::string& id,
                   double pass, double gold_nll, double measured = -1) {
  Row r;
  r.model = kModel;
  r.method = method;
  r.budget = budget;
  r.task = task;
  r.cell_id = make_cell_id(kModel, method, budget, task);
  r.sample_id = id;
  r.scores = {{"functional", pass}, {"gold_nll", gold_nll}};
  r.kind = TaskKind::Functional;
  r.budget_measured = measured < 0 ? budget : measured;
  r.latency_s = 0.25;
  return r;
}

Row ppl_row(const std::string& method, double budget, const std::string& id, double nll_sum, double n_scored) {
  Row r;
  r.model = kModel;
  r.method = method;
  r.budget = budget;
  r.task = "wikitext2";
  r.cell_id = make_cell_id(kModel, method, budget, r.task);
  r.sample_id = id;
  r.scores = {{"nll_sum", nll_sum}, {"n_scored", n_scored}, {"perplexity", std::exp(nll_sum / n_scored)}};
  r.kind = TaskKind::Perplexity;
  r.budget_measured = budget;
  r.latency_s = 1.0;
  return r;
}

// Perplexity rows whose pooled perplexity is exactly `ppl` (every document the same NLL).
void add_ppl(std::vector<Row>& rows, const std::string& method, double budget, double ppl, int docs = 4) {
  for (int i = 0; i < docs; ++i)
    rows.push_back(ppl_row(method, budget, "doc" + std::to_string(i), std::log(ppl) * 100, 100));
}

// A functional cell with the given verdicts (ids s0, s1, ...) and gold NLLs.
void add_func(std::vector<Row>& rows, const std::string& method, double budget, const std::string& task,
              const std::vector<int>& pass, const std::vector<double>& nll = {}) {
  for (std::size_t i = 0; i < pass.size(); ++i)
    rows.push_back(functional_row(method, budget, task, "s" + std::to_string(i), pass[i], nll.empty() ? 1.0 : nll[i]));
}

const Comparison& find(const Analysis& a, const std::string& method, double budget, const std::string& task) {
  for (const Comparison& c : a.comparisons)
    if (c.method == method && c.budget == budget && c.task == task) return c;
  FAIL("no comparison " << method << " " << budget << " " << task);
  throw;
}

}  // namespace

TEST_CASE("run metrics: SDS equals the prototype's definition on hand-computed values") {
  // (0.8 - 0.4) / 0.8 = 0.5 functional drop; (11 - 10) / 10 = 0.1 perplexity rise.
  CHECK(sds(0.8, 0.4, 10.0, 11.0) == doctest::Approx(5.0));
  // Perplexity flat or improving: the denominator is the eps floor, SDS = drop / 1e-3.
  auto flat = sds_parts(0.8, 0.4, 10.0, 10.0);
  CHECK(flat.sds == doctest::Approx(500.0));
  CHECK(flat.ppl_clamped);
  CHECK(sds(0.8, 0.4, 10.0, 9.0) == doctest::Approx(500.0));
  CHECK(sds(0.8, 0.4, 10.0, 10.005) == doctest::Approx(500.0));  // rise 5e-4 < eps
  // Full against full, and a compressed cache that does better: no degradation.
  CHECK(sds(0.8, 0.8, 10.0, 10.0) == 0.0);
  CHECK(sds(0.4, 0.8, 10.0, 12.0) == 0.0);
  // A task the full cache never solves: the drop's denominator is eps, the numerator 0.
  CHECK(sds(0.0, 0.0, 10.0, 12.0) == 0.0);
  // Large perplexity rise, small drop: SDS < 1 (perplexity warned more than the task fell).
  CHECK(sds(1.0, 0.9, 10.0, 20.0) == doctest::Approx(0.1));
  CHECK(std::isnan(sds(0.8, std::nan(""), 10.0, 11.0)));
}

TEST_CASE("run metrics: AUROC is the Mann-Whitney probability with ties counting 1/2") {
  CHECK(auroc({2.0, 3.0}, {0.0, 1.0}) == 1.0);
  CHECK(auroc({0.0}, {1.0}) == 0.0);
  CHECK(auroc({1.0, 1.0}, {1.0, 1.0, 1.0}) == 0.5);  // a constant predictor
  // pos {1, 2} vs neg {1, 0}: pairs (1,1)=½, (1,0)=1, (2,1)=1, (2,0)=1 → 3.5 / 4.
  CHECK(auroc({1.0, 2.0}, {1.0, 0.0}) == doctest::Approx(0.875));
  // pos {0.5, 0.2, 0.2} vs neg {0.2, 0.1}: 1+1 + (½+1) + (½+1) = 5 of 6.
  CHECK(auroc({0.5, 0.2, 0.2}, {0.2, 0.1}) == doctest::Approx(5.0 / 6.0));
  CHECK(std::isnan(auroc({}, {1.0})));
  CHECK(std::isnan(auroc({1.0}, {})));
}

TEST_CASE("run metrics: percentile interval interpolates between order statistics") {
  const Interval iv = percentile_interval({5, 1, 4, 2, 3}, 0.5);
  CHECK(iv.lo == doctest::Approx(2.0));
  CHECK(iv.hi == doctest::Approx(4.0));
  CHECK(!percentile_interval({std::nan("")}).defined());
}

TEST_CASE("run metrics: cells aggregate functional means, token-weighted perplexity and gold ppl") {
  std::vector<Row> rows;
  add_func(rows, "full", 1.0, "code", {1, 0, 1, 1}, {1.0, 2.0, 1.0, 2.0});
  rows.push_back(ppl_row("full", 1.0, "a", 10.0, 10));  // NLL 1.0 over 10 tokens
  rows.push_back(ppl_row("full", 1.0, "b", 60.0, 30));  // NLL 2.0 over 30 tokens
  const auto cells = build_cells(rows);
  REQUIRE(cells.size() == 2);
  const Cell& f = cells[0].task == "code" ? cells[0] : cells[1];
  const Cell& p = cells[0].task == "code" ? cells[1] : cells[0];
  CHECK(f.n == 4);
  CHECK(f.functional == doctest::Approx(0.75));
  CHECK(f.gold_ppl == doctest::Approx(std::exp(1.5)));
  CHECK(f.latency_s == doctest::Approx(1.0));
  CHECK(f.budget_measured == doctest::Approx(1.0));
  // exp(Σ nll_sum / Σ n_scored) = exp(70 / 40), not the mean of exp(1) and exp(2).
  CHECK(p.perplexity == doctest::Approx(std::exp(70.0 / 40.0)));

  // Prototype rows carry only "perplexity": the cell falls back to their mean.
  std::vector<Row> proto;
  for (double v : {10.0, 20.0}) {
    Row r = ppl_row("full", 1.0, "d" + std::to_string(int(v)), 0, 0);
    r.scores = {{"perplexity", v}};
    proto.push_back(r);
  }
  CHECK(build_cells(proto)[0].perplexity == doctest::Approx(15.0));

  // A prototype code row's verdict is "pass@1".
  Row code = functional_row("full", 1.0, "code", "he0", 0, 0);
  code.scores = {{"pass@1", 1.0}};
  CHECK(build_cells({code})[0].functional == 1.0);

  // The same sample twice in a cell is an error, not an average.
  std::vector<Row> dup;
  add_func(dup, "full", 1.0, "code", {1});
  add_func(dup, "full", 1.0, "code", {0});
  CHECK_THROWS_AS(build_cells(dup), kvcanary::Error);
}

TEST_CASE("run metrics: per-task SDS against the full cell, with a deterministic paired bootstrap interval") {
  std::vector<Row> rows;
  // 10 samples; full passes 8, compressed keeps 4 of them → 0.8 → 0.4; perplexity 10 → 11.
  add_func(rows, "full", 1.0, "code", {1, 1, 1, 1, 1, 1, 1, 1, 0, 0});
  add_func(rows, "snapkv", 0.5, "code", {1, 1, 1, 1, 0, 0, 0, 0, 0, 0});
  add_ppl(rows, "full", 1.0, 10.0);
  add_ppl(rows, "snapkv", 0.5, 11.0);
  const Analysis a = analyze(rows);
  const Comparison& c = find(a, "snapkv", 0.5, "code");
  CHECK(c.func_full == doctest::Approx(0.8));
  CHECK(c.func_comp == doctest::Approx(0.4));
  CHECK(c.ppl_full == doctest::Approx(10.0));
  CHECK(c.ppl_comp == doctest::Approx(11.0));
  CHECK(c.sds.rel_func_drop == doctest::Approx(0.5));
  CHECK(c.sds.rel_ppl_rise == doctest::Approx(0.1));
  CHECK(c.sds.sds == doctest::Approx(5.0));
  CHECK_FALSE(c.sds.ppl_clamped);
  CHECK(c.sds.n_paired == 10);
  CHECK(c.sds.n_unpaired == 0);
  CHECK(c.sds.n_ppl_paired == 4);
  REQUIRE(c.sds.ci.defined());
  CHECK(c.sds.ci.lo <= c.sds.sds);
  CHECK(c.sds.ci.hi >= c.sds.sds);
  CHECK(c.sds.ci.lo < c.sds.ci.hi);
  CHECK(c.ref_cell_id == make_cell_id(kModel, "full", 1.0, "code"));

  // Same rows, same numbers, bit for bit; another seed moves the interval.
  const Analysis again = analyze(rows);
  CHECK(find(again, "snapkv", 0.5, "code").sds.ci.lo == c.sds.ci.lo);
  CHECK(find(again, "snapkv", 0.5, "code").sds.ci.hi == c.sds.ci.hi);
  MetricsOptions o;
  o.seed = 7;
  const Analysis other = analyze(rows, o);
  const Interval& oc = find(other, "snapkv", 0.5, "code").sds.ci;
  CHECK((oc.lo != c.sds.ci.lo || oc.hi != c.sds.ci.hi));
  o.bootstrap = 0;
  CHECK_FALSE(find(analyze(rows, o), "snapkv", 0.5, "code").sds.ci.defined());

  // The full cell against itself: SDS 0, no flips.
  const Comparison& ref = find(a, "full", 1.0, "code");
  CHECK(ref.is_reference());
  CHECK(ref.sds.sds == 0.0);
  CHECK(std::isnan(ref.auroc.value));
  CHECK(ref.auroc.n_flips == 0);
}

TEST_CASE("run metrics: the chart's two ratios get paired bootstrap intervals") {
  std::vector<Row> rows;
  std::vector<int> all(100, 1), half(100, 0), same(100, 0);
  for (int i = 0; i < 50; ++i) half[std::size_t(i)] = 1;
  for (int i = 0; i < 100; i += 2) same[std::size_t(i)] = 1;
  add_func(rows, "full", 1.0, "code", all);
  add_func(rows, "snapkv", 0.5, "code", half);
  add_func(rows, "full", 1.0, "half", same);
  add_func(rows, "knorm", 0.5, "half", same);  // the same verdicts as full, sample by sample
  add_func(rows, "full", 1.0, "none", std::vector<int>(20, 0));
  add_func(rows, "snapkv", 0.5, "none", std::vector<int>(20, 0));
  add_ppl(rows, "full", 1.0, 10.0);
  add_ppl(rows, "snapkv", 0.5, 11.0);
  // knorm: documents at ppl 10 and 12.1 alternately, so its perplexity ratio varies by resample.
  for (int i = 0; i < 4; ++i)
    rows.push_back(ppl_row("knorm", 0.5, "doc" + std::to_string(i), std::log(i % 2 ? 12.1 : 10.0) * 100, 100));
  const Analysis a = analyze(rows);

  // 50 of 100 kept: the ratio is 0.5 and its interval the binomial one, about ±0.1.
  const Comparison& c = find(a, "snapkv", 0.5, "code");
  REQUIRE(c.func_ratio_ci.defined());
  CHECK(c.func_ratio_ci.lo == doctest::Approx(0.40).epsilon(0.06));
  CHECK(c.func_ratio_ci.hi == doctest::Approx(0.60).epsilon(0.06));
  CHECK(c.func_ratio_ci.lo < 0.5);
  CHECK(c.func_ratio_ci.hi > 0.5);
  // Every document 10 → 11: every resample gives exactly 10/11.
  REQUIRE(c.ppl_quality_ci.defined());
  CHECK(c.ppl_quality_ci.lo == doctest::Approx(10.0 / 11.0));
  CHECK(c.ppl_quality_ci.hi == doctest::Approx(10.0 / 11.0));

  // Paired: the same verdicts under both caches give exactly 1 in every resample, although each
  // side alone (50 of 100) varies by ±0.1 — an unpaired bootstrap would not.
  const Comparison& k = find(a, "knorm", 0.5, "half");
  REQUIRE(k.func_ratio_ci.defined());
  CHECK(k.func_ratio_ci.lo == 1.0);
  CHECK(k.func_ratio_ci.hi == 1.0);
  REQUIRE(k.ppl_quality_ci.defined());
  CHECK(k.ppl_quality_ci.lo < k.ppl_full / k.ppl_comp);
  CHECK(k.ppl_quality_ci.hi > k.ppl_full / k.ppl_comp);
  CHECK(k.ppl_quality_ci.lo >= doctest::Approx(10.0 / 12.1));
  CHECK(k.ppl_quality_ci.hi <= 1.0);

  // A task the full cache never solves has no ratio and so no interval.
  CHECK_FALSE(find(a, "snapkv", 0.5, "none").func_ratio_ci.defined());
  // The reference against itself: exactly 1.
  CHECK(find(a, "full", 1.0, "code").func_ratio_ci.lo == 1.0);
  CHECK(find(a, "full", 1.0, "code").func_ratio_ci.hi == 1.0);
}

TEST_CASE("run metrics: flat perplexity gives drop / eps, flagged as clamped") {
  std::vector<Row> rows;
  add_func(rows, "full", 1.0, "tools", {1, 1, 1, 1});
  add_func(rows, "kivi", 0.25, "tools", {1, 1, 0, 0});
  add_ppl(rows, "full", 1.0, 10.0);
  add_ppl(rows, "kivi", 0.25, 9.5);  // perplexity improved
  const Analysis a = analyze(rows);  // held: find() returns a reference into it
  const Comparison& c = find(a, "kivi", 0.25, "tools");
  CHECK(c.sds.sds == doctest::Approx(500.0));
  CHECK(c.sds.ppl_clamped);
}

TEST_CASE("run metrics: samples present in one cell only are dropped from pairing and counted") {
  std::vector<Row> rows;
  add_func(rows, "full", 1.0, "code", {1, 1, 1, 1, 0});
  add_func(rows, "h2o", 0.5, "code", {1, 0, 1});  // s3, s4 missing
  rows.push_back(functional_row("h2o", 0.5, "code", "extra", 1, 1.0));
  add_ppl(rows, "full", 1.0, 10.0, 3);
  add_ppl(rows, "h2o", 0.5, 12.0, 2);  // doc2 missing
  const Analysis a = analyze(rows);
  const Comparison& c = find(a, "h2o", 0.5, "code");
  CHECK(c.sds.n_paired == 3);
  CHECK(c.sds.n_unpaired == 3);  // s3, s4 (full only), extra (compressed only)
  CHECK(c.sds.n_ppl_paired == 2);
  CHECK(c.sds.n_ppl_unpaired == 1);
}

TEST_CASE("run metrics: does perplexity warn — AUROC over samples passing under full") {
  std::vector<Row> rows;
  // s0..s5 pass under full, s6 fails under full (excluded from the AUROC).
  // Under compression s0, s1 flip; their gold NLL rose by 1.0, the others' by 0.1.
  add_func(rows, "full", 1.0, "code", {1, 1, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 1, 1, 1});
  add_func(rows, "tova", 0.5, "code", {0, 0, 1, 1, 1, 1, 0}, {2.0, 2.0, 1.1, 1.1, 1.1, 1.1, 5.0});
  add_ppl(rows, "full", 1.0, 10.0);
  add_ppl(rows, "tova", 0.5, 10.0);
  const Analysis a = analyze(rows);
  const Comparison& c = find(a, "tova", 0.5, "code");
  CHECK(c.auroc.n_flips == 2);
  CHECK(c.auroc.n_kept == 6);
  CHECK(c.auroc.value == 1.0);
  REQUIRE(c.auroc.ci.defined());
  CHECK(c.auroc.ci.lo == 1.0);  // perfect separation survives every stratified resample

  // A constant predictor: every flip ties every survivor.
  std::vector<Row> flat;
  add_func(flat, "full", 1.0, "code", {1, 1, 1, 1}, {1, 1, 1, 1});
  add_func(flat, "tova", 0.5, "code", {0, 1, 0, 1}, {1.5, 1.5, 1.5, 1.5});
  add_ppl(flat, "full", 1.0, 10.0);
  add_ppl(flat, "tova", 0.5, 10.0);
  const Analysis af = analyze(flat);
  const Comparison& f = find(af, "tova", 0.5, "code");
  CHECK(f.auroc.value == 0.5);
  CHECK(f.auroc.ci.lo == 0.5);
  CHECK(f.auroc.ci.hi == 0.5);

  // No flips: nothing to rank.
  std::vector<Row> none;
  add_func(none, "full", 1.0, "code", {1, 1}, {1, 1});
  add_func(none, "tova", 0.5, "code", {1, 1}, {1.2, 1.1});
  const Analysis an = analyze(none);
  const Comparison& n = find(an, "tova", 0.5, "code");
  CHECK(std::isnan(n.auroc.value));
  CHECK_FALSE(n.auroc.ci.defined());
  CHECK(n.auroc.n_flips == 0);
  CHECK(n.auroc.n_kept == 2);
}

TEST_CASE("run metrics: pooled SDS is the mean of the task accuracies against one perplexity") {
  std::vector<Row> rows;
  add_func(rows, "full", 1.0, "code", {1, 1, 1, 1, 0});                          // 0.8
  add_func(rows, "full", 1.0, "tools", {1, 1, 1, 0, 0, 0, 0, 0, 0, 0});          // 0.3 (a different size)
  add_func(rows, "streamingllm", 0.5, "code", {1, 1, 0, 0, 0});                  // 0.4
  add_func(rows, "streamingllm", 0.5, "tools", {1, 0, 0, 0, 0, 0, 0, 0, 0, 0});  // 0.1
  add_ppl(rows, "full", 1.0, 10.0);
  add_ppl(rows, "streamingllm", 0.5, 12.0);
  const Analysis a = analyze(rows);
  const Comparison& p = find(a, "streamingllm", 0.5, kPooledTask);
  CHECK(p.tasks == std::vector<std::string>{"code", "tools"});
  CHECK(p.func_full == doctest::Approx(0.55));
  CHECK(p.func_comp == doctest::Approx(0.25));
  // (0.55 - 0.25) / 0.55 over (12 - 10) / 10.
  CHECK(p.sds.sds == doctest::Approx((0.30 / 0.55) / 0.2));
  CHECK(p.n == 15);
  CHECK(p.sds.n_paired == 15);
  REQUIRE(p.sds.ci.defined());
  CHECK(p.sds.ci.lo <= p.sds.sds);
  CHECK(p.sds.ci.hi >= p.sds.sds);
  // Per-task values next to it.
  CHECK(find(a, "streamingllm", 0.5, "code").sds.sds == doctest::Approx(0.5 / 0.2));
  CHECK(find(a, "streamingllm", 0.5, "tools").sds.sds == doctest::Approx((0.2 / 0.3) / 0.2));
  // The reference's pooled row is zero.
  CHECK(find(a, "full", 1.0, kPooledTask).sds.sds == 0.0);
  // Order: per task (full first, budgets descending), pooled after the tasks.
  CHECK(a.comparisons.front().method == "full");
  CHECK(a.comparisons.back().task == kPooledTask);
  CHECK(a.n_rows == rows.size());
  CHECK(a.functional_tasks == std::vector<std::string>{"code", "tools"});
  CHECK(a.perplexity_tasks == std::vector<std::string>{"wikitext2"});
}
