#pragma once
// Deterministic token ids for engine tests on the tiny models (vocab ≥ 253): a quadratic walk
// over [3, 253), different per `salt`, so that prompts of one test differ from each other and
// stay clear of the special ids 0–2. `stride`/`salt_stride` pick another walk (a test that
// needs sequences unlike another test's).

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvcanary::test {

inline std::vector<std::int32_t> synthetic_tokens(std::size_t n, std::size_t salt, std::size_t stride = 37,
                                                  std::size_t salt_stride = 101) {
  std::vector<std::int32_t> ids(n);
  for (std::size_t i = 0; i < n; ++i)
    ids[i] = static_cast<std::int32_t>(3 + (i * stride + i * i + salt * salt_stride) % 250);
  return ids;
}

}  // namespace kvcanary::test
