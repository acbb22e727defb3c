// kivi: keys per channel over groups of G tokens, values per token over groups of channels,
// the most recent R tokens full precision (Algorithm 1 of the KIVI paper). Tested: which rows
// are quantized when, the bytes of the buffers against hand counts, the cache equals the
// dequantized packed state, and the effect on logits and perplexity (tiny and real model).

#include <doctest/doctest.h>

#include <chrono>
#include <random>

#include "../support/json_file.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/kv/absmax.hpp"
#include "kvcanary/kv/full.hpp"
#include "kvcanary/kv/kivi.hpp"
#include "quant_helpers.hpp"

using namespace kvcanary;
using kv::KiviQuant;

namespace {

void append_rows(kv::KvCache& c, std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.2f, 1.0f);
  std::vector<float> k(c.head_dim()), v(c.head_dim());
  for (std::size_t t = 0; t < n; ++t) {
    for (std::size_t l = 0; l < c.layers(); ++l)
      for (std::size_t h = 0; h < c.kv_heads(); ++h) {
        for (std::size_t i = 0; i < k.size(); ++i) k[i] = d(rng) * (i == 5 ? 8.0f : 1.0f);  // an outlier channel
        for (auto& x : v) x = d(rng);
        c.head(l, h).append(k.data(), v.data(), static_cast<std::int32_t>(c.next_position()), c.head_dim());
      }
    c.advance(1);
  }
}

KiviQuant make(unsigned bits, std::size_t group, std::size_t residual, kv::Mode mode) {
  return KiviQuant::create(
      kv::PolicyOptions(
          1.0, mode,
          {{"bits", std::to_string(bits)}, {"group", std::to_string(group)}, {"residual", std::to_string(residual)}}),
      ModelConfig{});
}

model::Transformer<float>& tiny() {
  static model::Transformer<float> m(io::load_hf_config(test::test_data("tiny/llama_gqa_untied")),
                                     test::test_data("tiny/llama_gqa_untied"), 2);
  return m;
}

}  // namespace

TEST_CASE("kivi: keys are quantized ⌊n/R⌋·R at a time in whole groups, values once older than the R most recent") {
  kv::KvCache c(1, 1, 64);
  KiviQuant p = make(2, 32, 64, kv::Mode::Decode);
  append_rows(c, 100, 1);
  p.after_step(c, {}, kv::StepKind::Prefill);
  CHECK(c.head(0, 0).packed_keys.rows == 64);    // ⌊100/64⌋·64
  CHECK(c.head(0, 0).packed_values.rows == 36);  // 100 − 64
  CHECK(c.head(0, 0).keys.size() == 36 * 64);    // the rest stays fp32
  CHECK(c.head(0, 0).values.size() == 64 * 64);
  for (std::size_t n = 101; n <= 128; ++n) {
    append_rows(c, 1, static_cast<unsigned>(n));
    p.after_step(c, {}, kv::StepKind::Decode);
    CHECK(c.head(0, 0).packed_keys.rows ==
          (n < 128 ? 64u : 128u));  // the key residual fills to R, then leaves as R/G groups
    CHECK(c.head(0, 0).packed_values.rows == n - 64);
  }
  // Chunked prefill ends in the same state as one prefill of the same tokens.
  kv::KvCache whole(1, 1, 64), chunked(1, 1, 64);
  append_rows(whole, 150, 7);
  const kv::KvCache source = whole;
  KiviQuant a = make(4, 32, 64, kv::Mode::Decode), b = a;
  a.after_step(whole, {}, kv::StepKind::Prefill);
  for (std::size_t t = 0; t < 150; t += 50) {
    for (std::size_t i = t; i < t + 50; ++i)
      chunked.head(0, 0).append(&source.head(0, 0).keys[i * 64], &source.head(0, 0).values[i * 64],
                                static_cast<std::int32_t>(i), 64);
    chunked.advance(50);
    b.after_step(chunked, {}, kv::StepKind::Prefill);
  }
  CHECK(whole.head(0, 0).packed_keys.rows == chunked.head(0, 0).packed_keys.rows);
  CHECK(whole.head(0, 0).packed_values.rows == chunked.head(0, 0).packed_values.rows);
  CHECK(whole.head(0, 0).materialize_keys(64) == chunked.head(0, 0).materialize_keys(64));
  CHECK(whole.head(0, 0).materialize_values(64) == chunked.head(0, 0).materialize_values(64));
  CHECK(a.stored_bytes(whole) == b.stored_bytes(chunked));

  // Prompt mode: generated tokens stay full precision.
  kv::KvCache d(1, 1, 64);
  KiviQuant q = make(2, 32, 32, kv::Mode::Prompt);
  append_rows(d, 70, 3);
  q.after_step(d, {}, kv::StepKind::Prefill);
  append_rows(d, 40, 4);
  q.after_step(d, {}, kv::StepKind::Decode);
  CHECK(d.head(0, 0).packed_keys.rows == 64);
  CHECK(d.head(0, 0).packed_values.rows == 38);
}

