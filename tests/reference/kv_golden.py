"""Golden cases for half-precision KV caches (HMT_P_KV_TYPE): the reference
forward of llama_ref.py with every new key (after RoPE) and value rounded
to F16 or BF16 before it enters the cache, as libhmt's cache stores them.

<name>.<case>.kv<type>.golden ("HMTG", golden.py) for a few test models
that cover the attention variants (GQA, q/k norms, soft-capping with
sliding windows, partial rotary), and kv-manifest.txt with, per file, the
max |dlogit| the rounding itself causes against the exact reference: the
accuracy cost of the type, independent of libhmt's code. Case L is a
300-slot text: a 280-row prompt, one decode step, then 19 rows; it is also
written for an F32 cache (kvf32: the exact reference), the one golden whose
F32 cache spans many of the K cache's 32-slot blocks."""
import os

import numpy as np

from golden import write_golden

# test models (make_testdata.MODELS names) and the KV types
KV_MODELS = ["llama-f32", "qwen3-f32", "gemma2-f32", "phi3-f32"]


def round_f16(x):
    """To IEEE half, ties to even, from the float32 value (as the C code
    rounds its float32 keys)."""
    return np.asarray(x).astype(np.float32).astype(np.float16).astype(x.dtype)


def round_bf16(x):
    """To bfloat16, ties to even, from the float32 value."""
    b = np.asarray(x).astype(np.float32).view(np.uint32).astype(np.uint64)
    b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16
    return b.astype(np.uint32).view(np.float32).astype(x.dtype)


KV_TYPES = {"f16": round_f16, "bf16": round_bf16}


def long_case(model, seed):
    """300 token rows: a 280-row prompt, one decode step, then 19 rows."""
    rng = np.random.default_rng(seed)
    toks = rng.integers(0, model.n_vocab, 300)
    pos = np.arange(300)
    return [dict(tokens=toks[:280], pos=pos[:280]), dict(tokens=toks[280:281], pos=pos[280:281]),
            dict(tokens=toks[281:], pos=pos[281:])]


def write_goldens(out, model_cls, cases_of, flatten):
    """model_cls(path): a reference model; cases_of(model, name): its golden
    cases by name; flatten(chunks, n_embd): golden.py's row layout.
    Returns the manifest lines written."""
    lines = ["# half-precision KV cache goldens (tests/reference/kv_golden.py): one file per",
             "# line; ref_kv_dlogit = max |dlogit| of the rounding against the exact reference."]
    for name in KV_MODELS:
        path = os.path.join(out, name + ".gguf")
        ref = model_cls(path)
        cases = dict(cases_of(ref, name))
        cases["L"] = long_case(ref, 77)
        for cname in ("A", "D", "L"):
            chunks = cases[cname]
            ref.kv_store = None
            exact, exact_hidden = ref.forward_chunks(chunks)
            tokens, pos, sizes, embd = flatten(chunks, ref.n_embd)
            if cname == "L":
                fname = f"{name}.L.kvf32.golden"
                write_golden(os.path.join(out, fname), tokens, pos, sizes, embd, exact, exact_hidden)
                lines.append(f"file={fname} model={name}.gguf kv_type=f32 rows={len(tokens)} ref_kv_dlogit=0")
            for tname, rnd in KV_TYPES.items():
                ref.kv_store = rnd
                lg, hd = ref.forward_chunks(chunks)
                fname = f"{name}.{cname}.kv{tname}.golden"
                write_golden(os.path.join(out, fname), tokens, pos, sizes, embd, lg, hd)
                dl = float(np.abs(lg - exact).max())
                assert dl > 0, f"{fname}: the rounding changed nothing"
                lines.append(f"file={fname} model={name}.gguf kv_type={tname} "
                             f"rows={len(tokens)} ref_kv_dlogit={dl:.2e}")
    with open(os.path.join(out, "kv-manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return lines
