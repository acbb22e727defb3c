#pragma once
// y = x · Wᵀ (+ b): the linear layers of the forward pass (attention's and the compressors'
// vector ops are ops/dot.hpp). W arrives [out, in] row-major as HF stores it and is packed once at
// load into panels of 16 outputs, k-major ([panel][in][16]): one broadcast of x[r, k]
// multiplies 16 contiguous weights, so
//   - a prefill tile of 6 rows × 16 outputs keeps 12 independent FMA chains busy while each
//     weight vector loaded serves 6 rows (compute-bound, near FMA peak);
//   - batch-1 decode streams 4 panels side by side (8 chains), reading weights contiguously
//     at memory bandwidth instead of waiting on one accumulator per output row.
// bf16 weights widen to fp32 in registers (a bf16 is the top half of an fp32); accumulation
// is always fp32.
//
// Batch invariance (batched decode must give bit-identical logits to unbatched decode): every
// y[r, o] is acc = fma(x[r,k], W[o,k], acc) for k = 0..in-1 from acc = 0, then + b[o] — one
// fixed order whatever tile, panel group or thread computes it. Padding outputs (out not a
// multiple of 16) are zero weights that are computed and dropped, never a separate path.
//
// ISA: the AVX2 tiles are compiled in when the build targets AVX2 (KVCANARY_NATIVE). Where the
// CPU has AVX-512 (ops/isa.hpp, capped by KVCANARY_ISA) matmul() runs AVX-512 tiles instead,
// compiled for that target whatever the build flags: one zmm holds a whole panel's 16 outputs,
// and with 32 registers a tile keeps twice the FMA chains in flight. Each output is still the
// one FMA chain over k above, so every ISA gives the same bits (tests/ops/test_matmul.cpp).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>

#include "kvcanary/core/half.hpp"
#include "kvcanary/ops/dot.hpp"
#include "kvcanary/ops/isa.hpp"
#include "kvcanary/ops/simd.hpp"
#include "kvcanary/ops/thread_pool.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KVCANARY_MATMUL_AVX512 1
#define KVCANARY_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#endif

namespace kvcanary::ops {

// A weight matrix in the panel layout above. fp32: element (o, k) sits at
// [o/16][k][o%16]. bf16: within a panel's 16 values for one k, outputs j and 8+j share the
// 32-bit lane j (j in the low half), so one 256-bit load splits into outputs 0..7 (shift)
// and 8..15 (mask) with two integer ops.
template <class WT>
class PackedMatrix {
 public:
  static_assert(std::is_same_v<WT, float> || std::is_same_v<WT, bf16_t> || std::is_same_v<WT, f16_t>,
                "packed weights are fp32, bf16 or f16");
  static constexpr std::size_t kPanel = 16;

  PackedMatrix() = default;
  PackedMatrix(std::size_t out, std::size_t in) : out_(out), in_(in), panels_((out + kPanel - 1) / kPanel) {
    const std::size_t bytes = (panels_ * in_ * kPanel * sizeof(WT) + 63) / 64 * 64;
    void* p = bytes ? std::aligned_alloc(64, bytes) : nullptr;
    if (bytes && !p) throw std::bad_alloc();
    if (p) std::memset(p, 0, bytes);  // padding outputs are zero weights
    data_.reset(static_cast<WT*>(p));
  }

  std::size_t out() const { return out_; }
  std::size_t in() const { return in_; }
  std::size_t panels() const { return panels_; }
  const WT* panel(std::size_t p) const { return data_.get() + p * in_ * kPanel; }

  // Packs n consecutive rows [n, in] as outputs o0..o0+n-1 (concatenated projections are
  // several calls on one matrix).
  void set_rows(std::size_t o0, const WT* rows, std::size_t n) {
    for (std::size_t r = 0; r < n; ++r) {
      const std::size_t o = o0 + r;
      WT* dst = data_.get() + (o / kPanel) * in_ * kPanel + lane(o % kPanel);
      const WT* src = rows + r * in_;
      for (std::size_t k = 0; k < in_; ++k) dst[k * kPanel] = src[k];
    }
  }

