// Prompting: how samples become messages and completions become programs. Only a few sandbox
// runs (the rule is what is under test, not the benchmark), and no generation.

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "../support/resources.hpp"
#include "kvcanary/task/code_exec.hpp"
#include "kvcanary/task/prompts.hpp"

using namespace kvcanary;
using namespace kvcanary::task;
namespace fs = std::filesystem;

namespace {

fs::path project_data() { return kvcanary::test::project_data(); }
fs::path model_dir() { return kvcanary::test::default_model_dir(); }
bool have(const fs::path& p) { return kvcanary::test::available(p); }

const std::vector<HumanEvalProblem>& humaneval() {
  static const auto v = load_humaneval(project_data() / "HumanEval.jsonl.gz");
  return v;
}

const HumanEvalProblem& problem(const std::string& id) {
  for (const auto& p : humaneval())
    if (p.task_id == id) return p;
  FAIL("no problem " << id);
  throw;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

std::string exec_status(const std::string& program) {
  ExecLimits lim;
  lim.timeout_s = 10;
  return run_python(program, lim).status;
}

}  // namespace

TEST_CASE("prompt extract_code: fences, truncation, bare text") {
  CHECK(extract_code("Here you go:\n```python\ndef f():\n    return 1\n```\nDone.") == "def f():\n    return 1\n");
  CHECK(extract_code("```\nx = 1\n```") == "x = 1\n");
  CHECK(extract_code("```py\nx = 2\n```") == "x = 2\n");
  // A python block wins over an earlier block of another language.
  CHECK(extract_code("```text\nusage\n```\n```python\ny = 3\n```") == "y = 3\n");
  // Fence left open by the token cap: the rest of the text.
  CHECK(extract_code("Sure.\n```python\ndef f():\n    return") == "def f():\n    return");
  CHECK(extract_code("```python") == "");
  CHECK(extract_code("    return x + 1\n") == "    return x + 1\n");
}

TEST_CASE("prompt humaneval: messages and program rule") {
  if (!have(project_data() / "HumanEval.jsonl.gz")) return;
  const auto& p0 = problem("HumanEval/0");
  const auto msgs = humaneval_messages(p0);
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].role == "user");
  CHECK(msgs[0].content.starts_with(kHumanEvalInstruction));
  CHECK(has(msgs[0].content, "```python\n" + p0.prompt + "```"));

  // Rule selection, without running anything.
  const std::string full = "```python\ndef has_close_elements(numbers, threshold):\n    return False\n```";
  const std::string prog_full = humaneval_completion_program(p0, full);
  CHECK(prog_full.starts_with("from typing import List\n"));
  CHECK(!has(prog_full, "\"\"\" Check if"));  // the prompt's docstring is not glued in front
  CHECK(prog_full.ends_with("check(has_close_elements)\n"));
  CHECK(humaneval_completion_program(p0, "    return False\n") == humaneval_program(p0, "    return False\n"));
  // A name that merely starts with the entry point is not a definition of it.
  CHECK(humaneval_completion_program(p0, "def has_close_elements_v2(x):\n    pass\n") ==
        humaneval_program(p0, "def has_close_elements_v2(x):\n    pass\n"));
  CHECK(humaneval_gold_completion_text(p0) == "```python\n" + p0.prompt + p0.canonical_solution + "```");
}

TEST_CASE("prompt humaneval: hand-written completions in the sandbox") {
  if (!have(project_data() / "HumanEval.jsonl.gz")) return;
  const auto& p0 = problem("HumanEval/0");
  const auto& p2 = problem("HumanEval/2");
  const auto& p10 = problem("HumanEval/10");

  // Fenced full function with prose around it; no imports of its own (the prompt's supply List).
  const std::string fenced =
      "Here is the function:\n```python\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n" +
      p0.canonical_solution + "```\nIt compares every pair.";
  CHECK(exec_status(humaneval_completion_program(p0, fenced)) == "pass");

  // Body-only continuation, fenced.
  CHECK(exec_status(humaneval_completion_program(p2, "```python\n    return number % 1.0\n```")) == "pass");

  // Full function that calls the helper defined in the prompt (is_palindrome).
  const std::string helper_user =
      "```python\ndef make_palindrome(string: str) -> str:\n" + p10.canonical_solution + "```";
  CHECK(exec_status(humaneval_completion_program(p10, helper_user)) == "pass");

  // Prose only: not a program.
  CHECK(exec_status(humaneval_completion_program(p2, "The answer is the fractional part of the number.")) != "pass");

  // Truncated fence: a complete body whose closing fence was cut still runs; one cut mid-body fails.
  CHECK(exec_status(humaneval_completion_program(p2, "```python\n    return number % 1.0\n")) == "pass");
  CHECK(exec_status(humaneval_completion_program(p2, "```python\n    return number %")) != "pass");
}

