#pragma once
// Dequantization of GGUF tensor data to fp32, bit-identical to the reference dequantizer of
// the `gguf` Python package (gguf.quants.dequantize, v0.19), which is what transformers'
// GGUF loader uses. Block layouts (ggml-common.h), 32 weights per block:
//   Q4_0: f16 d | 16 B nibbles              x = d * (q - 8)
//   Q4_1: f16 d | f16 m | 16 B nibbles      x = d * q + m
//   Q5_0: f16 d | u32 qh | 16 B nibbles     x = d * (q - 16),  q = nibble | (bit i of qh) << 4
//   Q5_1: f16 d | f16 m | u32 qh | 16 B     x = d * q + m
//   Q8_0: f16 d | 32 x int8                 x = q * d
// Element j < 16 of a block is the LOW nibble of byte j; element j + 16 is its HIGH nibble.
//
// k-quants: super-blocks of QK_K = 256 weights, split into sub-blocks that each have a
// small integer scale (and min) multiplied by the super-block's f16 d (and dmin):
//   Q2_K (84 B):  u8 scales[16] (lo 4 bits scale, hi 4 bits min) | qs[64] (2-bit) | f16 d | f16 dmin
//                 16 sub-blocks of 16: x = (d * sc) * q - (dmin * m),  q in 0..3
//   Q3_K (110 B): hmask[32] | qs[64] (low 2 bits) | scales[12] (16 x 6-bit) | f16 d
//                 16 sub-blocks of 16: x = (d * (sc - 32)) * q,  q = low2 - (hbit ? 0 : 4)
//   Q4_K (144 B): f16 d | f16 dmin | scales[12] (8 x 6-bit scale, 8 x 6-bit min) | qs[128]
//                 8 sub-blocks of 32: x = (d * sc) * q - (dmin * m),  q in 0..15
//   Q5_K (176 B): f16 d | f16 dmin | scales[12] | qh[32] | qs[128]; as Q4_K, q = nibble | hbit << 4
//   Q6_K (210 B): ql[128] | qh[64] | int8 scales[16] | f16 d
//                 16 sub-blocks of 16: x = (d * sc) * (q - 32),  q = 4 low bits | 2 high bits << 4
// The bit positions of each element are spelled out at each function below.
//
// Exactness: every product above is of an f16 scale (at most 11 significant bits) and
// integers whose significant bits add up to at most 13, so every product is exact in fp32
// (24-bit significand), whatever the order of the multiplications:
//   Q2_K  d * sc: 11 + 4 bits, then * q (2 bits): 17      dmin * m: 15
//   Q3_K  d * (sc - 32) (|.| <= 32: 5 bits): 16, * q (|q| <= 4: 2 bits): 18
//   Q4_K  d * sc (6 bits): 17, * q (4 bits): 21             dmin * m: 17
//   Q5_K  17, * q (5 bits): 22
//   Q6_K  d * sc (|sc| <= 128: 7 bits): 18, * (q - 32) (|.| <= 32: 5 bits): 23
// (f16 subnormals have fewer significant bits, and the largest product, 65504 * 128 * 32,
// is far from fp32 overflow). The only rounding in any format is the single subtraction of
// the min term (Q2_K/Q4_K/Q5_K) or addition of m (Q4_1/Q5_1), of an exact product. A fused
// multiply-add rounds exact(a * b) - c once, the same as rounding the exact product (a
// no-op) and then the difference, so the result does not depend on whether the compiler
// contracts `a * b - c` into an FMA; numpy (which rounds the product, then the sum) gives the
// same bits. No other operation rounds. Inf/NaN scales give the IEEE results numpy gives.

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/half.hpp"
#include "kvcanary/io/gguf.hpp"

namespace kvcanary::io {

inline bool can_dequantize(GgmlType t) noexcept {
  switch (t) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q8_0:
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K: return true;
    default: return false;
  }
}

