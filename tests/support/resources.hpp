#pragma once
// Inputs that live outside git: the converted default model (fetched by scripts/test.sh) and
// ../shared/data (beside the clone in CI). A developer may not have them yet, so a test
// skips with a message; under CI their absence is a failure, never a silent skip.

#include <cstdlib>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>

namespace kvcanary::test {

inline std::filesystem::path default_model_dir() {
  return std::filesystem::path(KVCANARY_SOURCE_DIR) / "models" / "smollm2-135m-instruct";
}

inline std::filesystem::path shared_data(const std::string& rel = "") {
  const auto root = std::filesystem::path(KVCANARY_SOURCE_DIR).parent_path() / "shared" / "data";
  return rel.empty() ? root : root / rel;
}

inline bool available(const std::filesystem::path& p) {
  if (std::filesystem::exists(p)) return true;
  if (std::getenv("CI")) FAIL("CI run without " << p.string() << " (scripts/test.sh fetches the model; ../shared/data sits beside the clone)");
  MESSAGE("skipped: " << p.string() << " absent");
  return false;
}

inline bool default_model_available() { return available(default_model_dir() / "model.safetensors"); }

}  // namespace kvcanary::test
