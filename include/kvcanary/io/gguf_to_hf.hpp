#pragma once
// GGUF (llama or qwen2 architecture, byte-level BPE vocab) -> Hugging Face model directory:
//   config.json, generation_config.json, model.safetensors (F32 or BF16, HF names and
//   [out, in] shapes), tokenizer.json, tokenizer_config.json, and model.gguf, a symbolic link
//   to the source GGUF (absolute path) for the `stored` weight precision.
//
// Weights are dequantized with gguf_quants.hpp (bit-identical to gguf-py), so the F32 output
// equals, tensor for tensor, the state dict transformers builds from the same GGUF
// (`from_pretrained(dir, gguf_file=...)`). Two layout facts make that so:
//  * GGUF ne = [in, out] is row-major [out, in], which is HF's nn.Linear layout: no transpose.
//  * llama.cpp's converter permutes the rows of Q and K so that rotary pairs are adjacent
//    (interleaved RoPE): per head, HF row j*(hd/2) + i is stored as GGUF row 2*i + j
//    (reshape(n_head, 2, hd/2, in).swapaxes(1, 2)). We apply the inverse permutation.
//    Qwen2 is not permuted: llama.cpp runs it with NEOX (rotate-half) RoPE, HF's own layout.
// Qwen2 differs from llama further only in q/k/v biases (attn_{q,k,v}.bias ->
// self_attn.{q,k,v}_proj.bias) and in its config.json/tokenizer files (see make_config_json
// and make_tokenizer_json); an untied output.weight becomes lm_head.weight for both.
//
// The directory is built under a temporary sibling name and renamed into place at the end,
// so `out_dir` is either absent, the previous complete conversion, or the new complete one.

#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <atomic>
#include <charconv>
#include <cstring>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/half.hpp"
#include "kvcanary/io/gguf.hpp"
#include "kvcanary/io/gguf_quants.hpp"
#include "kvcanary/io/safetensors_writer.hpp"

namespace kvcanary::io {

enum class HfDtype { F32, BF16 };

struct ConvertOptions {
  HfDtype dtype = HfDtype::F32;
  bool overwrite = false;                            // replace an existing out_dir (atomically) instead of failing
  std::function<void(const std::string&)> progress;  // optional progress lines
};

enum class GgufArch { Llama, Qwen2 };

// Hyperparameters of a llama- or qwen2-architecture GGUF, validated against each other.
struct LlamaHparams {
  GgufArch arch = GgufArch::Llama;
  std::uint64_t n_layer = 0, hidden = 0, ffn = 0, n_head = 0, n_kv_head = 0, head_dim = 0;
  std::uint64_t vocab = 0, context = 0;
  float rms_eps = 0, rope_theta = 0;
  bool tied = true;
};

namespace gguf_detail {

// The shortest decimal that reads back as the same float (e.g. 1e-05, not
// 9.999999747378752e-06), as a double: config.json then holds the value the original HF
// config had, and parsing it to fp32 gives back exactly the GGUF's fp32.
inline double float_for_json(float f) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, f);
  *r.ptr = '\0';
  return std::strtod(buf, nullptr);
}

inline std::string json_str(const std::string& s, const std::string& file, const std::string& field) {
  try {
    return nlohmann::json(s).dump();
  } catch (const nlohmann::json::exception& e) { fail(file, field, std::string("not valid UTF-8: ") + e.what()); }
}

// Removes `.NAME.partial-PID-N` directories left in `parent` by conversions whose process
// has died (killed mid-write). They are never reused, only deleted; a live process's
// directory (kill(pid, 0) succeeds or is not permitted) is left alone.
inline void remove_stale_partials(const std::filesystem::path& parent, const std::string& name) {
  const std::string prefix = "." + name + ".partial-";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(parent, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) != 0) continue;
    const std::string rest = n.substr(prefix.size());
    long pid = 0;
    auto r = std::from_chars(rest.data(), rest.data() + rest.size(), pid);
    if (r.ec != std::errc() || pid <= 0 || r.ptr == rest.data() + rest.size() || *r.ptr != '-') continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      std::error_code ec2;
      std::filesystem::remove_all(e.path(), ec2);
    }
  }
}

