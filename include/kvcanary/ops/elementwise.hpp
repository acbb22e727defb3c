#pragma once
// The small per-row operations of a Llama block, written to follow transformers' fp32
// arithmetic (same formula, same precision) so logits agree to ~1e-5.
//
// The AVX2 paths sum in eight lanes, then across them, and run a row's tail through the
// same lanes (padded with values that add nothing): a row's result depends only on the row,
// never on the rows batched beside it.

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "kvcanary/ops/exp.hpp"
#include "kvcanary/ops/simd.hpp"

namespace kvcanary::ops {

#if KVCANARY_AVX2
namespace detail {
inline float max8(__m256 v) {
  __m128 lo = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  lo = _mm_max_ps(lo, _mm_movehl_ps(lo, lo));
  return _mm_cvtss_f32(_mm_max_ss(lo, _mm_movehdup_ps(lo)));
}
}  // namespace detail
#endif

// RMSNorm (Zhang & Sennrich 2019): y = w ⊙ x / sqrt(mean(x²) + eps). y may be x.
inline void rmsnorm(float* y, const float* x, const float* weight, std::size_t n, float eps) {
  float ss = 0.0f;
  std::size_t i = 0;
#if KVCANARY_AVX2
  __m256 acc = _mm256_setzero_ps();
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    acc = _mm256_fmadd_ps(v, v, acc);
  }
  if (i < n) {
    const __m256 v = load_partial(x + i, n - i, 0.0f);
    acc = _mm256_fmadd_ps(v, v, acc);
  }
  ss = hsum8(acc);
  const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  const __m256 iv = _mm256_set1_ps(inv);
  for (i = 0; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(weight + i), _mm256_mul_ps(_mm256_loadu_ps(x + i), iv)));
  for (; i < n; ++i) y[i] = weight[i] * (x[i] * inv);
#else
  for (; i < n; ++i) ss += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (i = 0; i < n; ++i) y[i] = weight[i] * (x[i] * inv);
#endif
}

// In-place softmax with max subtraction (exp never overflows). -inf entries (masked keys)
// get probability 0.
inline void softmax(float* x, std::size_t n) {
  if (n == 0) return;
#if KVCANARY_AVX2
  std::size_t i = 0;
  __m256 mv = _mm256_set1_ps(-INFINITY);
  for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
  float m = detail::max8(mv);
  for (; i < n; ++i) m = std::max(m, x[i]);
  const __m256 mb = _mm256_set1_ps(m);
  __m256 acc = _mm256_setzero_ps();
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mb));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  if (i < n) {  // padding lanes are -inf: exp gives 0, which adds nothing to the sum
    const __m256 e = exp8(_mm256_sub_ps(load_partial(x + i, n - i, -INFINITY), mb));
    store_partial(x + i, e, n - i);
    acc = _mm256_add_ps(acc, e);
  }
  const __m256 inv = _mm256_set1_ps(1.0f / hsum8(acc));
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  const float s = _mm256_cvtss_f32(inv);
  for (; i < n; ++i) x[i] *= s;
#else
  const float m = *std::max_element(x, x + n);
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (std::size_t i = 0; i < n; ++i) x[i] *= inv;
#endif
}

// SwiGLU (Shazeer 2020): out = silu(gate) ⊙ up, silu(g) = g·σ(g) = g / (1 + e^−g). out may
// be gate. For g → −∞, e^−g overflows to inf and the quotient is −0, as with std::exp.
inline void swiglu(float* out, const float* gate, const float* up, std::size_t n) {
  std::size_t i = 0;
#if KVCANARY_AVX2
  const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
  const auto silu_up = [&](__m256 g, __m256 u) {
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, exp8(_mm256_xor_ps(g, sign)))), u);
  };
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, silu_up(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  if (i < n)
    store_partial(out + i, silu_up(load_partial(gate + i, n - i, 0.0f), load_partial(up + i, n - i, 0.0f)), n - i);
#else
  for (; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
#endif
}
inline void swiglu(float* gate, const float* up, std::size_t n) { swiglu(gate, gate, up, n); }

}  // namespace kvcanary::ops