TEST_CASE("kivi: stored bytes = codes + fp16 scale/zero per group + fp16 residual rows (hand counts)") {
  // 2 layers × 2 KV heads × head_dim 64, 200 tokens, G = 32, R = 64, decode mode.
  //   keys:   ⌊200/64⌋·64 = 192 rows quantized = 6 groups; codes 192·64·b/8;
  //           6 groups × 64 channels × (scale, zero) × 2 bytes; residual 8 rows × 64 × 2 bytes;
  //   values: 200 − 64 = 136 rows; codes 136·64·b/8; 136 tokens × 2 groups of 32 channels ×
  //           (scale, zero) × 2 bytes; residual 64 rows × 64 × 2 bytes.
  for (unsigned bits : {8u, 4u, 2u}) {
    kv::KvCache c(2, 2, 64);
    KiviQuant p = make(bits, 32, 64, kv::Mode::Decode);
    append_rows(c, 200, 11);
    p.after_step(c, {}, kv::StepKind::Prefill);
    const std::size_t keys = 192 * 64 * bits / 8 + 6 * 64 * 2 * 2 + 8 * 64 * 2;
    const std::size_t values = 136 * 64 * bits / 8 + 136 * 2 * 2 * 2 + 64 * 64 * 2;
    const std::size_t want = 4 * (keys + values);
    CHECK(p.stored_bytes(c) == want);
    MESSAGE("kivi " << bits << "-bit, G 32, R 64, 200 tokens, head_dim 64: " << p.stored_bytes(c) << " bytes = "
                    << static_cast<double>(p.stored_bytes(c)) / static_cast<double>(kv::full_cache_bytes(c))
                    << " of fp16");
  }
  // G = 128 on head_dim 64: value groups are the whole row (one pair per token); R = 128.
  kv::KvCache c(1, 1, 64);
  KiviQuant p = make(4, 128, 128, kv::Mode::Decode);
  append_rows(c, 300, 12);
  p.after_step(c, {}, kv::StepKind::Prefill);
  CHECK(p.value_group(64) == 64);
  CHECK(p.stored_bytes(c) == (256 * 32 + 2 * 64 * 4 + 44 * 128) + (172 * 32 + 172 * 4 + 128 * 128));
}

TEST_CASE("kivi: quantized rows live only as codes, they dequantize per group within s/2, residual untouched") {
  for (unsigned bits : {8u, 4u, 2u}) {
    kv::KvCache c(1, 2, 64);
    append_rows(c, 150, 21);
    const kv::KvCache original = c;
    KiviQuant p = make(bits, 32, 64, kv::Mode::Decode);
    p.after_step(c, {}, kv::StepKind::Prefill);
    const std::size_t rb = kv::quant::packed_bytes(64, bits);
    for (std::size_t h = 0; h < 2; ++h) {
      const auto& store = c.head(0, h);
      const kv::PackedRows& pk = store.packed_keys;
      const kv::PackedRows& pv = store.packed_values;
      REQUIRE(pk.rows == 128);
      REQUIRE(pv.rows == 86);
      CHECK(store.keys.size() == (150 - 128) * 64);  // no fp32 copy of a quantized row
      CHECK(store.values.size() == (150 - 86) * 64);
      const std::vector<float> keys = store.materialize_keys(64), values = store.materialize_values(64);
      std::vector<std::uint8_t> codes(64);
      for (std::size_t t = 0; t < 150; ++t)
        for (std::size_t d = 0; d < 64; ++d) {
          const float k = keys[t * 64 + d], v = values[t * 64 + d];
          const float k0 = original.head(0, h).keys[t * 64 + d], v0 = original.head(0, h).values[t * 64 + d];
          if (t < pk.rows) {
            kv::quant::unpack(&pk.codes[t * rb], 64, bits, codes.data());
            const auto& prm = pk.params[(t / 32) * 64 + d];  // per channel, per group of 32 tokens
            REQUIRE(k == kv::quant::asym_value(codes[d], to_float(prm.scale), to_float(prm.zero)));
            REQUIRE(std::abs(k - k0) <= to_float(prm.scale) / 2 + 1e-5f);
          } else {
            REQUIRE(k == k0);
          }
          if (t < pv.rows) {
            kv::quant::unpack(&pv.codes[t * rb], 64, bits, codes.data());
            const auto& prm = pv.params[t * 2 + d / 32];  // per token, per group of 32 channels
            REQUIRE(v == kv::quant::asym_value(codes[d], to_float(prm.scale), to_float(prm.zero)));
            REQUIRE(std::abs(v - v0) <= to_float(prm.scale) / 2 + 1e-5f);
          } else {
            REQUIRE(v == v0);
          }
        }
    }
  }
}

