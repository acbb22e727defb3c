// Greedy generation's stopping rules, on a tiny golden model with the byte tokenizer.

#include <doctest/doctest.h>

#include "../support/json_file.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/io/tokenizer.hpp"
#include "kvcanary/engine/generate.hpp"

using namespace kvcanary;

namespace {
struct Tiny {
  model::Transformer<float> m{io::load_hf_config(test::test_data("tiny/llama_tied_mha")),
                              test::test_data("tiny/llama_tied_mha"), 1};
  io::Tokenizer tok = io::Tokenizer::from_file(test::test_data("tiny/byte_tokenizer.json"));
};
}  // namespace

TEST_CASE("generate: length limit, EOS and stop strings end a sequence as transformers does") {
  Tiny t;
  const std::vector<std::vector<std::int32_t>> prompt = {t.tok.encode("Once upon a time")};
  engine::GenerateOptions opt;
  opt.max_new_tokens = 24;
  opt.eos_ids = {-1};
  const auto free_run = engine::generate_greedy(t.m, prompt, opt)[0];
  REQUIRE(free_run.tokens.size() == 24);
  CHECK(free_run.finish_reason == "length");

  SUBCASE("an EOS id stops at its first occurrence and is kept") {
    opt.eos_ids = {free_run.tokens[5]};
    const auto g = engine::generate_greedy(t.m, prompt, opt)[0];
    std::size_t first = 0;
    while (free_run.tokens[first] != free_run.tokens[5]) ++first;
    CHECK(g.finish_reason == "eos");
    CHECK(g.tokens == std::vector<std::int32_t>(free_run.tokens.begin(),
                                                free_run.tokens.begin() + static_cast<std::ptrdiff_t>(first + 1)));
  }
  SUBCASE("a stop string stops once the continuation contains it") {
    // A detokenizer that spells ids as "id," makes the expected stopping point exact.
    auto spell = [](std::span<const std::int32_t> ids) {
      std::string s;
      for (auto id : ids) s += std::to_string(id) + ",";
      return s;
    };
    const std::string text = spell(free_run.tokens);
    const std::string stop = "," + spell(std::span(free_run.tokens).subspan(8, 2));
    opt.stop_strings = {"never-produced", stop};
    const auto g = engine::generate_greedy(t.m, prompt, opt, spell)[0];
    CHECK(g.finish_reason == "stop");
    const std::string got = spell(g.tokens);
    CHECK(got.size() == text.find(stop) + stop.size());
    CHECK(text.rfind(got, 0) == 0);
  }
  SUBCASE("max_new_tokens 0 generates nothing") {
    opt.max_new_tokens = 0;
    const auto g = engine::generate_greedy(t.m, prompt, opt)[0];
    CHECK(g.tokens.empty());
    CHECK(g.finish_reason == "length");
  }
}
