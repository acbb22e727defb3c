#pragma once
// The forward pass of the Llama family (Llama, Qwen2 with q/k/v biases, Mistral). forward()
// reads top to bottom as the architecture, one named call per step:
//   embed → [attention → output projection → residual + RMSNorm → SwiGLU MLP → residual +
//   RMSNorm] × layers → final RMSNorm → lm_head,
// where each "residual + RMSNorm" also computes the next block's normed input (fused, so each
// row is read once per step; add_residual_then_norm).
//
// One call runs any mix of sequences (model/segment.hpp): a prefill is one segment of many
// tokens, a batched decode step is many segments of one token each. All rows go through every
// matrix together (weights are read once per step, not once per sequence); attention is per
// segment, against that segment's own KV cache. Every per-row step runs across the pool
// (for_rows) with the same arithmetic whichever thread or batch computes a row, so batched
// decoding is bit-identical to decoding alone. What a compressor asked to see of attention is
// recorded by model/attention_recorder.hpp, outside the arithmetic.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kvcanary/core/model_config.hpp"
#include "kvcanary/kv/cache.hpp"
#include "kvcanary/model/attention_recorder.hpp"
#include "kvcanary/model/segment.hpp"
#include "kvcanary/model/stored_weights.hpp"
#include "kvcanary/model/weights.hpp"
#include "kvcanary/ops/elementwise.hpp"
#include "kvcanary/ops/dot.hpp"
#include "kvcanary/ops/matmul.hpp"
#include "kvcanary/ops/rope.hpp"
#include "kvcanary/ops/thread_pool.hpp"

namespace kvcanary::model {

template <class WT>
class Transformer {
 public:
  Transformer(ModelConfig config, const std::filesystem::path& model_dir,
              std::size_t threads = ops::ThreadPool::default_threads())
      : config_(std::move(config)), dims_(config_), weights_(config_, model_dir), rope_(config_), pool_(threads) {}

  const ModelConfig& config() const { return config_; }
  const Weights<WT>& weights() const { return weights_; }
  ops::ThreadPool& pool() { return pool_; }

  kv::KvCache new_cache() const { return kv::KvCache(dims_.num_layers, dims_.num_kv_heads, dims_.head_dim); }

  // Runs every segment's tokens, appends their K/V to the segment caches, and writes the
  // requested logits rows (segment order, then token order) to `logits` (rows, vocab_size).
  void forward(std::span<const Segment> segments, std::vector<float>& logits) {
    const RowPlan plan = plan_rows(segments, config_);
    if (plan.size() == 0) return;
    rope_.ensure(plan.max_position);
    Activations& a = activations_;
    a.fit(plan.size(), dims_);
    AttentionRecorder recorder(segments, plan, config_);

    embed_tokens(segments, plan, a);  // x = embeddings; xb = RMSNorm(x) for layer 0

    for (std::size_t l = 0; l < dims_.num_layers; ++l) {
      const LayerWeights<WT>& L = weights_.layers[l];
      // Here xb = RMSNorm(x, L.input_norm), left by the step before.
      attention(segments, plan, l, L, a, recorder);                               // xb → att
      ops::matmul(a.att.data(), plan.size(), L.wo, nullptr, a.xb.data(), pool_);  // output projection
      add_residual_then_norm(plan.size(), a, L.post_attention_norm.data());       // x += xb; xb = RMSNorm(x)
      mlp(plan.size(), L, a);                                                     // xb → xb
      add_residual_then_norm(plan.size(), a, next_input_norm(l));                 // x += xb; xb = RMSNorm(x)
    }

    for (const Segment& seg : segments) seg.cache->advance(static_cast<std::int64_t>(seg.tokens.size()));
    final_logits(segments, plan, a, logits);
  }

 private:
  // The config's dimensions as sizes, named as ModelConfig names them.
  struct Dims {
    std::size_t num_layers, hidden_size, intermediate_size, vocab_size;
    std::size_t num_heads, num_kv_heads, head_dim;
    std::size_t group;      // num_heads / num_kv_heads: query heads per KV head
    std::size_t q_width;    // num_heads · head_dim
    std::size_t kv_width;   // num_kv_heads · head_dim
    std::size_t qkv_width;  // q_width + 2 · kv_width: one row of the fused Q|K|V projection
    float rms_norm_eps;
    explicit Dims(const ModelConfig& c)
        : num_layers(static_cast<std::size_t>(c.num_layers)),
          hidden_size(static_cast<std::size_t>(c.hidden_size)),
          intermediate_size(static_cast<std::size_t>(c.intermediate_size)),
          vocab_size(static_cast<std::size_t>(c.vocab_size)),
          num_heads(static_cast<std::size_t>(c.num_heads)),
          num_kv_heads(static_cast<std::size_t>(c.num_kv_heads)),
          head_dim(static_cast<std::size_t>(c.head_dim)),
          group(num_kv_heads ? num_heads / num_kv_heads : 1),
          q_width(num_heads * head_dim),
          kv_width(num_kv_heads * head_dim),
          qkv_width(q_width + 2 * kv_width),
          rms_norm_eps(static_cast<float>(c.rms_norm_eps)) {}
  };

