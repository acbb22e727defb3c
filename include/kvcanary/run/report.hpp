#pragma once
// The report of a results set, written into one directory:
//   RESULTS.md      provenance header, one table per (model, functional task) and pooled, and how
//                   to read SDS and AUROC; when the rows carry warning signals (a sweep with
//                   `warning_signals`), a "What warns?" table after each: every candidate's flip AUROC;
//   divergence.svg  the chart (run/chart.hpp), vector;
//   divergence.png  the same drawing, 1600 px wide;
//   silence.svg/png the silence chart: per task, every compressed cell's functional accuracy
//                   against its perplexity-implied quality (run/chart.hpp build_silence_chart).
// Each table lists the full cache first, then the compressed cells from the most silent failure
// down (SDS, largest first), so the cells this project is about come first.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kvcanary/core/atomic_file.hpp"
#include "kvcanary/core/error.hpp"
#include "kvcanary/run/calibration.hpp"
#include "kvcanary/run/chart.hpp"
#include "kvcanary/run/metrics.hpp"
#include "kvcanary/run/number_text.hpp"
#include "kvcanary/run/row.hpp"

namespace kvcanary::run {

struct ReportFiles {
  std::filesystem::path markdown, svg, png, silence_svg, silence_png;
};

namespace detail {

inline constexpr const char* kDash = "–";

// Three significant figures without exponents, for ratios like SDS that span 0 … 1000s.
inline std::string fmt_sig3(double v) {
  if (!std::isfinite(v)) return kDash;
  const double a = std::fabs(v);
  if (a == 0) return "0";
  if (a >= 100) return fmt("%.0f", v);
  if (a >= 10) return fmt("%.1f", v);
  if (a >= 0.01) return fmt("%.2f", v);
  return fmt("%.2g", v);
}

inline std::string fmt_ppl(double v) {
  if (!std::isfinite(v)) return kDash;
  return v >= 1000 ? fmt("%.0f", v) : v >= 100 ? fmt("%.1f", v) : fmt("%.2f", v);
}

inline std::string fmt_frac(double v) { return std::isfinite(v) ? fmt("%.3f", v) : kDash; }

inline std::string fmt_kv(double v) {
  if (!std::isfinite(v)) return kDash;
  return v * 100 >= 10 ? fmt("%.1f%%", v * 100) : fmt("%.2f%%", v * 100);
}

// Relative change in percent; undefined against a zero reference.
inline std::string fmt_rel(double comp, double full) {
  if (!std::isfinite(comp) || !std::isfinite(full) || full == 0) return kDash;
  const double r = (comp - full) / full * 100.0;
  return fmt("%+.1f%%", std::fabs(r) < 0.05 ? 0.0 : r);
}

inline std::string fmt_ci(const Interval& iv, std::string (*f)(double)) {
  return iv.defined() ? " [" + f(iv.lo) + ", " + f(iv.hi) + "]" : std::string();
}

// SDS with what its value means: at the eps floor of the denominator the ratio is unbounded and
// the printed value only a lower bound, so it is marked "≥" with the reason.
inline std::string fmt_sds(const Comparison& c) {
  if (c.is_reference()) return "reference";
  const SdsResult& s = c.sds;
  if (!std::isfinite(s.sds)) return kDash;
  std::string v;
  if (s.rel_func_drop == 0)
    v = "0 (no loss)";
  else if (s.ppl_clamped)
    v = "≥" + fmt_sig3(s.sds) + (c.ppl_comp < c.ppl_full ? " (ppl better)" : " (ppl flat)");
  else
    v = fmt_sig3(s.sds);
  return v + fmt_ci(s.ci, fmt_sig3);
}

inline std::string fmt_auroc(const Comparison& c) {
  const AurocResult& a = c.auroc;
  if (c.is_reference()) return kDash;
  const std::string counts = " (" + std::to_string(a.n_flips) + "/" + std::to_string(a.n_kept) + ")";
  if (!std::isfinite(a.value)) return std::string(kDash) + counts;
  auto f2 = [](double v) { return fmt("%.2f", v); };
  return f2(a.value) + (a.ci.defined() ? " [" + f2(a.ci.lo) + ", " + f2(a.ci.hi) + "]" : "") + counts;
}

// One warning's AUROC with its interval; "n/a" when undefined (no flips, no survivors, or no
// sample carries the signal).
inline std::string fmt_warn(const AurocResult& a) {
  if (!std::isfinite(a.value)) return "n/a";
  auto f2 = [](double v) { return fmt("%.2f", v); };
  return f2(a.value) + (a.ci.defined() ? " [" + f2(a.ci.lo) + ", " + f2(a.ci.hi) + "]" : "");
}

inline void warn_table(std::string& md, const std::vector<const Comparison*>& rows, const WarnPool* pool) {
  md += "| method | budget | flips/kept |";
  std::string rule = "|---|---:|---:|";
  // Appended piece by piece: GCC 12 flags `" " + std::string(...)` here with a spurious -Wrestrict.
  for (const WarnSignalInfo& w : warn_signals()) {
    md += ' ';
    md += w.column;
    md += " |";
    rule += "---|";
  }
  md += '\n';
  md += rule;
  md += '\n';
  auto cells = [&](const WarnAurocs& warn) {
    std::string out;
    for (const AurocResult& a : warn) {
      out += ' ';
      out += fmt_warn(a);
      out += " |";
    }
    return out;
  };
  for (const Comparison* c : rows) {
    if (c->is_reference()) continue;
    md += "| " + c->method + " | " + python_float(c->budget) + " | " + std::to_string(c->warn_flips) + "/" +
          std::to_string(c->warn_kept) + " |" + cells(c->warn) + "\n";
  }
  if (pool)
    md += "| **all compressed cells** (" + std::to_string(pool->cells) + ") | – | " + std::to_string(pool->flips) +
          "/" + std::to_string(pool->kept) + " |" + cells(pool->warn) + "\n";
}

inline std::string fmt_seconds(double s) {
  if (s >= 3600) return fmt("%.2f h", s / 3600) + " (" + fmt("%.0f", s) + " s)";
  if (s >= 60) return fmt("%.1f min", s / 60) + " (" + fmt("%.0f", s) + " s)";
  return fmt("%.2f s", s);
}

inline std::string join(const std::vector<std::string>& v, const std::string& sep = ", ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + "`" + s + "`";
  return out.empty() ? kDash : out;
}

// The table order: the reference first, then by SDS from the most silent failure down; cells
// that lost nothing (SDS 0) and those without an SDS last, each group by method and budget.
inline void sort_by_silence(std::vector<const Comparison*>& rows) {
  auto group = [](const Comparison* c) {
    if (c->is_reference()) return 0;
    if (!std::isfinite(c->sds.sds)) return 3;
    return c->sds.rel_func_drop > 0 ? 1 : 2;
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const Comparison* x, const Comparison* y) {
    const int gx = group(x), gy = group(y);
    if (gx != gy) return gx < gy;
    if (gx == 1 && x->sds.sds != y->sds.sds) return x->sds.sds > y->sds.sds;
    return false;  // stable: the analysis' (method, budget) order
  });
}

inline void table(std::string& md, const std::vector<const Comparison*>& rows) {
  md +=
      "| method | budget | KV kept | functional | perplexity | gold ppl | Δfunctional | Δppl | SDS [95% CI] | "
      "AUROC [95% CI] (flips/kept) | n |\n";
  md += "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|\n";
  for (const Comparison* c : rows) {
    std::string n = std::to_string(c->n);
    if (c->sds.n_unpaired) n += " (" + std::to_string(c->sds.n_unpaired) + " unpaired)";
    md += "| " + c->method + " | " + python_float(c->budget) + " | " + fmt_kv(c->kv_fraction) + " | " +
          fmt_frac(c->func_comp) + " | " + fmt_ppl(c->ppl_comp) + " | " + fmt_ppl(c->gold_ppl_comp) + " | " +
          fmt_rel(c->func_comp, c->func_full) + " | " + fmt_rel(c->ppl_comp, c->ppl_full) + " | " + fmt_sds(*c) +
          " | " + fmt_auroc(*c) + " | " + n + " |\n";
  }
}

}  // namespace detail

