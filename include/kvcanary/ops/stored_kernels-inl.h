// The kernels of ops/stored_matmul.hpp, written once and compiled once per instruction set:
// stored_matmul.hpp includes this file three times, inside `#pragma GCC target` regions, with
// KVC_SK_NS (the namespace) and KVC_SK_LEVEL (0 scalar, 1 AVX2+FMA, 2 AVX-512) defined.
// No include guard on purpose.
//
// y[r, o] = Σ_k x[r, k] · W[o, k] with W in its GGUF blocks. A group of weight rows is
// dequantized into a few KB of L1-resident fp32 (each value bit-identical to
// io::dequantize: the formulas of io/gguf_quants.hpp, whose products are exact), then every
// activation row of the block is multiplied against it.
//
// The summation order is one fixed order for every (r, o), whatever the ISA, the batch, the
// tile or the thread (batched decode is bit-identical to unbatched; every ISA is bit-identical
// to the scalar reference):
//   16 lanes, lane l accumulates k ≡ l (mod 16) by FMA in increasing k from +0;
//   then s8[i] = a[i] + a[i+8], s4[i] = s8[i] + s8[i+4], s2[i] = s4[i] + s4[i+2], y = s2[0] + s2[1];
//   then + bias[o] (+0 without bias).
// AVX-512 holds the 16 lanes in one zmm, AVX2 in two ymm (lanes 0-7, 8-15), scalar in an
// array with std::fma.

