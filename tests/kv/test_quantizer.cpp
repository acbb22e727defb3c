// The quantization kernels behind absmax and kivi: fp16 rounding of scales and zero points,
// bit packing, round-half-to-even codes and the |x − x̂| ≤ s/2 bound the outward-rounded fp16
// statistics guarantee.

#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kvcanary/kv/quant_width.hpp"

using namespace kvcanary;
using namespace kvcanary::kv;

namespace {
std::vector<float> kv_like(std::size_t n, unsigned seed) {
  // Gaussian bulk with a few large outliers, as K/V activations look.
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.3f, 1.5f);
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = d(rng) * (i % 97 == 5 ? 12.0f : 1.0f);
  return x;
}
// fp32 rounding of t = x / s and of x̂ allows a few ulps beyond s/2.
float slack(float x) { return 4e-7f * (std::abs(x) + 1e-3f); }
}  // namespace

TEST_CASE("quantizer: fp32→fp16 is round-to-nearest-even and the outward roundings bracket the value") {
  std::size_t checked = 0;
  for (std::uint32_t b = 0; b < 0x10000u; ++b) {
    const f16_t h{static_cast<std::uint16_t>(b)};
    const float f = to_float(h);
    if (std::isnan(f)) continue;
    CHECK(quant::to_f16(f).bits == h.bits);  // every fp16 value round-trips
    ++checked;
    // Midpoint to the next value up (positive finite, not the largest): ties go to the even code.
    if (b < 0x7bffu) {
      const float next = to_float(f16_t{static_cast<std::uint16_t>(b + 1)});
      const float mid = f + (next - f) / 2;  // exact in fp32: fp16 has 11 significant bits
      CHECK(quant::to_f16(mid).bits == ((b & 1u) ? b + 1 : b));
    }
  }
  CHECK(checked == 65536 - 2046);                  // every pattern but the NaNs
  CHECK(quant::to_f16(65520.0f).bits == 0x7c00u);  // rounds to inf
  CHECK(quant::to_f16(65519.0f).bits == 0x7bffu);
  CHECK(quant::to_f16(std::ldexp(1.0f, -25)).bits == 0u);  // tie between 0 and 2^-24: even
  CHECK(quant::to_f16(std::ldexp(1.5f, -25)).bits == 1u);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> e(-30.0f, 15.0f);
  for (int i = 0; i < 20000; ++i) {
    const float x =
        std::ldexp(1.0f + static_cast<float>(i % 1000) / 1000.0f, static_cast<int>(e(rng))) * (i % 2 ? -1.0f : 1.0f);
    const f16_t up = quant::to_f16_up(x), down = quant::to_f16_down(x);
    CHECK(up.bits == quant::to_f16_up_portable(x).bits);  // the F16C path (when built with it) agrees
    CHECK(down.bits == quant::to_f16_down_portable(x).bits);
    REQUIRE(to_float(down) <= x);
    REQUIRE(to_float(up) >= x);
    // Adjacent (or equal when x is representable).
    CHECK((up.bits == down.bits || quant::next_up(down).bits == up.bits));
  }
}

TEST_CASE("quantizer: pack/unpack round-trips 8/4/2-bit codes, little-endian within a byte") {
  std::mt19937 rng(7);
  for (unsigned bits : {8u, 4u, 2u}) {
    for (std::size_t n : {1u, 37u, 64u, 1000u}) {
      std::vector<std::uint8_t> codes(n), back(n);
      for (auto& c : codes) c = static_cast<std::uint8_t>(rng() & ((1u << bits) - 1u));
      std::vector<std::uint8_t> packed(quant::packed_bytes(n, bits), 0xAA);
      quant::pack(codes.data(), n, bits, packed.data());
      quant::unpack(packed.data(), n, bits, back.data());
      CHECK(codes == back);
      CHECK(packed.size() == (n * bits + 7) / 8);
    }
  }
  const std::uint8_t two[4] = {1, 2, 3, 0}, four[2] = {0x3, 0xC};
  std::uint8_t out = 0;
  quant::pack(two, 4, 2, &out);
  CHECK(out == 0b00111001);
  quant::pack(four, 2, 4, &out);
  CHECK(out == 0xC3);
}

TEST_CASE("quantizer: codes round half to even") {
  // s = 1: t = x exactly.
  const float x[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.49f, 200.0f, -200.0f};
  std::uint8_t c[9];
  quant::sym_quantize(x, 9, 1.0f, 8, c);
  const int want[] = {0, 2, 2, 0, -2, -2, 3, 127, -127};  // the last two clamp to ±qmax
  for (int i = 0; i < 9; ++i) CHECK(static_cast<int>(c[i]) - 128 == want[i]);
  // Asymmetric: min 0, max 15 at 4 bits gives s = 1, z = 0.
  const float y[] = {0.0f, 2.5f, 3.5f, 15.0f};
  quant::AsymParams p;
  quant::asym_quantize_token(y, 4, 4, 4, c, &p);
  CHECK(to_float(p.scale) == 1.0f);
  CHECK(c[1] == 2);
  CHECK(c[2] == 4);
  CHECK(c[3] == 15);
}

