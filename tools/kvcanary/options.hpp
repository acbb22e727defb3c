#pragma once
// Options shared by several subcommands, declared once so they are spelled, defaulted and
// explained the same everywhere: the model (--model, --dtype, --threads), the compressor
// (--compressor, --budget, --mode, --param) and the input text (--text, --text-file).

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "args.hpp"
#include "kvcanary/core/error.hpp"
#include "kvcanary/io/utf8.hpp"
#include "kvcanary/model/model_name.hpp"

#ifndef KVCANARY_DEFAULT_MODEL_DIR  // set by tools/CMakeLists.txt; a fallback for other includers (tests)
#define KVCANARY_DEFAULT_MODEL_DIR "models/smollm2-135m-instruct"
#endif

namespace kvcanary::cli {

// <project root>/models: where a model name (model/model_name.hpp) resolves.
inline std::filesystem::path models_root() { return std::filesystem::path(KVCANARY_DEFAULT_MODEL_DIR).parent_path(); }

// A --model / $KVCANARY_MODEL value: a directory, or a model name such as
// qwen2.5-coder-0.5b-instruct (-> <project root>/models/qwen2.5-coder-0.5b-instruct).
inline std::string resolve_model_arg(const std::string& spec) {
  return model::resolve_model_dir(spec, models_root()).string();
}

inline std::string default_model_dir() {
  if (const char* env = std::getenv("KVCANARY_MODEL")) return resolve_model_arg(env);
  return KVCANARY_DEFAULT_MODEL_DIR;
}

// The model directory a command runs: --model (a path or a model name), else the default.
inline std::string model_dir_arg(const Args& args) {
  return resolve_model_arg(args.get("--model", default_model_dir()));
}

inline std::vector<Option> model_options() {
  return {
      {"--model", "DIR|NAME", "$KVCANARY_MODEL, else " + std::string(KVCANARY_DEFAULT_MODEL_DIR),
       "HF model directory, or a model name (smollm2-135m-instruct, qwen2.5-coder-0.5b-instruct, "
       "qwen2.5-coder-1.5b-instruct) = <project root>/models/NAME, as scripts/fetch_model.sh NAME writes it"},
      {"--dtype", "f32|bf16|f16|stored", "f32", "weight precision of the forward pass (stored: the GGUF's blocks)"},
      {"--threads", "N", "all cores", "worker threads"},
  };
}

inline std::vector<Option> compression_options() {
  return {
      {"--compressor", "NAME", "full", "KV-cache policy (kvcanary compressors lists them)"},
      {"--budget", "F", "1", "fraction of the KV cache to keep, in (0, 1]"},
      {"--mode", "prompt|decode", "the policy's",
       "compress once after the prompt, or after every step (kvcanary compressors)"},
      {"--capacity", "fixed|seen", "fixed", "eviction rows per head: budget x prompt length, or budget x tokens seen"},
      {"--param", "NAME=VALUE", "the policy's defaults", "a policy parameter", true},
  };
}

// What the command reads as its input text: exactly one of the two is required.
inline std::vector<Option> text_options(const std::string& what = "the input text") {
  return {
      {"--text", "TEXT", "", what + ", given inline (this or --text-file is required)"},
      {"--text-file", "FILE", "", what + ", read from FILE (this or --text is required)"},
  };
}

// Builds an option list from groups.
inline std::vector<Option> options_of(std::initializer_list<std::vector<Option>> groups) {
  std::vector<Option> out;
  for (const auto& g : groups) out.insert(out.end(), g.begin(), g.end());
  return out;
}

struct TextInput {
  std::string text;
  std::string source;  // the file it came from, or "command line"
  std::string field;   // "--text" or "--text-file", for errors
};

// The text of --text or --text-file (one of them, not both). Text for the tokenizer is checked
// to be UTF-8 here, so that the error names the file and the byte, which encode() could not.
inline TextInput read_text_input(const Args& args, bool utf8_only = true) {
  const std::string text_flag = "--text";
  const bool inline_text = args.has(text_flag), file = args.has("--text-file");
  if (inline_text == file)
    fail("command line", text_flag + "/--text-file",
         inline_text ? "give one of them, not both" : "one of them is required");
  TextInput in;
  if (inline_text) {
    in = {args.get(text_flag), "command line", text_flag};
  } else {
    const std::string path = args.get("--text-file");
    std::ifstream f(path, std::ios::binary);
    if (!f) fail(path, "--text-file", "cannot open");
    std::stringstream ss;
    ss << f.rdbuf();
    in = {ss.str(), path, "--text-file"};
  }
  if (const std::size_t bad = utf8_only ? io::utf8::first_invalid(in.text) : io::utf8::npos; bad != io::utf8::npos)
    fail(in.source, in.field == "--text-file" ? "byte " + std::to_string(bad) : in.field,
         "invalid UTF-8 (the tokenizer takes UTF-8 text)");
  return in;
}

}  // namespace kvcanary::cli
