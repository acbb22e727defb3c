#pragma once
// One result row per (cell, sample): the unit a sweep writes, resumes from, merges and reports.
//
// The first eleven fields are the Python prototype's schema, unchanged in name and meaning, so
// a reader written for its rows reads ours: model, method, budget (nominal), task, cell_id,
// sample_id, scores, raw_output, n_tokens, latency_s, kv_bytes_retained. Everything else is
// an addition a prototype reader ignores.
//
// Score names (all numbers):
//   functional rows   "functional" (0/1: the task's verdict — pass@1 for code, the BFCL AST
//                     check for BFCL, the exact call for the seed samples), the task's own
//                     sub-scores (pass@1; json_valid, func_correct, arg_match, ast_correct), and
//                     the paired gold twin: gold_nll (mean negative log-likelihood per gold token
//                     under the same cache), gold_ppl = exp(gold_nll), gold_tokens.
//                     With `[sweep] warning_signals` (docs/METRICS.md "What warns?"), rows of a compressor
//                     other than `full` add the warning signals: agree_top1, first_disagree
//                     (= agree_positions when it never disagreed), kl_full, agree_positions
//                     (agreement with the full cache's own generation, engine/agreement.hpp);
//                     evicted_attention (eviction); kv_rel_error_k, kv_rel_error_v (quantizers and
//                     cache types) — kv/compression_signals.hpp.
//   perplexity rows   perplexity, nll_sum, n_scored (a cell's perplexity is
//                     exp(Σ nll_sum / Σ n_scored), not the mean of the rows' perplexities).

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kvcanary/core/error.hpp"

namespace kvcanary::run {

inline constexpr const char* kProgramVersion = "kvcanary 0.2.0";

enum class TaskKind { Functional, Perplexity };

inline const char* task_kind_name(TaskKind k) { return k == TaskKind::Functional ? "functional" : "perplexity"; }

struct Row {
  // --- the prototype's fields
  std::string model, method;
  double budget = 1.0;  // nominal, as configured
  std::string task, cell_id, sample_id;
  std::map<std::string, double> scores;
  std::string raw_output;
  std::int64_t n_tokens = 0;     // generated tokens (functional) or scored tokens (perplexity)
  double latency_s = 0.0;        // this sample's share of the wall time it ran in
  double kv_bytes_retained = 0;  // bytes the compressed cache held at the end (payload + scales + residual)

