#!/usr/bin/env python3
"""Time the prototype's stack on the work of a kvcanary sweep (issue 6's "≥ 20× the prototype").

The prototype (kv-canary, Python) runs each (compressor, sample) alone on HF transformers with
eager attention: a prefill of the prompt, then a greedy loop of one forward call per token at
batch 1 (backends/hf.py, `_compressed_generate`), and perplexity as one forward over context
then continuation. This script replays the *shapes* of a finished sweep's rows on that stack —
per row: prefill `prompt_tokens`, `n_tokens` greedy steps, and the paired gold answer
(`gold_tokens`) teacher-forced in ONE forward call; for perplexity rows, the context then the
`n_scored` continuation in one call — with token ids drawn at random (cost depends on lengths,
not content). It leaves out everything the prototype does beside the model (its compressors,
tokenizer, sandbox), and scores gold answers in one call where kvcanary's decode mode steps
token by token: both favour the prototype, so the ratio it yields is a lower bound.

Usage (any Python with torch + transformers; the model dir is kvcanary's HF directory):
    python benchmarks/prototype_stack.py ROWS.jsonl --model models/smollm2-135m-instruct \
        [--every 10] [--threads 2]
It times every `--every`-th row (in file order) and prints the measured seconds, the sampled
rows' share of the sweep's tokens, and the extrapolated total for all rows.
"""

import argparse
import copy
import json
import sys
import time

import torch
from transformers import AutoModelForCausalLM


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("rows")
    ap.add_argument("--model", required=True)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation="eager").eval()
    vocab = model.config.vocab_size

    rows = []
    with open(args.rows) as f:
        for n, line in enumerate(f, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                print(f"{args.rows}:{n}: not a JSON row ({e})", file=sys.stderr)
                return 2

    def work(r):
        s = r["scores"]
        if r.get("kind") == "perplexity":
            return r["prompt_tokens"], 0, int(s.get("n_scored", r["n_tokens"]))
        return r["prompt_tokens"], int(r["n_tokens"]), int(s.get("gold_tokens", 0))

    sample = rows[:: args.every]
    tokens_all = sum(sum(work(r)) for r in rows)
    tokens_sampled = sum(sum(work(r)) for r in sample)
    t_start = time.perf_counter()
    with torch.no_grad():
        for i, r in enumerate(sample):
            prompt, generated, forced = work(r)
            ids = torch.randint(100, vocab, (1, prompt))
            out = model(input_ids=ids, use_cache=True)
            cache = out.past_key_values
            if forced:  # the gold answer (or a perplexity continuation) after the prompt, one call
                scored = copy.deepcopy(cache) if generated else cache
                model(input_ids=torch.randint(100, vocab, (1, forced)), past_key_values=scored, use_cache=True)
            next_id = out.logits[:, -1:, :].argmax(-1)
            for _ in range(max(0, generated - 1)):
                out = model(input_ids=next_id, past_key_values=cache, use_cache=True)
                next_id = out.logits[:, -1:, :].argmax(-1)
            done = i + 1
            el = time.perf_counter() - t_start
            print(f"\rprototype stack: rows {done}/{len(sample)} · {done / el:.2f} rows/s · ETA {(len(sample) - done) * el / done:.0f}s",
                  end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    seconds = time.perf_counter() - t_start
    total = seconds * tokens_all / max(tokens_sampled, 1)
    print(json.dumps({"rows": len(rows), "rows_timed": len(sample), "seconds_timed": round(seconds, 1),
                      "token_share_timed": round(tokens_sampled / max(tokens_all, 1), 4),
                      "extrapolated_seconds_all_rows": round(total, 1), "threads": args.threads,
                      "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
