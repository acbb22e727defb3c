#pragma once
// Scoring parsed tool calls two ways:
//  * the prototype's three sub-scores against one gold call (json_valid, func_correct,
//    arg_match), kept so earlier numbers stay comparable;
//  * BFCL's AST check against its possible answers. The rules reproduce the verdicts of
//    bfcl-eval's ast_checker (Python prompting mode), including its quirks, because a
//    score is only comparable to published BFCL numbers if it passes and fails the same
//    outputs. docs/TASKS.md lists every rule; tests/task/test_tool_call.cpp checks the
//    verdicts against ones produced by bfcl-eval itself.

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <simdjson.h>

#include "kvcanary/core/error.hpp"
#include "kvcanary/task/tool_call_parse.hpp"
#include "kvcanary/task/value.hpp"

namespace kvcanary::task {

// ---------------------------------------------------------------- prototype sub-scores

struct PrototypeScore {
  bool json_valid = false;
  bool func_correct = false;
  bool arg_match = false;
};

// Argument equality for arg_match. Decision (the prototype compared json.loads results
// with Python ==): numbers compare by value, so 100 and 100.0 match, but a bool never
// matches a number (true is not 1 here, unlike Python) and strings are case-sensitive;
// key order is irrelevant.
inline bool args_equal(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.kind == K::boolean || b.kind == K::boolean) return a.kind == b.kind && a.b == b.b;
  if (a.is_number() && b.is_number()) return python_equal(a, b);
  const bool seq_a = a.kind == K::list || a.kind == K::tuple, seq_b = b.kind == K::list || b.kind == K::tuple;
  if (seq_a && seq_b) {
    if (a.items.size() != b.items.size()) return false;
    for (std::size_t k = 0; k < a.items.size(); ++k)
      if (!args_equal(a.items[k], b.items[k])) return false;
    return true;
  }
  if (a.kind != b.kind) return false;
  if (a.kind == K::object) {
    if (a.members.size() != b.members.size()) return false;
    for (const auto& [k, v] : a.members) {
      const Value* o = b.find(k);
      if (!o || !args_equal(v, *o)) return false;
    }
    return true;
  }
  return python_equal(a, b);
}

// The prototype looked at the first call only; later calls are ignored, not penalised.
inline PrototypeScore score_single_call(const ParseResult& parsed, const ToolCall& gold) {
  PrototypeScore s;
  s.json_valid = parsed.json_valid;
  if (parsed.calls.empty()) return s;
  s.func_correct = parsed.calls.front().name == gold.name;
  s.arg_match = s.func_correct && args_equal(parsed.calls.front().args, gold.args);
  return s;
}

// ---------------------------------------------------------------- BFCL AST check

enum class BfclCategory { simple, multiple, parallel, parallel_multiple };

// BFCL dispatches on substrings of the category name, so "live_simple" is simple and
// "parallel_multiple" takes the parallel path.
inline BfclCategory bfcl_category_from_name(const std::string& name) {
  const bool par = name.find("parallel") != std::string::npos;
  const bool mul = name.find("multiple") != std::string::npos;
  if (par) return mul ? BfclCategory::parallel_multiple : BfclCategory::parallel;
  return mul ? BfclCategory::multiple : BfclCategory::simple;
}

struct GoldCall {
  std::string name;
  Value params;  // object: parameter -> list of acceptable values ("" = may be omitted)
};

struct BfclQuestion {
  std::string id;
  Value question;                // chat turns, as stored
  std::vector<Value> functions;  // JSON-schema function docs
};

struct BfclAnswer {
  std::string id;
  std::vector<GoldCall> ground_truth;
};

struct AstVerdict {
  bool valid = true;
  std::string error_type;  // BFCL's error_type names, e.g. "simple_function_checker:missing_required"
  std::string error;
};

struct AstOptions {
  // Function-calling APIs (OpenAI, Mistral, Gemini) forbid '.' in names, so BFCL compares
  // those models' outputs against names with '.' replaced by '_'. Off: prompting mode.
  bool underscore_names = false;
};

