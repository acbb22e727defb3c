#pragma once
// The contract between a sweep and a task.
//
// A *functional* task is a list of samples (chat messages + the gold answer written the way the
// model is asked to answer) and a scorer for a completion. Its verdict carries "functional" (0 or
// 1: the bit the product is about) and the task's own sub-scores. The runner renders the messages
// with the model's chat template, generates under a compressor, and scores the gold answer
// teacher-forced under the same compressed cache (the paired gold perplexity).
//
// A *perplexity* task is a list of (context, continuation) token spans of held-out text: the
// context goes in as a prompt (compressed as one), the continuation is scored teacher-forced.
//
// Tasks are built from their table in the sweep config (`[[tasks]]`), through a TaskContext
// that gives them the data directory, the tokenizer and a source of distractor text.
// Adding a task = one header defining such a struct + one test file + one entry in
// task/registry.hpp.

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/core/splitmix64.hpp"
#include "kvcanary/io/chat_template.hpp"
#include "kvcanary/io/config_table.hpp"
#include "kvcanary/io/tokenizer.hpp"
#include "kvcanary/task/exec_result.hpp"
#include "kvcanary/task/prompts.hpp"

namespace kvcanary::task {

using Scores = std::map<std::string, double>;

struct TaskSample {
  std::string id;
  std::vector<io::ChatMessage> messages;  // the prompt, before the chat template
  std::string gold;                       // the gold answer as the model is asked to write it
  std::vector<std::string> tools{};       // the template's `tools`, each as `tojson` writes it; empty: none
  // The question, for scope `context` (docs/TASKS.md "Scope"): the last `question_turns`
  // messages plus the last `question_chars` characters of the message before them. Counted from
  // the end, so examples (shots) and distractor preambles, which go in front, stay context.
  // Both 0: no question — the whole prompt is context, as in scope `prompt`.
  std::size_t question_turns = 0, question_chars = 0;
};

struct Verdict {
  Scores scores;       // always has "functional"
  std::string detail;  // why it failed (sandbox status, BFCL error type); empty when it passed
};

struct TextSpan {
  std::string id;
  std::vector<std::int32_t> context, continuation;
};

struct TaskContext {
  std::filesystem::path data_dir;
  const io::Tokenizer* tokenizer = nullptr;
  // Lazily read text for distractor preambles (WikiText-2 by default).
  std::filesystem::path distractor_source;
  // The model's chat template, loaded on first call (a base model has none: nullptr). Tool-calling
  // tasks read it to choose their default prompt_format.
  std::function<const io::ChatTemplate*()> chat_template{};
  // Runs a generated program (code tasks only): task/code_exec.hpp's run_python, opt-in because
  // the sandbox is Linux only. Empty: a code task refuses to start and says so.
  ProgramRunner run_program{};
};

template <class T>
concept FunctionalTask = requires(const T& t, std::size_t i, const std::string& completion) {
  { T::type } -> std::convertible_to<std::string_view>;
  { t.name() } -> std::convertible_to<std::string>;
  { t.samples() } -> std::convertible_to<const std::vector<TaskSample>&>;
  { t.score(i, completion) } -> std::same_as<Verdict>;
  { t.max_new_tokens() } -> std::convertible_to<std::size_t>;
};

// Optional: a functional task may end generation early when its answer is complete
// (`bool complete(std::string_view decoded_so_far) const`), without changing its verdict.
template <class T>
concept HasCompletionCheck = requires(const T& t, std::string_view text) {
  { t.complete(text) } -> std::convertible_to<bool>;
};

template <class T>
concept PerplexityTask = requires(const T& t) {
  { T::type } -> std::convertible_to<std::string_view>;
  { t.name() } -> std::convertible_to<std::string>;
  { t.spans() } -> std::convertible_to<const std::vector<TextSpan>&>;
};

// ---------------------------------------------------------------- shared config knobs

// Keys every functional task understands: which samples (offset, limit, sample_seed), the
// generation cap and the distractor preamble (docs/TASKS.md "Prompting").
struct CommonTaskSettings {
  std::string name;
  std::size_t offset = 0, limit = 0;  // limit 0: all
  // Set: offset/limit slice a seeded permutation of the dataset, not the file's order. BFCL's
  // files are sorted by topic, so their first 100 questions are not a sample of the category.
  std::optional<std::uint64_t> sample_seed;
  std::size_t max_new_tokens = 256;
  std::size_t distractor_tokens = 0;
  std::uint64_t distractor_seed = 0;
  std::size_t shots = 0;  // solved examples from the same dataset shown before the task

  static CommonTaskSettings read(const io::ConfigTable& t, std::string default_name,
                                 std::size_t default_max_new_tokens) {
    CommonTaskSettings s;
    s.name = t.get_string("name", std::move(default_name));
    if (s.name.empty() || s.name.find('|') != std::string::npos) t.fail_at("name", "must be non-empty and free of '|'");
    s.offset = static_cast<std::size_t>(t.get_int("offset", 0));
    s.limit = static_cast<std::size_t>(t.get_int("limit", 0));
    if (t.has("sample_seed")) s.sample_seed = static_cast<std::uint64_t>(t.get_int("sample_seed", 0));
    s.max_new_tokens =
        static_cast<std::size_t>(t.get_int("max_new_tokens", static_cast<std::int64_t>(default_max_new_tokens), 1));
    s.distractor_tokens = static_cast<std::size_t>(t.get_int("distractor_tokens", 0));
    s.distractor_seed = static_cast<std::uint64_t>(t.get_int("distractor_seed", 0));
    s.shots = static_cast<std::size_t>(t.get_int("shots", 0));
    return s;
  }

