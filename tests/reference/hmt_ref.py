"""NumPy reference of HMT (Hierarchical Memory Transformer) as docs/HMT.md
specifies it, on top of llama_ref.Model (float64 by default: an oracle for
the C engine, not a twin of it). Standard library + NumPy.

    m = Model("llama-f32.gguf")
    a = Adapter("x.adapter.gguf")
    h = HMT(m, a, mode="full", lookahead=True)      # modes: full rmt segments window
    res = h.run(tokens)          # whole text, then flush: res.logits [n, n_vocab]
                                 # (row i predicts token i+1), res.segments[n] =
                                 # dict(cached, weights, S, P, M)
    s = Stream(h); s.feed(t[:5]); s.feed(t[5:]); s.flush(); s.result()   # incremental

Two independent implementations live here: `HMT.run` evaluates every pass
from scratch exactly as the per-segment steps of docs/HMT.md read (window
mode: one forward per token over its context), `Stream` is incremental like
the C engine (KV cache kept inside the open segment, lazy recall under the
lookahead rule, strided KV window). The self-check requires them to agree for
any chunking.

Per segment n (mode full), tokens x_n = tokens[nL : nL+L_n]:
  S_n = final-norm hidden of the last row of backbone([T, E(q_n), T]),
        q_n = x_n[:j] (lookahead rule) or x_{n-1}[:j_gen] (causal rule), n >= 1
  w   = softmax((W_q S_n) . (W_k M_i) / scale) over the cache M_a..M_{n-1},
        a = max(0, n-N); P_n = sum_i w_i M_i;  P_0 = M_init
  main pass backbone([P_n, E(sensory_n), E(x_n), P_n]) from position 0:
        logits of row k_n+1+i predict token nL+i+1; M_n = hidden of the last row
  push M_n (FIFO, last N); sensory_{n+1} = x_n[-k:]
rmt: P_0 = M_init, P_n = M_{n-1}, no summary/recall. segments: backbone(x_n)
from position 0. window (W = n_ctx): when the KV cache holds W tokens, keep
the last W // 2, re-evaluate them from position 0, continue.

bf16 recall emulation (hmt.recall_bf16), exactly:
  r(.) = round-to-nearest-even to bfloat16 of the exact value (8 significant
         bits; computed with frexp/round/ldexp, no float32 double rounding)
  Sb = r(S_n); Mb_i = r(M_i); Wqb = r(W_q); Wkb = r(W_k)
  q = r(Wqb Sb); K_i = r(Wkb Mb_i)                    (products in working precision)
  s_i = float32((q . K_i) / scale)                     (the "f32 scores", NOT bf16)
  w = r(softmax(s))       softmax evaluated in working precision on the f32 s
  P_n = r(sum_i w_i Mb_i), then used as a float (f64 here, f32 in C)
P_0 = M_init is never rounded (no recall at n = 0); rmt mode never rounds.
"""
import math
import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
from gguf_read import GGUFFile  # noqa: E402
from llama_ref import Model  # noqa: E402

MODES = {"full": 0, "rmt": 1, "segments": 2, "window": 3}


def bf16_margin(x):
    """Absolute distance of each value to the nearest bf16 rounding boundary
    (the midpoint between adjacent bf16 values): how far x may move before
    bf16_round(x) changes."""
    x = np.asarray(x, np.float64)
    m, e = np.frexp(np.abs(x))
    f = m * 256.0
    return np.abs(f - np.floor(f) - 0.5) * np.ldexp(1.0, e - 8)


def bf16_round(x):
    """Round to the nearest bfloat16 value (ties to even), same dtype out.
    Exact for float64 input (no intermediate float32 rounding)."""
    x = np.asarray(x)
    m, e = np.frexp(x)                     # x = m * 2^e, 0.5 <= |m| < 1
    return np.ldexp(np.round(m * 256.0), e - 8).astype(x.dtype)   # np.round: half-even