namespace bfcl_detail {

inline AstVerdict fail_with(std::string type, std::string msg) { return {false, std::move(type), std::move(msg)}; }

// Lower-cases one UTF-8 code point for the alphabets BFCL's data uses (ASCII, Latin-1,
// Latin Extended-A, Greek, Cyrillic); Python's str.lower() covers all of Unicode, so a
// string differing only in the case of some other script's letters is the one divergence.
inline std::uint32_t lower_cp(std::uint32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if ((c >= 0xC0 && c <= 0xDE && c != 0xD7) || (c >= 0x391 && c <= 0x3AB && c != 0x3A2) || (c >= 0x410 && c <= 0x42F))
    return c + 0x20;
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;
  if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17F) {
    const bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (c == 0x178) return 0xFF;
    return ((c & 1) == (odd_upper ? 1u : 0u)) ? c + 1 : c;
  }
  return c;
}

inline void put_utf8(std::string& out, std::uint32_t cp) {
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

// BFCL's standardize_string: drop " ,./-_*^", lower-case, turn ' into ".
inline std::string standardize(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t k = 0; k < s.size();) {
    const auto c = static_cast<unsigned char>(s[k]);
    if (c < 0x80) {
      ++k;
      if (c == ' ' || c == ',' || c == '.' || c == '/' || c == '-' || c == '_' || c == '*' || c == '^') continue;
      out += c == '\'' ? '"' : char(lower_cp(c));
      continue;
    }
    const int n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (n == 1 || k + n > s.size()) {
      out += char(c);
      ++k;
      continue;
    }  // not UTF-8: keep the byte
    std::uint32_t cp = c & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
    for (int j = 1; j < n; ++j) cp = (cp << 6) | (static_cast<unsigned char>(s[k + j]) & 0x3F);
    put_utf8(out, lower_cp(cp));
    k += n;
  }
  return out;
}

inline bool is_empty_marker(const Value& v) { return v.is_string() && v.s.empty(); }

inline bool contains(const std::vector<Value>& xs, const Value& v) {
  return std::any_of(xs.begin(), xs.end(), [&](const Value& x) { return python_equal(x, v); });
}

// Python's type(value) as a name; tuple is its own type in Python.
enum class PyType { none, str, int_, float_, bool_, list, tuple, dict };
inline PyType py_type(const Value& v) {
  switch (v.kind) {
    case Value::Kind::null: return PyType::none;
    case Value::Kind::boolean: return PyType::bool_;
    case Value::Kind::integer: return PyType::int_;
    case Value::Kind::floating: return PyType::float_;
    case Value::Kind::string: return PyType::str;
    case Value::Kind::list: return PyType::list;
    case Value::Kind::tuple: return PyType::tuple;
    default: return PyType::dict;
  }
}
// BFCL's mapping of schema type names; "tuple" maps to list, "any" to str.
inline bool schema_py_type(const std::string& t, PyType& out) {
  if (t == "string" || t == "any")
    out = PyType::str;
  else if (t == "integer")
    out = PyType::int_;
  else if (t == "float")
    out = PyType::float_;
  else if (t == "boolean")
    out = PyType::bool_;
  else if (t == "array" || t == "tuple")
    out = PyType::list;
  else if (t == "dict")
    out = PyType::dict;
  else
    return false;
  return true;
}

// Type of the first acceptable value that is not the "may be omitted" marker.
inline bool answer_type(const std::vector<Value>& answers, PyType& out) {
  for (const auto& a : answers)
    if (!is_empty_marker(a)) {
      out = py_type(a);
      return true;
    }
  return false;
}

struct TypeCheck {
  bool valid;
  bool is_variable;
};

// A value whose type differs from the schema but matches the answers' type counts as a
// "variable" (BFCL stores variable references as strings) and skips the fuzzy comparisons.
inline TypeCheck type_check(const Value& value, const std::vector<Value>& answers, PyType expected,
                            const PyType* nested) {
  bool is_variable = false;
  PyType at = PyType::none;
  const bool has_at = answer_type(answers, at);
  if (has_at && at != expected) is_variable = true;
  if (py_type(value) == expected) {
    if (!nested) return {true, is_variable};
    for (const auto& answer : answers) {
      bool ok = true;
      if (answer.kind == Value::Kind::list) {
        for (const auto& item : value.items) {
          if (!type_check(item, answer.items, *nested, nullptr).valid) {
            ok = false;
            break;
          }
        }
      }
      // A non-list acceptable value (the "" marker) makes the item check vacuous, as in BFCL.
      if (ok) return {true, is_variable};
    }
    return {false, false};
  }
  if (has_at && py_type(value) == at) return {true, true};
  return {false, false};
}

