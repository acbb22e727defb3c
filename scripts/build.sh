#!/usr/bin/env bash
# Configure and build into build/: everything (library checks, CLI, tests, benchmarks, examples)
# by default, or only the named targets — the main job (scripts/setup.sh) needs just the CLI,
# `kvcanary_cli`, which compiles in a fraction of the whole build's time on 2 cores.
#
#   bash scripts/build.sh                 # everything (scripts/test.sh)
#   bash scripts/build.sh kvcanary_cli    # build/bin/kvcanary only
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build -j "$(nproc)" "${targets[@]}"