TEST_CASE("kivi: options, identity, errors naming the field") {
  ModelConfig cfg;
  CHECK(KiviQuant::create(kv::PolicyOptions(0.125, kv::Mode::Decode), cfg).identity() ==
        "kivi(bits=2,group=32,residual=128,mode=decode)");
  CHECK(make(8, 64, 192, kv::Mode::Prompt).identity() == "kivi(bits=8,group=64,residual=192,mode=prompt)");
  auto field_of = [&](std::map<std::string, std::string> params, double budget = 0.5) {
    try {
      KiviQuant::create(kv::PolicyOptions(budget, kv::Mode::Decode, std::move(params)), cfg);
    } catch (const Error& e) { return e.field(); }
    return std::string("no error");
  };
  CHECK(field_of({{"group", "16"}}) == "group");
  CHECK(field_of({{"residual", "48"}}) == "residual");
  CHECK(field_of({{"residual", "0"}}) == "residual");
  CHECK(field_of({{"window", "4"}}) == "window");
  CHECK(field_of({}, 0.3) == "bits");
  CHECK(field_of({{"bits", "3"}}) == "bits");
  CHECK(field_of({{"group", "128"}, {"residual", "256"}}) == "no error");
}

TEST_CASE("kivi: through generate_greedy on the tiny model, the measured budget is the policy's bytes") {
  auto& m = tiny();
  std::vector<std::vector<std::int32_t>> prompts(1);
  for (std::int32_t i = 0; i < 40; ++i) prompts[0].push_back(3 + (i * 37 + i * i) % 250);
  engine::GenerateOptions opt;
  opt.max_new_tokens = 30;
  opt.eos_ids = {-1};
  const auto gens = engine::generate_greedy(m, prompts, opt, {}, make(2, 32, 32, kv::Mode::Decode));
  // 69 rows per head (the last token is never fed back); head_dim 16, 2 layers × 2 KV heads:
  //   keys 64 quantized (2 groups): 64·4 B codes + 2·16 pairs·4 B + 5 residual rows·32 B;
  //   values 37 quantized: 37·4 B codes + 37 pairs (one group of 16)·4 B + 32 rows·32 B.
  const std::size_t per_head = (64 * 4 + 2 * 16 * 4 + 5 * 32) + (37 * 4 + 37 * 4 + 32 * 32);
  CHECK(gens[0].memory.kv_bytes_end == 4 * per_head);
  CHECK(gens[0].memory.kv_full_bytes_end == 69 * 16 * 2 * 2 * 4);
  MESSAGE("tiny, kivi 2-bit G32 R32 after 69 tokens: measured fraction " << gens[0].memory.kv_fraction_end << ", peak "
                                                                         << gens[0].memory.kv_fraction_peak);
}

TEST_CASE("kivi: on the tiny model, fewer bits move the logits further from full") {
  auto& m = tiny();
  std::vector<std::int32_t> ids(160);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>(3 + (i * 37 + i * i) % 250);
  const auto full = test::logits_under(m, ids, kv::FullCache{}, 8);
  float d[3];
  int i = 0;
  for (unsigned bits : {8u, 4u, 2u}) {
    d[i] = test::max_abs_diff(test::logits_under(m, ids, make(bits, 32, 32, kv::Mode::Decode), 8), full);
    MESSAGE("tiny llama_gqa_untied, 160 tokens in chunks of 8: kivi "
            << bits << "-bit (G 32, R 32) max |Δlogit| vs full = " << d[i]);
    ++i;
  }
  CHECK(d[0] > 0.0f);
  CHECK(d[0] < d[1]);
  CHECK(d[1] < d[2]);
}

