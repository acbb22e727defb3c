// Tool-call parsing and scoring: the parser on every output shape models produce, its
// behaviour on truncated output, verdict equivalence with bfcl-eval's own ast_checker,
// and the prototype's sub-scores on its 12 seed samples.

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "../support/resources.hpp"
#include "kvcanary/task/tool_call_parse.hpp"
#include "kvcanary/task/tool_call_score.hpp"
#include "../../tools/kvcanary/cmd_toolcheck.hpp"

using namespace kvcanary::task;
namespace fs = std::filesystem;

namespace {

fs::path project_data() { return kvcanary::test::project_data(); }
bool have(const fs::path& p) { return kvcanary::test::available(p); }

Value obj(std::vector<std::pair<std::string, Value>> m) { return Value::object(std::move(m)); }
Value S(const char* s) { return Value::string(s); }
Value I(long long v) { return Value::integer(v); }

bool same_call(const ToolCall& a, const ToolCall& b) { return a.name == b.name && python_equal(a.args, b.args); }

}  // namespace

TEST_CASE("toolcall parse: JSON object with prose and fences") {
  auto r = parse_tool_calls(
      "Sure! Here is the call:\n```json\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n```\nLet "
      "me know.");
  REQUIRE(r.calls.size() == 1);
  CHECK(r.json_valid);
  CHECK(r.calls[0].name == "get_weather");
  CHECK(python_equal(r.calls[0].args, obj({{"city", S("Paris")}})));

  auto p = parse_tool_calls("{\"name\": \"f\", \"parameters\": {\"x\": 1.5, \"y\": [1, {\"z\": null}], \"t\": true}}");
  REQUIRE(p.calls.size() == 1);
  CHECK(p.calls[0].args.find("x")->kind == Value::Kind::floating);
  CHECK(p.calls[0].args.find("y")->items[1].find("z")->is_null());
  CHECK(p.calls[0].args.find("t")->b);

  // OpenAI wire format: arguments as a JSON string, call under "function".
  auto o = parse_tool_calls(R"({"type": "function", "function": {"name": "g", "arguments": "{\"a\": 2}"}})");
  REQUIRE(o.calls.size() == 1);
  CHECK(o.calls[0].name == "g");
  CHECK(python_equal(o.calls[0].args, obj({{"a", I(2)}})));
}

TEST_CASE("toolcall parse: several calls, lists, Hermes tags") {
  auto l = parse_tool_calls(R"([{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"k": "v"}}])");
  REQUIRE(l.calls.size() == 2);
  CHECK(l.calls[1].name == "b");

  auto h = parse_tool_calls(
      "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"b\", \"arguments\": {\"y\": \"\\u00e9\\ud83d\\ude00\"}}\n</tool_call>");
  REQUIRE(h.calls.size() == 2);
  CHECK(h.calls[1].args.find("y")->s == "\xc3\xa9\xf0\x9f\x98\x80");

  auto two =
      parse_tool_calls("First {\"name\": \"a\", \"arguments\": {}} and then {\"name\": \"b\", \"arguments\": {}}.");
  REQUIRE(two.calls.size() == 2);

  // JSON that is not call-shaped is valid JSON but no call.
  auto data = parse_tool_calls(R"({"name": "Bob", "age": 3})");
  CHECK(data.json_valid);
  CHECK(data.calls.empty());
}

TEST_CASE("toolcall parse: Python call syntax") {
  auto r =
      parse_tool_calls("```python\n[math.factorial(number=5), spotify.play(artist='Taylor Swift', duration=20)]\n```");
  REQUIRE(r.calls.size() == 2);
  CHECK_FALSE(r.json_valid);
  CHECK(r.calls[0].name == "math.factorial");
  CHECK(python_equal(r.calls[1].args, obj({{"artist", S("Taylor Swift")}, {"duration", I(20)}})));

  auto n = parse_tool_calls(
      "f(a=-3, b=2.5e-3, c=\"q\\\"uote\\n\", d='it\\'s', e=True, f=None, g=[1, (2, 3), {'k': [False]}], h=(), i=(7,), "
      "j=some_var, k=1e3,)");
  REQUIRE(n.calls.size() == 1);
  const Value& a = n.calls[0].args;
  CHECK(a.find("a")->i == -3);
  CHECK(a.find("b")->d == doctest::Approx(0.0025));
  CHECK(a.find("c")->s == "q\"uote\n");
  CHECK(a.find("d")->s == "it's");
  CHECK(a.find("e")->b);
  CHECK(a.find("f")->is_null());
  CHECK(a.find("g")->items[1].kind == Value::Kind::tuple);
  CHECK(a.find("g")->items[2].find("k")->items[0].kind == Value::Kind::boolean);
  CHECK(a.find("h")->kind == Value::Kind::tuple);
  CHECK(a.find("i")->items.size() == 1);
  CHECK(a.find("j")->s == "some_var");  // BFCL's decoder keeps a variable's name
  CHECK(a.find("k")->kind == Value::Kind::floating);

  CHECK(parse_tool_calls("get_time()").calls.size() == 1);
  // Prose with parentheses, positional arguments and nested calls are not tool calls.
  CHECK(parse_tool_calls("Paris (France) is nice; see print(x) and f(1).").calls.empty());
  CHECK(parse_tool_calls("f(a=g(b=1))").calls.empty());
}

