// Scope `context`: where a sample's question starts in its tokenized prompt
// (task/scope_split.hpp), on the tiny chat model (byte tokens, SmolLM2's chat template).

#include <doctest/doctest.h>

#include "../run/sweep_test_support.hpp"
#include "kvcanary/model/model_dir.hpp"
#include "kvcanary/task/scope_split.hpp"

using namespace kvcanary;

TEST_CASE("scope split: the question's tokens are exactly those from its first character, counted from the end") {
  test::TempDir tmp;
  auto m = model::ModelDir<float>::load(test::make_tiny_chat_model(tmp.path), 1);
  const io::ChatTemplate& chat = m.chat_template();
  auto split = [&](const task::TaskSample& s, std::string& head, std::string& tail) {
    const std::string rendered = chat.render(s.messages, true, s.tools);
    const auto prompt = m.tokenizer.encode(rendered);
    const std::size_t q = task::question_tokens(chat, m.tokenizer, s, rendered, prompt);
    head = m.tokenizer.decode(std::span(prompt).first(prompt.size() - q));
    tail = m.tokenizer.decode(std::span(prompt).last(q));
    return q;
  };
  std::string head, tail;

  // The last characters of the last turn (HumanEval, the seed prompts): the tools/instruction stay context.
  task::TaskSample s{"a", {{"system", "You are helpful."}, {"user", "Tools: f(x). QUESTION: call f on 3"}}, "f(3)"};
  s.question_chars = std::string("QUESTION: call f on 3").size();
  CHECK(split(s, head, tail) > 0);
  CHECK(tail.rfind("QUESTION: call f on 3", 0) == 0);
  CHECK(head.size() >= 12);
  CHECK(head.substr(head.size() - 13) == "Tools: f(x). ");

  // Every turn after the system turn (BFCL): the system turn and the user turn's header are context.
  task::TaskSample b{"b", {{"system", "functions: g"}, {"user", "What is g(2)?"}}, "g(2)"};
  task::question_after_system(b);
  CHECK(b.question_turns == 0);
  CHECK(b.question_chars == std::string("What is g(2)?").size());
  split(b, head, tail);
  CHECK(tail.rfind("What is g(2)?", 0) == 0);
  CHECK(head.find("functions: g") != std::string::npos);

  // A distractor prepended to the question's turn stays context (counted from the end).
  b.messages[1].content = "Some unrelated text. " + b.messages[1].content;
  split(b, head, tail);
  CHECK(tail.rfind("What is g(2)?", 0) == 0);
  CHECK(head.find("Some unrelated text. ") != std::string::npos);

  // No question marked: nothing appended uncompressed.
  task::TaskSample none{"c", {{"user", "hello"}}, "hi"};
  const std::string rendered = chat.render(none.messages, true, none.tools);
  CHECK(task::question_tokens(chat, m.tokenizer, none, rendered, m.tokenizer.encode(rendered)) == 0);
}
