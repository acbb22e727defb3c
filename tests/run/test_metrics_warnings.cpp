// "What warns?" (issue 20): every warning signal a compressed row carries gets the flip AUROC
// with a stratified bootstrap interval, oriented so that larger warns; held-out perplexity only
// across cells; undefined cases stay undefined ("n/a" in the report, never NaN).

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kvcanary/run/metrics.hpp"
#include "kvcanary/run/report.hpp"

using namespace kvcanary::run;

namespace {

Row row(const std::string& method, double budget, const std::string& task, const std::string& id, double pass,
        std::map<std::string, double> extra = {}) {
  Row r;
  r.model = "m";
  r.method = method;
  r.budget = budget;
  r.task = task;
  r.cell_id = make_cell_id("m", method, budget, task);
  r.sample_id = id;
  r.scores = {{"functional", pass}, {"gold_nll", 1.0}};
  for (const auto& [k, v] : extra) r.scores[k] = v;
  r.kind = TaskKind::Functional;
  r.budget_measured = budget;
  r.program_version = kProgramVersion;
  return r;
}

void add_ppl(std::vector<Row>& rows, const std::string& method, double budget, double ppl) {
  Row r;
  r.model = "m";
  r.method = method;
  r.budget = budget;
  r.task = "wikitext2";
  r.cell_id = make_cell_id("m", method, budget, r.task);
  r.sample_id = "doc0";
  r.scores = {{"nll_sum", std::log(ppl) * 10}, {"n_scored", 10}, {"perplexity", ppl}};
  r.kind = TaskKind::Perplexity;
  r.budget_measured = budget;
  rows.push_back(r);
}

const Comparison& find(const Analysis& a, const std::string& method, double budget, const std::string& task) {
  for (const Comparison& c : a.comparisons)
    if (c.method == method && c.budget == budget && c.task == task) return c;
  FAIL("no comparison " << method << " " << budget << " " << task);
  return a.comparisons.front();
}

const AurocResult& warn(const Comparison& c, Warn w) { return c.warn[static_cast<std::size_t>(w)]; }
const AurocResult& warn(const WarnPool& p, Warn w) { return p.warn[static_cast<std::size_t>(w)]; }

}  // namespace

TEST_CASE("run metrics warnings: a planted perfect signal has AUROC 1, a reversed one 0, with degenerate intervals") {
  std::vector<Row> rows;
  // The full cache passes s0..s7; snapkv fails s0..s2 (flips) and keeps s3..s7.
  for (int i = 0; i < 8; ++i) rows.push_back(row("full", 1.0, "code", "s" + std::to_string(i), 1));
  for (int i = 0; i < 8; ++i) {
    const bool flip = i < 3;
    rows.push_back(row("snapkv", 0.5, "code", "s" + std::to_string(i), flip ? 0 : 1,
                       {{"agree_top1", flip ? 0.3 + 0.01 * i : 0.9 + 0.01 * i},  // lower on flips: warns (perfect)
                        {"first_disagree", flip ? 2.0 + i : 40.0 + i},           // earlier on flips: warns (perfect)
                        {"kl_full", flip ? 0.01 : 0.5 + 0.1 * i},                // lower on flips: reversed
                        {"agree_positions", 64},
                        {"evicted_attention", 0.25}}));  // constant: chance
  }
  add_ppl(rows, "full", 1.0, 10.0);
  add_ppl(rows, "snapkv", 0.5, 10.5);
  const Analysis a = analyze(rows, MetricsOptions{500, 7});
  CHECK(a.has_warning_signals);
  const Comparison& c = find(a, "snapkv", 0.5, "code");
  CHECK(c.warn_flips == 3);
  CHECK(c.warn_kept == 8);
  const AurocResult& agree = warn(c, Warn::Disagreement);
  CHECK(agree.value == 1.0);
  CHECK(agree.n_flips == 3);
  CHECK(agree.n_kept == 8);
  REQUIRE(agree.ci.defined());
  CHECK(agree.ci.lo == 1.0);  // every resample keeps both classes apart
  CHECK(agree.ci.hi == 1.0);
  CHECK(warn(c, Warn::EarlyDisagreement).value == 1.0);
  const AurocResult& kl = warn(c, Warn::Kl);
  CHECK(kl.value == 0.0);
  CHECK(kl.ci.lo == 0.0);
  CHECK(kl.ci.hi == 0.0);
  CHECK(warn(c, Warn::EvictedAttention).value == 0.5);  // all ties
  // Signals the rows do not carry, and held-out perplexity within one cell, stay undefined.
  CHECK_FALSE(std::isfinite(warn(c, Warn::KvErrorK).value));
  CHECK(warn(c, Warn::KvErrorK).n_kept == 0);
  CHECK_FALSE(std::isfinite(warn(c, Warn::HeldOutPpl).value));
  // The gold column is the existing AUROC (all gold NLLs equal here: chance).
  CHECK(warn(c, Warn::GoldNll).value == c.auroc.value);
  CHECK(c.auroc.value == 0.5);
  // The full cell's own comparison gets no warnings.
  const Comparison& f = find(a, "full", 1.0, "code");
  CHECK(f.warn_kept == 0);
  CHECK_FALSE(std::isfinite(warn(f, Warn::Disagreement).value));
}

