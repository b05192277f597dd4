"""NumPy statement of the built-in sampling processors (llama.cpp's definitions,
docs/PROCESSORS.md) and a golden file for tests/check_samplers.c.

Written from the definitions, not from lib/hooks/samplers.c: float64 over the
float32 logits a sampler passes between processors (each processor's output
is rounded to float32 before the next one reads it, as in the C chain).

    /usr/bin/python3 tests/reference/sampler_ref.py OUT_DIR   # OUT_DIR/samplers.golden

Definitions (z: logits, p = softmax(z), a removed token becomes -inf):
  min-p (p_min, min_keep): keep z_i >= max z + ln p_min; when fewer than
      min_keep pass, keep the min_keep highest z (ties: the lower id).
      p_min <= 0: unchanged.
  typical (m, min_keep): H = -sum p ln p; order the tokens by |-ln p_i - H|
      ascending (ties: the lower id; -inf tokens last); keep the first k, k
      the smallest index i + 1 with cumsum > m and i + 1 >= min_keep (all if
      none). m >= 1: unchanged.
  penalties (last_n, repeat, freq, presence): c_t = occurrences of t in the
      last last_n accepted tokens; for c_t > 0: z_t = z_t * repeat if
      z_t <= 0 else z_t / repeat, then z_t -= c_t * freq + presence. last_n
      = 0 or (repeat, freq, presence) = (1, 0, 0): unchanged.
  logit bias (pairs): z_t += b for every pair (t, b), in order.

Golden format (text):
    sampler-golden 1
    cases N
    per case:
    case NAME N_VOCAB N_PROCS N_STEPS
    N_PROCS lines, in chain order:
      proc min_p P MIN_KEEP | proc typical P MIN_KEEP |
      proc penalties LAST_N REPEAT FREQ PRESENCE | proc logit_bias N T1 B1 ... TN BN
    per step:
    step RESET N_ACCEPT T1 .. TN   (RESET 1: hmt_sampler_reset first; then the
                                    tokens are accepted, then one apply)
    z  N_VOCAB input logits (float32, %.9g; -inf allowed)
    e  N_VOCAB expected logits after the last processor (float64, %.17g)
Tolerance for the C side: the -inf entries identical, the others within
1e-6 * max(1, |e|) (one float32 rounding is 6e-8 relative).
"""
import os
import sys

import numpy as np

NEG_INF = -np.inf


def _lse(z):
    f = z[np.isfinite(z)]
    if f.size == 0:
        return NEG_INF
    m = f.max()
    return m + np.log(np.exp(f - m).sum())


def min_p(z, p, min_keep):
    z = np.asarray(z, np.float64)
    if p <= 0:
        return z.copy(), None
    thr = z.max() + np.log(p)
    keep = z >= thr
    if keep.sum() < min_keep:
        if min_keep >= len(z):
            return z.copy(), None
        order = np.lexsort((np.arange(len(z)), -z))  # z descending, then id
        keep = np.zeros(len(z), bool)
        keep[order[:min_keep]] = True
    margin = np.abs(z[np.isfinite(z) & (z != z.max())] - thr)
    return np.where(keep, z, NEG_INF), (margin.min() if margin.size else np.inf)


def typical(z, m, min_keep):
    z = np.asarray(z, np.float64)
    if m >= 1:
        return z.copy(), None
    lse = _lse(z)
    fin = np.isfinite(z)
    logp = np.where(fin, z - lse, NEG_INF)
    prob = np.where(fin, np.exp(np.where(fin, logp, 0.0)), 0.0)
    H = -np.sum(prob[fin] * logp[fin])
    score = np.where(fin, np.abs(np.where(fin, -logp, 0.0) - H), np.inf)
    order = np.lexsort((np.arange(len(z)), score))
    cum = np.cumsum(prob[order])
    last = len(z)
    for i in range(len(z)):
        if cum[i] > m and (min_keep == 0 or i >= min_keep - 1):
            last = i + 1
            break
    keep = np.zeros(len(z), bool)
    keep[order[:last]] = True
    # how far the decision is from flipping: the cumulative mass from m, and
    # the scores on both sides of the cut (unless they are exact ties)
    margin = np.abs(cum[:last] - m).min()
    if last < len(z):
        a, b = order[last - 1], order[last]
        if z[a] != z[b] and np.isfinite(score[b]):
            margin = min(margin, abs(score[b] - score[a]))
    return np.where(keep, z, NEG_INF), margin


def penalties(z, window, repeat, freq, presence):
    """window: the last last_n accepted tokens."""
    z = np.asarray(z, np.float64).copy()
    if not window or (repeat == 1 and freq == 0 and presence == 0):
        return z, None
    counts = {}
    for t in window:
        if t < len(z):
            counts[t] = counts.get(t, 0) + 1
    for t, c in counts.items():
        v = z[t]
        v = v * repeat if v <= 0 else v / repeat
        z[t] = v - (c * freq + presence)
    return z, None


