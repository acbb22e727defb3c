#!/usr/bin/env python3
"""Goldens for the deployed KV-cache types (include/kvcanary/kv/cache_types.hpp).

    /work/venv-ref/bin/python scripts/golden/make_cache_type_goldens.py   # writes tests/data/kv/cache_types.json

For every format it quantizes one seeded stream of 2^20 float32 values (plus a few hundred
edge-case blocks) with the reference and records FNV-1a 64 digests (over 64-bit words) of the code bytes and of
the dequantized float32 values (every NaN hashed as 0x7fc00000). tests/kv/test_cache_types.cpp
regenerates the same stream (SplitMix64, integer-only, identical in both languages) and must
reproduce every digest bit for bit.

References:
  * q8_0, q4_0, q4_1, q5_0, q5_1, mxfp4: gguf-py's `gguf.quants.quantize` / `dequantize`
    (bit-exact ports of ggml's quantize_row_*_ref, maintained by llama.cpp).
  * iq4_nl: gguf-py has only the dequantizer. The quantizer below is a numpy transcription of
    ggml's quantize_row_iq4_nl_ref (quantize_row_iq4_nl_impl with no importance weights and
    ntry = -1: weights x², d = max/-127, one least-squares refit of the scale), evaluated in
    float32 with no fused multiply-add; its codes are dequantized with gguf-py's IQ4_NL.
  * fp8_e4m3 / fp8_e5m2: vLLM's cache store, x / scale converted with saturation to the
    largest finite value (CUDA's __NV_SATFINITE) — here np.clip then ml_dtypes'
    float8_e4m3fn / float8_e5m2 conversion (round to nearest even). NaN stays NaN.
  * nvfp4: 16-element blocks, e4m3 block scale = e4m3((amax / 6) / g), element codes
    e2m1(clip(x / (scale·g), ±6)) with ml_dtypes' float4_e2m1fn and float8_e4m3fn; g is the
    fp32 per-tensor scale.
Block formats (llama.cpp's, nvfp4, mxfp4) take finite inputs with |x| <= 65504 (the C++
refuses others) and blocks whose amax is 0 or >= 2^-100 (the C++ stores smaller ones as
zeros); edge blocks outside that domain are skipped on both sides by the same rule.
"""
import json
import os
import sys

import ml_dtypes
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

N_VALUES = 1 << 20
SEED = 0x6b76636e61727931  # "kvcanary1"
MASK = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def stream(n, seed=SEED):
    """Blocks of 32: one draw picks the block's exponent eb in [-24, 14]; each value has a random
    sign and mantissa, exponent eb - (0..7), and is an exact zero with probability 1/256. Every
    value is a normal float32 below 2^15, inside every format's domain."""
    out = np.empty(n, dtype=np.uint32)
    s = seed
    for b in range(n // 32):
        s, r = splitmix64(s)
        eb = int(r % 39) - 24
        for j in range(32):
            s, u = splitmix64(s)
            if (u >> 32) & 0xFF == 0:
                out[b * 32 + j] = 0
                continue
            e = eb - int((u >> 23) % 8)
            out[b * 32 + j] = ((u >> 63) << 31) | ((e + 127) << 23) | (u & 0x7FFFFF)
    return out.view(np.float32)


# Edge values (float32 bit patterns), mirrored in tests/kv/test_cache_types.cpp.
EDGE_BITS = [
    0x00000000, 0x80000000,  # ±0
    0x00000001, 0x80000001, 0x007FFFFF, 0x00800000,  # fp32 subnormals, min normal
    0x33800000, 0x33000000, 0x33400000, 0x38800000,  # fp16: min subnormal 2^-24, 2^-25 (tie), 1.5·2^-25, min normal 2^-14
    0x3A800000, 0x3A000000, 0x3A400000, 0x3AC00000,  # e4m3 min subnormal 2^-9, 2^-10 (tie), 1.5·2^-10, 1.5·2^-9
    0x37800000, 0x37000000, 0x37C00000,  # e5m2 min subnormal 2^-16, 2^-17 (tie), 1.5·2^-16
    0x3F800000, 0xBF800000, 0x3F000000, 0x3F880000, 0x3F980000,  # 1, -1, 0.5, 1.0625, 1.1875 (e4m3 ties)
    0x40A00000, 0xC0A00000, 0x40E00000, 0x40C00000, 0xC0C00000, 0x40200000,  # 5, -5, 7, 6, -6, 2.5 (e2m1)
    0x43E00000, 0xC3E00000, 0x43E80000, 0x43E08000, 0x43F00000,  # 448, -448, 464 (tie), 449, 480
    0x47600000, 0xC7600000, 0x47700000, 0x477FE000, 0xC77FE000,  # 57344, -57344, 61440, 65504, -65504
    0x477FF000, 0x49742400, 0x7F7FFFFF, 0xFF7FFFFF,  # 65520, 1e6, ±FLT_MAX
    0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000,  # ±inf, ±NaN
]


def edge_blocks():
    """For each edge value v: a block of v, v then zeros, the list rotated from v, v with
    alternating sign among small values. Rows of 32 float32."""
    e = np.array(EDGE_BITS, dtype=np.uint32)
    n = len(e)
    blocks = []
    for i in range(n):
        v = e[i]
        blocks.append([v] * 32)
        blocks.append([v] + [0] * 31)
        blocks.append([e[(i + j) % n] for j in range(32)])
        blocks.append([v if j % 2 == 0 else (v ^ 0x80000000) if j % 4 == 1 else 0x3DCCCCCD for j in range(32)])  # 0.1
    return np.array(blocks, dtype=np.uint32).view(np.float32)


# An all-zero block holding a -0.0: ggml's C loop keeps max = +0.0 (d = 0/-8 = -0.0) and takes
# the first zero as min, where gguf-py takes x[argmax] (-0.0, d = +0.0) and numpy's SIMD min
# (either zero). Only the sign of a zero scale differs (every value decodes to ±0); the C++
# follows ggml's C, and these blocks are left out of the comparison.
SIGNED_ZERO_AMBIGUOUS = ("q4_0", "q4_1", "q5_0", "q5_1")


def in_block_domain(block, fmt):
    """Block formats (llama.cpp's, nvfp4, mxfp4): finite, |x| <= 65504, and amax = 0 or
    amax >= 2^-100. Outside, ggml's reference is undefined (1/d overflows and a NaN is cast to
    an integer; mxfp4's exponent goes negative): the C++ refuses the first two and stores a
    block of amax < 2^-100 as zeros."""
    a = np.abs(block.astype(np.float64))
    if not np.all(np.isfinite(a)) or a.max() > 65504.0:
        return False
    if fmt in SIGNED_ZERO_AMBIGUOUS and a.max() == 0 and np.any(np.signbit(block)):
        return False
    return a.max() == 0 or a.max() >= 2.0 ** -100


def fnv1a_np(data: np.ndarray) -> str:
    """FNV-1a 64 over the data's bytes read as little-endian 64-bit words (zero-padded to a
    multiple of 8): one multiply per word keeps the pure-Python loop short."""
    b = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
    b = np.concatenate([b, np.zeros((-b.size) % 8, dtype=np.uint8)])
    h = 0xCBF29CE484222325
    for w in b.view("<u8").tolist():
        h = ((h ^ w) * 0x100000001B3) & MASK
    return f"{h:016x}"


def values_digest(v: np.ndarray) -> str:
    bits = np.ascontiguousarray(v, dtype=np.float32).view(np.uint32).copy()
    bits[np.isnan(v)] = 0x7FC00000
    return fnv1a_np(bits)


# ---- iq4_nl: ggml's quantize_row_iq4_nl_ref, vectorized over blocks, float32, no FMA ------
KVALUES_IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], dtype=np.float32)


