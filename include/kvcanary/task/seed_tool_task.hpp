#pragma once
// The Python prototype's 12 single-call tool samples, scored as the prototype scored them
// (json_valid, func_correct, arg_match on the first call), for parity with its numbers.
// functional = func_correct (the right function named in parseable JSON), as the prototype's
// chart and table read these samples; arg_match (exactly the right arguments too) rides along.
//
// prompt_format = "text" is the prototype's prompt verbatim (its tool signature and "Respond with
// ONLY a JSON object" in the user turn), calls parsed from free text; "native" gives the
// signature to the chat template as a tool and asks for the call in the template's <tool_call>
// format (seed_native_prompt), parsed as BFCL parses "FC" models. Scoring is the same.
//
// Config ([[tasks]] type = "seed_tool_calls"): file (default <data>/seed_tool_calls.jsonl),
// prompt_format (native | text; default text; native needs a chat template that renders tools), offset, limit,
// max_new_tokens (128), shots (0), distractor_tokens, distractor_seed, name (default "seed_tool_calls").

#include <string>
#include <vector>

#include "kvcanary/task/prompts.hpp"
#include "kvcanary/task/task.hpp"
#include "kvcanary/task/tool_call_parse.hpp"
#include "kvcanary/task/tool_call_score.hpp"

namespace kvcanary::task {

struct SeedToolTask {
  static constexpr std::string_view type = "seed_tool_calls";

  static SeedToolTask from_config(const io::ConfigTable& t, const TaskContext& ctx) {
    SeedToolTask task;
    task.settings_ = CommonTaskSettings::read(t, "seed_tool_calls", 128);
    const auto file = data_file(t, ctx, "file", "seed_tool_calls.jsonl");
    task.prompt_format_ = prompt_format_from_config(t, ctx.chat_template ? ctx.chat_template() : nullptr);
    t.reject_unknown();
    const auto all = load_seed_samples(file);
    std::vector<TaskSample> every;
    for (const auto& s : all) {
      if (task.prompt_format_ == PromptFormat::Text) {
        // One user turn: "Tool available: ... Respond with ... }} REQUEST" — the request is the
        // question; a prompt of another form has none (all context).
        every.push_back({s.id, seed_messages(s), gold_completion_text(s)});
        if (const std::size_t req = s.prompt.find("}} "); req != std::string::npos)
          every.back().question_chars = s.prompt.size() - (req + 3);
        continue;
      }
      auto native = seed_native_prompt(s);
      if (!native)
        fail(file.string(), s.id + ".prompt",
             "not of the form \"Tool available: NAME(p: type, ...). Respond with ... }} REQUEST\" that "
             "prompt_format = \"native\" rewrites (use prompt_format = \"text\")");
      every.push_back({s.id, std::move(native->messages), seed_native_gold_text(s), std::move(native->tools)});
      question_after_system(every.back());
    }
    for (std::size_t i : task.settings_.indices(all.size())) task.items_.push_back(all[i]);
    task.samples_ = select_samples(every, task.settings_);
    add_distractors(task.samples_, task.settings_, ctx, t);
    return task;
  }

  std::string name() const { return settings_.name; }
  const std::vector<TaskSample>& samples() const { return samples_; }
  std::size_t max_new_tokens() const { return settings_.max_new_tokens; }
  PromptFormat prompt_format() const { return prompt_format_; }

  Verdict score(std::size_t i, const std::string& completion) const {
    const PrototypeScore s = score_single_call(
        prompt_format_ == PromptFormat::Native ? parse_native_tool_calls(completion) : parse_tool_calls(completion),
        items_[i].gold);
    Verdict v;
    v.scores = {{"functional", s.func_correct ? 1.0 : 0.0},
                {"json_valid", s.json_valid ? 1.0 : 0.0},
                {"func_correct", s.func_correct ? 1.0 : 0.0},
                {"arg_match", s.arg_match ? 1.0 : 0.0}};
    if (!s.arg_match)
      v.detail = !s.json_valid ? "no JSON" : !s.func_correct ? "wrong function" : "right function, wrong arguments";
    return v;
  }

 private:
  CommonTaskSettings settings_;
  PromptFormat prompt_format_ = PromptFormat::Text;
  std::vector<SeedSample> items_;
  std::vector<TaskSample> samples_;
};

static_assert(FunctionalTask<SeedToolTask>);

}  // namespace kvcanary::task