def logit_bias(z, pairs):
    z = np.asarray(z, np.float64).copy()
    for t, b in pairs:
        z[t] += b
    return z, None


def run_chain(procs, z, hist):
    """Apply the processors in order; between two the logits are float32.
    Returns (float64 output of the last one, smallest decision margin)."""
    cur = np.asarray(z, np.float32)
    margin = np.inf
    out = None
    for k, pr in enumerate(procs):
        kind = pr[0]
        if kind == "min_p":
            out, mg = min_p(cur, pr[1], pr[2])
        elif kind == "typical":
            out, mg = typical(cur, pr[1], pr[2])
        elif kind == "penalties":
            last_n = pr[1]
            out, mg = penalties(cur, hist[-last_n:] if last_n > 0 else [], *pr[2:])
        else:
            out, mg = logit_bias(cur, pr[1])
        if mg is not None:
            margin = min(margin, mg)
        if k + 1 < len(procs):
            cur = out.astype(np.float32)
    return out, margin


def cases():
    """(name, n_vocab, procs, steps); a step is (reset, accepted tokens, z)."""
    rng = np.random.default_rng(20261206)
    out = []

    def rnd(n, scale=2.0):
        return (rng.standard_normal(n) * scale).astype(np.float32)

    def single(name, proc, zs, n=None):
        out.append((name, len(zs[0]) if n is None else n, [proc], [(0, [], z) for z in zs]))

    # ---- min-p
    single("min_p_005", ("min_p", 0.05, 0), [rnd(64) for _ in range(3)])
    single("min_p_03", ("min_p", 0.3, 0), [rnd(64) for _ in range(3)])
    single("min_p_keep20", ("min_p", 0.3, 20), [rnd(64) for _ in range(3)])
    tie = np.array([3, 1, 1, 1, 1, 0, -1, 2.5, 1, -2], np.float32)  # ids 1-4, 8 tie
    single("min_p_keep_ties", ("min_p", 0.9, 4), [tie])
    maxtie = np.array([2, 5, 1, 5, 5, -3, 0, 4.99], np.float32)
    single("min_p_1_max_ties", ("min_p", 1.0, 0), [maxtie])
    ninf = rnd(32)
    ninf[[0, 5, 6, 30]] = -np.inf
    single("min_p_neg_inf", ("min_p", 0.1, 0), [ninf])
    few = np.full(12, -np.inf, np.float32)
    few[[2, 7, 9]] = [0.5, 1.5, -0.25]
    single("min_p_keep_past_finite", ("min_p", 0.5, 6), [few])
    single("min_p_0", ("min_p", 0.0, 3), [rnd(16)])
    single("min_p_keep_all", ("min_p", 0.5, 16), [rnd(16)])
    # ---- typical
    single("typical_05", ("typical", 0.5, 0), [rnd(64) for _ in range(3)])
    single("typical_09", ("typical", 0.9, 0), [rnd(64) for _ in range(3)])
    single("typical_keep5", ("typical", 0.2, 5), [rnd(64) for _ in range(3)])
    blocks = np.repeat(np.array([2.0, 1.0, 0.0, -1.0], np.float32), 5)  # four tie groups
    single("typical_ties", ("typical", 0.55, 0), [blocks])
    single("typical_uniform", ("typical", 0.45, 0), [np.zeros(10, np.float32)])
    tn = rnd(32)
    tn[[1, 2, 17]] = -np.inf
    single("typical_neg_inf", ("typical", 0.7, 0), [tn])
    single("typical_neg_inf_keep", ("typical", 0.3, 31), [tn])
    single("typical_0", ("typical", 0.0, 0), [rnd(32)])
    single("typical_1", ("typical", 1.0, 0), [rnd(32)])
    # ---- penalties: one token accepted before each apply (the ring wraps at last_n)
    def pen_case(name, proc, toks, nv=32, resets=(), ninf_at=None):
        steps = []
        for i, t in enumerate(toks):
            z = rnd(nv)
            z[::7] = 0.0  # zero logits take the multiply branch
            if ninf_at is not None:
                z[ninf_at] = -np.inf
            steps.append((int(i in resets), [int(t)], z))
        out.append((name, nv, [proc], steps))

    seq = [3, 5, 3, 3, 7, 0, 5, 9, 3, 1, 1, 1, 4, 3, 7, 21, 0, 0, 14, 3]
    pen_case("penalties_all", ("penalties", 8, 1.3, 0.2, 0.5), seq)
    pen_case("penalties_repeat", ("penalties", 64, 1.5, 0.0, 0.0), seq)
    pen_case("penalties_below_1", ("penalties", 5, 0.8, -0.3, -0.7), seq)
    pen_case("penalties_off", ("penalties", 0, 1.3, 0.2, 0.5), seq[:6])
    pen_case("penalties_big_ids", ("penalties", 6, 1.2, 0.4, 0.1), [40, 3, 33, 3, 40, 3], nv=32)
    pen_case("penalties_neg_inf", ("penalties", 10, 1.4, 0.3, 0.2), [3, 3, 4, 3], ninf_at=3)
    pen_case("penalties_reset", ("penalties", 10, 1.25, 0.1, 0.3), seq[:12], resets=(6,))
    # ---- logit bias
    lbz = rnd(32)
    lbz[9] = -np.inf
    single("logit_bias", ("logit_bias", [(3, 2.5), (7, -1.25), (3, 0.5), (12, -np.inf),
                                         (9, 4.0), (31, -0.75), (0, 10.0)]), [lbz, rnd(32)])
    # ---- a chain in llama.cpp's order: logit bias, penalties, typical, min-p
    chain = [("logit_bias", [(2, 1.5), (5, -np.inf)]), ("penalties", 6, 1.2, 0.15, 0.25),
             ("typical", 0.8, 2), ("min_p", 0.08, 1)]
    steps = [(0, [], rnd(48))] + [(0, [int(t)], rnd(48)) for t in [2, 7, 2, 11, 2, 7, 30, 2]]
    out.append(("chain", 48, chain, steps))
    return out