TEST_CASE(
    "kivi: SmolLM2 teacher-forced logits at int8 stay near full, kivi2 perplexity worse than full, kivi8 and kivi4") {
  if (!test::smollm2_available()) return;
  const auto t0 = std::chrono::steady_clock::now();
  auto& m = test::smollm2_quant();
  const std::size_t V = static_cast<std::size_t>(m.config().vocab_size);
  test::JsonFile ref(test::test_data("smollm2/reference.json"));

  // Logits: two reference prompts (code, tool-call JSON), 16-token chunks, G = R = 32
  // so that most of each prompt is quantized by the time it is attended to.
  float worst8 = 0, worst2 = 0;
  for (auto p : ref.root["prompts"].get_array()) {
    const std::string name(p["name"].get_string().value());
    if (name != "code_fib" && name != "json_tool_call") continue;
    const auto ids = test::int_list(p["ids"]);
    const auto full = test::logits_under(m, ids, kv::FullCache{}, 16);
    const float d8 = test::max_abs_diff(test::logits_under(m, ids, make(8, 32, 32, kv::Mode::Decode), 16), full);
    const float d2 = test::max_abs_diff(test::logits_under(m, ids, make(2, 32, 32, kv::Mode::Decode), 16), full);
    MESSAGE("smollm2 " << name << " (" << ids.size() << " tokens): max |Δlogit| vs full, kivi8 " << d8 << ", kivi2 "
                       << d2);
    worst8 = std::max(worst8, d8);
    worst2 = std::max(worst2, d2);
  }
  CHECK(worst8 <= 0.5f);
  CHECK(worst2 > 4 * worst8);

  // Perplexity of the reference paragraph (298 tokens), 32-token chunks, default G/R.
  const auto ids = test::int_list(ref.root["perplexity"]["ids"]);
  const double ppl_full = test::smollm2_paragraph_full_ppl(ids);
  double ppl[3];
  int i = 0;
  for (unsigned bits : {8u, 4u, 2u}) {
    std::size_t bytes = 0, full_bytes = 0;
    ppl[i] = test::perplexity_of(
        test::logits_under(m, ids, make(bits, 32, 128, kv::Mode::Decode), 32, &bytes, &full_bytes), ids, V);
    MESSAGE("smollm2 paragraph ppl: full " << ppl_full << ", kivi" << bits << " (G 32, R 128, decode) " << ppl[i]
                                           << ", measured fraction "
                                           << static_cast<double>(bytes) / static_cast<double>(full_bytes));
    ++i;
  }
  CHECK(std::abs(ppl[0] - ppl_full) / ppl_full < 0.01);
  CHECK(ppl[2] > ppl[1]);
  CHECK(ppl[2] > ppl_full);
  CHECK(ppl[2] > ppl[0]);
  MESSAGE("kivi real-model test took " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
                                       << " s");
}

TEST_CASE("kivi and absmax: a cleared and refilled cache starts the packed state afresh") {
  kv::KvCache ck(1, 1, 64), ca(1, 1, 64);
  KiviQuant k = make(4, 32, 32, kv::Mode::Decode);
  kv::AbsmaxQuant a = kv::AbsmaxQuant::create(kv::PolicyOptions(0.25, kv::Mode::Decode), ModelConfig{});
  append_rows(ck, 70, 1);
  append_rows(ca, 70, 1);
  k.after_step(ck, {}, kv::StepKind::Prefill);
  a.after_step(ca, {}, kv::StepKind::Prefill);
  ck.clear();
  ca.clear();
  append_rows(ck, 40, 2);
  append_rows(ca, 40, 2);
  const kv::KvCache fresh_cache = ck;
  k.after_step(ck, {}, kv::StepKind::Prefill);
  a.after_step(ca, {}, kv::StepKind::Prefill);
  KiviQuant k2 = make(4, 32, 32, kv::Mode::Decode);
  kv::AbsmaxQuant a2 = kv::AbsmaxQuant::create(kv::PolicyOptions(0.25, kv::Mode::Decode), ModelConfig{});
  kv::KvCache ck2 = fresh_cache, ca2 = fresh_cache;
  k2.after_step(ck2, {}, kv::StepKind::Prefill);
  a2.after_step(ca2, {}, kv::StepKind::Prefill);
  CHECK(ck.head(0, 0).packed_keys.rows == 32);
  CHECK(k.stored_bytes(ck) == k2.stored_bytes(ck2));
  CHECK(a.stored_bytes(ca) == a2.stored_bytes(ca2));
  CHECK(ca.head(0, 0).materialize_keys(64) ==
        ca2.head(0, 0).materialize_keys(64));  // the old scale is gone with the rows
}
