#pragma once
// A JSON-like value for tool-call arguments. It keeps Python's distinctions that BFCL's
// checker relies on (int vs float vs bool, list vs tuple) and object key order (so a parsed
// call prints back as the model wrote it). Plain struct rather than std::variant: the
// parser and checker touch every field and this keeps them short.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace kvcanary::task {

struct Value {
  enum class Kind { null, boolean, integer, floating, string, list, tuple, object };
  Kind kind = Kind::null;
  bool b = false;
  std::int64_t i = 0;
  double d = 0.0;
  std::string s;
  std::vector<Value> items;                            // list, tuple
  std::vector<std::pair<std::string, Value>> members;  // object, in source order

  static Value null() { return {}; }
  static Value boolean(bool v) {
    Value x;
    x.kind = Kind::boolean;
    x.b = v;
    return x;
  }
  static Value integer(std::int64_t v) {
    Value x;
    x.kind = Kind::integer;
    x.i = v;
    return x;
  }
  static Value floating(double v) {
    Value x;
    x.kind = Kind::floating;
    x.d = v;
    return x;
  }
  static Value string(std::string v) {
    Value x;
    x.kind = Kind::string;
    x.s = std::move(v);
    return x;
  }
  static Value list(std::vector<Value> v = {}) {
    Value x;
    x.kind = Kind::list;
    x.items = std::move(v);
    return x;
  }
  static Value tuple(std::vector<Value> v = {}) {
    Value x;
    x.kind = Kind::tuple;
    x.items = std::move(v);
    return x;
  }
  static Value object(std::vector<std::pair<std::string, Value>> m = {}) {
    Value x;
    x.kind = Kind::object;
    x.members = std::move(m);
    return x;
  }

  bool is_null() const { return kind == Kind::null; }
  bool is_string() const { return kind == Kind::string; }
  bool is_object() const { return kind == Kind::object; }
  bool is_list() const { return kind == Kind::list; }
  bool is_number() const { return kind == Kind::integer || kind == Kind::floating; }

  // nullptr when absent or not an object; the first of duplicate keys wins.
  const Value* find(const std::string& key) const {
    if (kind != Kind::object) return nullptr;
    for (const auto& [k, v] : members)
      if (k == key) return &v;
    return nullptr;
  }
  bool contains(const std::string& key) const { return find(key) != nullptr; }
};

// Python's `==`: bool, int and float compare numerically (True == 1 == 1.0), a list never
// equals a tuple, dicts compare as key sets. BFCL's verdicts are defined by that operator.
inline bool python_equal(const Value& a, const Value& b) {
  using K = Value::Kind;
  auto numeric = [](const Value& v) { return v.kind == K::boolean || v.kind == K::integer || v.kind == K::floating; };
  if (numeric(a) && numeric(b)) {
    if (a.kind != K::floating && b.kind != K::floating) {
      auto ai = a.kind == K::boolean ? std::int64_t(a.b) : a.i;
      auto bi = b.kind == K::boolean ? std::int64_t(b.b) : b.i;
      return ai == bi;
    }
    auto as = [](const Value& v) {
      return v.kind == K::boolean ? double(v.b) : v.kind == K::integer ? double(v.i) : v.d;
    };
    return as(a) == as(b);
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case K::null: return true;
    case K::string: return a.s == b.s;
    case K::list:
    case K::tuple:
      if (a.items.size() != b.items.size()) return false;
      for (std::size_t k = 0; k < a.items.size(); ++k)
        if (!python_equal(a.items[k], b.items[k])) return false;
      return true;
    case K::object:
      if (a.members.size() != b.members.size()) return false;
      for (const auto& [k, v] : a.members) {
        const Value* o = b.find(k);
        if (!o || !python_equal(v, *o)) return false;
      }
      return true;
    default: return false;
  }
}

