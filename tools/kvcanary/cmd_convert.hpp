#pragma once
// `kvcanary convert-gguf --gguf FILE --out DIR [--dtype f32|bf16] [--force]`
// Converts a llama GGUF into a Hugging Face model directory (see io/gguf_to_hf.hpp).
// Bad input throws kvcanary::Error; main() reports it and exits with kBadInputExitCode.

#include <cstdio>
#include <string>

#include "kvcanary/core/error.hpp"
#include "kvcanary/io/gguf_to_hf.hpp"

namespace kvcanary::cli {

inline constexpr const char* kConvertGgufUsage =
    "usage: kvcanary convert-gguf --gguf FILE --out DIR [--dtype f32|bf16] [--force]\n"
    "  Writes config.json, generation_config.json, model.safetensors, tokenizer.json and\n"
    "  tokenizer_config.json to DIR (atomically). --force replaces an existing DIR.\n";

// argv[0] is the command name ("convert-gguf"); options follow.
inline int run_convert_gguf(int argc, char** argv) {
  std::string gguf, out, dtype = "f32";
  bool force = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* opt) -> std::string {
      if (i + 1 >= argc) fail("<command line>", opt, "missing value");
      return argv[++i];
    };
    if (a == "--gguf") gguf = value("--gguf");
    else if (a == "--out") out = value("--out");
    else if (a == "--dtype") dtype = value("--dtype");
    else if (a == "--force") force = true;
    else if (a == "-h" || a == "--help") {
      std::fputs(kConvertGgufUsage, stdout);
      return 0;
    } else {
      fail("<command line>", a, std::string("unknown option\n") + kConvertGgufUsage);
    }
  }
  if (gguf.empty()) fail("<command line>", "--gguf", std::string("required\n") + kConvertGgufUsage);
  if (out.empty()) fail("<command line>", "--out", std::string("required\n") + kConvertGgufUsage);
  io::ConvertOptions opt;
  if (dtype == "f32") opt.dtype = io::HfDtype::F32;
  else if (dtype == "bf16") opt.dtype = io::HfDtype::BF16;
  else fail("<command line>", "--dtype", "must be f32 or bf16, not '" + dtype + "'");
  opt.overwrite = force;
  opt.progress = [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); };
  io::convert_gguf_to_hf(gguf, out, opt);
  return 0;
}

}  // namespace kvcanary::cli
