#pragma once
// `random`: the control. Evicts a uniformly random subset of rows per KV head, so that any
// policy that does no better than it is not selecting anything. Each compressing step gives
// every row of a head an independent pseudo-random key and keeps the k largest — the top k
// of i.i.d. keys is a uniform k-subset. Keys come from SplitMix64 (Steele et al. 2014) of
// (seed, tokens seen, layer, head, row): deterministic and identical on every platform
// (std::uniform_*_distribution is not specified bit-for-bit across standard libraries).

#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/parameter_table.hpp"
#include "kvcanary/core/splitmix64.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/core/model_config.hpp"

namespace kvcanary::kv {

struct RandomEviction {
  static constexpr std::string_view name = "random";
  static constexpr Mode default_mode = Mode::Prompt;
  static std::string_view summary() { return "control: a seeded uniformly random subset of rows kept per KV head"; }
  static constexpr auto parameter_table() {
    return std::tuple{Parameter{"seed", &RandomEviction::seed, "random seed (same seed, same evictions)"}};
  }
  static RandomEviction create(const PolicyOptions& o, const ModelConfig&) {
    return eviction::create<RandomEviction>(o);
  }

  eviction::Common common;
  std::uint64_t seed = 0;

  std::size_t attention_rows(StepKind, std::size_t) const { return 0; }

  std::vector<std::size_t> selection(std::size_t n, std::int64_t seen, std::size_t layer, std::size_t head) const {
    const std::size_t k = common.keep(seen, 0, n);
    if (k >= n) return eviction::last_rows(n, n);
    std::uint64_t base = splitmix64(seed);
    base = splitmix64(base ^ static_cast<std::uint64_t>(seen));
    base = splitmix64(base ^ (static_cast<std::uint64_t>(layer) << 32 | static_cast<std::uint64_t>(head)));
    // 64-bit keys: a tie (then the lowest row wins) has probability ~n²/2⁶⁵.
    std::vector<std::uint64_t> key(n);
    for (std::size_t r = 0; r < n; ++r) key[r] = splitmix64(base + r);
    std::vector<std::size_t> all(n);
    std::iota(all.begin(), all.end(), 0);
    return eviction::top_k<std::uint64_t>(key, std::move(all), k);
  }

  void after_step(KvCache& cache, const AttentionRecord&, StepKind kind) {
    if (!common.compresses(kind)) return;
    common.observe(cache, kind);
    for (std::size_t l = 0; l < cache.layers(); ++l)
      for (std::size_t h = 0; h < cache.kv_heads(); ++h) {
        HeadStore& store = cache.head(l, h);
        const auto kept = selection(store.size(), cache.tokens_seen(), l, h);
        if (kept.size() != store.size()) store.keep(kept, cache.head_dim());
      }
  }

  std::size_t stored_bytes(const KvCache& c) const { return eviction::stored_fp16_bytes(c); }
  std::string identity() const { return common.prefix(name) + identity_suffix(*this) + ")"; }
};

static_assert(CachePolicy<RandomEviction>);

}  // namespace kvcanary::kv
