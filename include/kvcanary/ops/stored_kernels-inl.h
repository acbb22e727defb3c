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
inline void vstore(float* p, V16 a) { _mm512_storeu_ps(p, a.v); }
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
inline void vstore(float* p, V16 a) {
  _mm256_storeu_ps(p, a.lo);
  _mm256_storeu_ps(p + 8, a.hi);
}
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
// --- 16 weights at a time, in registers ------------------------------------------------------
// Each block type below (BlockQ4_0 ... BlockQ6_K) hands its 16-element chunks j = 0, 1, ... in
// increasing order to f(g, j, w), w holding elements 16j..16j+15 of row g's block as fp32,
// bit-identical to io::dequantize (the same formulas and exact products as the loops above).
// Two consumers: dq_blocks stores them (the buffered kernel's rows in L1), and fused_tile hands
// them straight to the FMAs (decode), each lane seeing its k in the same increasing order, so
// both kernels give the same bits.

// 16 int8 values of q times s.
inline V16 scaled16(__m128i q, float s) {
#if KVC_SK_LEVEL == 2
  return {_mm512_mul_ps(_mm512_set1_ps(s), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)))};
#else
  const __m256 sv = _mm256_set1_ps(s);
  return {_mm256_mul_ps(sv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))),
          _mm256_mul_ps(sv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(q, q))))};
#endif
}

#if KVC_SK_LEVEL == 1
// AVX2 only (AVX-512 reads the codes through value tables, below):
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

// 16 unsigned values of q as d * q + m (Sign +1) or d * q - m (Sign -1), one rounding.
template <int Sign>
inline V16 affine16(__m128i q, float d, float m) {
  const __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(m);
  const auto f = [&](__m128i x) {
    const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(x));
    return Sign > 0 ? _mm256_fmadd_ps(dv, v, mv) : _mm256_fmsub_ps(dv, v, mv);
  };
  return {f(q), f(_mm_unpackhi_epi64(q, q))};
}
#endif  // KVC_SK_LEVEL == 1

inline __m128i lo128(__m256i v) { return _mm256_castsi256_si128(v); }
inline __m128i hi128(__m256i v) { return _mm256_extracti128_si256(v, 1); }

// Q4_K's eight 6-bit (scale, min) pairs of a super-block (io::gguf_detail::k4_scale_min), all at
// once: dl[j] = d * sc_j and ml[j] = dmin * m_j, the same single products as the scalar form.
// Bytes 0-3 hold sc_0..3 (low 6 bits) and the top 2 bits of sc_4..7; bytes 4-7 the same for
// the mins; bytes 8-11 the low 4 bits of sc_4..7 (low nibble) and m_4..7 (high nibble).
inline void k4_scales8(const std::uint8_t* scales, float d, float dmin, float* dl, float* ml) {
  std::uint32_t a, b, c;
  std::memcpy(&a, scales, 4);
  std::memcpy(&b, scales + 4, 4);
  std::memcpy(&c, scales + 8, 4);
  const std::uint64_t sc =
      (a & 0x3f3f3f3fu) | (static_cast<std::uint64_t>((c & 0x0f0f0f0fu) | ((a >> 2) & 0x30303030u)) << 32);
  const std::uint64_t mn =
      (b & 0x3f3f3f3fu) | (static_cast<std::uint64_t>(((c >> 4) & 0x0f0f0f0fu) | ((b >> 2) & 0x30303030u)) << 32);
  const auto widen = [](std::uint64_t v) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(v))));
  };
  _mm256_storeu_ps(dl, _mm256_mul_ps(_mm256_set1_ps(d), widen(sc)));
  _mm256_storeu_ps(ml, _mm256_mul_ps(_mm256_set1_ps(dmin), widen(mn)));
}
// Q6_K's sixteen int8 sub-block scales times d.
inline void k6_scales16(const std::uint8_t* scales, float d, float* dl) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(scales));
  const __m256 dv = _mm256_set1_ps(d);
  _mm256_storeu_ps(dl, _mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))));
  _mm256_storeu_ps(dl + 8, _mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(q, q)))));
}

