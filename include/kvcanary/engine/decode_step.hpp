#pragma once
// The pieces every decode loop is made of: one forward call over many segments, each driven by
// its own policy (record what it asks for, then let it compress); the scope split's uncompressed
// question; greedy choice; and transformers' stopping rule. The one loop that strings them
// together — generation, gold-answer scoring and agreement alike — is engine/batch_decode.hpp.

#include <exception>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/kv/cache.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/model/llama.hpp"

namespace kvcanary::engine {

struct GenerateOptions {
  std::size_t max_new_tokens = 128;
  std::vector<std::int32_t> eos_ids;      // defaults to the model's generation_config eos
  std::vector<std::string> stop_strings;  // needs a detokenizer
  // A task's own end condition on the decoded continuation (e.g. a code block has closed);
  // ends the sequence with finish_reason "stop". Needs a detokenizer.
  std::function<bool(std::string_view)> stop_when;
  // Scope `context` (kv/policy.hpp): per prompt, how many of its last tokens are the question,
  // appended uncompressed after the rest is prefilled and compressed. Empty, or 0 for a
  // prompt: scope `prompt` (the whole prompt is compressed). Read by generate_greedy, which
  // puts it into each job; run_jobs refuses it (its jobs carry their own).
  std::vector<std::size_t> question_tokens;
};

struct Generation {
  std::vector<std::int32_t> tokens;  // new tokens only
  std::string finish_reason;         // "eos", "stop" or "length"
  // The prefill's wall time; the decode steps' wall time, each step's shared equally among the
  // lanes in it (all of it for a sequence decoded alone).
  double prefill_seconds = 0, decode_seconds = 0;
  kv::KvMemory memory;  // after each step's compression; full = every token seen, fp16 (kv/policy.hpp)
};

// Index of the largest logit; the first on ties, as torch.argmax.
inline std::int32_t argmax(const float* logits, std::size_t n) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<std::int32_t>(best);
}

using Detokenizer = std::function<std::string(std::span<const std::int32_t>)>;

// Why a sequence whose last token is tokens.back() must stop — "eos", "stop" or "length" — or
// nullptr to go on. transformers' order: an EOS id first, then the stop strings and the task's
// own condition on the decoded continuation (these need a detokenizer), then the token cap.
inline const char* stop_reason(std::span<const std::int32_t> tokens, const std::vector<std::int32_t>& eos,
                               const GenerateOptions& options, const Detokenizer& detokenize) {
  for (auto e : eos)
    if (tokens.back() == e) return "eos";
  if ((!options.stop_strings.empty() || options.stop_when) && detokenize) {
    const std::string text = detokenize(tokens);
    for (const auto& s : options.stop_strings)
      if (!s.empty() && text.find(s) != std::string::npos) return "stop";
    if (options.stop_when && options.stop_when(text)) return "stop";
  }
  if (tokens.size() >= options.max_new_tokens) return "length";
  return nullptr;
}

// Step 1c of the policy contract (kv/policy.hpp): the record a reconstructing policy (KVzip)
// scores its prompt step with — `tokens` run over a copy of the uncompressed `cache`, each of
// their rows recorded, the maximum kept per stored row. The copy is dropped with its rows.
template <class WT>
kv::AttentionRecord reconstruction_record(model::Transformer<WT>& model, const kv::KvCache& cache,
                                          std::span<const std::int32_t> tokens) {
  kv::AttentionRecord record;
  kv::KvCache copy = cache;
  const model::RecordRequest request{&record, tokens.size(), false, /*max_over_rows=*/true};
  const model::Segment seg{&copy, tokens, model::Logits::None, std::span<const model::RecordRequest>(&request, 1)};
  std::vector<float> unused;
  model.forward(std::span<const model::Segment>(&seg, 1), unused);
  return record;
}

// One forward call over `segments`, each driven by its policy: record what the policy asks
// for, then let it compress. The building block of generation and of scoring under a policy.
// A null policy leaves its segment's cache uncompressed (no record, no step): the batched
// engine's full-cache reference lane rides in the same call as the compressed lanes
// (engine/batch_decode.hpp, DecodeJob::reference), whatever policy types the caller lists.
template <class WT, kv::CachePolicy Policy>
void forward_with_policies(model::Transformer<WT>& model, std::vector<model::Segment>& segments,
                           std::span<Policy* const> policies, kv::StepKind kind, std::vector<float>& logits) {
  std::vector<kv::AttentionRecord> records(segments.size());
  std::vector<model::RecordRequest> requests(segments.size());
  for (std::size_t i = 0; i < segments.size(); ++i) {
    requests[i] = {&records[i], policies[i] ? policies[i]->attention_rows(kind, segments[i].tokens.size()) : 0,
                   policies[i] && kv::wants_query_moments(*policies[i], kind)};
    segments[i].records = std::span<const model::RecordRequest>(&requests[i], requests[i].rows ? 1 : 0);
  }
  model.forward(segments, logits);
  if (kind == kv::StepKind::Prefill)
    for (std::size_t i = 0; i < segments.size(); ++i)
      if (policies[i])
        if (const auto tokens = kv::reconstruction_tokens(*policies[i], segments[i].tokens); !tokens.empty())
          records[i] = reconstruction_record(model, *segments[i].cache, tokens);
  // Lanes are independent (each owns its cache and policy state), so their compression steps
  // run on the pool's threads: in decode mode an eviction policy re-selects after every step,
  // which would otherwise be a serial tail after each batched forward call.
  std::vector<std::exception_ptr> errors(segments.size());
  model.pool().parallel_for(segments.size(), [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) try {
        if (policies[i]) policies[i]->after_step(*segments[i].cache, records[i], kind);
      } catch (...) {
        errors[i] = std::current_exception();  // rethrown on the caller's thread, first lane first
      }
  });
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// Scope `context`'s second half: the question's tokens are appended to a cache its policy has
// already compressed, with no record and no policy step — they are stored as computed and
// never evicted or coded (prompt mode; decode mode with a question is refused by the callers,
// since a decode-mode policy would later select among the question's rows). The logits are
// the question's last row's, as a one-pass prefill's.
template <class WT>
void append_question(model::Transformer<WT>& model, kv::KvCache& cache, std::span<const std::int32_t> question,
                     std::vector<float>& logits) {
  if (question.empty()) return;
  const model::Segment seg{&cache, question, model::Logits::Last};
  model.forward(std::span<const model::Segment>(&seg, 1), logits);
}

// The first `prompt.size() − question` tokens of the prompt: what a policy compresses. At
// least one token is context.
inline std::size_t context_length(std::size_t prompt, std::size_t question) {
  return question < prompt ? prompt - question : 1;
}

// Prefill a prompt under its policy, in scope `context` when `question` > 0.
template <class WT, kv::CachePolicy Policy>
void prefill_with_policy(model::Transformer<WT>& model, kv::KvCache& cache, std::span<const std::int32_t> prompt,
                         std::size_t question, Policy& policy, std::vector<float>& logits) {
  const std::size_t context = context_length(prompt.size(), question);
  std::vector<model::Segment> seg = {{&cache, prompt.first(context), model::Logits::Last}};
  Policy* p = &policy;
  forward_with_policies(model, seg, std::span<Policy* const>(&p, 1), kv::StepKind::Prefill, logits);
  append_question(model, cache, prompt.subspan(context), logits);
}

}  // namespace kvcanary::engine
