// The deployed cache types as a policy (kv/cache_type_quant.hpp), eviction + quantization
// composed (kv/composed.hpp), KIVI with separate K/V widths: logits over packed rows equal the
// logits over the same values in fp32, bytes equal the hand count, parameters and identities.

#include <doctest/doctest.h>

#include <random>

#include "../support/json_file.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/kv/registry.hpp"
#include "kvcanary/engine/generate.hpp"

using namespace kvcanary;

namespace {

void append_rows(kv::KvCache& c, std::size_t n, unsigned seed) {
  const std::size_t D = c.head_dim();
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> k(D), v(D);
  for (std::size_t t = 0; t < n; ++t) {
    for (std::size_t l = 0; l < c.layers(); ++l)
      for (std::size_t h = 0; h < c.kv_heads(); ++h) {
        for (std::size_t i = 0; i < D; ++i) {
          k[i] = 0.3f * d(rng);
          v[i] = d(rng);
        }
        k[1] *= 20.0f;  // an outlier channel
        c.head(l, h).append(k.data(), v.data(), static_cast<std::int32_t>(c.next_position()), D);
      }
    c.advance(1);
  }
}

// The composition tests count rows under kvcanary 0.2's `seen` capacity (ceil(budget · tokens
// seen) per step); tests/kv/test_eviction_semantics.cpp checks `fixed`.
kv::PolicyOptions opts(double budget, kv::Mode mode, std::map<std::string, std::string> p = {}) {
  return kv::PolicyOptions(budget, mode, std::move(p), "test.toml", kv::Capacity::Seen);
}

// A built policy as the sweep holds it.
const auto to_any = [](auto policy) { return kv::AnyPolicyOf<kv::AllPolicies>{policy}; };

template <class F>
auto make(std::string_view name, const kv::PolicyOptions& o, F&& f) {
  return kv::with_policy(name, o, ModelConfig{}, std::forward<F>(f));
}

kv::CacheTypeQuant cache_type(std::string_view name, kv::Mode mode = kv::Mode::Decode,
                              std::map<std::string, std::string> p = {}) {
  return kv::CacheTypeQuant::create(name, opts(1.0, mode, std::move(p)), ModelConfig{});
}

kv::KvCache unpacked_copy(const kv::KvCache& c) {
  kv::KvCache out = c;
  for (std::size_t l = 0; l < c.layers(); ++l)
    for (std::size_t h = 0; h < c.kv_heads(); ++h) {
      const kv::HeadStore& s = c.head(l, h);
      kv::HeadStore plain;
      plain.keys = s.materialize_keys(c.head_dim());
      plain.values = s.materialize_values(c.head_dim());
      plain.positions = s.positions;
      out.head(l, h) = plain;
    }
  return out;
}

std::string field_of(std::string_view name, std::map<std::string, std::string> p, double budget = 0.5) {
  try {
    make(name, opts(budget, kv::Mode::Prompt, std::move(p)), [](auto) {});  // prompt: snapkv is prompt-only
  } catch (const Error& e) { return e.field(); }
  return "";
}

}  // namespace