TEST_CASE("toolcall parse: malformed JSON is no call and not json_valid") {
  for (const char* bad :
       {R"({"name": "f", "arguments": {"a": 1,}})", R"({'name': 'f'})", R"({"name": "f" "arguments": {}})",
        R"({"name": "f", "arguments": {"a": tru}})", "no call here", ""}) {
    auto r = parse_tool_calls(bad);
    CHECK_MESSAGE(r.calls.empty(), bad);
    CHECK_MESSAGE(!r.json_valid, bad);
  }
}

TEST_CASE("toolcall parse: truncated output never crashes and never fakes a call") {
  const std::vector<std::string> outputs = {
      R"(Here you go: {"name": "convert_currency", "arguments": {"amount": 100, "from": "USD", "to": "EUR", "x": [1.5, {"d": null}]}} done)",
      "<tool_call>\n{\"name\": \"play_song\", \"arguments\": {\"title\": \"Imagine\", \"artist\": \"John "
      "Lennon\"}}\n</tool_call>",
      R"([{"name": "a", "arguments": {"n": 12}}, {"name": "b", "arguments": {"s": "x\"y"}}])",
      "```python\n[spotify.play(artist='Taylor Swift', duration=20), spotify.play(artist=\"Maroon 5\", duration=15.25, "
      "tags=['a', ('b', -1)], o={'k': True})]\n```",
      "set_timer(minutes=100)",
  };
  int prefixes = 0;
  for (const auto& full_text : outputs) {
    const auto full = parse_tool_calls(full_text);
    REQUIRE(!full.calls.empty());
    for (std::size_t n = 0; n <= full_text.size(); ++n) {
      const auto part = parse_tool_calls(std::string_view(full_text).substr(0, n));
      ++prefixes;
      REQUIRE(part.calls.size() <= full.calls.size());
      for (std::size_t k = 0; k < part.calls.size(); ++k)
        REQUIRE_MESSAGE(same_call(part.calls[k], full.calls[k]), "prefix " << n << " of " << full_text);
    }
  }
  // "100" cut to "10" must not become a (wrong but complete-looking) call.
  CHECK(parse_tool_calls("set_timer(minutes=10").calls.empty());
  CHECK(parse_tool_calls(R"({"name": "set_timer", "arguments": {"minutes": 10)").calls.empty());
  MESSAGE("truncation: " << prefixes << " prefixes checked");
}

TEST_CASE("toolcall value: Python equality and rendering") {
  CHECK(python_equal(I(1), Value::floating(1.0)));
  CHECK(python_equal(Value::boolean(true), I(1)));
  CHECK_FALSE(python_equal(Value::list({I(1)}), Value::tuple({I(1)})));
  CHECK(python_equal(obj({{"a", I(1)}, {"b", I(2)}}), obj({{"b", I(2)}, {"a", I(1)}})));
  CHECK(to_json(obj({{"x", Value::floating(0.1)}, {"y", Value::list({S("a\"b")})}})) == R"({"x": 0.1, "y": ["a\"b"]})");
  CHECK(to_python(Value::tuple({Value::floating(2.0)})) == "(2.0,)");
}