namespace gguf_detail {

inline float load_f16(const std::uint8_t* p) noexcept {
  std::uint16_t b;
  std::memcpy(&b, p, 2);
  return to_float(f16_t{b});
}
inline std::uint32_t load_u32(const std::uint8_t* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline void dequant_q4_0(const std::uint8_t* src, float* dst, std::size_t n_blocks) noexcept {
  for (std::size_t b = 0; b < n_blocks; ++b, src += 18, dst += 32) {
    const float d = load_f16(src);
    const std::uint8_t* qs = src + 2;
    for (int j = 0; j < 16; ++j) {
      dst[j] = d * static_cast<float>(static_cast<int>(qs[j] & 0x0F) - 8);
      dst[j + 16] = d * static_cast<float>(static_cast<int>(qs[j] >> 4) - 8);
    }
  }
}

inline void dequant_q4_1(const std::uint8_t* src, float* dst, std::size_t n_blocks) noexcept {
  for (std::size_t b = 0; b < n_blocks; ++b, src += 20, dst += 32) {
    const float d = load_f16(src);
    const float m = load_f16(src + 2);
    const std::uint8_t* qs = src + 4;
    for (int j = 0; j < 16; ++j) {
      dst[j] = d * static_cast<float>(qs[j] & 0x0F) + m;
      dst[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
    }
  }
}

inline void dequant_q5_0(const std::uint8_t* src, float* dst, std::size_t n_blocks) noexcept {
  for (std::size_t b = 0; b < n_blocks; ++b, src += 22, dst += 32) {
    const float d = load_f16(src);
    const std::uint32_t qh = load_u32(src + 2);
    const std::uint8_t* qs = src + 6;
    for (int j = 0; j < 16; ++j) {
      const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      dst[j] = d * static_cast<float>(lo - 16);
      dst[j + 16] = d * static_cast<float>(hi - 16);
    }
  }
}

inline void dequant_q5_1(const std::uint8_t* src, float* dst, std::size_t n_blocks) noexcept {
  for (std::size_t b = 0; b < n_blocks; ++b, src += 24, dst += 32) {
    const float d = load_f16(src);
    const float m = load_f16(src + 2);
    const std::uint32_t qh = load_u32(src + 4);
    const std::uint8_t* qs = src + 8;
    for (int j = 0; j < 16; ++j) {
      const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      dst[j] = d * static_cast<float>(lo) + m;
      dst[j + 16] = d * static_cast<float>(hi) + m;
    }
  }
}

inline void dequant_q8_0(const std::uint8_t* src, float* dst, std::size_t n_blocks) noexcept {
  for (std::size_t b = 0; b < n_blocks; ++b, src += 34, dst += 32) {
    const float d = load_f16(src);
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(static_cast<std::int8_t>(src[2 + j])) * d;
  }
}

// --- k-quants (QK_K = 256) ---

// Q2_K: element p = 128*h + 32*k + l (h 0..1, k 0..3, l 0..31) is bits 2k..2k+1 of
// qs[32*h + l]; sub-block p / 16 has scale byte scales[p / 16].
inline void dequant_q2_k(const std::uint8_t* src, float* dst, std::size_t n_blocks) noexcept {
  for (std::size_t b = 0; b < n_blocks; ++b, src += 84, dst += 256) {
    const std::uint8_t* scales = src;
    const std::uint8_t* qs = src + 16;
    const float d = load_f16(src + 80);
    const float dmin = load_f16(src + 82);
    for (int p = 0; p < 256; ++p) {
      const int h = p / 128, k = (p / 32) % 4, l = p % 32;
      const std::uint8_t sc = scales[p / 16];
      const float dl = d * static_cast<float>(sc & 0x0F);
      const float ml = dmin * static_cast<float>(sc >> 4);
      const int q = (qs[32 * h + l] >> (2 * k)) & 3;
      dst[p] = dl * static_cast<float>(q) - ml;
    }
  }
}

// Q3_K: element p = 128*h + 32*k + l has low bits 2k..2k+1 of qs[32*h + l] and high bit
// p / 32 of hmask[l] (set: +0, clear: -4). Scale t (p / 16) is 6 bits: low 4 bits are nibble
// t / 8 of scales[t % 8], high 2 bits are bits 2*(t / 4).. of scales[8 + t % 4]; minus 32.
inline void dequant_q3_k(const std::uint8_t* src, float* dst, std::size_t n_blocks) noexcept {
  for (std::size_t b = 0; b < n_blocks; ++b, src += 110, dst += 256) {
    const std::uint8_t* hmask = src;
    const std::uint8_t* qs = src + 32;
    const std::uint8_t* scales = src + 96;
    const float d = load_f16(src + 108);
    float dl[16];
    for (int t = 0; t < 16; ++t) {
      const int lo = (scales[t % 8] >> (4 * (t / 8))) & 0x0F;
      const int hi = (scales[8 + t % 4] >> (2 * (t / 4))) & 0x03;
      dl[t] = d * static_cast<float>((lo | (hi << 4)) - 32);
    }
    for (int p = 0; p < 256; ++p) {
      const int h = p / 128, k = (p / 32) % 4, l = p % 32;
      const int low = (qs[32 * h + l] >> (2 * k)) & 3;
      const int hbit = (hmask[l] >> (p / 32)) & 1;
      dst[p] = dl[p / 16] * static_cast<float>(low - (hbit ? 0 : 4));
    }
  }
}

// The 12 packed bytes of Q4_K/Q5_K hold 8 six-bit scales and 8 six-bit mins:
// j < 4: sc = s[j] & 63, m = s[j + 4] & 63;
// j >= 4: sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4, m = (s[j + 4] >> 4) | (s[j] >> 6) << 4.
inline void k4_scale_min(const std::uint8_t* s, int j, int& sc, int& m) noexcept {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q4_K: sub-block j (32 elements) is nibble j % 2 of qs[32 * (j / 2) + l].
inline void dequant_q4_k(const std::uint8_t* src, float* dst, std::size_t n_blocks) noexcept {
  for (std::size_t b = 0; b < n_blocks; ++b, src += 144, dst += 256) {
    const float d = load_f16(src);
    const float dmin = load_f16(src + 2);
    const std::uint8_t* scales = src + 4;
    const std::uint8_t* qs = src + 16;
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      k4_scale_min(scales, j, sc, m);
      const float dl = d * static_cast<float>(sc);
      const float ml = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        const int q = (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0F;
        dst[32 * j + l] = dl * static_cast<float>(q) - ml;
      }
    }
  }
}

// Q5_K: as Q4_K, plus bit j of qh[l] as the fifth bit of element 32*j + l.
inline void dequant_q5_k(const std::uint8_t* src, float* dst, std::size_t n_blocks) noexcept {
  for (std::size_t b = 0; b < n_blocks; ++b, src += 176, dst += 256) {
    const float d = load_f16(src);
    const float dmin = load_f16(src + 2);
    const std::uint8_t* scales = src + 4;
    const std::uint8_t* qh = src + 16;
    const std::uint8_t* qs = src + 48;
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      k4_scale_min(scales, j, sc, m);
      const float dl = d * static_cast<float>(sc);
      const float ml = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        const int q = ((qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0F) | (((qh[l] >> j) & 1) << 4);
        dst[32 * j + l] = dl * static_cast<float>(q) - ml;
      }
    }
  }
}

// Q6_K: element p = 128*h + 32*k + l has low 4 bits = nibble k / 2 of ql[64*h + 32*(k % 2) + l]
// and high 2 bits = bits 2k..2k+1 of qh[32*h + l]; scale (int8) scales[p / 16].
inline void dequant_q6_k(const std::uint8_t* src, float* dst, std::size_t n_blocks) noexcept {
  for (std::size_t b = 0; b < n_blocks; ++b, src += 210, dst += 256) {
    const std::uint8_t* ql = src;
    const std::uint8_t* qh = src + 128;
    const std::uint8_t* scales = src + 192;
    const float d = load_f16(src + 208);
    for (int p = 0; p < 256; ++p) {
      const int h = p / 128, k = (p / 32) % 4, l = p % 32;
      const int lo = (ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0F;
      const int hi = (qh[32 * h + l] >> (2 * k)) & 0x03;
      const float dl = d * static_cast<float>(static_cast<std::int8_t>(scales[p / 16]));
      dst[p] = dl * static_cast<float>((lo | (hi << 4)) - 32);
    }
  }
}

}  // namespace gguf_detail

// Dequantizes dst.size() elements of `type` from src, which must hold exactly their encoding.
// `file` and `field` only label errors.
inline void dequantize(GgmlType type, std::span<const std::uint8_t> src, std::span<float> dst,
                       const std::string& file = {}, const std::string& field = {}) {
  const GgmlTypeTraits* tr = ggml_type_traits(static_cast<std::uint32_t>(type));
  if (!tr || !can_dequantize(type))
    fail(file, field,
         std::string("dequantization of ggml type ") + (tr ? tr->name : "?") +
             " is not supported (supported: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K)");
  const std::size_t n = dst.size();
  if (n % tr->block_size != 0)
    fail(file, field, std::to_string(n) + " elements is not a whole number of " + tr->name + " blocks");
  const std::size_t n_blocks = n / tr->block_size;
  if (src.size() != n_blocks * tr->type_size)
    fail(file, field,
         std::string(tr->name) + ": " + std::to_string(n) + " elements need " +
             std::to_string(n_blocks * tr->type_size) + " bytes, got " + std::to_string(src.size()));
  const std::uint8_t* s = src.data();
  float* d = dst.data();
  switch (type) {
    case GgmlType::F32:
      if (n) std::memcpy(d, s, n * 4);
      break;
    case GgmlType::F16:
      for (std::size_t i = 0; i < n; ++i) d[i] = gguf_detail::load_f16(s + 2 * i);
      break;
    case GgmlType::BF16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t b;
        std::memcpy(&b, s + 2 * i, 2);
        d[i] = to_float(bf16_t{b});
      }
      break;
    case GgmlType::Q4_0: gguf_detail::dequant_q4_0(s, d, n_blocks); break;
    case GgmlType::Q4_1: gguf_detail::dequant_q4_1(s, d, n_blocks); break;
    case GgmlType::Q5_0: gguf_detail::dequant_q5_0(s, d, n_blocks); break;
    case GgmlType::Q5_1: gguf_detail::dequant_q5_1(s, d, n_blocks); break;
    case GgmlType::Q8_0: gguf_detail::dequant_q8_0(s, d, n_blocks); break;
    case GgmlType::Q2_K: gguf_detail::dequant_q2_k(s, d, n_blocks); break;
    case GgmlType::Q3_K: gguf_detail::dequant_q3_k(s, d, n_blocks); break;
    case GgmlType::Q4_K: gguf_detail::dequant_q4_k(s, d, n_blocks); break;
    case GgmlType::Q5_K: gguf_detail::dequant_q5_k(s, d, n_blocks); break;
    case GgmlType::Q6_K: gguf_detail::dequant_q6_k(s, d, n_blocks); break;
    default: break;  // rejected above
  }
}

// Dequantizes a whole tensor, in GGUF element order (ne[0] fastest).
inline void dequantize(const GgufFile& f, const GgufTensorInfo& t, std::span<float> dst) {
  if (dst.size() != t.n_elements)
    fail(f.path(), "tensor '" + t.name + "'",
         "destination holds " + std::to_string(dst.size()) + " floats, tensor has " + std::to_string(t.n_elements));
  dequantize(t.type, f.tensor_bytes(t), dst, f.path(), "tensor '" + t.name + "'");
}

inline std::vector<float> dequantize(const GgufFile& f, const GgufTensorInfo& t) {
  std::vector<float> out(static_cast<std::size_t>(t.n_elements));
  dequantize(f, t, out);
  return out;
}

}  // namespace kvcanary::io
