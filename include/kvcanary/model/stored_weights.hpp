#pragma once
// Weights<stored_t>: the weight precision `stored` (CLI `--dtype stored`, sweep
// `dtype = "stored"`). The large matrices stay in the GGUF blocks the model directory was
// converted from, mmapped and read in place (ops/stored_matmul.hpp); norms and biases are
// fp32 as everywhere.
//
// Where the blocks are: `model.gguf` inside the model directory, which `kvcanary convert-gguf`
// writes as a symbolic link to the GGUF it converted (docs/MODELS.md). The tensors are placed
// by the converter's own plan (io::plan_llama_tensors: the same HF names, shapes and Q/K row
// un-permutation as model.safetensors), and the GGUF's hyperparameters must equal config.json's,
// so the stored weights are the same model as the converted ones, value for value.

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/io/gguf.hpp"
#include "kvcanary/io/gguf_quants.hpp"
#include "kvcanary/io/gguf_to_hf.hpp"
#include "kvcanary/core/model_config.hpp"
#include "kvcanary/model/weights.hpp"
#include "kvcanary/ops/stored_matmul.hpp"

namespace kvcanary::model {

template <>
class Weights<stored_t> {
 public:
  Weights(const ModelConfig& c, const std::filesystem::path& model_dir) {
    const auto path = model_dir / "model.gguf";
    if (!std::filesystem::exists(path))
      fail(path.string(), "",
           "--dtype stored reads the GGUF the model directory was converted from, and it is not there "
           "(kvcanary convert-gguf links it as model.gguf; for an older directory: ln -s FILE.gguf " +
               path.string() + ")");
    file_ = std::make_unique<io::GgufFile>(path);
    const io::GgufFile& f = *file_;
    const io::LlamaHparams h = io::read_llama_hparams(f);
    check_matches(c, h, f.path());
    for (const io::HfTensorPlan& p : io::plan_llama_tensors(f, h)) plan_[p.hf_name] = p;

    const auto u = [](std::int64_t n) { return static_cast<std::size_t>(n); };
    const std::size_t H = u(c.hidden_size), I = u(c.intermediate_size);
    embed_ = ops::StoredMatrix(H);
    add(embed_, "model.embed_tokens.weight");
    if (c.tie_word_embeddings) {
      lm_head = embed_;
    } else {
      lm_head = ops::StoredMatrix(H);
      add(lm_head, "lm_head.weight");
      matrix_bytes_ += embed_.bytes();
    }
    matrix_bytes_ += lm_head.bytes();
    final_norm = vec("model.norm.weight");
    layers.resize(u(c.num_layers));
    for (std::int64_t l = 0; l < c.num_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      auto& L = layers[u(l)];
      L.wqkv = ops::StoredMatrix(H);
      for (const char* n : {"q_proj", "k_proj", "v_proj"}) add(L.wqkv, p + "self_attn." + n + ".weight");
      L.wo = ops::StoredMatrix(u(c.q_dim()));
      add(L.wo, p + "self_attn.o_proj.weight");
      if (c.attention_bias) {
        for (const char* b : {"q_proj", "k_proj", "v_proj"}) {
          const auto v = vec(p + "self_attn." + b + ".bias");
          L.bqkv.insert(L.bqkv.end(), v.begin(), v.end());
        }
      }
      L.w_gate_up = ops::StoredMatrix(H);
      add(L.w_gate_up, p + "mlp.gate_proj.weight");
      add(L.w_gate_up, p + "mlp.up_proj.weight");
      L.w_down = ops::StoredMatrix(I);
      add(L.w_down, p + "mlp.down_proj.weight");
      L.input_norm = vec(p + "input_layernorm.weight");
      L.post_attention_norm = vec(p + "post_attention_layernorm.weight");
      matrix_bytes_ += L.wqkv.bytes() + L.wo.bytes() + L.w_gate_up.bytes() + L.w_down.bytes();
    }
  }
  Weights(const Weights&) = delete;
  Weights& operator=(const Weights&) = delete;
  Weights(Weights&&) = default;

  ops::StoredMatrix lm_head;
  std::vector<float> final_norm;
  std::vector<LayerWeights<stored_t>> layers;

