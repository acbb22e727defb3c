#pragma once
// One function per parser of untrusted input, shared by the libFuzzer targets (fuzz_*.cpp) and
// the doctest that replays committed reproducers (tests/fuzz/test_fuzz_regressions.cpp). A
// parser may throw kvcanary::Error on any input (its contract for bad input); any other
// exception, a crash or a sanitizer report is a bug.
//
// Parsers that only take a path get the bytes through a file in /dev/shm (tmpfs: no disk I/O),
// one per process so parallel fuzzing jobs do not share it.

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "kvcanary/core/error.hpp"
#include "kvcanary/io/safetensors.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/io/tokenizer.hpp"
#include "kvcanary/io/gguf.hpp"
#include "kvcanary/task/tool_call_parse.hpp"
#include "kvcanary/run/results_file.hpp"
#include "kvcanary/run/config.hpp"

namespace kvcanary::fuzz {

struct ScratchDir {  // removed with its files when the fuzzer exits
  std::filesystem::path path;
  ScratchDir() {
    const std::filesystem::path base =
        std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    path = base / ("kvcanary-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

inline const std::filesystem::path& scratch_dir() {
  static const ScratchDir dir;
  return dir.path;
}

inline std::filesystem::path write_scratch(const std::string& name, const std::uint8_t* data, std::size_t size) {
  const auto path = scratch_dir() / name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

template <class F>
void expect_error_or_success(F&& f) {
  try {
    f();
  } catch (const kvcanary::Error&) {}
}

// The safetensors header (8-byte length + JSON) and the offsets it declares.
inline void safetensors_header(const std::uint8_t* data, std::size_t size) {
  const auto path = kvcanary::fuzz::write_scratch("model.safetensors", data, size);
  kvcanary::fuzz::expect_error_or_success([&] {
    const auto f = kvcanary::io::SafetensorsFile::open(path);
    std::size_t sum = 0;  // touch every view: offsets must lie inside the mapping
    for (const auto& t : f->tensors())
      if (t.nbytes) sum += t.data[0] + t.data[t.nbytes - 1];
    (void)sum;
  });
}

// config.json of a model directory.
inline void hf_config(const std::uint8_t* data, std::size_t size) {
  const auto path = kvcanary::fuzz::write_scratch("config.json", data, size);
  kvcanary::fuzz::expect_error_or_success([&] { (void)kvcanary::io::load_hf_config(path.parent_path()); });
}

// tokenizer.json, then a short encode/decode round with whatever tokenizer it describes.
inline void tokenizer_json(const std::uint8_t* data, std::size_t size) {
  const auto path = kvcanary::fuzz::write_scratch("tokenizer.json", data, size);
  kvcanary::fuzz::expect_error_or_success([&] {
    const auto tok = kvcanary::io::Tokenizer::from_file(path);
    const auto ids = tok.encode("Hello, world! 123 <|im_start|>def f(x):\n\treturn x ** 2  # é", true);
    (void)tok.decode(ids, false);
    (void)tok.decode(ids, true);
    const std::int32_t odd[] = {-1, 0, 1, 255, 1 << 30};
    (void)tok.decode(odd, false);
  });
}

// A GGUF file: header, metadata (nested arrays), tensor infos and their data ranges.
inline void gguf(const std::uint8_t* data, std::size_t size) {
  const auto path = kvcanary::fuzz::write_scratch("model.gguf", data, size);
  kvcanary::fuzz::expect_error_or_success([&] {
    const kvcanary::io::GgufFile f(path);
    std::size_t sum = 0;
    for (const auto& t : f.tensors()) {
      const auto bytes = f.tensor_bytes(t);
      if (!bytes.empty()) sum += bytes.front() + bytes.back();
    }
    (void)sum;
  });
}

// Model output -> tool calls (JSON, Hermes tags, fences, Python call syntax). Never throws.
inline void tool_call_parse(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)kvcanary::task::parse_tool_calls(text);
}

// A results file read back for resuming: every line through row_from_json_line (via
inline void result_row(const std::uint8_t* data, std::size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  kvcanary::fuzz::expect_error_or_success([&] {
    const auto row = kvcanary::run::row_from_json_line(line, "fuzz:1");
    const std::string again = kvcanary::run::to_json_line(row);
    if (again.find('\n') != std::string::npos) std::abort();   // a row must stay one line
    (void)kvcanary::run::row_from_json_line(again, "fuzz:2");  // what we write, we read
  });
  const auto path = kvcanary::fuzz::write_scratch("results.jsonl", data, size);
  kvcanary::fuzz::expect_error_or_success([&] {
    const auto c = kvcanary::run::read_results(path);
    if (c.valid_bytes > size) std::abort();
  });
}

// A sweep config (TOML): syntax, every section's keys and types, budgets, modes; and the same
// bytes as a `--shard i/N` argument.
inline void sweep_config(const std::uint8_t* data, std::size_t size) {
  const auto path = kvcanary::fuzz::write_scratch("sweep.toml", data, size);
  kvcanary::fuzz::expect_error_or_success([&] { (void)kvcanary::run::load_sweep_config(path, "/nonexistent/model"); });
  kvcanary::fuzz::expect_error_or_success([&] {
    (void)kvcanary::run::parse_shard(std::string(reinterpret_cast<const char*>(data), std::min<std::size_t>(size, 64)));
  });
}

// The function of a target, by the target's name (fuzz_<name>); nullptr when unknown.
using TargetFn = void (*)(const std::uint8_t*, std::size_t);
inline TargetFn target_by_name(std::string_view name) {
  if (name == "fuzz_safetensors_header") return safetensors_header;
  if (name == "fuzz_hf_config") return hf_config;
  if (name == "fuzz_tokenizer_json") return tokenizer_json;
  if (name == "fuzz_gguf") return gguf;
  if (name == "fuzz_tool_call_parse") return tool_call_parse;
  if (name == "fuzz_result_row") return result_row;
  if (name == "fuzz_sweep_config") return sweep_config;
  return nullptr;
}

}  // namespace kvcanary::fuzz
