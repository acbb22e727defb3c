// The native tool-calling prompt format (task/prompts.hpp PromptFormat::Native): <tool_call>
// blocks parsed as BFCL parses a Qwen "FC" model's output; `tojson` text equal to Python's
// json.dumps; a BFCL entry and a prototype tool call rendered through a tiny model directory
// whose tokenizer_config.json holds the Qwen2.5-Coder template, equal to what transformers
// renders (scripts/golden/make_qwen_chat_goldens.py), and scored by the AST checker; the
// prompt_format key's default and errors.

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "kvcanary/io/chat_template.hpp"
#include "kvcanary/io/config_table.hpp"
#include "kvcanary/run/config.hpp"
#include "kvcanary/task/bfcl_task.hpp"
#include "kvcanary/task/prompts.hpp"
#include "kvcanary/task/seed_tool_task.hpp"
#include "kvcanary/task/tool_call_parse.hpp"
#include "../support/resources.hpp"
#include "../support/temp_dir.hpp"

using namespace kvcanary;
namespace fs = std::filesystem;

namespace {

const fs::path kData = fs::path(KVCANARY_TEST_DATA_DIR);
const fs::path kSeed = fs::path(KVCANARY_SOURCE_DIR) / "configs" / "data" / "seed_tool_calls.jsonl";

template <class T>
T build(const std::string& toml_text, const task::TaskContext& ctx) {
  const toml::table t = io::parse_toml_string(toml_text, "t.toml");
  return T::from_config(io::ConfigTable(t, "t.toml", "tasks[0]"), ctx);
}

task::TaskContext context_with(const io::ChatTemplate* tmpl) {
  task::TaskContext ctx{kData, nullptr, {}};
  ctx.chat_template = [tmpl]() { return tmpl; };
  return ctx;
}

std::string bfcl_toml(const std::string& extra = "") {
  return "category = \"parallel\"\nquestions = \"" + (kData / "toolcall/bfcl_native_questions.jsonl").string() +
         "\"\nanswers = \"" + (kData / "toolcall/bfcl_native_answers.jsonl").string() + "\"\n" + extra;
}

}  // namespace

TEST_CASE("native tool calls: <tool_call> blocks parsed as BFCL parses an FC model") {
  SUBCASE("one well-formed block") {
    const auto r = task::parse_native_tool_calls(
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3}}\n</tool_call>");
    REQUIRE(r.calls.size() == 1);
    CHECK(r.calls[0].name == "get_weather");
    CHECK(task::to_json(r.calls[0].args) == "{\"city\": \"Paris\", \"days\": 3}");
    CHECK(r.json_valid);
  }
  SUBCASE("several blocks (parallel calls), text around them ignored") {
    const auto r = task::parse_native_tool_calls(
        "Sure!\n<tool_call>\n{\"name\": \"spotify.play\", \"arguments\": {\"artist\": \"Taylor Swift\", \"duration\": "
        "20}}\n"
        "</tool_call>\n<tool_call>\n{\"name\": \"spotify.play\", \"arguments\": {\"artist\": \"Maroon 5\", "
        "\"duration\": 15}}\n"
        "</tool_call>\nAnything else?");
    REQUIRE(r.calls.size() == 2);
    CHECK(r.calls[0].args.find("artist")->s == "Taylor Swift");
    CHECK(r.calls[1].args.find("duration")->i == 15);
  }
  SUBCASE("a block with malformed JSON is skipped, the others count") {
    const auto r = task::parse_native_tool_calls(
        "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1,}}\n</tool_call>\n"
        "<tool_call>\n{\"name\": \"g\", \"arguments\": {}}\n</tool_call>");
    REQUIRE(r.calls.size() == 1);
    CHECK(r.calls[0].name == "g");
  }
  SUBCASE("only malformed JSON: no call, not JSON") {
    const auto r =
        task::parse_native_tool_calls("<tool_call>\n{\"name\": \"f\", \"arguments\": {'a': 1}}\n</tool_call>");
    CHECK(r.calls.empty());
    CHECK_FALSE(r.json_valid);
  }
  SUBCASE("a block still open when the output ends (truncated) is no call") {
    const auto r = task::parse_native_tool_calls(
        "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"g\", "
        "\"arguments\": {\"x\": 1}}");
    REQUIRE(r.calls.size() == 1);
    CHECK(r.calls[0].name == "f");
  }
  SUBCASE("JSON that is not a call makes the whole answer undecodable, as in BFCL") {
    const auto r = task::parse_native_tool_calls(
        "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n[1, 2]\n</tool_call>");
    CHECK(r.calls.empty());
    CHECK(r.json_valid);
    CHECK(task::parse_native_tool_calls("<tool_call>\n{\"name\": \"f\", \"arguments\": \"{}\"}\n</tool_call>")
              .calls.empty());
  }
  SUBCASE("the block's newlines are part of the format; a bare JSON call is not a native call") {
    CHECK(task::parse_native_tool_calls("<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>").calls.empty());
    CHECK(task::parse_native_tool_calls("{\"name\": \"f\", \"arguments\": {}}").calls.empty());
    CHECK(task::parse_native_tool_calls("").calls.empty());
  }
}

