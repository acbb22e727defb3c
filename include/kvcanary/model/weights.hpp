#pragma once
// Model weights in the precision the forward pass reads: WT = float, bf16_t or f16_t for the large
// matrices (embeddings, projections, lm_head); norms and biases always fp32. Projections and
// lm_head are packed once at load into the matmul's panel layout (ops/matmul.hpp), converting
// from the file's dtype (F32, F16, BF16) on the way; q/k/v and gate/up are stacked so each pair
// or triple is one matmul per layer. An untied embedding table is used in place from the mmap
// when its dtype is WT; a tied one is read back from the packed lm_head (no second copy).
// WT = stored_t (the GGUF's own blocks, read in place) is the specialization in
// model/stored_weights.hpp.

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
#include "kvcanary/core/model_config.hpp"
#include "kvcanary/ops/matmul.hpp"
#include "kvcanary/ops/stored_matmul.hpp"

namespace kvcanary::model {

// The matrix type of a weight precision: packed panels for the float types, the file's own
// blocks for `stored` (ops/stored_matmul.hpp, model/stored_weights.hpp).
template <class WT>
struct MatrixType {
  using type = ops::PackedMatrix<WT>;
};
template <>
struct MatrixType<stored_t> {
  using type = ops::StoredMatrix;
};
template <class WT>
using Matrix = typename MatrixType<WT>::type;

template <class WT>
struct LayerWeights {
  Matrix<WT> wqkv;  // outputs [q | k | v]
  Matrix<WT> wo;
  Matrix<WT> w_gate_up;  // outputs [gate | up]
  Matrix<WT> w_down;
  std::vector<float> bqkv;  // [q | k | v] bias; empty when the architecture has none
  std::vector<float> input_norm, post_attention_norm;
};

template <class WT>
class Weights {
 public:
  static_assert(std::is_same_v<WT, float> || std::is_same_v<WT, bf16_t> || std::is_same_v<WT, f16_t>,
                "weights are fp32, bf16 or f16");

  Weights(const ModelConfig& c, const std::filesystem::path& model_dir)
      : file_(io::SafetensorsModel::open(model_dir)), hidden_(static_cast<std::size_t>(c.hidden_size)) {
    const auto H = c.hidden_size, V = c.vocab_size, I = c.intermediate_size;
    const auto Q = c.q_dim(), KV = c.kv_dim();
    const auto u = [](std::int64_t n) { return static_cast<std::size_t>(n); };
    lm_head = ops::PackedMatrix<WT>(u(V), u(H));
    if (c.tie_word_embeddings) {
      pack(lm_head, 0, file_.require("model.embed_tokens.weight", {V, H}));
    } else {
      embed_ = matrix(file_.require("model.embed_tokens.weight", {V, H}));
      pack(lm_head, 0, file_.require("lm_head.weight", {V, H}));
    }
    final_norm = vec(file_.require("model.norm.weight", {H}));
    layers.resize(static_cast<std::size_t>(c.num_layers));
    for (std::int64_t l = 0; l < c.num_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      auto& L = layers[static_cast<std::size_t>(l)];
      L.wqkv = ops::PackedMatrix<WT>(u(Q + 2 * KV), u(H));
      pack(L.wqkv, 0, file_.require(p + "self_attn.q_proj.weight", {Q, H}));
      pack(L.wqkv, u(Q), file_.require(p + "self_attn.k_proj.weight", {KV, H}));
      pack(L.wqkv, u(Q + KV), file_.require(p + "self_attn.v_proj.weight", {KV, H}));
      L.wo = ops::PackedMatrix<WT>(u(H), u(Q));
      pack(L.wo, 0, file_.require(p + "self_attn.o_proj.weight", {H, Q}));
      if (c.attention_bias) {
        for (const char* b : {"q_proj", "k_proj", "v_proj"}) {
          const auto v = vec(file_.require(p + "self_attn." + b + ".bias", {b[0] == 'q' ? Q : KV}));
          L.bqkv.insert(L.bqkv.end(), v.begin(), v.end());
        }
      }
      L.w_gate_up = ops::PackedMatrix<WT>(u(2 * I), u(H));
      pack(L.w_gate_up, 0, file_.require(p + "mlp.gate_proj.weight", {I, H}));
      pack(L.w_gate_up, u(I), file_.require(p + "mlp.up_proj.weight", {I, H}));
      L.w_down = ops::PackedMatrix<WT>(u(H), u(I));
      pack(L.w_down, 0, file_.require(p + "mlp.down_proj.weight", {H, I}));
      L.input_norm = vec(file_.require(p + "input_layernorm.weight", {H}));
      L.post_attention_norm = vec(file_.require(p + "post_attention_layernorm.weight", {H}));
    }
  }
  Weights(const Weights&) = delete;
  Weights& operator=(const Weights&) = delete;
  Weights(Weights&&) = default;

