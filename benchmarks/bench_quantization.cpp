// Throughput of the quantizing policies on one thread, in GB/s of fp32 K/V input, on a cache
// of SmolLM2-135M's shape (30 layers × 3 KV heads × head_dim 64) holding 512 tokens:
//   Quantize   — one after_step over the whole cache: statistics, codes, packing, and moving
//                the rows out of the fp32 store (what a prefill costs the policy);
//   Dequantize — the packed rows back to fp32 (kv::PackedRows::dequantize, the tile kernel
//                attention reads through);
//   Attend     — one decode query per query head (9, GQA groups of 3) against every head of
//                the cache: q·k, softmax, p·V through HeadStore::key_scores/value_mix, on the
//                packed cache and on the same cache unquantized (`full`): what reading packed
//                rows costs attention; `resident_MB` is what the process holds for the cache.
// Bytes counted are the fp32 bytes of the rows quantized (KIVI leaves its R = 128 most
// recent values, and no keys here since 512 is a multiple of R, in full precision). For
// scale: one core reads ~10 GiB/s (bench_machine).
//
// The deployed cache types (kv/cache_type_quant.hpp) run as BM_*<CacheTypeQuant>/i with i the
// index in kv::kCacheTypes, labelled with the type's name (q8_0 … mxfp4; per-tensor scale 1).

#include <benchmark/benchmark.h>

#include <random>
#include <type_traits>
#include <vector>

#include "kvcanary/kv/absmax.hpp"
#include "kvcanary/kv/cache_type_quant.hpp"
#include "kvcanary/kv/full.hpp"
#include "kvcanary/kv/kivi.hpp"
#include "kvcanary/ops/elementwise.hpp"

namespace {

using namespace kvcanary;

constexpr std::size_t kLayers = 30, kHeads = 3, kDim = 64, kTokens = 512;

const kv::KvCache& synthetic() {
  static const kv::KvCache c = [] {
    kv::KvCache cache(kLayers, kHeads, kDim);
    std::mt19937 rng(1);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> k(kDim), v(kDim);
    for (std::size_t t = 0; t < kTokens; ++t) {
      for (std::size_t l = 0; l < kLayers; ++l)
        for (std::size_t h = 0; h < kHeads; ++h) {
          // Post-RoPE keys have a few large channels; values are plain.
          for (std::size_t i = 0; i < kDim; ++i) k[i] = d(rng) * (i % 16 == 3 ? 8.0f : 1.0f);
          for (auto& x : v) x = d(rng);
          cache.head(l, h).append(k.data(), v.data(), static_cast<std::int32_t>(t), kDim);
        }
      cache.advance(1);
    }
    return cache;
  }();
  return c;
}

// The benchmark's argument: bits (absmax, kivi) or the index of a cache type.
template <class P>
P make(unsigned arg) {
  if constexpr (std::is_same_v<P, kv::CacheTypeQuant>)
    return kv::CacheTypeQuant::create(kv::kCacheTypes[arg].name, kv::PolicyOptions(1.0, kv::Mode::Decode),
                                      ModelConfig{});
  else
    return P::create(kv::PolicyOptions(1.0, kv::Mode::Decode, {{"bits", std::to_string(arg)}}), ModelConfig{});
}

template <class P>
void label(benchmark::State& state) {
  if constexpr (std::is_same_v<P, kv::CacheTypeQuant>)
    state.SetLabel(std::string(kv::kCacheTypes[state.range(0)].name));
}

std::size_t quantized_values(const kv::KvCache& c) {
  std::size_t n = 0;
  for (std::size_t l = 0; l < kLayers; ++l)
    for (std::size_t h = 0; h < kHeads; ++h)
      n += (c.head(l, h).packed_keys.rows + c.head(l, h).packed_values.rows) * kDim;
  return n;
}

template <class P>
void BM_Quantize(benchmark::State& state) {
  const unsigned bits = static_cast<unsigned>(state.range(0));
  label<P>(state);
  std::size_t values = 0;
  // Copy-assigned while the clock is paused, so the timed region neither faults in fresh
  // pages nor unmaps freed ones: it measures the kernels, not the allocator.
  kv::KvCache cache = synthetic();
  P p = make<P>(bits);
  for (auto _ : state) {
    state.PauseTiming();
    cache = synthetic();
    p = make<P>(bits);
    state.ResumeTiming();
    p.after_step(cache, {}, kv::StepKind::Prefill);
    benchmark::DoNotOptimize(cache.head(0, 0).keys.data());
    values = quantized_values(cache);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * values * sizeof(float)));
}

