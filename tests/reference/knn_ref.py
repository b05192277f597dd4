"""NumPy reference of the kNN-LM distribution and interpolation, written from
/work/shared/docs/algorithms.md §2.4, §2.5 and §2.7 (float64), and the writer
of the golden file tests/check_knn.c compares libhmt against.

    p_kNN(v) = sum_{i: v_i = v} softmax(-d / tau)_i      d_i = ||q - k_i||^2 (no sqrt)
    log p(v) = logsumexp(log(1 - lam) + log p_LM(v), log lam + log p_kNN(v))
    lam: fixed          lam0
         entropy_gap    clip(lam0 * sigmoid(beta (H_LM - H_kNN) + b) / sigmoid(b), 0, lam_max)
         entropy_norm   clip(lam0 * clip(1 - H_kNN / log k_eff, 0, 1), 0, lam_max)
                        (k_eff = distinct retrieved values; the factor is 1 when k_eff = 1)

Neighbours: exact brute force, ties broken by the lower index; with k > N all
N keys are neighbours (the C side pads with index -1).

Golden format (little-endian), "KNNG", u32 version 1, u32 n_cases, then per
case: i32 N, d, n_vocab, n_q, k, mode; f64 lam0, tau, beta, bias, lam_max;
f32 keys[N*d]; i32 values[N]; f32 queries[n_q*d]; f32 logits[n_q*n_vocab];
i64 nn_idx[n_q*k]; f64 nn_dist[n_q*k]; f64 logprobs[n_q*n_vocab]; f64 lam[n_q].
"""
import os
import struct
import sys

import numpy as np

MODES = {"fixed": 0, "entropy_gap": 1, "entropy_norm": 2}


def logsumexp(x, axis=None):
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        r = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return np.squeeze(r, axis=axis) if axis is not None else r.item()


def knn_search(keys, queries, k):
    """Exact k nearest by squared L2 (float64), ties -> lower index."""
    keys = np.asarray(keys, np.float64)
    n = keys.shape[0]
    idx = np.full((len(queries), k), -1, np.int64)
    dist = np.full((len(queries), k), np.inf)
    for qi, q in enumerate(np.asarray(queries, np.float64)):
        d = ((keys - q) ** 2).sum(axis=1)
        order = np.lexsort((np.arange(n), d))[:k]
        idx[qi, :len(order)] = order
        dist[qi, :len(order)] = d[order]
    return idx, dist


def knn_logprobs(dist, vals, logits, lam0=0.25, tau=1.0, mode="fixed", beta=0.0, bias=0.0,
                 lam_max=1.0):
    """One position: neighbour distances/values (value -1 = absent) and the LM's
    logits -> (interpolated log-probabilities, lambda used)."""
    logits = np.asarray(logits, np.float64)
    n_vocab = logits.shape[0]
    log_plm = logits - logsumexp(logits)
    plm = np.exp(log_plm)
    h_lm = -np.sum(plm[plm > 0] * log_plm[plm > 0])
    ok = (np.asarray(vals) >= 0) & np.isfinite(dist)
    d = np.asarray(dist, np.float64)[ok]
    v = np.asarray(vals)[ok]
    if len(d) == 0:
        return log_plm, 0.0
    lw = -d / tau
    w = np.exp(lw - logsumexp(lw))                  # softmax over the k neighbours
    pknn = np.zeros(n_vocab)
    np.add.at(pknn, v, w)                            # same-token neighbours summed
    nz = pknn > 0
    h_knn = -np.sum(pknn[nz] * np.log(pknn[nz]))
    k_eff = int(nz.sum())
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    if mode == "fixed":
        lam = lam0
    elif mode == "entropy_gap":
        lam = float(np.clip(lam0 * sig(beta * (h_lm - h_knn) + bias) / sig(bias), 0.0, lam_max))
    elif mode == "entropy_norm":
        f = 1.0 if k_eff <= 1 else float(np.clip(1.0 - h_knn / np.log(k_eff), 0.0, 1.0))
        lam = float(np.clip(lam0 * f, 0.0, lam_max))
    else:
        raise ValueError(mode)
    with np.errstate(divide="ignore"):
        a = np.log1p(-lam) + log_plm if lam < 1 else np.full(n_vocab, -np.inf)
        b = np.log(lam) + np.log(pknn) if lam > 0 else np.full(n_vocab, -np.inf)
    out = np.logaddexp(a, b)
    # probability-space check of the same formula
    p = lam * pknn + (1 - lam) * plm
    with np.errstate(divide="ignore"):
        assert np.allclose(np.exp(out), p, atol=1e-12)
    return out, lam


