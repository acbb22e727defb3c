#pragma once
// What one forward call runs: segments (a sequence's new tokens and the cache they extend),
// and the plan that lays their tokens out as the rows every matrix multiplies together.
// A prefill is one segment of many tokens; a batched decode step is many segments of one.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/model_config.hpp"
#include "kvcanary/kv/cache.hpp"
#include "kvcanary/kv/policy.hpp"

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
  bool max_over_rows = false;  // each stored row's largest probability over the rows, not their sum (step 1c)
};

struct Segment {
  kv::KvCache* cache = nullptr;
  std::span<const std::int32_t> tokens;
  Logits logits = Logits::Last;
  // Usually one request (the segment's policy); a prefill shared by several compressors
  // records every row count they ask for in the same pass (engine/prefill_share.hpp).
  std::span<const RecordRequest> records = {};
};

// One row of the batch: a token of one segment at its RoPE position.
struct BatchRow {
  std::size_t segment;
  std::size_t index;      // token index within its segment
  std::int64_t position;  // RoPE position: the segment cache's next position + index
};

struct RowPlan {
  std::vector<BatchRow> rows;          // (rows): segment order, then token order
  std::vector<std::size_t> first_row;  // (segments): each segment's first row in `rows`
  std::int64_t max_position = 0;

  std::size_t size() const { return rows.size(); }

  // Whether row r's logits were asked for (its segment's Logits).
  bool wants_logits(std::span<const Segment> segments, std::size_t r) const {
    const Segment& seg = segments[rows[r].segment];
    return seg.logits == Logits::All || (seg.logits == Logits::Last && rows[r].index + 1 == seg.tokens.size());
  }
};

// Lays out the segments' tokens as rows, refusing a token outside the vocabulary or a sequence
// past the model's positions.
inline RowPlan plan_rows(std::span<const Segment> segments, const ModelConfig& c) {
  RowPlan plan;
  plan.first_row.resize(segments.size());
  for (std::size_t s = 0; s < segments.size(); ++s) {
    const Segment& seg = segments[s];
    plan.first_row[s] = plan.rows.size();
    const std::int64_t first = seg.cache->next_position();
    if (first + static_cast<std::int64_t>(seg.tokens.size()) > c.max_position_embeddings) {
      fail(c.source, "max_position_embeddings",
           "input of " + std::to_string(first + static_cast<std::int64_t>(seg.tokens.size())) +
               " tokens exceeds the model's position limit of " + std::to_string(c.max_position_embeddings));
    }
    for (std::size_t t = 0; t < seg.tokens.size(); ++t) {
      const std::int32_t id = seg.tokens[t];
      if (id < 0 || id >= c.vocab_size) fail("<tokens>", "token id", std::to_string(id) + " outside the vocabulary");
      plan.rows.push_back({s, t, first + static_cast<std::int64_t>(t)});
      plan.max_position = std::max(plan.max_position, plan.rows.back().position);
    }
  }
  return plan;
}

}  // namespace kvcanary::model
