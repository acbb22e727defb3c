// This machine's limits, as the scale for every other figure: sustained read bandwidth
// (what bounds batch-1 decode: every weight byte is read once per token) and fp32 FMA
// peak (what bounds prefill). Both use all cores through the project's thread pool.

#include <benchmark/benchmark.h>

#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "kvcanary/ops/thread_pool.hpp"

namespace {

// Sum of a 1 GiB buffer (far larger than any cache), 8 independent AVX2 accumulators.
void BM_ReadBandwidth(benchmark::State& state) {
  const std::size_t n = std::size_t{1} << 28;  // floats = 1 GiB
  std::vector<float> buf(n, 1.0f);
  const std::size_t threads = static_cast<std::size_t>(state.range(0));
  kvcanary::ops::ThreadPool local(threads);
  for (auto _ : state) {
    std::vector<float> partial(threads * 16, 0.0f);
    local.parallel_for(threads, [&](std::size_t b, std::size_t e) {
      for (std::size_t t = b; t < e; ++t) {
        const std::size_t lo = n / threads * t, hi = n / threads * (t + 1);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (std::size_t i = lo; i < hi; i += 32) {
          a0 = _mm256_add_ps(a0, _mm256_load_ps(&buf[i]));
          a1 = _mm256_add_ps(a1, _mm256_load_ps(&buf[i + 8]));
          a2 = _mm256_add_ps(a2, _mm256_load_ps(&buf[i + 16]));
          a3 = _mm256_add_ps(a3, _mm256_load_ps(&buf[i + 24]));
        }
        _mm256_storeu_ps(&partial[t * 16], _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
      }
    });
    benchmark::DoNotOptimize(partial.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n * sizeof(float)));
}
BENCHMARK(BM_ReadBandwidth)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// 10 independent FMA chains per thread hide the 4-cycle latency: 2 FMA ports × 8 lanes × 2 flops.
void BM_FmaPeak(benchmark::State& state) {
  const std::size_t threads = static_cast<std::size_t>(state.range(0));
  kvcanary::ops::ThreadPool local(threads);
  constexpr std::int64_t kIters = 1 << 24;
  for (auto _ : state) {
    std::vector<float> sink(threads * 8);
    local.parallel_for(threads, [&](std::size_t b, std::size_t e) {
      for (std::size_t t = b; t < e; ++t) {
        __m256 acc[10];
        for (auto& a : acc) a = _mm256_set1_ps(0.0f);
        const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(0.001f);
        for (std::int64_t i = 0; i < kIters; ++i)
          for (auto& a : acc) a = _mm256_fmadd_ps(a, x, y);
        __m256 s = acc[0];
        for (int k = 1; k < 10; ++k) s = _mm256_add_ps(s, acc[k]);
        _mm256_storeu_ps(&sink[t * 8], s);
      }
    });
    benchmark::DoNotOptimize(sink.data());
  }
  const double flops = 2.0 * 8 * 10 * static_cast<double>(kIters) * static_cast<double>(threads);
  state.counters["GFLOPS"] =
      benchmark::Counter(flops * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FmaPeak)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
