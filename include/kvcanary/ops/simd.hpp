#pragma once
// What the build itself targets. KVCANARY_AVX2 is 1 where the compiler may emit AVX2, FMA and
// F16C anywhere (a KVCANARY_NATIVE build on an AVX2 machine; every AVX2 CPU has FMA and F16C),
// else 0. The fixed-width kernels of ops/ and kv/ test this one macro, so the guard is spelled
// once. Wider kernels chosen at run time (ops/isa.hpp: ops/stored_matmul.hpp, the AVX-512 tiles
// of ops/matmul.hpp) are compiled for their own target whatever the build flags.

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define KVCANARY_AVX2 1
#include <immintrin.h>

namespace kvcanary::ops {
#include "kvcanary/ops/hsum8-inl.h"
}  // namespace kvcanary::ops
#else
#define KVCANARY_AVX2 0
#endif