namespace kvcanary::ops::KVC_SK_NS {

#if KVC_SK_LEVEL >= 1
#include "kvcanary/ops/hsum8-inl.h"  // s4, s2, s1 of the order above, for this target
#endif

#if KVC_SK_LEVEL == 2
struct V16 {
  __m512 v;
};
inline V16 vzero() { return {_mm512_setzero_ps()}; }
inline V16 vload(const float* p) { return {_mm512_loadu_ps(p)}; }
inline V16 vfma(V16 a, V16 b, V16 c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
inline float vreduce(V16 a) {
  // Through memory: GCC 12's _mm512_castps512_ps256 / extract intrinsics trip its
  // -Wuninitialized (an undefined pass-through operand); this runs once per output.
  alignas(64) float t[16];
  _mm512_store_ps(t, a.v);
  return hsum8(_mm256_add_ps(_mm256_load_ps(t), _mm256_load_ps(t + 8)));
}
constexpr int kGW = 4, kMR = 3, kGW1 = 4;  // tile: weight rows × activation rows; kGW1 for a lone row
#elif KVC_SK_LEVEL == 1
struct V16 {
  __m256 lo, hi;
};
inline V16 vzero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
inline V16 vload(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
inline V16 vfma(V16 a, V16 b, V16 c) { return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)}; }
inline float vreduce(V16 a) { return hsum8(_mm256_add_ps(a.lo, a.hi)); }
constexpr int kGW = 2, kMR = 2, kGW1 = 4;  // 8 ymm accumulators either way, of 16 registers
#else
struct V16 {
  float v[16];
};
inline V16 vzero() { return V16{}; }
inline V16 vload(const float* p) {
  V16 r;
  for (int i = 0; i < 16; ++i) r.v[i] = p[i];
  return r;
}
inline V16 vfma(V16 a, V16 b, V16 c) {
  V16 r;
  for (int i = 0; i < 16; ++i) r.v[i] = std::fma(a.v[i], b.v[i], c.v[i]);
  return r;
}
inline float vreduce(V16 a) {
  float s8[8], s4[4], s2[2];
  for (int i = 0; i < 8; ++i) s8[i] = a.v[i] + a.v[i + 8];
  for (int i = 0; i < 4; ++i) s4[i] = s8[i] + s8[i + 4];
  for (int i = 0; i < 2; ++i) s2[i] = s4[i] + s4[i + 2];
  return s2[0] + s2[1];
}
constexpr int kGW = 1, kMR = 1, kGW1 = 1;
#endif

// --- dequantization of one row (whole blocks), bit-identical to io::dequantize ---------------
// The formulas and bit positions are those of io/gguf_quants.hpp (see its exactness argument:
// every product is exact, so contracting `a * b + c` into an FMA gives the same bits); the
// loops are shaped so the compiler vectorizes them for this file's target.

inline float f16_at(const std::uint8_t* p) {
  std::uint16_t b;
  std::memcpy(&b, p, 2);
#if KVC_SK_LEVEL >= 1
  return _cvtsh_ss(b);  // F16C: exact, as to_float is (they differ only in NaN payloads)
#else
  return to_float(f16_t{b});
#endif
}

inline void dq_q4_0(const std::uint8_t* s, float* dst, std::size_t nb) {
  for (std::size_t b = 0; b < nb; ++b, s += 18, dst += 32) {
    const float d = f16_at(s);
    for (int j = 0; j < 16; ++j) dst[j] = d * static_cast<float>(static_cast<int>(s[2 + j] & 0x0F) - 8);
    for (int j = 0; j < 16; ++j) dst[16 + j] = d * static_cast<float>(static_cast<int>(s[2 + j] >> 4) - 8);
  }
}

inline void dq_q4_1(const std::uint8_t* s, float* dst, std::size_t nb) {
  for (std::size_t b = 0; b < nb; ++b, s += 20, dst += 32) {
    const float d = f16_at(s), m = f16_at(s + 2);
    for (int j = 0; j < 16; ++j) dst[j] = d * static_cast<float>(s[4 + j] & 0x0F) + m;
    for (int j = 0; j < 16; ++j) dst[16 + j] = d * static_cast<float>(s[4 + j] >> 4) + m;
  }
}

inline void dq_q5_0(const std::uint8_t* s, float* dst, std::size_t nb) {
  for (std::size_t b = 0; b < nb; ++b, s += 22, dst += 32) {
    const float d = f16_at(s);
    std::uint32_t qh;
    std::memcpy(&qh, s + 2, 4);
    for (int j = 0; j < 16; ++j)
      dst[j] = d * static_cast<float>(static_cast<int>((s[6 + j] & 0x0F) | (((qh >> j) & 1u) << 4)) - 16);
    for (int j = 0; j < 16; ++j)
      dst[16 + j] = d * static_cast<float>(static_cast<int>((s[6 + j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - 16);
  }
}

inline void dq_q8_0(const std::uint8_t* s, float* dst, std::size_t nb) {
  for (std::size_t b = 0; b < nb; ++b, s += 34, dst += 32) {
    const float d = f16_at(s);
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(static_cast<std::int8_t>(s[2 + j])) * d;
  }
}

inline void dq_q4_k(const std::uint8_t* s, float* dst, std::size_t nb) {
  for (std::size_t b = 0; b < nb; ++b, s += 144, dst += 256) {
    const float d = f16_at(s), dmin = f16_at(s + 2);
    const std::uint8_t* qs = s + 16;
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      io::gguf_detail::k4_scale_min(s + 4, j, sc, m);
      const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
      const std::uint8_t* q = qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) dst[32 * j + l] = dl * static_cast<float>((q[l] >> shift) & 0x0F) - ml;
    }
  }
}

inline void dq_q6_k(const std::uint8_t* s, float* dst, std::size_t nb) {
  for (std::size_t b = 0; b < nb; ++b, s += 210, dst += 256) {
    const std::uint8_t *ql = s, *qh = s + 128, *sc = s + 192;
    const float d = f16_at(s + 208);
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k)
        for (int half = 0; half < 2; ++half) {
          const float dl = d * static_cast<float>(static_cast<std::int8_t>(sc[8 * h + 2 * k + half]));
          const std::uint8_t* lo = ql + 64 * h + 32 * (k % 2) + 16 * half;
          const std::uint8_t* hi = qh + 32 * h + 16 * half;
          float* o = dst + 128 * h + 32 * k + 16 * half;
          for (int l = 0; l < 16; ++l)
            o[l] = dl * static_cast<float>(
                            static_cast<int>(((lo[l] >> (4 * (k / 2))) & 0x0F) | (((hi[l] >> (2 * k)) & 3) << 4)) - 32);
        }
  }
}

#if KVC_SK_LEVEL >= 1
// AVX2 forms of the hot types (the AVX-512 build uses them too): 32 quants as int8 in one
// ymm, widened 8 at a time to fp32 and scaled. Same formulas, same exact products, so the same
// bits as the loops above (tests/ops/test_stored_matmul.cpp checks it per ISA).

// Writes the 32 int8 values of q, times s0 (elements 0-15) and s1 (16-31), to dst.
inline void put32(__m256i q, float s0, float s1, float* dst) {
  const __m128i a = _mm256_castsi256_si128(q), b = _mm256_extracti128_si256(q, 1);
#if KVC_SK_LEVEL == 2
  _mm512_storeu_ps(dst, _mm512_mul_ps(_mm512_set1_ps(s0), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(a))));
  _mm512_storeu_ps(dst + 16, _mm512_mul_ps(_mm512_set1_ps(s1), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b))));
