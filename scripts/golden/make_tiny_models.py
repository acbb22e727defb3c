#!/usr/bin/env python3
"""Tiny random-weight reference models + HF-transformers goldens for kvcanary's tests.

How it was run (from the repository root; reference env = /opt/kvref, CPU only):

    nice /opt/kvref/bin/python scripts/golden/make_tiny_models.py            # ~7 s
    nice /opt/kvref/bin/python scripts/golden/make_tiny_models.py --check    # regenerate to tmp, compare
    nice /opt/kvref/bin/python scripts/golden/check_tiny_numpy.py            # independent numpy cross-check

Output: tests/data/tiny/<case>/{config.json, model.safetensors, golden.json}
        tests/data/tiny/<case>/model_bf16/{config.json, model.safetensors, golden.json}  (BF16_CASES only)

Deterministic: fixed seeds, single thread, float32, eager attention, CPU. Rerunning with the
same torch/transformers versions produces byte-identical files (checked by --check, which
regenerates into a temp dir and compares).

Per case:
  * weights: every matrix / embedding ~ normal(0, 0.1), RMSNorm weights ~ uniform(0.5, 1.5),
    biases ~ normal(0, 0.1), so logits are O(1) and errors are visible.
  * the model is saved with save_pretrained(safe_serialization=True) in float32, then the
    config.json is rewritten (see write_config) and the model is RELOADED from disk; the golden is
    computed from the reloaded model, so the files on disk are exactly what produced the golden.
  * golden.json keys:
      case, transformers_version, torch_version, dtype ("float32" or "bfloat16-weights"),
      prefill_ids [12], prefill_logits [12][vocab]  (one row per prefill position),
      decode_ids [4] (fed one at a time after the prefill, using HF's KV cache),
      decode_logits [4][vocab],
      long_ids [100], long_last_logits [vocab]  (last position of a 100-token no-cache forward),
      max_abs_decode_vs_full (sanity: cached decode vs one full no-cache forward; asserted < 1e-5)
    Floats are the shortest decimal strings that round-trip the float32 exactly (<= 9 sig. digits).

config.json: written in the HF 4.x ("legacy") layout that hub checkpoints use -- top-level
`rope_theta` and `rope_scaling` (or null) -- AND the transformers-5 `rope_parameters` dict with the
same values. transformers 5 reads `rope_scaling` in preference to `rope_parameters` when both exist;
the script asserts the reloaded config resolves to the intended rope parameters.
"""
import argparse
import filecmp
import hashlib
import json
import os
import shutil
import sys
import tempfile
import warnings

import numpy as np
import torch
import transformers
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM)

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DEFAULT = os.path.join(REPO, "tests", "data", "tiny")

VOCAB = 256
N_PREFILL = 12
N_DECODE = 4
N_LONG = 100
BF16_CASES = ("llama_gqa_untied",)

COMMON = dict(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, intermediate_size=128,
              rms_norm_eps=1e-5, max_position_embeddings=256, bos_token_id=1, eos_token_id=2,
              hidden_act="silu")

# name -> (config class, model class, extra config kwargs, legacy rope_scaling dict for config.json or None)
CASES = {
    # 1. GQA (4 q heads share 2 kv heads), separate lm_head.
    "llama_gqa_untied": (LlamaConfig, LlamaForCausalLM,
                         dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                              rope_theta=10000.0), None),
    # 2. plain MHA, lm_head tied to embed_tokens (no lm_head.weight in the safetensors).
    "llama_tied_mha": (LlamaConfig, LlamaForCausalLM,
                       dict(num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True,
                            rope_theta=10000.0), None),
    # 3. explicit head_dim 32 != hidden/heads (=16); q_proj is [128, 64], k/v [32, 64], o_proj [64, 128].
    #    Tied to keep the data small (the point of the case is head_dim).
    "llama_head_dim": (LlamaConfig, LlamaForCausalLM,
                       dict(num_attention_heads=4, num_key_value_heads=1, head_dim=32,
                            tie_word_embeddings=True, rope_theta=10000.0), None),
    # 4. Qwen2: q/k/v biases (o_proj no bias), tied like Qwen2.5-0.5B, no sliding window.
    "qwen2_bias": (Qwen2Config, Qwen2ForCausalLM,
                   dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                        rope_theta=1000000.0, use_sliding_window=False, sliding_window=None,
                        max_window_layers=2), None),
    # 5. Mistral, sliding_window null. Tied to keep the data small.
    "mistral": (MistralConfig, MistralForCausalLM,
                dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                     rope_theta=10000.0, sliding_window=None), None),
    # 6. llama3 rope scaling. 2 heads -> head_dim 32 (instead of 16) so that the 16 rotary frequencies
    #    cover all three llama3 branches with original_max_position_embeddings=32:
    #    wavelength 2*pi (< high_freq_wavelen 8: kept), ~14.3 (in [8, 32]: smooth interpolation),
    #    ~32.4 and longer (> low_freq_wavelen 32: divided by factor 8). With head_dim 16 and
    #    theta 5e5 no frequency would fall in the smooth band. 1 kv head (GQA 2:1).
    "llama3_rope": (LlamaConfig, LlamaForCausalLM,
                    dict(num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True,
                         rope_theta=500000.0),
                    {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 32}),
    # 7. linear rope scaling (positions / 2). The legacy key "type" is written next to "rope_type".
    "llama_linear_rope": (LlamaConfig, LlamaForCausalLM,
                          dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                               rope_theta=10000.0),
                          {"rope_type": "linear", "type": "linear", "factor": 2.0}),
    # 8. Mistral with a sliding window of 8: every prefill row past position 7, every decode
    #    step and the 100-token input attend to only the last 8 keys. Last in the table so the
    #    seeds (by index) of the cases above are unchanged.
    "mistral_sliding": (MistralConfig, MistralForCausalLM,
                        dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                             rope_theta=10000.0, sliding_window=8), None),
}


