// expected_attention: scores and selections against the numpy transcription of KVPress's
// ExpectedAttentionPress (scripts/golden/make_eviction_goldens.py →
// tests/data/kv/eviction_goldens.json); the query moments the forward pass records, checked
// against the pass's own attention; options and errors. The shared eviction semantics are in
// tests/kv/test_eviction_semantics.cpp.

#include <doctest/doctest.h>

#include <cmath>

#include "eviction_test_support.hpp"
#include "kvcanary/kv/expected_attention.hpp"
#include "kvcanary/ops/rope.hpp"

using namespace kvcanary;
using namespace kvcanary::test;

namespace {

// Σq and Σqqᵀ of `rows` queries of one head ([rows, d]), summed in order as the forward pass does.
void add_moments(const std::vector<float>& q, std::size_t rows, std::size_t d, double* sum, double* outer) {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t i = 0; i < d; ++i) {
      sum[i] += q[r * d + i];
      for (std::size_t j = 0; j < d; ++j) outer[i * d + j] += static_cast<double>(q[r * d + i]) * q[r * d + j];
    }
}

}  // namespace

TEST_CASE(
    "expected_attention: scores and kept rows equal the numpy goldens (GQA groups, sinks, ties to the lowest row)") {
  JsonFile g(test_data("kv/eviction_goldens.json"));
  int cases = 0;
  for (auto c : g.root["expected_attention"].get_array()) {
    const auto n = static_cast<std::size_t>(c["n"].get_int64().value());
    const auto d = static_cast<std::size_t>(c["head_dim"].get_int64().value());
    const auto heads = static_cast<std::size_t>(c["heads"].get_int64().value());
    const auto group = static_cast<std::size_t>(c["group"].get_int64().value());
    const auto n_sink = static_cast<std::size_t>(c["n_sink"].get_int64().value());
    const auto n_future = c["n_future_positions"].get_int64().value();
    const bool use_cov = c["use_covariance"].get_int64().value() == 1,
               use_vnorm = c["use_vnorm"].get_int64().value() == 1;
    const double eps = c["epsilon"].get_double().value(), budget = c["budget"].get_double().value();
    const ModelConfig config = eviction::one_layer_shape(heads, heads / group, d, c["rope_theta"].get_double().value());
    CAPTURE(n);

    // The record the forward pass would leave: moments of the non-sink rows' queries.
    kv::AttentionRecord record;
    record.rows = n - n_sink;
    record.num_layers = 1;
    record.num_heads = heads;
    record.group = group;
    record.head_dim = d;
    record.per_layer_head.assign(heads, std::vector<float>(n, 0.0f));
    record.query_sum.assign(heads * d, 0.0);
    record.query_outer.assign(heads * d * d, 0.0);
    std::size_t h = 0;
    for (auto q : c["queries"].get_array()) {
      add_moments(float_list(q), record.rows, d, &record.query_sum[h * d], &record.query_outer[h * d * d]);
      ++h;
    }
    REQUIRE(h == heads);

    const auto policy =
        kv::ExpectedAttention::create(kv::PolicyOptions(budget, kv::Mode::Prompt,
                                                        {{"n_future_positions", std::to_string(n_future)},
                                                         {"n_sink", std::to_string(n_sink)},
                                                         {"use_covariance", use_cov ? "1" : "0"},
                                                         {"use_vnorm", use_vnorm ? "1" : "0"},
                                                         {"epsilon", std::to_string(eps)}}),
                                      config);
    kv::KvCache cache(1, heads / group, d);
    std::vector<std::vector<float>> keys, values;
    for (auto k : c["keys"].get_array()) keys.push_back(float_list(k));
    for (auto v : c["values"].get_array()) values.push_back(float_list(v));
    for (std::size_t kvh = 0; kvh < keys.size(); ++kvh)
      for (std::size_t r = 0; r < n; ++r)
        cache.head(0, kvh).append(&keys[kvh][r * d], &values[kvh][r * d], static_cast<std::int32_t>(r), d);
    cache.advance(static_cast<std::int64_t>(n));

    const auto rotation = kv::ExpectedAttention::mean_rotation(policy.inv_freq, static_cast<std::int64_t>(n),
                                                               static_cast<std::size_t>(n_future));
    std::size_t kvh = 0;
    for (auto want_scores : c["scores"].get_array()) {
      CAPTURE(kvh);
      std::vector<kv::FutureQueries> fq;
      for (std::size_t gq = 0; gq < group; ++gq)
        fq.push_back(kv::ExpectedAttention::future_queries(record.sum_of_queries(0, kvh * group + gq),
                                                           record.outer_of_queries(0, kvh * group + gq), record.rows, d,
                                                           rotation, use_cov));
      const auto got = kv::ExpectedAttention::scores(keys[kvh], values[kvh], n, d, fq, n_sink, use_vnorm, eps);
      const auto want = float_list(want_scores);
      REQUIRE(got.size() == want.size());
      for (std::size_t j = 0; j < n; ++j) CHECK(got[j] == doctest::Approx(want[j]).epsilon(2e-5));
      ++kvh;
    }

    kv::ExpectedAttention p = policy;
    p.after_step(cache, record, kv::StepKind::Prefill);
    kvh = 0;
    for (auto kept : c["kept"].get_array()) {
      const auto want = int_list(kept);
      const kv::HeadStore& s = cache.head(0, kvh);
      std::vector<std::int32_t> got(s.positions.begin(), s.positions.end());
      CHECK(got == want);
      ++kvh;
    }
    ++cases;
  }
  CHECK(cases == 3);
}

