#pragma once
// `kvzip`: KVzip (Kim et al. 2025, "KVzip: Query-Agnostic KV Cache Compression with Context
// Reconstruction", arXiv:2505.23416; NVIDIA KVPress `KVzipPress`). A query-aware press keeps what
// the question in the prompt needs, which fails the next question asked of the same cache. KVzip
// asks instead what the model needs to *repeat* the context: after the context's prefill it runs
// the model over
//
//   "\n\nRepeat the previous context exactly." + the chat template's turn switch + context[n_sink:]
//
// teacher-forced on top of the cache, and a stored row's importance is the most attention any of
// those reconstruction queries paid it:
//
//   s_{l,h,j} = max over the group's query heads g and the reconstruction rows r of p_{l,g}(r, j)
//
// where p is the pass's own softmax over the whole cache (context rows, then the reconstruction's
// rows causally). The first n_sink rows are protected. Then, as KVPress with `layerwise = False`,
// one threshold over every (layer, KV head, row): the cache keeps the L·H·C best scores overall,
// so layers and heads hold different row counts, C per head on average (`layerwise = 1`: the H·C
// best of each layer). It really evicts — each head's HeadStore drops its rows (KVPress masks
// them) — and the measured bytes are the budget's.
//
// The pass runs in the engine (kv/policy.hpp step 1c; engine/decode_step.hpp): this policy only
// says which tokens to run (`reconstruction_tokens`) and reads the record, whose per-row values
// are already the maxima over the rows. The copy of the cache the pass ran on is dropped.
//
// Deviations from KVPress:
//   * KVPress reconstructs the user message after the chat template's prefix (`prefix_length`),
//     leaving template rows between the sinks and the content out of the softmax and at score 0.
//     Here the compressed context is already a rendered chat (scope `context`: the system turn
//     with its tools, the instruction) — all of it is content the deployment would keep — so the
//     reconstruction starts right after the n_sink protected rows, and the softmax is the pass's
//     own over every stored row, which is KVPress's subsampled one when prefix_length = n_sink.
//   * KVPress splits contexts over 2048 tokens into chunks, each reconstructed on its own; here
//     one pass covers the context (every context in these tasks is shorter).
//   * Protected rows get +∞ (KVPress: 1.0, which a row with all of some query's attention ties).
//   * C = ceil(budget · n) per head (KVPress: int(n · (1 − ratio)) in total); ties: lower layer,
//     then lower head, then lower row.
// Prompt only, as the paper (the context is compressed once and reused for any question).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/model_config.hpp"
#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/parameter_table.hpp"
#include "kvcanary/kv/policy.hpp"

namespace kvcanary::kv {

struct KvZip {
  static constexpr std::string_view name = "kvzip";
  static constexpr Mode default_mode = Mode::Prompt;
  static constexpr std::string_view prompt_only_because =
      "as the paper, it scores the prefilled context once by reconstructing it";
  // KVPress's first-chunk instruction, as text: the model directory turns it into token ids with
  // the chat template's turn switch (model/model_dir.hpp → ModelConfig::repeat_instruction).
  static constexpr std::string_view instruction = "\n\nRepeat the previous context exactly.";

  static std::string_view summary() {
    return "KVzip (Kim et al. 2025): rows ranked by the most attention the model pays them while repeating the "
           "context; one threshold over all layers and heads; query-agnostic; prompt only";
  }
  static constexpr auto parameter_table() {
    return std::tuple{
        Parameter{"n_sink", &KvZip::n_sink, "first rows always kept and not reconstructed (attention sinks)"},
        Parameter{"layerwise", &KvZip::layerwise,
                  "1: each layer keeps its H*C best rows; 0: one threshold over all layers (KVPress's default)"}};
  }
  static KvZip create(const PolicyOptions& o, const ModelConfig& c) {
    KvZip p = eviction::create<KvZip>(o);
    p.repeat_instruction = c.repeat_instruction;
    return p;
  }

  eviction::Common common;
  std::size_t n_sink = 4;
  bool layerwise = false;
  std::vector<std::int32_t> repeat_instruction;  // the model's chat-formatted instruction (may be empty)

  std::size_t attention_rows(StepKind, std::size_t) const { return 0; }  // its record is the reconstruction's

