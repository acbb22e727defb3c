#pragma once
// `kvcanary tokenize [--model DIR] --text TEXT | --text-file FILE`
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
#include "kvcanary/io/tokenizer.hpp"
#include "kvcanary/io/utf8.hpp"
#include "options.hpp"

namespace kvcanary::cli {

inline const Command& tokenize_command() {
  static const Command c{
      "tokenize",
      "",
      0,
      0,
      "token ids of a text, space-separated",
      "Prints the token ids of the text (UTF-8, used as is: no special tokens added) on one line, as HF\n"
      "Tokenizer.encode(text, add_special_tokens=False) on the model's tokenizer.json.",
      options_of({text_options("the text to tokenize"), {model_options()[0]}})};
  return c;
}

inline int run_tokenize(const Args& args) {
  const std::filesystem::path model_dir = model_dir_arg(args);
  const io::Tokenizer tok = io::Tokenizer::from_file(model_dir / "tokenizer.json");
  const TextInput input = read_text_input(args);  // checked to be UTF-8, errors name the file and byte
  const std::vector<std::int32_t> ids = tok.encode(input.text);
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
