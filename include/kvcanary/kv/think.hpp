#pragma once
// `think`: ThinK (Xu et al. 2024, "ThinK: Thinner Key Cache by Query-Driven Pruning",
// arXiv:2407.21018; NVIDIA KVPress's ThinKPress). Not a token eviction: every row stays, and
// each KV head drops the key *channels* that the recent queries and the keys together use least.
// Per layer and KV head (G query heads per KV head; d = head_dim; w = the window's query rows,
// after RoPE; n prompt rows):
//
//   qn_c  = (1/G) Σ_{h ∈ group} (1/w) Σ_{i ∈ window} (q_i^h)_c²       the queries' channel energy
//   kn_c  = (1/n) Σ_j (k_j)_c²                                         the keys' channel energy
//   s_c   = qn_c · kn_c
//   prune the ⌊λ·d⌋ channels of lowest s_c: their key values are set to 0 in every prompt row
//
// so q·k runs over the kept channels only. The queries' energies come with the forward pass's
// attention record (AttentionRecord::rotated_query_energy, the window's rows after RoPE, as
// KVPress's compute_window_queries re-derives them).
//
// Budget: the measured bytes. V is untouched, so a head's prompt bytes are (2d − ⌊λd⌋)/2d of
// fp16's; by default λ = 2·(1 − budget) (budget 0.75 → λ = 0.5, the paper's setting), and a budget
// below 0.5 is refused — ThinK alone cannot go there. `key_channel_ratio` sets λ directly.
// Bytes: kept key channels and all values of the pruned rows in fp16, plus a d-bit channel mask
// per KV head; rows generated later are whole (KVPress prunes the prefill only).
//
// Deviations: ties between channel scores go to the higher channel index kept (the lower
// pruned first; torch.topk leaves them unspecified). Energies in double. Prompt only, as
// KVPress's press; the paper's decode-time variant is not built.

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/parameter_table.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/core/model_config.hpp"

namespace kvcanary::kv {

struct Think {
  static constexpr std::string_view name = "think";
  static constexpr Mode default_mode = Mode::Prompt;
  static constexpr std::string_view prompt_only_because =
      "KVPress's press prunes the prefill's key channels; generated keys stay whole";
  static std::string_view summary() {
    return "ThinK (Xu et al. 2024): prune the key channels with the lowest query × key energy per KV head; every row "
           "kept";
  }
  // window is a plain member; λ's default comes from the budget, so it is listed by hand.
  static constexpr auto parameter_table() {
    return std::tuple{
        Parameter{"window", &Think::window, "the last `window` prompt queries whose channel energy is used", 1}};
  }
  static std::vector<ParameterDoc> parameters() {
    std::vector<ParameterDoc> docs = parameter_docs<Think>();
    docs.push_back({"key_channel_ratio", "2 × (1 − budget)", "λ: fraction of key channels pruned, in [0, 1]"});
    return docs;
  }
  static Think create(const PolicyOptions& o, const ModelConfig&) {
    Think p;
    p.budget = o.budget();
    p.mode = eviction::mode_of_options<Think>(o);  // refuses decode mode, with the reason
    read_parameters(p, o);
    const bool given = o.params().count("key_channel_ratio") > 0;
    p.ratio = o.get_double("key_channel_ratio", 2.0 * (1.0 - o.budget()));
    if (!given && o.budget() < 0.5)
      fail(o.source(), "budget",
           "think prunes key channels only, so its bytes are at least half of fp16's: budget must be ≥ 0.5");
    if (!(p.ratio >= 0.0 && p.ratio <= 1.0)) fail(o.source(), "key_channel_ratio", "must be in [0, 1]");
    p.ratio = std::max(0.0, p.ratio);  // 2 × (1 − 1.0) rounds to exactly 0, but never below
    o.reject_unknown(std::string(name));
    return p;
  }

  double budget = 1.0;
  Mode mode = Mode::Prompt;
  std::size_t window = 32;
  double ratio = 0.0;  // λ
  // Per (layer, KV head) after the prefill: how many prompt rows were pruned, and how many channels.
  std::vector<std::size_t> pruned_rows, pruned_channels;

  std::size_t attention_rows(StepKind kind, std::size_t n_tokens) const {
    return kind == StepKind::Prefill ? std::min(window, n_tokens) : 0;
  }

