#pragma once
// The divergence chart: does perplexity track what compression does to the tasks?
//
// Small multiples, one panel per compression method (per model and method when a results set has
// several models), so nine methods stay legible where one crowded panel would not. In each panel:
//   solid  one line per functional task: functional accuracy / the full cache's (1 = no loss);
//   dashed perplexity-implied quality ppl_full / ppl (1 = perplexity unchanged, lower = it warns);
// against the measured KV fraction retained (mean budget_measured) on a log axis, each line
// starting at the full cache's own point (x = its measured fraction, 1.0; y = 1). Where the solid
// lines fall and the dashed one stays near 1, perplexity is silent about the damage.
//
// A second chart (build_silence_chart) puts every compressed cell of a task on one panel,
// functional accuracy against perplexity-implied quality: below its diagonal is silence.
//
// The chart is first built as data (build_chart: testable, no cairo), then drawn by one function
// (draw_chart) onto any cairo surface: the SVG and the PNG are the same drawing.

#include <cairo-svg.h>
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kvcanary/core/atomic_file.hpp"
#include "kvcanary/core/error.hpp"
#include "kvcanary/run/metrics.hpp"
#include "kvcanary/run/number_text.hpp"

namespace kvcanary::run {

struct ChartPoint {
  double x = 0, y = 0;
  // The 95 % bootstrap interval of y (a band along a divergence line, a whisker on a silence
  // point) and of x (silence points only); NaN where there is none.
  double y_lo = std::numeric_limits<double>::quiet_NaN(), y_hi = std::numeric_limits<double>::quiet_NaN();
  double x_lo = std::numeric_limits<double>::quiet_NaN(), x_hi = std::numeric_limits<double>::quiet_NaN();
};

struct ChartSeries {
  std::string label;               // silence chart: printed next to its point
  bool dashed = false;             // perplexity-implied quality
  int color = 0;                   // index into the palette; -1 = the perplexity grey
  std::vector<ChartPoint> points;  // by x
};

struct ChartPanel {
  std::string title;
  std::vector<ChartSeries> series;
};

struct ChartLegendEntry {
  std::string label;
  bool dashed = false;
  int color = 0;
};

// divergence: panels per method, x = KV kept (log), lines per task with bootstrap bands.
// silence: panels per functional task, one point per compressed cell, x = perplexity-implied
// quality, y = functional accuracy / full, both with whiskers; below the diagonal the task lost
// more than perplexity implies.
enum class ChartKind { Divergence, Silence };

struct Chart {
  ChartKind kind = ChartKind::Divergence;
  std::string title, subtitle, x_label;
  std::vector<ChartPanel> panels;
  std::vector<ChartLegendEntry> legend;
  double x_min = 0.1, x_max = 1.0, y_min = 0.0, y_max = 1.1;
  double width = 1600, height = 900;  // pixels of the PNG, points of the SVG
  double panels_top = 150;            // below the title and the legend
  int columns = 3;
  int legend_per_row = 4;
};

// Line width of a data series (and of its legend sample): no other stroke uses it, so a reader
// of the SVG can count series.
inline constexpr double kChartSeriesLineWidth = 3.0;

namespace detail {

struct Rgb {
  double r, g, b;
};

// Tableau 10 without its grey, which is kept for perplexity.
inline Rgb chart_color(int i) {
  static const Rgb palette[] = {{0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173},
                                {0.839, 0.153, 0.157}, {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294},
                                {0.890, 0.467, 0.761}, {0.737, 0.741, 0.133}, {0.090, 0.745, 0.812}};
  if (i < 0) return {0.22, 0.22, 0.22};
  return palette[i % 9];
}

inline constexpr double kTitleBlock = 150, kLegendRow = 36, kPanelHeight = 430, kFooter = 60, kMargin = 24;
inline constexpr double kSilencePanelHeight = 560;  // square-ish: both axes are the same kind of ratio

}  // namespace detail

inline Chart build_chart(const Analysis& a) {
  Chart c;
  std::string models;
  for (const auto& m : a.models) models += (models.empty() ? "" : ", ") + m;
  c.title = "Does perplexity warn? KV-cache compression on " + (models.empty() ? std::string("(no model)") : models);
  c.subtitle =
      "solid: functional accuracy / full cache    dashed: perplexity-implied quality ppl(full) / ppl    bands: 95% "
      "bootstrap CI";
  c.x_label = "measured KV-cache fraction retained (log scale)";

  std::map<std::string, int> task_color;
  for (std::size_t i = 0; i < a.functional_tasks.size(); ++i) task_color[a.functional_tasks[i]] = int(i);

  // One panel per (model, compressed method), in the analysis' order.
  std::vector<std::pair<std::string, std::string>> keys;
  for (const Comparison& cmp : a.comparisons) {
    if (cmp.is_reference() || cmp.task == kPooledTask) continue;
    const auto key = std::make_pair(cmp.model, cmp.method);
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  }
  std::sort(keys.begin(), keys.end());
  std::set<std::string> tasks_drawn;
  bool ppl_drawn = false;
  double xmin = 1.0, xmax = 1.0, ymax = 1.0;
  auto add = [&](ChartSeries& s, double x, double y, const Interval& band = Interval{1.0, 1.0}) {
    if (!std::isfinite(x) || !std::isfinite(y) || x <= 0) return;
    ChartPoint p{x, y};
    if (band.defined()) p.y_lo = band.lo, p.y_hi = band.hi;
    s.points.push_back(p);
    xmin = std::min(xmin, x);
    xmax = std::max(xmax, x);
    ymax = std::max(ymax, y);
  };
  for (const auto& [model, method] : keys) {
    ChartPanel panel;
    panel.title = a.models.size() > 1 ? model + " · " + method : method;
    std::map<std::string, ChartSeries> by_task;
    ChartSeries ppl{"perplexity-implied quality", true, -1, {}};
    std::set<double> ppl_budgets;
    bool ppl_ref_added = false;
    for (const Comparison& cmp : a.comparisons) {
      if (cmp.model != model || cmp.method != method || cmp.task == kPooledTask) continue;
      auto [it, fresh] = by_task.try_emplace(cmp.task, ChartSeries{cmp.task, false, task_color[cmp.task], {}});
      ChartSeries& s = it->second;
      const bool norm_ok = std::isfinite(cmp.func_full) && cmp.func_full > 0;
      if (fresh && norm_ok) add(s, cmp.ref_kv_fraction, 1.0);
      if (norm_ok) add(s, cmp.kv_fraction, cmp.func_comp / cmp.func_full, cmp.func_ratio_ci);
      // The perplexity side is the same for every task of a budget: one point per budget.
      if (std::isfinite(cmp.ppl_full) && std::isfinite(cmp.ppl_comp) && cmp.ppl_comp > 0 &&
          ppl_budgets.insert(cmp.budget).second) {
        if (!ppl_ref_added) add(ppl, cmp.ppl_ref_kv_fraction, 1.0), ppl_ref_added = true;
        add(ppl, cmp.ppl_kv_fraction, cmp.ppl_full / cmp.ppl_comp, cmp.ppl_quality_ci);
      }
    }
    for (auto& [task, s] : by_task) {
      if (s.points.empty()) continue;
      std::stable_sort(s.points.begin(), s.points.end(), [](auto& p, auto& q) { return p.x < q.x; });
      tasks_drawn.insert(task);
      panel.series.push_back(std::move(s));
    }
    if (!ppl.points.empty()) {
      std::stable_sort(ppl.points.begin(), ppl.points.end(), [](auto& p, auto& q) { return p.x < q.x; });
      panel.series.push_back(std::move(ppl));
      ppl_drawn = true;
    }
    c.panels.push_back(std::move(panel));
  }
  for (const auto& t : a.functional_tasks)
    if (tasks_drawn.count(t)) c.legend.push_back({t + " (functional / full)", false, task_color[t]});
  if (ppl_drawn) c.legend.push_back({"perplexity-implied quality (ppl full / ppl)", true, -1});

  // x: a little room around the data on the log axis; y: from 0, at least to 1.1 so the reference
  // line never sits on the frame, at most 3 (a task that triples over full is off the scale).
  c.x_min = xmin / 1.25;
  c.x_max = xmax * 1.12;
  c.y_min = -0.04;  // a little below 0 so a marker at 0 is not cut by the frame
  c.y_max = std::min(3.0, std::max(1.1, std::ceil(ymax * 1.05 * 10.0) / 10.0));
  const std::size_t n = c.panels.size();
  c.columns = n <= 1 ? 1 : n <= 4 ? 2 : 3;
  const std::size_t rows = n == 0 ? 1 : (n + std::size_t(c.columns) - 1) / std::size_t(c.columns);
  c.width = 1600;
  const std::size_t legend_rows =
      c.legend.empty() ? 1 : (c.legend.size() + std::size_t(c.legend_per_row) - 1) / std::size_t(c.legend_per_row);
  c.panels_top = detail::kTitleBlock + double(legend_rows - 1) * detail::kLegendRow;
  c.height = c.panels_top + double(rows) * detail::kPanelHeight + detail::kFooter;
  return c;
}

// The silence chart: per functional task in which the full cache solves something, every
// compressed cell as one point at (perplexity-implied quality, functional accuracy / full), each
// with its 95 % paired-bootstrap whiskers. On the diagonal perplexity fell exactly as much as the
// task did; below it (shaded) the task lost more than perplexity implies — the silent failures
// this project looks for. Points within 5 % of (1, 1) on both axes (nothing moved) are drawn but
// not labelled, so the labels that remain are the cells that changed.
inline Chart build_silence_chart(const Analysis& a) {
  Chart c;
  c.kind = ChartKind::Silence;
  std::string models;
  for (const auto& m : a.models) models += (models.empty() ? "" : ", ") + m;
  c.title = "Silent failures by task: " + (models.empty() ? std::string("(no model)") : models);
  c.subtitle =
      "one point per compressed cell · whiskers: 95% bootstrap CI · shaded: the task lost more than perplexity implies";
  c.x_label = "perplexity-implied quality ppl(full) / ppl (1 = perplexity unchanged)";

  std::map<std::string, int> method_color;  // by method name, in name order
  for (const Comparison& cmp : a.comparisons)
    if (!cmp.is_reference()) method_color.emplace(cmp.method, 0);
  int next = 0;
  for (auto& [method, color] : method_color) color = next++;

  double xmin = 1.0, xmax = 1.0, ymax = 1.0;
  for (const std::string& model : a.models) {
    for (const std::string& task : a.functional_tasks) {
      const Comparison* ref = nullptr;
      for (const Comparison& cmp : a.comparisons)
        if (cmp.model == model && cmp.task == task && cmp.is_reference()) ref = &cmp;
      if (!ref || !(ref->func_comp > 0)) continue;  // no signal: the full cache solves nothing
      ChartPanel panel;
      char head[96];
      std::snprintf(head, sizeof head, " (full %.3f, n %zu)", ref->func_comp, ref->n);
      panel.title = (a.models.size() > 1 ? model + " · " : std::string()) + task + head;
      for (const Comparison& cmp : a.comparisons) {
        if (cmp.model != model || cmp.task != task || cmp.is_reference()) continue;
        if (!(cmp.func_full > 0) || !(cmp.ppl_comp > 0) || !std::isfinite(cmp.ppl_full) ||
            !std::isfinite(cmp.func_comp))
          continue;
        ChartPoint p{cmp.ppl_full / cmp.ppl_comp, cmp.func_comp / cmp.func_full};
        if (cmp.func_ratio_ci.defined()) p.y_lo = cmp.func_ratio_ci.lo, p.y_hi = cmp.func_ratio_ci.hi;
        if (cmp.ppl_quality_ci.defined()) p.x_lo = cmp.ppl_quality_ci.lo, p.x_hi = cmp.ppl_quality_ci.hi;
        const bool moved = std::fabs(p.x - 1.0) > 0.05 || std::fabs(p.y - 1.0) > 0.05;
        ChartSeries s{
            moved ? cmp.method + " " + python_float(cmp.budget) : std::string(), false, method_color[cmp.method], {p}};
        xmin = std::min({xmin, p.x, std::isfinite(p.x_lo) ? p.x_lo : p.x});
        xmax = std::max({xmax, p.x, std::isfinite(p.x_hi) ? p.x_hi : p.x});
        ymax = std::max(ymax, p.y);
        panel.series.push_back(std::move(s));
      }
      c.panels.push_back(std::move(panel));
    }
  }
  // Both axes linear from 0 (or below, for a whisker): the diagonal is y = x.
  c.x_min = std::min(0.0, std::floor(xmin * 10.0) / 10.0);
  c.x_max = std::min(3.0, std::max(1.1, std::ceil(xmax * 1.02 * 10.0) / 10.0));
  c.y_min = -0.04;
  c.y_max = std::min(3.0, std::max(1.1, std::ceil(ymax * 1.05 * 10.0) / 10.0));
  const std::size_t n = c.panels.size();
  c.columns = n <= 1 ? 1 : n <= 4 ? 2 : 3;
  const std::size_t rows = n == 0 ? 1 : (n + std::size_t(c.columns) - 1) / std::size_t(c.columns);
  c.width = 1600;
  c.panels_top = detail::kTitleBlock - detail::kLegendRow;  // no legend: the labels name the points
  c.height = c.panels_top + double(rows) * detail::kSilencePanelHeight + detail::kFooter;
  return c;
}

namespace detail {

inline void set_color(cairo_t* cr, Rgb c) { cairo_set_source_rgb(cr, c.r, c.g, c.b); }

inline void text_at(cairo_t* cr, const std::string& s, double x, double y, double size, bool bold, double align_x) {
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_move_to(cr, x - align_x * e.x_advance, y);
  cairo_show_text(cr, s.c_str());
}

inline double text_width(cairo_t* cr, const std::string& s, double size) {
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  return e.x_advance;
}

inline void series_style(cairo_t* cr, bool dashed, int color) {
  set_color(cr, chart_color(color));
  cairo_set_line_width(cr, kChartSeriesLineWidth);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
  if (dashed) {
    const double d[] = {12.0, 7.0};
    cairo_set_dash(cr, d, 2, 0);
  } else {
    cairo_set_dash(cr, nullptr, 0, 0);
  }
}

inline std::string percent_label(double f) {
  const double p = f * 100.0;
  if (std::fabs(p - std::round(p)) < 1e-9) return fmt("%.0f%%", p);
  return fmt(p >= 1.0 ? "%.3g%%" : "%.2g%%", p);
}

// Powers of two inside [lo, hi] (the budgets a sweep uses), thinned to at most 7 labels.
inline std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> t;
  for (double v = 1.0; v >= lo; v /= 2.0)
    if (v <= hi) t.push_back(v);
  for (double v = 2.0; v <= hi; v *= 2.0) t.push_back(v);
  std::sort(t.begin(), t.end());
  std::size_t step = 1;
  while (t.size() / step > 7) ++step;
  std::vector<double> out;
  for (std::size_t i = 0; i < t.size(); ++i)
    if ((t.size() - 1 - i) % step == 0) out.push_back(t[i]);  // keep 100% among the labels
  return out;
}

// One light grid line from (x0, y0) to (x1, y1), and its tick label at (lx, ly) aligned by `align`.
inline void gridline(cairo_t* cr, double x0, double y0, double x1, double y1, const std::string& label, double lx,
                     double ly, double align) {
  cairo_set_line_width(cr, 1.0);
  set_color(cr, {0.88, 0.88, 0.88});
  cairo_move_to(cr, x0, y0);
  cairo_line_to(cr, x1, y1);
  cairo_stroke(cr);
  set_color(cr, {0.2, 0.2, 0.2});
  text_at(cr, label, lx, ly, 19, false, align);
}

inline void draw_panel(cairo_t* cr, const Chart& c, const ChartPanel& p, double x0, double y0, double w, double h) {
  const double left = x0 + 78, right = x0 + w - 22, top = y0 + 52, bottom = y0 + h - 62;
  auto px = [&](double x) {
    return left + (std::log(x) - std::log(c.x_min)) / (std::log(c.x_max) - std::log(c.x_min)) * (right - left);
  };
  auto py = [&](double y) { return bottom - (y - c.y_min) / (c.y_max - c.y_min) * (bottom - top); };

  set_color(cr, {0.08, 0.08, 0.08});
  text_at(cr, p.title, (left + right) / 2, y0 + 34, 24, true, 0.5);

  // Grid, reference line and ticks.
  cairo_set_dash(cr, nullptr, 0, 0);
  const double ystep = c.y_max > 2.0 ? 0.5 : 0.2;
  for (double y = 0.0; y <= c.y_max + 1e-9; y += ystep)
    gridline(cr, left, py(y), right, py(y), fmt("%.1f", y), left - 10, py(y) + 7, 1.0);
  for (double x : log_ticks(c.x_min, c.x_max))
    gridline(cr, px(x), top, px(x), bottom, percent_label(x), px(x), bottom + 28, 0.5);
  cairo_set_line_width(cr, 1.6);
  set_color(cr, {0.45, 0.45, 0.45});
  const double ref_dash[] = {3.0, 4.0};
  cairo_set_dash(cr, ref_dash, 2, 0);
  cairo_move_to(cr, left, py(1.0));
  cairo_line_to(cr, right, py(1.0));
  cairo_stroke(cr);
  cairo_set_dash(cr, nullptr, 0, 0);
  cairo_set_line_width(cr, 1.2);
  set_color(cr, {0.3, 0.3, 0.3});
  cairo_rectangle(cr, left, top, right - left, bottom - top);
  cairo_stroke(cr);

  if (p.series.empty()) {
    set_color(cr, {0.4, 0.4, 0.4});
    text_at(cr, "no data", (left + right) / 2, (top + bottom) / 2, 20, false, 0.5);
    return;
  }
  cairo_save(cr);
  cairo_rectangle(cr, left, top, right - left, bottom - top);
  cairo_clip(cr);
  for (const ChartSeries& s : p.series) {  // bands first, under every line: filled, never stroked
    std::vector<const ChartPoint*> b;
    for (const ChartPoint& pt : s.points)
      if (std::isfinite(pt.y_lo) && std::isfinite(pt.y_hi)) b.push_back(&pt);
    if (b.size() < 2) continue;
    const Rgb col = chart_color(s.color);
    cairo_set_source_rgba(cr, col.r, col.g, col.b, s.dashed ? 0.10 : 0.16);
    cairo_move_to(cr, px(b.front()->x), py(b.front()->y_hi));
    for (std::size_t i = 1; i < b.size(); ++i) cairo_line_to(cr, px(b[i]->x), py(b[i]->y_hi));
    for (std::size_t i = b.size(); i-- > 0;) cairo_line_to(cr, px(b[i]->x), py(b[i]->y_lo));
    cairo_close_path(cr);
    cairo_fill(cr);
  }
  for (const ChartSeries& s : p.series) {
    series_style(cr, s.dashed, s.color);
    for (std::size_t i = 0; i < s.points.size(); ++i) {
      if (i == 0)
        cairo_move_to(cr, px(s.points[i].x), py(s.points[i].y));
      else
        cairo_line_to(cr, px(s.points[i].x), py(s.points[i].y));
    }
    if (s.points.size() == 1) cairo_rel_line_to(cr, 0, 0);
    cairo_stroke(cr);
    for (const ChartPoint& pt : s.points) {  // markers: filled, so they add no stroked path
      if (s.dashed)
        cairo_rectangle(cr, px(pt.x) - 5, py(pt.y) - 5, 10, 10);
      else
        cairo_arc(cr, px(pt.x), py(pt.y), 5.5, 0, 6.283185307179586);
      cairo_fill(cr);
    }
  }
  cairo_restore(cr);
}

// One silence panel: linear axes, the y = x diagonal with the region below it shaded, every
// point with its whiskers and (when it moved) its label.
inline void draw_silence_panel(cairo_t* cr, const Chart& c, const ChartPanel& p, double x0, double y0, double w,
                               double h) {
  const double left = x0 + 78, right = x0 + w - 22, top = y0 + 52, bottom = y0 + h - 62;
  auto px = [&](double x) { return left + (x - c.x_min) / (c.x_max - c.x_min) * (right - left); };
  auto py = [&](double y) { return bottom - (y - c.y_min) / (c.y_max - c.y_min) * (bottom - top); };

  set_color(cr, {0.08, 0.08, 0.08});
  text_at(cr, p.title, (left + right) / 2, y0 + 34, 22, true, 0.5);

  cairo_save(cr);
  cairo_rectangle(cr, left, top, right - left, bottom - top);
  cairo_clip(cr);
  // Below the diagonal: the task fell further than perplexity implies.
  const double lo = std::min(c.x_min, c.y_min) - 1.0, hi = std::max(c.x_max, c.y_max) + 1.0;
  cairo_set_source_rgba(cr, 0.84, 0.15, 0.16, 0.07);
  cairo_move_to(cr, px(lo), py(lo));
  cairo_line_to(cr, px(hi), py(hi));
  cairo_line_to(cr, px(hi), py(lo));
  cairo_close_path(cr);
  cairo_fill(cr);
  cairo_restore(cr);

  cairo_set_dash(cr, nullptr, 0, 0);
  const double ystep = c.y_max > 2.0 ? 0.5 : 0.2, xstep = c.x_max - c.x_min > 2.0 ? 0.5 : 0.2;
  for (double y = 0.0; y <= c.y_max + 1e-9; y += ystep)
    gridline(cr, left, py(y), right, py(y), fmt("%.1f", y), left - 10, py(y) + 7, 1.0);
  for (double x = std::ceil(c.x_min / xstep - 1e-9) * xstep; x <= c.x_max + 1e-9; x += xstep)
    gridline(cr, px(x), top, px(x), bottom, fmt("%.1f", std::fabs(x) < 1e-9 ? 0.0 : x), px(x), bottom + 28, 0.5);
  cairo_save(cr);
  cairo_rectangle(cr, left, top, right - left, bottom - top);
  cairo_clip(cr);
  cairo_set_line_width(cr, 1.6);
  set_color(cr, {0.45, 0.45, 0.45});
  const double ref_dash[] = {3.0, 4.0};
  cairo_set_dash(cr, ref_dash, 2, 0);
  cairo_move_to(cr, px(lo), py(lo));
  cairo_line_to(cr, px(hi), py(hi));
  cairo_stroke(cr);
  cairo_set_dash(cr, nullptr, 0, 0);
  // Labels go where they overlap no other label: right of the point, else stepped up or down
  // (with a leader line), else left; a label with no free place is left out rather than drawn
  // over another (the table has every cell).
  struct Box {
    double x0, y0, x1, y1;
  };
  std::vector<Box> placed;
  const double font = 15, line = 17;
  auto free_at = [&](const Box& b) {
    if (b.x0 < left + 2 || b.x1 > right - 2 || b.y0 < top + 2 || b.y1 > bottom - 2) return false;
    for (const Box& o : placed)
      if (b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1) return false;
    return true;
  };
  struct Label {
    Box box;
    double cx, cy;  // its point
    const std::string* text;
  };
  std::vector<Label> labels;
  for (const ChartSeries& s : p.series)
    for (const ChartPoint& pt : s.points) {
      if (s.label.empty()) continue;
      const double label_w = text_width(cr, s.label, font), cx = px(pt.x), cy = py(pt.y);
      for (int step = 0; step <= 16; ++step) {
        const double dy = (step % 2 ? -1.0 : 1.0) * double((step + 1) / 2) * line;
        const Box r{cx + 9, cy - 7 + dy - line + 3, cx + 9 + label_w, cy - 7 + dy + 3};
        const Box l{cx - 9 - label_w, r.y0, cx - 9, r.y1};
        if (free_at(r)) {
          placed.push_back(r);
          labels.push_back({r, cx, cy, &s.label});
          break;
        }
        if (free_at(l)) {
          placed.push_back(l);
          labels.push_back({l, cx, cy, &s.label});
          break;
        }
      }
    }
  for (const ChartSeries& s : p.series)
    for (const ChartPoint& pt : s.points) {
      const Rgb col = chart_color(s.color);
      cairo_set_source_rgba(cr, col.r, col.g, col.b, 0.75);
      cairo_set_line_width(cr, 1.5);
      if (std::isfinite(pt.y_lo) && std::isfinite(pt.y_hi)) {
        cairo_move_to(cr, px(pt.x), py(pt.y_lo));
        cairo_line_to(cr, px(pt.x), py(pt.y_hi));
        cairo_stroke(cr);
      }
      if (std::isfinite(pt.x_lo) && std::isfinite(pt.x_hi)) {
        cairo_move_to(cr, px(pt.x_lo), py(pt.y));
        cairo_line_to(cr, px(pt.x_hi), py(pt.y));
        cairo_stroke(cr);
      }
      set_color(cr, col);
      cairo_arc(cr, px(pt.x), py(pt.y), 6.0, 0, 6.283185307179586);
      cairo_fill(cr);
    }
  for (const Label& l : labels) {
    const double ly = l.box.y1 - 3;
    if (std::fabs(ly + 7 - l.cy) > 1.0) {  // moved off its point: a leader line back to it
      cairo_set_source_rgba(cr, 0.3, 0.3, 0.3, 0.6);
      cairo_set_line_width(cr, 0.8);
      cairo_move_to(cr, l.cx, l.cy);
      cairo_line_to(cr, l.box.x0 > l.cx ? l.box.x0 - 2 : l.box.x1 + 2, ly - 5);
      cairo_stroke(cr);
    }
    set_color(cr, {0.1, 0.1, 0.1});
    text_at(cr, *l.text, l.box.x0, ly, font, false, 0.0);
  }
  cairo_restore(cr);
  cairo_set_line_width(cr, 1.2);
  set_color(cr, {0.3, 0.3, 0.3});
  cairo_rectangle(cr, left, top, right - left, bottom - top);
  cairo_stroke(cr);
  if (p.series.empty()) {
    set_color(cr, {0.4, 0.4, 0.4});
    text_at(cr, "no compressed cell with perplexity", (left + right) / 2, (top + bottom) / 2, 20, false, 0.5);
  }
}

}  // namespace detail

