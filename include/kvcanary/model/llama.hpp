#pragma once
// The forward pass of the Llama family (Llama, Qwen2 with q/k/v biases, Mistral), read top
// to bottom like llama2.c: embed → [RMSNorm → attention → residual → RMSNorm → SwiGLU MLP
// → residual] × layers → RMSNorm → lm_head.
//
// One call runs any mix of sequences: a prefill is one segment of many tokens, a batched
// decode step is many segments of one token each. All rows go through every matrix
// together (weights are read once per step, not once per sequence); attention is per
// segment, against that segment's own KV cache.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/kv/cache.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/core/model_config.hpp"
#include "kvcanary/ops/rope.hpp"
#include "kvcanary/model/stored_weights.hpp"
#include "kvcanary/model/weights.hpp"
#include "kvcanary/ops/elementwise.hpp"
#include "kvcanary/ops/matmul-inl.h"
#include "kvcanary/ops/thread_pool.hpp"

namespace kvcanary::model {

// Which rows of a segment want logits: a prefill for generation needs only the last, a
// perplexity pass needs all.
enum class Logits { Last, All, None };

// Attention recording for a compressor: the last `rows` query rows' probabilities, summed
// per layer, query head and stored row, into *record (see kv/policy.hpp).
struct RecordRequest {
  kv::AttentionRecord* record = nullptr;
  std::size_t rows = 0;
  bool query_moments = false;  // also sum the same rows' pre-RoPE queries (kv/policy.hpp, step 1b)
};

struct Segment {
  kv::KvCache* cache = nullptr;
  std::span<const std::int32_t> tokens;
  Logits logits = Logits::Last;
  // Usually one request (the segment's policy); a prefill shared by several compressors
  // records every row count they ask for in the same pass (engine/prefill_share.hpp).
  std::span<const RecordRequest> records = {};
};

template <class WT>
class Transformer {
 public:
  Transformer(ModelConfig config, const std::filesystem::path& model_dir, std::size_t threads = ops::ThreadPool::default_threads())
      : config_(std::move(config)), weights_(config_, model_dir), rope_(config_), pool_(threads) {}

  const ModelConfig& config() const { return config_; }
  const Weights<WT>& weights() const { return weights_; }
  ops::ThreadPool& pool() { return pool_; }

  kv::KvCache new_cache() const {
    return kv::KvCache(static_cast<std::size_t>(config_.num_layers), static_cast<std::size_t>(config_.num_kv_heads),
                       static_cast<std::size_t>(config_.head_dim));
  }

  // Runs every segment's tokens, appends their K/V to the segment caches, and writes the
  // requested logits rows (segment order, then token order) to `logits` [rows, vocab].
  void forward(std::span<const Segment> segments, std::vector<float>& logits) {
    const ModelConfig& c = config_;
    const std::size_t H = static_cast<std::size_t>(c.hidden_size), D = static_cast<std::size_t>(c.head_dim);
    const std::size_t NH = static_cast<std::size_t>(c.num_heads), NKV = static_cast<std::size_t>(c.num_kv_heads);
    const std::size_t Q = NH * D, KV = NKV * D, I = static_cast<std::size_t>(c.intermediate_size);
    const std::size_t V = static_cast<std::size_t>(c.vocab_size);

    // Row bookkeeping: which segment, which position, how many cache rows each sees.
    std::vector<RowInfo> rows;
    for (std::size_t s = 0; s < segments.size(); ++s) {
      const Segment& seg = segments[s];
      const std::int64_t first = seg.cache->next_position();
      if (first + static_cast<std::int64_t>(seg.tokens.size()) > c.max_position_embeddings) {
        fail(c.source, "max_position_embeddings",
             "input of " + std::to_string(first + static_cast<std::int64_t>(seg.tokens.size())) +
                 " tokens exceeds the model's position limit of " + std::to_string(c.max_position_embeddings));
      }
      for (std::size_t t = 0; t < seg.tokens.size(); ++t) {
        const std::int32_t id = seg.tokens[t];
        if (id < 0 || id >= c.vocab_size) fail("<tokens>", "token id", std::to_string(id) + " outside the vocabulary");
        rows.push_back({s, t, first + static_cast<std::int64_t>(t)});
      }
    }
    const std::size_t R = rows.size();
    if (R == 0) return;
    std::int64_t max_pos = 0;
    for (const auto& r : rows) max_pos = std::max(max_pos, r.position);
    rope_.ensure(max_pos);

    const std::size_t QKV = Q + 2 * KV;
    const float eps = static_cast<float>(c.rms_norm_eps);
    Scratch& b = scratch_;
    b.fit(R, H, QKV, I);
    float* x = b.x.data();
    float* xb = b.xb.data();
    float* qkv = b.qkv.data();
    float* hb = b.hb.data();
    float* gu = b.gu.data();
    std::vector<float>& q = b.q;  // attend() reads q and writes att as [R, NH·D]
    std::vector<float>& att = b.att;
    q.resize(R * Q);
    att.resize(R * Q);

    for (const Segment& seg : segments) {
      for (const RecordRequest& req : seg.records) {
        if (!req.record) continue;
        kv::AttentionRecord& rec = *req.record;
        rec.rows = std::min(req.rows, seg.tokens.size());
        rec.num_layers = static_cast<std::size_t>(c.num_layers);
        rec.num_heads = NH;
        rec.group = NH / NKV;
        rec.per_layer_head.assign(rec.num_layers * NH, {});
        rec.head_dim = D;
        rec.query_sum.assign(req.query_moments ? rec.num_layers * NH * D : 0, 0.0);
        rec.query_outer.assign(req.query_moments ? rec.num_layers * NH * D * D : 0, 0.0);
        rec.rotated_query_energy.assign(rec.num_layers * NH * D, 0.0);
      }
    }
    std::vector<std::size_t> first_row(segments.size(), 0);  // each segment's first row in `rows`
    for (std::size_t s = 1; s < segments.size(); ++s) first_row[s] = first_row[s - 1] + segments[s - 1].tokens.size();

    // Token embeddings, and the first layer's attention input norm.
    const std::size_t num_layers = static_cast<std::size_t>(c.num_layers);
    for_rows(R, [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r) {
        weights_.embed_row(static_cast<std::size_t>(segments[rows[r].segment].tokens[rows[r].index]), &x[r * H]);
        if (num_layers > 0) ops::rmsnorm(&xb[r * H], &x[r * H], weights_.layers[0].input_norm.data(), H, eps);
      }
    });