TEST_CASE("toolcall score: BFCL rules on hand-made cases") {
  const Value doc = [] {
    auto r = parse_tool_calls(
        R"({"name": "d", "arguments": {"name": "calc.area", "parameters": {"type": "dict", "properties": {
        "base": {"type": "integer"}, "unit": {"type": "string"}, "scale": {"type": "float"},
        "tags": {"type": "array", "items": {"type": "string"}}, "opts": {"type": "dict"}}, "required": ["base"]}}})");
    return r.calls.at(0).args;
  }();
  const std::vector<GoldCall> gold = {{"calc.area", parse_tool_calls(R"({"name": "g", "arguments": {
      "base": [10], "unit": ["cm", ""], "scale": [2.0, ""], "tags": [["Big One"], ""], "opts": [{"mode": ["fast"], "n": [1, ""]}, ""]}})")
                                                        .calls.at(0)
                                                        .args}};
  auto check = [&](const char* out) {
    return ast_check(BfclCategory::simple, {doc}, parse_tool_calls(out).calls, gold);
  };
  CHECK(check("calc.area(base=10)").valid);
  CHECK(check("calc.area(base=10, unit=' C.M ', scale=2, tags=['big_one'], opts={'mode': 'FAST'})").valid);
  CHECK(check("calc_area(base=10)").error_type == "simple_function_checker:wrong_func_name");
  // Function-calling mode compares against the underscored name.
  CHECK(ast_check(BfclCategory::simple, {doc}, parse_tool_calls("calc_area(base=10)").calls, gold, {true}).valid);
  CHECK(check("calc.area(unit='cm')").error_type == "simple_function_checker:missing_required");
  CHECK(check("calc.area(base=10, color='red')").error_type == "simple_function_checker:unexpected_param");
  CHECK(check("calc.area(base=10.0)").error_type == "type_error:simple");
  CHECK(check("calc.area(base=True)").error_type == "type_error:simple");
  CHECK(check("calc.area(base=11)").error_type == "value_error:others");
  CHECK(check("calc.area(base=10, unit='mm')").error_type == "value_error:string");
  // The "" among tags' acceptable values makes BFCL's item type check vacuous, so the
  // wrong item type surfaces as a value mismatch, not a type error.
  CHECK(check("calc.area(base=10, tags=[1])").error_type == "value_error:list/tuple");
  CHECK(check("calc.area(base=10, unit='CM', tags=['Big One', 'x'])").error_type == "value_error:list/tuple");
  CHECK(check("calc.area(base=10, unit='Ç')").error_type == "value_error:string");
  CHECK(check("calc.area(base=10, opts={'mode': 'fast', 'x': 1})").error_type == "value_error:dict_key");
  CHECK(check("calc.area(base=10, opts={'mode': 'slow'})").error_type == "value_error:dict_value");
  CHECK(check("calc.area(base=10, opts={'mode': 'fast', 'n': 1.0})").valid);
  CHECK(check("calc.area(base=10) calc.area(base=10)").error_type == "simple_function_checker:wrong_count");
  CHECK(check("no call").error_type == "ast_decoder:decoder_failed");
}