  float at(std::size_t o, std::size_t k) const {
    return load_scalar(data_.get() + ((o / kPanel) * in_ + k) * kPanel + lane(o % kPanel));
  }

  // Row o of W (the tied embedding table is read back this way).
  void row(std::size_t o, float* dst) const {
    const WT* src = data_.get() + (o / kPanel) * in_ * kPanel + lane(o % kPanel);
    for (std::size_t k = 0; k < in_; ++k) dst[k] = load_scalar(src + k * kPanel);
  }

 private:
  static constexpr std::size_t lane(std::size_t j) {
    if constexpr (std::is_same_v<WT, bf16_t>) return j < 8 ? 2 * j : 2 * (j - 8) + 1;
    return j;
  }
  struct Free {
    void operator()(WT* p) const { std::free(p); }
  };
  std::size_t out_ = 0, in_ = 0, panels_ = 0;
  std::unique_ptr<WT[], Free> data_;
};

namespace detail {

#if KVCANARY_AVX2
// Outputs 0..7 and 8..15 of one panel at one k.
inline void load_panel(const float* p, __m256& lo, __m256& hi) {
  lo = _mm256_load_ps(p);
  hi = _mm256_load_ps(p + 8);
}
// f16: the panel's 16 values in output order; F16C widens each half exactly.
inline void load_panel(const f16_t* p, __m256& lo, __m256& hi) {
  const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
  lo = _mm256_cvtph_ps(_mm256_castsi256_si128(v));
  hi = _mm256_cvtph_ps(_mm256_extracti128_si256(v, 1));
}
inline void load_panel(const bf16_t* p, __m256& lo, __m256& hi) {
  const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
  lo = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  hi = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
}
#endif

// MR rows × NP panels: y[r0.., panel p0..] for rows x[0..MR) (stride xs) and panels p0..p0+NP.
// `prefetch`, if set, is the panel the caller reads next: one cache line of it is requested
// per k, so it arrives from DRAM while this tile computes instead of stalling the next one.
template <int MR, int NP, class WT>
inline void tile(const float* x, std::size_t xs, const PackedMatrix<WT>& W, std::size_t p0, const float* bias, float* y,
                 std::size_t ys, const WT* prefetch = nullptr) {
  constexpr std::size_t P = PackedMatrix<WT>::kPanel;
  const std::size_t in = W.in(), out = W.out();
  const WT* w[NP];
  for (int p = 0; p < NP; ++p) w[p] = W.panel(p0 + static_cast<std::size_t>(p));
  float res[MR][NP][P];
#if KVCANARY_AVX2
  constexpr int N = MR * NP * 2;  // accumulator (r, p, half) at (r * NP + p) * 2 + half
  __m256 acc[N];
#pragma GCC unroll 16
  for (int i = 0; i < N; ++i) acc[i] = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (std::size_t k = 0; k < in; ++k) {
    if (prefetch) _mm_prefetch(reinterpret_cast<const char*>(prefetch + k * P), _MM_HINT_T0);
    __m256 wv[NP * 2];
#pragma GCC unroll 8
    for (int p = 0; p < NP; ++p) load_panel(w[p] + k * P, wv[2 * p], wv[2 * p + 1]);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 xv = _mm256_broadcast_ss(x + static_cast<std::size_t>(r) * xs + k);
#pragma GCC unroll 8
      for (int i = 0; i < NP * 2; ++i) acc[r * NP * 2 + i] = _mm256_fmadd_ps(xv, wv[i], acc[r * NP * 2 + i]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < N; ++i) _mm256_storeu_ps(&res[0][0][0] + i * 8, acc[i]);
#else
  for (int r = 0; r < MR; ++r)
    for (int p = 0; p < NP; ++p) {
      for (std::size_t j = 0; j < P; ++j) res[r][p][j] = 0.0f;
      for (std::size_t k = 0; k < in; ++k) {
        const float xv = x[static_cast<std::size_t>(r) * xs + k];
        for (std::size_t j = 0; j < P; ++j) res[r][p][j] += xv * W.at((p0 + static_cast<std::size_t>(p)) * P + j, k);
      }
    }
#endif
  for (int p = 0; p < NP; ++p) {
    const std::size_t o0 = (p0 + static_cast<std::size_t>(p)) * P, n = std::min(P, out - o0);
    for (int r = 0; r < MR; ++r) {
      float* dst = y + static_cast<std::size_t>(r) * ys + o0;
      for (std::size_t j = 0; j < n; ++j) dst[j] = res[r][p][j] + (bias ? bias[o0 + j] : 0.0f);
    }
  }
}

// Panels side by side for an MR-row tile: enough that MR × NP × 2 chains hide FMA latency
// within 12 accumulators (plus the loaded weights) of the 16 ymm registers.
constexpr int panels_for(int mr) { return mr == 1 ? 4 : mr == 2 ? 3 : mr == 3 ? 2 : 1; }

template <int MR, class WT>
inline void row_tile(const float* x, std::size_t xs, const PackedMatrix<WT>& W, std::size_t pb, std::size_t pe,
                     const float* bias, float* y, std::size_t ys) {
  constexpr std::size_t NP = panels_for(MR);
  std::size_t p = pb;
  for (; p + NP <= pe; p += NP) tile<MR, NP>(x, xs, W, p, bias, y, ys);
  if constexpr (NP >= 3) {
    if (p + 2 <= pe) {
      tile<MR, 2>(x, xs, W, p, bias, y, ys);
      p += 2;
    }
  }
  if constexpr (NP >= 2) {
    for (; p < pe; ++p) tile<MR, 1>(x, xs, W, p, bias, y, ys);
  }
}

template <class WT>
inline void rows_tile(std::size_t mr, const float* x, std::size_t xs, const PackedMatrix<WT>& W, std::size_t pb,
                      std::size_t pe, const float* bias, float* y, std::size_t ys) {
  switch (mr) {
    case 1: return row_tile<1>(x, xs, W, pb, pe, bias, y, ys);
    case 2: return row_tile<2>(x, xs, W, pb, pe, bias, y, ys);
    case 3: return row_tile<3>(x, xs, W, pb, pe, bias, y, ys);
    case 4: return row_tile<4>(x, xs, W, pb, pe, bias, y, ys);
    case 5: return row_tile<5>(x, xs, W, pb, pe, bias, y, ys);
    default: return row_tile<6>(x, xs, W, pb, pe, bias, y, ys);
  }
}

}  // namespace detail

#if KVCANARY_MATMUL_AVX512
// GCC 12's AVX-512 conversion intrinsics pass an "undefined" operand that its own
// -Wmaybe-uninitialized then reports (a false positive in the compiler's headers).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
namespace packed_avx512 {

// One panel's 16 outputs at one k, in output order, in one zmm.
KVCANARY_TARGET_AVX512 inline __m512 load_panel(const float* p) { return _mm512_load_ps(p); }
KVCANARY_TARGET_AVX512 inline __m512 load_panel(const f16_t* p) {
  return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(p)));
}
KVCANARY_TARGET_AVX512 inline __m512 load_panel(const bf16_t* p) {  // lanes j | 8+j (see PackedMatrix)
  const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i lo = _mm256_slli_epi32(v, 16),
                hi = _mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u)));
  return _mm512_castsi512_ps(_mm512_inserti64x4(_mm512_zextsi256_si512(lo), hi, 1));
}

