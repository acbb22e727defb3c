#pragma once
// The shape of a decoder-only transformer of the Llama family (Llama, Qwen2, Mistral).
// Everything the forward pass branches on lives here, so one struct describes a model.

#include <cstdint>
#include <string>
#include <vector>

namespace kvcanary {

enum class Architecture { Llama, Qwen2, Mistral };

inline const char* architecture_name(Architecture a) {
  switch (a) {
    case Architecture::Llama: return "LlamaForCausalLM";
    case Architecture::Qwen2: return "Qwen2ForCausalLM";
    case Architecture::Mistral: return "MistralForCausalLM";
  }
  return "?";
}

// HF rope_scaling variants that change the rotary frequencies (transformers'
// modeling_rope_utils): linear (Chen et al. 2023, position interpolation) and llama3
// (Llama 3.1's wavelength-banded interpolation).
struct RopeScaling {
  enum class Kind { None, Linear, Llama3 } kind = Kind::None;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  std::int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  Architecture architecture = Architecture::Llama;
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_layers = 0;
  std::int64_t num_heads = 0;
  std::int64_t num_kv_heads = 0;
  std::int64_t head_dim = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  std::int64_t max_position_embeddings = 2048;
  bool tie_word_embeddings = false;
  bool attention_bias = false;      // q/k/v projections carry a bias (Qwen2)
  std::int64_t sliding_window = 0;  // 0: full causal attention
  std::vector<std::int32_t> eos_token_ids;
  std::int32_t bos_token_id = -1;
  // The model's own request to repeat what it was given, chat-formatted: KVzip's reconstruction
  // prompt (kv/kvzip.hpp). Filled by model::ModelDir from the tokenizer and chat template; empty
  // for a bare config.json (then the reconstruction pass repeats the context without it).
  std::vector<std::int32_t> repeat_instruction;
  std::string source;  // the config.json this came from, for error messages

  std::int64_t q_dim() const { return num_heads * head_dim; }
  std::int64_t kv_dim() const { return num_kv_heads * head_dim; }
  std::int64_t group_size() const { return num_heads / num_kv_heads; }
};

}  // namespace kvcanary