TEST_CASE("native tool calls: jinja_tojson writes what Python's json.dumps writes") {
  // Right-hand sides: json.dumps(x, ensure_ascii=False) in CPython 3.11.
  const auto dumps = [](const std::string& json) { return task::jinja_tojson(*task::parse_json(json)); };
  CHECK(dumps("{\"a\":1,\"b\":[true,false,null],\"c\":{}}") == "{\"a\": 1, \"b\": [true, false, null], \"c\": {}}");
  CHECK(dumps("[0.5, 1e-05, 1e16, 1e15, 0.0001, 100.0, -2.5e-7, 1.0, 123456789.125, 0.1, 1e22, 5e-324]") ==
        "[0.5, 1e-05, 1e+16, 1000000000000000.0, 0.0001, 100.0, -2.5e-07, 1.0, 123456789.125, 0.1, 1e+22, 5e-324]");
  CHECK(dumps("[0.3333333333333333, 1.7976931348623157e308, -0.0, 2.5e-5]") ==
        "[0.3333333333333333, 1.7976931348623157e+308, -0.0, 2.5e-05]");
  CHECK(dumps("\"q\\\" b\\\\ n\\n r\\r t\\t b\\b f\\f \\u0001 \\u001f \\u007f é 😀\"") ==
        "\"q\\\" b\\\\ n\\n r\\r t\\t b\\b f\\f \\u0001 \\u001f \x7f é 😀\"");
  CHECK(dumps("-12345678901234") == "-12345678901234");
}

TEST_CASE("native tool calls: a BFCL entry renders through the Qwen2.5-Coder template exactly as transformers does") {
  test::TempDir tmp;
  // A tiny model directory: only what the prompt needs, the template from the 1.5B GGUF.
  fs::copy_file(kData / "chat/qwen2.5-coder-1.5b.tokenizer_config.json", tmp.path / "tokenizer_config.json");
  const io::ChatTemplate tmpl = io::ChatTemplate::from_tokenizer_config(tmp.path / "tokenizer_config.json");
  REQUIRE(tmpl.supports_tools());

  const auto t = build<task::BfclTask>(bfcl_toml("prompt_format = \"native\"\n"), context_with(&tmpl));
  CHECK(t.prompt_format() == task::PromptFormat::Native);
  REQUIRE(t.samples().size() == 2);
  std::ifstream golden(kData / "toolcall/bfcl_native_prompts.jsonl");
  std::string line;
  for (std::size_t i = 0; i < 2; ++i) {
    REQUIRE(std::getline(golden, line));
    const auto g = task::parse_json(line);
    REQUIRE(g);
    const auto& s = t.samples()[i];
    CAPTURE(s.id);
    CHECK(s.id == g->find("id")->s);
    CHECK(tmpl.render(s.messages, true, s.tools) == g->find("prompt_1.5b")->s);
    CHECK(s.gold == g->find("gold")->s);
    const auto v = t.score(i, s.gold);
    CHECK(v.scores.at("functional") == 1);
    CHECK(v.scores.at("json_valid") == 1);
    CHECK(v.scores.at("func_correct") == 1);
    // Truncated before the last block closes: the call is missing, the AST check fails.
    const auto cut = t.score(i, s.gold.substr(0, s.gold.size() - 3));
    CHECK(cut.scores.at("functional") == 0);
  }
  // The same answer in the text format's syntax is not a native call.
  CHECK(t.score(0, "[calculate_triangle_area(base=10, height=5)]").scores.at("functional") == 0);

  SUBCASE("the 0.5B GGUF's template (Qwen2.5-Instruct's) renders the same entry as transformers does") {
    const io::ChatTemplate t05 =
        io::ChatTemplate::from_tokenizer_config(kData / "chat/qwen2.5-coder-0.5b.tokenizer_config.json");
    const auto t2 = build<task::BfclTask>(bfcl_toml("prompt_format = \"native\"\n"), context_with(&t05));
    std::ifstream g2(kData / "toolcall/bfcl_native_prompts.jsonl");
    REQUIRE(std::getline(g2, line));
    CHECK(t05.render(t2.samples()[0].messages, true, t2.samples()[0].tools) ==
          task::parse_json(line)->find("prompt_0.5b")->s);
  }
  SUBCASE("prompt_format = \"text\" keeps the current prompt: our system prompt, no tools") {
    const auto text = build<task::BfclTask>(bfcl_toml("prompt_format = \"text\"\n"), context_with(&tmpl));
    CHECK(text.prompt_format() == task::PromptFormat::Text);
    CHECK(text.samples()[0].tools.empty());
    CHECK(text.samples()[0].messages[0].role == "system");
    CHECK(text.score(0, text.samples()[0].gold).scores.at("functional") == 1);
  }
  SUBCASE("one-shot examples render as the template's tool-call turns") {
    const auto shot = build<task::BfclTask>(bfcl_toml("prompt_format = \"native\"\nshots = 1\n"), context_with(&tmpl));
    const auto& m = shot.samples()[0].messages;
    REQUIRE(m.size() == 3);
    std::vector<io::ChatMessage> as_calls = m;
    as_calls[1] = {"assistant",
                   "",
                   {{"spotify.play", "{\"artist\": \"Taylor Swift\", \"duration\": 20}"},
                    {"spotify.play", "{\"artist\": \"Maroon 5\", \"duration\": 15}"}}};
    CHECK(tmpl.render(m, true, shot.samples()[0].tools) == tmpl.render(as_calls, true, shot.samples()[0].tools));
  }
}