  ops::PackedMatrix<WT> lm_head;
  std::vector<float> final_norm;
  std::vector<LayerWeights<WT>> layers;

  // The embedding of token `id` as fp32 [hidden].
  void embed_row(std::size_t id, float* dst) const {
    if (!embed_) return lm_head.row(id, dst);
    const WT* e = embed_ + id * hidden_;
    for (std::size_t i = 0; i < hidden_; ++i) dst[i] = ops::load_scalar(e + i);
  }

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
        fail(t.file, t.name,
             "dtype " + std::string(io::dtype_name(t.dtype)) + " is not a float weight type (F32, F16, BF16)");
    }
  }

  static bool same_dtype(const io::TensorView& t) {
    return (std::is_same_v<WT, float> && t.dtype == io::DType::F32) ||
           (std::is_same_v<WT, bf16_t> && t.dtype == io::DType::BF16) ||
           (std::is_same_v<WT, f16_t> && t.dtype == io::DType::F16);
  }

  const WT* matrix(const io::TensorView& t) {
    element(t, 0);  // rejects non-float dtypes by name
    matrix_bytes_ += static_cast<std::size_t>(t.numel()) * sizeof(WT);
    const bool same = same_dtype(t);
    if (same && reinterpret_cast<std::uintptr_t>(t.data) % alignof(WT) == 0) {
      return reinterpret_cast<const WT*>(t.data);
    }
    auto& buf = owned_.emplace_back(static_cast<std::size_t>(t.numel()));
    for (std::size_t i = 0; i < buf.size(); ++i) {
      if constexpr (std::is_same_v<WT, float>) {
        buf[i] = element(t, i);
      } else if constexpr (std::is_same_v<WT, bf16_t>) {
        buf[i] = t.dtype == io::DType::BF16
                     ? bf16_t{static_cast<std::uint16_t>(t.data[2 * i] | (t.data[2 * i + 1] << 8))}
                     : to_bf16(element(t, i));
      } else {
        buf[i] = t.dtype == io::DType::F16 ? f16_t{static_cast<std::uint16_t>(t.data[2 * i] | (t.data[2 * i + 1] << 8))}
                                           : to_f16(element(t, i));
      }
    }
    return buf.data();
  }

  // Packs tensor t [rows, in] into m as outputs o0.., converting to WT through a temporary
  // when the file's dtype differs.
  void pack(ops::PackedMatrix<WT>& m, std::size_t o0, const io::TensorView& t) {
    const std::size_t rows = static_cast<std::size_t>(t.numel()) / m.in();
    const bool same = same_dtype(t);
    if (same && reinterpret_cast<std::uintptr_t>(t.data) % alignof(WT) == 0) {
      matrix_bytes_ += static_cast<std::size_t>(t.numel()) * sizeof(WT);
      m.set_rows(o0, reinterpret_cast<const WT*>(t.data), rows);
      return;
    }
    const WT* converted = matrix(t);
    m.set_rows(o0, converted, rows);
    owned_.pop_back();
  }

  std::vector<float> vec(const io::TensorView& t) {
    std::vector<float> out(static_cast<std::size_t>(t.numel()));
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = element(t, i);
    return out;
  }

  io::SafetensorsModel file_;
  std::size_t hidden_ = 0;
  const WT* embed_ = nullptr;  // untied embedding table; null when tied to lm_head
  std::deque<std::vector<WT>> owned_;
  std::size_t matrix_bytes_ = 0;
};

}  // namespace kvcanary::model
