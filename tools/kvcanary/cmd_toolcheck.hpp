#pragma once
// kvcanary toolcheck: score one model output for one BFCL entry and print the sub-scores
// as one JSON line, so a shell loop over a generation run can build the tool-call table.

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "args.hpp"
#include "options.hpp"
#include "kvcanary/core/error.hpp"
#include "kvcanary/task/tool_call_parse.hpp"
#include "kvcanary/task/tool_call_score.hpp"

namespace kvcanary::cli {

inline const Command& toolcheck_command() {
  static const Command c = [] {
    auto text = text_options("the model's output");
    text[1].alias = "--output-file";  // its name before the flags were unified
    return Command{
        "toolcheck",
        "",
        0,
        0,
        "score a model's tool-call output against BFCL's possible answers",
        "Scores one model output for one BFCL entry and prints the sub-scores as one JSON line. The category\n"
        "(simple/multiple/parallel/parallel_multiple) comes from the question file's name.",
        options_of(
            {{{"--question", "Q.jsonl", "required", "BFCL question file"},
              {"--answer", "A.jsonl", "required", "BFCL possible-answer file"},
              {"--id", "ID", "required", "the entry to score"},
              {"--prompt-format", "native|text", "text",
               "native: the output's <tool_call> blocks, as BFCL reads an FC model's; text: calls in free text"}},
             text})};
  }();
  return c;
}

// The category (simple/multiple/parallel/parallel_multiple) comes from the question file's
// name, as BFCL's file naming encodes it. --prompt-format native reads the output's <tool_call>
// blocks as BFCL reads an FC model's (parse_native_tool_calls); text (the default) parses calls
// from free text (parse_tool_calls).
inline int run_toolcheck(const Args& args) {
  using namespace kvcanary::task;
  const std::string qpath = args.get("--question"), apath = args.get("--answer"), id = args.get("--id");

  const auto questions = load_bfcl_questions(qpath);
  const auto answers = load_bfcl_answers(apath);
  const BfclQuestion* q = nullptr;
  for (const auto& x : questions)
    if (x.id == id) {
      q = &x;
      break;
    }
  if (!q) fail(qpath, "id", "no entry with id '" + id + "'");
  const BfclAnswer* a = nullptr;
  for (const auto& x : answers)
    if (x.id == id) {
      a = &x;
      break;
    }
  if (!a) fail(apath, "id", "no entry with id '" + id + "'");

  const std::string output = read_text_input(args, /*utf8_only=*/false).text;
  const std::string format = args.get("--prompt-format", "text");
  if (format != "text" && format != "native")
    fail("command line", "--prompt-format", "must be native or text, not '" + format + "'");
  const ParseResult parsed = format == "native" ? parse_native_tool_calls(output) : parse_tool_calls(output);

  const BfclCategory cat = bfcl_category_from_name(std::filesystem::path(qpath).filename().string());
  const AstVerdict v = ast_check(cat, q->functions, parsed.calls, a->ground_truth);

  // func_correct: the output names the gold functions, as a multiset (order-free like
  // BFCL's parallel matching); arg_match would duplicate ast_valid here, so it is absent.
  std::vector<std::string> got, want;
  for (const auto& c : parsed.calls) got.push_back(c.name);
  for (const auto& g : a->ground_truth) want.push_back(g.name);
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());

  Value out = Value::object({
      {"id", Value::string(id)},
      {"json_valid", Value::boolean(parsed.json_valid)},
      {"calls_parsed", Value::integer(std::int64_t(parsed.calls.size()))},
      {"func_correct", Value::boolean(!got.empty() && got == want)},
      {"ast_valid", Value::boolean(v.valid)},
      {"error_type", v.valid ? Value::null() : Value::string(v.error_type)},
  });
  std::printf("%s\n", to_json(out).c_str());
  return 0;
}

// argv[0] is the command's name ("toolcheck"), the options follow.
inline int run_toolcheck(int argc, char** argv) {
  return run_with_args(toolcheck_command(), argc, argv, [](const Args& a) { return run_toolcheck(a); });
}

}  // namespace kvcanary::cli
