#pragma once
// The sweep: compressors × budgets × tasks on one model, one JSON row per (cell, sample).
//
// Composition is compile-time: Sweep<WT, Policies, Tasks> instantiates the batched engine
// (engine/batch_decode.hpp) once per policy type in `Policies` and the cell loop once per task
// type in `Tasks`; the config picks names from those lists at run time. An example program that
// only studies eviction passes std::tuple<FullCache, StreamingLlm, SnapKv> and compiles nothing else.
//
// Every cell is independent and deterministic: a sample's row depends only on (model, policy,
// budget, task, sample), never on which other samples shared its batch (the forward pass is
// batch-invariant), nor on whether the run was interrupted — so resuming skips the finished
// (cell, sample) pairs and the rows come out as an uninterrupted run's (tests/run/test_sweep.cpp).
//
// One writer per results file: run() holds a WriterLock on `out` (core/writer_lock.hpp) unless
// the caller already holds one. A stop flag (set_stop, e.g. core/stop_signal.hpp's) ends the run
// between engine steps with only whole rows written; the summary says so, and rerunning resumes.
//
// Warning signals (`[sweep] warning_signals`, docs/METRICS.md "What warns?"): every functional row of a
// compressor other than `full` also gets agree_top1, first_disagree, kl_full, agree_positions
// (its cache against the full cache's own generation, engine/agreement.hpp) and evicted_attention
// or kv_rel_error_k/_v (kv/compression_signals.hpp). The full cache's generation is regenerated
// per task before the compressed jobs run — one greedy run per sample, shared by every cell —
// rather than read from the full cell's rows: a row then still depends only on its
// (cell, sample), not on whether the full cell is in this shard, already on disk, or in the
// config at all.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/type_list.hpp"
#include "kvcanary/core/writer_lock.hpp"
#include "kvcanary/kv/any_policy.hpp"
#include "kvcanary/kv/full.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/registry.hpp"
#include "kvcanary/engine/batch_decode.hpp"
#include "kvcanary/model/model_dir.hpp"
#include "kvcanary/run/config.hpp"
#include "kvcanary/run/progress.hpp"
#include "kvcanary/run/results_file.hpp"
#include "kvcanary/run/row.hpp"
#include "kvcanary/task/prompts.hpp"
#include "kvcanary/task/registry.hpp"
#include "kvcanary/task/scope_split.hpp"
#include "kvcanary/task/task.hpp"

namespace kvcanary::run {

// Names a model's weights and tokenizer in rows without reading 500 MB: the bytes of
// config.json and tokenizer.json, and every safetensors file's header and size.
inline std::string model_fingerprint(const std::filesystem::path& dir) {
  std::string acc;
  auto add_file = [&](const std::filesystem::path& p, std::size_t max_bytes) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return;
    std::string buf(max_bytes, '\0');
    in.read(buf.data(), static_cast<std::streamsize>(max_bytes));
    buf.resize(static_cast<std::size_t>(in.gcount()));
    acc += p.filename().string() + ":" + std::to_string(std::filesystem::file_size(p)) + ":" + buf;
  };
  add_file(dir / "config.json", 1 << 20);
  add_file(dir / "tokenizer.json", 64 << 20);
  std::vector<std::filesystem::path> shards;
  if (std::filesystem::is_directory(dir))
    for (const auto& e : std::filesystem::directory_iterator(dir))
      if (e.path().extension() == ".safetensors") shards.push_back(e.path());
  std::sort(shards.begin(), shards.end());
  for (const auto& s : shards) add_file(s, 1 << 20);  // the header (and the first weights)
  return task::prompt_hash(acc);
}

struct SweepSummary {
  std::size_t cells_total = 0, cells_owned = 0, rows_written = 0, rows_skipped = 0;
  std::size_t prefills_shared = 0;  // prompt prefills served from another compressor's pass
  std::size_t rows_left = 0;        // rows of the shard still missing when run() returned
  bool stopped = false;             // the stop flag ended the run early
  double wall_seconds = 0;
};

