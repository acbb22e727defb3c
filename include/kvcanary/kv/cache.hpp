#pragma once
// The KV cache of one sequence, stored per layer and per KV head so that a compressor can
// reshape each head independently: evict rows (SnapKV and H2O select per head), rewrite
// their contents (quantization), or change the position a key is rotated to (StreamingLLM
// places kept keys at contiguous cache positions).
//
// Invariant: within a head, rows are in the order they were appended, and every row carries
// the position its key was rotated to. Attention never assumes row index == position.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace kvcanary::kv {

struct HeadStore {
  std::vector<float> keys;     // [rows, head_dim], post-RoPE
  std::vector<float> values;   // [rows, head_dim]
  std::vector<std::int32_t> positions;  // [rows]

  std::size_t size() const { return positions.size(); }

  void append(const float* k, const float* v, std::int32_t pos, std::size_t head_dim) {
    keys.insert(keys.end(), k, k + head_dim);
    values.insert(values.end(), v, v + head_dim);
    positions.push_back(pos);
  }

  // Keep only `rows` (ascending row indices), preserving their order.
  void keep(std::span<const std::size_t> rows, std::size_t head_dim) {
    std::size_t dst = 0;
    for (std::size_t r : rows) {
      if (r != dst) {
        std::copy_n(keys.begin() + static_cast<std::ptrdiff_t>(r * head_dim), head_dim,
                    keys.begin() + static_cast<std::ptrdiff_t>(dst * head_dim));
        std::copy_n(values.begin() + static_cast<std::ptrdiff_t>(r * head_dim), head_dim,
                    values.begin() + static_cast<std::ptrdiff_t>(dst * head_dim));
        positions[dst] = positions[r];
      }
      ++dst;
    }
    keys.resize(dst * head_dim);
    values.resize(dst * head_dim);
    positions.resize(dst);
  }
};

class KvCache {
 public:
  KvCache(std::size_t layers, std::size_t kv_heads, std::size_t head_dim)
      : layers_(layers), kv_heads_(kv_heads), head_dim_(head_dim), heads_(layers * kv_heads) {}

  HeadStore& head(std::size_t layer, std::size_t kv_head) { return heads_[layer * kv_heads_ + kv_head]; }
  const HeadStore& head(std::size_t layer, std::size_t kv_head) const { return heads_[layer * kv_heads_ + kv_head]; }

  std::size_t layers() const { return layers_; }
  std::size_t kv_heads() const { return kv_heads_; }
  std::size_t head_dim() const { return head_dim_; }

  // Tokens of the sequence processed so far (evicted or not).
  std::int64_t tokens_seen() const { return tokens_seen_; }
  // The RoPE position the next token is given. Without compression it is its index in the
  // text; a policy that re-positions (StreamingLLM) changes this.
  std::int64_t next_position() const { return next_position_; }
  void advance(std::int64_t n) {
    tokens_seen_ += n;
    next_position_ += n;
  }
  void set_next_position(std::int64_t p) { next_position_ = p; }

  // Rows stored across all heads and layers (the eviction budget's unit).
  std::size_t stored_rows() const {
    std::size_t n = 0;
    for (const auto& h : heads_) n += h.size();
    return n;
  }

  void clear() {
    for (auto& h : heads_) h = HeadStore{};
    tokens_seen_ = next_position_ = 0;
  }

 private:
  std::size_t layers_, kv_heads_, head_dim_;
  std::vector<HeadStore> heads_;
  std::int64_t tokens_seen_ = 0;
  std::int64_t next_position_ = 0;
};

}  // namespace kvcanary::kv
