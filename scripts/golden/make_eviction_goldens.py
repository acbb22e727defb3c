#!/usr/bin/env python3
"""Goldens for the scoring presses added by eviction v2 (include/kvcanary/kv/keydiff.hpp,
observed_attention.hpp, pyramidkv.hpp, adakv.hpp, chunkkv.hpp, expected_attention.hpp, think.hpp).

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
  * expected_attention_press.py (get_query_statistics, score): mu = mean(h[n_sink:]) @ Wq.T per head
    (kvcanary adds q_proj's bias; KVPress omits it), cov = the per-head diagonal blocks of
    Wq cov(h[n_sink:]) Wq.T (population), both rotated by R = mean over positions q_len .. q_len+F-1 of
    cos*I + sin*P (P: the rotate_half matrix); score = softmax_j(mu.k_j/sqrt(d) + k_j.cov.k_j/(2d)) over the
    non-sink rows, mean over the group, (score + eps) * |v_j|, the sinks padded with the maximum. The C++
    test sums the stored float32 queries (h @ Wq.T + b) into the moments the forward pass records.
  * think_press.py (compute_window_queries, compress): the last w queries h[-w:] @ Wq.T + b, RoPE'd at their
    positions (rotate_half), queries_norm = mean over the window of q^2, mean over the group; keys_norm = mean
    over rows of k^2; score = product; the int(d * ratio) lowest channels pruned (set to 0), ties to the lower
    channel. The C++ test sums the stored float32 post-RoPE window queries' squares, as the forward pass does.
  * kvzip_press.py (score_kvzip, compress_post): the reconstruction pass's queries (post-RoPE) attend over the
    context's keys and, causally, the pass's own keys; softmax over all of them (KVPress's subsampled keys
    when prefix_length = n_sink); amax over the queries (what the forward pass records, max_over_rows),
    then over the group; the n_sink first rows protected; kept: the L*H*C best (score, layer, head, row) of
    the whole cache (layerwise 0) or the H*C best of each layer (layerwise 1), kvcanary's C and order in
    place of KVPress's threshold on int(len * ratio). The C++ test feeds the per-query-head maxima.
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


# ---------------------------------------------------------------- expected attention
def rope_inverse_frequencies(d, theta):
    return np.array([np.float32(1.0) / np.power(np.float32(theta), np.float32(2 * i) / np.float32(d)) for i in range(d // 2)],
                    dtype=np.float32)


def expected_attention_scores(h, wq, bq, keys, values, heads, group, n_future, n_sink, use_cov, use_vnorm, eps, inv_freq):
    n, d = keys.shape[1], keys.shape[2]
    hs = h[n_sink:]
    mean_h = hs.mean(axis=0)
    mu = (mean_h @ wq.T + bq).reshape(heads, d)
    cov = None
    if use_cov:
        hc = hs - mean_h
        cov_h = hc.T @ hc / hc.shape[0]
        full = (wq @ cov_h @ wq.T).reshape(heads, d, heads, d)
        cov = np.stack([full[i, :, i, :] for i in range(heads)])
    # RoPE on the next n_future positions (transformers: fp32 angles, emb = cat(freqs, freqs))
    pos = np.arange(n, n + n_future, dtype=np.float32)
    ang = (pos[:, None] * inv_freq[None, :]).astype(np.float32).astype(np.float64)
    ang = np.concatenate([ang, ang], axis=1)
    cos, sin = np.cos(ang), np.sin(ang)
    eye = np.eye(d)
    P = np.zeros((d, d))
    P[d // 2:, :d // 2], P[:d // 2, d // 2:] = np.eye(d // 2), -np.eye(d // 2)
    R = (cos[:, None, :] * eye + sin[:, None, :] * P).mean(axis=0)
    mu = mu @ R.T
    if use_cov:
        cov = np.stack([R @ c @ R.T for c in cov])
    k = keys[:, n_sink:]
    v = values[:, n_sink:]
    kvh = keys.shape[0]
    out = []
    for g in range(kvh):
        probs = []
        for hh in range(g * group, (g + 1) * group):
            z = k[g] @ mu[hh] / math.sqrt(d)
            if use_cov:
                z = z + np.einsum("ji,ik,jk->j", k[g], cov[hh], k[g]) / d / 2
            z = np.exp(z - z.max())
            probs.append(z / z.sum())
        s = np.mean(probs, axis=0)
        if use_vnorm:
            s = (s + eps) * np.linalg.norm(v[g], axis=-1)
        out.append(np.concatenate([np.full(n_sink, s.max()), s]))
    return out


def expected_attention_cases(rng):
    cases = []
    heads, kvh, group, hidden, theta = 4, 2, 2, 12, 10000.0
    for n, d, budget, n_future, n_sink, use_cov, use_vnorm, eps, dup in [
            (20, 8, 0.5, 512, 4, 1, 1, 0.0, False), (17, 8, 0.3, 16, 2, 0, 1, 0.01, True),
            (24, 16, 0.25, 64, 4, 1, 0, 0.0, False)]:
        inv = rope_inverse_frequencies(d, theta)
        for _attempt in range(100):
            h = f32(rng.standard_normal((n, hidden)))
            wq = f32(rng.standard_normal((heads * d, hidden)) * 0.3)
            bq = f32(rng.standard_normal(heads * d) * 0.5)
            keys = f32(rng.standard_normal((kvh, n, d)))
            values = f32(rng.standard_normal((kvh, n, d)))
            if dup:  # exact ties: row 9 repeats row 6 (key and value) in every head
                keys[:, 9] = keys[:, 6]
                values[:, 9] = values[:, 6]
            s = expected_attention_scores(h, wq, bq, keys, values, heads, group, n_future, n_sink, use_cov, use_vnorm, eps, inv)
            C = ceil_budget(budget, n)
            kept = [sorted(list(range(n_sink)) + top_k(si.tolist(), C - n_sink, range(n_sink, n))) for si in s]
            # no near-tie at the cut other than the exact duplicates: the float32 queries may move a score by ~1e-7
            ok = True
            for si in s:
                ranked = sorted(set(np.round(si[n_sink:], 12)), reverse=True)
                gaps = np.diff(ranked)
                ok &= len(gaps) == 0 or np.min(np.abs(gaps)) > 1e-6 * np.max(np.abs(ranked))
            if ok:
                break
        assert ok, "no draw without a near-tie"
        q = (h @ wq.T + bq).reshape(n, heads, d)[n_sink:]  # the pre-RoPE queries the forward pass sums
        cases.append({"n": n, "head_dim": d, "budget": budget, "heads": heads, "group": group, "rope_theta": theta,
                      "n_future_positions": n_future, "n_sink": n_sink, "use_covariance": use_cov, "use_vnorm": use_vnorm,
                      "epsilon": eps, "queries": [f32(q[:, i]).ravel().tolist() for i in range(heads)],
                      "keys": [keys[g].ravel().tolist() for g in range(kvh)], "values": [values[g].ravel().tolist() for g in range(kvh)],
                      "scores": [si.tolist() for si in s], "kept": kept})
    return cases


# ---------------------------------------------------------------- think
def think_cases(rng):
    cases = []
    heads, kvh, group, hidden, theta = 4, 2, 2, 12, 10000.0
    for n, d, window, ratio, zero_channels in [(20, 8, 4, 0.5, False), (12, 16, 32, 0.25, False), (10, 8, 3, 0.25, True)]:
        inv = rope_inverse_frequencies(d, theta)
        h = f32(rng.standard_normal((n, hidden)))
        wq = f32(rng.standard_normal((heads * d, hidden)) * 0.3)
        bq = f32(rng.standard_normal(heads * d) * 0.5)
        keys = f32(rng.standard_normal((kvh, n, d)) * np.linspace(0.2, 2.0, d))  # channels of different energy
        if zero_channels:  # exact ties: channels 1, 2 and 5 of every key are 0 (score 0), a tie at the cut: 1 and 2 pruned, 5 kept
            keys[:, :, [1, 2, 5]] = 0.0
        w = min(window, n)
        q = (h[-w:] @ wq.T + bq).reshape(w, heads, d).transpose(1, 0, 2)  # (heads, w, d), before RoPE
        pos = np.arange(n - w, n, dtype=np.float32)
        ang = (pos[:, None] * inv[None, :]).astype(np.float32).astype(np.float64)
        cos, sin = np.cos(np.concatenate([ang, ang], 1)), np.sin(np.concatenate([ang, ang], 1))
        rot = np.concatenate([-q[..., d // 2:], q[..., :d // 2]], axis=-1)  # rotate_half
        q = q * cos + rot * sin
        qn = (q ** 2).mean(axis=1).reshape(kvh, group, d).mean(axis=1)
        kn = (keys ** 2).mean(axis=1)
        score = qn * kn
        p = int(d * ratio)
        pruned = [sorted(sorted(range(d), key=lambda c: (score[g][c], c))[:p]) for g in range(kvh)]
        cases.append({"n": n, "head_dim": d, "heads": heads, "group": group, "window": window, "key_channel_ratio": ratio,
                      "window_queries": [f32(q[i]).ravel().tolist() for i in range(heads)],
                      "keys": [keys[g].ravel().tolist() for g in range(kvh)], "scores": score.tolist(), "pruned": pruned})
    return cases


# ---------------------------------------------------------------- kvzip
def kvzip_masses(q, k_ctx, k_rep):
    """Per query head: the largest probability any reconstruction row gives each context row."""
    R, d = q.shape
    n = k_ctx.shape[0]
    logits = np.concatenate([q @ k_ctx.T, q @ k_rep.T], axis=1) / math.sqrt(d)
    logits[:, n:] += np.triu(np.full((R, R), -np.inf), 1)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return p[:, :n].max(axis=0)


def kvzip_allocate(masses, group, C, n_sink, layerwise):
    L, QH = len(masses), len(masses[0])
    H = QH // group
    scores = [[np.max(np.asarray(masses[l][h * group:(h + 1) * group]), axis=0).tolist() for h in range(H)]
              for l in range(L)]
    for l in range(L):
        for h in range(H):
            for j in range(min(n_sink, len(scores[l][h]))):
                scores[l][h][j] = float("inf")
    kept = [[[] for _ in range(H)] for _ in range(L)]
    groups = [[l] for l in range(L)] if layerwise else [list(range(L))]
    for layers in groups:
        flat = [(scores[l][h][j], l, h, j) for l in layers for h in range(H) for j in range(len(scores[l][h]))]
        flat.sort(key=lambda t: (-t[0], t[1], t[2], t[3]))
        for _s, l, h, j in flat[:len(layers) * H * C]:
            kept[l][h].append(j)
    return [[sorted(k) for k in layer] for layer in kept]


def kvzip_cases(rng):
    cases = []
    for n, d, budget, n_sink, instr, tie in [(12, 8, 0.5, 4, 5, False), (16, 4, 0.25, 2, 3, False),
                                              (10, 4, 0.5, 4, 2, True)]:
        L, H, group = 2, 2, 2
        R = instr + (n - n_sink)
        masses = []
        for l in range(L):
            layer = []
            for qh in range(H * group):
                q = rng.standard_normal((R, d)) * (0.5 + l + qh % 2)
                k_ctx = rng.standard_normal((n, d))
                k_rep = rng.standard_normal((R, d))
                layer.append(f32(kvzip_masses(q, k_ctx, k_rep)).tolist())
            masses.append(layer)
        if tie:  # layer 1's heads a copy of layer 0's: every score ties across layers (lower layer wins)
            masses[1] = [list(m) for m in masses[0]]
        C = ceil_budget(budget, n)
        cases.append({"n": n, "budget": budget, "n_sink": n_sink, "group": group, "rows": R, "masses": masses,
                      "kept": kvzip_allocate(masses, group, C, n_sink, False),
                      "kept_layerwise": kvzip_allocate(masses, group, C, n_sink, True)})
    return cases


def main():
    rng = np.random.default_rng(20261202)
    out = {"keydiff": keydiff_cases(rng), "observed_attention": observed_cases(rng), "pyramidkv": pyramid_cases(rng),
           "adakv": adakv_cases(rng), "chunkkv": chunkkv_cases(rng),
           "expected_attention": expected_attention_cases(np.random.default_rng(20261203)),
           "think": think_cases(np.random.default_rng(20261204)),
           "kvzip": kvzip_cases(np.random.default_rng(20261205))}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", os.path.normpath(OUT), os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
