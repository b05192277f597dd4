"""Attention-sink (StreamingLLM) mode of the HMT stream (HMT_MODE_SINKS),
stated from the math and computed by llama_ref.py (float64):

    W cache slots: the first S tokens of the document (the sinks) and the most
    recent ones. The token in slot i has RoPE position i. Before a token is
    evaluated into a full cache, the oldest ceil((W - S) / 2) recent entries
    are dropped and the later ones move down. A cached entry keeps its K (before
    RoPE) and V from when it was evaluated; only its position changes, so here
    every step re-applies RoPE to the raw keys at their current slot indices
    (the C code instead turns the stored keys back by the shift, kv_shift.c).

    The experimental HMT_P_SEGMENT_SINKS (run_segment_sinks): in mode
    segments, every segment after the first is evaluated as a fresh pass over
    [the document's first S tokens, the segment's tokens].

    make_all(outdir)   writes sinks-<case>.hmt.golden ("HMTH" v1 of
                       hmt_golden.py: mode 4, no segments, k = S, n_ctx = W)
                       and sinks-manifest.txt (keys as hmt-manifest.txt plus
                       sinks=S); self-checks; returns a summary
"""
import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
from hmt_golden import read_hmt_golden, write_hmt_golden  # noqa: E402
from llama_ref import Model  # noqa: E402

MODE_SINKS = 4

# name, model, W (slots), S (sinks), n_tokens, token seed. The models cover
# adjacent and NEOX pairs, partial rotary (8 of 16 dims), YaRN's magnitude
# (must not be applied twice) and gemma3's sliding layers with their own table.
CASES = [
    ("sinks-llama", "llama-f32", 16, 4, 45, 301),
    ("sinks-qwen2-partial", "qwen2-partial-f32", 12, 2, 40, 302),
    ("sinks-yarn", "qwen2-yarn-f32", 12, 4, 36, 303),
    ("sinks-gemma3", "gemma3-f32", 10, 1, 34, 304),
]
TOL_LOGIT = 1e-4
# name, model, L, S, n_tokens, token seed (mode segments with segment sinks)
SEGMENT_CASES = [("segsinks-llama", "llama-f32", 8, 3, 30, 305)]


def drop_count(W, S):
    return (W - S + 1) // 2


def run_sinks(m, tokens, W, S):
    """Logits [n, n_vocab] of every token under sinks mode; row t predicts t+1."""
    assert 0 <= S < W
    kr = [np.zeros((0, m.n_head_kv, m.head_dim), m.dtype) for _ in range(m.n_layer)]
    vv = [np.zeros((0, m.n_head_kv, m.head_dim), m.dtype) for _ in range(m.n_layer)]
    kept = []            # stream indices held by the cache, slot order
    out = []
    for t, tok in enumerate(tokens):
        if len(kept) == W:
            kept = kept[:S] + kept[S + drop_count(W, S):]
        c = m.new_cache()
        pos = np.arange(len(kept))
        for li in range(m.n_layer):
            inv = m.inv_freq_swa if m.swa_layers[li] else None
            c.kr[li] = kr[li][kept]
            c.k[li] = m.rope(kr[li][kept], pos, inv)
            c.v[li] = vv[li][kept]
        c.pos = pos
        lg, _, c2 = m.forward(tokens=[tok], cache=c)
        for li in range(m.n_layer):
            kr[li] = np.concatenate([kr[li], c2.kr[li][-1:]], axis=0)
            vv[li] = np.concatenate([vv[li], c2.v[li][-1:]], axis=0)
        kept.append(t)
        out.append(lg[0])
    return np.array(out)


def run_segment_sinks(m, tokens, L, S):
    """Logits of mode segments with S segment sinks (S <= L)."""
    out = []
    for a in range(0, len(tokens), L):
        seg = list(tokens[a:a + L])
        pre = list(tokens[:S]) if a > 0 else []
        lg, _, _ = m.forward(tokens=pre + seg)
        out.extend(lg[len(pre):])
    return np.array(out)


def self_check(m, tokens, W, S, lg):
    """Until the cache first fills, sinks mode is the plain backbone; the first
    token after a drop sees fewer tokens, so its logits must differ."""
    plain, _, _ = m.forward(tokens=tokens[:W])
    d0 = float(np.abs(plain - lg[:W]).max())
    assert d0 < 1e-10, f"first W rows differ from the plain backbone by {d0}"
    full, _, _ = m.forward(tokens=tokens[:W + 1])
    d1 = float(np.abs(full[W] - lg[W]).max())
    assert d1 > 1e-3, "the first row after a drop should see a shorter context"
    return d0, d1