TEST_CASE("quantizer: symmetric absmax error is at most s/2 with the stored fp16 scale") {
  const auto x = kv_like(4096, 1);
  float absmax = 0;
  for (float v : x) absmax = std::max(absmax, std::abs(v));
  for (unsigned bits : {8u, 4u, 2u}) {
    const float s = to_float(quant::sym_scale(absmax, bits));
    CHECK(s >= absmax / static_cast<float>(quant::sym_qmax(bits)));  // rounded up: nothing clips
    std::vector<std::uint8_t> codes(x.size());
    std::vector<float> back(x.size());
    quant::sym_quantize(x.data(), x.size(), s, bits, codes.data());
    quant::sym_dequantize(codes.data(), x.size(), s, bits, back.data());
    float worst = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      CHECK(codes[i] >= 1);  // symmetric code space: the offset code 0 is never used
      worst = std::max(worst, std::abs(x[i] - back[i]) - slack(x[i]));
    }
    MESSAGE(bits << "-bit absmax: max |x − x̂| = " << worst << ", s/2 = " << s / 2);
    CHECK(worst <= s / 2);
  }
  // All zeros: scale 0, exact.
  std::vector<float> z(10, 0.0f), zb(10, 1.0f);
  std::vector<std::uint8_t> zc(10);
  quant::sym_quantize(z.data(), 10, to_float(quant::sym_scale(0.0f, 4)), 4, zc.data());
  quant::sym_dequantize(zc.data(), 10, 0.0f, 4, zb.data());
  CHECK(zb == z);
}

TEST_CASE("quantizer: asymmetric per-channel and per-token error is at most s/2 of the group") {
  const std::size_t G = 32, D = 64;
  const auto x = kv_like(G * D, 2);
  for (unsigned bits : {8u, 4u, 2u}) {
    std::vector<std::uint8_t> codes(G * D);
    std::vector<quant::AsymParams> params(D);
    std::vector<float> back(G * D), lo(D), hi(D), sd(D), zd(D);
    quant::asym_quantize_channels(x.data(), G, D, bits, codes.data(), params.data(), lo.data(), hi.data(), sd.data(),
                                  zd.data());
    quant::asym_dequantize_channels(codes.data(), G, D, params.data(), back.data(), sd.data(), zd.data());
    for (std::size_t t = 0; t < G; ++t)
      for (std::size_t d = 0; d < D; ++d) {
        const float s = to_float(params[d].scale);
        REQUIRE(std::abs(x[t * D + d] - back[t * D + d]) <= s / 2 + slack(x[t * D + d]));
        REQUIRE(to_float(params[d].zero) <= x[t * D + d]);
      }
    // Per token, groups of 32 channels; and with a group that does not divide the row.
    for (std::size_t gv : {32u, 24u}) {
      std::vector<quant::AsymParams> tp((D + gv - 1) / gv);
      quant::asym_quantize_token(x.data(), D, gv, bits, codes.data(), tp.data());
      quant::asym_dequantize_token(codes.data(), D, gv, tp.data(), back.data());
      for (std::size_t d = 0; d < D; ++d)
        REQUIRE(std::abs(x[d] - back[d]) <= to_float(tp[d / gv].scale) / 2 + slack(x[d]));
    }
  }
}

TEST_CASE("quantizer: a constant group's zero point is the constant, its scale is 0") {
  for (float c : {0.75f, -3.0f, 0.0f, 1025.0f}) {  // fp16-representable
    std::vector<float> x(64, c), back(64);
    std::vector<std::uint8_t> codes(64);
    quant::AsymParams p[2];
    quant::asym_quantize_token(x.data(), 64, 32, 2, codes.data(), p);
    quant::asym_dequantize_token(codes.data(), 64, 32, p, back.data());
    CHECK(back == x);
    CHECK(to_float(p[0].scale) == 0.0f);
    CHECK(to_float(p[0].zero) == c);
  }
  // Not representable in fp16: the zero point rounds down and a tiny scale covers the gap.
  std::vector<float> x(32, 0.1f), back(32);
  std::vector<std::uint8_t> codes(32);
  quant::AsymParams p;
  quant::asym_quantize_token(x.data(), 32, 32, 4, codes.data(), &p);
  quant::asym_dequantize_token(codes.data(), 32, 32, &p, back.data());
  CHECK(std::abs(back[0] - 0.1f) <= to_float(p.scale) / 2 + slack(0.1f));
  CHECK(to_float(p.scale) < 1e-5f);
}

TEST_CASE("quantizer: budget → bits as the prototype mapped it, anything else names the field") {
  CHECK(quant::bits_from_options(PolicyOptions(0.5, Mode::Prompt), "q") == 8);
  CHECK(quant::bits_from_options(PolicyOptions(0.25, Mode::Prompt), "q") == 4);
  CHECK(quant::bits_from_options(PolicyOptions(0.125, Mode::Prompt), "q") == 2);
  CHECK(quant::bits_from_options(PolicyOptions(0.3, Mode::Prompt, {{"bits", "4"}}), "q") == 4);
  auto field_of = [](const PolicyOptions& o) {
    try {
      quant::bits_from_options(o, "q");
    } catch (const Error& e) { return e.field(); }
    return std::string("no error");
  };
  CHECK(field_of(PolicyOptions(0.3, Mode::Prompt)) == "bits");
  CHECK(field_of(PolicyOptions(1.0, Mode::Prompt)) == "bits");
  CHECK(field_of(PolicyOptions(0.5, Mode::Prompt, {{"bits", "3"}})) == "bits");
  CHECK(field_of(PolicyOptions(0.5, Mode::Prompt, {{"bits", "0"}})) == "bits");
  CHECK(field_of(PolicyOptions(0.5, Mode::Prompt, {{"bits", "x"}})) == "bits");
}
