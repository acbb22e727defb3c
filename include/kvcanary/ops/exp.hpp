#pragma once
// exp(x) for eight floats at once (softmax, SiLU), within 1 ulp of the correctly rounded
// result over the whole float range; libm's expf is a function call per element and was
// ~5 % of a prefill.
//
// Range reduction: x = n·ln2 + r with n = round(x·log2e), |r| ≤ ln2/2, so
// exp(x) = 2ⁿ · exp(r).
//   - ln2 is split C1 + C2 with C1 = 355/512 (9 significant bits): x − n·C1 is a multiple
//     of ulp(x) no larger in magnitude than x, hence a float, and the FMA returns it
//     exactly; the only rounding in r is the FMA that subtracts n·C2 — at most ½ ulp of
//     r, ≤ ¼ ulp of the result.
//   - exp(r) ≈ 1 + r + r²·q(r), q of degree 4: a weighted-minimax fit of (exp(r)−1−r)/r² on
//     [−ln2/2, ln2/2], relative error 3·10⁻⁹ (≈ 0.05 ulp). Adding the 1 last keeps the
//     polynomial's own rounding below the final ½-ulp rounding of that add.
//   - 2ⁿ is applied as 2^⌊n/2⌋ · 2^(n−⌊n/2⌋): each factor is a normal float for every n
//     the clamp allows, so results that overflow become +inf and results in the subnormal
//     range are rounded once, by the last multiply, as the true value would be.
// Inputs are clamped to [−110, 89] first: exp(−110) rounds to 0 and exp(89) overflows, so
// the clamp changes no result, and −inf → 0, +inf → +inf. NaN passes through the clamp
// (max/min return their second operand when one is NaN) and stays NaN.
//
// A value's result never depends on where it sits in an array: the tails go through the
// same eight-lane code as the body (padded), so softmax and SwiGLU give a row the same
// answer whatever the batch around it.

#include <cmath>
#include <cstddef>

#include "kvcanary/ops/simd.hpp"

namespace kvcanary::ops {

#if KVCANARY_AVX2

inline __m256 exp8(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-110.0f), hi = _mm256_set1_ps(89.0f);
  x = _mm256_min_ps(hi, _mm256_max_ps(lo, x));

  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);       // exact
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440054690583e-4f), r);  // ln2 − C1

  __m256 q = _mm256_set1_ps(1.3814613093706505e-3f);
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(8.368709961334882e-3f));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(4.166838737389324e-2f));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.66665206886569e-1f));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(4.999999345162592e-1f));
  const __m256 p = _mm256_fmadd_ps(_mm256_mul_ps(r, r), q, r);
  const __m256 e = _mm256_add_ps(_mm256_set1_ps(1.0f), p);

  // n ∈ [−159, 128] after the clamp: both halves lie in [−80, 64], normal exponents.
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(e, s1), s2);
}

// The first n (< 8) lanes of p, the rest `fill`: tails run through the eight-lane code.
inline __m256 load_partial(const float* p, std::size_t n, float fill) {
  alignas(32) float buf[8];
  for (std::size_t i = 0; i < 8; ++i) buf[i] = i < n ? p[i] : fill;
  return _mm256_load_ps(buf);
}
inline void store_partial(float* p, __m256 v, std::size_t n) {
  alignas(32) float buf[8];
  _mm256_store_ps(buf, v);
  for (std::size_t i = 0; i < n; ++i) p[i] = buf[i];
}

// One float through the vector code, so a scalar caller gets exactly exp8's value.
inline float exp1(float x) { return _mm256_cvtss_f32(exp8(_mm256_set1_ps(x))); }

#else

inline float exp1(float x) { return std::exp(x); }

#endif

// out[i] = exp(x[i]); out may be x.
inline void exp(float* out, const float* x, std::size_t n) {
  std::size_t i = 0;
#if KVCANARY_AVX2
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, exp8(_mm256_loadu_ps(x + i)));
  if (i < n) store_partial(out + i, exp8(load_partial(x + i, n - i, 0.0f)), n - i);
#else
  for (; i < n; ++i) out[i] = std::exp(x[i]);
#endif
}

}  // namespace kvcanary::ops
