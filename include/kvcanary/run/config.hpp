#pragma once
// A sweep config (TOML): which model, which compressors at which budgets, which tasks. The
// matrix is compressors × budgets × tasks; every cell runs every sample of its task.
//
//   [sweep]          name, batch (lanes per forward call, 16), progress_every_s,
//                    share_prefill_mb (memory for prompts prefilled once for all compressors, 2048; 0: off),
//                    warning_signals (cheap warnings on every compressed functional row, false; run/sweep.hpp)
//   [model]          dir (default: $KVCANARY_MODEL or the setup's model; a path, or a model name
//                    of model/model_name.hpp, which resolves to the default model directory's
//                    sibling models/NAME), label, dtype (f32|bf16|f16|stored: the GGUF blocks, docs/MODELS.md), threads
//   [data]           dir (default: $KVCANARY_DATA_DIR or ./data), distractor_text (default
//   <dir>/wikitext-2-raw-test.txt)
//   [[compressors]]  name, label (the row's `method`, default name), budgets = [...], mode (prompt|decode;
//                    default the policy's), capacity (fixed|seen; fixed), scope (context|prompt; default
//                    context in prompt mode, prompt in decode mode), params = { k = v, ... }
//   [[tasks]]        type (see task/registry.hpp) and the task's own keys
//
// Relative paths are taken from the current directory (configs are run from the repository
// root). docs/SWEEPS.md documents every key; configs/*.toml are worked examples.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "kvcanary/io/config_table.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/model/model_name.hpp"
#include "kvcanary/task/prompts.hpp"

namespace kvcanary::run {

struct CompressorSpec {
  std::string name, label;
  std::vector<double> budgets;
  std::optional<kv::Mode> mode;          // unset: the policy's paper default
  std::optional<kv::Capacity> capacity;  // unset: fixed
  std::optional<kv::Scope> scope;        // unset: context in prompt mode, prompt in decode mode
  std::map<std::string, std::string> params;
  std::string where;  // its config path, for errors
};

struct SweepConfig {
  std::filesystem::path file;
  std::string name;
  std::string hash;  // FNV-1a 64 of the file's bytes
  std::size_t batch = 16;
  double progress_every_s = 10;
  std::size_t share_prefill_mb = 2048;
  // Warning signals (docs/METRICS.md "What warns?"): score every functional row of a compressor
  // other than `full` for agreement with the full cache's own generation (agree_top1,
  // first_disagree, kl_full, agree_positions) and for what its prompt step did to the cache
  // (evicted_attention; kv_rel_error_k, kv_rel_error_v). Off by default: it teacher-forces the
  // full cache's generation through two more lanes per compressed job and regenerates it once
  // per sample, about doubling a functional sweep's decode work (docs/SWEEPS.md has the
  // measured cost). This member's initializer is the key's default.
  bool warning_signals = false;

  std::filesystem::path model_dir;
  std::string model_label, dtype = "f32";
  std::size_t threads = 0;  // 0: all cores

  std::filesystem::path data_dir, distractor_text;
  std::vector<CompressorSpec> compressors;

