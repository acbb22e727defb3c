#pragma once
// The KV-cache element types deployments ship, as row codecs: one K or V row of head_dim
// values ↔ the bytes a llama.cpp / vLLM / FP4 cache stores for it.
//
//   llama.cpp (--cache-type-k/-v): q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl — blocks of 32 along
//     head_dim, ggml's block structs byte for byte (fp16 scale d [, fp16 min m] [, 32 high
//     bits qh], nibbles j | (j+16) << 4). Codes are those of ggml's reference quantizers
//     (quantize_row_*_ref, the path llama.cpp's CPU cache store takes) as gguf-py transcribes
//     them: float32 arithmetic with every operation rounded (numpy never fuses; the C's own
//     result would depend on the compiler contracting x·id + 8.5 into an FMA), so products
//     below pass through `separately_rounded`.
//     iq4_nl: quantize_row_iq4_nl_impl with no importance weights and ntry = −1 — weights x²,
//     d₀ = max/−127, codes = nearest non-linear level, d = Σwqx / Σwq² (one least-squares refit).
//   vLLM (kv_cache_dtype=fp8_e4m3 / fp8_e5m2): one byte per value, x / s with a per-tensor
//     (per-layer K or V) fp32 scale s, saturating, round to nearest even (kv/minifloat.hpp);
//     x̂ = fp8 · s.
//   nvfp4: blocks of 16, one e4m3 block scale sb = e4m3((amax / 6) / g) and e2m1 codes of
//     x / (sb·g), saturating at ±6; g is the fp32 per-tensor scale; x̂ = e2m1 · (sb·g).
//     Stored per block as [sb][8 bytes: elements 2i | 2i+1 << 4] (NVIDIA's packing).
//   mxfp4: blocks of 32, ggml's block_mxfp4 (e8m0 exponent e, nibbles j | (j+16) << 4) with
//     gguf-py's quantizer: e = floor(log2 amax) − 2 + 127, d = 2^(e−128) (ggml's
//     E8M0_TO_FP32_HALF: half the e8m0 scale, paired with e2m1 levels stored doubled), each
//     code argmin_k |d·level_k − x| (the first on ties).
//
// Domains (tests/kv/test_cache_types.cpp checks the codes against the goldens written by
// scripts/golden/make_cache_type_goldens.py over 2^20 seeded values and ~100 edge blocks):
//   * block formats (llama.cpp's, nvfp4, mxfp4) take finite values with |x| ≤ 65504 — what an
//     fp16 K/V holds; others are a kvcanary::Error (ggml casts a NaN to an integer there: UB).
//     A block whose amax is below 2^−100 (not 0) is stored as zeros: ggml's 1/d overflows
//     there (UB again); a real K/V block is never that small.
//   * fp8 takes anything: NaN → the NaN code (it stays NaN in attention, as on a GPU), ±inf and
//     |x/s| > max → ±max.
// Dequantization equals gguf-py's dequantizers (ggml's dequantize_row_*) bit for bit: x̂ = q·d,
// (q − 8)·d, d·q + m (two roundings), level·d; fp8 and fp4 as above.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/half.hpp"
#include "kvcanary/ops/simd.hpp"
#include "kvcanary/kv/minifloat.hpp"

