// kvcanary::io::Tokenizer against HF `tokenizers` goldens
// (scripts/golden/make_tokenizer_goldens.py): exact ids on every golden string for the real
// SmolLM2 tokenizer and for the synthetic fixtures (Qwen2-style NFC + Split, Llama-3-style
// ignore_merges + BOS template, added-token flags, every Split behaviour), exact decode, and
// the error contract (file + field in every Error).

#include <doctest/doctest.h>
#include <simdjson.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "kvcanary/io/byte_level.hpp"
#include "kvcanary/io/tokenizer.hpp"
#include "kvcanary/io/unicode_nfc.hpp"
#include "kvcanary/io/utf8.hpp"
#include "../support/resources.hpp"

using kvcanary::io::Tokenizer;
namespace fs = std::filesystem;

namespace {

const fs::path kData = fs::path(KVCANARY_TEST_DATA_DIR) / "tokenizer";

// The converted default model's tokenizer. KVCANARY_SMOLLM2_TOKENIZER may point elsewhere
// (e.g. a tokenizer.json rebuilt by scripts/golden/make_smollm2_dev_tokenizer.py).
fs::path smollm2_tokenizer() {
  if (const char* env = std::getenv("KVCANARY_SMOLLM2_TOKENIZER")) return env;
  return fs::path(KVCANARY_SOURCE_DIR) / "models" / "smollm2-135m-instruct" / "tokenizer.json";
}

bool smollm2_available() { return kvcanary::test::available(smollm2_tokenizer()); }

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "cannot open " << p.string());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Row {
  std::string text;
  std::vector<std::int32_t> ids;
  bool has_ids_with_special = false;
  std::vector<std::int32_t> ids_with_special;
  std::string decoded, decoded_skip_special;  // default to text when absent from the file
};

std::vector<std::int32_t> int_array(simdjson::dom::element e) {
  std::vector<std::int32_t> out;
  for (auto v : e.get_array()) out.push_back(static_cast<std::int32_t>(v.get_int64().value()));
  return out;
}

std::vector<Row> read_goldens(const fs::path& p) {
  std::vector<Row> rows;
  std::istringstream in(read_file(p));
  std::string line;
  simdjson::dom::parser parser;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    simdjson::dom::element doc = parser.parse(line);
    Row r;
    simdjson::dom::element v;
    if (doc["text"].get(v) == simdjson::SUCCESS) r.text = std::string(v.get_string().value());
    if (doc["ids"].get(v) == simdjson::SUCCESS) r.ids = int_array(v);
    r.has_ids_with_special = doc["ids_with_special"].get(v) == simdjson::SUCCESS;
    r.ids_with_special = r.has_ids_with_special ? int_array(v) : r.ids;
    r.decoded = doc["decoded"].get(v) == simdjson::SUCCESS ? std::string(v.get_string().value()) : r.text;
    r.decoded_skip_special =
        doc["decoded_skip_special"].get(v) == simdjson::SUCCESS ? std::string(v.get_string().value()) : r.text;
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string show(const std::vector<std::int32_t>& ids) {
  std::string s = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return s + "]";
}

// Every golden row encodes to exactly its ids and decodes to exactly HF's text.
void check_fixture(const std::string& name) {
  const Tokenizer tok = Tokenizer::from_file(kData / (name + ".tokenizer.json"));
  const std::vector<Row> rows = read_goldens(kData / (name + ".goldens.jsonl"));
  REQUIRE(rows.size() >= 200);
  std::size_t same = 0, same_special = 0, same_decode = 0;
  for (const Row& r : rows) {
    const auto ids = tok.encode(r.text);
    const auto ids_sp = tok.encode(r.text, true);
    const std::string dec = tok.decode(ids);
    same += ids == r.ids;
    same_special += ids_sp == r.ids_with_special;
    same_decode += dec == r.decoded;
    CHECK_MESSAGE(ids == r.ids,
                  name << ": text " << std::quoted(r.text) << " got " << show(ids) << " want " << show(r.ids));
    CHECK_MESSAGE(ids_sp == r.ids_with_special, name << ": with special, text " << std::quoted(r.text));
    CHECK_MESSAGE(dec == r.decoded, name << ": decode of " << std::quoted(r.text));
  }
  MESSAGE(name << ": ids identical " << same << "/" << rows.size() << ", with special tokens " << same_special << "/"
               << rows.size() << ", decode identical " << same_decode << "/" << rows.size());
}

}  // namespace

