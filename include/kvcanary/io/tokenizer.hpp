#pragma once
// HF `tokenizer.json` (byte-level BPE family) loaded and run in C++ with the reference's exact
// pipeline: added tokens cut out first (leftmost-longest, single_word/lstrip/rstrip/normalized
// honoured), normalizer on the rest, pre-tokenizer, BPE per word, post-processor. Every
// component the file names must be one this class implements; anything else is rejected at load
// with a kvcanary::Error naming the file and the field, never silently approximated.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/mapped_file.hpp"
#include "kvcanary/io/bpe.hpp"
#include "kvcanary/io/byte_level.hpp"
#include "kvcanary/io/json_reader.hpp"
#include "kvcanary/io/pre_tokenizer.hpp"
#include "kvcanary/io/regex.hpp"
#include "kvcanary/io/unicode_nfc.hpp"
#include "kvcanary/io/utf8.hpp"

namespace kvcanary::io {

struct AddedToken {
  std::string content;
  std::int32_t id = -1;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

class Tokenizer {
 public:
  static Tokenizer from_file(const std::filesystem::path& tokenizer_json) {
    simdjson::dom::parser parser;
    simdjson::padded_string storage;
    const simdjson::dom::element root = json_detail::parse_file(tokenizer_json, parser, storage);
    Tokenizer t;
    t.path_ = tokenizer_json.string();
    json_detail::Reader r(t.path_);
    t.load_model(r, r.req(root, "model", "model"));
    t.load_added_tokens(r, r.opt(root, "added_tokens"));
    if (auto n = r.opt(root, "normalizer")) t.load_normalizer(r, *n, "normalizer");
    t.build_added_matchers();
    if (auto p = r.opt(root, "pre_tokenizer")) t.load_pre_tokenizer(r, *p, "pre_tokenizer");
    if (auto p = r.opt(root, "post_processor")) t.load_post_processor(r, *p, "post_processor");
    if (auto d = r.opt(root, "decoder")) t.load_decoder(r, *d, "decoder");
    return t;
  }

  // Ids of `text` (valid UTF-8). add_special_tokens applies the post-processor's single-sequence
  // template (e.g. Llama-3's BOS); a ByteLevel post-processor adds nothing.
  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens = false) const {
    if (const std::size_t bad = utf8::first_invalid(text); bad != utf8::npos)
      fail("", "text", "invalid UTF-8 at byte " + std::to_string(bad));
    std::vector<Piece> pieces = extract_added_tokens(text);
    pre_tokenizer_.run(pieces);

    std::vector<std::int32_t> ids;
    ids.reserve(text.size() / 3 + 4);
    // Per-call word cache: natural text repeats a small set of words, so long inputs mostly hit.
    std::unordered_map<std::string, std::pair<std::size_t, std::size_t>, StringHash, std::equal_to<>> cache;
    std::vector<std::int32_t> cached;
    for (const Piece& p : pieces) {
      if (p.id >= 0) {
        ids.push_back(p.id);
        continue;
      }
      if (auto it = cache.find(std::string_view(p.text)); it != cache.end()) {
        ids.insert(ids.end(), cached.begin() + it->second.first, cached.begin() + it->second.second);
        continue;
      }
      const std::size_t begin = ids.size();
      model_.tokenize(p.text, ids);
      if (p.text.size() < 256) {
        const std::size_t off = cached.size();
        cached.insert(cached.end(), ids.begin() + begin, ids.end());
        cache.emplace(p.text, std::make_pair(off, cached.size()));
      }
    }
    if (add_special_tokens) ids = post_process(std::move(ids));
    return ids;
  }

  // Text of `ids` as HF `Tokenizer.decode`: unknown ids are dropped, special tokens optionally
  // skipped, then the decoder (ByteLevel: bytes back, invalid UTF-8 replaced by U+FFFD).
  std::string decode(std::span<const std::int32_t> ids, bool skip_special_tokens = false) const {
    std::vector<std::string_view> tokens;
    tokens.reserve(ids.size());
    for (std::int32_t id : ids) {
      const std::string* tok = token_ptr(id);
      if (!tok) continue;
      if (skip_special_tokens && is_special(id)) continue;
      tokens.push_back(*tok);
    }
    if (decoder_byte_level_) {
      std::string bytes;
      for (std::string_view t : tokens)
        if (!byte_level::decode_append(t, bytes)) bytes.append(t);
      return utf8::lossy(bytes);
    }
    std::string out;  // HF joins with spaces when the file has no decoder
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out.append(tokens[i]);
    }
    return out;
  }

