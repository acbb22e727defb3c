#pragma once
// One CachePolicy type that holds any policy of a list: lets lanes of different compressors
// share a forward call (the sweep batches every cell of a task together), while each lane's
// policy stays the concrete struct — std::visit dispatches once per lane per step, nothing in
// the compressors changes.

#include <cstddef>
#include <optional>
#include <string>
#include <tuple>
#include <variant>

#include "kvcanary/core/type_list.hpp"
#include "kvcanary/kv/policy.hpp"

namespace kvcanary::kv {

// The mode a built policy runs in (its paper's default unless asked otherwise), and its
// capacity semantics — none for a policy that keeps every row (full, the quantizers).
template <class P>
Mode mode_of(const P& p) {
  if constexpr (requires {
                  { p.mode() } -> std::same_as<Mode>;
                })
    return p.mode();
  else if constexpr (requires { p.common.mode; })
    return p.common.mode;
  else if constexpr (requires {
                       { p.mode } -> std::convertible_to<Mode>;
                     })
    return p.mode;
  else if constexpr (requires { p.evict; })
    return mode_of(p.evict);
  else
    return Mode::Prompt;
}

template <class P>
std::optional<Capacity> capacity_of(const P& p) {
  if constexpr (requires {
                  { p.capacity() } -> std::same_as<std::optional<Capacity>>;
                })
    return p.capacity();
  else if constexpr (requires { p.common.capacity; })
    return p.common.capacity;
  else if constexpr (requires { p.evict; })
    return capacity_of(p.evict);
  else
    return std::nullopt;
}

template <class Policies>
struct AnyPolicyOf {
  type_list::variant_of_t<Policies> policy;

  std::size_t attention_rows(StepKind kind, std::size_t n) const {
    return std::visit([&](const auto& p) -> std::size_t { return p.attention_rows(kind, n); }, policy);
  }
  bool query_moments(StepKind kind) const {
    return std::visit([&](const auto& p) { return wants_query_moments(p, kind); }, policy);
  }
  std::vector<std::int32_t> reconstruction_tokens(std::span<const std::int32_t> context) const {
    return std::visit([&](const auto& p) { return kv::reconstruction_tokens(p, context); }, policy);
  }
  void after_step(KvCache& cache, const AttentionRecord& record, StepKind kind) {
    std::visit([&](auto& p) { p.after_step(cache, record, kind); }, policy);
  }
  std::size_t stored_bytes(const KvCache& cache) const {
    return std::visit([&](const auto& p) -> std::size_t { return p.stored_bytes(cache); }, policy);
  }
  std::string identity() const {
    return std::visit([](const auto& p) -> std::string { return p.identity(); }, policy);
  }
  Mode mode() const {
    return std::visit([](const auto& p) { return mode_of(p); }, policy);
  }
  std::optional<Capacity> capacity() const {
    return std::visit([](const auto& p) { return capacity_of(p); }, policy);
  }
};

}  // namespace kvcanary::kv
