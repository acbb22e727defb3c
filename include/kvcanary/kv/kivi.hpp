#pragma once
// `kivi`: KIVI (Liu et al. 2024, "KIVI: A Tuning-Free Asymmetric 2bit Quantization for KV
// Cache", ICML 2024). Keys and values are quantized asymmetrically with b bits,
//
//   z = min(X_g),  s = (max(X_g) − min(X_g)) / (2^b − 1),  q = round((x − z) / s),  x̂ = q·s + z,
//
// but over different groups X_g, because keys have outlier *channels* and values do not:
//   * keys per channel — for each channel, the statistics of a group of G consecutive tokens;
//   * values per token — for each token, the statistics of a group of Gv consecutive channels,
//     Gv = min(G, head_dim) (the paper writes d/G groups, which is 0 when G > head_dim, as
//     for head_dim 64 with G 128); if Gv does not divide head_dim the last group is shorter.
// Rounding, fp16 scale/zero point and packing are kv/quantizer.hpp's.
//
// The most recent tokens stay in full precision (the paper's residual, R tokens), exactly as
// the paper's Algorithm 1 splits them, with n the tokens the head holds:
//   * keys: the first ⌊n / R⌋·R are quantized — during decoding the key residual fills up to R
//     tokens and is then quantized all at once as R/G whole groups of G (so R must be a
//     multiple of G), leaving 0 to R−1 full-precision keys;
//   * values: the first max(0, n − R) are quantized — a value leaves the residual one token at
//     a time, as soon as it is not among the R most recent.
// Since both counts depend only on n, a prompt prefilled in chunks ends in the same state as
// one prefilled whole.
//
// K and V bit widths may differ (`k_bits`, `v_bits`; both default to `bits`): the paper's
// configurations set them separately, and its authors recommend 4-bit keys for GQA models.
//
// Modes: `prompt` applies the split after prefill steps only (the prompt is quantized once;
// generated tokens stay full precision); `decode` applies it after every step.
//
// Quantized rows move into the head's packed store (codes, fp16 scales and zero points;
// kv/packed_rows.hpp) and leave the fp32 store; attention dequantizes them on read. The rows
// not quantized are the residual, counted in fp16 as `full` counts rows. The policy itself is
// stateless: the counts above depend only on the rows a head holds.

#include <algorithm>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/parameter_table.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/kv/quant_width.hpp"
#include "kvcanary/core/model_config.hpp"

namespace kvcanary::kv {

struct KiviQuant {
  static constexpr std::string_view name = "kivi";
  static std::string_view summary() {
    return "KIVI (Liu et al. 2024): asymmetric keys per channel, values per token, groups of G, last R tokens full "
           "precision";
  }
  // group and residual are plain members; the bit widths default from the budget (quant_width.hpp).
  static constexpr auto parameter_table() {
    return std::tuple{
        Parameter{"group", &KiviQuant::group,
                  "group size G (32, 64 or 128): tokens per key group, channels per value group (at most head_dim)", 1},
        Parameter{"residual", &KiviQuant::residual,
                  "R: most recent tokens kept in full precision; a positive multiple of group", 1}};
  }
  static std::vector<ParameterDoc> parameters() {
    std::vector<ParameterDoc> docs = parameter_docs<KiviQuant>();
    docs.insert(docs.begin(), {"bits", "budget",
                               "bits per quantized K/V value: 8, 4 or 2; if absent, budget 0.5→8, 0.25→4, 0.125→2"});
    docs.push_back({"k_bits", "bits", "bits of the keys (8, 4 or 2), if they differ from the values'"});
    docs.push_back({"v_bits", "bits", "bits of the values (8, 4 or 2)"});
    return docs;
  }
  static KiviQuant create(const PolicyOptions& o, const ModelConfig&) {
    KiviQuant p;
    const bool split = o.get_int("k_bits", 0, 0) != 0 && o.get_int("v_bits", 0, 0) != 0;
    const unsigned bits = split && o.get_int("bits", 0, 0) == 0 ? 0 : quant::bits_from_options(o, std::string(name));
    auto width = [&](const char* key) {
      const std::int64_t b = o.get_int(key, bits, 0);
      if (!quant::valid_bits(b))
        fail(o.source(), key, "compressor 'kivi' supports 8, 4 or 2 bits, got " + std::to_string(b));
      return static_cast<unsigned>(b);
    };
    p.k_bits = width("k_bits");
    p.v_bits = width("v_bits");
    read_parameters(p, o);
    if (p.group != 32 && p.group != 64 && p.group != 128)
      fail(o.source(), "group", "must be 32, 64 or 128, got " + std::to_string(p.group));
    if (p.residual % p.group != 0)
      fail(o.source(), "residual",
           "must be a multiple of group (" + std::to_string(p.group) +
               "): keys leave the residual in whole groups, got " + std::to_string(p.residual));
    p.mode = o.mode_or(Mode::Prompt);  // default unchanged: docs/COMPRESSORS.md "Modes"
    o.reject_unknown(std::string(name));
    return p;
  }

