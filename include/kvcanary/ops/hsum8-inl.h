// The eight lanes of a __m256 summed in one fixed order — (lanes 0-3 + 4-7), then pairs (0+2,
// 1+3), then 0+1 — the reduction every AVX2 kernel ends with, written once so that a sum's bits
// do not depend on which kernel made it.
//
// Included once per instruction-set target, inside the including namespace, as gemma.cpp's
// `-inl.h` files are: ops/simd.hpp includes it where the build itself targets AVX2, and
// ops/stored_kernels-inl.h inside each of its `#pragma GCC target` regions. No include guard
// on purpose; the includer has included <immintrin.h>.

inline float hsum8(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}
