#pragma once
// The model-running subcommands: generate, ppl, logits, check-reference. Each loads the model directory,
// runs the library API and prints one result on stdout; diagnostics go to stderr.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "args.hpp"
#include "options.hpp"
#include "kvcanary/kv/registry.hpp"
#include "kvcanary/engine/generate.hpp"
#include "kvcanary/engine/batch_decode.hpp"
#include "kvcanary/model/model_dir.hpp"
#include "kvcanary/engine/perplexity.hpp"
#include "kvcanary/engine/reference_check.hpp"

namespace kvcanary::cli {

// --compressor NAME --budget F --mode prompt|decode --param NAME=VALUE ...
inline kv::PolicyOptions policy_options(const Args& args) {
  const std::string b = args.get("--budget", "1.0");
  char* end = nullptr;
  const double budget = std::strtod(b.c_str(), &end);
  if (b.empty() || *end != '\0') fail("command line", "--budget", "'" + b + "' is not a number");
  const std::string mode = args.get("--mode", "");
  if (!mode.empty() && mode != "prompt" && mode != "decode")
    fail("command line", "--mode", "'" + mode + "' is not one of prompt, decode");
  const std::string capacity = args.get("--capacity", "fixed");
  if (capacity != "fixed" && capacity != "seen")
    fail("command line", "--capacity", "'" + capacity + "' is not one of fixed, seen");
  std::map<std::string, std::string> params;
  for (const auto& p : args.all("--param")) {
    const auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0) fail("command line", "--param", "'" + p + "' is not NAME=VALUE");
    params[p.substr(0, eq)] = p.substr(eq + 1);
  }
  std::optional<kv::Mode> m;
  if (!mode.empty()) m = mode == "prompt" ? kv::Mode::Prompt : kv::Mode::Decode;
  return kv::PolicyOptions(budget, m, std::move(params), "command line",
                           capacity == "fixed" ? kv::Capacity::Fixed : kv::Capacity::Seen);
}

// Runs body(model, policy) with the compressor chosen on the command line (default: full).
template <class Body>
int with_model_and_policy(const Args& args, Body&& body) {
  const auto options = policy_options(args);
  return with_model(args, [&](auto& m) {
    return kv::with_policy(args.get("--compressor", "full"), options, m.config,
                           [&](auto policy) { return body(m, policy); });
  });
}

// Runs `body` with a model of the weight precision chosen by --dtype.
template <class Body>
int with_model(const Args& args, Body&& body) {
  const std::string dtype = args.get("--dtype", "f32");
  const std::size_t threads = static_cast<std::size_t>(
      args.integer("--threads", static_cast<long long>(ops::ThreadPool::default_threads()), 1));
  const std::string dir = model_dir_arg(args);
  if (dtype == "f32") {
    auto m = model::ModelDir<float>::load(dir, threads);
    return body(m);
  }
  if (dtype == "bf16") {
    auto m = model::ModelDir<bf16_t>::load(dir, threads);
    return body(m);
  }
  if (dtype == "f16") {
    auto m = model::ModelDir<f16_t>::load(dir, threads);
    return body(m);
  }
  if (dtype == "stored") {
    auto m = model::ModelDir<stored_t>::load(dir, threads);
    return body(m);
  }
  fail("command line", "--dtype", "'" + dtype + "' is not one of f32, bf16, f16, stored");
}

inline const Command& generate_command() {
  static const Command c = [] {
    Command cmd{
        "generate",
        "",
        0,
        0,
        "greedy completion of a prompt, on stdout",
        "Greedy completion of the prompt (--text, --text-file, or --prompt as before) under the chosen KV-cache\n"
        "compressor; timings and the measured KV fraction on stderr.",
        {}};
    auto text = text_options("the prompt");
    text[0].alias = "--prompt";
    cmd.options =
        options_of({text,
                    {{"--chat", "", "off", "render the prompt as a user turn through the model's chat template"},
                     {"--system", "TEXT", "none", "a system turn before it (with --chat)"},
                     {"--max-new-tokens", "N", "128", "most tokens to generate (never past the position limit)"},
                     {"--stop", "STR", "none", "stop when the completion contains STR", true},
                     {"--show-ids", "", "off", "also print the generated token ids on stderr"}},
                    model_options(),
                    compression_options()});
    return cmd;
  }();
  return c;
}