TEST_CASE("tokenizer: SmolLM2 ids identical to HF tokenizers on every golden string") {
  if (!smollm2_available()) return;
  const Tokenizer tok = Tokenizer::from_file(smollm2_tokenizer());
  CHECK(tok.vocab_size() == 49152);
  CHECK(tok.token_to_id("<|im_start|>") == 1);
  CHECK(tok.token_to_id("<|im_end|>") == 2);
  CHECK(tok.token_to_id("no such token") == -1);
  CHECK(tok.id_to_token(2) == "<|im_end|>");
  CHECK(tok.id_to_token(-5).empty());
  CHECK(tok.is_special(0));
  CHECK_FALSE(tok.is_special(100));
  std::size_t round_trip = 0;
  for (std::int32_t id = 0; id < static_cast<std::int32_t>(tok.vocab_size()); ++id)
    round_trip += tok.token_to_id(tok.id_to_token(id)) == id;
  CHECK(round_trip == tok.vocab_size());

  const std::vector<Row> rows = read_goldens(kData / "smollm2_goldens.jsonl");
  REQUIRE(rows.size() >= 200);
  std::size_t same = 0;
  for (const Row& r : rows) {
    const auto ids = tok.encode(r.text);
    same += ids == r.ids;
    CHECK_MESSAGE(ids == r.ids, "text " << std::quoted(r.text) << " got " << show(ids) << " want " << show(r.ids));
    // The ByteLevel post-processor adds nothing.
    CHECK(tok.encode(r.text, true) == ids);
    CHECK_MESSAGE(tok.decode(r.ids) == r.decoded, "decode of " << std::quoted(r.text));
    CHECK_MESSAGE(tok.decode(r.ids, true) == r.decoded_skip_special, "decode(skip) of " << std::quoted(r.text));
  }
  MESSAGE("SmolLM2: ids identical " << same << "/" << rows.size());
}

TEST_CASE("tokenizer: SmolLM2 decode identical to HF (partial UTF-8, special, unknown ids)") {
  if (!smollm2_available()) return;
  const Tokenizer tok = Tokenizer::from_file(smollm2_tokenizer());
  std::istringstream in(read_file(kData / "smollm2_decode_goldens.jsonl"));
  std::string line;
  simdjson::dom::parser parser;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    simdjson::dom::element doc = parser.parse(line);
    const auto ids = int_array(doc["ids"].value());
    CHECK_MESSAGE(tok.decode(ids) == std::string(doc["decoded"].get_string().value()), "ids " << show(ids));
    CHECK_MESSAGE(tok.decode(ids, true) == std::string(doc["decoded_skip_special"].get_string().value()),
                  "ids " << show(ids));
    ++n;
  }
  CHECK(n > 300);
}