inline void write_text_file(const std::filesystem::path& p, const std::string& text) {
  st_write_detail::FdWriter w(p);
  w.write(text.data(), text.size());
  w.close();
}

}  // namespace gguf_detail

// Reads `<arch>.*` hyperparameters (llama.cpp's keys are prefixed by the architecture name).
inline LlamaHparams read_llama_hparams(const GgufFile& f) {
  const std::string& path = f.path();
  const std::string arch = f.get_string("general.architecture");
  LlamaHparams h;
  if (arch == "llama")
    h.arch = GgufArch::Llama;
  else if (arch == "qwen2")
    h.arch = GgufArch::Qwen2;
  else
    fail(path, "general.architecture", "architecture '" + arch + "' is not supported (only 'llama', 'qwen2')");
  const std::string a = arch + ".";
  const auto key = [&](const char* k) { return a + k; };
  h.n_layer = f.get_uint(key("block_count"));
  h.hidden = f.get_uint(key("embedding_length"));
  h.ffn = f.get_uint(key("feed_forward_length"));
  h.n_head = f.get_uint(key("attention.head_count"));
  h.n_kv_head = f.get_uint_or(key("attention.head_count_kv"), h.n_head);
  h.context = f.get_uint(key("context_length"));
  h.rms_eps = static_cast<float>(f.get_float(key("attention.layer_norm_rms_epsilon")));
  h.rope_theta = static_cast<float>(f.get_float_or(key("rope.freq_base"), 10000.0));
  if (h.n_layer == 0 || h.n_layer > 1024) fail(path, key("block_count"), "implausible layer count");
  if (h.hidden == 0) fail(path, key("embedding_length"), "must be > 0");
  if (h.ffn == 0) fail(path, key("feed_forward_length"), "must be > 0");
  if (h.n_head == 0 || h.hidden % h.n_head != 0)
    fail(path, key("attention.head_count"), "must divide " + key("embedding_length"));
  if (h.n_kv_head == 0 || h.n_head % h.n_kv_head != 0)
    fail(path, key("attention.head_count_kv"), "must divide " + key("attention.head_count"));
  h.head_dim = f.get_uint_or(key("attention.key_length"), h.hidden / h.n_head);
  if (f.get_uint_or(key("attention.value_length"), h.head_dim) != h.head_dim)
    fail(path, key("attention.value_length"), "differs from key_length; not supported");
  if (h.head_dim % 2 != 0) fail(path, key("attention.key_length"), "head dimension must be even for RoPE");
  // HF Qwen2 derives head_dim as hidden_size / num_attention_heads; it has no separate field.
  if (h.arch == GgufArch::Qwen2 && h.head_dim != h.hidden / h.n_head)
    fail(path, key("attention.key_length"), "qwen2 needs key_length == embedding_length / head_count");
  if (f.get_uint_or(key("rope.dimension_count"), h.head_dim) != h.head_dim)
    fail(path, key("rope.dimension_count"), "partial rotary embeddings are not supported");
  if (const GgufValue* st = f.find(key("rope.scaling.type"));
      st && !(st->is_string() && (st->string() == "none" || st->string().empty())))
    fail(path, key("rope.scaling.type"), "RoPE scaling is not supported");
  if (!(h.rms_eps > 0)) fail(path, key("attention.layer_norm_rms_epsilon"), "must be > 0");
  if (!(h.rope_theta > 0)) fail(path, key("rope.freq_base"), "must be > 0");
  const GgufTensorInfo& emb = f.tensor("token_embd.weight");
  if (emb.dims.size() != 2 || emb.dims[0] != h.hidden)
    fail(path, "tensor 'token_embd.weight'", "expected shape [vocab, " + std::to_string(h.hidden) + "]");
  h.vocab = f.get_uint_or(key("vocab_size"), emb.dims[1]);
  if (emb.dims[1] != h.vocab)
    fail(path, key("vocab_size"),
         std::to_string(h.vocab) + " differs from token_embd.weight rows " + std::to_string(emb.dims[1]));
  h.tied = f.find_tensor("output.weight") == nullptr;
  return h;
}

