#pragma once
// `kivi`: KIVI (Liu et al. 2024, "KIVI: A Tuning-Free Asymmetric 2bit Quantization for KV
// Cache", ICML 2024). Keys and values are quantized asymmetrically with b bits,
//
//   z = min(X_g),  s = (max(X_g) − min(X_g)) / (2^b − 1),  q = round((x − z) / s),  x̂ = q·s + z,
//
// but over different groups X_g, because keys have outlier *channels* and values do not:
//   * keys per channel — for each channel, the statistics of a group of G consecutive tokens;
//   * values per token — for each token, the statistics of a group of Gv consecutive channels,
//     Gv = min(G, head_dim) (the paper writes d/G groups, which is 0 when G > head_dim, as
//     for head_dim 64 with G 128); if Gv does not divide head_dim the last group is shorter.
// Rounding, fp16 scale/zero point and packing are kv/quantizer.hpp's.
//
// The most recent tokens stay in full precision (the paper's residual, R tokens), exactly as
// the paper's Algorithm 1 splits them, with n the tokens the head holds:
//   * keys: the first ⌊n / R⌋·R are quantized — during decoding the key residual fills up to R
//     tokens and is then quantized all at once as R/G whole groups of G (so R must be a
//     multiple of G), leaving 0 to R−1 full-precision keys;
//   * values: the first max(0, n − R) are quantized — a value leaves the residual one token at
//     a time, as soon as it is not among the R most recent.
// Since both counts depend only on n, a prompt prefilled in chunks ends in the same state as
// one prefilled whole.
//
// Modes: `prompt` applies the split after prefill steps only (the prompt is quantized once;
// generated tokens stay full precision); `decode` applies it after every step.
//
// The policy's state is the packed cache (codes, fp16 scales and zero points); it writes x̂
// back into the cache rows that attention reads. The rows not quantized are the residual,
// counted in fp16 as `full` counts rows.

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/kv/quantizer.hpp"
#include "kvcanary/model/config.hpp"

namespace kvcanary::kv {

struct KiviQuant {
  static constexpr std::string_view name = "kivi";
  static std::string_view summary() {
    return "KIVI (Liu et al. 2024): asymmetric keys per channel, values per token, groups of G, last R tokens full precision";
  }
  static std::vector<ParameterDoc> parameters() {
    return {{"bits", "budget", "bits per quantized K/V value: 8, 4 or 2; if absent, budget 0.5→8, 0.25→4, 0.125→2"},
            {"group", "32", "group size G (32, 64 or 128): tokens per key group, channels per value group (at most head_dim)"},
            {"residual", "128", "R: most recent tokens kept in full precision; a positive multiple of group"}};
  }
  static KiviQuant create(const PolicyOptions& o, const model::Config&) {
    KiviQuant p;
    p.bits = quant::bits_from_options(o, std::string(name));
    const std::int64_t g = o.get_int("group", 32, 1);
    if (g != 32 && g != 64 && g != 128) fail(o.source(), "group", "must be 32, 64 or 128, got " + std::to_string(g));
    const std::int64_t r = o.get_int("residual", 128, 1);
    if (r % g != 0)
      fail(o.source(), "residual",
           "must be a multiple of group (" + std::to_string(g) + "): keys leave the residual in whole groups, got " + std::to_string(r));
    p.group = static_cast<std::size_t>(g);
    p.residual = static_cast<std::size_t>(r);
    p.mode = o.mode();
    o.reject_unknown(std::string(name));
    return p;
  }

  unsigned bits = 2;
  std::size_t group = 32, residual = 128;
  Mode mode = Mode::Decode;

  // Packed state per layer × KV head. Keys: `k_rows` rows of codes (row-major, packed per
  // row) and head_dim (scale, zero) pairs per group of `group` rows. Values: `v_rows` rows
  // of codes and ceil(head_dim / Gv) pairs per row.
  struct HeadState {
    std::vector<std::uint8_t> k_codes, v_codes;
    std::vector<quant::AsymParams> k_params, v_params;
    std::size_t k_rows = 0, v_rows = 0;
  };
  std::vector<HeadState> heads;  // [layer * kv_heads + kv_head]
  std::int64_t tokens_seen = 0;   // the cache's count at the last step

  void reset() { heads.clear(); }

  std::size_t value_group(std::size_t head_dim) const { return std::min(group, head_dim); }

  std::size_t attention_rows(StepKind, std::size_t) const { return 0; }

