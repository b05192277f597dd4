"""Generate every file the C test suite reads into the directory given as
argv[1]: small random-weight models and golden outputs. Deterministic.

    /usr/bin/python3 tests/reference/make_testdata.py build/testdata/

Writes, per model M (see MODELS): M.gguf, and golden files M.A.golden ..
M.D.golden (format: golden.py / README.md), plus manifest.txt (one line per
model, key=value), and prints a summary. Then the HMT cases of hmt_golden.py:
<case>.adapter.gguf, <case>.hmt.golden ("HMTH") and hmt-manifest.txt. Golden values are
computed in float64 by llama_ref.py from the same GGUF file (dequantized
weights). The run also self-checks: GGUF read-back, tokenizer consistency,
incremental == batch, and the float32-vs-float64 difference of the reference
(the error budget the float32 C code must meet).
"""
import os
import sys
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.join(_HERE, "..", "..", "tools"))

from gen_model import make_model  # noqa: E402
from gguf_read import GGUFFile  # noqa: E402
from golden import read_golden, write_golden  # noqa: E402
from hmt_golden import make_all as make_hmt_goldens  # noqa: E402
from sink_ref import make_all as make_sink_goldens  # noqa: E402
import kv_golden  # noqa: E402
from llama_ref import Model, hf_rope  # noqa: E402

# Phi-3-style LongRoPE for 6 rotated pairs: short factors near 1, long ones
# growing to 6 (as Phi-3's do, by frequency), original context 64
PHI3_LONGROPE = dict(rope_type="longrope", original_max_position_embeddings=64,
                     short_factor=[1.0, 1.02, 1.05, 1.1, 1.2, 1.3],
                     long_factor=[1.0, 1.25, 1.9, 3.0, 4.5, 6.0])

