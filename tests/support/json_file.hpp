#pragma once
// Test helper: load a golden JSON file once per call with simdjson's DOM.
#include <simdjson.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>

namespace kvcanary::test {

struct JsonFile {
  simdjson::dom::parser parser;
  simdjson::padded_string text;
  simdjson::dom::element root;

  explicit JsonFile(const std::filesystem::path& path) {
    REQUIRE_MESSAGE(!simdjson::padded_string::load(path.string()).get(text), "cannot read " << path);
    REQUIRE_MESSAGE(!parser.parse(text).get(root), "malformed JSON " << path);
  }
};

inline std::vector<std::int32_t> int_list(simdjson::dom::element e) {
  std::vector<std::int32_t> out;
  for (auto v : e.get_array()) out.push_back(static_cast<std::int32_t>(v.get_int64().value()));
  return out;
}

inline std::vector<float> float_list(simdjson::dom::element e) {
  std::vector<float> out;
  for (auto v : e.get_array()) out.push_back(static_cast<float>(v.get_double().value()));
  return out;
}

inline std::filesystem::path test_data(const std::string& rel) {
  return std::filesystem::path(KVCANARY_TEST_DATA_DIR) / rel;
}

}  // namespace kvcanary::test