inline Value standardized_if_string(const Value& v) { return v.is_string() ? Value::string(standardize(v.s)) : v; }

inline bool string_ok(const Value& value, const std::vector<Value>& answers) {
  const std::string m = standardize(value.s);
  for (const auto& a : answers)
    if (a.is_string() && standardize(a.s) == m) return true;
  return false;
}

inline bool list_ok(const Value& value, const std::vector<Value>& answers) {
  // The model's tuple becomes a list; top-level string items are standardized, nested ones not.
  Value m = Value::list();
  for (const auto& item : value.items) m.items.push_back(standardized_if_string(item));
  for (const auto& answer : answers) {
    Value a = Value::list();
    // Iterating the "" marker yields no items, so an empty list matches it.
    if (answer.kind == Value::Kind::list || answer.kind == Value::Kind::tuple)
      for (const auto& item : answer.items) a.items.push_back(standardized_if_string(item));
    else if (!is_empty_marker(answer))
      continue;
    if (python_equal(m, a)) return true;
  }
  return false;
}

// "" when some acceptable dict matches; otherwise the error type of the last one tried,
// which is what BFCL reports.
inline std::string dict_error(const Value& value, const std::vector<Value>& answers) {
  std::string err = "dict_checker:unclear";
  for (const auto& answer : answers) {
    if (is_empty_marker(answer) || !answer.is_object()) continue;
    err.clear();
    for (const auto& [k, v] : value.members) {
      const Value* acceptable = answer.find(k);
      if (!acceptable) {
        err = "value_error:dict_key";
        break;
      }
      std::vector<Value> std_answers;
      for (const auto& a : acceptable->items) std_answers.push_back(standardized_if_string(a));
      if (!contains(std_answers, standardized_if_string(v))) {
        err = "value_error:dict_value";
        break;
      }
    }
    // BFCL runs this second loop even after a failure above, and its verdict overwrites.
    for (const auto& [k, acceptable] : answer.members)
      if (!value.contains(k) && !contains(acceptable.items, Value::string(""))) {
        err = "value_error:dict_key";
        break;
      }
    if (err.empty()) return err;
  }
  return err;
}

inline std::string list_dict_error(const Value& value, const std::vector<Value>& answers) {
  std::string err = "list_dict_checker:unclear";
  for (const auto& answer : answers) {
    const std::size_t n = answer.kind == Value::Kind::list ? answer.items.size() : 0;
    if (value.items.size() != n) {
      err = "value_error:list_dict_count";
      continue;
    }
    err.clear();
    for (std::size_t k = 0; k < n && err.empty(); ++k) {
      if (value.items[k].kind != Value::Kind::object) {
        err = "value_error:dict_value";
        break;
      }
      err = dict_error(value.items[k], {answer.items[k]});
    }
    if (err.empty()) return err;
  }
  return err;
}

inline const Value* find_doc(const std::vector<Value>& docs, const std::string& name) {
  for (const auto& d : docs)
    if (const Value* n = d.find("name"); n && n->is_string() && n->s == name) return &d;
  return nullptr;
}

}  // namespace bfcl_detail

