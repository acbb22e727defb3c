#pragma once
// A reference run of a model on fixed prompts, as the golden scripts write it
// (scripts/golden/make_qwen_reference.py for llama.cpp, make_qwen_hf_reference.py for
// transformers): per prompt the token ids, the reference's teacher-forced top-1 token, its logit
// and its top-2 margin at every position, 32 greedy tokens, and the 20 largest last-position
// logits. One file may hold several references over the same ids; each is named by its key
// prefix ("" = llama.cpp, "hf_" = transformers, "numpy_" = float64 numpy, top-1 only).

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "kvcanary/io/json_reader.hpp"

namespace kvcanary::io {

struct ReferencePrompt {
  std::string name;
  std::string text;                  // the prompt as rendered (chat ones through the GGUF's template)
  std::vector<std::int32_t> ids;     // (n) the reference's own tokenization
  std::vector<std::int32_t> top1;    // (n) argmax at every position, teacher forced over ids
  std::vector<float> top1_logit;     // (n) the logit of top1; empty for top-1-only references
  std::vector<float> top1_margin;    // (n) top-1 minus top-2 logit; empty when absent
  std::vector<std::int32_t> greedy;  // (32) greedy continuation, EOS not stopping; empty when absent
  std::vector<std::pair<std::int32_t, float>> last_top20;  // (20) largest logits at the last position
};

struct LogitReference {
  std::string file;
  std::string source;  // the key prefix chosen
  std::vector<ReferencePrompt> prompts;
};

// Reads the reference under key prefix `source` ("", "hf_", "numpy_"). A missing or mistyped
// field is an Error naming the file and the field (e.g. "prompts[3].hf_top1").
inline LogitReference read_logit_reference(const std::filesystem::path& path, const std::string& source) {
  simdjson::dom::parser parser;
  simdjson::padded_string storage;
  const json_detail::Reader r(path.string());
  const auto root = json_detail::parse_file(path, parser, storage);
  LogitReference ref{path.string(), source, {}};
  std::size_t i = 0;
  for (auto p : r.array(r.req(root, "prompts", "prompts"), "prompts")) {
    const std::string at = "prompts[" + std::to_string(i++) + "].";
    ReferencePrompt rp;
    rp.name = r.str(p, "name", at + "name");
    rp.text = r.str(p, "text", at + "text");
    auto ints = [&](const std::string& key, bool required) {
      std::vector<std::int32_t> v;
      const auto e = required ? std::optional(r.req(p, key, at + key)) : r.opt(p, key);
      if (e)
        for (auto x : r.array(*e, at + key)) v.push_back(r.token_id(x, at + key));
      return v;
    };
    auto floats = [&](const std::string& key) {
      std::vector<float> v;
      if (const auto e = r.opt(p, key))
        for (auto x : r.array(*e, at + key)) {
          double d = 0;
          if (x.get_double().get(d) != simdjson::SUCCESS) d = static_cast<double>(r.integer(x, at + key));
          v.push_back(static_cast<float>(d));
        }
      return v;
    };
    rp.ids = ints("ids", true);
    rp.top1 = ints(source + "top1", true);
    rp.top1_logit = floats(source + "top1_logit");
    rp.top1_margin = floats(source + "top1_margin");
    rp.greedy = ints(source + "greedy_ids", false);
    if (const auto e = r.opt(p, source + "last_logits_top20"))
      for (auto pair : r.array(*e, at + source + "last_logits_top20")) {
        const auto a = r.array(pair, at + source + "last_logits_top20");
        if (a.size() != 2) r.bad(at + source + "last_logits_top20", "expected [id, logit] pairs");
        double logit = 0;
        if (a.at(1).get_double().get(logit) != simdjson::SUCCESS)
          r.bad(at + source + "last_logits_top20", "logit is not a number");
        rp.last_top20.emplace_back(r.token_id(a.at(0).value(), at + source + "last_logits_top20"),
                                   static_cast<float>(logit));
      }
    const auto n = rp.ids.size();
    if (rp.ids.empty()) r.bad(at + "ids", "empty");
    if (rp.top1.size() != n)
      r.bad(at + source + "top1",
            "has " + std::to_string(rp.top1.size()) + " entries for " + std::to_string(n) + " ids");
    if (!rp.top1_logit.empty() && rp.top1_logit.size() != n)
      r.bad(at + source + "top1_logit", "length differs from ids");
    if (!rp.top1_margin.empty() && rp.top1_margin.size() != n)
      r.bad(at + source + "top1_margin", "length differs from ids");
    ref.prompts.push_back(std::move(rp));
  }
  if (ref.prompts.empty()) r.bad("prompts", "no prompts");
  return ref;
}

}  // namespace kvcanary::io
