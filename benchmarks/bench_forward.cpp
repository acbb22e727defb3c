// Throughput of the forward pass on the default model (or $KVCANARY_MODEL): prefill of a
// 512-token prompt and greedy decode at batch 1, 8 and 32, in fp32, bf16 and f16 weights.
// Reported as tokens/s; the bandwidth bound for batch 1 is matrix_bytes / read bandwidth
// (bench_machine), recorded beside these figures in docs/PERFORMANCE.md.

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/model/generate.hpp"
#include "kvcanary/model/llama.hpp"

namespace {

std::string model_dir() {
  const char* env = std::getenv("KVCANARY_MODEL");
  return env ? env : KVCANARY_DEFAULT_MODEL_DIR;
}

template <class WT>
kvcanary::model::Transformer<WT>& model() {
  static auto m = std::make_unique<kvcanary::model::Transformer<WT>>(kvcanary::io::load_hf_config(model_dir()), model_dir());
  return *m;
}

std::vector<std::int32_t> random_tokens(std::size_t n, std::int64_t vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::int32_t> d(100, static_cast<std::int32_t>(vocab - 1));
  std::vector<std::int32_t> ids(n);
  for (auto& t : ids) t = d(rng);
  return ids;
}

template <class WT>
void BM_Prefill(benchmark::State& state) {
  auto& m = model<WT>();
  const auto ids = random_tokens(static_cast<std::size_t>(state.range(0)), m.config().vocab_size, 1);
  std::vector<float> logits;
  for (auto _ : state) {
    auto cache = m.new_cache();
    const kvcanary::model::Segment seg{&cache, ids, kvcanary::model::Logits::Last};
    m.forward(std::span<const kvcanary::model::Segment>(&seg, 1), logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(state.iterations() * state.range(0)), benchmark::Counter::kIsRate);
  state.counters["weight_MB"] = static_cast<double>(m.weights().matrix_bytes()) / 1e6;
}

// Decode steps for `batch` sequences that each already hold a 64-token prompt.
template <class WT>
void BM_Decode(benchmark::State& state) {
  auto& m = model<WT>();
  const std::size_t batch = static_cast<std::size_t>(state.range(0));
  constexpr int kSteps = 16;
  std::vector<float> logits;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<kvcanary::kv::KvCache> caches;
    std::vector<std::vector<std::int32_t>> prompts;
    for (std::size_t b = 0; b < batch; ++b) {
      caches.push_back(m.new_cache());
      prompts.push_back(random_tokens(64, m.config().vocab_size, static_cast<unsigned>(b + 7)));
      const kvcanary::model::Segment seg{&caches.back(), prompts.back(), kvcanary::model::Logits::Last};
      m.forward(std::span<const kvcanary::model::Segment>(&seg, 1), logits);
    }
    std::vector<std::int32_t> next(batch, 42);
    state.ResumeTiming();
    for (int s = 0; s < kSteps; ++s) {
      std::vector<kvcanary::model::Segment> step;
      for (std::size_t b = 0; b < batch; ++b) step.push_back({&caches[b], std::span<const std::int32_t>(&next[b], 1), kvcanary::model::Logits::Last});
      m.forward(step, logits);
      for (std::size_t b = 0; b < batch; ++b)
        next[b] = kvcanary::model::argmax(&logits[b * static_cast<std::size_t>(m.config().vocab_size)], static_cast<std::size_t>(m.config().vocab_size));
    }
  }
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(state.iterations() * kSteps * static_cast<std::int64_t>(batch)), benchmark::Counter::kIsRate);
  state.counters["weight_MB"] = static_cast<double>(m.weights().matrix_bytes()) / 1e6;
}

BENCHMARK(BM_Prefill<float>)->Name("prefill/f32")->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Prefill<kvcanary::bf16_t>)->Name("prefill/bf16")->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Prefill<kvcanary::f16_t>)->Name("prefill/f16")->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Decode<float>)->Name("decode/f32")->Arg(1)->Arg(8)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Decode<kvcanary::bf16_t>)->Name("decode/bf16")->Arg(1)->Arg(8)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Decode<kvcanary::f16_t>)->Name("decode/f16")->Arg(1)->Arg(8)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
