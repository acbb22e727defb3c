// absmax: per-tensor symmetric quantization (the prototype's baseline). Quantized rows live
// only as codes in the cache's packed store, the bytes are those of the buffers, the scale
// only grows, and fewer bits move the logits further from `full`.

#include <doctest/doctest.h>

#include <random>

#include "../support/json_file.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/kv/absmax.hpp"
#include "kvcanary/kv/full.hpp"
#include "quant_helpers.hpp"

using namespace kvcanary;
using kv::AbsmaxQuant;

namespace {

void append_rows(kv::KvCache& c, std::size_t n, unsigned seed, float spread = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, spread);
  std::vector<float> k(c.head_dim()), v(c.head_dim());
  for (std::size_t t = 0; t < n; ++t) {
    for (std::size_t l = 0; l < c.layers(); ++l)
      for (std::size_t h = 0; h < c.kv_heads(); ++h) {
        for (auto& x : k) x = d(rng);
        for (auto& x : v) x = d(rng);
        c.head(l, h).append(k.data(), v.data(), static_cast<std::int32_t>(c.next_position()), c.head_dim());
      }
    c.advance(1);
  }
}

AbsmaxQuant make(unsigned bits, kv::Mode mode) {
  return AbsmaxQuant::create(kv::PolicyOptions(1.0, mode, {{"bits", std::to_string(bits)}}), ModelConfig{});
}

// Dequantizes head (l, h)'s packed rows with quantizer.hpp's scalar reference and the
// policy's layer scale (an independent reading of the codes the cache's kernel reads).
std::vector<float> from_state(const AbsmaxQuant& p, const kv::KvCache& c, std::size_t l, std::size_t h, bool keys) {
  const std::size_t D = c.head_dim(), rb = kv::quant::packed_bytes(D, p.bits);
  const kv::PackedRows& packed = keys ? c.head(l, h).packed_keys : c.head(l, h).packed_values;
  const float s = to_float(keys ? p.layers[l].k_scale : p.layers[l].v_scale);
  std::vector<float> out(packed.rows * D);
  std::vector<std::uint8_t> codes(D);
  for (std::size_t r = 0; r < packed.rows; ++r) {
    kv::quant::unpack(&packed.codes[r * rb], D, p.bits, codes.data());
    kv::quant::sym_dequantize(codes.data(), D, s, p.bits, &out[r * D]);
  }
  return out;
}

model::Transformer<float>& tiny() {
  static model::Transformer<float> m(io::load_hf_config(test::test_data("tiny/llama_gqa_untied")),
                                     test::test_data("tiny/llama_gqa_untied"), 2);
  return m;
}

}  // namespace

TEST_CASE("absmax: stored bytes = packed codes + two fp16 scales per layer + fp16 residual rows") {
  // 2 layers × 2 KV heads × head_dim 64; a 10-token prompt, then 3 generated tokens.
  for (unsigned bits : {8u, 4u, 2u}) {
    for (kv::Mode mode : {kv::Mode::Prompt, kv::Mode::Decode}) {
      kv::KvCache c(2, 2, 64);
      AbsmaxQuant p = make(bits, mode);
      append_rows(c, 10, 1);
      CHECK(p.stored_bytes(c) == 4 * 10 * 64 * 2 * 2);  // nothing quantized yet: all fp16
      p.after_step(c, {}, kv::StepKind::Prefill);
      const std::size_t row_code_bytes = 64 * bits / 8, scales = 2 /*layers*/ * 2 /*K,V*/ * 2 /*fp16*/;
      CHECK(p.stored_bytes(c) == 4 * 10 * row_code_bytes * 2 + scales);
      append_rows(c, 3, 2);
      p.after_step(c, {}, kv::StepKind::Decode);
      if (mode == kv::Mode::Prompt)  // generated rows stay full precision: 3 rows × K,V × 64 × fp16 per head
        CHECK(p.stored_bytes(c) == 4 * 10 * row_code_bytes * 2 + scales + 4 * 3 * 64 * 2 * 2);
      else
        CHECK(p.stored_bytes(c) == 4 * 13 * row_code_bytes * 2 + scales);
    }
  }
  // The measured fraction for the 8-bit prompt above: (5120 + 8) / 10240.
  kv::KvCache c(2, 2, 64);
  append_rows(c, 10, 1);
  AbsmaxQuant p = make(8, kv::Mode::Prompt);
  p.after_step(c, {}, kv::StepKind::Prefill);
  CHECK(static_cast<double>(p.stored_bytes(c)) / static_cast<double>(kv::full_cache_bytes(c)) ==
        doctest::Approx(5128.0 / 10240.0));
}

