// GGUF -> HF conversion of the qwen2 architecture. References:
//  * tests/data/gguf/tiny_qwen2_expected.json (scripts/golden/make_gguf_goldens.py qwen2): per
//    HF tensor the sha256 of gguf-py's dequantization, and the tokenizer.json that HF's Qwen2
//    tokenizer conversion builds with the `tokenizers` library from the same vocab, with ids;
//  * tests/data/gguf/qwen2.5-coder-*_tensors.json (`make_gguf_goldens.py qwen-real`): the same
//    hashes for every tensor of the real files, checked when the converted models exist.
#include <doctest/doctest.h>

#include <kvcanary/io/gguf_to_hf.hpp>
#include <kvcanary/io/hf_config.hpp>
#include <kvcanary/io/safetensors.hpp>
#include <kvcanary/io/tokenizer.hpp>

#include <nlohmann/json.hpp>
#include <string>

#include "../../tools/kvcanary/cmd_convert.hpp"
#include "gguf_test_util.hpp"

using kvcanary::Error;
using namespace gguf_test;
namespace fs = std::filesystem;
namespace io = kvcanary::io;
using json = nlohmann::json;

namespace {

json load_json(const fs::path& p) { return json::parse(read_text(p)); }

// Every tensor of dir/model.safetensors against golden["hf"] (name -> shape, sha256).
int check_qwen2_tensors(const fs::path& dir, const json& hf) {
  auto st = io::SafetensorsFile::open(dir / "model.safetensors");
  CHECK(st->tensors().size() == hf.size());
  int matched = 0;
  for (const auto& [name, want] : hf.items()) {
    CAPTURE(name);
    const io::TensorView* t = st->find(name);
    REQUIRE(t != nullptr);
    CHECK(t->dtype == io::DType::F32);
    CHECK(t->shape == want["shape"].get<std::vector<std::int64_t>>());
    const std::string got = sha256_hex(t->data, t->nbytes);
    CHECK(got == want["sha256"].get<std::string>());
    matched += got == want["sha256"].get<std::string>();
  }
  return matched;
}

}  // namespace

TEST_CASE("gguf to hf qwen2: tiny model converts to gguf-py's tensors, with biases and an untied lm_head") {
  TempDir dir;
  const fs::path out = dir.path / "tiny";
  io::convert_gguf_to_hf(data_dir() / "tiny_qwen2.gguf", out);
  const json golden = load_json(data_dir() / "tiny_qwen2_expected.json");
  const json& hf = golden["hf"];
  REQUIRE(hf.contains("model.layers.0.self_attn.q_proj.bias"));
  REQUIRE(hf.contains("lm_head.weight"));
  CHECK(check_qwen2_tensors(out, hf) == static_cast<int>(hf.size()));

  const json cfg = load_json(out / "config.json");
  CHECK(cfg["architectures"] == json::array({"Qwen2ForCausalLM"}));
  CHECK(cfg["model_type"] == "qwen2");
  CHECK(cfg["hidden_size"] == 256);
  CHECK(cfg["num_hidden_layers"] == 1);
  CHECK(cfg["num_attention_heads"] == 4);
  CHECK(cfg["num_key_value_heads"] == 1);
  CHECK(cfg["intermediate_size"] == 256);
  CHECK(cfg["max_position_embeddings"] == 1024);
  CHECK(cfg["rope_theta"].get<double>() == 1000000.0);
  CHECK(cfg["rms_norm_eps"].get<double>() == 1e-06);
  CHECK(cfg["tie_word_embeddings"] == false);
  CHECK(cfg["use_sliding_window"] == false);
  CHECK(cfg["sliding_window"] == 1024);
  CHECK(cfg["max_window_layers"] == 1);
  CHECK(cfg["vocab_size"] == golden["ids"]["n_rows"]);
  CHECK(cfg["bos_token_id"] == golden["ids"]["bos"]);
  CHECK(cfg["eos_token_id"] == golden["ids"]["eos"]);
  CHECK(cfg["pad_token_id"] == golden["ids"]["pad"]);
  CHECK_FALSE(cfg.contains("head_dim"));  // HF Qwen2 derives it from hidden_size / heads

  // The project's own reader: biases on, lm_head untied, no sliding window.
  const auto c = io::load_hf_config(out);
  CHECK(c.architecture == kvcanary::Architecture::Qwen2);
  CHECK(c.attention_bias);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.head_dim == 64);
  CHECK(c.sliding_window == 0);
}