namespace kvcanary::kv {

enum class CacheType : std::uint8_t { Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, FP8_E4M3, FP8_E5M2, NVFP4, MXFP4 };

struct CacheTypeInfo {
  CacheType type;
  std::string_view name;
  std::size_t block;        // values per block
  std::size_t block_bytes;  // bytes per block, scales included
  bool tensor_scale;        // a per-tensor fp32 scale multiplies every value (fp8, nvfp4)
  std::string_view origin;
};

inline constexpr CacheTypeInfo kCacheTypes[] = {
    {CacheType::Q8_0, "q8_0", 32, 34, false, "llama.cpp: fp16 d + 32 int8"},
    {CacheType::Q4_0, "q4_0", 32, 18, false, "llama.cpp: fp16 d + 32 × 4 bit"},
    {CacheType::Q4_1, "q4_1", 32, 20, false, "llama.cpp: fp16 d, m + 32 × 4 bit"},
    {CacheType::Q5_0, "q5_0", 32, 22, false, "llama.cpp: fp16 d + 32 × 5 bit"},
    {CacheType::Q5_1, "q5_1", 32, 24, false, "llama.cpp: fp16 d, m + 32 × 5 bit"},
    {CacheType::IQ4_NL, "iq4_nl", 32, 18, false, "llama.cpp: fp16 d + 32 × 4-bit non-linear levels"},
    {CacheType::FP8_E4M3, "fp8_e4m3", 1, 1, true, "vLLM fp8 (e4m3), per-tensor fp32 scale"},
    {CacheType::FP8_E5M2, "fp8_e5m2", 1, 1, true, "vLLM fp8_e5m2, per-tensor fp32 scale"},
    {CacheType::NVFP4, "nvfp4", 16, 9, true, "NVFP4: e4m3 scale per 16 × e2m1, per-tensor fp32 scale"},
    {CacheType::MXFP4, "mxfp4", 32, 17, false, "OCP MXFP4 (ggml block_mxfp4): e8m0 scale + 32 × e2m1"},
};

inline const CacheTypeInfo& info(CacheType t) { return kCacheTypes[static_cast<std::size_t>(t)]; }

inline std::optional<CacheType> parse_cache_type(std::string_view name) {
  for (const auto& i : kCacheTypes)
    if (i.name == name) return i.type;
  return std::nullopt;
}

inline std::string cache_type_names() {
  std::string s;
  for (const auto& i : kCacheTypes) s += (s.empty() ? "" : ", ") + std::string(i.name);
  return s;
}

// Bytes of one stored row of D values (D a multiple of the block).
inline std::size_t cache_type_row_bytes(CacheType t, std::size_t D) { return D / info(t).block * info(t).block_bytes; }

inline void require_row_fits(CacheType t, std::size_t D) {
  if (D % info(t).block != 0)
    fail("<kv cache>", "head_dim",
         std::string(info(t).name) + " stores blocks of " + std::to_string(info(t).block) + " values; head_dim " +
             std::to_string(D) + " is not a multiple");
}

namespace cache_codec {

// A product rounded to fp32 on its own, never fused into a following add: the references
// (gguf-py, numpy) round every operation, and GCC contracts a*b + c under -ffp-contract=fast
// (its default for GNU C++) when FMA is available.
inline float separately_rounded(float v) noexcept {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  asm("" : "+x"(v));
#elif defined(__GNUC__) && defined(__aarch64__)
  asm("" : "+w"(v));
#else
  volatile float s = v;
  v = s;
#endif
  return v;
}

inline constexpr float kMaxInput = 65504.0f;    // fp16's largest finite value
inline constexpr float kTinyBlock = 0x1p-100f;  // below: stored as zeros (ggml's 1/d overflows)

// |x| ≤ 65504 and finite for every value of the block, else an Error; returns amax.
inline float checked_amax(const float* x, std::size_t n) {
  float amax = 0.0f;
  bool ok = true;
  for (std::size_t j = 0; j < n; ++j) {
    const float a = std::abs(x[j]);
    ok &= a <= kMaxInput;  // false for NaN too
    amax = a > amax ? a : amax;
  }
  if (!ok)
    fail(
        "<kv cache>", "value",
        "a K/V value is not finite or outside the fp16 range (|x| > 65504): cannot be stored in a llama.cpp/fp4 block");
  return amax;
}

inline void put_f16(std::uint8_t* p, float v) {
  const std::uint16_t b = to_f16(v).bits;
  p[0] = static_cast<std::uint8_t>(b & 0xFF);
  p[1] = static_cast<std::uint8_t>(b >> 8);
}
inline float get_f16(const std::uint8_t* p) { return to_float(f16_t{static_cast<std::uint16_t>(p[0] | (p[1] << 8))}); }

// The first value of largest |x| (ggml: `if (amax < fabsf(v))`), signed.
inline float signed_absmax(const float* x, std::size_t n) {
  float amax = 0.0f, mx = 0.0f;
  for (std::size_t j = 0; j < n; ++j)
    if (amax < std::abs(x[j])) {
      amax = std::abs(x[j]);
      mx = x[j];
    }
  return mx;
}

// A block with 0 < amax < 2^-100 is coded as the all-zero block (which the references code
// well: d = 0, the zero code).
inline const float* tiny_to_zero(const float* x, std::size_t n, float& amax) {
  static constexpr float zeros[32] = {};
  if (amax > 0.0f && amax < kTinyBlock) {
    amax = 0.0f;
    return zeros;
  }
  return x;
}

inline void pack_nibbles_halves(const std::uint8_t* L, std::uint8_t* qs) {  // ggml: j | (j+16) << 4
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<std::uint8_t>(L[j] | (L[j + 16] << 4));
}

// ---- llama.cpp ---------------------------------------------------------------------------

inline void q8_0(const float* x, std::uint8_t* out) {
  float amax = checked_amax(x, 32);
  x = tiny_to_zero(x, 32, amax);
  const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(out, d);
  for (int j = 0; j < 32; ++j) out[2 + j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(std::round(x[j] * id)));
}

// q4_0 / q5_0: d = max / −2^(b−1), q = min(2^b − 1, trunc(x·id + 2^(b−1) + 0.5)).
template <int Bits>
inline void q_0(const float* x, std::uint8_t* out) {
  float amax = checked_amax(x, 32);
  x = tiny_to_zero(x, 32, amax);
  constexpr float half_range = static_cast<float>(1 << (Bits - 1)), qmax = static_cast<float>((1 << Bits) - 1);
  const float d = signed_absmax(x, 32) / -half_range, id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(out, d);
  std::uint8_t L[32];
  for (int j = 0; j < 32; ++j)
    L[j] = static_cast<std::uint8_t>(std::min(qmax, std::trunc(separately_rounded(x[j] * id) + (half_range + 0.5f))));
  if constexpr (Bits == 4) {
    pack_nibbles_halves(L, out + 2);
  } else {
    std::uint32_t qh = 0;
    for (int j = 0; j < 32; ++j) qh |= static_cast<std::uint32_t>(L[j] >> 4) << j;
    for (int i = 0; i < 4; ++i) out[2 + i] = static_cast<std::uint8_t>(qh >> (8 * i));
    for (int j = 0; j < 32; ++j) L[j] &= 0x0F;
    pack_nibbles_halves(L, out + 6);
  }
}

// q4_1 / q5_1: d = (max − min) / (2^b − 1), m = min, q = min(2^b − 1, trunc((x − min)·id + 0.5)).
template <int Bits>
inline void q_1(const float* x, std::uint8_t* out) {
  float amax = checked_amax(x, 32);
  x = tiny_to_zero(x, 32, amax);
  constexpr float qmax = static_cast<float>((1 << Bits) - 1);
  float mn = x[0], mx = x[0];
  for (int j = 1; j < 32; ++j) {
    mn = x[j] < mn ? x[j] : mn;
    mx = x[j] > mx ? x[j] : mx;
  }
  const float d = (mx - mn) / qmax, id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(out, d);
  put_f16(out + 2, mn);
  std::uint8_t L[32];
  for (int j = 0; j < 32; ++j)
    L[j] = static_cast<std::uint8_t>(std::min(qmax, std::trunc(separately_rounded((x[j] - mn) * id) + 0.5f)));
  if constexpr (Bits == 4) {
    pack_nibbles_halves(L, out + 4);
  } else {
    std::uint32_t qh = 0;
    for (int j = 0; j < 32; ++j) qh |= static_cast<std::uint32_t>(L[j] >> 4) << j;
    for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<std::uint8_t>(qh >> (8 * i));
    for (int j = 0; j < 32; ++j) L[j] &= 0x0F;
    pack_nibbles_halves(L, out + 8);
  }
}

inline constexpr float kIq4nlLevels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// ggml's best_index_int8: the nearest level, a tie to the upper one.
inline int iq4nl_index(float al) {
  if (al <= kIq4nlLevels[0]) return 0;
  if (al >= kIq4nlLevels[15]) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (al < kIq4nlLevels[mid])
      hi = mid;
    else
      lo = mid;
  }
  return al - kIq4nlLevels[hi - 1] < kIq4nlLevels[hi] - al ? hi - 1 : hi;
}

inline void iq4_nl(const float* x, std::uint8_t* out) {
  const float amax = checked_amax(x, 32);
  if (amax < 1e-15f) {  // ggml's GROUP_MAX_EPS: d = 0 (ggml leaves stale codes; we write 0)
    std::memset(out, 0, 18);
    return;
  }
  const float d0 = signed_absmax(x, 32) / kIq4nlLevels[0], id = 1.0f / d0;
  float sumqx = 0.0f, sumq2 = 0.0f;
  std::uint8_t L[32];
  for (int j = 0; j < 32; ++j) {
    const int l = iq4nl_index(id * x[j]);
    L[j] = static_cast<std::uint8_t>(l);
    const float q = kIq4nlLevels[l], w = x[j] * x[j];
    sumqx += separately_rounded(separately_rounded(w * q) * x[j]);
    sumq2 += separately_rounded(separately_rounded(w * q) * q);
  }
  put_f16(out, sumqx / sumq2);
  pack_nibbles_halves(L, out + 2);
}

// ---- fp4 -----------------------------------------------------------------------------------

inline constexpr float kMxfp4Levels[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};  // e2m1 × 2

// ggml's GGML_E8M0_TO_FP32_HALF: 2^(e − 128), subnormal for e < 2.
inline float e8m0_half(std::uint8_t e) {
  const std::uint32_t bits = e < 2 ? 0x00200000u << e : static_cast<std::uint32_t>(e - 1) << 23;
  return std::bit_cast<float>(bits);
}

inline void mxfp4(const float* x, std::uint8_t* out) {
  float amax = checked_amax(x, 32);
  x = tiny_to_zero(x, 32, amax);
  // floor(log2f(amax)), as ggml and gguf-py compute it (a float log2 can round up to the next
  // integer a few ulps below a large power of two; we round exactly as they do).
  const int e = amax > 0.0f ? static_cast<int>(std::floor(std::log2(amax))) - 2 + 127 : 0;
  out[0] = static_cast<std::uint8_t>(e);
  const float d = e8m0_half(static_cast<std::uint8_t>(e));
  std::uint8_t L[32];
  for (int j = 0; j < 32; ++j) {
    int best = 0;
    float best_err = std::abs(separately_rounded(d * kMxfp4Levels[0]) - x[j]);
    for (int k = 1; k < 16; ++k) {
      const float err = std::abs(separately_rounded(d * kMxfp4Levels[k]) - x[j]);
      if (err < best_err) {
        best_err = err;
        best = k;
      }
    }
    L[j] = static_cast<std::uint8_t>(best);
  }
  pack_nibbles_halves(L, out + 1);
}

inline void nvfp4(const float* x, float g, std::uint8_t* out) {
  float amax = checked_amax(x, 16);
  x = tiny_to_zero(x, 16, amax);
  const std::uint8_t sb = minifloat::encode<minifloat::kE4M3>((amax / 6.0f) / g);
  out[0] = sb;
  const float S = minifloat::decode_e4m3(sb) * g;
  for (int i = 0; i < 8; ++i) {
    std::uint8_t c[2];
    for (int k = 0; k < 2; ++k) c[k] = S > 0.0f ? minifloat::encode<minifloat::kE2M1>(x[2 * i + k] / S) & 0x0F : 0;
    out[1 + i] = static_cast<std::uint8_t>(c[0] | (c[1] << 4));
  }
}

}  // namespace cache_codec