// Draws the whole chart on `cr`, in a width × height box at the origin.
inline void draw_chart(cairo_t* cr, const Chart& c) {
  using namespace detail;
  cairo_save(cr);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  set_color(cr, {0.05, 0.05, 0.05});
  text_at(cr, c.title, c.width / 2, 46, 32, true, 0.5);
  set_color(cr, {0.25, 0.25, 0.25});
  text_at(cr, c.subtitle, c.width / 2, 84, 21, false, 0.5);

  // Legend: centred rows between the title and the panels, never over the data.
  const double sample = 46, gap = 34, font = 21;
  for (std::size_t first = 0, row = 0; first < c.legend.size(); first += std::size_t(c.legend_per_row), ++row) {
    const std::size_t last = std::min(c.legend.size(), first + std::size_t(c.legend_per_row));
    double total = -gap;
    for (std::size_t i = first; i < last; ++i) total += sample + 10 + text_width(cr, c.legend[i].label, font) + gap;
    double lx = std::max(kMargin, (c.width - total) / 2);
    const double ly = 124 + double(row) * kLegendRow;
    for (std::size_t i = first; i < last; ++i) {
      const auto& e = c.legend[i];
      series_style(cr, e.dashed, e.color);
      cairo_move_to(cr, lx, ly - 7);
      cairo_line_to(cr, lx + sample, ly - 7);
      cairo_stroke(cr);
      set_color(cr, {0.1, 0.1, 0.1});
      text_at(cr, e.label, lx + sample + 10, ly, font, false, 0.0);
      lx += sample + 10 + text_width(cr, e.label, font) + gap;
    }
  }

  // Panels no wider than 900 (a lone panel stays readable), the grid centred.
  const bool silence = c.kind == ChartKind::Silence;
  const double panel_height = silence ? kSilencePanelHeight : kPanelHeight;
  const double pw = std::min(silence ? 1000.0 : 900.0, (c.width - 2 * kMargin) / c.columns);
  const double gx = (c.width - pw * c.columns) / 2;
  if (c.panels.empty()) {
    set_color(cr, {0.4, 0.4, 0.4});
    text_at(cr,
            silence ? "no functional task the full cache solves" : "no compressed cells to compare with the full cache",
            c.width / 2, c.panels_top + panel_height / 2, 24, false, 0.5);
  }
  for (std::size_t i = 0; i < c.panels.size(); ++i) {
    const double x0 = gx + double(i % std::size_t(c.columns)) * pw;
    const double y0 = c.panels_top + double(i / std::size_t(c.columns)) * panel_height;
    if (silence)
      draw_silence_panel(cr, c, c.panels[i], x0, y0, pw, panel_height);
    else
      draw_panel(cr, c, c.panels[i], x0, y0, pw, panel_height);
  }
  set_color(cr, {0.2, 0.2, 0.2});
  text_at(cr,
          c.x_label + (silence ? "    ·    y: functional accuracy / full cache" : "    ·    y: 1.0 = the full cache"),
          c.width / 2, c.height - 22, 21, false, 0.5);
  cairo_restore(cr);
}