#else
  const __m256 lo = _mm256_set1_ps(s0), hi = _mm256_set1_ps(s1);
  _mm256_storeu_ps(dst, _mm256_mul_ps(lo, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(a))));
  _mm256_storeu_ps(dst + 8, _mm256_mul_ps(lo, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(a, a)))));
  _mm256_storeu_ps(dst + 16, _mm256_mul_ps(hi, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b))));
  _mm256_storeu_ps(dst + 24, _mm256_mul_ps(hi, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(b, b)))));
#endif
}
// The same for unsigned q (0..255) as d * q + m (sign +1) or d * q - m (sign -1), one rounding
// (see gguf_quants.hpp: the product is exact, so fused or not gives the same bits).
template <int Sign>
inline void put32_affine(__m256i q, float d, float m, float* dst) {
  const __m128i a = _mm256_castsi256_si128(q), b = _mm256_extracti128_si256(q, 1);
#if KVC_SK_LEVEL == 2
  const __m512 dv = _mm512_set1_ps(d), mv = _mm512_set1_ps(m);
  const auto f = [&](__m128i x) {
    const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(x));
    return Sign > 0 ? _mm512_fmadd_ps(dv, v, mv) : _mm512_fmsub_ps(dv, v, mv);
  };
  _mm512_storeu_ps(dst, f(a));
  _mm512_storeu_ps(dst + 16, f(b));
#else
  const __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(m);
  const auto f = [&](__m128i x) {
    const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(x));
    return Sign > 0 ? _mm256_fmadd_ps(dv, v, mv) : _mm256_fmsub_ps(dv, v, mv);
  };
  _mm256_storeu_ps(dst, f(a));
  _mm256_storeu_ps(dst + 8, f(_mm_unpackhi_epi64(a, a)));
  _mm256_storeu_ps(dst + 16, f(b));
  _mm256_storeu_ps(dst + 24, f(_mm_unpackhi_epi64(b, b)));
#endif
}
// 16 bytes of nibbles -> 32 bytes: the low nibbles (elements 0-15), then the high (16-31).
inline __m256i nibbles32(const std::uint8_t* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i m = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
}
// Byte i = 0x10 if bit i of the 32-bit word at p is set, else 0 (Q5_0's fifth bits).
inline __m256i bit4_of_bits32(const std::uint8_t* p) {
  std::uint32_t w;
  std::memcpy(&w, p, 4);
  // Byte i takes byte i / 8 of w (shuffles stay within 128-bit lanes; w is in every dword).
  const __m256i which = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                         2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);  // byte i: 1 << (i % 8)
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(w)), which);
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

