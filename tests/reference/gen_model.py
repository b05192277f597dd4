"""Deterministic generator of random-weight llama / qwen2 / qwen3 / gemma2 /
gemma3 / phi3 GGUF models
with a complete tokenizer, for tests (small shapes) and benchmarks (real shapes; see
bench/gen_model.py). Standard library + NumPy; written with tools/gguf_write.py.

Weights (seeded, drawn in a fixed order, so a seed always gives the same file):
  token_embd  N(0, s_e^2), s_e = 1 (untied) or min(1, 3/sqrt(d)) (tied, so the
              tied LM head gives logits of std ~3)
  output      N(0, (3/sqrt(d))^2)                  -> logits std ~3
  attn_q/k    N(0, (1.4/sqrt(d))^2)                -> attention scores std ~2
  attn_v/o, ffn_gate/up   N(0, 1/fan_in), ffn_down N(0, 1/n_ff)
  norms       1 + 0.1 N(0,1) (always F32)          biases (qwen2) 0.3 N(0,1) (F32)
  qwen3 attn_q_norm / attn_k_norm [head_dim]: 1 + 0.1 N(0,1) (F32)
  gemma2/3: post_attention_norm, post_ffw_norm [n_embd] 1 + 0.1 N(0,1) (the
  GGUF's 1 + w form), gemma3 also attn_q_norm / attn_k_norm; the LM head is
  always tied (token_embd as for tied models; its rows are scaled by sqrt(d)
  on input); a Gemma-layout SentencePiece tokenizer by default (<pad> <eos>
  <bos> <unk> <start_of_turn> <end_of_turn>, add_space_prefix false); keys key_length/value_length, sliding_window and
  (gemma2) attn_logit_softcapping / final_logit_softcapping as llama.cpp's
  converter writes them (gemma dict).
  phi3: q|k|v as one tensor attn_qkv [q rows, k rows, v rows] and gate|up
  as one ffn_up [gate rows, up rows] (the same draws as the separate
  tensors, concatenated), NEOX RoPE, SentencePiece tokenizer.
sliding_window (llama, qwen2, phi3): attention.sliding_window, every layer.
RoPE variants (rope_scaling, an HF-style dict, written as llama.cpp's
converter writes it: tools/hf_rope.py): llama3 -> rope_freqs.weight; linear,
yarn -> rope.scaling.* keys; longrope (phi3) -> rope_factors_long/short.weight,
attn_factor, original_context_length. n_rot < head_dim: partial rotary. head_dim
other than n_embd / n_head is written as attention.key_length/value_length.
All 2-D weights are stored in the chosen type (--type: one type for all, or
the q4_k_m mix; tools/gguf_quants.py tensor_type), as llama.cpp does; 1-D
tensors stay F32.

Tokenizers:
  llama (SentencePiece BPE, tokenizer.ggml.model = "llama"): <unk>=0 (type 2),
    <s>=1, </s>=2 (type 3), <0x00>..<0xFF> (type 6), then normal pieces
    (type 1): word-prefix pieces "▁w", "▁wo", ... with scores -1, -2, ...
    (higher = merged first), then single characters with the lowest scores.
  gpt2 (byte-level BPE, "gpt2", pre "qwen2" or "smollm"): the 256 GPT-2
    byte-to-unicode characters, then one token per merge ("Ġw", "Ġwo", ...;
    tokenizer.ggml.merges holds "a b" with a, b, a+b all tokens, each part
    defined before the merge that uses it), then control tokens (type 3)
    <|endoftext|> (bos, padding), <|im_start|>, <|im_end|> (eos).
Both give exactly n_vocab tokens.
"""
import argparse
import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "..", "tools"))
import gguf_quants as gq  # noqa: E402
import gguf_write as gw  # noqa: E402
import hf_rope  # noqa: E402

# --type: a single type for every 2-D weight (gguf_quants.PURE, as
# llama-quantize --pure, with its fallback for short rows) or a mix
# (gguf_quants.OUTTYPES' q4_k_m, as llama-quantize chooses it; the same rule
# tools/convert_hf.py writes). general.file_type is llama.cpp's llama_ftype.
WTYPES = {"f32": gw.F32, "f16": gw.F16, "bf16": gw.BF16, "q8_0": gw.Q8_0}
QTYPES = {k: v[1] for k, v in gq.PURE.items() if k not in WTYPES}
MIXES = {"q4_k_m": gq.OUTTYPES["q4_k_m"][1]}
FILE_TYPE = {k: gq.PURE[k][1] for k in WTYPES}
ALL_WTYPES = sorted(list(WTYPES) + list(QTYPES) + list(MIXES))


