#pragma once
// config.json (+ generation_config.json) of a HF model directory -> model::Config.
// Only architectures whose forward pass kvcanary implements are accepted; anything else is
// refused by name rather than run wrongly.

#include <simdjson.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "kvcanary/core/error.hpp"
#include "kvcanary/model/config.hpp"

namespace kvcanary::io {

namespace detail {

inline simdjson::dom::element load_json(const std::filesystem::path& path, simdjson::dom::parser& parser,
                                        simdjson::padded_string& storage) {
  const std::string p = path.string();
  if (!std::filesystem::exists(path)) fail(p, "", "file not found");
  if (simdjson::padded_string::load(p).get(storage)) fail(p, "", "cannot read");
  simdjson::dom::element root;
  if (auto err = parser.parse(storage).get(root)) fail(p, "", std::string("malformed JSON: ") + simdjson::error_message(err));
  if (!root.is_object()) fail(p, "", "top level is not a JSON object");
  return root;
}

inline std::int64_t get_int(const std::string& p, simdjson::dom::element obj, const char* key, std::int64_t fallback,
                            bool required) {
  auto field = obj[key];
  if (field.error() == simdjson::NO_SUCH_FIELD || (field.error() == simdjson::SUCCESS && field.value().is_null())) {
    if (required) fail(p, key, "required field missing");
    return fallback;
  }
  std::int64_t v;
  if (field.get(v)) fail(p, key, "must be an integer");
  return v;
}

inline double get_double(const std::string& p, simdjson::dom::element obj, const char* key, double fallback) {
  auto field = obj[key];
  if (field.error() == simdjson::NO_SUCH_FIELD || (field.error() == simdjson::SUCCESS && field.value().is_null())) return fallback;
  double v;
  if (field.get(v)) {
    std::int64_t i;
    if (field.get(i)) fail(p, key, "must be a number");
    v = static_cast<double>(i);
  }
  return v;
}

inline bool get_bool(const std::string& p, simdjson::dom::element obj, const char* key, bool fallback) {
  auto field = obj[key];
  if (field.error() == simdjson::NO_SUCH_FIELD || (field.error() == simdjson::SUCCESS && field.value().is_null())) return fallback;
  bool v;
  if (field.get(v)) fail(p, key, "must be true or false");
  return v;
}

// eos_token_id may be an int or a list of ints (Llama 3 lists several).
inline void read_token_ids(const std::string& p, simdjson::dom::element obj, const char* key, std::vector<std::int32_t>& out) {
  auto field = obj[key];
  if (field.error()) return;
  if (field.value().is_null()) return;
  std::int64_t single;
  if (!field.get(single)) {
    out = {static_cast<std::int32_t>(single)};
    return;
  }
  simdjson::dom::array arr;
  if (field.get(arr)) fail(p, key, "must be an integer or a list of integers");
  out.clear();
  for (auto e : arr) {
    std::int64_t id;
    if (e.get(id)) fail(p, key, "must be an integer or a list of integers");
    out.push_back(static_cast<std::int32_t>(id));
  }
}

}  // namespace detail

inline model::Config load_hf_config(const std::filesystem::path& model_dir) {
  using model::Architecture;
  const auto path = model_dir / "config.json";
  const std::string p = path.string();
  simdjson::dom::parser parser;
  simdjson::padded_string storage;
  auto root = detail::load_json(path, parser, storage);

  model::Config c;
  c.source = p;
  simdjson::dom::array archs;
  if (root["architectures"].get(archs) || archs.size() == 0) fail(p, "architectures", "missing or empty");
  std::string_view arch;
  if (archs.at(0).get(arch)) fail(p, "architectures", "must be a list of strings");
  if (arch == "LlamaForCausalLM") c.architecture = Architecture::Llama;
  else if (arch == "Qwen2ForCausalLM") c.architecture = Architecture::Qwen2;
  else if (arch == "MistralForCausalLM") c.architecture = Architecture::Mistral;
  else fail(p, "architectures", "unsupported architecture '" + std::string(arch) + "' (supported: LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM)");

  using detail::get_int;
  c.vocab_size = get_int(p, root, "vocab_size", 0, true);
  c.hidden_size = get_int(p, root, "hidden_size", 0, true);
  c.intermediate_size = get_int(p, root, "intermediate_size", 0, true);
  c.num_layers = get_int(p, root, "num_hidden_layers", 0, true);
  c.num_heads = get_int(p, root, "num_attention_heads", 0, true);
  c.num_kv_heads = get_int(p, root, "num_key_value_heads", c.num_heads, false);
  if (c.num_heads <= 0) fail(p, "num_attention_heads", "must be positive");
  c.head_dim = get_int(p, root, "head_dim", c.hidden_size / c.num_heads, false);
  c.max_position_embeddings = get_int(p, root, "max_position_embeddings", 2048, false);
  c.rms_norm_eps = detail::get_double(p, root, "rms_norm_eps", 1e-6);
  c.tie_word_embeddings = detail::get_bool(p, root, "tie_word_embeddings", false);
  // Qwen2Attention always has q/k/v biases; Llama has them only when attention_bias is set.
  c.attention_bias = c.architecture == Architecture::Qwen2 || detail::get_bool(p, root, "attention_bias", false);

  for (auto [name, v] : {std::pair<const char*, std::int64_t>{"vocab_size", c.vocab_size}, {"hidden_size", c.hidden_size},
                         {"intermediate_size", c.intermediate_size}, {"num_hidden_layers", c.num_layers},
                         {"num_key_value_heads", c.num_kv_heads}, {"head_dim", c.head_dim},
                         {"max_position_embeddings", c.max_position_embeddings}}) {
    if (v <= 0) fail(p, name, "must be positive");
  }
  if (c.num_heads % c.num_kv_heads != 0) fail(p, "num_key_value_heads", "must divide num_attention_heads (grouped-query attention)");
  if (c.head_dim % 2 != 0) fail(p, "head_dim", "must be even for rotary embeddings");
  if (!(c.rms_norm_eps > 0)) fail(p, "rms_norm_eps", "must be positive");

  // rope_theta sits at top level in transformers < 5 and inside rope_parameters in 5.x.
  c.rope_theta = detail::get_double(p, root, "rope_theta", 10000.0);
  simdjson::dom::element scaling;
  bool have_scaling = !root["rope_scaling"].get(scaling) && !scaling.is_null();
  simdjson::dom::element params;
  if (!root["rope_parameters"].get(params) && params.is_object()) {
    c.rope_theta = detail::get_double(p, params, "rope_theta", c.rope_theta);
    if (!have_scaling) {
      scaling = params;
      have_scaling = true;
    }
  }
  if (have_scaling) {
    if (!scaling.is_object()) fail(p, "rope_scaling", "must be an object or null");
    std::string_view kind;
    if (scaling["rope_type"].get(kind) && scaling["type"].get(kind)) fail(p, "rope_scaling.rope_type", "missing");
    const std::string field = "rope_scaling";
    if (kind == "default") {
      c.rope_scaling.kind = model::RopeScaling::Kind::None;
    } else if (kind == "linear") {
      c.rope_scaling.kind = model::RopeScaling::Kind::Linear;
      c.rope_scaling.factor = detail::get_double(p, scaling, "factor", 0.0);
    } else if (kind == "llama3") {
      c.rope_scaling.kind = model::RopeScaling::Kind::Llama3;
      c.rope_scaling.factor = detail::get_double(p, scaling, "factor", 0.0);
      c.rope_scaling.low_freq_factor = detail::get_double(p, scaling, "low_freq_factor", 1.0);
      c.rope_scaling.high_freq_factor = detail::get_double(p, scaling, "high_freq_factor", 4.0);
      c.rope_scaling.original_max_position_embeddings =
          get_int(p, scaling, "original_max_position_embeddings", 0, true);
      if (!(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor)) {
        fail(p, "rope_scaling.high_freq_factor", "must exceed low_freq_factor");
      }
    } else {
      fail(p, "rope_scaling.rope_type", "unsupported rope scaling '" + std::string(kind) + "' (supported: default, linear, llama3)");
    }
    if (c.rope_scaling.kind != model::RopeScaling::Kind::None && !(c.rope_scaling.factor > 0)) {
      fail(p, "rope_scaling.factor", "must be positive");
    }
  }
  if (!(c.rope_theta > 0)) fail(p, "rope_theta", "must be positive");

  // Mistral attends within a sliding window; Qwen2 only when use_sliding_window is set.
  const bool sliding = c.architecture == Architecture::Mistral ||
                       (c.architecture == Architecture::Qwen2 && detail::get_bool(p, root, "use_sliding_window", false));
  if (sliding) c.sliding_window = get_int(p, root, "sliding_window", 0, false);
  if (c.sliding_window < 0) fail(p, "sliding_window", "must be non-negative");

  c.bos_token_id = static_cast<std::int32_t>(get_int(p, root, "bos_token_id", -1, false));
  detail::read_token_ids(p, root, "eos_token_id", c.eos_token_ids);

  // generation_config.json's eos list is what generate() stops on in transformers.
  const auto gen_path = model_dir / "generation_config.json";
  if (std::filesystem::exists(gen_path)) {
    simdjson::dom::parser gen_parser;
    simdjson::padded_string gen_storage;
    auto gen = detail::load_json(gen_path, gen_parser, gen_storage);
    detail::read_token_ids(gen_path.string(), gen, "eos_token_id", c.eos_token_ids);
  }
  for (auto id : c.eos_token_ids) {
    if (id < 0 || id >= c.vocab_size) fail(p, "eos_token_id", "outside the vocabulary");
  }
  return c;
}

}  // namespace kvcanary::io
