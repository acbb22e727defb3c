#pragma once
// Extracting function calls from raw model output. Models wrap calls in prose, ``` fences,
// <tool_call> tags, JSON lists or BFCL's Python-call syntax, and under KV-cache compression
// they also stop mid-call; the scanner below accepts every complete call it meets and
// treats an unfinished one as no call at all, so truncation can lower a score but never
// fake a correct call.

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/task/value.hpp"

namespace kvcanary::task {

struct ToolCall {
  std::string name;
  Value args = Value::object();  // always an object
};

struct ParseResult {
  std::vector<ToolCall> calls;
  // A complete JSON object (or array) was parsed somewhere in the output, call-shaped or
  // not: the prototype's "is the output JSON at all" sub-score.
  bool json_valid = false;
};

namespace detail {

// Python identifiers may be non-ASCII (BFCL has año_vehiculo); any UTF-8 byte counts.
inline bool ident_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '_' || u >= 0x80;
}
inline bool ident_start(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalpha(u) || c == '_' || u >= 0x80;
}

// One recursive-descent reader for both JSON and Python literals; `python` switches the
// spelling of constants, quote styles, tuples and bare names.
class LiteralReader {
 public:
  enum class Status { ok, syntax, eof };

  LiteralReader(std::string_view text, std::size_t pos, bool python) : t_(text), p_(pos), python_(python) {}

  Status status() const { return status_; }
  std::size_t pos() const { return p_; }

  std::optional<Value> value(int depth = 0) {
    if (depth > 64) return bad();  // model output is untrusted; bound the recursion
    ws();
    if (at_end()) return eof();
    char c = t_[p_];
    if (c == '{') return object(depth);
    if (c == '[') return sequence(depth, ']', false);
    if (python_ && c == '(') return sequence(depth, ')', true);
    if (c == '"' || (python_ && c == '\'')) {
      auto s = str();
      if (!s) return std::nullopt;
      return Value::string(std::move(*s));
    }
    if (c == '-' || c == '+' || c == '.' || std::isdigit(static_cast<unsigned char>(c))) return number();
    if (ident_start(c)) {
      std::size_t b = p_;
      while (!at_end() && (ident_char(t_[p_]) || (python_ && t_[p_] == '.'))) ++p_;
      std::string_view w = t_.substr(b, p_ - b);
      if (at_end()) return eof();  // a truncated word could still become anything
      if (python_) {
        if (w == "True") return Value::boolean(true);
        if (w == "False") return Value::boolean(false);
        if (w == "None") return Value::null();
        // A call as an argument value is not a literal; refuse rather than guess.
        ws();
        if (!at_end() && (t_[p_] == '(' || t_[p_] == '\'' || t_[p_] == '"')) return bad();
        // BFCL's decoder passes a bare name (a variable) through as its identifier text.
        return Value::string(std::string(w));
      }
      if (w == "true") return Value::boolean(true);
      if (w == "false") return Value::boolean(false);
      if (w == "null") return Value::null();
      return bad();
    }
    return bad();
  }

