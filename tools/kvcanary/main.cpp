// kvcanary: the command-line face of the library. Every subcommand prints its result on
// stdout; bad input ends with one line on stderr naming the file and field, and exit 2.

#include <kvcanary/kvcanary.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cmd_convert.hpp"
#include "cmd_exec.hpp"
#include "cmd_merge.hpp"
#include "cmd_model.hpp"
#include "cmd_report.hpp"
#include "cmd_sweep.hpp"
#include "cmd_tokenize.hpp"
#include "cmd_toolcheck.hpp"

namespace {

constexpr const char* kUsage = R"(usage: kvcanary COMMAND [options]

commands:
  generate  --prompt TEXT [--chat] [--system TEXT] [--max-new-tokens N] [--stop STR]...
            greedy completion of TEXT on stdout
  ppl       --text-file FILE [--window N] [--stride N] | [--compressor ... --context N]
            perplexity of FILE: {"ppl":..., "tokens":...}
  compressors  list the KV-cache compressors, their parameters and defaults
  tokenize  --text-file FILE            token ids of FILE, space-separated
  logits    --text TEXT [--top K]       top-K [id, logit] at the last position, as JSON
  convert-gguf --gguf FILE --out DIR [--dtype f32|bf16]
            write a HF model directory from a llama-architecture GGUF
  exec      FILE.py [--timeout S]
            run a Python program in the sandbox: {"status":..., "exit_code":..., "seconds":..., "stderr_tail":...}
  toolcheck --question Q.jsonl --answer A.jsonl --id ID --output-file OUT.txt
            score a model's tool-call output against BFCL's possible answers (one JSON line)
  report    RESULTS.jsonl [MORE.jsonl...] --out DIR [--bootstrap N] [--seed S]
            RESULTS.md (SDS, AUROC with 95% CIs), divergence.svg and divergence.png in DIR
  merge     --out MERGED.jsonl SHARD.jsonl...
            join shard files: duplicates once, conflicting rows an error, sorted, written atomically

  sweep     CONFIG.toml --out RESULTS.jsonl [--shard i/N] [--progress] [--threads N]
            run a compressors x budgets x tasks matrix, one JSON row per (cell, sample);
            rerun with the same --out to resume (docs/SWEEPS.md)

model options (generate, ppl, tokenize, logits):
  --model DIR|NAME  HF model directory, or a model name: smollm2-135m-instruct, qwen2.5-coder-0.5b-instruct,
                    qwen2.5-coder-1.5b-instruct = <project root>/models/NAME (scripts/fetch_model.sh NAME)
                    (default: $KVCANARY_MODEL or the setup's default model)
  --dtype f32|bf16|f16  weight precision of the forward pass (default f32)
  --threads N       worker threads (default: all cores)

compression options (generate, ppl):
  --compressor NAME       KV-cache policy (default full; see `kvcanary compressors`)
  --budget F              fraction of the KV cache to keep, in (0, 1] (default 1)
  --mode prompt|decode    compress once after the prompt, or after every step (default prompt)
  --param NAME=VALUE      a policy parameter (repeatable)
)";

int dispatch(int argc, char** argv) {
  using namespace kvcanary::cli;
  const std::string cmd = argv[1];
  if (cmd == "generate") return run_generate(argc, argv);
  if (cmd == "ppl") return run_ppl(argc, argv);
  if (cmd == "logits") return run_logits(argc, argv);
  if (cmd == "compressors") return run_compressors();
  if (cmd == "tokenize") {
    Args args(argc, argv, 2, {"--model", "--text-file"}, {});
    return run_tokenize(resolve_model_arg(args.get("--model", default_model_dir())), args.require("--text-file"));
  }
  if (cmd == "convert-gguf") return run_convert_gguf(argc - 1, argv + 1);
  if (cmd == "exec") return run_exec(argc - 1, argv + 1);
  if (cmd == "toolcheck") return run_toolcheck(argc - 1, argv + 1);
  if (cmd == "report") return run_report(argc - 1, argv + 1);
  if (cmd == "merge") return run_merge(argc - 1, argv + 1);
  if (cmd == "sweep") return run_sweep(argc, argv);
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "kvcanary: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
  return kvcanary::kBadInputExitCode;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return kvcanary::kBadInputExitCode;
  }
  try {
    return dispatch(argc, argv);
  } catch (const kvcanary::Error& e) {
    std::fprintf(stderr, "kvcanary: error: %s\n", e.what());
    return kvcanary::kBadInputExitCode;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "kvcanary: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kvcanary: internal error: %s\n", e.what());
    return 1;
  }
}
