#pragma once
// The leading rows of one KV head's keys (or values) held the way a quantized cache holds
// them — b-bit codes packed per row plus fp16 (scale, zero) pairs — instead of fp32.
// Attention reads them through small dequantize-on-read tiles (kv/cache.hpp), so no
// full-precision copy of a quantized row exists: the process holds what the budget counts.
//
// One layout serves every quantizer of kv/: the pair of element (r, d) is
//
//   params[(r / group_rows) · col_groups + d / group_cols],   col_groups = ⌈D / group_cols⌉,
//
// with group_rows = 0 meaning one row group for all rows. absmax: one pair per tensor
// (group_rows 0, group_cols D); KIVI keys: per channel over G tokens (G, 1); KIVI values: per
// token over Gv channels (1, Gv).
//
// Dequantization is kv/quantizer.hpp's, bit for bit: asymmetric x̂ = fma(q, s, z);
// symmetric x̂ = (q − 2^(b−1))·s, computed here as fma(q, s, −2^(b−1)·s) — the same exact
// value (2^(b−1)·s is exact in fp32: a power of two times an fp16) rounded once.
//
// A store may instead hold rows of a deployed cache type (kv/cache_types.hpp: llama.cpp's
// q8_0 … iq4_nl, fp8, nvfp4, mxfp4): each row is then the type's blocks, scales inside, with
// one per-tensor fp32 scale for the store (fp8, nvfp4), and x̂ is the type's dequantization.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/half.hpp"
#include "kvcanary/ops/simd.hpp"
#include "kvcanary/kv/cache_types.hpp"
#include "kvcanary/kv/quantizer.hpp"

namespace kvcanary::kv {

struct PackedRows {
  unsigned bits = 0;  // 0: nothing packed yet
  bool symmetric = false;
  std::size_t group_rows = 0, group_cols = 0;
  std::size_t rows = 0;                   // the head's first `rows` rows are held here
  std::vector<std::uint8_t> codes;        // rows × packed_bytes(D, bits)
  std::vector<quant::AsymParams> params;  // fp16 (scale, zero); zero unused when symmetric
  std::optional<CacheType> type;          // set: rows are this cache type's blocks (bits, params unused)
  float tensor_scale = 1.0f;              // the type's per-tensor scale (fp8, nvfp4)

  // Fixes the layout before the first row is packed; a store that already holds rows in
  // another layout (two quantizers on one cache) is refused rather than misread.
  void configure(unsigned b, bool sym, std::size_t g_rows, std::size_t g_cols) {
    if (rows > 0 && (type || b != bits || sym != symmetric || g_rows != group_rows || g_cols != group_cols))
      fail("<kv cache>", "packed rows", "a head holds rows packed in another layout (two quantizers on one cache?)");
    type.reset();
    bits = b;
    symmetric = sym;
    group_rows = g_rows;
    group_cols = g_cols;
  }
  void configure_type(CacheType t, float scale, std::size_t D) {
    if (rows > 0 && (type != t || scale != tensor_scale))
      fail("<kv cache>", "packed rows", "a head holds rows packed in another layout (two quantizers on one cache?)");
    require_row_fits(t, D);
    type = t;
    tensor_scale = scale;
    bits = 0;
  }

  std::size_t row_bytes(std::size_t D) const {
    return type ? cache_type_row_bytes(*type, D) : quant::packed_bytes(D, bits);
  }
  std::size_t col_groups(std::size_t D) const { return (D + group_cols - 1) / group_cols; }
  std::size_t bytes() const { return codes.size() + params.size() * sizeof(quant::AsymParams); }

  // Appends n rows of unpacked codes (row-major, D per row); their pairs are the caller's to
  // append to `params`.
  void push_codes(const std::uint8_t* row_codes, std::size_t n, std::size_t D) {
    const std::size_t rb = row_bytes(D), c0 = codes.size();
    codes.resize(c0 + n * rb);
    for (std::size_t t = 0; t < n; ++t) quant::pack(row_codes + t * D, D, bits, &codes[c0 + t * rb]);
    rows += n;
  }

  // Appends n rows (row-major, D per row) coded as the configured cache type.
  void push_typed(const float* x, std::size_t n, std::size_t D) {
    const std::size_t rb = row_bytes(D), c0 = codes.size();
    codes.resize(c0 + n * rb);
    for (std::size_t t = 0; t < n; ++t) quantize_row(*type, x + t * D, D, tensor_scale, &codes[c0 + t * rb]);
    rows += n;
  }

  // Whether a row can be dropped without touching the others: rows of a cache type and
  // layouts whose pairs are per tensor or per row (absmax; KIVI values). KIVI's keys share
  // per-channel pairs across G rows and cannot lose one.
  bool rows_independent() const { return type || group_rows <= 1; }

  // Keep only the packed rows `kept` (ascending), e.g. after an eviction policy chose them.
  void require_can_keep(std::size_t kept) const {
    if (kept != rows && !rows_independent())
      fail("<kv cache>", "rows",
           "eviction cannot remove rows from a group quantized together (KIVI keys share per-channel scales over G "
           "rows)");
  }
  void keep(std::span<const std::size_t> kept, std::size_t D) {
    require_can_keep(kept.size());
    if (kept.size() == rows) return;  // ascending and all present: nothing removed
    const std::size_t rb = row_bytes(D), cg = type ? 0 : col_groups(D);
    const bool per_row_params = !type && group_rows == 1;
    std::size_t dst = 0;
    for (std::size_t r : kept) {
      if (r != dst) {
        std::memmove(&codes[dst * rb], &codes[r * rb], rb);
        if (per_row_params)
          std::copy_n(params.begin() + static_cast<std::ptrdiff_t>(r * cg), cg,
                      params.begin() + static_cast<std::ptrdiff_t>(dst * cg));
      }
      ++dst;
    }
    codes.resize(dst * rb);
    if (per_row_params) params.resize(dst * cg);
    rows = dst;
  }

