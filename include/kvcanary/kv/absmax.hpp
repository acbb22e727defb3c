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
// The policy's own state is what a quantized cache would hold — b-bit codes packed per row,
// one fp16 scale per layer and tensor — and it writes x̂ back into the cache rows, which
// attention reads (the same numbers a dequantize-on-read kernel would produce). Rows it has
// not quantized are the full-precision residual, counted in fp16 like `full` counts them.
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
#include "kvcanary/kv/quantizer.hpp"
#include "kvcanary/model/config.hpp"

namespace kvcanary::kv {

struct AbsmaxQuant {
  static constexpr std::string_view name = "absmax";
  static std::string_view summary() {
    return "per-tensor symmetric absmax quantization (one scale per layer for K, one for V): the prototype's baseline";
  }
  static std::vector<ParameterDoc> parameters() {
    return {{"bits", "budget", "bits per stored K/V value: 8, 4 or 2; if absent, budget 0.5→8, 0.25→4, 0.125→2"}};
  }
  static AbsmaxQuant create(const PolicyOptions& o, const model::Config&) {
    AbsmaxQuant p;
    p.bits = quant::bits_from_options(o, std::string(name));
    p.mode = o.mode();
    o.reject_unknown(std::string(name));
    return p;
  }

  unsigned bits = 8;
  Mode mode = Mode::Prompt;

  // Packed state. Per layer and tensor: the fp16 scale (0 until the first nonzero value).
  // Per layer × KV head: the codes of the first `rows` rows, `packed_bytes(head_dim)` per row.
  struct LayerState {
    f16_t k_scale{}, v_scale{};
  };
  struct HeadState {
    std::vector<std::uint8_t> k_codes, v_codes;
    std::size_t rows = 0;
  };
  std::vector<LayerState> layers;
  std::vector<HeadState> heads;  // [layer * kv_heads + kv_head]
  std::int64_t tokens_seen = 0;   // the cache's count at the last step

  void reset() {
    layers.clear();
    heads.clear();
  }

  std::size_t attention_rows(StepKind, std::size_t) const { return 0; }

  void after_step(KvCache& cache, const AttentionRecord&, StepKind kind) {
    // A cache that went back to fewer tokens than it had seen was cleared and refilled: the
    // packed state describes rows that are gone.
    if (cache.tokens_seen() < tokens_seen) reset();
    tokens_seen = cache.tokens_seen();
    if (mode == Mode::Prompt && kind == StepKind::Decode) return;
    const std::size_t L = cache.layers(), NKV = cache.kv_heads();
    if (layers.empty()) {
      layers.assign(L, {});
      heads.assign(L * NKV, {});
    }
    for (std::size_t l = 0; l < L; ++l) {
      for (std::size_t h = 0; h < NKV; ++h)
        if (cache.head(l, h).size() < heads[l * NKV + h].rows)
          fail("<kv cache>", "rows", "absmax holds codes for rows the cache no longer has (it does not compose with eviction)");
      quantize_tensor(cache, l, /*keys=*/true);
      quantize_tensor(cache, l, /*keys=*/false);
      for (std::size_t h = 0; h < NKV; ++h) heads[l * NKV + h].rows = cache.head(l, h).size();
    }
  }

  // Bytes of the buffers held: packed codes, the fp16 scales, and the rows not quantized
  // (none in `decode` mode after a step) at fp16.
  std::size_t stored_bytes(const KvCache& c) const {
    std::size_t bytes = 0;
    for (std::size_t l = 0; l < c.layers(); ++l)
      for (std::size_t h = 0; h < c.kv_heads(); ++h) {
        const std::size_t n = c.head(l, h).size();
        if (heads.empty()) {
          bytes += fp16_kv_bytes(n, c.head_dim());
          continue;
        }
        const HeadState& s = heads[l * c.kv_heads() + h];
        bytes += s.k_codes.size() + s.v_codes.size() + fp16_kv_bytes(n - s.rows, c.head_dim());
      }
    bytes += layers.size() * 2 * sizeof(f16_t);  // K and V scale per layer
    return bytes;
  }

