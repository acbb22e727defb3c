#pragma once
// The model-running subcommands: generate, ppl, logits. Each loads the model directory,
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
#include "kvcanary/model/generate.hpp"
#include "kvcanary/model/model_dir.hpp"
#include "kvcanary/model/perplexity.hpp"

namespace kvcanary::cli {

// --compressor NAME --budget F --mode prompt|decode --param NAME=VALUE ...
inline kv::PolicyOptions policy_options(const Args& args) {
  const std::string b = args.get("--budget", "1.0");
  char* end = nullptr;
  const double budget = std::strtod(b.c_str(), &end);
  if (b.empty() || *end != '\0') fail("command line", "--budget", "'" + b + "' is not a number");
  const std::string mode = args.get("--mode", "prompt");
  if (mode != "prompt" && mode != "decode") fail("command line", "--mode", "'" + mode + "' is not one of prompt, decode");
  std::map<std::string, std::string> params;
  for (const auto& p : args.all("--param")) {
    const auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0) fail("command line", "--param", "'" + p + "' is not NAME=VALUE");
    params[p.substr(0, eq)] = p.substr(eq + 1);
  }
  return kv::PolicyOptions(budget, mode == "prompt" ? kv::Mode::Prompt : kv::Mode::Decode, std::move(params), "command line");
}

// Runs body(model, policy) with the compressor chosen on the command line (default: full).
template <class Body>
int with_model_and_policy(const Args& args, Body&& body) {
  const auto options = policy_options(args);
  return with_model(args, [&](auto& m) {
    return kv::with_policy(args.get("--compressor", "full"), options, m.config, [&](auto policy) { return body(m, policy); });
  });
}

// Runs `body` with a model of the weight precision chosen by --dtype.
template <class Body>
int with_model(const Args& args, Body&& body) {
  const std::string dtype = args.get("--dtype", "f32");
  const std::size_t threads = static_cast<std::size_t>(args.integer("--threads", static_cast<long long>(ops::ThreadPool::default_threads()), 1));
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
    Command c{"generate", "", 0, 0, "greedy completion of a prompt, on stdout",
              "Greedy completion of the prompt (--text, --text-file, or --prompt as before) under the chosen KV-cache\n"
              "compressor; timings and the measured KV fraction on stderr.", {}};
    auto text = text_options("the prompt");
    text[0].alias = "--prompt";
    c.options = options_of({text,
                            {{"--chat", "", "off", "render the prompt as a user turn through the model's chat template"},
                             {"--system", "TEXT", "none", "a system turn before it (with --chat)"},
                             {"--max-new-tokens", "N", "128", "most tokens to generate (never past the position limit)"},
                             {"--stop", "STR", "none", "stop when the completion contains STR", true},
                             {"--show-ids", "", "off", "also print the generated token ids on stderr"}},
                            model_options(), compression_options()});
    return c;
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
    model::GenerateOptions opt;
    opt.max_new_tokens = static_cast<std::size_t>(args.integer("--max-new-tokens", 128, 0));
    // Generation never runs past the position limit.
    opt.max_new_tokens = std::min<std::size_t>(opt.max_new_tokens, static_cast<std::size_t>(m.config.max_position_embeddings) - prompts[0].size());
    opt.stop_strings = args.all("--stop");
    auto detok = [&](std::span<const std::int32_t> ids) { return m.tokenizer.decode(ids, true); };
    auto out = model::generate_greedy(*m.transformer, prompts, opt, detok, policy);
    const auto& g = out[0];
    std::cout << m.tokenizer.decode(g.tokens, true) << std::endl;
    if (args.has("--show-ids")) {
      for (std::size_t i = 0; i < g.tokens.size(); ++i) std::cerr << (i ? " " : "") << g.tokens[i];
      std::cerr << "\n";
    }
    const double decode_tps = g.tokens.size() > 1 ? static_cast<double>(g.tokens.size() - 1) / g.decode_seconds : 0.0;
    std::fprintf(stderr,
                 "[kvcanary] prompt %zu tokens (%.1f tok/s prefill), generated %zu tokens (%.1f tok/s decode), finish: %s; "
                 "%s kept %.4f of the fp16 KV bytes (peak %.4f)\n",
                 prompts[0].size(), static_cast<double>(prompts[0].size()) / g.prefill_seconds, g.tokens.size(), decode_tps,
                 g.finish_reason.c_str(), policy.identity().c_str(), g.kv_fraction_end, g.kv_fraction_peak);
    return 0;
  });
}

