#!/usr/bin/env python3
"""Goldens for the scoring presses added by eviction v2 (include/kvcanary/kv/keydiff.hpp,
observed_attention.hpp, pyramidkv.hpp, adakv.hpp, chunkkv.hpp).

    /work/venv-ref/bin/python scripts/golden/make_eviction_goldens.py   # writes tests/data/kv/eviction_goldens.json

Each scorer is a numpy transcription (float64) of NVIDIA KVPress's press (kvpress/presses/*.py,
read, not copied; torch replaced by numpy):
  * keydiff_press.py: anchor = mean_j F.normalize(k_j) (eps 1e-12); score = -cosine_similarity(k, anchor)
    with torch's definition x.y / (max(|x|, 1e-8) * max(|y|, 1e-8)).
  * observed_attention_press.py: scores = attentions.sum(queries) / arange(n, 0, -1), then the mean over
    the query heads of each KV head's group.
  * pyramidkv_press.py get_layer_budget: the per-layer row counts (Python's round, half to even), with
    kvcanary's capacity C in place of q_len * (1 - compression_ratio); rows within a layer are SnapKV's
    (the SnapKV paper's max_pool1d over the window's summed votes, top k - w of the prefix + the last w).
  * adakv_press.py compress: n_safe = int(C * alpha) best rows per head forced to the maximum, then the
    H*C best (head, row) pairs of the layer kept (KVPress masks the other H*(n - C); kvcanary evicts them),
    over the keydiff scores above.
  * chunkkv_press.py compress: chunk score = mean over the chunk's rows of the scores summed over KV heads
    (the last partial chunk its own mean), the top max(1, int(chunks * (1 - ratio))) chunks kept in every head
    of the layer; over the keydiff scores.
Selections: kvcanary's rule, C = ceil(budget * n) rows, ranked by (score descending, row ascending) --
a strict order, so ties go to the lowest row (torch.topk leaves ties unspecified). Fixed seeded
tensors, per KV head, GQA group 2, with exact ties built in (duplicate keys; equal normalised
masses). The C++ tests feed the same tensors (stored here as float32 values) to the policies.
"""
import json
import math
import os

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "kv", "eviction_goldens.json")


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def ceil_budget(budget, n):
    exact = budget * n
    r = round(exact)
    return int(r) if abs(exact - r) <= 1e-9 * max(1.0, exact) else math.ceil(exact)


def top_k(scores, k, candidates=None):
    idx = list(range(len(scores))) if candidates is None else list(candidates)
    idx.sort(key=lambda j: (-scores[j], j))
    return sorted(idx[:k])


# ---------------------------------------------------------------- keydiff
def keydiff_scores(keys):
    norms = np.linalg.norm(keys, axis=-1, keepdims=True)
    anchor = (keys / np.maximum(norms, 1e-12)).mean(axis=0)
    dots = keys @ anchor
    return -dots / (np.maximum(norms[:, 0], 1e-8) * max(np.linalg.norm(anchor), 1e-8))


def keydiff_cases(rng):
    cases = []
    for n, d, budget, dup in [(24, 16, 0.25, False), (17, 8, 0.5, True), (9, 4, 0.34, True)]:
        heads = []
        for _h in range(2):
            keys = f32(rng.standard_normal((n, d)) + 0.7)  # a shared direction, so the anchor matters
            if dup:  # exact ties: rows 3 and 5 duplicate row 1
                keys[3] = keys[1]
                keys[5] = keys[1]
            s = keydiff_scores(keys)
            heads.append({"keys": keys.ravel().tolist(), "scores": s.tolist(), "kept": top_k(s.tolist(), ceil_budget(budget, n))})
        cases.append({"n": n, "head_dim": d, "budget": budget, "heads": heads})
    return cases


