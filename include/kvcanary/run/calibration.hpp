#pragma once
// Calibration of the canary itself (issue 20): how far does the full cache's own functional
// verdict move when nothing that matters changes? A compressed cell's "drop" means something only
// beyond that noise floor.
//
// A calibration run (configs/v2-calibration.toml) repeats a task under the full cache with prompts
// one token apart: task names `NAME@VARIANT` — e.g. `bfcl_simple_python@d1a` and `@d1b`, each with a
// one-token distractor preamble drawn with its own seed, so the two prompts differ in exactly that
// token. Per (model, NAME), every pair of variants present (the plain task `NAME`, the study's own
// rows, counts as the variant "") is paired by sample id; the floor is the share of paired samples
// whose verdict differs, with its Wilson score interval (exact enough at these n, and defined at 0
// flips, where a percentile bootstrap collapses to a point).
//
// Repetition needs no pairing: greedy decoding gives the same prompt the same rows bit for bit,
// which is checked by comparing result files (docs/RESULTS.md), and a report's input holding one
// (cell, sample) twice is an Error (run/metrics.hpp build_cells).

#include <cmath>
#include <cstddef>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "kvcanary/run/metrics.hpp"

namespace kvcanary::run {

struct NoiseFloor {
  std::string model, task;                // task: the name before '@'
  std::string variant_a, variant_b;       // after '@' ("" = the plain task), a < b
  std::size_t paired = 0, flips = 0;      // samples in both, and those whose verdicts differ
  double accuracy_a = 0, accuracy_b = 0;  // over the paired samples
  Interval ci;                            // Wilson 95 % of flips / paired

  double rate() const { return paired ? static_cast<double>(flips) / static_cast<double>(paired) : detail::nan(); }
};

// The Wilson score interval of k successes in n trials at normal quantile z (Wilson 1927).
inline Interval wilson_interval(std::size_t k, std::size_t n, double z = 1.959963984540054) {
  Interval iv;
  if (n == 0) return iv;
  const double nn = static_cast<double>(n), p = static_cast<double>(k) / nn, z2 = z * z;
  const double centre = (p + z2 / (2 * nn)) / (1 + z2 / nn);
  const double half = z / (1 + z2 / nn) * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
  iv.lo = k == 0 ? 0.0 : std::max(0.0, centre - half);  // exact at the ends, where rounding would
  iv.hi = k == n ? 1.0 : std::min(1.0, centre + half);  // leave 1e-16 short of them
  return iv;
}

// `NAME@VARIANT` → (NAME, VARIANT); a name without '@' is its own base with variant "".
inline std::pair<std::string, std::string> split_variant(const std::string& task) {
  const auto at = task.find('@');
  if (at == std::string::npos) return {task, ""};
  return {task.substr(0, at), task.substr(at + 1)};
}

// Every pair of full-cache variants of a functional task, for every task that has a variant.
inline std::vector<NoiseFloor> noise_floors(const std::vector<Cell>& cells) {
  std::map<std::tuple<std::string, std::string>, std::map<std::string, const Cell*>> variants;
  for (const Cell& c : cells)
    if (c.kind == TaskKind::Functional && c.method == kFullMethod) {
      const auto [base, variant] = split_variant(c.task);
      variants[{c.model, base}][variant] = &c;
    }
  std::vector<NoiseFloor> out;
  for (const auto& [key, by_variant] : variants) {
    if (by_variant.size() < 2) continue;
    for (auto a = by_variant.begin(); a != by_variant.end(); ++a)
      for (auto b = std::next(a); b != by_variant.end(); ++b) {
        NoiseFloor f;
        f.model = std::get<0>(key);
        f.task = std::get<1>(key);
        f.variant_a = a->first;
        f.variant_b = b->first;
        std::size_t passed_a = 0, passed_b = 0;
        for (const auto& [id, sa] : a->second->samples) {
          const auto it = b->second->samples.find(id);
          if (it == b->second->samples.end()) continue;
          const double va = sa.functional, vb = it->second.functional;
          if (!std::isfinite(va) || !std::isfinite(vb)) continue;
          ++f.paired;
          f.flips += (va > 0.5) != (vb > 0.5);
          passed_a += va > 0.5;
          passed_b += vb > 0.5;
        }
        if (f.paired == 0) continue;
        f.accuracy_a = static_cast<double>(passed_a) / static_cast<double>(f.paired);
        f.accuracy_b = static_cast<double>(passed_b) / static_cast<double>(f.paired);
        f.ci = wilson_interval(f.flips, f.paired);
        out.push_back(f);
      }
  }
  return out;
}

}  // namespace kvcanary::run
