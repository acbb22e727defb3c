#pragma once
// Everything a program needs from a HF model directory, loaded together: config, weights
// bound to a forward pass, tokenizer, chat template and stop tokens.

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/io/chat_template.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/io/tokenizer.hpp"
#include "kvcanary/kv/kvzip.hpp"
#include "kvcanary/model/llama.hpp"

namespace kvcanary::model {

// KVzip's reconstruction prompt in the chat format of the model in `dir` (kv/kvzip.hpp): its
// instruction, then what the chat template puts between a user turn's text and the assistant's
// answer — found as KVPress finds it, by rendering a user turn and taking what follows its text;
// "\n" for a model without a chat template. The two parts are encoded separately, as KVPress
// encodes them.
inline std::vector<std::int32_t> repeat_instruction(const io::Tokenizer& tokenizer, const std::filesystem::path& dir) {
  std::string turn_switch = "\n";
  const auto cfg = dir / "tokenizer_config.json";
  std::ifstream in(cfg, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.find("\"chat_template\"") != std::string::npos) {
    static constexpr std::string_view marker = "\x01kvzip-marker\x01";
    const io::ChatMessage user{"user", std::string(marker)};
    const std::string rendered = io::ChatTemplate::from_tokenizer_config(cfg).render(
        std::span<const io::ChatMessage>(&user, 1), /*add_generation_prompt=*/true);
    turn_switch = rendered.substr(rendered.find(marker) + marker.size());
  }
  std::vector<std::int32_t> ids = tokenizer.encode(std::string(kv::KvZip::instruction));
  const std::vector<std::int32_t> tail = tokenizer.encode(turn_switch);
  ids.insert(ids.end(), tail.begin(), tail.end());
  return ids;
}

template <class WT>
struct ModelDir {
  using weight_type = WT;
  std::filesystem::path dir;
  ModelConfig config;
  std::unique_ptr<Transformer<WT>> transformer;
  io::Tokenizer tokenizer;

  // Loaded on first use: a base model has no chat template, and only --chat needs one.
  const io::ChatTemplate& chat_template() {
    if (!chat_template_) chat_template_ = io::ChatTemplate::from_tokenizer_config(dir / "tokenizer_config.json");
    return *chat_template_;
  }

  static ModelDir load(const std::filesystem::path& dir, std::size_t threads = ops::ThreadPool::default_threads()) {
    if (!std::filesystem::is_directory(dir))
      fail(dir.string(), "", "model directory not found (run the setup step, or pass --model DIR)");
    auto config = io::load_hf_config(dir);
    auto transformer = std::make_unique<Transformer<WT>>(config, dir, threads);
    ModelDir m(dir, std::move(config), std::move(transformer), io::Tokenizer::from_file(dir / "tokenizer.json"));
    m.config.repeat_instruction = repeat_instruction(m.tokenizer, dir);
    return m;
  }

 private:
  ModelDir(std::filesystem::path d, ModelConfig c, std::unique_ptr<Transformer<WT>> t, io::Tokenizer tok)
      : dir(std::move(d)), config(std::move(c)), transformer(std::move(t)), tokenizer(std::move(tok)) {}
  std::optional<io::ChatTemplate> chat_template_;
};

}  // namespace kvcanary::model