def best_index_int8(al):
    """ggml's best_index_int8(16, kvalues, al): the nearest value, ties to the upper one."""
    mu = np.searchsorted(KVALUES_IQ4NL, al, side="right").clip(1, 15)
    lo = KVALUES_IQ4NL[mu - 1]
    hi = KVALUES_IQ4NL[mu]
    l = np.where((al - lo) < (hi - al), mu - 1, mu)
    l = np.where(al <= KVALUES_IQ4NL[0], 0, l)
    l = np.where(al >= KVALUES_IQ4NL[15], 15, l)
    return l.astype(np.uint8)


def quantize_iq4_nl(x):
    x = x.reshape(-1, 32).astype(np.float32)
    nb = x.shape[0]
    amax = np.zeros(nb, dtype=np.float32)
    mx = np.zeros(nb, dtype=np.float32)
    for j in range(32):  # first strictly larger |x| wins, as the C loop
        ax = np.abs(x[:, j])
        upd = ax > amax
        amax = np.where(upd, ax, amax)
        mx = np.where(upd, x[:, j], mx)
    zero = amax < np.float32(1e-15)
    with np.errstate(all="ignore"):
        d = mx / KVALUES_IQ4NL[0]  # ntry <= 0: d = max / values[0]
        idd = np.float32(1) / d
        sumqx = np.zeros(nb, dtype=np.float32)
        sumq2 = np.zeros(nb, dtype=np.float32)
        L = np.zeros((nb, 32), dtype=np.uint8)
        for j in range(32):
            xj = x[:, j]
            al = idd * xj
            l = best_index_int8(np.where(zero, 0, al))
            L[:, j] = l
            q = KVALUES_IQ4NL[l]
            w = xj * xj
            sumqx = sumqx + (w * q) * xj
            sumq2 = sumq2 + (w * q) * q
        d = sumqx / sumq2
    d = np.where(zero, np.float32(0), d).astype(np.float32)
    L[zero] = 0  # ggml leaves L as it was; with d = 0 every value decodes to 0 — we write 0
    qs = L[:, :16] | (L[:, 16:] << np.uint8(4))
    return np.concatenate([d.astype(np.float16).reshape(nb, 1).view(np.uint8), qs], axis=1)