  unsigned k_bits = 2, v_bits = 2;
  std::size_t group = 32, residual = 128;
  Mode mode = Mode::Decode;

  std::size_t value_group(std::size_t head_dim) const { return std::min(group, head_dim); }

  std::size_t attention_rows(StepKind, std::size_t) const { return 0; }

  void after_step(KvCache& cache, const AttentionRecord&, StepKind kind) {
    if (mode == Mode::Prompt && kind == StepKind::Decode) return;
    const std::size_t NKV = cache.kv_heads(), D = cache.head_dim(), gv = value_group(D), v_groups = (D + gv - 1) / gv;
    std::vector<std::uint8_t> codes(group * D);
    std::vector<float> lo(D), hi(D), sd(D), zd(D);
    for (std::size_t l = 0; l < cache.layers(); ++l)
      for (std::size_t h = 0; h < NKV; ++h) {
        HeadStore& store = cache.head(l, h);
        PackedRows& pk = store.packed_keys;
        PackedRows& pv = store.packed_values;
        pk.configure(k_bits, /*symmetric=*/false, /*group_rows=*/group, /*group_cols=*/1);
        pv.configure(v_bits, /*symmetric=*/false, /*group_rows=*/1, /*group_cols=*/gv);
        const std::size_t n = store.size();
        // Keys: whole groups up to ⌊n/R⌋·R. Values: every token older than the R most recent.
        // Rows are quantized from the front of the fp32 store and retired together at the
        // end (one move of the residual, not one per group).
        const std::size_t k_target = n / residual * residual, v_target = n > residual ? n - residual : 0;
        std::size_t k_new = 0, v_new = 0;
        for (; pk.rows + group <= k_target; k_new += group) {
          const std::size_t p0 = pk.params.size();
          pk.params.resize(p0 + D);
          quant::asym_quantize_channels(&store.keys[k_new * D], group, D, k_bits, codes.data(), &pk.params[p0],
                                        lo.data(), hi.data(), sd.data(), zd.data());
          pk.push_codes(codes.data(), group, D);
        }
        for (; pv.rows < v_target; ++v_new) {
          const std::size_t p0 = pv.params.size();
          pv.params.resize(p0 + v_groups);
          quant::asym_quantize_token(&store.values[v_new * D], D, gv, v_bits, codes.data(), &pv.params[p0]);
          pv.push_codes(codes.data(), 1, D);
        }
        store.retire_float_keys(k_new, D);
        store.retire_float_values(v_new, D);
      }
  }

  // Bytes of the buffers held: packed codes, fp16 scale and zero point of every group, and the
  // full-precision residual rows (keys and values counted separately: their residuals differ)
  // at fp16.
  std::size_t stored_bytes(const KvCache& c) const {
    std::size_t bytes = 0;
    for (std::size_t l = 0; l < c.layers(); ++l)
      for (std::size_t h = 0; h < c.kv_heads(); ++h) {
        const HeadStore& s = c.head(l, h);
        bytes += s.packed_keys.bytes() + s.packed_values.bytes() + (s.keys.size() + s.values.size()) * sizeof(f16_t);
      }
    return bytes;
  }

  std::string identity() const {
    const std::string widths = k_bits == v_bits
                                   ? "bits=" + std::to_string(k_bits)
                                   : "k_bits=" + std::to_string(k_bits) + ",v_bits=" + std::to_string(v_bits);
    return "kivi(" + widths + identity_suffix(*this) + ",mode=" + mode_name(mode) + ")";
  }
};

static_assert(CachePolicy<KiviQuant>);

}  // namespace kvcanary::kv
