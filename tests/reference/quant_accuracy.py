"""Accuracy of libhmt on quantized weights against the NumPy reference on the
dequantized weights (float64, exact activations), the measure of issue 13:
mean KL(reference || libhmt) and top-1 agreement over a 512-token sequence,
for the prompt path (chunks of 64 rows) and the decode path (one token per
eval), per weight type. Random-weight models of one shape (gen_model.py),
random tokens: a proxy for the issue's 512-token text on a real model.

    /usr/bin/python3 tests/reference/quant_accuracy.py [OUTDIR] [TYPE...]

Needs the built library (build/libhmt.so.1, found by the hmt package).
"""
import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.join(_HERE, "..", "..", "tools"))
sys.path.insert(0, os.path.join(_HERE, "..", "..", "python"))

import hmt  # noqa: E402
from gen_model import ALL_WTYPES, make_model  # noqa: E402
from llama_ref import Model  # noqa: E402

N_TOKENS = 512
SHAPE = dict(arch="llama", n_vocab=320, n_embd=256, n_layer=2, n_head=4, n_head_kv=2, n_ff=512,
             n_ctx=N_TOKENS, rope_base=10000.0, rms_eps=1e-5, seed=31)


def kl_top1(ref, got):
    ref = ref - ref.max(axis=1, keepdims=True)
    got = got - got.max(axis=1, keepdims=True)
    lp = ref - np.log(np.exp(ref).sum(axis=1, keepdims=True))
    lq = got - np.log(np.exp(got).sum(axis=1, keepdims=True))
    kl = (np.exp(lp) * (lp - lq)).sum(axis=1)
    return kl.mean(), (ref.argmax(axis=1) == got.argmax(axis=1)).mean()


def run(path, toks, chunk):
    with hmt.Model(path) as m, hmt.Context(m, n_ctx=N_TOKENS, n_threads=2) as ctx:
        out = []
        for i in range(0, len(toks), chunk):
            part = [int(t) for t in toks[i:i + chunk]]
            ctx.eval(tokens=part, outputs=hmt.OUT_LOGITS)
            out += [np.array(ctx.logits(r, copy=True), np.float64) for r in range(len(part))]
        return np.array(out)


def main(argv):
    out = argv[0] if argv else "/tmp/hmt-quant-accuracy"
    types = argv[1:] or [t for t in ALL_WTYPES if t != "f32"]
    os.makedirs(out, exist_ok=True)
    toks = np.random.default_rng(5).integers(0, SHAPE["n_vocab"], N_TOKENS)
    print(f"{'type':8s} {'prompt: max|dlogit|':>20s} {'mean KL':>9s} {'top-1':>6s}   "
          f"{'decode: max|dlogit|':>20s} {'mean KL':>9s} {'top-1':>6s}")
    for t in types:
        path = os.path.join(out, f"acc-{t}.gguf")
        make_model(path, wtype=t, **SHAPE)
        ref, _ = Model(path).forward_chunks([dict(tokens=toks, pos=np.arange(N_TOKENS))])
        row = f"{t:8s}"
        for chunk in (64, 1):
            got = run(path, toks, chunk)
            kl, top1 = kl_top1(ref, got)
            row += f" {np.abs(got - ref).max():20.2e} {kl:9.2e} {100 * top1:5.1f}%  "
        print(row, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
