// base_scorer: the one `scorer`/`window`/`kernel` parser and per-head scorer of the presses built
// over another method's scores (adakv, chunkkv): each kind scores a head as its own policy does,
// snapkv's window rows are +∞, and a scorer a press does not take is refused by name.

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <limits>

#include "eviction_test_support.hpp"
#include "kvcanary/kv/base_scorer.hpp"

using namespace kvcanary;
using Kind = kv::BaseScorer::Kind;

namespace {

constexpr std::array<Kind, 3> kAllowed = {Kind::KeyDiff, Kind::SnapKv, Kind::KNorm};

kv::BaseScorer parse(std::map<std::string, std::string> params) {
  return kv::BaseScorer::from(kv::PolicyOptions(0.5, kv::Mode::Prompt, std::move(params)), kAllowed);
}

// One layer, one KV head (two query heads), n rows whose keys differ in norm and direction.
kv::KvCache cache_of(std::size_t n, std::size_t d) {
  kv::KvCache cache(1, 1, d);
  std::vector<float> k(d), v(d, 0.0f);
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t i = 0; i < d; ++i) k[i] = std::sin(static_cast<float>(r * d + i)) * static_cast<float>(1 + r % 3);
    cache.head(0, 0).append(k.data(), v.data(), static_cast<std::int32_t>(r), d);
  }
  cache.advance(static_cast<std::int64_t>(n));
  return cache;
}

}  // namespace

TEST_CASE("base scorer: the first allowed kind is the default, others refused by name, kernel odd") {
  const auto b = parse({});
  CHECK(b.kind == Kind::KeyDiff);
  CHECK(b.window == kv::BaseScorer::default_window);
  CHECK(b.kernel == kv::BaseScorer::default_kernel);
  CHECK(b.scorer_part() == ",scorer=keydiff");
  CHECK(b.window_part().empty());
  const auto s = parse({{"scorer", "snapkv"}, {"window", "4"}, {"kernel", "3"}});
  CHECK(s.kind == Kind::SnapKv);
  CHECK(s.window_part() == ",window=4,kernel=3");
  CHECK_THROWS_WITH_AS(parse({{"scorer", "observed_attention"}}),
                       doctest::Contains("not one of keydiff, snapkv, knorm"), Error);
  CHECK_THROWS_WITH_AS(parse({{"scorer", "snapkv"}, {"kernel", "4"}}), doctest::Contains("kernel"), Error);
  const auto docs = kv::BaseScorer::parameters(kAllowed);
  REQUIRE(docs.size() == 3);
  CHECK(docs[0].name == "scorer");
  CHECK(docs[0].default_value == "keydiff");
  CHECK(docs[1].default_value == std::to_string(kv::BaseScorer::default_window));
}

TEST_CASE("base scorer: keydiff and knorm score a head as their own policies do") {
  const std::size_t n = 12, d = 8;
  const auto cache = cache_of(n, d);
  const auto& store = cache.head(0, 0);
  CHECK(parse({}).scores(cache, {}, 0, 0) == kv::KeyDiff::scores(store.materialize_keys(d), n, d));
  CHECK(parse({{"scorer", "knorm"}}).scores(cache, {}, 0, 0) == kv::KNorm::scores(store, d));
  CHECK(parse({}).attention_rows(kv::StepKind::Prefill, n) == 0);
  CHECK_FALSE(parse({}).reads_attention());
}

TEST_CASE("base scorer: snapkv is the window's max-pooled group vote over the prefix, its window rows +inf") {
  const std::size_t n = 10, d = 4;
  const auto cache = cache_of(n, d);
  kv::AttentionRecord record;
  record.rows = 3;
  record.num_layers = 1;
  record.num_heads = 2;
  record.group = 2;
  record.per_layer_head = {{0, 5, 0, 0, 0, 0, 1, 0, 0, 0}, {0, 0, 0, 0, 2, 0, 0, 0, 0, 9}};
  const auto b = parse({{"scorer", "snapkv"}, {"window", "3"}, {"kernel", "3"}});
  CHECK(b.reads_attention());
  CHECK(b.attention_rows(kv::StepKind::Prefill, n) == 3);
  CHECK(b.attention_rows(kv::StepKind::Decode, n) == 0);
  const auto s = b.scores(cache, record, 0, 0);
  const float inf = std::numeric_limits<float>::infinity();
  // group sum: 0 5 0 0 2 0 1 | window; pooled over the 7 prefix rows with kernel 3
  CHECK(s == std::vector<float>{5, 5, 5, 2, 2, 2, 1, inf, inf, inf});
}
