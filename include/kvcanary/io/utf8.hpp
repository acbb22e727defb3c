#pragma once
// UTF-8 primitives shared by the tokenizer pieces. Text handed to the tokenizer must be valid
// UTF-8 (HF takes a Rust `str`, which cannot hold anything else); decoded bytes need not be, and
// are repaired exactly as Rust's `String::from_utf8_lossy` does, because HF decode is built on it.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvcanary::io::utf8 {

inline constexpr std::size_t npos = static_cast<std::size_t>(-1);

// Length of the valid prefix of the sequence starting at s[i] (0 if s[i] cannot start one),
// following the Unicode table of well-formed byte sequences (no overlongs, no surrogates,
// nothing above U+10FFFF). `complete` says whether the whole sequence was present.
inline std::size_t valid_prefix(std::string_view s, std::size_t i, bool& complete) {
  const auto b = [&](std::size_t k) { return static_cast<std::uint8_t>(s[k]); };
  const std::uint8_t c = b(i);
  complete = true;
  if (c < 0x80) return 1;
  std::size_t width = 0;
  std::uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    width = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    width = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    width = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    complete = false;
    return 0;
  }
  std::size_t k = 1;
  for (; k < width; ++k) {
    if (i + k >= s.size()) {
      complete = false;
      return k;
    }
    const std::uint8_t x = b(i + k);
    const bool ok = (k == 1) ? (x >= lo && x <= hi) : (x >= 0x80 && x <= 0xBF);
    if (!ok) {
      complete = false;
      return k;
    }
  }
  return width;
}

// Byte offset of the first ill-formed sequence, or npos when `s` is valid UTF-8.
inline std::size_t first_invalid(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    if (static_cast<std::uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    bool complete = false;
    const std::size_t n = valid_prefix(s, i, complete);
    if (!complete) return i;
    i += n;
  }
  return npos;
}

// Decodes one code point at s[i] of a string known to be valid; advances i.
inline char32_t next(std::string_view s, std::size_t& i) {
  const auto b = [&](std::size_t k) { return static_cast<char32_t>(static_cast<std::uint8_t>(s[k])); };
  const char32_t c = b(i);
  if (c < 0x80) {
    i += 1;
    return c;
  }
  if (c < 0xE0) {
    const char32_t r = ((c & 0x1F) << 6) | (b(i + 1) & 0x3F);
    i += 2;
    return r;
  }
  if (c < 0xF0) {
    const char32_t r = ((c & 0x0F) << 12) | ((b(i + 1) & 0x3F) << 6) | (b(i + 2) & 0x3F);
    i += 3;
    return r;
  }
  const char32_t r = ((c & 0x07) << 18) | ((b(i + 1) & 0x3F) << 12) | ((b(i + 2) & 0x3F) << 6) | (b(i + 3) & 0x3F);
  i += 4;
  return r;
}

// Byte length of the code point whose lead byte is `lead` (valid input assumed).
inline std::size_t width(char lead) {
  const auto c = static_cast<std::uint8_t>(lead);
  return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

inline void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Rust `String::from_utf8_lossy`: each maximal ill-formed subpart becomes one U+FFFD, and so
// does a truncated sequence at the end. Token-by-token decoding of a split emoji therefore
// prints the same number of replacement characters as HF does.
inline std::string lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    if (static_cast<std::uint8_t>(s[i]) < 0x80) {
      out += s[i++];
      continue;
    }
    bool complete = false;
    const std::size_t n = valid_prefix(s, i, complete);
    if (complete) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += n == 0 ? 1 : n;
    }
  }
  return out;
}

}  // namespace kvcanary::io::utf8
