// think: channel scores and pruned channels against the numpy transcription of KVPress's
// ThinKPress (scripts/golden/make_eviction_goldens.py → tests/data/kv/eviction_goldens.json);
// on the tiny model: budget 1 ≡ full bit-exact, every row kept, exactly ⌊λd⌋ channels zeroed
// per head in the prompt rows and none in the question's or generated rows, the bytes; options.

#include <doctest/doctest.h>

#include "eviction_test_support.hpp"
#include "kvcanary/kv/any_policy.hpp"
#include "kvcanary/kv/think.hpp"
#include "kvcanary/engine/generate.hpp"

using namespace kvcanary;
using namespace kvcanary::test;

namespace {

// Channels whose value is 0 in every one of the first `rows` key rows of a head.
std::vector<std::size_t> zero_channels(const kv::HeadStore& s, std::size_t rows, std::size_t d) {
  const std::vector<float> k = s.materialize_keys(d);
  std::vector<std::size_t> out;
  for (std::size_t c = 0; c < d; ++c) {
    bool zero = true;
    for (std::size_t j = 0; j < rows; ++j) zero = zero && k[j * d + c] == 0.0f;
    if (zero) out.push_back(c);
  }
  return out;
}

}  // namespace

TEST_CASE("think: channel scores and pruned channels equal the numpy goldens (GQA groups, ties to the lower channel)") {
  JsonFile g(test_data("kv/eviction_goldens.json"));
  int cases = 0;
  for (auto c : g.root["think"].get_array()) {
    const auto n = static_cast<std::size_t>(c["n"].get_int64().value());
    const auto d = static_cast<std::size_t>(c["head_dim"].get_int64().value());
    const auto heads = static_cast<std::size_t>(c["heads"].get_int64().value());
    const auto group = static_cast<std::size_t>(c["group"].get_int64().value());
    const auto window = static_cast<std::size_t>(c["window"].get_int64().value());
    const double ratio = c["key_channel_ratio"].get_double().value();
    const std::size_t w = std::min(window, n);
    CAPTURE(n);

    kv::AttentionRecord record;  // what the forward pass leaves: the window's post-RoPE Σq²
    record.rows = w;
    record.num_layers = 1;
    record.num_heads = heads;
    record.group = group;
    record.head_dim = d;
    record.per_layer_head.assign(heads, std::vector<float>(n, 0.0f));
    record.rotated_query_energy.assign(heads * d, 0.0);
    std::size_t h = 0;
    for (auto q : c["window_queries"].get_array()) {
      const auto qs = float_list(q);
      for (std::size_t r = 0; r < w; ++r)
        for (std::size_t ch = 0; ch < d; ++ch)
          record.rotated_query_energy[h * d + ch] += static_cast<double>(qs[r * d + ch]) * qs[r * d + ch];
      ++h;
    }
    REQUIRE(h == heads);

    auto p = kv::Think::create(
        kv::PolicyOptions(1.0, kv::Mode::Prompt,
                          {{"window", std::to_string(window)}, {"key_channel_ratio", kv::format_number(ratio)}}),
        eviction::one_layer_shape(heads, heads / group, d));
    CHECK(p.attention_rows(kv::StepKind::Prefill, n) == w);
    kv::KvCache cache(1, heads / group, d);
    std::vector<std::vector<float>> keys;
    for (auto k : c["keys"].get_array()) keys.push_back(float_list(k));
    std::vector<float> v(d, 1.0f);
    for (std::size_t kvh = 0; kvh < keys.size(); ++kvh)
      for (std::size_t r = 0; r < n; ++r)
        cache.head(0, kvh).append(&keys[kvh][r * d], v.data(), static_cast<std::int32_t>(r), d);
    cache.advance(static_cast<std::int64_t>(n));

    std::vector<std::vector<std::size_t>> zero_before;  // channels already 0 in every key (the tie case)
    for (std::size_t k = 0; k < keys.size(); ++k) zero_before.push_back(zero_channels(cache.head(0, k), n, d));
    std::vector<std::vector<std::size_t>> chosen;
    std::size_t kvh = 0;
    for (auto want_scores : c["scores"].get_array()) {
      std::vector<const double*> energy;
      for (std::size_t gq = 0; gq < group; ++gq) energy.push_back(record.query_energy(0, kvh * group + gq));
      const auto got = kv::Think::channel_scores(energy, w, keys[kvh], n, d);
      const auto want = float_list(want_scores);
      for (std::size_t ch = 0; ch < d; ++ch) CHECK(got[ch] == doctest::Approx(want[ch]).epsilon(1e-5).scale(1e-12));
      chosen.push_back(kv::Think::pruned(got, p.channels_to_prune(d)));
      ++kvh;
    }
    p.after_step(cache, record, kv::StepKind::Prefill);
    kvh = 0;
    for (auto want : c["pruned"].get_array()) {
      const auto expected = int_list(want);
      CHECK(std::vector<std::int32_t>(chosen[kvh].begin(), chosen[kvh].end()) == expected);
      // In the cache: exactly those channels zeroed, besides any that were 0 already.
      std::vector<std::size_t> want_zero(chosen[kvh]);
      want_zero.insert(want_zero.end(), zero_before[kvh].begin(), zero_before[kvh].end());
      std::sort(want_zero.begin(), want_zero.end());
      want_zero.erase(std::unique(want_zero.begin(), want_zero.end()), want_zero.end());
      CHECK(zero_channels(cache.head(0, kvh), n, d) == want_zero);
      CHECK(cache.head(0, kvh).size() == n);  // no row evicted
      ++kvh;
    }
    ++cases;
  }
  CHECK(cases == 3);
}

