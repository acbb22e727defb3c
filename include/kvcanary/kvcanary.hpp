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
