#pragma once
// SplitMix64 (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number generators"): one
// well-mixed 64-bit value from any 64-bit input. kvcanary draws every random choice from it
// (the random eviction control, a distractor's start, a seeded sample subset) instead of
// <random>'s engines and distributions, whose outputs the standard leaves to the library: a
// seed must pick the same rows and the same samples on every platform, or rows stop comparing.

#include <cstdint>

namespace kvcanary {

constexpr std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace kvcanary
