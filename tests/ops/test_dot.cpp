// The vector ops attention and the compressors use: the multi-row forms give, bit for bit, what
// the one-row forms give (so attention may read a head's keys and values in any grouping), and
// the dot product agrees with a double-precision sum.

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "../support/normal_floats.hpp"
#include "kvcanary/ops/dot.hpp"

using kvcanary::test::normal_floats;

TEST_CASE("dot agrees with a double-precision sum, for fp32, bf16 and fp16 rows") {
  for (std::size_t n : {1, 7, 8, 64, 131}) {
    const auto w = normal_floats(1, n, 3), x = normal_floats(1, n, 4);
    std::vector<kvcanary::bf16_t> wb(n);
    std::vector<kvcanary::f16_t> wh(n);
    double exact = 0.0, exact_b = 0.0, exact_h = 0.0, magnitude = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      wb[i] = kvcanary::to_bf16(w[i]);
      wh[i] = kvcanary::to_f16(w[i]);
      exact += static_cast<double>(w[i]) * x[i];
      exact_b += static_cast<double>(kvcanary::to_float(wb[i])) * x[i];
      exact_h += static_cast<double>(kvcanary::to_float(wh[i])) * x[i];
      magnitude += std::abs(static_cast<double>(w[i]) * x[i]);
    }
    const double tol = static_cast<double>(n) * 6e-8 * magnitude;  // n·u: fp32 accumulation of n terms
    CHECK(std::abs(kvcanary::ops::dot(w.data(), x.data(), n) - exact) <= tol);
    CHECK(std::abs(kvcanary::ops::dot(wb.data(), x.data(), n) - exact_b) <= tol);
    CHECK(std::abs(kvcanary::ops::dot(wh.data(), x.data(), n) - exact_h) <= tol);
  }
}

TEST_CASE("dot_rows equals dot row by row, bit for bit") {
  for (std::size_t n : {8, 64, 13}) {
    const auto rows = normal_floats(11, n, 5), x = normal_floats(1, n, 6);
    std::vector<float> out(11);
    kvcanary::ops::dot_rows(rows.data(), x.data(), n, 11, out.data());
    for (std::size_t j = 0; j < 11; ++j) {
      const float d = kvcanary::ops::dot(&rows[j * n], x.data(), n);
      REQUIRE(std::memcmp(&out[j], &d, sizeof d) == 0);
    }
  }
}

TEST_CASE("weighted_sum equals axpy row by row, bit for bit") {
  for (std::size_t n : {64, 128, 72, 5}) {
    const auto rows = normal_floats(9, n, 8);
    std::vector<float> p = normal_floats(1, 9, 9), want(n, 0.0f), got(n, -1.0f);
    p[3] = 0.0f;
    for (std::size_t j = 0; j < 9; ++j)
      if (p[j] != 0.0f) kvcanary::ops::axpy(want.data(), p[j], &rows[j * n], n);
    kvcanary::ops::weighted_sum(got.data(), p.data(), rows.data(), n, 9);
    REQUIRE(std::memcmp(got.data(), want.data(), n * sizeof(float)) == 0);
  }
}
