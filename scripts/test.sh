#!/usr/bin/env bash
# The whole test suite from a fresh clone: install what is missing, build, fetch and convert
# the default model (the real-model tests need it), then run every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
bash scripts/fetch_model.sh build/bin/kvcanary
ctest --test-dir build --output-on-failure -j 2
