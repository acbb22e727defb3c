#pragma once
// One table of a TOML config (toml++), read the way every kvcanary input is read: a wrong type
// or an out-of-range value is an Error naming the file and the key's full dotted path, and a
// key nobody read is an error too (`reject_unknown`) — a typo never becomes a silent default.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "kvcanary/core/error.hpp"

namespace kvcanary::io {

class ConfigTable {
 public:
  ConfigTable(const toml::table& table, std::string file, std::string path)
      : table_(&table), file_(std::move(file)), path_(std::move(path)) {}

  const std::string& file() const { return file_; }
  std::string key_path(const std::string& key) const {
    return path_.empty() ? key : key.empty() ? path_ : path_ + "." + key;
  }
  [[noreturn]] void fail_at(const std::string& key, const std::string& message) const {
    fail(file_, key_path(key), message);
  }

  bool has(const std::string& key) const { return table_->contains(key); }

  std::optional<std::string> opt_string(const std::string& key) const {
    used_.insert(key);
    const toml::node* n = table_->get(key);
    if (!n) return std::nullopt;
    if (!n->is_string()) fail_at(key, "must be a string");
    return n->value<std::string>();
  }
  std::string get_string(const std::string& key, const std::string& fallback) const {
    return opt_string(key).value_or(fallback);
  }
  std::string require_string(const std::string& key) const {
    auto v = opt_string(key);
    if (!v) fail_at(key, "is required");
    return *v;
  }

  std::int64_t get_int(const std::string& key, std::int64_t fallback, std::int64_t min_value = 0) const {
    used_.insert(key);
    const toml::node* n = table_->get(key);
    if (!n) return fallback;
    if (!n->is_integer()) fail_at(key, "must be an integer");
    const std::int64_t v = *n->value<std::int64_t>();
    if (v < min_value) fail_at(key, "must be at least " + std::to_string(min_value));
    return v;
  }

  double get_double(const std::string& key, double fallback) const {
    used_.insert(key);
    const toml::node* n = table_->get(key);
    if (!n) return fallback;
    if (!n->is_number()) fail_at(key, "must be a number");
    return *n->value<double>();
  }

  bool get_bool(const std::string& key, bool fallback) const {
    used_.insert(key);
    const toml::node* n = table_->get(key);
    if (!n) return fallback;
    if (!n->is_boolean()) fail_at(key, "must be true or false");
    return *n->value<bool>();
  }

  std::vector<double> get_numbers(const std::string& key, std::vector<double> fallback) const {
    used_.insert(key);
    const toml::node* n = table_->get(key);
    if (!n) return fallback;
    const toml::array* a = n->as_array();
    if (!a) fail_at(key, "must be an array of numbers");
    std::vector<double> out;
    for (std::size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      if (!e.is_number()) fail_at(key + "[" + std::to_string(i) + "]", "must be a number");
      out.push_back(*e.value<double>());
    }
    return out;
  }

  std::vector<std::string> get_strings(const std::string& key, std::vector<std::string> fallback) const {
    used_.insert(key);
    const toml::node* n = table_->get(key);
    if (!n) return fallback;
    if (n->is_string()) return {*n->value<std::string>()};
    const toml::array* a = n->as_array();
    if (!a) fail_at(key, "must be a string or an array of strings");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      if (!e.is_string()) fail_at(key + "[" + std::to_string(i) + "]", "must be a string");
      out.push_back(*e.value<std::string>());
    }
    return out;
  }

  // A sub-table's scalar values as strings (integers and floats printed as TOML writes them):
  // how compressor parameters travel to kv::PolicyOptions.
  std::map<std::string, std::string> get_scalars(const std::string& key) const {
    used_.insert(key);
    std::map<std::string, std::string> out;
    const toml::node* n = table_->get(key);
    if (!n) return out;
    const toml::table* t = n->as_table();
    if (!t) fail_at(key, "must be a table");
    for (const auto& [k, v] : *t) {
      const std::string name(k.str());
      if (auto s = v.value_exact<std::string>())
        out[name] = *s;
      else if (auto i = v.value_exact<std::int64_t>())
        out[name] = std::to_string(*i);
      else if (auto d = v.value_exact<double>()) {
        std::ostringstream ss;
        ss.precision(17);
        ss << *d;
        out[name] = ss.str();
      } else if (auto b = v.value_exact<bool>())
        out[name] = *b ? "1" : "0";
      else
        fail_at(key + "." + name, "must be a string, number or boolean");
    }
    return out;
  }

  std::optional<ConfigTable> opt_table(const std::string& key) const {
    used_.insert(key);
    const toml::node* n = table_->get(key);
    if (!n) return std::nullopt;
    const toml::table* t = n->as_table();
    if (!t) fail_at(key, "must be a table");
    return ConfigTable(*t, file_, key_path(key));
  }

  // [[key]] arrays of tables.
  std::vector<ConfigTable> get_tables(const std::string& key) const {
    used_.insert(key);
    std::vector<ConfigTable> out;
    const toml::node* n = table_->get(key);
    if (!n) return out;
    const toml::array* a = n->as_array();
    if (!a || !a->is_array_of_tables()) fail_at(key, "must be an array of tables ([[" + key + "]])");
    for (std::size_t i = 0; i < a->size(); ++i)
      out.emplace_back(*a->get(i)->as_table(), file_, key_path(key) + "[" + std::to_string(i) + "]");
    return out;
  }

  void reject_unknown() const {
    for (const auto& [k, v] : *table_) {
      const std::string name(k.str());
      if (!used_.count(name)) fail_at(name, "unknown key");
    }
  }

 private:
  const toml::table* table_;
  std::string file_, path_;
  mutable std::set<std::string> used_;
};

// Parses a whole TOML document; a syntax error names the file, line and column.
inline toml::table parse_toml_file(const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path)) fail(path.string(), "", "config file not found");
  try {
    return toml::parse_file(path.string());
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    fail(path.string(), "line " + std::to_string(b.line) + ", column " + std::to_string(b.column),
         std::string(e.description()));
  }
}

inline toml::table parse_toml_string(std::string_view text, const std::string& name) {
  try {
    return toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    fail(name, "line " + std::to_string(b.line) + ", column " + std::to_string(b.column), std::string(e.description()));
  }
}

}  // namespace kvcanary::io
