#!/usr/bin/env python3
"""Adds an fp32 numpy forward pass of the converted model to a llama.cpp reference json.

llama.cpp (make_qwen_reference.py) multiplies quantized weights against 8-bit activations, so
near-ties can flip between it and an fp32 engine. This second, independent reference runs
the textbook Qwen2 forward pass of scripts/golden/check_tiny_numpy.py (its `forward`, float64
activations over the float32 weights of model.safetensors, HF rotate-half RoPE, q/k/v biases)
on the same ids, and stores per prompt `numpy_top1` and `numpy_top1_margin`.

    /work/venv-ref/bin/python scripts/golden/add_qwen_numpy_reference.py \\
        models/qwen2.5-coder-0.5b-instruct tests/data/qwen/qwen2.5-coder-0.5b-instruct.reference.json
"""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_tiny_numpy import forward, load_file  # noqa: E402


def main() -> None:
    model, ref_path = Path(sys.argv[1]), Path(sys.argv[2])
    cfg = json.loads((model / "config.json").read_text())
    W = load_file(model / "model.safetensors")
    ref = json.loads(ref_path.read_text())
    for p in ref["prompts"]:
        logits = forward(cfg, W, p["ids"])
        top1 = logits.argmax(-1)
        part = np.partition(logits, -2, axis=-1)
        p["numpy_top1"] = [int(t) for t in top1]
        p["numpy_top1_margin"] = [float(m) for m in part[:, -1] - part[:, -2]]
        print(p["name"], file=sys.stderr)
    ref["meta"]["numpy_reference"] = "scripts/golden/add_qwen_numpy_reference.py (float64 activations, fp32 weights)"
    ref_path.write_text(json.dumps(ref, ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
