#pragma once
// Deterministic standard-normal floats for kernel tests: a rows × cols matrix, row-major, drawn
// from mt19937(seed) — the same values on every platform's libstdc++ run.

#include <cstddef>
#include <random>
#include <vector>

namespace kvcanary::test {

inline std::vector<float> normal_floats(std::size_t rows, std::size_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(rows * cols);
  for (auto& v : x) v = d(rng);
  return x;
}

}  // namespace kvcanary::test
