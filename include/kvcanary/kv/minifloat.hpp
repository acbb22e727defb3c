#pragma once
// The small floating-point formats of deployed KV caches: OCP/NVIDIA fp8 E4M3 ("e4m3fn": no
// infinity, one NaN per sign), fp8 E5M2 (IEEE-like, with ±inf), and fp4 E2M1 (no inf/NaN).
//
// Encoding is round to nearest, ties to even — the rounding of ml_dtypes' float8_e4m3fn /
// float8_e5m2 / float4_e2m1fn and of CUDA's __nv_cvt_float_to_fp8 — with *saturation*: a
// finite value or ±inf beyond the largest finite magnitude encodes as ±max, as CUDA's
// __NV_SATFINITE mode that vLLM's cache store uses (ml_dtypes alone would give NaN / inf).
// A NaN input encodes as the format's NaN with its sign (E4M3: S.1111.111, E5M2: S.11111.10,
// ml_dtypes' choice); E2M1 has no NaN, so its callers refuse NaN before encoding. Signed zero
// keeps its sign. Decoding is exact (every code is an fp32 value), through 256- or 16-entry
// tables.

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>

namespace kvcanary::kv::minifloat {

// E exponent bits, M mantissa bits, exponent bias B; `max_bits` = fp32 bits of the largest
// finite magnitude; `nan_code` = the code of +NaN (0 when the format has none).
struct Format {
  int E, M, B;
  std::uint32_t max_bits;
  std::uint8_t nan_code;
  bool has_inf;
};

inline constexpr Format kE4M3{4, 3, 7, 0x43E00000u /*448*/, 0x7F, false};
inline constexpr Format kE5M2{5, 2, 15, 0x47600000u /*57344*/, 0x7E, true};
inline constexpr Format kE2M1{2, 1, 1, 0x40C00000u /*6*/, 0x00, false};

// Code of a finite magnitude a in [0, max] (fp32 bits `u`, sign cleared), rounded to nearest
// even. The quantum of a's binade (the subnormal binade's below 2^(1−B)) is a power of two,
// so a / quantum is exact and one rint does the rounding; a carry into the next binade yields
// the right code because the code space is ordered like the values.
template <const Format& F>
inline std::uint8_t encode_magnitude(std::uint32_t u) noexcept {
  const int eu = static_cast<int>(u >> 23);
  if (eu == 0) return 0;  // fp32 zero or subnormal (< 2^-126): rounds to 0 in every format here
  const int ex = eu - 127 < 1 - F.B ? 1 - F.B : eu - 127;  // exponent of the quantum's binade
  const float inv_quantum = std::bit_cast<float>(static_cast<std::uint32_t>(127 - (ex - F.M)) << 23);
  const float n = std::rint(std::bit_cast<float>(u) * inv_quantum);  // integer in [0, 2^(M+1)]
  const int m = static_cast<int>(n);
  if (m == 0) return 0;
  if (m < (1 << F.M)) return static_cast<std::uint8_t>(m);  // subnormal (only in the lowest binade)
  if (m == (2 << F.M)) return static_cast<std::uint8_t>((ex + 1 + F.B) << F.M);  // carried into the next binade
  return static_cast<std::uint8_t>(((ex + F.B) << F.M) | (m - (1 << F.M)));
}

// Saturating, round-to-nearest-even encoding of x.
template <const Format& F>
inline std::uint8_t encode(float x) noexcept {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const std::uint8_t sign = static_cast<std::uint8_t>((bits >> 31) << (F.E + F.M));
  std::uint32_t a = bits & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return static_cast<std::uint8_t>(sign | F.nan_code);  // NaN
  if (a > F.max_bits) a = F.max_bits;                                        // beyond max, or inf: saturate
  return static_cast<std::uint8_t>(sign | encode_magnitude<F>(a));
}

// Exact value of a finite code (inf and NaN codes are set by decode_table).
template <const Format& F>
constexpr float decode_slow(std::uint8_t code) noexcept {
  const int bits = F.E + F.M;
  const bool neg = (code >> bits) & 1;
  const int e = (code >> F.M) & ((1 << F.E) - 1), m = code & ((1 << F.M) - 1);
  float v;
  if (e == 0) {
    v = static_cast<float>(m);
    for (int i = 0; i < F.B - 1 + F.M; ++i) v *= 0.5f;  // m · 2^(1−B−M)
  } else {
    v = static_cast<float>((1 << F.M) + m);
    const int p = e - F.B - F.M;
    for (int i = 0; i < p; ++i) v *= 2.0f;
    for (int i = 0; i < -p; ++i) v *= 0.5f;
  }
  return neg ? -v : v;
}

template <const Format& F>
inline const std::array<float, 256>& decode_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    const int bits = F.E + F.M;
    for (int c = 0; c < (1 << (bits + 1)); ++c) {
      const int mag = c & ((1 << bits) - 1);
      const bool neg = (c >> bits) & 1;
      float v = decode_slow<F>(static_cast<std::uint8_t>(c));
      if (F.has_inf && mag == (((1 << F.E) - 1) << F.M))
        v = neg ? -INFINITY : INFINITY;
      else if (F.has_inf && mag > (((1 << F.E) - 1) << F.M))
        v = neg ? -NAN : NAN;
      else if (!F.has_inf && F.nan_code != 0 && mag == F.nan_code)
        v = neg ? -NAN : NAN;
      t[static_cast<std::size_t>(c)] = v;
    }
    return t;
  }();
  return table;
}

inline float decode_e4m3(std::uint8_t c) { return decode_table<kE4M3>()[c]; }
inline float decode_e5m2(std::uint8_t c) { return decode_table<kE5M2>()[c]; }
inline float decode_e2m1(std::uint8_t c) { return decode_table<kE2M1>()[c & 0x0F]; }

}  // namespace kvcanary::kv::minifloat