def tensor_qtype(wtype, tname, layer, n_layer, ne0, tied):
    """Type name of a 2-D weight under wtype: gguf_quants.tensor_type, the
    one rule shared with tools/convert_hf.py (layer is implied by tname)."""
    del layer
    return gq.tensor_type(wtype, tname, n_layer, ne0, tied, pure=wtype not in MIXES)


SPM_SPACE = "\u2581"

_COMMON = ("the of and to in is you that it he was for on are as with his they at be this "
           "have from or one had by word but not what all were we when your can said there "
           "use an each which she do how their if will up other about out many then them "
           "these so some her would make like him into time has look two more write go see "
           "number no way could people my than first water been call who oil its now find "
           "long down day did get come made may part hello world memory model token segment "
           "summary recall cache layer tensor ing er ed ly tion").split()
_CONS = "bcdfghjklmnprstvwz"
_VOWS = "aeiou"


def _words():
    """Deterministic endless stream of lowercase words: common English words,
    then consonant-vowel syllable words of 2, 3, ... syllables."""
    yield from _COMMON
    syl = [c + v for c in _CONS for v in _VOWS]
    n = 2
    while True:
        idx = [0] * n
        while True:
            yield "".join(syl[i] for i in idx)
            k = n - 1
            while k >= 0:
                idx[k] += 1
                if idx[k] < len(syl):
                    break
                idx[k] = 0
                k -= 1
            if k < 0:
                break
        n += 1


def spm_vocab(n_vocab):
    """SentencePiece-style vocab: (tokens, scores, types), len == n_vocab."""
    if n_vocab < 300:
        raise ValueError("n_vocab must be >= 300")
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    scores = [0.0] * len(tokens)
    n_normal = n_vocab - len(tokens)
    chars = [SPM_SPACE] + list("abcdefghijklmnopqrstuvwxyz")
    if n_normal >= 200:
        chars += list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'-:;()")
    n_merged = n_normal - len(chars)
    seen = set(tokens) | set(chars)
    merged = []
    words = _words()
    k = 0
    while len(merged) < n_merged:
        w = next(words)
        k += 1
        for s in ([SPM_SPACE + w, w] if k % 3 == 0 else [SPM_SPACE + w]):
            for j in range(2, len(s) + 1):
                p = s[:j]
                if p not in seen:
                    seen.add(p)
                    merged.append(p)
                    if len(merged) == n_merged:
                        break
            if len(merged) == n_merged:
                break
    tokens += merged
    scores += [-float(i + 1) for i in range(len(merged))]
    types += [1] * len(merged)
    tokens += chars
    scores += [-float(len(merged) + 1 + i) for i in range(len(chars))]
    types += [1] * len(chars)
    assert len(tokens) == n_vocab and len(set(tokens)) == n_vocab
    return tokens, scores, types


