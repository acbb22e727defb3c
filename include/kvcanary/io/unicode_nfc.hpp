#pragma once
// Unicode NFC (UAX #15): full canonical decomposition, canonical ordering, canonical
// composition. Qwen2-family tokenizer.json files declare `"normalizer": {"type": "NFC"}`, so
// text must be composed before pre-tokenization to reproduce their ids.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/io/unicode_nfc_data.hpp"
#include "kvcanary/io/utf8.hpp"

namespace kvcanary::io {

namespace nfc_detail {

// Hangul syllables are composed algorithmically (Unicode ch. 3.12), not listed in the tables.
inline constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
inline constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                          kSCount = kLCount * kNCount;

inline std::uint8_t ccc(char32_t cp) {
  if (cp < 0x300) return 0;
  const auto* b = std::begin(nfc_data::kCcc);
  const auto* e = std::end(nfc_data::kCcc);
  const auto* it = std::lower_bound(b, e, cp, [](const nfc_data::Ccc& x, char32_t v) { return x.cp < v; });
  return (it != e && it->cp == cp) ? it->ccc : 0;
}

inline void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xC0) {
    const auto* b = std::begin(nfc_data::kDecomp);
    const auto* e = std::end(nfc_data::kDecomp);
    const auto* it = std::lower_bound(b, e, cp, [](const nfc_data::Decomp& x, char32_t v) { return x.cp < v; });
    if (it != e && it->cp == cp) {
      decompose(it->first, out);
      if (it->second) decompose(it->second, out);
      return;
    }
  }
  out.push_back(cp);
}

// The primary composite of (a, b), or 0.
inline char32_t compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto* e = std::end(nfc_data::kComp);
  const auto* it = std::lower_bound(std::begin(nfc_data::kComp), e, std::pair<char32_t, char32_t>(a, b),
                                    [](const nfc_data::Comp& x, std::pair<char32_t, char32_t> v) {
                                      return x.first != v.first ? x.first < v.first : x.second < v.second;
                                    });
  return (it != e && it->first == a && it->second == b) ? it->composite : 0;
}

}  // namespace nfc_detail

// NFC of valid UTF-8 text. Below U+0300 every character is already NFC and composes with
// nothing before it, so such text is returned unchanged without decomposing.
inline std::string nfc(std::string_view s) {
  using namespace nfc_detail;
  bool trivial = true;
  for (std::size_t i = 0; i < s.size() && trivial;) {
    const char32_t cp = utf8::next(s, i);
    trivial = cp < 0x300;
  }
  if (trivial) return std::string(s);

  std::vector<char32_t> d;
  d.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) decompose(utf8::next(s, i), d);

  // Canonical ordering: stable-sort every run of non-starters by combining class.
  for (std::size_t i = 0; i < d.size();) {
    if (ccc(d[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < d.size() && ccc(d[j]) != 0) ++j;
    std::stable_sort(d.begin() + i, d.begin() + j, [](char32_t x, char32_t y) { return ccc(x) < ccc(y); });
    i = j;
  }

  // Canonical composition: a character joins the last starter unless blocked by a character
  // in between whose class is 0 or not lower than its own.
  std::vector<char32_t> r;
  r.reserve(d.size());
  std::ptrdiff_t starter = -1;
  std::uint8_t last_ccc = 0;
  for (char32_t c : d) {
    const std::uint8_t cc = ccc(c);
    if (starter >= 0) {
      const bool adjacent = r.size() == static_cast<std::size_t>(starter) + 1;
      if (adjacent || (last_ccc != 0 && last_ccc < cc)) {
        if (char32_t comp = compose(r[starter], c)) {
          r[starter] = comp;
          continue;
        }
      }
    }
    if (cc == 0) starter = static_cast<std::ptrdiff_t>(r.size());
    r.push_back(c);
    last_ccc = cc;
  }
  std::string out;
  out.reserve(s.size());
  for (char32_t c : r) utf8::append(out, c);
  return out;
}

}  // namespace kvcanary::io
