// Model names (model/model_name.hpp): what scripts/fetch_model.sh NAME writes, usable wherever a
// model directory is expected, resolving to <models root>/NAME.
#include <doctest/doctest.h>

#include <kvcanary/io/config_table.hpp>
#include <kvcanary/model/model_name.hpp>
#include <kvcanary/run/config.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "../support/temp_dir.hpp"

namespace fs = std::filesystem;
using kvcanary::model::is_model_name;
using kvcanary::model::resolve_model_dir;

TEST_CASE("model names: the fetchable models resolve under the models root, anything else is a path") {
  for (const auto name : kvcanary::model::kModelNames) CHECK(is_model_name(name));
  CHECK_FALSE(is_model_name("qwen2.5-coder-7b-instruct"));
  CHECK_FALSE(is_model_name("models/qwen2.5-coder-0.5b-instruct"));
  const fs::path root = "/proj/models";
  CHECK(resolve_model_dir("qwen2.5-coder-0.5b-instruct", root) == root / "qwen2.5-coder-0.5b-instruct");
  CHECK(resolve_model_dir("qwen2.5-coder-1.5b-instruct", root) == root / "qwen2.5-coder-1.5b-instruct");
  CHECK(resolve_model_dir("smollm2-135m-instruct", root) == root / "smollm2-135m-instruct");
  CHECK(resolve_model_dir("some/dir", root) == fs::path("some/dir"));
  CHECK(resolve_model_dir("/abs/qwen2.5-coder-0.5b-instruct", root) == fs::path("/abs/qwen2.5-coder-0.5b-instruct"));
}

TEST_CASE("model names: a directory of that name in the current directory wins") {
  kvcanary::test::TempDir dir;
  const fs::path old = fs::current_path();
  fs::current_path(dir.path);
  fs::create_directories("qwen2.5-coder-0.5b-instruct");
  const fs::path got = resolve_model_dir("qwen2.5-coder-0.5b-instruct", "/proj/models");
  fs::current_path(old);
  CHECK(got == fs::path("qwen2.5-coder-0.5b-instruct"));
}

TEST_CASE("model names: a sweep config's [model] dir takes a name") {
  const char* env = std::getenv("KVCANARY_MODEL");
  if (env) {
    MESSAGE("skipped: $KVCANARY_MODEL is set and overrides the default");
    return;
  }
  const std::string text = R"([model]
dir = "qwen2.5-coder-0.5b-instruct"

[[compressors]]
name = "full"

[[tasks]]
name = "x"
)";
  const auto c = kvcanary::run::parse_sweep_config(kvcanary::io::parse_toml_string(text, "t.toml"), "t.toml",
                                                   "/proj/models/smollm2-135m-instruct");
  CHECK(c.model_dir == fs::path("/proj/models/qwen2.5-coder-0.5b-instruct"));
  CHECK(c.model_label == "qwen2.5-coder-0.5b-instruct");
  const auto d = kvcanary::run::parse_sweep_config(
      kvcanary::io::parse_toml_string("[[compressors]]\nname = \"full\"\n[[tasks]]\nname = \"x\"\n", "u.toml"),
      "u.toml", "/proj/models/smollm2-135m-instruct");
  CHECK(d.model_dir == fs::path("/proj/models/smollm2-135m-instruct"));
}
