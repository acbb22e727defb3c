// io/gzip_file.hpp: gzip and plain files read alike; bad ones fail naming the file.

#include <doctest/doctest.h>
#include <zlib.h>

#include <fstream>
#include <string>

#include "../support/temp_dir.hpp"
#include "kvcanary/io/gzip_file.hpp"

using namespace kvcanary;

namespace {
std::string sample_text() {
  std::string s;
  for (int i = 0; i < 20000; ++i) s += "{\"task_id\": \"HumanEval/" + std::to_string(i) + "\"}\n";  // > one 64 KiB read
  return s;
}
void write_gz(const std::filesystem::path& p, const std::string& text) {
  gzFile out = gzopen(p.string().c_str(), "wb");
  REQUIRE(out);
  REQUIRE(gzwrite(out, text.data(), static_cast<unsigned>(text.size())) == static_cast<int>(text.size()));
  REQUIRE(gzclose(out) == Z_OK);
}
std::string error_of(const std::filesystem::path& p) {
  try {
    io::read_maybe_gzipped(p);
  } catch (const std::exception& e) { return e.what(); }
  return "";
}
}  // namespace

TEST_CASE("gzip_file: a gzip file and a plain file give the same text") {
  test::TempDir dir;
  const std::string text = sample_text();
  write_gz(dir.path / "a.jsonl.gz", text);
  std::ofstream(dir.path / "a.jsonl", std::ios::binary) << text;
  CHECK(io::read_maybe_gzipped(dir.path / "a.jsonl.gz") == text);
  CHECK(io::read_maybe_gzipped(dir.path / "a.jsonl") == text);
  std::ofstream(dir.path / "empty", std::ios::binary);
  CHECK(io::read_maybe_gzipped(dir.path / "empty").empty());
}

TEST_CASE("gzip_file: missing, truncated and corrupt files fail naming the file") {
  test::TempDir dir;
  CHECK(error_of(dir.path / "none.gz").find("none.gz") != std::string::npos);
  write_gz(dir.path / "whole.gz", sample_text());
  std::ifstream in(dir.path / "whole.gz", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(dir.path / "cut.gz", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  const std::string cut = error_of(dir.path / "cut.gz");
  CHECK(cut.find("cut.gz") != std::string::npos);
  CHECK(cut.find("cannot read") != std::string::npos);
  std::string flipped = bytes;
  for (std::size_t i = 100; i < 200; ++i) flipped[i] = static_cast<char>(~flipped[i]);
  std::ofstream(dir.path / "bad.gz", std::ios::binary) << flipped;
  CHECK(error_of(dir.path / "bad.gz").find("bad.gz") != std::string::npos);
}