def bytes_to_unicode():
    """GPT-2's byte -> printable unicode character map, in GPT-2 vocab order
    (list of (byte, char))."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1))
          + list(range(ord("\u00ae"), ord("\u00ff") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [(b, chr(c)) for b, c in zip(bs, cs)]


GPT2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def gpt2_vocab(n_vocab):
    """Byte-level BPE vocab: (tokens, types, merges), len(tokens) == n_vocab."""
    if n_vocab < 300:
        raise ValueError("n_vocab must be >= 300")
    b2u = bytes_to_unicode()
    enc = dict(b2u)
    tokens = [c for _, c in b2u]
    seen = set(tokens)
    n_merged = n_vocab - 256 - len(GPT2_SPECIALS)
    merges = []
    words = _words()
    k = 0
    while len(merges) < n_merged:
        w = next(words)
        k += 1
        for raw in ([" " + w, w] if k % 3 == 0 else [" " + w]):
            s = "".join(enc[b] for b in raw.encode("utf-8"))   # " " -> "Ġ"
            for j in range(2, len(s) + 1):
                p = s[:j]
                if p not in seen:
                    seen.add(p)
                    tokens.append(p)
                    merges.append(f"{s[:j - 1]} {s[j - 1]}")
                    if len(merges) == n_merged:
                        break
            if len(merges) == n_merged:
                break
    types = [1] * len(tokens)
    tokens += GPT2_SPECIALS
    types += [3] * len(GPT2_SPECIALS)
    assert len(tokens) == n_vocab and len(set(tokens)) == n_vocab
    return tokens, types, merges


def add_tokenizer(w, kind, n_vocab, pre=None):
    if kind == "spm":
        return _write_spm(w, *spm_vocab(n_vocab), dict(unknown=0, bos=1, eos=2))
    if kind == "gpt2":
        tokens, types, merges = gpt2_vocab(n_vocab)
        base = n_vocab - len(GPT2_SPECIALS)
        w.add("tokenizer.ggml.model", "gpt2")
        w.add("tokenizer.ggml.pre", pre or "qwen2")
        w.add("tokenizer.ggml.tokens", tokens, gw.ARRAY, gw.STRING)
        w.add("tokenizer.ggml.token_type", types, gw.ARRAY, gw.INT32)
        w.add("tokenizer.ggml.merges", merges, gw.ARRAY, gw.STRING)
        w.add("tokenizer.ggml.bos_token_id", base, gw.UINT32)        # <|endoftext|>
        w.add("tokenizer.ggml.eos_token_id", base + 2, gw.UINT32)    # <|im_end|>
        w.add("tokenizer.ggml.padding_token_id", base, gw.UINT32)
        w.add("tokenizer.ggml.add_bos_token", False, gw.BOOL)
        return {"bos": base, "eos": base + 2}
    if kind == "gemma":
        # Gemma's layout: <pad> <eos> <bos> <unk> first, its turn markers,
        # then byte tokens and pieces; llama.cpp's converter writes
        # add_space_prefix false for Gemma (no tokenizer.ggml.pre: SPM)
        tokens, scores, types = spm_vocab(n_vocab - 3)
        return _write_spm(w, GEMMA_SPECIALS + tokens[3:], [0.0] * 6 + scores[3:],
                          [3, 3, 3, 2, 3, 3] + types[3:], dict(bos=2, eos=1, unknown=3, padding=0),
                          add_space_prefix=False)
    raise ValueError(kind)


def _write_spm(w, tokens, scores, types, ids, add_space_prefix=None):
    """A SentencePiece ("llama") vocabulary; ids: special kind -> id."""
    w.add("tokenizer.ggml.model", "llama")
    w.add("tokenizer.ggml.tokens", tokens, gw.ARRAY, gw.STRING)
    w.add("tokenizer.ggml.scores", scores, gw.ARRAY, gw.FLOAT32)
    w.add("tokenizer.ggml.token_type", types, gw.ARRAY, gw.INT32)
    for kind, i in ids.items():
        w.add(f"tokenizer.ggml.{kind}_token_id", i, gw.UINT32)
    w.add("tokenizer.ggml.add_bos_token", True, gw.BOOL)
    w.add("tokenizer.ggml.add_eos_token", False, gw.BOOL)
    if add_space_prefix is not None:
        w.add("tokenizer.ggml.add_space_prefix", add_space_prefix, gw.BOOL)
    return {"bos": ids["bos"], "eos": ids["eos"]}


GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]


def _normal(rng, shape, std):
    a = rng.standard_normal(shape, dtype=np.float32)
    a *= np.float32(std)
    return a


def make_model(path, arch="llama", n_vocab=320, n_embd=64, n_layer=2, n_head=4, n_head_kv=2,
               n_ff=160, n_ctx=128, rope_base=10000.0, rms_eps=1e-5, tied=False, wtype="f32",
               seed=0, tokenizer=None, pre=None, alignment=32, version=3,
               write_vocab_size=None, write_rope_dim=None, name=None, head_dim=None,
               n_rot=None, rope_scaling=None, gemma=None, sliding_window=None,
               fused_qkv=True):
    """Write a random-weight model to path; returns a dict of its shape
    parameters (the manifest line). tokenizer: "spm"/"gpt2" (default by
    arch: llama -> spm, qwen2/qwen3 -> gpt2). head_dim: default n_embd //
    n_head (another value is written as attention.key_length). n_rot:
    rotated dims (default head_dim). rope_scaling: HF-style dict.
    gemma (gemma2/gemma3): dict of sliding_window, attn_logit_softcapping,
    final_logit_softcapping (None: key not written). fused_qkv (phi3):
    attn_qkv, else separate attn_q/k/v (llama.cpp's phi3 loads either)."""
    if arch not in ("llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"):
        raise ValueError(arch)
    phi3 = arch == "phi3"
    is_gemma = arch in ("gemma2", "gemma3")
    if is_gemma:
        tied = True
    hd = head_dim or n_embd // n_head
    if (head_dim is None and n_embd % n_head) or n_head % n_head_kv or hd % 2:
        raise ValueError("bad head configuration")
    n_rot = n_rot or hd
    if n_rot % 2 or n_rot > hd:
        raise ValueError("bad n_rot")
    if wtype == "q8_0" and (n_embd % 32 or n_ff % 32):
        raise ValueError("Q8_0 needs n_embd and n_ff multiples of 32")
    if wtype not in WTYPES and wtype not in QTYPES and wtype not in MIXES:
        raise ValueError(f"unknown weight type {wtype}")
    tokenizer = tokenizer or {"llama": "spm", "phi3": "spm", "gemma2": "gemma",
                              "gemma3": "gemma"}.get(arch, "gpt2")
    write_vocab_size = (arch == "llama") if write_vocab_size is None else write_vocab_size
    write_rope_dim = (arch == "llama" or n_rot != hd) if write_rope_dim is None else write_rope_dim
    rope_f, rope_s, rope_u, rope_tensors = hf_rope.gguf_rope_scaling(
        rope_scaling, rope_base, n_rot, arch, max_pos=n_ctx,
        original=(rope_scaling or {}).get("original_max_position_embeddings"))
    tt = None  # 2-D weights: their type by tensor_qtype
    qtypes_used = {}
    rng = np.random.default_rng(seed)

    w = gw.GGUFWriter(alignment=alignment)
    w.add("general.architecture", arch)
    w.add("general.name", name or os.path.splitext(os.path.basename(path))[0])
    w.add("general.file_type", {**FILE_TYPE, **QTYPES, **MIXES}[wtype], gw.UINT32)
    if wtype != "f32" and wtype not in ("f16", "bf16"):
        w.add("general.quantization_version", 2, gw.UINT32)
    w.add(f"{arch}.context_length", n_ctx, gw.UINT32)
    w.add(f"{arch}.embedding_length", n_embd, gw.UINT32)
    w.add(f"{arch}.block_count", n_layer, gw.UINT32)
    w.add(f"{arch}.feed_forward_length", n_ff, gw.UINT32)
    w.add(f"{arch}.attention.head_count", n_head, gw.UINT32)
    w.add(f"{arch}.attention.head_count_kv", n_head_kv, gw.UINT32)
    w.add(f"{arch}.rope.freq_base", float(rope_base), gw.FLOAT32)
    w.add(f"{arch}.attention.layer_norm_rms_epsilon", float(rms_eps), gw.FLOAT32)
    if write_rope_dim:
        w.add(f"{arch}.rope.dimension_count", n_rot, gw.UINT32)
    if hd != n_embd // n_head or n_embd % n_head or is_gemma:
        w.add(f"{arch}.attention.key_length", hd, gw.UINT32)
        w.add(f"{arch}.attention.value_length", hd, gw.UINT32)
    for k, v in rope_s.items():
        w.add(f"{arch}.{k}", v)
    for k, v in rope_f.items():
        w.add(f"{arch}.{k}", float(v), gw.FLOAT32)
    for k, v in rope_u.items():
        w.add(f"{arch}.{k}", v, gw.UINT32)
    if write_vocab_size:
        w.add(f"{arch}.vocab_size", n_vocab, gw.UINT32)
    if sliding_window is not None:
        w.add(f"{arch}.attention.sliding_window", sliding_window, gw.UINT32)
    for k, v in (gemma or {}).items():
        if v is not None:
            w.add(f"{arch}.{k if 'softcapping' in k else 'attention.' + k}", v,
                  gw.FLOAT32 if "softcapping" in k else gw.UINT32)
    special = add_tokenizer(w, tokenizer, n_vocab, pre)

    n_params = 0

    def T(tname, a, ttype):
        nonlocal n_params
        n_params += a.size
        if ttype is None:  # a 2-D weight: its type by tensor_qtype
            layer = int(tname.split(".")[1]) if tname.startswith("blk.") else -1
            q = tensor_qtype(wtype, tname, layer, n_layer, a.shape[-1], tied)
            if wtype not in WTYPES:  # the manifest lists the types of quantized models
                qtypes_used[q] = qtypes_used.get(q, 0) + 1
            w.add_tensor(tname, a, gq.TYPES[q].ggml_id)
            return
        w.add_tensor(tname, a, ttype)

    def norm(n):
        return 1.0 + _normal(rng, (n,), 0.1)

    for tname, a in rope_tensors.items():   # llama.cpp's converter writes them first
        T(tname, a, gw.F32)
    emb_std = min(1.0, 3.0 / np.sqrt(n_embd)) if tied else 1.0
    T("token_embd.weight", _normal(rng, (n_vocab, n_embd), emb_std), tt)
    T("output_norm.weight", norm(n_embd), gw.F32)
    if not tied:
        T("output.weight", _normal(rng, (n_vocab, n_embd), 3.0 / np.sqrt(n_embd)), tt)
    for i in range(n_layer):
        p = f"blk.{i}."
        T(p + "attn_norm.weight", norm(n_embd), gw.F32)
        qkv = [_normal(rng, (n_head * hd, n_embd), 1.4 / np.sqrt(n_embd)),
               _normal(rng, (n_head_kv * hd, n_embd), 1.4 / np.sqrt(n_embd)),
               _normal(rng, (n_head_kv * hd, n_embd), 1.0 / np.sqrt(n_embd))]
        if phi3 and fused_qkv:
            T(p + "attn_qkv.weight", np.concatenate(qkv), tt)
        else:
            for nm, a in zip(("attn_q", "attn_k", "attn_v"), qkv):
                T(p + nm + ".weight", a, tt)
        if arch == "qwen2":
            T(p + "attn_q.bias", _normal(rng, (n_head * hd,), 0.3), gw.F32)
            T(p + "attn_k.bias", _normal(rng, (n_head_kv * hd,), 0.3), gw.F32)
            T(p + "attn_v.bias", _normal(rng, (n_head_kv * hd,), 0.3), gw.F32)
        if arch in ("qwen3", "gemma3"):
            T(p + "attn_q_norm.weight", norm(hd), gw.F32)
            T(p + "attn_k_norm.weight", norm(hd), gw.F32)
        T(p + "attn_output.weight", _normal(rng, (n_embd, n_head * hd), 1.0 / np.sqrt(n_head * hd)), tt)
        if is_gemma:
            T(p + "post_attention_norm.weight", norm(n_embd), gw.F32)
        T(p + "ffn_norm.weight", norm(n_embd), gw.F32)
        gate = _normal(rng, (n_ff, n_embd), 1.0 / np.sqrt(n_embd))
        up = _normal(rng, (n_ff, n_embd), 1.0 / np.sqrt(n_embd))
        if phi3:
            T(p + "ffn_up.weight", np.concatenate([gate, up]), tt)
        else:
            T(p + "ffn_gate.weight", gate, tt)
            T(p + "ffn_up.weight", up, tt)
        T(p + "ffn_down.weight", _normal(rng, (n_embd, n_ff), 1.0 / np.sqrt(n_ff)), tt)
        if is_gemma:
            T(p + "post_ffw_norm.weight", norm(n_embd), gw.F32)
    w.write(path, version=version)
    return {"arch": arch, "n_vocab": n_vocab, "n_embd": n_embd, "n_layer": n_layer,
            "n_head": n_head, "n_head_kv": n_head_kv, "n_ff": n_ff, "n_ctx_train": n_ctx,
            "head_dim": hd, "n_params": int(n_params), "tied": int(bool(tied)), "wtype": wtype,
            "tokenizer": "llama" if tokenizer in ("spm", "gemma") else "gpt2",
            "bos": special["bos"], "eos": special["eos"], "rope_base": rope_base,
            "rms_eps": rms_eps, "gguf_version": version, "alignment": alignment,
            "n_rot": n_rot, "rope_scaling": (rope_scaling or {}).get("rope_type", "none"),
            **({"tensor_types": ",".join(f"{k}:{v}" for k, v in sorted(qtypes_used.items()))}
               if qtypes_used else {})}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--arch", default="llama",
                    choices=["llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"])
    ap.add_argument("--n-vocab", type=int, default=320)
    ap.add_argument("--n-embd", type=int, default=64)
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-head-kv", type=int, default=2)
    ap.add_argument("--n-ff", type=int, default=160)
    ap.add_argument("--n-ctx", type=int, default=128)
    ap.add_argument("--rope-base", type=float, default=10000.0)
    ap.add_argument("--rms-eps", type=float, default=1e-5)
    ap.add_argument("--tied", action="store_true", help="no output.weight (LM head = token_embd)")
    ap.add_argument("--type", default="f32", choices=ALL_WTYPES)
    ap.add_argument("--tokenizer", choices=["spm", "gpt2", "gemma"], default=None)
    ap.add_argument("--pre", default=None, help="tokenizer.ggml.pre for gpt2 (default qwen2)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    info = make_model(a.out, arch=a.arch, n_vocab=a.n_vocab, n_embd=a.n_embd, n_layer=a.n_layer,
                      n_head=a.n_head, n_head_kv=a.n_head_kv, n_ff=a.n_ff, n_ctx=a.n_ctx,
                      rope_base=a.rope_base, rms_eps=a.rms_eps, tied=a.tied, wtype=a.type,
                      seed=a.seed, tokenizer=a.tokenizer, pre=a.pre)
    print(" ".join(f"{k}={v}" for k, v in info.items()))


if __name__ == "__main__":
    main()
