#pragma once
// y = x · Wᵀ (+ b): the linear layers of the forward pass. W is [out, in] row-major as HF
// stores it; x is [rows, in]. Each weight row is read once per tile of 4 input rows, so a
// batch of sequences (or a prefill) shares weight traffic — decode is bound by reading
// weights, and this is where batching pays. bf16 weights widen to fp32 in registers
// (a bf16 is the top half of an fp32); accumulation is always fp32.

#include <algorithm>
#include <cstddef>
#include <cstdint>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define KVCANARY_AVX2 1
#endif

#include "kvcanary/core/half.hpp"
#include "kvcanary/ops/thread_pool.hpp"

namespace kvcanary::ops {

inline float load_scalar(const float* p) { return *p; }
inline float load_scalar(const bf16_t* p) { return to_float(*p); }

#if KVCANARY_AVX2
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const bf16_t* p) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
}
inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}
#endif

// dot(w, x) over n elements, fp32 accumulate. Same accumulation order as one lane of
// dot4, so a row's result does not depend on how many rows share its tile: batched and
// unbatched runs give bit-identical logits.
template <class WT>
inline float dot(const WT* w, const float* x, std::size_t n) {
  std::size_t i = 0;
  float sum = 0.0f;
#if KVCANARY_AVX2
  __m256 acc = _mm256_setzero_ps();
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(load8(w + i), _mm256_loadu_ps(x + i), acc);
  sum = hsum(acc);
#endif
  for (; i < n; ++i) sum += load_scalar(w + i) * x[i];
  return sum;
}

// Four dot products sharing one weight row: out[r] = dot(w, x + r*stride).
template <class WT>
inline void dot4(const WT* w, const float* x, std::size_t stride, std::size_t n, float out[4]) {
  std::size_t i = 0;
  float s[4] = {0, 0, 0, 0};
#if KVCANARY_AVX2
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  for (; i + 8 <= n; i += 8) {
    const __m256 wv = load8(w + i);
    a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + stride + i), a1);
    a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + 2 * stride + i), a2);
    a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + 3 * stride + i), a3);
  }
  s[0] = hsum(a0), s[1] = hsum(a1), s[2] = hsum(a2), s[3] = hsum(a3);
#endif
  for (; i < n; ++i) {
    const float wi = load_scalar(w + i);
    for (int r = 0; r < 4; ++r) s[r] += wi * x[r * stride + i];
  }
  for (int r = 0; r < 4; ++r) out[r] = s[r];
}

// Two weight rows × four input rows: 8 independent accumulators, and each loaded vector
// feeds 2 or 4 FMAs. Per (row, output) the accumulation order is exactly dot()'s.
template <class WT>
inline void dot4x2(const WT* w0, const WT* w1, const float* x, std::size_t stride, std::size_t n, float out0[4],
                   float out1[4]) {
  std::size_t i = 0;
  float s0[4] = {0, 0, 0, 0}, s1[4] = {0, 0, 0, 0};
#if KVCANARY_AVX2
  __m256 a[4], b[4];
  for (int r = 0; r < 4; ++r) a[r] = b[r] = _mm256_setzero_ps();
  for (; i + 8 <= n; i += 8) {
    const __m256 u = load8(w0 + i), v = load8(w1 + i);
    for (int r = 0; r < 4; ++r) {
      const __m256 xv = _mm256_loadu_ps(x + r * stride + i);
      a[r] = _mm256_fmadd_ps(u, xv, a[r]);
      b[r] = _mm256_fmadd_ps(v, xv, b[r]);
    }
  }
  for (int r = 0; r < 4; ++r) s0[r] = hsum(a[r]), s1[r] = hsum(b[r]);
#endif
  for (; i < n; ++i) {
    const float u = load_scalar(w0 + i), v = load_scalar(w1 + i);
    for (int r = 0; r < 4; ++r) {
      s0[r] += u * x[r * stride + i];
      s1[r] += v * x[r * stride + i];
    }
  }
  for (int r = 0; r < 4; ++r) out0[r] = s0[r], out1[r] = s1[r];
}

// y[rows, out] = x[rows, in] · W[out, in]ᵀ + bias[out] (bias may be null). Threads split
// the outputs; rows are taken in blocks that stay in L2 while the thread's weight rows
// stream past, so a long prefill reads each weight row once per block, not once per row.
template <class WT>
inline void matmul(const float* x, std::size_t rows, std::size_t in, const WT* W, std::size_t out,
                   const float* bias, float* y, ThreadPool& pool) {
  constexpr std::size_t kRowBlock = 64;
  pool.parallel_for((out + 1) / 2, [&](std::size_t pair_begin, std::size_t pair_end) {
    const std::size_t o_begin = pair_begin * 2, o_end = std::min(out, pair_end * 2);
    for (std::size_t rb = 0; rb < rows; rb += kRowBlock) {
      const std::size_t re = std::min(rows, rb + kRowBlock);
      std::size_t o = o_begin;
      for (; o + 2 <= o_end; o += 2) {
        const WT* w0 = W + o * in;
        const WT* w1 = w0 + in;
        const float b0 = bias ? bias[o] : 0.0f, b1 = bias ? bias[o + 1] : 0.0f;
        std::size_t r = rb;
        for (; r + 4 <= re; r += 4) {
          float s0[4], s1[4];
          dot4x2(w0, w1, x + r * in, in, in, s0, s1);
          for (int k = 0; k < 4; ++k) {
            y[(r + k) * out + o] = s0[k] + b0;
            y[(r + k) * out + o + 1] = s1[k] + b1;
          }
        }
        for (; r < re; ++r) {
          y[r * out + o] = dot(w0, x + r * in, in) + b0;
          y[r * out + o + 1] = dot(w1, x + r * in, in) + b1;
        }
      }
      for (; o < o_end; ++o) {
        const WT* w = W + o * in;
        const float b = bias ? bias[o] : 0.0f;
        for (std::size_t r = rb; r < re; ++r) y[r * out + o] = dot(w, x + r * in, in) + b;
      }
    }
  });
}

}  // namespace kvcanary::ops
