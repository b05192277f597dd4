"""HMT golden files ("HMTH" v1) and the HMT test cases, computed by
hmt_ref.py (float64) on the test models of make_testdata.py.

    make_all(outdir)        writes <case>.adapter.gguf, <case>.hmt.golden and
                            hmt-manifest.txt into outdir (needs llama-f32.gguf
                            and qwen2-f32.gguf there), self-checks, returns a summary
    check_dir(outdir)       re-reads every golden and re-runs the reference
    write_hmt_golden / read_hmt_golden

Format (little-endian, packed, no padding):
    char    magic[4] = "HMTH"
    uint32  version = 1, n_tokens, n_vocab, n_embd, L, k, N, j, j_gen, mode,
            lookahead, bf16, scale_kind, n_segments, d_h, n_ctx      (17 x uint32 = 68 bytes
                                                                        after the magic)
    int32   tokens[n_tokens]
    float32 logits[n_tokens][n_vocab]     row i predicts token i+1
    per segment s < n_segments:
        uint32  n_cached
        int32   cached_segment[n_cached]  oldest first
        float32 weights[n_cached]
        float32 S[n_embd]; float32 P[n_embd]; float32 M[n_embd]
mode: 0 full, 1 rmt, 2 segments, 3 window; scale_kind 0 sqrt, 1 linear.
"""
import os
import struct
import sys
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
from gen_adapter import make_adapter  # noqa: E402
from hmt_ref import HMT, MODES, Adapter, bf16_margin, f32_diff, self_check  # noqa: E402
from llama_ref import Model  # noqa: E402

MAGIC = b"HMTH"
VERSION = 1
HEADER_FIELDS = ["version", "n_tokens", "n_vocab", "n_embd", "L", "k", "N", "j", "j_gen", "mode",
                 "lookahead", "bf16", "scale_kind", "n_segments", "d_h", "n_ctx"]

# name, model, adapter kwargs (gen_adapter.make_adapter; None = no adapter),
# HMT kwargs, n_tokens, token seed
CASES = [
    ("hmt-full-a", "llama-f32", dict(L=8, k=2, N=3, d_h=24, seed=101),
     dict(mode="full", lookahead=True), 50, 201),
    # seeds chosen (of 400 tried) so that no value rounded to bf16 lies within about the
    # float32 error of a rounding boundary (see BF16_ERR and the bf16_margin_* keys)
    ("hmt-full-bf16", "llama-f32", dict(L=8, k=0, N=10, d_h=16, bf16=True, seed=372),
     dict(mode="full", lookahead=True), 41, 209),
    ("hmt-full-odd", "qwen2-f32", dict(L=7, k=3, N=2, d_h=40, scale="linear", ttype="bf16", seed=103),
     dict(mode="full", lookahead=True), 40, 203),
    ("hmt-full-causal", "llama-f32", dict(L=8, k=2, N=3, d_h=24, gen_summary_length=3, ttype="f16",
                                          seed=104),
     dict(mode="full", lookahead=False), 45, 204),
    ("hmt-rmt", "llama-f32", dict(L=8, k=2, N=4, d_h=8, seed=105), dict(mode="rmt"), 30, 205),
    ("hmt-segments", "llama-f32", None, dict(mode="segments", L=8), 30, 206),
    ("hmt-window", "llama-f32", None, dict(mode="window", n_ctx=16), 45, 207),
    # the engine is architecture-agnostic: the same recall on qwen3 (q/k norms,
    # head size 32 != d / heads) and on a Llama 3.1-style rope_freqs model
    ("hmt-full-qwen3", "qwen3-f32", dict(L=8, k=2, N=3, d_h=24, seed=108),
     dict(mode="full", lookahead=True), 43, 210),
    ("hmt-full-llama3", "llama3-rope-f32", dict(L=8, k=2, N=3, d_h=24, seed=109),
     dict(mode="full", lookahead=True), 38, 211),    # gemma2 / gemma3: their sliding window (4 slots) is shorter than a
    # segment's pass (k + L + 2 = 12 rows), so it acts inside every pass;
    # gemma3's memory and summary rows enter unscaled, its tokens scaled
    # (adapter seeds: the first whose recall passes the spread self-check)
    ("hmt-full-gemma2", "gemma2-f32", dict(L=8, k=2, N=3, d_h=24, seed=111),
     dict(mode="full", lookahead=True), 42, 212),
    ("hmt-full-gemma3", "gemma3-f32", dict(L=8, k=2, N=3, d_h=24, seed=110),
     dict(mode="full", lookahead=True), 39, 213),
    # phi3 (fused weights, partial rotary, LongRoPE: a pass's 12-slot context
    # is shorter than the original 64, so the short factors) and Mistral-style
    # llama: their windows (5 and 4 slots) act inside every 12-row pass
    ("hmt-full-phi3", "phi3-f32", dict(L=8, k=2, N=3, d_h=24, seed=114),
     dict(mode="full", lookahead=True), 41, 214),
    ("hmt-full-swa", "llama-swa-f32", dict(L=8, k=2, N=3, d_h=24, seed=115),
     dict(mode="full", lookahead=True), 44, 215),
]