TEST_CASE("run metrics warnings: held-out perplexity ranks flips only across cells, in the all-compressed pool") {
  std::vector<Row> rows;
  for (int i = 0; i < 6; ++i) rows.push_back(row("full", 1.0, "code", "s" + std::to_string(i), 1));
  // kivi: perplexity rose 20 %, every sample flips; h2o: perplexity flat, nothing flips.
  for (int i = 0; i < 6; ++i)
    rows.push_back(row("kivi", 0.25, "code", "s" + std::to_string(i), 0, {{"kv_rel_error_k", 0.2}}));
  for (int i = 0; i < 6; ++i)
    rows.push_back(row("h2o", 0.5, "code", "s" + std::to_string(i), 1, {{"evicted_attention", 0.1}}));
  add_ppl(rows, "full", 1.0, 10.0);
  add_ppl(rows, "kivi", 0.25, 12.0);
  add_ppl(rows, "h2o", 0.5, 10.0);
  const Analysis a = analyze(rows, MetricsOptions{200, 1});
  // Within a cell nothing is defined: kivi has no survivors, h2o no flips.
  CHECK_FALSE(std::isfinite(warn(find(a, "kivi", 0.25, "code"), Warn::KvErrorK).value));
  CHECK_FALSE(std::isfinite(warn(find(a, "h2o", 0.5, "code"), Warn::EvictedAttention).value));
  REQUIRE(a.warn_pools.size() == 2);  // the task's pool, then the pool over tasks (the same rows here)
  const WarnPool& p = a.warn_pools.front();
  CHECK(p.task == "code");
  CHECK(a.warn_pools.back().task == kPooledTask);
  CHECK(warn(a.warn_pools.back(), Warn::HeldOutPpl).value == 1.0);
  CHECK(p.cells == 2);
  CHECK(p.flips == 6);
  CHECK(p.kept == 12);
  CHECK(warn(p, Warn::HeldOutPpl).value == 1.0);
  CHECK(warn(p, Warn::HeldOutPpl).n_kept == 12);
  // Each quantity exists on one cell only: one class each, undefined.
  CHECK_FALSE(std::isfinite(warn(p, Warn::KvErrorK).value));
  CHECK_FALSE(std::isfinite(warn(p, Warn::EvictedAttention).value));

  // The report shows the table, says n/a for the undefined, and never prints NaN.
  const std::string md = results_markdown(a);
  CHECK(md.find("What warns?") != std::string::npos);
  CHECK(md.find("**all compressed cells** (2)") != std::string::npos);
  CHECK(md.find("n/a") != std::string::npos);
  CHECK(md.find("1.00 [1.00, 1.00]") != std::string::npos);
  CHECK(md.find("nan") == std::string::npos);
  CHECK(md.find("NaN") == std::string::npos);
}

TEST_CASE("run metrics warnings: rows without signals leave the report as it was") {
  std::vector<Row> rows;
  for (int i = 0; i < 4; ++i) rows.push_back(row("full", 1.0, "code", "s" + std::to_string(i), 1));
  for (int i = 0; i < 4; ++i) rows.push_back(row("snapkv", 0.5, "code", "s" + std::to_string(i), i % 2));
  const Analysis a = analyze(rows, MetricsOptions{100, 1});
  CHECK_FALSE(a.has_warning_signals);
  CHECK(results_markdown(a).find("What warns?") == std::string::npos);
}