  // A quoted string at p_; Python's single or double quotes, JSON's double.
  std::optional<std::string> str() {
    const char q = t_[p_++];
    std::string out;
    while (true) {
      if (at_end()) return eof_s();
      char c = t_[p_++];
      if (c == q) return out;
      if (c == '\n' && python_) return bad_s();
      if (static_cast<unsigned char>(c) < 0x20 && !python_) return bad_s();
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_end()) return eof_s();
      char e = t_[p_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case '/': out += '/'; break;
        case '\\': out += '\\'; break;
        case '"': out += '"'; break;
        case '\'':
          if (!python_) return bad_s();
          out += '\'';
          break;
        case '0':
          if (!python_) return bad_s();
          out += '\0';
          break;
        case 'x': {
          if (!python_) return bad_s();
          auto h = hex(2);
          if (!h) return std::nullopt;
          utf8(out, *h);
          break;
        }
        case 'U':
        case 'u': {
          if (e == 'U' && !python_) return bad_s();
          auto h = hex(e == 'U' ? 8 : 4);
          if (!h) return std::nullopt;
          std::uint32_t cp = *h;
          if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair spells one code point
            if (p_ + 1 < t_.size() && t_[p_] == '\\' && t_[p_ + 1] == 'u') {
              p_ += 2;
              auto lo = hex(4);
              if (!lo) return std::nullopt;
              if (*lo >= 0xDC00 && *lo < 0xE000)
                cp = 0x10000 + ((cp - 0xD800) << 10) + (*lo - 0xDC00);
              else
                return bad_s();
            } else if (p_ + 2 > t_.size()) {
              return eof_s();
            }
          }
          utf8(out, cp);
          break;
        }
        default:
          if (!python_) return bad_s();
          out += '\\';  // Python keeps unknown escapes verbatim
          out += e;
      }
    }
  }

  void ws() {
    while (!at_end() && std::isspace(static_cast<unsigned char>(t_[p_]))) ++p_;
  }
  bool at_end() const { return p_ >= t_.size(); }

 private:
  std::optional<Value> bad() {
    status_ = Status::syntax;
    return std::nullopt;
  }
  std::optional<Value> eof() {
    status_ = Status::eof;
    return std::nullopt;
  }
  std::optional<std::string> bad_s() {
    status_ = Status::syntax;
    return std::nullopt;
  }
  std::optional<std::string> eof_s() {
    status_ = Status::eof;
    return std::nullopt;
  }

  std::optional<std::uint32_t> hex(int n) {
    std::uint32_t v = 0;
    for (int k = 0; k < n; ++k) {
      if (at_end()) {
        status_ = Status::eof;
        return std::nullopt;
      }
      char c = t_[p_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= std::uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= std::uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= std::uint32_t(c - 'A' + 10);
      else {
        status_ = Status::syntax;
        return std::nullopt;
      }
    }
    return v;
  }
  static void utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80)
      out += char(cp);
    else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }

  std::optional<Value> number() {
    std::size_t b = p_;
    if (t_[p_] == '-' || (python_ && t_[p_] == '+'))
      ++p_;
    else if (t_[p_] == '+')
      return bad();
    bool is_float = false;
    while (!at_end()) {
      char c = t_[p_];
      if (std::isdigit(static_cast<unsigned char>(c)))
        ++p_;
      else if (c == '.' || c == 'e' || c == 'E') {
        is_float = true;
        ++p_;
      } else if ((c == '-' || c == '+') && (t_[p_ - 1] == 'e' || t_[p_ - 1] == 'E'))
        ++p_;
      else
        break;
    }
    // The digits may continue past the cut: "10" of "100" must not pass as 10.
    if (at_end()) return eof();
    std::string s(t_.substr(b, p_ - b));
    if (s == "-" || s == "+" || s == ".") return bad();
    char* end = nullptr;
    if (!is_float) {
      errno = 0;
      long long v = std::strtoll(s.c_str(), &end, 10);
      if (end == s.c_str() + s.size() && errno == 0) return Value::integer(v);
    }
    double d = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size()) return bad();
    return Value::floating(d);
  }

  std::optional<Value> object(int depth) {
    ++p_;
    Value obj = Value::object();
    ws();
    if (at_end()) return eof();
    if (t_[p_] == '}') {
      ++p_;
      return obj;
    }
    while (true) {
      ws();
      if (at_end()) return eof();
      if (!(t_[p_] == '"' || (python_ && t_[p_] == '\''))) return bad();
      auto key = str();
      if (!key) return std::nullopt;
      ws();
      if (at_end()) return eof();
      if (t_[p_] != ':') return bad();
      ++p_;
      auto v = value(depth + 1);
      if (!v) return std::nullopt;
      obj.members.emplace_back(std::move(*key), std::move(*v));
      ws();
      if (at_end()) return eof();
      if (t_[p_] == ',') {
        ++p_;
        ws();
        if (at_end()) return eof();
        if (python_ && t_[p_] == '}') {
          ++p_;
          return obj;
        }
        continue;
      }
      if (t_[p_] == '}') {
        ++p_;
        return obj;
      }
      return bad();
    }
  }

  std::optional<Value> sequence(int depth, char close, bool tuple) {
    ++p_;
    std::vector<Value> items;
    bool saw_comma = false;
    ws();
    if (at_end()) return eof();
    if (t_[p_] == close) {
      ++p_;
      return tuple ? Value::tuple() : Value::list();
    }
    while (true) {
      auto v = value(depth + 1);
      if (!v) return std::nullopt;
      items.push_back(std::move(*v));
      ws();
      if (at_end()) return eof();
      if (t_[p_] == ',') {
        ++p_;
        saw_comma = true;
        ws();
        if (at_end()) return eof();
        if (python_ && t_[p_] == close) {
          ++p_;
          break;
        }
        continue;
      }
      if (t_[p_] == close) {
        ++p_;
        break;
      }
      return bad();
    }
    if (tuple && !saw_comma) return std::move(items[0]);  // (x) is just x
    return tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
  }

  std::string_view t_;
  std::size_t p_;
  bool python_;
  Status status_ = Status::ok;
};

