#!/usr/bin/env python3
"""The Qwen2.5-Coder tokenizer goldens (tests/data/tokenizer/qwen2.5-coder.goldens.jsonl, made by
HF `tokenizers` by make_qwen2_tokenizer_goldens.py) against llama.cpp's own tokenizer on the GGUF:
llama_cpp.Llama(gguf, vocab_only=True).tokenize(text, add_bos=False, special=True) for every
golden string, compared by id count and the same FNV-1a digest the C++ test uses. The C++
tokenizer equals the goldens (tests/io/test_tokenizer_qwen2.cpp), so agreement here makes all
three agree. llama.cpp's "qwen2" pre-tokenizer has no normalizer, while HF's Qwen2 tokenizer.json
declares NFC; so each string is also tokenized by llama.cpp in its NFC form
(unicodedata.normalize), which isolates that one difference. Exit status 0 iff every string
agrees in its NFC form.

How it was run (llama-cpp-python 0.3.36 from its sdist, libllama built from the vendored
llama.cpp; no wheel installed):
    PYTHONPATH=<sdist dir> LLAMA_CPP_LIB_PATH=<llama.cpp build>/bin /work/venv-ref/bin/python \
        scripts/golden/check_qwen2_tokenizer_vs_llamacpp.py qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
"""
import json
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDENS = ROOT / "tests" / "data" / "tokenizer" / "qwen2.5-coder.goldens.jsonl"


def fnv(ids):
    h = 1469598103934665603
    for c in "".join(f"{i} " for i in ids).encode():
        h = ((h ^ c) * 1099511628211) % (1 << 64)
    return str(h)


def main():
    from llama_cpp import Llama
    ll = Llama(model_path=sys.argv[1], vocab_only=True, verbose=False)
    rows = [json.loads(l) for l in open(GOLDENS, encoding="utf-8")]
    agree = agree_nfc = 0
    mismatches = []
    for r in rows:
        same = lambda ids: len(ids) == r["n"] and fnv(ids) == r["h"]  # noqa: E731
        raw = ll.tokenize(r["text"].encode("utf-8"), add_bos=False, special=True)
        nfc = ll.tokenize(unicodedata.normalize("NFC", r["text"]).encode("utf-8"), add_bos=False, special=True)
        agree += same(raw)
        agree_nfc += same(nfc)
        if not same(nfc) and len(mismatches) < 20:
            mismatches.append({"text": r["text"], "llama_cpp_nfc": nfc, "hf": r.get("ids")})
    print(json.dumps(mismatches, ensure_ascii=False, indent=1))
    print(f"llama.cpp vs HF tokenizers goldens: {agree}/{len(rows)} strings identical as given, "
          f"{agree_nfc}/{len(rows)} on their NFC form", file=sys.stderr)
    return 0 if agree_nfc == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