// One output call against one gold call (BFCL's simple_function_checker).
inline AstVerdict check_call(const Value& doc, const ToolCall& call, const GoldCall& gold, const AstOptions& opt = {}) {
  using namespace bfcl_detail;
  const Value* name_v = doc.find("name");
  const Value* params = doc.find("parameters");
  const Value* props = params ? params->find("properties") : nullptr;
  const Value* required = params ? params->find("required") : nullptr;
  std::string name = name_v && name_v->is_string() ? name_v->s : gold.name;
  if (opt.underscore_names) std::replace(name.begin(), name.end(), '.', '_');
  if (call.name != name)
    return fail_with("simple_function_checker:wrong_func_name", "function name '" + name + "' not found");

  if (required && required->is_list())
    for (const auto& r : required->items)
      if (r.is_string() && !call.args.contains(r.s))
        return fail_with("simple_function_checker:missing_required", "missing required parameter '" + r.s + "'");

  for (const auto& [param, raw] : call.args.members) {
    const Value* detail = props ? props->find(param) : nullptr;
    const Value* answers_v = gold.params.find(param);
    if (!detail || !answers_v)
      return fail_with("simple_function_checker:unexpected_param", "unexpected parameter '" + param + "'");
    const std::vector<Value>& answers = answers_v->items;
    const Value* type_v = detail->find("type");
    const std::string type_name = type_v && type_v->is_string() ? type_v->s : "";
    PyType expected;
    if (!schema_py_type(type_name, expected))
      return fail_with("type_error:schema",
                       "parameter '" + param + "' has schema type '" + type_name + "' BFCL does not map");
    PyType nested_t;
    const PyType* nested = nullptr;
    if (type_name == "array" || type_name == "tuple") {
      const Value* items = detail->find("items");
      const Value* it = items ? items->find("type") : nullptr;
      if (it && it->is_string() && schema_py_type(it->s, nested_t)) nested = &nested_t;
    }
    Value value = raw;
    if (type_name == "tuple" && value.kind == Value::Kind::tuple) value.kind = Value::Kind::list;
    if (type_name == "float" && value.kind == Value::Kind::integer) value = Value::floating(double(value.i));

    const TypeCheck tc = type_check(value, answers, expected, nested);
    if (!tc.valid)
      return fail_with(nested && py_type(value) == expected ? "type_error:nested" : "type_error:simple",
                       "wrong type for parameter '" + param + "'");
    if (!tc.is_variable) {
      if (expected == PyType::dict) {
        if (auto err = dict_error(value, answers); !err.empty())
          return fail_with(err, "invalid value for parameter '" + param + "'");
        continue;
      }
      if (expected == PyType::list && nested && *nested == PyType::dict) {
        if (auto err = list_dict_error(value, answers); !err.empty())
          return fail_with(err, "invalid value for parameter '" + param + "'");
        continue;
      }
      if (expected == PyType::str) {
        if (!string_ok(value, answers))
          return fail_with("value_error:string", "invalid value for parameter '" + param + "'");
        continue;
      }
      if (expected == PyType::list) {
        if (!list_ok(value, answers))
          return fail_with("value_error:list/tuple", "invalid value for parameter '" + param + "'");
        continue;
      }
    }
    if (!contains(answers, value))
      return fail_with("value_error:others", "invalid value for parameter '" + param + "'");
  }
  for (const auto& [param, answers] : gold.params.members)
    if (!call.args.contains(param) && !contains(answers.items, Value::string("")))
      return fail_with("simple_function_checker:missing_optional",
                       "parameter '" + param + "' not provided and not optional");
  return {};
}

// The whole output of one BFCL entry. Parallel matching is BFCL's greedy one: each gold call
// in order takes the first unclaimed output call that passes, with no backtracking.
inline AstVerdict ast_check(BfclCategory category, const std::vector<Value>& docs, const std::vector<ToolCall>& output,
                            const std::vector<GoldCall>& gold, const AstOptions& opt = {}) {
  using namespace bfcl_detail;
  if (output.empty()) return fail_with("ast_decoder:decoder_failed", "no complete function call in the output");
  if (category == BfclCategory::parallel || category == BfclCategory::parallel_multiple) {
    if (output.size() != gold.size())
      return fail_with("parallel_function_checker_no_order:wrong_count", "wrong number of functions");
    std::vector<bool> used(output.size(), false);
    for (const auto& g : gold) {
      const Value* doc = find_doc(docs, g.name);
      if (!doc) return fail_with("ast_checker:missing_description", "no function doc named '" + g.name + "'");
      bool matched = false;
      for (std::size_t k = 0; k < output.size() && !matched; ++k) {
        if (used[k]) continue;
        if (check_call(*doc, output[k], g, opt).valid) used[k] = matched = true;
      }
      if (!matched)
        return fail_with("parallel_function_checker_no_order:cannot_find_match",
                         "no output call matches '" + g.name + "'");
    }
    return {};
  }
  if (gold.empty()) return fail_with("ast_checker:empty_answer", "no gold call");
  if (category == BfclCategory::multiple) {
    if (output.size() != gold.size())
      return fail_with("multiple_function_checker:wrong_count", "wrong number of functions");
    const Value* doc = find_doc(docs, gold[0].name);
    if (!doc) return fail_with("ast_checker:missing_description", "no function doc named '" + gold[0].name + "'");
    return check_call(*doc, output[0], gold[0], opt);
  }
  if (output.size() != 1) return fail_with("simple_function_checker:wrong_count", "wrong number of functions");
  if (docs.empty()) return fail_with("ast_checker:missing_description", "no function doc");
  return check_call(docs[0], output[0], gold[0], opt);
}