inline int run_generate(const Args& args) {
  const TextInput input = read_text_input(args);
  const std::string& prompt = input.text;
  return with_model_and_policy(args, [&](auto& m, const auto& policy) {
    std::string text = prompt;
    if (args.has("--chat")) {
      std::vector<io::ChatMessage> msgs;
      if (args.has("--system")) msgs.push_back({"system", args.get("--system")});
      msgs.push_back({"user", prompt});
      text = m.chat_template().render(msgs, true);
    }
    const std::vector<std::vector<std::int32_t>> prompts = {m.tokenizer.encode(text)};
    if (prompts[0].empty()) fail(input.source, input.field, "is empty after tokenization");
    if (static_cast<std::int64_t>(prompts[0].size()) >= m.config.max_position_embeddings) {
      fail(m.config.source, "max_position_embeddings",
           "the prompt has " + std::to_string(prompts[0].size()) + " tokens; the model's position limit is " +
               std::to_string(m.config.max_position_embeddings));
    }
    engine::GenerateOptions opt;
    opt.max_new_tokens = static_cast<std::size_t>(args.integer("--max-new-tokens", 128, 0));
    // Generation never runs past the position limit.
    opt.max_new_tokens = std::min<std::size_t>(
        opt.max_new_tokens, static_cast<std::size_t>(m.config.max_position_embeddings) - prompts[0].size());
    opt.stop_strings = args.all("--stop");
    auto detok = [&](std::span<const std::int32_t> ids) { return m.tokenizer.decode(ids, true); };
    auto out = engine::generate_greedy(*m.transformer, prompts, opt, detok, policy);
    const auto& g = out[0];
    std::cout << m.tokenizer.decode(g.tokens, true) << std::endl;
    if (args.has("--show-ids")) {
      for (std::size_t i = 0; i < g.tokens.size(); ++i) std::cerr << (i ? " " : "") << g.tokens[i];
      std::cerr << "\n";
    }
    const double decode_tps = g.tokens.size() > 1 ? static_cast<double>(g.tokens.size() - 1) / g.decode_seconds : 0.0;
    std::fprintf(
        stderr,
        "[kvcanary] prompt %zu tokens (%.1f tok/s prefill), generated %zu tokens (%.1f tok/s decode), finish: %s; "
        "%s kept %.4f of the fp16 KV bytes (peak %.4f)\n",
        prompts[0].size(), static_cast<double>(prompts[0].size()) / g.prefill_seconds, g.tokens.size(), decode_tps,
        g.finish_reason.c_str(), policy.identity().c_str(), g.memory.kv_fraction_end, g.memory.kv_fraction_peak);
    return 0;
  });
}

inline const Command& ppl_command() {
  static const Command c{
      "ppl",
      "",
      0,
      0,
      "perplexity of a text: {\"ppl\":..., \"tokens\":...}",
      "Perplexity of the text. Without --compressor: the strided sliding-window protocol over the whole text.\n"
      "With --compressor: the first --context tokens are the prompt the policy compresses, the rest are scored\n"
      "token by token through the compressed cache.",
      options_of({text_options("the text to score"),
                  {{"--window", "N", "min(max_position_embeddings, 2048)", "window length (without --compressor)"},
                   {"--stride", "N", "window / 2", "tokens between window starts (without --compressor)"},
                   {"--context", "N", "half the tokens", "prompt length the policy compresses (with --compressor)"}},
                  model_options(),
                  compression_options()})};
  return c;
}

