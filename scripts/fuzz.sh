#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang, -fsanitize=fuzzer,address,undefined) into
# build-fuzz/ and runs each for N executions, starting from the committed seed corpus.
#
#   scripts/fuzz.sh [--runs N] [--max-time S] [TARGET...]
#
#   --runs N       executions per target (default 100000; CI runs 2000)
#   --max-time S   also stop a target after S seconds (default: no limit)
#   TARGET...      only these targets (default: all built)
#
# New interesting inputs go to build-fuzz/corpus/<target>/ (not committed); a crash leaves
# its input in build-fuzz/artifacts/<target>/ and makes the script exit 1 after the other
# targets ran. Commit a reproducer under tests/data/fuzz_regressions/<target>/: the doctest
# tests/fuzz/test_fuzz_regressions.cpp replays every file there.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=100000
max_time=0
targets=()
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --max-time) max_time="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done

# clang and its runtime libraries (libFuzzer, ASan, UBSan) from Debian: the runtimes are in
# libclang-rt-<version>-dev, a separate package from clang itself.
if ! command -v clang++ >/dev/null; then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends clang >/dev/null
fi
clang_major=$(clang++ -dumpversion | cut -d. -f1)
if ! dpkg-query -W -f='${Status}' "libclang-rt-${clang_major}-dev" 2>/dev/null | grep -q "install ok installed"; then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "libclang-rt-${clang_major}-dev" >/dev/null
fi

cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DKVCANARY_BUILD_FUZZERS=ON -DKVCANARY_BUILD_TOOLS=OFF -DKVCANARY_BUILD_TESTS=OFF \
  -DKVCANARY_BUILD_EXAMPLES=OFF -DKVCANARY_BUILD_BENCHMARKS=OFF -DKVCANARY_NATIVE=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)"

if ((${#targets[@]} == 0)); then
  for f in build-fuzz/fuzz/fuzz_*; do [[ -x $f ]] && targets+=("$(basename "$f")"); done
fi

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
failed=()
printf '%-26s %12s %10s %s\n' target executions seconds result
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/artifacts/$t"
  log="build-fuzz/$t.log"
  start=$(date +%s)
  status=ok
  "build-fuzz/fuzz/$t" -runs="$runs" -max_total_time="$max_time" -print_final_stats=1 \
    -artifact_prefix="build-fuzz/artifacts/$t/" "build-fuzz/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1 || status=CRASH
  secs=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  printf '%-26s %12s %10s %s\n' "$t" "$execs" "$secs" "$status"
  if [[ $status != ok ]]; then
    failed+=("$t")
    grep -m 20 -E 'ERROR|SUMMARY|runtime error|Test unit written|uncaught' "$log" >&2 || true
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: crashes in ${failed[*]} (inputs in build-fuzz/artifacts/, logs in build-fuzz/*.log)" >&2
  exit 1
fi