def f32s(x):
    """Shortest decimal string that round-trips the float32 exactly."""
    return np.format_float_positional(np.float32(x), unique=True, trim="-") if abs(float(x)) >= 1e-4 or x == 0 \
        else np.format_float_scientific(np.float32(x), unique=True, trim="-")


class F32(float):
    pass


def rows(t):
    a = t.detach().to(torch.float32).cpu().numpy()
    if a.ndim == 1:
        return [F32(v) for v in a.tolist()]
    return [[F32(v) for v in r] for r in a.tolist()]


def dumps(obj):
    """json.dumps with float32-shortest floats; one logits row per line (diff-friendly)."""
    def enc(o, depth):
        if isinstance(o, F32):
            return f32s(o)
        if isinstance(o, float):
            return repr(o)
        if isinstance(o, bool) or o is None:
            return json.dumps(o)
        if isinstance(o, (int, str)):
            return json.dumps(o)
        if isinstance(o, dict):
            items = [f'  {json.dumps(k)}: {enc(v, depth + 1)}' for k, v in o.items()]
            return "{\n" + ",\n".join(items) + "\n}"
        if isinstance(o, (list, tuple)):
            if o and isinstance(o[0], (list, tuple)):
                return "[\n" + ",\n".join("    " + enc(r, depth + 1) for r in o) + "\n  ]"
            return "[" + ",".join(enc(v, depth + 1) for v in o) + "]"
        raise TypeError(type(o))
    return enc(obj, 0) + "\n"