#if KVC_SK_LEVEL == 2
// AVX-512: the 16 (Q5_0: 32) values a block's 4-bit (5-bit) code can take, computed once per
// (sub-)block by the same formula and rounding as above, make each weight one permute away
// (same bits). vpermps reads only its index's low 4 bits, so a 4-bit code needs no mask
// (vpermt2ps reads 5: Q5_0 masks its low nibble before adding the fifth bit). That replaces a
// convert and a multiply per 16 weights by a permute.
inline __m512 codes16(int first) {  // first, first + 1, ..., first + 15 as fp32 (exact)
  return _mm512_add_ps(_mm512_set1_ps(static_cast<float>(first)),
                       _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}
// 16 code bytes as dwords, loaded and widened by one instruction (no separate extract); a code
// in bits 0-3 is `codes`, one in bits 4-7 is `high(codes)`.
inline __m512i code_dwords(const std::uint8_t* p) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m512i high(__m512i codes) { return _mm512_srli_epi32(codes, 4); }
inline V16 lut16(__m512i codes, __m512 table) { return {_mm512_permutexvar_ps(codes, table)}; }
#endif

// Block::each<G>(rows, at, f): the block at byte offset `at` of G weight rows, chunk by chunk,
// the G rows interleaved so that their G accumulator chains overlap: f(g, j, w) for row g's
// chunk j. (An offset, not G moving pointers: GCC 12 would keep those in one vector register
// and extract each with a shuffle, on the port the permutes need.)
// Forced inline: each() and its f must melt into the caller's loop, or the accumulators that f
// updates go through memory (GCC 12 otherwise keeps the 256-element blocks out of line).
#define KVC_SK_ROWS _Pragma("GCC unroll 8") for (int g = 0; g < G; ++g)
#define KVC_SK_INLINE __attribute__((always_inline))
struct BlockQ4_0 {
  static constexpr std::size_t kElems = 32, kBytes = 18;
  template <int G, class F>
  KVC_SK_INLINE static void each(const std::uint8_t* const* rows, std::size_t at, F&& f) {
    KVC_SK_ROWS {
      const std::uint8_t* s = rows[g] + at;
      const float d = f16_at(s);
#if KVC_SK_LEVEL == 2
      const __m512 table = _mm512_mul_ps(_mm512_set1_ps(d), codes16(-8));  // d * (q - 8)
      const __m512i codes = code_dwords(s + 2);
      f(g, 0, lut16(codes, table));
      f(g, 1, lut16(high(codes), table));
#else
      const __m256i q = _mm256_sub_epi8(nibbles32(s + 2), _mm256_set1_epi8(8));
      f(g, 0, scaled16(lo128(q), d));
      f(g, 1, scaled16(hi128(q), d));
#endif
    }
  }
};
struct BlockQ4_1 {
  static constexpr std::size_t kElems = 32, kBytes = 20;
  template <int G, class F>
  KVC_SK_INLINE static void each(const std::uint8_t* const* rows, std::size_t at, F&& f) {
    KVC_SK_ROWS {
      const std::uint8_t* s = rows[g] + at;
      const float d = f16_at(s), m = f16_at(s + 2);
#if KVC_SK_LEVEL == 2
      const __m512 table = _mm512_fmadd_ps(_mm512_set1_ps(d), codes16(0), _mm512_set1_ps(m));  // d * q + m
      const __m512i codes = code_dwords(s + 4);
      f(g, 0, lut16(codes, table));
      f(g, 1, lut16(high(codes), table));
#else
      const __m256i q = nibbles32(s + 4);
      f(g, 0, affine16<1>(lo128(q), d, m));
      f(g, 1, affine16<1>(hi128(q), d, m));
#endif
    }
  }
};
struct BlockQ5_0 {
  static constexpr std::size_t kElems = 32, kBytes = 22;
  template <int G, class F>
  KVC_SK_INLINE static void each(const std::uint8_t* const* rows, std::size_t at, F&& f) {
    KVC_SK_ROWS {
      const std::uint8_t* s = rows[g] + at;
      const float d = f16_at(s);
#if KVC_SK_LEVEL == 2
      // The 5-bit code of element l is nibble l (index bits 0-3) plus bit l of qh (index bit 4,
      // set under a mask): d * (code - 16) from table0 (codes 0-15) or table1 (16-31).
      const __m512 dv = _mm512_set1_ps(d);
      const __m512 table0 = _mm512_mul_ps(dv, codes16(-16)), table1 = _mm512_mul_ps(dv, codes16(0));
      std::uint32_t qh;
      std::memcpy(&qh, s + 2, 4);
      const __m512i codes = code_dwords(s + 6), bit4 = _mm512_set1_epi32(16);
      const __m512i i0 = _mm512_and_si512(codes, _mm512_set1_epi32(0x0F)), i1 = high(codes);
      const __mmask16 h0 = static_cast<__mmask16>(qh), h1 = static_cast<__mmask16>(qh >> 16);
      f(g, 0, V16{_mm512_permutex2var_ps(table0, _mm512_mask_or_epi32(i0, h0, i0, bit4), table1)});
      f(g, 1, V16{_mm512_permutex2var_ps(table0, _mm512_mask_or_epi32(i1, h1, i1, bit4), table1)});
#else
      const __m256i q = _mm256_sub_epi8(_mm256_or_si256(nibbles32(s + 6), bit4_of_bits32(s + 2)), _mm256_set1_epi8(16));
      f(g, 0, scaled16(lo128(q), d));
      f(g, 1, scaled16(hi128(q), d));
#endif
    }
  }
};
struct BlockQ8_0 {
  static constexpr std::size_t kElems = 32, kBytes = 34;
  template <int G, class F>
  KVC_SK_INLINE static void each(const std::uint8_t* const* rows, std::size_t at, F&& f) {
    KVC_SK_ROWS {
      const std::uint8_t* s = rows[g] + at;
      const float d = f16_at(s);
      f(g, 0, scaled16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 2)), d));
      f(g, 1, scaled16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 18)), d));
    }
  }
};
struct BlockQ4_K {
  static constexpr std::size_t kElems = 256, kBytes = 144;
  template <int G, class F>
  KVC_SK_INLINE static void each(const std::uint8_t* const* rows, std::size_t at, F&& f) {
    alignas(32) float dl[G][8], ml[G][8];
    KVC_SK_ROWS k4_scales8(rows[g] + at + 4, f16_at(rows[g] + at), f16_at(rows[g] + at + 2), dl[g], ml[g]);
    for (int i = 0; i < 4; ++i)  // sub-blocks 2i (low nibbles) and 2i + 1 (high) share 32 bytes
      KVC_SK_ROWS {
        const std::uint8_t* s = rows[g] + at;
#if KVC_SK_LEVEL == 2
        const __m512 t0 = _mm512_fmsub_ps(_mm512_set1_ps(dl[g][2 * i]), codes16(0), _mm512_set1_ps(ml[g][2 * i]));
        const __m512 t1 =
            _mm512_fmsub_ps(_mm512_set1_ps(dl[g][2 * i + 1]), codes16(0), _mm512_set1_ps(ml[g][2 * i + 1]));
        const __m512i c0 = code_dwords(s + 16 + 32 * i), c1 = code_dwords(s + 32 + 32 * i);
        f(g, 4 * i, lut16(c0, t0));
        f(g, 4 * i + 1, lut16(c1, t0));
        f(g, 4 * i + 2, lut16(high(c0), t1));
        f(g, 4 * i + 3, lut16(high(c1), t1));
#else
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 16 + 32 * i));
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        const __m256i q0 = _mm256_and_si256(v, m4), q1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        f(g, 4 * i, affine16<-1>(lo128(q0), dl[g][2 * i], ml[g][2 * i]));
        f(g, 4 * i + 1, affine16<-1>(hi128(q0), dl[g][2 * i], ml[g][2 * i]));
        f(g, 4 * i + 2, affine16<-1>(lo128(q1), dl[g][2 * i + 1], ml[g][2 * i + 1]));
        f(g, 4 * i + 3, affine16<-1>(hi128(q1), dl[g][2 * i + 1], ml[g][2 * i + 1]));
#endif
      }
  }
};
struct BlockQ6_K {
  static constexpr std::size_t kElems = 256, kBytes = 210;
  template <int G, class F>
  KVC_SK_INLINE static void each(const std::uint8_t* const* rows, std::size_t at, F&& f) {
    alignas(32) float dl[G][16];
    KVC_SK_ROWS k6_scales16(rows[g] + at + 192, f16_at(rows[g] + at + 208), dl[g]);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03), k32 = _mm256_set1_epi8(32);
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k) KVC_SK_ROWS {
          const std::uint8_t *ql = rows[g] + at, *qh = ql + 128;
          const __m256i hv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh + 32 * h));
          const __m256i lv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 64 * h + 32 * (k % 2)));
          const __m256i lo = k < 2 ? _mm256_and_si256(lv, m4) : _mm256_and_si256(_mm256_srli_epi16(lv, 4), m4);
          const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(hv, 2 * k), m2);
          const __m256i q = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), k32);
          f(g, 8 * h + 2 * k, scaled16(lo128(q), dl[g][8 * h + 2 * k]));
          f(g, 8 * h + 2 * k + 1, scaled16(hi128(q), dl[g][8 * h + 2 * k + 1]));
        }
  }
};
#undef KVC_SK_ROWS