TEST_CASE("expected_attention: the forward pass's query moments are the rows' pre-RoPE queries") {
  auto& m = eviction::tiny();
  const ModelConfig& config = m.config();
  const std::size_t D = static_cast<std::size_t>(config.head_dim), NH = static_cast<std::size_t>(config.num_heads);
  const std::size_t group = static_cast<std::size_t>(config.group_size());
  const auto& prompt = eviction::prompts()[0];
  const std::size_t n = prompt.size(), sink = 4;

  auto prefill = [&](std::size_t len, std::size_t rows, kv::AttentionRecord& rec, kv::KvCache& cache) {
    const model::RecordRequest req{&rec, rows, true};
    const model::Segment seg{&cache, std::span<const std::int32_t>(prompt).first(len), model::Logits::Last,
                             std::span<const model::RecordRequest>(&req, 1)};
    std::vector<float> logits;
    m.forward(std::span<const model::Segment>(&seg, 1), logits);
  };
  kv::AttentionRecord tail, head, last;
  kv::KvCache c_tail = m.new_cache(), c_head = m.new_cache(), c_last = m.new_cache();
  prefill(n, n - sink, tail, c_tail);
  prefill(sink, sink, head, c_head);
  prefill(n, 1, last, c_last);
  REQUIRE(tail.has_query_moments());
  CHECK(tail.query_sum.size() == static_cast<std::size_t>(config.num_layers) * NH * D);

  SUBCASE("the rows are the last ones: the first rows' queries (causal, so the same alone) plus the tail's make all") {
    kv::AttentionRecord all;
    kv::KvCache c_all = m.new_cache();
    prefill(n, n, all, c_all);
    for (std::size_t i = 0; i < all.query_sum.size(); ++i)
      CHECK(all.query_sum[i] == doctest::Approx(head.query_sum[i] + tail.query_sum[i]).epsilon(1e-9).scale(1.0));
    for (std::size_t i = 0; i < all.query_outer.size(); ++i)
      CHECK(all.query_outer[i] == doctest::Approx(head.query_outer[i] + tail.query_outer[i]).epsilon(1e-9).scale(1.0));
  }

  SUBCASE("one row: Σqqᵀ = q qᵀ, and q rotated to its position is the energy recorded and reproduces the attention") {
    ops::Rope rope(config);
    for (std::size_t l = 0; l < static_cast<std::size_t>(config.num_layers); ++l)
      for (std::size_t h = 0; h < NH; ++h) {
        CAPTURE(l);
        CAPTURE(h);
        const double* q = last.sum_of_queries(l, h);
        const double* qq = last.outer_of_queries(l, h);
        for (std::size_t i = 0; i < D; ++i)
          for (std::size_t j = 0; j < D; ++j)
            CHECK(qq[i * D + j] == doctest::Approx(q[i] * q[j]).epsilon(1e-12).scale(1.0));
        std::vector<float> qr(q, q + D);
        rope.apply(qr.data(), 1, static_cast<std::int64_t>(n - 1));
        // The post-RoPE channel energy every record carries (ThinK's) is this row's squares.
        for (std::size_t i = 0; i < D; ++i)
          CHECK(last.query_energy(l, h)[i] == doctest::Approx(double(qr[i]) * qr[i]).epsilon(1e-12));
        const kv::HeadStore& store = c_last.head(l, h / group);
        const std::vector<float> keys = store.materialize_keys(D);
        std::vector<double> p(store.size());
        double mx = -INFINITY, total = 0;
        for (std::size_t j = 0; j < p.size(); ++j) {
          double dot = 0;
          for (std::size_t i = 0; i < D; ++i) dot += static_cast<double>(qr[i]) * keys[j * D + i];
          mx = std::max(mx, p[j] = dot / std::sqrt(static_cast<double>(D)));
        }
        for (double& x : p) total += (x = std::exp(x - mx));
        const auto& mass = last.mass(l, h);
        REQUIRE(mass.size() == p.size());
        for (std::size_t j = 0; j < p.size(); ++j)
          CHECK(mass[j] == doctest::Approx(p[j] / total).epsilon(1e-4).scale(1e-6));
      }
  }
}