namespace detail {

inline void check_cairo(cairo_status_t st, const std::filesystem::path& path, const char* what) {
  if (st != CAIRO_STATUS_SUCCESS) fail(path.string(), "", std::string(what) + ": " + cairo_status_to_string(st));
}

// cairo's write callback: appends to the std::string behind `closure`.
inline cairo_status_t append_bytes(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace detail

// Cairo writes into memory (its stream API) and the bytes go to disk through AtomicFile: a
// killed or failed report never leaves half an image under the final name.
inline std::string chart_svg(const Chart& c) {
  std::string bytes;
  cairo_surface_t* s = cairo_svg_surface_create_for_stream(&detail::append_bytes, &bytes, c.width, c.height);
  cairo_t* cr = cairo_create(s);
  draw_chart(cr, c);
  const cairo_status_t draw = cairo_status(cr);
  cairo_destroy(cr);
  cairo_surface_finish(s);  // the SVG is written here
  const cairo_status_t st = cairo_surface_status(s);
  cairo_surface_destroy(s);
  detail::check_cairo(draw, "<chart>", "cannot draw the chart");
  detail::check_cairo(st, "<chart>", "cannot encode the SVG");
  return bytes;
}

inline std::string chart_png(const Chart& c) {
  std::string bytes;
  cairo_surface_t* s =
      cairo_image_surface_create(CAIRO_FORMAT_ARGB32, int(std::lround(c.width)), int(std::lround(c.height)));
  cairo_t* cr = cairo_create(s);
  draw_chart(cr, c);
  const cairo_status_t draw = cairo_status(cr);
  cairo_destroy(cr);
  const cairo_status_t st =
      draw == CAIRO_STATUS_SUCCESS ? cairo_surface_write_to_png_stream(s, &detail::append_bytes, &bytes) : draw;
  cairo_surface_destroy(s);
  detail::check_cairo(draw, "<chart>", "cannot draw the chart");
  detail::check_cairo(st, "<chart>", "cannot encode the PNG");
  return bytes;
}

inline void write_chart_svg(const Chart& c, const std::filesystem::path& path) {
  write_file_atomically(path, chart_svg(c));
}
inline void write_chart_png(const Chart& c, const std::filesystem::path& path) {
  write_file_atomically(path, chart_png(c));
}

}  // namespace kvcanary::run
