// model/model_dir.hpp: what a model directory adds to its config.json — here KVzip's
// reconstruction prompt in the model's own chat format (kv/kvzip.hpp).

#include <doctest/doctest.h>

#include <filesystem>

#include "../support/resources.hpp"
#include "kvcanary/model/model_dir.hpp"

using namespace kvcanary;
namespace fs = std::filesystem;

TEST_CASE("model dir: the repeat instruction is KVPress's text, then the chat template's switch to the assistant") {
  const fs::path dir = fs::path(KVCANARY_SOURCE_DIR) / "models" / "qwen2.5-coder-0.5b-instruct";
  if (!test::available(dir / "tokenizer.json")) return;  // scripts/test.sh fetches the 0.5B model
  const io::Tokenizer tok = io::Tokenizer::from_file(dir / "tokenizer.json");
  const auto ids = model::repeat_instruction(tok, dir);
  CHECK(tok.decode(ids) == "\n\nRepeat the previous context exactly.<|im_end|>\n<|im_start|>assistant\n");
  // Encoded in two parts, as KVPress does: the instruction's ids, then the switch's.
  auto want = tok.encode("\n\nRepeat the previous context exactly.");
  const auto tail = tok.encode("<|im_end|>\n<|im_start|>assistant\n");
  want.insert(want.end(), tail.begin(), tail.end());
  CHECK(ids == want);
  CHECK(ids[ids.size() - 5] == tok.token_to_id("<|im_end|>"));
}

TEST_CASE("model dir: without a chat template the instruction ends in a newline") {
  const fs::path dir = fs::path(KVCANARY_SOURCE_DIR) / "models" / "qwen2.5-coder-0.5b-instruct";
  if (!test::available(dir / "tokenizer.json")) return;
  const io::Tokenizer tok = io::Tokenizer::from_file(dir / "tokenizer.json");
  const fs::path bare = fs::temp_directory_path() / "kvcanary-model-dir-bare";  // no tokenizer_config.json
  fs::create_directories(bare);
  CHECK(tok.decode(model::repeat_instruction(tok, bare)) == "\n\nRepeat the previous context exactly.\n");
  fs::remove_all(bare);
}