namespace detail {
inline void append_quoted(std::string& out, const std::string& s, char quote) {
  out += quote;
  for (unsigned char c : s) {
    if (c == static_cast<unsigned char>(quote) || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\r')
      out += "\\r";
    else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else
      out += char(c);
  }
  out += quote;
}
inline std::string format_double(double d, bool python) {
  if (std::isnan(d)) return python ? "float('nan')" : "null";
  if (std::isinf(d)) return python ? (d > 0 ? "float('inf')" : "-float('inf')") : "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  // Shortest form that round-trips, so 0.1 prints as 0.1 and not 0.10000000000000001.
  for (int p = 1; p <= 17; ++p) {
    char t[32];
    std::snprintf(t, sizeof t, "%.*g", p, d);
    if (std::strtod(t, nullptr) == d) {
      std::snprintf(buf, sizeof buf, "%s", t);
      break;
    }
  }
  std::string s = buf;
  // Keep a float visibly a float so it does not re-parse as an int.
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}
inline void render(std::string& out, const Value& v, bool python) {
  using K = Value::Kind;
  switch (v.kind) {
    case K::null: out += python ? "None" : "null"; break;
    case K::boolean: out += python ? (v.b ? "True" : "False") : (v.b ? "true" : "false"); break;
    case K::integer: out += std::to_string(v.i); break;
    case K::floating: out += format_double(v.d, python); break;
    case K::string: append_quoted(out, v.s, '"'); break;
    case K::list:
    case K::tuple: {
      const bool paren = python && v.kind == K::tuple;
      out += paren ? '(' : '[';
      for (std::size_t k = 0; k < v.items.size(); ++k) {
        if (k) out += ", ";
        render(out, v.items[k], python);
      }
      if (paren && v.items.size() == 1) out += ',';
      out += paren ? ')' : ']';
      break;
    }
    case K::object:
      out += '{';
      for (std::size_t k = 0; k < v.members.size(); ++k) {
        if (k) out += ", ";
        append_quoted(out, v.members[k].first, '"');
        out += ": ";
        render(out, v.members[k].second, python);
      }
      out += '}';
      break;
  }
}
}  // namespace detail

inline std::string to_json(const Value& v) {
  std::string s;
  detail::render(s, v, false);
  return s;
}

namespace detail {
// Python's float repr: the shortest digits that read back as d, in positional notation when the
// decimal exponent is in [-4, 16), else as d.ddde±XX (CPython's float_repr_style 'short').
inline std::string python_float_repr(double d) {
  if (std::isnan(d)) return "NaN";  // json.dumps(allow_nan=True)
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[40];
  for (int p = 0; p <= 16; ++p) {
    std::snprintf(buf, sizeof buf, "%.*e", p, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  // buf = [-]D[.DDD]e±XX
  std::string s = buf;
  const bool neg = s[0] == '-';
  if (neg) s.erase(0, 1);
  const std::size_t e = s.find('e');
  const int exp = std::atoi(s.c_str() + e + 1);
  std::string digits = s.substr(0, 1) + (e > 2 ? s.substr(2, e - 2) : "");
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out = neg ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out += "0." + std::string(std::size_t(-exp - 1), '0') + digits;
    } else if (std::size_t(exp) + 1 >= digits.size()) {
      out += digits + std::string(std::size_t(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, std::size_t(exp) + 1) + "." + digits.substr(std::size_t(exp) + 1);
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += eb;
  }
  return out;
}

// json.dumps's string: the quote, the backslash and the C0 controls escaped (\n \r \t \b \f by name, the rest
// \u00xx), everything else, non-ASCII included, verbatim (ensure_ascii=False).
inline void append_json_dumps_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
}

inline void render_tojson(std::string& out, const Value& v) {
  using K = Value::Kind;
  switch (v.kind) {
    case K::null: out += "null"; break;
    case K::boolean: out += v.b ? "true" : "false"; break;
    case K::integer: out += std::to_string(v.i); break;
    case K::floating: out += python_float_repr(v.d); break;
    case K::string: append_json_dumps_string(out, v.s); break;
    case K::list:
    case K::tuple:
      out += '[';
      for (std::size_t k = 0; k < v.items.size(); ++k) {
        if (k) out += ", ";
        render_tojson(out, v.items[k]);
      }
      out += ']';
      break;
    case K::object:
      out += '{';
      for (std::size_t k = 0; k < v.members.size(); ++k) {
        if (k) out += ", ";
        append_json_dumps_string(out, v.members[k].first);
        out += ": ";
        render_tojson(out, v.members[k].second);
      }
      out += '}';
      break;
  }
}
}  // namespace detail

// What a chat template's `tojson` filter writes under transformers (its own filter,
// json.dumps(x, ensure_ascii=False): ", " and ": " separators, keys in insertion order, floats
// as Python's repr). Unlike to_json, byte-exact with Python, for rendering prompts exactly.
inline std::string jinja_tojson(const Value& v) {
  std::string s;
  detail::render_tojson(s, v);
  return s;
}
inline std::string to_python(const Value& v) {
  std::string s;
  detail::render(s, v, true);
  return s;
}

}  // namespace kvcanary::task