  void after_step(KvCache& cache, const AttentionRecord&, StepKind kind) {
    // A cache that went back to fewer tokens than it had seen was cleared and refilled: the
    // packed state describes rows that are gone.
    if (cache.tokens_seen() < tokens_seen) reset();
    tokens_seen = cache.tokens_seen();
    if (mode == Mode::Prompt && kind == StepKind::Decode) return;
    const std::size_t NKV = cache.kv_heads(), D = cache.head_dim(), gv = value_group(D);
    const std::size_t row_bytes = quant::packed_bytes(D, bits), v_groups = (D + gv - 1) / gv;
    if (heads.empty()) heads.assign(cache.layers() * NKV, {});
    std::vector<std::uint8_t> codes(group * D);
    std::vector<float> lo(D), hi(D), sd(D), zd(D);
    for (std::size_t l = 0; l < cache.layers(); ++l)
      for (std::size_t h = 0; h < NKV; ++h) {
        HeadStore& store = cache.head(l, h);
        HeadState& st = heads[l * NKV + h];
        const std::size_t n = store.size();
        if (n < st.k_rows || n < st.v_rows)
          fail("<kv cache>", "rows", "kivi holds codes for rows the cache no longer has (it does not compose with eviction)");
        // Keys: whole groups up to ⌊n/R⌋·R. Values: every token older than the R most recent.
        const std::size_t k_target = n / residual * residual, v_target = n > residual ? n - residual : 0;
        st.k_codes.reserve(k_target * row_bytes);
        st.k_params.reserve(k_target / group * D);
        st.v_codes.reserve(v_target * row_bytes);
        st.v_params.reserve(v_target * v_groups);
        for (; st.k_rows + group <= k_target; st.k_rows += group) {
          float* x = &store.keys[st.k_rows * D];
          const std::size_t p0 = st.k_params.size();
          st.k_params.resize(p0 + D);
          quant::asym_quantize_channels(x, group, D, bits, codes.data(), &st.k_params[p0], lo.data(), hi.data(), sd.data(),
                                        zd.data());
          const std::size_t c0 = st.k_codes.size();
          st.k_codes.resize(c0 + group * row_bytes);
          for (std::size_t t = 0; t < group; ++t) quant::pack(&codes[t * D], D, bits, &st.k_codes[c0 + t * row_bytes]);
          quant::asym_dequantize_channels(codes.data(), group, D, &st.k_params[p0], x, sd.data(), zd.data());
        }
        for (; st.v_rows < v_target; ++st.v_rows) {
          float* x = &store.values[st.v_rows * D];
          const std::size_t p0 = st.v_params.size();
          st.v_params.resize(p0 + v_groups);
          quant::asym_quantize_token(x, D, gv, bits, codes.data(), &st.v_params[p0]);
          const std::size_t c0 = st.v_codes.size();
          st.v_codes.resize(c0 + row_bytes);
          quant::pack(codes.data(), D, bits, &st.v_codes[c0]);
          quant::asym_dequantize_token(codes.data(), D, gv, &st.v_params[p0], x);
        }
      }
  }

  // Bytes of the buffers held: packed codes, fp16 scale and zero point of every group, and the
  // full-precision residual rows (keys and values counted separately: their residuals differ)
  // at fp16.
  std::size_t stored_bytes(const KvCache& c) const {
    const std::size_t D = c.head_dim(), pair = 2 * sizeof(f16_t);
    std::size_t bytes = 0;
    for (std::size_t l = 0; l < c.layers(); ++l)
      for (std::size_t h = 0; h < c.kv_heads(); ++h) {
        const std::size_t n = c.head(l, h).size();
        if (heads.empty()) {
          bytes += fp16_kv_bytes(n, D);
          continue;
        }
        const HeadState& s = heads[l * c.kv_heads() + h];
        bytes += s.k_codes.size() + s.v_codes.size() + (s.k_params.size() + s.v_params.size()) * pair;
        bytes += ((n - s.k_rows) + (n - s.v_rows)) * D * sizeof(f16_t);
      }
    return bytes;
  }

  // What a dequantize-on-read kernel produces for head (l, h): its first k_rows keys and first
  // v_rows values, from codes, scales and zero points alone (equal to the cache rows).
  void dequantize(std::size_t l, std::size_t h, std::size_t kv_heads, std::size_t head_dim, float* keys, float* values) const {
    const HeadState& st = heads[l * kv_heads + h];
    const std::size_t D = head_dim, gv = value_group(D), v_groups = (D + gv - 1) / gv, rb = quant::packed_bytes(D, bits);
    std::vector<std::uint8_t> codes(group * D);
    std::vector<float> sd(D), zd(D);
    for (std::size_t g = 0; g * group < st.k_rows; ++g) {
      for (std::size_t t = 0; t < group; ++t) quant::unpack(&st.k_codes[(g * group + t) * rb], D, bits, &codes[t * D]);
      quant::asym_dequantize_channels(codes.data(), group, D, &st.k_params[g * D], keys + g * group * D, sd.data(), zd.data());
    }
    for (std::size_t r = 0; r < st.v_rows; ++r) {
      quant::unpack(&st.v_codes[r * rb], D, bits, codes.data());
      quant::asym_dequantize_token(codes.data(), D, gv, &st.v_params[r * v_groups], values + r * D);
    }
  }

  std::string identity() const {
    return "kivi(bits=" + std::to_string(bits) + ",group=" + std::to_string(group) + ",residual=" + std::to_string(residual) +
           ",mode=" + mode_name(mode) + ")";
  }
};

static_assert(CachePolicy<KiviQuant>);

}  // namespace kvcanary::kv