// Inverse of llama.cpp's Q/K row permutation (see the header comment), for a row-major
// [n_head * head_dim, cols] matrix.
inline void unpermute_qk_rows(const float* src, float* dst, std::size_t n_head, std::size_t head_dim,
                              std::size_t cols) {
  const std::size_t half = head_dim / 2;
  for (std::size_t h = 0; h < n_head; ++h)
    for (std::size_t j = 0; j < 2; ++j)
      for (std::size_t i = 0; i < half; ++i) {
        const float* s = src + (h * head_dim + 2 * i + j) * cols;
        float* d = dst + (h * head_dim + j * half + i) * cols;
        std::copy(s, s + cols, d);
      }
}

// One output tensor: where it comes from and how it is laid out.
struct HfTensorPlan {
  std::string gguf_name, hf_name;
  std::vector<std::uint64_t> shape;  // HF (row-major) shape
  std::size_t unpermute_heads = 0;   // > 0: apply unpermute_qk_rows with this many heads
};

// Maps every GGUF tensor to its HF tensor, checking shapes; any tensor we do not know how
// to place is an error (silently dropping a weight would make a different model).
inline std::vector<HfTensorPlan> plan_llama_tensors(const GgufFile& f, const LlamaHparams& h) {
  const std::uint64_t q_out = h.n_head * h.head_dim, kv_out = h.n_kv_head * h.head_dim;
  std::map<std::string, HfTensorPlan> want;
  auto need = [&](std::string g, std::string hf, std::vector<std::uint64_t> shape, std::size_t heads = 0) {
    want[g] = HfTensorPlan{g, std::move(hf), std::move(shape), heads};
  };
  need("token_embd.weight", "model.embed_tokens.weight", {h.vocab, h.hidden});
  need("output_norm.weight", "model.norm.weight", {h.hidden});
  if (!h.tied) need("output.weight", "lm_head.weight", {h.vocab, h.hidden});
  const bool qwen2 = h.arch == GgufArch::Qwen2;
  for (std::uint64_t l = 0; l < h.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    const std::string m = "model.layers." + std::to_string(l) + ".";
    need(b + "attn_norm.weight", m + "input_layernorm.weight", {h.hidden});
    need(b + "attn_q.weight", m + "self_attn.q_proj.weight", {q_out, h.hidden}, qwen2 ? 0 : h.n_head);
    need(b + "attn_k.weight", m + "self_attn.k_proj.weight", {kv_out, h.hidden}, qwen2 ? 0 : h.n_kv_head);
    need(b + "attn_v.weight", m + "self_attn.v_proj.weight", {kv_out, h.hidden});
    if (qwen2) {  // Qwen2Attention: q/k/v projections with bias, o_proj without
      need(b + "attn_q.bias", m + "self_attn.q_proj.bias", {q_out});
      need(b + "attn_k.bias", m + "self_attn.k_proj.bias", {kv_out});
      need(b + "attn_v.bias", m + "self_attn.v_proj.bias", {kv_out});
    }
    need(b + "attn_output.weight", m + "self_attn.o_proj.weight", {h.hidden, q_out});
    need(b + "ffn_norm.weight", m + "post_attention_layernorm.weight", {h.hidden});
    need(b + "ffn_gate.weight", m + "mlp.gate_proj.weight", {h.ffn, h.hidden});
    need(b + "ffn_up.weight", m + "mlp.up_proj.weight", {h.ffn, h.hidden});
    need(b + "ffn_down.weight", m + "mlp.down_proj.weight", {h.hidden, h.ffn});
  }
  std::vector<HfTensorPlan> plan;
  for (const GgufTensorInfo& t : f.tensors()) {
    auto it = want.find(t.name);
    if (it == want.end())
      fail(f.path(), "tensor '" + t.name + "'",
           std::string("no Hugging Face ") + (qwen2 ? "qwen2" : "llama") + " tensor corresponds to it");
    if (t.shape() != it->second.shape) {
      std::string s;
      for (auto d : it->second.shape) s += (s.empty() ? "" : ", ") + std::to_string(d);
      fail(f.path(), "tensor '" + t.name + "'", "shape does not match the hyperparameters (expected [" + s + "])");
    }
    if (!can_dequantize(t.type))
      fail(f.path(), "tensor '" + t.name + "'.type",
           std::string("ggml type ") + ggml_type_name(t.type) + " cannot be dequantized yet");
    plan.push_back(it->second);
    want.erase(it);
  }
  if (!want.empty()) fail(f.path(), "tensor '" + want.begin()->first + "'", "required tensor is missing");
  return plan;
}