  // -1 when absent. Added tokens take precedence over the model vocabulary, as in HF.
  std::int32_t token_to_id(std::string_view token) const {
    if (auto it = added_by_content_.find(token); it != added_by_content_.end()) return it->second;
    return model_.find(token);
  }
  // Empty string when the id is unknown.
  std::string id_to_token(std::int32_t id) const {
    const std::string* t = token_ptr(id);
    return t ? *t : std::string();
  }
  // HF `get_vocab_size(with_added_tokens=True)`: distinct tokens of the model plus added ones.
  std::size_t vocab_size() const noexcept { return vocab_size_; }
  bool is_special(std::int32_t id) const {
    auto it = added_by_id_.find(id);
    return it != added_by_id_.end() && added_[it->second].special;
  }
  const std::vector<AddedToken>& added_tokens() const noexcept { return added_; }
  const std::string& path() const noexcept { return path_; }

 private:
  enum class PostStep { ByteLevel, Template, Wrap };
  struct PostProcessorStep {
    PostStep kind = PostStep::ByteLevel;
    // Template: each item is either the sequence (empty ids, is_sequence) or special ids.
    struct Item {
      bool is_sequence = false;
      std::vector<std::int32_t> ids;
    };
    std::vector<Item> items;
  };

  // ---- loading -------------------------------------------------------------------------

  void load_model(const json_detail::Reader& r, simdjson::dom::element m) {
    std::string type;
    if (auto t = r.opt(m, "type"))
      type = r.str(*t, "model.type");
    else if (r.opt(m, "merges"))
      type = "BPE";  // files predating the "type" tag are recognised by their fields, as HF does
    if (type != "BPE") r.bad("model.type", "unsupported model type '" + type + "' (only BPE is implemented)");
    if (auto d = r.opt(m, "dropout")) {
      double p = 0;
      if (d->get_double().get(p) != simdjson::SUCCESS) r.bad("model.dropout", "expected a number");
      if (p != 0.0) r.bad("model.dropout", "BPE dropout is random; only null or 0 is supported");
    }
    Bpe::Options opt;
    if (auto u = r.opt(m, "unk_token")) opt.unk_token = r.str(*u, "model.unk_token");
    if (auto p = r.opt(m, "continuing_subword_prefix"))
      opt.continuing_subword_prefix = r.str(*p, "model.continuing_subword_prefix");
    if (auto s = r.opt(m, "end_of_word_suffix")) opt.end_of_word_suffix = r.str(*s, "model.end_of_word_suffix");
    opt.fuse_unk = r.boolean(m, "fuse_unk", "model.fuse_unk", false);
    opt.byte_fallback = r.boolean(m, "byte_fallback", "model.byte_fallback", false);
    opt.ignore_merges = r.boolean(m, "ignore_merges", "model.ignore_merges", false);

    TokenMap vocab;
    const auto vobj = r.object(r.req(m, "vocab", "model.vocab"), "model.vocab");
    vocab.reserve(vobj.size());
    for (auto [key, value] : vobj) {
      const std::int32_t id = r.token_id(value, "model.vocab." + std::string(key));
      vocab.insert_or_assign(std::string(key), id);
    }
    for (const auto& [tok, id] : vocab) {
      if (static_cast<std::size_t>(id) >= id_to_token_.size()) id_to_token_.resize(static_cast<std::size_t>(id) + 1);
      id_to_token_[id] = tok;
      if (static_cast<std::size_t>(id) >= has_token_.size()) has_token_.resize(static_cast<std::size_t>(id) + 1, 0);
      has_token_[id] = 1;
    }
    if (opt.unk_token && !vocab.count(*opt.unk_token))
      r.bad("model.unk_token", "'" + *opt.unk_token + "' is not in model.vocab");
    model_ = Bpe(std::move(vocab), std::move(opt));

    std::uint32_t rank = 0;
    for (auto item : r.array(r.req(m, "merges", "model.merges"), "model.merges")) {
      const std::string field = "model.merges[" + std::to_string(rank) + "]";
      std::string a, b;
      std::string_view s;
      if (item.get_string().get(s) == simdjson::SUCCESS) {
        // Legacy "a b" form: split at the first space (byte-level symbols never contain one).
        const std::size_t sp = s.find(' ');
        if (sp == std::string_view::npos) r.bad(field, "expected \"left right\"");
        a = std::string(s.substr(0, sp));
        b = std::string(s.substr(sp + 1));
      } else {
        simdjson::dom::array pair;
        if (item.get_array().get(pair) != simdjson::SUCCESS || pair.size() != 2)
          r.bad(field, "expected \"left right\" or [\"left\", \"right\"]");
        a = r.str(pair.at(0).value(), field);
        b = r.str(pair.at(1).value(), field);
      }
      if (auto missing = model_.add_merge(a, b, rank)) r.bad(field, "token '" + *missing + "' is not in model.vocab");
      ++rank;
    }
  }