def init_weights(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if name.endswith("norm.weight"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            elif name.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    if model.config.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def write_config(path, cfg_cls, extra, legacy_rope):
    """Rewrite config.json: keep what save_pretrained wrote, add the legacy rope keys."""
    with open(path) as f:
        cfg = json.load(f)
    cfg["rope_theta"] = extra["rope_theta"]
    cfg["rope_scaling"] = dict(legacy_rope) if legacy_rope else None
    rp = {"rope_type": "default", "rope_theta": extra["rope_theta"]}
    if legacy_rope:
        rp = {k: v for k, v in legacy_rope.items() if k != "type"}
        rp["rope_theta"] = extra["rope_theta"]
    cfg["rope_parameters"] = rp
    cfg.pop("transformers_version", None)  # keep the file independent of the generating version
    cfg["dtype"] = "float32"
    cfg["torch_dtype"] = "float32"
    with open(path, "w") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return rp


def clean_dir(d):
    keep = {"config.json", "model.safetensors", "golden.json", "model_bf16"}
    for fn in os.listdir(d):
        if fn not in keep:
            p = os.path.join(d, fn)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)


@torch.no_grad()
def make_golden(model_dir, case, seed, dtype_label):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    assert next(model.parameters()).dtype == torch.float32
    g = torch.Generator().manual_seed(seed + 1000)
    all_ids = torch.randint(3, VOCAB, (N_PREFILL + N_DECODE,), generator=g)
    long_ids = torch.randint(3, VOCAB, (N_LONG,), generator=g)
    prefill = all_ids[:N_PREFILL]
    decode = all_ids[N_PREFILL:]

    # prefill with cache
    out = model(input_ids=prefill[None], use_cache=True)
    prefill_logits = out.logits[0]
    past = out.past_key_values
    dec_logits = []
    for i, tok in enumerate(decode.tolist()):
        pos = N_PREFILL + i
        o = model(input_ids=torch.tensor([[tok]]), past_key_values=past, use_cache=True,
                  position_ids=torch.tensor([[pos]]))
        past = o.past_key_values
        dec_logits.append(o.logits[0, -1])
    dec_logits = torch.stack(dec_logits)

    # sanity of the golden itself: cached decode == full no-cache forward
    full = model(input_ids=all_ids[None], use_cache=False).logits[0]
    d_dec = (full[N_PREFILL:] - dec_logits).abs().max().item()
    d_pre = (full[:N_PREFILL] - prefill_logits).abs().max().item()
    assert d_dec < 1e-5 and d_pre < 1e-5, (case, d_dec, d_pre)

    long_logits = model(input_ids=long_ids[None], use_cache=False).logits[0, -1]
    scale = prefill_logits.std().item()
    print(f"  {case:18s} [{dtype_label}] logits std {scale:.3f}  decode-vs-full {d_dec:.2e}  "
          f"prefill-vs-full {d_pre:.2e}", flush=True)
    return {
        "case": case,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "dtype": dtype_label,
        "prefill_ids": prefill.tolist(),
        "prefill_logits": rows(prefill_logits),
        "decode_ids": decode.tolist(),
        "decode_logits": rows(dec_logits),
        "long_ids": long_ids.tolist(),
        "long_last_logits": rows(long_logits),
        "max_abs_decode_vs_full": float(f"{d_dec:.3e}"),
    }, model


def build_case(out_root, case, idx):
    cfg_cls, model_cls, extra, legacy_rope = CASES[case]
    seed = 1234 + 17 * idx
    d = os.path.join(out_root, case)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    kw = dict(COMMON)
    kw.update(extra)
    if legacy_rope:
        kw["rope_scaling"] = {k: v for k, v in legacy_rope.items() if k != "type"}
    torch.manual_seed(seed)
    cfg = cfg_cls(**kw)
    cfg._attn_implementation = "eager"
    model = model_cls(cfg).to(torch.float32).eval()
    init_weights(model, seed)
    model.save_pretrained(d, safe_serialization=True)
    rp = write_config(os.path.join(d, "config.json"), cfg_cls, extra, legacy_rope)
    clean_dir(d)

    # reloaded config must resolve to the intended rope parameters
    rcfg = transformers.AutoConfig.from_pretrained(d)
    got = {k: v for k, v in dict(rcfg.rope_parameters).items() if k != "type"}
    assert got == rp, (case, got, rp)
    if "head_dim" in extra:
        assert rcfg.head_dim == extra["head_dim"]

    golden, reloaded = make_golden(d, case, seed, "float32")
    if legacy_rope:
        # the long prompt must actually be sensitive to the rope scaling (else the case tests nothing)
        plain = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager",
                                                     rope_scaling={"rope_type": "default",
                                                                   "rope_theta": extra["rope_theta"]})
        assert plain.model.rotary_emb.rope_type == "default"
        with torch.no_grad():
            lp = plain(input_ids=torch.tensor([golden["long_ids"]])).logits[0, -1]
        sens = (lp - torch.tensor([float(x) for x in golden["long_last_logits"]])).abs().max().item()
        print(f"  {case:18s} long_last_logits change if rope scaling were ignored: {sens:.3f}")
        assert sens > 0.05, sens
    # weights on disk == weights that were initialised
    sd0 = model.state_dict()
    for k, v in reloaded.state_dict().items():
        assert torch.equal(v, sd0[k]), k
    with open(os.path.join(d, "golden.json"), "w") as f:
        f.write(dumps(golden))

    if case in BF16_CASES:
        db = os.path.join(d, "model_bf16")
        os.makedirs(db)
        model.to(torch.bfloat16).save_pretrained(db, safe_serialization=True)
        shutil.copy(os.path.join(d, "config.json"), os.path.join(db, "config.json"))
        with open(os.path.join(db, "config.json")) as f:
            c = json.load(f)
        c["dtype"] = c["torch_dtype"] = "bfloat16"
        with open(os.path.join(db, "config.json"), "w") as f:
            f.write(json.dumps(c, indent=2, sort_keys=True) + "\n")
        clean_dir(db)
        from safetensors import safe_open
        with safe_open(os.path.join(db, "model.safetensors"), "pt") as sf:
            assert all(sf.get_tensor(k).dtype == torch.bfloat16 for k in sf.keys())
        # golden: HF in float32 on the bf16-rounded weights (from_pretrained upcasts exactly)
        gb, _ = make_golden(db, case, seed, "bfloat16-weights")
        assert gb["prefill_ids"] == golden["prefill_ids"]
        with open(os.path.join(db, "golden.json"), "w") as f:
            f.write(dumps(gb))


def tree_hash(root):
    h = {}
    for dp, _, fns in os.walk(root):
        for fn in fns:
            p = os.path.join(dp, fn)
            with open(p, "rb") as f:
                h[os.path.relpath(p, root)] = hashlib.sha256(f.read()).hexdigest()
    return h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=OUT_DEFAULT)
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and compare with --out")
    a = ap.parse_args()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    warnings.simplefilter("ignore", FutureWarning)
    if a.check:
        with tempfile.TemporaryDirectory() as tmp:
            for i, case in enumerate(CASES):
                build_case(tmp, case, i)
            h1, h2 = tree_hash(tmp), tree_hash(a.out)
            bad = sorted(k for k in set(h1) | set(h2) if h1.get(k) != h2.get(k))
            print("identical" if not bad else f"DIFFERENT: {bad}")
            sys.exit(1 if bad else 0)
    os.makedirs(a.out, exist_ok=True)
    for i, case in enumerate(CASES):
        build_case(a.out, case, i)
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(a.out) for fn in fns)
    print(f"total size of {a.out}: {total} bytes")


if __name__ == "__main__":
    main()