// detail::tile with one zmm per (row, panel): MR × NP accumulators of the 32 registers.
template <int MR, int NP, class WT>
KVCANARY_TARGET_AVX512 inline void tile(const float* x, std::size_t xs, const PackedMatrix<WT>& W, std::size_t p0,
                                        const float* bias, float* y, std::size_t ys, const WT* prefetch = nullptr) {
  constexpr std::size_t P = PackedMatrix<WT>::kPanel;
  const std::size_t in = W.in(), out = W.out();
  const WT* w[NP];
  for (int p = 0; p < NP; ++p) w[p] = W.panel(p0 + static_cast<std::size_t>(p));
  __m512 acc[MR * NP];
#pragma GCC unroll 32
  for (int i = 0; i < MR * NP; ++i) acc[i] = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (std::size_t k = 0; k < in; ++k) {
    if (prefetch) _mm_prefetch(reinterpret_cast<const char*>(prefetch + k * P), _MM_HINT_T0);
    __m512 wv[NP];
#pragma GCC unroll 8
    for (int p = 0; p < NP; ++p) wv[p] = load_panel(w[p] + k * P);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512 xv = _mm512_set1_ps(x[static_cast<std::size_t>(r) * xs + k]);
#pragma GCC unroll 8
      for (int p = 0; p < NP; ++p) acc[r * NP + p] = _mm512_fmadd_ps(xv, wv[p], acc[r * NP + p]);
    }
  }
  alignas(64) float res[MR][NP][P];
