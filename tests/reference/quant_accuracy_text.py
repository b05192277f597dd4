"""Issue 13's accuracy measure on a trained model and real text: the Brown
model (models/brown-f16.gguf, docs/TRAINING.md) re-quantized to each weight
type (quants_ref.quantize, llama-quantize's choices and fallbacks as in
gen_model.tensor_qtype; F32 norms), evaluated by libhmt on held-out text
(models/heldout: the held-out documents tokenized and joined into one stream,
cut into WINDOWS texts of N_TOKENS = 512 tokens, each evaluated from position
0; 512 is twice the model's trained context, which does not matter here: the
measure compares libhmt's arithmetic with the reference's on the same
weights and positions, not the model's quality), against llama_ref.py on the dequantized weights
in float64 with exact activations: mean KL(reference || libhmt) and top-1
agreement, for the prompt path (one eval per document) and the decode path
(one token per eval).

    /usr/bin/python3 tests/reference/quant_accuracy_text.py [OUTDIR] [TYPE...]
"""
import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.join(_HERE, "..", "..")
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.join(_ROOT, "tools"))
sys.path.insert(0, os.path.join(_ROOT, "python"))

import gguf_write as gw  # noqa: E402
import hmt  # noqa: E402
import quants_ref as qr  # noqa: E402
from gen_model import QTYPES, MIXES, tensor_qtype  # noqa: E402
from gguf_read import GGUFFile  # noqa: E402
from llama_ref import Model  # noqa: E402
from quant_accuracy import kl_top1  # noqa: E402

BASE = os.path.join(_ROOT, "models", "brown-f16.gguf")
HELDOUT = os.path.join(_ROOT, "models", "heldout")
WINDOWS, N_TOKENS = 4, 512


def requantize(src, dst, wtype):
    g = GGUFFile(src)
    w = gw.GGUFWriter(alignment=g.alignment)
    for key, val in g.meta.items():
        if key == "general.alignment":
            continue
        vtype, elem = g.meta_type[key]
        w.add(key, val, vtype, elem)
    n_layer = g.meta["llama.block_count"]
    tied = "output.weight" not in g.tensors
    for name, t in g.tensors.items():
        a = g.tensor(name).astype(np.float32)
        if a.ndim == 1 or wtype in ("f16", "bf16", "f32"):
            w.add_tensor(name, a, {"f16": gw.F16, "bf16": gw.BF16}.get(wtype, gw.F32)
                         if a.ndim == 2 else gw.F32)
            continue
        layer = int(name.split(".")[1]) if name.startswith("blk.") else -1
        q = tensor_qtype(wtype, name, layer, n_layer, a.shape[-1], tied)
        if q not in ("F16", "F32") and a.shape[-1] % qr.TYPES[q].block_elems:
            q = "F16"  # llama-quantize's last fallback (ffn_down: rows of 688)
        if q in ("F16", "F32"):
            w.add_tensor(name, a, gw.F16 if q == "F16" else gw.F32)
        else:
            w.tensors.append((name, list(reversed(a.shape)), qr.TYPES[q].ggml_id,
                              qr.quantize(q, a)))
    w.write(dst)


def main(argv):
    out = argv[0] if argv else "/tmp/hmt-quant-accuracy-text"
    types = argv[1:] or ["f16", "bf16", "q8_0"] + sorted(QTYPES) + list(MIXES)
    os.makedirs(out, exist_ok=True)
    docs = sorted(os.listdir(HELDOUT))
    print(f"{'type':8s} {'prompt: max|dlogit|':>20s} {'mean KL':>9s} {'top-1':>6s}   "
          f"{'decode: max|dlogit|':>20s} {'mean KL':>9s} {'top-1':>6s}")
    for t in types:
        path = os.path.join(out, f"brown-{t}.gguf")
        requantize(BASE, path, t)
        ref_model = Model(path)
        res = {1: [], N_TOKENS: []}
        with hmt.Model(path) as m:
            stream = []
            for d in docs:
                if len(stream) >= WINDOWS * N_TOKENS:
                    break
                text = open(os.path.join(HELDOUT, d), encoding="utf-8").read()
                stream += list(m.tokenize(text, add_bos=True))
            if len(stream) < WINDOWS * N_TOKENS:
                raise SystemExit(f"held-out text has {len(stream)} tokens, "
                                 f"{WINDOWS * N_TOKENS} needed")
            seqs = [stream[i * N_TOKENS:(i + 1) * N_TOKENS] for i in range(WINDOWS)]
            refs = [ref_model.forward_chunks([dict(tokens=np.array(s), pos=np.arange(len(s)))])[0]
                    for s in seqs]
            for chunk in (N_TOKENS, 1):
                with hmt.Context(m, n_ctx=N_TOKENS, n_threads=2) as ctx:
                    for s, ref in zip(seqs, refs):
                        ctx.kv_clear()
                        got = []
                        for i in range(0, len(s), chunk):
                            part = [int(x) for x in s[i:i + chunk]]
                            ctx.eval(tokens=part, outputs=hmt.OUT_LOGITS)
                            got += [np.array(ctx.logits(r, copy=True), np.float64)
                                    for r in range(len(part))]
                        res[chunk].append((ref, np.array(got)))
        row = f"{t:8s}"
        for chunk in (N_TOKENS, 1):
            ref = np.concatenate([r for r, _ in res[chunk]])
            got = np.concatenate([g for _, g in res[chunk]])
            kl, top1 = kl_top1(ref, got)
            row += f" {np.abs(got - ref).max():20.2e} {kl:9.2e} {100 * top1:5.1f}%  "
        print(row, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