// The split regex of HF's Qwen2 tokenizer (transformers' Qwen2Converter / PRETOKENIZE_REGEX):
// GPT-4-style, but one \p{N} per piece. llama.cpp's "qwen2" pre-tokenizer uses the same regex.
inline constexpr const char* kQwen2SplitRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// tokenizer.json for a GGUF byte-level BPE vocab ("gpt2" model). Only pre-tokenizers whose
// HF equivalent is known exactly are accepted:
//  * 'gpt-2': ByteLevel with its built-in GPT-2 regex;
//  * 'smollm': the GPT-2 regex preceded by a split of every \p{N} character, i.e.
//    Digits(individual) + ByteLevel(regex);
//  * 'qwen2': the tokenizer.json of HF's Qwen2 tokenizers (transformers' Qwen2Converter):
//    NFC normalizer, Split(kQwen2SplitRegex, Isolated) + ByteLevel(no regex), and a model
//    vocab of the ordinary tokens only: control (type 3) and user-defined (type 4) tokens are
//    added tokens (normalized: false; special: control only, so '<tool_call>' is matched but
//    not special), and unused (type 5, the '[PAD...]' rows that pad the embedding to a
//    multiple of 128) are not part of the tokenizer at all, as in HF's files.
inline std::string make_tokenizer_json(const GgufFile& f) {
  const std::string& path = f.path();
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model != "gpt2")
    fail(path, "tokenizer.ggml.model", "tokenizer model '" + model + "' is not supported (only byte-level BPE 'gpt2')");
  const std::string pre = f.has("tokenizer.ggml.pre") ? f.get_string("tokenizer.ggml.pre") : "gpt-2";
  const std::string byte_level =
      R"({"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true})";
  const bool qwen2 = pre == "qwen2";
  std::string pre_tok;
  if (qwen2)
    pre_tok =
        R"({"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":)" +
        nlohmann::json(kQwen2SplitRegex).dump() +
        R"(},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]})";
  else if (pre == "smollm")
    pre_tok = R"({"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},)" + byte_level + "]}";
  else if (pre == "gpt-2")
    pre_tok = byte_level;
  else
    fail(path, "tokenizer.ggml.pre", "pre-tokenizer '" + pre + "' has no known exact Hugging Face equivalent");

  const std::vector<std::string> tokens = f.get_string_array("tokenizer.ggml.tokens");
  std::vector<std::int64_t> types(tokens.size(), 1);
  if (f.has("tokenizer.ggml.token_type")) {
    types = f.get_int_array("tokenizer.ggml.token_type");
    if (types.size() != tokens.size())
      fail(path, "tokenizer.ggml.token_type", "length differs from tokenizer.ggml.tokens");
  }
  const std::vector<std::string> merges = f.get_string_array("tokenizer.ggml.merges");

  // GGUF token types (llama.h): 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
  const auto in_model_vocab = [&](std::size_t i) {
    return !qwen2 || (types[i] != 3 && types[i] != 4 && types[i] != 5);
  };
  std::map<std::string, std::size_t> ids;
  std::string vocab = "{";
  bool first_v = true;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (!in_model_vocab(i)) continue;
    const std::string field = "tokenizer.ggml.tokens[" + std::to_string(i) + "]";
    if (!ids.emplace(tokens[i], i).second)
      fail(path, field, "duplicate token (tokenizer.json's vocab is a map from token to id)");
    vocab += (first_v ? "" : ",") + gguf_detail::json_str(tokens[i], path, field) + ":" + std::to_string(i);
    first_v = false;
  }
  vocab += '}';

  std::string merges_json = "[";
  for (std::size_t i = 0; i < merges.size(); ++i) {
    const std::string field = "tokenizer.ggml.merges[" + std::to_string(i) + "]";
    const std::string& m = merges[i];
    // Byte-level tokens never contain U+0020 (it is mapped to 'Ġ'), so the one space separates.
    const auto sp = m.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == m.size() || m.find(' ', sp + 1) != std::string::npos)
      fail(path, field, "merge '" + m + "' is not two tokens separated by one space");
    const std::string a = m.substr(0, sp), b = m.substr(sp + 1);
    if (!ids.count(a) || !ids.count(b) || !ids.count(a + b))
      fail(path, field, "merge '" + m + "' refers to a token not in the vocabulary");
    if (i) merges_json += ',';
    merges_json += "[" + gguf_detail::json_str(a, path, field) + "," + gguf_detail::json_str(b, path, field) + "]";
  }
  merges_json += ']';

  // Control tokens are HF special tokens; user-defined ones are HF added (non-special)
  // tokens, which llama.cpp, like HF, matches in raw text.
  std::string added = "[";
  bool first = true;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const auto t = types[i];
    if (t != 2 && t != 3 && t != 4) continue;
    nlohmann::ordered_json a = {{"id", i},          {"content", tokens[i]}, {"single_word", false},
                                {"lstrip", false},  {"rstrip", false},      {"normalized", t == 4 && !qwen2},
                                {"special", t != 4}};
    added += (first ? "" : ",") + a.dump();
    first = false;
  }
  added += ']';

  // Qwen2Converter gives the BPE model "" (not null) affixes; both mean none.
  const char* affix = qwen2 ? "\"\"" : "null";
  return std::string("{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,") + "\"added_tokens\":" + added +
         ",\"normalizer\":" + (qwen2 ? R"({"type":"NFC"})" : "null") + ",\"pre_tokenizer\":" + pre_tok +
         R"(,"post_processor":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true})" +
         R"(,"decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true})" +
         R"(,"model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":)" + affix +
         ",\"end_of_word_suffix\":" + affix +
         R"(,"fuse_unk":false,"byte_fallback":false,"ignore_merges":false,"vocab":)" + vocab +
         ",\"merges\":" + merges_json + "}}\n";
}

