// Selection cost of the token-eviction policies (kv/streamingllm, snapkv, h2o, tova, knorm,
// random, expected_attention): one `after_step` after a prefill at budget 0.25, on synthetic K/V and attention
// of SmolLM2-135M's shape (30 layers × 3 KV heads × 9 query heads, head_dim 64). Each row
// of the table is one call over `layers` layers at `seq` cached rows per head; counters:
//   per_layer_us   the call's time / layers
//   per_call_ms    per_layer_us × 30: a whole-model call (measured directly when layers = 30;
//                  at seq 32768 a 30-layer cache is 1.5 GB, so one layer is timed and scaled)
// The cache is restored from a pristine copy between iterations, outside the timed region
// (manual timing of the call alone).
// StreamingLLM's figure includes re-rotating the kept keys to contiguous positions.
// Expected Attention's record also carries query moments (a random mean m per head, Σqqᵀ =
// rows·(I/2 + m mᵀ), a valid second moment); its figure is the scoring alone — the forward
// pass's d² per row summing the moments is part of the prefill, not of this call.

#include <benchmark/benchmark.h>

#include <chrono>
#include <random>
#include <vector>

#include "kvcanary/kv/expected_attention.hpp"
#include "kvcanary/kv/h2o.hpp"
#include "kvcanary/kv/knorm.hpp"
#include "kvcanary/kv/random.hpp"
#include "kvcanary/kv/snapkv.hpp"
#include "kvcanary/kv/streamingllm.hpp"
#include "kvcanary/kv/tova.hpp"

namespace {

using namespace kvcanary;

constexpr std::size_t kKvHeads = 3, kHeads = 9, kHeadDim = 64, kModelLayers = 30;

ModelConfig smollm_shape(std::size_t layers) {
  ModelConfig c;
  c.num_layers = static_cast<std::int64_t>(layers);
  c.num_heads = kHeads;
  c.num_kv_heads = kKvHeads;
  c.head_dim = kHeadDim;
  c.hidden_size = kHeads * kHeadDim;
  c.rope_theta = 100000.0;
  return c;
}

struct Fixture {
  kv::KvCache cache;
  kv::AttentionRecord record;
};

// Random keys/values, positions 0..n−1; attention rows drawn from a softmax-like skewed
// distribution (exponentials), normalised per query head so each sums to `rows` queries.
Fixture make_fixture(std::size_t layers, std::size_t n, std::size_t rows) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::exponential_distribution<float> expo(1.0f);
  Fixture f{kv::KvCache(layers, kKvHeads, kHeadDim), {}};
  std::vector<float> k(kHeadDim), v(kHeadDim);
  for (std::size_t l = 0; l < layers; ++l)
    for (std::size_t h = 0; h < kKvHeads; ++h) {
      auto& s = f.cache.head(l, h);
      s.keys.reserve(n * kHeadDim);
      s.values.reserve(n * kHeadDim);
      for (std::size_t r = 0; r < n; ++r) {
        for (std::size_t d = 0; d < kHeadDim; ++d) k[d] = normal(rng), v[d] = normal(rng);
        s.append(k.data(), v.data(), static_cast<std::int32_t>(r), kHeadDim);
      }
    }
  f.cache.advance(static_cast<std::int64_t>(n));
  f.record.rows = rows;
  f.record.num_layers = layers;
  f.record.num_heads = kHeads;
  f.record.group = kHeads / kKvHeads;
  f.record.per_layer_head.assign(layers * kHeads, std::vector<float>(n));
  f.record.head_dim = kHeadDim;
  f.record.query_sum.resize(layers * kHeads * kHeadDim);
  f.record.query_outer.resize(layers * kHeads * kHeadDim * kHeadDim);
  for (std::size_t lh = 0; lh < layers * kHeads; ++lh) {
    double* sum = &f.record.query_sum[lh * kHeadDim];
    double* outer = &f.record.query_outer[lh * kHeadDim * kHeadDim];
    for (std::size_t i = 0; i < kHeadDim; ++i) sum[i] = normal(rng);
    for (std::size_t i = 0; i < kHeadDim; ++i)
      for (std::size_t j = 0; j < kHeadDim; ++j)
        outer[i * kHeadDim + j] = static_cast<double>(rows) * ((i == j ? 0.5 : 0.0) + sum[i] * sum[j]);
    for (std::size_t i = 0; i < kHeadDim; ++i) sum[i] *= static_cast<double>(rows);
  }
  for (auto& m : f.record.per_layer_head) {
    double sum = 0;
    for (auto& x : m) sum += (x = expo(rng));
    for (auto& x : m) x = static_cast<float>(x / sum * static_cast<double>(rows));
  }
  return f;
}

template <class P>
void BM_Evict(benchmark::State& state) {
  const std::size_t n = static_cast<std::size_t>(state.range(0)), layers = static_cast<std::size_t>(state.range(1));
  const P proto = P::create(kv::PolicyOptions(0.25, kv::Mode::Prompt), smollm_shape(layers));
  const std::size_t rows = std::min(n, proto.attention_rows(kv::StepKind::Prefill, n));
  const Fixture pristine = make_fixture(layers, n, rows);
  kv::KvCache cache = pristine.cache;
  double seconds = 0;
  for (auto _ : state) {
    cache = pristine.cache;
    P p = proto;
    const auto t0 = std::chrono::steady_clock::now();
    p.after_step(cache, pristine.record, kv::StepKind::Prefill);
    benchmark::DoNotOptimize(cache.head(0, 0).keys.data());
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(dt);
    seconds += dt;
  }
  const double per_layer = seconds / static_cast<double>(state.iterations()) / static_cast<double>(layers);
  state.counters["per_layer_us"] = per_layer * 1e6;
  state.counters["per_call_ms"] = per_layer * kModelLayers * 1e3;
}

void Shapes(benchmark::internal::Benchmark* b) {
  b->Args({512, 30})->Args({4096, 30})->Args({32768, 1})->Unit(benchmark::kMillisecond)->UseManualTime();
}

}  // namespace

BENCHMARK(BM_Evict<kv::StreamingLlm>)->Apply(Shapes)->Name("streamingllm");
BENCHMARK(BM_Evict<kv::SnapKv>)->Apply(Shapes)->Name("snapkv");
BENCHMARK(BM_Evict<kv::H2o>)->Apply(Shapes)->Name("h2o");
BENCHMARK(BM_Evict<kv::Tova>)->Apply(Shapes)->Name("tova");
BENCHMARK(BM_Evict<kv::KNorm>)->Apply(Shapes)->Name("knorm");
BENCHMARK(BM_Evict<kv::RandomEviction>)->Apply(Shapes)->Name("random");
BENCHMARK(BM_Evict<kv::ExpectedAttention>)->Apply(Shapes)->Name("expected_attention");

BENCHMARK_MAIN();