// {"name": ..., "arguments"|"parameters": {...}}; arguments may also arrive as a JSON
// string (OpenAI's wire format) and the call may sit under "function".
inline std::optional<ToolCall> call_from_object(const Value& v) {
  if (!v.is_object()) return std::nullopt;
  if (const Value* f = v.find("function"); f && f->is_object() && !v.contains("name")) return call_from_object(*f);
  const Value* name = v.find("name");
  if (!name || !name->is_string() || name->s.empty()) return std::nullopt;
  const Value* args = v.find("arguments");
  if (!args) args = v.find("parameters");
  ToolCall call{name->s, Value::object()};
  if (!args) {
    if (v.members.size() != 1) return std::nullopt;  // {"name": "Bob", "age": 3} is data, not a call
    return call;
  }
  if (args->is_object()) {
    call.args = *args;
    return call;
  }
  if (args->is_string()) {
    LiteralReader r(args->s, 0, false);
    auto inner = r.value();
    r.ws();
    if (!inner || !inner->is_object() || !r.at_end()) return std::nullopt;
    call.args = std::move(*inner);
    return call;
  }
  return std::nullopt;
}

inline void collect_calls(const Value& v, std::vector<ToolCall>& out) {
  if (v.is_object()) {
    if (auto c = call_from_object(v)) {
      out.push_back(std::move(*c));
      return;
    }
    if (const Value* tc = v.find("tool_calls"); tc && tc->is_list()) collect_calls(*tc, out);
    return;
  }
  if (v.is_list())
    for (const auto& item : v.items)
      if (auto c = call_from_object(item)) out.push_back(std::move(*c));
}

// name(kw=value, ...) at p; nullopt with `eof` set when the text ends inside it.
inline std::optional<ToolCall> python_call(std::string_view t, std::size_t& p, bool& eof) {
  std::size_t b = p;
  while (p < t.size() && (ident_char(t[p]) || t[p] == '.')) ++p;
  if (p >= t.size()) {
    eof = true;
    return std::nullopt;
  }
  if (t[p] != '(' || t[p - 1] == '.') return std::nullopt;
  ToolCall call{std::string(t.substr(b, p - b)), Value::object()};
  ++p;
  LiteralReader r(t, p, true);
  r.ws();
  if (r.at_end()) {
    eof = true;
    return std::nullopt;
  }
  std::size_t q = r.pos();
  if (t[q] == ')') {
    p = q + 1;
    return call;
  }
  while (true) {
    r.ws();
    q = r.pos();
    std::size_t k = q;
    while (k < t.size() && ident_char(t[k])) ++k;
    if (k >= t.size()) {
      eof = true;
      return std::nullopt;
    }
    // Positional arguments carry no parameter name to check; prose like f(x) is not a call.
    if (k == q || std::isdigit(static_cast<unsigned char>(t[q]))) return std::nullopt;
    std::string key(t.substr(q, k - q));
    LiteralReader eq(t, k, true);
    eq.ws();
    if (eq.at_end()) {
      eof = true;
      return std::nullopt;
    }
    std::size_t e = eq.pos();
    if (t[e] != '=' || (e + 1 < t.size() && t[e + 1] == '=')) return std::nullopt;
    LiteralReader val(t, e + 1, true);
    auto v = val.value();
    if (!v) {
      eof = val.status() == LiteralReader::Status::eof;
      return std::nullopt;
    }
    call.args.members.emplace_back(std::move(key), std::move(*v));
    val.ws();
    if (val.at_end()) {
      eof = true;
      return std::nullopt;
    }
    std::size_t n = val.pos();
    if (t[n] == ')') {
      p = n + 1;
      return call;
    }
    if (t[n] != ',') return std::nullopt;
    r = LiteralReader(t, n + 1, true);
    r.ws();
    if (r.at_end()) {
      eof = true;
      return std::nullopt;
    }
    if (t[r.pos()] == ')') {
      p = r.pos() + 1;
      return call;
    }
  }
}

}  // namespace detail