TEST_CASE("expected_attention: prompt only, options, identity, and a record without moments is an error") {
  const ModelConfig config = eviction::one_layer_shape(4, 2, 8, 10000.0);
  const auto p = kv::ExpectedAttention::create(kv::PolicyOptions(0.5, std::nullopt), config);
  CHECK(p.identity() ==
        "expected_attention(budget=0.5,mode=prompt,capacity=fixed,n_future_positions=512,n_sink=4,use_covariance=1,use_"
        "vnorm=1,epsilon=0)");
  CHECK(p.attention_rows(kv::StepKind::Prefill, 40) == 36);
  CHECK(p.attention_rows(kv::StepKind::Prefill, 4) == 0);
  CHECK(p.attention_rows(kv::StepKind::Decode, 1) == 0);
  CHECK(kv::wants_query_moments(p, kv::StepKind::Prefill));
  CHECK_FALSE(kv::wants_query_moments(p, kv::StepKind::Decode));
  CHECK_FALSE(kv::wants_query_moments(kv::FullCache{}, kv::StepKind::Prefill));
  CHECK(p.inv_freq == ops::rope_inverse_frequencies(config));

  CHECK_THROWS_WITH_AS(kv::ExpectedAttention::create(kv::PolicyOptions(0.5, kv::Mode::Decode), config),
                       doctest::Contains("prompt-only"), Error);
  CHECK_THROWS_WITH_AS(
      kv::ExpectedAttention::create(kv::PolicyOptions(0.5, kv::Mode::Prompt, {{"use_covariance", "2"}}), config),
      doctest::Contains("use_covariance"), Error);
  CHECK_THROWS_WITH_AS(
      kv::ExpectedAttention::create(kv::PolicyOptions(0.5, kv::Mode::Prompt, {{"epsilon", "-1"}}), config),
      doctest::Contains("epsilon"), Error);
  CHECK_THROWS_WITH_AS(
      kv::ExpectedAttention::create(kv::PolicyOptions(0.5, kv::Mode::Prompt, {{"window", "8"}}), config),
      doctest::Contains("window"), Error);

  kv::KvCache cache(1, 2, 8);
  std::vector<float> row(8, 1.0f);
  for (std::int32_t r = 0; r < 10; ++r)
    for (std::size_t h = 0; h < 2; ++h) cache.head(0, h).append(row.data(), row.data(), r, 8);
  cache.advance(10);
  kv::AttentionRecord no_moments;
  no_moments.rows = 6;
  no_moments.num_layers = 1;
  no_moments.num_heads = 4;
  no_moments.group = 2;
  kv::ExpectedAttention q = p;
  CHECK_THROWS_WITH_AS(q.after_step(cache, no_moments, kv::StepKind::Prefill), doctest::Contains("query moments"),
                       Error);
}