// Codes of one row of n values (n a multiple of the type's block); `tensor_scale` is the
// per-tensor fp32 scale (fp8, nvfp4; ignored by the others).
inline void quantize_row(CacheType t, const float* x, std::size_t n, float tensor_scale, std::uint8_t* out) {
  namespace c = cache_codec;
  const std::size_t B = info(t).block, bytes = info(t).block_bytes;
  switch (t) {
    case CacheType::FP8_E4M3:
      for (std::size_t i = 0; i < n; ++i) out[i] = minifloat::encode<minifloat::kE4M3>(x[i] / tensor_scale);
      return;
    case CacheType::FP8_E5M2:
      for (std::size_t i = 0; i < n; ++i) out[i] = minifloat::encode<minifloat::kE5M2>(x[i] / tensor_scale);
      return;
    default: break;
  }
  for (std::size_t b = 0; b < n / B; ++b) {
    const float* xb = x + b * B;
    std::uint8_t* ob = out + b * bytes;
    switch (t) {
      case CacheType::Q8_0: c::q8_0(xb, ob); break;
      case CacheType::Q4_0: c::q_0<4>(xb, ob); break;
      case CacheType::Q5_0: c::q_0<5>(xb, ob); break;
      case CacheType::Q4_1: c::q_1<4>(xb, ob); break;
      case CacheType::Q5_1: c::q_1<5>(xb, ob); break;
      case CacheType::IQ4_NL: c::iq4_nl(xb, ob); break;
      case CacheType::MXFP4: c::mxfp4(xb, ob); break;
      case CacheType::NVFP4: c::nvfp4(xb, tensor_scale, ob); break;
      default: break;
    }
  }
}

