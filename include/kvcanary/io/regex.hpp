#pragma once
// Thin RAII wrapper over PCRE2 for the pre-tokenizer patterns. HF compiles these patterns with
// Oniguruma; PCRE2 with UTF+UCP gives the same Unicode classes (\p{L}, \p{N}, Unicode \s) and
// the same leftmost-first backtracking semantics, which is what the golden tests pin down.

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "kvcanary/core/error.hpp"
#include "kvcanary/io/utf8.hpp"

namespace kvcanary::io {

class Regex {
 public:
  Regex() = default;
  // `file`/`field` name where the pattern came from, for the error on a bad pattern.
  Regex(std::string_view pattern, const std::string& file, const std::string& field) {
    const std::string translated = onig_compatible(pattern);
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    // MULTILINE: in Oniguruma's default (Ruby) syntax ^ and $ are line anchors.
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &err, &err_offset, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      fail(
          file, field,
          "cannot compile pattern at offset " + std::to_string(err_offset) + ": " + reinterpret_cast<const char*>(msg));
    }
    // JIT is an optimisation only: when unavailable the interpreter gives identical matches.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    code_ = std::shared_ptr<pcre2_code>(code, pcre2_code_free);
  }

  // Rewrites the shorthand classes whose Unicode meaning differs between Oniguruma and PCRE2:
  // Oniguruma's \s is the White_Space property (PCRE2 adds U+180E), and its \w is
  // Letter|Mark|Decimal_Number|Connector_Punctuation (PCRE2 10.42 has L|N|_).
  static std::string onig_compatible(std::string_view p) {
    static constexpr std::string_view kWord = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";
    std::string out;
    out.reserve(p.size() + 16);
    bool in_class = false;
    for (std::size_t i = 0; i < p.size(); ++i) {
      const char c = p[i];
      if (c == '\\' && i + 1 < p.size()) {
        const char n = p[++i];
        if (n == 's') {
          out += "\\p{White_Space}";
        } else if (n == 'S') {
          out += "\\P{White_Space}";
        } else if (n == 'w') {
          out += in_class ? std::string(kWord) : "[" + std::string(kWord) + "]";
        } else if (n == 'W' && !in_class) {
          out += "[^" + std::string(kWord) + "]";
        } else {
          out += c;
          out += n;
        }
        continue;
      }
      if (c == '[' && !in_class) {
        in_class = true;
        out += c;
        // A ']' right after '[' or '[^' is a literal member, not the end of the class.
        if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
        if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
        continue;
      }
      if (c == ']' && in_class) in_class = false;
      out += c;
    }
    return out;
  }

  static std::string escape(std::string_view literal) {
    std::string out;
    for (char c : literal) {
      if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
      out += c;
    }
    return out;
  }

  bool valid() const noexcept { return static_cast<bool>(code_); }

  // Calls on_match(start, end) for each successive non-overlapping match in `s` (valid UTF-8).
  // After an empty match the search resumes one character later, as Oniguruma's iterator does.
  template <class F>
  void find_all(std::string_view s, F&& on_match) const {
    MatchData md(code_.get());
    std::size_t pos = 0;
    while (pos <= s.size()) {
      const int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, PCRE2_NO_UTF_CHECK,
                                 md.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) return;
      if (rc < 0) fail("", "regex", "PCRE2 match error " + std::to_string(rc));
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
      const std::size_t start = ov[0], end = ov[1];
      on_match(start, end);
      if (end > start) {
        pos = end;
      } else {
        if (end >= s.size()) return;
        pos = end + utf8::width(s[end]);
      }
    }
  }

 private:
  class MatchData {
   public:
    explicit MatchData(const pcre2_code* code) : md_(pcre2_match_data_create_from_pattern(code, nullptr)) {}
    ~MatchData() { pcre2_match_data_free(md_); }
    MatchData(const MatchData&) = delete;
    MatchData& operator=(const MatchData&) = delete;
    pcre2_match_data* get() const noexcept { return md_; }

   private:
    pcre2_match_data* md_;
  };
  std::shared_ptr<pcre2_code> code_;
};

}  // namespace kvcanary::io