TEST_CASE("cache_type: the forward pass over packed rows gives the logits of the same values in fp32, every type") {
  const auto dir = test::test_data("tiny/llama3_rope");  // head_dim 32: one llama.cpp block per row
  model::Transformer<float> m(io::load_hf_config(dir), dir, 2);
  std::vector<std::int32_t> prompt(60), next = {17, 42, 99};
  for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<std::int32_t>(3 + (i * 37 + i * i) % 250);
  auto run = [&](auto policy) {
    CAPTURE(policy.identity());
    kv::KvCache packed = m.new_cache();
    std::vector<float> logits, full;
    std::vector<model::Segment> seg = {{&packed, prompt, model::Logits::Last}};
    auto* ptr = &policy;
    engine::forward_with_policies(m, seg, std::span<decltype(ptr) const>(&ptr, 1), kv::StepKind::Prefill, logits);
    REQUIRE(packed.head(1, 0).packed_keys.rows == prompt.size());
    REQUIRE(packed.head(1, 0).keys.empty());
    kv::KvCache plain = unpacked_copy(packed);
    std::vector<float> a, b;
    std::vector<model::Segment> sa = {{&packed, next, model::Logits::All}}, sb = {{&plain, next, model::Logits::All}};
    m.forward(sa, a);
    m.forward(sb, b);
    CHECK(a == b);
    // and they differ from the uncompressed cache (the codes are not a copy)
    kv::KvCache exact = m.new_cache();
    std::vector<model::Segment> se = {{&exact, prompt, model::Logits::Last}};
    m.forward(se, full);
    std::vector<model::Segment> se2 = {{&exact, next, model::Logits::All}};
    m.forward(se2, full);
    CHECK(a != full);
    CHECK(packed.resident_bytes() < plain.resident_bytes());
  };
  for (const auto& i : kv::kCacheTypes) run(cache_type(i.name));
  run(cache_type("q8_0", kv::Mode::Decode, {{"v", "q4_0"}}));
  run(cache_type("fp8_e4m3", kv::Mode::Decode, {{"scale", "amax"}}));
  run(cache_type("nvfp4", kv::Mode::Decode, {{"scale", "amax"}}));
  run(cache_type("fp8_e5m2", kv::Mode::Decode, {{"scale", "0.25"}}));
}

TEST_CASE("cache_type: resident and measured bytes equal the hand count per type") {
  // 2 layers × 2 KV heads × head_dim 64, 10 tokens: 40 K rows and 40 V rows.
  struct Want {
    const char* name;
    std::size_t row_bytes, scale_bytes;
  };
  for (const Want w : {Want{"q8_0", 68, 0},
                       {"q4_0", 36, 0},
                       {"q4_1", 40, 0},
                       {"q5_0", 44, 0},
                       {"q5_1", 48, 0},
                       {"iq4_nl", 36, 0},
                       {"fp8_e4m3", 64, 16},
                       {"fp8_e5m2", 64, 16},
                       {"nvfp4", 36, 16},
                       {"mxfp4", 34, 0}}) {
    CAPTURE(w.name);
    kv::KvCache c(2, 2, 64);
    append_rows(c, 10, 7);
    auto p = cache_type(w.name, kv::Mode::Prompt);
    p.after_step(c, {}, kv::StepKind::Prefill);
    // 80 coded rows + one fp32 scale per layer for K and for V (fp8, nvfp4).
    CHECK(p.stored_bytes(c) == 80 * w.row_bytes + w.scale_bytes);
    CHECK(c.resident_bytes() == 80 * w.row_bytes + 40 * sizeof(std::int32_t));
    // prompt mode: 3 generated tokens stay full precision, counted at fp16 (2 × 64 × 2 B per row)
    append_rows(c, 3, 8);
    p.after_step(c, {}, kv::StepKind::Decode);
    CHECK(p.stored_bytes(c) == 80 * w.row_bytes + w.scale_bytes + 12 * 256);
    auto d = cache_type(w.name, kv::Mode::Decode);
    kv::KvCache c2(2, 2, 64);
    append_rows(c2, 13, 7);
    d.after_step(c2, {}, kv::StepKind::Prefill);
    CHECK(d.stored_bytes(c2) == 104 * w.row_bytes + w.scale_bytes);
  }
  // Separate K and V types: llama.cpp's -ctk q8_0 -ctv q4_0.
  kv::KvCache c(2, 2, 64);
  append_rows(c, 10, 7);
  auto p = cache_type("q8_0", kv::Mode::Decode, {{"v", "q4_0"}});
  p.after_step(c, {}, kv::StepKind::Prefill);
  CHECK(p.stored_bytes(c) == 40 * 68 + 40 * 36);
  CHECK(p.identity() == "q8_0(k=q8_0,v=q4_0,mode=decode)");
}

