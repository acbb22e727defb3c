#pragma once
// HF `models.BPE` applied to one pre-tokenized word. The merge loop reproduces HF `Word::
// merge_all` exactly: a min-heap of (rank, position) candidates, stale entries recognised by the
// merged id no longer matching, so ties resolve leftmost-first just like the reference.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kvcanary/io/utf8.hpp"

namespace kvcanary::io {

// Heterogeneous-lookup hash so string_view keys need no temporary std::string.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

class Bpe {
 public:
  struct Options {
    std::optional<std::string> unk_token;
    std::optional<std::string> continuing_subword_prefix;
    std::optional<std::string> end_of_word_suffix;
    bool fuse_unk = false;
    bool byte_fallback = false;
    bool ignore_merges = false;
  };

  Bpe() = default;
  Bpe(TokenMap vocab, Options opt) : vocab_(std::move(vocab)), opt_(std::move(opt)) {}

  const TokenMap& vocab() const noexcept { return vocab_; }
  const Options& options() const noexcept { return opt_; }

  std::int32_t find(std::string_view token) const {
    auto it = vocab_.find(token);
    return it == vocab_.end() ? -1 : it->second;
  }

  // Registers merge number `rank` (a, b). Returns the token that is missing from the vocabulary
  // (a, b or their concatenation), or an empty optional on success. A later duplicate pair
  // overwrites an earlier one, as HF's map construction does.
  std::optional<std::string> add_merge(std::string_view a, std::string_view b, std::uint32_t rank) {
    const std::int32_t ia = find(a), ib = find(b);
    if (ia < 0) return std::string(a);
    if (ib < 0) return std::string(b);
    const std::size_t strip = opt_.continuing_subword_prefix ? opt_.continuing_subword_prefix->size() : 0;
    std::string merged(a);
    merged.append(b.substr(std::min(strip, b.size())));
    const std::int32_t im = find(merged);
    if (im < 0) return merged;
    merges_.insert_or_assign(pair_key(ia, ib), MergeValue{rank, im});
    return std::nullopt;
  }

  // Appends the ids of `word` to `out`.
  void tokenize(std::string_view word, std::vector<std::int32_t>& out) const {
    if (word.empty()) return;
    if (opt_.ignore_merges) {
      const std::int32_t id = find(word);
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }
    std::vector<Symbol> symbols;
    initial_symbols(word, symbols);
    merge_all(symbols);
    for (const Symbol& s : symbols)
      if (s.len > 0) out.push_back(s.id);
  }

 private:
  struct MergeValue {
    std::uint32_t rank;
    std::int32_t id;
  };
  struct Symbol {
    std::int32_t id;
    std::int32_t prev, next;
    std::size_t len;  // bytes of the word it covers; 0 once merged into its left neighbour
  };
  static std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }
  const MergeValue* lookup(std::int32_t a, std::int32_t b) const {
    auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }

  void push(std::vector<Symbol>& symbols, std::int32_t id, std::size_t len) const {
    const auto n = static_cast<std::int32_t>(symbols.size());
    symbols.push_back(Symbol{id, n - 1, -1, len});
    if (n > 0) symbols[n - 1].next = n;
  }

  // One symbol per character, with HF's prefix/suffix decoration, unknown handling and
  // `<0xXX>` byte fallback.
  void initial_symbols(std::string_view w, std::vector<Symbol>& symbols) const {
    symbols.reserve(w.size());
    std::int32_t unk_id = -1;  // pending unknown symbol, fused or not
    std::size_t unk_len = 0;
    std::string decorated;
    std::size_t i = 0;
    while (i < w.size()) {
      const std::size_t start = i;
      i += utf8::width(w[i]);
      const std::size_t byte_len = i - start;
      std::string_view s = w.substr(start, byte_len);
      if ((start > 0 && opt_.continuing_subword_prefix) || (i >= w.size() && opt_.end_of_word_suffix)) {
        decorated.clear();
        if (start > 0 && opt_.continuing_subword_prefix) decorated = *opt_.continuing_subword_prefix;
        decorated.append(s);
        if (i >= w.size() && opt_.end_of_word_suffix) decorated += *opt_.end_of_word_suffix;
        s = decorated;
      }
      const std::int32_t id = find(s);
      if (id >= 0) {
        if (unk_id >= 0) {
          push(symbols, unk_id, unk_len);
          unk_id = -1;
        }
        push(symbols, id, byte_len);
        continue;
      }
      if (opt_.byte_fallback) {
        std::vector<std::int32_t> bytes;
        for (char c : s) {
          char name[8];
          std::snprintf(name, sizeof name, "<0x%02X>", static_cast<unsigned>(static_cast<std::uint8_t>(c)));
          const std::int32_t b = find(name);
          if (b < 0) break;
          bytes.push_back(b);
        }
        if (bytes.size() == s.size()) {
          for (std::int32_t b : bytes) push(symbols, b, 1);
          continue;
        }
      }
      if (opt_.unk_token) {
        if (unk_id >= 0 && opt_.fuse_unk) {
          unk_len += byte_len;
        } else {
          if (unk_id >= 0) push(symbols, unk_id, unk_len);
          unk_id = find(*opt_.unk_token);
          unk_len = byte_len;
        }
      }
      // Without an unknown token HF silently drops a character missing from the vocabulary.
    }
    if (unk_id >= 0) push(symbols, unk_id, unk_len);
  }

  void merge_all(std::vector<Symbol>& symbols) const {
    struct Cand {
      std::uint32_t rank;
      std::int32_t pos;
      std::int32_t id;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> queue;
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i)
      if (const MergeValue* m = lookup(symbols[i].id, symbols[i + 1].id))
        queue.push(Cand{m->rank, static_cast<std::int32_t>(i), m->id});

    while (!queue.empty()) {
      const Cand top = queue.top();
      queue.pop();
      Symbol& cur = symbols[top.pos];
      if (cur.len == 0 || cur.next < 0) continue;
      const std::int32_t next_pos = cur.next;
      const Symbol right = symbols[next_pos];
      const MergeValue* m = lookup(cur.id, right.id);
      if (!m || m->id != top.id) continue;  // stale candidate

      cur.id = top.id;
      cur.len += right.len;
      cur.next = right.next;
      symbols[next_pos].len = 0;
      if (right.next >= 0) symbols[right.next].prev = top.pos;

      if (cur.prev >= 0)
        if (const MergeValue* pm = lookup(symbols[cur.prev].id, cur.id)) queue.push(Cand{pm->rank, cur.prev, pm->id});
      if (cur.next >= 0)
        if (const MergeValue* nm = lookup(cur.id, symbols[cur.next].id)) queue.push(Cand{nm->rank, top.pos, nm->id});
    }
  }

  TokenMap vocab_;
  Options opt_;
  std::unordered_map<std::uint64_t, MergeValue> merges_;
};

}  // namespace kvcanary::io