  void load_added_tokens(const json_detail::Reader& r, std::optional<simdjson::dom::element> arr) {
    if (arr) {
      std::size_t i = 0;
      for (auto item : r.array(*arr, "added_tokens")) {
        const std::string field = "added_tokens[" + std::to_string(i++) + "]";
        AddedToken t;
        t.id = r.token_id(r.req(item, "id", field + ".id"), field + ".id");
        t.content = r.str(item, "content", field + ".content");
        t.single_word = r.boolean(item, "single_word", field + ".single_word", false);
        t.lstrip = r.boolean(item, "lstrip", field + ".lstrip", false);
        t.rstrip = r.boolean(item, "rstrip", field + ".rstrip", false);
        t.normalized = r.boolean(item, "normalized", field + ".normalized", true);
        t.special = r.boolean(item, "special", field + ".special", false);
        if (t.content.empty()) continue;  // HF ignores empty added tokens
        if (utf8::first_invalid(t.content) != utf8::npos) r.bad(field + ".content", "invalid UTF-8");
        // A later entry with the same id or content replaces the earlier one.
        if (auto it = added_by_id_.find(t.id); it != added_by_id_.end()) {
          added_by_content_.erase(added_[it->second].content);
          added_[it->second] = t;
          added_by_content_[t.content] = t.id;
          continue;
        }
        if (auto it = added_by_content_.find(t.content); it != added_by_content_.end()) {
          const std::size_t idx = added_by_id_[it->second];
          added_by_id_.erase(it->second);
          added_[idx] = t;
          added_by_id_[t.id] = idx;
          it->second = t.id;
          continue;
        }
        added_by_id_[t.id] = added_.size();
        added_by_content_[t.content] = t.id;
        added_.push_back(std::move(t));
      }
    }
    std::unordered_set<std::string_view> names;
    for (const auto& [tok, id] : model_.vocab()) names.insert(tok);
    for (const AddedToken& t : added_) names.insert(t.content);
    vocab_size_ = names.size();
  }

  void load_normalizer(const json_detail::Reader& r, simdjson::dom::element n, const std::string& field) {
    const std::string type = r.str(n, "type", field + ".type");
    if (type == "NFC") {
      nfc_ = true;
    } else if (type == "Sequence") {
      std::size_t i = 0;
      for (auto sub : r.array(r.req(n, "normalizers", field + ".normalizers"), field + ".normalizers"))
        load_normalizer(r, sub, field + ".normalizers[" + std::to_string(i++) + "]");
    } else {
      r.bad(field + ".type", "unsupported normalizer '" + type + "' (supported: NFC, Sequence)");
    }
  }

