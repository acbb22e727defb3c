#pragma once
// The one argument parser of every kvcanary subcommand. A subcommand is declared as a Command:
// its positional arguments and its options, each with its value name, default and meaning. The
// same declaration parses the command line and prints `kvcanary CMD --help`, so the help lists
// exactly the options the command accepts, and shared options (--model, --text, --text-file,
// --threads, ...) are declared once (options.hpp) and spelled the same everywhere.
//
// Syntax: --name VALUE, --name=VALUE, --switch; anything not starting with "--" is positional.
// --help or -h anywhere asks for the help (exit 0). An unknown option, a missing value, a value
// given to a switch, too many or too few positionals are bad input: one Error naming the option
// (exit 2 in main).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "kvcanary/core/error.hpp"

namespace kvcanary::cli {

struct Option {
  std::string name;          // "--out"
  std::string value;         // "FILE" for an option with a value; empty for a switch
  std::string default_text;  // shown as "(default: ...)"; "required" shows "(required)"
  std::string help;
  bool repeatable = false;  // may be given several times; every value is kept (else the last wins)
  std::string alias = {};   // an older spelling accepted for the same option
};

struct Command {
  std::string name;
  std::string positional;  // e.g. "CONFIG.toml", "RESULTS.jsonl [MORE.jsonl...]"; "" = none
  std::size_t min_positional = 0, max_positional = 0;
  std::string summary;      // one line, for `kvcanary --help`
  std::string description;  // the paragraph under the usage line
  std::vector<Option> options;
};

inline constexpr std::size_t kMany = SIZE_MAX;

inline std::string usage_line(const Command& c) {
  std::string s = "usage: kvcanary " + c.name;
  if (!c.positional.empty()) s += " " + c.positional;
  if (!c.options.empty()) s += " [options]";
  return s + "\n";
}

// `kvcanary CMD --help`: usage, description, then every option with its value and default.
inline std::string help_text(const Command& c) {
  std::string s = usage_line(c);
  if (!c.description.empty()) s += "\n" + c.description + "\n";
  if (c.options.empty()) return s + "\nno options\n";
  s += "\noptions:\n";
  for (const Option& o : c.options) {
    std::string head = "  " + o.name + (o.value.empty() ? "" : " " + o.value);
    if (head.size() < 32)
      head.resize(32, ' ');
    else
      head += "\n" + std::string(32, ' ');
    std::string tail = o.help;
    if (o.default_text == "required")
      tail += " (required)";
    else if (!o.default_text.empty())
      tail += " (default: " + o.default_text + ")";
    if (o.repeatable) tail += " [repeatable]";
    if (!o.alias.empty()) tail += " [also " + o.alias + "]";
    s += head + tail + "\n";
  }
  s += "  --help, -h                    this text\n";
  return s;
}

class Args {
 public:
  // Parses argv[first..argc) against `cmd`.
  Args(const Command& cmd, int argc, char** argv, int first) : cmd_(&cmd) {
    std::map<std::string, const Option*> by_name;
    for (const Option& o : cmd.options) {
      by_name[o.name] = &o;
      if (!o.alias.empty()) by_name[o.alias] = &o;
    }
    for (int i = first; i < argc; ++i)
      if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
        help_ = true;
        return;
      }
    for (int i = first; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0) {
        if (positional_.size() >= cmd.max_positional)
          fail("command line", a,
               cmd.max_positional
                   ? "unexpected argument (" + cmd.name + " takes " + cmd.positional + ")"
                   : "unexpected argument (" + cmd.name + " takes only options; see kvcanary " + cmd.name + " --help)");
        positional_.push_back(a);
        continue;
      }
      std::string value;
      const auto eq = a.find('=');
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
      }
      const auto it = by_name.find(a);
      if (it == by_name.end())
        fail("command line", a, "unknown option (kvcanary " + cmd.name + " --help lists the options)");
      const Option& o = *it->second;
      if (o.value.empty()) {
        if (eq != std::string::npos) fail("command line", a, "takes no value");
        flags_.insert(o.name);
        continue;
      }
      if (eq == std::string::npos) {
        if (i + 1 >= argc) fail("command line", a, "needs a value (" + o.value + ")");
        value = argv[++i];
      }
      values_[o.name].push_back(value);
    }
    if (positional_.size() < cmd.min_positional)
      fail("command line", cmd.positional,
           "is required (usage: kvcanary " + cmd.name + " " + cmd.positional + " [options])");
    for (const Option& o : cmd.options)
      if (o.default_text == "required" && !values_.count(o.name)) fail("command line", o.name, "is required");
  }

  bool help() const { return help_; }
  const std::vector<std::string>& positional() const { return positional_; }

  bool has(const std::string& name) const {
    known(name);
    return flags_.count(name) || values_.count(name);
  }
  std::string get(const std::string& name, const std::string& fallback = "") const {
    known(name);
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second.back();
  }
  std::string require(const std::string& name) const {
    if (!has(name)) fail("command line", name, "is required");
    return get(name);
  }
  std::vector<std::string> all(const std::string& name) const {
    known(name);
    auto it = values_.find(name);
    return it == values_.end() ? std::vector<std::string>{} : it->second;
  }
  long long integer(const std::string& name, long long fallback, long long min_value = 0) const {
    if (!has(name)) return fallback;
    const std::string s = get(name);
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0') fail("command line", name, "'" + s + "' is not an integer");
    if (v < min_value) fail("command line", name, "must be at least " + std::to_string(min_value));
    return v;
  }

 private:
  // A lookup of an option the command does not declare is a bug in kvcanary, not bad input.
  void known(const std::string& name) const {
    for (const Option& o : cmd_->options)
      if (o.name == name) return;
    throw std::logic_error("kvcanary " + cmd_->name + " reads undeclared option " + name);
  }

  const Command* cmd_;
  bool help_ = false;
  std::vector<std::string> positional_;
  std::set<std::string> flags_;
  std::map<std::string, std::vector<std::string>> values_;
};

// Parses argv[1..argc) for `c` (argv[0] is the command's name), then prints the help (exit 0)
// or runs. main() dispatches through this; tests and embedders call a command the same way.
template <class Run>
int run_with_args(const Command& c, int argc, char** argv, Run&& run) {
  const Args args(c, argc, argv, 1);
  if (args.help()) {
    std::fputs(help_text(c).c_str(), stdout);
    return 0;
  }
  return run(args);
}

}  // namespace kvcanary::cli
