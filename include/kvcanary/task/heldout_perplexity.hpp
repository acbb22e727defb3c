#pragma once
// Held-out perplexity under a compressor: the token-level metric the functional scores are
// contrasted with. Each span of the held-out text is `context` tokens fed as a prompt (so the
// compressor sees them exactly as it sees a task prompt) followed by `continuation` tokens scored
// teacher-forced, one decode step each, with the policy running in its mode after every step —
// the cache the model would have had if it had generated those tokens.
//
// Spans start at evenly spaced offsets across the tokenized text (deterministic, covering the
// whole corpus rather than its first page). spans = 1 is the prototype's single
// context/continuation split; the sweep reports exp(Σ nll / Σ tokens) over all spans. The
// full-cache sliding-window perplexity of the whole text is `kvcanary ppl` (engine/perplexity.hpp).
//
// Config ([[tasks]] type = "perplexity"): file (default <data>/wikitext-2-raw-test.txt), spans (8),
// context (512), continuation (128), name (default "wikitext2").

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "kvcanary/task/task.hpp"

namespace kvcanary::task {

struct HeldOutPerplexity {
  static constexpr std::string_view type = "perplexity";

  static HeldOutPerplexity from_config(const io::ConfigTable& t, const TaskContext& ctx) {
    HeldOutPerplexity task;
    task.name_ = t.get_string("name", "wikitext2");
    if (task.name_.empty() || task.name_.find('|') != std::string::npos)
      t.fail_at("name", "must be non-empty and free of '|'");
    const auto file = data_file(t, ctx, "file", "wikitext-2-raw-test.txt");
    const std::size_t spans = static_cast<std::size_t>(t.get_int("spans", 8, 1));
    const std::size_t context = static_cast<std::size_t>(t.get_int("context", 512, 1));
    const std::size_t continuation = static_cast<std::size_t>(t.get_int("continuation", 128, 2));
    t.reject_unknown();
    if (!ctx.tokenizer) t.fail_at("file", "needs a tokenizer");
    std::ifstream in(file, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::vector<std::int32_t> ids = ctx.tokenizer->encode(text);
    const std::size_t width = context + continuation;
    if (ids.size() < width)
      t.fail_at("context", "context + continuation (" + std::to_string(width) + ") exceeds the text's " +
                               std::to_string(ids.size()) + " tokens");
    const std::size_t room = ids.size() - width;
    for (std::size_t k = 0; k < spans; ++k) {
      const std::size_t start = spans == 1 ? 0 : room * k / (spans - 1);
      TextSpan s;
      s.id = task.name_ + "@" + std::to_string(start);
      s.context.assign(ids.begin() + static_cast<std::ptrdiff_t>(start),
                       ids.begin() + static_cast<std::ptrdiff_t>(start + context));
      s.continuation.assign(ids.begin() + static_cast<std::ptrdiff_t>(start + context),
                            ids.begin() + static_cast<std::ptrdiff_t>(start + width));
      task.spans_.push_back(std::move(s));
    }
    return task;
  }

  std::string name() const { return name_; }
  const std::vector<TextSpan>& spans() const { return spans_; }

 private:
  std::string name_;
  std::vector<TextSpan> spans_;
};

static_assert(PerplexityTask<HeldOutPerplexity>);

}  // namespace kvcanary::task