TEST_CASE("prompt tools: BFCL messages and gold text") {
  const fs::path simple = project_data() / "bfcl/BFCL_v4_simple_python.json";
  const fs::path parallel = project_data() / "bfcl/BFCL_v4_parallel.json";
  if (!have(simple) || !have(parallel)) return;
  const auto qs = load_bfcl_questions(simple);
  const auto qa = load_bfcl_answers(project_data() / "bfcl/possible_answer/BFCL_v4_simple_python.json");
  REQUIRE(!qs.empty());
  REQUIRE(qa.size() == qs.size());

  for (ToolFormat fmt : {ToolFormat::Json, ToolFormat::Python}) {
    const auto m = bfcl_messages(qs[0], fmt);
    REQUIRE(m.size() == 2);
    CHECK(m[0].role == "system");
    CHECK(has(m[0].content, "\"name\": \"" + qs[0].functions[0].find("name")->s + "\""));
    CHECK(has(m[0].content, "\n  {\n    \"name\""));  // pretty-printed
    CHECK(m[1].role == "user");
    CHECK(m[1].content == qs[0].question.items[0].items[0].find("content")->s);
    CHECK(has(m[0].content, fmt == ToolFormat::Python ? "[func_name1(" : "{\"name\": \"func_name\""));
  }

  // The gold text is what the parser reads back as the gold call, in either format.
  const std::string py = gold_completion_text(qa[0].ground_truth, qs[0].functions, ToolFormat::Python);
  const std::string js = gold_completion_text(qa[0].ground_truth, qs[0].functions, ToolFormat::Json);
  CHECK(py == render_gold_python(qa[0].ground_truth, qs[0].functions));
  CHECK(js.starts_with("{\"name\": \"" + qa[0].ground_truth[0].name + "\", \"arguments\": {"));
  for (const std::string& text : {py, js}) {
    const auto parsed = parse_tool_calls(text);
    REQUIRE(parsed.calls.size() == 1);
    CHECK(ast_check(BfclCategory::simple, qs[0].functions, parsed.calls, qa[0].ground_truth).valid);
  }

  const auto pq = load_bfcl_questions(parallel);
  const auto pa = load_bfcl_answers(project_data() / "bfcl/possible_answer/BFCL_v4_parallel.json");
  const std::string pjs = gold_completion_text(pa[0].ground_truth, pq[0].functions, ToolFormat::Json);
  CHECK(pjs.starts_with("[{\"name\": "));
  const auto parsed = parse_tool_calls(pjs);
  CHECK(parsed.calls.size() == pa[0].ground_truth.size());
  CHECK(ast_check(BfclCategory::parallel, pq[0].functions, parsed.calls, pa[0].ground_truth).valid);
}

TEST_CASE("prompt seed samples: verbatim prompt, JSON gold") {
  const fs::path seeds = project_data() / "seed_tool_calls.jsonl";
  if (!have(seeds)) return;
  const auto ss = load_seed_samples(seeds);
  REQUIRE(ss.size() == 12);
  for (const auto& s : ss) {
    const auto m = seed_messages(s);
    REQUIRE(m.size() == 1);
    CHECK(m[0].role == "user");
    CHECK(m[0].content == s.prompt);
    const auto parsed = parse_tool_calls(gold_completion_text(s));
    REQUIRE(parsed.calls.size() == 1);
    CHECK(parsed.calls[0].name == s.gold.name);
    CHECK(python_equal(parsed.calls[0].args, s.gold.args));
  }
  CHECK(gold_completion_text(ss[0]) == "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}");
}

TEST_CASE("prompt hash: FNV-1a 64") {
  CHECK(prompt_hash("") == "cbf29ce484222325");
  CHECK(prompt_hash("a") == "af63dc4c8601ec8c");
  CHECK(prompt_hash("foobar") == "85944171f73967e8");
}

