#pragma once
// Rotary position embeddings (Su et al. 2021, RoFormer) in HF's "rotate_half" layout:
// dimension i pairs with i + d/2, and both rotate by angle pos · inv_freq[i].
// Frequencies follow transformers' rope_init functions, in fp32 like them:
//   default  inv_freq[i] = 1 / θ^(2i/d)
//   linear   inv_freq[i] / factor              (position interpolation, Chen et al. 2023)
//   llama3   band-wise: long wavelengths / factor, short kept, smooth blend between.
// A table of cos/sin per position is grown on demand and shared by every layer.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <vector>

#include "kvcanary/core/model_config.hpp"

namespace kvcanary::ops {

inline std::vector<float> rope_inverse_frequencies(const ModelConfig& c) {
  const std::size_t half = static_cast<std::size_t>(c.head_dim / 2);
  std::vector<float> inv(half);
  for (std::size_t i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
    inv[i] = 1.0f / std::pow(static_cast<float>(c.rope_theta), exponent);
  }
  const RopeScaling& s = c.rope_scaling;
  if (s.kind == RopeScaling::Kind::Linear) {
    for (auto& f : inv) f = f / static_cast<float>(s.factor);
  } else if (s.kind == RopeScaling::Kind::Llama3) {
    const float factor = static_cast<float>(s.factor);
    const float old_len = static_cast<float>(s.original_max_position_embeddings);
    const float low_wavelen = old_len / static_cast<float>(s.low_freq_factor);
    const float high_wavelen = old_len / static_cast<float>(s.high_freq_factor);
    for (auto& f : inv) {
      const float wavelen = 2.0f * std::numbers::pi_v<float> / f;
      float g = wavelen > low_wavelen ? f / factor : f;
      const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
      if (medium) {
        const float smooth = (old_len / wavelen - static_cast<float>(s.low_freq_factor)) /
                             static_cast<float>(s.high_freq_factor - s.low_freq_factor);
        g = (1.0f - smooth) * g / factor + smooth * g;
      }
      f = g;
    }
  }
  return inv;
}

class Rope {
 public:
  explicit Rope(const ModelConfig& c)
      : head_dim_(static_cast<std::size_t>(c.head_dim)), inv_freq_(rope_inverse_frequencies(c)) {}

  std::size_t head_dim() const { return head_dim_; }
  const std::vector<float>& inverse_frequencies() const { return inv_freq_; }

  // Rotate n_heads consecutive head vectors of one token to position pos.
  void apply(float* vec, std::size_t n_heads, std::int64_t pos) {
    ensure(pos);
    rotate(vec, vec, n_heads, pos);
  }

  // dst = src rotated to position pos (dst may be src), for a pos the table already covers
  // (ensure() first): only reads the table, so threads may rotate different rows at once.
  void rotate(float* dst, const float* src, std::size_t n_heads, std::int64_t pos) const {
    const std::size_t half = head_dim_ / 2;
    const float* c = &cos_[static_cast<std::size_t>(pos) * half];
    const float* s = &sin_[static_cast<std::size_t>(pos) * half];
    for (std::size_t h = 0; h < n_heads; ++h) {
      const float* v = src + h * head_dim_;
      float* o = dst + h * head_dim_;
      for (std::size_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        o[i] = a * c[i] - b * s[i];
        o[i + half] = b * c[i] + a * s[i];
      }
    }
  }

  // Make the table cover pos; not thread-safe, so the forward pass calls it before
  // fanning out.
  void ensure(std::int64_t pos) {
    const std::size_t half = head_dim_ / 2;
    const std::size_t have = cos_.size() / half;
    const std::size_t need = static_cast<std::size_t>(pos) + 1;
    if (need <= have) return;
    const std::size_t grow = std::max(need, have * 2);
    cos_.resize(grow * half);
    sin_.resize(grow * half);
    for (std::size_t p = have; p < grow; ++p) {
      for (std::size_t i = 0; i < half; ++i) {
        // fp32 product as transformers computes it (inv_freq @ position_ids in fp32).
        const float angle = static_cast<float>(p) * inv_freq_[i];
        cos_[p * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
        sin_[p * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
      }
    }
  }

 private:
  std::size_t head_dim_;
  std::vector<float> inv_freq_;
  std::vector<float> cos_, sin_;
};

}  // namespace kvcanary::ops