template <class WT, class Policies = kv::AllPolicies, class Tasks = task::AllTasks>
class Sweep {
 public:
  using TaskVariant = type_list::variant_of_t<Tasks>;

  // A cell to run: which compressor, budget and task (run/metrics.hpp Cell is a cell's results).
  struct CellPlan {
    std::size_t compressor = 0, task = 0;
    std::size_t budget_index = 0;  // into the compressor's budgets (and policies_)
    double budget = 1.0;
    std::string cell_id;
  };

  // `run_program` runs the generated code of code tasks (HumanEval): task/code_exec.hpp's
  // run_python, opt-in (the sandbox is Linux only; task/exec_result.hpp). A sweep without one
  // refuses a humaneval task by name.
  Sweep(SweepConfig config, model::ModelDir<WT>& model, task::ProgramRunner run_program = {})
      : config_(std::move(config)), run_program_(std::move(run_program)), model_(model) {
    model_hash_ = model_fingerprint(model_.dir);
    build_policies();  // cheap, so first: a typo fails before any dataset is read
    build_tasks();
    for (std::size_t c = 0; c < config_.compressors.size(); ++c)
      for (std::size_t bi = 0; bi < config_.compressors[c].budgets.size(); ++bi) {
        const double b = config_.compressors[c].budgets[bi];
        for (std::size_t t = 0; t < tasks_.size(); ++t)
          cells_.push_back(
              {c, t, bi, b, make_cell_id(config_.model_label, config_.compressors[c].label, b, tasks_[t].name)});
      }
  }

  const std::vector<CellPlan>& cells() const { return cells_; }
  const SweepConfig& config() const { return config_; }
  const std::string& model_hash() const { return model_hash_; }
  std::size_t samples_in(const CellPlan& c) const { return tasks_[c.task].ids.size(); }

  // Polled between engine steps; when it turns true, run() returns early with only whole rows.
  void set_stop(const std::atomic<bool>* stop) { stop_ = stop; }

  // `held`: the caller's lock on `out` (the CLI takes it before loading the model, so that a
  // second writer is refused at once); without it run() takes its own.
  SweepSummary run(const std::filesystem::path& out, Shard shard = {}, Progress::Style style = Progress::Style::Quiet,
                   const WriterLock* held = nullptr) {
    std::optional<WriterLock> own_lock;
    if (!held) own_lock.emplace(out);
    const auto t0 = std::chrono::steady_clock::now();
    SweepSummary summary;
    summary.cells_total = cells_.size();

    std::set<std::pair<std::string, std::string>> done;
    full_tokens_.clear();
    for (const Row& r : read_results(out).rows) {
      if (!r.model_hash.empty() && r.model == config_.model_label && r.model_hash != model_hash_)
        fail(out.string(), "model_hash",
             "rows of model '" + r.model + "' were written with other weights (" + r.model_hash + " vs " + model_hash_ +
                 "); write to another --out file");
      done.emplace(r.cell_id, r.sample_id);
      if (!r.output_tokens.empty()) full_tokens_[{r.cell_id, r.sample_id}] = r.output_tokens;
    }
    RowWriter writer(out);

    std::vector<std::pair<std::size_t, std::vector<std::size_t>>> work;  // cell, pending samples
    std::size_t pending_total = 0;
    for (std::size_t k = 0; k < cells_.size(); ++k) {
      if (!shard.owns(k)) continue;
      ++summary.cells_owned;
      std::vector<std::size_t> pending;
      const auto& ids = tasks_[cells_[k].task].ids;
      for (std::size_t i = 0; i < ids.size(); ++i)
        if (done.count({cells_[k].cell_id, ids[i]}))
          ++summary.rows_skipped;
        else
          pending.push_back(i);
      pending_total += pending.size();
      if (!pending.empty()) work.emplace_back(k, std::move(pending));
    }

    // Task by task: every pending (cell, sample) of a task is one job under its cell's policy,
    // and all of them go through one batched engine run — lanes of different compressors share
    // each forward call and a cell's stragglers never run alone; each prompt is prefilled once
    // for all the compressors. A row depends only on its (cell, sample), not on this grouping.
    std::vector<std::vector<std::pair<std::size_t, std::vector<std::size_t>>>> by_task(tasks_.size());
    for (auto& w : work) by_task[cells_[w.first].task].push_back(std::move(w));
    std::optional<engine::PrefillShare> share;
    if (config_.share_prefill_mb > 0)
      share.emplace([this](std::size_t n) { return prefill_rows_wanted(n); }, config_.share_prefill_mb << 20,
                    prefill_query_moments());

    Progress progress(style, work.size(), pending_total, config_.progress_every_s);
    for (const auto& task_work : by_task) {
      if (task_work.empty()) continue;
      if (stopping()) break;
      if (share) share->clear();
      run_task(task_work, share ? &*share : nullptr, writer, progress, summary);
    }
    summary.stopped = stopping() && summary.rows_written < pending_total;
    summary.rows_left = pending_total - summary.rows_written;
    progress.finish();
    summary.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return summary;
  }

