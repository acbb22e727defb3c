// The stored-weight matmul (ops/stored_matmul.hpp) on synthetic GGUF blocks of every type:
// against a float64 product of io::dequantize's weights (summation order only), every ISA the
// CPU has bit for bit against the scalar reference, and every batch size bit for bit against
// one row at a time.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kvcanary/core/half.hpp"
#include "kvcanary/io/gguf_quants.hpp"
#include "kvcanary/ops/stored_matmul.hpp"

using namespace kvcanary;
using io::GgmlType;

namespace {

// Random blocks of `type` for rows × in elements: random bytes, with every f16 scale field
// (and every F32/F16 value) set to a finite value of a realistic size.
std::vector<std::uint8_t> random_rows(GgmlType type, std::size_t rows, std::size_t in, std::mt19937& rng) {
  const io::GgmlTypeTraits* tr = io::ggml_type_traits(static_cast<std::uint32_t>(type));
  const std::size_t nb = rows * in / tr->block_size;
  std::vector<std::uint8_t> b(nb * tr->type_size);
  for (auto& v : b) v = static_cast<std::uint8_t>(rng());
  std::uniform_real_distribution<float> scale(0.002f, 0.03f), val(-0.5f, 0.5f);
  const auto put_f16 = [&](std::size_t at, float f) {
    const std::uint16_t h = to_f16(f).bits;
    std::memcpy(&b[at], &h, 2);
  };
  std::vector<std::size_t> halves;  // offsets of the f16 fields in a block
  switch (type) {
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
    case GgmlType::Q8_0: halves = {0}; break;
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: halves = {0, 2}; break;
    case GgmlType::Q2_K: halves = {80, 82}; break;
    case GgmlType::Q3_K: halves = {108}; break;
    case GgmlType::Q6_K: halves = {208}; break;
    case GgmlType::F32:
      for (std::size_t i = 0; i < nb; ++i) {
        const float f = val(rng);
        std::memcpy(&b[4 * i], &f, 4);
      }
      return b;
    case GgmlType::F16:
      for (std::size_t i = 0; i < nb; ++i) put_f16(2 * i, val(rng));
      return b;
    default: FAIL("no generator for this type");
  }
  for (std::size_t k = 0; k < nb; ++k)
    for (std::size_t h : halves)
      put_f16(k * tr->type_size + h, h == 0 || halves.size() == 1 ? scale(rng) : -scale(rng) * 4);
  return b;
}

const GgmlType kTypes[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q8_0,
                           GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q5_1, GgmlType::Q2_K,
                           GgmlType::Q3_K, GgmlType::Q5_K, GgmlType::F32,  GgmlType::F16};

std::vector<ops::Isa> isas_present() {
  std::vector<ops::Isa> v{ops::Isa::Scalar};
  if (static_cast<int>(ops::cpu_isa()) >= 1) v.push_back(ops::Isa::Avx2);
  if (static_cast<int>(ops::cpu_isa()) >= 2) v.push_back(ops::Isa::Avx512);
  return v;
}

std::vector<float> run(const ops::StoredMatrix& W, const std::vector<float>& x, std::size_t rows, const float* bias,
                       ops::ThreadPool& pool, ops::Isa isa) {
  ops::ScopedIsaCap cap(isa);
  REQUIRE(ops::active_isa() == isa);
  std::vector<float> y(rows * W.out(), -7.0f);
  ops::matmul(x.data(), rows, W, bias, y.data(), pool);
  return y;
}

}  // namespace

