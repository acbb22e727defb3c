#pragma once
// y = x · Wᵀ (+ b) with W as a GGUF file stores it (Q4_K, Q6_K, Q5_0, Q8_0, Q4_0, Q4_1, ...,
// and F32): the weight precision `stored` (docs/MODELS.md). The blocks are read in place from
// the mmapped file and never dequantized to a full copy; a few rows at a time are dequantized
// into L1 and multiplied against fp32 activations, so the logits equal the dequantized-fp32
// path's up to summation order (docs/ENGINE.md).
//
// Kernels (ops/stored_kernels-inl.h) are compiled for scalar, AVX2+FMA and AVX-512 in the same
// binary and chosen at run time (ops/isa.hpp: cpuid, capped by KVCANARY_ISA). All three sum
// in one fixed order, so they give the same bits, and batched = unbatched bit for bit.
//
// A StoredMatrix is [out, in] made of one or more stored tensors stacked along `out` (q|k|v,
// gate|up), each with an optional row permutation (llama.cpp's Q/K row order, see
// io/gguf_to_hf.hpp), which the kernels apply as they read rows.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KVCANARY_STORED_X86 1
#endif

#include "kvcanary/core/half.hpp"
#include "kvcanary/io/gguf.hpp"
#include "kvcanary/io/gguf_quants.hpp"
#include "kvcanary/ops/isa.hpp"
#include "kvcanary/ops/thread_pool.hpp"

namespace kvcanary {
// The weight "type" of the stored precision, beside float, bf16_t and f16_t (model::Weights).
struct stored_t {};
}  // namespace kvcanary

#define KVC_SK_NS stored_scalar
#define KVC_SK_LEVEL 0
#include "kvcanary/ops/stored_kernels-inl.h"
#undef KVC_SK_NS
#undef KVC_SK_LEVEL

#if KVCANARY_STORED_X86
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
#define KVC_SK_NS stored_avx2
#define KVC_SK_LEVEL 1
#include "kvcanary/ops/stored_kernels-inl.h"
#undef KVC_SK_NS
#undef KVC_SK_LEVEL
#if defined(__clang__)
#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"))), \
                             apply_to = function)
#else
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#endif
#define KVC_SK_NS stored_avx512
#define KVC_SK_LEVEL 2
// GCC 12's AVX-512 conversion intrinsics pass an "undefined" operand that its own
// -Wmaybe-uninitialized then reports (a false positive in the compiler's headers).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include "kvcanary/ops/stored_kernels-inl.h"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#undef KVC_SK_NS
#undef KVC_SK_LEVEL
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

namespace kvcanary::ops {

// One stored tensor [rows, in] placed at outputs out0..out0+rows-1.
struct StoredPart {
  io::GgmlType type = io::GgmlType::F32;
  const std::uint8_t* data = nullptr;  // rows × row_bytes, in the mmapped file
  std::size_t rows = 0, row_bytes = 0, out0 = 0;
  std::vector<std::uint32_t> perm;  // output row i reads stored row perm[i]; empty: identity
};

class StoredMatrix {
 public:
  StoredMatrix() = default;
  explicit StoredMatrix(std::size_t in) : in_(in) {}

  std::size_t out() const { return out_; }
  std::size_t in() const { return in_; }
  const std::vector<StoredPart>& parts() const { return parts_; }

  // Appends `rows` rows of `type` (row i at data + i * row_bytes) as the next outputs.
  // `in` must be a whole number of the type's blocks and of 16 (the kernels' lane count).
  void append(io::GgmlType type, const std::uint8_t* data, std::size_t rows, std::vector<std::uint32_t> perm = {}) {
    const io::GgmlTypeTraits* tr = io::ggml_type_traits(static_cast<std::uint32_t>(type));
    StoredPart p;
    p.type = type;
    p.data = data;
    p.rows = rows;
    p.row_bytes = in_ / tr->block_size * tr->type_size;
    p.out0 = out_;
    p.perm = std::move(perm);
    out_ += rows;
    bytes_ += rows * p.row_bytes;
    // Work items of kChunk rows: the threads split these, each a run of one part's rows.
    for (std::size_t r = 0; r < rows; r += kChunk) chunks_.push_back({parts_.size(), r, std::min(rows, r + kChunk)});
    parts_.push_back(std::move(p));
  }

  // Row o of W as fp32 (embedding lookups).
  void row(std::size_t o, float* dst) const {
    for (const StoredPart& p : parts_) {
      if (o < p.out0 || o >= p.out0 + p.rows) continue;
      const std::size_t r = p.perm.empty() ? o - p.out0 : p.perm[o - p.out0];
      io::dequantize(p.type, {p.data + r * p.row_bytes, p.row_bytes}, {dst, in_});
      return;
    }
  }

  std::size_t bytes() const { return bytes_; }  // the stored blocks, as read per use

  struct Chunk {
    std::size_t part, r0, r1;
  };
  const std::vector<Chunk>& chunks() const { return chunks_; }

 private:
  static constexpr std::size_t kChunk = 16;
  std::size_t out_ = 0, in_ = 0, bytes_ = 0;
  std::vector<StoredPart> parts_;
  std::vector<Chunk> chunks_;
};

// The kernel entry point of one ISA.
using StoredPartFn = void (*)(const stored_scalar::PartArgs&, std::size_t, std::size_t, std::size_t, std::size_t,
                              const float*, std::size_t, const float*, float*, std::size_t);

inline StoredPartFn stored_kernel(Isa isa) {
#if KVCANARY_STORED_X86
  if (isa == Isa::Avx512)
    return [](const stored_scalar::PartArgs& p, std::size_t o0, std::size_t o1, std::size_t out0, std::size_t in,
              const float* x, std::size_t m, const float* bias, float* y, std::size_t ys) {
      stored_avx512::part_matmul({p.type, p.data, p.row_bytes, p.perm}, o0, o1, out0, in, x, m, bias, y, ys);
    };
  if (isa == Isa::Avx2)
    return [](const stored_scalar::PartArgs& p, std::size_t o0, std::size_t o1, std::size_t out0, std::size_t in,
              const float* x, std::size_t m, const float* bias, float* y, std::size_t ys) {
      stored_avx2::part_matmul({p.type, p.data, p.row_bytes, p.perm}, o0, o1, out0, in, x, m, bias, y, ys);
    };
#endif
  (void)isa;
  return &stored_scalar::part_matmul;
}

// y[rows, out] = x[rows, in] · Wᵀ + bias[out] (bias may be null), on the active ISA.
inline void matmul(const float* x, std::size_t rows, const StoredMatrix& W, const float* bias, float* y,
                   ThreadPool& pool) {
  if (rows == 0) return;
  const StoredPartFn fn = stored_kernel(active_isa());
  const auto& chunks = W.chunks();
  const auto& parts = W.parts();
  pool.parallel_for(chunks.size(), [&](std::size_t b, std::size_t e) {
    for (std::size_t c = b; c < e; ++c) {
      const StoredPart& p = parts[chunks[c].part];
      fn({p.type, p.data, p.row_bytes, p.perm.empty() ? nullptr : p.perm.data()}, chunks[c].r0, chunks[c].r1, p.out0,
         W.in(), x, rows, bias, y, W.out());
    }
  });
}

}  // namespace kvcanary::ops