 private:
  struct Prepared {
    std::vector<std::int32_t> prompt, forced;
    std::string prompt_hash;
    std::size_t question_tokens = 0;  // the prompt's question, for scope context (task/scope_split.hpp)
  };
  struct PreparedTask {
    TaskVariant task;
    std::string name;
    bool functional = true;
    std::vector<std::string> ids;
    std::vector<Prepared> items;
  };

  void build_tasks() {
    task::TaskContext ctx{config_.data_dir, &model_.tokenizer, config_.distractor_text,
                          [this]() -> const io::ChatTemplate* {
                            const auto cfg = model_.dir / "tokenizer_config.json";
                            return std::filesystem::exists(cfg) ? &model_.chat_template() : nullptr;
                          },
                          run_program_};
    std::set<std::string> names;
    for (const auto& table : config_.task_tables) {
      const std::string type = table.require_string("type");
      const bool found =
          type_list::find_first<Tasks>([&]<class T>() { return T::type == type; },
                                       [&]<class T>() {
                                         PreparedTask p{T::from_config(table, ctx), "", true, {}, {}};
                                         prepare(p, std::get<T>(p.task));
                                         if (!names.insert(p.name).second)
                                           table.fail_at("name", "task name '" + p.name + "' is used twice");
                                         tasks_.push_back(std::move(p));
                                       });
      if (!found)
        table.fail_at("type", "unknown task type '" + type + "' (known: " + task::known_task_types<Tasks>() + ")");
    }
  }

  template <class T>
  void prepare(PreparedTask& p, const T& t) {
    p.name = t.name();
    if constexpr (task::FunctionalTask<T>) {
      p.functional = true;
      for (const auto& s : t.samples()) {
        const std::string rendered = model_.chat_template().render(s.messages, /*add_generation_prompt=*/true, s.tools);
        p.ids.push_back(s.id);
        p.items.push_back(
            {model_.tokenizer.encode(rendered), model_.tokenizer.encode(s.gold), task::prompt_hash(rendered)});
        p.items.back().question_tokens =
            task::question_tokens(model_.chat_template(), model_.tokenizer, s, rendered, p.items.back().prompt);
      }
    } else {
      p.functional = false;
      for (const auto& s : t.spans()) {
        p.ids.push_back(s.id);
        p.items.push_back({s.context, s.continuation, task::prompt_hash(model_.tokenizer.decode(s.context))});
      }
    }
    // A sample must fit the model's positions with its longest continuation (generated or gold).
    std::size_t new_tokens = 0;
    if constexpr (task::FunctionalTask<T>) new_tokens = t.max_new_tokens();
    const std::size_t max_pos = static_cast<std::size_t>(model_.config.max_position_embeddings);
    for (std::size_t i = 0; i < p.items.size(); ++i)
      if (max_pos && p.items[i].prompt.size() + std::max(p.items[i].forced.size(), new_tokens) > max_pos)
        fail(config_.file.string(), "tasks",
             "sample '" + p.ids[i] + "' of task '" + p.name + "' needs " +
                 std::to_string(p.items[i].prompt.size() + std::max(p.items[i].forced.size(), new_tokens)) +
                 " positions; the model has " + std::to_string(max_pos));
  }