class Adapter:
    """The hmt.* keys and tensors of a GGUF file (docs/HMT.md)."""

    def __init__(self, path):
        g = GGUFFile(path)
        mt = g.meta

        def key(name, default=None, required=False):
            if "hmt." + name not in mt:
                if required:
                    raise KeyError("hmt." + name)
                return default
            return mt["hmt." + name]

        if int(key("version", required=True)) != 1:
            raise ValueError("hmt.version != 1")
        self.d = int(key("embedding_length", required=True))
        self.L = int(key("segment_length", required=True))
        self.k = int(key("sensory_length", 0))
        self.fraction = float(np.float32(key("summary_fraction", 0.5)))
        gl = key("generation_summary_length")
        self.gen_summary_length = None if gl is None else int(gl)
        self.N = int(key("cache_size", required=True))
        self.scale_kind = str(key("recall_scale", "sqrt"))
        self.bf16 = bool(key("recall_bf16", False))
        self.T = g.tensor("hmt.summary_prompt").reshape(-1)
        self.M_init = g.tensor("hmt.memory_init").reshape(-1)
        self.Wq = g.tensor("hmt.recall.wq")
        self.Wk = g.tensor("hmt.recall.wk")
        self.d_h = self.Wq.shape[0]
        if self.scale_kind not in ("sqrt", "linear"):
            raise ValueError("hmt.recall_scale")
        if not (1 <= self.L <= 1048576 and 0 <= self.k <= self.L and 1 <= self.N <= 65536
                and 0 < self.fraction <= 1):
            raise ValueError("hmt hyperparameter out of range")
        if self.gen_summary_length is not None and not 1 <= self.gen_summary_length <= self.L:
            raise ValueError("hmt.generation_summary_length out of range")
        for t in (self.T, self.M_init):
            assert t.shape == (self.d,)
        assert self.Wq.shape == (self.d_h, self.d) and self.Wk.shape == (self.d_h, self.d)
        assert self.d_h >= 1


class Result:
    def __init__(self, logits, segments):
        self.logits = logits        # [n_tokens, n_vocab]
        self.segments = segments    # list of dict(cached, weights, S, P, M)