# recommended C tolerances (max abs difference vs the golden); see README.md.
# The bf16 case uses the same ones: its seeds keep every bf16-rounded value away
# from a rounding boundary (margins checked below), so float32 C code rounds
# exactly as the float64 reference does.
TOL = {"logit": 1e-4, "state": 5e-5, "weight": 1e-5}
# expected float32 error of each quantity before its bf16 rounding (absolute):
# S, M are backbone hidden states (~1e-6 measured), q, K dot products of exact
# bf16 values, w softmax outputs, P sums of exact bf16 products
BF16_ERR = {"S": 3e-6, "M": 3e-6, "q": 1e-6, "K": 1e-6, "s1": 1e-5, "s2": 1e-5, "w": 1e-7,
            "P": 1e-7}


def write_hmt_golden(path, hdr, tokens, logits, segments):
    h = dict(hdr, version=VERSION, n_tokens=len(tokens), n_segments=len(segments))
    n_embd = h["n_embd"]
    logits = np.asarray(logits, "<f4")
    assert logits.shape == (h["n_tokens"], h["n_vocab"])
    out = bytearray(MAGIC)
    out += struct.pack("<16I", *[int(h[f]) for f in HEADER_FIELDS])
    out += np.asarray(tokens, "<i4").tobytes()
    out += logits.tobytes()
    for r in segments:
        c = np.asarray(r["cached"], "<i4")
        w = np.asarray(r["weights"], "<f4")
        assert len(c) == len(w)
        out += struct.pack("<I", len(c)) + c.tobytes() + w.tobytes()
        for f in ("S", "P", "M"):
            v = np.asarray(r[f], "<f4")
            assert v.shape == (n_embd,)
            out += v.tobytes()
    with open(path, "wb") as f:
        f.write(out)


def read_hmt_golden(path):
    with open(path, "rb") as f:
        b = f.read()
    if b[:4] != MAGIC:
        raise ValueError("bad magic")
    h = dict(zip(HEADER_FIELDS, struct.unpack_from("<16I", b, 4)))
    if h["version"] != VERSION:
        raise ValueError("bad version")
    p = 4 + 64
    n, V, d = h["n_tokens"], h["n_vocab"], h["n_embd"]
    h["tokens"] = np.frombuffer(b, "<i4", n, p).copy()
    p += 4 * n
    h["logits"] = np.frombuffer(b, "<f4", n * V, p).reshape(n, V).copy()
    p += 4 * n * V
    segs = []
    for _ in range(h["n_segments"]):
        (nc,) = struct.unpack_from("<I", b, p)
        p += 4
        r = dict(cached=np.frombuffer(b, "<i4", nc, p).tolist())
        p += 4 * nc
        r["weights"] = np.frombuffer(b, "<f4", nc, p).copy()
        p += 4 * nc
        for f in ("S", "P", "M"):
            r[f] = np.frombuffer(b, "<f4", d, p).copy()
            p += 4 * d
        segs.append(r)
    if p != len(b):
        raise ValueError(f"trailing bytes ({len(b) - p})")
    h["segments"] = segs
    return h


def header_of(h):
    """Golden header fields of an HMT object (values actually used)."""
    full = h.mode == "full"
    return dict(n_vocab=h.n_vocab, n_embd=h.d, L=h.L, k=h.k, N=h.N if h.mode in ("full", "rmt") else 0,
                j=h.j if full else 0, j_gen=h.j_gen if full else 0, mode=MODES[h.mode],
                lookahead=int(h.lookahead) if full else 0, bf16=int(h.bf16) if full else 0,
                scale_kind=(1 if h.scale_kind == "linear" else 0) if full else 0,
                d_h=h.d_h if h.a is not None else 0, n_ctx=h.n_ctx)


