// Teacher-forced scoring: chunking is exact, and the strided protocol scores every token once
// with the context the protocol defines.

#include <doctest/doctest.h>

#include <cmath>
#include <numeric>

#include "../support/json_file.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/kv/full.hpp"
#include "kvcanary/engine/batch_decode.hpp"
#include "kvcanary/engine/perplexity.hpp"

using namespace kvcanary;

namespace {
std::vector<std::int32_t> ids_of_length(std::size_t n) {
  std::vector<std::int32_t> ids(n);
  for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<std::int32_t>(3 + (i * 37 + i * i) % 250);
  return ids;
}
}  // namespace

TEST_CASE("perplexity: chunked scoring equals one pass, log-probs match log-softmax of the logits") {
  const auto dir = test::test_data("tiny/llama_gqa_untied");
  model::Transformer<float> m(io::load_hf_config(dir), dir, 1);
  const auto ids = ids_of_length(40);
  const auto whole = engine::score_tokens(m, ids, 1, 256);
  const auto chunked = engine::score_tokens(m, ids, 1, 7);
  REQUIRE(whole.n_scored == 39);
  REQUIRE(chunked.n_scored == 39);
  for (std::size_t i = 0; i < whole.logprobs.size(); ++i)
    CHECK(chunked.logprobs[i] == doctest::Approx(whole.logprobs[i]).epsilon(1e-6));

  // log p(ids[5] | ids[0..4]) from the logits of a 5-token prefill.
  kv::KvCache cache = m.new_cache();
  std::vector<float> logits;
  const model::Segment seg{&cache, std::span(ids).first(5), model::Logits::Last};
  m.forward(std::span<const model::Segment>(&seg, 1), logits);
  double z = 0;
  for (float l : logits) z += std::exp(static_cast<double>(l));
  CHECK(whole.logprobs[4] ==
        doctest::Approx(static_cast<double>(logits[static_cast<std::size_t>(ids[5])]) - std::log(z)).epsilon(1e-6));
  CHECK(whole.perplexity() == doctest::Approx(std::exp(whole.nll_sum / 39.0)));
}

TEST_CASE("perplexity: strided windows score each token once with up to window-1 tokens of context") {
  const auto dir = test::test_data("tiny/llama_gqa_untied");
  model::Transformer<float> m(io::load_hf_config(dir), dir, 1);
  const auto ids = ids_of_length(50);
  // A window as long as the text is the single pass.
  const auto single = engine::strided_perplexity(m, ids, 64, 32);
  const auto whole = engine::score_tokens(m, ids);
  CHECK(single.n_scored == 49);
  CHECK(single.nll_sum == doctest::Approx(whole.nll_sum).epsilon(1e-9));

  // window 20, stride 10: windows [0,20) [10,30) [20,40) [30,50); the first scores tokens 1..19,
  // each later one only its last 10 tokens.
  const auto strided = engine::strided_perplexity(m, ids, 20, 10);
  CHECK(strided.n_scored == 49);
  double expect = engine::score_tokens(m, std::span(ids).subspan(0, 20)).nll_sum;
  for (std::size_t begin = 10; begin + 20 <= 50; begin += 10)
    expect += engine::score_tokens(m, std::span(ids).subspan(begin, 20), 10).nll_sum;
  CHECK(strided.nll_sum == doctest::Approx(expect).epsilon(1e-9));
  // Less context can only be compared, not ordered, on random weights; but it must differ.
  CHECK(strided.nll_sum != doctest::Approx(whole.nll_sum).epsilon(1e-9));
}

TEST_CASE("perplexity under a policy: with `full`, the decode loop's forced scoring is bit-identical to one prefill") {
  const auto dir = test::test_data("tiny/llama_gqa_untied");
  model::Transformer<float> m(io::load_hf_config(dir), dir, 2);
  const auto ids = ids_of_length(30);
  const auto reference = engine::score_tokens(m, ids);
  CHECK(reference.memory.kv_fraction_end == 1.0);
  // the 29 tokens fed (the last predicts nothing) × head_dim 16 × K,V × fp16 × 2 layers × 2 KV heads
  CHECK(reference.memory.kv_full_bytes_end == 29u * 16 * 2 * 2 * 2 * 2);
  for (std::size_t context : {1, 7, 29}) {
    CAPTURE(context);
    // The prompt ids[0, context) in one prefill, every later token one decode step.
    const engine::DecodeJob job{{ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(context)},
                                false,
                                {ids.begin() + static_cast<std::ptrdiff_t>(context), ids.end()}};
    const auto under =
        engine::run_jobs(m, std::span<const engine::DecodeJob>(&job, 1), kv::FullCache{}, engine::GenerateOptions{})
            .front()
            .forced;
    REQUIRE(under.n_scored == ids.size() - context);
    // batch-invariant kernels: exact, not approximate
    CHECK(std::equal(under.logprobs.begin(), under.logprobs.end(), reference.logprobs.begin() + (context - 1)));
    CHECK(under.memory.kv_fraction_end == 1.0);
  }
}
