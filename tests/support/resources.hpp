#pragma once
// Inputs that live outside git but inside the clone: the converted default model
// (models/, scripts/fetch_model.sh) and the benchmark data (data/, scripts/fetch_data.sh), both
// fetched by scripts/test.sh exactly as the main job fetches them. Nothing is read from outside
// the clone. A developer who ran the test binary without them gets a skip that is printed (and
// counted in the summary by doctest's MESSAGE); under CI their absence is a failure.

#include <cstdlib>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>

namespace kvcanary::test {

inline std::filesystem::path default_model_dir() {
  return std::filesystem::path(KVCANARY_SOURCE_DIR) / "models" / "smollm2-135m-instruct";
}

inline std::filesystem::path project_data(const std::string& rel = "") {
  const auto root = std::filesystem::path(KVCANARY_SOURCE_DIR) / "data";
  return rel.empty() ? root : root / rel;
}

inline bool available(const std::filesystem::path& p) {
  if (std::filesystem::exists(p)) return true;
  if (std::getenv("CI"))
    FAIL("CI run without " << p.string()
                           << " (scripts/test.sh fetches the model and the data: bash scripts/fetch_model.sh && bash "
                              "scripts/fetch_data.sh)");
  MESSAGE("skipped: " << p.string() << " absent");
  return false;
}

inline bool default_model_available() { return available(default_model_dir() / "model.safetensors"); }

}  // namespace kvcanary::test