namespace gguf_detail {
inline std::optional<std::uint64_t> token_id(const GgufFile& f, const char* key, std::size_t n_tokens) {
  if (!f.has(key)) return std::nullopt;
  const std::uint64_t id = f.get_uint(key);
  if (id >= n_tokens) fail(f.path(), key, "token id " + std::to_string(id) + " is outside the vocabulary");
  return id;
}
}  // namespace gguf_detail

inline nlohmann::ordered_json make_config_json(const GgufFile& f, const LlamaHparams& h, HfDtype dtype) {
  const std::size_t n_tokens = f.get_string_array("tokenizer.ggml.tokens").size();
  auto bos = gguf_detail::token_id(f, "tokenizer.ggml.bos_token_id", n_tokens);
  auto eos = gguf_detail::token_id(f, "tokenizer.ggml.eos_token_id", n_tokens);
  auto pad = gguf_detail::token_id(f, "tokenizer.ggml.padding_token_id", n_tokens);
  auto id_or_null = [](const std::optional<std::uint64_t>& v) {
    return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
  };
  nlohmann::ordered_json c;
  if (h.arch == GgufArch::Qwen2) {
    // The keys of HF's Qwen2 config.json (Qwen2.5-Coder's). The GGUF has no sliding-window
    // fields; Qwen2.5 ships use_sliding_window false with sliding_window equal to the
    // context length and max_window_layers equal to the layer count, which we write, so the
    // window is off (io/hf_config.hpp reads sliding_window only when use_sliding_window is set).
    // q/k/v biases are implied by the architecture (Qwen2Attention), as in HF.
    c["architectures"] = {"Qwen2ForCausalLM"};
    c["model_type"] = "qwen2";
    c["hidden_size"] = h.hidden;
    c["intermediate_size"] = h.ffn;
    c["num_hidden_layers"] = h.n_layer;
    c["num_attention_heads"] = h.n_head;
    c["num_key_value_heads"] = h.n_kv_head;
    c["hidden_act"] = "silu";
    c["max_position_embeddings"] = h.context;
    c["rms_norm_eps"] = gguf_detail::float_for_json(h.rms_eps);
    c["rope_theta"] = gguf_detail::float_for_json(h.rope_theta);
    c["rope_scaling"] = nullptr;
    c["use_sliding_window"] = false;
    c["sliding_window"] = h.context;
    c["max_window_layers"] = h.n_layer;
    c["attention_dropout"] = 0.0;
    c["initializer_range"] = 0.02;
    c["tie_word_embeddings"] = h.tied;
    c["vocab_size"] = h.vocab;
    c["bos_token_id"] = id_or_null(bos);
    c["eos_token_id"] = id_or_null(eos);
    c["pad_token_id"] = id_or_null(pad);
    c["use_cache"] = true;
    c["torch_dtype"] = dtype == HfDtype::F32 ? "float32" : "bfloat16";
    return c;
  }
  c["architectures"] = {"LlamaForCausalLM"};
  c["model_type"] = "llama";
  c["hidden_size"] = h.hidden;
  c["intermediate_size"] = h.ffn;
  c["num_hidden_layers"] = h.n_layer;
  c["num_attention_heads"] = h.n_head;
  c["num_key_value_heads"] = h.n_kv_head;
  c["head_dim"] = h.head_dim;
  c["hidden_act"] = "silu";
  c["max_position_embeddings"] = h.context;
  c["rms_norm_eps"] = gguf_detail::float_for_json(h.rms_eps);
  c["rope_theta"] = gguf_detail::float_for_json(h.rope_theta);
  c["rope_scaling"] = nullptr;
  c["attention_bias"] = false;
  c["attention_dropout"] = 0.0;
  c["mlp_bias"] = false;
  c["pretraining_tp"] = 1;
  c["tie_word_embeddings"] = h.tied;
  c["vocab_size"] = h.vocab;
  c["bos_token_id"] = id_or_null(bos);
  c["eos_token_id"] = id_or_null(eos);
  c["pad_token_id"] = id_or_null(pad);
  c["use_cache"] = true;
  c["torch_dtype"] = dtype == HfDtype::F32 ? "float32" : "bfloat16";
  return c;
}