  void embed_row(std::size_t id, float* dst) const { embed_.row(id, dst); }

  // Bytes of the stored matrices as read per token (the decode bandwidth bound's numerator).
  std::size_t matrix_bytes() const { return matrix_bytes_; }

  // The ggml type of each stored matrix tensor, by HF name (reports, benchmarks).
  std::map<std::string, std::string> tensor_types() const {
    std::map<std::string, std::string> out;
    for (const auto& [hf, p] : plan_) out[hf] = io::ggml_type_name(file_->tensor(p.gguf_name).type);
    return out;
  }

 private:
  // config.json and the GGUF must describe the same model (the directory could have been
  // re-converted from another file, or the link pointed elsewhere).
  static void check_matches(const ModelConfig& c, const io::LlamaHparams& h, const std::string& file) {
    const auto same = [&](const char* field, std::int64_t cfg, std::uint64_t gguf) {
      if (static_cast<std::uint64_t>(cfg) != gguf)
        fail(file, field,
             std::to_string(gguf) + " in the GGUF but " + std::to_string(cfg) + " in " + c.source +
                 ": model.gguf is not the file this directory was converted from");
    };
    same("hidden_size", c.hidden_size, h.hidden);
    same("intermediate_size", c.intermediate_size, h.ffn);
    same("num_hidden_layers", c.num_layers, h.n_layer);
    same("num_attention_heads", c.num_heads, h.n_head);
    same("num_key_value_heads", c.num_kv_heads, h.n_kv_head);
    same("head_dim", c.head_dim, h.head_dim);
    same("vocab_size", c.vocab_size, h.vocab);
    same("tie_word_embeddings", c.tie_word_embeddings ? 1 : 0, h.tied ? 1 : 0);
    same("attention_bias", c.attention_bias ? 1 : 0, h.arch == io::GgufArch::Qwen2 ? 1 : 0);
  }

  const io::HfTensorPlan& planned(const std::string& hf_name) const {
    const auto it = plan_.find(hf_name);
    if (it == plan_.end()) fail(file_->path(), hf_name, "tensor missing from the GGUF");
    return it->second;
  }

  void add(ops::StoredMatrix& m, const std::string& hf_name) {
    const io::HfTensorPlan& p = planned(hf_name);
    const io::GgufTensorInfo& t = file_->tensor(p.gguf_name);
    const std::size_t rows = static_cast<std::size_t>(p.shape[0]), in = static_cast<std::size_t>(p.shape[1]);
    if (in != m.in())
      fail(file_->path(), "tensor '" + p.gguf_name + "'",
           "row length " + std::to_string(in) + ", expected " + std::to_string(m.in()));
    const io::GgmlTypeTraits* tr = io::ggml_type_traits(static_cast<std::uint32_t>(t.type));
    if (in % 16 != 0 || in % tr->block_size != 0)
      fail(file_->path(), "tensor '" + p.gguf_name + "'",
           "row length " + std::to_string(in) + " is not a multiple of 16 and of the " + tr->name + " block");
    std::vector<std::uint32_t> perm;
    if (p.unpermute_heads) {  // HF row h*hd + j*half + i is GGUF row h*hd + 2i + j (io/gguf_to_hf.hpp)
      const std::size_t hd = rows / p.unpermute_heads, half = hd / 2;
      perm.resize(rows);
      for (std::size_t hh = 0; hh < p.unpermute_heads; ++hh)
        for (std::size_t j = 0; j < 2; ++j)
          for (std::size_t i = 0; i < half; ++i)
            perm[hh * hd + j * half + i] = static_cast<std::uint32_t>(hh * hd + 2 * i + j);
    }
    m.append(t.type, file_->tensor_bytes(t).data(), rows, std::move(perm));
  }

  std::vector<float> vec(const std::string& hf_name) {
    return io::dequantize(*file_, file_->tensor(planned(hf_name).gguf_name));
  }

  std::unique_ptr<io::GgufFile> file_;
  std::map<std::string, io::HfTensorPlan> plan_;
  ops::StoredMatrix embed_;
  std::size_t matrix_bytes_ = 0;
};

}  // namespace kvcanary::model
