// The `stored` weight precision (model/stored_weights.hpp) on the tiny synthetic GGUFs of
// tests/data/gguf: tiny_llama (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q/K rows permuted) and
// tiny_qwen2 (Q2_K..Q6_K, Q5_0 embeddings, biases, untied lm_head). Each is converted to an
// fp32 directory (which links model.gguf), and the forward pass on the blocks must give the
// fp32 path's logits up to summation order (max |Δ| ≤ 1e-3, top-1 identical), the same bits on
// every ISA, and the same bits batched as alone.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "../support/json_file.hpp"
#include "../support/resources.hpp"
#include "../support/temp_dir.hpp"
#include "kvcanary/io/gguf_to_hf.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/engine/generate.hpp"
#include "kvcanary/model/llama.hpp"

using namespace kvcanary;
namespace fs = std::filesystem;

namespace {

std::vector<std::int32_t> ids(std::size_t n, std::size_t salt, std::int64_t vocab) {
  std::vector<std::int32_t> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<std::int32_t>((3 + i * 37 + i * i + salt * 101) % static_cast<std::size_t>(vocab));
  return v;
}

template <class WT>
std::vector<float> prefill_all(model::Transformer<WT>& m, const std::vector<std::int32_t>& toks) {
  kv::KvCache cache = m.new_cache();
  std::vector<float> logits;
  model::Segment seg{&cache, toks, model::Logits::All};
  m.forward(std::span<const model::Segment>(&seg, 1), logits);
  return logits;
}

std::size_t argmax(const float* p, std::size_t n) { return static_cast<std::size_t>(std::max_element(p, p + n) - p); }

void check_model(const std::string& gguf_name) {
  test::TempDir tmp;
  const fs::path dir = tmp.path / "m";
  io::convert_gguf_to_hf(test::test_data("gguf") / gguf_name, dir);
  REQUIRE(fs::is_symlink(dir / "model.gguf"));
  const auto config = io::load_hf_config(dir);
  const std::size_t V = static_cast<std::size_t>(config.vocab_size);
  model::Transformer<float> f32(config, dir, 2);
  model::Transformer<stored_t> st(config, dir, 2);
  CHECK(st.weights().matrix_bytes() < f32.weights().matrix_bytes() / 3);

  const auto toks = ids(40, 1, config.vocab_size);
  const auto want = prefill_all(f32, toks);
  const auto got = prefill_all(st, toks);
  REQUIRE(got.size() == want.size());
  float worst = 0, scale = 0;
  std::size_t top1 = 0;
  for (std::size_t p = 0; p < toks.size(); ++p) {
    for (std::size_t v = 0; v < V; ++v) {
      worst = std::max(worst, std::abs(got[p * V + v] - want[p * V + v]));
      scale = std::max(scale, std::abs(want[p * V + v]));
    }
    top1 += argmax(&got[p * V], V) == argmax(&want[p * V], V);
  }
  MESSAGE(gguf_name << ": stored vs dequantized fp32, " << toks.size() << " positions: max |Δlogit| = " << worst
                    << " (max |logit| " << scale << "), top-1 identical " << top1 << "/" << toks.size());
  // 1e-3 absolute at the real models' logit scale (O(10)); tiny_qwen2's synthetic weights give
  // logits up to ~1000, where fp32 summation order alone moves them by ~1e-6 relative.
  CHECK(worst <= std::max(1e-3f, 1e-5f * scale));
  CHECK(top1 == toks.size());

  // Every ISA present: the same bits.
  for (int level = 0; level <= static_cast<int>(ops::cpu_isa()); ++level) {
    ops::ScopedIsaCap cap(static_cast<ops::Isa>(level));
    CAPTURE(ops::isa_name(ops::active_isa()));
    CHECK(prefill_all(st, toks) == got);
  }

  // Batched = alone, bit for bit: three prompts of different lengths in one forward call
  // (prefill), then a decode step of all three together.
  std::vector<std::vector<std::int32_t>> prompts = {ids(5, 2, config.vocab_size), ids(17, 3, config.vocab_size),
                                                    ids(1, 4, config.vocab_size)};
  std::vector<kv::KvCache> caches;
  for (std::size_t i = 0; i < prompts.size(); ++i) caches.push_back(st.new_cache());
  std::vector<model::Segment> segs;
  for (std::size_t i = 0; i < prompts.size(); ++i) segs.push_back({&caches[i], prompts[i], model::Logits::Last});
  std::vector<float> batched;
  st.forward(segs, batched);
  const std::int32_t next[3] = {7, 11, 13};
  std::vector<model::Segment> step;
  for (std::size_t i = 0; i < prompts.size(); ++i)
    step.push_back({&caches[i], std::span<const std::int32_t>(&next[i], 1), model::Logits::Last});
  std::vector<float> batched_step;
  st.forward(step, batched_step);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    CAPTURE(i);
    kv::KvCache c = st.new_cache();
    std::vector<float> alone, alone_step;
    model::Segment s{&c, prompts[i], model::Logits::Last};
    st.forward(std::span<const model::Segment>(&s, 1), alone);
    CHECK(std::equal(alone.begin(), alone.end(), batched.begin() + static_cast<std::ptrdiff_t>(i * V)));
    model::Segment s2{&c, std::span<const std::int32_t>(&next[i], 1), model::Logits::Last};
    st.forward(std::span<const model::Segment>(&s2, 1), alone_step);
    CHECK(std::equal(alone_step.begin(), alone_step.end(), batched_step.begin() + static_cast<std::ptrdiff_t>(i * V)));
  }
}

}  // namespace