inline nlohmann::ordered_json make_tokenizer_config_json(const GgufFile& f, const LlamaHparams& h) {
  const std::vector<std::string> tokens = f.get_string_array("tokenizer.ggml.tokens");
  auto tok = [&](const char* key) {
    auto id = gguf_detail::token_id(f, key, tokens.size());
    return id ? nlohmann::ordered_json(tokens[*id]) : nlohmann::ordered_json(nullptr);
  };
  std::vector<std::int64_t> types(tokens.size(), 1);
  if (f.has("tokenizer.ggml.token_type")) types = f.get_int_array("tokenizer.ggml.token_type");
  nlohmann::ordered_json dec = nlohmann::ordered_json::object();
  for (std::size_t i = 0; i < tokens.size() && i < types.size(); ++i) {
    const auto t = types[i];
    if (t != 2 && t != 3 && t != 4) continue;
    dec[std::to_string(i)] = {
        {"content", tokens[i]}, {"lstrip", false},      {"normalized", t == 4 && h.arch != GgufArch::Qwen2},
        {"rstrip", false},      {"single_word", false}, {"special", t != 4}};
  }
  nlohmann::ordered_json c;
  c["add_bos_token"] = f.get_bool_or("tokenizer.ggml.add_bos_token", false);
  c["add_eos_token"] = f.get_bool_or("tokenizer.ggml.add_eos_token", false);
  c["add_prefix_space"] = false;
  c["added_tokens_decoder"] = std::move(dec);
  c["bos_token"] = tok("tokenizer.ggml.bos_token_id");
  c["eos_token"] = tok("tokenizer.ggml.eos_token_id");
  c["pad_token"] = tok("tokenizer.ggml.padding_token_id");
  c["unk_token"] = tok("tokenizer.ggml.unknown_token_id");
  if (f.has("tokenizer.chat_template")) {
    const std::string& t = f.get_string("tokenizer.chat_template");
    (void)gguf_detail::json_str(t, f.path(), "tokenizer.chat_template");  // rejects invalid UTF-8
    c["chat_template"] = t;
  }
  c["clean_up_tokenization_spaces"] = false;
  c["model_max_length"] = h.context;
  // Generic fast tokenizer: loads tokenizer.json as written, without rebuilding the
  // pre-tokenizer from class defaults (GPT2Tokenizer would drop the Digits split).
  c["tokenizer_class"] = "PreTrainedTokenizerFast";
  return c;
}