// ---------------------------------------------------------------- loaders

namespace load_detail {

inline Value from_dom(simdjson::dom::element e) {
  using T = simdjson::dom::element_type;
  switch (e.type()) {
    case T::NULL_VALUE: return Value::null();
    case T::BOOL: return Value::boolean(bool(e.get_bool()));
    case T::INT64: return Value::integer(std::int64_t(e.get_int64()));
    case T::UINT64: return Value::floating(double(std::uint64_t(e.get_uint64())));
    case T::DOUBLE: return Value::floating(double(e.get_double()));
    case T::STRING: return Value::string(std::string(std::string_view(e.get_string())));
    case T::ARRAY: {
      Value v = Value::list();
      for (auto item : e.get_array()) v.items.push_back(from_dom(item));
      return v;
    }
    case T::OBJECT: {
      Value v = Value::object();
      for (auto field : e.get_object()) v.members.emplace_back(std::string(field.key), from_dom(field.value));
      return v;
    }
    default: return Value::null();
  }
}

// Every non-blank line of a JSON-lines file as a Value object, with its 1-based line number.
template <class F>
void for_each_jsonl(const std::filesystem::path& path, F&& f) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), "", "cannot open");
  simdjson::dom::parser parser;
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    simdjson::dom::element e;
    if (auto err = parser.parse(line).get(e))
      fail(path.string(), "line " + std::to_string(n), std::string("invalid JSON: ") + simdjson::error_message(err));
    Value v = from_dom(e);
    if (!v.is_object()) fail(path.string(), "line " + std::to_string(n), "expected a JSON object");
    f(v, "line " + std::to_string(n));
  }
}

inline const Value& need(const Value& obj, const std::string& key, Value::Kind kind, const std::string& file,
                         const std::string& where, const char* what) {
  const Value* v = obj.find(key);
  if (!v) fail(file, where + ": " + key, "missing");
  if (v->kind != kind) fail(file, where + ": " + key, std::string("expected ") + what);
  return *v;
}

}  // namespace load_detail

inline std::vector<BfclQuestion> load_bfcl_questions(const std::filesystem::path& path) {
  using namespace load_detail;
  std::vector<BfclQuestion> out;
  const std::string file = path.string();
  for_each_jsonl(path, [&](const Value& v, const std::string& where) {
    BfclQuestion q;
    q.id = need(v, "id", Value::Kind::string, file, where, "a string").s;
    if (const Value* qu = v.find("question")) q.question = *qu;
    const Value& fns = need(v, "function", Value::Kind::list, file, where, "a list of function docs");
    for (std::size_t k = 0; k < fns.items.size(); ++k) {
      const Value& d = fns.items[k];
      const std::string fw = where + ": function[" + std::to_string(k) + "]";
      if (!d.is_object()) fail(file, fw, "expected an object");
      need(d, "name", Value::Kind::string, file, fw, "a string");
      const Value& p = need(d, "parameters", Value::Kind::object, file, fw, "an object");
      need(p, "properties", Value::Kind::object, file, fw + ": parameters", "an object");
    }
    q.functions = fns.items;
    out.push_back(std::move(q));
  });
  return out;
}

