#pragma once
// The budget knob of the quantizing policies (absmax, kivi): which bit width a cell runs at.
// Kept apart from kv/quantizer.hpp so that the cache, which stores packed rows, can use the
// codec without depending on the options layer.

#include <cstdint>
#include <string>

#include "kvcanary/core/error.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/quantizer.hpp"

namespace kvcanary::kv::quant {

// Bit width of a quantizing policy: the `bits` parameter, or else the nominal budget mapped
// as the prototype did (the fraction of fp16 the codes alone would take: 0.5 → 8, 0.25 → 4,
// 0.125 → 2). The fraction actually measured (scales, zero points, residual included) is what
// a run reports; the nominal budget only picks the width.
inline unsigned bits_from_options(const PolicyOptions& o, const std::string& policy) {
  const std::int64_t b = o.get_int("bits", 0, 1);
  if (b != 0) {
    if (!valid_bits(b))
      fail(o.source(), "bits", "compressor '" + policy + "' supports 8, 4 or 2 bits, got " + std::to_string(b));
    return static_cast<unsigned>(b);
  }
  if (o.budget() == 0.5) return 8;
  if (o.budget() == 0.25) return 4;
  if (o.budget() == 0.125) return 2;
  fail(o.source(), "bits",
       "compressor '" + policy + "' needs bits=8|4|2, or a budget of 0.5, 0.25 or 0.125 to derive it from (budget is " +
           std::to_string(o.budget()) + ")");
}

}  // namespace kvcanary::kv::quant