  kv::PolicyOptions options_for(const CompressorSpec& s, double budget) const {
    return kv::PolicyOptions(budget, s.mode, s.params, config_.file.string() + ": " + s.where, s.capacity);
  }

  // What a compressor's rows record: its resolved mode, capacity and scope.
  struct Semantics {
    kv::Mode mode = kv::Mode::Prompt;
    std::string capacity = "none";
    kv::Scope scope = kv::Scope::Prompt;
  };

  using AnyPolicy = kv::AnyPolicyOf<Policies>;

  // The attention row counts any (compressor, budget) of the sweep records after a prefill of
  // n tokens: the shared prefill records them all in one pass.
  std::vector<std::size_t> prefill_rows_wanted(std::size_t n) const {
    std::vector<std::size_t> rows;
    for (const auto& per_budget : policies_)
      for (const AnyPolicy& p : per_budget) rows.push_back(p.attention_rows(kv::StepKind::Prefill, n));
    if (config_.warning_signals) rows.push_back(1);  // evicted_attention's last query row
    return rows;
  }

  // Whether any (compressor, budget) wants the prefill's query moments (Expected Attention).
  bool prefill_query_moments() const {
    for (const auto& per_budget : policies_)
      for (const AnyPolicy& p : per_budget)
        if (p.query_moments(kv::StepKind::Prefill)) return true;
    return false;
  }

  // Every (compressor, budget) is built once, before anything runs: a bad parameter fails now,
  // not after an hour of other cells, and each job copies its cell's policy from here.
  //
  // Scope: absent, `context` in prompt mode (KVPress's split, the deployment case) and `prompt`
  // in decode mode (the decode-mode papers compress the whole stream); `context` with decode
  // mode is refused — a decode-mode policy would select among the question's rows.
  void build_policies() {
    for (const auto& s : config_.compressors) {
      auto& per_budget = policies_.emplace_back();
      for (double b : s.budgets)
        per_budget.push_back(kv::with_policy_from<Policies>(s.name, options_for(s, b), model_.config,
                                                            [](auto p) { return AnyPolicy{p}; }));
      Semantics sem;
      sem.mode = per_budget.front().mode();
      if (const auto c = per_budget.front().capacity()) sem.capacity = kv::capacity_name(*c);
      sem.scope = s.scope.value_or(sem.mode == kv::Mode::Prompt ? kv::Scope::Context : kv::Scope::Prompt);
      if (sem.scope == kv::Scope::Context && sem.mode == kv::Mode::Decode)
        fail(config_.file.string(), s.where + ".scope",
             "scope context appends the question uncompressed, which a decode-mode policy would then evict from; use "
             "scope = "
             "\"prompt\" with mode = \"decode\"");
      semantics_.push_back(sem);
    }
  }

