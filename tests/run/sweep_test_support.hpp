#pragma once
// A complete model directory around the tiny random Llama (byte-level tokenizer, SmolLM2 chat
// template, room for long prompts) so sweeps run in a second; and the data each task reads.

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "../support/json_file.hpp"
#include "../support/resources.hpp"
#include "../support/temp_dir.hpp"

namespace kvcanary::test {

// `tiny`: which tiny model (tests/data/tiny/); llama3_rope has head_dim 32, a whole block of the
// llama.cpp cache types per row.
inline std::filesystem::path make_tiny_chat_model(const std::filesystem::path& root,
                                                  const std::string& tiny = "llama_gqa_untied") {
  namespace fs = std::filesystem;
  const fs::path dir = root / "tiny-chat";
  fs::create_directories(dir);
  const fs::path src = test_data("tiny/" + tiny);
  std::ifstream in(src / "config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  config["max_position_embeddings"] = 16384;  // RoPE has no table to outgrow; byte tokens make prompts long
  std::ofstream(dir / "config.json") << config.dump(2);
  fs::copy_file(src / "model.safetensors", dir / "model.safetensors");
  fs::copy_file(test_data("tiny/byte_tokenizer.json"), dir / "tokenizer.json");
  fs::copy_file(test_data("chat/smollm2.tokenizer_config.json"), dir / "tokenizer_config.json");
  return dir;
}

inline bool sweep_data_available() {
  return available(project_data("HumanEval.jsonl.gz")) && available(project_data("bfcl")) &&
         available(project_data("wikitext-2-raw-test.txt"));
}

// A small matrix over every task type and three policy families.
inline std::string tiny_sweep_toml(const std::filesystem::path& model, const std::string& extra = "") {
  return "[sweep]\nbatch = 5\n\n[model]\ndir = \"" + model.string() +
         "\"\nlabel = \"tiny\"\nthreads = 2\n\n[data]\ndir = \"" + project_data().string() + "\"\n\n" +
         "[[compressors]]\nname = \"full\"\n\n"
         "[[compressors]]\nname = \"streamingllm\"\nbudgets = [0.5, 0.25]\nmode = \"decode\"\n\n"
         "[[compressors]]\nname = \"kivi\"\nbudgets = [0.125]\nparams = { residual = 32 }\n\n"
         "[[tasks]]\ntype = \"humaneval\"\nlimit = 3\nmax_new_tokens = 12\n\n"
         "[[tasks]]\ntype = \"bfcl\"\ncategory = \"parallel\"\nlimit = 3\nmax_new_tokens = 10\n\n"
         "[[tasks]]\ntype = \"seed_tool_calls\"\nfile = \"" +
         (std::filesystem::path(KVCANARY_SOURCE_DIR) / "configs/data/seed_tool_calls.jsonl").string() +
         "\"\nlimit = 4\nmax_new_tokens = 8\ndistractor_tokens = 40\n\n"
         "[[tasks]]\ntype = \"perplexity\"\nspans = 3\ncontext = 60\ncontinuation = 12\n" +
         extra;
}

// A matrix that needs nothing from data/: the committed seed tool-call set (no distractors)
// under four policies. Small batches make many engine steps, so a signal lands between them.
inline std::string seed_sweep_toml(const std::filesystem::path& model, int limit = 12, int max_new_tokens = 16,
                                   int batch = 3) {
  return "[sweep]\nbatch = " + std::to_string(batch) + "\n\n[model]\ndir = \"" + model.string() +
         "\"\nlabel = \"tiny\"\nthreads = 1\n\n"
         "[[compressors]]\nname = \"full\"\n\n"
         "[[compressors]]\nname = \"streamingllm\"\nbudgets = [0.5, 0.25]\nmode = \"decode\"\n\n"
         "[[compressors]]\nname = \"kivi\"\nbudgets = [0.125]\nparams = { residual = 32 }\n\n"
         "[[tasks]]\ntype = \"seed_tool_calls\"\nfile = \"" +
         (std::filesystem::path(KVCANARY_SOURCE_DIR) / "configs/data/seed_tool_calls.jsonl").string() +
         "\"\nlimit = " + std::to_string(limit) + "\nmax_new_tokens = " + std::to_string(max_new_tokens) + "\n";
}

}  // namespace kvcanary::test