TEST_CASE("tokenizer: SmolLM2 on WikiText-2 test matches the HF id stream, fast") {
  if (!smollm2_available()) return;
  const fs::path wiki = kvcanary::test::project_data("wikitext-2-raw-test.txt");
  if (!kvcanary::test::available(wiki)) return;
  const Tokenizer tok = Tokenizer::from_file(smollm2_tokenizer());
  const std::string text = read_file(wiki);
  simdjson::dom::parser parser;
  simdjson::dom::element g = parser.load((kData / "smollm2_wikitext2.json").string());
  if (text.size() != static_cast<std::size_t>(g["bytes"].get_int64().value())) {
    MESSAGE("skipped: WikiText-2 file differs from the one the golden was made from");
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok.encode(text);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a over the decimal ids, space-separated
  for (std::int32_t id : ids) {
    for (char c : std::to_string(id) + " ") {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
  }
  CHECK(ids.size() == static_cast<std::size_t>(g["n_ids"].get_int64().value()));
  CHECK(std::to_string(h) == std::string(g["fnv1a64"].get_string().value()));
  MESSAGE("WikiText-2 test: " << text.size() << " bytes -> " << ids.size() << " ids in " << secs << " s");
#ifdef NDEBUG
  CHECK(secs < 3.0);  // the speed requirement applies to optimised builds only
#endif
}

TEST_CASE("tokenizer: synthetic fixtures identical to HF tokenizers") {
  SUBCASE("Qwen2-style: NFC, Split regex, ByteLevel(use_regex=false), legacy string merges") {
    check_fixture("qwen2_style");
  }
  SUBCASE("Llama-3-style: \\p{N}{1,3} split, ignore_merges, TemplateProcessing BOS, pair merges") {
    check_fixture("llama3_style");
  }
  SUBCASE("GPT-2-style with lstrip/rstrip/single_word/normalized added tokens, Roberta template") {
    check_fixture("gpt2_added");
  }
  SUBCASE("Split Removed") { check_fixture("split_removed"); }
  SUBCASE("Split MergedWithPrevious (String pattern)") { check_fixture("split_merged_prev"); }
  SUBCASE("Split MergedWithNext") { check_fixture("split_merged_next"); }
  SUBCASE("Split Contiguous, inverted") { check_fixture("split_contiguous_invert"); }
  SUBCASE("Digits(individual_digits=false) then ByteLevel(add_prefix_space)") { check_fixture("digits_grouped"); }
}

TEST_CASE("tokenizer: Llama-3-style BOS comes from the post-processor only when asked") {
  const Tokenizer tok = Tokenizer::from_file(kData / "llama3_style.tokenizer.json");
  const std::int32_t bos = tok.token_to_id("<|begin_of_text|>");
  REQUIRE(bos >= 0);
  const auto plain = tok.encode("Hello world");
  const auto with = tok.encode("Hello world", true);
  REQUIRE(with.size() == plain.size() + 1);
  CHECK(with.front() == bos);
  CHECK(std::equal(plain.begin(), plain.end(), with.begin() + 1));
  CHECK(tok.decode(with, true) == "Hello world");
}

TEST_CASE("tokenizer: byte-level map and UTF-8 repair") {
  namespace bl = kvcanary::io::byte_level;
  namespace u8 = kvcanary::io::utf8;
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  std::string back;
  REQUIRE(bl::decode_append(bl::encode(all), back));
  CHECK(back == all);
  CHECK(bl::encode(" ") == "\xC4\xA0");   // U+0120 'Ġ'
  CHECK(bl::encode("\n") == "\xC4\x8A");  // U+010A 'Ċ'
  // from_utf8_lossy: one U+FFFD per maximal ill-formed subpart.
  CHECK(u8::lossy("a\xF0\x9F\x98") == "a\xEF\xBF\xBD");
  CHECK(u8::lossy("\xF0\x9F\x98\x80") == "\xF0\x9F\x98\x80");
  CHECK(u8::lossy("\xE2\x82x") == "\xEF\xBF\xBDx");
  CHECK(u8::lossy("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(u8::lossy("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(u8::first_invalid("ok\xFF") == 2);
  CHECK(u8::first_invalid("caf\xC3\xA9") == u8::npos);
}

TEST_CASE("tokenizer: NFC composes, reorders and leaves exclusions decomposed") {
  using kvcanary::io::nfc;
  CHECK(nfc("cafe\xCC\x81") == "caf\xC3\xA9");                           // e + U+0301 -> é
  CHECK(nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8") == "\xEA\xB0\x81");  // Hangul L V T -> 각
  CHECK(nfc("\xE2\x84\xAB") == "\xC3\x85");                              // U+212B Angstrom -> Å
  CHECK(nfc("\xE0\xA5\x98") == "\xE0\xA4\x95\xE0\xA4\xBC");              // U+0958: composition exclusion
  CHECK(nfc("a\xCC\xA3\xCC\x87") == "\xE1\xBA\xA1\xCC\x87");             // a + dot below + dot above
  CHECK(nfc("a\xCC\x87\xCC\xA3") == "\xE1\xBA\xA1\xCC\x87");             // reordered first
  CHECK(nfc("plain ascii") == "plain ascii");
}

TEST_CASE("tokenizer: invalid input text is an Error naming the field") {
  const Tokenizer tok = Tokenizer::from_file(kData / "qwen2_style.tokenizer.json");
  try {
    (void)tok.encode("bad \xC3");
    FAIL("no error for invalid UTF-8");
  } catch (const kvcanary::Error& e) {
    CHECK(e.field() == "text");
    CHECK(std::string(e.what()).find("invalid UTF-8 at byte 4") != std::string::npos);
  }
}

namespace {

// Per-process scratch folder: ctest runs test cases as concurrent processes.
fs::path scratch_dir() {
  const fs::path dir = fs::temp_directory_path() / ("kvcanary_tokenizer_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

// Writes `json` into a fresh file and expects loading it to fail naming that file and `field`.
void expect_load_error(const std::string& json, const std::string& field, const std::string& needle) {
  const fs::path dir = scratch_dir();
  fs::create_directories(dir);
  const fs::path p = dir / ("case_" + std::to_string(std::hash<std::string>{}(json)) + ".json");
  {
    std::ofstream f(p, std::ios::binary);
    f << json;
  }
  try {
    (void)Tokenizer::from_file(p);
    FAIL("no error for field " << field);
  } catch (const kvcanary::Error& e) {
    CHECK(e.file() == p.string());
    CHECK(e.field() == field);
    CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
    CHECK(std::string(e.what()).find(p.string()) != std::string::npos);
  }
  fs::remove(p);
}

const char* kMinimalModel = R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";

}  // namespace

TEST_CASE("tokenizer: bad tokenizer.json files are Errors naming the file and the field") {
  SUBCASE("missing file") {
    const fs::path p = kData / "does_not_exist.tokenizer.json";
    try {
      (void)Tokenizer::from_file(p);
      FAIL("no error");
    } catch (const kvcanary::Error& e) {
      CHECK(e.file() == p.string());
      CHECK(std::string(e.what()).find("cannot open") != std::string::npos);
    }
  }
  SUBCASE("malformed JSON") { expect_load_error(R"({"model": {"type": "BPE", )", "json", "malformed JSON"); }
  SUBCASE("missing model") { expect_load_error(R"({"added_tokens": []})", "model", "missing"); }
  SUBCASE("unknown model type") {
    expect_load_error(R"({"model": {"type": "WordPiece", "vocab": {}}})", "model.type", "WordPiece");
  }
  SUBCASE("unknown pre_tokenizer type") {
    expect_load_error(std::string("{") + kMinimalModel + R"(, "pre_tokenizer": {"type": "Metaspace"}})",
                      "pre_tokenizer.type", "Metaspace");
  }
  SUBCASE("unknown pre_tokenizer inside a Sequence") {
    expect_load_error(
        std::string("{") + kMinimalModel +
            R"(, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"}, {"type": "Whitespace"}]}})",
        "pre_tokenizer.pretokenizers[1].type", "Whitespace");
  }
  SUBCASE("bad Split regex") {
    expect_load_error(
        std::string("{") + kMinimalModel +
            R"(, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated", "invert": false}})",
        "pre_tokenizer.pattern", "cannot compile");
  }
  SUBCASE("unknown Split behaviour") {
    expect_load_error(
        std::string("{") + kMinimalModel +
            R"(, "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"}})",
        "pre_tokenizer.behavior", "Sideways");
  }
  SUBCASE("unknown normalizer") {
    expect_load_error(std::string("{") + kMinimalModel + R"(, "normalizer": {"type": "Lowercase"}})", "normalizer.type",
                      "Lowercase");
  }
  SUBCASE("unknown decoder") {
    expect_load_error(std::string("{") + kMinimalModel + R"(, "decoder": {"type": "WordPiece"}})", "decoder.type",
                      "WordPiece");
  }
  SUBCASE("merge naming a token outside the vocabulary") {
    expect_load_error(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "b"]]}})",
                      "model.merges[0]", "'ab'");
  }
  SUBCASE("vocab id that is not an integer") {
    expect_load_error(R"({"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}})", "model.vocab.a",
                      "integer");
  }
  SUBCASE("BPE dropout") {
    expect_load_error(R"({"model": {"type": "BPE", "dropout": 0.1, "vocab": {}, "merges": []}})", "model.dropout",
                      "dropout");
  }
}

TEST_CASE("tokenizer: minimal file without pre-tokenizer or decoder") {
  const fs::path dir = scratch_dir();
  fs::create_directories(dir);
  const fs::path p = dir / "minimal.json";
  {
    std::ofstream f(p, std::ios::binary);
    f << "{" << kMinimalModel << R"(, "added_tokens": [{"id": 3, "content": "<x>", "special": true}]})";
  }
  const Tokenizer tok = Tokenizer::from_file(p);
  CHECK(tok.encode("abab") == std::vector<std::int32_t>{2, 2});
  CHECK(tok.encode("a<x>b") == std::vector<std::int32_t>{0, 3, 1});
  CHECK(tok.vocab_size() == 4);
  const std::vector<std::int32_t> ids{2, 3, 0};
  CHECK(tok.decode(ids) == "ab <x> a");  // no decoder: HF joins tokens with spaces
  CHECK(tok.decode(ids, true) == "ab a");
  fs::remove(p);
}
