#pragma once
// `kvcanary convert-gguf --gguf FILE --out DIR [--dtype f32|bf16] [--force]`
// Converts a llama GGUF into a Hugging Face model directory (see io/gguf_to_hf.hpp).
// Bad input throws kvcanary::Error; main() reports it and exits with kBadInputExitCode.

#include <cstdio>
#include <string>

#include "kvcanary/core/error.hpp"
#include "kvcanary/io/gguf_to_hf.hpp"
#include "args.hpp"

namespace kvcanary::cli {

inline const Command& convert_gguf_command() {
  static const Command c{"convert-gguf",
                         "",
                         0,
                         0,
                         "write a HF model directory from a llama-architecture GGUF",
                         "Writes config.json, generation_config.json, model.safetensors, tokenizer.json and\n"
                         "tokenizer_config.json to DIR, atomically (a temporary directory renamed into place).",
                         {{"--gguf", "FILE", "required", "the GGUF file"},
                          {"--out", "DIR", "required", "the model directory to write"},
                          {"--dtype", "f32|bf16", "f32", "weight precision written"},
                          {"--force", "", "off", "replace an existing DIR"}}};
  return c;
}

inline int run_convert_gguf(const Args& args) {
  const std::string gguf = args.get("--gguf"), out = args.get("--out"), dtype = args.get("--dtype", "f32");
  io::ConvertOptions opt;
  if (dtype == "f32")
    opt.dtype = io::HfDtype::F32;
  else if (dtype == "bf16")
    opt.dtype = io::HfDtype::BF16;
  else
    fail("command line", "--dtype", "must be f32 or bf16, not '" + dtype + "'");
  opt.overwrite = args.has("--force");
  opt.progress = [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); };
  io::convert_gguf_to_hf(gguf, out, opt);
  return 0;
}

// argv[0] is the command's name ("convert-gguf"), the options follow.
inline int run_convert_gguf(int argc, char** argv) {
  return run_with_args(convert_gguf_command(), argc, argv, [](const Args& a) { return run_convert_gguf(a); });
}

}  // namespace kvcanary::cli
