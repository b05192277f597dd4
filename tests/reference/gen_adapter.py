"""Deterministic (seeded) writer of HMT adapter GGUF files, exactly as
docs/HMT.md "The adapter format" defines them. Standard library + NumPy;
written with tools/gguf_write.py.

Keys: hmt.version (u32 = 1), hmt.embedding_length (u32 d), hmt.segment_length
(u32 L), hmt.sensory_length (u32 k), hmt.summary_fraction (f32),
hmt.generation_summary_length (u32, only when given), hmt.cache_size (u32 N),
hmt.recall_scale (string "sqrt"/"linear"), hmt.recall_bf16 (bool); plus
general.architecture = "hmt".
Tensors (all of the chosen type F32 / F16 / BF16):
    hmt.summary_prompt  [d]            T        ~ N(0, 1)   (like an embedding row)
    hmt.memory_init     [d]            M_init   ~ N(0, 1)
    hmt.recall.wq       PyTorch [d_h, d] (GGUF ne = [d, d_h])   ~ N(0, (g/sqrt(d))^2)
    hmt.recall.wk       PyTorch [d_h, d]                         ~ N(0, (g/sqrt(d))^2)
The recall gain g (default 1.4; multiplied by d_h^(1/4) for the "linear"
scale, which divides the scores by d_h instead of sqrt(d_h)) makes q and K
entries ~N(0, g^2) for unit-RMS inputs (final-norm hidden states), so the
recall softmax over the memories of the small test models is neither uniform
nor one-hot (hmt_ref.py's self-check measures its entropy).

    make_adapter(path, d=64, L=8, k=2, N=3, d_h=24, seed=1, ...) -> dict
    gen_adapter.py OUT.gguf --model M.gguf | --d 64  --L 8 --k 2 --N 3 --dh 24 [...]
"""
import argparse
import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "..", "tools"))
import gguf_write as gw  # noqa: E402

TTYPES = {"f32": gw.F32, "f16": gw.F16, "bf16": gw.BF16}


def _stored(a, ttype):
    """The float32 values a reader gets back for array a stored as ttype."""
    a = np.asarray(a, np.float32)
    if ttype == "f32":
        return a.copy()
    if ttype == "f16":
        return a.astype(np.float16).astype(np.float32)
    return gw.bf16_to_f32(gw.bf16_bits(a)).reshape(a.shape)


def make_adapter(path, d, L, N, d_h, k=0, seed=1, fraction=0.5, gen_summary_length=None,
                 scale="sqrt", bf16=False, ttype="f32", gain=1.4, architecture=True):
    """Write an adapter file; returns dict with the keys' values and the
    tensors as a reader dequantizes them (float32, PyTorch shapes)."""
    if scale not in ("sqrt", "linear"):
        raise ValueError("scale must be 'sqrt' or 'linear'")
    if ttype not in TTYPES:
        raise ValueError(f"ttype must be one of {sorted(TTYPES)}")
    if not (1 <= L <= 1048576 and 0 <= k <= L and 1 <= N <= 65536 and d_h >= 1 and 0 < fraction <= 1):
        raise ValueError("hyperparameter out of range")
    if gen_summary_length is not None and not 1 <= gen_summary_length <= L:
        raise ValueError("generation_summary_length out of range")
    rng = np.random.default_rng(seed)
    T = rng.standard_normal(d).astype(np.float32)
    M0 = rng.standard_normal(d).astype(np.float32)
    g = gain * (d_h ** 0.25 if scale == "linear" else 1.0)
    Wq = (rng.standard_normal((d_h, d)) * (g / np.sqrt(d))).astype(np.float32)
    Wk = (rng.standard_normal((d_h, d)) * (g / np.sqrt(d))).astype(np.float32)

    w = gw.GGUFWriter()
    if architecture:
        w.add("general.architecture", "hmt")
    w.add("hmt.version", 1, gw.UINT32)
    w.add("hmt.embedding_length", int(d), gw.UINT32)
    w.add("hmt.segment_length", int(L), gw.UINT32)
    w.add("hmt.sensory_length", int(k), gw.UINT32)
    w.add("hmt.summary_fraction", float(fraction), gw.FLOAT32)
    if gen_summary_length is not None:
        w.add("hmt.generation_summary_length", int(gen_summary_length), gw.UINT32)
    w.add("hmt.cache_size", int(N), gw.UINT32)
    w.add("hmt.recall_scale", scale, gw.STRING)
    w.add("hmt.recall_bf16", bool(bf16), gw.BOOL)
    tt = TTYPES[ttype]
    w.add_tensor("hmt.summary_prompt", T, tt)
    w.add_tensor("hmt.memory_init", M0, tt)
    w.add_tensor("hmt.recall.wq", Wq, tt)
    w.add_tensor("hmt.recall.wk", Wk, tt)
    w.write(path)
    return dict(d=d, L=L, k=k, N=N, d_h=d_h, fraction=fraction,
                gen_summary_length=gen_summary_length, scale=scale, bf16=bool(bf16), ttype=ttype,
                T=_stored(T, ttype), M_init=_stored(M0, ttype),
                Wq=_stored(Wq, ttype), Wk=_stored(Wk, ttype))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="base model GGUF (d is read from it)")
    src.add_argument("--d", type=int, help="embedding width d")
    ap.add_argument("--L", type=int, required=True, help="segment length")
    ap.add_argument("--k", type=int, default=0, help="sensory length")
    ap.add_argument("--N", type=int, required=True, help="cache size")
    ap.add_argument("--dh", type=int, required=True, help="recall width d_h")
    ap.add_argument("--fraction", type=float, default=0.5)
    ap.add_argument("--gen-summary-length", type=int, default=None)
    ap.add_argument("--scale", choices=["sqrt", "linear"], default="sqrt")
    ap.add_argument("--bf16", action="store_true", help="hmt.recall_bf16 = true")
    ap.add_argument("--type", choices=sorted(TTYPES), default="f32")
    ap.add_argument("--gain", type=float, default=1.4)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    d = a.d
    if a.model:
        sys.path.insert(0, _HERE)
        from gguf_read import GGUFFile
        g = GGUFFile(a.model)
        d = int(g.meta[g.meta["general.architecture"] + ".embedding_length"])
    make_adapter(a.out, d=d, L=a.L, k=a.k, N=a.N, d_h=a.dh, seed=a.seed, fraction=a.fraction,
                 gen_summary_length=a.gen_summary_length, scale=a.scale, bf16=a.bf16,
                 ttype=a.type, gain=a.gain)
    print(f"wrote {a.out}: d={d} L={a.L} k={a.k} N={a.N} d_h={a.dh} scale={a.scale} "
          f"bf16={a.bf16} type={a.type}")


if __name__ == "__main__":
    main()