  // What a dequantize-on-read kernel produces: the first heads[l, h].rows key and value rows of
  // head (l, h), from the packed codes and the layer's scales alone (equal to the cache rows).
  void dequantize(std::size_t l, std::size_t h, std::size_t kv_heads, std::size_t head_dim, float* keys, float* values) const {
    const HeadState& st = heads[l * kv_heads + h];
    const std::size_t rb = quant::packed_bytes(head_dim, bits);
    const float sk = to_float(layers[l].k_scale), sv = to_float(layers[l].v_scale);
    std::vector<std::uint8_t> codes(head_dim);
    for (std::size_t r = 0; r < st.rows; ++r) {
      quant::unpack(&st.k_codes[r * rb], head_dim, bits, codes.data());
      quant::sym_dequantize(codes.data(), head_dim, sk, bits, keys + r * head_dim);
      quant::unpack(&st.v_codes[r * rb], head_dim, bits, codes.data());
      quant::sym_dequantize(codes.data(), head_dim, sv, bits, values + r * head_dim);
    }
  }

  std::string identity() const { return "absmax(bits=" + std::to_string(bits) + ",mode=" + mode_name(mode) + ")"; }

 private:
  // Quantizes rows [heads.rows, size) of every head of layer l for one tensor, re-quantizing
  // the stored rows first if the new rows lie outside the current range.
  void quantize_tensor(KvCache& cache, std::size_t l, bool keys) {
    const std::size_t NKV = cache.kv_heads(), D = cache.head_dim(), row_bytes = quant::packed_bytes(D, bits);
    f16_t& scale = keys ? layers[l].k_scale : layers[l].v_scale;
    float absmax = 0.0f;
    for (std::size_t h = 0; h < NKV; ++h) {
      const std::vector<float>& x = keys ? cache.head(l, h).keys : cache.head(l, h).values;
      const std::size_t first = heads[l * NKV + h].rows * D;
      absmax = std::max(absmax, quant::abs_max(x.data() + first, x.size() - first));
    }
    std::vector<std::uint8_t> codes(D);
    const float qmax = static_cast<float>(quant::sym_qmax(bits));
    if (absmax > qmax * to_float(scale)) {
      const f16_t grown = quant::sym_scale(absmax, bits);
      const float s_old = to_float(scale), s_new = to_float(grown);
      for (std::size_t h = 0; h < NKV; ++h) {
        HeadState& st = heads[l * NKV + h];
        std::vector<std::uint8_t>& packed = keys ? st.k_codes : st.v_codes;
        std::vector<float>& x = keys ? cache.head(l, h).keys : cache.head(l, h).values;
        for (std::size_t r = 0; r < st.rows; ++r) {
          quant::unpack(&packed[r * row_bytes], D, bits, codes.data());
          quant::sym_dequantize(codes.data(), D, s_old, bits, &x[r * D]);
          quant::sym_quantize(&x[r * D], D, s_new, bits, codes.data());
          quant::pack(codes.data(), D, bits, &packed[r * row_bytes]);
          quant::sym_dequantize(codes.data(), D, s_new, bits, &x[r * D]);
        }
      }
      scale = grown;
    }
    const float s = to_float(scale);
    for (std::size_t h = 0; h < NKV; ++h) {
      HeadState& st = heads[l * NKV + h];
      std::vector<std::uint8_t>& packed = keys ? st.k_codes : st.v_codes;
      std::vector<float>& x = keys ? cache.head(l, h).keys : cache.head(l, h).values;
      const std::size_t n = x.size() / D;
      packed.resize(n * row_bytes);
      for (std::size_t r = st.rows; r < n; ++r) {
        quant::sym_quantize(&x[r * D], D, s, bits, codes.data());
        quant::pack(codes.data(), D, bits, &packed[r * row_bytes]);
        quant::sym_dequantize(codes.data(), D, s, bits, &x[r * D]);
      }
    }
  }
};

static_assert(CachePolicy<AbsmaxQuant>);

}  // namespace kvcanary::kv
