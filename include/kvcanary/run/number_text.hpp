#pragma once
// A number as text through a printf format ("%.1f", "%+.1f%%"): the one formatter the report's
// table and the chart's labels share, so a value reads the same in RESULTS.md and on the chart.

#include <cstdio>
#include <string>

namespace kvcanary::run::detail {

inline std::string fmt(const char* printf_format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, printf_format, v);
  return buf;
}

}  // namespace kvcanary::run::detail