#if KVCANARY_AVX2
// AVX2 decoding of one 32-value block, the same operations as the scalar code per lane (one
// fp32 multiply, then for q4_1/q5_1 a separately rounded add), so the values are identical.
namespace avx2 {

// The 32 codes of a block whose nibbles are ggml's j | (j+16) << 4: code j in byte j.
inline __m256i nibbles(const std::uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)), m = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
}

// q5's fifth bits: byte j = 0x10 if bit j of qh is set.
inline __m256i high_bits(std::uint32_t qh) {
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(qh)),
      _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i with_others =
      _mm256_or_si256(spread, _mm256_set1_epi64x(0x7FBFDFEFF7FBFDFE));  // all other bits of the byte set
  return _mm256_and_si256(_mm256_cmpeq_epi8(with_others, _mm256_set1_epi64x(-1)), _mm256_set1_epi8(0x10));
}

inline __m256i lookup(__m256i codes, const std::int8_t (&table)[16]) {
  return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table))),
                             codes);
}

// y[0..32) = float(b_j)·d (+ m, rounded separately), b signed or unsigned bytes.
template <bool Signed, bool AddMin>
inline void scale_store(__m256i b, float d, float m, float* y) {
  const __m128i half[2] = {_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1)};
  const __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(m);
  for (int h = 0; h < 2; ++h)
    for (int k = 0; k < 2; ++k) {
      const __m128i eight = k == 0 ? half[h] : _mm_srli_si128(half[h], 8);
      const __m256 q = _mm256_cvtepi32_ps(Signed ? _mm256_cvtepi8_epi32(eight) : _mm256_cvtepu8_epi32(eight));
      __m256 v = _mm256_mul_ps(q, dv);
      if constexpr (AddMin) {
        asm("" : "+x"(v));  // the product rounded on its own (see separately_rounded)
        v = _mm256_add_ps(v, mv);
      }
      _mm256_storeu_ps(y + 16 * h + 8 * k, v);
    }
}

