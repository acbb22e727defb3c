#!/usr/bin/env bash
# kvcanary's `stored` weights against llama.cpp on the same GGUF, 2 threads, side by side
# (docs/PERFORMANCE.md, "Stored GGUF weights"): decode batch 1, batched decode 8 and 32,
# prefill 512, and batch-1 decode against the memory-bandwidth bound.
#
#   benchmarks/stored_vs_llamacpp.sh GGUF [GGUF...]
#
# Environment:
#   BUILD      this project's Release build (default: build), with bench_forward and bench_machine
#   LLAMA_BIN  space-separated llama.cpp bin dirs holding llama-bench and llama-batched-bench
#              (default: the native build beside the vendored source, see PERFORMANCE.md)
#   THREADS    threads for both (default 2)
#   REPS       repetitions of each of our benchmarks (default 3; the spread is reported)
# For each GGUF a model directory is made under $BUILD/stored-models/NAME: the converter's
# output if models/NAME exists (config.json, tokenizer*.json, model.safetensors linked), plus
# model.gguf -> the GGUF. Nothing is written outside $BUILD.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
REPS=${REPS:-3}
LLAMA_SRC=/work/llamacpp/llama_cpp_python-0.3.36/vendor/llama.cpp
LLAMA_BIN=${LLAMA_BIN:-$LLAMA_SRC/build-bench-native/bin}
[ $# -ge 1 ] || { echo "usage: $0 GGUF [GGUF...]" >&2; exit 2; }

echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
echo "# cpu: $(lscpu | sed -n 's/^Model name: *//p'); flags: $(grep -o -w 'avx2\|fma\|f16c\|avx512f\|avx512bw\|avx512vl\|avx512_vnni\|avx512_bf16\|amx_tile\|amx_bf16\|amx_int8' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "## machine: read bandwidth"
"$BUILD/bin/bench_machine" --benchmark_filter='ReadBandwidth' --benchmark_min_time=1 2>/dev/null | grep -i 'ReadBandwidth' || true

for GGUF in "$@"; do
  NAME=$(basename "$GGUF" | sed 's/-q4_k_m\.gguf$//; s/\.gguf$//' | tr 'A-Z' 'a-z')
  DIR="$BUILD/stored-models/$NAME"
  if [ ! -e "$DIR/model.gguf" ]; then
    SRC=models/$NAME
    [ -d "$SRC" ] || { echo "models/$NAME is missing: run scripts/fetch_model.sh $NAME first" >&2; exit 2; }
    mkdir -p "$DIR"
    for f in config.json generation_config.json tokenizer.json tokenizer_config.json model.safetensors; do
      ln -sf "$(realpath "$SRC/$f")" "$DIR/$f"
    done
    ln -sf "$(realpath "$GGUF")" "$DIR/model.gguf"
  fi
  echo "## $NAME ($GGUF)"
  echo "### kvcanary --dtype stored (bench_forward, $THREADS threads, $REPS repetitions; ISA: ${KVCANARY_ISA:-best})"
  ours=$(KVCANARY_MODEL="$DIR" KVCANARY_BENCH_THREADS=$THREADS "$BUILD/bin/bench_forward" \
    --benchmark_filter='^(prefill|decode)/stored' --benchmark_repetitions="$REPS" \
    --benchmark_report_aggregates_only=false 2>/dev/null | grep -E 'stored|Benchmark' || true)
  # A bench_forward built before the stored benchmarks existed matches nothing: say so, do not
  # print llama.cpp's half of a comparison alone.
  if ! grep -q 'stored' <<<"$ours"; then
    echo "error: $BUILD/bin/bench_forward ran no prefill/stored or decode/stored benchmark (stale build? rebuild bench_forward)" >&2
    exit 1
  fi
  echo "$ours"
  for BIN in $LLAMA_BIN; do
    echo "### llama.cpp ($BIN)"
    "$BIN/llama-bench" -m "$GGUF" -t "$THREADS" -p 512 -n 64 -r 3 -o md 2>/dev/null || echo "llama-bench failed"
    "$BIN/llama-batched-bench" -m "$GGUF" -t "$THREADS" -c 4096 -npp 64 -ntg 16 -npl 1,8,32 2>/dev/null | grep -E '^\|' || echo "llama-batched-bench failed"
  done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
