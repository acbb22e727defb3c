// The per-row operations of a Llama block against double-precision references, over row
// lengths that exercise the eight-lane body and every tail length; softmax's masked (-inf)
// entries and SwiGLU's saturated gates; and a row's result independent of its neighbours.

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kvcanary/ops/elementwise.hpp"

namespace ops = kvcanary::ops;

namespace {

std::vector<float> normal(std::size_t n, float sd, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

constexpr std::size_t kLengths[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 64, 100, 576, 1536};

}  // namespace

TEST_CASE("rmsnorm agrees with a double-precision reference") {
  for (std::size_t n : kLengths) {
    const auto x = normal(n, 3.0f, static_cast<unsigned>(n)), w = normal(n, 1.0f, static_cast<unsigned>(n + 1));
    const float eps = 1e-5f;
    std::vector<float> y(n);
    ops::rmsnorm(y.data(), x.data(), w.data(), n, eps);
    double ss = 0;
    for (float v : x) ss += static_cast<double>(v) * v;
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
    for (std::size_t i = 0; i < n; ++i) {
      const double want = static_cast<double>(w[i]) * x[i] * inv;
      REQUIRE_MESSAGE(std::fabs(y[i] - want) <= 1e-6 * std::fabs(want) + 1e-30, "n=" << n << " i=" << i);
    }
    std::vector<float> inplace = x;  // y may alias x
    ops::rmsnorm(inplace.data(), inplace.data(), w.data(), n, eps);
    CHECK(std::memcmp(inplace.data(), y.data(), n * sizeof(float)) == 0);
  }
}

TEST_CASE("softmax sums to 1 and agrees with a double-precision reference") {
  for (std::size_t n : kLengths) {
    for (bool masked : {false, true}) {
      auto x = normal(n, 4.0f, static_cast<unsigned>(3 * n + masked));
      // A sliding window masks keys with -inf; keep at least one visible.
      if (masked)
        for (std::size_t i = 0; i + 1 < n; i += 3) x[i] = -INFINITY;
      std::vector<double> want(n);
      double m = -INFINITY, z = 0;
      for (float v : x) m = std::max(m, static_cast<double>(v));
      for (std::size_t i = 0; i < n; ++i) z += want[i] = std::exp(static_cast<double>(x[i]) - m);
      for (auto& p : want) p /= z;
      ops::softmax(x.data(), n);
      double sum = 0;
      for (std::size_t i = 0; i < n; ++i) {
        sum += x[i];
        if (want[i] == 0.0) REQUIRE(x[i] == 0.0f);
        REQUIRE_MESSAGE(std::fabs(x[i] - want[i]) <= 1e-6 * want[i] + 1e-9, "n=" << n << " i=" << i);
      }
      CHECK(sum == doctest::Approx(1.0).epsilon(1e-6));
    }
  }
  float one = 3.5f;
  ops::softmax(&one, 1);
  CHECK(one == 1.0f);
  std::vector<float> huge = {1e30f, -1e30f, 1e30f, 0.0f};  // max subtraction keeps exp finite
  ops::softmax(huge.data(), huge.size());
  CHECK(huge == std::vector<float>{0.5f, 0.0f, 0.5f, 0.0f});
}

TEST_CASE("swiglu agrees with a double-precision reference, saturated gates included") {
  for (std::size_t n : kLengths) {
    auto g = normal(n, 4.0f, static_cast<unsigned>(5 * n)), u = normal(n, 1.0f, static_cast<unsigned>(5 * n + 1));
    if (n > 2) g[0] = -200.0f, g[1] = 200.0f, g[2] = -88.8f;  // e^−g overflows / vanishes
    std::vector<float> out(n);
    ops::swiglu(out.data(), g.data(), u.data(), n);
    for (std::size_t i = 0; i < n; ++i) {
      const double gd = g[i], want = gd / (1.0 + std::exp(-gd)) * u[i];
      REQUIRE_MESSAGE(std::fabs(out[i] - want) <= 1e-6 * std::fabs(want) + 1e-30,
                      "n=" << n << " i=" << i << " g=" << g[i]);
    }
    ops::swiglu(g.data(), u.data(), n);  // in place over the gate
    CHECK(std::memcmp(g.data(), out.data(), n * sizeof(float)) == 0);
  }
}

TEST_CASE("a row's result does not depend on the rows stored beside it") {
  // The forward pass calls these per row of a batch; the same row at another offset, or
  // followed by different data, must give the same bits.
  const std::size_t n = 37;
  const auto row = normal(n, 2.0f, 1), w = normal(n, 1.0f, 2), up = normal(n, 1.0f, 3);
  std::vector<float> a(3 * n + 5), b(n);
  auto noise = normal(a.size(), 9.0f, 4);
  std::copy(noise.begin(), noise.end(), a.begin());
  std::copy(row.begin(), row.end(), a.begin() + 5 + n);
  float* in_batch = a.data() + 5 + n;

  std::vector<float> y1(n), y2(n);
  ops::rmsnorm(y1.data(), row.data(), w.data(), n, 1e-6f);
  ops::rmsnorm(y2.data(), in_batch, w.data(), n, 1e-6f);
  CHECK(std::memcmp(y1.data(), y2.data(), n * sizeof(float)) == 0);
  ops::swiglu(y1.data(), row.data(), up.data(), n);
  ops::swiglu(y2.data(), in_batch, up.data(), n);
  CHECK(std::memcmp(y1.data(), y2.data(), n * sizeof(float)) == 0);
  b = row;
  ops::softmax(b.data(), n);
  ops::softmax(in_batch, n);
  CHECK(std::memcmp(b.data(), in_batch, n * sizeof(float)) == 0);
}
