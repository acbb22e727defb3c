#pragma once
// Minimal flag parsing for the kvcanary subcommands: --name VALUE and --flag. Unknown or
// malformed flags are bad input (exit 2) and name the flag.

#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kvcanary/core/error.hpp"

namespace kvcanary::cli {

class Args {
 public:
  // `valued` take one value; `switches` take none. Repeated valued flags accumulate.
  Args(int argc, char** argv, int first, std::set<std::string> valued, std::set<std::string> switches) {
    for (int i = first; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0) fail("command line", a, "unexpected argument");
      std::string value;
      const auto eq = a.find('=');
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
      }
      if (switches.count(a)) {
        if (eq != std::string::npos) fail("command line", a, "takes no value");
        flags_.insert(a);
      } else if (valued.count(a)) {
        if (eq == std::string::npos) {
          if (i + 1 >= argc) fail("command line", a, "needs a value");
          value = argv[++i];
        }
        values_[a].push_back(value);
      } else {
        fail("command line", a, "unknown option");
      }
    }
  }

  bool has(const std::string& name) const { return flags_.count(name) || values_.count(name); }
  std::string get(const std::string& name, const std::string& fallback = "") const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second.back();
  }
  std::string require(const std::string& name) const {
    if (!values_.count(name)) fail("command line", name, "is required");
    return get(name);
  }
  std::vector<std::string> all(const std::string& name) const {
    auto it = values_.find(name);
    return it == values_.end() ? std::vector<std::string>{} : it->second;
  }
  long long integer(const std::string& name, long long fallback, long long min_value = 0) const {
    if (!values_.count(name)) return fallback;
    const std::string s = get(name);
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0') fail("command line", name, "'" + s + "' is not an integer");
    if (v < min_value) fail("command line", name, "must be at least " + std::to_string(min_value));
    return v;
  }

 private:
  std::set<std::string> flags_;
  std::map<std::string, std::vector<std::string>> values_;
};

}  // namespace kvcanary::cli
