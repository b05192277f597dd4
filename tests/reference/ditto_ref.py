"""NumPy reference of the DITTO decode-time repetition penalty (algorithms.md §3.4)
and a golden file for tests/check_proc.c.

Written from the specification, not from lib/hooks/ditto.c: sentences are re-split
from the whole history at every step, runs and occurrences are recounted, and
the arithmetic is float64 over probabilities.

    /usr/bin/python3 tests/reference/ditto_ref.py OUT_DIR     # writes OUT_DIR/ditto.golden

Golden format (text, one item per line):
    ditto-golden 1
    cases N
    then per case:
    case NAME LAMBDA MODE SCOPE WINDOW MIN_SENTENCE MIN_MATCH RENORM N_VOCAB N_DELIM D_1 .. D_n
    steps S
    then per step:
    step APPLY TOKEN N_FIRED         APPLY 0: the token is accepted without an apply
    z  N_VOCAB float32 logits (%.9g)             (APPLY 1 only)
    e  N_VOCAB expected log-probabilities (%.17g) (APPLY 1 only)
    f  Y RATIO  (N_FIRED lines: penalised token and p'(Y)/p(Y) in the output)
MODE 0 power / 1 relative, SCOPE 0 consecutive / 1 window, RENORM 0 exact / 1 logit.
"""
import os
import sys

import numpy as np


def split_sentences(hist, delims):
    """Complete sentences (each ends with a delimiter, included) and the open one."""
    sents, cur = [], []
    for t in hist:
        cur.append(t)
        if t in delims:
            sents.append(tuple(cur))
            cur = []
    return sents, cur


def sentence_starts(hist, delims):
    starts, s = [], 0
    for i, t in enumerate(hist):
        if t in delims:
            starts.append(s)
            s = i + 1
    return starts


def ditto_step(z, hist, probs, cfg):
    """One apply: z float logits; hist/probs the accepted tokens and their recorded final
    probabilities (nan = unknown). Returns (log-probabilities float64, {y: ratio})."""
    z = np.asarray(z, dtype=np.float64)
    lp = z - (z.max() + np.log(np.exp(z - z.max()).sum()))
    p = np.exp(lp)
    lam = cfg["lambda"]
    if lam == 1.0:
        return lp, {}
    sents, c = split_sentences(hist, cfg["delims"])
    starts = sentence_starts(hist, cfg["delims"])
    t = len(c)
    if t < cfg["min_match"] or not sents:
        return lp, {}
    m = len(sents)
    if cfg["scope"] == 0:
        js = [m - 1]
    else:
        js = list(range(max(0, m - cfg["window"]), m))
    window = [sents[j] for j in js]
    cands = {}  # y -> (r, p_prev of the most recent copy)
    for j in sorted(js, reverse=True):
        S = sents[j]
        if len(S) < cfg["min_sentence"] or len(S) <= t or list(S[:t]) != list(c):
            continue
        if cfg["scope"] == 0:
            r = 0
            for k in range(m - 1, -1, -1):
                if sents[k] != S:
                    break
                r += 1
        else:
            r = sum(1 for W in window if W == S)
        y = S[t]
        pprev = probs[starts[j] + t]
        if y in cands:
            cands[y] = (max(cands[y][0], r), cands[y][1])
        else:
            cands[y] = (r, pprev)
    targets = {}
    for y, (r, pprev) in cands.items():
        if y >= len(z) or p[y] == 0:
            continue
        if cfg["mode"] == 0:
            targets[y] = lam ** r * p[y]
        else:
            base = p[y] if np.isnan(pprev) else pprev
            if lam * base < p[y]:
                targets[y] = max(lam * base, 1e-300)
    if not targets:
        return lp, {}
    ys = np.array(sorted(targets))
    if cfg["renorm"] == 0:
        others = np.ones(len(z), bool)
        others[ys] = False
        rest = p[others].sum()
        newp = p.copy()
        newp[others] *= (1.0 - sum(targets.values())) / rest
        for y, v in targets.items():
            newp[y] = v
    else:
        zz = z.copy()
        for y, v in targets.items():
            zz[y] += np.log(v / p[y])
        newp = np.exp(zz - zz.max())
        newp /= newp.sum()
    out = np.log(newp)
    return out, {int(y): float(newp[y] / p[y]) for y in ys}


# Constructed loops over a 12-token vocabulary; token 1 (and 2 where given) ends a sentence.
A = [4, 5, 6, 1]
B = [4, 7, 1]
C = [4, 8, 9, 1]
SHORT = [10, 1]