# name -> make_model keyword arguments (shapes kept small: the whole run is ~seconds)
MODELS = [
    ("llama-f32", dict(arch="llama", n_vocab=320, n_embd=64, n_layer=2, n_head=4, n_head_kv=2,
                       n_ff=160, n_ctx=128, rope_base=10000.0, rms_eps=1e-5, wtype="f32", seed=11)),
    ("llama-tied-f16", dict(arch="llama", n_vocab=320, n_embd=64, n_layer=2, n_head=4, n_head_kv=2,
                            n_ff=192, n_ctx=128, rope_base=10000.0, rms_eps=1e-5, tied=True,
                            wtype="f16", seed=12)),
    # GGUF version 2 file; GQA 4:1
    ("llama-bf16", dict(arch="llama", n_vocab=352, n_embd=64, n_layer=2, n_head=4, n_head_kv=1,
                        n_ff=128, n_ctx=128, rope_base=10000.0, rms_eps=1e-6, wtype="bf16",
                        seed=13, version=2)),
    ("llama-q8", dict(arch="llama", n_vocab=320, n_embd=96, n_layer=2, n_head=6, n_head_kv=2,
                      n_ff=192, n_ctx=128, rope_base=10000.0, rms_eps=1e-5, wtype="q8_0", seed=14)),
    # q/k/v biases, NEOX rope, gpt2 tokenizer, GQA 4:1; no vocab_size / rope.dimension_count keys
    ("qwen2-f32", dict(arch="qwen2", n_vocab=400, n_embd=128, n_layer=2, n_head=8, n_head_kv=2,
                       n_ff=256, n_ctx=256, rope_base=1000000.0, rms_eps=1e-6, wtype="f32",
                       seed=15)),
    ("qwen2-tied-f16", dict(arch="qwen2", n_vocab=330, n_embd=64, n_layer=2, n_head=4, n_head_kv=2,
                            n_ff=160, n_ctx=128, rope_base=1000000.0, rms_eps=1e-6, tied=True,
                            wtype="f16", seed=16)),
    # n_head_kv == n_head; general.alignment = 64
    ("llama-mha-f32", dict(arch="llama", n_vocab=320, n_embd=64, n_layer=2, n_head=4, n_head_kv=4,
                           n_ff=160, n_ctx=128, rope_base=10000.0, rms_eps=1e-5, wtype="f32",
                           seed=17, alignment=64)),
    # head_dim 128
    ("llama-hd128-f32", dict(arch="llama", n_vocab=320, n_embd=256, n_layer=2, n_head=2,
                             n_head_kv=1, n_ff=384, n_ctx=256, rope_base=500000.0, rms_eps=1e-5,
                             wtype="f32", seed=18)),
    # RoPE variants (issue 15). pos_stride multiplies every golden position, so
    # the cases reach far past the original context (64) and every regime of
    # each scaling is exercised (head_dim 16: pairs with wavelengths 6 ... 2e4).
    # Llama 3.1-style: rope_freqs.weight (pairs 0 kept, 1-2 smoothed, 3-7 / 8)
    ("llama3-rope-f32", dict(arch="llama", n_vocab=320, n_embd=64, n_layer=2, n_head=4,
                             n_head_kv=2, n_ff=160, n_ctx=256, rope_base=10000.0, rms_eps=1e-5,
                             wtype="f32", seed=31, pos_stride=53,
                             rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                               high_freq_factor=4.0,
                                               original_max_position_embeddings=64))),
    ("llama-linear-f16", dict(arch="llama", n_vocab=320, n_embd=64, n_layer=2, n_head=4,
                              n_head_kv=2, n_ff=160, n_ctx=256, rope_base=10000.0, rms_eps=1e-5,
                              wtype="f16", seed=32, pos_stride=29,
                              rope_scaling=dict(rope_type="linear", factor=4.0))),
    # YaRN: ramp over pairs 0..3 (corr dims 0, 3), mscale 1 + 0.1 ln 4
    ("qwen2-yarn-f32", dict(arch="qwen2", n_vocab=330, n_embd=64, n_layer=2, n_head=4,
                            n_head_kv=2, n_ff=160, n_ctx=256, rope_base=10000.0, rms_eps=1e-6,
                            wtype="f32", seed=33, pos_stride=41,
                            rope_scaling=dict(rope_type="yarn", factor=4.0,
                                              original_max_position_embeddings=64))),
    # partial rotary: 8 of 16 dims rotate, in NEOX and in adjacent-pair mode
    ("qwen2-partial-f32", dict(arch="qwen2", n_vocab=330, n_embd=64, n_layer=2, n_head=4,
                               n_head_kv=2, n_ff=160, n_ctx=128, rope_base=10000.0, rms_eps=1e-6,
                               wtype="f32", seed=34, n_rot=8, pos_stride=7)),
    ("llama-partial-f32", dict(arch="llama", n_vocab=320, n_embd=64, n_layer=2, n_head=4,
                               n_head_kv=2, n_ff=160, n_ctx=128, rope_base=10000.0, rms_eps=1e-5,
                               wtype="f32", seed=35, n_rot=8, pos_stride=5)),
    # qwen3: per-head q/k RMSNorm, head_dim 32 != n_embd / n_head (key_length)
    ("qwen3-f32", dict(arch="qwen3", n_vocab=330, n_embd=64, n_layer=2, n_head=4, n_head_kv=2,
                       head_dim=32, n_ff=160, n_ctx=256, rope_base=1000000.0, rms_eps=1e-6,
                       wtype="f32", seed=36)),
    # gemma2: sliding window 4 on layers 0 and 2 (the 11-token cases reach
    # past it), soft-capping of the scores (5) and logits (6), GELU-tanh,
    # post-norms, inputs scaled by sqrt(d), tied head, NEOX RoPE
    ("gemma2-f32", dict(arch="gemma2", n_vocab=320, n_embd=64, n_layer=3, n_head=4, n_head_kv=2,
                        n_ff=160, n_ctx=128, rope_base=10000.0, rms_eps=1e-6, wtype="f32",
                        seed=37, gemma=dict(sliding_window=4, attn_logit_softcapping=5.0,
                                            final_logit_softcapping=6.0))),
    # gemma3: 7 layers (0-4 and 6 slide with window 4 and local base 10000;
    # layer 5 global, base 1e6, linear factor 4), q/k norms, head size 32
    # != d / heads, token rows scaled (caller embeddings not), positions x 7
    # phi3 (issue 15): fused attn_qkv and gate|up ffn_up, NEOX RoPE on 12 of 16
    # dims (partial rotary), LongRoPE (original context 64, context 256: the
    # goldens use the long factors, <name>.S.golden the short ones at n_ctx
    # 64), attn_factor sqrt(1 + ln 4 / ln 64), sliding window 5 on every layer
    ("phi3-f32", dict(arch="phi3", n_vocab=320, n_embd=64, n_layer=2, n_head=4, n_head_kv=2,
                      n_ff=160, n_ctx=256, rope_base=10000.0, rms_eps=1e-5, wtype="f32", seed=39,
                      n_rot=12, pos_stride=13, sliding_window=5, rope_scaling=PHI3_LONGROPE)),
    # phi3 with separate attn_q/k/v (llama.cpp loads either form), tied head, F16,
    # whole-head rotary, no LongRoPE, no window
    ("phi3-split-f16", dict(arch="phi3", n_vocab=320, n_embd=64, n_layer=2, n_head=4,
                            n_head_kv=4, n_ff=128, n_ctx=128, rope_base=10000.0, rms_eps=1e-5,
                            wtype="f16", tied=True, seed=41, fused_qkv=False)),
    # Mistral-style llama: a window of 4 slots on every layer
    ("llama-swa-f32", dict(arch="llama", n_vocab=320, n_embd=64, n_layer=2, n_head=4,
                           n_head_kv=2, n_ff=160, n_ctx=128, rope_base=10000.0, rms_eps=1e-5,
                           wtype="f32", seed=40, sliding_window=4)),
    ("gemma3-f32", dict(arch="gemma3", n_vocab=320, n_embd=64, n_layer=7, n_head=4, n_head_kv=2,
                        head_dim=32, n_ff=160, n_ctx=256, rope_base=1000000.0, rms_eps=1e-6,
                        wtype="f32", seed=38, pos_stride=7, gemma=dict(sliding_window=4),
                        rope_scaling=dict(rope_type="linear", factor=4.0))),
    # 8 query heads on one KV head (as TinyLlama's groups of 8): a decode
    # step takes the group's heads in two kernel calls of 4 (attention.c)
    ("llama-gqa8-f32", dict(arch="llama", n_vocab=320, n_embd=128, n_layer=2, n_head=8,
                            n_head_kv=1, n_ff=160, n_ctx=128, rope_base=10000.0, rms_eps=1e-5,
                            wtype="f32", seed=42)),
]

MANIFEST_KEYS = ["name", "file", "arch", "n_vocab", "n_embd", "n_layer", "n_head", "n_head_kv",
                 "n_ff", "n_ctx_train", "head_dim", "n_params", "tied", "wtype", "tokenizer",
                 "bos", "eos", "rope_base", "rms_eps", "gguf_version", "alignment"]