namespace detail {
// Whether a complete JSON object (or array of objects) opens at bracket depth 0. Brackets
// nested inside a broken outer structure do not count: {"name": "f" "arguments": {}} is
// not valid JSON merely because it contains {}.
inline bool has_top_level_json(std::string_view t) {
  int depth = 0;
  bool in_str = false;
  for (std::size_t p = 0; p < t.size(); ++p) {
    const char c = t[p];
    if (in_str) {
      if (c == '\\')
        ++p;
      else if (c == '"')
        in_str = false;
      continue;
    }
    if (depth == 0) {
      if (c != '{' && c != '[') continue;
      LiteralReader r(t, p, false);
      auto v = r.value();
      if (v && (v->is_object() || (v->is_list() && !v->items.empty() && v->items[0].is_object()))) return true;
      if (!v && r.status() == LiteralReader::Status::eof) return false;
      if (v) {
        p = r.pos() - 1;
        continue;
      }
      depth = 1;
      continue;
    }
    if (c == '"')
      in_str = true;
    else if (c == '{' || c == '[')
      ++depth;
    else if (c == '}' || c == ']')
      --depth;
  }
  return false;
}
}  // namespace detail

inline ParseResult parse_tool_calls(std::string_view text) {
  ParseResult out;
  out.json_valid = detail::has_top_level_json(text);
  std::size_t p = 0;
  while (p < text.size()) {
    const char c = text[p];
    if (c == '{' || c == '[') {
      detail::LiteralReader r(text, p, false);
      auto v = r.value();
      if (v) {
        const std::size_t before = out.calls.size();
        detail::collect_calls(*v, out.calls);
        // A list that is not a list of calls may still hold Python-syntax calls: step in.
        if (out.calls.size() > before || v->is_object()) {
          p = r.pos();
          continue;
        }
      } else if (r.status() == detail::LiteralReader::Status::eof) {
        // An unterminated structure runs to the end of the output: nothing after its
        // opening is a complete top-level call, only fragments of the unfinished one.
        break;
      }
      ++p;
      continue;
    }
    if (detail::ident_start(c) && (p == 0 || !(detail::ident_char(text[p - 1]) || text[p - 1] == '.'))) {
      std::size_t q = p;
      bool eof = false;
      auto call = detail::python_call(text, q, eof);
      if (call) {
        out.calls.push_back(std::move(*call));
        p = q;
        continue;
      }
      if (eof) break;
      // Skip the rest of the word so its tail is not mistaken for a name start.
      while (p < text.size() && (detail::ident_char(text[p]) || text[p] == '.')) ++p;
      // And a rejected call's parentheses, so f(a=g(b=1)) does not yield g as a call.
      if (p < text.size() && text[p] == '(') {
        int depth = 0;
        std::size_t k = p;
        for (; k < text.size(); ++k) {
          if (text[k] == '(')
            ++depth;
          else if (text[k] == ')' && --depth == 0)
            break;
        }
        if (k < text.size()) p = k + 1;
      }
      continue;
    }
    ++p;
  }
  return out;
}

}  // namespace kvcanary::task

namespace kvcanary::task {

// The whole of `text` as one strict JSON value, object keys in source order; nullopt when it is
// not exactly one (surrounding whitespace allowed).
inline std::optional<Value> parse_json(std::string_view text) {
  const std::string padded = std::string(text) + ' ';  // a number must not end at the end of input
  detail::LiteralReader r(padded, 0, false);
  auto v = r.value();
  if (!v) return std::nullopt;
  r.ws();
  if (!r.at_end()) return std::nullopt;
  return v;
}

// The calls of an answer in the native tool-calling format of Qwen2.5's chat template, read as
// BFCL reads a Qwen "FC" model's output (bfcl_eval QwenFCHandler: re.findall of
// `<tool_call>\n(.*?)\n</tool_call>` with DOTALL, json.loads of each, then {name: arguments}
// per call): every complete block whose body is JSON counts, a block whose body is not JSON is
// skipped, text around and between blocks is ignored, and a block still open when the text
// ends (truncation) is no call. A body that is JSON but not a {"name": string, "arguments":
// object} call makes BFCL's decode fail for the whole answer: then no calls at all.
// json_valid = some block's body is JSON.
inline ParseResult parse_native_tool_calls(std::string_view text) {
  static constexpr std::string_view open = "<tool_call>\n", close = "\n</tool_call>";
  ParseResult out;
  std::size_t p = 0;
  bool decodable = true;
  while ((p = text.find(open, p)) != std::string_view::npos) {
    const std::size_t body = p + open.size();
    const std::size_t end = text.find(close, body);
    if (end == std::string_view::npos) break;
    p = end + close.size();
    const auto v = parse_json(text.substr(body, end - body));
    if (!v) continue;
    out.json_valid = true;
    const Value* name = v->find("name");
    const Value* args = v->find("arguments");
    if (!name || !name->is_string() || !args || !args->is_object()) {
      decodable = false;
      continue;
    }
    out.calls.push_back({name->s, *args});
  }
  if (!decodable) out.calls.clear();
  return out;
}

}  // namespace kvcanary::task