template <class P>
void BM_Dequantize(benchmark::State& state) {
  const unsigned bits = static_cast<unsigned>(state.range(0));
  label<P>(state);
  kv::KvCache cache = synthetic();
  P p = make<P>(bits);
  p.after_step(cache, {}, kv::StepKind::Prefill);
  std::vector<float> out(kTokens * kDim);
  for (auto _ : state) {
    for (std::size_t l = 0; l < kLayers; ++l)
      for (std::size_t h = 0; h < kHeads; ++h) {
        const kv::HeadStore& s = cache.head(l, h);
        s.packed_keys.dequantize(0, s.packed_keys.rows, kDim, out.data());
        benchmark::DoNotOptimize(out.data());
        s.packed_values.dequantize(0, s.packed_values.rows, kDim, out.data());
        benchmark::DoNotOptimize(out.data());
      }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * quantized_values(cache) * sizeof(float)));
}

// Bytes counted: the fp32 size of every K and V row attended (what a full-precision cache reads).
template <class P>
void BM_Attend(benchmark::State& state) {
  kv::KvCache cache = synthetic();
  label<P>(state);
  if constexpr (!std::is_same_v<P, kv::FullCache>) {
    P p = make<P>(static_cast<unsigned>(state.range(0)));
    p.after_step(cache, {}, kv::StepKind::Prefill);
  }
  constexpr std::size_t kGroup = 3;
  std::vector<float> q(kGroup * kDim), scores(kGroup * kTokens), out(kGroup * kDim);
  std::mt19937 rng(2);
  std::normal_distribution<float> d(0.0f, 0.1f);
  for (auto& x : q) x = d(rng);
  // The row count as the engine sees it, a run-time value (a constant lets GCC 12 misread
  // the kernels' tail loops and warn).
  std::size_t rows = kTokens;
  benchmark::DoNotOptimize(rows);
  for (auto _ : state) {
    for (std::size_t l = 0; l < kLayers; ++l)
      for (std::size_t h = 0; h < kHeads; ++h) {
        const kv::HeadStore& s = cache.head(l, h);
        s.key_scores(q.data(), kGroup, kDim, kTokens, scores.data());
        for (std::size_t g = 0; g < kGroup; ++g) ops::softmax(&scores[g * kTokens], rows);
        s.value_mix(scores.data(), kGroup, kDim, kTokens, out.data());
        benchmark::DoNotOptimize(out.data());
      }
  }
  state.SetBytesProcessed(
      static_cast<std::int64_t>(state.iterations() * kLayers * kHeads * kTokens * 2 * kDim * sizeof(float)));
  state.counters["resident_MB"] =
      static_cast<double>(cache.resident_bytes()) / 1e6;  // what the process holds for this cache
}

BENCHMARK(BM_Quantize<kv::AbsmaxQuant>)->Arg(8)->Arg(4)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Quantize<kv::KiviQuant>)->Arg(8)->Arg(4)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Dequantize<kv::AbsmaxQuant>)->Arg(8)->Arg(4)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Dequantize<kv::KiviQuant>)->Arg(8)->Arg(4)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Attend<kv::FullCache>)->Name("BM_Attend<full>")->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Attend<kv::AbsmaxQuant>)->Arg(8)->Arg(4)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Attend<kv::KiviQuant>)->Arg(8)->Arg(4)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Quantize<kv::CacheTypeQuant>)->DenseRange(0, 9)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Dequantize<kv::CacheTypeQuant>)->DenseRange(0, 9)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Attend<kv::CacheTypeQuant>)->DenseRange(0, 9)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