inline int run_ppl(const Args& args) {
  const TextInput input = read_text_input(args);
  const std::string& text = input.text;
  const std::string& path = input.source;
  return with_model_and_policy(args, [&](auto& m, const auto& policy) {
    const auto ids = m.tokenizer.encode(text);
    if (ids.size() < 2) fail(path, input.field, "needs at least two tokens to score");
    const auto t0 = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    if (!args.has("--compressor")) {
      // Uncompressed: the strided sliding-window protocol over the whole file.
      const auto max_window = static_cast<long long>(std::min<std::int64_t>(m.config.max_position_embeddings, 2048));
      const auto window = static_cast<std::size_t>(args.integer("--window", max_window, 2));
      if (static_cast<long long>(window) > m.config.max_position_embeddings) {
        fail(m.config.source, "max_position_embeddings",
             "--window " + std::to_string(window) + " exceeds the position limit");
      }
      const auto stride = static_cast<std::size_t>(args.integer("--stride", static_cast<long long>(window / 2), 1));
      const auto scores = engine::strided_perplexity(*m.transformer, ids, window, stride);
      std::printf(
          "{\"ppl\": %.6f, \"tokens\": %zu, \"scored\": %zu, \"window\": %zu, \"stride\": %zu, \"seconds\": %.3f}\n",
          scores.perplexity(), ids.size(), scores.n_scored, window, stride, seconds());
      return 0;
    }
    // Under a compressor: the first --context tokens are the prompt the policy compresses; the
    // rest are scored token by token through the compressed cache (the prototype's split).
    if (static_cast<std::int64_t>(ids.size()) > m.config.max_position_embeddings) {
      fail(path, input.field,
           std::to_string(ids.size()) + " tokens exceed the position limit " +
               std::to_string(m.config.max_position_embeddings) + " (compressed scoring is one pass)");
    }
    const auto context = static_cast<std::size_t>(args.integer("--context", static_cast<long long>(ids.size() / 2), 1));
    if (context >= ids.size())
      fail("command line", "--context", "must be smaller than the text's " + std::to_string(ids.size()) + " tokens");
    // One job of the decode loop: the prompt compressed, the rest a forced continuation.
    engine::DecodeJob job{std::vector<std::int32_t>(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(context)),
                          false,
                          std::vector<std::int32_t>(ids.begin() + static_cast<std::ptrdiff_t>(context), ids.end())};
    const auto scores =
        engine::run_jobs(*m.transformer, std::span<const engine::DecodeJob>(&job, 1), policy, engine::GenerateOptions{})
            .front()
            .forced;
    std::printf(
        "{\"ppl\": %.6f, \"tokens\": %zu, \"scored\": %zu, \"context\": %zu, \"compressor\": %s, \"kv_fraction\": "
        "%.6f, \"seconds\": %.3f}\n",
        scores.perplexity(), ids.size(), scores.n_scored, context, nlohmann::json(policy.identity()).dump().c_str(),
        scores.memory.kv_fraction_end, seconds());
    return 0;
  });
}

// `kvcanary compressors`: every policy, its parameters and their defaults.
inline const Command& compressors_command() {
  static const Command c{"compressors",
                         "",
                         0,
                         0,
                         "list the KV-cache compressors, their parameters and defaults",
                         "Lists every KV-cache compressor with its parameters and their defaults.",
                         {}};
  return c;
}

inline int run_compressors(const Args&) {
  std::printf(
      "compressors (kvcanary generate|ppl --compressor NAME --budget F [--mode prompt|decode] [--capacity fixed|seen] "
      "--param NAME=VALUE):\n"
      "  capacity (eviction policies): fixed (default) = budget x prompt length rows per head; seen = budget x tokens "
      "seen\n"
      "  scope (sweeps): context (default in prompt mode) compresses the task's reusable prefix, the question is "
      "appended\n"
      "  uncompressed; prompt (default in decode mode) compresses the whole prompt\n");
  // One column width for every parameter name and default, so the meanings line up.
  std::size_t name_w = 0, default_w = 0;
  kv::for_each_policy([&](std::string_view, std::string_view, const std::vector<kv::ParameterDoc>& params) {
    for (const auto& p : params) {
      name_w = std::max(name_w, p.name.size());
      default_w = std::max(default_w, p.default_value.size());
    }
  });
  kv::for_each_policy([&](std::string_view name, std::string_view summary, const std::vector<kv::ParameterDoc>& params,
                          const kv::PolicyFacts& facts) {
    std::printf("\n  %.*s — %.*s\n", static_cast<int>(name.size()), name.data(), static_cast<int>(summary.size()),
                summary.data());
    const char* dm = kv::mode_name(facts.default_mode);
    std::printf("      modes %s (default %s)", facts.decode_allowed ? "prompt|decode" : "prompt only", dm);
    if (facts.evicts) std::printf("; capacity fixed|seen (default fixed)");
    std::printf("; scope default %s\n", facts.default_mode == kv::Mode::Prompt ? "context" : "prompt");
    for (const auto& p : params)
      std::printf("      %-*s default %-*s %s\n", static_cast<int>(name_w), p.name.c_str(), static_cast<int>(default_w),
                  p.default_value.c_str(), p.meaning.c_str());
  });
  return 0;
}