  // The task tables stay parsed, not interpreted: a task is built once the model's tokenizer is
  // loaded (its prompts are token-counted).
  std::shared_ptr<toml::table> document;
  std::vector<io::ConfigTable> task_tables;
};

inline SweepConfig parse_sweep_config(toml::table doc, const std::string& file, const std::string& default_model_dir) {
  SweepConfig c;
  c.file = file;
  c.document = std::make_shared<toml::table>(std::move(doc));
  const io::ConfigTable root(*c.document, file, "");

  if (auto s = root.opt_table("sweep")) {
    c.name = s->get_string("name", "");
    c.batch = static_cast<std::size_t>(s->get_int("batch", 16, 1));
    c.progress_every_s = s->get_double("progress_every_s", 10);
    c.share_prefill_mb = static_cast<std::size_t>(s->get_int("share_prefill_mb", 2048, 0));
    c.warning_signals = s->get_bool("warning_signals", c.warning_signals);
    s->reject_unknown();
  }
  if (c.name.empty()) c.name = std::filesystem::path(file).stem().string();

  std::string model_dir;
  if (const char* env = std::getenv("KVCANARY_MODEL")) model_dir = env;
  if (model_dir.empty()) model_dir = default_model_dir;
  if (auto m = root.opt_table("model")) {
    model_dir = m->get_string("dir", model_dir);
    c.model_label = m->get_string("label", "");
    c.dtype = m->get_string("dtype", "f32");
    if (c.dtype != "f32" && c.dtype != "bf16" && c.dtype != "f16" && c.dtype != "stored")
      m->fail_at("dtype", "must be f32, bf16, f16 or stored");
    c.threads = static_cast<std::size_t>(m->get_int("threads", 0));
    m->reject_unknown();
  }
  c.model_dir = model::resolve_model_dir(model_dir, std::filesystem::path(default_model_dir).parent_path());
  if (c.model_label.empty()) c.model_label = c.model_dir.filename().string();
  if (c.model_label.find('|') != std::string::npos) fail(file, "model.label", "must not contain '|'");

  std::string data_dir = "data";
  if (const char* env = std::getenv("KVCANARY_DATA_DIR"); env && *env) data_dir = env;
  std::string distractor;
  if (auto d = root.opt_table("data")) {
    data_dir = d->get_string("dir", data_dir);
    distractor = d->get_string("distractor_text", "");
    d->reject_unknown();
  }
  c.data_dir = data_dir;
  c.distractor_text = distractor.empty() ? c.data_dir / "wikitext-2-raw-test.txt" : std::filesystem::path(distractor);

  std::set<std::string> labels;
  for (const auto& t : root.get_tables("compressors")) {
    CompressorSpec s;
    s.where = t.key_path("");
    s.name = t.require_string("name");
    s.label = t.get_string("label", s.name);
    if (s.label.empty() || s.label.find('|') != std::string::npos)
      t.fail_at("label", "must be non-empty and free of '|'");
    if (!labels.insert(s.label).second)
      t.fail_at("label", "'" + s.label + "' is used twice; give the second entry its own label");
    s.budgets = t.get_numbers("budgets", {1.0});
    if (s.budgets.empty()) t.fail_at("budgets", "must list at least one budget");
    for (std::size_t i = 0; i < s.budgets.size(); ++i)
      if (!(s.budgets[i] > 0.0 && s.budgets[i] <= 1.0))
        t.fail_at("budgets[" + std::to_string(i) + "]", "must be in (0, 1]");
    const std::string mode = t.get_string("mode", "");
    if (!mode.empty() && mode != "prompt" && mode != "decode")
      t.fail_at("mode", "must be prompt or decode (absent: the policy's default)");
    if (!mode.empty()) s.mode = mode == "prompt" ? kv::Mode::Prompt : kv::Mode::Decode;
    const std::string capacity = t.get_string("capacity", "fixed");
    if (capacity != "fixed" && capacity != "seen") t.fail_at("capacity", "must be fixed or seen");
    s.capacity = capacity == "fixed" ? kv::Capacity::Fixed : kv::Capacity::Seen;
    const std::string scope = t.get_string("scope", "");
    if (!scope.empty() && scope != "context" && scope != "prompt")
      t.fail_at("scope", "must be context or prompt (absent: context in prompt mode, prompt in decode mode)");
    if (!scope.empty()) s.scope = scope == "context" ? kv::Scope::Context : kv::Scope::Prompt;
    s.params = t.get_scalars("params");
    t.reject_unknown();
    c.compressors.push_back(std::move(s));
  }
  if (c.compressors.empty()) fail(file, "compressors", "the config lists no [[compressors]]");
  c.task_tables = root.get_tables("tasks");
  if (c.task_tables.empty()) fail(file, "tasks", "the config lists no [[tasks]]");
  root.reject_unknown();
  // A config built in code has no file bytes to hash: name it by its canonical TOML text.
  // load_sweep_config replaces this with the hash of the file as written.
  std::ostringstream canonical;
  canonical << toml::toml_formatter(*c.document);
  c.hash = task::prompt_hash(canonical.str());
  return c;
}

inline SweepConfig load_sweep_config(const std::filesystem::path& path, const std::string& default_model_dir) {
  toml::table doc = io::parse_toml_file(path);
  SweepConfig c = parse_sweep_config(std::move(doc), path.string(), default_model_dir);
  std::ifstream in(path, std::ios::binary);
  c.hash = task::prompt_hash(std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()));
  return c;
}

// `--shard i/N`: cell k of the matrix belongs to shard k mod N.
struct Shard {
  std::size_t index = 0, count = 1;
  bool owns(std::size_t cell) const { return cell % count == index; }
};

inline Shard parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  auto bad = [&] { fail("command line", "--shard", "'" + text + "' is not i/N with 0 <= i < N"); };
  if (slash == std::string::npos) bad();
  char* end = nullptr;
  const std::string a = text.substr(0, slash), b = text.substr(slash + 1);
  const long long i = std::strtoll(a.c_str(), &end, 10);
  if (a.empty() || *end) bad();
  const long long n = std::strtoll(b.c_str(), &end, 10);
  if (b.empty() || *end) bad();
  if (n < 1 || i < 0 || i >= n) bad();
  return {static_cast<std::size_t>(i), static_cast<std::size_t>(n)};
}

}  // namespace kvcanary::run
