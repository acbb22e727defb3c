// Dequantization must be bit-identical to gguf-py's gguf.quants.dequantize: the reference
// values (tests/data/gguf/types.<TYPE>.f32) were produced by it from the same bytes
// (scripts/golden/make_gguf_goldens.py synthetic), and are compared with memcmp. The k-quants
// are compared by the sha256 of gguf-py's fp32 output (tests/data/gguf/kquants.json, written
// by `make_gguf_goldens.py kquants`): random super-blocks with edge-case scales and blocks
// sliced from the real Qwen2.5-Coder files.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <kvcanary/io/gguf_quants.hpp>

#include <cstring>
#include <map>
#include <string>

#include "gguf_test_util.hpp"

using kvcanary::Error;
using kvcanary::io::GgmlType;
using kvcanary::io::GgufFile;
using namespace gguf_test;

TEST_CASE("gguf quants: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 bit-identical to gguf-py") {
  const GgufFile f(data_dir() / "types.gguf");
  for (const char* type : {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"}) {
    CAPTURE(type);
    const auto& t = f.tensor(std::string("t.") + type);
    CHECK(std::string(kvcanary::io::ggml_type_name(t.type)) == type);
    const std::vector<float> got = kvcanary::io::dequantize(f, t);
    const auto want = read_bytes(data_dir() / (std::string("types.") + type + ".f32"));
    REQUIRE(want.size() == got.size() * 4);
    CHECK(std::memcmp(got.data(), want.data(), want.size()) == 0);
  }
  const auto& t3 = f.tensor("t.3d");
  const std::vector<float> got = kvcanary::io::dequantize(f, t3);
  const auto want = read_bytes(data_dir() / "types.3d.f32");
  REQUIRE(want.size() == got.size() * 4);
  CHECK(std::memcmp(got.data(), want.data(), want.size()) == 0);
}

TEST_CASE("gguf quants: Q2_K Q3_K Q4_K Q5_K Q6_K bit-identical to gguf-py (random and real blocks)") {
  const GgufFile f(data_dir() / "kquants.gguf");
  const auto golden = nlohmann::json::parse(read_text(data_dir() / "kquants.json"));
  const auto& tensors = golden.at("tensors");
  REQUIRE(tensors.size() == f.tensors().size());
  std::map<std::string, int> per_type;
  for (const auto& [name, g] : tensors.items()) {
    CAPTURE(name);
    const auto& t = f.tensor(name);
    const std::string type = g.at("type").get<std::string>();
    CHECK(kvcanary::io::ggml_type_name(t.type) == type);
    const std::vector<float> got = kvcanary::io::dequantize(f, t);
    REQUIRE(got.size() == 256 * g.at("n_blocks").get<std::size_t>());
    const auto& first = g.at("first");
    for (std::size_t i = 0; i < first.size(); ++i) CHECK(got[i] == first[i].get<float>());
    CHECK(sha256_hex(got.data(), got.size() * 4) == g.at("sha256").get<std::string>());
    ++per_type[type];
  }
  for (const char* type : {"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"}) {
    CAPTURE(type);
    CHECK(per_type[type] >= 1);
  }
  CHECK(per_type["Q4_K"] >= 3);  // random + real (the Qwen files are Q4_K_M: Q4_K and Q6_K)
  CHECK(per_type["Q6_K"] >= 3);
}

// Packs 8 six-bit scales and mins into the 12 bytes of Q4_K/Q5_K (ggml's get_scale_min_k4
// read backwards).
static void pack_k4_scales(const int sc[8], const int m[8], std::uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<std::uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<std::uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<std::uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

TEST_CASE("gguf quants: element order and formula of hand-built Q4_K and Q6_K blocks") {
  // Q4_K: d = 1.0, dmin = 0.5; sub-block j has scale j + 33 and min 2j + 17 (both use the
  // high 2 bits); byte 32c + l holds element 64c + l (low nibble) and 64c + 32 + l (high).
  std::uint8_t q4[144] = {0x00, 0x3C, 0x00, 0x38};
  int sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = j + 33;
    m[j] = 2 * j + 17;
  }
  pack_k4_scales(sc, m, q4 + 4);
  for (int i = 0; i < 128; ++i) q4[16 + i] = static_cast<std::uint8_t>((i % 16) | ((15 - i % 16) << 4));
  float out[256];
  kvcanary::io::dequantize(GgmlType::Q4_K, q4, out);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const int lo = l % 16, hi = 15 - l % 16, j0 = 2 * c, j1 = 2 * c + 1;
      CHECK(out[64 * c + l] == static_cast<float>(sc[j0] * lo) - 0.5f * static_cast<float>(m[j0]));
      CHECK(out[64 * c + 32 + l] == static_cast<float>(sc[j1] * hi) - 0.5f * static_cast<float>(m[j1]));
    }
  // Q6_K: d = 1.0, scales[t] = t - 8 (signed); element p = 128h + 32k + l takes nibble k / 2 of
  // ql[64h + 32(k % 2) + l] and bits 2k.. of qh[32h + l]. Pick each 6-bit value as (p * 7) % 64.
  std::uint8_t q6[210] = {};
  for (int p = 0; p < 256; ++p) {
    const int h = p / 128, k = (p / 32) % 4, l = p % 32, v = (p * 7) % 64;
    q6[64 * h + 32 * (k % 2) + l] |= static_cast<std::uint8_t>((v & 15) << (4 * (k / 2)));
    q6[128 + 32 * h + l] |= static_cast<std::uint8_t>((v >> 4) << (2 * k));
  }
  for (int t = 0; t < 16; ++t) q6[192 + t] = static_cast<std::uint8_t>(static_cast<std::int8_t>(t - 8));
  q6[208] = 0x00;
  q6[209] = 0x3C;
  kvcanary::io::dequantize(GgmlType::Q6_K, q6, out);
  for (int p = 0; p < 256; ++p) {
    CAPTURE(p);
    CHECK(out[p] == static_cast<float>((p / 16 - 8) * ((p * 7) % 64 - 32)));
  }
}