TEST_CASE("absmax: quantized rows live only as codes, one scale per layer across heads, error ≤ s/2") {
  for (unsigned bits : {8u, 4u, 2u}) {
    kv::KvCache c(2, 3, 64);
    append_rows(c, 20, 5);
    const kv::KvCache original = c;
    AbsmaxQuant p = make(bits, kv::Mode::Decode);
    p.after_step(c, {}, kv::StepKind::Prefill);
    for (std::size_t l = 0; l < 2; ++l) {
      float kmax = 0, vmax = 0;
      for (std::size_t h = 0; h < 3; ++h) {
        for (float x : original.head(l, h).keys) kmax = std::max(kmax, std::abs(x));
        for (float x : original.head(l, h).values) vmax = std::max(vmax, std::abs(x));
      }
      CHECK(p.layers[l].k_scale.bits == kv::quant::sym_scale(kmax, bits).bits);
      CHECK(p.layers[l].v_scale.bits == kv::quant::sym_scale(vmax, bits).bits);
      const float sk = to_float(p.layers[l].k_scale);
      for (std::size_t h = 0; h < 3; ++h) {
        CHECK(c.head(l, h).keys.empty());  // decode mode: every row packed, no fp32 copy left
        CHECK(c.head(l, h).values.empty());
        const std::vector<float> keys = c.head(l, h).materialize_keys(64);
        CHECK(from_state(p, c, l, h, true) == keys);
        CHECK(from_state(p, c, l, h, false) == c.head(l, h).materialize_values(64));
        for (std::size_t i = 0; i < keys.size(); ++i)
          REQUIRE(std::abs(keys[i] - original.head(l, h).keys[i]) <= sk / 2 * (1 + 1e-6f));
      }
    }
  }
}

TEST_CASE(
    "absmax: a value beyond the range grows the scale, stored rows are re-quantized from their dequantized values") {
  kv::KvCache c(1, 2, 64);
  append_rows(c, 8, 9, 0.5f);
  const kv::KvCache original = c;
  AbsmaxQuant p = make(4, kv::Mode::Decode);
  p.after_step(c, {}, kv::StepKind::Prefill);
  const float s1 = to_float(p.layers[0].k_scale);
  const std::vector<float> before = c.head(0, 1).materialize_keys(64);

  // A new token with a key 20× the prompt's range: the layer's key scale follows it.
  append_rows(c, 1, 10, 0.5f);
  c.head(0, 0).keys[3] = 40.0f;  // row 8, the only fp32 row
  p.after_step(c, {}, kv::StepKind::Decode);
  const f16_t grown = p.layers[0].k_scale;
  CHECK(grown.bits == kv::quant::sym_scale(40.0f, 4).bits);
  const float s2 = to_float(grown);
  std::vector<float> want(before.size());
  std::vector<std::uint8_t> codes(before.size());
  kv::quant::sym_quantize(before.data(), before.size(), s2, 4, codes.data());
  kv::quant::sym_dequantize(codes.data(), before.size(), s2, 4, want.data());
  const std::vector<float> keys1 = c.head(0, 1).materialize_keys(64);
  CHECK(std::equal(want.begin(), want.end(), keys1.begin()));  // another head, same layer: re-quantized too
  CHECK(from_state(p, c, 0, 1, true) == keys1);
  for (std::size_t i = 0; i < before.size(); ++i)
    REQUIRE(std::abs(keys1[i] - original.head(0, 1).keys[i]) <= (s1 + s2) / 2 * (1 + 1e-6f));
  CHECK(std::abs(c.head(0, 0).materialize_keys(64)[8 * 64 + 3] - 40.0f) <=
        s2 / 2);  // the new maximum itself never clips

  // A token inside the range leaves the scale and the stored rows alone.
  const std::vector<float> settled = keys1;
  append_rows(c, 1, 11, 0.5f);
  p.after_step(c, {}, kv::StepKind::Decode);
  CHECK(p.layers[0].k_scale.bits == grown.bits);
  const std::vector<float> keys2 = c.head(0, 1).materialize_keys(64);
  CHECK(std::equal(settled.begin(), settled.end(), keys2.begin()));
}

