// The report on a synthetic results set: RESULTS.md holds the expected rows and values, the SVG
// is well formed with one stroked path per series, the PNG has the signature and the chart's size.

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../support/temp_dir.hpp"
#include "kvcanary/run/report.hpp"

using namespace kvcanary::run;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::size_t count(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + needle.size())) ++n;
  return n;
}

Row row(const std::string& method, double budget, const std::string& task, const std::string& id, TaskKind kind) {
  Row r;
  r.model = "tiny-llama";
  r.method = method;
  r.budget = budget;
  r.task = task;
  r.cell_id = make_cell_id(r.model, method, budget, task);
  r.sample_id = id;
  r.kind = kind;
  r.budget_measured = method == "full" ? 1.0 : budget * 0.98;
  r.latency_s = 0.5;
  r.model_hash = "mh-1234";
  r.config_hash = "cfg-abcd";
  return r;
}

// Two functional tasks of 10 samples and 4 perplexity documents per cell; full and two methods
// at two budgets. Under snapkv@0.5 code drops 0.8 → 0.4 and perplexity rises 10 → 11 (SDS 5);
// under kivi perplexity stays at 10 (SDS at the eps bound).
std::vector<Row> fixture() {
  std::vector<Row> rows;
  struct Cell {
    std::string method;
    double budget;
    std::vector<int> code, tools;
    double ppl;
  };
  const std::vector<Cell> cells = {
      {"full", 1.0, {1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, {1, 1, 1, 1, 1, 0, 0, 0, 0, 0}, 10.0},
      {"snapkv", 0.5, {1, 1, 1, 1, 0, 0, 0, 0, 0, 0}, {1, 1, 1, 1, 0, 0, 0, 0, 0, 0}, 11.0},
      {"snapkv", 0.25, {1, 1, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 13.0},
      {"kivi", 0.5, {1, 1, 1, 1, 1, 1, 1, 0, 0, 0}, {1, 1, 1, 1, 1, 0, 0, 0, 0, 0}, 10.0},
      {"kivi", 0.25, {1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, {1, 1, 1, 1, 0, 0, 0, 0, 0, 0}, 10.0},
  };
  for (const Cell& c : cells) {
    for (const auto& [task, pass] : {std::pair{"code", c.code}, std::pair{"tools", c.tools}})
      for (std::size_t i = 0; i < pass.size(); ++i) {
        Row r = row(c.method, c.budget, task, std::string(task) + std::to_string(i), TaskKind::Functional);
        // Flips get a larger gold-NLL rise than survivors: perplexity-style signals would warn.
        r.scores = {{"functional", double(pass[i])}, {"gold_nll", 1.0 + (pass[i] ? 0.0 : 0.5) + 0.01 * double(i)}};
        rows.push_back(r);
      }
    for (int d = 0; d < 4; ++d) {
      Row r = row(c.method, c.budget, "wikitext2", "doc" + std::to_string(d), TaskKind::Perplexity);
      r.scores = {{"nll_sum", std::log(c.ppl) * 200}, {"n_scored", 200}, {"perplexity", c.ppl}};
      rows.push_back(r);
    }
  }
  return rows;
}

}  // namespace

TEST_CASE("run report: RESULTS.md, divergence.svg and divergence.png from a synthetic results set") {
  kvcanary::test::TempDir dir;
  const auto rows = fixture();
  const Analysis a = analyze(rows);
  const ReportFiles files = write_report(a, dir.path / "report");
  REQUIRE(fs::exists(files.markdown));
  REQUIRE(fs::exists(files.svg));
  REQUIRE(fs::exists(files.png));

  const std::string md = slurp(files.markdown);
  CHECK(md.find("- model(s): `tiny-llama`") != std::string::npos);
  CHECK(md.find("- model hash: `mh-1234`") != std::string::npos);
  CHECK(md.find("- config hash(es): `cfg-abcd`") != std::string::npos);
  CHECK(md.find(std::string("- program version: `") + kProgramVersion + "`") != std::string::npos);
  CHECK(md.find("- rows: 120 (100 functional, 20 perplexity)") != std::string::npos);
  CHECK(md.find("- compute time: 1.0 min (60 s)") != std::string::npos);  // 120 rows × 0.5 s
  CHECK(md.find("## Task `code`") != std::string::npos);
  CHECK(md.find("## Task `tools`") != std::string::npos);
  CHECK(md.find("## Pooled over `code`, `tools`") != std::string::npos);
  CHECK(md.find("| full | 1.0 | 100.0% | 0.800 | 10.00 |") != std::string::npos);
  // snapkv@0.5 on code: 49% kept, 0.8 → 0.4 (−50%), ppl +10%, SDS 5 with its interval.
  CHECK(md.find("| snapkv | 0.5 | 49.0% | 0.400 | 11.00 |") != std::string::npos);
  CHECK(md.find("| -50.0% | +10.0% | 5.00 [") != std::string::npos);
  // kivi@0.25 on code: 0.8 → 0.6 with flat perplexity → 0.25 / 0.001, shown as a lower bound.
  CHECK(md.find("| kivi | 0.25 | 24.5% | 0.600 | 10.00 |") != std::string::npos);
  CHECK(md.find("| -25.0% | +0.0% | ≥250 (ppl flat)") != std::string::npos);
  // The flips have the larger gold-NLL rise: AUROC 1 with counts (snapkv@0.5 code: 4 of 8 flip).
  CHECK(md.find("1.00 [1.00, 1.00] (4/8) | 10 |") != std::string::npos);
  // gold ppl = exp(mean gold_nll) = exp((10 + 2 * 0.5 + 0.45) / 10) = exp(1.145) = 3.14.
  CHECK(md.find("| full | 1.0 | 100.0% | 0.800 | 10.00 | 3.14 | +0.0% | +0.0% | reference | – | 10 |") !=
        std::string::npos);
  CHECK(md.find("## How to read this") != std::string::npos);
  CHECK(md.find("](divergence.png)") != std::string::npos);

  // SVG: well formed enough to open, and one stroked path per series (the series width is used
  // by the data lines and their legend samples only).
  const std::string svg = slurp(files.svg);
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK(svg.find("<svg") != std::string::npos);
  CHECK(svg.find("</svg>") != std::string::npos);
  CHECK(count(svg, "<g") == count(svg, "</g>"));
  const Chart chart = build_chart(a);
  REQUIRE(chart.panels.size() == 2);  // kivi, snapkv
  std::size_t series = 0, dashed = 0;
  for (const auto& p : chart.panels) {
    CHECK(p.series.size() == 3);  // code, tools, perplexity
    for (const auto& s : p.series) {
      series += 1;
      dashed += s.dashed;
      CHECK(s.points.size() == 3);  // the full point at x = 1 and two budgets
      CHECK(s.points.back().x == 1.0);
      CHECK(s.points.back().y == 1.0);
    }
  }
  CHECK(chart.legend.size() == 3);
  const std::string stroke = "stroke-width:3;";
  CHECK(count(svg, stroke) == series + chart.legend.size());
  CHECK(count(svg, "stroke-dasharray:12,7;") == dashed + 1);  // + the legend's dashed sample
  // snapkv@0.25 code: 0.2 / 0.8 = 0.25 of full at x = 0.245.
  const auto& snap = chart.panels[1];
  CHECK(snap.title == "snapkv");
  CHECK(snap.series[0].points[0].x == doctest::Approx(0.245));
  CHECK(snap.series[0].points[0].y == doctest::Approx(0.25));
  CHECK(snap.series[2].dashed);
  CHECK(snap.series[2].points[0].y == doctest::Approx(10.0 / 13.0));

  // PNG: the signature, then IHDR with the chart's width and height (big-endian).
  const std::string png = slurp(files.png);
  REQUIRE(png.size() > 24);
  CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  CHECK(png.compare(12, 4, "IHDR") == 0);
  auto be32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(png[at + i]);
    return v;
  };
  CHECK(be32(16) == 1600);
  CHECK(be32(20) == static_cast<std::uint32_t>(std::lround(chart.height)));
}

TEST_CASE("run report: each table lists the full cache, then the most silent failure first") {
  const std::string md = results_markdown(analyze(fixture()));
  const std::size_t code = md.find("## Task `code`"), tools = md.find("## Task `tools`");
  REQUIRE(code != std::string::npos);
  REQUIRE(tools != std::string::npos);
  auto at = [&](const std::string& row) { return md.find(row, code); };
  // code: kivi 0.25 (SDS ≥250, ppl flat) > kivi 0.5 (≥125) > snapkv 0.5 (5) > snapkv 0.25 (2.5).
  const std::size_t full = at("| full | 1.0 |"), k25 = at("| kivi | 0.25 |"), k50 = at("| kivi | 0.5 |"),
                    s50 = at("| snapkv | 0.5 |"), s25 = at("| snapkv | 0.25 |");
  CHECK(full < k25);
  CHECK(k25 < k50);
  CHECK(k50 < s50);
  CHECK(s50 < s25);
  CHECK(s25 < tools);
  // tools: kivi 0.5 lost nothing (SDS 0): after every cell that lost something.
  const std::size_t t_k50 = md.find("| kivi | 0.5 |", tools), t_s25 = md.find("| snapkv | 0.25 |", tools);
  CHECK(t_s25 < t_k50);
  CHECK(md.find("0 (no loss)", t_k50) != std::string::npos);
}

TEST_CASE(
    "run report: the divergence lines carry bootstrap bands, and silence.svg/.png put each cell of a task on one "
    "panel") {
  kvcanary::test::TempDir dir;
  const Analysis a = analyze(fixture());
  const ReportFiles files = write_report(a, dir.path / "report");

  // Bands: every point of a line has its interval around it; the full point is exactly 1.
  const Chart chart = build_chart(a);
  for (const ChartPanel& p : chart.panels)
    for (const ChartSeries& s : p.series)
      for (const ChartPoint& pt : s.points) {
        REQUIRE(std::isfinite(pt.y_lo));
        CHECK(pt.y_lo <= pt.y + 1e-12);
        CHECK(pt.y_hi >= pt.y - 1e-12);
      }
  const ChartPoint& full_point = chart.panels[1].series[0].points.back();
  CHECK(full_point.y_lo == 1.0);
  CHECK(full_point.y_hi == 1.0);

  // Silence: one panel per task the full cache solves, one point per compressed cell at
  // (ppl_full / ppl, func / func_full) with whiskers; unmoved cells unlabelled.
  const Chart silence = build_silence_chart(a);
  CHECK(silence.kind == ChartKind::Silence);
  REQUIRE(silence.panels.size() == 2);
  CHECK(silence.panels[0].title == "code (full 0.800, n 10)");
  CHECK(silence.panels[1].title == "tools (full 0.500, n 10)");
  const ChartPanel& code = silence.panels[0];
  REQUIRE(code.series.size() == 4);  // kivi 0.5, 0.25, snapkv 0.5, 0.25
  const ChartSeries* snap = nullptr;
  for (const ChartSeries& s : code.series)
    if (s.label == "snapkv 0.5") snap = &s;
  REQUIRE(snap != nullptr);
  REQUIRE(snap->points.size() == 1);
  const ChartPoint& p = snap->points[0];
  CHECK(p.x == doctest::Approx(10.0 / 11.0));
  CHECK(p.y == doctest::Approx(0.5));
  CHECK(p.y_lo <= p.y);
  CHECK(p.y_hi >= p.y);
  CHECK(p.x_lo == doctest::Approx(10.0 / 11.0));  // every document moved alike
  std::size_t unlabelled = 0;
  for (const ChartSeries& s : silence.panels[1].series) unlabelled += s.label.empty();
  CHECK(unlabelled == 1);  // kivi 0.5 on tools: 0.5 → 0.5 at flat perplexity

  REQUIRE(fs::exists(files.silence_svg));
  REQUIRE(fs::exists(files.silence_png));
  const std::string svg = slurp(files.silence_svg);
  CHECK(svg.find("</svg>") != std::string::npos);
  CHECK(count(svg, "<g") == count(svg, "</g>"));
  const std::string png = slurp(files.silence_png);
  REQUIRE(png.size() > 24);
  CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  CHECK(slurp(files.markdown).find("](silence.png)") != std::string::npos);
}

TEST_CASE("run report: a directory that cannot be created is an Error naming it") {
  kvcanary::test::TempDir dir;
  std::ofstream(dir.path / "file") << "x";
  CHECK_THROWS_AS(write_report(std::vector<Row>{}, dir.path / "file" / "sub"), kvcanary::Error);
}

TEST_CASE("run report: an empty results set still writes a readable report") {
  kvcanary::test::TempDir dir;
  const ReportFiles f = write_report(std::vector<Row>{}, dir.path);
  CHECK(slurp(f.markdown).find("- rows: 0") != std::string::npos);
  CHECK(slurp(f.png).compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
}
