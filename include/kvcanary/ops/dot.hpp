#pragma once
// The vector operations attention and the compressors are made of: dot products (q·k, key
// norms), axpy and the probability-weighted sum of value rows (p·V), plus the widening loads of
// fp32 / bf16 / fp16 values they and ops/matmul.hpp share. Each result is one fixed
// accumulation order whatever the batch (batched decode is bit-identical to unbatched): the
// orders are stated per function, and tests/ops/test_dot.cpp checks the multi-row forms against
// the one-row ones bit for bit.

#include <cstddef>

#include "kvcanary/core/half.hpp"
#include "kvcanary/ops/simd.hpp"

namespace kvcanary::ops {

inline float load_scalar(const float* p) { return *p; }
inline float load_scalar(const bf16_t* p) { return to_float(*p); }
inline float load_scalar(const f16_t* p) { return to_float(*p); }

#if KVCANARY_AVX2
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const bf16_t* p) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
}
inline __m256 load8(const f16_t* p) {  // F16C: exact widening, one instruction
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
#endif

// dot(w, x) over n elements, fp32 accumulate, in a fixed order (attention scores, key norms).
template <class WT>
inline float dot(const WT* w, const float* x, std::size_t n) {
  std::size_t i = 0;
  float sum = 0.0f;
#if KVCANARY_AVX2
  __m256 acc = _mm256_setzero_ps();
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(load8(w + i), _mm256_loadu_ps(x + i), acc);
  sum = hsum8(acc);
#endif
  for (; i < n; ++i) sum += load_scalar(w + i) * x[i];
  return sum;
}

// out[j] = dot(rows + j*n, x, n) for j < count, bit-identical to dot() per row; four rows at
// a time so the accumulation chains overlap (attention's q·k over a head's keys).
inline void dot_rows(const float* rows, const float* x, std::size_t n, std::size_t count, float* out) {
  std::size_t j = 0;
#if KVCANARY_AVX2
  if (n % 8 == 0) {
    for (; j + 4 <= count; j += 4) {
      const float* r0 = rows + j * n;
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
      for (std::size_t i = 0; i < n; i += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + i), xv, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + n + i), xv, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + 2 * n + i), xv, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + 3 * n + i), xv, a3);
      }
      out[j] = hsum8(a0), out[j + 1] = hsum8(a1), out[j + 2] = hsum8(a2), out[j + 3] = hsum8(a3);
    }
  }
#endif
  for (; j < count; ++j) out[j] = dot(rows + j * n, x, n);
}

// y[i] += a · x[i] (attention's probability-weighted sum of values).
inline void axpy(float* y, float a, const float* x, std::size_t n) {
  std::size_t i = 0;
#if KVCANARY_AVX2
  const __m256 av = _mm256_set1_ps(a);
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
  for (; i < n; ++i) y[i] += a * x[i];
}

// out[0..n) += Σ_j p[j] · rows[j*n ..] over j < count with p[j] != 0, accumulated per element
// in j order by FMA onto out — attention's p·V. The running sums stay in registers across
// all rows (a 64-wide block at a time) instead of a load and store of out per row. Because
// each element is one FMA chain in j order, summing rows [0, a) then [a, count) onto the
// same out gives bit for bit what one call over [0, count) gives: attention can read a
// head's values in pieces (packed tiles, then full-precision rows).
inline void weighted_sum_add(float* out, const float* p, const float* rows, std::size_t n, std::size_t count) {
  std::size_t d = 0;
#if KVCANARY_AVX2
  for (; d + 64 <= n; d += 64) {
    __m256 acc[8];
    for (int i = 0; i < 8; ++i) acc[i] = _mm256_loadu_ps(out + d + 8 * i);
    for (std::size_t j = 0; j < count; ++j) {
      if (p[j] == 0.0f) continue;
      const __m256 pv = _mm256_set1_ps(p[j]);
      const float* v = rows + j * n + d;
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) acc[i] = _mm256_fmadd_ps(pv, _mm256_loadu_ps(v + 8 * i), acc[i]);
    }
    for (int i = 0; i < 8; ++i) _mm256_storeu_ps(out + d + 8 * i, acc[i]);
  }
#endif
  if (d == n) return;
  for (std::size_t j = 0; j < count; ++j)
    if (p[j] != 0.0f) axpy(out + d, p[j], rows + j * n + d, n - d);
}

// The same sum from zero.
inline void weighted_sum(float* out, const float* p, const float* rows, std::size_t n, std::size_t count) {
  std::fill(out, out + n, 0.0f);
  weighted_sum_add(out, p, rows, n, count);
}

}  // namespace kvcanary::ops