# ---------------------------------------------------------------- observed attention
def causal_attention(q, k):
    n, d = q.shape
    logits = q @ k.T / math.sqrt(d)
    logits = logits + np.triu(np.full((n, n), -np.inf), 1)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def observed_scores(masses, group, n):
    # masses[h][j] = attentions[h].sum(queries)[j]  (what the forward pass records)
    per_head = np.asarray(masses) / np.arange(n, 0, -1, dtype=np.float64)
    kvh = per_head.shape[0] // group
    return per_head.reshape(kvh, group, n).mean(axis=1)


def observed_cases(rng):
    cases = []
    for n, d, budget in [(20, 8, 0.25), (13, 4, 0.5)]:
        heads, kvh, group = 4, 2, 2
        q = rng.standard_normal((heads, n, d))
        k = rng.standard_normal((kvh, n, d))
        masses = []
        for h in range(heads):
            a = causal_attention(q[h], k[h // group])
            masses.append(f32(a.sum(axis=0)).tolist())
        s = observed_scores(masses, group, n)
        cases.append({"n": n, "budget": budget, "heads": heads, "group": group, "masses": masses, "scores": s.tolist(),
                      "kept": [top_k(s[h].tolist(), ceil_budget(budget, n)) for h in range(kvh)]})
    # Ties: mass_j = 0.5 * (n - j) for every row of head 0 (score 0.5 everywhere), head 1 distinct but
    # rows 2 and 7 equal after normalisation, and budget 0.7 keeps exactly one of them (row 2).
    n = 10
    m0 = [0.5 * (n - j) for j in range(n)]
    m1 = [0.1 * (j + 1) * (n - j) for j in range(n)]
    m1[7] = 0.3 * (n - 7)
    m1[2] = 0.3 * (n - 2)
    masses = [m0, m0, m1, m1]
    s = observed_scores(f32(masses), 2, n)
    cases.append({"n": n, "budget": 0.7, "heads": 4, "group": 2, "masses": f32(masses).tolist(), "scores": s.tolist(),
                  "kept": [top_k(s[h].tolist(), ceil_budget(0.7, n)) for h in range(2)]})
    return cases


# ---------------------------------------------------------------- pyramidkv
def layer_budget(layer, num_layers, C, n, w, beta):
    # KVPress get_layer_budget with max_capacity_prompt = w + C: (max_capacity_prompt - w) = C.
    min_num = C / beta
    max_num = C * 2 - min_num
    if max_num >= n - w:
        max_num = n - w
        min_num = C * 2 - max_num
    if num_layers < 2 or not (n >= max_num >= min_num >= w):
        return int(C)
    steps = (max_num - min_num) / (num_layers - 1)
    return round(max_num - layer * steps)


def max_pool(x, kernel):
    r = kernel // 2
    return [max(x[max(0, j - r):min(len(x), j + r + 1)]) for j in range(len(x))]


def snapkv_select(vote, n, k, window, kernel):
    if k >= n:
        return list(range(n))
    w = min(window, k)
    prefix = n - w
    pooled = max_pool(vote[:prefix], kernel)
    return sorted(top_k(pooled, k - w) + list(range(prefix, n)))


def pyramid_cases(rng):
    budgets = []
    for C, n, w, L, beta in [(8, 30, 2, 2, 2), (100, 1000, 32, 24, 20), (300, 1000, 32, 28, 20), (40, 100, 8, 5, 3),
                             (500, 1000, 32, 24, 20), (10, 40, 32, 2, 20), (7, 64, 4, 4, 1)]:
        budgets.append({"C": C, "n": n, "window": w, "layers": L, "beta": beta,
                        "k": [layer_budget(l, L, float(C), n, w, beta) for l in range(L)]})
    selections = []
    n, L, group, kvh, window, kernel, beta, budget = 30, 2, 2, 2, 2, 3, 2.0, 0.25
    C = ceil_budget(budget, n)
    masses = f32(rng.random((L * kvh * group, n))).tolist()
    masses[0][11] = masses[0][12]  # a tie inside layer 0, head 0's group
    masses = f32(masses).tolist()
    kept = []
    for l in range(L):
        for h in range(kvh):
            vote = [masses[(l * kvh + h) * group][j] + masses[(l * kvh + h) * group + 1][j] for j in range(n)]
            vote = f32(vote).tolist()  # the C++ sums in float32
            kept.append(snapkv_select(vote, n, min(n, layer_budget(l, L, float(C), n, window, beta)), window, kernel))
    selections.append({"n": n, "layers": L, "kv_heads": kvh, "group": group, "window": window, "kernel": kernel, "beta": beta,
                       "budget": budget, "masses": masses, "kept": kept})
    return {"budgets": budgets, "selections": selections}


# ---------------------------------------------------------------- adakv
def adakv_allocate(scores, C, alpha):
    scores = [list(map(float, s)) for s in scores]
    H = len(scores)
    safe = int(C * alpha)
    for h in range(H):
        for j in top_k(scores[h], min(safe, len(scores[h]))):
            scores[h][j] = float("inf")
    flat = [(scores[h][j], h, j) for h in range(H) for j in range(len(scores[h]))]
    flat.sort(key=lambda t: (-t[0], t[1], t[2]))
    kept = [[] for _ in range(H)]
    for _s, h, j in flat[:H * C]:
        kept[h].append(j)
    return [sorted(k) for k in kept]


def adakv_cases(rng):
    cases = []
    for n, d, budget, alpha, spread in [(16, 8, 0.25, 0.5, [0.2, 1.0, 3.0]), (12, 4, 0.5, 0.2, [1.0, 1.0, 0.3]),
                                         (10, 4, 0.3, 1.0, [0.5, 2.0, 1.0])]:
        keys = []
        for h in range(3):
            k = f32(rng.standard_normal((n, d)) * spread[h] + 0.5)
            keys.append(k)
        if spread[0] == spread[1]:  # heads 0 and 1 identical: every score ties across heads
            keys[1] = keys[0].copy()
        scores = [keydiff_scores(k).astype(np.float32).astype(np.float64) for k in keys]  # the C++ ranks float32 scores
        C = ceil_budget(budget, n)
        cases.append({"n": n, "head_dim": d, "budget": budget, "alpha": alpha, "keys": [k.ravel().tolist() for k in keys],
                      "kept": adakv_allocate(scores, C, alpha)})
    return cases


# ---------------------------------------------------------------- chunkkv
def chunkkv_rows(scores, n, chunk, budget):
    summed = np.sum(np.asarray(scores), axis=0)
    chunks = n // chunk + (1 if n % chunk else 0)
    means = [float(np.mean(summed[c * chunk:min(n, (c + 1) * chunk)])) for c in range(chunks)]
    keep = max(1, int(math.floor(chunks * budget + 1e-9)))
    kept = top_k(means, keep)
    return [j for c in kept for j in range(c * chunk, min(n, (c + 1) * chunk))]


def chunkkv_cases(rng):
    cases = []
    for n, d, chunk, budget, periodic in [(23, 8, 5, 0.5, False), (17, 4, 4, 0.34, False), (20, 4, 5, 0.5, True)]:
        keys = []
        for _h in range(2):
            k = rng.standard_normal((n, d)) + 0.3
            if periodic:  # every chunk the same rows: all chunk scores tie, the lowest chunks win
                k = np.tile(k[:chunk], (n // chunk + 1, 1))[:n]
            keys.append(f32(k))
        scores = [keydiff_scores(k).astype(np.float32).astype(np.float64) for k in keys]
        cases.append({"n": n, "head_dim": d, "chunk_length": chunk, "budget": budget, "keys": [k.ravel().tolist() for k in keys],
                      "kept": chunkkv_rows(scores, n, chunk, budget)})
    return cases


def main():
    rng = np.random.default_rng(20261202)
    out = {"keydiff": keydiff_cases(rng), "observed_attention": observed_cases(rng), "pyramidkv": pyramid_cases(rng),
           "adakv": adakv_cases(rng), "chunkkv": chunkkv_cases(rng)}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", os.path.normpath(OUT), os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
