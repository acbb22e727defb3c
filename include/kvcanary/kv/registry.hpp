#pragma once
// Compile-time policies chosen at run time by name. The list below is the only place that
// names every compressor; `with_policy` instantiates the caller's generic code once per
// policy type, so each sweep cell still runs a fully static forward pass + policy.
// Adding a compressor: its header, its test, and one entry in `AllPolicies`.
//
// A policy type is chosen by `P::name`, or, if it defines `accepts(name)`, by every name it
// accepts (CacheTypeQuant: q8_0, q4_0, …; Composed: any EVICTION+QUANTIZER) — it is then
// built by `create(name, options, config)`, and listed under each of its `names()`.

#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/type_list.hpp"
#include "kvcanary/kv/absmax.hpp"
#include "kvcanary/kv/cache_type_quant.hpp"
#include "kvcanary/kv/composed.hpp"
#include "kvcanary/kv/full.hpp"
#include "kvcanary/kv/h2o.hpp"
#include "kvcanary/kv/kivi.hpp"
#include "kvcanary/kv/knorm.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/parameter_table.hpp"
#include "kvcanary/kv/random.hpp"
#include "kvcanary/kv/snapkv.hpp"
#include "kvcanary/kv/snapkv_rolling.hpp"
#include "kvcanary/kv/keydiff.hpp"
#include "kvcanary/kv/observed_attention.hpp"
#include "kvcanary/kv/expected_attention.hpp"
#include "kvcanary/kv/pyramidkv.hpp"
#include "kvcanary/kv/adakv.hpp"
#include "kvcanary/kv/chunkkv.hpp"
#include "kvcanary/kv/kvzip.hpp"
#include "kvcanary/kv/streamingllm.hpp"
#include "kvcanary/kv/think.hpp"
#include "kvcanary/kv/tova.hpp"

namespace kvcanary::kv {

using AllPolicies = std::tuple<FullCache, AbsmaxQuant, KiviQuant, CacheTypeQuant, StreamingLlm, SnapKv, SnapKvRolling,
                               H2o, Tova, KNorm, RandomEviction, KeyDiff, ObservedAttention, ExpectedAttention,
                               PyramidKv, AdaKv, ChunkKv, KvZip, Think, Composed>;

// What a list entry must have, one requirement per static_assert so that a missing member is
// named in the error (with the policy type in the "required from" line) instead of failing
// deep inside the dispatch.
template <class P>
consteval bool registrable_policy() {
  static_assert(
      requires {
        { P::name } -> std::convertible_to<std::string_view>;
      },
      "a compressor needs `static constexpr std::string_view name`");
  static_assert(
      requires(std::string_view n) {
        { P::summary() } -> std::convertible_to<std::string_view>;
      } ||
          requires(std::string_view n) {
            P::names();
            { P::summary(n) } -> std::convertible_to<std::string_view>;
          },
      "a compressor needs `static std::string_view summary()` (or names() and summary(name))");
  static_assert(
      HasParameterTable<P> ||
          requires {
            { P::parameters() } -> std::convertible_to<std::vector<ParameterDoc>>;
          },
      "a compressor needs `static constexpr auto parameter_table()` (kv/parameter_table.hpp) "
      "or `static std::vector<ParameterDoc> parameters()`");
  static_assert(
      requires(const PolicyOptions& o, const ModelConfig& c) {
        { P::create(o, c) } -> std::same_as<P>;
      } ||
          requires(std::string_view n, const PolicyOptions& o, const ModelConfig& c) {
            P::accepts(n);
            { P::create(n, o, c) } -> std::same_as<P>;
          },
      "a compressor needs `static P create(const PolicyOptions&, const ModelConfig&)` "
      "(or accepts(name) and create(name, options, config))");
  static_assert(CachePolicy<P>, "a compressor must satisfy kv::CachePolicy (kv/policy.hpp)");
  return true;
}
static_assert([]<std::size_t... I>(std::index_sequence<I...>) {
  return (registrable_policy<std::tuple_element_t<I, AllPolicies>>() && ...);
}(std::make_index_sequence<std::tuple_size_v<AllPolicies>>{}));

// Calls f(policy) with the policy of the list `Policies` named `name`, built from `options` for
// `config`. A sweep or an example passes its own shorter list to instantiate only what it runs.
template <class Policies, class F>
auto with_policy_from(std::string_view name, const PolicyOptions& options, const ModelConfig& config, F&& f) {
  using Result = decltype(f(std::declval<std::tuple_element_t<0, Policies>>()));
  std::optional<std::conditional_t<std::is_void_v<Result>, int, Result>> result;
  const bool found = type_list::find_first<Policies>([&]<class P>() { return compose::accepts<P>(name); },
                                                     [&]<class P>() {
                                                       if constexpr (std::is_void_v<Result>)
                                                         f(compose::create<P>(name, options, config));
                                                       else
                                                         result.emplace(f(compose::create<P>(name, options, config)));
                                                     });
  if (!found)
    fail(options.source(), "compressor",
         "unknown compressor '" + std::string(name) + "' (known: " + compose::names<Policies>() + ")");
  if constexpr (!std::is_void_v<Result>) return std::move(*result);
}

// Calls f(policy) with the policy named `name` from every compressor kvcanary has.
template <class F>
auto with_policy(std::string_view name, const PolicyOptions& options, const ModelConfig& config, F&& f) {
  return with_policy_from<AllPolicies>(name, options, config, std::forward<F>(f));
}

// Whether `Policies` has a compressor named `name`.
template <class Policies = AllPolicies>
bool has_policy(std::string_view name) {
  return type_list::any_of<Policies>([&]<class P>() { return compose::accepts<P>(name); });
}

// What `kvcanary compressors` says of a policy besides its parameters: the modes it runs in and
// its default (its paper's), and whether the eviction semantics (capacity) apply to it.
struct PolicyFacts {
  Mode default_mode = Mode::Prompt;
  bool decode_allowed = true;  // false: prompt only (snapkv, as its paper)
  bool evicts = false;         // an eviction policy: `capacity` applies
};

template <class P>
PolicyFacts policy_facts() {
  PolicyFacts f;
  if constexpr (requires { P::default_mode; }) f.default_mode = P::default_mode;
  f.decode_allowed = !requires { P::prompt_only_because; };
  f.evicts = requires(P p) { p.common.capacity; };
  return f;
}

// Calls f(name, summary, parameters) — or f(name, summary, parameters, facts) when f takes four
// arguments — for every compressor name, in list order.
template <class F>
void for_each_policy(F&& f) {
  auto call = [&]<class P>(std::string_view n, std::string_view summary) {
    if constexpr (std::is_invocable_v<F&, std::string_view, std::string_view, std::vector<ParameterDoc>, PolicyFacts>)
      f(n, summary, parameters_of<P>(), policy_facts<P>());
    else
      f(n, summary, parameters_of<P>());
  };
  type_list::for_each<AllPolicies>([&]<class P>() {
    if constexpr (requires { P::names(); }) {
      for (std::string_view n : P::names()) call.template operator()<P>(n, std::string_view(P::summary(n)));
    } else {
      call.template operator()<P>(P::name, P::summary());
    }
  });
}

}  // namespace kvcanary::kv
