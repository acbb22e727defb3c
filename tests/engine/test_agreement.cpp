// Agreement with the full cache's output: top-1, first disagreement, KL(full ‖ compressed) on
// hand-computed logit rows.

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "kvcanary/engine/agreement.hpp"

using namespace kvcanary;

TEST_CASE("agreement: KL of softmaxes — 0 for identical rows, the closed form for two tokens, invariant to shifts") {
  const std::vector<float> a = {1.0f, -2.0f, 0.5f, 3.0f};
  CHECK(engine::kl_of_logits(a.data(), a.data(), a.size()) == 0.0);
  // p = softmax(0, 0) = (1/2, 1/2), q = softmax(0, ln 3) = (1/4, 3/4):
  // KL = 1/2 ln(2) + 1/2 ln(2/3).
  const std::vector<float> p = {0.0f, 0.0f}, q = {0.0f, static_cast<float>(std::log(3.0))};
  CHECK(engine::kl_of_logits(p.data(), q.data(), 2) ==
        doctest::Approx(0.5 * std::log(2.0) + 0.5 * std::log(2.0 / 3.0)).epsilon(1e-6));
  // Logits are defined up to a constant.
  std::vector<float> shifted = a;
  for (float& v : shifted) v += 4.0f;
  CHECK(engine::kl_of_logits(a.data(), shifted.data(), a.size()) == doctest::Approx(0.0).epsilon(1e-12));
  // Asymmetric, never negative.
  CHECK(engine::kl_of_logits(q.data(), p.data(), 2) != doctest::Approx(engine::kl_of_logits(p.data(), q.data(), 2)));
  CHECK(engine::kl_of_logits(q.data(), p.data(), 2) > 0);
}

TEST_CASE("agreement: top-1 share, first disagreement (the count when none) and mean KL over positions") {
  const std::vector<float> full = {0.0f, 2.0f, 1.0f};  // the full cache's greedy token: 1
  const std::vector<float> same = {0.0f, 2.0f, 1.0f};
  const std::vector<float> other = {0.0f, 1.0f, 2.0f};  // argmax 2
  engine::Agreement none;
  CHECK_FALSE(none.measured());

  engine::Agreement a;
  a.add(full.data(), same.data(), 3, 1);
  a.add(full.data(), same.data(), 3, 1);
  CHECK(a.measured());
  CHECK(a.top1() == 1.0);
  CHECK(a.first_disagree() == 2);  // no disagreement: the number of positions
  CHECK(a.kl_mean() == 0.0);
  a.add(full.data(), other.data(), 3, 1);
  a.add(full.data(), same.data(), 3, 1);
  a.add(full.data(), other.data(), 3, 1);
  CHECK(a.positions == 5);
  CHECK(a.agreed == 3);
  CHECK(a.top1() == doctest::Approx(0.6));
  CHECK(a.first_disagree() == 2);  // the first of the two
  CHECK(a.kl_mean() == doctest::Approx(2.0 * engine::kl_of_logits(full.data(), other.data(), 3) / 5.0));
  // Ties: the first maximal logit is the compressed cache's choice, as greedy decoding takes it.
  const std::vector<float> tie = {0.0f, 2.0f, 2.0f};
  engine::Agreement t;
  t.add(full.data(), tie.data(), 3, 1);
  CHECK(t.agreed == 1);
}
