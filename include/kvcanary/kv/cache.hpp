#pragma once
// The KV cache of one sequence, stored per layer and per KV head so that a compressor can
// reshape each head independently: evict rows (SnapKV and H2O select per head), quantize
// them (the leading rows move into packed codes), or change the position a key is rotated to
// (StreamingLLM places kept keys at contiguous cache positions).
//
// Invariants: within a head, rows are in the order they were appended, and every row carries
// the position its key was rotated to; attention never assumes row index == position. Keys
// [0, packed_keys.rows) live packed (kv/packed_rows.hpp) and `keys` holds the rest in fp32
// (likewise values, with their own count: KIVI's key and value residuals differ). Eviction
// keeps rows of either kind (a packed row leaves with its codes; refused where rows share a
// quantization group: KIVI keys); re-rotation works on fp32 rows only.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/kv/packed_rows.hpp"
#include "kvcanary/ops/dot.hpp"

namespace kvcanary::kv {

struct HeadStore {
  std::vector<float> keys;              // rows [packed_keys.rows, size()) × head_dim, post-RoPE
  std::vector<float> values;            // rows [packed_values.rows, size()) × head_dim
  std::vector<std::int32_t> positions;  // [rows]
  PackedRows packed_keys, packed_values;

  std::size_t size() const { return positions.size(); }
  bool has_packed_rows() const { return packed_keys.rows > 0 || packed_values.rows > 0; }

  void append(const float* k, const float* v, std::int32_t pos, std::size_t head_dim) {
    keys.insert(keys.end(), k, k + head_dim);
    values.insert(values.end(), v, v + head_dim);
    positions.push_back(pos);
  }

  // Re-rotation rewrites fp32 key rows in place; a quantized key has none to rewrite.
  void require_unpacked(const char* who) const {
    if (packed_keys.rows > 0)
      fail("<kv cache>", "rows",
           std::string(who) + " cannot re-rotate quantized keys (compose it in prompt mode, or without a quantizer)");
  }

  // Keep only `rows` (ascending row indices), preserving their order. Packed rows keep their
  // codes (PackedRows::keep refuses layouts whose rows share a group).
  void keep(std::span<const std::size_t> rows, std::size_t head_dim) {
    // Refuse before anything moves.
    const auto packed_in = [&](const PackedRows& p) {
      return static_cast<std::size_t>(std::lower_bound(rows.begin(), rows.end(), p.rows) - rows.begin());
    };
    packed_keys.require_can_keep(packed_in(packed_keys));
    packed_values.require_can_keep(packed_in(packed_values));
    keep_tensor(keys, packed_keys, rows, head_dim);
    keep_tensor(values, packed_values, rows, head_dim);
    std::size_t dst = 0;
    for (std::size_t r : rows) positions[dst++] = positions[r];
    positions.resize(dst);
  }

  // A quantizer packed the first n fp32 key (value) rows: they leave the fp32 store.
  void retire_float_keys(std::size_t n, std::size_t head_dim) { retire(keys, n, head_dim); }
  void retire_float_values(std::size_t n, std::size_t head_dim) { retire(values, n, head_dim); }

  // Every key (value) row as fp32, packed ones dequantized: for tests and inspection — the
  // forward pass never builds this.
  std::vector<float> materialize_keys(std::size_t head_dim) const { return materialize(packed_keys, keys, head_dim); }
  std::vector<float> materialize_values(std::size_t head_dim) const {
    return materialize(packed_values, values, head_dim);
  }

  // Attention's reads. `nq` query heads share this KV head (GQA); q is [nq, D] and the
  // scores come out [nq, count] for rows [0, count). Packed rows are dequantized a tile at a
  // time into per-thread scratch and each tile serves all nq queries; every score is
  // ops::dot of the row's x̂ with q, bit for bit what a cache holding x̂ in fp32 gives.
  void key_scores(const float* q, std::size_t nq, std::size_t D, std::size_t count, float* scores) const {
    const std::size_t packed = std::min(packed_keys.rows, count);
    for_each_tile(packed_keys, packed, D, [&](std::size_t t0, std::size_t n, const float* tile) {
      for (std::size_t g = 0; g < nq; ++g) ops::dot_rows(tile, q + g * D, D, n, scores + g * count + t0);
    });
    if (count > packed)
      for (std::size_t g = 0; g < nq; ++g)
        ops::dot_rows(keys.data(), q + g * D, D, count - packed, scores + g * count + packed);
  }