#pragma GCC unroll 32
  for (int i = 0; i < MR * NP; ++i) _mm512_store_ps(&res[0][0][0] + i * 16, acc[i]);
  for (int p = 0; p < NP; ++p) {
    const std::size_t o0 = (p0 + static_cast<std::size_t>(p)) * P, n = std::min(P, out - o0);
    for (int r = 0; r < MR; ++r) {
      float* dst = y + static_cast<std::size_t>(r) * ys + o0;
      for (std::size_t j = 0; j < n; ++j) dst[j] = res[r][p][j] + (bias ? bias[o0 + j] : 0.0f);
    }
  }
}

// Panels side by side for an MR-row tile: at least 8 chains (two FMA ports × 4 cycles).
constexpr int panels_for(int mr) { return mr == 1 ? 8 : mr == 2 ? 4 : mr == 3 ? 3 : 2; }

template <int MR, class WT>
KVCANARY_TARGET_AVX512 inline void row_tile(const float* x, std::size_t xs, const PackedMatrix<WT>& W, std::size_t pb,
                                            std::size_t pe, const float* bias, float* y, std::size_t ys) {
  constexpr std::size_t NP = panels_for(MR);
  std::size_t p = pb;
  for (; p + NP <= pe; p += NP) tile<MR, NP>(x, xs, W, p, bias, y, ys);
  for (; p + 2 <= pe; p += 2) tile<MR, 2>(x, xs, W, p, bias, y, ys);
  for (; p < pe; ++p) tile<MR, 1>(x, xs, W, p, bias, y, ys);
}

template <class WT>
KVCANARY_TARGET_AVX512 inline void rows_tile(std::size_t mr, const float* x, std::size_t xs, const PackedMatrix<WT>& W,
                                             std::size_t pb, std::size_t pe, const float* bias, float* y,
                                             std::size_t ys) {
  switch (mr) {
    case 1: return row_tile<1>(x, xs, W, pb, pe, bias, y, ys);
    case 2: return row_tile<2>(x, xs, W, pb, pe, bias, y, ys);
    case 3: return row_tile<3>(x, xs, W, pb, pe, bias, y, ys);
    case 4: return row_tile<4>(x, xs, W, pb, pe, bias, y, ys);
    case 5: return row_tile<5>(x, xs, W, pb, pe, bias, y, ys);
    default: return row_tile<6>(x, xs, W, pb, pe, bias, y, ys);
  }
}

