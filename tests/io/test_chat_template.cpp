// kvcanary::io::ChatTemplate against transformers.apply_chat_template goldens
// (scripts/golden/make_tokenizer_goldens.py, tests/data/chat/): exact rendered text for
// system+user, user only, multi-turn, whitespace/Unicode content, with and without the
// generation prompt, per family; unknown templates and bad configs are Errors. The two
// Qwen2.5-Coder GGUF templates (scripts/golden/make_qwen_chat_goldens.py) are checked on 64
// conversations each, with and without tools and tool-call turns, byte for byte, the tools and
// arguments serialised by task::jinja_tojson.

#include <doctest/doctest.h>
#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "kvcanary/io/chat_template.hpp"
#include "kvcanary/io/tokenizer.hpp"
#include "kvcanary/task/prompts.hpp"
#include "kvcanary/task/tool_call_parse.hpp"

using kvcanary::io::ChatFamily;
using kvcanary::io::ChatMessage;
using kvcanary::io::ChatTemplate;
namespace fs = std::filesystem;

namespace {

const fs::path kChat = fs::path(KVCANARY_TEST_DATA_DIR) / "chat";

void check_family(const std::string& name, ChatFamily family, const std::string& bos, const std::string& eos) {
  const ChatTemplate t = ChatTemplate::from_tokenizer_config(kChat / (name + ".tokenizer_config.json"));
  CHECK(t.family() == family);
  CHECK(t.bos_token() == bos);
  CHECK(t.eos_token() == eos);
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.load((kChat / (name + ".goldens.json")).string());
  std::size_t n = 0, same = 0;
  for (simdjson::dom::element c : doc["cases"].get_array()) {
    std::vector<ChatMessage> msgs;
    for (simdjson::dom::element m : c["messages"].get_array())
      msgs.push_back({std::string(m["role"].get_string().value()), std::string(m["content"].get_string().value())});
    const bool agp = c["add_generation_prompt"].get_bool().value();
    const std::string want(c["rendered"].get_string().value());
    const std::string got = t.render(msgs, agp);
    CHECK_MESSAGE(got == want, name << " case " << n << " (add_generation_prompt=" << agp << ")\n got: " << got
                                    << "\nwant: " << want);
    same += got == want;
    ++n;
  }
  CHECK(n >= 16);
  MESSAGE(name << " (" << t.family_name() << "): rendered identical " << same << "/" << n);
}

// One line of a qwen2.5-coder-*.goldens.jsonl: messages (tool_calls with their arguments as JSON
// values, so int vs float survives), tools, add_generation_prompt, rendered.
void check_qwen_coder(const std::string& size, ChatFamily family) {
  namespace task = kvcanary::task;
  const ChatTemplate t =
      ChatTemplate::from_tokenizer_config(kChat / ("qwen2.5-coder-" + size + ".tokenizer_config.json"));
  CHECK(t.family() == family);
  CHECK(t.supports_tools());
  std::ifstream in(kChat / ("qwen2.5-coder-" + size + ".goldens.jsonl"), std::ios::binary);
  REQUIRE(in.good());
  std::string line;
  std::size_t n = 0, same = 0, with_tools = 0, with_calls = 0;
  while (std::getline(in, line)) {
    const auto c = task::parse_json(line);
    REQUIRE_MESSAGE(c, "line " << n + 1 << " is not JSON");
    std::vector<ChatMessage> msgs;
    for (const auto& m : c->find("messages")->items) {
      ChatMessage msg{m.find("role")->s, m.find("content")->s, {}};
      if (const auto* calls = m.find("tool_calls"))
        for (const auto& call : calls->items) msg.tool_calls.push_back(task::chat_tool_call(call));
      with_calls += !msg.tool_calls.empty();
      msgs.push_back(std::move(msg));
    }
    std::vector<std::string> tools;
    if (const auto* ts = c->find("tools"))
      for (const auto& tool : ts->items) tools.push_back(task::jinja_tojson(tool));
    with_tools += !tools.empty();
    const bool agp = c->find("add_generation_prompt")->b;
    const std::string& want = c->find("rendered")->s;
    const std::string got = t.render(msgs, agp, tools);
    CHECK_MESSAGE(got == want, size << " case " << n << " (add_generation_prompt=" << agp << ")\n got: " << got
                                    << "\nwant: " << want);
    same += got == want;
    ++n;
  }
  CHECK(n >= 100);
  CHECK(with_tools >= 50);
  CHECK(with_calls >= 20);
  MESSAGE("Qwen2.5-Coder-" << size << " (" << t.family_name() << "): rendered identical " << same << "/" << n << " ("
                           << with_tools << " with tools)");
}

void write(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}

}  // namespace

TEST_CASE("chat template: renders exactly what transformers renders") {
  SUBCASE("SmolLM2 (template from the model's GGUF)") {
    check_family("smollm2", ChatFamily::SmolLM2, "<|im_start|>", "<|im_end|>");
  }
  SUBCASE("Qwen2.5 (reconstructed template)") { check_family("qwen2.5", ChatFamily::Qwen25, "", "<|im_end|>"); }
  SUBCASE("plain ChatML") { check_family("chatml", ChatFamily::ChatML, "", "<|im_end|>"); }
  SUBCASE("Llama-3 (reconstructed template)") {
    check_family("llama3", ChatFamily::Llama3, "<|begin_of_text|>", "<|eot_id|>");
  }
}

TEST_CASE("chat template: the Qwen2.5-Coder GGUFs' own templates, with tools, render exactly as transformers") {
  SUBCASE("0.5B (Qwen2.5-Instruct's template)") { check_qwen_coder("0.5b", ChatFamily::Qwen25); }
  SUBCASE("1.5B (Qwen2.5-Coder's template)") { check_qwen_coder("1.5b", ChatFamily::Qwen25Coder); }
}