def cases():
    base = dict(window=8, min_sentence=2, min_match=0, renorm=0, delims=[1])
    out = []

    def add(name, seq, n_prompt=0, **kw):
        cfg = dict(base)
        cfg.update(kw)
        out.append((name, cfg, seq, n_prompt))

    pre = [7, 8, 1]
    add("power_consecutive", pre + A * 5 + A[:2], **dict(mode=0, scope=0, **{"lambda": 0.5}))
    add("relative_consecutive", pre + A * 5 + A[:2], **dict(mode=1, scope=0, **{"lambda": 0.5}))
    add("relative_prompt", pre + A * 2 + A * 3, n_prompt=len(pre) + 2 * len(A),
        **dict(mode=1, scope=0, **{"lambda": 0.6}))
    add("power_logit", pre + A * 4, **dict(mode=0, scope=0, renorm=1, **{"lambda": 0.3}))
    # the window sees B and C between copies of A; the shared prefix [4] gives several candidates
    add("power_window", pre + A + B + C + A + B + A + C + A[:3],
        **dict(mode=0, scope=1, window=4, **{"lambda": 0.5}))
    add("relative_window", pre + A + B + A + C + A + B + [4],
        **dict(mode=1, scope=1, window=6, **{"lambda": 0.4}))
    # a sentence interrupts the run: consecutive scope only sees the last one
    add("consecutive_break", pre + A + A + B + A + A + A[:2], **dict(mode=0, scope=0, **{"lambda": 0.5}))
    add("min_rules", pre + SHORT * 4 + A * 3, **dict(mode=0, scope=0, min_sentence=3, min_match=2,
                                                     **{"lambda": 0.5}))
    add("two_delims", [7, 2] + [4, 5, 2] * 3 + A * 2, **dict(mode=0, scope=0, delims=[1, 2],
                                                              **{"lambda": 0.5}))
    add("lambda_one", pre + A * 4, **dict(mode=1, scope=1, **{"lambda": 1.0}))
    return out


def run_case(cfg, seq, n_prompt, rng, n_vocab):
    hist, probs, steps = [], [], []
    cfg = dict(cfg)
    cfg["delims"] = set(cfg["delims"])
    for i, tok in enumerate(seq):
        if i < n_prompt:
            steps.append((0, tok, None, None, {}))
            hist.append(tok)
            probs.append(float("nan"))
            continue
        z = (rng.standard_normal(n_vocab) * 2.0).astype(np.float32)
        z[tok] += 1.5  # make the chosen token likely, like a loop
        out, fired = ditto_step(z, hist, probs, cfg)
        steps.append((1, tok, z, out, fired))
        hist.append(tok)
        probs.append(float(np.exp(np.float64(np.float32(out[tok])))))
    return steps


def write_golden(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(4242)
    n_vocab = 12
    cs = cases()
    lines = ["ditto-golden 1", f"cases {len(cs)}"]
    n_fired = 0
    for name, cfg, seq, n_prompt in cs:
        steps = run_case(cfg, seq, n_prompt, rng, n_vocab)
        lines.append(f"case {name} {cfg['lambda']!r} {cfg['mode']} {cfg['scope']} {cfg['window']} "
                     f"{cfg['min_sentence']} {cfg['min_match']} {cfg['renorm']} {n_vocab} "
                     f"{len(cfg['delims'])} " + " ".join(str(d) for d in cfg["delims"]))
        lines.append(f"steps {len(steps)}")
        for apply, tok, z, out, fired in steps:
            lines.append(f"step {apply} {tok} {len(fired)}")
            if apply:
                lines.append("z " + " ".join(f"{float(v):.9g}" for v in z))
                lines.append("e " + " ".join(f"{float(v):.17g}" for v in out))
            for y, ratio in sorted(fired.items()):
                lines.append(f"f {y} {ratio:.17g}")
            n_fired += len(fired)
    path = os.path.join(out_dir, "ditto.golden")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path, len(cs), n_fired


def self_check():
    """Properties of the reference itself, from §3.4."""
    rng = np.random.default_rng(1)
    z = rng.standard_normal(12)
    cfg = dict(delims={1}, window=8, min_sentence=2, min_match=0, renorm=0, mode=0, scope=0)
    hist = [7, 8, 1] + A * 2
    # power, r = 2: p'(y*) = λ² p, the others scaled by (1 - p')/(1 - p)
    cfg["lambda"] = 0.5
    out, fired = ditto_step(z, hist, [np.nan] * len(hist), cfg)
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert list(fired) == [A[0]] and abs(fired[A[0]] - 0.25) < 1e-12
    q = np.exp(out)
    assert abs(q.sum() - 1) < 1e-12
    s = (1 - 0.25 * p[A[0]]) / (1 - p[A[0]])
    assert np.allclose(np.delete(q, A[0]), np.delete(p, A[0]) * s, rtol=1e-12)
    # first occurrence: nothing fires
    out, fired = ditto_step(z, [7, 8, 1] + A[:2], [np.nan] * 5, cfg)
    assert not fired and np.allclose(np.exp(out), p)
    # λ = 1: unchanged
    cfg["lambda"] = 1.0
    out, fired = ditto_step(z, hist, [np.nan] * len(hist), cfg)
    assert not fired and np.allclose(np.exp(out), p, rtol=1e-14, atol=0)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "build/testdata"
    self_check()
    path, n_cases, n_fired = write_golden(out_dir)
    print(f"ditto_ref: {n_cases} cases, {n_fired} penalised tokens -> {path}")


if __name__ == "__main__":
    main()
