#pragma once
// 16-bit float formats used by model files. Conversions to fp32 are exact (every bf16 and
// fp16 value is representable in fp32); fp32 -> bf16 rounds to nearest even, as PyTorch does.

#include <bit>
#include <cstdint>
#include <cstring>

namespace kvcanary {

struct bf16_t {
  std::uint16_t bits = 0;
};
struct f16_t {
  std::uint16_t bits = 0;
};

inline float to_float(bf16_t v) noexcept { return std::bit_cast<float>(static_cast<std::uint32_t>(v.bits) << 16); }

inline bf16_t to_bf16(float f) noexcept {
  std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) {
    return bf16_t{static_cast<std::uint16_t>((u >> 16) | 0x40)};  // quiet NaN
  }
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16_t{static_cast<std::uint16_t>(u >> 16)};
}

// IEEE binary16 -> binary32, exact, including subnormals, infinities and NaN payloads.
inline float to_float(f16_t v) noexcept {
  const std::uint32_t h = v.bits;
  const std::uint32_t sign = (h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  std::uint32_t out;
  if (exp == 0) {
    if (mant == 0) {
      out = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      mant &= 0x3ffu;
      out = sign | static_cast<std::uint32_t>(127 - 15 - e) << 23 | (mant << 13);
    }
  } else if (exp == 0x1f) {
    out = sign | 0x7f800000u | (mant << 13);
  } else {
    out = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(out);
}

// fp32 → fp16, round to nearest even; overflow to ±inf, NaN stays NaN (quiet).
inline f16_t to_f16(float f) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  const std::uint16_t sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const std::uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u) return f16_t{static_cast<std::uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u))};
  if (abs >= 0x477ff000u) return f16_t{static_cast<std::uint16_t>(sign | 0x7c00u)};  // ≥ 65520: rounds to inf
  if (abs < 0x38800000u) {
    // fp16 subnormal (or zero): value = m · 2^-24. Shift the 24-bit significand so that the
    // integer part is m, rounding the dropped bits half to even.
    if (abs < 0x33000000u) return f16_t{sign};  // below 2^-25: rounds to ±0
    const std::uint32_t e = abs >> 23;
    const std::uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - e;  // 14..24 bits dropped
    std::uint32_t m = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (m & 1u))) ++m;
    return f16_t{static_cast<std::uint16_t>(sign | m)};
  }
  // Normal: rebias the exponent, round the 13 dropped mantissa bits half to even; a carry
  // into the exponent is the correct result (up to inf at the top, handled above).
  std::uint32_t h = ((abs >> 13) - ((127u - 15u) << 10));
  const std::uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return f16_t{static_cast<std::uint16_t>(sign | h)};
}

}  // namespace kvcanary