inline const Command& ppl_command() {
  static const Command c{
      "ppl", "", 0, 0, "perplexity of a text: {\"ppl\":..., \"tokens\":...}",
      "Perplexity of the text. Without --compressor: the strided sliding-window protocol over the whole text.\n"
      "With --compressor: the first --context tokens are the prompt the policy compresses, the rest are scored\n"
      "token by token through the compressed cache.",
      options_of({text_options("the text to score"),
                  {{"--window", "N", "min(max_position_embeddings, 2048)", "window length (without --compressor)"},
                   {"--stride", "N", "window / 2", "tokens between window starts (without --compressor)"},
                   {"--context", "N", "half the tokens", "prompt length the policy compresses (with --compressor)"}},
                  model_options(), compression_options()})};
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
        fail(m.config.source, "max_position_embeddings", "--window " + std::to_string(window) + " exceeds the position limit");
      }
      const auto stride = static_cast<std::size_t>(args.integer("--stride", static_cast<long long>(window / 2), 1));
      const auto scores = model::strided_perplexity(*m.transformer, ids, window, stride);
      std::printf("{\"ppl\": %.6f, \"tokens\": %zu, \"scored\": %zu, \"window\": %zu, \"stride\": %zu, \"seconds\": %.3f}\n",
                  scores.perplexity(), ids.size(), scores.n_scored, window, stride, seconds());
      return 0;
    }
    // Under a compressor: the first --context tokens are the prompt the policy compresses; the
    // rest are scored token by token through the compressed cache (the prototype's split).
    if (static_cast<std::int64_t>(ids.size()) > m.config.max_position_embeddings) {
      fail(path, input.field, std::to_string(ids.size()) + " tokens exceed the position limit " +
                                    std::to_string(m.config.max_position_embeddings) + " (compressed scoring is one pass)");
    }
    const auto context = static_cast<std::size_t>(args.integer("--context", static_cast<long long>(ids.size() / 2), 1));
    if (context >= ids.size()) fail("command line", "--context", "must be smaller than the text's " + std::to_string(ids.size()) + " tokens");
    const auto scores = model::score_tokens_under(*m.transformer, ids, policy, context, context);
    std::printf("{\"ppl\": %.6f, \"tokens\": %zu, \"scored\": %zu, \"context\": %zu, \"compressor\": %s, \"kv_fraction\": %.6f, \"seconds\": %.3f}\n",
                scores.perplexity(), ids.size(), scores.n_scored, context, nlohmann::json(policy.identity()).dump().c_str(),
                scores.kv_fraction_end, seconds());
    return 0;
  });
}

// `kvcanary compressors`: every policy, its parameters and their defaults.
inline const Command& compressors_command() {
  static const Command c{"compressors", "", 0, 0, "list the KV-cache compressors, their parameters and defaults",
                         "Lists every KV-cache compressor with its parameters and their defaults.", {}};
  return c;
}

inline int run_compressors(const Args&) {
  std::printf("compressors (kvcanary generate|ppl --compressor NAME --budget F --mode prompt|decode --param NAME=VALUE):\n");
  kv::for_each_policy([](std::string_view name, std::string_view summary, const std::vector<kv::ParameterDoc>& params) {
    std::printf("\n  %.*s — %.*s\n", static_cast<int>(name.size()), name.data(), static_cast<int>(summary.size()), summary.data());
    for (const auto& p : params)
      std::printf("      %-13s default %-8s %s\n", p.name.c_str(), p.default_value.c_str(), p.meaning.c_str());
  });
  return 0;
}

inline const Command& logits_command() {
  static const Command c{"logits", "", 0, 0, "top-K [id, logit] at the last position, as JSON",
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

}  // namespace kvcanary::cli