TEST_CASE("toolcall BFCL: every ground truth passes and verdicts equal bfcl-eval's own") {
  const fs::path dir = project_data() / "bfcl";
  const fs::path golden = fs::path(KVCANARY_TEST_DATA_DIR) / "toolcall/bfcl_verdicts.jsonl";
  if (!have(dir)) return;
  REQUIRE(fs::exists(golden));
  struct Entry {
    const BfclQuestion* q;
    const BfclAnswer* a;
  };
  std::map<std::string, std::vector<BfclQuestion>> questions;
  std::map<std::string, std::vector<BfclAnswer>> answers;
  std::map<std::pair<std::string, std::string>, Entry> by_id;
  const std::vector<std::string> cats = {"simple_python", "multiple", "parallel", "parallel_multiple", "live_simple"};
  for (const auto& c : cats) {
    questions[c] = load_bfcl_questions(dir / ("BFCL_v4_" + c + ".json"));
    answers[c] = load_bfcl_answers(dir / "possible_answer" / ("BFCL_v4_" + c + ".json"));
    REQUIRE(questions[c].size() == answers[c].size());
    for (std::size_t k = 0; k < questions[c].size(); ++k) by_id[{c, questions[c][k].id}].q = &questions[c][k];
    for (std::size_t k = 0; k < answers[c].size(); ++k) by_id[{c, answers[c][k].id}].a = &answers[c][k];
  }

  // Verdicts bfcl-eval gave, and on what.
  std::map<std::pair<std::string, std::string>, bool> bfcl_gt_valid;
  std::map<std::string, std::pair<int, int>> agree, agree_gt, agree_type;
  std::string type_examples;
  kvcanary::task::load_detail::for_each_jsonl(golden, [&](const Value& row, const std::string& where) {
    const std::string cat = row.find("category")->s, id = row.find("id")->s, kind = row.find("kind")->s;
    const Entry& e = by_id.at({cat, id});
    REQUIRE(e.q);
    REQUIRE(e.a);
    const auto parsed = parse_tool_calls(row.find("output")->s);
    const AstVerdict v = ast_check(bfcl_category_from_name(cat), e.q->functions, parsed.calls, e.a->ground_truth);
    const bool want = row.find("valid")->b;
    auto& tally = kind == "ground_truth" ? agree_gt[cat] : agree[cat];
    tally.second++;
    tally.first += v.valid == want;
    agree_type[cat].second++;
    const bool same_type = v.valid == want && (want || v.error_type == row.find("error_type")->s);
    agree_type[cat].first += same_type;
    if (!same_type && type_examples.size() < 8)
      type_examples +=
          "\n  " + cat + " " + id + " " + kind + ": ours " + v.error_type + ", bfcl " + row.find("error_type")->s;
    if (kind == "ground_truth") bfcl_gt_valid[{cat, id}] = want;
    CHECK_MESSAGE(v.valid == want, cat << " " << id << " " << kind << ": " << row.find("output")->s << " ours "
                                       << v.error_type << " bfcl " << row.find("error_type")->s);
  });

  // Ground truth rendered here (not by the script) passes wherever it passes under BFCL.
  std::map<std::string, std::pair<int, int>> gt_pass;
  for (const auto& c : cats)
    for (const auto& a : answers[c]) {
      const Entry& e = by_id.at({c, a.id});
      const std::string out = render_gold_python(a.ground_truth, e.q->functions);
      const AstVerdict v =
          ast_check(bfcl_category_from_name(c), e.q->functions, parse_tool_calls(out).calls, a.ground_truth);
      gt_pass[c].second++;
      gt_pass[c].first += v.valid;
      CHECK_MESSAGE(v.valid == bfcl_gt_valid.at({c, a.id}), c << " " << a.id << ": " << out << " -> " << v.error_type);
    }
  if (!type_examples.empty()) MESSAGE("error_type differences (verdicts agree):" << type_examples);
  for (const auto& c : cats)
    MESSAGE(c << ": ground truth passes " << gt_pass[c].first << "/" << gt_pass[c].second
              << "; verdicts equal to bfcl-eval on ground truth " << agree_gt[c].first << "/" << agree_gt[c].second
              << ", on perturbed outputs " << agree[c].first << "/" << agree[c].second << "; same error_type "
              << agree_type[c].first << "/" << agree_type[c].second);
}

