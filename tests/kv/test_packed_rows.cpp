// Packed rows and attention over them: the tile kernel dequantizes exactly as quantizer.hpp's
// scalar reference does; key_scores/value_mix over a head with packed rows equal, bit for bit,
// the fp32 kernels over the same values materialized; the forward pass over a quantized cache
// gives the logits a cache holding the dequantized values in fp32 gives; and the process
// holds codes, not fp32, for quantized rows.

#include <doctest/doctest.h>

#include <random>

#include "../support/json_file.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/kv/absmax.hpp"
#include "kvcanary/kv/kivi.hpp"
#include "kvcanary/kv/knorm.hpp"
#include "kvcanary/engine/generate.hpp"

using namespace kvcanary;

namespace {

std::vector<float> normal(std::size_t n, unsigned seed, float mean = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(mean, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

void append_rows(kv::KvCache& c, std::size_t n, unsigned seed) {
  const std::size_t D = c.head_dim();
  for (std::size_t t = 0; t < n; ++t) {
    for (std::size_t l = 0; l < c.layers(); ++l)
      for (std::size_t h = 0; h < c.kv_heads(); ++h) {
        auto k = normal(D, seed * 7919u + static_cast<unsigned>(t * 31 + l * 7 + h), 0.3f);
        k[1] *= 6.0f;  // an outlier channel, as post-RoPE keys have
        const auto v = normal(D, seed * 104729u + static_cast<unsigned>(t * 31 + l * 7 + h));
        c.head(l, h).append(k.data(), v.data(), static_cast<std::int32_t>(c.next_position()), D);
      }
    c.advance(1);
  }
}

// Scalar reference for element (r, d) of a packed store: quantizer.hpp's own dequantization.
float reference_value(const kv::PackedRows& p, std::size_t r, std::size_t d, std::size_t D) {
  std::vector<std::uint8_t> codes(D);
  kv::quant::unpack(&p.codes[r * p.row_bytes(D)], D, p.bits, codes.data());
  const std::size_t row_group = p.group_rows == 0 ? 0 : r / p.group_rows;
  const kv::quant::AsymParams& prm = p.params[row_group * p.col_groups(D) + d / p.group_cols];
  if (p.symmetric) {
    float x;
    kv::quant::sym_dequantize(&codes[d], 1, to_float(prm.scale), p.bits, &x);
    return x;
  }
  return kv::quant::asym_value(codes[d], to_float(prm.scale), to_float(prm.zero));
}

kv::KiviQuant kivi(unsigned bits, std::size_t group, std::size_t residual) {
  return kv::KiviQuant::create(
      kv::PolicyOptions(
          1.0, kv::Mode::Decode,
          {{"bits", std::to_string(bits)}, {"group", std::to_string(group)}, {"residual", std::to_string(residual)}}),
      ModelConfig{});
}
kv::AbsmaxQuant absmax(unsigned bits) {
  return kv::AbsmaxQuant::create(kv::PolicyOptions(1.0, kv::Mode::Decode, {{"bits", std::to_string(bits)}}),
                                 ModelConfig{});
}

// The same head with every row in fp32 (packed rows dequantized): what the cache held before
// quantized rows were kept packed.
kv::HeadStore unpacked_copy(const kv::HeadStore& s, std::size_t D) {
  kv::HeadStore out;
  out.keys = s.materialize_keys(D);
  out.values = s.materialize_values(D);
  out.positions = s.positions;
  return out;
}

kv::KvCache unpacked_copy(const kv::KvCache& c) {
  kv::KvCache out = c;
  for (std::size_t l = 0; l < c.layers(); ++l)
    for (std::size_t h = 0; h < c.kv_heads(); ++h) out.head(l, h) = unpacked_copy(c.head(l, h), c.head_dim());
  return out;
}

}  // namespace

TEST_CASE("packed rows: the tile kernel dequantizes bit for bit as quantizer.hpp's reference, every width and layout") {
  // D = 64 takes the 8-wide path only; D = 20 adds a scalar tail (and a value group of 16
  // channels that leaves a short last group of 4).
  for (std::size_t D : {64u, 20u}) {
    for (unsigned bits : {8u, 4u, 2u}) {
      kv::KvCache a(1, 1, D), k(1, 1, D);
      append_rows(a, 77, bits + 1);
      append_rows(k, 77, bits + 1);
      absmax(bits).after_step(a, {}, kv::StepKind::Prefill);
      kivi(bits, 32, 32).after_step(k, {}, kv::StepKind::Prefill);
      const kv::PackedRows* stores[] = {&a.head(0, 0).packed_keys, &a.head(0, 0).packed_values,
                                        &k.head(0, 0).packed_keys, &k.head(0, 0).packed_values};
      for (const kv::PackedRows* p : stores) {
        REQUIRE(p->rows > 0);
        // From an offset inside a row group, as attention's tiles start.
        for (std::size_t first : {std::size_t{0}, std::size_t{5}}) {
          const std::size_t count = p->rows - first;
          std::vector<float> got(count * D);
          p->dequantize(first, count, D, got.data());
          for (std::size_t t = 0; t < count; ++t)
            for (std::size_t d = 0; d < D; ++d) REQUIRE(got[t * D + d] == reference_value(*p, first + t, d, D));
        }
      }
    }
  }
}

TEST_CASE(
    "packed rows: key_scores and value_mix over packed + fp32 rows equal the fp32 kernels over the materialized head") {
  constexpr std::size_t D = 64, nq = 3;
  for (unsigned bits : {8u, 4u, 2u}) {
    kv::KvCache c(1, 1, D);
    append_rows(c, 150, 40 + bits);
    kivi(bits, 32, 32).after_step(c, {}, kv::StepKind::Prefill);  // keys 128 packed + 22 fp32; values 118 + 32
    const kv::HeadStore& s = c.head(0, 0);
    REQUIRE(s.packed_keys.rows == 128);
    REQUIRE(s.packed_values.rows == 118);
    const kv::HeadStore plain = unpacked_copy(s, D);
    const auto q = normal(nq * D, 9);
    // Counts inside the first tile, on a tile edge, inside the packed rows, across into fp32.
    for (std::size_t count : {1u, 31u, 32u, 100u, 118u, 128u, 129u, 150u}) {
      std::vector<float> scores(nq * count), want(nq * count);
      s.key_scores(q.data(), nq, D, count, scores.data());
      for (std::size_t g = 0; g < nq; ++g) ops::dot_rows(plain.keys.data(), &q[g * D], D, count, &want[g * count]);
      CHECK(scores == want);

      auto p = normal(nq * count, 11);
      for (std::size_t g = 0; g < nq; ++g) ops::softmax(&p[g * count], count);
      p[0] = 0.0f;  // a zero probability is skipped by both paths
      std::vector<float> mixed(nq * D), want_mix(nq * D);
      s.value_mix(p.data(), nq, D, count, mixed.data());
      for (std::size_t g = 0; g < nq; ++g)
        ops::weighted_sum(&want_mix[g * D], &p[g * count], plain.values.data(), D, count);
      CHECK(mixed == want_mix);
    }
  }
}

TEST_CASE("packed rows: the forward pass over a quantized cache gives the logits of the same values held in fp32") {
  const auto dir = test::test_data("tiny/llama_gqa_untied");
  model::Transformer<float> m(io::load_hf_config(dir), dir, 2);
  std::vector<std::int32_t> prompt(70), next = {17, 42, 99};
  for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<std::int32_t>(3 + (i * 37 + i * i) % 250);
  auto run = [&](auto policy) {
    kv::KvCache packed = m.new_cache();
    std::vector<float> logits;
    std::vector<model::Segment> seg = {{&packed, prompt, model::Logits::Last}};
    auto* ptr = &policy;
    engine::forward_with_policies(m, seg, std::span<decltype(ptr) const>(&ptr, 1), kv::StepKind::Prefill, logits);
    kv::KvCache plain = unpacked_copy(packed);
    CHECK(packed.head(1, 1).has_packed_rows());
    CHECK_FALSE(plain.head(1, 1).has_packed_rows());
    std::vector<float> a, b;
    std::vector<model::Segment> sa = {{&packed, next, model::Logits::All}}, sb = {{&plain, next, model::Logits::All}};
    m.forward(sa, a);
    m.forward(sb, b);
    CHECK(a == b);
    CHECK(packed.resident_bytes() < plain.resident_bytes());
  };
  for (unsigned bits : {8u, 4u, 2u}) {
    run(absmax(bits));
    run(kivi(bits, 32, 32));
  }
}

TEST_CASE(
    "packed rows: the process holds codes, not fp32, for quantized rows, and eviction refuses KIVI's grouped keys") {
  constexpr std::size_t D = 64;
  kv::KvCache c(2, 3, D);
  append_rows(c, 512, 3);
  const std::size_t fp32 = c.resident_bytes();
  CHECK(fp32 == 2 * 3 * 512 * (2 * D * 4 + 4));
  kv::KvCache q = c;
  kv::KiviQuant p = kivi(2, 32, 128);
  p.after_step(q, {}, kv::StepKind::Prefill);
  // Resident: the budget's bytes with the residual at fp32 instead of fp16, plus positions.
  const std::size_t residual_rows = 2 * 3 * (0 /*keys: 512 = 4R*/ + 128 /*values*/);
  CHECK(q.resident_bytes() == p.stored_bytes(q) + residual_rows * D * 2 + 2 * 3 * 512 * 4);
  MESSAGE("512 tokens × 2 layers × 3 heads × 64: fp32 cache " << fp32 << " B, kivi 2-bit " << q.resident_bytes()
                                                              << " B resident");
  CHECK(q.resident_bytes() * 4 < fp32);

  const std::vector<std::size_t> rows = {0, 1, 2};
  CHECK_THROWS_AS(q.head(0, 0).keep(rows, D), Error);
  kv::KNorm knorm = kv::KNorm::create(kv::PolicyOptions(0.5, kv::Mode::Decode), ModelConfig{});
  CHECK_THROWS_AS(knorm.after_step(q, {}, kv::StepKind::Prefill), Error);
  // Two quantizers on one cache would read each other's codes wrongly: refused.
  CHECK_THROWS_AS(absmax(4).after_step(q, {}, kv::StepKind::Prefill), Error);
}