TEST_CASE("prompt distractor and rendered snapshots with the SmolLM2 template") {
  const fs::path tok_json = model_dir() / "tokenizer.json", cfg = model_dir() / "tokenizer_config.json";
  const fs::path wiki = project_data() / "wikitext-2-raw-test.txt";
  if (!have(tok_json) || !have(cfg) || !have(wiki) || !have(project_data() / "HumanEval.jsonl.gz")) return;
  const auto tok = io::Tokenizer::from_file(tok_json);
  const auto tmpl = io::ChatTemplate::from_tokenizer_config(cfg);
  const std::string source = read_text(wiki);

  SUBCASE("distractor length and determinism") {
    CHECK(distractor_preamble(0, tok, source, 1).empty());
    for (std::size_t n : {1u, 17u, 64u, 500u, 2000u}) {
      const std::string a = distractor_preamble(n, tok, source, 42);
      const std::size_t got = tok.encode(a).size();
      CHECK(got <= n);
      CHECK(got + 4 + n / 50 >= n);  // "about n": only a trimmed tail is lost
      CHECK(a == distractor_preamble(n, tok, source, 42));
    }
    CHECK(distractor_preamble(200, tok, source, 1) != distractor_preamble(200, tok, source, 2));
    // A byte cut inside a multi-byte character (the chunk for n = 1 is 72 bytes; "€é" is 5) ends
    // the chunk before it instead of handing the tokenizer invalid UTF-8.
    std::string euros;
    for (int i = 0; i < 100; ++i) euros += "\u20ac\u00e9";
    for (std::uint64_t seed = 0; seed < 4; ++seed)
      CHECK_FALSE(tok.encode(distractor_preamble(1, tok, euros, seed)).empty());
    for (std::uint64_t seed = 0; seed < 64; ++seed)
      CHECK(tok.encode(distractor_preamble(1, tok, source, seed)).size() <= 1);
    const auto base = humaneval_messages(problem("HumanEval/0"));
    CHECK(with_distractor(base, distractor_preamble(0, tok, source, 7))[0].content == base[0].content);
    const std::string pre = distractor_preamble(100, tok, source, 7);
    const auto d = with_distractor(base, pre);
    CHECK(d[0].content == std::string(kDistractorHead) + pre + std::string(kDistractorTail) + base[0].content);
  }

  SUBCASE("snapshots") {
    const std::string he = tmpl.render(humaneval_messages(problem("HumanEval/0")), true);
    CHECK(he.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"));
    CHECK(has(he, "<|im_start|>user\nComplete the following Python function."));
    CHECK(has(he, "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"));
    CHECK(he.ends_with("    \"\"\"\n```<|im_end|>\n<|im_start|>assistant\n"));
    CHECK(prompt_hash(he) == prompt_hash(tmpl.render(humaneval_messages(problem("HumanEval/0")), true)));

    const fs::path simple = project_data() / "bfcl/BFCL_v4_simple_python.json";
    const fs::path parallel = project_data() / "bfcl/BFCL_v4_parallel.json";
    if (have(simple) && have(parallel)) {
      const auto qs = load_bfcl_questions(simple);
      const std::string s = tmpl.render(bfcl_messages(qs[0], ToolFormat::Python), true);
      CHECK(s.starts_with("<|im_start|>system\nYou are an expert in composing functions."));
      CHECK(!has(s, "named SmolLM"));  // our system turn replaces the default one
      CHECK(has(s, "[func_name1(param_name1=value1"));
      CHECK(has(
          s, "<|im_end|>\n<|im_start|>user\n" + qs[0].question.items[0].items[0].find("content")->s + "<|im_end|>\n"));
      CHECK(s.ends_with("<|im_start|>assistant\n"));
      CHECK(s == tmpl.render(bfcl_messages(qs[0], ToolFormat::Python), true));

      const auto pq = load_bfcl_questions(parallel);
      const std::string p = tmpl.render(bfcl_messages(pq[0], ToolFormat::Json), true);
      CHECK(has(p, "\"name\": \"spotify.play\""));
      CHECK(has(p, "a JSON list of such objects for several calls"));
      CHECK(has(p, "<|im_start|>user\nPlay songs from the artists Taylor Swift and Maroon 5"));
      CHECK(prompt_hash(p) != prompt_hash(tmpl.render(bfcl_messages(pq[0], ToolFormat::Python), true)));
    }

    const fs::path seeds = project_data() / "seed_tool_calls.jsonl";
    if (have(seeds)) {
      const auto ss = load_seed_samples(seeds);
      const std::string r = tmpl.render(seed_messages(ss[0]), true);
      CHECK(r == "<|im_start|>system\n" + std::string(tmpl.default_system_prompt()) + "<|im_end|>\n<|im_start|>user\n" +
                     ss[0].prompt + "<|im_end|>\n<|im_start|>assistant\n");
    }
  }
}
