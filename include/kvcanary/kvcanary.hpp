#pragma once
// Umbrella header: the public headers of kvcanary, layer by layer in the order of the
// architecture (docs/ARCHITECTURE.md), lowest first. This order is the layering rule: a header
// includes only headers of its own layer and of the layers listed before it, and every header
// is reached from here (a new compressor through kv/registry.hpp). cmake/check_layers.cmake
// enforces both at configure time and as the ctest case `layering_check`.

// core: errors, files, half floats, the model configuration
#include "kvcanary/core/atomic_file.hpp"
#include "kvcanary/core/error.hpp"
#include "kvcanary/core/half.hpp"
#include "kvcanary/core/mapped_file.hpp"
#include "kvcanary/core/model_config.hpp"
#include "kvcanary/core/splitmix64.hpp"
#include "kvcanary/core/stop_signal.hpp"
#include "kvcanary/core/writer_lock.hpp"

// io: file formats: GGUF, safetensors, tokenizers, chat templates, TOML/JSON tables
#include "kvcanary/io/bpe.hpp"
#include "kvcanary/io/byte_level.hpp"
#include "kvcanary/io/chat_template.hpp"
#include "kvcanary/io/config_table.hpp"
#include "kvcanary/io/gguf.hpp"
#include "kvcanary/io/gguf_quants.hpp"
#include "kvcanary/io/gguf_to_hf.hpp"
#include "kvcanary/io/gzip_file.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/io/json_reader.hpp"
#include "kvcanary/io/logit_reference.hpp"
#include "kvcanary/io/pre_tokenizer.hpp"
#include "kvcanary/io/regex.hpp"
#include "kvcanary/io/safetensors.hpp"
#include "kvcanary/io/safetensors_writer.hpp"
#include "kvcanary/io/tokenizer.hpp"
#include "kvcanary/io/unicode_nfc.hpp"
#include "kvcanary/io/utf8.hpp"

// ops: kernels: matmul, attention's dot products, elementwise, exp, RoPE, thread pool; the
// build's SIMD in simd.hpp, wider SIMD chosen at run time (isa.hpp; `-inl.h`: compiled per target)
#include "kvcanary/ops/dot.hpp"
#include "kvcanary/ops/elementwise.hpp"
#include "kvcanary/ops/exp.hpp"
#include "kvcanary/ops/isa.hpp"
#include "kvcanary/ops/matmul.hpp"
#include "kvcanary/ops/rope.hpp"
#include "kvcanary/ops/simd.hpp"
#include "kvcanary/ops/stored_matmul.hpp"
#include "kvcanary/ops/thread_pool.hpp"

// kv: the KV cache, its storage formats and the compressor policies that edit it
#include "kvcanary/kv/absmax.hpp"
#include "kvcanary/kv/adakv.hpp"
#include "kvcanary/kv/any_policy.hpp"
#include "kvcanary/kv/base_scorer.hpp"
#include "kvcanary/kv/cache.hpp"
#include "kvcanary/kv/cache_type_quant.hpp"
#include "kvcanary/kv/cache_types.hpp"
#include "kvcanary/kv/chunkkv.hpp"
#include "kvcanary/kv/composed.hpp"
#include "kvcanary/kv/compression_signals.hpp"
#include "kvcanary/kv/eviction.hpp"
#include "kvcanary/kv/expected_attention.hpp"
#include "kvcanary/kv/full.hpp"
#include "kvcanary/kv/h2o.hpp"
#include "kvcanary/kv/keydiff.hpp"
#include "kvcanary/kv/kivi.hpp"
#include "kvcanary/kv/knorm.hpp"
#include "kvcanary/kv/kvzip.hpp"
#include "kvcanary/kv/minifloat.hpp"
#include "kvcanary/kv/observed_attention.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/packed_rows.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/kv/pyramidkv.hpp"
#include "kvcanary/kv/quant_width.hpp"
#include "kvcanary/kv/quantizer.hpp"
#include "kvcanary/kv/random.hpp"
#include "kvcanary/kv/registry.hpp"
#include "kvcanary/kv/snapkv.hpp"
#include "kvcanary/kv/snapkv_rolling.hpp"
#include "kvcanary/kv/streamingllm.hpp"
#include "kvcanary/kv/think.hpp"
#include "kvcanary/kv/tova.hpp"

// model: weights and the forward pass (writes the cache, records attention for policies)
#include "kvcanary/model/attention_recorder.hpp"
#include "kvcanary/model/llama.hpp"
#include "kvcanary/model/model_dir.hpp"
#include "kvcanary/model/model_name.hpp"
#include "kvcanary/model/segment.hpp"
#include "kvcanary/model/stored_weights.hpp"
#include "kvcanary/model/weights.hpp"

// engine: one decode loop (batch_decode) for generation, teacher-forced scoring and agreement;
// one-pass perplexity; prefill sharing
#include "kvcanary/engine/agreement.hpp"
#include "kvcanary/engine/batch_decode.hpp"
#include "kvcanary/engine/decode_step.hpp"
#include "kvcanary/engine/generate.hpp"
#include "kvcanary/engine/perplexity.hpp"
#include "kvcanary/engine/prefill_share.hpp"
#include "kvcanary/engine/reference_check.hpp"

// task: benchmarks and their verdicts: HumanEval, BFCL, tool calls, held-out perplexity
#include "kvcanary/task/bfcl_task.hpp"
#include "kvcanary/task/exec_result.hpp"
#include "kvcanary/task/heldout_perplexity.hpp"
#include "kvcanary/task/humaneval.hpp"
#include "kvcanary/task/humaneval_task.hpp"
#include "kvcanary/task/prompts.hpp"
#include "kvcanary/task/registry.hpp"
#include "kvcanary/task/scope_split.hpp"
#include "kvcanary/task/seed_tool_task.hpp"
#include "kvcanary/task/task.hpp"
#include "kvcanary/task/tool_call_parse.hpp"
#include "kvcanary/task/tool_call_score.hpp"
#include "kvcanary/task/value.hpp"

// run: sweeps, rows, metrics, reports and charts
#include "kvcanary/run/calibration.hpp"
#include "kvcanary/run/chart.hpp"
#include "kvcanary/run/config.hpp"
#include "kvcanary/run/metrics.hpp"
#include "kvcanary/run/progress.hpp"
#include "kvcanary/run/report.hpp"
#include "kvcanary/run/results_file.hpp"
#include "kvcanary/run/row.hpp"
#include "kvcanary/run/sweep.hpp"

// Opt-in, not included here: the code sandbox (Linux only: namespaces, cgroups, rlimits). A
// program that runs HumanEval includes it and passes task::run_python to run::Sweep.
// opt-in: "kvcanary/task/code_exec.hpp"
