// config.json: supported architectures and fields parse; unsupported ones are refused by name.

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "../support/json_file.hpp"
#include "../support/temp_dir.hpp"
#include "kvcanary/io/hf_config.hpp"

using namespace kvcanary;
namespace fs = std::filesystem;

namespace {
// A model directory holding only `json` as config.json, inside `root`.
fs::path dir_with_config(const test::TempDir& root, const std::string& json) {
  static int n = 0;
  const fs::path d = root.path / std::to_string(n++);
  fs::create_directories(d);
  std::ofstream(d / "config.json") << json;
  return d;
}
const char* kBase =
    R"("hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":256,"max_position_embeddings":128,"rms_norm_eps":1e-5)";
}  // namespace

TEST_CASE("config.json: the tiny goldens' configs parse with the right fields") {
  auto qwen = io::load_hf_config(test::test_data("tiny/qwen2_bias"));
  CHECK(qwen.architecture == Architecture::Qwen2);
  CHECK(qwen.attention_bias);
  CHECK(qwen.tie_word_embeddings);
  auto l3 = io::load_hf_config(test::test_data("tiny/llama3_rope"));
  CHECK(l3.rope_scaling.kind == RopeScaling::Kind::Llama3);
  CHECK(l3.rope_scaling.original_max_position_embeddings == 32);
  CHECK(l3.rope_theta == 500000.0);
  auto lin = io::load_hf_config(test::test_data("tiny/llama_linear_rope"));
  CHECK(lin.rope_scaling.kind == RopeScaling::Kind::Linear);
  CHECK(lin.rope_scaling.factor == 2.0);
  auto hd = io::load_hf_config(test::test_data("tiny/llama_head_dim"));
  CHECK(hd.head_dim == 32);
  CHECK(hd.head_dim * hd.num_heads != hd.hidden_size);
}

TEST_CASE("config.json: eos lists, Mistral sliding window, legacy rope_scaling.type") {
  test::TempDir root;
  auto c = io::load_hf_config(dir_with_config(
      root,
      std::string(
          R"({"architectures":["MistralForCausalLM"],"sliding_window":16,"eos_token_id":[2,7],"rope_scaling":{"type":"linear","factor":4},)") +
          kBase + "}"));
  CHECK(c.sliding_window == 16);
  CHECK(c.eos_token_ids == std::vector<std::int32_t>{2, 7});
  CHECK(c.rope_scaling.factor == 4.0);
}

TEST_CASE("config.json: bad input names the file and the field") {
  test::TempDir root;
  auto expect = [&](const std::string& json, const std::string& field) {
    const fs::path d = dir_with_config(root, json);
    try {
      io::load_hf_config(d);
      FAIL("expected failure for " << field);
    } catch (const Error& e) {
      const std::string what = e.what();
      CHECK_MESSAGE(what.find((d / "config.json").string()) != std::string::npos, what);
      CHECK_MESSAGE(what.find(field) != std::string::npos, what);
    }
  };
  expect(std::string(R"({"architectures":["GPT2LMHeadModel"],)") + kBase + "}", "architectures");
  expect(
      std::string(R"({"architectures":["LlamaForCausalLM"],"num_key_value_heads":3,)") +
          R"("hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":256})",
      "num_key_value_heads");
  expect(R"({"architectures":["LlamaForCausalLM"],"hidden_size":64})", "vocab_size: required field missing");
  expect(std::string(R"({"architectures":["LlamaForCausalLM"],"rope_scaling":{"rope_type":"yarn","factor":2},)") +
             kBase + "}",
         "rope_scaling.rope_type");
  expect(std::string(R"({"architectures":["LlamaForCausalLM"],"hidden_size":"big",)") +
             R"("intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":256})",
         "hidden_size: expected an integer");
  expect(R"({"architectures":["LlamaForCausalLM"], )", "malformed JSON");
  CHECK_THROWS_WITH_AS(io::load_hf_config("/nonexistent-dir"), doctest::Contains("cannot open"), Error);
}