class HMT:
    def __init__(self, model, adapter=None, mode="full", lookahead=True, L=None, k=None, N=None,
                 j=None, j_gen=None, bf16=None, n_ctx=None):
        """Overrides (L, k, N, j, j_gen, bf16) play the role of the HMT_P_* keys;
        None = the adapter's value. n_ctx: window length W (mode window;
        default the model's context length)."""
        if mode not in MODES:
            raise ValueError(mode)
        if mode in ("full", "rmt") and adapter is None:
            raise ValueError(f"mode {mode} needs an adapter")
        a = adapter
        self.m, self.a, self.mode, self.lookahead = model, a, mode, bool(lookahead)
        dt = model.dtype
        self.dt = dt
        self.d, self.n_vocab = model.n_embd, model.n_vocab
        if a is not None and a.d != self.d:
            raise ValueError("adapter width != model width")
        self.L = L if L is not None else (a.L if a is not None else None)
        self.k = k if k is not None else (a.k if a is not None else 0)
        self.N = N if N is not None else (a.N if a is not None else 0)
        self.n_ctx = 0
        if mode == "window":
            self.L, self.k, self.N = 0, 0, 0
            self.n_ctx = int(n_ctx or model.n_ctx_train)
            if self.n_ctx < 2:
                raise ValueError("window needs n_ctx >= 2")
        elif self.L is None or self.L < 1:
            raise ValueError("segment length required")
        if mode == "segments":
            self.k, self.N = 0, 0
        self.j = self.j_gen = 0
        self.trace = None                     # list: bf16 recall inputs before rounding
        self.bf16_scores = True               # round scores to bf16 as HMT-pytorch does (docs/HMT.md)
        self.bf16, self.scale_kind, self.d_h = False, "sqrt", 0
        if a is not None and mode in ("full", "rmt"):
            # round(): Python's round-half-even, as HMT-pytorch's int(round(L * frac))
            self.j = j if j is not None else int(round(self.L * a.fraction))
            self.j_gen = j_gen if j_gen is not None else (
                a.gen_summary_length if a.gen_summary_length is not None else self.L // 2)
            self.bf16 = a.bf16 if bf16 is None else bool(bf16)
            self.scale_kind, self.d_h = a.scale_kind, a.d_h
            self.scale = math.sqrt(a.d_h) if a.scale_kind == "sqrt" else float(a.d_h)
            self.T, self.M_init = a.T.astype(dt), a.M_init.astype(dt)
            self.Wq, self.Wk = a.Wq.astype(dt), a.Wk.astype(dt)
            if self.mode == "rmt":
                self.bf16 = False
        if mode != "window" and self.k + self.L + 2 > model.n_ctx_train:
            raise ValueError("k + L + 2 exceeds the model's context length")
        # the backbone's context, as the C stream sizes it: it picks LongRoPE's
        # short or long factors (llama_ref.Model.use_context)
        model.use_context({"window": self.n_ctx, "segments": self.L}.get(mode, self.k + self.L + 2))

    # ---- building blocks ----------------------------------------------------
    def embed(self, toks):
        return self.m.embed_rows(toks)

    def summary(self, toks):
        """S = final-norm hidden of the trailing T of backbone([T, E(toks), T])."""
        e = np.concatenate([self.T[None], self.embed(toks), self.T[None]])
        _, h, _ = self.m.forward(embd=e)
        return h[-1].copy()

    def recall(self, S, mems):
        """mems [n, d] (oldest first) -> (weights [n], P [d])."""
        mems = np.asarray(mems, self.dt).reshape(-1, self.d)
        if not self.bf16:
            q = self.Wq @ S
            K = mems @ self.Wk.T
            s = (K @ q) / self.dt.type(self.scale)
            e = np.exp(s - s.max())
            w = e / e.sum()
            return w, w @ mems
        r = bf16_round
        Sb, Mb, Wqb, Wkb = r(S), r(mems), r(self.Wq), r(self.Wk)
        q_ = Wqb @ Sb
        K_ = Mb @ Wkb.T
        q, K = r(q_), r(K_)
        s1 = K @ q
        s2 = r(s1) / self.dt.type(self.scale)
        if self.bf16_scores:                  # HMT-pytorch's bf16 matmul and division
            s = r(s2).astype(np.float32)
        else:
            s = ((K @ q) / self.dt.type(self.scale)).astype(np.float32)   # the f32 scores
        s = s.astype(self.dt)                 # softmax in working precision on f32 values
        e = np.exp(s - s.max())
        w_ = e / e.sum()
        w = r(w_)
        P_ = w @ Mb
        if self.trace is not None:            # values before each bf16 rounding
            self.trace.append(dict(S=S, M=mems, q=q_, K=K_, w=w_, P=P_) if not self.bf16_scores else
                              dict(S=S, M=mems, q=q_, K=K_, s1=s1, s2=s2, w=w_, P=P_))
        return w, r(P_)

    def main_pass(self, P, sens, x, trailing=True):
        """backbone([P, E(sens), E(x), P]) -> (logits of the x rows, M or None)."""
        rows = [P[None], self.embed(sens), self.embed(x)] + ([P[None]] if trailing else [])
        lg, h, _ = self.m.forward(embd=np.concatenate(rows))
        ks = len(sens)
        return lg[1 + ks: 1 + ks + len(x)], (h[-1].copy() if trailing else None)

    def blank_record(self):
        z = np.zeros(self.d, self.dt)
        return dict(cached=[], weights=np.zeros(0, self.dt), S=z.copy(), P=z.copy(), M=z.copy())

    # ---- whole text ---------------------------------------------------------
    def run(self, tokens):
        """The whole text fed at once, then flushed."""
        toks = np.asarray(tokens, dtype=np.int64).reshape(-1)
        n = len(toks)
        logits = np.zeros((n, self.n_vocab), self.dt)
        if self.mode == "window":
            W, s = self.n_ctx, 0
            for i in range(n):
                if i - s == W:                    # cache full: keep the last W // 2
                    s = i - W // 2
                lg, _, _ = self.m.forward(tokens=toks[s:i + 1])   # positions 0..i-s
                logits[i] = lg[-1]
            return Result(logits, [])
        L, k, N = self.L, self.k, self.N
        segs = [toks[s:s + L] for s in range(0, n, L)]
        recs, mems = [], []                       # mems: [(segment id, M)], FIFO
        for i, x in enumerate(segs):
            rec = self.blank_record()
            sl = slice(i * L, i * L + len(x))
            if self.mode == "segments":
                lg, _, _ = self.m.forward(tokens=x)
                logits[sl] = lg
                recs.append(rec)
                continue
            sens = segs[i - 1][-k:] if (i > 0 and k > 0) else toks[:0]
            if i == 0:
                P = self.M_init.copy()
            elif self.mode == "rmt":
                P = mems[-1][1]
            else:
                src, jj = (x, self.j) if self.lookahead else (segs[i - 1], self.j_gen)
                S = self.summary(src[:jj])        # j' = min(j, length) by slicing
                cache = mems[-N:]
                w, P = self.recall(S, np.stack([M for _, M in cache]))
                rec.update(cached=[c for c, _ in cache], weights=w, S=S)
            lg, M = self.main_pass(P, sens, x)
            logits[sl] = lg
            rec.update(P=P.copy(), M=M)
            mems.append((i, M))
            mems = mems[-N:]
            recs.append(rec)
        return Result(logits, recs)


class Stream:
    """Incremental form: feed(tokens) in any chunks, flush(). Mirrors the C
    engine's structure (lazy segment opening, KV cache kept inside the open
    segment, lookahead recall once j tokens are known, strided window)."""

    def __init__(self, hmt, lookahead=None):
        self.h = hmt
        self.lookahead = hmt.lookahead if lookahead is None else bool(lookahead)
        self.toks, self.logits, self.mems, self.records = [], {}, [], []
        self.n, self.seg, self.prev, self.sens = -1, [], None, []
        self.P, self.kv, self.ready, self.n_eval = None, None, False, 0
        self.wtoks = []
        if hmt.mode == "window":
            self.kv = hmt.m.new_cache()

    def _store(self, lg, first):
        for r in range(lg.shape[0]):
            self.logits[first + r] = lg[r]

    def _start(self, P):
        h = self.h
        self.P = P
        self.kv = h.m.forward(embd=np.concatenate([P[None], h.embed(self.sens)]))[2]
        self.ready = True

    def _recall_from(self, toks):
        h = self.h
        S = h.summary(toks)
        cache = self.mems[-h.N:]
        w, P = h.recall(S, np.stack([M for _, M in cache]))
        self.records[-1].update(cached=[c for c, _ in cache], weights=w, S=S, P=P.copy())
        self._start(P)

    def _open(self):
        h = self.h
        self.n += 1
        self.seg, self.seg0, self.n_eval = [], len(self.toks), 0
        self.P, self.kv, self.ready = None, None, False
        self.records.append(h.blank_record())
        self.sens = list(self.prev[-h.k:]) if (self.prev is not None and h.k > 0) else []
        if h.mode == "segments":
            self.kv, self.ready = h.m.new_cache(), True
        elif self.n == 0 or h.mode == "rmt":
            P = h.M_init.copy() if self.n == 0 else self.mems[-1][1]
            self.records[-1]["P"] = P.copy()
            self._start(P)
        elif not self.lookahead:                  # causal: recall as the segment opens
            self._recall_from(self.prev[:h.j_gen])

    def _advance(self):
        h = self.h
        if not self.ready and self.lookahead and len(self.seg) >= h.j:
            self._recall_from(self.seg[:h.j])
        if self.ready and self.n_eval < len(self.seg):
            lg, _, self.kv = h.m.forward(tokens=self.seg[self.n_eval:], cache=self.kv)
            self._store(lg, self.seg0 + self.n_eval)
            self.n_eval = len(self.seg)

    def _close(self):
        h = self.h
        assert self.ready and self.n_eval == len(self.seg) == h.L
        if h.mode in ("full", "rmt"):
            _, hid, _ = h.m.forward(embd=self.P[None], cache=self.kv)
            M = hid[-1].copy()
            self.records[-1]["M"] = M
            self.mems = (self.mems + [(self.n, M)])[-h.N:]
        self.prev = self.seg

    def _feed_window(self, toks):
        h, W = self.h, self.h.n_ctx
        i = 0
        while i < len(toks):
            if self.kv.n == W:                    # full: keep the last W // 2, from position 0
                self.wtoks = self.wtoks[-(W // 2):]
                self.kv = h.m.forward(tokens=self.wtoks)[2]
            take = min(W - self.kv.n, len(toks) - i)
            lg, _, self.kv = h.m.forward(tokens=toks[i:i + take], cache=self.kv)
            self._store(lg, len(self.toks))
            self.toks += toks[i:i + take]
            self.wtoks += toks[i:i + take]
            i += take

    def feed(self, tokens):
        toks = [int(t) for t in np.asarray(tokens, dtype=np.int64).reshape(-1)]
        if self.h.mode == "window":
            return self._feed_window(toks)
        i = 0
        while i < len(toks):
            if self.n < 0 or len(self.seg) == self.h.L:
                self._open()
            take = min(self.h.L - len(self.seg), len(toks) - i)
            self.seg += toks[i:i + take]
            self.toks += toks[i:i + take]
            i += take
            self._advance()
            if len(self.seg) == self.h.L:
                self._close()

    def flush(self):
        h = self.h
        if h.mode == "full" and not self.ready and self.seg:
            self._recall_from(self.seg)           # j' = the tokens present (< j)
        if h.mode != "window" and self.seg:
            self._advance()

    def result(self):
        """Logits of every fed token (all must be ready) and the per-segment
        records; the open segment's M is its trailing-P row (peeked)."""
        n = len(self.toks)
        assert all(i in self.logits for i in range(n)), "tokens not ready (flush?)"
        lg = np.stack([self.logits[i] for i in range(n)]) if n else np.zeros((0, self.h.n_vocab))
        recs = [dict(r) for r in self.records]
        h = self.h
        if recs and h.mode in ("full", "rmt") and len(self.seg) < h.L and self.ready:
            _, hid, _ = h.m.forward(embd=self.P[None], cache=self.kv)
            recs[-1]["M"] = hid[-1].copy()
        return Result(lg, recs)


# ---------------------------------------------------------------------------
# self-checks
# ---------------------------------------------------------------------------
def compare(ra, rb):
    """max |difference| of logits and of each per-segment field; also checks
    the cached ids agree. Returns dict."""
    out = dict(logits=float(np.abs(ra.logits - rb.logits).max()) if ra.logits.size else 0.0)
    assert len(ra.segments) == len(rb.segments)
    for f in ("weights", "S", "P", "M"):
        d = 0.0
        for a, b in zip(ra.segments, rb.segments):
            if len(a[f]) or len(b[f]):
                d = max(d, float(np.abs(np.asarray(a[f], np.float64) - np.asarray(b[f], np.float64)).max()))
        out[f] = d
    out["cached_equal"] = all(a["cached"] == b["cached"] for a, b in zip(ra.segments, rb.segments))
    return out


def recall_entropy(res):
    """Over segments with >= 2 cached memories: (mean normalized entropy
    H(w)/log(n), largest max(w) - min(w) of a segment, largest weight), or None."""
    ents, spread, wmax = [], [], []
    for r in res.segments:
        w = np.asarray(r["weights"], np.float64)
        if len(w) >= 2:
            p = w / w.sum()
            ents.append(float(-(p * np.log(np.maximum(p, 1e-300))).sum() / math.log(len(w))))
            spread.append(float(w.max() - w.min()))
            wmax.append(float(w.max()))
    return (float(np.mean(ents)), max(spread), max(wmax)) if ents else None


def self_check(h, tokens, res=None, chunkings=None, seed=0, verbose=True):
    """Invariants of docs/HMT.md / algorithms.md §1.11 on h.run(tokens).
    Returns (ok, res, info)."""
    ok = True
    info = {}

    def report(name, err, tol, at_least=False):
        nonlocal ok
        good = (err >= tol) if at_least else (err <= tol)
        ok &= bool(good)
        if verbose:
            print(f"    {name:58s} {err:.3e}  {'ok' if good else 'FAIL'} "
                  f"({'>=' if at_least else '<='} {tol:g})")

    def check(name, cond):
        nonlocal ok
        ok &= bool(cond)
        if verbose:
            print(f"    {name:58s} {'ok' if cond else 'FAIL'}")

    toks = np.asarray(tokens, np.int64)
    res = h.run(toks) if res is None else res
    report("logits finite, max |logit|", float(np.abs(res.logits).max()), 100.0)
    check("logits finite", np.isfinite(res.logits).all())
    segs = res.segments
    L, N, k = h.L, h.N, h.k
    if h.mode != "window":
        check("n_segments = ceil(n / L)", len(segs) == -(-len(toks) // L))
    if h.mode == "full":
        check("n = 0: P_0 = M_init, nothing cached",
              np.array_equal(segs[0]["P"], h.M_init) and segs[0]["cached"] == [])
        if len(segs) > 1:
            M0 = bf16_round(segs[0]["M"]) if h.bf16 else segs[0]["M"]
            check("n = 1: recall weight exactly 1", list(segs[1]["weights"]) == [1.0])
            check("n = 1: P_1 = M_0 exactly" + (" (bf16-rounded)" if h.bf16 else ""),
                  np.array_equal(segs[1]["P"], M0))
        check("FIFO: cached ids = the last N segment ids, oldest first",
              all(r["cached"] == list(range(max(0, n - N), n)) for n, r in enumerate(segs)))
        check("cache never exceeds N", max(len(r["cached"]) for r in segs) <= N)
        if h.bf16:
            check("bf16: P_n, w are bf16 values",
                  all(np.array_equal(bf16_round(r["P"]), r["P"]) and
                      np.array_equal(bf16_round(r["weights"]), r["weights"]) for r in segs[1:]))
        ent = recall_entropy(res)
        if ent is not None:
            info["entropy"] = ent
            report("recall spread: mean normalized entropy (not one-hot)", ent[0], 0.2, at_least=True)
            report("recall spread: mean normalized entropy (not uniform)", ent[0], 0.98)
            report("recall spread: some segment has max(w) - min(w)", ent[1], 0.1, at_least=True)
            report("recall spread: largest weight (not one-hot)", ent[2], 0.99)
        # causal and lookahead agree at n = 1 (and so on segments 0 and 1)
        other = HMT(h.m, h.a, mode="full", lookahead=not h.lookahead, L=h.L, k=h.k, N=h.N,
                    j=h.j, j_gen=h.j_gen, bf16=h.bf16)
        ro = other.run(toks[:min(len(toks), 2 * L)])
        if len(ro.segments) > 1:
            same = (np.array_equal(ro.segments[1]["P"], segs[1]["P"]) and
                    list(ro.segments[1]["weights"]) == list(segs[1]["weights"]))
            check("causal and lookahead give the same P_1", same)
            report("causal vs lookahead: logits of segments 0 and 1",
                   float(np.abs(ro.logits - res.logits[:len(ro.logits)]).max()), 0.0)
        # the other rule does change later segments (sanity: the rule matters)
        if len(segs) > 2:
            ro = other.run(toks)
            report("causal vs lookahead differ from segment 2 on (logits)",
                   float(np.abs(ro.logits[2 * L:] - res.logits[2 * L:]).max()), 1e-6, at_least=True)
    if h.mode == "rmt":
        check("rmt: P_0 = M_init, P_n = M_{n-1}",
              np.array_equal(segs[0]["P"], h.M_init) and
              all(np.array_equal(segs[n]["P"], segs[n - 1]["M"]) for n in range(1, len(segs))))
    if h.mode in ("full", "rmt"):
        # segment-token logits do not depend on the trailing P
        d = 0.0
        for n, r in enumerate(segs):
            x = toks[n * L:(n + 1) * L]
            sens = toks[max(0, n * L - k):n * L] if (n > 0 and k > 0) else toks[:0]
            lg, _ = h.main_pass(r["P"], sens, x, trailing=False)
            d = max(d, float(np.abs(lg - res.logits[n * L:n * L + len(x)]).max()))
        report("segment logits without the trailing P row", d, 1e-12)
    if h.mode == "segments":
        lg0, _, _ = h.m.forward(tokens=toks[:L])
        report("segments: segment 0 = plain backbone", float(np.abs(lg0 - res.logits[:L]).max()), 1e-12)
    if h.mode == "window":
        W = h.n_ctx
        lg0, _, _ = h.m.forward(tokens=toks[:W])
        report("window: first W rows = plain backbone", float(np.abs(lg0 - res.logits[:W]).max()), 1e-12)
        if len(toks) > W:
            lgw, _, _ = h.m.forward(tokens=toks[W - W // 2:W + 1])
            report("window: row W has exactly W/2 tokens of context",
                   float(np.abs(lgw[-1] - res.logits[W]).max()), 1e-12)
            lgx, _, _ = h.m.forward(tokens=toks[:W + 1][-W:])
            report("window: ... and differs from a W-1 context", float(np.abs(lgx[-1] - res.logits[W]).max()),
                   1e-6, at_least=True)
    # incremental Stream, several chunkings == whole text
    rng = np.random.default_rng(seed)
    if chunkings is None:
        cuts = sorted(set(rng.integers(1, len(toks), 4).tolist()))
        chunkings = [[1] * len(toks), np.diff([0] + cuts + [len(toks)]).tolist()]
    worst = 0.0
    for sizes in chunkings:
        st = Stream(h)
        p = 0
        for c in sizes:
            st.feed(toks[p:p + c])
            p += c
        st.flush()
        cmp = compare(res, st.result())
        check(f"Stream chunks {sizes if len(sizes) < 9 else '1 x %d' % len(sizes)}: same cached ids",
              cmp["cached_equal"])
        worst = max(worst, max(v for kk, v in cmp.items() if kk != "cached_equal"))
    report("Stream (incremental, chunked) == whole text", worst, 1e-10)
    info["chunk_diff"] = worst
    return ok, res, info


def f32_diff(model_path, adapter, res64, tokens, **kw):
    """Run the same HMT with llama_ref in float32 (and the recall in float32);
    max |difference| from the float64 result per field."""
    h32 = HMT(Model(model_path, dtype=np.float32), adapter, **kw)
    return compare(res64, h32.run(tokens))


def _demo():
    """Self-check on freshly generated models (tempdir)."""
    import tempfile
    from gen_adapter import make_adapter
    from gen_model import make_model
    tmp = tempfile.mkdtemp()
    mp = os.path.join(tmp, "llama.gguf")
    make_model(mp, arch="llama", n_vocab=320, n_embd=64, n_layer=2, n_head=4, n_head_kv=2, n_ff=160,
               n_ctx=128, seed=11)
    m = Model(mp)
    rng = np.random.default_rng(5)
    toks = rng.integers(0, m.n_vocab, 43)
    all_ok = True
    for name, akw, hkw in [
        ("full lookahead", dict(L=8, k=2, N=3, d_h=24), dict(mode="full")),
        ("full causal", dict(L=8, k=2, N=3, d_h=24, gen_summary_length=3), dict(mode="full", lookahead=False)),
        ("full bf16 linear", dict(L=7, k=3, N=10, d_h=16, bf16=True, scale="linear", ttype="bf16"),
         dict(mode="full")),
        ("rmt", dict(L=8, k=2, N=3, d_h=8), dict(mode="rmt")),
        ("segments", None, dict(mode="segments", L=8)),
        ("window", None, dict(mode="window", n_ctx=16)),
    ]:
        a = None
        if akw is not None:
            ap = os.path.join(tmp, "a.gguf")
            make_adapter(ap, d=64, seed=3, **akw)
            a = Adapter(ap)
        h = HMT(m, a, **hkw)
        print(f"  {name}: L={h.L} k={h.k} N={h.N} j={h.j} j_gen={h.j_gen} bf16={h.bf16}")
        ok, res, _ = self_check(h, toks)
        d = f32_diff(mp, a, res, toks, **hkw)
        print(f"    float32 vs float64: " + ", ".join(f"{kk} {v:.2e}" for kk, v in d.items()
                                                     if kk != "cached_equal"))
        all_ok &= ok
    return all_ok


if __name__ == "__main__":
    # r(.) matches tools/gguf_write.py's bf16 rounding on float32 input
    sys.path.insert(0, os.path.join(_HERE, "..", "..", "tools"))
    import gguf_write as gw
    x = (np.random.default_rng(0).standard_normal(100000) * 10.0 ** np.random.default_rng(1).integers(-5, 5, 100000)).astype(np.float32)
    x[:4] = [1.00390625, 1.01171875, -1.00390625, 0.0]   # exact ties (to even: down, up)
    assert np.array_equal(bf16_round(x), gw.bf16_to_f32(gw.bf16_bits(x)).reshape(x.shape))
    print("  bf16_round == gguf_write bf16 rounding (incl. ties)  ok")
    if len(sys.argv) > 1:
        import hmt_golden
        ok = hmt_golden.check_dir(sys.argv[1])
    else:
        ok = _demo()
    print("hmt_ref self-check", "PASSED" if ok else "FAILED")
    sys.exit(0 if ok else 1)