// n elements (whole blocks) of Block's format from src, stored to dst.
template <class Block>
inline void dq_blocks(const std::uint8_t* src, float* dst, std::size_t n) {
  for (std::size_t b = 0; b < n / Block::kElems; ++b, dst += Block::kElems)
    Block::template each<1>(&src, b * Block::kBytes, [&](int, int j, V16 w) KVC_SK_INLINE { vstore(dst + 16 * j, w); });
}

// GW weight rows (rows[g], whole rows of `in` elements in Block's format) × MR activation rows
// (x + r * xs): y[r * ys + g] for g < gn, each weight chunk dequantized once in registers and
// used by all MR rows.
template <class Block, int GW, int MR>
inline void fused_tile(const std::uint8_t* const* rows, std::size_t gn, std::size_t in, const float* x, std::size_t xs,
                       float* y, std::size_t ys, const float* bias) {
  V16 acc[GW][MR];
#pragma GCC unroll 16
  for (int i = 0; i < GW * MR; ++i) acc[i / MR][i % MR] = vzero();
  const std::size_t nb = in / Block::kElems;
  for (std::size_t b = 0; b < nb; ++b) {
    const float* xb = x + b * Block::kElems;
    Block::template each<GW>(rows, b * Block::kBytes, [&](int g, int j, V16 w) KVC_SK_INLINE {
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r)
        acc[g][r] = vfma(w, vload(xb + static_cast<std::size_t>(r) * xs + 16 * static_cast<std::size_t>(j)), acc[g][r]);
    });
  }
  for (std::size_t g = 0; g < gn; ++g)
    for (int r = 0; r < MR; ++r) y[static_cast<std::size_t>(r) * ys + g] = vreduce(acc[g][r]) + (bias ? bias[g] : 0.0f);
}

