// Throughput of the quantizing policies on one thread, in GB/s of fp32 K/V input, on a cache
// of SmolLM2-135M's shape (30 layers × 3 KV heads × head_dim 64) holding 512 tokens:
//   Quantize   — one after_step over the whole cache: statistics, codes, packing, and the
//                dequantized write-back into the cache rows (what a prefill costs the policy);
//   Dequantize — the packed state back to fp32 rows (what a dequantize-on-read kernel reads).
// Bytes counted are the fp32 bytes of the rows quantized (KIVI leaves its R = 128 most
// recent values, and no keys here since 512 is a multiple of R, in full precision). For
// scale: one core reads ~10 GiB/s (bench_machine).

#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kvcanary/kv/absmax.hpp"
#include "kvcanary/kv/kivi.hpp"

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

template <class P>
P make(unsigned bits) {
  return P::create(kv::PolicyOptions(1.0, kv::Mode::Decode, {{"bits", std::to_string(bits)}}), model::Config{});
}

std::size_t quantized_values(const kv::AbsmaxQuant& p) {
  std::size_t n = 0;
  for (const auto& h : p.heads) n += 2 * h.rows * kDim;
  return n;
}
std::size_t quantized_values(const kv::KiviQuant& p) {
  std::size_t n = 0;
  for (const auto& h : p.heads) n += (h.k_rows + h.v_rows) * kDim;
  return n;
}

template <class P>
void BM_Quantize(benchmark::State& state) {
  const unsigned bits = static_cast<unsigned>(state.range(0));
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
    values = quantized_values(p);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * values * sizeof(float)));
}

template <class P>
void BM_Dequantize(benchmark::State& state) {
  const unsigned bits = static_cast<unsigned>(state.range(0));
  kv::KvCache cache = synthetic();
  P p = make<P>(bits);
  p.after_step(cache, {}, kv::StepKind::Prefill);
  std::vector<float> keys(kTokens * kDim), values(kTokens * kDim);
  for (auto _ : state) {
    for (std::size_t l = 0; l < kLayers; ++l)
      for (std::size_t h = 0; h < kHeads; ++h) p.dequantize(l, h, kHeads, kDim, keys.data(), values.data());
    benchmark::DoNotOptimize(keys.data());
    benchmark::DoNotOptimize(values.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * quantized_values(p) * sizeof(float)));
}

BENCHMARK(BM_Quantize<kv::AbsmaxQuant>)->Arg(8)->Arg(4)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Quantize<kv::KiviQuant>)->Arg(8)->Arg(4)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Dequantize<kv::AbsmaxQuant>)->Arg(8)->Arg(4)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Dequantize<kv::KiviQuant>)->Arg(8)->Arg(4)->Arg(2)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
