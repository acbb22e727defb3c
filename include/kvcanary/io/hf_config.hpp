#pragma once
// config.json (+ generation_config.json) of a HF model directory -> ModelConfig.
// Only architectures whose forward pass kvcanary implements are accepted; anything else is
// refused by name rather than run wrongly.

#include <simdjson.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/io/json_reader.hpp"
#include "kvcanary/core/model_config.hpp"

namespace kvcanary::io {

namespace detail {

// eos_token_id may be an int or a list of ints (Llama 3 lists several).
inline void read_token_ids(const json_detail::Reader& r, simdjson::dom::element obj, const char* key,
                           std::vector<std::int32_t>& out) {
  auto field = r.opt(obj, key);
  if (!field) return;
  if (field->is_array()) {
    out.clear();
    for (auto e : r.array(*field, key)) out.push_back(r.token_id(e, key));
  } else {
    out = {r.token_id(*field, key)};
  }
}

}  // namespace detail

inline ModelConfig load_hf_config(const std::filesystem::path& model_dir) {
  const auto path = model_dir / "config.json";
  const std::string p = path.string();
  const json_detail::Reader r(p);
  simdjson::dom::parser parser;
  simdjson::padded_string storage;
  const auto root = json_detail::parse_file(path, parser, storage);

  ModelConfig c;
  c.source = p;
  auto archs = r.array(r.req(root, "architectures", "architectures"), "architectures");
  if (archs.size() == 0) r.bad("architectures", "empty");
  const std::string arch = r.str(archs.at(0).value(), "architectures");
  if (arch == "LlamaForCausalLM")
    c.architecture = Architecture::Llama;
  else if (arch == "Qwen2ForCausalLM")
    c.architecture = Architecture::Qwen2;
  else if (arch == "MistralForCausalLM")
    c.architecture = Architecture::Mistral;
  else
    r.bad("architectures", "unsupported architecture '" + arch +
                               "' (supported: LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM)");

  auto required = [&](const char* key) { return r.integer(root, key, key, 0, true); };
  c.vocab_size = required("vocab_size");
  c.hidden_size = required("hidden_size");
  c.intermediate_size = required("intermediate_size");
  c.num_layers = required("num_hidden_layers");
  c.num_heads = required("num_attention_heads");
  c.num_kv_heads = r.integer(root, "num_key_value_heads", "num_key_value_heads", c.num_heads);
  if (c.num_heads <= 0) r.bad("num_attention_heads", "must be positive");
  c.head_dim = r.integer(root, "head_dim", "head_dim", c.hidden_size / c.num_heads);
  c.max_position_embeddings = r.integer(root, "max_position_embeddings", "max_position_embeddings", 2048);
  c.rms_norm_eps = r.number(root, "rms_norm_eps", "rms_norm_eps", 1e-6);
  c.tie_word_embeddings = r.boolean(root, "tie_word_embeddings", "tie_word_embeddings", false);
  // Qwen2Attention always has q/k/v biases; Llama has them only when attention_bias is set.
  c.attention_bias =
      c.architecture == Architecture::Qwen2 || r.boolean(root, "attention_bias", "attention_bias", false);

  for (auto [name, v] : {std::pair<const char*, std::int64_t>{"vocab_size", c.vocab_size},
                         {"hidden_size", c.hidden_size},
                         {"intermediate_size", c.intermediate_size},
                         {"num_hidden_layers", c.num_layers},
                         {"num_key_value_heads", c.num_kv_heads},
                         {"head_dim", c.head_dim},
                         {"max_position_embeddings", c.max_position_embeddings}}) {
    if (v <= 0) r.bad(name, "must be positive");
  }
  if (c.num_heads % c.num_kv_heads != 0)
    r.bad("num_key_value_heads", "must divide num_attention_heads (grouped-query attention)");
  if (c.head_dim % 2 != 0) r.bad("head_dim", "must be even for rotary embeddings");
  if (!(c.rms_norm_eps > 0)) r.bad("rms_norm_eps", "must be positive");

  // rope_theta sits at top level in transformers < 5 and inside rope_parameters in 5.x;
  // rope_scaling (legacy) wins over rope_parameters when both are present, as in transformers.
  c.rope_theta = r.number(root, "rope_theta", "rope_theta", 10000.0);
  std::optional<simdjson::dom::element> scaling = r.opt(root, "rope_scaling");
  std::string scaling_field = "rope_scaling";
  if (auto params = r.opt(root, "rope_parameters"); params && params->is_object()) {
    c.rope_theta = r.number(*params, "rope_theta", "rope_parameters.rope_theta", c.rope_theta);
    if (!scaling) {
      scaling = params;
      scaling_field = "rope_parameters";
    }
  }
  if (scaling) {
    const auto field = [&](const char* key) { return scaling_field + "." + key; };
    r.object(*scaling, scaling_field);
    auto kind_el = r.opt(*scaling, "rope_type");
    if (!kind_el) kind_el = r.opt(*scaling, "type");
    if (!kind_el) r.bad(field("rope_type"), "missing");
    const std::string kind = r.str(*kind_el, field("rope_type"));
    auto& rs = c.rope_scaling;
    if (kind == "default") {
      rs.kind = RopeScaling::Kind::None;
    } else if (kind == "linear") {
      rs.kind = RopeScaling::Kind::Linear;
      rs.factor = r.number(*scaling, "factor", field("factor"), 0.0);
    } else if (kind == "llama3") {
      rs.kind = RopeScaling::Kind::Llama3;
      rs.factor = r.number(*scaling, "factor", field("factor"), 0.0);
      rs.low_freq_factor = r.number(*scaling, "low_freq_factor", field("low_freq_factor"), 1.0);
      rs.high_freq_factor = r.number(*scaling, "high_freq_factor", field("high_freq_factor"), 4.0);
      rs.original_max_position_embeddings =
          r.integer(*scaling, "original_max_position_embeddings", field("original_max_position_embeddings"), 0, true);
      if (!(rs.high_freq_factor > rs.low_freq_factor)) r.bad(field("high_freq_factor"), "must exceed low_freq_factor");
    } else {
      r.bad(field("rope_type"), "unsupported rope scaling '" + kind + "' (supported: default, linear, llama3)");
    }
    if (rs.kind != RopeScaling::Kind::None && !(rs.factor > 0)) r.bad(field("factor"), "must be positive");
  }
  if (!(c.rope_theta > 0)) r.bad("rope_theta", "must be positive");

  // Mistral attends within a sliding window; Qwen2 only when use_sliding_window is set.
  const bool sliding =
      c.architecture == Architecture::Mistral ||
      (c.architecture == Architecture::Qwen2 && r.boolean(root, "use_sliding_window", "use_sliding_window", false));
  if (sliding) c.sliding_window = r.integer(root, "sliding_window", "sliding_window", 0);
  if (c.sliding_window < 0) r.bad("sliding_window", "must be non-negative");

  c.bos_token_id = static_cast<std::int32_t>(r.integer(root, "bos_token_id", "bos_token_id", -1));
  detail::read_token_ids(r, root, "eos_token_id", c.eos_token_ids);

  // generation_config.json's eos list is what generate() stops on in transformers.
  const auto gen_path = model_dir / "generation_config.json";
  if (std::filesystem::exists(gen_path)) {
    simdjson::dom::parser gen_parser;
    simdjson::padded_string gen_storage;
    const auto gen = json_detail::parse_file(gen_path, gen_parser, gen_storage);
    detail::read_token_ids(json_detail::Reader(gen_path.string()), gen, "eos_token_id", c.eos_token_ids);
  }
  for (auto id : c.eos_token_ids) {
    if (id < 0 || id >= c.vocab_size) r.bad("eos_token_id", "outside the vocabulary");
  }
  return c;
}

}  // namespace kvcanary::io
