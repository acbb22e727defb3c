// engine/reference_check.hpp and io/logit_reference.hpp on a tiny golden model: a reference
// written from the model's own outputs must agree everywhere; each planted disagreement must
// be counted where it was planted; a malformed reference is one Error naming file and field.

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "../support/json_file.hpp"
#include "../support/temp_dir.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/io/tokenizer.hpp"
#include "kvcanary/engine/reference_check.hpp"

using namespace kvcanary;
namespace fs = std::filesystem;

namespace {

struct Tiny {
  model::Transformer<float> m{io::load_hf_config(test::test_data("tiny/qwen2_bias")),
                              test::test_data("tiny/qwen2_bias"), 1};
  io::Tokenizer tok = io::Tokenizer::from_file(test::test_data("tiny/byte_tokenizer.json"));
};

template <class T>
std::string list(const std::vector<T>& v) {
  std::ostringstream s;
  s.precision(9);
  s << "[";
  for (std::size_t i = 0; i < v.size(); ++i) s << (i ? "," : "") << v[i];
  return s.str() + "]";
}

// The model's own outputs in the golden scripts' layout, under key prefix "hf_".
// plant(prompt index, top1, greedy) may alter a prompt's reference before it is written.
template <class Plant>
fs::path write_self_reference(Tiny& t, const fs::path& dir, const std::vector<std::string>& texts, Plant plant) {
  const std::size_t V = static_cast<std::size_t>(t.m.config().vocab_size);
  std::ostringstream js;
  js << "{\"meta\":{},\"prompts\":[";
  for (std::size_t k = 0; k < texts.size(); ++k) {
    const auto ids = t.tok.encode(texts[k]);
    kv::KvCache cache = t.m.new_cache();
    std::vector<float> logits;
    const model::Segment seg{&cache, ids, model::Logits::All};
    t.m.forward(std::span<const model::Segment>(&seg, 1), logits);
    std::vector<std::int32_t> top1;
    std::vector<float> top1_logit, margin;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const float* row = &logits[i * V];
      const auto best = engine::argmax(row, V);
      float second = -1e30f;
      for (std::size_t j = 0; j < V; ++j)
        if (static_cast<std::int32_t>(j) != best) second = std::max(second, row[j]);
      top1.push_back(best);
      top1_logit.push_back(row[best]);
      margin.push_back(row[best] - second);
    }
    engine::GenerateOptions opt;
    opt.max_new_tokens = 32;
    opt.eos_ids = {-1};
    const std::vector<std::vector<std::int32_t>> in = {ids};
    auto greedy = engine::generate_greedy(t.m, std::span<const std::vector<std::int32_t>>(in), opt)[0].tokens;
    const float* last = &logits[(ids.size() - 1) * V];
    plant(k, top1, greedy);
    js << (k ? "," : "") << "{\"name\":\"p" << k << "\",\"kind\":\"prose\",\"text\":\"" << texts[k]
       << "\",\"ids\":" << list(ids) << ",\"hf_top1\":" << list(top1) << ",\"hf_top1_logit\":" << list(top1_logit)
       << ",\"hf_top1_margin\":" << list(margin) << ",\"hf_greedy_ids\":" << list(greedy)
       << ",\"hf_last_logits_top20\":[[" << top1.back() << "," << last[top1.back()] << "]]}";
  }
  js << "]}\n";
  const fs::path path = dir / "reference.json";
  std::ofstream(path) << js.str();
  return path;
}

const std::vector<std::string> kTexts = {"Once upon a time", "def add(a, b):", "x = [1, 2, 3]"};

}  // namespace

TEST_CASE("reference check: the model against its own outputs agrees at every position and meets the gate") {
  Tiny t;
  test::TempDir dir;
  const auto path = write_self_reference(t, dir.path, kTexts, [](auto, auto&, auto&) {});
  const auto ref = io::read_logit_reference(path, "hf_");
  REQUIRE(ref.prompts.size() == 3);
  const auto a = engine::check_against_reference(t.m, ref, [&](const std::string& s) { return t.tok.encode(s); });
  CHECK(a.prompts == 3);
  CHECK(a.positions ==
        t.tok.encode(kTexts[0]).size() + t.tok.encode(kTexts[1]).size() + t.tok.encode(kTexts[2]).size());
  CHECK(a.top1_equal == a.positions);
  CHECK(a.greedy_identical == 3);
  CHECK(a.tokenizer_equal == 3);
  CHECK(a.max_dlogit_top1 < 1e-5f);  // the file holds 9 significant digits
  CHECK(a.max_dlogit_top20 < 1e-5f);
  CHECK(a.notes.empty());
  CHECK(a.meets_gate());
}

TEST_CASE("reference check: planted top-1 and greedy differences are counted where they were planted") {
  Tiny t;
  test::TempDir dir;
  const auto vocab = static_cast<std::int32_t>(t.m.config().vocab_size);
  const auto path = write_self_reference(t, dir.path, kTexts, [&](std::size_t k, auto& top1, auto& greedy) {
    if (k == 1) top1[2] = (top1[2] + 1) % vocab;      // one teacher-forced position
    if (k == 2) greedy[7] = (greedy[7] + 1) % vocab;  // the continuation from token 7
  });
  const auto a = engine::check_against_reference(t.m, io::read_logit_reference(path, "hf_"), nullptr);
  CHECK(a.top1_equal == a.positions - 1);
  CHECK(a.greedy_identical == 2);
  CHECK(a.tokenizer_equal == 0);  // not checked
  REQUIRE(a.notes.size() == 1);
  CHECK(a.notes[0] == "greedy differs on p2 from token 7");
  CHECK_FALSE(a.meets_gate());  // 2 of 3 continuations < 90 %
}

TEST_CASE("reference check: a malformed reference names the file and the field") {
  test::TempDir dir;
  auto write = [&](const std::string& body) {
    const fs::path p = dir.path / "ref.json";
    std::ofstream(p) << body;
    return p;
  };
  auto message = [](const fs::path& p, const std::string& source) -> std::string {
    try {
      io::read_logit_reference(p, source);
    } catch (const Error& e) { return e.what(); }
    return "";
  };
  const auto ok_prompt = std::string("{\"name\":\"a\",\"text\":\"x\",\"ids\":[1,2],\"hf_top1\":[3,4]}");
  CHECK(io::read_logit_reference(write("{\"prompts\":[" + ok_prompt + "]}"), "hf_").prompts.size() == 1);

  std::string m = message(write("{\"prompts\":[" + ok_prompt + "]}"), "");
  CHECK(m.find("ref.json") != std::string::npos);
  CHECK(m.find("prompts[0].top1") != std::string::npos);  // the llama.cpp keys are absent

  m = message(write("{\"prompts\":[{\"name\":\"a\",\"text\":\"x\",\"ids\":[1,2],\"hf_top1\":[3]}]}"), "hf_");
  CHECK(m.find("prompts[0].hf_top1") != std::string::npos);
  CHECK(m.find("1 entries for 2 ids") != std::string::npos);

  m = message(write("{\"prompts\":[{\"name\":\"a\",\"text\":\"x\",\"ids\":[1,-2],\"hf_top1\":[3,4]}]}"), "hf_");
  CHECK(m.find("prompts[0].ids") != std::string::npos);

  m = message(write("{\"prompts\":[]}"), "hf_");
  CHECK(m.find("no prompts") != std::string::npos);

  m = message(write("{\"prompts\": [tru"), "hf_");
  CHECK(m.find("malformed JSON") != std::string::npos);
}
