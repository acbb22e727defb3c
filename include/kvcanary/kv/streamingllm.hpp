#pragma once
// `streamingllm`: StreamingLLM (Xiao et al. 2023, "Efficient Streaming Language Models with
// Attention Sinks", arXiv:2309.17453). The cache is the first `sinks` tokens (attention
// sinks: softmax dumps unneeded mass on them, so evicting them collapses attention) plus a
// rolling window of the most recent tokens; everything in between is evicted.
//
// Positions inside the cache (the paper's §3.2): a kept key sits at its *cache* index, not
// its index in the text, so the model never sees a relative distance longer than the cache.
// Stored keys are post-RoPE, so a kept row at old position p moved to cache slot i is rotated
// by R(i − p): RoPE rotations of a dimension pair compose, R(i − p)·R(p)·k = R(i)·k, which is
// the key the paper's implementation gets by rotating the un-rotated key at slot i. The next
// token is then placed right after the kept rows.

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/parameter_table.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/core/model_config.hpp"
#include "kvcanary/ops/rope.hpp"

namespace kvcanary::kv {

// Move every row of `store` to position new_positions[row], rotating its post-RoPE key by
// (new − old)·inv_freq in HF's rotate-half layout (dim i pairs with i + d/2). The angle and
// the rotation are evaluated in double and rounded once, so repeated re-rotation (decode mode
// shifts the window by one slot per step) drifts by at most ~1 fp32 ulp per move. Rows that
// do not move are left bit-identical. Consecutive rows usually share the same shift, so
// cos/sin are recomputed only when the shift changes.
//
// Keys stored as a deployed cache type (streamingllm composed after q4_0, fp8, ...) are
// decoded, rotated and re-encoded — what llama.cpp's K-shift does on a quantized cache; other
// packed layouts (absmax, KIVI) are refused.
inline void rerotate_keys(HeadStore& store, std::size_t head_dim, const std::vector<float>& inv_freq,
                          std::span<const std::int32_t> new_positions) {
  PackedRows& packed = store.packed_keys;
  if (packed.rows > 0 && !packed.type) store.require_unpacked("streamingllm");
  std::vector<float> decoded(packed.rows > 0 ? head_dim : 0);
  const std::size_t half = head_dim / 2;
  std::vector<double> c(half), s(half);
  std::int64_t cached_shift = 0;
  bool have = false;
  for (std::size_t r = 0; r < store.size(); ++r) {
    const std::int64_t shift = static_cast<std::int64_t>(new_positions[r]) - store.positions[r];
    if (shift == 0) continue;
    if (!have || shift != cached_shift) {
      for (std::size_t i = 0; i < half; ++i) {
        const double angle = static_cast<double>(shift) * static_cast<double>(inv_freq[i]);
        c[i] = std::cos(angle);
        s[i] = std::sin(angle);
      }
      cached_shift = shift;
      have = true;
    }
    const bool is_packed = r < packed.rows;
    float* k = is_packed ? decoded.data() : &store.keys[(r - packed.rows) * head_dim];
    if (is_packed) packed.dequantize(r, 1, head_dim, k);
    for (std::size_t i = 0; i < half; ++i) {
      const double a = k[i], b = k[i + half];
      k[i] = static_cast<float>(a * c[i] - b * s[i]);
      k[i + half] = static_cast<float>(b * c[i] + a * s[i]);
    }
    if (is_packed)
      quantize_row(*packed.type, k, head_dim, packed.tensor_scale, &packed.codes[r * packed.row_bytes(head_dim)]);
    store.positions[r] = new_positions[r];
  }
}

struct StreamingLlm {
  static constexpr std::string_view name = "streamingllm";
  static constexpr Mode default_mode = Mode::Decode;  // the paper streams: sinks + a sliding window
  static std::string_view summary() {
    return "StreamingLLM (Xiao et al. 2023): first `sinks` tokens + most recent window, keys re-rotated to contiguous "
           "cache positions";
  }
  static constexpr auto parameter_table() {
    return std::tuple{Parameter{"sinks", &StreamingLlm::sinks,
                                "attention-sink tokens always kept at the start of the cache (the paper uses 4)"}};
  }
  static StreamingLlm create(const PolicyOptions& o, const ModelConfig& config) {
    StreamingLlm p = eviction::create<StreamingLlm>(o);
    p.inv_freq = ops::rope_inverse_frequencies(config);
    return p;
  }

  eviction::Common common;
  std::size_t sinks = 4;
  std::vector<float> inv_freq;  // the model's RoPE frequencies, for re-rotation

  std::size_t attention_rows(StepKind, std::size_t) const { return 0; }

  // Rows kept by a head of n rows with `seen` tokens seen: sinks, then the newest k − sinks.
  std::vector<std::size_t> selection(std::size_t n, std::int64_t seen) const {
    const std::size_t k = common.keep(seen, std::min(sinks, n), n);
    std::vector<std::size_t> kept;
    kept.reserve(k);
    const std::size_t s = std::min(sinks, k);
    for (std::size_t r = 0; r < s; ++r) kept.push_back(r);
    for (std::size_t r = n - (k - s); r < n; ++r) kept.push_back(r);
    return kept;
  }

  void after_step(KvCache& cache, const AttentionRecord&, StepKind kind) {
    if (!common.compresses(kind)) return;
    common.observe(cache, kind);
    const std::size_t D = cache.head_dim();
    std::size_t kept_rows = 0;
    bool evicted = false;
    for (std::size_t l = 0; l < cache.layers(); ++l)
      for (std::size_t h = 0; h < cache.kv_heads(); ++h) {
        HeadStore& store = cache.head(l, h);
        const std::size_t n = store.size();
        const auto kept = selection(n, cache.tokens_seen());
        kept_rows = kept.size();
        if (kept.size() == n) continue;
        evicted = true;
        store.keep(kept, D);
        std::vector<std::int32_t> slots(store.size());
        for (std::size_t i = 0; i < slots.size(); ++i) slots[i] = static_cast<std::int32_t>(i);
        rerotate_keys(store, D, inv_freq, slots);
      }
    // Every head keeps the same rows, so the cache positions are 0..kept−1 everywhere.
    if (evicted) cache.set_next_position(static_cast<std::int64_t>(kept_rows));
  }

  std::size_t stored_bytes(const KvCache& c) const { return eviction::stored_fp16_bytes(c); }
  std::string identity() const { return common.prefix(name) + identity_suffix(*this) + ")"; }
};

static_assert(CachePolicy<StreamingLlm>);

}  // namespace kvcanary::kv
