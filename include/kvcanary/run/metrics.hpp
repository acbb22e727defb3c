#pragma once
// From result rows to the numbers the report shows: per-cell aggregates, the silent-degradation
// score (SDS) of every compressed (model, method, budget) against the full cache, per functional
// task and pooled, with paired-bootstrap intervals, and the "does perplexity warn?" AUROC.
//
// Everything here is a pure function of the rows: no I/O, no clock, no global state. Bootstrap
// draws come from a std::mt19937_64 seeded afresh (options.seed) for every statistic, and indices
// are derived from its raw 64-bit output (not std::uniform_int_distribution, whose mapping is
// implementation-defined), so a report is byte-identical across runs, call orders and standard
// libraries.
//
// Definitions kept exactly as the Python prototype has them (eps = 1e-3):
//   rel_func_drop = max(0, (func_full - func_comp) / max(func_full, eps))
//   rel_ppl_rise  = max(0, (ppl_comp - ppl_full) / max(ppl_full, eps))
//   SDS           = rel_func_drop / max(rel_ppl_rise, eps)
// SDS is "how much function was lost per unit of perplexity that warned about it". Both parts are
// one-sided on purpose: a compressed cache that does better on the task is not degradation, and a
// perplexity that falls does not warn. When perplexity does not rise (rel_ppl_rise < eps) the
// denominator is the eps floor, so SDS = rel_func_drop / eps is a lower bound of an unbounded
// ratio; `ppl_clamped` says so, and the report prints it as such.
//
// What warns, if perplexity doesn't? (issue 20; docs/METRICS.md). Next to the gold-answer NLL
// rise, every cheap signal a sweep wrote on the compressed rows (run/sweep.hpp `warning_signals`) gets the
// same flip AUROC: agreement with the full cache's own generation (top-1, first disagreement,
// KL), the attention mass evicted, the K/V reconstruction error — each oriented so that a higher
// predictor means "warns" — and held-out perplexity, which is one number per cell and so can only
// rank flips across cells: it is scored in each task's "all compressed cells" pool.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/run/row.hpp"

namespace kvcanary::run {

inline constexpr double kSdsEps = 1e-3;
inline constexpr const char* kFullMethod = "full";
inline constexpr const char* kPooledTask = "pooled";

struct MetricsOptions {
  std::size_t bootstrap = 2000;  // resamples per interval; 0 = no intervals
  std::uint64_t seed = 12345;
  double level = 0.95;  // two-sided percentile interval
  double eps = kSdsEps;
};

struct Interval {
  double lo = std::numeric_limits<double>::quiet_NaN();
  double hi = std::numeric_limits<double>::quiet_NaN();
  bool defined() const { return std::isfinite(lo) && std::isfinite(hi); }
};

// ---------------------------------------------------------------------------------------------
// Scalar definitions

struct SdsParts {
  double rel_func_drop = std::numeric_limits<double>::quiet_NaN();
  double rel_ppl_rise = std::numeric_limits<double>::quiet_NaN();
  double sds = std::numeric_limits<double>::quiet_NaN();
  bool ppl_clamped = false;  // rel_ppl_rise < eps: SDS is rel_func_drop / eps, a lower bound
};

inline SdsParts sds_parts(double func_full, double func_comp, double ppl_full, double ppl_comp, double eps = kSdsEps) {
  SdsParts p;
  if (!std::isfinite(func_full) || !std::isfinite(func_comp) || !std::isfinite(ppl_full) || !std::isfinite(ppl_comp))
    return p;
  p.rel_func_drop = std::max(0.0, (func_full - func_comp) / std::max(func_full, eps));
  p.rel_ppl_rise = std::max(0.0, (ppl_comp - ppl_full) / std::max(ppl_full, eps));
  p.ppl_clamped = p.rel_ppl_rise < eps;
  p.sds = p.rel_func_drop / std::max(p.rel_ppl_rise, eps);
  return p;
}

inline double sds(double func_full, double func_comp, double ppl_full, double ppl_comp, double eps = kSdsEps) {
  return sds_parts(func_full, func_comp, ppl_full, ppl_comp, eps).sds;
}

// Area under the ROC curve of `predictor` for telling positives from negatives, as the
// Mann-Whitney statistic: the probability that a random positive scores above a random negative,
// ties counting 1/2. Computed from mid-ranks (O(n log n)) so a bootstrap of it stays cheap.
// NaN when either class is empty: with no flips (or no survivors) there is nothing to warn about.
inline double auroc(const std::vector<double>& positives, const std::vector<double>& negatives) {
  const std::size_t np = positives.size(), nn = negatives.size();
  if (np == 0 || nn == 0) return std::numeric_limits<double>::quiet_NaN();
  std::vector<std::pair<double, bool>> all;
  all.reserve(np + nn);
  for (double v : positives) all.emplace_back(v, true);
  for (double v : negatives) all.emplace_back(v, false);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  double rank_sum = 0.0;  // sum of the positives' 1-based mid-ranks
  for (std::size_t i = 0; i < all.size();) {
    std::size_t j = i;
    while (j < all.size() && all[j].first == all[i].first) ++j;
    const double mid = 0.5 * double(i + 1 + j);  // mean of ranks i+1 .. j
    for (std::size_t k = i; k < j; ++k)
      if (all[k].second) rank_sum += mid;
    i = j;
  }
  const double u = rank_sum - double(np) * double(np + 1) / 2.0;
  return u / (double(np) * double(nn));
}

// Percentile interval (linear interpolation between order statistics, numpy's default) of the
// finite values; undefined when none is finite.
inline Interval percentile_interval(std::vector<double> values, double level = 0.95) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }), values.end());
  Interval iv;
  if (values.empty()) return iv;
  std::sort(values.begin(), values.end());
  auto q = [&](double p) {
    const double h = (double(values.size()) - 1.0) * p;
    const std::size_t lo = static_cast<std::size_t>(std::floor(h));
    const std::size_t hi = std::min(lo + 1, values.size() - 1);
    return values[lo] + (h - double(lo)) * (values[hi] - values[lo]);
  };
  const double a = (1.0 - level) / 2.0;
  iv.lo = q(a);
  iv.hi = q(1.0 - a);
  return iv;
}

