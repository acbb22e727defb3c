#pragma once
// Integer quantization kernels shared by the quantizing compressors (absmax, kivi).
//
// Semantics, fixed here so that a later kernel reading the packed form directly can be
// checked bit for bit against the values the policies write back into the cache:
//
//   * codes are rounded half to even: q = rint(t) in the default FE_TONEAREST mode, where t
//     is computed in fp32 with a true division (t = x / s or t = (x − z) / s), then clamped to
//     the code range;
//   * scales and zero points are fp16 (IEEE binary16). They are rounded *outward* from the
//     exact fp32 statistic — scale up, zero point (the minimum) down — so the fp16 range
//     [z, z + qmax·s] (or [−qmax·s, qmax·s]) still covers every value of the group and no
//     code is ever clipped; then |x − x̂| ≤ s/2 holds with s the stored fp16 scale (up to
//     fp32 rounding of t and x̂). A scale of 0 (constant group) gives code 0 and x̂ = z;
//   * dequantization is one fp32 rounding: x̂ = q·s (symmetric) or x̂ = fma(q, s, z)
//     (asymmetric), with s and z widened exactly from fp16;
//   * codes are packed little-endian within a byte: value i of a row sits in byte i·b/8 at
//     bit (i mod 8/b)·b. Symmetric codes q ∈ [−(2^(b−1)−1), 2^(b−1)−1] are stored offset by
//     2^(b−1) (never 0: the code space is symmetric, as the prototype's q = round(x/s) is);
//     asymmetric codes q ∈ [0, 2^b − 1] are stored as is.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/half.hpp"
#include "kvcanary/ops/simd.hpp"