inline const Command& logits_command() {
  static const Command c{"logits",
                         "",
                         0,
                         0,
                         "top-K [id, logit] at the last position, as JSON",
                         "The K largest logits at the text's last position, with their token ids, as one JSON line.",
                         options_of({text_options(), {{"--top", "K", "10", "how many logits"}}, model_options()})};
  return c;
}

inline int run_logits(const Args& args) {
  const TextInput input = read_text_input(args);
  const std::string& text = input.text;
  const auto top = static_cast<std::size_t>(args.integer("--top", 10, 1));
  return with_model(args, [&](auto& m) {
    const auto ids = m.tokenizer.encode(text);
    if (ids.empty()) fail(input.source, input.field, "is empty after tokenization");
    kv::KvCache cache = m.transformer->new_cache();
    std::vector<float> logits;
    const model::Segment seg{&cache, ids, model::Logits::Last};
    m.transformer->forward(std::span<const model::Segment>(&seg, 1), logits);
    std::vector<std::int32_t> order(logits.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int32_t>(i);
    const std::size_t k = std::min(top, order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                      [&](auto a, auto b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    std::printf("{\"tokens\": %zu, \"position\": %zu, \"top\": [", ids.size(), ids.size() - 1);
    for (std::size_t i = 0; i < k; ++i)
      std::printf("%s[%d, %.6f]", i ? ", " : "", order[i], static_cast<double>(logits[order[i]]));
    std::printf("]}\n");
    return 0;
  });
}

inline const Command& check_reference_command() {
  static const Command c{
      "check-reference",
      "REFERENCE.json",
      1,
      1,
      "the model's logits against a reference run of the same weights",
      "Feeds the reference's token ids to the model and compares (issue 14's criteria): teacher-forced top-1 at every\n"
      "position (gate >= 99 %), 32 greedy tokens per prompt (gate >= 90 % of prompts identical), max |dlogit|, and\n"
      "whether the model's tokenizer gives the reference's ids. REFERENCE.json is written by\n"
      "scripts/golden/make_qwen_hf_reference.py (transformers, --source hf) or make_qwen_reference.py (llama.cpp,\n"
      "--source llama.cpp). One JSON line on stdout; exit 0 when the gate is met, 1 when not, 2 on bad input.",
      options_of({{{"--source", "hf|llama.cpp|numpy", "hf", "which reference in the file to compare against"},
                   {"--clear-margin", "X", "0.1",
                    "also report top-1 over positions where the reference's top-2 margin exceeds X"}},
                  model_options()})};
  return c;
}

inline int run_check_reference(const Args& args) {
  const std::string source = args.get("--source", "hf");
  std::string prefix;
  if (source == "hf")
    prefix = "hf_";
  else if (source == "numpy")
    prefix = "numpy_";
  else if (source != "llama.cpp")
    fail("command line", "--source", "'" + source + "' is not one of hf, llama.cpp, numpy");
  const std::string margin_text = args.get("--clear-margin", "0.1");
  char* end = nullptr;
  const float margin = std::strtof(margin_text.c_str(), &end);
  if (margin_text.empty() || *end != '\0' || !(margin >= 0))
    fail("command line", "--clear-margin", "'" + margin_text + "' is not a number >= 0");
  const auto ref = io::read_logit_reference(args.positional().at(0), prefix);
  return with_model(args, [&](auto& m) {
    const auto a = engine::check_against_reference(
        *m.transformer, ref, [&](const std::string& t) { return m.tokenizer.encode(t); }, margin);
    for (const auto& n : a.notes) std::fprintf(stderr, "%s\n", n.c_str());
    nlohmann::ordered_json j;
    j["reference"] = ref.file;
    j["source"] = source;
    j["prompts"] = a.prompts;
    j["positions"] = a.positions;
    j["top1_equal"] = a.top1_equal;
    j["top1_rate"] = a.top1_rate();
    j["clear_margin"] = a.clear_margin;
    j["clear_positions"] = a.clear_positions;
    j["clear_top1_rate"] = a.clear_rate();
    j["greedy_identical"] = a.greedy_identical;
    j["greedy_prompts"] = a.greedy_prompts;
    j["max_dlogit_top1"] = a.max_dlogit_top1;
    j["max_dlogit_last_top20"] = a.max_dlogit_top20;
    j["tokenizer_equal"] = a.tokenizer_equal;
    j["gate_met"] = a.meets_gate();
    std::printf("%s\n", j.dump().c_str());
    return a.meets_gate() ? 0 : 1;
  });
}

}  // namespace kvcanary::cli