  // Channels pruned per head of head_dim d: ⌊λ·d⌋ (KVPress: int(head_dim · ratio)), with a
  // tolerance so that a decimal λ whose product is an integer is not rounded down by a bit.
  std::size_t channels_to_prune(std::size_t d) const {
    const double x = ratio * static_cast<double>(d);
    const double r = std::round(x);
    return static_cast<std::size_t>(std::abs(x - r) <= 1e-9 * std::max(1.0, x) ? r : std::floor(x));
  }

  // s_c of one KV head: the group's query energies (each Σ over `rows` queries) and the keys ([n, d]).
  static std::vector<double> channel_scores(std::span<const double* const> group_energy, std::size_t rows,
                                            std::span<const float> keys, std::size_t n, std::size_t d) {
    std::vector<double> qn(d, 0.0), kn(d, 0.0), s(d);
    for (const double* e : group_energy)
      for (std::size_t c = 0; c < d; ++c) qn[c] += e[c] / static_cast<double>(rows);
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t c = 0; c < d; ++c) kn[c] += static_cast<double>(keys[j * d + c]) * keys[j * d + c];
    for (std::size_t c = 0; c < d; ++c)
      s[c] = qn[c] / static_cast<double>(group_energy.size()) * (kn[c] / static_cast<double>(n));
    return s;
  }

  // The p channels of lowest score, ascending (ties: the lower channel pruned first).
  static std::vector<std::size_t> pruned(std::span<const double> score, std::size_t p) {
    std::vector<std::size_t> c(score.size());
    std::iota(c.begin(), c.end(), 0);
    std::stable_sort(c.begin(), c.end(), [&](std::size_t a, std::size_t b) { return score[a] < score[b]; });
    c.resize(std::min(p, c.size()));
    std::sort(c.begin(), c.end());
    return c;
  }

  void after_step(KvCache& cache, const AttentionRecord& record, StepKind kind) {
    if (kind != StepKind::Prefill || record.rows == 0) return;
    const std::size_t D = cache.head_dim(), G = record.group, p = channels_to_prune(D);
    pruned_rows.assign(cache.layers() * cache.kv_heads(), 0);
    pruned_channels.assign(cache.layers() * cache.kv_heads(), 0);
    if (p == 0) return;
    for (std::size_t l = 0; l < cache.layers(); ++l)
      for (std::size_t h = 0; h < cache.kv_heads(); ++h) {
        HeadStore& store = cache.head(l, h);
        store.require_unpacked("think");
        const std::size_t n = store.size();
        std::vector<const double*> energy;
        for (std::size_t g = 0; g < G; ++g) energy.push_back(record.query_energy(l, h * G + g));
        const std::vector<double> s = channel_scores(energy, record.rows, store.keys, n, D);
        for (std::size_t c : pruned(s, p))
          for (std::size_t j = 0; j < n; ++j) store.keys[j * D + c] = 0.0f;
        pruned_rows[l * cache.kv_heads() + h] = n;
        pruned_channels[l * cache.kv_heads() + h] = p;
      }
  }

  // K: d − p channels of each pruned row, d of every later one; V whole; one d-bit mask per head.
  std::size_t stored_bytes(const KvCache& c) const {
    const std::size_t D = c.head_dim();
    std::size_t bytes = 0;
    for (std::size_t l = 0; l < c.layers(); ++l)
      for (std::size_t h = 0; h < c.kv_heads(); ++h) {
        const std::size_t i = l * c.kv_heads() + h, rows = c.head(l, h).size();
        const std::size_t pr = i < pruned_rows.size() ? std::min(pruned_rows[i], rows) : 0,
                          pc = i < pruned_channels.size() ? pruned_channels[i] : 0;
        bytes += (rows * D * 2 - pr * pc) * 2 + (pc ? (D + 7) / 8 : 0);
      }
    return bytes;
  }

  std::string identity() const {
    return std::string(name) + "(budget=" + format_number(budget) +
           ",mode=prompt,key_channel_ratio=" + format_number(ratio) + identity_suffix(*this) + ")";
  }
};

static_assert(CachePolicy<Think>);

}  // namespace kvcanary::kv
