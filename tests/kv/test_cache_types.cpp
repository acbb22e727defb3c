// The deployed KV-cache types' codecs (kv/cache_types.hpp, kv/minifloat.hpp) against the
// references: codes and dequantized values of 2^20 seeded values and ~100 edge blocks per
// format hash to the FNV-1a digests scripts/golden/make_cache_type_goldens.py wrote with
// gguf-py / ml_dtypes (tests/data/kv/cache_types.json). Plus the documented domain rules.

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <string>
#include <vector>

#include "../support/json_file.hpp"
#include "kvcanary/kv/cache_types.hpp"

using namespace kvcanary;

namespace {

struct SplitMix64 {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

// The golden script's stream(): blocks of 32 with a per-block exponent, 1/256 exact zeros.
std::vector<float> stream(std::size_t n, std::uint64_t seed) {
  std::vector<float> out(n);
  SplitMix64 rng{seed};
  for (std::size_t b = 0; b < n / 32; ++b) {
    const int eb = static_cast<int>(rng.next() % 39) - 24;
    for (std::size_t j = 0; j < 32; ++j) {
      const std::uint64_t u = rng.next();
      if (((u >> 32) & 0xFF) == 0) {
        out[b * 32 + j] = 0.0f;
        continue;
      }
      const int e = eb - static_cast<int>((u >> 23) % 8);
      const std::uint32_t bits = static_cast<std::uint32_t>((u >> 63) << 31) |
                                 (static_cast<std::uint32_t>(e + 127) << 23) | static_cast<std::uint32_t>(u & 0x7FFFFF);
      out[b * 32 + j] = std::bit_cast<float>(bits);
    }
  }
  return out;
}

std::vector<std::uint32_t> edge_bits(const test::JsonFile& f) {
  std::vector<std::uint32_t> out;
  for (auto v : f.root["edge_bits"].get_array())
    out.push_back(static_cast<std::uint32_t>(std::stoul(std::string(v.get_string().value()), nullptr, 16)));
  return out;
}

// The golden script's edge_blocks(), in the same order.
std::vector<std::vector<float>> edge_blocks(const std::vector<std::uint32_t>& e) {
  std::vector<std::vector<float>> blocks;
  const std::size_t n = e.size();
  auto f = [](std::uint32_t b) { return std::bit_cast<float>(b); };
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t v = e[i];
    std::vector<float> a(32, f(v)), b(32, 0.0f), c(32), d(32);
    b[0] = f(v);
    for (std::size_t j = 0; j < 32; ++j) {
      c[j] = f(e[(i + j) % n]);
      d[j] = j % 2 == 0 ? f(v) : j % 4 == 1 ? f(v ^ 0x80000000u) : f(0x3DCCCCCDu);
    }
    blocks.push_back(a);
    blocks.push_back(b);
    blocks.push_back(c);
    blocks.push_back(d);
  }
  return blocks;
}

// The script's in_block_domain(): what the block formats accept, less the all-zero blocks
// with a −0 for q4_0/q4_1/q5_0/q5_1, where gguf-py and ggml's C disagree on the sign of the
// zero scale (the C++ follows the C).
bool in_block_domain(const std::vector<float>& b, kv::CacheType t) {
  double amax = 0;
  bool negative_zero = false;
  for (float x : b) {
    if (!std::isfinite(x)) return false;
    amax = std::max(amax, std::abs(static_cast<double>(x)));
    negative_zero |= std::signbit(x);
  }
  const bool ambiguous =
      t == kv::CacheType::Q4_0 || t == kv::CacheType::Q4_1 || t == kv::CacheType::Q5_0 || t == kv::CacheType::Q5_1;
  if (ambiguous && amax == 0.0 && negative_zero) return false;
  return amax <= 65504.0 && (amax == 0.0 || amax >= std::ldexp(1.0, -100));
}

// FNV-1a 64 over little-endian 64-bit words, zero-padded (the script's fnv1a_np).
std::string fnv1a(const std::uint8_t* p, std::size_t n) {
  std::uint64_t h = 0xCBF29CE484222325ull;
  for (std::size_t i = 0; i < n; i += 8) {
    std::uint64_t w = 0;
    for (std::size_t k = 0; k < 8 && i + k < n; ++k) w |= static_cast<std::uint64_t>(p[i + k]) << (8 * k);
    h = (h ^ w) * 0x100000001B3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string values_digest(std::vector<float> v) {
  std::vector<std::uint32_t> bits(v.size());
  for (std::size_t i = 0; i < v.size(); ++i)
    bits[i] = std::isnan(v[i]) ? 0x7FC00000u : std::bit_cast<std::uint32_t>(v[i]);
  return fnv1a(reinterpret_cast<const std::uint8_t*>(bits.data()), bits.size() * 4);
}

struct Encoded {
  std::vector<std::uint8_t> codes;
  std::vector<float> values;
};

// Rows of 64 values (a head_dim), as the cache stores them; the stream length is a multiple.
Encoded encode(kv::CacheType t, const std::vector<float>& x, float scale) {
  constexpr std::size_t D = 32;
  Encoded e;
  const std::size_t rb = kv::cache_type_row_bytes(t, D), rows = x.size() / D;
  e.codes.resize(rows * rb);
  e.values.resize(x.size());
  for (std::size_t r = 0; r < rows; ++r) {
    kv::quantize_row(t, &x[r * D], D, scale, &e.codes[r * rb]);
    kv::dequantize_row(t, &e.codes[r * rb], D, scale, &e.values[r * D]);
  }
  return e;
}

}  // namespace

TEST_CASE("cache types: codes and values equal gguf-py / ml_dtypes over 2^20 seeded values and the edge blocks") {
  test::JsonFile f(test::test_data("kv/cache_types.json"));
  const std::uint64_t seed = std::stoull(std::string(f.root["seed"].get_string().value()), nullptr, 16);
  const std::size_t n = static_cast<std::size_t>(f.root["values"].get_int64().value());
  REQUIRE(n >= 1000000);
  const std::vector<float> x = stream(n, seed);
  float amax = 0;
  for (float v : x) amax = std::max(amax, std::abs(v));
  CHECK(amax == static_cast<float>(f.root["stream_amax"].get_double().value()));
  const auto blocks = edge_blocks(edge_bits(f));
  std::size_t cases = 0;
  for (auto c : f.root["cases"].get_array()) {
    const std::string name(c["format"].get_string().value());
    const auto t = kv::parse_cache_type(name);
    REQUIRE(t.has_value());
    const float scale = static_cast<float>(c["scale_value"].get_double().value());
    CAPTURE(name);
    CAPTURE(std::string(c["scale"].get_string().value()));
    const Encoded s = encode(*t, x, scale);
    CHECK(s.codes.size() == static_cast<std::size_t>(c["stream_code_bytes"].get_int64().value()));
    CHECK(fnv1a(s.codes.data(), s.codes.size()) == std::string(c["stream_codes"].get_string().value()));
    CHECK(values_digest(s.values) == std::string(c["stream_values"].get_string().value()));

    std::vector<float> edges;
    for (const auto& b : blocks)
      if (kv::info(*t).block == 1 || in_block_domain(b, *t))
        edges.insert(edges.end(), b.begin(), b.end());  // fp8 takes every value
    CHECK(edges.size() / 32 == static_cast<std::size_t>(c["edge_blocks"].get_int64().value()));
    const Encoded e = encode(*t, edges, scale);
    CHECK(fnv1a(e.codes.data(), e.codes.size()) == std::string(c["edge_codes"].get_string().value()));
    CHECK(values_digest(e.values) == std::string(c["edge_values"].get_string().value()));
    ++cases;
  }
  CHECK(cases == 15);
}

TEST_CASE("cache types: the AVX2 block decoder equals the portable one, bit for bit") {
  const std::vector<float> x = stream(1 << 16, 42);
  for (const auto& i : kv::kCacheTypes) {
    if (i.block == 1) continue;  // fp8: one table path
    CAPTURE(std::string(i.name));
    const Encoded e = encode(i.type, x, 0.5f);
    std::vector<float> portable(x.size());
    for (std::size_t b = 0; b < x.size() / i.block; ++b)
      kv::dequantize_block_portable(i.type, &e.codes[b * i.block_bytes], 0.5f, &portable[b * i.block]);
    CHECK(std::memcmp(portable.data(), e.values.data(), x.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("cache types: block formats refuse non-finite and |x| > 65504, code tiny blocks as zero, fp8 saturates") {
  std::vector<float> x(64, 0.5f);
  for (const auto& i : kv::kCacheTypes) {
    std::vector<std::uint8_t> out(kv::cache_type_row_bytes(i.type, 64));
    CAPTURE(std::string(i.name));
    for (float bad : {NAN, INFINITY, -INFINITY, 65505.0f}) {
      x[17] = bad;
      if (i.block == 1) {
        CHECK_NOTHROW(kv::quantize_row(i.type, x.data(), 64, 1.0f, out.data()));
      } else {
        CHECK_THROWS_AS(kv::quantize_row(i.type, x.data(), 64, 1.0f, out.data()), Error);
      }
    }
    // 0 < amax < 2^-100: the same bytes as the all-zero block, which decodes to zeros.
    std::vector<float> tiny(64, 0.0f), zero(64, 0.0f), back(64, 1.0f);
    tiny[3] = 0x1p-120f;
    tiny[40] = -0x1p-110f;
    std::vector<std::uint8_t> a(out.size()), b(out.size());
    kv::quantize_row(i.type, tiny.data(), 64, 1.0f, a.data());
    kv::quantize_row(i.type, zero.data(), 64, 1.0f, b.data());
    if (i.block > 1) CHECK(a == b);
    kv::dequantize_row(i.type, b.data(), 64, 1.0f, back.data());
    for (float v : back) CHECK(v == 0.0f);
  }
  // fp8: ±inf and out-of-range saturate to ±max; NaN stays NaN (vLLM's __NV_SATFINITE).
  std::uint8_t c[6];
  const float v[6] = {INFINITY, -INFINITY, 1e30f, 500.0f, NAN, -0.0f};
  kv::quantize_row(kv::CacheType::FP8_E4M3, v, 6, 1.0f, c);
  CHECK(c[0] == 0x7E);
  CHECK(c[1] == 0xFE);
  CHECK(c[2] == 0x7E);
  CHECK(c[3] == 0x7E);
  CHECK(c[4] == 0x7F);
  CHECK(c[5] == 0x80);
  kv::quantize_row(kv::CacheType::FP8_E5M2, v, 6, 1.0f, c);
  CHECK(c[0] == 0x7B);
  CHECK(c[1] == 0xFB);
  CHECK(c[4] == 0x7E);
  CHECK(kv::minifloat::decode_e5m2(0x7B) == 57344.0f);
  CHECK(kv::minifloat::decode_e4m3(0x7E) == 448.0f);
  CHECK(std::isnan(kv::minifloat::decode_e4m3(0x7F)));
}

TEST_CASE("cache types: bytes per row are ggml's block sizes (bits per value incl. scales)") {
  struct Want {
    kv::CacheType t;
    double bits;
  };
  for (const Want w : {Want{kv::CacheType::Q8_0, 8.5},
                       {kv::CacheType::Q4_0, 4.5},
                       {kv::CacheType::Q4_1, 5.0},
                       {kv::CacheType::Q5_0, 5.5},
                       {kv::CacheType::Q5_1, 6.0},
                       {kv::CacheType::IQ4_NL, 4.5},
                       {kv::CacheType::FP8_E4M3, 8.0},
                       {kv::CacheType::FP8_E5M2, 8.0},
                       {kv::CacheType::NVFP4, 4.5},
                       {kv::CacheType::MXFP4, 4.25}})
    CHECK(static_cast<double>(kv::cache_type_row_bytes(w.t, 128)) * 8.0 / 128.0 == w.bits);
  CHECK_THROWS_AS(kv::require_row_fits(kv::CacheType::Q4_0, 48), Error);
  CHECK_NOTHROW(kv::require_row_fits(kv::CacheType::NVFP4, 48));
}