TEST_CASE("chat template: tools on a template without them are an Error, not dropped") {
  const ChatTemplate smol = ChatTemplate::from_tokenizer_config(kChat / "smollm2.tokenizer_config.json");
  CHECK_FALSE(smol.supports_tools());
  const std::vector<ChatMessage> msgs{{"user", "hi", {}}};
  const std::vector<std::string> tools{R"({"name": "f"})"};
  CHECK_THROWS_AS((void)smol.render(msgs, true, tools), kvcanary::Error);
  const std::vector<ChatMessage> call{{"user", "hi", {}}, {"assistant", "", {{"f", "{}"}}}};
  CHECK_THROWS_AS((void)smol.render(call, false), kvcanary::Error);
}

TEST_CASE("chat template: default system prompts and generation prompt") {
  const ChatTemplate smol = ChatTemplate::from_tokenizer_config(kChat / "smollm2.tokenizer_config.json");
  CHECK(smol.default_system_prompt() == "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  const std::vector<ChatMessage> user_only{{"user", "hi"}};
  CHECK(smol.render(user_only, true) ==
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  const ChatTemplate qwen = ChatTemplate::from_tokenizer_config(kChat / "qwen2.5.tokenizer_config.json");
  CHECK(qwen.default_system_prompt() == "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  CHECK_THROWS_AS((void)qwen.render(std::vector<ChatMessage>{}, true), kvcanary::Error);
}

TEST_CASE("chat template: a re-indented known template is still recognised") {
  std::string t(kvcanary::io::chat_detail::kSmolLM2Template);
  std::string spaced;
  for (char c : t) {
    spaced += c;
    if (c == '}') spaced += "\n  ";
  }
  CHECK(ChatTemplate::from_template(spaced, "", "").family() == ChatFamily::SmolLM2);
}

TEST_CASE("chat template: rendered SmolLM2 prompt tokenizes to HF's ids, special tokens intact") {
  const char* env = std::getenv("KVCANARY_SMOLLM2_TOKENIZER");
  const fs::path tok_path =
      env ? fs::path(env) : fs::path(KVCANARY_SOURCE_DIR) / "models" / "smollm2-135m-instruct" / "tokenizer.json";
  if (!fs::exists(tok_path)) {
    MESSAGE("skipped: " << tok_path.string() << " absent");
    return;
  }
  const auto tok = kvcanary::io::Tokenizer::from_file(tok_path);
  const ChatTemplate smol = ChatTemplate::from_tokenizer_config(kChat / "smollm2.tokenizer_config.json");
  const std::vector<ChatMessage> msgs{{"user", "hi"}};
  // HF tokenizers on the same rendered text.
  const std::vector<std::int32_t> want{1,    9690,  198,  2683, 359, 253, 5356,  5646, 11173, 3365, 3511,
                                       308,  34519, 28,   7018, 411, 407, 19712, 8182, 2,     198,  1,
                                       4093, 198,   6004, 2,    198, 1,   520,   9531, 198};
  CHECK(tok.encode(smol.render(msgs, true)) == want);
}

TEST_CASE("chat template: errors name the file and the field") {
  // Per-process scratch folder: ctest runs test cases as concurrent processes.
  const fs::path dir = fs::temp_directory_path() / ("kvcanary_chat_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  SUBCASE("unrecognised template") {
    const fs::path p = dir / "unknown.json";
    write(p, R"({"chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}", "eos_token": "</s>"})");
    try {
      (void)ChatTemplate::from_tokenizer_config(p);
      FAIL("no error");
    } catch (const kvcanary::Error& e) {
      CHECK(e.file() == p.string());
      CHECK(e.field() == "chat_template");
      CHECK(std::string(e.what()).find("unrecognised") != std::string::npos);
    }
  }
  SUBCASE("no chat template") {
    const fs::path p = dir / "none.json";
    write(p, R"({"eos_token": "</s>"})");
    try {
      (void)ChatTemplate::from_tokenizer_config(p);
      FAIL("no error");
    } catch (const kvcanary::Error& e) {
      CHECK(e.file() == p.string());
      CHECK(e.field() == "chat_template");
    }
  }
  SUBCASE("bos_token of the wrong type") {
    const fs::path p = dir / "badbos.json";
    write(p, std::string(R"({"bos_token": 5, "chat_template": ")") +
                 "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\\\n' + message['content'] + "
                 "'<|im_end|>' + '\\\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\\\n' "
                 "}}{% endif %}\"}");
    try {
      (void)ChatTemplate::from_tokenizer_config(p);
      FAIL("no error");
    } catch (const kvcanary::Error& e) {
      CHECK(e.file() == p.string());
      CHECK(e.field() == "bos_token");
    }
  }
  SUBCASE("missing file") {
    CHECK_THROWS_AS((void)ChatTemplate::from_tokenizer_config(dir / "absent.json"), kvcanary::Error);
  }
  SUBCASE("named templates pick \"default\"") {
    const fs::path p = dir / "named.json";
    write(
        p,
        std::string(
            R"({"eos_token": {"content": "<|im_end|>"}, "chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": ")") +
            "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\\\n' + message['content'] + "
            "'<|im_end|>' + '\\\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\\\n' "
            "}}{% endif %}\"}]}");
    const ChatTemplate t = ChatTemplate::from_tokenizer_config(p);
    CHECK(t.family() == ChatFamily::ChatML);
    CHECK(t.eos_token() == "<|im_end|>");
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}