inline std::vector<BfclAnswer> load_bfcl_answers(const std::filesystem::path& path) {
  using namespace load_detail;
  std::vector<BfclAnswer> out;
  const std::string file = path.string();
  for_each_jsonl(path, [&](const Value& v, const std::string& where) {
    BfclAnswer a;
    a.id = need(v, "id", Value::Kind::string, file, where, "a string").s;
    const Value& gt = need(v, "ground_truth", Value::Kind::list, file, where, "a list");
    for (std::size_t k = 0; k < gt.items.size(); ++k) {
      const Value& g = gt.items[k];
      const std::string gw = where + ": ground_truth[" + std::to_string(k) + "]";
      if (!g.is_object() || g.members.size() != 1) fail(file, gw, "expected {function_name: {param: [values]}}");
      const auto& [name, params] = g.members[0];
      if (!params.is_object()) fail(file, gw + ": " + name, "expected an object of parameters");
      for (const auto& [p, vals] : params.members)
        if (!vals.is_list()) fail(file, gw + ": " + name + ": " + p, "expected a list of acceptable values");
      a.ground_truth.push_back({name, params});
    }
    out.push_back(std::move(a));
  });
  return out;
}

struct SeedSample {
  std::string id;
  std::string prompt;
  ToolCall gold;
};

inline std::vector<SeedSample> load_seed_samples(const std::filesystem::path& path) {
  using namespace load_detail;
  std::vector<SeedSample> out;
  const std::string file = path.string();
  for_each_jsonl(path, [&](const Value& v, const std::string& where) {
    SeedSample s;
    s.id = need(v, "id", Value::Kind::string, file, where, "a string").s;
    s.prompt = need(v, "prompt", Value::Kind::string, file, where, "a string").s;
    const Value& g = need(v, "gold", Value::Kind::object, file, where, "an object");
    s.gold.name = need(g, "name", Value::Kind::string, file, where + ": gold", "a string").s;
    s.gold.args = need(g, "arguments", Value::Kind::object, file, where + ": gold", "an object");
    out.push_back(std::move(s));
  });
  return out;
}

namespace bfcl_detail {
// A dict inside an acceptable value holds acceptable values per key (what BFCL's
// dict_checker reads): take each key's first value, leaving out keys that may be omitted.
inline Value first_acceptable(const Value& v) {
  if (v.is_object()) {
    Value out = Value::object();
    for (const auto& [k, vals] : v.members) {
      if (vals.is_list() && !vals.items.empty()) {
        if (is_empty_marker(vals.items[0])) continue;
        out.members.emplace_back(k, first_acceptable(vals.items[0]));
      } else {
        out.members.emplace_back(k, vals);
      }
    }
    return out;
  }
  if (v.is_list()) {
    Value out = Value::list();
    for (const auto& x : v.items) out.items.push_back(first_acceptable(x));
    return out;
  }
  return v;
}
}  // namespace bfcl_detail

// The output a model gives when every parameter takes its first acceptable value, in
// BFCL's Python-call syntax. A parameter whose first value is "" (may be omitted) is left
// out unless the function doc requires it; then it takes its first non-empty value, or ""
// when that is all there is. scripts/golden/make_bfcl_verdicts.py renders the same calls.
inline std::string render_gold_python(const std::vector<GoldCall>& gold, const std::vector<Value>& docs) {
  using namespace bfcl_detail;
  std::string out = "[";
  for (std::size_t k = 0; k < gold.size(); ++k) {
    if (k) out += ", ";
    out += gold[k].name + "(";
    const Value* doc = find_doc(docs, gold[k].name);
    if (!doc && !docs.empty()) doc = &docs[0];
    const Value* params = doc ? doc->find("parameters") : nullptr;
    const Value* required = params ? params->find("required") : nullptr;
    auto is_required = [&](const std::string& p) { return required && contains(required->items, Value::string(p)); };
    bool first = true;
    for (const auto& [p, vals] : gold[k].params.members) {
      if (vals.items.empty()) continue;
      const Value* chosen = &vals.items[0];
      if (is_empty_marker(*chosen)) {
        if (!is_required(p)) continue;
        for (const auto& x : vals.items)
          if (!is_empty_marker(x)) {
            chosen = &x;
            break;
          }
      }
      if (!first) out += ", ";
      first = false;
      out += p + "=" + to_python(first_acceptable(*chosen));
    }
    out += ")";
  }
  return out + "]";
}

}  // namespace kvcanary::task
