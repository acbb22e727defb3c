#pragma once
// One CachePolicy type that holds any policy of a list: lets lanes of different compressors
// share a forward call (the sweep batches every cell of a task together), while each lane's
// policy stays the concrete struct — std::visit dispatches once per lane per step, nothing in
// the compressors changes.

#include <cstddef>
#include <string>
#include <tuple>
#include <variant>

#include "kvcanary/kv/policy.hpp"

namespace kvcanary::kv {

template <class Policies>
struct AnyPolicyOf;

template <class... P>
struct AnyPolicyOf<std::tuple<P...>> {
  std::variant<P...> policy;

  std::size_t attention_rows(StepKind kind, std::size_t n) const {
    return std::visit([&](const auto& p) -> std::size_t { return p.attention_rows(kind, n); }, policy);
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
};

}  // namespace kvcanary::kv