// matmul() below with these tiles: 6-row tiles over panel pairs (12 chains), each pair reused
// by every tile of a row block while it is hot, the next pair prefetched by the first tile.
template <class WT>
KVCANARY_TARGET_AVX512 inline void matmul_block(const float* x, std::size_t rows, const PackedMatrix<WT>& W,
                                                const float* bias, float* y, std::size_t pb, std::size_t pe) {
  constexpr std::size_t kTile = 6, kRowBlock = 8 * kTile;
  const std::size_t in = W.in(), out = W.out();
  for (std::size_t rb = 0; rb < rows; rb += kRowBlock) {
    const std::size_t re = std::min(rows, rb + kRowBlock), full = rb + (re - rb) / kTile * kTile;
    if (full == rb) {
      rows_tile(re - rb, x + rb * in, in, W, pb, pe, bias, y + rb * out, out);
      continue;
    }
    std::size_t p = pb;
    for (; p < pe; p += 2) {
      const std::size_t np = std::min<std::size_t>(2, pe - p);
      const WT* next = p + np < pe ? W.panel(p + np) : nullptr;
      if (np == 2) {
        tile<6, 2>(x + rb * in, in, W, p, bias, y + rb * out, out, next);
        for (std::size_t r = rb + kTile; r < full; r += kTile) tile<6, 2>(x + r * in, in, W, p, bias, y + r * out, out);
      } else {
        tile<6, 1>(x + rb * in, in, W, p, bias, y + rb * out, out, next);
        for (std::size_t r = rb + kTile; r < full; r += kTile) tile<6, 1>(x + r * in, in, W, p, bias, y + r * out, out);
      }
      if (re > full) rows_tile(re - full, x + full * in, in, W, p, p + np, bias, y + full * out, out);
    }
  }
}

}  // namespace packed_avx512
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

// y[rows, out] = x[rows, in] · Wᵀ + bias[out] (bias may be null). Threads split the panels;
// rows go in blocks whose x stays in L2, and within a block each panel is reused by every
// 6-row tile while it is hot, so a long prefill reads each weight once per block.
template <class WT>
inline void matmul(const float* x, std::size_t rows, const PackedMatrix<WT>& W, const float* bias, float* y,
                   ThreadPool& pool) {
#if KVCANARY_MATMUL_AVX512
  if (active_isa() == Isa::Avx512) {
    pool.parallel_for(
        W.panels(), [&](std::size_t pb, std::size_t pe) { packed_avx512::matmul_block(x, rows, W, bias, y, pb, pe); });
    return;
  }
#endif
  constexpr std::size_t kTile = 6, kRowBlock = 8 * kTile;
  const std::size_t in = W.in(), out = W.out();
  pool.parallel_for(W.panels(), [&](std::size_t pb, std::size_t pe) {
    for (std::size_t rb = 0; rb < rows; rb += kRowBlock) {
      const std::size_t re = std::min(rows, rb + kRowBlock), full = rb + (re - rb) / kTile * kTile;
      if (full == rb) {  // fewer rows than a tile (small-batch decode): several panels at once
        detail::rows_tile(re - rb, x + rb * in, in, W, pb, pe, bias, y + rb * out, out);
        continue;
      }
      for (std::size_t p = pb; p < pe; ++p) {
        // The first tile of a panel brings the next panel in (see detail::tile); the rest
        // reuse this one from cache.
        detail::tile<6, 1>(x + rb * in, in, W, p, bias, y + rb * out, out, p + 1 < pe ? W.panel(p + 1) : nullptr);
        for (std::size_t r = rb + kTile; r < full; r += kTile)
          detail::tile<6, 1>(x + r * in, in, W, p, bias, y + r * out, out);
        // The leftover rows reuse the panel while it is in L1 rather than streaming it again.
        if (re > full) detail::rows_tile(re - full, x + full * in, in, W, p, p + 1, bias, y + full * out, out);
      }
    }
  });
}

}  // namespace kvcanary::ops