namespace kvcanary::kv::quant {

using kvcanary::to_f16;  // core/half.hpp

// The next fp16 value toward +inf (finite inputs).
inline f16_t next_up(f16_t h) noexcept {
  if (h.bits == 0x8000u) return f16_t{0x0001u};
  return f16_t{static_cast<std::uint16_t>((h.bits & 0x8000u) ? h.bits - 1u : h.bits + 1u)};
}

// Smallest fp16 ≥ x, and largest fp16 ≤ x: the outward rounding of scales and zero points.
// With F16C the conversion instruction takes the rounding direction itself (the same result,
// one instruction; it runs once per quantization group).
inline f16_t to_f16_up_portable(float x) noexcept {
  f16_t h = to_f16(x);
  if (to_float(h) < x) h = next_up(h);
  return h;
}
inline f16_t to_f16_down_portable(float x) noexcept {
  f16_t h = to_f16_up_portable(-x);
  h.bits ^= 0x8000u;
  return h;
}
#if KVCANARY_AVX2  // F16C, which every AVX2 CPU has (ops/simd.hpp)
inline f16_t to_f16_up(float x) noexcept {
  return f16_t{static_cast<std::uint16_t>(_cvtss_sh(x, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC))};
}
inline f16_t to_f16_down(float x) noexcept {
  return f16_t{static_cast<std::uint16_t>(_cvtss_sh(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC))};
}
#else
inline f16_t to_f16_up(float x) noexcept { return to_f16_up_portable(x); }
inline f16_t to_f16_down(float x) noexcept { return to_f16_down_portable(x); }
#endif

inline bool finite_f16(f16_t h) noexcept { return (h.bits & 0x7c00u) != 0x7c00u; }

// A KV value whose statistics do not fit fp16 cannot be stored the way the design says;
// that is an input the policy refuses loudly rather than silently saturating.
inline void require_finite(f16_t h, const char* what) {
  if (!finite_f16(h))
    fail("<kv cache>", what, "outside the fp16 range (|x| > 65504) or not a number: cannot be quantized");
}

inline bool valid_bits(std::int64_t b) { return b == 8 || b == 4 || b == 2; }

// Bytes of one packed row of n codes at b bits.
inline std::size_t packed_bytes(std::size_t n, unsigned bits) { return (n * bits + 7) / 8; }

// Symmetric code range: qmax = 2^(b−1) − 1 (127, 7, 1).
inline int sym_qmax(unsigned bits) { return (1 << (bits - 1)) - 1; }
// Asymmetric code range: qmax = 2^b − 1 (255, 15, 3).
inline int asym_qmax(unsigned bits) { return (1 << bits) - 1; }

// ---- packing -----------------------------------------------------------------------------

template <unsigned B>
inline void pack_t(const std::uint8_t* codes, std::size_t n, std::uint8_t* out) {
  if constexpr (B == 8) {
    std::copy_n(codes, n, out);
  } else {
    constexpr unsigned per = 8 / B;
    const std::size_t full = n / per;
    for (std::size_t i = 0; i < full; ++i) {
      unsigned byte = 0;
      for (unsigned j = 0; j < per; ++j) byte |= static_cast<unsigned>(codes[i * per + j]) << (j * B);
      out[i] = static_cast<std::uint8_t>(byte);
    }
    if (n % per) {
      unsigned byte = 0;
      for (unsigned j = 0; j < n % per; ++j) byte |= static_cast<unsigned>(codes[full * per + j]) << (j * B);
      out[full] = static_cast<std::uint8_t>(byte);
    }
  }
}

template <unsigned B>
inline void unpack_t(const std::uint8_t* packed, std::size_t n, std::uint8_t* codes) {
  if constexpr (B == 8) {
    std::copy_n(packed, n, codes);
  } else {
    constexpr unsigned per = 8 / B, mask = (1u << B) - 1u;
    const std::size_t full = n / per;
    for (std::size_t i = 0; i < full; ++i)  // whole bytes: a fixed inner trip count vectorizes
      for (unsigned j = 0; j < per; ++j) codes[i * per + j] = static_cast<std::uint8_t>((packed[i] >> (j * B)) & mask);
    for (std::size_t i = full * per; i < n; ++i)
      codes[i] = static_cast<std::uint8_t>((packed[i / per] >> ((i % per) * B)) & mask);
  }
}

inline void pack(const std::uint8_t* codes, std::size_t n, unsigned bits, std::uint8_t* out) {
  switch (bits) {
    case 8: return pack_t<8>(codes, n, out);
    case 4: return pack_t<4>(codes, n, out);
    default: return pack_t<2>(codes, n, out);
  }
}
inline void unpack(const std::uint8_t* packed, std::size_t n, unsigned bits, std::uint8_t* codes) {
  switch (bits) {
    case 8: return unpack_t<8>(packed, n, codes);
    case 4: return unpack_t<4>(packed, n, codes);
    default: return unpack_t<2>(packed, n, codes);
  }
}

// ---- statistics --------------------------------------------------------------------------

// Largest |x| and the min/max of n values. Kept in kLanes independent partial results: a
// float max is not associative to the compiler (NaN, signed zero), so a single running max
// stays scalar, while lane-wise maxima vectorize; the result is the same for finite input.
inline constexpr std::size_t kLanes = 16;

inline float abs_max(const float* x, std::size_t n) {
  float lane[kLanes] = {};
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (std::size_t j = 0; j < kLanes; ++j) {
      const float a = std::abs(x[i + j]);
      lane[j] = lane[j] < a ? a : lane[j];
    }
  for (std::size_t j = 0; j < n - i; ++j) lane[j] = std::max(lane[j], std::abs(x[i + j]));
  float m = 0.0f;
  for (float l : lane) m = std::max(m, l);
  return m;
}

inline void min_max(const float* x, std::size_t n, float& mn, float& mx) {
  float lo[kLanes], hi[kLanes];
  std::fill_n(lo, kLanes, x[0]);
  std::fill_n(hi, kLanes, x[0]);
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (std::size_t j = 0; j < kLanes; ++j) {
      lo[j] = x[i + j] < lo[j] ? x[i + j] : lo[j];
      hi[j] = hi[j] < x[i + j] ? x[i + j] : hi[j];
    }
  for (std::size_t j = 0; j < n - i; ++j) {  // the tail (< kLanes values) into the first lanes
    lo[j] = std::min(lo[j], x[i + j]);
    hi[j] = std::max(hi[j], x[i + j]);
  }
  mn = lo[0];
  mx = hi[0];
  for (std::size_t j = 1; j < kLanes; ++j) {
    mn = std::min(mn, lo[j]);
    mx = std::max(mx, hi[j]);
  }
}

// A zero scale only arises when every value of the group equals z (symmetric: 0) exactly —
// scales are rounded up, so any spread gives s > 0 — and dividing by 1 then yields the zero
// code without a branch in the loops.
inline float divisor(float s) { return s == 0.0f ? 1.0f : s; }

// ---- symmetric (absmax) ------------------------------------------------------------------

// The fp16 scale for a tensor whose largest magnitude is `absmax`: s = absmax / qmax, rounded
// up so qmax·s ≥ absmax.
inline f16_t sym_scale(float absmax, unsigned bits) {
  const f16_t s = to_f16_up(absmax / static_cast<float>(sym_qmax(bits)));
  require_finite(s, "absmax scale");
  return s;
}

// Offset codes (q + 2^(b−1)) of n values with scale s.
inline void sym_quantize(const float* x, std::size_t n, float s, unsigned bits, std::uint8_t* codes) {
  const float qmax = static_cast<float>(sym_qmax(bits)), off = static_cast<float>(1 << (bits - 1));
  s = divisor(s);
  for (std::size_t i = 0; i < n; ++i) {
    const float q = std::clamp(std::rint(x[i] / s), -qmax, qmax);
    codes[i] = static_cast<std::uint8_t>(static_cast<int>(q + off));
  }
}

inline void sym_dequantize(const std::uint8_t* codes, std::size_t n, float s, unsigned bits, float* out) {
  const int off = 1 << (bits - 1);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(static_cast<int>(codes[i]) - off) * s;
}

// ---- asymmetric (KIVI) -------------------------------------------------------------------

struct AsymParams {
  f16_t scale, zero;
};

// z = min rounded down, s = (max − z) / qmax rounded up: [z, z + qmax·s] ⊇ [min, max].
inline AsymParams asym_params(float mn, float mx, unsigned bits) {
  AsymParams p;
  p.zero = to_f16_down(mn);
  require_finite(p.zero, "zero point");
  const float z = to_float(p.zero);
  p.scale = to_f16_up((mx - z) / static_cast<float>(asym_qmax(bits)));
  require_finite(p.scale, "scale");
  return p;
}

// x̂ = q·s + z with one rounding: the value every dequantization of an asymmetric code yields.
inline float asym_value(std::uint8_t code, float s, float z) { return std::fma(static_cast<float>(code), s, z); }

// KIVI keys, per channel: `rows` tokens × D channels (row-major, as the cache stores them);
// channel d gets (scale, zero) from its min/max over the rows; codes come out row-major.
inline void asym_quantize_channels(const float* x, std::size_t rows, std::size_t D, unsigned bits, std::uint8_t* codes,
                                   AsymParams* params, float* lo, float* hi, float* sd, float* zd) {
  std::copy_n(x, D, lo);
  std::copy_n(x, D, hi);
  for (std::size_t t = 1; t < rows; ++t)
    for (std::size_t d = 0; d < D; ++d) {
      lo[d] = std::min(lo[d], x[t * D + d]);
      hi[d] = std::max(hi[d], x[t * D + d]);
    }
  for (std::size_t d = 0; d < D; ++d) {
    params[d] = asym_params(lo[d], hi[d], bits);
    sd[d] = divisor(to_float(params[d].scale));
    zd[d] = to_float(params[d].zero);
  }
  const float qmax = static_cast<float>(asym_qmax(bits));
  for (std::size_t t = 0; t < rows; ++t)
    for (std::size_t d = 0; d < D; ++d)
      codes[t * D + d] = static_cast<std::uint8_t>(
          static_cast<int>(std::clamp(std::rint((x[t * D + d] - zd[d]) / sd[d]), 0.0f, qmax)));
}

inline void asym_dequantize_channels(const std::uint8_t* codes, std::size_t rows, std::size_t D,
                                     const AsymParams* params, float* out, float* sd, float* zd) {
  for (std::size_t d = 0; d < D; ++d) {
    sd[d] = to_float(params[d].scale);
    zd[d] = to_float(params[d].zero);
  }
  for (std::size_t t = 0; t < rows; ++t)
    for (std::size_t d = 0; d < D; ++d) out[t * D + d] = asym_value(codes[t * D + d], sd[d], zd[d]);
}

// KIVI values, per token: one row of D channels in groups of `gv` channels (the last group
// holds D mod gv channels when gv does not divide D); ceil(D / gv) (scale, zero) pairs.
inline void asym_quantize_token(const float* x, std::size_t D, std::size_t gv, unsigned bits, std::uint8_t* codes,
                                AsymParams* params) {
  const float qmax = static_cast<float>(asym_qmax(bits));
  for (std::size_t g = 0, begin = 0; begin < D; ++g, begin += gv) {
    const std::size_t end = std::min(begin + gv, D);
    float mn, mx;
    min_max(x + begin, end - begin, mn, mx);
    params[g] = asym_params(mn, mx, bits);
    const float s = divisor(to_float(params[g].scale)), z = to_float(params[g].zero);
    for (std::size_t d = begin; d < end; ++d)
      codes[d] = static_cast<std::uint8_t>(static_cast<int>(std::clamp(std::rint((x[d] - z) / s), 0.0f, qmax)));
  }
}

inline void asym_dequantize_token(const std::uint8_t* codes, std::size_t D, std::size_t gv, const AsymParams* params,
                                  float* out) {
  for (std::size_t g = 0, begin = 0; begin < D; ++g, begin += gv) {
    const std::size_t end = std::min(begin + gv, D);
    const float s = to_float(params[g].scale), z = to_float(params[g].zero);
    for (std::size_t d = begin; d < end; ++d) out[d] = asym_value(codes[d], s, z);
  }
}

}  // namespace kvcanary::kv::quant