# ---- minifloat formats ----------------------------------------------------------------------
FP8 = {"fp8_e4m3": (ml_dtypes.float8_e4m3fn, 448.0), "fp8_e5m2": (ml_dtypes.float8_e5m2, 57344.0)}


def quantize_fp8(x, fmt, scale):
    t, mx = FP8[fmt]
    with np.errstate(all="ignore"):
        y = np.clip(x.astype(np.float32) / np.float32(scale), np.float32(-mx), np.float32(mx))
    return y.astype(t).view(np.uint8)


def dequantize_fp8(codes, fmt, scale):
    t, _ = FP8[fmt]
    return codes.view(t).astype(np.float32) * np.float32(scale)


def quantize_nvfp4(x, g):
    x = x.reshape(-1, 16).astype(np.float32)
    g = np.float32(g)
    amax = np.abs(x).max(axis=1)
    sb = np.clip((amax / np.float32(6)) / g, np.float32(0), np.float32(448)).astype(ml_dtypes.float8_e4m3fn)
    S = sb.astype(np.float32) * g
    with np.errstate(all="ignore"):
        y = np.where(S[:, None] > 0, x / S[:, None], np.float32(0))
    q = np.clip(y, np.float32(-6), np.float32(6)).astype(ml_dtypes.float4_e2m1fn).view(np.uint8) & np.uint8(0x0F)
    qs = q[:, 0::2] | (q[:, 1::2] << np.uint8(4))
    return np.concatenate([sb.view(np.uint8).reshape(-1, 1), qs], axis=1)


E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], dtype=np.float32)


def dequantize_nvfp4(blocks, g):
    blocks = blocks.reshape(-1, 9)
    sb = blocks[:, 0].copy().view(ml_dtypes.float8_e4m3fn).astype(np.float32)
    S = sb * np.float32(g)
    qs = blocks[:, 1:]
    q = np.stack([qs & 0x0F, qs >> 4], axis=2).reshape(-1, 16)
    # ml_dtypes' float4_e2m1fn decoding of the nibble, checked against the table
    via_ml = q.astype(np.uint8).view(ml_dtypes.float4_e2m1fn).astype(np.float32)
    assert np.array_equal(via_ml, E2M1[q]) or np.array_equal(np.abs(via_ml), np.abs(E2M1[q]))
    return via_ml * S[:, None]


GGML = {"q8_0": T.Q8_0, "q4_0": T.Q4_0, "q4_1": T.Q4_1, "q5_0": T.Q5_0, "q5_1": T.Q5_1, "mxfp4": T.MXFP4}


def encode(fmt, x, scale=1.0):
    """(codes, values) for a flat float32 array, in the layout the C++ stores rows."""
    if fmt in GGML:
        c = quants.quantize(x.reshape(-1, 32), GGML[fmt])
        return c, quants.dequantize(c, GGML[fmt]).reshape(-1)
    if fmt == "iq4_nl":
        c = quantize_iq4_nl(x)
        return c, quants.dequantize(c, T.IQ4_NL).reshape(-1)
    if fmt in FP8:
        c = quantize_fp8(x, fmt, scale)
        return c, dequantize_fp8(c, fmt, scale)
    if fmt == "nvfp4":
        c = quantize_nvfp4(x, scale)
        return c, dequantize_nvfp4(c, scale).reshape(-1)
    raise ValueError(fmt)


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out_path = os.path.join(root, "tests", "data", "kv", "cache_types.json")
    x = stream(N_VALUES)
    amax = float(np.abs(x).max())
    edges = edge_blocks()
    cases = []

    def add(fmt, scale_name, scale):
        c, v = encode(fmt, x, scale)
        blocks = edges if fmt in FP8 else np.array([b for b in edges if in_block_domain(b, fmt)], dtype=np.float32)
        ec, ev = encode(fmt, blocks.reshape(-1), scale)
        cases.append({"format": fmt, "scale": scale_name, "scale_value": float(np.float32(scale)),
                      "stream_codes": fnv1a_np(c), "stream_values": values_digest(v), "stream_code_bytes": int(c.size),
                      "edge_blocks": int(blocks.reshape(-1).size // 32), "edge_codes": fnv1a_np(ec), "edge_values": values_digest(ev),
                      "first_codes": bytes(np.ascontiguousarray(c).view(np.uint8).reshape(-1)[:48]).hex()})
        print(fmt, scale_name, cases[-1]["stream_codes"], cases[-1]["edge_blocks"], "edge blocks", file=sys.stderr)

    for fmt in ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl", "mxfp4"]:
        add(fmt, "none", 1.0)
    for fmt in FP8:
        add(fmt, "1", 1.0)
        add(fmt, "0.3", 0.3)
        add(fmt, "amax", np.float32(amax) / np.float32(FP8[fmt][1]))
    add("nvfp4", "1", 1.0)
    add("nvfp4", "amax", np.float32(amax) / np.float32(2688.0))
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump({"generator": "scripts/golden/make_cache_type_goldens.py", "seed": f"{SEED:016x}", "values": N_VALUES,
                   "stream_amax": amax, "edge_bits": [f"{b:08x}" for b in EDGE_BITS], "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
