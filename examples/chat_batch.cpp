// Three chat prompts answered together: one prefill each, then a batched greedy decode in
// which all unfinished sequences advance in a single forward call per step.
//
//   build/bin/examples/chat_batch [MODEL_DIR]

#include <kvcanary/kvcanary.hpp>

#include <cstdio>
#include <iostream>
#include <vector>

int main(int argc, char** argv) try {
  namespace km = kvcanary::model;
  auto m = km::ModelDir<float>::load(argc > 1 ? argv[1] : KVCANARY_DEFAULT_MODEL_DIR);

  const std::vector<std::string> questions = {
      "What is the capital of France?",
      "Write a Python one-liner that reverses a string s.",
      "Give a JSON object with keys name and age for a 30-year-old named Ada.",
  };
  std::vector<std::vector<std::int32_t>> prompts;
  for (const auto& q : questions) {
    const std::vector<kvcanary::io::ChatMessage> chat = {{"user", q}};
    prompts.push_back(m.tokenizer.encode(m.chat_template().render(chat, /*add_generation_prompt=*/true)));
  }

  kvcanary::engine::GenerateOptions opt;
  opt.max_new_tokens = 48;
  const auto answers = kvcanary::engine::generate_greedy(*m.transformer, prompts, opt);
  for (std::size_t i = 0; i < answers.size(); ++i) {
    std::cout << "Q: " << questions[i] << "\nA: " << m.tokenizer.decode(answers[i].tokens, /*skip_special_tokens=*/true)
              << "\n   (" << answers[i].tokens.size() << " tokens, " << answers[i].finish_reason << ")\n\n";
  }
  return 0;
} catch (const kvcanary::Error& e) {
  std::fprintf(stderr, "chat_batch: error: %s\n", e.what());
  return kvcanary::kBadInputExitCode;
}
