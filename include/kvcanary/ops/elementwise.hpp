#pragma once
// The small per-row operations of a Llama block, written to follow transformers' fp32
// arithmetic (same formula, same precision) so logits agree to ~1e-5.

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace kvcanary::ops {

// RMSNorm (Zhang & Sennrich 2019): y = w ⊙ x / sqrt(mean(x²) + eps).
inline void rmsnorm(float* y, const float* x, const float* weight, std::size_t n, float eps) {
  float ss = 0.0f;
  for (std::size_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (std::size_t i = 0; i < n; ++i) y[i] = weight[i] * (x[i] * inv);
}

// In-place softmax with max subtraction (exp never overflows).
inline void softmax(float* x, std::size_t n) {
  if (n == 0) return;
  const float m = *std::max_element(x, x + n);
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (std::size_t i = 0; i < n; ++i) x[i] *= inv;
}

// SwiGLU (Shazeer 2020): out = silu(gate) ⊙ up, silu(g) = g·σ(g). out may be gate.
inline void swiglu(float* out, const float* gate, const float* up, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}
inline void swiglu(float* gate, const float* up, std::size_t n) { swiglu(gate, gate, up, n); }

}  // namespace kvcanary::ops