TEST_CASE("gguf quants: nibble order and formula of a hand-built Q4_1 block") {
  // d = 1.0 (f16 0x3C00), m = 0.5 (0x3800); byte j holds element j (low nibble) and
  // element j + 16 (high nibble).
  std::uint8_t block[20] = {0x00, 0x3C, 0x00, 0x38};
  for (int j = 0; j < 16; ++j) block[4 + j] = static_cast<std::uint8_t>(j | ((15 - j) << 4));
  float out[32];
  kvcanary::io::dequantize(GgmlType::Q4_1, block, out);
  for (int j = 0; j < 16; ++j) {
    CHECK(out[j] == static_cast<float>(j) + 0.5f);
    CHECK(out[j + 16] == static_cast<float>(15 - j) + 0.5f);
  }
}

TEST_CASE("gguf quants: unsupported types and size mismatches are errors") {
  std::vector<std::uint8_t> bytes(144);
  std::vector<float> out(256);
  try {
    kvcanary::io::dequantize(GgmlType::Q8_K, bytes, out, "m.gguf", "tensor 'w'");
    FAIL("expected error");
  } catch (const Error& e) {
    CHECK(e.file() == "m.gguf");
    CHECK(e.field() == "tensor 'w'");
    CHECK(std::string(e.what()).find("Q8_K") != std::string::npos);
  }
  std::vector<std::uint8_t> q8(34);
  std::vector<float> wrong(33);
  CHECK_THROWS_AS(kvcanary::io::dequantize(GgmlType::Q8_0, q8, wrong), Error);
  std::vector<float> two_blocks(64);
  CHECK_THROWS_AS(kvcanary::io::dequantize(GgmlType::Q8_0, q8, two_blocks), Error);
  CHECK(kvcanary::io::can_dequantize(GgmlType::Q5_1));
  CHECK(kvcanary::io::can_dequantize(GgmlType::Q6_K));
  CHECK_FALSE(kvcanary::io::can_dequantize(GgmlType::Q8_K));
  CHECK_FALSE(kvcanary::io::can_dequantize(GgmlType::IQ2_XXS));
  std::vector<std::uint8_t> q4k(144);
  std::vector<float> half_block(128);  // k-quants come in whole super-blocks of 256
  CHECK_THROWS_AS(kvcanary::io::dequantize(GgmlType::Q4_K, q4k, half_block), Error);
}
