#pragma once
// HF `pre_tokenizer` semantics: the text is a list of pieces; each step splits every piece that
// is not already a token (added tokens are cut out before pre-tokenization), and empty pieces
// are dropped, as `PreTokenizedString::split` does. Supported steps are the ones byte-level BPE
// models use: Split (regex or literal, all five delimiter behaviours, invert), Digits (a Split on
// numeric characters) and ByteLevel (optional prefix space, GPT-2 regex, byte->char map).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kvcanary/io/byte_level.hpp"
#include "kvcanary/io/regex.hpp"

namespace kvcanary::io {

// One span of the text: raw (id < 0) until the model turns it into ids, or an added token.
struct Piece {
  std::string text;
  std::int32_t id = -1;
};

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// The pattern of GPT-2 that HF `ByteLevel(use_regex=true)` applies to each piece.
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Splits `s` at the matches of `re` like HF `NormalizedString::split` and appends the
// non-empty resulting pieces to `out`.
inline void split_by_pattern(std::string_view s, const Regex& re, SplitBehavior behavior, bool invert,
                             std::vector<std::string>& out) {
  struct Span {
    std::size_t start, end;
    bool flag;  // is a match before the behaviour fold; "remove me" after it
  };
  std::vector<Span> spans;
  std::size_t prev = 0;
  re.find_all(s, [&](std::size_t start, std::size_t end) {
    if (prev != start) spans.push_back({prev, start, false});
    spans.push_back({start, end, true});
    prev = end;
  });
  if (prev != s.size()) spans.push_back({prev, s.size(), false});
  if (invert)
    for (Span& sp : spans) sp.flag = !sp.flag;

  std::vector<Span> folded;
  folded.reserve(spans.size());
  switch (behavior) {
    case SplitBehavior::Removed: folded = spans; break;
    case SplitBehavior::Isolated:
      for (const Span& sp : spans) folded.push_back({sp.start, sp.end, false});
      break;
    case SplitBehavior::Contiguous: {
      bool previous_match = false;
      for (const Span& sp : spans) {
        if (sp.flag == previous_match && !folded.empty())
          folded.back().end = sp.end;
        else
          folded.push_back({sp.start, sp.end, false});
        previous_match = sp.flag;
      }
      break;
    }
    case SplitBehavior::MergedWithPrevious: {
      bool previous_match = false;
      for (const Span& sp : spans) {
        if (sp.flag && !previous_match && !folded.empty())
          folded.back().end = sp.end;
        else
          folded.push_back({sp.start, sp.end, false});
        previous_match = sp.flag;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      // HF folds right-to-left: a match joins the piece after it unless it follows a match.
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->flag && !previous_match && !folded.empty())
          folded.back().start = it->start;
        else
          folded.push_back({it->start, it->end, false});
        previous_match = it->flag;
      }
      std::reverse(folded.begin(), folded.end());
      break;
    }
  }
  for (const Span& sp : folded)
    if (!sp.flag && sp.end > sp.start) out.emplace_back(s.substr(sp.start, sp.end - sp.start));
}

class PreTokenizer {
 public:
  void add_split(Regex re, SplitBehavior behavior, bool invert) {
    Step st;
    st.kind = Step::Kind::Split;
    st.regex = std::move(re);
    st.behavior = behavior;
    st.invert = invert;
    steps_.push_back(std::move(st));
  }
  void add_byte_level(bool add_prefix_space, bool use_regex) {
    Step st;
    st.kind = Step::Kind::ByteLevel;
    st.add_prefix_space = add_prefix_space;
    st.use_regex = use_regex;
    if (use_regex) st.regex = Regex(kGpt2Pattern, "", "pre_tokenizer.ByteLevel");
    steps_.push_back(std::move(st));
  }
  bool empty() const noexcept { return steps_.empty(); }

  // Splits every raw piece in place; pieces that already carry an id pass through untouched.
  void run(std::vector<Piece>& pieces) const {
    std::vector<std::string> parts;
    for (const Step& st : steps_) {
      std::vector<Piece> next;
      next.reserve(pieces.size() * 2);
      for (Piece& p : pieces) {
        if (p.id >= 0) {
          next.push_back(std::move(p));
          continue;
        }
        parts.clear();
        apply(st, p.text, parts);
        for (std::string& s : parts)
          if (!s.empty()) next.push_back(Piece{std::move(s), -1});
      }
      pieces = std::move(next);
    }
  }

 private:
  struct Step {
    enum class Kind { Split, ByteLevel } kind = Kind::Split;
    Regex regex;
    SplitBehavior behavior = SplitBehavior::Isolated;
    bool invert = false;
    bool add_prefix_space = false;
    bool use_regex = true;
  };

  static void apply(const Step& st, const std::string& text, std::vector<std::string>& out) {
    if (st.kind == Step::Kind::Split) {
      split_by_pattern(text, st.regex, st.behavior, st.invert, out);
      return;
    }
    // ByteLevel: HF prepends the space to every piece that does not start with one (not only
    // the first), and never to an empty one.
    std::string prefixed;
    std::string_view s = text;
    if (st.add_prefix_space && !text.empty() && text.front() != ' ') {
      prefixed = " " + text;
      s = prefixed;
    }
    const std::size_t first = out.size();
    if (st.use_regex)
      split_by_pattern(s, st.regex, SplitBehavior::Isolated, false, out);
    else if (!s.empty())
      out.emplace_back(s);
    for (std::size_t i = first; i < out.size(); ++i) out[i] = byte_level::encode(out[i]);
  }

  std::vector<Step> steps_;
};

}  // namespace kvcanary::io
