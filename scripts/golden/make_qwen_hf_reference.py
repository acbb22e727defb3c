#!/usr/bin/env python3
"""transformers reference logits for the Qwen2.5-Coder GGUFs (issue 14: identity by behaviour).

transformers loads the GGUF itself (`from_pretrained(..., gguf_file=...)`: its own GGUF reader,
gguf-py's dequantizers, its own Qwen2 modelling code) and runs it in fp32 with torch. That is the
reference issue 14 names first, and the one an fp32 engine over the same dequantized weights can
match to rounding: unlike llama.cpp (make_qwen_reference.py), it does not multiply against
8-bit-quantized activations.

Per prompt it stores, next to whatever the file already holds:
  hf_top1 [n], hf_top1_logit [n], hf_top1_margin [n]   teacher forced over `ids`, one batch
  hf_greedy_ids [32]                                   32 greedy tokens after `ids`, KV cache,
                                                       EOS not stopping
  hf_last_logits_top20 [[id, logit] x20]

With an existing --out (the llama.cpp reference of the 0.5B) it adds these keys on the same ids.
Without one it builds the prompts as make_qwen_reference.py does (the 20 prompts of
tests/data/smollm2/reference.json, the chat ones rendered with the GGUF's own template by jinja2)
and takes the ids from transformers' tokenizer read from the GGUF.

Nothing but this script and its output is committed. Run in the throwaway reference venv
(numpy, gguf, jinja2, transformers, torch):

    /work/venv-ref/bin/python scripts/golden/make_qwen_hf_reference.py \\
        --gguf /path/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf \\
        --out tests/data/qwen/qwen2.5-coder-1.5b-instruct.reference.json
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_qwen_reference import file_sha256, render_chat  # noqa: E402  (llama_cpp is imported only in its main)

ROOT = Path(__file__).resolve().parents[2]


def gguf_chat_template(path: Path) -> str:
    from gguf import GGUFReader
    field = GGUFReader(str(path)).fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    folder, name = str(args.gguf.parent), args.gguf.name
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32)
    model.eval()

    if args.out.exists():
        ref = json.loads(args.out.read_text())
    else:
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        template = gguf_chat_template(args.gguf)
        src = json.loads((ROOT / "tests/data/smollm2/reference.json").read_text())
        prompts = []
        for p in src["prompts"]:
            text = render_chat(template, p["messages"]) if p.get("messages") else p["text"]
            ids = tok(text, add_special_tokens=False)["input_ids"]
            prompts.append({"name": p["name"], "kind": p["kind"], "text": text, "ids": [int(i) for i in ids]})
        ref = {"meta": {"gguf_file": name, "gguf_sha256": file_sha256(args.gguf),
                        "gguf_size": args.gguf.stat().st_size,
                        "notes": ["ids: transformers' tokenizer read from the GGUF, add_special_tokens=False"]},
               "prompts": prompts}

    with torch.no_grad():
        for p in ref["prompts"]:
            ids = torch.tensor([p["ids"]], dtype=torch.long)
            out = model(ids, use_cache=True)
            scores = out.logits[0].float().numpy()
            top1 = scores.argmax(axis=1)
            part = np.partition(scores, -2, axis=1)
            last = scores[-1]
            order = np.argsort(-last, kind="stable")[:20]
            greedy, past, nxt = [], out.past_key_values, int(top1[-1])
            for _ in range(32):
                greedy.append(nxt)
                step = model(torch.tensor([[nxt]], dtype=torch.long), past_key_values=past, use_cache=True)
                past = step.past_key_values
                nxt = int(step.logits[0, -1].float().argmax())
            p["hf_top1"] = [int(t) for t in top1]
            p["hf_top1_logit"] = [float(scores[i, top1[i]]) for i in range(len(top1))]
            p["hf_top1_margin"] = [float(m) for m in part[:, -1] - part[:, -2]]
            p["hf_greedy_ids"] = greedy
            p["hf_last_logits_top20"] = [[int(i), float(last[i])] for i in order]
            print(f"{p['name']}: {len(p['ids'])} tokens", file=sys.stderr)

    ref["meta"]["hf_reference"] = (f"scripts/golden/make_qwen_hf_reference.py: transformers {transformers.__version__}, "
                                   f"torch {torch.__version__}, fp32, from_pretrained(gguf_file=...)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(ref, ensure_ascii=False, separators=(",", ":")) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