TEST_CASE("gguf to hf qwen2: tokenizer.json equals HF's Qwen2 conversion, ids equal HF tokenizers") {
  TempDir dir;
  const fs::path out = dir.path / "tiny";
  io::convert_gguf_to_hf(data_dir() / "tiny_qwen2.gguf", out);
  const json golden = load_json(data_dir() / "tiny_qwen2_expected.json");
  const json& want = golden["tokenizer_json"];
  const json got = load_json(out / "tokenizer.json");
  // Everything that decides ids and decoded text is equal as JSON.
  CHECK(got["normalizer"] == want["normalizer"]);
  CHECK(got["pre_tokenizer"] == want["pre_tokenizer"]);
  CHECK(got["decoder"] == want["decoder"]);
  CHECK(got["post_processor"] == want["post_processor"]);
  CHECK(got["added_tokens"] == want["added_tokens"]);
  CHECK(got["model"] == want["model"]);
  // Unused ('[PAD..]', type 5) rows are not part of the tokenizer; '<tool_call>' is added, not special.
  CHECK(got["model"]["vocab"].size() + got["added_tokens"].size() == golden["ids"]["n_tokenizer"].get<std::size_t>());
  CHECK(got.dump().find("[PAD") == std::string::npos);

  const auto tok = io::Tokenizer::from_file(out / "tokenizer.json");
  for (const auto& [text, ids] : golden["encodings"].items()) {
    CAPTURE(text);
    CHECK(tok.encode(text) == ids.get<std::vector<std::int32_t>>());
  }

  const json tc = load_json(out / "tokenizer_config.json");
  CHECK(tc["chat_template"] == golden["chat_template"]);  // verbatim
  CHECK(tc["eos_token"] == "<|im_end|>");
  CHECK(tc["bos_token"] == "<|endoftext|>");
  CHECK(tc["pad_token"] == "<|endoftext|>");
  CHECK(tc["add_bos_token"] == false);
  const json& dec = tc["added_tokens_decoder"];
  CHECK(dec.size() == 5);
  for (const auto& [id, t] : dec.items()) {
    CAPTURE(id);
    CHECK(t["normalized"] == false);
    CHECK(t["special"] == (t["content"].get<std::string>().find("tool_call") == std::string::npos));
  }
  const json gc = load_json(out / "generation_config.json");
  CHECK(gc["eos_token_id"] == golden["ids"]["eos"]);
}

TEST_CASE("gguf to hf qwen2: an unsupported tensor type is one error naming file and tensor, exit 2, nothing written") {
  TempDir dir;
  auto b = read_bytes(data_dir() / "tiny_qwen2.gguf");
  // Tensor info: name, u32 n_dims, u64 dims[n_dims], u32 type, u64 offset.
  const std::string name = "blk.0.attn_q.weight";
  const std::size_t at = find_bytes(b, name) + name.size();
  std::uint32_t n_dims;
  std::memcpy(&n_dims, b.data() + at, 4);
  REQUIRE(n_dims == 2);
  std::uint32_t type;
  std::memcpy(&type, b.data() + at + 4 + 8 * n_dims, 4);
  REQUIRE(type == static_cast<std::uint32_t>(io::GgmlType::Q4_K));
  type = static_cast<std::uint32_t>(io::GgmlType::IQ2_XXS);  // fewer bytes: the file stays readable
  std::memcpy(b.data() + at + 4 + 8 * n_dims, &type, 4);
  const fs::path bad = dir.path / "iq2.gguf";
  write_bytes(bad, b);
  const fs::path out = dir.path / "out";
  try {
    io::convert_gguf_to_hf(bad, out);
    FAIL("expected error");
  } catch (const Error& e) {
    CHECK(e.file() == bad.string());
    CHECK(e.field() == "tensor 'blk.0.attn_q.weight'.type");
    CHECK(std::string(e.what()).find("IQ2_XXS") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(out));
  for (const auto& e : fs::directory_iterator(dir.path))
    CHECK(e.path().filename().string().find(".partial-") == std::string::npos);

  // The CLI: the same error (main() turns kvcanary::Error into exit status 2).
  std::vector<std::string> args = {"convert-gguf", "--gguf", bad.string(), "--out", out.string()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  CHECK_THROWS_AS(kvcanary::cli::run_convert_gguf(static_cast<int>(argv.size()), argv.data()), Error);
  CHECK_FALSE(fs::exists(out));
}

// The real models: run when scripts/fetch_model.sh NAME has converted them into models/NAME.
TEST_CASE("gguf to hf qwen2: Qwen2.5-Coder 0.5B and 1.5B, every tensor bit-identical to gguf-py (real model)") {
  const fs::path src = KVCANARY_SOURCE_DIR;
  struct Real {
    const char* name;
    std::uint64_t layers, hidden;
    bool tied;
  };
  int checked = 0;
  std::string absent;
  for (const Real& r :
       {Real{"qwen2.5-coder-0.5b-instruct", 24, 896, false}, Real{"qwen2.5-coder-1.5b-instruct", 28, 1536, false}}) {
    const std::string name = r.name;
    CAPTURE(name);
    const fs::path dir = src / "models" / r.name;
    if (!fs::exists(dir / "model.safetensors")) {
      absent += std::string(absent.empty() ? "" : ", ") + "models/" + r.name;
      continue;
    }
    const json golden = load_json(data_dir() / (std::string(r.name) + "_tensors.json"));
    const int matched = check_qwen2_tensors(dir, golden["hf"]);
    CHECK(matched == static_cast<int>(golden["hf"].size()));
    const std::string summary = name + ": " + std::to_string(matched) + "/" + std::to_string(golden["hf"].size()) +
                                " tensors bit-identical to gguf-py";
    MESSAGE(summary);
    const auto c = io::load_hf_config(dir);
    CHECK(c.num_layers == static_cast<int>(r.layers));
    CHECK(c.hidden_size == static_cast<int>(r.hidden));
    CHECK(c.tie_word_embeddings == r.tied);
    CHECK(c.attention_bias);
    const json tok = load_json(dir / "tokenizer.json");
    CHECK(tok["model"]["vocab"].size() == 151643);
    CHECK(tok["added_tokens"].size() == 22);
    CHECK(tok["normalizer"]["type"] == "NFC");
    const json tc = load_json(dir / "tokenizer_config.json");
    CHECK(tc["chat_template"] == golden["chat_template"]);
    CHECK(tc["eos_token"] == "<|im_end|>");
    ++checked;
  }
  // ctest reports a test that prints "skipped: " as skipped: only when nothing was checked.
  if (!checked)
    MESSAGE("skipped: ", absent, " absent (scripts/fetch_model.sh NAME converts them)");
  else if (!absent.empty())
    MESSAGE("not checked (absent): ", absent);
}
