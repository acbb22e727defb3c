// The policy contract (kv/policy.hpp) for every registered compressor: an instance is one lane's
// alone. Copies share no mutable state, so lanes that run `after_step` on the pool's threads at
// the same time cannot race, and a policy handed to a run comes back unchanged.

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "eviction_test_support.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/kv/registry.hpp"

using namespace kvcanary;
using kvcanary::test::eviction::no_eos;

namespace {

// head_dim 32 (llama.cpp's block formats need a multiple of 32), 2 query heads per KV head.
model::Transformer<float>& tiny() {
  static model::Transformer<float> m(io::load_hf_config(test::test_data("tiny/llama3_rope")),
                                     test::test_data("tiny/llama3_rope"), 2);
  return m;
}

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
void check_copies_share_nothing(const P& proto, const P& fresh) {
  const auto opt = no_eos(16);
  // A copy first drives a whole batched run (its lanes are copies of the copy) ...
  const P used = proto;
  const auto first = engine::generate_greedy(tiny(), lane_prompts(), opt, {}, used);
  // ... then the untouched original must behave as a fresh instance: nothing the lanes did
  // reached it through shared state.
  const auto again = engine::generate_greedy(tiny(), lane_prompts(), opt, {}, proto);
  const auto alone0 = engine::generate_greedy(tiny(), std::span(lane_prompts()).first(1), opt, {}, fresh);
  CHECK(proto.identity() == fresh.identity());
  for (std::size_t lane = 0; lane < lane_prompts().size(); ++lane) {
    CAPTURE(lane);
    CHECK(first[lane].tokens == again[lane].tokens);
    CHECK(first[lane].memory.kv_bytes_end == again[lane].memory.kv_bytes_end);
    // Twin lanes (same prompt) ran side by side on different threads: equal results.
    CHECK(first[lane].tokens == first[lane ^ 1].tokens);
    CHECK(first[lane].memory.kv_bytes_end == first[lane ^ 1].memory.kv_bytes_end);
  }
  // A batch of eight gives lane 0 what a batch of one gives it.
  CHECK(first[0].tokens == alone0[0].tokens);
  CHECK(first[0].memory.kv_bytes_end == alone0[0].memory.kv_bytes_end);
}

}  // namespace

TEST_CASE("policy contract: every registered compressor's copies share no state across lanes and threads") {
  std::vector<std::string> names;
  kv::for_each_policy([&](std::string_view name, auto&&...) {
    // Upper case marks a placeholder row of the listing (EVICTION+QUANTIZER), not a policy.
    if (name.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string_view::npos) names.emplace_back(name);
  });
  // Compositions are built from two registered parts; one per eviction family is enough here.
  names.insert(names.end(), {"snapkv+q4_0", "streamingllm+q8_0", "h2o+fp8_e4m3"});
  for (const std::string& name : names) {
    CAPTURE(name);
    int modes_built = 0;
    for (kv::Mode mode : {kv::Mode::Prompt, kv::Mode::Decode}) {
      const std::string mode_name = kv::mode_name(mode);
      CAPTURE(mode_name);
      const kv::PolicyOptions options(0.5, mode);
      bool built = false;
      try {
        kv::with_policy(name, options, tiny().config(), [&](const auto& proto) {
          built = true;
          using P = std::decay_t<decltype(proto)>;
          kv::with_policy(name, options, tiny().config(), [&](const auto& fresh) {
            if constexpr (std::is_same_v<std::decay_t<decltype(fresh)>, P>) check_copies_share_nothing(proto, fresh);
          });
        });
      } catch (const Error& e) {
        REQUIRE_FALSE(built);  // only building may refuse (a mode the policy's paper has no use for)
        const std::string why = name + " refuses " + mode_name + " mode: " + e.what();
        MESSAGE(why);
      }
      modes_built += built;
    }
    CHECK(modes_built >= 1);
  }
}
