#pragma once
// `kvcanary tokenize --model DIR --text-file FILE`
// Prints the ids of FILE's bytes (as HF `Tokenizer.encode(text, add_special_tokens=False)` on
// DIR/tokenizer.json), space-separated on one line. Bad input (missing or malformed files,
// text that is not UTF-8) throws kvcanary::Error; main() reports it and exits with
// kBadInputExitCode.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/mapped_file.hpp"
#include "kvcanary/io/tokenizer.hpp"
#include "kvcanary/io/utf8.hpp"

namespace kvcanary::cli {

inline constexpr const char* kTokenizeUsage =
    "usage: kvcanary tokenize --model DIR --text-file FILE\n"
    "  Prints the token ids of FILE (UTF-8, used as is: no special tokens added) on one line.\n";

inline int run_tokenize(const std::filesystem::path& model_dir, const std::filesystem::path& text_file) {
  const io::Tokenizer tok = io::Tokenizer::from_file(model_dir / "tokenizer.json");
  const MappedFile text(text_file);
  const std::string_view bytes(reinterpret_cast<const char*>(text.data()), text.size());
  // Checked here too so the error names the file, which encode() does not know.
  if (const std::size_t bad = io::utf8::first_invalid(bytes); bad != io::utf8::npos)
    fail(text_file.string(), "byte " + std::to_string(bad), "invalid UTF-8 (the tokenizer takes UTF-8 text)");
  const std::vector<std::int32_t> ids = tok.encode(bytes);
  std::string line;
  line.reserve(ids.size() * 6 + 1);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(ids[i]);
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
  return 0;
}

}  // namespace kvcanary::cli
