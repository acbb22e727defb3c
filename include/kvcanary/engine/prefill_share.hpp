#pragma once
// One prefill per prompt for all the compressors of a sweep.
//
// Why this is exact, not an approximation: the forward pass attends with a step's own K/V at
// full precision and a policy acts only after the step (kv/policy.hpp, rules 2–3). So what a
// prompt's prefill leaves behind — the K/V it stores, the last row's logits, the attention
// probabilities — is the same whatever policy compresses it next; policies differ only in how
// many of the last query rows they want summed (SnapKV's observation window, H2O's every row,
// TOVA's last, none for norms and quantizers). One pass that records every row count the
// sweep's policies ask for leaves an uncompressed cache that each policy copies and compresses
// as if it had run the prefill itself: bit-identical rows (tests/engine/test_prefill_share.cpp),
// one prefill per prompt instead of one per compressor.
//
// A sweep with a policy that wants query moments (kv/policy.hpp, step 1b: Expected Attention)
// builds its share with `query_moments`: every record then carries them, the extra cost
// (d² per recorded row and query head) paid only by such sweeps.
//
// Entries live until clear() (the sweep clears between tasks) while they fit in `byte_limit`;
// a prompt that does not fit is still served, only not kept.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <vector>

#include "kvcanary/kv/cache.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/model/llama.hpp"

namespace kvcanary::engine {

class PrefillShare {
 public:
  // The row counts the sweep's policies will ask for after a prefill of n tokens
  // (CachePolicy::attention_rows(StepKind::Prefill, n)); zeros are ignored.
  using RowsWanted = std::function<std::vector<std::size_t>(std::size_t n_tokens)>;

  struct Entry {
    kv::KvCache cache;                                   // after the prefill, before any policy
    std::vector<float> logits;                           // the last prompt row's
    std::map<std::size_t, kv::AttentionRecord> records;  // by the row count asked for
    double seconds = 0;                                  // what the shared pass took
    std::size_t bytes = 0;
  };

  explicit PrefillShare(RowsWanted rows_wanted, std::size_t byte_limit = std::size_t{2} << 30,
                        bool query_moments = false)
      : rows_wanted_(std::move(rows_wanted)), byte_limit_(byte_limit), query_moments_(query_moments) {}

  // The prefill of `prompt` with a record of `rows` query rows (0: none) among its records.
  // Runs the forward pass only when no kept entry has both.
  template <class WT>
  std::shared_ptr<const Entry> get(model::Transformer<WT>& model, std::span<const std::int32_t> prompt,
                                   std::size_t rows) {
    std::vector<std::int32_t> key(prompt.begin(), prompt.end());
    auto it = entries_.find(key);
    if (it != entries_.end() && (rows == 0 || it->second->records.count(rows))) {
      ++hits_;
      return it->second;
    }
    ++misses_;
    std::set<std::size_t> wanted;
    for (std::size_t r : rows_wanted_ ? rows_wanted_(prompt.size()) : std::vector<std::size_t>{})
      if (r) wanted.insert(r);
    if (rows) wanted.insert(rows);
    if (it != entries_.end())
      for (const auto& [r, rec] : it->second->records) wanted.insert(r);

    auto entry = std::make_shared<Entry>(Entry{model.new_cache(), {}, {}, 0, 0});
    std::vector<model::RecordRequest> requests;
    for (std::size_t r : wanted) requests.push_back({&entry->records[r], r, query_moments_});
    const model::Segment seg{&entry->cache, prompt, model::Logits::Last, requests};
    const auto t0 = std::chrono::steady_clock::now();
    model.forward(std::span<const model::Segment>(&seg, 1), entry->logits);
    entry->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    entry->bytes = bytes_of(*entry);

    if (it != entries_.end()) {
      kept_bytes_ -= it->second->bytes;
      entries_.erase(it);
    }
    if (kept_bytes_ + entry->bytes <= byte_limit_) {
      kept_bytes_ += entry->bytes;
      entries_.emplace(std::move(key), entry);
    }
    return entry;
  }

  void clear() {
    entries_.clear();
    kept_bytes_ = 0;
  }

  std::size_t hits() const { return hits_; }
  std::size_t misses() const { return misses_; }
  std::size_t kept_bytes() const { return kept_bytes_; }

 private:
  static std::size_t bytes_of(const Entry& e) {
    std::size_t n = e.logits.size() * sizeof(float) + e.cache.resident_bytes();
    for (const auto& [r, rec] : e.records) {
      for (const auto& m : rec.per_layer_head) n += m.size() * sizeof(float);
      n += (rec.query_sum.size() + rec.query_outer.size() + rec.rotated_query_energy.size()) * sizeof(double);
    }
    return n;
  }

  RowsWanted rows_wanted_;
  std::size_t byte_limit_;
  bool query_moments_;
  std::map<std::vector<std::int32_t>, std::shared_ptr<Entry>> entries_;
  std::size_t kept_bytes_ = 0, hits_ = 0, misses_ = 0;
};

}  // namespace kvcanary::engine