TEST_CASE(
    "cache_type: per-tensor scale — 1 by default, calibrated per layer from the prompt with scale=amax, then fixed") {
  kv::KvCache c(2, 1, 32);
  append_rows(c, 8, 3);
  auto p = cache_type("fp8_e4m3", kv::Mode::Decode, {{"scale", "amax"}});
  float amax[2] = {0, 0};
  for (std::size_t l = 0; l < 2; ++l)
    for (float x : c.head(l, 0).keys) amax[l] = std::max(amax[l], std::abs(x));
  p.after_step(c, {}, kv::StepKind::Prefill);
  for (std::size_t l = 0; l < 2; ++l) {
    CHECK(c.head(l, 0).packed_keys.tensor_scale == amax[l] / 448.0f);
    CHECK(p.k_scale[l] == amax[l] / 448.0f);
  }
  append_rows(c, 2, 4);
  p.after_step(c, {}, kv::StepKind::Decode);  // fixed after the prompt
  CHECK(c.head(0, 0).packed_keys.tensor_scale == amax[0] / 448.0f);
  CHECK(p.identity() == "fp8_e4m3(k=fp8_e4m3,v=fp8_e4m3,scale=amax,mode=decode)");
  CHECK(cache_type("fp8_e5m2").k_scale.empty());
  kv::KvCache c2(1, 1, 32);
  append_rows(c2, 4, 3);
  auto one = cache_type("fp8_e5m2");
  one.after_step(c2, {}, kv::StepKind::Prefill);
  CHECK(c2.head(0, 0).packed_values.tensor_scale == 1.0f);
}

TEST_CASE("cache_type: bad parameters name their field") {
  CHECK(field_of("q4_0", {{"v", "q3_0"}}) == "v");
  CHECK(field_of("q4_0", {{"k", "fp16"}}) == "k");
  CHECK(field_of("q4_0", {{"scale", "amax"}}) == "scale");  // llama.cpp types have no per-tensor scale
  CHECK(field_of("fp8_e4m3", {{"scale", "-1"}}) == "scale");
  CHECK(field_of("fp8_e4m3", {{"bits", "4"}}) == "bits");
  CHECK(field_of("q4_0", {}) == "");
  kv::KvCache c(1, 1, 16);  // head_dim 16: no whole block of 32
  append_rows(c, 2, 1);
  auto p = cache_type("q4_0");
  try {
    p.after_step(c, {}, kv::StepKind::Prefill);
    FAIL("expected an error");
  } catch (const Error& e) { CHECK(e.field() == "head_dim"); }
  auto nv = cache_type("nvfp4");
  CHECK_NOTHROW(nv.after_step(c, {}, kv::StepKind::Prefill));  // blocks of 16 fit
}

TEST_CASE("compose: eviction then a quantizer — kept rows × bytes per row, identity of both, parameters routed") {
  CHECK(kv::has_policy("snapkv+q4_0"));
  CHECK(kv::has_policy("q4_0"));
  CHECK_FALSE(kv::has_policy("q4_2"));
  auto built = make("knorm + q4_0", opts(0.25, kv::Mode::Prompt, {{"window", "2"}, {"v", "q8_0"}}), to_any);
  CHECK(built.identity() ==
        "knorm(budget=0.25,mode=prompt,capacity=seen,window=2,skip_layers=0)+q4_0(k=q4_0,v=q8_0,mode=prompt)");
  kv::KvCache c(2, 2, 64);
  append_rows(c, 40, 5);
  built.after_step(c, {}, kv::StepKind::Prefill);
  // ceil(0.25 · 40) = 10 rows per head kept, K as q4_0 (36 B), V as q8_0 (68 B)
  CHECK(c.head(1, 1).size() == 10);
  CHECK(c.head(1, 1).packed_keys.rows == 10);
  CHECK(built.stored_bytes(c) == 4 * 10 * (36 + 68));
  // prompt mode: generated rows are neither evicted nor coded
  append_rows(c, 4, 6);
  built.after_step(c, {}, kv::StepKind::Decode);
  CHECK(built.stored_bytes(c) == 4 * 10 * (36 + 68) + 4 * 4 * 256);

  CHECK(field_of("snapkv+q4_0", {{"bits", "4"}}) == "bits");  // neither part has `bits`
  CHECK(field_of("snapkv+kivi", {}) == "bits");               // kivi needs bits under composition
  CHECK(field_of("snapkv+kivi", {{"bits", "4"}, {"window", "4"}}) == "");
  CHECK(field_of("q4_0+snapkv", {}) == "compressor");
  CHECK(field_of("snapkv+h2o", {}) == "compressor");
  CHECK(field_of("snapkv+q4_0+q8_0", {}) == "compressor");
}

