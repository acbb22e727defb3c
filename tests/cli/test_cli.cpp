// The kvcanary program end to end: each command's output format on a tiny model (and on the
// default model when present), and every bad input of the engine issue → one line on
// stderr naming the file and the field, exit status 2, no crash.

#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "../support/json_file.hpp"
#include "../support/temp_dir.hpp"
#include "../support/resources.hpp"
#include "kvcanary/kv/registry.hpp"

namespace fs = std::filesystem;

namespace {

struct Run {
  int exit_code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

using Scratch = kvcanary::test::TempDir;

Run run_cli(const std::string& args) {
  Scratch s;
  const std::string cmd = quote(KVCANARY_CLI_PATH) + " " + args + " >" + quote((s.path / "out").string()) + " 2>" +
                          quote((s.path / "err").string());
  const int status = std::system(cmd.c_str());
  Run r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(s.path / "out");
  r.err = slurp(s.path / "err");
  return r;
}

// A model directory: a tiny golden model + the 256-byte tokenizer.
fs::path tiny_model(const fs::path& into, const std::string& name = "llama_gqa_untied") {
  const fs::path src = kvcanary::test::test_data("tiny/" + name);
  fs::create_directories(into);
  fs::copy_file(src / "config.json", into / "config.json");
  fs::copy_file(src / "model.safetensors", into / "model.safetensors");
  fs::copy_file(kvcanary::test::test_data("tiny/byte_tokenizer.json"), into / "tokenizer.json");
  return into;
}

void expect_bad_input(const Run& r, std::initializer_list<std::string> mentions) {
  CHECK_MESSAGE(r.exit_code == 2, r.err);
  CHECK(r.out.empty());
  // One line, naming what is wrong.
  CHECK_MESSAGE(std::count(r.err.begin(), r.err.end(), '\n') == 1, r.err);
  for (const auto& m : mentions) CHECK_MESSAGE(r.err.find(m) != std::string::npos, "'" << m << "' not in: " << r.err);
}

}  // namespace

TEST_CASE("cli: commands on a tiny model print their documented formats") {
  Scratch s;
  const fs::path model = tiny_model(s.path / "m");
  const std::string M = "--model " + quote(model.string());

  auto gen = run_cli("generate " + M + " --prompt " + quote("hello there") + " --max-new-tokens 5");
  CHECK_MESSAGE(gen.exit_code == 0, gen.err);
  CHECK(gen.err.find("generated 5 tokens") != std::string::npos);

  std::ofstream(s.path / "text.txt") << "The quick brown fox jumps over the lazy dog.";
  auto ppl = run_cli("ppl " + M + " --text-file " + quote((s.path / "text.txt").string()));
  REQUIRE_MESSAGE(ppl.exit_code == 0, ppl.err);
  CHECK(ppl.out.rfind("{\"ppl\": ", 0) == 0);
  CHECK(ppl.out.find("\"tokens\": 44") != std::string::npos);  // 44 bytes → 44 byte tokens

  auto tok = run_cli("tokenize " + M + " --text-file " + quote((s.path / "text.txt").string()));
  REQUIRE(tok.exit_code == 0);
  CHECK(tok.out.rfind("84 104 101 32 ", 0) == 0);  // "The " as bytes
  CHECK(tok.out.back() == '\n');

  auto logits = run_cli("logits " + M + " --text " + quote("abc") + " --top 3");
  REQUIRE(logits.exit_code == 0);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE_FALSE(parser.parse(logits.out).get(doc));
  CHECK(doc["top"].get_array().size() == 3);
  CHECK(doc["top"].at(0).get_array().size() == 2);

  auto listed = run_cli("compressors");
  CHECK(listed.exit_code == 0);
  CHECK(listed.out.find("full") != std::string::npos);

  auto under =
      run_cli("ppl " + M + " --compressor full --context 20 --text-file " + quote((s.path / "text.txt").string()));
  REQUIRE_MESSAGE(under.exit_code == 0, under.err);
  CHECK(under.out.find("\"scored\": 24, \"context\": 20, \"compressor\": \"full\", \"kv_fraction\": 1.000000") !=
        std::string::npos);

  // bf16 weights run through the same commands.
  auto bf = run_cli("generate " + M + " --dtype bf16 --prompt hi --max-new-tokens 2");
  CHECK_MESSAGE(bf.exit_code == 0, bf.err);
}

TEST_CASE("cli: every registered compressor generates and scores in both modes, reporting its measured budget") {
  Scratch s;
  // head_dim 32: a whole llama.cpp block per row, so every cache type runs.
  const fs::path model = tiny_model(s.path / "m", "llama_head_dim");
  std::ofstream(s.path / "text.txt") << std::string(120, 'a') + " the end of a long and repetitive text";
  std::size_t policies = 0;
  kvcanary::kv::for_each_policy(
      [&](std::string_view listed, std::string_view, const auto&, const kvcanary::kv::PolicyFacts& facts) {
        ++policies;
        const std::string_view name =
            listed == "EVICTION+QUANTIZER" ? "h2o+q4_0" : listed;  // the composition, by an example
        for (const char* mode : {"prompt", "decode"}) {
          if (!facts.decode_allowed && std::string_view(mode) == "decode") {
            // A prompt-only policy (snapkv, as its paper) refuses decode mode: one clear error, exit 2.
            expect_bad_input(run_cli("generate --model " + quote(model.string()) + " --prompt hi --compressor " +
                                     std::string(name) + " --mode decode"),
                             {"mode", "prompt-only"});
            continue;
          }
          // budget 0.5: half the rows for eviction, 8 bits for quantization; a small KIVI residual
          // so that this short text gets quantized at all.
          std::string opts = " --compressor " + std::string(name) + " --budget 0.5 --mode " + mode;
          if (name == "kivi") opts += " --param residual=32";
          auto gen = run_cli("generate --model " + quote(model.string()) + " --prompt " + quote(std::string(80, 'x')) +
                             " --max-new-tokens 6" + opts);
          CHECK_MESSAGE(gen.exit_code == 0, name << " " << mode << ": " << gen.err);
          CHECK_MESSAGE(gen.err.find("of the fp16 KV bytes") != std::string::npos, gen.err);
          auto ppl = run_cli("ppl --model " + quote(model.string()) + " --text-file " +
                             quote((s.path / "text.txt").string()) + " --context 100" + opts);
          REQUIRE_MESSAGE(ppl.exit_code == 0, name << " " << mode << ": " << ppl.err);
          simdjson::dom::parser parser;
          simdjson::dom::element doc;
          REQUIRE_FALSE(parser.parse(ppl.out).get(doc));
          const double fraction = doc["kv_fraction"].get_double().value();
          if (name == "full")
            CHECK(fraction == 1.0);
          else
            CHECK_MESSAGE(fraction < 0.95, name << " " << mode << " kept " << fraction);
          CHECK(doc["ppl"].get_double().value() > 1.0);
        }
      });
  CHECK(policies == 29);  // 18 policies + 10 cache types + the composition
}

TEST_CASE("cli: bad input → one clear error naming the file and field, exit 2") {
  Scratch s;
  SUBCASE("unknown command and unknown option") {
    CHECK(run_cli("frobnicate").exit_code == 2);
    expect_bad_input(run_cli("generate --prompt hi --temperature 3"), {"--temperature", "unknown option"});
  }
  SUBCASE("model directory missing") {
    expect_bad_input(run_cli("generate --model /nonexistent/model --prompt hi"), {"/nonexistent/model", "not found"});
  }
  SUBCASE("safetensors missing") {
    const fs::path m = tiny_model(s.path / "m");
    fs::remove(m / "model.safetensors");
    expect_bad_input(run_cli("generate --model " + quote(m.string()) + " --prompt hi"), {"model.safetensors"});
  }
  SUBCASE("safetensors truncated") {
    const fs::path m = tiny_model(s.path / "m");
    fs::resize_file(m / "model.safetensors", fs::file_size(m / "model.safetensors") / 2);
    expect_bad_input(run_cli("generate --model " + quote(m.string()) + " --prompt hi"),
                     {(m / "model.safetensors").string(), "data_offsets", "truncated"});
  }
  SUBCASE("safetensors corrupt header") {
    const fs::path m = tiny_model(s.path / "m");
    {
      std::fstream f(m / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(12);
      f.write("\x01\x02garbage{{{", 12);
    }
    expect_bad_input(run_cli("generate --model " + quote(m.string()) + " --prompt hi"),
                     {(m / "model.safetensors").string(), "header"});
  }
  SUBCASE("unsupported architecture") {
    const fs::path m = tiny_model(s.path / "m");
    std::string cfg = slurp(m / "config.json");
    cfg.replace(cfg.find("LlamaForCausalLM"), 16, "GPTNeoXForCausalLM");
    std::ofstream(m / "config.json") << cfg;
    expect_bad_input(run_cli("generate --model " + quote(m.string()) + " --prompt hi"),
                     {(m / "config.json").string(), "architectures", "GPTNeoXForCausalLM"});
  }
  SUBCASE("tokenizer.json of an unknown model type") {
    const fs::path m = tiny_model(s.path / "m");
    std::ofstream(m / "tokenizer.json") << R"({"model":{"type":"Unigram","vocab":[["a",0.0]]},"added_tokens":[]})";
    expect_bad_input(run_cli("generate --model " + quote(m.string()) + " --prompt hi"),
                     {(m / "tokenizer.json").string(), "model.type"});
  }
  SUBCASE("prompt longer than the position limit") {
    const fs::path m = tiny_model(s.path / "m");  // max_position_embeddings 256, one token per byte
    expect_bad_input(run_cli("generate --model " + quote(m.string()) + " --prompt " + quote(std::string(300, 'x'))),
                     {(m / "config.json").string(), "max_position_embeddings", "300"});
  }
  SUBCASE("compressor options") {
    const fs::path m = tiny_model(s.path / "m");
    const std::string M = "generate --model " + quote(m.string()) + " --prompt hi ";
    expect_bad_input(run_cli(M + "--compressor nosuch"), {"compressor", "nosuch", "full"});
    expect_bad_input(run_cli(M + "--budget 1.5"), {"budget", "(0, 1]"});
    expect_bad_input(run_cli(M + "--budget half"), {"--budget", "not a number"});
    expect_bad_input(run_cli(M + "--mode sometimes"), {"--mode", "prompt, decode"});
    expect_bad_input(run_cli(M + "--param window"), {"--param", "NAME=VALUE"});
    expect_bad_input(run_cli(M + "--compressor full --param window=4"),
                     {"window", "not a parameter of compressor 'full'"});
  }
  SUBCASE("ppl of a missing text file") {
    const fs::path m = tiny_model(s.path / "m");
    expect_bad_input(run_cli("ppl --model " + quote(m.string()) + " --text-file /nonexistent.txt"),
                     {"/nonexistent.txt", "--text-file"});
  }
}

TEST_CASE("cli: exec runs a program in the sandbox, toolcheck scores a BFCL answer") {
  Scratch s;
  std::ofstream(s.path / "ok.py") << "print('hi')\n";
  std::ofstream(s.path / "bad.py") << "assert 1 == 2\n";
  std::ofstream(s.path / "loop.py") << "while True: pass\n";
  for (auto [file, status] : {std::pair{"ok.py", "pass"}, {"bad.py", "fail"}, {"loop.py", "timeout"}}) {
    auto r = run_cli("exec " + quote((s.path / file).string()) + " --timeout 1");
    CHECK_MESSAGE(r.exit_code == 0, r.err);  // exit 0 whatever the verdict
    CHECK_MESSAGE(r.out.find(std::string("\"status\":\"") + status + "\"") != std::string::npos, r.out);
  }
  expect_bad_input(run_cli("exec " + quote((s.path / "ok.py").string()) + " --timeout soon"), {"--timeout"});

  const fs::path bfcl = kvcanary::test::project_data("bfcl");
  if (!kvcanary::test::available(bfcl)) return;
  const std::string Q = quote((bfcl / "BFCL_v4_simple_python.json").string());
  const std::string A = quote((bfcl / "possible_answer/BFCL_v4_simple_python.json").string());
  std::ofstream(s.path / "right.txt") << "Sure:\n```python\ncalculate_triangle_area(base=10, height=5)\n```";
  std::ofstream(s.path / "wrong.txt") << "calculate_triangle_area(base=10, height=6)";
  auto right = run_cli("toolcheck --question " + Q + " --answer " + A + " --id simple_python_0 --output-file " +
                       quote((s.path / "right.txt").string()));
  REQUIRE_MESSAGE(right.exit_code == 0, right.err);
  CHECK_MESSAGE(right.out.find("\"ast_valid\": true") != std::string::npos, right.out);
  auto wrong = run_cli("toolcheck --question " + Q + " --answer " + A + " --id simple_python_0 --output-file " +
                       quote((s.path / "wrong.txt").string()));
  REQUIRE(wrong.exit_code == 0);
  CHECK_MESSAGE(wrong.out.find("\"ast_valid\": false") != std::string::npos, wrong.out);
  expect_bad_input(run_cli("toolcheck --question " + Q + " --answer " + A + " --id nosuch --output-file " +
                           quote((s.path / "right.txt").string())),
                   {"nosuch"});
  // The native format reads <tool_call> blocks only: the fenced Python call is not one.
  std::ofstream(s.path / "native.txt") << "<tool_call>\n{\"name\": \"calculate_triangle_area\", \"arguments\": "
                                          "{\"base\": 10, \"height\": 5}}\n</tool_call>";
  auto native = run_cli("toolcheck --prompt-format native --question " + Q + " --answer " + A +
                        " --id simple_python_0 --output-file " + quote((s.path / "native.txt").string()));
  REQUIRE_MESSAGE(native.exit_code == 0, native.err);
  CHECK_MESSAGE(native.out.find("\"ast_valid\": true") != std::string::npos, native.out);
  auto not_native = run_cli("toolcheck --prompt-format native --question " + Q + " --answer " + A +
                            " --id simple_python_0 --output-file " + quote((s.path / "right.txt").string()));
  REQUIRE(not_native.exit_code == 0);
  CHECK_MESSAGE(not_native.out.find("\"calls_parsed\": 0") != std::string::npos, not_native.out);
  expect_bad_input(run_cli("toolcheck --prompt-format fc --question " + Q + " --answer " + A +
                           " --id simple_python_0 --output-file " + quote((s.path / "right.txt").string())),
                   {"--prompt-format"});
}

TEST_CASE("cli: the default model answers a chat prompt") {
  if (!kvcanary::test::default_model_available()) return;
  auto r = run_cli("generate --chat --max-new-tokens 24 --prompt " + quote("What is the capital of France?"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.find("Paris") != std::string::npos);
}
