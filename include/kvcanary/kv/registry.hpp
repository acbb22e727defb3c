#pragma once
// Compile-time policies chosen at run time by name. The list below is the only place that
// names every compressor; `with_policy` instantiates the caller's generic code once per
// policy type, so each sweep cell still runs a fully static forward pass + policy.
// Adding a compressor: its header, its test, and one entry in `AllPolicies`.

#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kvcanary/core/error.hpp"
#include "kvcanary/kv/absmax.hpp"
#include "kvcanary/kv/full.hpp"
#include "kvcanary/kv/h2o.hpp"
#include "kvcanary/kv/kivi.hpp"
#include "kvcanary/kv/knorm.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/random.hpp"
#include "kvcanary/kv/snapkv.hpp"
#include "kvcanary/kv/streamingllm.hpp"
#include "kvcanary/kv/tova.hpp"

namespace kvcanary::kv {

using AllPolicies = std::tuple<FullCache, AbsmaxQuant, KiviQuant, StreamingLlm, SnapKv, H2o, Tova, KNorm, RandomEviction>;

// Calls f(policy) with the policy named `name`, built from `options` for `config`.
template <class F>
auto with_policy(std::string_view name, const PolicyOptions& options, const model::Config& config, F&& f) {
  using Result = decltype(f(std::declval<FullCache>()));
  bool found = false;
  std::optional<std::conditional_t<std::is_void_v<Result>, int, Result>> result;
  std::apply(
      [&](auto... tag) {
        (
            [&] {
              using P = decltype(tag);
              if (found || P::name != name) return;
              found = true;
              if constexpr (std::is_void_v<Result>) f(P::create(options, config));
              else result.emplace(f(P::create(options, config)));
            }(),
            ...);
      },
      AllPolicies{});
  if (!found) {
    std::string known;
    std::apply([&](auto... tag) { ((known += (known.empty() ? "" : ", ") + std::string(decltype(tag)::name)), ...); }, AllPolicies{});
    fail(options.source(), "compressor", "unknown compressor '" + std::string(name) + "' (known: " + known + ")");
  }
  if constexpr (!std::is_void_v<Result>) return std::move(*result);
}

// Calls f(name, summary, parameters) for every compressor, in list order.
template <class F>
void for_each_policy(F&& f) {
  std::apply([&](auto... tag) { (f(decltype(tag)::name, decltype(tag)::summary(), decltype(tag)::parameters()), ...); }, AllPolicies{});
}

}  // namespace kvcanary::kv
