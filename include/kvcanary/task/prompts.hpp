#pragma once
// How a functional sample becomes chat messages, and how a completion becomes something to
// score. Everything here is a pure function of its arguments (no clocks, no global RNG), so a
// prompt is reproducible from (sample, format, distractor tokens, seed) and prompt_hash names it.
// The wording is fixed in docs/TASKS.md ("Prompting"); changing it changes every hash.

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/core/splitmix64.hpp"
#include "kvcanary/io/chat_template.hpp"
#include "kvcanary/io/config_table.hpp"
#include "kvcanary/io/tokenizer.hpp"
#include "kvcanary/io/utf8.hpp"
#include "kvcanary/task/humaneval.hpp"
#include "kvcanary/task/tool_call_parse.hpp"
#include "kvcanary/task/tool_call_score.hpp"
#include "kvcanary/task/value.hpp"

namespace kvcanary::task {

// ---------------------------------------------------------------- HumanEval

inline constexpr std::string_view kHumanEvalInstruction =
    "Complete the following Python function. Respond with the complete function (signature and body) "
    "in a single ```python code block.\n\n";

inline std::vector<io::ChatMessage> humaneval_messages(const HumanEvalProblem& p) {
  std::string user(kHumanEvalInstruction);
  user += "```python\n" + p.prompt;
  if (!p.prompt.empty() && p.prompt.back() != '\n') user += '\n';
  user += "```";
  return {{"user", std::move(user)}};
}

// The first ```python (or ```py) block, else the first ``` block of any language. A fence
// still open when the text ends (generation hit its token cap) yields the rest of the text,
// so truncation costs the tail of the program and not the whole of it. No fence: the raw text
// (the model may have answered with bare code).
inline std::string extract_code(const std::string& completion) {
  auto block_at = [&](std::size_t fence) {
    std::size_t start = completion.find('\n', fence);
    if (start == std::string::npos) return std::string();  // only the opening fence survived
    ++start;
    std::size_t end = completion.find("```", start);
    if (end == std::string::npos) return completion.substr(start);
    return completion.substr(start, end - start);
  };
  auto lang_is_python = [&](std::size_t fence) {
    std::size_t b = fence + 3, e = completion.find('\n', b);
    if (e == std::string::npos) e = completion.size();
    std::string lang = completion.substr(b, e - b);
    while (!lang.empty() && (lang.back() == ' ' || lang.back() == '\r' || lang.back() == '\t')) lang.pop_back();
    for (auto& c : lang) c = char(std::tolower(static_cast<unsigned char>(c)));
    return lang == "python" || lang == "py" || lang == "python3";
  };
  // Walk fences pairwise so a closing fence is never mistaken for an opening one.
  std::size_t first_any = std::string::npos, pos = 0;
  while (true) {
    std::size_t open = completion.find("```", pos);
    if (open == std::string::npos) break;
    if (first_any == std::string::npos) first_any = open;
    if (lang_is_python(open)) return block_at(open);
    std::size_t nl = completion.find('\n', open);
    if (nl == std::string::npos) break;
    std::size_t close = completion.find("```", nl + 1);
    if (close == std::string::npos) break;
    pos = close + 3;
  }
  if (first_any != std::string::npos) return block_at(first_any);
  return completion;
}

namespace prompt_detail {
// Offset of `def <name>(` (whitespace allowed around the name) at a line start, or npos.
inline std::size_t find_def(const std::string& code, const std::string& name) {
  std::size_t pos = 0;
  while ((pos = code.find("def ", pos)) != std::string::npos) {
    const bool line_start = pos == 0 || code[pos - 1] == '\n' || code[pos - 1] == ' ' || code[pos - 1] == '\t';
    std::size_t k = pos + 4;
    while (k < code.size() && (code[k] == ' ' || code[k] == '\t')) ++k;
    if (line_start && code.compare(k, name.size(), name) == 0) {
      k += name.size();
      while (k < code.size() && (code[k] == ' ' || code[k] == '\t')) ++k;
      if (k < code.size() && code[k] == '(') return pos;
    }
    pos += 4;
  }
  return std::string::npos;
}
}  // namespace prompt_detail

// A completion that defines the entry point is a whole function; one that does not continues
// the prompt (HumanEval's own rule). A whole function gets the prompt's text before the entry
// point's `def` (its imports, and the helper functions some prompts define and the entry point
// calls, e.g. HumanEval/10, /38, /50), then the code, the test and check(entry_point).
inline std::string humaneval_completion_program(const HumanEvalProblem& p, const std::string& completion) {
  const std::string code = extract_code(completion);
  if (prompt_detail::find_def(code, p.entry_point) == std::string::npos) return humaneval_program(p, code);
  std::size_t def = prompt_detail::find_def(p.prompt, p.entry_point);
  std::string prefix = def == std::string::npos ? std::string() : p.prompt.substr(0, def);
  if (!prefix.empty() && prefix.back() != '\n') prefix += '\n';
  return prefix + code + "\n" + p.test + "\n" + "check(" + p.entry_point + ")\n";
}

// The canonical solution written the way the model is asked to answer (paired gold perplexity).
inline std::string humaneval_gold_completion_text(const HumanEvalProblem& p) {
  return "```python\n" + p.prompt + p.canonical_solution + (p.canonical_solution.ends_with('\n') ? "" : "\n") + "```";
}

// ---------------------------------------------------------------- tool calls

enum class ToolFormat {
  Json,    // {"name": ..., "arguments": {...}}; a JSON list of those for several calls
  Python,  // [func(a=1), other(b="x")]: BFCL's own prompting format
};

namespace prompt_detail {
// json.dumps(indent=2)-style, keys in source order: the docs as the dataset gives them.
inline void pretty(std::string& out, const Value& v, int depth) {
  const std::string pad(std::size_t(depth + 1) * 2, ' '), close_pad(std::size_t(depth) * 2, ' ');
  if ((v.is_list() || v.kind == Value::Kind::tuple) && !v.items.empty()) {
    out += "[\n";
    for (std::size_t k = 0; k < v.items.size(); ++k) {
      out += pad;
      pretty(out, v.items[k], depth + 1);
      out += k + 1 < v.items.size() ? ",\n" : "\n";
    }
    out += close_pad + "]";
  } else if (v.is_object() && !v.members.empty()) {
    out += "{\n";
    for (std::size_t k = 0; k < v.members.size(); ++k) {
      out += pad;
      detail::append_quoted(out, v.members[k].first, '"');
      out += ": ";
      pretty(out, v.members[k].second, depth + 1);
      out += k + 1 < v.members.size() ? ",\n" : "\n";
    }
    out += close_pad + "}";
  } else {
    out += to_json(v);
  }
}

inline std::string call_json(const ToolCall& c) {
  return "{\"name\": " + to_json(Value::string(c.name)) + ", \"arguments\": " + to_json(c.args) + "}";
}
}  // namespace prompt_detail

inline std::string pretty_json(const Value& v) {
  std::string s;
  prompt_detail::pretty(s, v, 0);
  return s;
}

inline std::string tool_system_prompt(const std::vector<Value>& functions, ToolFormat fmt) {
  std::string s =
      "You are an expert in composing functions. You are given a question and a set of possible functions. "
      "Based on the question, you will need to make one or more function calls to achieve the purpose.\n\n"
      "Here is a list of functions in JSON format that you can invoke:\n";
  s += pretty_json(Value::list(functions));
  s += "\n\n";
  if (fmt == ToolFormat::Python)
    s += "Respond with the function call(s) only, in the format "
         "[func_name1(param_name1=value1, param_name2=value2), func_name2(param=value)]. "
         "Do not include any other text.";
  else
    s += "Respond with the function call(s) only, as a JSON object {\"name\": \"func_name\", \"arguments\": "
         "{\"param_name\": value}}, or a JSON list of such objects for several calls. "
         "Do not include any other text.";
  return s;
}

// BFCL stores turns as a list of lists (one list per conversation step); single-turn categories
// hold one. A system turn in the data is merged after ours, as BFCL does, so the model sees one.
inline std::vector<io::ChatMessage> bfcl_messages(const BfclQuestion& q, ToolFormat fmt) {
  std::vector<io::ChatMessage> out{{"system", tool_system_prompt(q.functions, fmt)}};
  auto add = [&](const Value& turn) {
    const Value* role = turn.find("role");
    const Value* content = turn.find("content");
    if (!role || !content || !role->is_string() || !content->is_string()) return;
    if (role->s == "system")
      out[0].content += "\n\n" + content->s;
    else
      out.push_back({role->s, content->s});
  };
  for (const auto& step : q.question.items) {
    if (step.is_object())
      add(step);
    else
      for (const auto& turn : step.items) add(turn);
  }
  return out;
}

// The prototype's prompts already carry their tool description and answer format; verbatim, so
// results stay comparable with the prototype.
inline std::vector<io::ChatMessage> seed_messages(const SeedSample& s) { return {{"user", s.prompt}}; }

// The gold call(s) exactly as the model is asked to emit them. Values are render_gold_python's
// choice (first acceptable value, optional parameters left out), so both formats name the same call.
inline std::string gold_completion_text(const std::vector<GoldCall>& gold, const std::vector<Value>& docs,
                                        ToolFormat fmt) {
  const std::string py = render_gold_python(gold, docs);
  if (fmt == ToolFormat::Python) return py;
  const ParseResult parsed = parse_tool_calls(py);
  if (parsed.calls.size() == 1) return prompt_detail::call_json(parsed.calls[0]);
  std::string s = "[";
  for (std::size_t k = 0; k < parsed.calls.size(); ++k)
    s += (k ? ", " : "") + prompt_detail::call_json(parsed.calls[k]);
  return s + "]";
}

inline std::string gold_completion_text(const SeedSample& s) { return prompt_detail::call_json(s.gold); }

// ---------------------------------------------------------------- native tool calling

// How a tool-calling task states its functions and reads the answer (config key
// `prompt_format`, docs/TASKS.md "Prompting"):
//   Native: the functions go into the chat template's `tools` (Qwen2.5: a JSON line each in the
//           system turn), the question is the user turn, and the model answers with
//           <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call> blocks, one per call,
//           parsed as BFCL parses a "FC" model (parse_native_tool_calls);
//   Text:   the functions and the answer format are written into our own system prompt
//           (tool_system_prompt) and calls are parsed from free text (parse_tool_calls).
enum class PromptFormat { Native, Text };

// The config value, default `text` for every model. Native is measured, not assumed: on
// Qwen2.5-Coder-0.5B-Instruct, whose template renders tools, the native format scored 0 of the
// prototype's 12 tool calls (text: 6/6 in the first probe) because the model answers in a ```json fence instead
// of the <tool_call> tags BFCL's FC handler reads (docs/RESULTS.md, configs/baseline-qwen0.5b.toml).
inline PromptFormat prompt_format_from_config(const io::ConfigTable& t, const io::ChatTemplate* chat_template) {
  const bool native_ok = chat_template && chat_template->supports_tools();
  const std::string given = t.get_string("prompt_format", "text");
  if (given == "text") return PromptFormat::Text;
  if (given != "native") t.fail_at("prompt_format", "must be native or text, not '" + given + "'");
  if (!native_ok)
    t.fail_at("prompt_format", std::string("native needs a chat template that renders tools; this model's (") +
                                   (chat_template ? std::string(chat_template->family_name()) : "none") + ") does not");
  return PromptFormat::Native;
}

// An assistant turn's call as the template's tool_calls entry: {"name", "arguments"}, possibly
// under "function" (OpenAI's shape), arguments rendered by `tojson` (a string stays a string).
inline io::ChatToolCall chat_tool_call(const Value& call) {
  const Value* c = &call;
  if (const Value* f = call.find("function")) c = f;
  const Value* name = c->find("name");
  const Value* args = c->find("arguments");
  return {name && name->is_string() ? name->s : std::string(), args ? jinja_tojson(*args) : std::string("null")};
}

// The gold call(s) as the native format has the model write them: what the template renders
// after "<|im_start|>assistant\n" for an assistant turn with these tool_calls and no text.
// (So a k-shot example written as a plain assistant turn with this text renders byte for byte
// like the template's tool-call turn.)
inline std::string native_calls_text(const std::vector<ToolCall>& calls) {
  std::string s;
  for (std::size_t k = 0; k < calls.size(); ++k) {
    if (k) s += '\n';
    s += "<tool_call>\n{\"name\": \"" + calls[k].name + "\", \"arguments\": " + jinja_tojson(calls[k].args) +
         "}\n</tool_call>";
  }
  return s;
}

// BFCL as it prompts a Qwen "FC" model (bfcl_eval QwenFCHandler): the function docs verbatim as
// the template's tools, no system prompt of ours (the template's default stands), the dataset's
// own system turns merged into one leading system turn.
inline std::vector<io::ChatMessage> bfcl_native_messages(const BfclQuestion& q) {
  std::vector<io::ChatMessage> out;
  std::string system;
  auto add = [&](const Value& turn) {
    const Value* role = turn.find("role");
    const Value* content = turn.find("content");
    if (!role || !content || !role->is_string() || !content->is_string()) return;
    if (role->s == "system")
      system += (system.empty() ? "" : "\n\n") + content->s;
    else
      out.push_back({role->s, content->s});
  };
  for (const auto& step : q.question.items) {
    if (step.is_object())
      add(step);
    else
      for (const auto& turn : step.items) add(turn);
  }
  if (!system.empty()) out.insert(out.begin(), io::ChatMessage{"system", system});
  return out;
}

inline std::vector<std::string> native_tools(const std::vector<Value>& functions) {
  std::vector<std::string> out;
  for (const Value& f : functions) out.push_back(jinja_tojson(f));
  return out;
}

inline std::string bfcl_native_gold_text(const std::vector<GoldCall>& gold, const std::vector<Value>& docs) {
  return native_calls_text(parse_tool_calls(render_gold_python(gold, docs)).calls);
}

// A prototype sample ("Tool available: NAME(p: type, ...). Respond with ONLY a JSON object ...}}
// REQUEST") in the native format: the signature becomes a tool schema (the shape transformers'
// get_json_schema gives a function: {"type": "function", "function": {"name", "parameters"}}),
// the answer-format sentence is dropped, and the request becomes the user turn "Make the function
// call REQUEST". Nullopt when the prompt does not have that shape.
struct NativeSeedPrompt {
  std::vector<io::ChatMessage> messages;
  std::vector<std::string> tools;
};
inline std::optional<NativeSeedPrompt> seed_native_prompt(const SeedSample& s) {
  static constexpr std::string_view head = "Tool available: ";
  const std::string& p = s.prompt;
  if (!p.starts_with(head)) return std::nullopt;
  const std::size_t lp = p.find('(', head.size()), rp = p.find(')', head.size());
  if (lp == std::string::npos || rp == std::string::npos || rp < lp) return std::nullopt;
  const std::size_t fmt = p.find("Respond with", rp), req = p.find("}} ", rp);
  if (fmt == std::string::npos || req == std::string::npos || req < fmt) return std::nullopt;
  const std::string name = p.substr(head.size(), lp - head.size());
  Value properties = Value::object(), required = Value::list();
  std::string params = p.substr(lp + 1, rp - lp - 1);
  std::size_t pos = 0;
  while (pos < params.size()) {
    std::size_t comma = params.find(',', pos);
    if (comma == std::string::npos) comma = params.size();
    const std::string item = params.substr(pos, comma - pos);
    const std::size_t colon = item.find(':');
    if (colon == std::string::npos) return std::nullopt;
    auto trim = [](std::string x) {
      while (!x.empty() && x.front() == ' ') x.erase(0, 1);
      while (!x.empty() && x.back() == ' ') x.pop_back();
      return x;
    };
    const std::string pname = trim(item.substr(0, colon)), ptype = trim(item.substr(colon + 1));
    if (pname.empty() || ptype.empty()) return std::nullopt;
    properties.members.emplace_back(pname, Value::object({{"type", Value::string(ptype)}}));
    required.items.push_back(Value::string(pname));
    pos = comma + 1;
  }
  const Value tool = Value::object(
      {{"type", Value::string("function")},
       {"function", Value::object({{"name", Value::string(name)},
                                   {"parameters", Value::object({{"type", Value::string("object")},
                                                                 {"properties", std::move(properties)},
                                                                 {"required", std::move(required)}})}})}});
  NativeSeedPrompt out;
  out.messages.push_back({"user", "Make the function call " + p.substr(req + 3)});
  out.tools.push_back(jinja_tojson(tool));
  return out;
}

inline std::string seed_native_gold_text(const SeedSample& s) { return native_calls_text({s.gold}); }

// ---------------------------------------------------------------- distractor preamble

inline constexpr std::string_view kDistractorHead = "The following text is unrelated context.\n";
inline constexpr std::string_view kDistractorTail = "\n\nNow the task:\n";

// About n tokens of `source_text` from a seed-chosen line start: what the compressor has to
// carry past before it reaches the task. The result re-encodes to at most n tokens (checked,
// not assumed: BPE merges differ at a cut), and never ends inside a UTF-8 character.
inline std::string distractor_preamble(std::size_t n_tokens, const io::Tokenizer& tok, const std::string& source_text,
                                       std::uint64_t seed) {
  if (n_tokens == 0 || source_text.empty()) return {};
  const std::uint64_t z = splitmix64(seed);  // one well-mixed draw from the seed
  // Leave room for the text after the start; ~4 bytes a token is generous for English.
  const std::size_t want_bytes = n_tokens * 8 + 64;
  const std::size_t span = source_text.size() > want_bytes ? source_text.size() - want_bytes : 1;
  std::size_t start = std::size_t(z % span);
  if (start > 0) {
    std::size_t nl = source_text.find('\n', start);
    start = nl == std::string::npos ? 0 : nl + 1;
  }
  while (start < source_text.size() && (source_text[start] == '\n' || source_text[start] == ' ')) ++start;
  std::string chunk = source_text.substr(start, want_bytes);
  if (chunk.size() < want_bytes) chunk += "\n" + source_text.substr(0, want_bytes - chunk.size());
  // A byte cut can land inside a multi-byte character: end the chunk before it (WikiText has
  // them — "€", "é" — and a short preamble's 72-byte cut found one).
  if (const std::size_t bad = io::utf8::first_invalid(chunk); bad != io::utf8::npos) chunk.resize(bad);

  std::vector<std::int32_t> ids = tok.encode(chunk);
  if (ids.size() > n_tokens) ids.resize(n_tokens);
  while (!ids.empty()) {
    std::string text = tok.decode(ids);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\n')) text.pop_back();
    const bool broken =
        text.find("\xEF\xBF\xBD") != std::string::npos && chunk.find("\xEF\xBF\xBD") == std::string::npos;
    if (!broken && tok.encode(text).size() <= n_tokens) return text;
    ids.pop_back();
  }
  return {};
}

// Prepends the preamble to the first user turn; an empty preamble leaves the messages as they are.
inline std::vector<io::ChatMessage> with_distractor(std::vector<io::ChatMessage> messages,
                                                    const std::string& preamble) {
  if (preamble.empty()) return messages;
  for (auto& m : messages)
    if (m.role == "user") {
      m.content = std::string(kDistractorHead) + preamble + std::string(kDistractorTail) + m.content;
      break;
    }
  return messages;
}

// ---------------------------------------------------------------- identity

// FNV-1a 64 of the rendered prompt, 16 hex digits: names a prompt in results without storing it.
inline std::string prompt_hash(std::string_view rendered) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : rendered) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace kvcanary::task
