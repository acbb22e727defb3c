#pragma once
// Everything a program needs from a HF model directory, loaded together: config, weights
// bound to a forward pass, tokenizer, chat template and stop tokens.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "kvcanary/io/chat_template.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/io/tokenizer.hpp"
#include "kvcanary/model/llama.hpp"

namespace kvcanary::model {

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
    return ModelDir(dir, std::move(config), std::move(transformer), io::Tokenizer::from_file(dir / "tokenizer.json"));
  }

 private:
  ModelDir(std::filesystem::path d, ModelConfig c, std::unique_ptr<Transformer<WT>> t, io::Tokenizer tok)
      : dir(std::move(d)), config(std::move(c)), transformer(std::move(t)), tokenizer(std::move(tok)) {}
  std::optional<io::ChatTemplate> chat_template_;
};

}  // namespace kvcanary::model
