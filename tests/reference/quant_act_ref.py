"""The reference forward as libhmt's decode kernels compute it on
block-quantized weights (docs/QUANTS.md): every matmul input row is first
quantized to 8-bit blocks with quants_ref.quantize_act (blocks of 32 for the
32-element weight types, 256 for the K-quants and IQ4_XS, none for
F32/F16/BF16), then multiplied in float64 with the exactly dequantized
weights. Attention, norms and everything else are llama_ref's.

    m = act_quantized_model("build/testdata/llama-q4km.gguf")
    logits, hidden = m.forward_chunks([dict(tokens=[1, 5, 9], pos=[0, 1, 2])])

`quant_act_ref.py DIR NAME...` prints, per model, how far this is from the
exact-weights reference (the activation-quantization effect a decode test
must allow for when it compares with the plain goldens): on the
QUANT_MODELS, 12 tokens, max |dlogit| 0.21-0.29 at logit std 3.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quants_ref as qr  # noqa: E402
from gguf_read import TENSOR_TYPES, GGUFFile  # noqa: E402
from llama_ref import Model  # noqa: E402


class _ActQuantized:
    """Stands for W.T in `h @ W.T`: quantizes each row of h first."""
    __array_ufunc__ = None  # make ndarray @ this defer to __rmatmul__

    def __init__(self, w, k):
        self.w, self.k = w, k

    @property
    def T(self):
        return self

    def __rmatmul__(self, h):
        if not self.k:
            return h @ self.w.T
        h2 = np.atleast_2d(np.asarray(h, np.float32))
        rows = []
        for r in h2:
            d, q, _ = qr.quantize_act(r, self.k)
            rows.append((d[:, None].astype(np.float64) * q).reshape(-1))
        return np.array(rows).reshape(np.shape(h)[:-1] + (-1,)) @ self.w.T


def act_quantized_model(path):
    m = Model(path)
    g = GGUFFile(path)

    def block(tname):
        return qr.act_block(TENSOR_TYPES[g.tensors[tname].type][0])

    for i, L in enumerate(m.layers):
        for key in list(L):
            tname = f"blk.{i}.{key}.weight"
            if tname in g.tensors and len(g.tensors[tname].ne) == 2:
                L[key] = _ActQuantized(L[key], block(tname))
    head = "output.weight" if "output.weight" in g.tensors else "token_embd.weight"
    m.output = _ActQuantized(m.output, block(head))
    return m


def main(argv):
    if len(argv) < 2:
        sys.exit("usage: quant_act_ref.py DIR NAME...")
    for name in argv[1:]:
        path = os.path.join(argv[0], name + ".gguf")
        exact, quant = Model(path), act_quantized_model(path)
        toks = np.random.default_rng(0).integers(0, exact.n_vocab, 12)
        lg, _ = exact.forward_chunks([dict(tokens=toks, pos=np.arange(12))])
        lq, _ = quant.forward_chunks([dict(tokens=toks, pos=np.arange(12))])
        print(f"{name:22s} max|dlogit| {np.abs(lq - lg).max():.3e}  logit std {lg.std():.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