  // Activation buffers kept between calls: a 512-token prefill's are ~16 MB, and fresh ones
  // per call cost page faults and zeroing on the calling thread. x, xb, qkv, gu, hb only grow
  // (each call uses its first rows); q and att are sized to the call.
  struct Activations {
    std::vector<float> x;    // (rows, hidden_size): the residual stream
    std::vector<float> xb;   // (rows, hidden_size): a block's normed input, then its output
    std::vector<float> qkv;  // (rows, qkv_width): Q|K|V projections; K rotated in place
    std::vector<float> q;    // (rows, q_width): rotated queries
    std::vector<float> att;  // (rows, q_width): attention output, query heads side by side
    std::vector<float> gu;   // (rows, 2 · intermediate_size): gate | up projections
    std::vector<float> hb;   // (rows, intermediate_size): silu(gate) ⊙ up
    void fit(std::size_t rows, const Dims& d) {
      const auto grow = [](std::vector<float>& v, std::size_t n) {
        if (v.size() < n) v.resize(n);
      };
      grow(x, rows * d.hidden_size);
      grow(xb, rows * d.hidden_size);
      grow(qkv, rows * d.qkv_width);
      grow(gu, rows * 2 * d.intermediate_size);
      grow(hb, rows * d.intermediate_size);
      q.resize(rows * d.q_width);
      att.resize(rows * d.q_width);
    }
  };

  // Token embeddings into x, and layer 0's attention input norm into xb.
  void embed_tokens(std::span<const Segment> segments, const RowPlan& plan, Activations& a) {
    const std::size_t H = dims_.hidden_size;
    for_rows(plan.size(), [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r) {
        const BatchRow& row = plan.rows[r];
        weights_.embed_row(static_cast<std::size_t>(segments[row.segment].tokens[row.index]), &a.x[r * H]);
        if (dims_.num_layers > 0)
          ops::rmsnorm(&a.xb[r * H], &a.x[r * H], weights_.layers[0].input_norm.data(), H, dims_.rms_norm_eps);
      }
    });
  }

  // Self-attention of layer l, xb → att: the fused Q|K|V projection (+ biases for Qwen2), RoPE
  // at each row's position, the new K/V rows appended to each segment's cache, then scaled
  // dot-product attention against it. What the recorded rows' queries tell a policy beyond
  // attention (moments before RoPE, channel energy after) is taken between RoPE and the append.
  void attention(std::span<const Segment> segments, const RowPlan& plan, std::size_t l, const LayerWeights<WT>& L,
                 Activations& a, AttentionRecorder& recorder) {
    ops::matmul(a.xb.data(), plan.size(), L.wqkv, L.bqkv.empty() ? nullptr : L.bqkv.data(), a.qkv.data(), pool_);
    apply_rope(plan, a);
    recorder.query_statistics(l, a.qkv.data(), dims_.qkv_width, a.q.data(), pool_);
    const std::vector<std::size_t> stored_before = append_keys_values(segments, plan, l, a);
    scaled_dot_product_attention(segments, plan, stored_before, l, a, recorder);
  }