inline constexpr std::int8_t kIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
inline constexpr std::int8_t kMxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// Whether the type has an AVX2 block decoder; if so, decodes one block.
inline bool block(CacheType t, const std::uint8_t* p, float* y) {
  switch (t) {
    case CacheType::Q4_0:
      scale_store<true, false>(_mm256_sub_epi8(nibbles(p + 2), _mm256_set1_epi8(8)), cache_codec::get_f16(p), 0.0f, y);
      return true;
    case CacheType::Q4_1:
      scale_store<false, true>(nibbles(p + 4), cache_codec::get_f16(p), cache_codec::get_f16(p + 2), y);
      return true;
    case CacheType::Q5_0: {
      std::uint32_t qh;
      std::memcpy(&qh, p + 2, 4);
      scale_store<true, false>(_mm256_sub_epi8(_mm256_or_si256(nibbles(p + 6), high_bits(qh)), _mm256_set1_epi8(16)),
                               cache_codec::get_f16(p), 0.0f, y);
      return true;
    }
    case CacheType::Q5_1: {
      std::uint32_t qh;
      std::memcpy(&qh, p + 4, 4);
      scale_store<false, true>(_mm256_or_si256(nibbles(p + 8), high_bits(qh)), cache_codec::get_f16(p),
                               cache_codec::get_f16(p + 2), y);
      return true;
    }
    case CacheType::IQ4_NL:
      scale_store<true, false>(lookup(nibbles(p + 2), kIq4nl), cache_codec::get_f16(p), 0.0f, y);
      return true;
    case CacheType::MXFP4:
      scale_store<true, false>(lookup(nibbles(p + 1), kMxfp4), cache_codec::e8m0_half(p[0]), 0.0f, y);
      return true;
    case CacheType::Q8_0:
      scale_store<true, false>(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2)), cache_codec::get_f16(p),
                               0.0f, y);
      return true;
    default: return false;
  }
}

}  // namespace avx2
#endif