inline void dq_q4_0_simd(const std::uint8_t* s, float* dst, std::size_t nb) {
  for (std::size_t b = 0; b < nb; ++b, s += 18, dst += 32) {
    const float d = f16_at(s);
    put32(_mm256_sub_epi8(nibbles32(s + 2), _mm256_set1_epi8(8)), d, d, dst);
  }
}
inline void dq_q4_1_simd(const std::uint8_t* s, float* dst, std::size_t nb) {
  for (std::size_t b = 0; b < nb; ++b, s += 20, dst += 32)
    put32_affine<1>(nibbles32(s + 4), f16_at(s), f16_at(s + 2), dst);
}
inline void dq_q5_0_simd(const std::uint8_t* s, float* dst, std::size_t nb) {
  for (std::size_t b = 0; b < nb; ++b, s += 22, dst += 32) {
    const float d = f16_at(s);
    const __m256i q = _mm256_or_si256(nibbles32(s + 6), bit4_of_bits32(s + 2));
    put32(_mm256_sub_epi8(q, _mm256_set1_epi8(16)), d, d, dst);
  }
}
inline void dq_q8_0_simd(const std::uint8_t* s, float* dst, std::size_t nb) {
  for (std::size_t b = 0; b < nb; ++b, s += 34, dst += 32) {
    const float d = f16_at(s);
    put32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 2)), d, d, dst);
  }
}
inline void dq_q4_k_simd(const std::uint8_t* s, float* dst, std::size_t nb) {
  for (std::size_t b = 0; b < nb; ++b, s += 144, dst += 256) {
    const float d = f16_at(s), dmin = f16_at(s + 2);
    for (int i = 0; i < 4; ++i) {  // sub-blocks 2i (low nibbles) and 2i + 1 (high) share 32 bytes
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 16 + 32 * i));
      const __m256i m4 = _mm256_set1_epi8(0x0F);
      for (int h = 0; h < 2; ++h) {
        int sc, m;
        io::gguf_detail::k4_scale_min(s + 4, 2 * i + h, sc, m);
        const __m256i q = h ? _mm256_and_si256(_mm256_srli_epi16(v, 4), m4) : _mm256_and_si256(v, m4);
        put32_affine<-1>(q, d * static_cast<float>(sc), dmin * static_cast<float>(m), dst + 64 * i + 32 * h);
      }
    }
  }
}
inline void dq_q6_k_simd(const std::uint8_t* s, float* dst, std::size_t nb) {
  for (std::size_t b = 0; b < nb; ++b, s += 210, dst += 256) {
    const std::uint8_t *ql = s, *qh = s + 128, *sc = s + 192;
    const float d = f16_at(s + 208);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03), k32 = _mm256_set1_epi8(32);
    for (int h = 0; h < 2; ++h) {
      const __m256i hv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh + 32 * h));
      for (int k = 0; k < 4; ++k) {
        const __m256i lv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 64 * h + 32 * (k % 2)));
        const __m256i lo = k < 2 ? _mm256_and_si256(lv, m4) : _mm256_and_si256(_mm256_srli_epi16(lv, 4), m4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(hv, 2 * k), m2);
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), k32);
        const float s0 = d * static_cast<float>(static_cast<std::int8_t>(sc[8 * h + 2 * k]));
        const float s1 = d * static_cast<float>(static_cast<std::int8_t>(sc[8 * h + 2 * k + 1]));
        put32(q, s0, s1, dst + 128 * h + 32 * k);
      }
    }
  }
}
#endif

// n elements (whole blocks) of `type` from src into dst.
inline void dequant_row(io::GgmlType type, const std::uint8_t* src, float* dst, std::size_t n) {
#if KVC_SK_LEVEL >= 1
  switch (type) {
    case io::GgmlType::Q4_0: return dq_q4_0_simd(src, dst, n / 32);
    case io::GgmlType::Q4_1: return dq_q4_1_simd(src, dst, n / 32);
    case io::GgmlType::Q5_0: return dq_q5_0_simd(src, dst, n / 32);
    case io::GgmlType::Q8_0: return dq_q8_0_simd(src, dst, n / 32);
    case io::GgmlType::Q4_K: return dq_q4_k_simd(src, dst, n / 256);
    case io::GgmlType::Q6_K: return dq_q6_k_simd(src, dst, n / 256);
    default: break;
  }
#endif
  switch (type) {
    case io::GgmlType::Q4_0: return dq_q4_0(src, dst, n / 32);
    case io::GgmlType::Q4_1: return dq_q4_1(src, dst, n / 32);
    case io::GgmlType::Q5_0: return dq_q5_0(src, dst, n / 32);
    case io::GgmlType::Q8_0: return dq_q8_0(src, dst, n / 32);
    case io::GgmlType::Q4_K: return dq_q4_k(src, dst, n / 256);
    case io::GgmlType::Q6_K: return dq_q6_k(src, dst, n / 256);
    case io::GgmlType::F32: std::memcpy(dst, src, n * 4); return;
    default: {  // the other dequantizable types: the reference loops (F16, BF16, Q5_1, Q2_K, Q3_K, Q5_K)
      const io::GgmlTypeTraits* tr = io::ggml_type_traits(static_cast<std::uint32_t>(type));
      io::dequantize(type, {src, n / tr->block_size * tr->type_size}, {dst, n});
      return;
    }
  }
}

