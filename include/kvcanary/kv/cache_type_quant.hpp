#pragma once
// The KV-cache types deployments ship, as a policy: llama.cpp's `--cache-type-k/-v`
// (q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl), vLLM's `kv_cache_dtype` (fp8_e4m3, fp8_e5m2) and the
// FP4 formats (nvfp4, mxfp4). Codecs: kv/cache_types.hpp.
//
// The compressor's name is the K type and, unless `v=` says otherwise, the V type:
// `--compressor q8_0 --param v=q4_0` is llama.cpp's `-ctk q8_0 -ctv q4_0`. Every row a step
// stores is coded after the step (the step attends with its own K/V exactly — kv/policy.hpp)
// and lives only as the type's bytes in the head's packed store; attention decodes it on read
// (kv/cache.hpp's tiles).
//
// Per-tensor scale (fp8, nvfp4): one fp32 scale per layer for K and one for V, as vLLM keeps
// k_scale / v_scale per attention layer. `scale=1` (default) is vLLM's uncalibrated default;
// `scale=amax` calibrates each from the first compressing step (the prompt), as vLLM's
// dynamic calculate_kv_scales does once — s = amax / fp8_max (448 / 57344), nvfp4's
// g = amax / (6·448) — and keeps it for the rest of the sequence (later values saturate);
// `scale=<number>` fixes it. llama.cpp's types and mxfp4 have only block scales.
//
// Modes as `absmax`: `prompt` codes the rows prefill steps stored (generated tokens stay full
// precision, counted at fp16); `decode` — what a deployment does — codes every step's rows.

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/kv/cache_types.hpp"
#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/core/model_config.hpp"

namespace kvcanary::kv {

struct CacheTypeQuant {
  static constexpr std::string_view name = "cache_type";
  // Registered under every type's name (kv/registry.hpp).
  static bool accepts(std::string_view n) { return parse_cache_type(n).has_value(); }
  static std::vector<std::string_view> names() {
    std::vector<std::string_view> out;
    for (const auto& i : kCacheTypes) out.push_back(i.name);
    return out;
  }
  static std::string_view summary() {
    return "deployed KV-cache type (llama.cpp -ctk/-ctv, vLLM kv_cache_dtype, FP4): packed blocks read in place";
  }
  static std::string summary(std::string_view n) {
    const auto& i = info(*parse_cache_type(n));
    return std::string(i.origin) + "; " + format_bits(i) + " bits/value";
  }
  static std::vector<ParameterDoc> parameters() {
    return {{"k", "the compressor's name", "cache type of the keys: " + cache_type_names()},
            {"v", "the compressor's name", "cache type of the values (llama.cpp's -ctv)"},
            {"scale", "1",
             "per-tensor scale of fp8/nvfp4: 1 (vLLM's default), amax (calibrated from the prompt per layer), or a "
             "number"}};
  }
  static CacheTypeQuant create(std::string_view n, const PolicyOptions& o, const ModelConfig&) {
    CacheTypeQuant p;
    auto type_of = [&](const char* key) {
      const std::string v = o.get_string(key, std::string(n));
      const auto t = parse_cache_type(v);
      if (!t) fail(o.source(), key, "unknown cache type '" + v + "' (known: " + cache_type_names() + ")");
      return *t;
    };
    p.k_type = type_of("k");
    p.v_type = type_of("v");
    p.scale_spec = o.get_string("scale", "1");
    if (p.scale_spec != "amax") {
      char* end = nullptr;
      p.fixed_scale = std::strtof(p.scale_spec.c_str(), &end);
      if (p.scale_spec.empty() || *end != '\0' || !(p.fixed_scale > 0.0f) || !std::isfinite(p.fixed_scale))
        fail(o.source(), "scale", "must be 'amax' or a positive number, got '" + p.scale_spec + "'");
    }
    if (o.get_string("scale", "") != "" && !info(p.k_type).tensor_scale && !info(p.v_type).tensor_scale)
      fail(o.source(), "scale", "only fp8_e4m3, fp8_e5m2 and nvfp4 have a per-tensor scale");
    p.mode = o.mode_or(Mode::Prompt);  // default unchanged: docs/COMPRESSORS.md "Modes"
    p.label = std::string(n);
    o.reject_unknown(std::string(n));
    return p;
  }