  // Step 1c: what the engine runs after the prompt step — the instruction, then the context after
  // the sinks.
  std::vector<std::int32_t> reconstruction_tokens(std::span<const std::int32_t> context) const {
    std::vector<std::int32_t> tokens = repeat_instruction;
    if (context.size() > n_sink)
      tokens.insert(tokens.end(), context.begin() + static_cast<std::ptrdiff_t>(n_sink), context.end());
    return tokens;
  }

  // s_{l,h,j} for the first n rows: the group's largest recorded maximum; protected rows +∞.
  static std::vector<float> scores(const AttentionRecord& record, std::size_t layer, std::size_t kv_head, std::size_t n,
                                   std::size_t n_sink) {
    std::vector<float> s(n, 0.0f);
    for (std::size_t g = 0; g < record.group; ++g) {
      const std::vector<float>& m = record.mass(layer, kv_head * record.group + g);
      for (std::size_t j = 0; j < n && j < m.size(); ++j) s[j] = std::max(s[j], m[j]);
    }
    for (std::size_t j = 0; j < std::min(n_sink, n); ++j) s[j] = std::numeric_limits<float>::infinity();
    return s;
  }

  // Which rows each (layer, KV head) keeps, ascending: the `total` best of all scores[l][h][j]
  // (one threshold), or each layer's share when per_layer.
  static std::vector<std::vector<std::vector<std::size_t>>> allocate(
      const std::vector<std::vector<std::vector<float>>>& scores, std::size_t C, bool per_layer) {
    struct Cand {
      float score;
      std::size_t layer, head, row;
    };
    auto better = [](const Cand& a, const Cand& b) {
      if (a.score != b.score) return a.score > b.score;
      if (a.layer != b.layer) return a.layer < b.layer;
      return a.head != b.head ? a.head < b.head : a.row < b.row;
    };
    std::vector<std::vector<std::vector<std::size_t>>> kept(scores.size());
    auto select = [&](std::vector<Cand> all, std::size_t total) {
      total = std::min(total, all.size());
      if (total < all.size())
        std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(total), all.end(), better);
      for (std::size_t i = 0; i < total; ++i) kept[all[i].layer][all[i].head].push_back(all[i].row);
    };
    std::vector<Cand> all;
    for (std::size_t l = 0; l < scores.size(); ++l) {
      kept[l].resize(scores[l].size());
      for (std::size_t h = 0; h < scores[l].size(); ++h)
        for (std::size_t j = 0; j < scores[l][h].size(); ++j) all.push_back({scores[l][h][j], l, h, j});
      if (per_layer) {
        select(std::move(all), scores[l].size() * C);
        all.clear();
      }
    }
    if (!per_layer) {
      std::size_t heads = 0;
      for (const auto& layer : scores) heads += layer.size();
      select(std::move(all), heads * C);
    }
    for (auto& layer : kept)
      for (auto& rows : layer) std::sort(rows.begin(), rows.end());
    return kept;
  }

  void after_step(KvCache& cache, const AttentionRecord& record, StepKind kind) {
    if (!common.compresses(kind)) return;
    common.observe(cache, kind);
    const std::size_t L = cache.layers(), H = cache.kv_heads(), D = cache.head_dim();
    const std::size_t n = cache.head(0, 0).size();
    const std::size_t C = common.keep(cache.tokens_seen(), std::min(n_sink, n), n);
    if (C >= n) return;  // the context fits the capacity
    if (record.rows == 0 || !record.max_over_rows)
      fail("<kvzip>", "record", "the reconstruction pass did not run (kv/policy.hpp, step 1c)");
    std::vector<std::vector<std::vector<float>>> s(L, std::vector<std::vector<float>>(H));
    for (std::size_t l = 0; l < L; ++l)
      for (std::size_t h = 0; h < H; ++h) s[l][h] = scores(record, l, h, cache.head(l, h).size(), n_sink);
    const auto kept = allocate(s, C, layerwise);
    for (std::size_t l = 0; l < L; ++l)
      for (std::size_t h = 0; h < H; ++h)
        if (kept[l][h].size() != cache.head(l, h).size()) cache.head(l, h).keep(kept[l][h], D);
  }

  std::size_t stored_bytes(const KvCache& c) const { return eviction::stored_fp16_bytes(c); }
  std::string identity() const { return common.prefix(name) + identity_suffix(*this) + ")"; }
};

static_assert(CachePolicy<KvZip>);

}  // namespace kvcanary::kv
