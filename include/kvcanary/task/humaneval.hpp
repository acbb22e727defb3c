#pragma once
// HumanEval problems (OpenAI's HumanEval.jsonl[.gz]) and the program that checks a completion.

#include <simdjson.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/io/gzip_file.hpp"

namespace kvcanary::task {

struct HumanEvalProblem {
  std::string task_id, prompt, entry_point, canonical_solution, test;
};

// The benchmark's own rule: the completion continues the prompt (it is the function body), the
// test defines check(candidate), and calling it on the entry point runs every assertion.
inline std::string humaneval_program(const HumanEvalProblem& p, const std::string& completion) {
  return p.prompt + completion + "\n" + p.test + "\n" + "check(" + p.entry_point + ")\n";
}

inline std::vector<HumanEvalProblem> load_humaneval(const std::filesystem::path& path) {
  const std::string file = path.string();
  const std::string text = io::read_maybe_gzipped(path);
  std::vector<HumanEvalProblem> out;
  simdjson::dom::parser parser;
  std::size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = "line " + std::to_string(line_no);
    simdjson::dom::element doc;
    if (auto e = parser.parse(simdjson::padded_string(line)).get(doc); e != simdjson::SUCCESS)
      fail(file, where, std::string("invalid JSON: ") + simdjson::error_message(e));
    auto field = [&](const char* key) {
      std::string_view s;
      if (doc[key].get_string().get(s) != simdjson::SUCCESS) fail(file, where + "." + key, "missing or not a string");
      return std::string(s);
    };
    out.push_back(
        {field("task_id"), field("prompt"), field("entry_point"), field("canonical_solution"), field("test")});
  }
  if (out.empty()) fail(file, "", "no problems");
  return out;
}

}  // namespace kvcanary::task
