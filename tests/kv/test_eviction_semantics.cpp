// The eviction semantics every eviction policy shares (kv/eviction.hpp, docs/COMPRESSORS.md
// "Capacity" and "Scope"), checked for each of them on the tiny model:
//   * budget 1 ≡ full, bit-exact: prompt mode with both capacities and both scopes, decode
//     mode with capacity `seen`;
//   * decode mode with capacity `fixed`: exactly min(C, tokens seen) rows per head after the
//     prefill and each of 64 decode steps (budget 1: a sliding prompt-length cache);
//   * scope `context`: the question's rows are never evicted.

#include <doctest/doctest.h>

#include "eviction_test_support.hpp"
#include "kvcanary/kv/registry.hpp"

using namespace kvcanary;
using namespace kvcanary::test::eviction;

namespace {

template <class P>
void check_semantics(std::map<std::string, std::string> params = {}, std::size_t floor = 0) {
  check_budget_one_is_full<P>(params);
  if constexpr (decode_allowed<P>()) {
    check_decode_fixed_capacity<P>(1.0, params, floor);
    check_decode_fixed_capacity<P>(0.25, params, floor);
  }
  check_context_scope_keeps_question<P>(0.25, params, floor);
}

}  // namespace

TEST_CASE("eviction semantics: streamingllm") { check_semantics<kv::StreamingLlm>({}, 4); }
TEST_CASE("eviction semantics: snapkv (prompt only)") {
  check_semantics<kv::SnapKv>();
  check_semantics<kv::SnapKv>({{"window", "4"}, {"kernel", "3"}});
}
TEST_CASE("eviction semantics: snapkv_rolling") { check_semantics<kv::SnapKvRolling>({{"window", "4"}}, 4); }
TEST_CASE("eviction semantics: h2o") { check_semantics<kv::H2o>(); }
TEST_CASE("eviction semantics: tova") {
  check_semantics<kv::Tova>();
  check_semantics<kv::Tova>({{"scope", "head"}});
}
TEST_CASE("eviction semantics: knorm") { check_semantics<kv::KNorm>(); }
TEST_CASE("eviction semantics: random") { check_semantics<kv::RandomEviction>(); }
TEST_CASE("eviction semantics: keydiff") { check_semantics<kv::KeyDiff>(); }
TEST_CASE("eviction semantics: observed_attention (prompt only)") { check_semantics<kv::ObservedAttention>(); }
TEST_CASE("eviction semantics: expected_attention (prompt only, 4 sinks kept)") {
  check_semantics<kv::ExpectedAttention>({}, 4);
}
TEST_CASE("eviction semantics: pyramidkv (prompt only)") {
  check_semantics<kv::PyramidKv>();  // window 32 > C/beta: every layer falls back to C
  // window 2, beta 2, C = 8 of the 30 context rows: layer 0 keeps 12, layer 1 keeps 4.
  check_budget_one_is_full<kv::PyramidKv>({{"window", "2"}, {"beta", "2"}});
  check_context_scope_keeps_question<kv::PyramidKv>(0.25, {{"window", "2"}, {"beta", "2"}}, 0,
                                                    [](std::size_t l) { return l == 0 ? 12u : 4u; });
}

TEST_CASE("eviction semantics: adakv (prompt only, heads keep different counts, each layer kv_heads x C)") {
  for (const char* scorer : {"snapkv", "keydiff", "knorm", "observed_attention"}) {
    CAPTURE(scorer);
    const std::map<std::string, std::string> params = {{"scorer", scorer}, {"window", "4"}};
    check_budget_one_is_full<kv::AdaKv>(params);
    check_context_scope_keeps_question<kv::AdaKv>(0.25, params, 0, {}, /*per_layer_total=*/true);
  }
}

TEST_CASE("eviction semantics: chunkkv (prompt only, whole chunks)") {
  for (const char* scorer : {"keydiff", "knorm", "snapkv"}) {
    CAPTURE(scorer);
    // chunk_length 5: the 30 context rows are 6 chunks, budget 0.5 keeps 3 = 15 rows = C.
    const std::map<std::string, std::string> params = {{"scorer", scorer}, {"chunk_length", "5"}, {"window", "4"}};
    check_budget_one_is_full<kv::ChunkKv>(params);
    check_context_scope_keeps_question<kv::ChunkKv>(0.5, params);
  }
}

TEST_CASE("eviction semantics: every eviction policy of the registry is covered here") {
  // A new eviction policy must be added above: this list is EvictionPolicies' names.
  std::vector<std::string> names;
  std::apply([&](auto... tag) { (names.emplace_back(decltype(tag)::name), ...); }, kv::EvictionPolicies{});
  CHECK(names == std::vector<std::string>{"streamingllm", "snapkv", "snapkv_rolling", "h2o", "tova", "knorm", "random",
                                          "keydiff", "observed_attention", "expected_attention", "pyramidkv", "adakv",
                                          "chunkkv", "kvzip"});
}

TEST_CASE("capacity: fixed is C = ceil(budget · prompt) frozen at the prefill, seen grows, identity names it") {
  auto fixed = make<kv::H2o>(0.25, kv::Mode::Decode, {}, kv::Capacity::Fixed);
  auto seen = make<kv::H2o>(0.25, kv::Mode::Decode, {}, kv::Capacity::Seen);
  CHECK(fixed.identity() == "h2o(budget=0.25,mode=decode,capacity=fixed,recent_ratio=0.5)");
  CHECK(seen.identity() == "h2o(budget=0.25,mode=decode,capacity=seen,recent_ratio=0.5)");
  const auto a = engine::generate_greedy(tiny(), std::span(&prompts()[0], 1), no_eos(30), {}, fixed);
  const auto b = engine::generate_greedy(tiny(), std::span(&prompts()[0], 1), no_eos(30), {}, seen);
  // 40 prompt + 29 fed back = 69 seen: fixed keeps 10 rows, seen ceil(0.25 · 69) = 18.
  const std::size_t per_row = 16 * 2 * 2 * 2 * 2;
  CHECK(a[0].memory.kv_bytes_end == 10 * per_row);
  CHECK(b[0].memory.kv_bytes_end == 18 * per_row);
}

TEST_CASE("mode: each policy's default is its paper's, and snapkv refuses decode mode with a clear error") {
  const kv::PolicyOptions unset(0.5, std::nullopt);
  CHECK(kv::H2o::create(unset, tiny().config()).common.mode == kv::Mode::Decode);
  CHECK(kv::Tova::create(unset, tiny().config()).common.mode == kv::Mode::Decode);
  CHECK(kv::StreamingLlm::create(unset, tiny().config()).common.mode == kv::Mode::Decode);
  CHECK(kv::SnapKv::create(unset, tiny().config()).common.mode == kv::Mode::Prompt);
  CHECK(kv::KNorm::create(unset, tiny().config()).common.mode == kv::Mode::Prompt);
  CHECK(kv::SnapKvRolling::create(unset, tiny().config()).common.mode == kv::Mode::Decode);
  CHECK(unset.capacity() == kv::Capacity::Fixed);
  try {
    kv::SnapKv::create(kv::PolicyOptions(0.5, kv::Mode::Decode, {}, "cfg.toml: compressors[0]"), tiny().config());
    FAIL("snapkv accepted decode mode");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK(what.find("cfg.toml: compressors[0]") != std::string::npos);
    CHECK(what.find("mode") != std::string::npos);
    CHECK(what.find("snapkv_rolling") != std::string::npos);
  }
}
