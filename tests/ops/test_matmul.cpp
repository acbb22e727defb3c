// The packed matmul: agrees with a double-precision reference, and a row's output is
// bit-identical whatever batch it is computed in (the batched-decode invariant).

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "../support/normal_floats.hpp"
#include "kvcanary/ops/matmul.hpp"

using kvcanary::bf16_t;
using kvcanary::ops::PackedMatrix;
using kvcanary::ops::ThreadPool;
using kvcanary::test::normal_floats;

namespace {

template <class WT>
struct Case {
  std::size_t out, in;
  std::vector<WT> w;  // [out, in] as a model file stores it
  std::vector<float> bias;
  PackedMatrix<WT> packed;
};

template <class WT>
Case<WT> make_case(std::size_t out, std::size_t in, bool with_bias, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  Case<WT> c{out, in, std::vector<WT>(out * in), {}, PackedMatrix<WT>(out, in)};
  for (auto& v : c.w) {
    if constexpr (std::is_same_v<WT, bf16_t>) {
      v = kvcanary::to_bf16(d(rng));
    } else if constexpr (std::is_same_v<WT, kvcanary::f16_t>) {
      v = kvcanary::to_f16(d(rng));
    } else {
      v = d(rng);
    }
  }
  if (with_bias) {
    c.bias.resize(out);
    for (auto& b : c.bias) b = d(rng);
  }
  // Two calls, as the loader stacks q/k/v: the split must not matter.
  const std::size_t half = out / 2;
  c.packed.set_rows(0, c.w.data(), half);
  c.packed.set_rows(half, c.w.data() + half * in, out - half);
  return c;
}

template <class WT>
void check_reference(std::size_t rows, std::size_t out, std::size_t in, bool with_bias, ThreadPool& pool) {
  const auto c = make_case<WT>(out, in, with_bias, static_cast<unsigned>(out * 31 + in));
  const auto x = normal_floats(rows, in, 7);
  std::vector<float> y(rows * out, -1.0f);
  kvcanary::ops::matmul(x.data(), rows, c.packed, with_bias ? c.bias.data() : nullptr, y.data(), pool);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t o = 0; o < out; ++o) {
      double ref = with_bias ? c.bias[o] : 0.0, mag = std::fabs(ref);
      for (std::size_t k = 0; k < in; ++k) {
        const double t = static_cast<double>(kvcanary::ops::load_scalar(&c.w[o * in + k])) * x[r * in + k];
        ref += t;
        mag += std::fabs(t);
      }
      const double err = std::fabs(static_cast<double>(y[r * out + o]) - ref);
      REQUIRE_MESSAGE(err <= 1e-5 * mag + 1e-6, "row " << r << " out " << o << ": " << y[r * out + o] << " vs " << ref);
    }
}

template <class WT>
void check_batch_invariance(std::size_t out, std::size_t in, ThreadPool& pool) {
  const auto c = make_case<WT>(out, in, true, static_cast<unsigned>(out + in));
  const std::size_t max_rows = 65;
  const auto x = normal_floats(max_rows, in, 11);
  std::vector<float> solo(max_rows * out);
  for (std::size_t r = 0; r < max_rows; ++r)
    kvcanary::ops::matmul(&x[r * in], 1, c.packed, c.bias.data(), &solo[r * out], pool);
  for (std::size_t rows : {1, 2, 3, 4, 5, 6, 7, 8, 13, 64, 65}) {
    // Batches starting at several offsets, so each row lands in different tile positions.
    for (std::size_t start : {std::size_t{0}, std::size_t{1}, max_rows - rows}) {
      if (start + rows > max_rows) continue;
      std::vector<float> y(rows * out);
      kvcanary::ops::matmul(&x[start * in], rows, c.packed, c.bias.data(), y.data(), pool);
      REQUIRE_MESSAGE(std::memcmp(y.data(), &solo[start * out], y.size() * sizeof(float)) == 0,
                      "rows=" << rows << " start=" << start << " out=" << out << " in=" << in);
    }
  }
}

}  // namespace

