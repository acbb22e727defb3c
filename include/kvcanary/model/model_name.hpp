#pragma once
// Model names: the models scripts/fetch_model.sh NAME fetches and converts into models/NAME/.
// Wherever a model directory is given (`kvcanary ... --model`, $KVCANARY_MODEL, a sweep
// config's `[model] dir`), one of these names may stand for it. A name resolves to
// `models_root / NAME`, where models_root is the project's models/ directory (the CLI passes
// the parent of its built-in default model directory, i.e. <project root>/models, so the
// result does not depend on the current directory). Anything else is a path, used as given;
// so is a name when a directory of that name exists in the current directory (a path wins).

#include <array>
#include <filesystem>
#include <string>
#include <string_view>

namespace kvcanary::model {

inline constexpr std::array<std::string_view, 3> kModelNames = {"smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct",
                                                                "qwen2.5-coder-1.5b-instruct"};

inline bool is_model_name(std::string_view s) noexcept {
  for (std::string_view n : kModelNames)
    if (s == n) return true;
  return false;
}

inline std::filesystem::path resolve_model_dir(const std::string& spec, const std::filesystem::path& models_root) {
  std::error_code ec;
  if (is_model_name(spec) && !std::filesystem::is_directory(spec, ec)) return models_root / spec;
  return spec;
}

}  // namespace kvcanary::model
