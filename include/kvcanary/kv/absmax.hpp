#pragma once
// `absmax`: the prototype's quantizer, kept for parity. Per-tensor symmetric absmax
// quantization: one scale per layer for all keys of that layer (every KV head, every token),
// one for its values,
//
//   s = absmax / (2^(b−1) − 1),   q = round(x / s) ∈ [−(2^(b−1)−1), 2^(b−1)−1],   x̂ = q·s,
//
// (rounding, fp16 scale and packing as in kv/quantizer.hpp). At 2 bits the code set is
// {−1, 0, 1}: a ternary cache.
//
// The cache holds what a quantized cache holds: each head's quantized rows move into its
// packed store (b-bit codes per row, the layer's fp16 scale; kv/packed_rows.hpp) and leave the
// fp32 store; attention dequantizes them on read. The policy keeps the layer scales. Rows not
// quantized are the full-precision residual, counted in fp16 like `full` counts them.
//
// Modes: `prompt` quantizes what every prefill step stored (the prototype's regime; tokens
// generated later stay full precision); `decode` also quantizes each generated token after
// its step.
//
// Growing range: the scale only ever grows. When new rows hold a magnitude above the
// current range qmax·s, the layer's scale is recomputed from that magnitude and the rows
// already stored are re-quantized from their dequantized values q·s_old — the originals are
// gone, as they would be in a real quantized cache — so each growth event adds at most
// s_new/2 of error to old rows. New rows below the range reuse the scale unchanged.

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/kv/quant_width.hpp"
#include "kvcanary/core/model_config.hpp"

namespace kvcanary::kv {

struct AbsmaxQuant {
  static constexpr std::string_view name = "absmax";
  static std::string_view summary() {
    return "per-tensor symmetric absmax quantization (one scale per layer for K, one for V): the prototype's baseline";
  }
  static std::vector<ParameterDoc> parameters() {
    return {{"bits", "budget", "bits per stored K/V value: 8, 4 or 2; if absent, budget 0.5→8, 0.25→4, 0.125→2"}};
  }
  static AbsmaxQuant create(const PolicyOptions& o, const ModelConfig&) {
    AbsmaxQuant p;
    p.bits = quant::bits_from_options(o, std::string(name));
    p.mode = o.mode_or(Mode::Prompt);  // default unchanged: docs/COMPRESSORS.md "Modes"
    o.reject_unknown(std::string(name));
    return p;
  }

  unsigned bits = 8;
  Mode mode = Mode::Prompt;

  // Per layer: the fp16 scales of its keys and values (0 until the first nonzero value).
  struct LayerState {
    f16_t k_scale{}, v_scale{};
  };
  std::vector<LayerState> layers;
  std::int64_t tokens_seen = 0;  // the cache's count at the last step

  void reset() { layers.clear(); }

  std::size_t attention_rows(StepKind, std::size_t) const { return 0; }

  void after_step(KvCache& cache, const AttentionRecord&, StepKind kind) {
    // A cache that went back to fewer tokens than it had seen was cleared and refilled: the
    // scales describe rows that are gone.
    if (cache.tokens_seen() < tokens_seen) reset();
    tokens_seen = cache.tokens_seen();
    if (mode == Mode::Prompt && kind == StepKind::Decode) return;
    if (layers.empty()) layers.assign(cache.layers(), {});
    for (std::size_t l = 0; l < cache.layers(); ++l) {
      quantize_tensor(cache, l, /*keys=*/true);
      quantize_tensor(cache, l, /*keys=*/false);
    }
  }

  // Bytes of the buffers held: packed codes, the fp16 scales (one per layer and tensor), and
  // the rows not quantized (none in `decode` mode after a step) at fp16.
  std::size_t stored_bytes(const KvCache& c) const {
    return codes_and_fp16_row_bytes(c) + layers.size() * 2 * sizeof(f16_t);  // + K and V scale per layer
  }

  std::string identity() const { return "absmax(bits=" + std::to_string(bits) + ",mode=" + mode_name(mode) + ")"; }

 private:
  // Quantizes the fp32 rows of every head of layer l for one tensor into its packed store,
  // re-quantizing the packed rows first if the new rows lie outside the current range.
  void quantize_tensor(KvCache& cache, std::size_t l, bool keys) {
    const std::size_t NKV = cache.kv_heads(), D = cache.head_dim(), row_bytes = quant::packed_bytes(D, bits);
    f16_t& scale = keys ? layers[l].k_scale : layers[l].v_scale;
    auto packed_of = [&](std::size_t h) -> PackedRows& {
      return keys ? cache.head(l, h).packed_keys : cache.head(l, h).packed_values;
    };
    auto floats_of = [&](std::size_t h) -> std::vector<float>& {
      return keys ? cache.head(l, h).keys : cache.head(l, h).values;
    };
    for (std::size_t h = 0; h < NKV; ++h)
      packed_of(h).configure(bits, /*symmetric=*/true, /*group_rows=*/0, /*group_cols=*/D);
    float absmax = 0.0f;
    for (std::size_t h = 0; h < NKV; ++h)
      absmax = std::max(absmax, quant::abs_max(floats_of(h).data(), floats_of(h).size()));
    std::vector<std::uint8_t> codes(D);
    std::vector<float> x(D);
    const float qmax = static_cast<float>(quant::sym_qmax(bits));
    if (absmax > qmax * to_float(scale)) {
      const f16_t grown = quant::sym_scale(absmax, bits);
      const float s_old = to_float(scale), s_new = to_float(grown);
      for (std::size_t h = 0; h < NKV; ++h) {
        PackedRows& packed = packed_of(h);
        for (std::size_t r = 0; r < packed.rows; ++r) {
          quant::unpack(&packed.codes[r * row_bytes], D, bits, codes.data());
          quant::sym_dequantize(codes.data(), D, s_old, bits, x.data());
          quant::sym_quantize(x.data(), D, s_new, bits, codes.data());
          quant::pack(codes.data(), D, bits, &packed.codes[r * row_bytes]);
        }
      }
      scale = grown;
    }
    const float s = to_float(scale);
    for (std::size_t h = 0; h < NKV; ++h) {
      PackedRows& packed = packed_of(h);
      std::vector<float>& rows = floats_of(h);
      packed.params.assign(1, quant::AsymParams{scale, f16_t{}});
      const std::size_t n = rows.size() / D;
      for (std::size_t r = 0; r < n; ++r) {
        quant::sym_quantize(&rows[r * D], D, s, bits, codes.data());
        packed.push_codes(codes.data(), 1, D);
      }
      if (keys)
        cache.head(l, h).retire_float_keys(n, D);
      else
        cache.head(l, h).retire_float_values(n, D);
    }
  }
};

static_assert(CachePolicy<AbsmaxQuant>);

}  // namespace kvcanary::kv