  void run_task(const std::vector<std::pair<std::size_t, std::vector<std::size_t>>>& task_work,
                engine::PrefillShare* share, RowWriter& writer, Progress& progress, SweepSummary& summary) {
    PreparedTask& pt = tasks_[cells_[task_work.front().first].task];
    struct JobOf {
      std::size_t cell, sample;
    };
    std::vector<engine::DecodeJob> jobs;
    std::vector<AnyPolicy> policies;
    std::vector<JobOf> job_of;
    std::vector<std::string> identity(cells_.size());
    std::vector<std::size_t> left(cells_.size(), 0);
    for (const auto& [k, pending] : task_work) {
      const CellPlan& cell = cells_[k];
      const AnyPolicy& policy = policies_[cell.compressor][cell.budget_index];
      identity[k] = policy.identity();
      left[k] = pending.size();
      for (std::size_t i : pending) {
        const bool context = semantics_[cell.compressor].scope == kv::Scope::Context;
        jobs.push_back(
            {pt.items[i].prompt, pt.functional, pt.items[i].forced, context ? pt.items[i].question_tokens : 0});
        policies.push_back(policy);
        job_of.push_back({k, i});
      }
    }
    const auto signals_for = [&](std::size_t job) {
      return config_.warning_signals && pt.functional &&
             config_.compressors[cells_[job_of[job].cell].compressor].name != kv::FullCache::name;
    };

    engine::GenerateOptions gen;
    gen.max_new_tokens = 0;
    std::visit(
        [&](const auto& t) {
          using T = std::decay_t<decltype(t)>;
          if constexpr (task::FunctionalTask<T>) gen.max_new_tokens = t.max_new_tokens();
          if constexpr (task::HasCompletionCheck<T>)
            gen.stop_when = [&t](std::string_view text) { return t.complete(text); };
        },
        pt.task);
    const engine::Detokenizer detokenize = [&](std::span<const std::int32_t> ids) {
      return model_.tokenizer.decode(ids, /*skip_special_tokens=*/true);
    };
    engine::BatchOptions batch;
    batch.max_lanes = config_.batch;
    batch.prefill_share = share;
    batch.stop = stop_;
    const std::size_t hits_before = share ? share->hits() : 0;
    progress.begin_cell(pt.name + " (" + std::to_string(task_work.size()) + " cells)");

    // The warning signals compare each compressed job with the full cache's own greedy generation
    // of its sample. By batch invariance that is the full cell's generation token for token (when
    // the full cell prefills with the question split the references use: scope context), so it is
    // taken from there: from the full cell's rows already on disk (their `output_tokens`; a
    // resumed run), else by running the full cell's pending jobs first. Only samples with neither
    // (no such full cell in the sweep) get a separate reference pass under kv::FullCache.
    std::vector<const std::vector<std::int32_t>*> reference_of(pt.items.size(), nullptr);
    std::size_t full_cell = SIZE_MAX;
    for (std::size_t k = 0; k < cells_.size(); ++k)
      if (&tasks_[cells_[k].task] == &pt && full_cell == SIZE_MAX && is_reference_cell(cells_[k])) full_cell = k;
    if (full_cell != SIZE_MAX)
      for (std::size_t i = 0; i < pt.items.size(); ++i) {
        auto it = full_tokens_.find({cells_[full_cell].cell_id, pt.ids[i]});
        if (it != full_tokens_.end()) reference_of[i] = &it->second;
      }
    std::vector<std::vector<std::int32_t>> generated(pt.items.size());  // this run's full-cell generations

    const auto on_done = [&](std::size_t j, const engine::JobResult& result) {
      const auto [k, i] = job_of[j];
      const CellPlan& cell = cells_[k];
      Row row = base_row(cell, config_.compressors[cell.compressor], pt, i, identity[k]);
      const auto s0 = std::chrono::steady_clock::now();
      if (pt.functional)
        fill_functional(row, pt, i, result);
      else
        fill_perplexity(row, result);
      if (pt.functional && config_.compressors[cell.compressor].name == kv::FullCache::name)
        row.output_tokens = result.generation.tokens;
      if (k == full_cell && pt.functional) generated[i] = result.generation.tokens;
      row.latency_s = result.seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
      writer.append(row);
      ++summary.rows_written;
      progress.sample_done();
      if (--left[k] == 0) progress.cell_done();
    };
    // Runs the jobs listed in `group` (indices into jobs) as one batched engine run.
    const auto run_group = [&](const std::vector<std::size_t>& group) {
      if (group.empty()) return;
      std::vector<engine::DecodeJob> group_jobs;
      std::vector<AnyPolicy> group_policies;
      for (std::size_t j : group) group_jobs.push_back(jobs[j]), group_policies.push_back(policies[j]);
      engine::BatchOptions b = batch;
      b.on_job_done = [&](std::size_t g, const engine::JobResult& result) { on_done(group[g], result); };
      engine::run_jobs_each(*model_.transformer, std::span<const engine::DecodeJob>(group_jobs),
                            std::span<const AnyPolicy>(group_policies), gen, detokenize, b);
    };

    std::vector<std::size_t> first, rest;  // the full cell's jobs first when they give references
    bool any_signals = false;
    for (std::size_t j = 0; j < jobs.size(); ++j) any_signals = any_signals || signals_for(j);
    for (std::size_t j = 0; j < jobs.size(); ++j)
      (any_signals && job_of[j].cell == full_cell ? first : rest).push_back(j);
    // Sample by sample: the cells of one sample share one uncompressed reference lane, whose rows
    // live until the sample's last cell has read them (engine/batch_decode.hpp) — admitted
    // together, few samples' rows are alive at once. Rows are keyed, so their order in the file
    // does not matter.
    if (any_signals)
      std::stable_sort(rest.begin(), rest.end(),
                       [&](std::size_t a, std::size_t b) { return job_of[a].sample < job_of[b].sample; });
    run_group(first);
    if (stopping()) return;
    for (std::size_t i = 0; i < pt.items.size(); ++i)
      if (!reference_of[i] && !generated[i].empty()) reference_of[i] = &generated[i];

    std::vector<std::size_t> reference_index(pt.items.size(), SIZE_MAX);
    std::vector<engine::DecodeJob> reference_jobs;
    for (std::size_t j : rest) {
      if (!signals_for(j)) continue;
      const std::size_t i = job_of[j].sample;
      if (!reference_of[i] && reference_index[i] == SIZE_MAX) {
        reference_index[i] = reference_jobs.size();
        reference_jobs.push_back({pt.items[i].prompt, true, {}, pt.items[i].question_tokens});
      }
    }
    std::vector<engine::JobResult> references;
    if (!reference_jobs.empty()) {
      engine::BatchOptions ref_batch = batch;
      ref_batch.on_job_done = nullptr;
      references = engine::run_jobs(*model_.transformer, std::span<const engine::DecodeJob>(reference_jobs),
                                    kv::FullCache{}, gen, detokenize, ref_batch);
      if (stopping()) return;  // before any compressed row of the task: its jobs all rerun on resume
    }
    for (std::size_t j : rest)
      if (signals_for(j)) {
        const std::size_t i = job_of[j].sample;
        jobs[j].reference = reference_of[i] ? *reference_of[i] : references[reference_index[i]].generation.tokens;
        jobs[j].compression_signals = true;
      }
    run_group(rest);
    if (share) summary.prefills_shared += share->hits() - hits_before;
  }

