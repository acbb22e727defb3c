// random: the seeded uniform-eviction control.

#include <doctest/doctest.h>

#include "eviction_test_support.hpp"
#include "kvcanary/kv/random.hpp"

using namespace kvcanary;
using namespace kvcanary::test::eviction;
using kv::RandomEviction;

TEST_CASE("random: identity string and parameters") {
  CHECK(make<RandomEviction>(0.25, kv::Mode::Prompt).identity() ==
        "random(budget=0.25,mode=prompt,capacity=seen,seed=0)");
  CHECK(make<RandomEviction>(0.5, kv::Mode::Decode, {{"seed", "7"}}).identity() ==
        "random(budget=0.5,mode=decode,capacity=seen,seed=7)");
  CHECK_THROWS(make<RandomEviction>(0.5, kv::Mode::Prompt, {{"seed", "x"}}));
}

TEST_CASE("random: budget 1 is bit-identical to full in both modes") { check_budget_one_is_full<RandomEviction>(); }

TEST_CASE("random: seeded, deterministic, per head, uniform") {
  auto run = [](std::uint64_t seed, std::size_t head) {
    auto p = make<RandomEviction>(0.3, kv::Mode::Prompt, {{"seed", std::to_string(seed)}});
    kv::KvCache c = synthetic_cache(1, 2, 16, 10);
    p.after_step(c, {}, kv::StepKind::Prefill);
    return kept_rows(c, 0, head);
  };
  CHECK(run(0, 0) == run(0, 0));
  CHECK(run(0, 0).size() == 3);
  CHECK(run(0, 0) != run(1, 0));
  CHECK(run(0, 0) != run(0, 1));
  // Each row is kept with probability 3/10 over seeds: 4000 draws, 3σ ≈ 0.022.
  std::vector<int> count(10, 0);
  const int draws = 4000;
  for (int s = 0; s < draws; ++s)
    for (int r : run(static_cast<std::uint64_t>(s), 0)) ++count[static_cast<std::size_t>(r)];
  for (int r = 0; r < 10; ++r)
    CHECK(static_cast<double>(count[static_cast<std::size_t>(r)]) / draws == doctest::Approx(0.3).epsilon(0.08));
}

TEST_CASE("random: decode mode stays within ceil(budget x tokens_seen) after every step") {
  check_decode_within_budget<RandomEviction>(0.25);
}

TEST_CASE("random: byte accounting") {
  auto g = engine::generate_greedy(tiny(), std::span(&prompts()[0], 1), no_eos(10), {},
                                   make<RandomEviction>(0.25, kv::Mode::Prompt));
  check_bytes(g[0], 19, 19.0 / 49.0);
  g = engine::generate_greedy(tiny(), std::span(&prompts()[0], 1), no_eos(10), {},
                              make<RandomEviction>(0.25, kv::Mode::Decode));
  check_bytes(g[0], 13, decode_peak(0.25));
}
