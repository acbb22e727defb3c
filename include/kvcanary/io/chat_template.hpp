#pragma once
// Chat templates without a Jinja engine. tokenizer_config.json's `chat_template` (or a GGUF's
// `tokenizer.chat_template`) is recognised as one of a few known templates by its fingerprint
// (the template text with whitespace outside string literals removed, so re-indented copies
// still match) and rendered by C++ code that reproduces transformers'
// `apply_chat_template(messages, tools=..., tokenize=False, add_generation_prompt=...)` byte for
// byte, tool definitions and tool-call turns included. A template that is not recognised is an
// Error, never a guess: a near-miss would silently prompt the model with the wrong format.
//
// Why fingerprints and not a Jinja subset interpreter: the models this project runs use five
// templates (SmolLM2 ChatML, plain ChatML, Llama-3, and the two Qwen2.5 ChatML tool templates:
// Qwen2.5-Instruct's, which the Qwen2.5-Coder-0.5B GGUF carries, and Qwen2.5-Coder's, which the
// 1.5B GGUF carries and which differs only in writing `{{"name": ...}}` with doubled braces in
// its tool instructions). Exactness is then a property the goldens check
// (tests/data/chat/, rendered by transformers on each template string), and an unknown
// template stops the run instead of being half-understood. An interpreter exact enough to be
// trusted on an unseen template would need Python's semantics for every filter, test, string
// method and truthiness rule the templates in the wild use; that surface could not be verified
// here, and a template the goldens do not cover would not be known to render right anyway.
// Adding a template = its text below + its fingerprint branch + goldens.
//
// Values inside the prompt (tool schemas, tool-call arguments) come in already serialised as
// the template's `tojson` filter writes them (transformers: json.dumps(x, ensure_ascii=False),
// default separators, keys in insertion order); task::jinja_tojson produces that text.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/io/json_reader.hpp"