TEST_CASE("stored weights: tiny llama GGUF (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, permuted Q/K) equals the fp32 path") {
  check_model("tiny_llama.gguf");
}

TEST_CASE("stored weights: tiny qwen2 GGUF (Q2_K..Q6_K, Q5_0, biases, untied) equals the fp32 path") {
  check_model("tiny_qwen2.gguf");
}

TEST_CASE("stored weights: a directory without model.gguf, or with another model's, is one clear error") {
  test::TempDir tmp;
  const fs::path dir = tmp.path / "m";
  io::convert_gguf_to_hf(test::test_data("gguf") / "tiny_llama.gguf", dir);
  const auto config = io::load_hf_config(dir);
  fs::remove(dir / "model.gguf");
  CHECK_THROWS_WITH_AS(model::Transformer<stored_t>(config, dir, 1),
                       doctest::Contains("model.gguf: --dtype stored reads the GGUF"), Error);
  fs::create_symlink(fs::absolute(test::test_data("gguf") / "tiny_qwen2.gguf"), dir / "model.gguf");
  CHECK_THROWS_WITH_AS(model::Transformer<stored_t>(config, dir, 1),
                       doctest::Contains("hidden_size: 256 in the GGUF but 64 in"), Error);
}

// The real model: Qwen2.5-Coder-0.5B-Instruct (Q5_0, Q8_0, Q4_K, Q6_K) on the 20 reference
// prompts of tests/data/qwen (1,716 positions), stored against the dequantized fp32 path.
// Needs models/qwen2.5-coder-0.5b-instruct with its model.gguf link (scripts/fetch_model.sh
// qwen2.5-coder-0.5b-instruct), or KVCANARY_QWEN_STORED_DIR; skips with a message otherwise.
TEST_CASE("stored weights: qwen2.5-coder-0.5b equals the fp32 path on the reference prompts (real model)") {
  const char* env = std::getenv("KVCANARY_QWEN_STORED_DIR");
  const fs::path dir = env ? fs::path(env) : fs::path(KVCANARY_SOURCE_DIR) / "models" / "qwen2.5-coder-0.5b-instruct";
  if (!test::available(dir / "model.safetensors")) return;
  if (!fs::exists(dir / "model.gguf")) {  // a directory converted before convert-gguf linked it
    MESSAGE("skipped: no " << (dir / "model.gguf").string());
    return;
  }
  test::JsonFile ref(test::test_data("qwen/qwen2.5-coder-0.5b-instruct.reference.json"));
  const auto config = io::load_hf_config(dir);
  const std::size_t V = static_cast<std::size_t>(config.vocab_size);
  model::Transformer<float> f32(config, dir, 2);
  model::Transformer<stored_t> st(config, dir, 2);
  std::size_t positions = 0, top1 = 0, prompts = 0;
  float worst = 0;
  for (auto p : ref.root["prompts"].get_array()) {
    const auto toks = test::int_list(p["ids"]);
    const auto want = prefill_all(f32, toks), got = prefill_all(st, toks);
    for (std::size_t i = 0; i < toks.size(); ++i) {
      for (std::size_t v = 0; v < V; ++v) worst = std::max(worst, std::abs(got[i * V + v] - want[i * V + v]));
      top1 += engine::argmax(&got[i * V], V) == engine::argmax(&want[i * V], V);
    }
    positions += toks.size();
    ++prompts;
  }
  MESSAGE("qwen2.5-coder-0.5b stored vs fp32: " << prompts << " prompts, " << positions
                                                << " positions, max |dlogit| = " << worst << " (all " << V
                                                << " logits), top-1 identical " << top1 << "/" << positions);
  CHECK(prompts >= 20);
  CHECK(worst <= 1e-3f);
  CHECK(top1 == positions);
}