def _check_margins(name, margin):
    # the decision must not hinge on rounding between float64 here and the C code
    assert margin > 1e-7, f"{name}: a kept/removed decision is {margin:g} from its threshold"


def fmt_proc(pr):
    kind = pr[0]
    if kind in ("min_p", "typical"):
        return f"proc {kind} {pr[1]!r} {pr[2]}"
    if kind == "penalties":
        return f"proc penalties {pr[1]} {pr[2]!r} {pr[3]!r} {pr[4]!r}"
    return "proc logit_bias %d %s" % (len(pr[1]), " ".join(f"{t} {b!r}" for t, b in pr[1]))


def golden_lines():
    cs = cases()
    lines = ["sampler-golden 1", f"cases {len(cs)}"]
    n_steps = 0
    for name, nv, procs, steps in cs:
        lines.append(f"case {name} {nv} {len(procs)} {len(steps)}")
        lines += [fmt_proc(pr).replace("-inf", "-inf") for pr in procs]
        hist = []
        for reset, acc, z in steps:
            if reset:
                hist = []
            hist += acc
            e, margin = run_chain(procs, z, hist)
            _check_margins(name, margin)
            assert not np.isnan(e).any()
            lines.append(f"step {reset} {len(acc)} " + " ".join(str(t) for t in acc))
            lines.append("z " + " ".join(f"{float(v):.9g}" for v in z))
            lines.append("e " + " ".join(f"{float(v):.17g}" for v in e))
            n_steps += 1
    return lines, len(cs), n_steps


def self_check():
    """Properties each definition must have, on its own terms."""
    rng = np.random.default_rng(7)
    z = rng.standard_normal(100) * 3
    out, _ = min_p(z, 0.1, 0)
    kept = np.isfinite(out)
    p = np.exp(z - _lse(z))
    assert np.all(p[kept] >= 0.1 * p.max() * (1 - 1e-12)) and np.all(p[~kept] < 0.1 * p.max())
    out, _ = typical(z, 0.6, 0)
    k = np.isfinite(out)
    H = -(p * np.log(p)).sum()
    score = np.abs(-np.log(p) - H)
    assert p[k].sum() > 0.6 and score[k].max() <= score[~k].min()  # the most typical
    assert p[k].sum() - p[k][np.argmax(score[k])] <= 0.6  # and no more of them than needed
    out, _ = typical(z, 0.6, 40)
    assert np.isfinite(out).sum() == 40
    out, _ = penalties(np.array([2.0, -2.0, 0.0, 1.0]), [0, 1, 2, 0], 2.0, 0.5, 1.0)
    assert np.allclose(out, [2 / 2 - 2 * 0.5 - 1, -4 - 0.5 - 1, -0.5 - 1, 1.0])
    out, _ = logit_bias(np.zeros(4), [(1, 2.0), (1, 1.0), (3, -np.inf)])
    assert out[1] == 3.0 and out[3] == -np.inf and out[0] == 0


def write_golden(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    lines, n_cases, n_steps = golden_lines()
    path = os.path.join(out_dir, "samplers.golden")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path, n_cases, n_steps


if __name__ == "__main__":
    self_check()
    p, nc, ns = write_golden(sys.argv[1] if len(sys.argv) > 1 else ".")
    print(f"sampler_ref: {nc} cases, {ns} applies -> {p}")