# name, N, k, n_q, mode, lam0, tau, beta, bias, lam_max, distinct values
CASES = [
    ("default", 300, 16, 6, "fixed", 0.25, 1.0, 0.0, 0.0, 1.0, 320),
    ("dup_values", 300, 32, 6, "fixed", 0.25, 1.0, 0.0, 0.0, 1.0, 5),
    ("tau_small", 300, 16, 6, "fixed", 0.4, 0.3, 0.0, 0.0, 1.0, 12),
    ("tau_large", 300, 64, 6, "fixed", 0.25, 5.0, 0.0, 0.0, 1.0, 12),
    ("gap", 300, 32, 6, "entropy_gap", 0.5, 1.0, 2.0, 0.5, 0.6, 8),
    ("gap_beta0", 300, 16, 4, "entropy_gap", 0.25, 1.0, 0.0, 0.0, 1.0, 8),
    ("norm", 300, 32, 6, "entropy_norm", 0.7, 1.0, 0.0, 0.0, 0.9, 6),
    ("lambda0", 300, 8, 3, "fixed", 0.0, 1.0, 0.0, 0.0, 1.0, 320),
    ("lambda1", 300, 8, 3, "fixed", 1.0, 1.0, 0.0, 0.0, 1.0, 4),
    ("k_gt_n", 10, 16, 4, "fixed", 0.25, 1.0, 0.0, 0.0, 1.0, 3),
    ("k1", 300, 1, 5, "entropy_norm", 0.3, 1.0, 0.0, 0.0, 1.0, 320),
]


def make_case(rng, N, k, n_q, d=64, n_vocab=320, n_distinct=320):
    keys = (rng.standard_normal((N, d)) * 0.15).astype(np.float32)
    if N > 20:
        keys[17] = keys[5]                 # exact duplicate keys: ties -> lower index
        keys[200 % N] = keys[5]
    vals = rng.integers(0, n_distinct, N).astype(np.int32)
    src = rng.integers(0, N, n_q)
    queries = (keys[src] + rng.standard_normal((n_q, d)) * 0.05).astype(np.float32)
    if n_q > 1 and N > 20:
        queries[1] = keys[5]               # a query exactly on the duplicated key
    logits = (rng.standard_normal((n_q, n_vocab)) * 2.0).astype(np.float32)
    return keys, vals, queries, logits


def write_golden(out_dir, seed=4242):
    rng = np.random.default_rng(seed)
    path = os.path.join(out_dir, "knn.golden")
    parts = [b"KNNG", struct.pack("<II", 1, len(CASES))]
    for name, N, k, n_q, mode, lam0, tau, beta, bias, lam_max, nd in CASES:
        d, n_vocab = 64, 320
        keys, vals, queries, logits = make_case(rng, N, k, n_q, d, n_vocab, nd)
        idx, dist = knn_search(keys, queries, k)
        lps, lams = [], []
        for qi in range(n_q):
            nv = np.where(idx[qi] >= 0, vals[np.maximum(idx[qi], 0)], -1)
            lp, lam = knn_logprobs(dist[qi], nv, logits[qi], lam0, tau, mode, beta, bias, lam_max)
            lps.append(lp)
            lams.append(lam)
        parts.append(struct.pack("<6i", N, d, n_vocab, n_q, k, MODES[mode]))
        parts.append(struct.pack("<5d", lam0, tau, beta, bias, lam_max))
        for arr, dt in [(keys, "<f4"), (vals, "<i4"), (queries, "<f4"), (logits, "<f4"),
                        (idx, "<i8"), (dist, "<f8"), (np.array(lps), "<f8"),
                        (np.array(lams), "<f8")]:
            parts.append(np.ascontiguousarray(arr, dtype=dt).tobytes())
    with open(path, "wb") as f:
        f.write(b"".join(parts))
    return path, len(CASES)


def self_check():
    """Properties straight from the definitions."""
    rng = np.random.default_rng(1)
    logits = rng.standard_normal(50)
    dist = np.abs(rng.standard_normal(8)) * 3
    vals = np.array([3, 3, 7, 1, 3, 9, 7, 2])
    lp, lam = knn_logprobs(dist, vals, logits)
    assert abs(lam - 0.25) < 1e-15 and abs(logsumexp(lp)) < 1e-12
    lp0, _ = knn_logprobs(dist, vals, logits, lam0=0.0)
    assert np.allclose(lp0, logits - logsumexp(logits))
    # beta = 0 entropy_gap == fixed
    lpg, lamg = knn_logprobs(dist, vals, logits, mode="entropy_gap")
    assert abs(lamg - 0.25) < 1e-15 and np.allclose(lpg, lp)
    # a token with no neighbour gets (1 - lam) p_LM
    p = np.exp(lp)
    plm = np.exp(logits - logsumexp(logits))
    assert abs(p[0] - 0.75 * plm[0]) < 1e-15
    # tau -> 0: all kNN mass on the nearest neighbour's value
    lpt, _ = knn_logprobs(dist, vals, logits, lam0=1.0, tau=1e-6)
    assert abs(np.exp(lpt[vals[np.argmin(dist)]]) - 1.0) < 1e-9


if __name__ == "__main__":
    self_check()
    print(write_golden(sys.argv[1] if len(sys.argv) > 1 else "."))
