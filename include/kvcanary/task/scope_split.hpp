#pragma once
// Where a functional sample's question starts in its tokenized prompt, for scope `context`
// (kv/policy.hpp Scope, docs/TASKS.md "Scope"): the compressor sees the tokens before it (the
// reusable prefix) and the question is appended uncompressed.
//
// The task marks the question in its messages (TaskSample::question_turns / question_chars);
// here a marker string is put at that point, the messages are rendered through the model's own
// chat template, and the text before the marker is tokenized. The split is the longest common
// token prefix of that text and the whole prompt: where BPE merges a token across the boundary,
// the merged token goes to the question — a question token is never compressed.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/io/chat_template.hpp"
#include "kvcanary/io/tokenizer.hpp"
#include "kvcanary/task/task.hpp"

namespace kvcanary::task {

// Tokens at the end of `prompt` (the tokens of `rendered`, the sample rendered with a generation
// prompt) that belong to the question; 0 when the sample marks none. At least one token is
// always left to the context.
inline std::size_t question_tokens(const io::ChatTemplate& chat, const io::Tokenizer& tokenizer, const TaskSample& s,
                                   const std::string& rendered, std::span<const std::int32_t> prompt) {
  if (s.question_turns == 0 && s.question_chars == 0) return 0;
  const std::size_t n = s.messages.size(), before = s.question_turns + (s.question_chars ? 1 : 0);
  if (before > n) fail("<task>", s.id + ".question_turns", "more question turns than the sample has messages");
  std::vector<io::ChatMessage> marked = s.messages;
  const std::size_t m = n - before;
  if (s.question_chars > marked[m].content.size()) fail("<task>", s.id + ".question_chars", "longer than its message");
  static constexpr std::string_view kMark = "\x1fkvcanary-question\x1f";
  marked[m].content.insert(marked[m].content.size() - s.question_chars, kMark);
  std::string text = chat.render(marked, /*add_generation_prompt=*/true, s.tools);
  const std::size_t at = text.find(kMark);
  if (at == std::string::npos || std::string(text).erase(at, kMark.size()) != rendered)
    fail("<task>", s.id + ".question",
         "the chat template changes the question's text; context and question cannot be split");
  const std::vector<std::int32_t> context = tokenizer.encode(text.substr(0, at));
  std::size_t common = 0;
  while (common < context.size() && common < prompt.size() && context[common] == prompt[common]) ++common;
  if (common == 0) common = 1;
  return prompt.size() > common ? prompt.size() - common : 0;
}

}  // namespace kvcanary::task
