#pragma once
// What the forward pass records for the compressors that ask (kv/policy.hpp, AttentionRecord):
// the last `rows` query rows' attention probabilities summed per (layer, query head, stored
// row) — or, when asked (`max_over_rows`, KVzip), their maximum — their post-RoPE channel energy
// Σq_c², and, when asked, their pre-RoPE moments Σq and Σqqᵀ. Kept out of the forward pass so
// that attention reads as attention.
//
// Determinism: attention runs in parallel chunks of (row, KV head) jobs. Each chunk sums (or
// maxes) the probabilities it produces into its own buffers (per request and query head, sized
// to that head's stored rows, so a batched decode step with many recording lanes allocates only
// what its jobs fill); finish_layer() combines the chunks in chunk order. The record therefore
// does not depend on thread timing, and a row's record is the same whichever batch it ran in.

#include <algorithm>
#include <cstddef>
#include <map>
#include <mutex>
#include <span>
#include <vector>

#include "kvcanary/core/model_config.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/model/segment.hpp"
#include "kvcanary/ops/thread_pool.hpp"

namespace kvcanary::model {

class AttentionRecorder {
 public:
  // Clears and shapes every requested record for this call.
  AttentionRecorder(std::span<const Segment> segments, const RowPlan& plan, const ModelConfig& c)
      : segments_(segments),
        plan_(plan),
        head_dim_(static_cast<std::size_t>(c.head_dim)),
        num_heads_(static_cast<std::size_t>(c.num_heads)),
        group_(num_heads_ / static_cast<std::size_t>(c.num_kv_heads)),
        slots_of_segment_(segments.size()) {
    const std::size_t num_layers = static_cast<std::size_t>(c.num_layers), D = head_dim_, NH = num_heads_;
    for (std::size_t s = 0; s < segments.size(); ++s) {
      for (const RecordRequest& req : segments[s].records) {
        if (!req.record) continue;
        kv::AttentionRecord& rec = *req.record;
        rec.rows = std::min(req.rows, segments[s].tokens.size());
        rec.max_over_rows = req.max_over_rows;
        rec.num_layers = num_layers;
        rec.num_heads = NH;
        rec.group = group_;
        rec.per_layer_head.assign(num_layers * NH, {});
        rec.head_dim = D;
        rec.query_sum.assign(req.query_moments ? num_layers * NH * D : 0, 0.0);
        rec.query_outer.assign(req.query_moments ? num_layers * NH * D * D : 0, 0.0);
        rec.rotated_query_energy.assign(num_layers * NH * D, 0.0);
        if (rec.rows == 0) continue;
        slots_of_segment_[s].push_back(slot_record_.size());
        slot_record_.push_back(&rec);
      }
    }
  }

  bool empty() const { return slot_record_.empty(); }

  // The recorded rows' query statistics for `layer`: Σ q_c² of the rotated queries
  // (rows, num_heads·head_dim) for every request, and Σ q, Σ q qᵀ of the unrotated ones (rows of
  // `unrotated`, `unrotated_stride` apart) for a request that asked (the upper triangle summed,
  // then mirrored). One job per (request, query head), rows summed in order; a batched decode
  // step's one-row records run inline, where handing them to the pool would cost more than the sums.
  void query_statistics(std::size_t layer, const float* unrotated, std::size_t unrotated_stride, const float* rotated,
                        ops::ThreadPool& pool) const {
    const std::size_t D = head_dim_, NH = num_heads_;
    struct Rows {
      kv::AttentionRecord* rec;
      std::size_t begin, end;
    };
    std::vector<Rows> work;
    std::size_t cost = 0;
    for (std::size_t s = 0; s < segments_.size(); ++s)
      for (const std::size_t slot : slots_of_segment_[s]) {
        kv::AttentionRecord* rec = slot_record_[slot];
        const std::size_t end = plan_.first_row[s] + segments_[s].tokens.size();
        work.push_back({rec, end - rec->rows, end});
        cost += rec->rows * NH * D * (rec->has_query_moments() ? D : 1);
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
          const float* q = &unrotated[r * unrotated_stride + h * D];
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
    if (cost >= (std::size_t{1} << 16))
      pool.parallel_for(work.size() * NH, job);
    else
      job(0, work.size() * NH);
  }

  // One parallel chunk's sums, keyed by slot · num_heads + query head.
  class Chunk {
   public:
    // Adds row r's probabilities p[0, visible) of query head h over a KV head of `stored` rows
    // to every request of r's segment that records r.
    void add(const AttentionRecorder& recorder, std::size_t r, std::size_t h, const float* p, std::size_t visible,
             std::size_t stored) {
      const BatchRow& row = recorder.plan_.rows[r];
      const std::size_t tokens = recorder.segments_[row.segment].tokens.size();
      for (const std::size_t slot : recorder.slots_of_segment_[row.segment]) {
        if (row.index + recorder.slot_record_[slot]->rows < tokens) continue;
        std::vector<float>& acc = sums_[slot * recorder.num_heads_ + h];
        acc.resize(stored, 0.0f);  // probabilities are ≥ 0, so 0 is also the max's identity
        if (recorder.slot_record_[slot]->max_over_rows)
          for (std::size_t j = 0; j < visible; ++j) acc[j] = std::max(acc[j], p[j]);
        else
          for (std::size_t j = 0; j < visible; ++j) acc[j] += p[j];
      }
    }

   private:
    friend class AttentionRecorder;
    std::map<std::size_t, std::vector<float>> sums_;
  };

  // Hands in the chunk that began at job `begin` (any thread).
  void submit(std::size_t begin, Chunk&& chunk) {
    if (chunk.sums_.empty()) return;
    std::lock_guard lock(mutex_);
    for (auto& [key, sums] : chunk.sums_) partials_[key].emplace(begin, std::move(sums));
  }

  // Writes `layer`'s probability mass into the records: the chunks' sums (or maxima) in chunk order.
  void finish_layer(std::size_t layer) {
    for (std::size_t s = 0; s < segments_.size(); ++s)
      for (const std::size_t slot : slots_of_segment_[s])
        for (std::size_t h = 0; h < num_heads_; ++h) {
          const bool max = slot_record_[slot]->max_over_rows;
          auto& mass = slot_record_[slot]->per_layer_head[layer * num_heads_ + h];
          mass.assign(segments_[s].cache->head(layer, h / group_).size(), 0.0f);
          const auto it = partials_.find(slot * num_heads_ + h);
          if (it == partials_.end()) continue;
          for (const auto& [begin, sums] : it->second)
            for (std::size_t j = 0; j < sums.size(); ++j)
              mass[j] = max ? std::max(mass[j], sums[j]) : mass[j] + sums[j];
        }
    partials_.clear();
  }

 private:
  std::span<const Segment> segments_;
  const RowPlan& plan_;
  std::size_t head_dim_, num_heads_, group_;
  std::vector<kv::AttentionRecord*> slot_record_;           // (slots): one per active request
  std::vector<std::vector<std::size_t>> slots_of_segment_;  // (segments): its slots
  std::mutex mutex_;
  // (slot · num_heads + query head) → (chunk's first job → that chunk's sums)
  std::map<std::size_t, std::map<std::size_t, std::vector<float>>> partials_;
};

}  // namespace kvcanary::model