namespace kvcanary::io {

// One call of an assistant turn: the function name and its arguments as `tojson` renders them.
struct ChatToolCall {
  std::string name;
  std::string arguments_json;
};

struct ChatMessage {
  std::string role, content;
  std::vector<ChatToolCall> tool_calls{};  // assistant turns only; empty = a plain text turn
};

enum class ChatFamily {
  SmolLM2,      // ChatML, default system prompt "You are a helpful AI assistant named SmolLM, ..."
  Qwen25,       // ChatML, default "You are Qwen, created by Alibaba Cloud. ...", tools, tool turns grouped
  Qwen25Coder,  // Qwen25 with `{{"name": <function-name>, ...}}` (doubled braces) in the tools instructions
  ChatML,       // ChatML without default system prompt
  Llama3,       // <|start_header_id|>role<|end_header_id|>\n\n content|trim <|eot_id|>, BOS first
};

namespace chat_detail {

inline constexpr std::string_view kSmolLM2System =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
inline constexpr std::string_view kQwen25System =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

// The known templates, as published in the models' tokenizer_config.json. SmolLM2's is the one
// in SmolLM2-135M-Instruct's GGUF metadata; Qwen2.5's was written from the published config and
// is, up to whitespace outside literals, the Qwen2.5-Coder-0.5B-Instruct GGUF's; Qwen2.5-Coder's
// is the 1.5B GGUF's; Llama-3's was written from the published config (no network access here).
inline constexpr std::string_view kSmolLM2Template =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% "
    "endif %}";

inline constexpr std::string_view kChatMLTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% "
    "endif %}";

inline constexpr std::string_view kLlama3Template =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content "
    "}}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' "
    "}}{% endif %}";

inline constexpr std::string_view kQwen25Template =
    "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n    {%- else %}\n"
    "        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n"
    "    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n"
    "    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n"
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": "
    "<args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n"
    "{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
    "assistant.<|im_end|>\\n' }}\n"
    "    {%- endif %}\n{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or "
    "(message.role == \"assistant\" and not message.tool_calls) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif %}\n"
    "        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function is defined %}\n"
    "                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n"
    "            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n"
    "            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson }}\n"
    "            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message.role == \"tool\" %}\n"
    "        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n"
    "            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n"
    "        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n"
    "            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n";

// Qwen2.5-Coder-Instruct's (the 1.5B GGUF's tokenizer.chat_template): Qwen2.5's with the braces
// of the example call doubled inside a string literal, so they render doubled.
inline constexpr std::string_view kQwen25CoderTemplate =
    "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n    {%- else %}\n"
    "        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n"
    "    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n"
    "    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n"
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{{\\\"name\\\": <function-name>, \\\"arguments\\\": "
    "<args-json-object>}}\\n</tool_call><|im_end|>\\n\" }}\n"
    "{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
    "assistant.<|im_end|>\\n' }}\n"
    "    {%- endif %}\n{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or "
    "(message.role == \"assistant\" and not message.tool_calls) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif %}\n"
    "        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function is defined %}\n"
    "                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n"
    "            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n"
    "            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson }}\n"
    "            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message.role == \"tool\" %}\n"
    "        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n"
    "            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n"
    "        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n"
    "            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n";

// ASCII whitespace outside '...' and "..." literals removed; literal text is kept, with a raw
// newline/tab inside a literal spelled as its escape, since Jinja renders both the same (the
// SmolLM2 GGUF carries raw newlines where the HF config has "\\n").
inline std::string fingerprint(std::string_view t) {
  std::string out;
  out.reserve(t.size());
  char quote = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (quote) {
      if (c == '\n' || c == '\t') {
        out += c == '\n' ? "\\n" : "\\t";
        continue;
      }
      out += c;
      if (c == '\\' && i + 1 < t.size()) {
        out += t[++i];
      } else if (c == quote) {
        quote = 0;
      }
      continue;
    }
    if (c == '\'' || c == '"') quote = c;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    out += c;
  }
  return out;
}

// Python str.strip() (Jinja's `trim` filter): the characters str.isspace() accepts.
inline bool py_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

inline char32_t decode_at(std::string_view s, std::size_t i, std::size_t& len) {
  const auto b = [&](std::size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[k])); };
  const char32_t c = b(i);
  if (c < 0x80 || i + 1 >= s.size()) return len = 1, c;
  if (c < 0xE0) return len = 2, ((c & 0x1F) << 6) | (b(i + 1) & 0x3F);
  if (c < 0xF0 && i + 2 < s.size()) return len = 3, ((c & 0x0F) << 12) | ((b(i + 1) & 0x3F) << 6) | (b(i + 2) & 0x3F);
  if (i + 3 < s.size())
    return len = 4, ((c & 0x07) << 18) | ((b(i + 1) & 0x3F) << 12) | ((b(i + 2) & 0x3F) << 6) | (b(i + 3) & 0x3F);
  return len = 1, c;
}

inline std::string_view py_strip(std::string_view s) {
  std::size_t begin = 0;
  while (begin < s.size()) {
    std::size_t len = 1;
    if (!py_space(decode_at(s, begin, len))) break;
    begin += len;
  }
  std::size_t end = s.size();
  while (end > begin) {
    std::size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    std::size_t len = 1;
    if (!py_space(decode_at(s, start, len))) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

// A tokenizer_config special token: a string, an AddedToken object {"content": ...}, or null.
inline std::string special_token(const json_detail::Reader& r, simdjson::dom::element root, std::string_view key) {
  auto v = r.opt(root, key);
  if (!v) return {};
  if (v->is_string()) return r.str(*v, std::string(key));
  if (v->is_object()) return r.str(*v, "content", std::string(key) + ".content");
  r.bad(std::string(key), "expected a string or an object with \"content\"");
}

}  // namespace chat_detail

class ChatTemplate {
 public:
  static ChatTemplate from_tokenizer_config(const std::filesystem::path& tokenizer_config_json) {
    simdjson::dom::parser parser;
    simdjson::padded_string storage;
    const auto root = json_detail::parse_file(tokenizer_config_json, parser, storage);
    const json_detail::Reader r(tokenizer_config_json.string());
    auto t = r.opt(root, "chat_template");
    if (!t) r.bad("chat_template", "missing: this model has no chat template");
    std::string text;
    if (t->is_string()) {
      text = r.str(*t, "chat_template");
    } else {
      // Several named templates: [{"name": "default", "template": "..."}, {"name": "tool_use", ...}].
      std::size_t i = 0;
      bool found = false;
      for (auto item : r.array(*t, "chat_template")) {
        const std::string f = "chat_template[" + std::to_string(i++) + "]";
        if (r.str(item, "name", f + ".name") == "default") {
          text = r.str(item, "template", f + ".template");
          found = true;
        }
      }
      if (!found) r.bad("chat_template", "no template named \"default\"");
    }
    return from_template(std::move(text), chat_detail::special_token(r, root, "bos_token"),
                         chat_detail::special_token(r, root, "eos_token"), r.file());
  }

  // `source` names where the template came from, for the error on an unknown template.
  static ChatTemplate from_template(std::string template_text, std::string bos_token, std::string eos_token,
                                    const std::string& source = "") {
    using namespace chat_detail;
    ChatTemplate c;
    const std::string fp = fingerprint(template_text);
    if (fp == fingerprint(kSmolLM2Template)) {
      c.family_ = ChatFamily::SmolLM2;
      c.default_system_ = kSmolLM2System;
    } else if (fp == fingerprint(kQwen25Template)) {
      c.family_ = ChatFamily::Qwen25;
      c.default_system_ = kQwen25System;
    } else if (fp == fingerprint(kQwen25CoderTemplate)) {
      c.family_ = ChatFamily::Qwen25Coder;
      c.default_system_ = kQwen25System;
    } else if (fp == fingerprint(kChatMLTemplate)) {
      c.family_ = ChatFamily::ChatML;
    } else if (fp == fingerprint(kLlama3Template)) {
      c.family_ = ChatFamily::Llama3;
    } else {
      fail(source, "chat_template",
           "unrecognised chat template (known: SmolLM2 ChatML, Qwen2.5 ChatML, Qwen2.5-Coder ChatML, plain ChatML, "
           "Llama-3); it starts " +
               std::string(template_text.substr(0, 80)));
    }
    c.template_ = std::move(template_text);
    c.bos_ = std::move(bos_token);
    c.eos_ = std::move(eos_token);
    return c;
  }

  // What apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=...)
  // renders. `tools` holds each tool's `tojson` text (empty: no tools, as the templates test
  // `if tools`). Tools or tool-call turns given to a template that has no place for them are an
  // Error: its Jinja would drop them silently.
  std::string render(std::span<const ChatMessage> messages, bool add_generation_prompt,
                     std::span<const std::string> tools = {}) const {
    if (!supports_tools()) {
      if (!tools.empty())
        fail("", "tools", "the " + std::string(family_name()) + " chat template has no tool definitions");
      for (const ChatMessage& m : messages)
        if (!m.tool_calls.empty())
          fail("", "messages", "the " + std::string(family_name()) + " chat template has no tool-call turns");
    }
    std::string out;
    switch (family_) {
      case ChatFamily::SmolLM2:
      case ChatFamily::ChatML:
        for (std::size_t i = 0; i < messages.size(); ++i) {
          if (i == 0 && !default_system_.empty() && messages[0].role != "system")
            chatml_turn(out, "system", default_system_);
          chatml_turn(out, messages[i].role, messages[i].content);
        }
        if (add_generation_prompt) out += "<|im_start|>assistant\n";
        break;
      case ChatFamily::Qwen25:
      case ChatFamily::Qwen25Coder:
        render_qwen25(out, messages, tools);
        if (add_generation_prompt) out += "<|im_start|>assistant\n";
        break;
      case ChatFamily::Llama3:
        for (std::size_t i = 0; i < messages.size(); ++i) {
          if (i == 0) out += bos_;
          out += "<|start_header_id|>";
          out += messages[i].role;
          out += "<|end_header_id|>\n\n";
          out += chat_detail::py_strip(messages[i].content);
          out += "<|eot_id|>";
        }
        if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
        break;
    }
    return out;
  }

  // Whether the template renders `tools` and assistant `tool_calls` (the native tool-calling
  // prompt format of docs/TASKS.md).
  bool supports_tools() const noexcept { return family_ == ChatFamily::Qwen25 || family_ == ChatFamily::Qwen25Coder; }

  ChatFamily family() const noexcept { return family_; }
  std::string_view family_name() const noexcept {
    switch (family_) {
      case ChatFamily::SmolLM2: return "ChatML-SmolLM2";
      case ChatFamily::Qwen25: return "ChatML-Qwen2.5";
      case ChatFamily::Qwen25Coder: return "ChatML-Qwen2.5-Coder";
      case ChatFamily::ChatML: return "ChatML";
      case ChatFamily::Llama3: return "Llama-3";
    }
    return "";
  }
  const std::string& bos_token() const noexcept { return bos_; }
  const std::string& eos_token() const noexcept { return eos_; }
  const std::string& template_text() const noexcept { return template_; }
  // Inserted when the conversation does not start with a system message; empty if none.
  std::string_view default_system_prompt() const noexcept { return default_system_; }

 private:
  static void chatml_turn(std::string& out, std::string_view role, std::string_view content) {
    out += "<|im_start|>";
    out += role;
    out += '\n';
    out += content;
    out += "<|im_end|>\n";
  }

  // Qwen2.5: the system turn first (given or default; with tools, followed by the tool
  // instructions and one `tojson` line per tool); user, later system and plain assistant turns
  // verbatim; an assistant turn with tool calls as its text (if any) and one <tool_call> block
  // per call; consecutive tool results grouped into one user turn of <tool_response> blocks; any
  // other role renders nothing, as in the template.
  void render_qwen25(std::string& out, std::span<const ChatMessage> messages,
                     std::span<const std::string> tools) const {
    if (messages.empty()) fail("", "messages", "the Qwen2.5 template reads messages[0]: empty conversation");
    const std::string_view system =
        messages[0].role == "system" ? std::string_view(messages[0].content) : default_system_;
    if (tools.empty()) {
      chatml_turn(out, "system", system);
    } else {
      out += "<|im_start|>system\n";
      out += system;
      out +=
          "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
          "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
      for (const std::string& t : tools) {
        out += '\n';
        out += t;
      }
      out +=
          "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
          "<tool_call></tool_call> XML tags:\n<tool_call>\n";
      out += family_ == ChatFamily::Qwen25Coder ? "{{\"name\": <function-name>, \"arguments\": <args-json-object>}}"
                                                : "{\"name\": <function-name>, \"arguments\": <args-json-object>}";
      out += "\n</tool_call><|im_end|>\n";
    }
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const ChatMessage& m = messages[i];
      if (m.role == "user" || (m.role == "system" && i != 0) || (m.role == "assistant" && m.tool_calls.empty())) {
        chatml_turn(out, m.role, m.content);
      } else if (m.role == "assistant") {
        out += "<|im_start|>assistant";
        if (!m.content.empty()) {
          out += '\n';
          out += m.content;
        }
        for (const ChatToolCall& c : m.tool_calls) {
          out += "\n<tool_call>\n{\"name\": \"";
          out += c.name;
          out += "\", \"arguments\": ";
          out += c.arguments_json;
          out += "}\n</tool_call>";
        }
        out += "<|im_end|>\n";
      } else if (m.role == "tool") {
        if (i == 0 || messages[i - 1].role != "tool") out += "<|im_start|>user";
        out += "\n<tool_response>\n";
        out += m.content;
        out += "\n</tool_response>";
        if (i + 1 == messages.size() || messages[i + 1].role != "tool") out += "<|im_end|>\n";
      }
    }
  }

  ChatFamily family_ = ChatFamily::ChatML;
  std::string template_, bos_, eos_;
  std::string_view default_system_;
};

}  // namespace kvcanary::io