    // Every per-row step below runs across the pool (for_rows) and is fused with its
    // neighbours so each row is read once per step; a row's arithmetic is the same
    // whichever thread or batch computes it (batched decode stays bit-identical).
    for (std::size_t l = 0; l < num_layers; ++l) {
      const LayerWeights<WT>& L = weights_.layers[l];

      // Q, K, V projections (+ bias for Qwen2), then RoPE at each row's position: queries
      // rotate out into q, keys rotate in place and are appended from the qkv rows.
      ops::matmul(xb, R, L.wqkv, L.bqkv.empty() ? nullptr : L.bqkv.data(), qkv, pool_);
      for_rows(R, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r) {
          rope_.rotate(&q[r * Q], &qkv[r * QKV], NH, rows[r].position);
          rope_.rotate(&qkv[r * QKV + Q], &qkv[r * QKV + Q], NKV, rows[r].position);
        }
      });

      // What the recorded rows' queries tell a policy beyond attention: the moments before
      // RoPE (still in qkv) when asked, and every channel's energy after RoPE (in q).
      record_query_statistics(segments, first_row, l, qkv, QKV, q.data());

      // Append this step's keys and values; remember how many rows each head had before,
      // so token t of a segment sees exactly the rows up to and including its own (causal).
      std::vector<std::size_t> before(segments.size() * NKV);
      for (std::size_t s = 0; s < segments.size(); ++s)
        for (std::size_t h = 0; h < NKV; ++h) before[s * NKV + h] = segments[s].cache->head(l, h).size();
      for (std::size_t r = 0; r < R; ++r) {
        kv::KvCache& cache = *segments[rows[r].segment].cache;
        const float* kr = &qkv[r * QKV + Q];
        for (std::size_t h = 0; h < NKV; ++h)
          cache.head(l, h).append(kr + h * D, kr + KV + h * D, static_cast<std::int32_t>(rows[r].position), D);
      }

      // Scaled dot-product attention, grouped-query: query head h reads KV head h / group.
      attend(segments, rows, before, l, q, att);