TEST_CASE("absmax: options, identity, and prompt mode leaves generated tokens alone") {
  ModelConfig cfg;
  auto p = AbsmaxQuant::create(kv::PolicyOptions(0.25, kv::Mode::Prompt), cfg);
  CHECK(p.identity() == "absmax(bits=4,mode=prompt)");
  CHECK(AbsmaxQuant::create(kv::PolicyOptions(0.3, kv::Mode::Decode, {{"bits", "2"}}), cfg).identity() ==
        "absmax(bits=2,mode=decode)");
  CHECK_THROWS_AS(AbsmaxQuant::create(kv::PolicyOptions(0.5, kv::Mode::Prompt, {{"group", "32"}}), cfg), Error);
  CHECK_THROWS_AS(AbsmaxQuant::create(kv::PolicyOptions(0.3, kv::Mode::Prompt), cfg), Error);

  kv::KvCache c(1, 1, 16);
  append_rows(c, 4, 3);
  p.after_step(c, {}, kv::StepKind::Prefill);
  append_rows(c, 2, 4);
  const auto fresh = c.head(0, 0).keys;
  p.after_step(c, {}, kv::StepKind::Decode);
  CHECK(c.head(0, 0).keys == fresh);
  CHECK(c.head(0, 0).keys.size() == 2 * 16);
  CHECK(c.head(0, 0).packed_keys.rows == 4);
}

TEST_CASE("absmax: on the tiny model, fewer bits move the logits further from full") {
  auto& m = tiny();
  std::vector<std::int32_t> ids(96);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>(3 + (i * 37 + i * i) % 250);
  const auto full = test::logits_under(m, ids, kv::FullCache{}, 8);
  float d[3];
  int i = 0;
  for (unsigned bits : {8u, 4u, 2u}) {
    d[i] = test::max_abs_diff(test::logits_under(m, ids, make(bits, kv::Mode::Decode), 8), full);
    MESSAGE("tiny llama_gqa_untied, 96 tokens in chunks of 8: absmax " << bits
                                                                       << "-bit max |Δlogit| vs full = " << d[i]);
    ++i;
  }
  CHECK(d[0] > 0.0f);
  CHECK(d[0] < d[1]);
  CHECK(d[1] < d[2]);
}

TEST_CASE("absmax: SmolLM2 perplexity of the reference paragraph, full vs absmax 8/4/2 (decode mode)") {
  if (!test::smollm2_available()) return;
  auto& m = test::smollm2_quant();
  const std::size_t V = static_cast<std::size_t>(m.config().vocab_size);
  test::JsonFile ref(test::test_data("smollm2/reference.json"));
  const auto ids = test::int_list(ref.root["perplexity"]["ids"]);
  const double ppl_full = test::smollm2_paragraph_full_ppl(ids);
  double ppl[3];
  int i = 0;
  for (unsigned bits : {8u, 4u, 2u}) {
    std::size_t bytes = 0, full_bytes = 0;
    ppl[i] =
        test::perplexity_of(test::logits_under(m, ids, make(bits, kv::Mode::Decode), 32, &bytes, &full_bytes), ids, V);
    MESSAGE("smollm2 paragraph (298 tokens, 32-token chunks) ppl: full "
            << ppl_full << ", absmax" << bits << " " << ppl[i] << ", measured fraction "
            << static_cast<double>(bytes) / static_cast<double>(full_bytes));
    ++i;
  }
  CHECK(std::abs(ppl[0] - ppl_full) / ppl_full < 0.02);
  CHECK(ppl[2] > ppl[1]);
  CHECK(ppl[1] > ppl[0]);
}
