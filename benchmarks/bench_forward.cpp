// Throughput of the forward pass on the default model (or $KVCANARY_MODEL): prefill of a
// 512-token prompt and greedy decode at batch 1, 8 and 32, in fp32, bf16, f16 and stored
// weights (stored: the GGUF's blocks, which needs the model directory's model.gguf).
// Reported as tokens/s; the bandwidth bound for batch 1 is matrix_bytes / read bandwidth
// (bench_machine), recorded beside these figures in docs/PERFORMANCE.md.
//
// matmul/stored/TYPE: the stored-weight matmul alone on synthetic blocks of each ggml type,
// [4864, 896] (Qwen2.5-0.5B's gate/up rows), at 1, 8, 32 and 512 activation rows, on the ISA
// the run-time dispatch picks (cap it with KVCANARY_ISA=scalar|avx2|avx512). Threads:
// KVCANARY_BENCH_THREADS (default: all).

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/engine/generate.hpp"
#include "kvcanary/model/llama.hpp"
#include "kvcanary/ops/stored_matmul.hpp"

namespace {

std::string model_dir() {
  const char* env = std::getenv("KVCANARY_MODEL");
  return env ? env : KVCANARY_DEFAULT_MODEL_DIR;
}

std::size_t bench_threads() {
  const char* env = std::getenv("KVCANARY_BENCH_THREADS");
  return env ? static_cast<std::size_t>(std::atoi(env)) : kvcanary::ops::ThreadPool::default_threads();
}

template <class WT>
kvcanary::model::Transformer<WT>& model() {
  static auto m = std::make_unique<kvcanary::model::Transformer<WT>>(kvcanary::io::load_hf_config(model_dir()),
                                                                     model_dir(), bench_threads());
  return *m;
}

// Synthetic blocks of `type` for rows × in weights: random quants, small finite f16 scales.
std::vector<std::uint8_t> synthetic_blocks(kvcanary::io::GgmlType type, std::size_t rows, std::size_t in) {
  const auto* tr = kvcanary::io::ggml_type_traits(static_cast<std::uint32_t>(type));
  std::vector<std::uint8_t> b(rows * in / tr->block_size * tr->type_size);
  std::mt19937 rng(5);
  for (auto& v : b) v = static_cast<std::uint8_t>(rng());
  const std::uint16_t small = kvcanary::to_f16(0.01f).bits;
  for (std::size_t at = 0; at + tr->type_size <= b.size(); at += tr->type_size) {
    using T = kvcanary::io::GgmlType;
    const std::size_t h = type == T::Q6_K ? 208 : 0;  // the block's (first) f16 scale; Q4_K/Q4_1's dmin/m at +2
    std::memcpy(&b[at + h], &small, 2);
    if (type == T::Q4_K || type == T::Q4_1) std::memcpy(&b[at + 2], &small, 2);
  }
  return b;
}

void BM_StoredMatmul(benchmark::State& state, kvcanary::io::GgmlType type) {
  const std::size_t out = 4864, in = 896, rows = static_cast<std::size_t>(state.range(0));
  const auto blocks = synthetic_blocks(type, out, in);
  kvcanary::ops::StoredMatrix W(in);
  W.append(type, blocks.data(), out);
  std::vector<float> x(rows * in, 0.5f), y(rows * out);
  kvcanary::ops::ThreadPool pool(bench_threads());
  for (auto _ : state) {
    kvcanary::ops::matmul(x.data(), rows, W, nullptr, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["weight_GB/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * static_cast<double>(W.bytes()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * static_cast<double>(rows * out * in) / 1e9,
                         benchmark::Counter::kIsRate);
  state.SetLabel(kvcanary::ops::isa_name(kvcanary::ops::active_isa()));
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
  state.counters["tok/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * state.range(0)), benchmark::Counter::kIsRate);
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
      for (std::size_t b = 0; b < batch; ++b)
        step.push_back({&caches[b], std::span<const std::int32_t>(&next[b], 1), kvcanary::model::Logits::Last});
      m.forward(step, logits);
      for (std::size_t b = 0; b < batch; ++b)
        next[b] = kvcanary::engine::argmax(&logits[b * static_cast<std::size_t>(m.config().vocab_size)],
                                           static_cast<std::size_t>(m.config().vocab_size));
    }
  }
  state.counters["tok/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * kSteps * static_cast<std::int64_t>(batch)), benchmark::Counter::kIsRate);
  state.counters["weight_MB"] = static_cast<double>(m.weights().matrix_bytes()) / 1e6;
}

BENCHMARK(BM_Prefill<float>)->Name("prefill/f32")->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Prefill<kvcanary::bf16_t>)
    ->Name("prefill/bf16")
    ->Arg(512)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);
BENCHMARK(BM_Prefill<kvcanary::f16_t>)
    ->Name("prefill/f16")
    ->Arg(512)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);
BENCHMARK(BM_Decode<float>)->Name("decode/f32")->Arg(1)->Arg(8)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Decode<kvcanary::bf16_t>)
    ->Name("decode/bf16")
    ->Arg(1)
    ->Arg(8)
    ->Arg(32)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Decode<kvcanary::f16_t>)
    ->Name("decode/f16")
    ->Arg(1)
    ->Arg(8)
    ->Arg(32)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Prefill<kvcanary::stored_t>)
    ->Name("prefill/stored")
    ->Arg(512)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);
BENCHMARK(BM_Decode<kvcanary::stored_t>)
    ->Name("decode/stored")
    ->Arg(1)
    ->Arg(8)
    ->Arg(32)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

#define KVC_STORED_BENCH(T)                                        \
  BENCHMARK_CAPTURE(BM_StoredMatmul, T, kvcanary::io::GgmlType::T) \
      ->Name("matmul/stored/" #T)                                  \
      ->Arg(1)                                                     \
      ->Arg(8)                                                     \
      ->Arg(32)                                                    \
      ->Arg(512)                                                   \
      ->Unit(benchmark::kMicrosecond)                              \
      ->UseRealTime()
KVC_STORED_BENCH(Q4_0);
KVC_STORED_BENCH(Q4_1);
KVC_STORED_BENCH(Q5_0);
KVC_STORED_BENCH(Q8_0);
KVC_STORED_BENCH(Q4_K);
KVC_STORED_BENCH(Q6_K);

}  // namespace

BENCHMARK_MAIN();
