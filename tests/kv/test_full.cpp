// `full` is a provable no-op, and attention recording observes without changing anything.

#include <doctest/doctest.h>

#include <numeric>

#include "../support/json_file.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/kv/full.hpp"
#include "kvcanary/engine/generate.hpp"

using namespace kvcanary;

namespace {
model::Transformer<float>& tiny() {
  static model::Transformer<float> m(io::load_hf_config(test::test_data("tiny/llama_gqa_untied")),
                                     test::test_data("tiny/llama_gqa_untied"), 2);
  return m;
}
const std::vector<std::vector<std::int32_t>> kPrompts = {{5, 17, 99, 3, 250, 8, 8, 41}, {200, 1, 45}};
}  // namespace

TEST_CASE("full: generation under the full policy is bit-identical to the plain forward pass") {
  auto& m = tiny();
  engine::GenerateOptions opt;
  opt.max_new_tokens = 10;
  opt.eos_ids = {-1};
  std::vector<kv::KvCache> caches;
  const auto gens = engine::generate_greedy(m, kPrompts, opt, {}, kv::FullCache{}, &caches);
  for (std::size_t b = 0; b < kPrompts.size(); ++b) {
    // Replay with bare forward calls, no policy machinery at all.
    kv::KvCache cache = m.new_cache();
    std::vector<float> logits;
    std::vector<std::int32_t> ids = kPrompts[b];
    model::Segment seg{&cache, ids, model::Logits::Last};
    m.forward(std::span<const model::Segment>(&seg, 1), logits);
    std::vector<std::int32_t> replay;
    for (int i = 0; i < 10; ++i) {
      replay.push_back(engine::argmax(logits.data(), logits.size()));
      model::Segment one{&cache, std::span<const std::int32_t>(&replay.back(), 1), model::Logits::Last};
      if (i < 9) m.forward(std::span<const model::Segment>(&one, 1), logits);
    }
    CHECK(gens[b].tokens == replay);
    // The caches hold the same bits.
    for (std::size_t l = 0; l < cache.layers(); ++l)
      for (std::size_t h = 0; h < cache.kv_heads(); ++h) {
        const auto& a = cache.head(l, h);
        const auto& g = caches[b].head(l, h);
        REQUIRE(a.size() == g.size());  // the last generated token is never fed back
        CHECK(std::equal(a.keys.begin(), a.keys.end(), g.keys.begin()));
        CHECK(std::equal(a.values.begin(), a.values.end(), g.values.begin()));
      }
    // Budget accounting: everything stored, fp16 units.
    CHECK(gens[b].memory.kv_fraction_end == 1.0);
    CHECK(gens[b].memory.kv_fraction_peak == 1.0);
    CHECK(gens[b].memory.kv_bytes_end ==
          (kPrompts[b].size() + 9) * 2 * 2 * 16 * 2 * 2);  // rows·layers·kv_heads·head_dim·(K,V)·fp16
  }
}

TEST_CASE("attention record: probabilities of every recorded query sum to one, logits unchanged") {
  auto& m = tiny();
  const std::vector<std::int32_t> ids = {5, 17, 99, 3, 250, 8, 8, 41, 77, 12};
  std::vector<float> plain, recorded;
  kv::KvCache c1 = m.new_cache(), c2 = m.new_cache();
  model::Segment s1{&c1, ids, model::Logits::All};
  m.forward(std::span<const model::Segment>(&s1, 1), plain);
  kv::AttentionRecord rec;
  const model::RecordRequest req{&rec, 4};
  model::Segment s2{&c2, ids, model::Logits::All, std::span<const model::RecordRequest>(&req, 1)};
  m.forward(std::span<const model::Segment>(&s2, 1), recorded);
  CHECK(plain == recorded);
  REQUIRE(rec.rows == 4);
  for (std::size_t l = 0; l < rec.num_layers; ++l)
    for (std::size_t h = 0; h < rec.num_heads; ++h) {
      const auto& mass = rec.mass(l, h);
      REQUIRE(mass.size() == ids.size());
      CHECK(std::accumulate(mass.begin(), mass.end(), 0.0) == doctest::Approx(4.0).epsilon(1e-5));
      // Only the last 4 queries were recorded: the first row is seen by all of them, the last
      // row only by the last query.
      CHECK(mass.front() > 0.0f);
      CHECK(mass.back() > 0.0f);
    }
  const auto group = rec.kv_head_mass(0, 0);
  CHECK(std::accumulate(group.begin(), group.end(), 0.0) ==
        doctest::Approx(4.0 * static_cast<double>(rec.group)).epsilon(1e-5));
}
