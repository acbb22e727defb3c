#pragma once
// Strict field access over simdjson's DOM for the HF JSON files (tokenizer.json,
// tokenizer_config.json): every absence or type mismatch becomes a kvcanary::Error carrying the
// file and the dotted field path, so a bad file is fixable from the message alone.

#include <simdjson.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/mapped_file.hpp"

namespace kvcanary::io {

namespace json_detail {

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}
  const std::string& file() const noexcept { return file_; }

  [[noreturn]] void bad(const std::string& field, const std::string& msg) const { fail(file_, field, msg); }

  // Member `key` of object `obj`, absent and JSON null both reported as nullopt.
  std::optional<simdjson::dom::element> opt(simdjson::dom::element obj, std::string_view key) const {
    simdjson::dom::element v;
    if (obj.at_key(key).get(v) != simdjson::SUCCESS || v.is_null()) return std::nullopt;
    return v;
  }
  simdjson::dom::element req(simdjson::dom::element obj, std::string_view key, const std::string& field) const {
    auto v = opt(obj, key);
    if (!v) bad(field, "missing");
    return *v;
  }
  std::string str(simdjson::dom::element v, const std::string& field) const {
    std::string_view s;
    if (v.get_string().get(s) != simdjson::SUCCESS) bad(field, "expected a string");
    return std::string(s);
  }
  std::string str(simdjson::dom::element obj, std::string_view key, const std::string& field) const {
    return str(req(obj, key, field), field);
  }
  bool boolean(simdjson::dom::element obj, std::string_view key, const std::string& field, bool dflt) const {
    auto v = opt(obj, key);
    if (!v) return dflt;
    bool b = false;
    if (v->get_bool().get(b) != simdjson::SUCCESS) bad(field, "expected true or false");
    return b;
  }
  std::int64_t integer(simdjson::dom::element v, const std::string& field) const {
    std::int64_t i = 0;
    if (v.get_int64().get(i) != simdjson::SUCCESS) {
      std::uint64_t u = 0;
      if (v.get_uint64().get(u) != simdjson::SUCCESS) bad(field, "expected an integer");
      bad(field, "integer out of range");
    }
    return i;
  }
  // Optional integer member; `required` turns absence into an error.
  std::int64_t integer(simdjson::dom::element obj, std::string_view key, const std::string& field, std::int64_t dflt,
                       bool required = false) const {
    auto v = opt(obj, key);
    if (!v) {
      if (required) bad(field, "required field missing");
      return dflt;
    }
    return integer(*v, field);
  }
  // Optional number member (JSON integers accepted).
  double number(simdjson::dom::element obj, std::string_view key, const std::string& field, double dflt) const {
    auto v = opt(obj, key);
    if (!v) return dflt;
    double d = 0;
    if (v->get_double().get(d) == simdjson::SUCCESS) return d;
    return static_cast<double>(integer(*v, field));
  }
  simdjson::dom::array array(simdjson::dom::element v, const std::string& field) const {
    simdjson::dom::array a;
    if (v.get_array().get(a) != simdjson::SUCCESS) bad(field, "expected an array");
    return a;
  }
  simdjson::dom::object object(simdjson::dom::element v, const std::string& field) const {
    simdjson::dom::object o;
    if (v.get_object().get(o) != simdjson::SUCCESS) bad(field, "expected an object");
    return o;
  }
  std::int32_t token_id(simdjson::dom::element v, const std::string& field) const {
    const std::int64_t i = integer(v, field);
    if (i < 0 || i > INT32_MAX) bad(field, "token id " + std::to_string(i) + " out of range");
    return static_cast<std::int32_t>(i);
  }

 private:
  std::string file_;
};

// Parses a whole JSON file; the parser must outlive the returned element.
inline simdjson::dom::element parse_file(const std::filesystem::path& path, simdjson::dom::parser& parser,
                                         simdjson::padded_string& storage) {
  MappedFile file(path);  // throws Error(path, "", "cannot open ...")
  storage = simdjson::padded_string(reinterpret_cast<const char*>(file.data()), file.size());
  simdjson::dom::element root;
  if (auto err = parser.parse(storage).get(root); err != simdjson::SUCCESS)
    fail(path.string(), "json", std::string("malformed JSON: ") + simdjson::error_message(err));
  if (!root.is_object()) fail(path.string(), "json", "malformed JSON: top level is not an object");
  return root;
}

}  // namespace json_detail

}  // namespace kvcanary::io