  Row base_row(const CellPlan& cell, const CompressorSpec& spec, const PreparedTask& pt, std::size_t i,
               const std::string& identity) const {
    Row r;
    r.model = config_.model_label;
    r.method = spec.label;
    r.budget = cell.budget;
    r.task = pt.name;
    r.cell_id = cell.cell_id;
    r.sample_id = pt.ids[i];
    r.kind = pt.functional ? TaskKind::Functional : TaskKind::Perplexity;
    r.policy = identity;
    const Semantics& sem = semantics_[cell.compressor];
    r.mode = kv::mode_name(sem.mode);
    r.capacity = sem.capacity;
    r.scope = kv::scope_name(sem.scope);
    r.question_tokens = sem.scope == kv::Scope::Context ? static_cast<std::int64_t>(pt.items[i].question_tokens) : 0;
    r.prompt_hash = pt.items[i].prompt_hash;
    r.model_hash = model_hash_;
    r.config_hash = config_.hash;
    r.prompt_tokens = static_cast<std::int64_t>(pt.items[i].prompt.size());
    return r;
  }

  void fill_functional(Row& row, const PreparedTask& pt, std::size_t i, const engine::JobResult& result) const {
    const engine::Generation& g = result.generation;
    row.raw_output = model_.tokenizer.decode(g.tokens, /*skip_special_tokens=*/true);
    task::Verdict v;
    std::visit(
        [&](const auto& t) {
          if constexpr (task::FunctionalTask<std::decay_t<decltype(t)>>) v = t.score(i, row.raw_output);
        },
        pt.task);
    row.scores = std::move(v.scores);
    row.detail = std::move(v.detail);
    const engine::TokenScores& gold = result.forced;
    if (gold.n_scored) {
      const double nll = gold.nll_sum / static_cast<double>(gold.n_scored);
      row.scores["gold_nll"] = nll;
      row.scores["gold_ppl"] = std::exp(nll);
      row.scores["gold_tokens"] = static_cast<double>(gold.n_scored);
    }
    if (result.agreement.measured()) {
      const engine::Agreement& a = result.agreement;
      row.scores["agree_top1"] = a.top1();
      row.scores["first_disagree"] = static_cast<double>(a.first_disagree());
      row.scores["kl_full"] = a.kl_mean();
      row.scores["agree_positions"] = static_cast<double>(a.positions);
    }
    const kv::CompressionSignals& c = result.compression;
    if (c.evicted_attention) row.scores["evicted_attention"] = *c.evicted_attention;
    if (c.kv_rel_error_k) row.scores["kv_rel_error_k"] = *c.kv_rel_error_k;
    if (c.kv_rel_error_v) row.scores["kv_rel_error_v"] = *c.kv_rel_error_v;
    row.n_tokens = static_cast<std::int64_t>(g.tokens.size());
    row.finish_reason = g.finish_reason;
    row.kv_bytes_retained = static_cast<double>(result.generation.memory.kv_bytes_end);
    row.budget_measured = result.generation.memory.kv_fraction_end;
    row.budget_peak = result.generation.memory.kv_fraction_peak;
  }