  // --- additions
  TaskKind kind = TaskKind::Functional;
  double budget_measured = 1.0;      // kv_bytes_retained / the same tokens in fp16, at the end
  double budget_peak = 1.0;          // the largest such ratio after any step
  std::string policy;                // the policy's identity: name and every parameter
  std::string mode;                  // prompt | decode
  std::string capacity = "seen";     // fixed | seen | none (a policy that keeps every row); absent in old rows: seen
  std::string scope = "prompt";      // context | prompt; absent in old rows: prompt (the whole prompt was compressed)
  std::int64_t question_tokens = 0;  // scope context: prompt tokens appended uncompressed
  std::string prompt_hash, model_hash, config_hash, program_version = kProgramVersion;
  std::int64_t prompt_tokens = 0;
  std::string finish_reason;  // eos | stop | length (functional rows)
  std::string detail;         // why a sample failed: the sandbox verdict, BFCL's error type
  // The generated token ids, on the full cache's functional rows only (absent elsewhere): the
  // warning signals' reference, so a resumed sweep need not generate it again (run/sweep.hpp).
  std::vector<std::int32_t> output_tokens;
};

// The cell id, as the prototype builds it: model|method|budget|task, budget printed as Python
// prints a float (1.0, 0.5, 0.125), so ids written by either program agree.
inline std::string python_float(double v) {
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s = buf;
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

inline std::string make_cell_id(const std::string& model, const std::string& method, double budget,
                                const std::string& task) {
  return model + "|" + method + "|" + python_float(budget) + "|" + task;
}

inline nlohmann::ordered_json to_json(const Row& r) {
  nlohmann::ordered_json j;
  j["model"] = r.model;
  j["method"] = r.method;
  j["budget"] = r.budget;
  j["task"] = r.task;
  j["cell_id"] = r.cell_id;
  j["sample_id"] = r.sample_id;
  nlohmann::ordered_json scores = nlohmann::ordered_json::object();
  for (const auto& [k, v] : r.scores) scores[k] = v;
  j["scores"] = scores;
  j["raw_output"] = r.raw_output;
  j["n_tokens"] = r.n_tokens;
  j["latency_s"] = r.latency_s;
  j["kv_bytes_retained"] = r.kv_bytes_retained;
  j["kind"] = task_kind_name(r.kind);
  j["budget_measured"] = r.budget_measured;
  j["budget_peak"] = r.budget_peak;
  j["policy"] = r.policy;
  j["mode"] = r.mode;
  j["capacity"] = r.capacity;
  j["scope"] = r.scope;
  j["question_tokens"] = r.question_tokens;
  j["prompt_hash"] = r.prompt_hash;
  j["model_hash"] = r.model_hash;
  j["config_hash"] = r.config_hash;
  j["program_version"] = r.program_version;
  j["prompt_tokens"] = r.prompt_tokens;
  j["finish_reason"] = r.finish_reason;
  j["detail"] = r.detail;
  if (!r.output_tokens.empty()) j["output_tokens"] = r.output_tokens;
  return j;
}

// One line, no trailing newline. Non-ASCII output is kept as UTF-8; invalid UTF-8 in a model's
// output (a cut inside a character) is replaced, never allowed to make the line unreadable.
inline std::string to_json_line(const Row& r) {
  return to_json(r).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// Reads a row written by this program or by the prototype (whose rows lack the additions:
// they get their defaults, and kind is inferred from the scores). `where` names the file and
// line for errors.
inline Row row_from_json(const nlohmann::json& j, const std::string& where) {
  auto need = [&](const char* key) -> const nlohmann::json& {
    auto it = j.find(key);
    if (it == j.end()) fail(where, key, "missing");
    return *it;
  };
  auto str = [&](const char* key) {
    const auto& v = need(key);
    if (!v.is_string()) fail(where, key, "must be a string");
    return v.get<std::string>();
  };
  // JSON has no NaN or infinity: nlohmann writes them as null (so does Python's json with
  // allow_nan=False), so null reads back as NaN instead of making the whole file unreadable.
  auto num = [&](const char* key) {
    const auto& v = need(key);
    if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
    if (!v.is_number()) fail(where, key, "must be a number");
    return v.get<double>();
  };
  auto opt_str = [&](const char* key, std::string fallback) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
  };
  auto opt_num = [&](const char* key, double fallback) {
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<double>() : fallback;
  };
  if (!j.is_object()) fail(where, "", "a row must be a JSON object");
  Row r;
  r.model = str("model");
  r.method = str("method");
  r.budget = num("budget");
  r.task = str("task");
  r.cell_id = str("cell_id");
  r.sample_id = str("sample_id");
  const auto& scores = need("scores");
  if (!scores.is_object()) fail(where, "scores", "must be an object");
  for (auto it = scores.begin(); it != scores.end(); ++it) {
    if (it.value().is_number())
      r.scores[it.key()] = it.value().get<double>();
    else if (it.value().is_null())
      r.scores[it.key()] = std::numeric_limits<double>::quiet_NaN();  // Python's float('nan') → null
    else
      fail(where, "scores." + it.key(), "must be a number");
  }
  r.raw_output = str("raw_output");
  const double n_tokens = num("n_tokens");
  r.n_tokens = std::isfinite(n_tokens) ? static_cast<std::int64_t>(n_tokens) : 0;
  r.latency_s = num("latency_s");
  r.kv_bytes_retained = num("kv_bytes_retained");
  const std::string kind = opt_str("kind", r.scores.count("perplexity") ? "perplexity" : "functional");
  if (kind != "functional" && kind != "perplexity") fail(where, "kind", "must be functional or perplexity");
  r.kind = kind == "functional" ? TaskKind::Functional : TaskKind::Perplexity;
  r.budget_measured = opt_num("budget_measured", r.budget);
  r.budget_peak = opt_num("budget_peak", r.budget_measured);
  r.policy = opt_str("policy", r.method);
  r.mode = opt_str("mode", "prompt");
  r.capacity = opt_str("capacity", "seen");
  r.scope = opt_str("scope", "prompt");
  r.question_tokens = static_cast<std::int64_t>(opt_num("question_tokens", 0));
  r.prompt_hash = opt_str("prompt_hash", "");
  r.model_hash = opt_str("model_hash", "");
  r.config_hash = opt_str("config_hash", "");
  r.program_version = opt_str("program_version", "");
  r.prompt_tokens = static_cast<std::int64_t>(opt_num("prompt_tokens", 0));
  r.finish_reason = opt_str("finish_reason", "");
  r.detail = opt_str("detail", "");
  if (auto it = j.find("output_tokens"); it != j.end()) {
    if (!it->is_array()) fail(where, "output_tokens", "must be an array of token ids");
    for (const auto& t : *it) {
      if (!t.is_number_integer() || t.get<std::int64_t>() < 0 || t.get<std::int64_t>() > INT32_MAX)
        fail(where, "output_tokens", "must be an array of token ids (non-negative integers)");
      r.output_tokens.push_back(static_cast<std::int32_t>(t.get<std::int64_t>()));
    }
  }
  return r;
}

inline Row row_from_json_line(const std::string& line, const std::string& where) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail(where, "", "not a JSON object");
  return row_from_json(j, where);
}

}  // namespace kvcanary::run