TEST_CASE("think: on the tiny model — budget 1 is full, channels pruned in the prompt rows only, bytes measured") {
  auto& m = eviction::tiny();
  const std::size_t D = static_cast<std::size_t>(m.config().head_dim);
  const auto& prompt = eviction::prompts()[0];
  const std::size_t question = 10, context = prompt.size() - question;
  auto opts = eviction::no_eos(12);
  opts.question_tokens = {question};

  const auto run = [&](const auto& p, std::vector<kv::KvCache>& caches) {
    return engine::generate_greedy(m, std::span<const std::vector<std::int32_t>>(&prompt, 1), opts, {}, p, &caches);
  };
  std::vector<kv::KvCache> full_caches, one_caches, half_caches;
  const auto full = run(kv::FullCache{}, full_caches);
  const auto one = run(kv::Think::create(kv::PolicyOptions(1.0, kv::Mode::Prompt), m.config()), one_caches);
  CHECK(one[0].tokens == full[0].tokens);
  CHECK(one[0].memory.kv_bytes_end == full[0].memory.kv_bytes_end);
  CHECK(one_caches[0].head(0, 0).keys == full_caches[0].head(0, 0).keys);

  const auto think = kv::Think::create(kv::PolicyOptions(0.75, kv::Mode::Prompt), m.config());  // λ = 0.5
  CHECK(think.ratio == doctest::Approx(0.5));
  const auto half = run(think, half_caches);
  const kv::KvCache& c = half_caches[0];
  const std::size_t pruned = D / 2;
  for (std::size_t l = 0; l < c.layers(); ++l)
    for (std::size_t h = 0; h < c.kv_heads(); ++h) {
      CAPTURE(l);
      CAPTURE(h);
      const kv::HeadStore& s = c.head(l, h);
      CHECK(s.size() == full_caches[0].head(l, h).size());  // every row kept
      CHECK(zero_channels(s, context, D).size() == pruned);
      // The question's and the generated rows are whole: none of their channels is all zero.
      const std::vector<float> k = s.materialize_keys(D);
      for (std::size_t j = context; j < s.size(); ++j) {
        std::size_t zeros = 0;
        for (std::size_t ch = 0; ch < D; ++ch) zeros += k[j * D + ch] == 0.0f;
        CHECK(zeros == 0);
      }
    }
  // Bytes: per head, the context rows' K lose `pruned` channels, plus a D-bit mask.
  const std::size_t heads = c.layers() * c.kv_heads(), rows = c.head(0, 0).size();
  CHECK(half[0].memory.kv_bytes_end == heads * ((rows * D * 2 - context * pruned) * 2 + (D + 7) / 8));
  CHECK(half[0].memory.kv_fraction_end < 1.0);
  CHECK(half[0].memory.kv_fraction_end > 0.74);
}

TEST_CASE("think: options, identity, prompt only") {
  const ModelConfig c = eviction::one_layer_shape(4, 2, 8);
  const auto p = kv::Think::create(kv::PolicyOptions(0.75, std::nullopt), c);
  CHECK(p.identity() == "think(budget=0.75,mode=prompt,key_channel_ratio=0.5,window=32)");
  CHECK(p.channels_to_prune(64) == 32);
  CHECK(kv::Think::create(kv::PolicyOptions(0.9, std::nullopt), c).channels_to_prune(64) == 12);  // ⌊0.2 · 64⌋
  CHECK(kv::Think::create(kv::PolicyOptions(0.3, kv::Mode::Prompt, {{"key_channel_ratio", "0.5"}}), c).ratio == 0.5);
  CHECK_FALSE(kv::capacity_of(p).has_value());
  CHECK_THROWS_WITH_AS(kv::Think::create(kv::PolicyOptions(0.4, std::nullopt), c), doctest::Contains("budget"), Error);
  CHECK_THROWS_WITH_AS(kv::Think::create(kv::PolicyOptions(0.75, kv::Mode::Decode), c),
                       doctest::Contains("prompt-only"), Error);
  CHECK_THROWS_WITH_AS(kv::Think::create(kv::PolicyOptions(0.75, kv::Mode::Prompt, {{"key_channel_ratio", "1.5"}}), c),
                       doctest::Contains("key_channel_ratio"), Error);
}
