#pragma once
// HumanEval (Chen et al. 2021) as a functional task: the model is asked for the completed
// function, the program is built by HumanEval's rule (task/prompts.hpp), and the sandbox runs
// the problem's tests — the runner the TaskContext carries (task/exec_result.hpp: the sandbox is
// opt-in). functional = pass@1 with greedy decoding (one sample per problem).
//
// Config ([[tasks]] type = "humaneval"): file (default <data>/HumanEval.jsonl.gz), offset,
// limit, max_new_tokens (384), timeout_s (10), memory_mb (1024), shots (0), distractor_tokens,
// distractor_seed, name (default "humaneval").

#include <string>
#include <vector>

#include "kvcanary/task/exec_result.hpp"
#include "kvcanary/task/humaneval.hpp"
#include "kvcanary/task/prompts.hpp"
#include "kvcanary/task/task.hpp"

namespace kvcanary::task {

struct HumanEvalTask {
  static constexpr std::string_view type = "humaneval";

  static HumanEvalTask from_config(const io::ConfigTable& t, const TaskContext& ctx) {
    HumanEvalTask task;
    if (!ctx.run_program)
      t.fail_at("type",
                "humaneval runs the generated code, and this program has no sandbox: include "
                "<kvcanary/task/code_exec.hpp> and pass task::run_python (TaskContext::run_program, or "
                "run::Sweep's constructor); the kvcanary CLI does");
    task.run_program_ = ctx.run_program;
    task.settings_ = CommonTaskSettings::read(t, "humaneval", 384);
    const auto file = data_file(t, ctx, "file", "HumanEval.jsonl.gz");
    task.limits_.timeout_s = t.get_double("timeout_s", 10.0);
    if (!(task.limits_.timeout_s > 0)) t.fail_at("timeout_s", "must be positive");
    task.limits_.memory_bytes = static_cast<std::size_t>(t.get_int("memory_mb", 1024, 64)) << 20;
    // A solution and its tests run in one process; a timeout with its CPU unspent was the
    // machine's load (code_exec.hpp), so it gets two more runs before it counts.
    task.limits_.starved_retries = 2;
    t.reject_unknown();
    const auto all = load_humaneval(file);
    std::vector<TaskSample> every;
    // Question: the problem's code block; context: the instruction (and the distractor preamble).
    for (const auto& p : all) {
      auto messages = humaneval_messages(p);
      const std::size_t question = messages.back().content.size() - kHumanEvalInstruction.size();
      every.push_back({p.task_id, std::move(messages), humaneval_gold_completion_text(p), {}, 0, question});
    }
    for (std::size_t i : task.settings_.indices(all.size())) task.problems_.push_back(all[i]);
    task.samples_ = select_samples(every, task.settings_);
    add_distractors(task.samples_, task.settings_, ctx, t);
    return task;
  }

  std::string name() const { return settings_.name; }
  const std::vector<TaskSample>& samples() const { return samples_; }
  std::size_t max_new_tokens() const { return settings_.max_new_tokens; }
  const std::vector<HumanEvalProblem>& problems() const { return problems_; }

  // The answer is complete once its first code block has closed: extract_code reads nothing
  // after it, so the explanation small models append is not worth generating.
  bool complete(std::string_view text) const {
    const auto open = text.find("```");
    return open != std::string_view::npos && text.find("```", open + 3) != std::string_view::npos;
  }

  Verdict score(std::size_t i, const std::string& completion) const {
    const ExecResult r = run_program_(humaneval_completion_program(problems_[i], completion), limits_);
    const bool pass = r.status == "pass";
    Verdict v;
    v.scores = {{"functional", pass ? 1.0 : 0.0}, {"pass@1", pass ? 1.0 : 0.0}};
    if (!pass) {
      // The sandbox's directory has a random name; a row must not depend on it (resumed runs
      // reproduce rows exactly), so it is written as <sandbox>.
      std::string err = r.stderr_tail;
      for (std::size_t at; (at = err.find("/kvcanary-exec-")) != std::string::npos;) {
        std::size_t begin = at, end = err.find('/', at + 1);
        while (begin > 0 && err[begin - 1] != '"' && err[begin - 1] != ' ' && err[begin - 1] != '\n') --begin;
        err.replace(begin, (end == std::string::npos ? err.size() : end) - begin, "<sandbox>");
      }
      std::string tail = err.size() > 300 ? err.substr(err.size() - 300) : err;
      v.detail = r.status + (tail.empty() ? "" : ": " + tail);
    }
    return v;
  }

 private:
  CommonTaskSettings settings_;
  ExecLimits limits_;
  ProgramRunner run_program_;
  std::vector<HumanEvalProblem> problems_;
  std::vector<TaskSample> samples_;
};

static_assert(FunctionalTask<HumanEvalTask>);

}  // namespace kvcanary::task