def verify_model(path, info):
    """Read the file back with the independent reader and check it."""
    g = GGUFFile(path)
    arch = info["arch"]
    m = g.meta
    assert g.version == info["gguf_version"] and g.alignment == info["alignment"]
    assert m["general.architecture"] == arch
    for key, field in [("embedding_length", "n_embd"), ("block_count", "n_layer"),
                       ("feed_forward_length", "n_ff"), ("attention.head_count", "n_head"),
                       ("attention.head_count_kv", "n_head_kv"), ("context_length", "n_ctx_train")]:
        assert m[f"{arch}.{key}"] == info[field], key
    toks = m["tokenizer.ggml.tokens"]
    assert len(toks) == info["n_vocab"] == len(m["tokenizer.ggml.token_type"])
    assert len(set(toks)) == len(toks)
    tt = m["tokenizer.ggml.token_type"]
    if m["tokenizer.ggml.model"] == "llama" and m.get("tokenizer.ggml.add_space_prefix") is False:
        # Gemma's layout (gen_model.GEMMA_SPECIALS)
        assert toks[:6] == ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
        assert list(tt[:6]) == [3, 3, 3, 2, 3, 3] and len(m["tokenizer.ggml.scores"]) == len(toks)
        assert toks[6:262] == [f"<0x{b:02X}>" for b in range(256)] and set(tt[6:262]) == {6}
    elif m["tokenizer.ggml.model"] == "llama":
        assert len(m["tokenizer.ggml.scores"]) == len(toks)
        assert toks[:3] == ["<unk>", "<s>", "</s>"] and list(tt[:3]) == [2, 3, 3]
        assert toks[3:259] == [f"<0x{b:02X}>" for b in range(256)] and set(tt[3:259]) == {6}
    else:
        idx = {t: i for i, t in enumerate(toks)}
        for mg in m["tokenizer.ggml.merges"]:
            a, b = mg.split(" ")
            assert a in idx and b in idx and a + b in idx, mg
            assert idx[a] < idx[a + b] and idx[b] < idx[a + b]
        assert m["tokenizer.ggml.pre"] == "qwen2"
        assert toks[m["tokenizer.ggml.eos_token_id"]] == "<|im_end|>"
    emb = g.tensor("token_embd.weight")
    assert ("rope_freqs.weight" in g.tensors) == (info["rope_scaling"] == "llama3")
    assert ("rope_factors_long.weight" in g.tensors) == (info["rope_scaling"] == "longrope")
    assert emb.shape == (info["n_vocab"], info["n_embd"]) and np.isfinite(emb).all()
    assert ("output.weight" in g.tensors) == (not info["tied"])
    n_params = sum(int(np.prod(t.ne)) for t in g.tensors.values())
    assert n_params == info["n_params"]
    hd = info["head_dim"]
    assert g.tensor("blk.0.ffn_down.weight").shape == (info["n_embd"], info["n_ff"])
    if arch == "phi3":   # fused gate|up, q|k|v fused or not (llama.cpp's phi3 shapes)
        assert g.tensors["blk.0.ffn_up.weight"].ne == [info["n_embd"], 2 * info["n_ff"]]
        assert "blk.0.ffn_gate.weight" not in g.tensors
        if "blk.0.attn_qkv.weight" in g.tensors:
            assert g.tensors["blk.0.attn_qkv.weight"].ne == [
                info["n_embd"], (info["n_head"] + 2 * info["n_head_kv"]) * hd]
            assert "blk.0.attn_q.weight" not in g.tensors
            return
    q = g.tensor("blk.0.attn_q.weight")
    k = g.tensor("blk.0.attn_k.weight")
    assert q.shape == (info["n_head"] * hd, info["n_embd"])
    assert k.shape == (info["n_head_kv"] * hd, info["n_embd"])
    assert g.tensors["blk.0.attn_q.weight"].ne == [info["n_embd"], info["n_head"] * hd]


def check_rope_vs_hf(ref, kw):
    """The reference's RoPE table (from the GGUF, as llama.cpp reads it)
    against Hugging Face's formulas for the same config (llama_ref.hf_rope),
    so the GGUF form and the HF form are the same model."""
    rs = kw.get("rope_scaling")
    kind = rs["rope_type"] if rs else None
    # LongRoPE: both tables (the model's context, 256, takes the long one)
    tables = ([(ref.long_freq, ref.n_ctx_train), (ref.short_freq, 0)] if kind == "longrope"
              else [(ref.inv_freq, 0)])
    for table, seq_len in tables:
        inv, att = hf_rope(rs, ref.rope_base, ref.n_rot, seq_len=seq_len, max_pos=ref.n_ctx_train)
        err = np.abs(table / inv - 1).max()
        # float32 rope_freqs.weight / rope_factors: 1e-7 relative
        assert err < 1e-6 and abs(ref.mscale - att) < 1e-6, (rs, err, ref.mscale, att)
    assert kind != "longrope" or ref.inv_freq is ref.long_freq
    assert ref.rope_kind == {"llama3": "linear", "longrope": "linear", None: "linear"}.get(kind, kind)