  // out [nq, D] = p [nq, count] · V over rows [0, count): one FMA chain per element in row
  // order (ops::weighted_sum_add), whether a row is read from a tile or from fp32.
  void value_mix(const float* p, std::size_t nq, std::size_t D, std::size_t count, float* out) const {
    std::fill(out, out + nq * D, 0.0f);
    const std::size_t packed = std::min(packed_values.rows, count);
    for_each_tile(packed_values, packed, D, [&](std::size_t t0, std::size_t n, const float* tile) {
      for (std::size_t g = 0; g < nq; ++g) ops::weighted_sum_add(out + g * D, p + g * count + t0, tile, D, n);
    });
    if (count > packed)
      for (std::size_t g = 0; g < nq; ++g)
        ops::weighted_sum_add(out + g * D, p + g * count + packed, values.data(), D, count - packed);
  }

 private:
  // 8192 fp32 = 32 KiB of scratch: 32 rows at head_dim 64 (8 KiB used) up to 16 rows at the
  // packed store's largest head_dim; the tile stays in L1 while the group's queries read it.
  static constexpr std::size_t kTileFloats = 8192, kTileRows = 32;

  // fn(first row, rows, x̂ of those rows) over packed rows [0, count), a tile at a time, in
  // row order.
  template <class Fn>
  static void for_each_tile(const PackedRows& packed, std::size_t count, std::size_t D, Fn&& fn) {
    if (count == 0) return;
    alignas(64) float tile[kTileFloats];
    const std::size_t rows_per_tile = std::max<std::size_t>(1, std::min(kTileRows, kTileFloats / D));
    if (D > kTileFloats) fail("<kv cache>", "head_dim", "too large for packed rows");
    for (std::size_t t0 = 0; t0 < count; t0 += rows_per_tile) {
      const std::size_t n = std::min(rows_per_tile, count - t0);
      packed.dequantize(t0, n, D, tile);
      fn(t0, n, static_cast<const float*>(tile));
    }
  }

  static void keep_tensor(std::vector<float>& fp32, PackedRows& packed, std::span<const std::size_t> rows,
                          std::size_t D) {
    std::vector<std::size_t> packed_kept;
    std::size_t dst = 0;
    for (std::size_t r : rows) {
      if (r < packed.rows) {
        packed_kept.push_back(r);
        continue;
      }
      const std::size_t src = r - packed.rows;
      if (src != dst)
        std::copy_n(fp32.begin() + static_cast<std::ptrdiff_t>(src * D), D,
                    fp32.begin() + static_cast<std::ptrdiff_t>(dst * D));
      ++dst;
    }
    if (packed.rows) packed.keep(packed_kept, D);
    fp32.resize(dst * D);
  }

  void retire(std::vector<float>& rows, std::size_t n, std::size_t head_dim) {
    rows.erase(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(n * head_dim));
  }

  std::vector<float> materialize(const PackedRows& packed, const std::vector<float>& rest, std::size_t head_dim) const {
    std::vector<float> out(size() * head_dim);
    if (packed.rows) packed.dequantize(0, packed.rows, head_dim, out.data());
    std::copy(rest.begin(), rest.end(), out.begin() + static_cast<std::ptrdiff_t>(packed.rows * head_dim));
    return out;
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

  // Bytes this process holds for the cache: fp32 rows, packed codes and pairs, positions.
  std::size_t resident_bytes() const {
    std::size_t n = 0;
    for (const auto& h : heads_)
      n += (h.keys.size() + h.values.size()) * sizeof(float) + h.positions.size() * sizeof(std::int32_t) +
           h.packed_keys.bytes() + h.packed_values.bytes();
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