TEST_CASE("native tool calls: prompt_format default and errors") {
  const io::ChatTemplate smol = io::ChatTemplate::from_tokenizer_config(kData / "chat/smollm2.tokenizer_config.json");
  const io::ChatTemplate qwen =
      io::ChatTemplate::from_tokenizer_config(kData / "chat/qwen2.5-coder-0.5b.tokenizer_config.json");
  // The default is the text format, also where the template renders tools (measured: Qwen2.5-Coder-0.5B
  // answers the native prompt in a ```json fence, docs/RESULTS.md).
  CHECK(build<task::BfclTask>(bfcl_toml(), context_with(&qwen)).prompt_format() == task::PromptFormat::Text);
  CHECK(build<task::BfclTask>(bfcl_toml("prompt_format = \"native\"\n"), context_with(&qwen)).prompt_format() ==
        task::PromptFormat::Native);
  CHECK(build<task::BfclTask>(bfcl_toml(), context_with(&smol)).prompt_format() == task::PromptFormat::Text);
  CHECK(build<task::BfclTask>(bfcl_toml(), task::TaskContext{kData, nullptr, {}}).prompt_format() ==
        task::PromptFormat::Text);
  CHECK_THROWS_WITH_AS(
      build<task::BfclTask>(bfcl_toml("prompt_format = \"native\"\n"), context_with(&smol)),
      doctest::Contains("t.toml: tasks[0].prompt_format: native needs a chat template that renders tools"), Error);
  CHECK_THROWS_WITH_AS(build<task::BfclTask>(bfcl_toml("prompt_format = \"fc\"\n"), context_with(&qwen)),
                       doctest::Contains("tasks[0].prompt_format: must be native or text"), Error);
  CHECK_THROWS_WITH_AS(
      build<task::BfclTask>(bfcl_toml("prompt_format = \"native\"\nformat = \"json\"\n"), context_with(&qwen)),
      doctest::Contains("tasks[0].format: applies to prompt_format = \"text\" only"), Error);
  CHECK(build<task::BfclTask>(bfcl_toml("prompt_format = \"text\"\nformat = \"json\"\n"), context_with(&qwen))
            .prompt_format() == task::PromptFormat::Text);
}

