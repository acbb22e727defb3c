#pragma once
// Which SIMD instruction set the run-time-dispatched kernels (ops/stored_matmul.hpp) use.
// The CPU is asked once (cpuid, via __builtin_cpu_supports and <cpuid.h>); KVCANARY_ISA=scalar|avx2|avx512
// caps the choice, so one binary can run, and be tested on, every path the CPU has. A cap
// above what the CPU has is lowered to what it has (never an illegal instruction); an
// unknown value is a kvcanary::Error naming the variable.
//
// The levels, and what each requires of the CPU:
//   scalar  portable C++ (the reference every other path is tested against)
//   avx2    AVX2 + FMA + F16C (Haswell, Zen 1 and later)
//   avx512  AVX-512 F/BW/VL/DQ on top of avx2 (Skylake-SP, Ice Lake, Sapphire Rapids, Zen 4/5)

#include <atomic>
#include <cstdlib>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif
#include <string>

#include "kvcanary/core/error.hpp"

namespace kvcanary::ops {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

inline const char* isa_name(Isa i) {
  switch (i) {
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    default: return "scalar";
  }
}

inline Isa parse_isa(const std::string& s, const std::string& where) {
  if (s == "scalar") return Isa::Scalar;
  if (s == "avx2") return Isa::Avx2;
  if (s == "avx512") return Isa::Avx512;
  fail(where, "", "'" + s + "' is not one of scalar, avx2, avx512");
}

// The best level this CPU runs.
inline Isa cpu_isa() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const Isa best = [] {
    __builtin_cpu_init();
    // F16C is read from cpuid leaf 1 directly: clang 14's __builtin_cpu_supports has no "f16c".
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    return avx512 ? Isa::Avx512 : avx2 ? Isa::Avx2 : Isa::Scalar;
  }();
  return best;
#else
  return Isa::Scalar;
#endif
}

namespace isa_detail {
inline std::atomic<int>& override_level() {
  static std::atomic<int> v{-1};  // -1: none (use the environment)
  return v;
}
}  // namespace isa_detail

// The level the kernels use now: the CPU's best, capped by KVCANARY_ISA (read once) or by a
// ScopedIsaCap (tests).
inline Isa active_isa() {
  static const Isa from_env = [] {
    const char* e = std::getenv("KVCANARY_ISA");
    const Isa cap = e && *e ? parse_isa(e, "environment variable KVCANARY_ISA") : Isa::Avx512;
    return static_cast<int>(cap) < static_cast<int>(cpu_isa()) ? cap : cpu_isa();
  }();
  const int o = isa_detail::override_level().load(std::memory_order_relaxed);
  if (o < 0) return from_env;
  return o < static_cast<int>(cpu_isa()) ? static_cast<Isa>(o) : cpu_isa();
}

// Caps the level for this object's lifetime (tests run every path present through it).
class ScopedIsaCap {
 public:
  explicit ScopedIsaCap(Isa cap) : previous_(isa_detail::override_level().exchange(static_cast<int>(cap))) {}
  ~ScopedIsaCap() { isa_detail::override_level().store(previous_); }
  ScopedIsaCap(const ScopedIsaCap&) = delete;
  ScopedIsaCap& operator=(const ScopedIsaCap&) = delete;

 private:
  int previous_;
};

}  // namespace kvcanary::ops