TEST_CASE(
    "compose: decode mode evicts coded rows with their codes, KIVI keys refuse, StreamingLLM re-encodes shifted keys") {
  kv::KvCache c(1, 2, 64);
  append_rows(c, 20, 9);
  auto p = make("random+q5_1", opts(0.5, kv::Mode::Decode), to_any);
  p.after_step(c, {}, kv::StepKind::Prefill);
  CHECK(c.head(0, 0).size() == 10);
  const std::vector<float> before = c.head(0, 1).materialize_values(64);
  const std::vector<std::int32_t> pos_before = c.head(0, 1).positions;
  append_rows(c, 2, 10);
  p.after_step(c, {}, kv::StepKind::Decode);  // 22 seen → keep 11 of 12 rows (10 coded + 2 new)
  const kv::HeadStore& s = c.head(0, 1);
  CHECK(s.size() == 11);
  CHECK(s.packed_values.rows == 11);
  CHECK(p.stored_bytes(c) == 2 * 11 * 2 * 48);
  // every surviving coded row decodes exactly as before the eviction
  const std::vector<float> after = s.materialize_values(64);
  for (std::size_t r = 0; r < s.size(); ++r) {
    const auto it = std::find(pos_before.begin(), pos_before.end(), s.positions[r]);
    if (it == pos_before.end()) continue;  // a new row
    const std::size_t old = static_cast<std::size_t>(it - pos_before.begin());
    CHECK(std::equal(after.begin() + static_cast<std::ptrdiff_t>(r * 64),
                     after.begin() + static_cast<std::ptrdiff_t>((r + 1) * 64),
                     before.begin() + static_cast<std::ptrdiff_t>(old * 64)));
  }

  // KIVI's keys share per-channel scales over G rows: evicting one of them is refused.
  kv::KvCache k(1, 1, 64);
  append_rows(k, 64, 11);
  auto kp = make("random+kivi", opts(0.5, kv::Mode::Decode, {{"bits", "4"}, {"residual", "32"}}), to_any);
  kp.after_step(k, {}, kv::StepKind::Prefill);  // 32 kept; their 32 keys quantized as one group
  append_rows(k, 8, 12);
  CHECK(k.head(0, 0).packed_keys.rows == 32);
  CHECK_THROWS_AS(kp.after_step(k, {}, kv::StepKind::Decode), Error);  // keeps 36 of 40: drops coded keys

  // StreamingLLM after q8_0 in decode mode: kept keys move to contiguous slots (decoded,
  // rotated, re-encoded — llama.cpp's K-shift on a quantized cache).
  ModelConfig cfg;
  cfg.head_dim = 64;
  cfg.rope_theta = 10000.0;
  auto sp = kv::with_policy("streamingllm+q8_0", opts(0.5, kv::Mode::Decode, {{"sinks", "2"}}), cfg, to_any);
  kv::KvCache st(1, 1, 64);
  append_rows(st, 16, 13);
  sp.after_step(st, {}, kv::StepKind::Prefill);
  append_rows(st, 4, 14);
  sp.after_step(st, {}, kv::StepKind::Decode);
  const kv::HeadStore& hs = st.head(0, 0);
  CHECK(hs.size() == 10);
  CHECK(hs.packed_keys.rows == 10);
  for (std::size_t r = 0; r < hs.size(); ++r) CHECK(hs.positions[r] == static_cast<std::int32_t>(r));
}