#if KVC_SK_LEVEL == 2
constexpr int kFusedGW = 4, kFusedMR = 4;  // ≤ 16 zmm accumulators
#else
constexpr int kFusedGW = 2, kFusedMR = 2;  // ≤ 4 V16 = 8 ymm accumulators
#endif

// Outputs [o0, o1) for m activation rows, every weight chunk dequantized in registers.
template <class Block>
inline void fused_part(const std::uint8_t* data, std::size_t row_bytes, const std::uint32_t* perm, std::size_t o0,
                       std::size_t o1, std::size_t out0, std::size_t in, const float* x, std::size_t m,
                       const float* bias, float* y, std::size_t ys) {
  for (std::size_t o = o0; o < o1; o += kFusedGW) {
    const std::size_t gn = std::min<std::size_t>(kFusedGW, o1 - o);
    const std::uint8_t* rows[kFusedGW];
    for (std::size_t g = 0; g < kFusedGW; ++g) {  // a short last group repeats its last row
      const std::size_t i = o + std::min(g, gn - 1);
      rows[g] = data + (perm ? perm[i] : i) * row_bytes;
    }
    const float* b = bias ? bias + out0 + o : nullptr;
    std::size_t r = 0;
    for (; r + kFusedMR <= m; r += kFusedMR)
      fused_tile<Block, kFusedGW, kFusedMR>(rows, gn, in, x + r * in, in, y + r * ys + out0 + o, ys, b);
    if (kFusedMR > 2 && r + 2 <= m) {
      fused_tile<Block, kFusedGW, 2>(rows, gn, in, x + r * in, in, y + r * ys + out0 + o, ys, b);
      r += 2;
    }
    for (; r < m; ++r) fused_tile<Block, kFusedGW, 1>(rows, gn, in, x + r * in, in, y + r * ys + out0 + o, ys, b);
  }
}