def build_case(out, case, verbose=False):
    name, model, akw, hkw, n_tok, seed = case
    mpath = os.path.join(out, model + ".gguf")
    m = Model(mpath)
    a, apath = None, None
    if akw is not None:
        apath = os.path.join(out, name + ".adapter.gguf")
        make_adapter(apath, d=m.n_embd, **akw)
        a = Adapter(apath)
    h = HMT(m, a, **hkw)
    tokens = np.random.default_rng(seed).integers(0, m.n_vocab, n_tok)
    if verbose:
        print(f"  {name}:")
    ok, res, info = self_check(h, tokens, seed=seed, verbose=verbose)
    if not ok:
        self_check(h, tokens, res=res, seed=seed, verbose=True)
        raise AssertionError(f"{name}: HMT self-check failed")
    d32 = f32_diff(mpath, a, res, tokens, **hkw)
    gpath = os.path.join(out, name + ".hmt.golden")
    hdr = header_of(h)
    write_hmt_golden(gpath, hdr, tokens, res.logits, res.segments)
    g = read_hmt_golden(gpath)
    assert np.array_equal(g["tokens"], tokens) and all(g[f] == hdr[f] for f in hdr)
    assert np.abs(g["logits"] - res.logits).max() < 1e-5
    for r0, r1 in zip(g["segments"], res.segments):
        assert r0["cached"] == list(r1["cached"])
        for f in ("weights", "S", "P", "M"):
            assert np.abs(r0[f] - np.asarray(r1[f])).max(initial=0) < 1e-5
    tol = TOL
    margin = {}
    if h.bf16:
        h.trace = []
        h.run(tokens)
        for t in h.trace:
            for q, v in t.items():
                margin[q] = min(margin.get(q, np.inf), float(bf16_margin(v).min()))
        h.trace = None
        worst = min(margin[q] / BF16_ERR[q] for q in margin)
        assert worst >= 1.0, f"{name}: a bf16-rounded value is too close to a rounding boundary"
    line = dict(case=name, model=model + ".gguf", adapter=(name + ".adapter.gguf") if a else "-",
                mode=h.mode, lookahead=hdr["lookahead"], L=h.L, k=h.k,
                N=hdr["N"], n_ctx=h.n_ctx, golden=name + ".hmt.golden", n_tokens=n_tok,
                n_segments=len(res.segments), j=hdr["j"], j_gen=hdr["j_gen"], bf16=hdr["bf16"],
                scale=h.scale_kind if a else "-", d_h=hdr["d_h"],
                tol_logit=f"{tol['logit']:g}", tol_state=f"{tol['state']:g}",
                tol_weight=f"{tol['weight']:g}",
                ref_f32_dlogit=f"{d32['logits']:.2e}",
                ref_f32_dstate=f"{max(d32['S'], d32['P'], d32['M']):.2e}",
                ref_f32_dweight=f"{d32['weights']:.2e}")
    line.update({f"bf16_margin_{q}": f"{v:.1e}" for q, v in margin.items()})
    return line, info, d32


def make_all(out, verbose=False):
    t0 = time.time()
    lines = ["# libhmt HMT golden cases (tests/reference/hmt_golden.py). One case per line,",
             "# space-separated key=value; '#' lines are comments; ignore unknown keys.",
             "# Stream settings: mode, lookahead, L, k, N, n_ctx (window length, mode window);",
             "# adapter '-' = none (set HMT_P_SEGMENT_LENGTH = L for segments). Feed all",
             "# tokens of the golden, flush, compare. tol_* = recommended max |C - golden|",
             "# (logits; S/P/M; recall weights); ref_f32_* = float32-vs-float64 of the reference."]
    summary = []
    for case in CASES:
        line, info, d32 = build_case(out, case, verbose=verbose)
        lines.append(" ".join(f"{k}={v}" for k, v in line.items()))
        summary.append((line, info, d32))
    with open(os.path.join(out, "hmt-manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return summary, time.time() - t0


def read_manifest(path):
    cases = []
    with open(path) as f:
        for ln in f:
            ln = ln.strip()
            if ln and not ln.startswith("#"):
                cases.append(dict(kv.split("=", 1) for kv in ln.split()))
    return cases


def check_dir(out):
    """Re-run the reference on every case of hmt-manifest.txt and compare
    with the golden files (and print the self-checks)."""
    ok = True
    for c in read_manifest(os.path.join(out, "hmt-manifest.txt")):
        g = read_hmt_golden(os.path.join(out, c["golden"]))
        m = Model(os.path.join(out, c["model"]))
        a = None if c["adapter"] == "-" else Adapter(os.path.join(out, c["adapter"]))
        kw = dict(mode=c["mode"], lookahead=bool(int(c["lookahead"])))
        if a is None:
            kw.update(L=int(c["L"])) if c["mode"] == "segments" else kw.update(n_ctx=int(c["n_ctx"]))
        h = HMT(m, a, **kw)
        print(f"  {c['case']}:")
        good, res, _ = self_check(h, g["tokens"])
        dl = float(np.abs(res.logits - g["logits"]).max())
        good &= dl < 1e-5
        print(f"    golden file vs reference: max |dlogit| {dl:.1e}")
        ok &= good
    return ok


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: hmt_golden.py OUTDIR   (OUTDIR holds llama-f32.gguf, qwen2-f32.gguf)")
    s, dt = make_all(sys.argv[1], verbose=True)
    print(f"{len(s)} HMT cases in {dt:.1f} s")
