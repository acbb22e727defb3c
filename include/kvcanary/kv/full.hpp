#pragma once
// `full`: the uncompressed baseline. Stores every K/V row and does nothing after a step, so a
// run with it is the same computation as a run with no policy at all (bit-identical logits,
// tested). Its bytes are counted in fp16, the budget axis's unit.

#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/core/model_config.hpp"

namespace kvcanary::kv {

struct FullCache {
  static constexpr std::string_view name = "full";
  static std::string_view summary() { return "uncompressed baseline: every K/V row kept, counted in fp16"; }
  static std::vector<ParameterDoc> parameters() { return {}; }
  static FullCache create(const PolicyOptions& o, const ModelConfig&) {
    o.reject_unknown(std::string(name));
    return {};
  }

  std::size_t attention_rows(StepKind, std::size_t) const { return 0; }
  void after_step(KvCache&, const AttentionRecord&, StepKind) {}
  std::size_t stored_bytes(const KvCache& c) const {
    std::size_t rows = c.stored_rows();
    return fp16_kv_bytes(rows, c.head_dim());
  }
  std::string identity() const { return "full"; }
};

static_assert(CachePolicy<FullCache>);

}  // namespace kvcanary::kv
