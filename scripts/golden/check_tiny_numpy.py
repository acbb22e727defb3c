#!/usr/bin/env python3
"""Cross-check of the tiny goldens with a from-scratch numpy forward pass (no transformers, no torch).

    nice /opt/kvref/bin/python scripts/golden/check_tiny_numpy.py

Reads only tests/data/tiny/<case>/config.json (the legacy HF keys: rope_theta, rope_scaling, head_dim,
num_key_value_heads, tie_word_embeddings, rms_norm_eps, ...) and model.safetensors, runs a float64
forward pass and compares with golden.json (prefill logits, decode logits via a full forward, long
last logits). This shows the files alone determine the goldens with textbook Llama semantics, i.e. an
engine that implements the config faithfully can match them. Prints the max abs error per case.
"""
import json
import math
import os
import sys

import numpy as np


def load_file(path):
    """Minimal safetensors reader (F32 and BF16), independent of the safetensors package."""
    with open(path, "rb") as f:
        buf = f.read()
    n = int.from_bytes(buf[:8], "little")
    hdr = json.loads(buf[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        raw = buf[base + a:base + b]
        if v["dtype"] == "F32":
            t = np.frombuffer(raw, "<f4")
        elif v["dtype"] == "BF16":
            t = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(v["dtype"])
        out[k] = t.reshape(v["shape"])
    return out

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "tiny")


def inv_freq(cfg, hd):
    theta = cfg["rope_theta"]
    inv = 1.0 / theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    rs = cfg.get("rope_scaling")
    pos_scale = 1.0
    if rs:
        t = rs.get("rope_type", rs.get("type"))
        if t == "linear":
            pos_scale = 1.0 / rs["factor"]
        elif t == "llama3":
            f, lo, hi, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], \
                rs["original_max_position_embeddings"]
            lo_wl, hi_wl = old / lo, old / hi
            out = []
            for w in inv:
                wl = 2 * math.pi / w
                if wl < hi_wl:
                    out.append(w)
                elif wl > lo_wl:
                    out.append(w / f)
                else:
                    s = (old / wl - lo) / (hi - lo)
                    out.append((1 - s) * w / f + s * w)
            inv = np.array(out)
        else:
            raise ValueError(t)
    return inv, pos_scale


def rmsnorm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rope(x, pos, inv, pos_scale):  # x [T, H, hd], HF rotate_half convention
    ang = np.outer(pos * pos_scale, inv)  # [T, hd/2]
    cos = np.cos(np.concatenate([ang, ang], -1))[:, None, :]
    sin = np.sin(np.concatenate([ang, ang], -1))[:, None, :]
    h = x.shape[-1] // 2
    rot = np.concatenate([-x[..., h:], x[..., :h]], -1)
    return x * cos + rot * sin


def forward(cfg, W, ids):
    ids = np.asarray(ids)
    T = len(ids)
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // H
    eps = cfg["rms_norm_eps"]
    inv, ps = inv_freq(cfg, hd)
    pos = np.arange(T, dtype=np.float64)
    g = lambda k: W[k].astype(np.float64)
    x = g("model.embed_tokens.weight")[ids]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rmsnorm(x, g(p + "input_layernorm.weight"), eps)
        def proj(n):
            y = h @ g(p + f"self_attn.{n}.weight").T
            b = p + f"self_attn.{n}.bias"
            return y + g(b) if b in W else y
        q = rope(proj("q_proj").reshape(T, H, hd), pos, inv, ps)
        k = rope(proj("k_proj").reshape(T, KV, hd), pos, inv, ps)
        v = proj("v_proj").reshape(T, KV, hd)
        rep = H // KV
        k = np.repeat(k, rep, axis=1)
        v = np.repeat(v, rep, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / math.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        o = np.einsum("hts,shd->thd", s, v).reshape(T, H * hd)
        x = x + o @ g(p + "self_attn.o_proj.weight").T
        h = rmsnorm(x, g(p + "post_attention_layernorm.weight"), eps)
        gt = h @ g(p + "mlp.gate_proj.weight").T
        up = h @ g(p + "mlp.up_proj.weight").T
        x = x + ((gt / (1 + np.exp(-gt))) * up) @ g(p + "mlp.down_proj.weight").T
    x = rmsnorm(x, g("model.norm.weight"), eps)
    lm = g("model.embed_tokens.weight") if cfg["tie_word_embeddings"] else g("lm_head.weight")
    return x @ lm.T


def check(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    W = load_file(os.path.join(d, "model.safetensors"))
    if not cfg["tie_word_embeddings"]:
        assert "lm_head.weight" in W
    gd = json.load(open(os.path.join(d, "golden.json")))
    full = forward(cfg, W, gd["prefill_ids"] + gd["decode_ids"])
    n = len(gd["prefill_ids"])
    e1 = np.abs(full[:n] - np.array(gd["prefill_logits"])).max()
    e2 = np.abs(full[n:] - np.array(gd["decode_logits"])).max()
    e3 = np.abs(forward(cfg, W, gd["long_ids"])[-1] - np.array(gd["long_last_logits"])).max()
    return max(e1, e2, e3), (e1, e2, e3)


def main():
    worst = 0.0
    for case in sorted(os.listdir(ROOT)):
        for sub in ("", "model_bf16"):
            d = os.path.join(ROOT, case, sub)
            if not os.path.isfile(os.path.join(d, "golden.json")):
                continue
            m, parts = check(d)
            worst = max(worst, m)
            print(f"{case + ('/' + sub if sub else ''):30s} max|numpy64 - HF| prefill {parts[0]:.2e} "
                  f"decode {parts[1]:.2e} long {parts[2]:.2e}")
    print(f"worst {worst:.2e}")
    sys.exit(0 if worst < 1e-4 else 1)


if __name__ == "__main__":
    main()
