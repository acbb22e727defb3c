// GGUF container reader: metadata of every type, tensor infos, alignment, and the errors a
// corrupt file must produce. Fixtures: tests/data/gguf/*.gguf, written by the gguf package's
// GGUFWriter (scripts/golden/make_gguf_goldens.py synthetic).
#include <doctest/doctest.h>

#include <kvcanary/io/gguf.hpp>

#include <cmath>
#include <string>

#include "gguf_test_util.hpp"

using kvcanary::Error;
using kvcanary::io::GgmlType;
using kvcanary::io::GgufFile;
using kvcanary::io::GgufType;
namespace fs = std::filesystem;
using namespace gguf_test;

namespace {

// Writes `bytes` to a file in `dir` and expects opening it to throw an Error that names the
// file and whose field contains `field`.
void expect_gguf_error(const TempDir& dir, std::span<const std::uint8_t> bytes, const std::string& field,
                       const std::string& name = "bad.gguf") {
  const fs::path p = dir.path / name;
  write_bytes(p, bytes);
  try {
    GgufFile f(p);
    FAIL("no error for corrupt file, expected field ", field);
  } catch (const Error& e) {
    CHECK(e.file() == p.string());
    INFO("what(): ", e.what());
    CHECK(e.field().find(field) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("gguf: header, every metadata value type, arrays and tensor infos") {
  const GgufFile f(data_dir() / "types.gguf");
  CHECK(f.version() == 3);
  CHECK(f.alignment() == 32);
  CHECK(f.data_offset() % 32 == 0);
  CHECK(f.get_string("general.architecture") == "kvtest");
  CHECK(f.get_uint("test.u8") == 200);
  CHECK(f.get_int("test.i8") == -100);
  CHECK(f.get_uint("test.u16") == 60000);
  CHECK(f.get_int("test.i16") == -30000);
  CHECK(f.get_uint("test.u32") == 4000000000u);
  CHECK(f.get_int("test.i32") == -2000000000);
  CHECK(f.get_float("test.f32") == static_cast<double>(0.1f));
  CHECK(f.get_uint("test.u64") == 18000000000000000000ull);
  CHECK(f.get_int("test.i64") == -9000000000000000000ll);
  CHECK(f.get_float("test.f64") == 0.1);
  CHECK(f.get_bool("test.bool_true"));
  CHECK_FALSE(f.get_bool("test.bool_false"));
  CHECK(f.get_string("test.string") == "h\xc3\xa9llo \xc3\xa9\xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x98\x80");
  CHECK(f.get_string_array("test.strings") == std::vector<std::string>{"a", "", "\xc4\xa0the", "<|im_start|>"});
  CHECK(f.get("test.ints").elem_type == GgufType::INT32);
  CHECK(f.get_int_array("test.ints") == std::vector<std::int64_t>{1, -2, 3});
  const auto& nested = f.get("test.nested");
  REQUIRE(nested.elem_type == GgufType::ARRAY);
  REQUIRE(nested.array().size() == 2);
  CHECK(nested.array()[1].array().size() == 1);
  // Metadata keeps file order.
  CHECK(f.metadata().front().first == "general.architecture");
  CHECK(f.metadata().back().first == "test.nested");

  REQUIRE(f.tensors().size() == 9);
  const auto& q41 = f.tensor("t.Q4_1");
  CHECK(q41.type == GgmlType::Q4_1);
  CHECK(q41.dims == std::vector<std::uint64_t>{64, 4});
  CHECK(q41.shape() == std::vector<std::uint64_t>{4, 64});
  CHECK(q41.n_elements == 256);
  CHECK(q41.n_bytes == 8 * 20);
  CHECK(q41.file_offset == f.data_offset() + q41.offset);
  const auto& t3 = f.tensor("t.3d");
  CHECK(t3.shape() == std::vector<std::uint64_t>{2, 3, 32});
  CHECK(t3.file_offset + t3.n_bytes <= f.file_size());
  CHECK(f.find_tensor("nope") == nullptr);
}

TEST_CASE("gguf: typed getters report the key and the type mismatch") {
  const GgufFile f(data_dir() / "types.gguf");
  try {
    (void)f.get_string("test.u32");
    FAIL("expected error");
  } catch (const Error& e) {
    CHECK(e.field() == "test.u32");
    CHECK(std::string(e.what()).find("expected STRING, found UINT32") != std::string::npos);
  }
  CHECK_THROWS_AS((void)f.get_uint("test.i8"), Error);  // negative
  CHECK_THROWS_AS((void)f.get_uint("missing.key"), Error);
  CHECK_THROWS_AS((void)f.tensor("missing"), Error);
  CHECK(f.get_uint_or("missing.key", 7) == 7);
}

TEST_CASE("gguf: general.alignment moves the data section and tensor offsets") {
  const GgufFile f(data_dir() / "align64.gguf");
  CHECK(f.alignment() == 64);
  CHECK(f.data_offset() % 64 == 0);
  for (const auto& t : f.tensors()) CHECK(t.offset % 64 == 0);
  const auto a = f.tensor_bytes(f.tensor("a"));
  float v[5];
  std::memcpy(v, a.data(), sizeof v);
  CHECK(v[0] == 0.0f);
  CHECK(v[4] == 4.0f);
  const auto c = f.tensor_bytes(f.tensor("c"));
  std::memcpy(v, c.data(), 12);
  CHECK(v[0] == -1.5f);
  CHECK(v[2] == 0.5f);
}

TEST_CASE("gguf: version 2 files (same layout as v3) are read") {
  TempDir dir;
  auto b = read_bytes(data_dir() / "types.gguf");
  poke<std::uint32_t>(b, 4, 2);
  write_bytes(dir.path / "v2.gguf", b);
  const GgufFile f(dir.path / "v2.gguf");
  CHECK(f.version() == 2);
  CHECK(f.tensors().size() == 9);
}

TEST_CASE("gguf: every truncation of the file is an error naming the file") {
  TempDir dir;
  const auto full = read_bytes(data_dir() / "types.gguf");
  const GgufFile ok(data_dir() / "types.gguf");
  std::uint64_t end = 0;
  for (const auto& t : ok.tensors()) end = std::max(end, t.file_offset + t.n_bytes);
  int checked = 0;
  // Every prefix through the metadata and tensor infos, then a stride through the data.
  for (std::size_t n = 0; n < end; n += (n < ok.data_offset() ? 1 : 13)) {
    // A new file per case: rewriting one file in place makes ext4 flush it each time.
    const fs::path p = dir.path / ("cut-" + std::to_string(n) + ".gguf");
    write_bytes(p, std::span(full.data(), n));
    try {
      GgufFile f(p);
      FAIL("prefix of ", n, " bytes parsed without error");
    } catch (const Error& e) {
      CHECK(e.file() == p.string());
      CHECK_FALSE(e.field().empty());
    }
    fs::remove(p);
    ++checked;
  }
  CHECK(checked > 1000);
}

TEST_CASE("gguf: corrupt headers, strings, arrays and tensor infos name the field") {
  TempDir dir;
  const auto good = read_bytes(data_dir() / "types.gguf");

  SUBCASE("bad magic") {
    auto b = good;
    b[0] = 'X';
    expect_gguf_error(dir, b, "header.magic");
  }
  SUBCASE("unsupported versions") {
    auto b = good;
    poke<std::uint32_t>(b, 4, 1);
    expect_gguf_error(dir, b, "header.version");
    poke<std::uint32_t>(b, 4, 4);
    expect_gguf_error(dir, b, "header.version");
    poke<std::uint32_t>(b, 4, 0x03000000u);  // big-endian v3
    expect_gguf_error(dir, b, "header.version");
  }
  SUBCASE("absurd counts") {
    auto b = good;
    poke<std::uint64_t>(b, 8, 1ull << 60);
    expect_gguf_error(dir, b, "header.tensor_count");
    b = good;
    poke<std::uint64_t>(b, 16, 1ull << 60);
    expect_gguf_error(dir, b, "header.kv_count");
  }
  SUBCASE("absurd string length") {
    auto b = good;
    // kv[0].key length is the u64 right after the 24-byte header.
    poke<std::uint64_t>(b, 24, 1ull << 62);
    expect_gguf_error(dir, b, "kv[0].key");
    // The value string of test.string: key, then u32 type, then u64 length.
    b = good;
    const std::size_t at = find_bytes(b, "test.string") + std::string("test.string").size() + 4;
    poke<std::uint64_t>(b, at, 0xFFFFFFFFFFFFFFF0ull);
    expect_gguf_error(dir, b, "test.string");
  }
  SUBCASE("absurd array length and bad element type") {
    auto b = good;
    const std::size_t at = find_bytes(b, "test.strings") + std::string("test.strings").size() + 4;
    poke<std::uint64_t>(b, at + 4, 1ull << 40);
    expect_gguf_error(dir, b, "test.strings");
    b = good;
    poke<std::uint32_t>(b, at, 77);
    expect_gguf_error(dir, b, "test.strings");
  }
  SUBCASE("unknown value type and bad bool") {
    auto b = good;
    const std::size_t at = find_bytes(b, "test.u8") + 7;
    poke<std::uint32_t>(b, at, 13);
    expect_gguf_error(dir, b, "test.u8");
    b = good;
    const std::size_t bt = find_bytes(b, "test.bool_true") + std::string("test.bool_true").size() + 4;
    b[bt] = 2;
    expect_gguf_error(dir, b, "test.bool_true");
  }
  SUBCASE("tensor info: n_dims, type, block multiple, offset alignment and range") {
    // Tensor info of t.3d: name, u32 n_dims (3), 3 x u64 ne, u32 type, u64 offset.
    const std::size_t name_at = find_bytes(good, "t.3d");
    const std::size_t nd = name_at + 4, ne = nd + 4, ty = ne + 24, off = ty + 4;
    auto b = good;
    poke<std::uint32_t>(b, nd, 5);
    expect_gguf_error(dir, b, "tensor 't.3d'.n_dims");
    b = good;
    poke<std::uint32_t>(b, ty, 4);  // Q4_2: removed from ggml
    expect_gguf_error(dir, b, "tensor 't.3d'.type");
    b = good;
    poke<std::uint32_t>(b, ty, 1000);
    expect_gguf_error(dir, b, "tensor 't.3d'.type");
    b = good;
    poke<std::uint64_t>(b, ne, 33);  // not a multiple of the Q8_0 block
    expect_gguf_error(dir, b, "tensor 't.3d'.ne[0]");
    b = good;
    poke<std::uint64_t>(b, ne + 8, 1ull << 62);  // element count overflows
    expect_gguf_error(dir, b, "tensor 't.3d'.ne[");
    b = good;
    poke<std::uint64_t>(b, ne + 8, 1000);  // data would run past the end of the file
    expect_gguf_error(dir, b, "tensor 't.3d'.offset");
    b = good;
    poke<std::uint64_t>(b, off, 1ull << 40);  // aligned but far outside the file
    expect_gguf_error(dir, b, "tensor 't.3d'.offset");
    b = good;
    poke<std::uint64_t>(b, off, 33);
    expect_gguf_error(dir, b, "tensor 't.3d'.offset");
    b = good;
    poke<std::uint64_t>(b, off, 0);  // overlaps t.F32
    expect_gguf_error(dir, b, "tensor 't.3d'.offset");
  }
  SUBCASE("alignment that is not a power of two") {
    auto b = read_bytes(data_dir() / "align64.gguf");
    const std::size_t at = find_bytes(b, "general.alignment") + std::string("general.alignment").size() + 4;
    poke<std::uint32_t>(b, at, 48);
    expect_gguf_error(dir, b, "general.alignment");
  }
  SUBCASE("empty and missing files") {
    expect_gguf_error(dir, std::span<const std::uint8_t>(), "header.magic", "empty.gguf");
    CHECK_THROWS_AS(GgufFile(dir.path / "does-not-exist.gguf"), Error);
  }
}