  // The dataset indices the task runs, ascending: the slice [offset, offset + limit) of the n
  // items — in file order, or with `sample_seed` of a Fisher–Yates permutation drawn from
  // SplitMix64 (the same subset on every platform; a uniform random subset of `limit` items).
  std::vector<std::size_t> indices(std::size_t n) const {
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    if (sample_seed) {
      std::uint64_t state = *sample_seed;
      for (std::size_t i = n; i > 1; --i) {
        state = splitmix64(state);
        std::swap(order[i - 1], order[state % i]);  // modulo bias < i / 2^64: immaterial here
      }
    }
    const std::size_t begin = std::min(offset, n);
    const std::size_t end = limit == 0 ? n : std::min(n, begin + limit);
    std::vector<std::size_t> out(order.begin() + static_cast<std::ptrdiff_t>(begin),
                                 order.begin() + static_cast<std::ptrdiff_t>(end));
    std::sort(out.begin(), out.end());
    return out;
  }
};

inline std::filesystem::path data_file(const io::ConfigTable& t, const TaskContext& ctx, const std::string& key,
                                       const std::string& default_relative) {
  const std::string given = t.get_string(key, "");
  std::filesystem::path p = given.empty() ? ctx.data_dir / default_relative : std::filesystem::path(given);
  if (!std::filesystem::exists(p))
    t.fail_at(key,
              "data file '" + p.string() + "' not found (run scripts/fetch_data.sh, or set [data] dir or " + key + ")");
  return p;
}

// k-shot prompting: before sample i's own turns, `shots` other samples of the same dataset as
// solved exchanges (their user turns, then their gold answer as the assistant's turn). The
// examples are samples i+1, i+2, ... of the whole dataset (wrapping), never i itself, so each
// prompt is a pure function of the dataset and the config. A system turn stays first. Small
// models that ignore an answer format often follow it after one example; the knob exists so a
// weak default model can still produce a functional signal (docs/TASKS.md "Prompting").
inline std::vector<io::ChatMessage> with_examples(const std::vector<TaskSample>& all, std::size_t i,
                                                  std::size_t shots) {
  const std::vector<io::ChatMessage>& own = all[i].messages;
  if (shots == 0 || all.size() < 2) return own;
  std::vector<io::ChatMessage> out;
  std::size_t first_own = 0;
  if (!own.empty() && own[0].role == "system") out.push_back(own[first_own++]);
  for (std::size_t k = 1; k <= std::min(shots, all.size() - 1); ++k) {
    const TaskSample& ex = all[(i + k) % all.size()];
    for (const auto& m : ex.messages)
      if (m.role == "user") out.push_back(m);
    out.push_back({"assistant", ex.gold});
  }
  out.insert(out.end(), own.begin() + static_cast<std::ptrdiff_t>(first_own), own.end());
  return out;
}

// Scope `context` for a tool-calling sample: the question is every turn after the system turn
// (which the template fills with the tools). Counted as the first such turn's own characters
// plus the turns after it, so a distractor preamble, prepended to that turn, stays context.
inline void question_after_system(TaskSample& s) {
  const std::size_t first = !s.messages.empty() && s.messages[0].role == "system" ? 1 : 0;
  if (first >= s.messages.size()) return;
  s.question_turns = s.messages.size() - first - 1;
  s.question_chars = s.messages[first].content.size();
}

// The samples of the configured slice, with their examples (drawn from the whole dataset).
inline std::vector<TaskSample> select_samples(const std::vector<TaskSample>& all, const CommonTaskSettings& s) {
  std::vector<TaskSample> out;
  for (std::size_t i : s.indices(all.size()))
    out.push_back({all[i].id, with_examples(all, i, s.shots), all[i].gold, all[i].tools, all[i].question_turns,
                   all[i].question_chars});
  return out;
}

// Adds the distractor preamble to every sample, each with its own seed-derived start so that
// samples do not share one preamble (which would let a cache-friendly policy learn it).
inline void add_distractors(std::vector<TaskSample>& samples, const CommonTaskSettings& s, const TaskContext& ctx,
                            const io::ConfigTable& t) {
  if (s.distractor_tokens == 0) return;
  if (!ctx.tokenizer) t.fail_at("distractor_tokens", "needs a tokenizer");
  if (!std::filesystem::exists(ctx.distractor_source))
    t.fail_at("distractor_tokens", "distractor text '" + ctx.distractor_source.string() + "' not found");
  std::ifstream in(ctx.distractor_source, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (auto& sample : samples) {
    const std::uint64_t seed =
        s.distractor_seed ^ std::stoull(prompt_hash(sample.id), nullptr, 16);  // stable across platforms
    sample.messages = with_distractor(std::move(sample.messages),
                                      distractor_preamble(s.distractor_tokens, *ctx.tokenizer, text, seed));
  }
}

}  // namespace kvcanary::task
