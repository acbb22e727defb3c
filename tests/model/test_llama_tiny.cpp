// The forward pass against HF transformers on tiny random-weight models of every supported
// shape (goldens: scripts/golden/make_tiny_models.py). Gate: max |Δlogit| ≤ 1e-4 in fp32,
// for prefill at every position, for decode steps through the KV cache, and at long
// positions where rope scaling matters.

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <memory>

#include "../support/json_file.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/engine/generate.hpp"
#include "kvcanary/model/llama.hpp"

using namespace kvcanary;
namespace fs = std::filesystem;

namespace {

constexpr float kGate = 1e-4f;

float max_abs_diff(const float* a, const std::vector<float>& b) {
  float m = 0;
  for (std::size_t i = 0; i < b.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

template <class WT>
void check_case(const fs::path& model_dir, const fs::path& golden_path) {
  test::JsonFile golden(golden_path);
  auto config = io::load_hf_config(model_dir);
  model::Transformer<WT> m(config, model_dir, 2);
  const std::size_t V = static_cast<std::size_t>(config.vocab_size);

  // Prefill: logits at every position.
  const auto prefill = test::int_list(golden.root["prefill_ids"]);
  kv::KvCache cache = m.new_cache();
  std::vector<float> logits;
  model::Segment seg{&cache, prefill, model::Logits::All};
  m.forward(std::span<const model::Segment>(&seg, 1), logits);
  REQUIRE(logits.size() == prefill.size() * V);
  float worst = 0;
  std::size_t pos = 0;
  for (auto row : golden.root["prefill_logits"].get_array()) {
    worst = std::max(worst, max_abs_diff(&logits[pos * V], test::float_list(row)));
    ++pos;
  }
  CHECK(pos == prefill.size());
  MESSAGE(model_dir.filename().string() << " prefill max|Δ| = " << worst);
  CHECK(worst <= kGate);

  // Decode: one token at a time through the cache.
  const auto decode = test::int_list(golden.root["decode_ids"]);
  std::size_t step = 0;
  worst = 0;
  for (auto row : golden.root["decode_logits"].get_array()) {
    model::Segment one{&cache, std::span<const std::int32_t>(&decode[step], 1), model::Logits::Last};
    m.forward(std::span<const model::Segment>(&one, 1), logits);
    worst = std::max(worst, max_abs_diff(logits.data(), test::float_list(row)));
    ++step;
  }
  CHECK(step == decode.size());
  MESSAGE(model_dir.filename().string() << " decode max|Δ| = " << worst);
  CHECK(worst <= kGate);

  // Long input: rope scaling is visible at large positions.
  const auto long_ids = test::int_list(golden.root["long_ids"]);
  kv::KvCache long_cache = m.new_cache();
  model::Segment long_seg{&long_cache, long_ids, model::Logits::Last};
  m.forward(std::span<const model::Segment>(&long_seg, 1), logits);
  worst = max_abs_diff(logits.data(), test::float_list(golden.root["long_last_logits"]));
  MESSAGE(model_dir.filename().string() << " long (" << long_ids.size() << " tokens) max|Δ| = " << worst);
  CHECK(worst <= kGate);
}

}  // namespace

TEST_CASE("forward pass matches HF transformers on tiny models (fp32)") {
  const fs::path root = test::test_data("tiny");
  std::size_t cases = 0;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!fs::exists(entry.path() / "golden.json")) continue;
    SUBCASE(entry.path().filename().string().c_str()) { check_case<float>(entry.path(), entry.path() / "golden.json"); }
    ++cases;
  }
  CHECK(cases >= 7);
}

TEST_CASE("bf16 weights: fp32, bf16 and f16 weight paths match HF on bf16-rounded weights") {
  const fs::path root = test::test_data("tiny");
  std::size_t cases = 0;
  for (const auto& entry : fs::directory_iterator(root)) {
    const fs::path dir = entry.path() / "model_bf16";
    if (!fs::exists(dir / "golden.json")) continue;
    SUBCASE((entry.path().filename().string() + "/bf16").c_str()) { check_case<bf16_t>(dir, dir / "golden.json"); }
    SUBCASE((entry.path().filename().string() + "/bf16-as-fp32").c_str()) {
      check_case<float>(dir, dir / "golden.json");
    }
    // bf16 values (8-bit mantissa) are f16 values too, bar the tiniest: the f16 path must match.
    SUBCASE((entry.path().filename().string() + "/bf16-as-f16").c_str()) {
      check_case<f16_t>(dir, dir / "golden.json");
    }
    ++cases;
  }
  CHECK(cases >= 1);
}

TEST_CASE("batched decode of independent sequences is bit-identical to decoding each alone") {
  const fs::path dir = test::test_data("tiny/llama_gqa_untied");
  auto config = io::load_hf_config(dir);
  model::Transformer<float> m(config, dir, 2);
  const std::vector<std::vector<std::int32_t>> prompts = {
      {5, 17, 99, 3}, {200, 1, 45}, {7, 7, 7, 7, 7, 7, 8}, {42}, {9, 8}};
  engine::GenerateOptions opt;
  opt.max_new_tokens = 12;
  opt.eos_ids = {-1};  // run to the length limit
  auto batched = engine::generate_greedy(m, prompts, opt);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    auto alone = engine::generate_greedy(m, std::span(&prompts[i], 1), opt);
    CHECK(alone[0].tokens == batched[i].tokens);
    CHECK(batched[i].finish_reason == "length");
  }
}