  CacheType k_type = CacheType::Q8_0, v_type = CacheType::Q8_0;
  std::string scale_spec = "1", label = "q8_0";
  float fixed_scale = 1.0f;
  Mode mode = Mode::Decode;

  // Per layer: the K and V per-tensor scales (fixed at the first compressing step).
  std::vector<float> k_scale, v_scale;
  std::int64_t tokens_seen = 0;

  std::size_t attention_rows(StepKind, std::size_t) const { return 0; }

  void after_step(KvCache& cache, const AttentionRecord&, StepKind kind) {
    if (cache.tokens_seen() < tokens_seen) {  // the cache was cleared and refilled: recalibrate
      k_scale.clear();
      v_scale.clear();
    }
    tokens_seen = cache.tokens_seen();
    if (mode == Mode::Prompt && kind == StepKind::Decode) return;
    const std::size_t D = cache.head_dim();
    if (k_scale.empty()) {
      k_scale.resize(cache.layers());
      v_scale.resize(cache.layers());
      for (std::size_t l = 0; l < cache.layers(); ++l) {
        k_scale[l] = initial_scale(cache, l, k_type, true);
        v_scale[l] = initial_scale(cache, l, v_type, false);
      }
    }
    for (std::size_t l = 0; l < cache.layers(); ++l)
      for (std::size_t h = 0; h < cache.kv_heads(); ++h) {
        HeadStore& s = cache.head(l, h);
        s.packed_keys.configure_type(k_type, k_scale[l], D);
        s.packed_values.configure_type(v_type, v_scale[l], D);
        const std::size_t nk = s.keys.size() / D, nv = s.values.size() / D;
        s.packed_keys.push_typed(s.keys.data(), nk, D);
        s.packed_values.push_typed(s.values.data(), nv, D);
        s.retire_float_keys(nk, D);
        s.retire_float_values(nv, D);
      }
  }

  // Bytes held: every packed row's blocks (scales inside), the rows not coded yet (prompt
  // mode: generated tokens) at fp16, and 4 B per layer and tensor with a per-tensor scale.
  std::size_t stored_bytes(const KvCache& c) const {
    std::size_t bytes = codes_and_fp16_row_bytes(c);
    if (!k_scale.empty())
      bytes += c.layers() * sizeof(float) * ((info(k_type).tensor_scale ? 1 : 0) + (info(v_type).tensor_scale ? 1 : 0));
    return bytes;
  }

  std::string identity() const {
    std::string id = label + "(k=" + std::string(info(k_type).name) + ",v=" + std::string(info(v_type).name);
    if (info(k_type).tensor_scale || info(v_type).tensor_scale) id += ",scale=" + scale_spec;
    return id + ",mode=" + mode_name(mode) + ")";
  }

 private:
  static std::string format_bits(const CacheTypeInfo& i) {
    return format_number(static_cast<double>(i.block_bytes) * 8.0 / static_cast<double>(i.block));
  }

  float initial_scale(const KvCache& cache, std::size_t l, CacheType t, bool keys) const {
    if (!info(t).tensor_scale) return 1.0f;
    if (scale_spec != "amax") return fixed_scale;
    float amax = 0.0f;
    for (std::size_t h = 0; h < cache.kv_heads(); ++h) {
      const auto& rows = keys ? cache.head(l, h).keys : cache.head(l, h).values;
      for (float x : rows)
        if (std::isfinite(x)) amax = std::max(amax, std::abs(x));
    }
    const float range = t == CacheType::FP8_E4M3 ? 448.0f : t == CacheType::FP8_E5M2 ? 57344.0f : 6.0f * 448.0f;
    return amax > 0.0f ? amax / range : 1.0f;
  }
};

static_assert(CachePolicy<CacheTypeQuant>);

}  // namespace kvcanary::kv