  void fill_perplexity(Row& row, const engine::JobResult& result) const {
    const engine::TokenScores& s = result.forced;
    row.scores = {
        {"perplexity", s.perplexity()}, {"nll_sum", s.nll_sum}, {"n_scored", static_cast<double>(s.n_scored)}};
    row.n_tokens = static_cast<std::int64_t>(s.n_scored);
    row.kv_bytes_retained = static_cast<double>(result.forced.memory.kv_bytes_end);
    row.budget_measured = result.forced.memory.kv_fraction_end;
    row.budget_peak = result.forced.memory.kv_fraction_peak;
  }

  bool stopping() const { return stop_ && stop_->load(std::memory_order_relaxed); }

  // A cell whose generations are the warning signals' references: the full cache, prefilled with
  // the question split (scope context) the references are made with.
  bool is_reference_cell(const CellPlan& c) const {
    return config_.compressors[c.compressor].name == kv::FullCache::name &&
           semantics_[c.compressor].scope == kv::Scope::Context;
  }

  SweepConfig config_;
  task::ProgramRunner run_program_;  // before the tasks are built (constructor)
  const std::atomic<bool>* stop_ = nullptr;
  model::ModelDir<WT>& model_;
  std::string model_hash_;
  std::vector<PreparedTask> tasks_;
  std::vector<CellPlan> cells_;
  std::vector<std::vector<AnyPolicy>> policies_;  // [compressor][budget index], fresh state
  std::vector<Semantics> semantics_;              // [compressor]
  // The full cache's generations already on disk, by (cell id, sample id): the warning signals'
  // references on resume (run_task).
  std::map<std::pair<std::string, std::string>, std::vector<std::int32_t>> full_tokens_;
};

}  // namespace kvcanary::run