// --- the multiply ----------------------------------------------------------------------------

// GW weight rows w (stride in) × MR activation rows x (stride xs): y[r*ys + g].
template <int GW, int MR>
inline void tile(const float* w, std::size_t in, const float* x, std::size_t xs, float* y, std::size_t ys,
                 const float* bias) {
  V16 acc[GW][MR];
#pragma GCC unroll 12
  for (int i = 0; i < GW * MR; ++i) acc[i / MR][i % MR] = vzero();
  for (std::size_t k = 0; k < in; k += 16) {
    V16 wv[GW];
#pragma GCC unroll 4
    for (int g = 0; g < GW; ++g) wv[g] = vload(w + g * in + k);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const V16 xv = vload(x + r * xs + k);
#pragma GCC unroll 4
      for (int g = 0; g < GW; ++g) acc[g][r] = vfma(wv[g], xv, acc[g][r]);
    }
  }
  for (int g = 0; g < GW; ++g)
    for (int r = 0; r < MR; ++r) y[static_cast<std::size_t>(r) * ys + g] = vreduce(acc[g][r]) + (bias ? bias[g] : 0.0f);
}

// g (≤ 4) dequantized weight rows × m activation rows.
template <int MR>
inline void tile_cols(std::size_t g, const float* w, std::size_t in, const float* x, std::size_t xs, float* y,
                      std::size_t ys, const float* bias) {
  constexpr std::size_t GW = MR == 1 ? kGW1 : kGW;
  std::size_t i = 0;
  for (; i + GW <= g; i += GW)
    tile<static_cast<int>(GW), MR>(w + i * in, in, x, xs, y + i, ys, bias ? bias + i : nullptr);
  for (; i < g; ++i) tile<1, MR>(w + i * in, in, x, xs, y + i, ys, bias ? bias + i : nullptr);
}

struct PartArgs {
  io::GgmlType type;
  const std::uint8_t* data;
  std::size_t row_bytes;
  const std::uint32_t* perm;  // stored row of output row i; null: identity
};

// Outputs [o0, o1) of one stored tensor (its rows, written to columns out0 + o of y [m, ys]),
// for the m activation rows x [m, in].
inline void part_matmul(const PartArgs& p, std::size_t o0, std::size_t o1, std::size_t out0, std::size_t in,
                        const float* x, std::size_t m, const float* bias, float* y, std::size_t ys) {
  constexpr std::size_t G = 4, kRowBlock = 64;  // 4 rows of W stay in L1; 64 rows of x in L2
  thread_local std::vector<float> buf;
  if (buf.size() < G * in) buf.resize(G * in);
  float* w = buf.data();
  for (std::size_t rb = 0; rb < m; rb += kRowBlock) {
    const std::size_t re = std::min(m, rb + kRowBlock);
    for (std::size_t o = o0; o < o1; o += G) {
      const std::size_t g = std::min(G, o1 - o);
      for (std::size_t i = 0; i < g; ++i) {
        const std::size_t row = p.perm ? p.perm[o + i] : o + i;
        dequant_row(p.type, p.data + row * p.row_bytes, w + i * in, in);
      }
      const float* b = bias ? bias + out0 + o : nullptr;
      std::size_t r = rb;
      for (; r + kMR <= re; r += kMR) tile_cols<kMR>(g, w, in, x + r * in, in, y + r * ys + out0 + o, ys, b);
      for (; r < re; ++r) tile_cols<1>(g, w, in, x + r * in, in, y + r * ys + out0 + o, ys, b);
    }
  }
}

}  // namespace kvcanary::ops::KVC_SK_NS
