#pragma once
// Reads a whole file that may be gzip-compressed (HumanEval ships as HumanEval.jsonl.gz): zlib's
// gzread passes an uncompressed file through unchanged, so one call reads either.

#include <zlib.h>

#include <filesystem>
#include <string>

#include "kvcanary/core/error.hpp"

namespace kvcanary::io {

inline std::string read_maybe_gzipped(const std::filesystem::path& path) {
  const std::string file = path.string();
  if (!std::filesystem::is_regular_file(path)) fail(file, "", "not found");
  gzFile in = gzopen(file.c_str(), "rb");
  if (!in) fail(file, "", "cannot open");
  std::string text;
  char buffer[1 << 16];
  int n = 0;
  while ((n = gzread(in, buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<std::size_t>(n));
  // A truncated stream is not a read error to gzread (it returns what it has): gzerror says
  // Z_BUF_ERROR, and gzclose does too when the last read stopped inside a gzip member.
  int code = Z_OK;
  const std::string why = gzerror(in, &code);
  const int closed = gzclose(in);
  if (n < 0 || code != Z_OK || closed != Z_OK)
    fail(file, "",
         "cannot read (corrupt or truncated gzip?): " + (code != Z_OK ? why : "gzclose " + std::to_string(closed)));
  return text;
}

}  // namespace kvcanary::io