  void load_pre_tokenizer(const json_detail::Reader& r, simdjson::dom::element p, const std::string& field) {
    const std::string type = r.str(p, "type", field + ".type");
    if (type == "Sequence") {
      std::size_t i = 0;
      for (auto sub : r.array(r.req(p, "pretokenizers", field + ".pretokenizers"), field + ".pretokenizers"))
        load_pre_tokenizer(r, sub, field + ".pretokenizers[" + std::to_string(i++) + "]");
    } else if (type == "ByteLevel") {
      pre_tokenizer_.add_byte_level(r.boolean(p, "add_prefix_space", field + ".add_prefix_space", true),
                                    r.boolean(p, "use_regex", field + ".use_regex", true));
    } else if (type == "Digits") {
      // HF splits on Rust `char::is_numeric` (categories Nd, Nl, No) = \p{N}; Contiguous merges
      // runs, which is what matching \p{N}+ gives.
      const bool individual = r.boolean(p, "individual_digits", field + ".individual_digits", false);
      pre_tokenizer_.add_split(Regex(individual ? "\\p{N}" : "\\p{N}+", r.file(), field), SplitBehavior::Isolated,
                               false);
    } else if (type == "Split") {
      const auto pat = r.req(p, "pattern", field + ".pattern");
      std::string regex;
      if (auto re = r.opt(pat, "Regex"))
        regex = r.str(*re, field + ".pattern.Regex");
      else if (auto lit = r.opt(pat, "String"))
        regex = Regex::escape(r.str(*lit, field + ".pattern.String"));
      else
        r.bad(field + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
      const std::string b = r.str(p, "behavior", field + ".behavior");
      SplitBehavior behavior;
      if (b == "Removed")
        behavior = SplitBehavior::Removed;
      else if (b == "Isolated")
        behavior = SplitBehavior::Isolated;
      else if (b == "MergedWithPrevious")
        behavior = SplitBehavior::MergedWithPrevious;
      else if (b == "MergedWithNext")
        behavior = SplitBehavior::MergedWithNext;
      else if (b == "Contiguous")
        behavior = SplitBehavior::Contiguous;
      else
        r.bad(field + ".behavior", "unknown split behaviour '" + b + "'");
      const bool invert = r.boolean(p, "invert", field + ".invert", false);
      // An empty literal never matches in HF; PCRE2 would match it everywhere.
      if (regex.empty()) regex = "(?!)";
      pre_tokenizer_.add_split(Regex(regex, r.file(), field + ".pattern"), behavior, invert);
    } else {
      r.bad(field + ".type",
            "unsupported pre-tokenizer '" + type + "' (supported: Sequence, Split, Digits, ByteLevel)");
    }
  }

  void load_post_processor(const json_detail::Reader& r, simdjson::dom::element p, const std::string& field) {
    const std::string type = r.str(p, "type", field + ".type");
    if (type == "ByteLevel") {
      return;  // adjusts offsets only; ids are unchanged
    } else if (type == "Sequence") {
      std::size_t i = 0;
      for (auto sub : r.array(r.req(p, "processors", field + ".processors"), field + ".processors"))
        load_post_processor(r, sub, field + ".processors[" + std::to_string(i++) + "]");
    } else if (type == "TemplateProcessing") {
      std::unordered_map<std::string, std::vector<std::int32_t>> specials;
      if (auto st = r.opt(p, "special_tokens")) {
        for (auto [key, value] : r.object(*st, field + ".special_tokens")) {
          const std::string f = field + ".special_tokens." + std::string(key);
          std::vector<std::int32_t> ids;
          for (auto id : r.array(r.req(value, "ids", f + ".ids"), f + ".ids"))
            ids.push_back(r.token_id(id, f + ".ids"));
          specials[std::string(key)] = std::move(ids);
        }
      }
      PostProcessorStep step;
      step.kind = PostStep::Template;
      std::size_t i = 0;
      for (auto item : r.array(r.req(p, "single", field + ".single"), field + ".single")) {
        const std::string f = field + ".single[" + std::to_string(i++) + "]";
        PostProcessorStep::Item it;
        if (auto seq = r.opt(item, "Sequence")) {
          if (r.str(*seq, "id", f + ".Sequence.id") != "A")
            r.bad(f + ".Sequence.id", "a single template uses sequence A");
          it.is_sequence = true;
        } else if (auto sp = r.opt(item, "SpecialToken")) {
          const std::string name = r.str(*sp, "id", f + ".SpecialToken.id");
          auto found = specials.find(name);
          if (found == specials.end()) r.bad(f + ".SpecialToken.id", "'" + name + "' is not in special_tokens");
          it.ids = found->second;
        } else {
          r.bad(f, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
        }
        step.items.push_back(std::move(it));
      }
      post_.push_back(std::move(step));
    } else if (type == "RobertaProcessing" || type == "BertProcessing") {
      // Single sequence: cls A sep. Each is ["token", id].
      const auto read = [&](const char* key) {
        const std::string f = field + "." + key;
        auto a = r.array(r.req(p, key, f), f);
        if (a.size() != 2) r.bad(f, "expected [token, id]");
        return r.token_id(a.at(1).value(), f);
      };
      PostProcessorStep step;
      step.kind = PostStep::Template;
      step.items.push_back({false, {read("cls")}});
      step.items.push_back({true, {}});
      step.items.push_back({false, {read("sep")}});
      post_.push_back(std::move(step));
    } else {
      r.bad(field + ".type",
            "unsupported post-processor '" + type +
                "' (supported: ByteLevel, TemplateProcessing, RobertaProcessing, BertProcessing, Sequence)");
    }
  }

  void load_decoder(const json_detail::Reader& r, simdjson::dom::element d, const std::string& field) {
    const std::string type = r.str(d, "type", field + ".type");
    if (type == "ByteLevel") {
      decoder_byte_level_ = true;
    } else if (type == "Sequence") {
      std::size_t i = 0;
      for (auto sub : r.array(r.req(d, "decoders", field + ".decoders"), field + ".decoders"))
        load_decoder(r, sub, field + ".decoders[" + std::to_string(i++) + "]");
    } else {
      r.bad(field + ".type", "unsupported decoder '" + type + "' (supported: ByteLevel, Sequence)");
    }
  }

  // ---- added tokens --------------------------------------------------------------------

  // Candidates per first byte, longest first, so the first hit at a position is the
  // leftmost-longest match HF's Aho-Corasick (MatchKind::LeftmostLongest) reports.
  struct Matcher {
    std::array<std::vector<std::size_t>, 256> by_first_byte;
    bool empty = true;
  };

  void build_added_matchers() {
    // HF puts special tokens first, then the others; ties of equal length keep that order.
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < added_.size(); ++i)
      if (added_[i].special) order.push_back(i);
    for (std::size_t i = 0; i < added_.size(); ++i)
      if (!added_[i].special) order.push_back(i);
    pattern_.resize(added_.size());
    for (std::size_t i : order) {
      const AddedToken& t = added_[i];
      // A normalized token matches its own normalized form in the normalized text.
      pattern_[i] = (t.normalized && nfc_) ? nfc(t.content) : t.content;
      if (pattern_[i].empty()) continue;
      Matcher& m = t.normalized ? normalized_ : raw_;
      m.by_first_byte[static_cast<std::uint8_t>(pattern_[i][0])].push_back(i);
      m.empty = false;
    }
    for (Matcher* m : {&raw_, &normalized_})
      for (auto& v : m->by_first_byte)
        std::stable_sort(v.begin(), v.end(),
                         [&](std::size_t a, std::size_t b) { return pattern_[a].size() > pattern_[b].size(); });
  }

  static bool is_word_char(char32_t c);
  static bool is_space_char(char32_t c);

  // HF AddedVocabulary::find_matches + split_with_indices over one raw piece.
  void split_on_added(std::string_view s, const Matcher& m, std::vector<Piece>& out) const {
    if (m.empty) {
      out.push_back(Piece{std::string(s), -1});
      return;
    }
    std::size_t start_offset = 0;
    std::size_t pos = 0;
    while (pos < s.size()) {
      // Next leftmost-longest match at or after pos.
      std::size_t mstart = 0, mend = 0, which = 0;
      bool found = false;
      for (std::size_t i = pos; i < s.size() && !found; ++i) {
        for (std::size_t k : m.by_first_byte[static_cast<std::uint8_t>(s[i])]) {
          const std::string& pat = pattern_[k];
          if (s.compare(i, pat.size(), pat) == 0) {
            mstart = i;
            mend = i + pat.size();
            which = k;
            found = true;
            break;
          }
        }
      }
      if (!found) break;
      pos = mend;
      const AddedToken& tok = added_[which];
      std::size_t start = mstart, stop = mend;
      if (tok.single_word) {
        const bool start_space = start == 0 || !ends_with_word(s.substr(0, start));
        const bool stop_space = stop == s.size() || !starts_with_word(s.substr(stop));
        if (!start_space || !stop_space) continue;
      }
      if (tok.lstrip) start = std::max(leading_space_start(s.substr(0, start)), start_offset);
      if (tok.rstrip) stop += trailing_space_len(s.substr(stop));
      if (start_offset < start) out.push_back(Piece{std::string(s.substr(start_offset, start - start_offset)), -1});
      out.push_back(Piece{std::string(), tok.id});
      start_offset = stop;
    }
    if (start_offset < s.size()) out.push_back(Piece{std::string(s.substr(start_offset)), -1});
  }

  static bool ends_with_word(std::string_view s) {
    if (s.empty()) return false;
    std::size_t i = s.size() - 1;
    while (i > 0 && (static_cast<std::uint8_t>(s[i]) & 0xC0) == 0x80) --i;
    return is_word_char(utf8::next(s, i));
  }
  static bool starts_with_word(std::string_view s) {
    if (s.empty()) return false;
    std::size_t i = 0;
    return is_word_char(utf8::next(s, i));
  }
  // Byte offset where the trailing run of whitespace of s begins.
  static std::size_t leading_space_start(std::string_view s) {
    std::size_t end = s.size();
    while (end > 0) {
      std::size_t i = end - 1;
      while (i > 0 && (static_cast<std::uint8_t>(s[i]) & 0xC0) == 0x80) --i;
      std::size_t j = i;
      if (!is_space_char(utf8::next(s, j))) break;
      end = i;
    }
    return end;
  }
  static std::size_t trailing_space_len(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
      std::size_t j = i;
      if (!is_space_char(utf8::next(s, j))) break;
      i = j;
    }
    return i;
  }

