"""The PyTorch trainer's model (tools/hmt_torch.py) against the NumPy oracle
(tests/reference/hmt_ref.py) on a small random model and adapter, float64:
logits of every token in modes full, rmt and segments must agree to 1e-9,
on a llama model and on the test data's qwen2 (biases), qwen3 (q/k norms,
head size 32), Llama 3.1-style rope_freqs, YaRN, partial-rotary shapes,
gemma2 / gemma3 (windows, soft-capping, post-norms, scaled inputs), phi3
(fused weights, partial rotary, both LongRoPE tables, window) and a
Mistral-style sliding-window llama.
Needs python3-torch; not part of `make test`.

    /usr/bin/python3 tests/tools/check_trainer_vs_ref.py
"""
import os
import sys
import tempfile

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import hmt_ref  # noqa: E402
from gen_adapter import make_adapter  # noqa: E402
from gen_model import make_model  # noqa: E402
from hmt_torch import HMT, load_gguf  # noqa: E402


def torch_logits(m, p, hp, mode, toks, L):
    h = HMT(m, p, L, hp["k"] if hp else 0, hp["N"] if hp else 1,
            hp["fraction"] if hp else 0.5, mode=mode)
    st = h.new_state()
    x = torch.tensor(toks)[None]
    out = []
    for s in range(0, x.shape[1], L):
        lg, st = h.segment(st, x[:, s:s + L])
        out.append(lg[0])
    return torch.cat(out).numpy()


MODELS = [  # make_model arguments (as tests/reference/make_testdata.py's MODELS)
    ("llama", dict(arch="llama", tied=True, wtype="f16", seed=3)),
    ("qwen2", dict(arch="qwen2", n_vocab=330, rope_base=1e6, seed=4)),
    ("qwen3", dict(arch="qwen3", n_vocab=330, head_dim=32, rope_base=1e6, seed=5)),
    ("llama3-rope", dict(arch="llama", seed=6, rope_scaling=dict(
        rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
        original_max_position_embeddings=16))),
    ("qwen2-yarn", dict(arch="qwen2", n_vocab=330, seed=7, rope_scaling=dict(
        rope_type="yarn", factor=4.0, original_max_position_embeddings=16))),
    ("llama-partial", dict(arch="llama", n_rot=8, seed=8)),
    # gemma: windows (4) shorter than a segment's pass, soft-capping, scaled inputs
    ("gemma2", dict(arch="gemma2", n_layer=3, seed=9, gemma=dict(
        sliding_window=4, attn_logit_softcapping=5.0, final_logit_softcapping=6.0))),
    ("gemma3", dict(arch="gemma3", n_layer=7, head_dim=32, rope_base=1e6, seed=10,
                    gemma=dict(sliding_window=4), rope_scaling=dict(rope_type="linear", factor=4.0))),
    # phi3: fused attn_qkv / ffn_up, 12 of 16 dims rotate, window 5 on every layer;
    # LongRoPE whose original context (16, 64) is shorter / longer than the
    # adapter's 22-slot pass: the long / the short factors
    ("phi3-long", dict(arch="phi3", n_rot=12, seed=11, sliding_window=5, rope_scaling=dict(
        rope_type="longrope", original_max_position_embeddings=16,
        short_factor=[1.0, 1.1, 1.2, 1.3, 1.4, 1.5], long_factor=[1.0, 1.5, 2.0, 3.0, 4.0, 6.0]))),
    ("phi3-short", dict(arch="phi3", n_rot=12, seed=12, rope_scaling=dict(
        rope_type="longrope", original_max_position_embeddings=64,
        short_factor=[1.0, 1.1, 1.2, 1.3, 1.4, 1.5], long_factor=[1.0, 1.5, 2.0, 3.0, 4.0, 6.0]))),
    # Mistral-style llama: a window of 6 on every layer
    ("llama-swa", dict(arch="llama", seed=13, sliding_window=6)),
]


def main():
    d = tempfile.mkdtemp()
    worst = 0.0
    for name, kw in MODELS:
        mp, ap = os.path.join(d, name + ".gguf"), os.path.join(d, "a.gguf")
        make_model(mp, **dict(dict(n_vocab=320, n_embd=64, n_layer=2, n_head=4, n_head_kv=2,
                                   n_ff=160, n_ctx=128), **kw))
        make_adapter(ap, d=64, L=16, k=4, N=3, d_h=24, seed=5)
        m, p, hp = load_gguf(mp, ap, dtype=torch.float64)
        rm, ra = hmt_ref.Model(mp), hmt_ref.Adapter(ap)
        toks = np.random.default_rng(0).integers(3, 320, 120).tolist()
        with torch.no_grad():
            for mode in ("full", "rmt", "segments"):
                ref = hmt_ref.HMT(rm, ra, mode=mode).run(toks).logits
                # libhmt's segments mode runs the backbone in L slots, full and rmt
                # in k + L + 2: LongRoPE picks its table by that (load_gguf's n_ctx)
                mm = load_gguf(mp, ap, dtype=torch.float64, n_ctx=ra.L)[0] if mode == "segments" else m
                got = torch_logits(mm, p, hp, mode, toks, ra.L)
                err = float(np.abs(ref - got).max())
                worst = max(worst, err)
                print(f"{name:14s} {mode:9s} max |torch - ref| = {err:.3e}")
    ok = worst < 1e-9
    print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