TEST_CASE("toolcall seed samples: gold scores 1/1/1, perturbations as hand-worked") {
  const fs::path path = project_data() / "seed_tool_calls.jsonl";
  if (!have(path)) return;
  const auto seeds = load_seed_samples(path);
  REQUIRE(seeds.size() == 12);
  for (const auto& s : seeds) {
    const std::string gold_json =
        to_json(Value::object({{"name", S(s.gold.name.c_str())}, {"arguments", s.gold.args}}));
    auto sc = score_single_call(parse_tool_calls(gold_json), s.gold);
    CHECK_MESSAGE((sc.json_valid && sc.func_correct && sc.arg_match), s.id);
    // Same call wrapped in prose and a fence, and as Python syntax: still 1/1/1 and 0/1/1.
    sc = score_single_call(parse_tool_calls("Sure.\n```json\n" + gold_json + "\n```"), s.gold);
    CHECK((sc.json_valid && sc.func_correct && sc.arg_match));
    std::string py = s.gold.name + "(";
    for (std::size_t k = 0; k < s.gold.args.members.size(); ++k)
      py += (k ? ", " : "") + s.gold.args.members[k].first + "=" + to_python(s.gold.args.members[k].second);
    sc = score_single_call(parse_tool_calls(py + ")"), s.gold);
    CHECK((!sc.json_valid && sc.func_correct && sc.arg_match));
    // Truncated before the last brace: nothing parsed, 0/0/0.
    sc = score_single_call(parse_tool_calls(gold_json.substr(0, gold_json.size() - 1)), s.gold);
    CHECK((!sc.json_valid && !sc.func_correct && !sc.arg_match));
  }
  auto find = [&](const char* id) -> const SeedSample& {
    for (const auto& s : seeds)
      if (s.id == id) return s;
    FAIL("no seed " << id);
    return seeds[0];
  };
  struct Case {
    const char* id;
    const char* output;
    bool j, f, a;
  };
  const Case cases[] = {
      {"weather_paris", R"({"name": "get_weather", "arguments": {"city": "paris"}})", true, true,
       false},  // case-sensitive
      {"weather_paris", R"({"name": "get_forecast", "arguments": {"city": "Paris"}})", true, false, false},
      {"weather_paris", R"({"name": "get_weather", "arguments": {"city": "Paris", "units": "C"}})", true, true, false},
      {"weather_paris", R"({"name": "get_weather", "arguments": {"city": "Paris"})", false, false, false},  // truncated
      {"convert_currency",
       R"({"name": "convert_currency", "arguments": {"amount": 100.0, "from": "USD", "to": "EUR"}})", true, true, true},
      {"convert_currency",
       R"({"name": "convert_currency", "arguments": {"amount": "100", "from": "USD", "to": "EUR"}})", true, true,
       false},
      {"convert_currency", R"({"name": "convert_currency", "arguments": {"to": "EUR", "from": "USD", "amount": 100}})",
       true, true, true},
      {"set_timer",
       R"({"name": "set_timer", "arguments": {"minutes": 10}} {"name": "set_timer", "arguments": {"minutes": 5}})",
       true, true, true},
      {"create_user", R"({"name": "create_user", "arguments": {"username": "bob", "admin": 0}})", true, true,
       false},  // bool is not 0
      {"create_user", R"({"name": "create_user", "arguments": {"username": "bob"}})", true, true, false},
      {"send_email", R"({"name": "send_email", "arguments": {"to": "alice@example.com", "subject": "Hello"}, "id": 1})",
       true, true, true},
      {"stock_price", "The ticker is AAPL.", false, false, false},
  };
  for (const auto& c : cases) {
    const auto sc = score_single_call(parse_tool_calls(c.output), find(c.id).gold);
    CHECK_MESSAGE(sc.json_valid == c.j, c.output);
    CHECK_MESSAGE(sc.func_correct == c.f, c.output);
    CHECK_MESSAGE(sc.arg_match == c.a, c.output);
  }
}

TEST_CASE("toolcall loaders and toolcheck name the file and field on bad input") {
  const fs::path tmp = fs::temp_directory_path() / "kvcanary_toolcall_test";
  fs::create_directories(tmp);
  {
    std::ofstream(tmp / "q.jsonl")
        << R"({"id": "x", "question": [], "function": [{"name": "f", "parameters": {"type": "dict", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}]})"
        << "\n";
    std::ofstream(tmp / "a.jsonl") << R"({"id": "x", "ground_truth": [{"f": {"a": [1]}}]})"
                                   << "\n";
    std::ofstream(tmp / "bad.jsonl") << R"({"id": "x", "ground_truth": [{"f": {"a": [1]}}]})"
                                     << "\n"
                                     << R"({"id": "y", "ground_truth": [{"f": {"a": 1}}]})"
                                     << "\n";
    std::ofstream(tmp / "broken.jsonl") << "{\"id\": \n";
    std::ofstream(tmp / "out.txt") << "f(a=1)";
  }
  const std::string q = (tmp / "q.jsonl").string(), a = (tmp / "a.jsonl").string(), o = (tmp / "out.txt").string();
  try {
    load_bfcl_answers(tmp / "bad.jsonl");
    FAIL("no error");
  } catch (const kvcanary::Error& e) {
    CHECK(std::string(e.what()).find("bad.jsonl: line 2: ground_truth[0]: f: a") != std::string::npos);
  }
  CHECK_THROWS_WITH_AS(load_bfcl_questions(tmp / "broken.jsonl"), doctest::Contains("broken.jsonl: line 1"),
                       kvcanary::Error);
  CHECK_THROWS_WITH_AS(load_bfcl_questions(tmp / "a.jsonl"), doctest::Contains("line 1: function: missing"),
                       kvcanary::Error);

  std::vector<std::string> argv_s = {"toolcheck", "--question", q, "--answer", a, "--id", "x", "--output-file", o};
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  CHECK(kvcanary::cli::run_toolcheck(int(argv.size()), argv.data()) == 0);
  argv_s[6] = "nope";
  argv.clear();
  for (auto& s : argv_s) argv.push_back(s.data());
  CHECK_THROWS_WITH_AS(kvcanary::cli::run_toolcheck(int(argv.size()), argv.data()), doctest::Contains("q.jsonl: id"),
                       kvcanary::Error);
  fs::remove_all(tmp);
}
