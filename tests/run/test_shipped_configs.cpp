// Every sweep config the repository ships (configs/, configs/probes/, examples/configs/) parses,
// and every (compressor, budget) it names builds under eviction v2's semantics: no prompt-only
// policy asked for decode mode, no scope context with decode mode (what Sweep::build_policies
// refuses). Needs no model or data: the tiny model's config stands in.

#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "../support/json_file.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/kv/registry.hpp"
#include "kvcanary/run/config.hpp"

using namespace kvcanary;

TEST_CASE("shipped configs: every compressor of every config builds with its mode, capacity and scope") {
  const auto config = io::load_hf_config(test::test_data("tiny/llama_gqa_untied"));
  const std::filesystem::path root(KVCANARY_SOURCE_DIR);
  std::vector<std::filesystem::path> files;
  for (const char* dir : {"configs", "configs/probes", "examples/configs"})
    for (const auto& e : std::filesystem::directory_iterator(root / dir))
      if (e.path().extension() == ".toml") files.push_back(e.path());
  CHECK(files.size() >= 11);
  std::size_t built = 0;
  for (const auto& f : files) {
    CAPTURE(f.string());
    run::SweepConfig c;
    REQUIRE_NOTHROW(c = run::load_sweep_config(f, "models/none"));
    for (const auto& s : c.compressors) {
      CAPTURE(s.label);
      for (double b : s.budgets) {
        kv::Mode mode = kv::Mode::Prompt;
        REQUIRE_NOTHROW(kv::with_policy(s.name, kv::PolicyOptions(b, s.mode, s.params, f.string(), s.capacity), config,
                                        [&](const auto& p) { mode = kv::mode_of(p); }));
        const kv::Scope scope = s.scope.value_or(mode == kv::Mode::Prompt ? kv::Scope::Context : kv::Scope::Prompt);
        CHECK_FALSE((scope == kv::Scope::Context && mode == kv::Mode::Decode));
        ++built;
      }
    }
  }
  CHECK(built > 50);
}
