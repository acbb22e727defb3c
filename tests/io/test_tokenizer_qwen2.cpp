// kvcanary::io::Tokenizer on the real Qwen2.5-Coder vocabulary (151,643 BPE tokens + 22 added
// ones, NFC, the qwen2 split regex) against HF `tokenizers` on the reference tokenizer.json
// (scripts/golden/make_qwen2_tokenizer_goldens.py): > 5,000 strings (code with LF and CRLF,
// digits, CJK, emoji, combining marks, chat / tool-call / FIM special tokens, random code
// points), each compared by id count and FNV-1a digest of its ids, the first 400 id by id, and
// every decode. The regex and NFC logic alone is covered without the model by the qwen2_style
// fixture in test_tokenizer.cpp.
//
// The tokenizer is the converted model's (models/qwen2.5-coder-0.5b-instruct/tokenizer.json,
// scripts/fetch_model.sh qwen2.5-coder-0.5b-instruct), or KVCANARY_QWEN2_TOKENIZER. It is not
// the default model, so its absence is a printed skip, also under CI.

#include <doctest/doctest.h>
#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

#include "kvcanary/io/tokenizer.hpp"
#include "../support/resources.hpp"

using kvcanary::io::Tokenizer;
namespace fs = std::filesystem;

namespace {

fs::path qwen2_tokenizer() {
  if (const char* env = std::getenv("KVCANARY_QWEN2_TOKENIZER")) return env;
  return fs::path(KVCANARY_SOURCE_DIR) / "models" / "qwen2.5-coder-0.5b-instruct" / "tokenizer.json";
}

std::uint64_t fnv_of_ids(const std::vector<std::int32_t>& ids) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a over the decimal ids, each followed by a space
  for (std::int32_t id : ids)
    for (char c : std::to_string(id) + " ") {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
  return h;
}

}  // namespace

TEST_CASE("tokenizer: Qwen2.5-Coder ids identical to HF tokenizers on 5,000+ strings") {
  const fs::path path = qwen2_tokenizer();
  if (!kvcanary::test::available(path)) return;  // scripts/test.sh fetches the 0.5B model
  const Tokenizer tok = Tokenizer::from_file(path);
  // The 22 added tokens sit right after the BPE vocabulary; the GGUF's padding rows are not tokens.
  CHECK(tok.vocab_size() == 151665);
  CHECK(tok.token_to_id("<|endoftext|>") == 151643);
  CHECK(tok.token_to_id("<|im_start|>") == 151644);
  CHECK(tok.token_to_id("<|im_end|>") == 151645);
  CHECK(tok.token_to_id("<tool_call>") == 151657);
  CHECK(tok.token_to_id("</tool_call>") == 151658);
  CHECK(tok.token_to_id("<|fim_prefix|>") == 151659);
  CHECK(tok.token_to_id("<|file_sep|>") == 151664);
  CHECK(tok.token_to_id("[PAD151665]") == -1);
  CHECK(tok.is_special(151645));
  CHECK_FALSE(tok.is_special(151657));  // <tool_call> is a user-defined (non-special) added token
  CHECK(tok.decode(std::vector<std::int32_t>{151657, 90, 151658}, true) == "<tool_call>{</tool_call>");

  std::ifstream in(fs::path(KVCANARY_TEST_DATA_DIR) / "tokenizer" / "qwen2.5-coder.goldens.jsonl", std::ios::binary);
  REQUIRE(in.good());
  std::string line;
  simdjson::dom::parser parser;
  std::size_t rows = 0, same = 0, explicit_rows = 0, same_decode = 0, total_ids = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const simdjson::dom::element doc = parser.parse(line);
    const std::string text(doc["text"].get_string().value());
    const auto ids = tok.encode(text);
    const bool ok = ids.size() == static_cast<std::size_t>(doc["n"].get_int64().value()) &&
                    std::to_string(fnv_of_ids(ids)) == std::string(doc["h"].get_string().value());
    CHECK_MESSAGE(ok, "text " << std::quoted(text) << ": " << ids.size() << " ids, digest differs from HF's");
    simdjson::dom::element v;
    if (doc["ids"].get(v) == simdjson::SUCCESS) {
      std::vector<std::int32_t> want;
      for (auto x : v.get_array()) want.push_back(static_cast<std::int32_t>(x.get_int64().value()));
      CHECK_MESSAGE(ids == want, "text " << std::quoted(text));
      ++explicit_rows;
    }
    const std::string decoded = doc["decoded"].get(v) == simdjson::SUCCESS ? std::string(v.get_string().value()) : text;
    const bool dec_ok = tok.decode(ids) == decoded;
    CHECK_MESSAGE(dec_ok, "decode of " << std::quoted(text));
    ++rows;
    same += ok;
    same_decode += dec_ok;
    total_ids += ids.size();
  }
  CHECK(rows >= 5000);
  CHECK(explicit_rows >= 400);
  MESSAGE("Qwen2.5-Coder tokenizer: ids identical on " << same << "/" << rows << " strings (" << total_ids
                                                       << " ids), decode identical " << same_decode << "/" << rows);
}