TEST_CASE("compose: a prompt-only press asked for decode mode runs on the prefill, and the quantizer codes every row") {
  auto p = make("chunkkv+q8_0", opts(0.5, kv::Mode::Decode, {{"scorer", "knorm"}}), to_any);
  CHECK(p.mode() == kv::Mode::Decode);
  const std::string id = p.identity();
  CAPTURE(id);
  CHECK(id.rfind("chunkkv(", 0) == 0);
  CHECK(id.find("mode=prompt") < id.find('+'));                            // the press: its paper's mode
  CHECK(id.find("q8_0(k=q8_0,v=q8_0,mode=decode)") != std::string::npos);  // the cache type: every row
  kv::KvCache c(1, 2, 64);
  append_rows(c, 40, 21);
  p.after_step(c, {}, kv::StepKind::Prefill);
  const std::size_t kept = c.head(0, 0).size();
  CHECK(kept < 40);  // the press evicted
  for (std::size_t h = 0; h < 2; ++h) {
    CHECK(c.head(0, h).packed_keys.rows == c.head(0, h).size());
    CHECK(c.head(0, h).packed_values.rows == c.head(0, h).size());
  }
  append_rows(c, 3, 22);
  p.after_step(c, {}, kv::StepKind::Decode);
  // No eviction after the prefill; the generated rows are coded as they come (q8_0 at
  // head_dim 64: 2 blocks of 34 bytes, for K and for V).
  std::size_t rows = 0;
  for (std::size_t h = 0; h < 2; ++h) {
    const kv::HeadStore& s = c.head(0, h);
    CHECK(s.packed_keys.rows == s.size());
    CHECK(s.packed_values.rows == s.size());
    rows += s.size();
  }
  CHECK(c.head(0, 0).size() == kept + 3);
  CHECK(p.stored_bytes(c) == rows * (68 + 68));

  // The same press in prompt mode leaves generated rows in full precision, as before; and a
  // policy that can run every step still evicts every step under decode.
  auto prompt = make("chunkkv+q8_0", opts(0.5, kv::Mode::Prompt, {{"scorer", "knorm"}}), to_any);
  CHECK(prompt.mode() == kv::Mode::Prompt);
  CHECK(prompt.identity().find("mode=decode") == std::string::npos);
  auto every_step = make("knorm+q8_0", opts(0.5, kv::Mode::Decode), to_any);
  CHECK(every_step.identity().find("mode=prompt") == std::string::npos);
}

TEST_CASE("kivi: separate K and V bit widths") {
  auto p = kv::KiviQuant::create(opts(1.0, kv::Mode::Decode, {{"k_bits", "4"}, {"v_bits", "2"}, {"residual", "32"}}),
                                 ModelConfig{});
  CHECK(p.identity() == "kivi(k_bits=4,v_bits=2,group=32,residual=32,mode=decode)");
  kv::KvCache c(1, 1, 64);
  append_rows(c, 64, 2);
  p.after_step(c, {}, kv::StepKind::Prefill);
  CHECK(c.head(0, 0).packed_keys.bits == 4);
  CHECK(c.head(0, 0).packed_values.bits == 2);
  // keys: 64 rows × 32 B + 2 groups × 64 pairs × 4 B; values: 32 rows × (16 B + 2 pairs × 4 B) + 32 residual × 128 B
  CHECK(p.stored_bytes(c) == 64 * 32 + 2 * 64 * 4 + 32 * (16 + 2 * 4) + 32 * 128);
  // `bits` is the default of both; one of them may override it
  auto q = kv::KiviQuant::create(opts(0.125, kv::Mode::Decode, {{"k_bits", "4"}}), ModelConfig{});
  CHECK(q.k_bits == 4);
  CHECK(q.v_bits == 2);
  CHECK(kv::KiviQuant::create(opts(0.25, kv::Mode::Decode), ModelConfig{}).identity() ==
        "kivi(bits=4,group=32,residual=128,mode=decode)");
  CHECK(field_of("kivi", {{"k_bits", "3"}, {"v_bits", "2"}}) == "k_bits");
}
