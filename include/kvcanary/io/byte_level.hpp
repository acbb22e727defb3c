#pragma once
// GPT-2's reversible byte <-> printable-character map (byte-level BPE). Every byte becomes one
// code point that is neither whitespace nor a control character, so vocabulary entries are
// ordinary strings: printable Latin-1 bytes map to themselves, the 68 others to U+0100.. in
// byte order. This is the table HF `ByteLevel` pre-tokenizer and decoder both use.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "kvcanary/io/utf8.hpp"

namespace kvcanary::io::byte_level {

struct Tables {
  std::array<char32_t, 256> byte_to_char{};
  std::array<std::string, 256> byte_to_utf8{};
  // Inverse over code points 0..323 (the image of the map); -1 where a code point is not one.
  std::array<std::int16_t, 324> char_to_byte{};

  Tables() {
    char_to_byte.fill(-1);
    const auto printable = [](int b) {
      return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    char32_t next_extra = 256;
    for (int b = 0; b < 256; ++b) {
      const char32_t c = printable(b) ? static_cast<char32_t>(b) : next_extra++;
      byte_to_char[b] = c;
      utf8::append(byte_to_utf8[b], c);
      char_to_byte[c] = static_cast<std::int16_t>(b);
    }
  }
};

inline const Tables& tables() {
  static const Tables t;
  return t;
}

// Raw bytes -> byte-level string.
inline std::string encode(std::string_view bytes) {
  const Tables& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += t.byte_to_utf8[static_cast<std::uint8_t>(c)];
  return out;
}

// Byte-level string -> raw bytes, appended to `out`. Returns false (and appends nothing) when
// some character is outside the map; HF's decoder then keeps that token's text unchanged.
inline bool decode_append(std::string_view token, std::string& out) {
  const Tables& t = tables();
  const std::size_t mark = out.size();
  std::size_t i = 0;
  while (i < token.size()) {
    const char32_t c = utf8::next(token, i);
    if (c >= t.char_to_byte.size() || t.char_to_byte[c] < 0) {
      out.resize(mark);
      return false;
    }
    out += static_cast<char>(static_cast<std::uint8_t>(t.char_to_byte[c]));
  }
  return true;
}

}  // namespace kvcanary::io::byte_level
