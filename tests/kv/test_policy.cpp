// The policy contract (kv/policy.hpp) for every registered compressor: an instance is one lane's
// alone. Copies share no mutable state, so lanes that run `after_step` on the pool's threads at
// the same time cannot race, and a policy handed to a run comes back unchanged.

#include <doctest/doctest.h>

#include <string>
#include <tuple>
#include <vector>

#include "eviction_test_support.hpp"
#include "kvcanary/kv/registry.hpp"

using namespace kvcanary;
using kvcanary::test::eviction::no_eos;
using kvcanary::test::eviction::tiny;

namespace {

// Eight lanes, pairwise equal prompts: lanes that should agree run on different pool threads.
const std::vector<std::vector<std::int32_t>>& lane_prompts() {
  static const std::vector<std::vector<std::int32_t>> p = [] {
    std::vector<std::vector<std::int32_t>> out;
    for (int lane = 0; lane < 8; ++lane) {
      std::vector<std::int32_t> prompt;
      for (int i = 0; i < 36 + 4 * (lane / 2); ++i) prompt.push_back((i * 29 + 7 * (lane / 2) + 3) % 256);
      out.push_back(prompt);
    }
    return out;
  }();
  return p;
}

template <class P>
void check_copies_share_nothing(kv::Mode mode) {
  CAPTURE(std::string(P::name));
  CAPTURE(kv::mode_name(mode));
  const auto opt = no_eos(16);
  const P proto = P::create(kv::PolicyOptions(0.5, mode), tiny().config());
  // A copy first drives a whole batched run (its lanes are copies of the copy) ...
  const P used = proto;
  const auto first = model::generate_greedy(tiny(), lane_prompts(), opt, {}, used);
  // ... then the untouched original must behave as a fresh instance: nothing the lanes did
  // reached it through shared state.
  const auto again = model::generate_greedy(tiny(), lane_prompts(), opt, {}, proto);
  const P fresh = P::create(kv::PolicyOptions(0.5, mode), tiny().config());
  const auto alone0 = model::generate_greedy(tiny(), std::span(lane_prompts()).first(1), opt, {}, fresh);
  CHECK(proto.identity() == fresh.identity());
  for (std::size_t lane = 0; lane < lane_prompts().size(); ++lane) {
    CAPTURE(lane);
    CHECK(first[lane].tokens == again[lane].tokens);
    CHECK(first[lane].kv_bytes_end == again[lane].kv_bytes_end);
    // Twin lanes (same prompt) ran side by side on different threads: equal results.
    CHECK(first[lane].tokens == first[lane ^ 1].tokens);
    CHECK(first[lane].kv_bytes_end == first[lane ^ 1].kv_bytes_end);
  }
  // A batch of eight gives lane 0 what a batch of one gives it.
  CHECK(first[0].tokens == alone0[0].tokens);
  CHECK(first[0].kv_bytes_end == alone0[0].kv_bytes_end);
}

}  // namespace

TEST_CASE("policy contract: every registered compressor's copies share no state across lanes and threads") {
  std::apply(
      [](auto... tag) {
        (
            [&] {
              using P = decltype(tag);
              for (kv::Mode mode : {kv::Mode::Prompt, kv::Mode::Decode}) {
                bool supported = true;
                try {
                  (void)P::create(kv::PolicyOptions(0.5, mode), tiny().config());
                } catch (const Error&) {
                  supported = false;  // a mode the policy refuses (checked in its own test)
                }
                if (supported) check_copies_share_nothing<P>(mode);
              }
            }(),
            ...);
      },
      kv::AllPolicies{});
}