  std::vector<Piece> extract_added_tokens(std::string_view text) const {
    std::vector<Piece> first;
    split_on_added(text, raw_, first);
    std::vector<Piece> out;
    out.reserve(first.size());
    for (Piece& p : first) {
      if (p.id >= 0) {
        out.push_back(std::move(p));
        continue;
      }
      if (nfc_) p.text = nfc(p.text);
      split_on_added(p.text, normalized_, out);
    }
    return out;
  }

  // ---- post-processing / lookup --------------------------------------------------------

  std::vector<std::int32_t> post_process(std::vector<std::int32_t> ids) const {
    for (const PostProcessorStep& step : post_) {
      if (step.kind != PostStep::Template) continue;
      std::vector<std::int32_t> out;
      out.reserve(ids.size() + 4);
      for (const auto& item : step.items) {
        if (item.is_sequence)
          out.insert(out.end(), ids.begin(), ids.end());
        else
          out.insert(out.end(), item.ids.begin(), item.ids.end());
      }
      ids = std::move(out);
    }
    return ids;
  }

  const std::string* token_ptr(std::int32_t id) const {
    if (auto it = added_by_id_.find(id); it != added_by_id_.end()) return &added_[it->second].content;
    if (id >= 0 && static_cast<std::size_t>(id) < has_token_.size() && has_token_[id]) return &id_to_token_[id];
    return nullptr;
  }

  std::string path_;
  Bpe model_;
  std::vector<std::string> id_to_token_;
  std::vector<std::uint8_t> has_token_;
  std::vector<AddedToken> added_;
  std::vector<std::string> pattern_;
  std::unordered_map<std::int32_t, std::size_t> added_by_id_;
  std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>> added_by_content_;
  Matcher raw_, normalized_;
  bool nfc_ = false;
  PreTokenizer pre_tokenizer_;
  std::vector<PostProcessorStep> post_;
  bool decoder_byte_level_ = false;
  std::size_t vocab_size_ = 0;
};

// Rust regex `\w` (Unicode), which HF's single_word check uses: Alphabetic, marks, decimal
// digits, connector punctuation and the two join controls.
inline bool Tokenizer::is_word_char(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  static const Regex word("^[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]", "", "");
  std::string s;
  utf8::append(s, c);
  bool hit = false;
  word.find_all(s, [&](std::size_t, std::size_t) { hit = true; });
  return hit;
}

// Rust `\s` / `char::is_whitespace`: the Unicode White_Space property.
inline bool Tokenizer::is_space_char(char32_t c) {
  switch (c) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000: return true;
    default: return c >= 0x2000 && c <= 0x200A;
  }
}

}  // namespace kvcanary::io
