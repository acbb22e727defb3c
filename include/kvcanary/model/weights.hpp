#pragma once
// Model weights in the precision the forward pass reads: WT = float or bf16_t for the large
// matrices (embeddings, projections, lm_head); norms and biases always fp32. A tensor whose
// file dtype already is WT is used in place from the mmap; others (F16 files, F32 files run
// in bf16, ...) are converted once at load into owned storage.

#include <cstdint>
#include <cstring>
#include <deque>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/half.hpp"
#include "kvcanary/io/safetensors.hpp"
#include "kvcanary/model/config.hpp"

namespace kvcanary::model {

template <class WT>
struct LayerWeights {
  const WT *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr;
  const WT *w_gate = nullptr, *w_up = nullptr, *w_down = nullptr;
  std::vector<float> bq, bk, bv;  // empty when the architecture has no q/k/v bias
  std::vector<float> input_norm, post_attention_norm;
};

template <class WT>
class Weights {
 public:
  static_assert(std::is_same_v<WT, float> || std::is_same_v<WT, bf16_t>, "weights are fp32 or bf16");

  Weights(const Config& c, const std::filesystem::path& model_dir) : file_(io::SafetensorsModel::open(model_dir)) {
    const auto H = c.hidden_size, V = c.vocab_size, I = c.intermediate_size;
    const auto Q = c.q_dim(), KV = c.kv_dim();
    embed = matrix(file_.require("model.embed_tokens.weight", {V, H}));
    if (c.tie_word_embeddings) {
      lm_head = embed;
    } else {
      lm_head = matrix(file_.require("lm_head.weight", {V, H}));
    }
    final_norm = vec(file_.require("model.norm.weight", {H}));
    layers.resize(static_cast<std::size_t>(c.num_layers));
    for (std::int64_t l = 0; l < c.num_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      auto& L = layers[static_cast<std::size_t>(l)];
      L.wq = matrix(file_.require(p + "self_attn.q_proj.weight", {Q, H}));
      L.wk = matrix(file_.require(p + "self_attn.k_proj.weight", {KV, H}));
      L.wv = matrix(file_.require(p + "self_attn.v_proj.weight", {KV, H}));
      L.wo = matrix(file_.require(p + "self_attn.o_proj.weight", {H, Q}));
      if (c.attention_bias) {
        L.bq = vec(file_.require(p + "self_attn.q_proj.bias", {Q}));
        L.bk = vec(file_.require(p + "self_attn.k_proj.bias", {KV}));
        L.bv = vec(file_.require(p + "self_attn.v_proj.bias", {KV}));
      }
      L.w_gate = matrix(file_.require(p + "mlp.gate_proj.weight", {I, H}));
      L.w_up = matrix(file_.require(p + "mlp.up_proj.weight", {I, H}));
      L.w_down = matrix(file_.require(p + "mlp.down_proj.weight", {H, I}));
      L.input_norm = vec(file_.require(p + "input_layernorm.weight", {H}));
      L.post_attention_norm = vec(file_.require(p + "post_attention_layernorm.weight", {H}));
    }
  }
  Weights(const Weights&) = delete;
  Weights& operator=(const Weights&) = delete;
  Weights(Weights&&) = default;

  const WT* embed = nullptr;
  const WT* lm_head = nullptr;
  std::vector<float> final_norm;
  std::vector<LayerWeights<WT>> layers;

  // Bytes of the large matrices as read per token (the decode bandwidth bound's numerator).
  std::size_t matrix_bytes() const { return matrix_bytes_; }

 private:
  static float element(const io::TensorView& t, std::size_t i) {
    switch (t.dtype) {
      case io::DType::F32: {
        float f;
        std::memcpy(&f, t.data + 4 * i, 4);
        return f;
      }
      case io::DType::BF16: {
        bf16_t b;
        std::memcpy(&b.bits, t.data + 2 * i, 2);
        return to_float(b);
      }
      case io::DType::F16: {
        f16_t h;
        std::memcpy(&h.bits, t.data + 2 * i, 2);
        return to_float(h);
      }
      default:
        fail(t.file, t.name, "dtype " + std::string(io::dtype_name(t.dtype)) + " is not a float weight type (F32, F16, BF16)");
    }
  }

  const WT* matrix(const io::TensorView& t) {
    element(t, 0);  // rejects non-float dtypes by name
    matrix_bytes_ += static_cast<std::size_t>(t.numel()) * sizeof(WT);
    const bool same = (std::is_same_v<WT, float> && t.dtype == io::DType::F32) ||
                      (std::is_same_v<WT, bf16_t> && t.dtype == io::DType::BF16);
    if (same && reinterpret_cast<std::uintptr_t>(t.data) % alignof(WT) == 0) {
      return reinterpret_cast<const WT*>(t.data);
    }
    auto& buf = owned_.emplace_back(static_cast<std::size_t>(t.numel()));
    for (std::size_t i = 0; i < buf.size(); ++i) {
      if constexpr (std::is_same_v<WT, float>) {
        buf[i] = element(t, i);
      } else {
        buf[i] = t.dtype == io::DType::BF16 ? bf16_t{static_cast<std::uint16_t>(t.data[2 * i] | (t.data[2 * i + 1] << 8))}
                                            : to_bf16(element(t, i));
      }
    }
    return buf.data();
  }

  std::vector<float> vec(const io::TensorView& t) {
    std::vector<float> out(static_cast<std::size_t>(t.numel()));
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = element(t, i);
    return out;
  }

  io::SafetensorsModel file_;
  std::deque<std::vector<WT>> owned_;
  std::size_t matrix_bytes_ = 0;
};

}  // namespace kvcanary::model
