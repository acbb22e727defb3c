#pragma once
// A category of the Berkeley Function-Calling Leaderboard (v4) as a functional task: the
// functions are given to the model, its call(s) are parsed from the output, and BFCL's AST
// check against the possible answers decides. functional = ast_correct; the prototype's
// sub-scores ride along (json_valid; func_correct = the output names exactly the gold
// functions, as a multiset).
//
// Two prompt formats (docs/TASKS.md "Prompting"): `native`, as BFCL scores "FC" models — the
// function docs verbatim as the chat template's tools, the model answers in <tool_call> blocks
// (parse_native_tool_calls) — and `text`, BFCL's prompting mode — our system prompt lists the
// functions and asks for Python-call or JSON syntax (`format`), parsed from free text.
//
// Config ([[tasks]] type = "bfcl"): category (simple_python | multiple | parallel |
// parallel_multiple | live_simple), questions / answers (default <data>/bfcl/BFCL_v4_<category>.json
// and <data>/bfcl/possible_answer/...), prompt_format (native | text; default native when the
// model's chat template renders tools, else text), format (text only: python | json; default
// python, BFCL's own prompting format), offset, limit, max_new_tokens (256), shots (0; examples
// are other questions' user turns and gold calls — their functions are not added to the
// prompt), distractor_tokens, distractor_seed, name (default "bfcl_<category>").

#include <algorithm>
#include <string>
#include <vector>

#include "kvcanary/task/prompts.hpp"
#include "kvcanary/task/task.hpp"
#include "kvcanary/task/tool_call_parse.hpp"
#include "kvcanary/task/tool_call_score.hpp"

namespace kvcanary::task {

struct BfclTask {
  static constexpr std::string_view type = "bfcl";

  static BfclTask from_config(const io::ConfigTable& t, const TaskContext& ctx) {
    BfclTask task;
    task.category_name_ = t.require_string("category");
    static const std::vector<std::string> known = {"simple_python", "multiple", "parallel", "parallel_multiple",
                                                   "live_simple"};
    if (std::find(known.begin(), known.end(), task.category_name_) == known.end())
      t.fail_at("category", "'" + task.category_name_ +
                                "' is not one of simple_python, multiple, parallel, parallel_multiple, live_simple");
    task.category_ = bfcl_category_from_name(task.category_name_);
    task.settings_ = CommonTaskSettings::read(t, "bfcl_" + task.category_name_, 256);
    const std::string file = "BFCL_v4_" + task.category_name_ + ".json";
    const auto qpath = data_file(t, ctx, "questions", "bfcl/" + file);
    const auto apath = data_file(t, ctx, "answers", "bfcl/possible_answer/" + file);
    task.prompt_format_ = prompt_format_from_config(t, ctx.chat_template ? ctx.chat_template() : nullptr);
    const std::string format = t.get_string("format", "python");
    if (format != "python" && format != "json") t.fail_at("format", "must be python or json");
    if (task.prompt_format_ == PromptFormat::Native && t.opt_string("format"))
      t.fail_at("format", "applies to prompt_format = \"text\" only (the native format is the template's)");
    task.format_ = format == "python" ? ToolFormat::Python : ToolFormat::Json;
    t.reject_unknown();

    const auto questions = load_bfcl_questions(qpath);
    const auto answers = load_bfcl_answers(apath);
    std::vector<TaskSample> every;
    std::vector<Item> items;
    for (const BfclQuestion& q : questions) {
      auto a = std::find_if(answers.begin(), answers.end(), [&](const BfclAnswer& x) { return x.id == q.id; });
      if (a == answers.end()) fail(apath.string(), "id", "no possible answer for '" + q.id + "'");
      items.push_back({q, *a});
      if (task.prompt_format_ == PromptFormat::Native)
        every.push_back({q.id, bfcl_native_messages(q), bfcl_native_gold_text(a->ground_truth, q.functions),
                         native_tools(q.functions)});
      else
        every.push_back(
            {q.id, bfcl_messages(q, task.format_), gold_completion_text(a->ground_truth, q.functions, task.format_)});
      question_after_system(every.back());
    }
    for (std::size_t i : task.settings_.indices(questions.size())) task.items_.push_back(items[i]);
    task.samples_ = select_samples(every, task.settings_);
    add_distractors(task.samples_, task.settings_, ctx, t);
    return task;
  }

  std::string name() const { return settings_.name; }
  const std::vector<TaskSample>& samples() const { return samples_; }
  std::size_t max_new_tokens() const { return settings_.max_new_tokens; }
  PromptFormat prompt_format() const { return prompt_format_; }

  Verdict score(std::size_t i, const std::string& completion) const {
    const auto& [q, a] = items_[i];
    const ParseResult parsed =
        prompt_format_ == PromptFormat::Native ? parse_native_tool_calls(completion) : parse_tool_calls(completion);
    const AstVerdict ast = ast_check(category_, q.functions, parsed.calls, a.ground_truth);
    std::vector<std::string> got, want;
    for (const auto& c : parsed.calls) got.push_back(c.name);
    for (const auto& g : a.ground_truth) want.push_back(g.name);
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    Verdict v;
    v.scores = {{"functional", ast.valid ? 1.0 : 0.0},
                {"ast_correct", ast.valid ? 1.0 : 0.0},
                {"json_valid", parsed.json_valid ? 1.0 : 0.0},
                {"func_correct", !got.empty() && got == want ? 1.0 : 0.0}};
    if (!ast.valid) v.detail = ast.error_type;
    return v;
  }

 private:
  struct Item {
    BfclQuestion question;
    BfclAnswer answer;
  };
  std::string category_name_;
  BfclCategory category_ = BfclCategory::simple;
  ToolFormat format_ = ToolFormat::Python;
  PromptFormat prompt_format_ = PromptFormat::Text;
  CommonTaskSettings settings_;
  std::vector<Item> items_;
  std::vector<TaskSample> samples_;
};

static_assert(FunctionalTask<BfclTask>);

}  // namespace kvcanary::task
