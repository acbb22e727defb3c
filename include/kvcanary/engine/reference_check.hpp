#pragma once
// Identity by behaviour: a model's logits against an independent reference run of the same
// weights (io/logit_reference.hpp). Issue 14's criteria, measured here once for the test
// (tests/model/test_qwen_reference.cpp) and for `kvcanary check-reference`:
//   - teacher-forced top-1 equal to the reference's at >= 99 % of positions;
//   - 32 greedy tokens identical on >= 18 of 20 prompts (90 %);
//   - max |Δlogit| reported (on the reference's top-1 logit, and on its last-position top 20).
// The reference's ids are fed to the model, so a tokenizer difference cannot hide a logit
// difference; the tokenizer is compared separately on the reference's texts.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kvcanary/io/logit_reference.hpp"
#include "kvcanary/engine/generate.hpp"

namespace kvcanary::engine {

struct ReferenceAgreement {
  std::size_t prompts = 0, positions = 0;
  std::size_t top1_equal = 0;  // positions where our argmax = the reference's
  float clear_margin = 0.1f;   // a position is "clear" when the reference's top-2 margin exceeds this
  std::size_t clear_positions = 0, clear_top1_equal = 0;  // (0 when the reference has no margins)
  std::size_t greedy_prompts = 0, greedy_identical = 0;   // prompts with a reference continuation / identical 32 tokens
  std::size_t tokenizer_equal = 0;                        // prompts where our tokenizer gives the reference's ids
  float max_dlogit_top1 = 0;       // max over positions of |ours - ref| on the reference's top-1 token
  float max_dlogit_top20 = 0;      // max over prompts of |ours - ref| on its last-position top 20
  std::vector<std::string> notes;  // per-prompt differences, for the reader

  double top1_rate() const {
    return positions ? static_cast<double>(top1_equal) / static_cast<double>(positions) : 0.0;
  }
  double clear_rate() const {
    return clear_positions ? static_cast<double>(clear_top1_equal) / static_cast<double>(clear_positions) : 0.0;
  }
  // Issue 14's gate: top-1 >= 99 % of positions and greedy identical on >= 90 % of prompts (18 of 20).
  bool meets_gate() const {
    return positions > 0 && top1_rate() >= 0.99 && greedy_prompts > 0 && greedy_identical * 10 >= greedy_prompts * 9;
  }
};

// `encode` maps a prompt's text to ids (the model's tokenizer); pass nullptr to skip that check.
template <class WT, class Encode>
ReferenceAgreement check_against_reference(model::Transformer<WT>& model, const io::LogitReference& ref,
                                           const Encode& encode, float clear_margin = 0.1f) {
  ReferenceAgreement a;
  a.clear_margin = clear_margin;
  const std::size_t vocab = static_cast<std::size_t>(model.config().vocab_size);
  std::vector<float> logits;
  std::vector<std::vector<std::int32_t>> greedy_inputs;
  std::vector<const io::ReferencePrompt*> greedy_refs;
  for (const auto& p : ref.prompts) {
    ++a.prompts;
    if constexpr (!std::is_same_v<Encode, std::nullptr_t>) {
      if (encode(p.text) == p.ids)
        ++a.tokenizer_equal;
      else
        a.notes.push_back("tokenizer differs from the reference's ids on " + p.name);
    }
    for (const auto id : p.ids)
      if (id < 0 || static_cast<std::size_t>(id) >= vocab)
        fail(ref.file, "prompts." + p.name + ".ids",
             "token id " + std::to_string(id) + " is outside the model's vocabulary");
    kv::KvCache cache = model.new_cache();
    const model::Segment seg{&cache, p.ids, model::Logits::All};
    model.forward(std::span<const model::Segment>(&seg, 1), logits);
    for (std::size_t i = 0; i < p.ids.size(); ++i) {
      const float* row = &logits[i * vocab];
      const bool same = argmax(row, vocab) == p.top1[i];
      ++a.positions;
      a.top1_equal += same;
      if (!p.top1_margin.empty() && p.top1_margin[i] > clear_margin) {
        ++a.clear_positions;
        a.clear_top1_equal += same;
      }
      if (!p.top1_logit.empty())
        a.max_dlogit_top1 = std::max(a.max_dlogit_top1, std::abs(row[p.top1[i]] - p.top1_logit[i]));
    }
    const float* last = &logits[(p.ids.size() - 1) * vocab];
    for (const auto& [id, logit] : p.last_top20)
      a.max_dlogit_top20 = std::max(a.max_dlogit_top20, std::abs(last[id] - logit));
    if (!p.greedy.empty()) {
      greedy_inputs.push_back(p.ids);
      greedy_refs.push_back(&p);
    }
  }

  if (greedy_inputs.empty()) return a;  // a top-1-only reference (numpy)
  GenerateOptions opt;
  opt.max_new_tokens = 32;
  opt.eos_ids = {-1};  // the references do not stop at EOS: exactly 32 tokens
  const auto gens = generate_greedy(model, std::span<const std::vector<std::int32_t>>(greedy_inputs), opt);
  for (std::size_t i = 0; i < gens.size(); ++i) {
    const auto& want = greedy_refs[i]->greedy;
    const auto& got = gens[i].tokens;
    const std::size_t n = std::min<std::size_t>(32, want.size());
    ++a.greedy_prompts;
    if (got.size() >= n && std::equal(want.begin(), want.begin() + static_cast<std::ptrdiff_t>(n), got.begin())) {
      ++a.greedy_identical;
    } else {
      std::size_t k = 0;
      while (k < std::min(want.size(), got.size()) && want[k] == got[k]) ++k;
      a.notes.push_back("greedy differs on " + greedy_refs[i]->name + " from token " + std::to_string(k));
    }
  }
  return a;
}

}  // namespace kvcanary::engine