// Calls f(Block{}) for the block types read 16 weights at a time; false for the others.
template <class F>
inline bool with_block(io::GgmlType type, F&& f) {
  switch (type) {
    case io::GgmlType::Q4_0: f(BlockQ4_0{}); return true;
    case io::GgmlType::Q4_1: f(BlockQ4_1{}); return true;
    case io::GgmlType::Q5_0: f(BlockQ5_0{}); return true;
    case io::GgmlType::Q8_0: f(BlockQ8_0{}); return true;
    case io::GgmlType::Q4_K: f(BlockQ4_K{}); return true;
    case io::GgmlType::Q6_K: f(BlockQ6_K{}); return true;
    default: return false;
  }
}
#endif

// n elements (whole blocks) of `type` from src into dst.
inline void dequant_row(io::GgmlType type, const std::uint8_t* src, float* dst, std::size_t n) {
#if KVC_SK_LEVEL >= 1
  if (with_block(type, [&](auto block) { dq_blocks<decltype(block)>(src, dst, n); })) return;
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
#pragma GCC unroll 32
  for (int i = 0; i < GW * MR; ++i) acc[i / MR][i % MR] = vzero();
  for (std::size_t k = 0; k < in; k += 16) {
    V16 wv[GW];
#pragma GCC unroll 8
    for (int g = 0; g < GW; ++g) wv[g] = vload(w + g * in + k);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const V16 xv = vload(x + r * xs + k);
#pragma GCC unroll 8
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

#if KVC_SK_LEVEL >= 1
// Up to this many activation rows the fused kernel wins (weights dequantized in registers, once
// per 4 rows of x); beyond, the buffered one (once per 64 rows, into L1). Measured per type at
// 1, 4, 8 and 16 rows: docs/PERFORMANCE.md, "Stored GGUF weights".
constexpr std::size_t kFusedMaxRows = 8;
#endif

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
#if KVC_SK_LEVEL >= 1
  // Few activation rows: dequantizing in registers costs less than a round trip through L1.
  if (m <= kFusedMaxRows && with_block(p.type, [&](auto block) {
        fused_part<decltype(block)>(p.data, p.row_bytes, p.perm, o0, o1, out0, in, x, m, bias, y, ys);
      }))
    return;
#endif
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
#undef KVC_SK_INLINE