def make_all(out, verbose=False):
    lines = ["# libhmt sinks-mode golden cases (tests/reference/sink_ref.py), as hmt-manifest.txt:",
             "# mode=sinks, n_ctx = W cache slots, sinks = S; no adapter. Feed all tokens,",
             "# flush, compare the logits (tol_logit)."]
    summary = []
    for name, model, W, S, n_tok, seed in CASES:
        mpath = os.path.join(out, model + ".gguf")
        m = Model(mpath)
        tokens = np.random.default_rng(seed).integers(0, m.n_vocab, n_tok)
        lg = run_sinks(m, tokens, W, S)
        d0, d1 = self_check(m, tokens, W, S, lg)
        lg32 = run_sinks(Model(mpath, dtype=np.float32), tokens, W, S)
        d32 = float(np.abs(lg32 - lg).max())
        assert d32 < TOL_LOGIT / 5, f"{name}: float32 reference off by {d32}"
        gpath = os.path.join(out, name + ".hmt.golden")
        hdr = dict(n_vocab=m.n_vocab, n_embd=m.n_embd, L=0, k=S, N=0, j=0, j_gen=0,
                   mode=MODE_SINKS, lookahead=0, bf16=0, scale_kind=0, d_h=0, n_ctx=W)
        write_hmt_golden(gpath, hdr, tokens, lg, [])
        g = read_hmt_golden(gpath)
        assert np.array_equal(g["tokens"], tokens) and np.abs(g["logits"] - lg).max() < 1e-5
        line = dict(case=name, model=model + ".gguf", adapter="-", mode="sinks", lookahead=0,
                    L=0, k=0, N=0, n_ctx=W, sinks=S, golden=name + ".hmt.golden",
                    n_tokens=n_tok, n_segments=0, tol_logit=f"{TOL_LOGIT:g}",
                    ref_f32_dlogit=f"{d32:.2e}")
        lines.append(" ".join(f"{k}={v}" for k, v in line.items()))
        summary.append((name, W, S, n_tok, d0, d1, d32))
        if verbose:
            print(f"  {name}: W={W} S={S} tokens={n_tok} plain-prefix {d0:.1e} "
                  f"after-drop change {d1:.2f} f32 {d32:.1e}")
    for name, model, L, S, n_tok, seed in SEGMENT_CASES:
        mpath = os.path.join(out, model + ".gguf")
        m = Model(mpath)
        tokens = np.random.default_rng(seed).integers(0, m.n_vocab, n_tok)
        lg = run_segment_sinks(m, tokens, L, S)
        plain = run_segment_sinks(m, tokens, L, 0)
        d0 = float(np.abs(lg[:L] - plain[:L]).max())
        d1 = float(np.abs(lg[L:] - plain[L:]).max())
        assert d0 == 0 and d1 > 1e-3, "segment sinks: only segments after the first change"
        d32 = float(np.abs(run_segment_sinks(Model(mpath, dtype=np.float32), tokens, L, S) - lg).max())
        n_seg = (n_tok + L - 1) // L
        blank = dict(cached=[], weights=[], S=np.zeros(m.n_embd), P=np.zeros(m.n_embd),
                     M=np.zeros(m.n_embd))
        hdr = dict(n_vocab=m.n_vocab, n_embd=m.n_embd, L=L, k=0, N=0, j=0, j_gen=0, mode=2,
                   lookahead=0, bf16=0, scale_kind=0, d_h=0, n_ctx=S + L)
        write_hmt_golden(os.path.join(out, name + ".hmt.golden"), hdr, tokens, lg, [blank] * n_seg)
        line = dict(case=name, model=model + ".gguf", adapter="-", mode="segments", lookahead=0,
                    L=L, k=0, N=0, n_ctx=S + L, segment_sinks=S, golden=name + ".hmt.golden",
                    n_tokens=n_tok, n_segments=n_seg, tol_logit=f"{TOL_LOGIT:g}",
                    ref_f32_dlogit=f"{d32:.2e}")
        lines.append(" ".join(f"{k}={v}" for k, v in line.items()))
        summary.append((name, L, S, n_tok, d0, d1, d32))
    with open(os.path.join(out, "sinks-manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return summary


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: sink_ref.py OUTDIR   (OUTDIR holds the test models of make_testdata.py)")
    make_all(sys.argv[1], verbose=True)
