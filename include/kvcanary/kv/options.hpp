#pragma once
// Runtime parameters of a compressor policy, as they arrive from the command line or a sweep
// config: the budget knob, the mode, and named parameters (window, kernel, sinks, bits,
// group, residual, seed, ...). A policy declares its parameters once, in its parameter table
// (kv/parameter_table.hpp), which reads them through `get_*` and lists them for `kvcanary
// compressors`; it must reject a name it does not know — so a typo is an error, never a
// silent default.

#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/kv/policy.hpp"

namespace kvcanary::kv {

struct ParameterDoc {
  std::string name, default_value, meaning;
};

class PolicyOptions {
 public:
  PolicyOptions() = default;
  // `mode` unset: each policy's paper default (its `default_mode`). `capacity` unset: fixed.
  PolicyOptions(double budget, std::optional<Mode> mode, std::map<std::string, std::string> params = {},
                std::string source = "options", std::optional<Capacity> capacity = std::nullopt)
      : budget_(budget), mode_(mode), capacity_(capacity), params_(std::move(params)), source_(std::move(source)) {
    if (!(budget_ > 0.0 && budget_ <= 1.0))
      fail(source_, "budget", "must be in (0, 1], got " + std::to_string(budget_));
  }

  double budget() const { return budget_; }
  // The mode asked for, else the policy's own default.
  Mode mode_or(Mode paper_default) const { return mode_.value_or(paper_default); }
  const std::optional<Mode>& mode_asked() const { return mode_; }
  Capacity capacity() const { return capacity_.value_or(Capacity::Fixed); }
  const std::optional<Capacity>& capacity_asked() const { return capacity_; }
  const std::string& source() const { return source_; }
  const std::map<std::string, std::string>& params() const { return params_; }

  std::int64_t get_int(const std::string& name, std::int64_t fallback, std::int64_t min_value = 0) const {
    used_.insert(name);
    auto it = params_.find(name);
    if (it == params_.end()) return fallback;
    char* end = nullptr;
    const long long v = std::strtoll(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end != '\0') fail(source_, name, "'" + it->second + "' is not an integer");
    if (v < min_value) fail(source_, name, "must be at least " + std::to_string(min_value));
    return v;
  }
  double get_double(const std::string& name, double fallback) const {
    used_.insert(name);
    auto it = params_.find(name);
    if (it == params_.end()) return fallback;
    char* end = nullptr;
    const double v = std::strtod(it->second.c_str(), &end);
    if (it->second.empty() || *end != '\0') fail(source_, name, "'" + it->second + "' is not a number");
    return v;
  }
  std::string get_string(const std::string& name, const std::string& fallback) const {
    used_.insert(name);
    auto it = params_.find(name);
    return it == params_.end() ? fallback : it->second;
  }

  // After a policy has read its parameters: anything left unread is unknown to it.
  void reject_unknown(const std::string& policy) const {
    for (const auto& [k, v] : params_)
      if (!used_.count(k))
        fail(source_, k, "is not a parameter of compressor '" + policy + "' (see `kvcanary compressors`)");
  }

 private:
  double budget_ = 1.0;
  std::optional<Mode> mode_;
  std::optional<Capacity> capacity_;
  std::map<std::string, std::string> params_;
  std::string source_ = "options";
  mutable std::set<std::string> used_;
};

}  // namespace kvcanary::kv
