// safetensors reader: valid files parse zero-copy; every malformed header field is refused
// with an Error naming the file and the field.

#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "../support/temp_dir.hpp"
#include "kvcanary/core/half.hpp"
#include "kvcanary/io/safetensors.hpp"

using namespace kvcanary;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

// A safetensors file from a JSON header and a data buffer, exactly as given.
fs::path write_file(const fs::path& dir, const std::string& header, const std::string& data,
                    const std::string& name = "model.safetensors") {
  const fs::path p = dir / name;
  std::ofstream f(p, std::ios::binary);
  std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) f.put(static_cast<char>((n >> (8 * i)) & 0xff));
  f << header << data;
  return p;
}

std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::size_t i = 0;
  for (float x : v) std::memcpy(&s[4 * i++], &x, 4);
  return s;
}

void expect_error(const fs::path& p, const std::string& field_substring) {
  try {
    io::SafetensorsFile::open(p);
    FAIL("expected an error mentioning " << field_substring);
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK_MESSAGE(what.find(p.string()) != std::string::npos, what);
    CHECK_MESSAGE(what.find(field_substring) != std::string::npos, what);
  }
}

}  // namespace

TEST_CASE("safetensors: reads F32, F16 and BF16 tensors in place") {
  TempDir d;
  bf16_t b = to_bf16(1.5f);
  std::string bf(2, '\0');
  std::memcpy(&bf[0], &b.bits, 2);
  const std::string hf("\x00\x3c", 2);  // fp16 1.0
  const std::string data = floats({1, 2, 3, 4, 5, 6}) + bf + hf;
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
      R"("b":{"dtype":"BF16","shape":[1],"data_offsets":[24,26]},"h":{"dtype":"F16","shape":[1],"data_offsets":[26,28]}})";
  auto f = io::SafetensorsFile::open(write_file(d.path, header, data));
  REQUIRE(f->tensors().size() == 3);
  const auto* w = f->find("w");
  REQUIRE(w);
  CHECK(w->shape == std::vector<std::int64_t>{2, 3});
  float x;
  std::memcpy(&x, w->data + 20, 4);
  CHECK(x == 6.0f);
  CHECK(f->find("b")->dtype == io::DType::BF16);
  CHECK(f->metadata().at("format") == "pt");
}

TEST_CASE("safetensors: sharded model via model.safetensors.index.json") {
  TempDir d;
  write_file(d.path, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", floats({7}),
             "model-00001-of-00002.safetensors");
  write_file(d.path, R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", floats({8, 9}),
             "model-00002-of-00002.safetensors");
  std::ofstream(d.path / "model.safetensors.index.json")
      << R"({"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})";
  auto m = io::SafetensorsModel::open(d.path);
  CHECK(m.tensor_count() == 2);
  CHECK(m.require("b", {2}).numel() == 2);
  CHECK_THROWS_AS(m.require("b", {3}), Error);
  CHECK_THROWS_AS(m.require("missing", {1}), Error);
}

TEST_CASE("safetensors: bad input is refused naming the file and field") {
  TempDir d;
  SUBCASE("missing file") {
    CHECK_THROWS_WITH_AS(io::SafetensorsFile::open(d.path / "nope.safetensors"), doctest::Contains("cannot open"),
                         Error);
  }
  SUBCASE("shorter than the length prefix") {
    const fs::path p = d.path / "short.safetensors";
    std::ofstream(p) << "abc";
    expect_error(p, "header length");
  }
  SUBCASE("truncated: header length beyond the file") {
    const fs::path p = write_file(d.path, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", floats({1}));
    fs::resize_file(p, 20);
    expect_error(p, "header length");
  }
  SUBCASE("truncated: data shorter than the offsets") {
    const fs::path p =
        write_file(d.path, R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", floats({1, 2, 3, 4}));
    fs::resize_file(p, fs::file_size(p) - 4);
    expect_error(p, "a.data_offsets");
  }
  SUBCASE("malformed JSON") { expect_error(write_file(d.path, R"({"a":{"dtype":)", ""), "malformed JSON"); }
  SUBCASE("unknown dtype") {
    expect_error(write_file(d.path, R"({"a":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}})", floats({1})),
                 "a.dtype");
  }
  SUBCASE("shape × dtype ≠ byte length") {
    expect_error(write_file(d.path, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", floats({1})),
                 "a.data_offsets");
  }
  SUBCASE("negative dimension") {
    expect_error(write_file(d.path, R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", floats({1})),
                 "a.shape");
  }
  SUBCASE("overlapping tensors") {
    expect_error(
        write_file(
            d.path,
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
            floats({1, 2, 3})),
        "overlap");
  }
  SUBCASE("corrupt bytes: random garbage") {
    const fs::path p = d.path / "garbage.safetensors";
    std::ofstream f(p, std::ios::binary);
    for (int i = 0; i < 4096; ++i) f.put(static_cast<char>((i * 2654435761u) >> 13));
    f.close();
    CHECK_THROWS_AS(io::SafetensorsFile::open(p), Error);
  }
}