TEST_CASE_TEMPLATE("matmul agrees with a double-precision reference", WT, float, bf16_t, kvcanary::f16_t) {
  ThreadPool pool(2);
  for (std::size_t rows : {1, 2, 5, 7, 13}) {
    check_reference<WT>(rows, 16, 8, false, pool);
    check_reference<WT>(rows, 37, 29, true, pool);
    check_reference<WT>(rows, 200, 131, true, pool);
    check_reference<WT>(rows, 1, 3, false, pool);
  }
  check_reference<WT>(64, 96, 576, false, pool);
}

TEST_CASE_TEMPLATE("matmul: a row's output does not depend on its batch", WT, float, bf16_t, kvcanary::f16_t) {
  for (std::size_t threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    check_batch_invariance<WT>(37, 29, pool);
    check_batch_invariance<WT>(100, 64, pool);
    check_batch_invariance<WT>(241, 131, pool);
    check_batch_invariance<WT>(16, 1, pool);
  }
}

TEST_CASE_TEMPLATE("packed matrix reads back its rows", WT, float, bf16_t, kvcanary::f16_t) {
  const auto c = make_case<WT>(45, 19, false, 3);
  std::vector<float> row(19);
  for (std::size_t o = 0; o < 45; ++o) {
    c.packed.row(o, row.data());
    for (std::size_t k = 0; k < 19; ++k) {
      REQUIRE(row[k] == kvcanary::ops::load_scalar(&c.w[o * 19 + k]));
      REQUIRE(c.packed.at(o, k) == row[k]);
    }
  }
}

// The AVX-512 tiles (where the CPU has them) against the AVX2 / portable ones: every output is
// the same FMA chain over k, so the bits are equal, for every batch size, tile remainder and
// thread split; and the reference and batch-invariance checks hold on every path.
TEST_CASE_TEMPLATE("matmul: every ISA path gives the same bits", WT, float, bf16_t, kvcanary::f16_t) {
  using kvcanary::ops::Isa;
  using kvcanary::ops::ScopedIsaCap;
  if (kvcanary::ops::cpu_isa() != Isa::Avx512) {
    MESSAGE("skipped: this CPU has no AVX-512 (" << kvcanary::ops::isa_name(kvcanary::ops::cpu_isa())
                                                 << "): one path only");
    return;
  }
  for (std::size_t threads : {1, 2}) {
    ThreadPool pool(threads);
    for (const auto& [out, in] :
         {std::pair<std::size_t, std::size_t>{37, 29}, {241, 131}, {896, 64}, {16, 1}, {1, 3}}) {
      const auto c = make_case<WT>(out, in, true, static_cast<unsigned>(3 * out + in));
      for (std::size_t rows : {1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 32, 49, 65}) {
        const auto x = normal_floats(rows, in, static_cast<unsigned>(rows));
        std::vector<float> narrow(rows * out), wide(rows * out);
        {
          ScopedIsaCap cap(Isa::Avx2);
          kvcanary::ops::matmul(x.data(), rows, c.packed, c.bias.data(), narrow.data(), pool);
        }
        {
          ScopedIsaCap cap(Isa::Avx512);
          REQUIRE(kvcanary::ops::active_isa() == Isa::Avx512);
          kvcanary::ops::matmul(x.data(), rows, c.packed, c.bias.data(), wide.data(), pool);
        }
        REQUIRE_MESSAGE(std::memcmp(narrow.data(), wide.data(), narrow.size() * sizeof(float)) == 0,
                        "rows=" << rows << " out=" << out << " in=" << in << " threads=" << threads);
      }
    }
  }
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    ScopedIsaCap cap(isa);
    ThreadPool pool(2);
    check_reference<WT>(7, 200, 131, true, pool);
    check_batch_invariance<WT>(241, 131, pool);
  }
}