TEST_CASE("native tool calls: the prototype's tool calls as template tools") {
  const io::ChatTemplate qwen =
      io::ChatTemplate::from_tokenizer_config(kData / "chat/qwen2.5-coder-1.5b.tokenizer_config.json");
  const auto t =
      build<task::SeedToolTask>("file = \"" + kSeed.string() + "\"\nprompt_format = \"native\"\n", context_with(&qwen));
  CHECK(t.prompt_format() == task::PromptFormat::Native);
  REQUIRE(t.samples().size() == 12);
  const auto& s = t.samples()[3];  // convert_currency(amount: number, from: string, to: string)
  REQUIRE(s.messages.size() == 1);
  CHECK(s.messages[0].content == "Make the function call to convert 100 USD to EUR.");
  REQUIRE(s.tools.size() == 1);
  CHECK(
      s.tools[0] ==
      "{\"type\": \"function\", \"function\": {\"name\": \"convert_currency\", \"parameters\": {\"type\": \"object\", "
      "\"properties\": {\"amount\": {\"type\": \"number\"}, \"from\": {\"type\": \"string\"}, \"to\": {\"type\": "
      "\"string\"}}, \"required\": [\"amount\", \"from\", \"to\"]}}}");
  CHECK(s.gold ==
        "<tool_call>\n{\"name\": \"convert_currency\", \"arguments\": {\"amount\": 100, \"from\": \"USD\", "
        "\"to\": \"EUR\"}}\n</tool_call>");
  const std::string prompt = qwen.render(s.messages, true, s.tools);
  CHECK(prompt.find("<tools>\n" + s.tools[0] + "\n</tools>") != std::string::npos);
  CHECK(prompt.ends_with(
      "<|im_start|>user\nMake the function call to convert 100 USD to EUR.<|im_end|>\n<|im_start|>assistant\n"));
  for (std::size_t i = 0; i < t.samples().size(); ++i) {
    const auto v = t.score(i, t.samples()[i].gold);
    CHECK(v.scores.at("functional") == 1);
    CHECK(v.scores.at("arg_match") == 1);
  }
  // The prototype's bare-JSON answer is not the native format.
  CHECK(t.score(3, "{\"name\": \"convert_currency\", \"arguments\": {}}").scores.at("functional") == 0);
  const auto text =
      build<task::SeedToolTask>("file = \"" + kSeed.string() + "\"\nprompt_format = \"text\"\n", context_with(&qwen));
  CHECK(text.samples()[3].messages[0].content.starts_with("Tool available: convert_currency("));
  CHECK(text.samples()[3].tools.empty());
}

TEST_CASE("native tool calls: every BFCL entry of the five categories renders as transformers renders it") {
  // scripts/golden/make_qwen_chat_goldens.py --bfcl data/bfcl: prompt_hash of transformers'
  // rendering of each entry (the real function docs through tojson), per GGUF template.
  if (!test::available(test::project_data("bfcl"))) return;
  std::map<std::string, std::pair<std::string, std::string>> want;  // id -> (0.5b, 1.5b)
  std::ifstream in(kData / "toolcall/bfcl_native_prompt_hashes.jsonl");
  for (std::string line; std::getline(in, line);) {
    const auto g = task::parse_json(line);
    REQUIRE(g);
    want[g->find("id")->s] = {g->find("0.5b")->s, g->find("1.5b")->s};
  }
  REQUIRE(want.size() >= 1200);
  const io::ChatTemplate t05 =
      io::ChatTemplate::from_tokenizer_config(kData / "chat/qwen2.5-coder-0.5b.tokenizer_config.json");
  const io::ChatTemplate t15 =
      io::ChatTemplate::from_tokenizer_config(kData / "chat/qwen2.5-coder-1.5b.tokenizer_config.json");
  std::size_t n = 0, same = 0, gold_agree = 0;
  for (const std::string category : {"simple_python", "multiple", "parallel", "parallel_multiple", "live_simple"}) {
    const std::string toml = "category = \"" + category + "\"\n";
    const auto native = build<task::BfclTask>(toml + "prompt_format = \"native\"\n", [&] {
      auto ctx = context_with(&t15);
      ctx.data_dir = test::project_data();
      return ctx;
    }());
    const auto text = build<task::BfclTask>(toml, task::TaskContext{test::project_data(), nullptr, {}});
    REQUIRE(native.samples().size() == text.samples().size());
    for (std::size_t i = 0; i < native.samples().size(); ++i) {
      const auto& s = native.samples()[i];
      CAPTURE(s.id);
      const auto it = want.find(s.id);
      REQUIRE(it != want.end());
      const bool ok = task::prompt_hash(t05.render(s.messages, true, s.tools)) == it->second.first &&
                      task::prompt_hash(t15.render(s.messages, true, s.tools)) == it->second.second;
      CHECK(ok);
      // The gold answer in the native format passes exactly when it passes in the text format
      // (three BFCL ground truths fail under bfcl-eval too; docs/TASKS.md).
      const double a = native.score(i, s.gold).scores.at("functional");
      const double b = text.score(i, text.samples()[i].gold).scores.at("functional");
      CHECK(a == b);
      same += ok;
      gold_agree += a == b;
      ++n;
    }
  }
  MESSAGE("BFCL native prompts identical to transformers' on "
          << same << "/" << n << " entries (both templates); gold verdicts native = text on " << gold_agree << "/"
          << n);
}
