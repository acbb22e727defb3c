#pragma once
// Umbrella header: everything a research program needs, in the order of the architecture
// io -> model -> kv -> task -> run.

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/half.hpp"
#include "kvcanary/core/mapped_file.hpp"

#include "kvcanary/io/chat_template.hpp"
#include "kvcanary/io/gguf.hpp"
#include "kvcanary/io/gguf_quants.hpp"
#include "kvcanary/io/gguf_to_hf.hpp"
#include "kvcanary/io/hf_config.hpp"
#include "kvcanary/io/safetensors.hpp"
#include "kvcanary/io/safetensors_writer.hpp"
#include "kvcanary/io/tokenizer.hpp"

#include "kvcanary/ops/elementwise.hpp"
#include "kvcanary/ops/matmul-inl.h"
#include "kvcanary/ops/thread_pool.hpp"

#include "kvcanary/model/config.hpp"
#include "kvcanary/model/generate.hpp"
#include "kvcanary/model/llama.hpp"
#include "kvcanary/model/model_dir.hpp"
#include "kvcanary/model/perplexity.hpp"
#include "kvcanary/model/rope.hpp"
#include "kvcanary/model/weights.hpp"

#include "kvcanary/kv/cache.hpp"

#include "kvcanary/kv/absmax.hpp"
#include "kvcanary/kv/full.hpp"
#include "kvcanary/kv/h2o.hpp"
#include "kvcanary/kv/kivi.hpp"
#include "kvcanary/kv/knorm.hpp"
#include "kvcanary/kv/options.hpp"
#include "kvcanary/kv/policy.hpp"
#include "kvcanary/kv/random.hpp"
#include "kvcanary/kv/registry.hpp"
#include "kvcanary/kv/snapkv.hpp"
#include "kvcanary/kv/streamingllm.hpp"
#include "kvcanary/kv/tova.hpp"

#include "kvcanary/task/code_exec.hpp"
#include "kvcanary/task/humaneval.hpp"
#include "kvcanary/task/tool_call_parse.hpp"
#include "kvcanary/task/tool_call_score.hpp"
#include "kvcanary/task/value.hpp"

// run
#include "kvcanary/run/chart.hpp"
#include "kvcanary/run/metrics.hpp"
#include "kvcanary/run/report.hpp"