// One block of a block type, scalar: the reference the AVX2 decoder is tested against, and
// the decoder without AVX2.
inline void dequantize_block_portable(CacheType t, const std::uint8_t* p, float tensor_scale, float* y) {
  namespace c = cache_codec;
  switch (t) {
    case CacheType::Q8_0: {
      const float d = c::get_f16(p);
      for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<std::int8_t>(p[2 + j])) * d;
      break;
    }
    case CacheType::Q4_0: {
      const float d = c::get_f16(p);
      for (int j = 0; j < 16; ++j) {
        y[j] = static_cast<float>((p[2 + j] & 0x0F) - 8) * d;
        y[j + 16] = static_cast<float>((p[2 + j] >> 4) - 8) * d;
      }
      break;
    }
    case CacheType::Q4_1: {
      const float d = c::get_f16(p), m = c::get_f16(p + 2);
      for (int j = 0; j < 16; ++j) {
        y[j] = c::separately_rounded(d * static_cast<float>(p[4 + j] & 0x0F)) + m;
        y[j + 16] = c::separately_rounded(d * static_cast<float>(p[4 + j] >> 4)) + m;
      }
      break;
    }
    case CacheType::Q5_0:
    case CacheType::Q5_1: {
      const bool has_min = t == CacheType::Q5_1;
      const float d = c::get_f16(p), m = has_min ? c::get_f16(p + 2) : 0.0f;
      const std::uint8_t* qhp = p + (has_min ? 4 : 2);
      const std::uint32_t qh = qhp[0] | (qhp[1] << 8) | (qhp[2] << 16) | (static_cast<std::uint32_t>(qhp[3]) << 24);
      const std::uint8_t* qs = qhp + 4;
      for (int j = 0; j < 32; ++j) {
        const int lo = j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
        const int q = lo | static_cast<int>(((qh >> j) & 1u) << 4);
        y[j] = has_min ? c::separately_rounded(d * static_cast<float>(q)) + m : static_cast<float>(q - 16) * d;
      }
      break;
    }
    case CacheType::IQ4_NL: {
      const float d = c::get_f16(p);
      for (int j = 0; j < 16; ++j) {
        y[j] = d * c::kIq4nlLevels[p[2 + j] & 0x0F];
        y[j + 16] = d * c::kIq4nlLevels[p[2 + j] >> 4];
      }
      break;
    }
    case CacheType::MXFP4: {
      const float d = c::e8m0_half(p[0]);
      for (int j = 0; j < 16; ++j) {
        y[j] = d * c::kMxfp4Levels[p[1 + j] & 0x0F];
        y[j + 16] = d * c::kMxfp4Levels[p[1 + j] >> 4];
      }
      break;
    }
    case CacheType::NVFP4: {
      const float S = minifloat::decode_e4m3(p[0]) * tensor_scale;
      for (int i = 0; i < 8; ++i) {
        y[2 * i] = minifloat::decode_e2m1(p[1 + i] & 0x0F) * S;
        y[2 * i + 1] = minifloat::decode_e2m1(p[1 + i] >> 4) * S;
      }
      break;
    }
    default: break;
  }
}

// x̂ of one row of n values, as gguf-py's dequantizers compute it (fp32, one rounding per
// operation).
inline void dequantize_row(CacheType t, const std::uint8_t* in, std::size_t n, float tensor_scale, float* out) {
  const std::size_t B = info(t).block, bytes = info(t).block_bytes;
  switch (t) {
    case CacheType::FP8_E4M3: {
      const auto& table = minifloat::decode_table<minifloat::kE4M3>();
      for (std::size_t i = 0; i < n; ++i) out[i] = table[in[i]] * tensor_scale;
      return;
    }
    case CacheType::FP8_E5M2: {
      const auto& table = minifloat::decode_table<minifloat::kE5M2>();
      for (std::size_t i = 0; i < n; ++i) out[i] = table[in[i]] * tensor_scale;
      return;
    }
    default: break;
  }
  for (std::size_t b = 0; b < n / B; ++b) {
    const std::uint8_t* p = in + b * bytes;
    float* y = out + b * B;
#if KVCANARY_AVX2
    if (avx2::block(t, p, y)) continue;
#endif
    dequantize_block_portable(t, p, tensor_scale, y);
  }
}

}  // namespace kvcanary::kv