TEST_CASE("stored matmul: every ggml type, every ISA, every batch size") {
  std::mt19937 rng(1234);
  ops::ThreadPool pool(2);
  const std::size_t in = 512, rows_a = 37, rows_b = 24, R = 33;
  for (const GgmlType type : kTypes) {
    CAPTURE(io::ggml_type_name(type));
    // Two stacked tensors (as q|k|v are), the second read through a row permutation.
    const auto a = random_rows(type, rows_a, in, rng), b = random_rows(type, rows_b, in, rng);
    std::vector<std::uint32_t> perm(rows_b);
    for (std::size_t i = 0; i < rows_b; ++i) perm[i] = static_cast<std::uint32_t>((i * 7 + 3) % rows_b);
    ops::StoredMatrix W(in);
    W.append(type, a.data(), rows_a);
    W.append(type, b.data(), rows_b, perm);
    REQUIRE(W.out() == rows_a + rows_b);

    // The weights as io::dequantize gives them, in output order.
    std::vector<float> w(W.out() * in);
    const std::size_t rb = a.size() / rows_a;
    for (std::size_t o = 0; o < W.out(); ++o) {
      const std::uint8_t* src = o < rows_a ? &a[o * rb] : &b[perm[o - rows_a] * rb];
      io::dequantize(type, {src, rb}, {&w[o * in], in});
      std::vector<float> row(in);
      W.row(o, row.data());
      CHECK(std::memcmp(row.data(), &w[o * in], in * 4) == 0);
    }
    std::vector<float> x(R * in), bias(W.out());
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (auto& v : x) v = u(rng);
    for (auto& v : bias) v = u(rng);

    const auto ref = run(W, x, R, bias.data(), pool, ops::Isa::Scalar);
    double worst = 0;
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t o = 0; o < W.out(); ++o) {
        double s = bias[o], mag = std::fabs(bias[o]);
        for (std::size_t k = 0; k < in; ++k) {
          s += static_cast<double>(x[r * in + k]) * w[o * in + k];
          mag += std::fabs(static_cast<double>(x[r * in + k]) * w[o * in + k]);
        }
        worst = std::max(worst, std::fabs(ref[r * W.out() + o] - s) / (mag + 1e-30));
      }
    CHECK(worst < 1e-6);  // fp32 accumulation of 512 terms, relative to Σ|terms|

    for (const ops::Isa isa : isas_present()) {
      CAPTURE(ops::isa_name(isa));
      CHECK(run(W, x, R, bias.data(), pool, isa) == ref);
      CHECK(run(W, x, R, nullptr, pool, isa) == run(W, x, R, nullptr, pool, ops::Isa::Scalar));
      // Batch invariance: every prefix size of the batch gives its rows' results bit for bit.
      // 1-8 rows take the fused kernel (weights dequantized in registers), 9 and more the buffered one.
      for (const std::size_t m : {1, 2, 3, 4, 5, 7, 8, 9, 16}) {
        CAPTURE(m);
        std::vector<float> xs(x.begin() + static_cast<std::ptrdiff_t>((R - m) * in), x.end());
        const auto y = run(W, xs, m, bias.data(), pool, isa);
        CHECK(std::equal(y.begin(), y.end(), ref.end() - static_cast<std::ptrdiff_t>(m * W.out())));
      }
    }
  }
}

TEST_CASE("stored matmul: each ISA's dequantizer is bit-identical to io::dequantize") {
  std::mt19937 rng(99);
  for (const GgmlType type : kTypes) {
    CAPTURE(io::ggml_type_name(type));
    const std::size_t n = 1024;
    const auto blocks = random_rows(type, 1, n, rng);
    std::vector<float> want(n), got(n);
    io::dequantize(type, blocks, want);
    ops::stored_scalar::dequant_row(type, blocks.data(), got.data(), n);
    CHECK(std::memcmp(got.data(), want.data(), n * 4) == 0);
#if KVCANARY_STORED_X86
    if (static_cast<int>(ops::cpu_isa()) >= 1) {
      ops::stored_avx2::dequant_row(type, blocks.data(), got.data(), n);
      CHECK(std::memcmp(got.data(), want.data(), n * 4) == 0);
    }
    if (static_cast<int>(ops::cpu_isa()) >= 2) {
      ops::stored_avx512::dequant_row(type, blocks.data(), got.data(), n);
      CHECK(std::memcmp(got.data(), want.data(), n * 4) == 0);
    }
#endif
  }
}

TEST_CASE("stored matmul: KVCANARY_ISA names are checked") {
  CHECK(ops::parse_isa("avx2", "env") == ops::Isa::Avx2);
  CHECK_THROWS_WITH_AS(ops::parse_isa("sse9", "environment variable KVCANARY_ISA"),
                       "environment variable KVCANARY_ISA: 'sse9' is not one of scalar, avx2, avx512", Error);
}