def sensitivity(ref, path, chunks):
    """For a model with a RoPE variant or q/k norms: max |dlogit| of case D
    against the same weights without it (plain RoPE over the whole head, no
    q/k norm), which must be >> the C tolerance (1e-4) for the golden test to
    show the variant is implemented. Returns (what, difference) or None."""
    plain = Model(path)
    what = []
    if ref.rope_kind != "linear" or not np.allclose(
            ref.inv_freq, ref.rope_base ** (-2 * np.arange(ref.n_rot // 2) / ref.n_rot),
            rtol=1e-12) or ref.mscale != 1.0:
        what.append("RoPE scaling")
    if ref.n_rot != ref.head_dim:
        what.append("partial rotary")
    if ref.arch == "qwen3":
        what.append("q/k norms")
        for L in plain.layers:
            L["attn_q_norm"] = L["attn_k_norm"] = None
    d = 0.0
    if what:
        shared = plain.inv_freq_swa is plain.inv_freq
        plain.n_rot = plain.head_dim
        plain.inv_freq = plain.rope_base ** (-2 * np.arange(plain.n_rot // 2) / plain.n_rot)
        plain.inv_freq_swa = plain.inv_freq if shared else plain.inv_freq_swa
        plain.mscale = 1.0
        d = float(np.abs(plain.forward_chunks(chunks)[0] - ref.forward_chunks(chunks)[0]).max())
        assert d > 1e-2, (path, what, d)
    what += gemma_sensitivity(ref, path, chunks)
    what += window_sensitivity(ref, path, chunks)
    if not what:
        return None
    return " + ".join(what), d


def window_sensitivity(ref, path, chunks):
    """Mistral-style window (llama, qwen2, phi3) and LongRoPE's choice of
    table: each must move case D's logits by > 1e-2 (the cases reach past
    the window). Returns ["feature |dlogit|", ...]."""
    what = []
    if ref.gelu:
        return what
    ld = ref.forward_chunks(chunks)[0]
    alts = []
    if ref.n_swa:
        alt = Model(path)
        alt.swa_layers = [False] * alt.n_layer
        alts.append(("sliding window", alt))
    if ref.long_freq is not None:
        alt = Model(path)
        alt.use_context(alt.n_ctx_orig)
        alts.append(("long vs short factors", alt))
    for name, alt in alts:
        d = float(np.abs(alt.forward_chunks(chunks)[0] - ld).max())
        assert d > 1e-2, (path, name, d)
        what.append(f"{name} {d:.1f}")
    return what


def gemma_sensitivity(ref, path, chunks):
    """Gemma: each of its features on its own must move case D's logits by
    > 1e-2. Returns ["feature |dlogit|", ...] ([] for other archs)."""
    what = []
    if ref.gelu:
        ld = ref.forward_chunks(chunks)[0]
        feats = {"sliding window": lambda m: setattr(m, "swa_layers", [False] * m.n_layer),
                 "attention soft-capping": lambda m: setattr(m, "attn_softcap", 0.0),
                 "final soft-capping": lambda m: setattr(m, "final_softcap", 0.0),
                 "local RoPE base": lambda m: setattr(m, "inv_freq_swa", m.inv_freq),
                 "post-norms": lambda m: [L.update(post_attention_norm=None, post_ffw_norm=None)
                                          for L in m.layers],
                 "q/k norms": lambda m: [L.update(attn_q_norm=None, attn_k_norm=None)
                                         for L in m.layers]}
        for name, off in feats.items():
            alt = Model(path)
            if name == "q/k norms" and alt.layers[0]["attn_q_norm"] is None:
                continue
            if name in ("attention soft-capping", "final soft-capping") and not alt.attn_softcap:
                continue
            if name == "local RoPE base" and alt.arch != "gemma3":
                continue
            off(alt)
            d = float(np.abs(alt.forward_chunks(chunks)[0] - ld).max())
            assert d > 1e-2, (path, name, d)
            what.append(f"{name} {d:.1f}")
    return what


def cases(model, seed, pos_stride=1):
    """The four golden cases as lists of chunks {tokens|embd, pos} (every
    position multiplied by pos_stride)."""
    rng = np.random.default_rng(seed)
    nv, d = model.n_vocab, model.n_embd
    bos = int(model.meta.get("tokenizer.ggml.bos_token_id", 1))
    toks = rng.integers(0, nv, 11)
    toks[0], toks[5], toks[8] = bos, nv - 1, 0           # include both id extremes
    pos = np.arange(11)
    embd = rng.standard_normal((5, d)) * 0.5
    toks_c = rng.integers(0, nv, 3)
    toks_d = rng.integers(0, nv, 6)
    pos_d = np.array([0, 2, 7, 3, 12, 5])
    pos, pos_d, s = pos * pos_stride, pos_d * pos_stride, pos_stride
    return {
        "A": [dict(tokens=toks, pos=pos)],
        "B": [dict(tokens=toks[:4], pos=pos[:4]), dict(tokens=toks[4:5], pos=pos[4:5]),
              dict(tokens=toks[5:], pos=pos[5:])],
        "C": [dict(embd=embd, pos=np.arange(5) * s), dict(tokens=toks_c, pos=np.arange(5, 8) * s)],
        "D": [dict(tokens=toks_d[:4], pos=pos_d[:4]), dict(tokens=toks_d[4:], pos=pos_d[4:])],
    }


def model_cases(model, name):
    """The golden cases of the test model called name (its seed and
    position stride as main gives them)."""
    mi = [n for n, _ in MODELS].index(name)
    return cases(model, 1000 + mi, dict(MODELS[mi][1]).get("pos_stride", 1))


def flatten(chunks, n_embd):
    tokens, pos, sizes, embd = [], [], [], []
    for c in chunks:
        if c.get("tokens") is not None:
            tokens += list(map(int, c["tokens"]))
            n = len(c["tokens"])
        else:
            e = np.asarray(c["embd"]).reshape(-1, n_embd)
            embd.append(e)
            n = e.shape[0]
            tokens += [-1] * n
        pos += list(map(int, c["pos"]))
        sizes.append(n)
    embd = np.concatenate(embd) if embd else None
    return tokens, pos, sizes, embd


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_testdata.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    lines = ["# libhmt test models (tests/reference/make_testdata.py). One model per line,",
             "# space-separated key=value; '#' lines are comments; ignore unknown keys.",
             "# n_params = total elements of every tensor in the file (tied head counted once).",
             "# ref_f32_dlogit / ref_f32_dhidden: max |float32 - float64| of the NumPy",
             "# reference over the golden cases (the float32 error floor)."]
    worst = {}
    for mi, (name, kw) in enumerate(MODELS):
        path = os.path.join(out, name + ".gguf")
        kw = dict(kw)
        stride = kw.pop("pos_stride", 1)
        info = make_model(path, name=name, **kw)
        info = dict(name=name, file=name + ".gguf", **info)
        verify_model(path, info)
        ref = Model(path)
        check_rope_vs_hf(ref, kw)
        sens = sensitivity(ref, path, cases(ref, 1000 + mi, stride)["D"])
        ref32 = Model(path, dtype=np.float32)
        assert (ref.n_vocab, ref.n_embd, ref.n_params) == (info["n_vocab"], info["n_embd"], info["n_params"])
        res, dl32, dh32 = {}, 0.0, 0.0
        for cname, chunks in cases(ref, 1000 + mi, stride).items():
            lg, hd = ref.forward_chunks(chunks)
            l32, h32 = ref32.forward_chunks(chunks)
            dl32 = max(dl32, float(np.abs(l32 - lg).max()))
            dh32 = max(dh32, float(np.abs(h32 - hd).max()))
            assert np.isfinite(lg).all() and np.abs(lg).max() < 50
            tokens, pos, sizes, embd = flatten(chunks, ref.n_embd)
            gpath = os.path.join(out, f"{name}.{cname}.golden")
            write_golden(gpath, tokens, pos, sizes, embd, lg, hd)
            gd = read_golden(gpath)
            assert np.array_equal(gd["tokens"], tokens) and np.array_equal(gd["pos"], pos)
            assert np.abs(gd["logits"] - lg).max() < 1e-5
            res[cname] = (lg, hd)
        if ref.long_freq is not None:
            # <name>.S.golden: case A in a context of n_ctx_orig slots, where
            # LongRoPE takes the short factors (check_backbone.c replays it so)
            short = Model(path)
            short.use_context(short.n_ctx_orig)
            chunks = cases(ref, 1000 + mi, stride)["A"]
            lg, hd = short.forward_chunks(chunks)
            assert np.abs(lg - res["A"][0]).max() > 1e-2   # the other table shows
            tokens, pos, sizes, embd = flatten(chunks, ref.n_embd)
            write_golden(os.path.join(out, f"{name}.S.golden"), tokens, pos, sizes, embd, lg, hd)
            info["n_ctx_short"] = short.n_ctx_orig
        dB = max(np.abs(res["A"][0] - res["B"][0]).max(), np.abs(res["A"][1] - res["B"][1]).max())
        assert dB < 1e-10, f"{name}: incremental != batch ({dB})"
        info["ref_f32_dlogit"] = f"{dl32:.2e}"
        info["ref_f32_dhidden"] = f"{dh32:.2e}"
        worst[name] = (dl32, dh32)
        lines.append(" ".join(f"{k}={info[k]}" for k in MANIFEST_KEYS + [
            "n_rot", "rope_scaling", "ref_f32_dlogit", "ref_f32_dhidden"]) + f" pos_stride={stride}"
            + (f" n_ctx_short={info['n_ctx_short']}" if "n_ctx_short" in info else ""))
        lgA = res["A"][0]
        print(f"  {name:16s} {info['arch']:5s} {info['wtype']:4s} vocab={info['n_vocab']} "
              f"d={info['n_embd']} L={info['n_layer']} H={info['n_head']}/{info['n_head_kv']} "
              f"hd={info['head_dim']} ff={info['n_ff']} params={info['n_params']}  "
              f"logit std {lgA.std():.2f} max {np.abs(lgA).max():.1f}  "
              f"|B-A| {dB:.1e}  f32: dlogit {dl32:.1e} dhidden {dh32:.1e}"
              + (f"  without its {sens[0]}" + (f": |dlogit| {sens[1]:.1f}" if sens[1] else "")
                 if sens else ""))
    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    kv_lines = kv_golden.write_goldens(out, Model, model_cases, flatten)
    print(f"make_testdata: {len(kv_lines) - 2} half-precision KV cache cases -> kv-manifest.txt")
    # HMT cases (hmt_golden.py / hmt_ref.py): <case>.adapter.gguf, <case>.hmt.golden,
    # hmt-manifest.txt. make_all raises if an HMT self-check fails.
    hsum, hdt = make_hmt_goldens(out)
    for line, hinfo, d32 in hsum:
        assert hinfo["chunk_diff"] < 1e-10, line["case"]
        assert d32["logits"] < float(line["tol_logit"]) / 5, line["case"]
        ent = hinfo.get("entropy")
        print(f"  {line['case']:16s} {line['mode']:8s} L={line['L']} k={line['k']} N={line['N']} "
              f"j={line['j']}/{line['j_gen']} tokens={line['n_tokens']} segs={line['n_segments']}  "
              + (f"recall entropy {ent[0]:.2f} " if ent else "")
              + f"f32: dlogit {d32['logits']:.1e} dstate {max(d32['S'], d32['P'], d32['M']):.1e}")
    print(f"make_testdata: {len(hsum)} HMT cases ({hdt:.1f} s)")
    # sinks mode (sink_ref.py): sinks-<case>.hmt.golden, sinks-manifest.txt
    for name, W, S, n_tok, _, d1, d32 in make_sink_goldens(out):
        print(f"  {name:20s} sinks W|L={W} S={S} tokens={n_tok}  changed by the sinks: |dlogit| {d1:.2f}  "
              f"f32: dlogit {d32:.1e}")
    wl = max(v[0] for v in worst.values())
    wh = max(v[1] for v in worst.values())
    print(f"make_testdata: {len(MODELS)} models, {4 * len(MODELS)} golden files in {out} "
          f"({time.time() - t0:.1f} s); reference float32-vs-float64 max |dlogit| {wl:.1e}, "
          f"max |dhidden| {wh:.1e}")
    # DITTO repetition penalty (ditto_ref.py): ditto.golden for tests/check_proc.c
    import ditto_ref
    ditto_ref.self_check()
    dpath, dcases, dfired = ditto_ref.write_golden(out)
    print(f"make_testdata: {dcases} DITTO cases, {dfired} penalised tokens -> {dpath}")
    # kNN-LM distribution and interpolation (knn_ref.py): knn.golden for tests/check_knn.c
    import knn_ref
    knn_ref.self_check()
    kpath, kcases = knn_ref.write_golden(out)
    print(f"make_testdata: {kcases} kNN-LM cases -> {kpath}")
    make_quant_goldens(out)
    make_unimplemented_variants(out)


# Copies of llama-f32.gguf (or of the model named last) with metadata keys or
# tensors added: each file must be refused naming the key or tensor
# ("refused NAME": HMT_E_UNSUPPORTED, arithmetic libhmt does not implement;
# "invalid NAME": HMT_E_FORMAT, a value out of range), or load ("loads": a
# neutral value, or a RoPE variant libhmt implements; the reference-checked
# RoPE models are in MODELS). Listed in unimplemented-manifest.txt: file,
# verdict, name. head_dim is 16 (8 rope pairs) and the context 128.
UNIMPLEMENTED = [
    ("rope-freqs", [], [("rope_freqs.weight", np.ones(8, np.float32))], "loads"),
    ("rope-freqs-qwen2", [], [("rope_freqs.weight", np.ones(8, np.float32))],
     ("refused", "rope_freqs.weight"), "qwen2-f32"),
    ("rope-freqs-short", [], [("rope_freqs.weight", np.ones(4, np.float32))],
     ("invalid", "rope_freqs.weight")),
    ("rope-freqs-zero", [], [("rope_freqs.weight", np.zeros(8, np.float32))],
     ("invalid", "rope_freqs.weight")),
    ("rope-linear", [("llama.rope.scaling.type", "linear", "STRING"),
                     ("llama.rope.scaling.factor", 2.0, "FLOAT32")], [], "loads"),
    ("rope-yarn", [("llama.rope.scaling.type", "yarn", "STRING"),
                   ("llama.rope.scaling.factor", 4.0, "FLOAT32"),
                   ("llama.rope.scaling.original_context_length", 32, "UINT32")], [], "loads"),
    ("rope-scale-linear", [("llama.rope.scale_linear", 4.0, "FLOAT32")], [], "loads"),
    ("yarn-attn-factor", [("llama.rope.scaling.attn_factor", 1.2, "FLOAT32")], [], "loads"),
    ("rope-longrope", [("llama.rope.scaling.type", "longrope", "STRING")], [],
     ("refused", "llama.rope.scaling.type")),
    ("rope-unknown-type", [("llama.rope.scaling.type", "ntk-by-parts", "STRING")], [],
     ("refused", "llama.rope.scaling.type")),
    ("rope-none-factor", [("llama.rope.scaling.type", "none", "STRING"),
                          ("llama.rope.scaling.factor", 2.0, "FLOAT32")], [],
     ("refused", "llama.rope.scaling.factor")),
    ("rope-negative-factor", [("llama.rope.scaling.factor", -2.0, "FLOAT32")], [],
     ("invalid", "llama.rope.scaling.factor")),
    ("yarn-log-mul", [("llama.rope.scaling.type", "yarn", "STRING"),
                      ("llama.rope.scaling.yarn_log_multiplier", 0.1, "FLOAT32")], [],
     ("refused", "llama.rope.scaling.yarn_log_multiplier")),
    ("yarn-beta-fast", [("llama.rope.scaling.type", "yarn", "STRING"),
                        ("llama.rope.scaling.yarn_beta_fast", 64.0, "FLOAT32")], [],
     ("refused", "llama.rope.scaling.yarn_beta_fast")),
    ("rope-dim-odd", [("llama.rope.dimension_count", 7, "UINT32")], [],
     ("invalid", "llama.rope.dimension_count")),
    ("rope-dim-too-large", [("llama.rope.dimension_count", 32, "UINT32")], [],
     ("invalid", "llama.rope.dimension_count")),
    # a window on every layer is implemented for llama, qwen2, phi3 (llama-swa-f32,
    # phi3-f32); qwen3's layer pattern (max_window_layers) is not in the file
    ("sliding-window", [("llama.attention.sliding_window", 32, "UINT32")], [], "loads"),
    ("sliding-window-qwen3", [("llama.attention.sliding_window", 32, "UINT32")], [],
     ("refused", "qwen3.attention.sliding_window"), "qwen3-f32"),
    ("sliding-window-pattern", [("llama.attention.sliding_window", 32, "UINT32"),
                                ("llama.attention.sliding_window_pattern", 2, "UINT32")], [],
     ("refused", "llama.attention.sliding_window_pattern")),
    # phi3's LongRoPE factors (None: the tensor is left out of the copy)
    ("phi3-short-only", [], [("rope_factors_long.weight", None)],
     ("invalid", "rope_factors_short.weight"), "phi3-f32"),
    ("phi3-factor-zero", [], [("rope_factors_long.weight", np.zeros(6, np.float32))],
     ("invalid", "rope_factors_long.weight"), "phi3-f32"),
    ("phi3-yarn", [("llama.rope.scaling.type", "yarn", "STRING")], [],
     ("refused", "phi3.rope.scaling.type"), "phi3-f32"),
    ("phi3-qkv-bias", [], [("blk.0.attn_qkv.bias", np.zeros(128, np.float32))],
     ("refused", "blk.0.attn_qkv.bias"), "phi3-f32"),
    ("phi3-experts", [("llama.expert_count", 4, "UINT32")], [],
     ("refused", "phi3.expert_count"), "phi3-f32"),
    ("longrope-factors-llama", [], [("rope_factors_long.weight", np.ones(8, np.float32)),
                                    ("rope_factors_short.weight", np.ones(8, np.float32))],
     ("refused", "rope_factors_short.weight")),
    ("experts", [("llama.expert_count", 8, "UINT32")], [], ("refused", "llama.expert_count")),
    ("softcap", [("llama.attn_logit_softcapping", 50.0, "FLOAT32")], [],
     ("refused", "llama.attn_logit_softcapping")),
    ("key-length", [("llama.attention.key_length", 32, "UINT32")], [],
     ("refused", "llama.attention.key_length")),
    ("key-value-length", [("llama.attention.key_length", 32, "UINT32"),
                          ("llama.attention.value_length", 32, "UINT32")], [],
     ("invalid", "attn_q.weight")),
    ("logit-scale", [("llama.logit_scale", 0.5, "FLOAT32")], [], ("refused", "llama.logit_scale")),
    # gemma: what llama.cpp would compute otherwise, or not at all
    ("gemma2-pattern", [("llama.attention.sliding_window_pattern", 3, "UINT32")], [],
     ("refused", "gemma2.attention.sliding_window_pattern"), "gemma2-f32"),
    ("gemma2-pattern-default", [("llama.attention.sliding_window_pattern", 2, "UINT32")], [],
     "loads", "gemma2-f32"),
    ("gemma2-freq-base-swa", [("llama.rope.freq_base_swa", 20000.0, "FLOAT32")], [],
     ("refused", "gemma2.rope.freq_base_swa"), "gemma2-f32"),
    ("gemma2-yarn", [("llama.rope.scaling.type", "yarn", "STRING"),
                     ("llama.rope.scaling.factor", 4.0, "FLOAT32")], [],
     ("refused", "gemma2.rope.scaling.type"), "gemma2-f32"),
    ("gemma2-linear", [("llama.rope.scaling.factor", 2.0, "FLOAT32")], [],
     ("refused", "gemma2.rope.scaling.factor"), "gemma2-f32"),
    ("gemma2-output", [], [("output.weight", np.zeros((320, 64), np.float32))],
     ("refused", "output.weight"), "gemma2-f32"),
    ("gemma3-softcap", [("llama.final_logit_softcapping", 30.0, "FLOAT32")], [],
     ("refused", "gemma3.final_logit_softcapping"), "gemma3-f32"),
    ("gemma3-attn-softcap", [("llama.attn_logit_softcapping", 50.0, "FLOAT32")], [],
     ("refused", "gemma3.attn_logit_softcapping"), "gemma3-f32"),
    ("gemma3-freq-base-swa", [("llama.rope.freq_base_swa", 1e6, "FLOAT32")], [],
     ("refused", "gemma3.rope.freq_base_swa"), "gemma3-f32"),
    ("gemma3-vision", [], [("v.patch_embd.weight", np.zeros((4, 4), np.float32))],
     ("refused", "v.patch_embd.weight"), "gemma3-f32"),
    ("gemma3-mmproj", [], [("mm.input_projection.weight", np.zeros((4, 4), np.float32))],
     ("refused", "mm.input_projection.weight"), "gemma3-f32"),
    ("neutral", [("llama.rope.scaling.type", "none", "STRING"),
                 ("llama.rope.scaling.factor", 1.0, "FLOAT32"),
                 ("llama.rope.scaling.yarn_beta_fast", 32.0, "FLOAT32"),
                 ("llama.attention.sliding_window", 4096, "UINT32"),
                 ("llama.attention.key_length", 16, "UINT32"),
                 ("llama.expert_count", 0, "UINT32")], [], "loads"),
]


def make_unimplemented_variants(out):
    import gguf_write as gw
    from gguf_read import GGUFFile
    lines = []
    for entry in UNIMPLEMENTED:
        name, keys, tensors, verdict = entry[:4]
        srcname = entry[4] if len(entry) > 4 else "llama-f32"
        src = GGUFFile(os.path.join(out, srcname + ".gguf"))
        arch = src.meta["general.architecture"]
        w = gw.GGUFWriter(alignment=src.alignment)
        for key, val in src.meta.items():
            if key != "general.alignment":
                vtype, elem = src.meta_type[key]
                w.add(key, val, vtype, elem)
        for key, val, vtype in keys:
            w.add(key.replace("llama.", arch + ".", 1), val, getattr(gw, vtype))
        dropped = {tname for tname, _ in tensors}   # replaced, or left out when None
        for tname in src.tensors:
            if tname not in dropped:
                w.add_tensor(tname, src.tensor(tname), gw.F32)
        for tname, a in tensors:
            if a is not None:
                w.add_tensor(tname, a, gw.F32)
        fname = f"unimplemented-{name}.gguf"
        w.write(os.path.join(out, fname))
        lines.append(f"{fname} loads" if verdict == "loads" else f"{fname} {verdict[0]} {verdict[1]}")
    with open(os.path.join(out, "unimplemented-manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"make_testdata: {len(lines)} files with keys or tensors libhmt must refuse or accept")


# Models with block-quantized weights (issue 13), read by tests/check_qmodel.c.
# Listed in quant-manifest.txt (same keys as manifest.txt plus tensor_types),
# goldens as for MODELS (computed from the dequantized weights, so the prompt
# path needs no extra tolerance), plus <name>.<case>.qact.golden for the decode
# path's 8-bit activations (quant_act_ref.py, see docs/QUANTS.md).
QUANT_MODELS = [
    # K-quant rows (256-wide): Q4_K, attn_v / ffn_down of layer 1 and output in Q6_K
    ("llama-q4km", dict(arch="llama", n_vocab=320, n_embd=256, n_layer=2, n_head=4, n_head_kv=2,
                        n_ff=512, n_ctx=128, rope_base=10000.0, rms_eps=1e-5, wtype="q4_k_m",
                        seed=21)),
    # 160-wide rows: llama-quantize's fallbacks (Q4_K -> Q5_0, Q6_K -> Q8_0), tied head
    ("qwen2-q4km-fallback", dict(arch="qwen2", n_vocab=330, n_embd=160, n_layer=2, n_head=5,
                                 n_head_kv=1, n_ff=256, n_ctx=128, rope_base=1000000.0,
                                 rms_eps=1e-6, tied=True, wtype="q4_k_m", seed=22)),
    # the low-bit K-quants and the non-linear code book
    ("llama-q3k", dict(arch="llama", n_vocab=320, n_embd=256, n_layer=2, n_head=4, n_head_kv=2,
                       n_ff=256, n_ctx=128, rope_base=10000.0, rms_eps=1e-5, wtype="q3_k", seed=23)),
    ("llama-iq4xs", dict(arch="llama", n_vocab=320, n_embd=256, n_layer=2, n_head=4, n_head_kv=2,
                         n_ff=256, n_ctx=128, rope_base=10000.0, rms_eps=1e-5, wtype="iq4_xs",
                         seed=24)),
    # every weight Q4_0 (--pure), the head 330 rows: 20 groups of 16 and 10 rows as stored
    ("llama-q4_0", dict(arch="llama", n_vocab=330, n_embd=256, n_layer=2, n_head=4, n_head_kv=2,
                        n_ff=512, n_ctx=128, rope_base=10000.0, rms_eps=1e-5, wtype="q4_0", seed=26)),
]


def make_quant_goldens(out):
    """GGML weight blocks (quants_ref.py): quant-<TYPE>.golden for tests/check_quant.c,
    then the QUANT_MODELS with their golden cases and quant-manifest.txt."""
    import quants_ref
    names = quants_ref.write_goldens(out)
    print(f"make_testdata: {len(names)} weight types -> quant-<TYPE>.golden")
    lines = ["# Block-quantized test models (make_testdata.QUANT_MODELS); keys as in manifest.txt,",
             "# plus tensor_types (type:count of the 2-D weights)."]
    for mi, (name, kw) in enumerate(QUANT_MODELS):
        path = os.path.join(out, name + ".gguf")
        info = dict(name=name, file=name + ".gguf", **make_model(path, name=name, **kw))
        ref = Model(path)
        assert ref.n_params == info["n_params"]
        for cname, chunks in cases(ref, 2000 + mi).items():
            lg, hd = ref.forward_chunks(chunks)
            assert np.isfinite(lg).all() and np.abs(lg).max() < 50
            tokens, pos, sizes, embd = flatten(chunks, ref.n_embd)
            write_golden(os.path.join(out, f"{name}.{cname}.golden"), tokens, pos, sizes, embd, lg, hd)
        lines.append(" ".join(f"{k}={info[k]}" for k in MANIFEST_KEYS + ["tensor_types"]))
        print(f"  {name:20s} {info['tensor_types']}")
    with open(os.path.join(out, "quant-manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    make_act_quantized_goldens(out, [n for n, _ in QUANT_MODELS] + ["llama-q8"])
    # A larger Q4_K model (no goldens) for the resident-memory check of
    # tests/check_qmodel.c: ~8 MB stored, ~58 MB if it were expanded to F32.
    make_model(os.path.join(out, RSS_MODEL + ".gguf"), name=RSS_MODEL, **RSS_MODEL_ARGS)


RSS_MODEL = "llama-q4k-rss"
RSS_MODEL_ARGS = dict(arch="llama", n_vocab=1024, n_embd=512, n_layer=4, n_head=8, n_head_kv=8,
                      n_ff=1536, n_ctx=128, rope_base=10000.0, rms_eps=1e-5, wtype="q4_k", seed=25)


def make_act_quantized_goldens(out, names):
    """<name>.<case>.qact.golden: the golden cases of the block-quantized models
    computed as the decode kernels do (quant_act_ref: every matmul input row
    quantized to 8-bit blocks), for tests/check_qmodel.c's decode-path check."""
    from quant_act_ref import act_quantized_model
    for mi, name in enumerate(names):
        path = os.path.join(out, name + ".gguf")
        ref = act_quantized_model(path)
        for cname in "ABCD":
            g = read_golden(os.path.join(out, f"{name}.{cname}.golden"))
            chunks, row = [], 0
            erow = 0
            for n in g["chunks"]:
                n = int(n)
                if g["tokens"][row] < 0:
                    chunks.append(dict(embd=g["embd"][erow:erow + n].astype(np.float64),
                                       pos=g["pos"][row:row + n]))
                    erow += n
                else:
                    chunks.append(dict(tokens=g["tokens"][row:row + n], pos=g["pos"][row:row + n]))
                row += n
            lg, hd = ref.forward_chunks(chunks)
            write_golden(os.path.join(out, f"{name}.{cname}.qact.golden"), g["tokens"], g["pos"],
                         g["chunks"], g["embd"] if len(g["embd"]) else None, lg, hd)
    print(f"make_testdata: activation-quantized goldens for {len(names)} models")


if __name__ == "__main__":
    main()