inline nlohmann::ordered_json make_generation_config_json(const GgufFile& f) {
  const std::size_t n_tokens = f.get_string_array("tokenizer.ggml.tokens").size();
  nlohmann::ordered_json g = nlohmann::ordered_json::object();
  if (auto bos = gguf_detail::token_id(f, "tokenizer.ggml.bos_token_id", n_tokens)) g["bos_token_id"] = *bos;
  auto eos = gguf_detail::token_id(f, "tokenizer.ggml.eos_token_id", n_tokens);
  auto eot = gguf_detail::token_id(f, "tokenizer.ggml.eot_token_id", n_tokens);
  if (eos && eot && *eot != *eos)
    g["eos_token_id"] = {*eos, *eot};
  else if (eos || eot)
    g["eos_token_id"] = eos ? *eos : *eot;
  if (auto pad = gguf_detail::token_id(f, "tokenizer.ggml.padding_token_id", n_tokens)) g["pad_token_id"] = *pad;
  return g;
}

// Adds every tensor of the plan to `w`, dequantized (and un-permuted) when written.
inline void add_hf_tensors(SafetensorsWriter& w, const GgufFile& f, const LlamaHparams& h,
                           const std::vector<HfTensorPlan>& plan, HfDtype dtype,
                           const std::function<void(const std::string&)>& progress = {}) {
  auto done = std::make_shared<std::size_t>(0);
  const std::size_t total = plan.size();
  for (const HfTensorPlan& p : plan) {
    const GgufTensorInfo* t = &f.tensor(p.gguf_name);
    w.add(p.hf_name, dtype == HfDtype::F32 ? "F32" : "BF16", p.shape,
          [&f, &h, t, p, dtype, done, total, progress](std::span<std::uint8_t> out) {
            std::vector<float> x = dequantize(f, *t);
            if (p.unpermute_heads) {
              std::vector<float> y(x.size());
              unpermute_qk_rows(x.data(), y.data(), p.unpermute_heads, h.head_dim, p.shape[1]);
              x.swap(y);
            }
            if (dtype == HfDtype::F32) {
              std::memcpy(out.data(), x.data(), x.size() * sizeof(float));
            } else {
              for (std::size_t i = 0; i < x.size(); ++i) {
                const std::uint16_t b = to_bf16(x[i]).bits;
                std::memcpy(out.data() + 2 * i, &b, 2);
              }
            }
            ++*done;
            if (progress && (*done % 32 == 0 || *done == total))
              progress("  tensors " + std::to_string(*done) + "/" + std::to_string(total));
          });
  }
}