  // RoPE at each row's position: queries rotate out of qkv into q, keys rotate in place.
  void apply_rope(const RowPlan& plan, Activations& a) {
    const std::size_t Q = dims_.q_width, QKV = dims_.qkv_width;
    for_rows(plan.size(), [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r) {
        const std::int64_t position = plan.rows[r].position;
        rope_.rotate(&a.q[r * Q], &a.qkv[r * QKV], dims_.num_heads, position);
        rope_.rotate(&a.qkv[r * QKV + Q], &a.qkv[r * QKV + Q], dims_.num_kv_heads, position);
      }
    });
  }

  // Appends this call's keys and values to the caches. Returns, per (segment, KV head), the rows
  // stored before: token t of a segment then sees exactly those and its own first t + 1 (causal).
  std::vector<std::size_t> append_keys_values(std::span<const Segment> segments, const RowPlan& plan, std::size_t l,
                                              const Activations& a) {
    const std::size_t NKV = dims_.num_kv_heads, D = dims_.head_dim;
    std::vector<std::size_t> stored_before(segments.size() * NKV);
    for (std::size_t s = 0; s < segments.size(); ++s)
      for (std::size_t h = 0; h < NKV; ++h) stored_before[s * NKV + h] = segments[s].cache->head(l, h).size();
    for (std::size_t r = 0; r < plan.size(); ++r) {
      kv::KvCache& cache = *segments[plan.rows[r].segment].cache;
      const float* k = &a.qkv[r * dims_.qkv_width + dims_.q_width];
      const float* v = k + dims_.kv_width;
      for (std::size_t h = 0; h < NKV; ++h)
        cache.head(l, h).append(k + h * D, v + h * D, static_cast<std::int32_t>(plan.rows[r].position), D);
    }
    return stored_before;
  }

  // softmax(q·kᵀ / √head_dim) · v per query head, grouped-query: query head h reads KV head
  // h / group. One job per (row, KV head), so a quantized head's dequantized tile serves the
  // whole group (kv/cache.hpp). Mistral's sliding window masks keys `sliding_window` or more
  // positions back.
  void scaled_dot_product_attention(std::span<const Segment> segments, const RowPlan& plan,
                                    const std::vector<std::size_t>& stored_before, std::size_t layer, Activations& a,
                                    AttentionRecorder& recorder) {
    const std::size_t D = dims_.head_dim, NH = dims_.num_heads, NKV = dims_.num_kv_heads, group = dims_.group;
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    const std::int64_t window = config_.sliding_window;
    pool_.parallel_for(plan.size() * NKV, [&](std::size_t begin, std::size_t end) {
      std::vector<float> scores;  // (group, visible)
      AttentionRecorder::Chunk recorded;
      for (std::size_t job = begin; job < end; ++job) {
        const std::size_t r = job / NKV, kvh = job % NKV, h0 = kvh * group;
        const BatchRow& row = plan.rows[r];
        const kv::HeadStore& store = segments[row.segment].cache->head(layer, kvh);
        const std::size_t visible = stored_before[row.segment * NKV + kvh] + row.index + 1;
        scores.resize(group * visible);
        store.key_scores(&a.q[r * NH * D + h0 * D], group, D, visible, scores.data());
        for (std::size_t g = 0; g < group; ++g) {
          float* p = &scores[g * visible];
          for (std::size_t j = 0; j < visible; ++j)
            p[j] = window > 0 && row.position - store.positions[j] >= window ? -INFINITY : p[j] * scale;
          ops::softmax(p, visible);
          recorded.add(recorder, r, h0 + g, p, visible, store.size());
        }
        store.value_mix(scores.data(), group, D, visible, &a.att[r * NH * D + h0 * D]);
      }
      recorder.submit(begin, std::move(recorded));
    });
    recorder.finish_layer(layer);
  }

  // SwiGLU MLP, xb → xb: down(silu(gate · x) ⊙ (up · x)); gate and up are one fused matmul.
  void mlp(std::size_t rows, const LayerWeights<WT>& L, Activations& a) {
    const std::size_t I = dims_.intermediate_size;
    ops::matmul(a.xb.data(), rows, L.w_gate_up, nullptr, a.gu.data(), pool_);
    for_rows(rows, [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r) ops::swiglu(&a.hb[r * I], &a.gu[r * 2 * I], &a.gu[r * 2 * I + I], I);
    });
    ops::matmul(a.hb.data(), rows, L.w_down, nullptr, a.xb.data(), pool_);
  }

  // The residual x += xb, then xb = RMSNorm(x, norm), the next block's input — fused so each
  // row is read once. `norm` is nullptr after the last layer, whose x goes to final_logits.
  void add_residual_then_norm(std::size_t rows, Activations& a, const float* norm) {
    const std::size_t H = dims_.hidden_size;
    for_rows(rows, [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r) {
        float* x = &a.x[r * H];
        const float* delta = &a.xb[r * H];
        for (std::size_t i = 0; i < H; ++i) x[i] += delta[i];
        if (norm) ops::rmsnorm(&a.xb[r * H], x, norm, H, dims_.rms_norm_eps);
      }
    });
  }

  const float* next_input_norm(std::size_t l) const {
    return l + 1 < dims_.num_layers ? weights_.layers[l + 1].input_norm.data() : nullptr;
  }

  // The final RMSNorm and lm_head, on the rows whose logits were asked for:
  // logits (wanted rows, vocab_size).
  void final_logits(std::span<const Segment> segments, const RowPlan& plan, const Activations& a,
                    std::vector<float>& logits) {
    const std::size_t H = dims_.hidden_size;
    std::vector<std::size_t> wanted;
    for (std::size_t r = 0; r < plan.size(); ++r)
      if (plan.wants_logits(segments, r)) wanted.push_back(r);
    std::vector<float> normed(wanted.size() * H);  // (wanted rows, hidden_size)
    for (std::size_t w = 0; w < wanted.size(); ++w)
      ops::rmsnorm(&normed[w * H], &a.x[wanted[w] * H], weights_.final_norm.data(), H, dims_.rms_norm_eps);
    logits.resize(wanted.size() * dims_.vocab_size);
    ops::matmul(normed.data(), wanted.size(), weights_.lm_head, nullptr, logits.data(), pool_);
  }

  // Per-row work goes across the pool once there are enough rows to pay for the hand-off
  // (prefill, large batched decode); fewer run inline on the calling thread.
  static constexpr std::size_t kParallelRows = 16;
  template <class Fn>
  void for_rows(std::size_t n, const Fn& fn) {
    if (n >= kParallelRows)
      pool_.parallel_for(n, fn);
    else
      fn(0, n);
  }

  ModelConfig config_;
  Dims dims_;
  Weights<WT> weights_;
  ops::Rope rope_;
  ops::ThreadPool pool_;
  Activations activations_;
};

}  // namespace kvcanary::model
