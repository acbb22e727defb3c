#!/usr/bin/env python3
"""llama.cpp reference logits for the Qwen2.5-Coder GGUFs (identity by behaviour).

The reference is llama.cpp itself, built from the copy vendored in PyPI's llama-cpp-python
source package and driven through that package's own ctypes bindings (llama_cpp.Llama). It
computes with the Q4_K/Q5_0/Q6_K/Q8_0 weights directly (quantized dot products against
8-bit-quantized activations), so its logits are not expected to equal ours, which run fp32 on
the dequantized weights; the test reports the figures and gates on top-1 agreement and greedy
continuations (tests/model/test_qwen_reference.cpp).

How it was run (nothing here is committed but this script and its output):

    cd /work/llamacpp && pip download --no-deps --no-binary :all: llama-cpp-python   # 0.3.36
    tar xzf llama_cpp_python-0.3.36.tar.gz && cd llama_cpp_python-0.3.36/vendor/llama.cpp
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=ON \\
        -DGGML_OPENMP=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \\
        -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_COMMON=OFF
    cmake --build build -j2 --target llama
    PYTHONPATH=/work/llamacpp/llama_cpp_python-0.3.36 \\
    LLAMA_CPP_LIB_PATH=/work/llamacpp/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin \\
        /work/venv-ref/bin/python scripts/golden/make_qwen_reference.py \\
        --gguf .cache/pip-models/qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf \\
        --out tests/data/qwen/qwen2.5-coder-0.5b-instruct.reference.json

Prompts: the 20 of tests/data/smollm2/reference.json (prose, code, JSON); its three chat
prompts are re-rendered with the GGUF's own chat template (jinja2, add_generation_prompt).

Output keys:
  meta: {gguf_file, gguf_sha256, gguf_size, llama_cpp_python, llama_cpp_commit (ggml), n_threads, notes}
  prompts: [{name, kind, text, ids, top1 [len(ids)], top1_margin [len(ids)], top1_logit [len(ids)],
             greedy_ids [32], last_logits_top20 [[id, logit] x20]}]
    ids: llama.cpp's tokenization of text (no BOS; special tokens parsed).
    top1[i]: argmax of llama.cpp's logits at position i (teacher forced over ids, one batch).
    greedy_ids: 32 greedy tokens after ids, one decode per token with llama.cpp's KV cache,
                EOS not stopping.
"""
import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import jinja2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def file_sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def render_chat(template: str, messages: list) -> str:
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False, **kw)
    return env.from_string(template).render(messages=messages, add_generation_prompt=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import llama_cpp
    from llama_cpp import Llama

    llm = Llama(model_path=str(args.gguf), n_ctx=512, n_batch=512, n_threads=args.threads,
                logits_all=True, verbose=False, seed=0)
    template = llm.metadata["tokenizer.chat_template"]
    src = json.loads((ROOT / "tests/data/smollm2/reference.json").read_text())
    prompts = []
    for p in src["prompts"]:
        text = render_chat(template, p["messages"]) if p.get("messages") else p["text"]
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        llm.reset()
        llm.eval(ids)
        scores = np.array(llm.scores[: len(ids)], dtype=np.float32)
        top1 = scores.argmax(axis=1)
        part = np.partition(scores, -2, axis=1)
        margin = part[:, -1] - part[:, -2]
        last = scores[-1]
        order = np.argsort(-last, kind="stable")[:20]
        greedy = []
        nxt = int(top1[-1])
        for _ in range(32):
            greedy.append(nxt)
            llm.eval([nxt])
            nxt = int(np.argmax(np.asarray(llm.scores[llm.n_tokens - 1], dtype=np.float32)))
        prompts.append({
            "name": p["name"], "kind": p["kind"], "text": text, "ids": [int(i) for i in ids],
            "top1": [int(t) for t in top1], "top1_margin": [float(m) for m in margin],
            "top1_logit": [float(scores[i, top1[i]]) for i in range(len(ids))],
            "greedy_ids": greedy, "last_logits_top20": [[int(i), float(last[i])] for i in order]})
        print(f"{p['name']}: {len(ids)} tokens", file=sys.stderr)
    out = {
        "meta": {"gguf_file": args.gguf.name, "gguf_sha256": file_sha256(args.gguf),
                 "gguf_size": args.gguf.stat().st_size, "llama_cpp_python": llama_cpp.__version__,
                 "n_threads": args.threads, "generator": "scripts/golden/make_qwen_reference.py",
                 "notes": ["llama.cpp CPU backend, GGML_NATIVE=ON, quantized weights used directly",
                           "ids: llama.cpp tokenizer, add_bos=False, special=True"]},
        "prompts": prompts}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