inline void convert_gguf_to_hf(const std::filesystem::path& gguf, const std::filesystem::path& out_dir,
                               const ConvertOptions& opt = {}) {
  namespace fs = std::filesystem;
  auto say = [&](const std::string& s) {
    if (opt.progress) opt.progress(s);
  };
  const GgufFile f(gguf);
  const LlamaHparams h = read_llama_hparams(f);
  const std::vector<HfTensorPlan> plan = plan_llama_tensors(f, h);
  // Build every JSON document before touching the disk: bad metadata fails with nothing written.
  const std::string tokenizer_json = make_tokenizer_json(f);
  const std::string config = make_config_json(f, h, opt.dtype).dump(2) + "\n";
  std::string tok_config, gen_config;
  try {
    tok_config = make_tokenizer_config_json(f, h).dump(2) + "\n";
    gen_config = make_generation_config_json(f).dump(2) + "\n";
  } catch (const nlohmann::json::exception& e) {  // a metadata string that is not UTF-8
    fail(f.path(), "tokenizer metadata", std::string("cannot be written as JSON: ") + e.what());
  }
  say("gguf: " + f.path() + " (v" + std::to_string(f.version()) + ", " + std::to_string(f.tensors().size()) +
      " tensors, " + std::to_string(h.n_layer) + " layers, hidden " + std::to_string(h.hidden) + ")");

  const fs::path target = fs::absolute(out_dir).lexically_normal();
  const fs::path name = target.filename();
  if (name.empty()) fail(out_dir.string(), "", "output directory has no name");
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) fail(target.parent_path().string(), "", "cannot create directory: " + ec.message());
  const bool exists = fs::exists(target);
  if (exists && !opt.overwrite) fail(target.string(), "", "output directory already exists");

  gguf_detail::remove_stale_partials(target.parent_path(), name.string());
  static std::atomic<unsigned> counter{0};
  const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
  const fs::path tmp = target.parent_path() / ("." + name.string() + ".partial-" + tag);
  const fs::path old = target.parent_path() / ("." + name.string() + ".old-" + tag);
  try {
    if (!fs::create_directory(tmp, ec) || ec) fail(tmp.string(), "", "cannot create temporary directory");
    gguf_detail::write_text_file(tmp / "config.json", config);
    gguf_detail::write_text_file(tmp / "generation_config.json", gen_config);
    gguf_detail::write_text_file(tmp / "tokenizer.json", tokenizer_json);
    gguf_detail::write_text_file(tmp / "tokenizer_config.json", tok_config);
    SafetensorsWriter w;
    w.set_metadata("format", "pt");
    w.set_metadata("source", gguf.filename().string());
    w.set_metadata("converter", "kvcanary convert-gguf");
    add_hf_tensors(w, f, h, plan, opt.dtype, opt.progress);
    say("writing " + (target / "model.safetensors").string());
    w.write(tmp / "model.safetensors");
    // The source GGUF, linked for the `stored` weight precision (model/stored_weights.hpp),
    // which reads its blocks in place instead of model.safetensors.
    fs::create_symlink(fs::absolute(gguf).lexically_normal(), tmp / "model.gguf", ec);
    if (ec) fail((tmp / "model.gguf").string(), "", "cannot link the source GGUF: " + ec.message());
    if (exists) {
      fs::rename(target, old, ec);
      if (ec) fail(target.string(), "", "cannot move the previous conversion aside: " + ec.message());
    }
    fs::rename(tmp, target, ec);
    if (ec) {
      std::error_code ec2;
      if (exists) fs::rename(old, target, ec2);
      fail(target.string(), "", "cannot rename the finished conversion into place: " + ec.message());
    }
    if (exists) fs::remove_all(old, ec);
  } catch (...) {
    std::error_code ec2;
    fs::remove_all(tmp, ec2);
    throw;
  }
  say("done: " + target.string());
}

}  // namespace kvcanary::io
