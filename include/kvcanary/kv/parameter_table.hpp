#pragma once
// A compressor's parameters, each declared once. A policy lists them in
// `static constexpr auto parameter_table()`: one row per parameter with its name, the member it
// sets, its accepted range and its meaning; its default is the member's own initializer. The
// table then drives the three places a parameter shows:
//   - `kvcanary compressors` lists name, default and meaning (parameter_docs),
//   - `create` sets the members from the options, range-checked (read_parameters),
//   - the cell id spells every value (identity_suffix) — so identities in result rows cannot
//     drift from what was run.
// A rule on one value beyond its range (an odd pooling kernel) is named in its row. Rules that tie
// a parameter to the budget or to another parameter (KIVI's residual a multiple of its group,
// ThinK's default ratio from the budget) stay in the policy's `create`, next to the reason.

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/kv/options.hpp"

namespace kvcanary::kv {

// Shortest decimal that round-trips (0.25 → "0.25", 0.1 → "0.1"): identities are cell ids.
inline std::string format_number(double v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

inline constexpr double no_max = std::numeric_limits<double>::infinity();

// A rule beyond the range: the text after "must be" when the value breaks it, else nullptr.
using ParameterRule = const char* (*)(double);

// Max-pooling over votes keeps their length only with an odd kernel (padding kernel/2 each side).
inline const char* odd_kernel(double v) {
  return std::fmod(v, 2.0) == 1.0 ? nullptr : "odd (max_pool1d with padding kernel/2 keeps the length only then)";
}

// One row of a parameter table: a member of Policy of type T (an unsigned integer, a double, or
// a bool spelled 0/1), accepted in [min, max] and by `rule` when there is one.
template <class Policy, class T>
struct Parameter {
  static_assert(std::is_same_v<T, bool> || std::is_unsigned_v<T> || std::is_floating_point_v<T>,
                "a table parameter is an unsigned integer, a floating-point number or a 0/1 flag");
  std::string_view name;
  T Policy::*member;
  std::string_view meaning;
  double min = std::is_unsigned_v<T> ? 0.0 : -std::numeric_limits<double>::infinity();
  double max = no_max;
  ParameterRule rule = nullptr;
};

// How docs and identities spell a value: a flag as 1/0, an integer in decimal, a double as its
// shortest round-trip decimal.
template <class T>
std::string parameter_text(T v) {
  if constexpr (std::is_same_v<T, bool>)
    return v ? "1" : "0";
  else if constexpr (std::is_integral_v<T>)
    return std::to_string(v);
  else
    return format_number(static_cast<double>(v));
}

template <class P>
concept HasParameterTable = requires {
  P::parameter_table();
};

// Name, default (the member's initializer) and meaning of every parameter, in table order.
template <HasParameterTable P>
std::vector<ParameterDoc> parameter_docs() {
  const P defaults{};
  std::vector<ParameterDoc> docs;
  std::apply(
      [&](const auto&... row) {
        (docs.push_back({std::string(row.name), parameter_text(defaults.*row.member), std::string(row.meaning)}), ...);
      },
      P::parameter_table());
  return docs;
}

namespace parameter_detail {

inline std::string range_text(double min, double max) {
  if (std::isinf(max)) return "must be at least " + format_number(min);
  return "must be in [" + format_number(min) + ", " + format_number(max) + "]";
}

template <class P, class T>
void read_one(P& p, const PolicyOptions& o, const Parameter<P, T>& row) {
  const std::string name(row.name);
  T& value = p.*row.member;
  if constexpr (std::is_same_v<T, bool>) {
    const std::int64_t v = o.get_int(name, value ? 1 : 0, 0);
    if (v > 1) fail(o.source(), name, "must be 0 or 1");
    value = v == 1;
  } else if constexpr (std::is_integral_v<T>) {
    const std::int64_t v = o.get_int(name, static_cast<std::int64_t>(value), static_cast<std::int64_t>(row.min));
    if (static_cast<double>(v) > row.max) fail(o.source(), name, range_text(row.min, row.max));
    value = static_cast<T>(v);
  } else {
    const double v = o.get_double(name, static_cast<double>(value));
    if (!std::isfinite(v) || !(v >= row.min && v <= row.max))
      fail(o.source(), name, range_text(row.min, row.max) + " (a finite number)");
    value = static_cast<T>(v);
  }
  if (row.rule)
    if (const char* broken = row.rule(static_cast<double>(value)))
      fail(o.source(), name, "must be " + std::string(broken));
}

}  // namespace parameter_detail

// Sets every table member of p from the options (the member's initializer when absent), each
// checked against its range. The caller still rejects unknown names (PolicyOptions::reject_unknown).
template <HasParameterTable P>
void read_parameters(P& p, const PolicyOptions& o) {
  std::apply([&](const auto&... row) { (parameter_detail::read_one(p, o, row), ...); }, P::parameter_table());
}

// ",name=value" for every parameter, in table order: the tail of the policy's identity.
template <HasParameterTable P>
std::string identity_suffix(const P& p) {
  std::string s;
  // Appended piece by piece: GCC 12 reports a false -Wrestrict on `"," + std::string(...)`.
  auto append = [&](const auto& row) {
    s += ',';
    s += row.name;
    s += '=';
    s += parameter_text(p.*row.member);
  };
  std::apply([&](const auto&... row) { (append(row), ...); }, P::parameter_table());
  return s;
}

// What `kvcanary compressors` lists for P: its own `parameters()` where some are not plain members
// (KIVI's bit widths from the budget, a composition's two halves; such a list may include its
// table's parameter_docs), else its table.
template <class P>
std::vector<ParameterDoc> parameters_of() {
  if constexpr (requires { P::parameters(); })
    return P::parameters();
  else
    return parameter_docs<P>();
}

}  // namespace kvcanary::kv