namespace detail {

// A uniform index in [0, n) from the generator's raw output: 53 random bits scaled, the same
// on every platform (std::uniform_int_distribution is not specified bit-for-bit).
inline std::size_t draw_index(std::mt19937_64& rng, std::size_t n) {
  const double u = double(rng() >> 11) * 0x1.0p-53;
  return std::min(n - 1, static_cast<std::size_t>(u * double(n)));
}

inline double nan() { return std::numeric_limits<double>::quiet_NaN(); }

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Cells

// What one row contributes, by sample_id.
struct Sample {
  double functional = detail::nan();  // 0/1 verdict
  double gold_nll = detail::nan();    // mean NLL per gold token under this cell's cache
  double perplexity = detail::nan();  // perplexity rows
  double nll_sum = detail::nan();
  double n_scored = detail::nan();
  // Warning signals (compressed functional rows of a sweep with `warning_signals`; NaN when absent).
  double agree_top1 = detail::nan(), first_disagree = detail::nan(), kl_full = detail::nan();
  double evicted_attention = detail::nan(), kv_rel_error_k = detail::nan(), kv_rel_error_v = detail::nan();
};

// The candidate warnings of a functional flip, in the report's column order. Each predictor is
// oriented so that larger = "warns" (an AUROC above 0.5 means the signal ranks flips first):
enum class Warn : std::size_t {
  HeldOutPpl,         // (ppl − ppl_full) / ppl_full of the cell's held-out perplexity: one value per cell
  GoldNll,            // gold_nll(compressed) − gold_nll(full): the existing per-sample AUROC
  Disagreement,       // 1 − agree_top1
  EarlyDisagreement,  // −first_disagree: the earlier the compressed cache leaves the full one's path
  Kl,                 // kl_full
  EvictedAttention,   // evicted_attention
  KvErrorK,           // kv_rel_error_k
  KvErrorV,           // kv_rel_error_v
};
inline constexpr std::size_t kWarnSignals = 8;

struct WarnSignalInfo {
  const char* column;     // the report's column head
  const char* predictor;  // what is ranked, oriented so that larger warns
};

inline const std::array<WarnSignalInfo, kWarnSignals>& warn_signals() {
  static const std::array<WarnSignalInfo, kWarnSignals> info = {{
      {"held-out ppl", "relative held-out perplexity rise of the cell"},
      {"gold ppl", "gold_nll rise (compressed − full)"},
      {"agree_top1", "1 − agree_top1"},
      {"first_disagree", "−first_disagree"},
      {"kl_full", "kl_full"},
      {"evicted_attention", "evicted_attention"},
      {"kv_rel_error_k", "kv_rel_error_k"},
      {"kv_rel_error_v", "kv_rel_error_v"},
  }};
  return info;
}

inline bool has_warning_signals(const Sample& s) {
  return std::isfinite(s.agree_top1) || std::isfinite(s.evicted_attention) || std::isfinite(s.kv_rel_error_k);
}

// The functional verdict of a row: the "functional" score; a prototype code row has only
// "pass@1", which is the same verdict under its old name.
inline double functional_score(const Row& r) {
  auto it = r.scores.find("functional");
  if (it == r.scores.end()) it = r.scores.find("pass@1");
  return it == r.scores.end() ? detail::nan() : it->second;
}

inline double score_or_nan(const Row& r, const char* name) {
  auto it = r.scores.find(name);
  return it == r.scores.end() ? detail::nan() : it->second;
}

// Perplexity of a set of perplexity samples: exp of the token-weighted mean NLL when every sample
// carries nll_sum and n_scored (a long document must weigh more than a short one); else, for rows
// written without them (the prototype's), the mean of the rows' perplexities.
template <class It>
double pooled_perplexity(It first, It last) {
  double nll = 0.0, tokens = 0.0, ppl_sum = 0.0;
  std::size_t n = 0, n_ppl = 0;
  bool weighted = true;
  for (It it = first; it != last; ++it) {
    const Sample& s = **it;
    ++n;
    if (std::isfinite(s.nll_sum) && std::isfinite(s.n_scored) && s.n_scored > 0) {
      nll += s.nll_sum;
      tokens += s.n_scored;
    } else {
      weighted = false;
    }
    if (std::isfinite(s.perplexity)) {
      ppl_sum += s.perplexity;
      ++n_ppl;
    }
  }
  if (n == 0) return detail::nan();
  if (weighted && tokens > 0) return std::exp(nll / tokens);
  return n_ppl ? ppl_sum / double(n_ppl) : detail::nan();
}

struct Cell {
  std::string cell_id, model, method, task, policy;
  double budget = 1.0;  // nominal
  TaskKind kind = TaskKind::Functional;
  std::size_t n = 0;                         // rows (= samples)
  double functional = detail::nan();         // mean verdict (functional cells)
  double perplexity = detail::nan();         // exp(Σ nll_sum / Σ n_scored) (perplexity cells)
  double gold_ppl = detail::nan();           // exp(mean gold_nll) (functional cells)
  double budget_measured = detail::nan();    // mean measured KV fraction retained
  double kv_bytes_retained = detail::nan();  // mean
  double latency_s = 0.0;                    // Σ
  std::map<std::string, Sample> samples;     // by sample_id
};

// Groups rows into cells by cell_id. A cell's rows must agree on model, method, budget, task and
// kind, and a sample may appear once per cell (merge de-duplicates shards first): anything else is
// an Error naming the cell, since averaging it would hide a mixed-up input.
inline std::vector<Cell> build_cells(const std::vector<Row>& rows) {
  std::map<std::string, Cell> by_id;
  for (const Row& r : rows) {
    auto [it, fresh] = by_id.try_emplace(r.cell_id);
    Cell& c = it->second;
    if (fresh) {
      c.cell_id = r.cell_id;
      c.model = r.model;
      c.method = r.method;
      c.task = r.task;
      c.policy = r.policy;
      c.budget = r.budget;
      c.kind = r.kind;
    } else if (c.model != r.model || c.method != r.method || c.task != r.task || c.budget != r.budget ||
               c.kind != r.kind) {
      fail("rows", "cell_id " + r.cell_id,
           "sample '" + r.sample_id + "' disagrees with the cell's model/method/budget/task/kind");
    }
    Sample s;
    s.functional = functional_score(r);
    s.gold_nll = score_or_nan(r, "gold_nll");
    s.perplexity = score_or_nan(r, "perplexity");
    s.nll_sum = score_or_nan(r, "nll_sum");
    s.n_scored = score_or_nan(r, "n_scored");
    s.agree_top1 = score_or_nan(r, "agree_top1");
    s.first_disagree = score_or_nan(r, "first_disagree");
    s.kl_full = score_or_nan(r, "kl_full");
    s.evicted_attention = score_or_nan(r, "evicted_attention");
    s.kv_rel_error_k = score_or_nan(r, "kv_rel_error_k");
    s.kv_rel_error_v = score_or_nan(r, "kv_rel_error_v");
    if (!c.samples.emplace(r.sample_id, s).second)
      fail("rows", "cell_id " + r.cell_id, "sample '" + r.sample_id + "' appears twice (merge the shards first)");
    ++c.n;
    c.latency_s += r.latency_s;
    c.budget_measured = (std::isnan(c.budget_measured) ? 0.0 : c.budget_measured) + r.budget_measured;
    c.kv_bytes_retained = (std::isnan(c.kv_bytes_retained) ? 0.0 : c.kv_bytes_retained) + r.kv_bytes_retained;
  }
  std::vector<Cell> cells;
  cells.reserve(by_id.size());
  for (auto& [id, c] : by_id) {
    c.budget_measured /= double(c.n);
    c.kv_bytes_retained /= double(c.n);
    double f = 0.0, g = 0.0;
    std::size_t nf = 0, ng = 0;
    std::vector<const Sample*> ptrs;
    for (const auto& [sid, s] : c.samples) {
      if (std::isfinite(s.functional)) f += s.functional, ++nf;
      if (std::isfinite(s.gold_nll)) g += s.gold_nll, ++ng;
      ptrs.push_back(&s);
    }
    if (c.kind == TaskKind::Functional) {
      if (nf) c.functional = f / double(nf);
      if (ng) c.gold_ppl = std::exp(g / double(ng));  // exp of the mean NLL: the per-token geometric mean
    } else {
      c.perplexity = pooled_perplexity(ptrs.begin(), ptrs.end());
    }
    cells.push_back(std::move(c));
  }
  return cells;
}

// ---------------------------------------------------------------------------------------------
// Comparisons against the full cache

struct SdsResult : SdsParts {
  Interval ci;
  std::size_t n_paired = 0, n_unpaired = 0;          // functional samples in both cells / in one only
  std::size_t n_ppl_paired = 0, n_ppl_unpaired = 0;  // perplexity samples likewise
};

// Among samples the full cache gets right, does the rise in gold-answer NLL predict which ones
// the compressed cache gets wrong? label = flip, predictor = gold_nll(comp) − gold_nll(full).
struct AurocResult {
  double value = detail::nan();
  Interval ci;
  std::size_t n_flips = 0, n_kept = 0;  // kept: pass under full, paired, both gold_nll finite
};

using WarnAurocs = std::array<AurocResult, kWarnSignals>;  // indexed by Warn

// One compressed (model, method, budget) against its full reference on one functional task, or
// pooled over the functional tasks (task == kPooledTask). Also made for method "full" itself
// (SDS 0, no flips), so a table can show the reference row.
struct Comparison {
  std::string model, method, task;
  double budget = 1.0;
  std::vector<std::string> tasks;              // the functional tasks it covers
  std::string cell_id, ref_cell_id;            // per-task comparisons
  std::size_t n = 0;                           // compressed functional samples
  double kv_fraction = detail::nan();          // mean budget_measured of the compressed functional rows
  double ref_kv_fraction = detail::nan();      // ... of the full reference rows
  double ppl_kv_fraction = detail::nan();      // ... of the compressed perplexity rows
  double ppl_ref_kv_fraction = detail::nan();  // ... of the full perplexity rows
  double func_full = detail::nan(), func_comp = detail::nan();
  double ppl_full = detail::nan(), ppl_comp = detail::nan();
  double gold_ppl_full = detail::nan(), gold_ppl_comp = detail::nan();
  std::vector<std::string> ppl_tasks;  // perplexity tasks the perplexity came from
  SdsResult sds;
  Interval func_ratio_ci;   // paired bootstrap of func_comp / func_full
  Interval ppl_quality_ci;  // paired bootstrap of ppl_full / ppl_comp
  AurocResult auroc;
  // Every candidate warning's flip AUROC (Warn order; kept: pass under full, paired, the
  // predictor finite). HeldOutPpl is undefined here — one value per cell ranks nothing — and
  // defined in the task's "all compressed cells" pool (Analysis::warn_pools). warn[GoldNll]
  // equals `auroc`.
  WarnAurocs warn;
  std::size_t warn_flips = 0, warn_kept = 0;  // samples passing under full and paired: flips among them
  bool is_reference() const { return method == kFullMethod; }
};

// Every compressed cell of a (model, functional task) — or of a model pooled over its tasks —
// in one ranking: a (cell, sample) pair is one unit, predictors as in Comparison::warn. The only
// place held-out perplexity can warn sample by sample, since it differs only between cells.
struct WarnPool {
  std::string model, task;  // task: a functional task or kPooledTask
  std::size_t cells = 0;
  std::size_t flips = 0, kept = 0;
  WarnAurocs warn;
};

struct Analysis {
  MetricsOptions options;
  std::vector<Cell> cells;              // by cell_id
  std::vector<Comparison> comparisons;  // by (model, task, method (full first), budget desc); pooled after the tasks
  std::vector<WarnPool> warn_pools;     // by (model, task), pooled after the tasks
  bool has_warning_signals = false;     // some compressed row carries a warning signal
  std::vector<std::string> models, functional_tasks, perplexity_tasks;
  std::vector<std::string> model_hashes, config_hashes, program_versions;  // distinct, non-empty
  std::size_t n_rows = 0, n_functional_rows = 0, n_perplexity_rows = 0;
  std::size_t n_prototype_rows = 0;  // rows without program_version: the prototype's, no measured budget
  double total_latency_s = 0.0;
};

namespace detail {

// The perplexity side of one (model, method, budget): every perplexity cell of the triple,
// samples keyed "task\nsample_id" so documents of different corpora never pair up.
struct PplGroup {
  std::map<std::string, const Sample*> samples;
  std::vector<std::string> tasks;
  double budget_measured = nan();
  double perplexity = nan();
};

using Triple = std::tuple<std::string, std::string, double>;

inline std::map<Triple, PplGroup> perplexity_groups(const std::vector<Cell>& cells) {
  std::map<Triple, PplGroup> groups;
  std::map<Triple, std::pair<double, std::size_t>> measured;
  for (const Cell& c : cells) {
    if (c.kind != TaskKind::Perplexity) continue;
    const Triple key{c.model, c.method, c.budget};
    PplGroup& g = groups[key];
    g.tasks.push_back(c.task);
    for (const auto& [sid, s] : c.samples) g.samples[c.task + "\n" + sid] = &s;
    auto& m = measured[key];
    m.first += c.budget_measured * double(c.n);
    m.second += c.n;
  }
  for (auto& [key, g] : groups) {
    std::vector<const Sample*> ptrs;
    for (const auto& [id, s] : g.samples) ptrs.push_back(s);
    g.perplexity = pooled_perplexity(ptrs.begin(), ptrs.end());
    const auto& m = measured[key];
    if (m.second) g.budget_measured = m.first / double(m.second);
  }
  return groups;
}

struct PplPairs {
  std::vector<const Sample*> full, comp;  // index i: the same document under both caches
  std::size_t unpaired = 0;
};

inline PplPairs pair_ppl(const PplGroup* full, const PplGroup* comp) {
  PplPairs p;
  if (!full || !comp) return p;
  for (const auto& [id, s] : comp->samples) {
    auto it = full->samples.find(id);
    if (it == full->samples.end())
      ++p.unpaired;
    else
      p.full.push_back(it->second), p.comp.push_back(s);
  }
  for (const auto& [id, s] : full->samples)
    if (!comp->samples.count(id)) ++p.unpaired;
  return p;
}

// One functional task's paired verdicts and gold NLLs.
struct FuncPairs {
  std::vector<double> full, comp;  // verdicts of samples with a verdict in both cells
  std::size_t unpaired = 0;
  std::vector<double> flip_pred, keep_pred;                            // AUROC classes among samples passing under full
  std::array<std::vector<double>, kWarnSignals> warn_flip, warn_keep;  // the same, per warning (finite predictors)
  std::size_t warn_flips = 0, warn_kept = 0;
};

// The warnings' predictors of one sample passing under full, oriented so that larger warns.
inline std::array<double, kWarnSignals> warn_predictors(const Sample& f, const Sample& s, double ppl_rise) {
  std::array<double, kWarnSignals> p;
  p[std::size_t(Warn::HeldOutPpl)] = ppl_rise;
  p[std::size_t(Warn::GoldNll)] = s.gold_nll - f.gold_nll;
  p[std::size_t(Warn::Disagreement)] = 1.0 - s.agree_top1;
  p[std::size_t(Warn::EarlyDisagreement)] = -s.first_disagree;
  p[std::size_t(Warn::Kl)] = s.kl_full;
  p[std::size_t(Warn::EvictedAttention)] = s.evicted_attention;
  p[std::size_t(Warn::KvErrorK)] = s.kv_rel_error_k;
  p[std::size_t(Warn::KvErrorV)] = s.kv_rel_error_v;
  return p;
}

// `ppl_rise`: the cell's relative held-out perplexity rise (NaN when there is none).
inline FuncPairs pair_functional(const Cell& full, const Cell& comp, double ppl_rise = nan()) {
  FuncPairs p;
  for (const auto& [id, s] : comp.samples) {
    auto it = full.samples.find(id);
    if (it == full.samples.end() || !std::isfinite(it->second.functional) || !std::isfinite(s.functional)) {
      ++p.unpaired;
      continue;
    }
    const Sample& f = it->second;
    p.full.push_back(f.functional);
    p.comp.push_back(s.functional);
    // A verdict is 0/1; >= 0.5 reads a pass robustly should a task ever write a fraction.
    if (f.functional >= 0.5 && std::isfinite(f.gold_nll) && std::isfinite(s.gold_nll)) {
      const double pred = s.gold_nll - f.gold_nll;
      (s.functional < 0.5 ? p.flip_pred : p.keep_pred).push_back(pred);
    }
    if (f.functional >= 0.5) {
      const bool flip = s.functional < 0.5;
      ++p.warn_kept;
      p.warn_flips += flip;
      const auto pred = warn_predictors(f, s, ppl_rise);
      for (std::size_t w = 0; w < kWarnSignals; ++w)
        if (std::isfinite(pred[w])) (flip ? p.warn_flip[w] : p.warn_keep[w]).push_back(pred[w]);
    }
  }
  for (const auto& [id, s] : full.samples)
    if (!comp.samples.count(id)) ++p.unpaired;
  return p;
}

inline double mean_of(const std::vector<double>& v) {
  if (v.empty()) return nan();
  double s = 0.0;
  for (double x : v) s += x;
  return s / double(v.size());
}

// The paired-bootstrap intervals of one comparison, all from the same resamples.
struct PairedIntervals {
  Interval sds;          // of the SDS; needs both a functional and a perplexity side
  Interval func_ratio;   // of func_comp / func_full (the chart's solid line); needs func_full > 0
  Interval ppl_quality;  // of ppl_full / ppl_comp (the chart's dashed line)
};

// Paired bootstrap over several tasks (one for a per-task comparison): each resample draws every
// task's paired sample ids with replacement — the same id on the full and the compressed side,
// so the sample-to-sample difficulty cancels as it does in the point estimate — averages the
// task accuracies as the pooled estimate does, and draws the perplexity documents the same
// paired way. The draws are made in a fixed order (tasks, then documents) whatever is asked of
// them, so adding a statistic never moves another one's interval.
inline PairedIntervals bootstrap_paired(const std::vector<const FuncPairs*>& tasks, const PplPairs& ppl,
                                        const MetricsOptions& o) {
  PairedIntervals out;
  if (o.bootstrap == 0) return out;
  bool func = !tasks.empty();
  for (const FuncPairs* t : tasks) func = func && !t->full.empty();
  const bool perplexity = !ppl.full.empty();
  if (!func && !perplexity) return out;
  std::mt19937_64 rng(o.seed);
  std::vector<double> sds_stats, func_stats, ppl_stats;
  sds_stats.reserve(o.bootstrap);
  func_stats.reserve(o.bootstrap);
  ppl_stats.reserve(o.bootstrap);
  std::vector<const Sample*> pf(ppl.full.size()), pc(ppl.comp.size());
  for (std::size_t b = 0; b < o.bootstrap; ++b) {
    double ff = 0.0, fc = 0.0;
    if (func) {
      for (const FuncPairs* t : tasks) {
        const std::size_t n = t->full.size();
        double sf = 0.0, sc = 0.0;
        for (std::size_t i = 0; i < n; ++i) {
          const std::size_t k = draw_index(rng, n);
          sf += t->full[k];
          sc += t->comp[k];
        }
        ff += sf / double(n);
        fc += sc / double(n);
      }
      ff /= double(tasks.size());
      fc /= double(tasks.size());
      func_stats.push_back(ff > 0 ? fc / ff : nan());
    }
    if (perplexity) {
      for (std::size_t i = 0; i < pf.size(); ++i) {
        const std::size_t k = draw_index(rng, pf.size());
        pf[i] = ppl.full[k];
        pc[i] = ppl.comp[k];
      }
      const double ppl_full = pooled_perplexity(pf.begin(), pf.end()),
                   ppl_comp = pooled_perplexity(pc.begin(), pc.end());
      ppl_stats.push_back(ppl_comp > 0 ? ppl_full / ppl_comp : nan());
      if (func) sds_stats.push_back(sds(ff, fc, ppl_full, ppl_comp, o.eps));
    }
  }
  // A resample whose full side solves nothing has no ratio. The interval is over those that
  // have one (conditional on the full cache solving something), and only when they are at least
  // 99 % of the resamples, so it never rests on a selected few.
  const auto with_ratio =
      std::count_if(func_stats.begin(), func_stats.end(), [](double v) { return std::isfinite(v); });
  if (func && double(with_ratio) >= 0.99 * double(o.bootstrap))
    out.func_ratio = percentile_interval(std::move(func_stats), o.level);
  if (perplexity) out.ppl_quality = percentile_interval(std::move(ppl_stats), o.level);
  if (func && perplexity) out.sds = percentile_interval(std::move(sds_stats), o.level);
  return out;
}

// Stratified bootstrap of the AUROC: flips and non-flips are resampled separately, keeping the
// class sizes, so every resample has both classes and the interval reflects the ranking only.
inline Interval bootstrap_auroc(const std::vector<double>& flips, const std::vector<double>& keeps,
                                const MetricsOptions& o) {
  if (o.bootstrap == 0 || flips.empty() || keeps.empty()) return {};
  std::mt19937_64 rng(o.seed);
  std::vector<double> stats, pos(flips.size()), neg(keeps.size());
  stats.reserve(o.bootstrap);
  for (std::size_t b = 0; b < o.bootstrap; ++b) {
    for (auto& v : pos) v = flips[draw_index(rng, flips.size())];
    for (auto& v : neg) v = keeps[draw_index(rng, keeps.size())];
    stats.push_back(auroc(pos, neg));
  }
  return percentile_interval(std::move(stats), o.level);
}

inline AurocResult auroc_result(const std::vector<double>& flips, const std::vector<double>& keeps,
                                const MetricsOptions& o) {
  AurocResult a;
  a.n_flips = flips.size();
  a.n_kept = flips.size() + keeps.size();
  a.value = auroc(flips, keeps);
  a.ci = bootstrap_auroc(flips, keeps, o);
  return a;
}

// Every warning's AUROC from its classes; held-out perplexity only when asked (`with_held_out`).
inline WarnAurocs warn_aurocs(const std::array<std::vector<double>, kWarnSignals>& flips,
                              const std::array<std::vector<double>, kWarnSignals>& keeps, const MetricsOptions& o,
                              bool with_held_out) {
  WarnAurocs out;
  for (std::size_t w = 0; w < kWarnSignals; ++w) {
    if (w == std::size_t(Warn::HeldOutPpl) && !with_held_out) continue;
    out[w] = auroc_result(flips[w], keeps[w], o);
  }
  return out;
}

inline void add_distinct(std::vector<std::string>& v, const std::string& s) {
  if (!s.empty() && std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

}  // namespace detail

// The reference of a functional cell: the "full" cell of the same model and task (the one with
// the largest nominal budget, should a sweep have several); nullptr when there is none.
inline const Cell* reference_cell(const std::vector<Cell>& cells, const std::string& model, const std::string& task) {
  const Cell* best = nullptr;
  for (const Cell& c : cells)
    if (c.model == model && c.task == task && c.method == kFullMethod && c.kind == TaskKind::Functional &&
        (!best || c.budget > best->budget))
      best = &c;
  return best;
}

inline Analysis analyze(const std::vector<Row>& rows, const MetricsOptions& options = {}) {
  using namespace detail;
  Analysis a;
  a.options = options;
  a.cells = build_cells(rows);
  a.n_rows = rows.size();
  for (const Row& r : rows) {
    a.total_latency_s += r.latency_s;
    (r.kind == TaskKind::Functional ? a.n_functional_rows : a.n_perplexity_rows) += 1;
    add_distinct(a.model_hashes, r.model_hash);
    add_distinct(a.config_hashes, r.config_hash);
    add_distinct(a.program_versions, r.program_version);
    a.n_prototype_rows += r.program_version.empty();
  }
  std::set<std::string> models, ftasks, ptasks;
  for (const Cell& c : a.cells) {
    models.insert(c.model);
    (c.kind == TaskKind::Functional ? ftasks : ptasks).insert(c.task);
  }
  a.models.assign(models.begin(), models.end());
  a.functional_tasks.assign(ftasks.begin(), ftasks.end());
  a.perplexity_tasks.assign(ptasks.begin(), ptasks.end());

  const auto groups = perplexity_groups(a.cells);
  auto group = [&](const std::string& model, const std::string& method, double budget) -> const PplGroup* {
    auto it = groups.find(Triple{model, method, budget});
    return it == groups.end() ? nullptr : &it->second;
  };

  // Tables list the full cache first, then methods by name, budgets from large to small.
  auto order = [](const Comparison& x, const Comparison& y) {
    const bool xf = x.is_reference(), yf = y.is_reference();
    return std::make_tuple(x.model, x.task == kPooledTask, x.task, !xf, x.method, -x.budget) <
           std::make_tuple(y.model, y.task == kPooledTask, y.task, !yf, y.method, -y.budget);
  };

  // Per-task comparisons, remembering the paired data for the pooled pass.
  struct Pending {
    FuncPairs pairs;
    const Cell* comp;
    const Cell* ref;
  };
  std::map<Triple, std::vector<Pending>> by_triple;
  for (const Cell& c : a.cells) {
    if (c.kind != TaskKind::Functional) continue;
    if (c.task.find('@') != std::string::npos) continue;  // a calibration variant (run/calibration.hpp), not a task
    const Cell* ref = reference_cell(a.cells, c.model, c.task);
    const PplGroup* pg = group(c.model, c.method, c.budget);
    const PplGroup* pg_ref = ref ? group(ref->model, ref->method, ref->budget) : nullptr;
    Comparison cmp;
    cmp.model = c.model;
    cmp.method = c.method;
    cmp.task = c.task;
    cmp.budget = c.budget;
    cmp.tasks = {c.task};
    cmp.cell_id = c.cell_id;
    cmp.n = c.n;
    cmp.kv_fraction = c.budget_measured;
    cmp.func_comp = c.functional;
    cmp.gold_ppl_comp = c.gold_ppl;
    if (pg) {
      cmp.ppl_comp = pg->perplexity;
      cmp.ppl_kv_fraction = pg->budget_measured;
      cmp.ppl_tasks = pg->tasks;
    }
    if (pg_ref) {
      cmp.ppl_full = pg_ref->perplexity;
      cmp.ppl_ref_kv_fraction = pg_ref->budget_measured;
    }
    const PplPairs pp = pair_ppl(pg_ref, pg);
    FuncPairs fp;
    if (ref) {
      cmp.ref_cell_id = ref->cell_id;
      cmp.ref_kv_fraction = ref->budget_measured;
      cmp.func_full = ref->functional;
      cmp.gold_ppl_full = ref->gold_ppl;
      const double ppl_rise =
          std::isfinite(cmp.ppl_full) && cmp.ppl_full > 0 ? (cmp.ppl_comp - cmp.ppl_full) / cmp.ppl_full : nan();
      fp = pair_functional(*ref, c, ppl_rise);
    }
    static_cast<SdsParts&>(cmp.sds) = sds_parts(cmp.func_full, cmp.func_comp, cmp.ppl_full, cmp.ppl_comp, options.eps);
    cmp.sds.n_paired = fp.full.size();
    cmp.sds.n_unpaired = ref ? fp.unpaired : c.n;
    cmp.sds.n_ppl_paired = pp.full.size();
    cmp.sds.n_ppl_unpaired = pp.unpaired;
    if (ref) {
      const PairedIntervals iv = bootstrap_paired({&fp}, pp, options);
      cmp.sds.ci = iv.sds;
      cmp.func_ratio_ci = iv.func_ratio;
      cmp.ppl_quality_ci = iv.ppl_quality;
      cmp.auroc = auroc_result(fp.flip_pred, fp.keep_pred, options);
      if (!cmp.is_reference()) {
        cmp.warn = warn_aurocs(fp.warn_flip, fp.warn_keep, options, false);
        cmp.warn_flips = fp.warn_flips;
        cmp.warn_kept = fp.warn_kept;
      }
      for (const auto& [sid, s] : c.samples) a.has_warning_signals = a.has_warning_signals || has_warning_signals(s);
    }
    a.comparisons.push_back(cmp);
    if (ref) by_triple[Triple{c.model, c.method, c.budget}].push_back(Pending{std::move(fp), &c, ref});
  }

  // Pooled over the functional tasks that have a reference: the mean of the task accuracies (each
  // task weighs the same whatever its size, as in the prototype), against the same perplexity.
  for (const auto& [key, pending] : by_triple) {
    const auto& [model, method, budget] = key;
    const PplGroup* pg = group(model, method, budget);
    const Cell* ref0 = pending.front().ref;
    const PplGroup* pg_ref = group(ref0->model, ref0->method, ref0->budget);
    Comparison cmp;
    cmp.model = model;
    cmp.method = method;
    cmp.task = kPooledTask;
    cmp.budget = budget;
    double ff = 0, fc = 0, kv = 0, kv_ref = 0, ref_n = 0;
    std::vector<const FuncPairs*> tasks;
    std::vector<double> flips, keeps;
    for (const Pending& p : pending) {
      cmp.tasks.push_back(p.comp->task);
      cmp.n += p.comp->n;
      ff += p.ref->functional;
      fc += p.comp->functional;
      kv += p.comp->budget_measured * double(p.comp->n);
      kv_ref += p.ref->budget_measured * double(p.ref->n);
      ref_n += double(p.ref->n);
      tasks.push_back(&p.pairs);
      flips.insert(flips.end(), p.pairs.flip_pred.begin(), p.pairs.flip_pred.end());
      keeps.insert(keeps.end(), p.pairs.keep_pred.begin(), p.pairs.keep_pred.end());
      cmp.sds.n_paired += p.pairs.full.size();
      cmp.sds.n_unpaired += p.pairs.unpaired;
    }
    cmp.func_full = ff / double(pending.size());
    cmp.func_comp = fc / double(pending.size());
    cmp.kv_fraction = cmp.n ? kv / double(cmp.n) : nan();
    cmp.ref_kv_fraction = ref_n > 0 ? kv_ref / ref_n : nan();
    if (pg) {
      cmp.ppl_comp = pg->perplexity;
      cmp.ppl_kv_fraction = pg->budget_measured;
      cmp.ppl_tasks = pg->tasks;
    }
    if (pg_ref) {
      cmp.ppl_full = pg_ref->perplexity;
      cmp.ppl_ref_kv_fraction = pg_ref->budget_measured;
    }
    const PplPairs pp = pair_ppl(pg_ref, pg);
    static_cast<SdsParts&>(cmp.sds) = sds_parts(cmp.func_full, cmp.func_comp, cmp.ppl_full, cmp.ppl_comp, options.eps);
    cmp.sds.n_ppl_paired = pp.full.size();
    cmp.sds.n_ppl_unpaired = pp.unpaired;
    const PairedIntervals iv = bootstrap_paired(tasks, pp, options);
    cmp.sds.ci = iv.sds;
    cmp.func_ratio_ci = iv.func_ratio;
    cmp.ppl_quality_ci = iv.ppl_quality;
    cmp.auroc = auroc_result(flips, keeps, options);
    if (!cmp.is_reference()) {
      std::array<std::vector<double>, kWarnSignals> wf, wk;
      for (const Pending& p : pending) {
        for (std::size_t w = 0; w < kWarnSignals; ++w) {
          wf[w].insert(wf[w].end(), p.pairs.warn_flip[w].begin(), p.pairs.warn_flip[w].end());
          wk[w].insert(wk[w].end(), p.pairs.warn_keep[w].begin(), p.pairs.warn_keep[w].end());
        }
        cmp.warn_flips += p.pairs.warn_flips;
        cmp.warn_kept += p.pairs.warn_kept;
      }
      cmp.warn = warn_aurocs(wf, wk, options, false);
    }
    a.comparisons.push_back(cmp);
  }
  std::stable_sort(a.comparisons.begin(), a.comparisons.end(), order);

  // The "all compressed cells" pools: per (model, task) every compressed cell's kept samples, and
  // per model the same over its tasks, in one ranking each — held-out perplexity included.
  {
    struct Acc {
      WarnPool pool;
      std::array<std::vector<double>, kWarnSignals> flips, keeps;
    };
    std::map<std::pair<std::string, std::string>, Acc> pools;  // by (model, task)
    std::vector<std::pair<std::string, std::string>> order_keys;
    auto add = [&](const std::string& model, const std::string& task, const FuncPairs& fp) {
      const auto key = std::make_pair(model, task);
      auto [it, fresh] = pools.try_emplace(key);
      if (fresh) {
        it->second.pool.model = model;
        it->second.pool.task = task;
        order_keys.push_back(key);
      }
      Acc& acc = it->second;
      ++acc.pool.cells;
      acc.pool.flips += fp.warn_flips;
      acc.pool.kept += fp.warn_kept;
      for (std::size_t w = 0; w < kWarnSignals; ++w) {
        acc.flips[w].insert(acc.flips[w].end(), fp.warn_flip[w].begin(), fp.warn_flip[w].end());
        acc.keeps[w].insert(acc.keeps[w].end(), fp.warn_keep[w].begin(), fp.warn_keep[w].end());
      }
    };
    for (const auto& [key, pending] : by_triple) {
      const auto& [model, method, budget] = key;
      if (method == kFullMethod) continue;
      for (const Pending& p : pending) {
        add(model, p.comp->task, p.pairs);
        add(model, kPooledTask, p.pairs);
      }
    }
    for (const auto& key : order_keys) {
      Acc& acc = pools.at(key);
      acc.pool.warn = warn_aurocs(acc.flips, acc.keeps, options, true);
      a.warn_pools.push_back(std::move(acc.pool));
    }
    std::stable_sort(a.warn_pools.begin(), a.warn_pools.end(), [](const WarnPool& x, const WarnPool& y) {
      return std::make_tuple(x.model, x.task == kPooledTask, x.task) <
             std::make_tuple(y.model, y.task == kPooledTask, y.task);
    });
  }
  return a;
}

}  // namespace kvcanary::run
