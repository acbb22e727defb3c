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
// Exactness: every product above is of an f16 scale (11 significant bits) and an integer of
// at most 8 bits, so it is exact in fp32; the only rounding is the single add of m. Hence
// the result does not depend on whether the compiler fuses d * q + m into an FMA, and the
// fp32 results equal numpy's (which rounds the product, then the sum) bit for bit.

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
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q4_0:
    case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q8_0:
      return true;
    default:
      return false;
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

}  // namespace gguf_detail

// Dequantizes dst.size() elements of `type` from src, which must hold exactly their encoding.
// `file` and `field` only label errors.
inline void dequantize(GgmlType type, std::span<const std::uint8_t> src, std::span<float> dst,
                       const std::string& file = {}, const std::string& field = {}) {
  const GgmlTypeTraits* tr = ggml_type_traits(static_cast<std::uint32_t>(type));
  if (!tr || !can_dequantize(type))
    fail(file, field, std::string("dequantization of ggml type ") + (tr ? tr->name : "?") +
                          " is not supported (supported: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0)");
  const std::size_t n = dst.size();
  if (n % tr->block_size != 0)
    fail(file, field, std::to_string(n) + " elements is not a whole number of " + tr->name + " blocks");
  const std::size_t n_blocks = n / tr->block_size;
  if (src.size() != n_blocks * tr->type_size)
    fail(file, field, std::string(tr->name) + ": " + std::to_string(n) + " elements need " +
                          std::to_string(n_blocks * tr->type_size) + " bytes, got " +
                          std::to_string(src.size()));
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
    default: break;  // rejected above
  }
}

// Dequantizes a whole tensor, in GGUF element order (ne[0] fastest).
inline void dequantize(const GgufFile& f, const GgufTensorInfo& t, std::span<float> dst) {
  if (dst.size() != t.n_elements)
    fail(f.path(), "tensor '" + t.name + "'",
         "destination holds " + std::to_string(dst.size()) + " floats, tensor has " +
             std::to_string(t.n_elements));
  dequantize(t.type, f.tensor_bytes(t), dst, f.path(), "tensor '" + t.name + "'");
}

inline std::vector<float> dequantize(const GgufFile& f, const GgufTensorInfo& t) {
  std::vector<float> out(static_cast<std::size_t>(t.n_elements));
  dequantize(f, t, out);
  return out;
}

}  // namespace kvcanary::io