  // x̂ of rows [first, first + count) into out [count, D].
  void dequantize(std::size_t first, std::size_t count, std::size_t D, float* out) const {
    if (type) {
      const std::size_t rb = row_bytes(D);
      for (std::size_t t = 0; t < count; ++t)
        dequantize_row(*type, &codes[(first + t) * rb], D, tensor_scale, out + t * D);
      return;
    }
    switch (bits) {
      case 8: return dequantize_t<8>(first, count, D, out);
      case 4: return dequantize_t<4>(first, count, D, out);
      default: return dequantize_t<2>(first, count, D, out);
    }
  }

 private:
  static constexpr std::size_t kMaxHeadDim = 512;  // Llama/Qwen/Mistral 64–128, Gemma 256

  // fp16 → fp32, exact either way; F16C does it in one instruction (once per group here).
  static float widen(f16_t h) {
#if KVCANARY_AVX2
    return _cvtsh_ss(h.bits);
#else
    return to_float(h);
#endif
  }

  // Codes widen in registers straight from the packed bytes (8 per step: a byte each at 8
  // bits; one 32-bit word at 4 bits, 16 bits at 2, split by per-lane shifts), then one FMA
  // per element with the (s, z) of its group.
  template <unsigned B>
  void dequantize_t(std::size_t first, std::size_t count, std::size_t D, float* out) const {
    if (D > kMaxHeadDim)
      fail("<kv cache>", "head_dim", "packed rows support head_dim up to " + std::to_string(kMaxHeadDim));
    // (s, z) per column group of the current row group; per channel too where groups are
    // not whole vectors (KIVI keys: one pair per channel; a value group of head_dim < 8k).
    alignas(32) float group_scale[kMaxHeadDim], group_zero[kMaxHeadDim], scale_of[kMaxHeadDim], zero_of[kMaxHeadDim];
    const bool per_lane = group_cols % 8 != 0;
    constexpr unsigned per_byte = 8 / B, mask = (1u << B) - 1u;
    const std::size_t cg = col_groups(D), rb = row_bytes(D);
    const float offset = static_cast<float>(1u << (B - 1));
    std::size_t loaded_group = static_cast<std::size_t>(-1);
#if KVCANARY_AVX2
    const __m256i shifts = _mm256_setr_epi32(0, B, 2 * B, 3 * B, 4 * B, 5 * B, 6 * B, 7 * B);
    const __m256i lane_mask = _mm256_set1_epi32(static_cast<int>(mask));
#endif
    for (std::size_t t = 0; t < count; ++t) {
      const std::size_t r = first + t, row_group = group_rows == 0 ? 0 : r / group_rows;
      if (row_group != loaded_group) {
        for (std::size_t g = 0; g < cg; ++g) {
          const quant::AsymParams& p = params[row_group * cg + g];
          group_scale[g] = widen(p.scale);
          group_zero[g] = symmetric ? -offset * group_scale[g] : widen(p.zero);
        }
        if (per_lane)
          for (std::size_t d = 0; d < D; ++d) {
            scale_of[d] = group_scale[d / group_cols];
            zero_of[d] = group_zero[d / group_cols];
          }
        loaded_group = row_group;
      }
      const std::uint8_t* row = &codes[r * rb];
      float* x = out + t * D;
      std::size_t d = 0;
#if KVCANARY_AVX2
      auto codes8 = [&](std::size_t at) {
        if constexpr (B == 8) {
          return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + at)));
        } else {
          std::uint32_t word = 0;
          std::memcpy(&word, row + at / per_byte, B);  // 8 codes of B bits = B bytes
          return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(word)), shifts), lane_mask);
        }
      };
      if (per_lane) {
        for (; d + 8 <= D; d += 8)
          _mm256_storeu_ps(x + d, _mm256_fmadd_ps(_mm256_cvtepi32_ps(codes8(d)), _mm256_load_ps(scale_of + d),
                                                  _mm256_load_ps(zero_of + d)));
      } else {  // whole vectors per group: (s, z) broadcast once per group
        for (std::size_t g = 0; g < cg && d + 8 <= D; ++g) {
          const __m256 sv = _mm256_set1_ps(group_scale[g]), zv = _mm256_set1_ps(group_zero[g]);
          for (const std::size_t end = std::min(D, (g + 1) * group_cols); d + 8 <= end; d += 8)
            _mm256_storeu_ps(x + d, _mm256_fmadd_ps(_mm256_cvtepi32_ps(codes8(d)), sv, zv));
        }
      }
#endif
      // GCC 12 flags this tail (head_dim not a multiple of 8) as running past the scratch
      // arrays when it has inlined a head_dim that is a multiple of 8, where it never runs.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Waggressive-loop-optimizations"
#endif
      for (; d < D; ++d) {
        const unsigned code = (static_cast<unsigned>(row[d / per_byte]) >> ((d % per_byte) * B)) & mask;
        x[d] = std::fma(static_cast<float>(code), group_scale[d / group_cols], group_zero[d / group_cols]);
      }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
    }
  }
};

}  // namespace kvcanary::kv
