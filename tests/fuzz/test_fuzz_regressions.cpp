// Every input a fuzzer ever crashed a parser with, replayed through the same function the
// fuzz target calls (fuzz/targets.hpp): it must now end in success or a kvcanary::Error. One
// directory per target under tests/data/fuzz_regressions/<target>/; scripts/fuzz.sh says how
// to add one. Under the asan preset these also run with ASan+UBSan.

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../../fuzz/targets.hpp"

TEST_CASE("fuzz regressions: every committed reproducer parses or is a kvcanary::Error") {
  const auto root = std::filesystem::path(KVCANARY_TEST_DATA_DIR) / "fuzz_regressions";
  REQUIRE(std::filesystem::is_directory(root));
  std::size_t replayed = 0;
  for (const auto& dir : std::filesystem::directory_iterator(root)) {
    if (!dir.is_directory()) continue;
    const auto fn = kvcanary::fuzz::target_by_name(dir.path().filename().string());
    REQUIRE_MESSAGE(static_cast<bool>(fn), "no fuzz target named " << dir.path().filename());
    for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
      if (!f.is_regular_file()) continue;
      std::ifstream in(f.path(), std::ios::binary);
      const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      INFO("reproducer " << f.path().string());
      CHECK_NOTHROW(fn(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
      ++replayed;
    }
  }
  MESSAGE(replayed << " fuzz reproducers replayed");
}

TEST_CASE("fuzz regressions: the seed corpora go through the same functions") {
  const auto root = std::filesystem::path(KVCANARY_SOURCE_DIR) / "fuzz" / "corpus";
  std::size_t n = 0;
  for (const auto& dir : std::filesystem::directory_iterator(root)) {
    const auto fn = kvcanary::fuzz::target_by_name(dir.path().filename().string());
    REQUIRE_MESSAGE(static_cast<bool>(fn), "no fuzz target named " << dir.path().filename());
    for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
      std::ifstream in(f.path(), std::ios::binary);
      const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      CHECK_NOTHROW(fn(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
      ++n;
    }
  }
  CHECK(n > 0);
}
