// Dequantization must be bit-identical to gguf-py's gguf.quants.dequantize: the reference
// values (tests/data/gguf/types.<TYPE>.f32) were produced by it from the same bytes
// (scripts/golden/make_gguf_goldens.py synthetic), and are compared with memcmp.
#include <doctest/doctest.h>

#include <kvcanary/io/gguf_quants.hpp>

#include <cstring>
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
    kvcanary::io::dequantize(GgmlType::Q4_K, bytes, out, "m.gguf", "tensor 'w'");
    FAIL("expected error");
  } catch (const Error& e) {
    CHECK(e.file() == "m.gguf");
    CHECK(e.field() == "tensor 'w'");
    CHECK(std::string(e.what()).find("Q4_K") != std::string::npos);
  }
  std::vector<std::uint8_t> q8(34);
  std::vector<float> wrong(33);
  CHECK_THROWS_AS(kvcanary::io::dequantize(GgmlType::Q8_0, q8, wrong), Error);
  std::vector<float> two_blocks(64);
  CHECK_THROWS_AS(kvcanary::io::dequantize(GgmlType::Q8_0, q8, two_blocks), Error);
  CHECK(kvcanary::io::can_dequantize(GgmlType::Q5_1));
  CHECK_FALSE(kvcanary::io::can_dequantize(GgmlType::Q6_K));
}