// RESULTS.md as a string; `chart` is the image it embeds (relative to the file).
inline std::string results_markdown(const Analysis& a, const std::string& chart = "divergence.png",
                                    const std::string& silence_chart = "silence.png") {
  using namespace detail;
  std::string md = "# kvcanary results\n\n";
  md += "- model(s): " + join(a.models) + "\n";
  md += "- model hash: " + join(a.model_hashes) + "\n";
  md += "- config hash(es): " + join(a.config_hashes) + "\n";
  md += "- program version: " + join(a.program_versions) + "\n";
  md += "- rows: " + std::to_string(a.n_rows) + " (" + std::to_string(a.n_functional_rows) + " functional, " +
        std::to_string(a.n_perplexity_rows) + " perplexity) in " + std::to_string(a.cells.size()) + " cells\n";
  md += "- compute time: " + fmt_seconds(a.total_latency_s) + " (Σ latency_s)\n";
  if (a.n_prototype_rows)
    md += "- " + std::to_string(a.n_prototype_rows) +
          " rows carry no program_version (written by the Python prototype): they have no measured budget, so their "
          "KV kept is the nominal budget, and no gold NLL, so no gold ppl or AUROC\n";
  md += "- functional tasks: " + join(a.functional_tasks) + "; perplexity from: " + join(a.perplexity_tasks) + "\n";
  md += "- intervals: " + fmt("%.0f%%", a.options.level * 100) +
        " percentile bootstrap, B = " + std::to_string(a.options.bootstrap) + ", seed " +
        std::to_string(a.options.seed) + "; SDS eps = " + fmt("%g", a.options.eps) + "\n\n";
  md += "![functional accuracy and perplexity-implied quality against KV memory retained](" + chart + ")\n\n";
  md += "![per task: functional accuracy against perplexity-implied quality, one point per compressed cell](" +
        silence_chart + ")\n\n";

  for (const std::string& model : a.models) {
    if (a.models.size() > 1) md += "## " + model + "\n\n";
    std::vector<std::string> tasks;
    for (const Comparison& c : a.comparisons)
      if (c.model == model && std::find(tasks.begin(), tasks.end(), c.task) == tasks.end()) tasks.push_back(c.task);
    const std::size_t n_tasks = std::count_if(tasks.begin(), tasks.end(), [](auto& t) { return t != kPooledTask; });
    for (const std::string& task : tasks) {
      if (task == kPooledTask && n_tasks < 2) continue;  // pooled over one task is that task
      std::vector<const Comparison*> rows;
      for (const Comparison& c : a.comparisons)
        if (c.model == model && c.task == task) rows.push_back(&c);
      sort_by_silence(rows);
      md += std::string(a.models.size() > 1 ? "### " : "## ");
      if (task == kPooledTask)
        md += "Pooled over " + join(rows.front()->tasks) + " (mean of task accuracies)\n\n";
      else
        md += "Task `" + task + "`\n\n";
      table(md, rows);
      md += "\n";
      if (a.has_warning_signals) {
        const WarnPool* pool = nullptr;
        for (const WarnPool& p : a.warn_pools)
          if (p.model == model && p.task == task) pool = &p;
        md += "What warns? Flip AUROC [95% CI] of each candidate signal (larger predictor = warns):\n\n";
        warn_table(md, rows, pool);
        md += "\n";
      }
    }
  }

  if (const std::vector<NoiseFloor> floors = noise_floors(a.cells); !floors.empty()) {
    md += "## Calibration: the full cache's own noise floor\n\n";
    md +=
        "The full cache on prompts that differ only where it should not matter (task `NAME@VARIANT`, "
        "run/calibration.hpp): the share of paired samples whose verdict flips. A compressed cell's drop "
        "is news only beyond it.\n\n";
    md += "| task | variants | paired | flips | flip rate [95% Wilson] | accuracy |\n|---|---|---:|---:|---|---|\n";
    for (const NoiseFloor& f : floors) {
      const auto name = [](const std::string& v) { return v.empty() ? std::string("(plain)") : "@" + v; };
      md += "| " + (a.models.size() > 1 ? f.model + " " : "") + f.task + " | " + name(f.variant_a) + " vs " +
            name(f.variant_b) + " | " + std::to_string(f.paired) + " | " + std::to_string(f.flips) + " | " +
            fmt_frac(f.rate()) + fmt_ci(f.ci, fmt_frac) + " | " + fmt_frac(f.accuracy_a) + " / " +
            fmt_frac(f.accuracy_b) + " |\n";
    }
    md += "\n";
  }

  md += R"md(## How to read this

- **Order**: the full cache, then the compressed cells from the most silent failure (largest
  SDS) down; cells that lost nothing, and those without an SDS, last.
- **The charts**: divergence.png draws each method's tasks (solid) and perplexity (dashed)
  against the KV kept, with 95 % bootstrap bands; silence.png puts every compressed cell of a
  task at (perplexity-implied quality, functional accuracy / full), with whiskers: on the
  diagonal perplexity fell as much as the task; in the shaded region below it the task lost
  more than perplexity shows.
- **KV kept** is the measured fraction of the full cache's bytes the compressed cache held
  (mean `budget_measured`), not the nominal budget. **functional** is the task's pass rate,
  **perplexity** the cell's perplexity on the perplexity corpus (exp of Σ NLL / Σ tokens),
  **gold ppl** the perplexity of the reference answers under the same cache. Δ columns are
  relative changes against the full cache of the same model and task.
- **SDS** (silent-degradation score) = rel_func_drop / max(rel_ppl_rise, 0.001), with
  rel_func_drop = max(0, (func_full − func) / func_full) and rel_ppl_rise =
  max(0, (ppl − ppl_full) / ppl_full). It is the functional loss per unit of perplexity warning:
  near 0, nothing was lost; around 1, perplexity rose as much as the task fell; well above 1,
  the task broke while perplexity stayed quiet. "≥X (ppl flat)" means perplexity did not rise at
  all (the denominator sits at its 0.001 floor), so the true ratio is unbounded and X a lower
  bound. The interval resamples sample ids with replacement, the same ids under both caches.
- **AUROC** asks, sample by sample: among the samples the full cache solves, does the rise in
  the gold answer's NLL (compressed − full) rank the ones compression breaks (flips) above the
  ones it keeps? 1.0 = perplexity-style signals flag every flip first, 0.5 = no better than
  chance, below 0.5 = they point the wrong way. "–" means there were no flips (or no survivors)
  to rank; (flips/kept) gives the class sizes, and with few flips the interval is wide.
)md";
  if (a.has_warning_signals)
    md += R"md(- **What warns?** The same flip AUROC for every candidate warning, each oriented so that a
  larger value warns: held-out ppl = the cell's relative held-out perplexity rise (one value per
  cell, so defined only in the "all compressed cells" row, which ranks every compressed
  (cell, sample) together); gold ppl = the gold-answer NLL rise; agree_top1 = 1 − the share of
  positions where the compressed cache's top-1 token equals the full cache's own generation
  (teacher-forced under both caches); first_disagree = minus the first position where they differ
  (no difference: the generation's length); kl_full = mean KL(full ‖ compressed) of the
  next-token distributions on that path; evicted_attention = the last prompt query's attention
  mass on the rows eviction removed; kv_rel_error_k/_v = relative Frobenius reconstruction error
  of the quantized K/V. "n/a": no flips, no survivors, or no row carries the signal.
)md";
  return md;
}

namespace detail {

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  write_file_atomically(path, text);
}

}  // namespace detail

inline ReportFiles write_report(const Analysis& a, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail(dir.string(), "", "cannot create the report directory: " + ec.message());
  ReportFiles f{dir / "RESULTS.md", dir / "divergence.svg", dir / "divergence.png", dir / "silence.svg",
                dir / "silence.png"};
  const Chart chart = build_chart(a);
  write_chart_svg(chart, f.svg);
  write_chart_png(chart, f.png);
  const Chart silence = build_silence_chart(a);
  write_chart_svg(silence, f.silence_svg);
  write_chart_png(silence, f.silence_png);
  detail::write_text(f.markdown, results_markdown(a, f.png.filename().string(), f.silence_png.filename().string()));
  return f;
}

inline ReportFiles write_report(const std::vector<Row>& rows, const std::filesystem::path& dir,
                                const MetricsOptions& options = {}) {
  return write_report(analyze(rows, options), dir);
}

}  // namespace kvcanary::run