      // Output projection, residual, and the MLP's input norm.
      ops::matmul(att.data(), R, L.wo, nullptr, xb, pool_);
      for_rows(R, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r) {
          float* xr = &x[r * H];
          const float* d = &xb[r * H];
          for (std::size_t i = 0; i < H; ++i) xr[i] += d[i];
          ops::rmsnorm(&xb[r * H], xr, L.post_attention_norm.data(), H, eps);
        }
      });

      // MLP: SwiGLU → down projection → residual, and the next layer's attention input norm.
      ops::matmul(xb, R, L.w_gate_up, nullptr, gu, pool_);
      for_rows(R, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r) ops::swiglu(&hb[r * I], &gu[r * 2 * I], &gu[r * 2 * I + I], I);
      });
      ops::matmul(hb, R, L.w_down, nullptr, xb, pool_);
      const float* next_norm = l + 1 < num_layers ? weights_.layers[l + 1].input_norm.data() : nullptr;
      for_rows(R, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r) {
          float* xr = &x[r * H];
          const float* d = &xb[r * H];
          for (std::size_t i = 0; i < H; ++i) xr[i] += d[i];
          if (next_norm) ops::rmsnorm(&xb[r * H], xr, next_norm, H, eps);
        }
      });
    }

    for (const Segment& seg : segments) seg.cache->advance(static_cast<std::int64_t>(seg.tokens.size()));

    // Final norm and lm_head, only on the rows whose logits were asked for.
    std::vector<std::size_t> wanted;
    for (std::size_t r = 0; r < R; ++r) {
      const Segment& seg = segments[rows[r].segment];
      if (seg.logits == Logits::All || (seg.logits == Logits::Last && rows[r].index + 1 == seg.tokens.size()))
        wanted.push_back(r);
    }
    std::vector<float> normed(wanted.size() * H);
    for (std::size_t w = 0; w < wanted.size(); ++w)
      ops::rmsnorm(&normed[w * H], &x[wanted[w] * H], weights_.final_norm.data(), H, static_cast<float>(c.rms_norm_eps));
    logits.resize(wanted.size() * V);
    ops::matmul(normed.data(), wanted.size(), weights_.lm_head, nullptr, logits.data(), pool_);
  }

 private:
  struct RowInfo {
    std::size_t segment;
    std::size_t index;       // token index within its segment
    std::int64_t position;   // RoPE position
  };

  // The recorded rows' query statistics (kv/policy.hpp, AttentionRecord): Σ q and Σ q qᵀ before
  // RoPE for a request that asked (step 1b; the upper triangle summed, then mirrored), and
  // Σ q_c² after RoPE for every request. One job per (request, query head), rows summed in
  // order (deterministic); a batched decode step's one-row records run inline, where handing
  // them to the pool would cost more than the sums.
  void record_query_statistics(std::span<const Segment> segments, const std::vector<std::size_t>& first_row, std::size_t layer,
                               const float* qkv, std::size_t QKV, const float* rotated) {
    const std::size_t D = static_cast<std::size_t>(config_.head_dim), NH = static_cast<std::size_t>(config_.num_heads);
    struct Rows {
      kv::AttentionRecord* rec;
      std::size_t begin, end;
    };
    std::vector<Rows> work;
    std::size_t cost = 0;
    for (std::size_t s = 0; s < segments.size(); ++s)
      for (const RecordRequest& req : segments[s].records) {
        if (!req.record || req.record->rows == 0) continue;
        const std::size_t end = first_row[s] + segments[s].tokens.size();
        work.push_back({req.record, end - req.record->rows, end});
        cost += req.record->rows * NH * D * (req.record->has_query_moments() ? D : 1);
      }
    const auto job = [&](std::size_t j0, std::size_t j1) {
      for (std::size_t j = j0; j < j1; ++j) {
        kv::AttentionRecord& rec = *work[j / NH].rec;
        const std::size_t h = j % NH, begin = work[j / NH].begin, end = work[j / NH].end;
        double* energy = &rec.rotated_query_energy[(layer * NH + h) * D];
        for (std::size_t r = begin; r < end; ++r) {
          const float* q = &rotated[r * NH * D + h * D];
          for (std::size_t c = 0; c < D; ++c) energy[c] += static_cast<double>(q[c]) * q[c];
        }
        if (!rec.has_query_moments()) continue;
        double* sum = &rec.query_sum[(layer * NH + h) * D];
        double* outer = &rec.query_outer[(layer * NH + h) * D * D];
        for (std::size_t r = begin; r < end; ++r) {
          const float* q = &qkv[r * QKV + h * D];
          for (std::size_t i = 0; i < D; ++i) {
            const double qi = q[i];
            sum[i] += qi;
            for (std::size_t k = i; k < D; ++k) outer[i * D + k] += qi * static_cast<double>(q[k]);
          }
        }
        for (std::size_t i = 0; i < D; ++i)
          for (std::size_t k = 0; k < i; ++k) outer[i * D + k] = outer[k * D + i];
      }
    };
    if (cost >= (std::size_t{1} << 16)) pool_.parallel_for(work.size() * NH, job);
    else job(0, work.size() * NH);
  }

  void attend(std::span<const Segment> segments, const std::vector<RowInfo>& rows, const std::vector<std::size_t>& before,
              std::size_t layer, const std::vector<float>& q, std::vector<float>& out) {
    const ModelConfig& c = config_;
    const std::size_t D = static_cast<std::size_t>(c.head_dim), NH = static_cast<std::size_t>(c.num_heads);
    const std::size_t NKV = static_cast<std::size_t>(c.num_kv_heads), group = NH / NKV;
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    const std::int64_t window = c.sliding_window;

    // Recording for a policy: each chunk of jobs sums the recorded rows' probabilities into its
    // own buffer per (request, head) it touches, sized to that head's rows — a batched decode
    // step with many recording lanes allocates only what its jobs fill; the partial sums are
    // then added in chunk order, so the record does not depend on thread timing.
    std::vector<kv::AttentionRecord*> slot_record;              // one slot per active request
    std::vector<std::vector<std::size_t>> seg_slots(segments.size());
    for (std::size_t s = 0; s < segments.size(); ++s) {
      for (const RecordRequest& req : segments[s].records) {
        if (!req.record || req.record->rows == 0) continue;
        seg_slots[s].push_back(slot_record.size());
        slot_record.push_back(req.record);
      }
    }
    std::mutex partial_mu;
    // (slot * NH + head) -> (chunk begin -> partial sums)
    std::map<std::size_t, std::map<std::size_t, std::vector<float>>> partials;

    // One job per (row, KV head): the group's query heads read the KV head together, so a
    // quantized head's dequantized tile serves all of them (kv/cache.hpp).
    pool_.parallel_for(rows.size() * NKV, [&](std::size_t begin, std::size_t end) {
      std::vector<float> scores;
      std::map<std::size_t, std::vector<float>> partial;  // this chunk's, by slot * NH + head
      for (std::size_t job = begin; job < end; ++job) {
        const std::size_t r = job / NKV, kvh = job % NKV, h0 = kvh * group;
        const Segment& seg = segments[rows[r].segment];
        const kv::HeadStore& store = seg.cache->head(layer, kvh);
        const std::size_t visible = before[rows[r].segment * NKV + kvh] + rows[r].index + 1;
        scores.resize(group * visible);
        store.key_scores(&q[r * NH * D + h0 * D], group, D, visible, scores.data());
        for (std::size_t g = 0; g < group; ++g) {
          float* p = &scores[g * visible];
          for (std::size_t j = 0; j < visible; ++j) {
            // Sliding window (Mistral): a query sees keys less than `window` positions back.
            p[j] = window > 0 && rows[r].position - store.positions[j] >= window ? -INFINITY : p[j] * scale;
          }
          ops::softmax(p, visible);
          for (const std::size_t slot : seg_slots[rows[r].segment]) {
            if (rows[r].index + slot_record[slot]->rows < seg.tokens.size()) continue;
            std::vector<float>& acc = partial[slot * NH + h0 + g];
            acc.resize(store.size(), 0.0f);
            for (std::size_t j = 0; j < visible; ++j) acc[j] += p[j];
          }
        }
        store.value_mix(scores.data(), group, D, visible, &out[r * NH * D + h0 * D]);
      }
      if (!partial.empty()) {
        std::lock_guard lk(partial_mu);
        for (auto& [key, sums] : partial) partials[key].emplace(begin, std::move(sums));
      }
    });

    for (std::size_t s = 0; s < segments.size(); ++s) {
      for (const std::size_t slot : seg_slots[s]) {
        for (std::size_t h = 0; h < NH; ++h) {
          auto& mass = slot_record[slot]->per_layer_head[layer * NH + h];
          mass.assign(segments[s].cache->head(layer, h / group).size(), 0.0f);
          const auto it = partials.find(slot * NH + h);
          if (it == partials.end()) continue;
          for (const auto& [begin, sums] : it->second)
            for (std::size_t j = 0; j < sums.size(); ++j) mass[j] += sums[j];
        }
      }
    }
  }

  // Per-row work goes across the pool once there are enough rows to pay for the hand-off
  // (prefill, large batched decode); fewer run inline on the calling thread.
  static constexpr std::size_t kParallelRows = 16;
  template <class Fn>
  void for_rows(std::size_t n, const Fn& fn) {
    if (n >= kParallelRows) pool_.parallel_for(n, fn);
    else fn(0, n);
  }

  // Activation buffers kept between calls: a 512-token prefill's are ~16 MB, and fresh ones
  // per call cost page faults and zeroing on the calling thread. They only grow; each
  // call uses the first R rows.
  struct Scratch {
    std::vector<float> x, xb, qkv, hb, gu, q, att;
    void fit(std::size_t R, std::size_t H, std::size_t QKV, std::size_t I) {
      const auto grow = [](std::vector<float>& v, std::size_t n) {
        if (v.size() < n) v.resize(n);
      };
      grow(x, R * H);
      grow(xb, R * H);
      grow(qkv, R * QKV);
      grow(hb, R * I);
      grow(gu, R * 2 * I);
    }
  };

  ModelConfig config_;
  Weights<WT> weights_;
  ops::Rope rope_;
  ops::ThreadPool pool_;
  Scratch scratch_;
};

}  // namespace kvcanary::model
