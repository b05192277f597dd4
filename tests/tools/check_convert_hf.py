"""tools/convert_hf.py end to end: small random Hugging Face model directories
(written by hf_dir.py, independently of the converter's readers) are
converted, loaded by libhmt (python/hmt), and checked against

- an independent forward pass of the same HF weights in HF layout (rotate-half
  RoPE on unpermuted q/k): a PyTorch one written from the HF modeling math
  when torch imports, and always tests/reference/llama_ref.py's NumPy one
  (CI has no torch). Logits of every row must agree; as a control, the same
  reference with the other RoPE pairing must disagree clearly;
- the tokenizer answers committed in tests/data/tokenizer/ (SentencePiece's
  own encodings; the byte-level BPE reference's), and the token arrays of the
  GGUFs those answers belong to;
- the GGUF's metadata and tensor types (norms/biases F32, tied = no output);
- --outtype q8_0, q4_0, q4_k_m: each tensor's type is llama-quantize's
  choice (written out by hand here), the dequantized weights (the reference
  dequantizer) are within the formats' rounding bounds of the originals, and
  a q8_0 conversion loads and gives logits close to the f32 conversion's
  (the K-quant files are not loaded: the library's loader step is separate);
- bad inputs: a clear "convert_hf: error:" message and exit code 1, never a
  traceback.

Environment: HMT_LIB_PATH (the library; set by check_convert_hf.sh).
Prints one line per check group and ends with "N passed, M failed".
"""
import contextlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
for sub in ("tools", "tests/reference", "tests/tools", "python"):
    sys.path.insert(0, os.path.join(ROOT, sub))

import convert_hf  # noqa: E402
import hmt  # noqa: E402
import llama_ref  # noqa: E402
from gguf_read import GGML_BF16, GGML_F16, GGML_F32, GGUFFile  # noqa: E402
from hf_dir import HF_NAMES, stored, unpermute_rope, write_bpe_tokenizer_json, write_safetensors, write_weights  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

TOKDATA = os.path.join(ROOT, "tests", "data", "tokenizer")
CONVERTER = os.path.join(ROOT, "tools", "convert_hf.py")
PYTHON = os.environ.get("PYTHON") or sys.executable
TOL = 2e-4          # max |logit difference| / max(1, max |logit|)
passed, failed = 0, 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"  FAIL: {what}")
    return ok


# ---------------------------------------------------------------------------
# HF directories (writers in hf_dir.py, independent of tools/hf_files.py)
# ---------------------------------------------------------------------------
def bf16_round(a):
    """float32 -> nearest bfloat16 (ties to even), as float32."""
    u = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    return (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)


def make_weights(spec, rng):
    """HF-named float32 weights, already rounded to the source dtype."""
    d, ff, hd = spec["d"], spec["ff"], head_dim(spec)
    q, kv, V = spec["heads"] * hd, spec["kv"] * hd, spec["vocab"]

    def mat(r, c, scale=1.0):
        return (rng.standard_normal((r, c)) * scale / np.sqrt(c)).astype(np.float32)

    gemma = spec["arch"] in ("gemma2", "gemma3")

    def norm(n):   # Gemma's HF norms multiply by 1 + w: w near 0
        return ((0.0 if gemma else 1.0) + 0.2 * rng.standard_normal(n)).astype(np.float32)

    w = {"model.embed_tokens.weight": (rng.standard_normal((V, d))).astype(np.float32),
         "model.norm.weight": norm(d)}
    if not spec["tied"] or spec.get("lm_head_in_file"):
        w["lm_head.weight"] = mat(V, d, 2.0)
    for i in range(spec["layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm(d)
        w[p + "self_attn.q_proj.weight"] = mat(q, d, 2.0)
        w[p + "self_attn.k_proj.weight"] = mat(kv, d, 2.0)
        w[p + "self_attn.v_proj.weight"] = mat(kv, d)
        w[p + "self_attn.o_proj.weight"] = mat(d, q)
        w[p + "post_attention_layernorm.weight"] = norm(d)
        w[p + "mlp.gate_proj.weight"] = mat(ff, d)
        w[p + "mlp.up_proj.weight"] = mat(ff, d)
        w[p + "mlp.down_proj.weight"] = mat(d, ff)
        if spec["arch"] in ("qwen3", "gemma3"):
            w[p + "self_attn.q_norm.weight"] = norm(hd)
            w[p + "self_attn.k_norm.weight"] = norm(hd)
        if gemma:
            w[p + "pre_feedforward_layernorm.weight"] = norm(d)
            w[p + "post_feedforward_layernorm.weight"] = norm(d)
        if spec["arch"] == "qwen2":
            for n, size in (("q", q), ("k", kv), ("v", kv)):
                w[p + f"self_attn.{n}_proj.bias"] = (0.3 * rng.standard_normal(size)).astype(np.float32)
        if spec.get("inv_freq"):
            w[p + "self_attn.rotary_emb.inv_freq"] = np.ones(hd // 2, np.float32)
        if spec["arch"] == "phi3":   # HF's Phi3: qkv_proj = q|k|v rows, gate_up_proj = gate|up
            w[p + "self_attn.qkv_proj.weight"] = np.concatenate(
                [w.pop(p + f"self_attn.{n}_proj.weight") for n in "qkv"])
            w[p + "mlp.gate_up_proj.weight"] = np.concatenate(
                [w.pop(p + "mlp.gate_proj.weight"), w.pop(p + "mlp.up_proj.weight")])
    return {k: stored(v, spec["src"]) for k, v in w.items()}


def split_phi3(spec, w):
    """HF-layout weights with Phi-3's fused tensors split (what the
    references below read): qkv_proj rows q | k | v, gate_up_proj's halves
    gate then up (HF's gate_up_proj output .chunk(2))."""
    if spec["arch"] != "phi3":
        return w
    w = dict(w)
    q, kv = spec["heads"] * head_dim(spec), spec["kv"] * head_dim(spec)
    for i in range(spec["layers"]):
        p = f"model.layers.{i}."
        qkv = w.pop(p + "self_attn.qkv_proj.weight")
        for n, part in zip("qkv", np.split(qkv, [q, q + kv])):
            w[p + f"self_attn.{n}_proj.weight"] = part
        gate, up = np.split(w.pop(p + "mlp.gate_up_proj.weight"), 2)
        w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"] = gate, up
    return w


def n_rot(spec):
    """Rotated dims: HF's int(head_dim * partial_rotary_factor)."""
    return int(head_dim(spec) * spec.get("partial", 1.0))


def head_dim(spec):
    return spec.get("hd") or spec["d"] // spec["heads"]


HF_ARCH = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM",
           "gemma2": "Gemma2ForCausalLM", "gemma3": "Gemma3ForCausalLM", "phi3": "Phi3ForCausalLM"}


def write_config(path, spec):
    cfg = {"architectures": [spec.get("hf", HF_ARCH[spec["arch"]])],
           "model_type": spec["arch"], "hidden_size": spec["d"], "intermediate_size": spec["ff"],
           "num_hidden_layers": spec["layers"], "num_attention_heads": spec["heads"],
           "num_key_value_heads": spec["kv"], "vocab_size": spec["vocab"],
           "max_position_embeddings": 256, "rms_norm_eps": spec["eps"],
           "rope_theta": spec["theta"], "tie_word_embeddings": spec["tied"], "hidden_act": "silu",
           "rope_scaling": spec.get("rope_scaling"), "torch_dtype": "float32", "bos_token_id": 1,
           "eos_token_id": 2}
    if spec.get("hd") or spec["arch"] == "qwen3":
        cfg["head_dim"] = head_dim(spec)
    if spec["arch"] in ("qwen2", "qwen3"):
        cfg.update(use_sliding_window=False, sliding_window=4096, max_window_layers=2)
    if spec["arch"] == "phi3":   # Phi-3 128k / Phi-4-mini style
        cfg.update(partial_rotary_factor=spec.get("partial", 1.0),
                   original_max_position_embeddings=spec["orig"], sliding_window=spec.get("window"))
    if spec.get("hf") == "MistralForCausalLM":
        cfg.update(model_type="mistral", sliding_window=spec["window"])
    if spec["arch"] in ("gemma2", "gemma3"):
        del cfg["hidden_act"]
        cfg.update(head_dim=head_dim(spec), hidden_activation="gelu_pytorch_tanh",
                   query_pre_attn_scalar=head_dim(spec), sliding_window=spec["window"])
        if spec["arch"] == "gemma2":
            cfg.update(attn_logit_softcapping=spec["softcap"][0],
                       final_logit_softcapping=spec["softcap"][1])
        else:
            cfg.update(rope_local_base_freq=10000.0, sliding_window_pattern=6,
                       attn_logit_softcapping=None, final_logit_softcapping=None)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)


# ---------------------------------------------------------------------------
# tokenizers
# ---------------------------------------------------------------------------
PRE_GGUF_NAME = {"gpt2": "gpt-2", "llama3": "llama-bpe", "qwen2": "qwen2", "smollm": "smollm",
                 "gpt-4o": "gpt-4o"}


def write_bpe_tokenizer(mdir, pre, merges_as_pairs=False, bos_template=False):
    """tokenizer.json + tokenizer_config.json from the committed test
    vocabulary tests/data/tokenizer/bpe_<pre>.gguf (759 byte-level tokens,
    3 control and 1 user-defined added tokens, 500 merges)."""
    g = GGUFFile(os.path.join(TOKDATA, f"bpe_{pre}.gguf"))
    write_bpe_tokenizer_json(os.path.join(mdir, "tokenizer.json"), list(g.meta["tokenizer.ggml.tokens"]),
                             [int(t) for t in g.meta["tokenizer.ggml.token_type"]],
                             g.meta["tokenizer.ggml.merges"], PRE_GGUF_NAME[pre], merges_as_pairs,
                             "<|endoftext|>" if bos_template else None)
    with open(os.path.join(mdir, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<|endoftext|>", "eos_token": {"content": "<|im_end|>"},
                   "chat_template": "{{ messages }}"}, f)
    return g


def write_spm_tokenizer(mdir):
    shutil.copy(os.path.join(TOKDATA, "spm.model"), os.path.join(mdir, "tokenizer.model"))
    with open(os.path.join(mdir, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                   "add_bos_token": True, "add_eos_token": False,
                   "added_tokens_decoder": {str(i): {"content": t, "special": True} for i, t in
                                            enumerate(["<unk>", "<s>", "</s>", "<|ctl|>"])}}, f)
    with open(os.path.join(mdir, "added_tokens.json"), "w") as f:
        json.dump({"<extra>": 900}, f)
    return GGUFFile(os.path.join(TOKDATA, "spm.gguf"))


def read_cases(name):
    cases = []
    with open(os.path.join(TOKDATA, name), encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                continue
            flags, hexs, ids = line.rstrip("\n").split("\t")
            cases.append((int(flags), bytes.fromhex(hexs), [int(x) for x in ids.split()]))
    return cases


# ---------------------------------------------------------------------------
# references: the HF model's math on HF-layout weights
# ---------------------------------------------------------------------------
def as_output(a, outtype):
    """What a matrix becomes in the GGUF (norms and biases stay float32)."""
    if a.ndim != 2 or outtype == "f32":
        return a
    return a.astype(np.float16).astype(np.float32) if outtype == "f16" else bf16_round(a)


def numpy_reference(spec, w, neox=True, scaled=True, seq_len=0):
    """tests/reference/llama_ref.py's Model filled with HF-layout weights:
    HF rotates halves (NEOX pairing) on unpermuted q/k, for every arch; its
    RoPE frequencies and attention factor from HF's formulas for the config's
    rope_scaling (llama_ref.hf_rope; scaled=False: plain RoPE, a control;
    seq_len: HF's LongRoPE choice of factors)."""
    w = split_phi3(spec, w)
    m = llama_ref.Model.__new__(llama_ref.Model)
    f = np.float64
    m.dtype = np.dtype(f)
    m.arch = spec["arch"]
    m.n_embd, m.n_layer, m.n_ff = spec["d"], spec["layers"], spec["ff"]
    m.n_head, m.n_head_kv = spec["heads"], spec["kv"]
    m.head_dim, m.n_rot = head_dim(spec), n_rot(spec)
    m.eps, m.rope_base, m.neox = spec["eps"], spec["theta"], neox
    m.tok_embd = w["model.embed_tokens.weight"].astype(f)
    m.n_vocab = m.tok_embd.shape[0]
    m.output = m.tok_embd if spec["tied"] else w["lm_head.weight"].astype(f)
    gemma = spec["arch"] in ("gemma2", "gemma3")
    one = 1.0 if gemma else 0.0   # HF Gemma norms: x * (1 + w)
    m.output_norm = w["model.norm.weight"].astype(f) + one
    m.layers = []
    for i in range(spec["layers"]):
        p = f"model.layers.{i}."
        L = {"attn_norm": w[p + "input_layernorm.weight"].astype(f) + one,
             "ffn_norm": w[p + ("pre_feedforward_layernorm.weight" if gemma else
                                "post_attention_layernorm.weight")].astype(f) + one,
             "attn_q": w[p + "self_attn.q_proj.weight"], "attn_k": w[p + "self_attn.k_proj.weight"],
             "attn_v": w[p + "self_attn.v_proj.weight"], "attn_output": w[p + "self_attn.o_proj.weight"],
             "ffn_gate": w[p + "mlp.gate_proj.weight"], "ffn_up": w[p + "mlp.up_proj.weight"],
             "ffn_down": w[p + "mlp.down_proj.weight"]}
        L = {k: v.astype(f) for k, v in L.items()}
        for b in ("q", "k", "v"):
            name = p + f"self_attn.{b}_proj.bias"
            L[f"attn_{b}.bias"] = w[name].astype(f) if name in w else None
        for b in ("q", "k"):
            name = p + f"self_attn.{b}_norm.weight"
            L[f"attn_{b}_norm"] = w[name].astype(f) + one if name in w else None
        if gemma:
            L["post_attention_norm"] = w[p + "post_attention_layernorm.weight"].astype(f) + 1.0
            L["post_ffw_norm"] = w[p + "post_feedforward_layernorm.weight"].astype(f) + 1.0
        m.layers.append(L)
    m.inv_freq, m.mscale = llama_ref.hf_rope(spec.get("rope_scaling") if scaled else None,
                                             m.rope_base, m.n_rot, seq_len=seq_len, max_pos=256,
                                             original=spec.get("orig"))
    meta = {"attention.sliding_window": spec.get("window")}
    if spec["arch"] == "gemma2":
        meta.update(attn_logit_softcapping=spec["softcap"][0],
                    final_logit_softcapping=spec["softcap"][1])
    llama_ref.gemma_hparams(m, lambda k, d=None: meta.get(k, d) if meta.get(k) is not None else d)
    return m


def torch_rope(spec, hd, seq_len=0):
    """HF's RoPE init functions for the config's rope_scaling, in torch
    (modeling_rope_utils: default, linear, llama3, yarn, longrope): (inv_freq,
    attention factor). hd: the rotated dims; seq_len: LongRoPE's choice."""
    base = spec["theta"]
    inv = 1.0 / (base ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    rs = spec.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "longrope":   # factor = max_position_embeddings / original (config: 256)
        orig = spec["orig"]
        factor = 256 / orig
        att = math.sqrt(1 + math.log(factor) / math.log(orig)) if factor > 1 else 1.0
        ext = torch.tensor(rs["long_factor"] if seq_len > orig else rs["short_factor"],
                           dtype=torch.float64)
        return 1.0 / (ext * base ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)), att
    if kind == "linear":
        return inv / rs["factor"], 1.0
    if kind == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        inv_l = torch.where(wavelen > old / lo, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
        medium = ~(wavelen < old / hi) * ~(wavelen > old / lo)
        return torch.where(medium, smoothed, inv_l), 1.0
    if kind == "yarn":
        factor, old = rs["factor"], rs["original_max_position_embeddings"]

        def corr_dim(rot):
            return (hd * math.log(old / (rot * 2 * math.pi))) / (2 * math.log(base))
        low = max(math.floor(corr_dim(rs.get("beta_fast", 32))), 0)
        high = min(math.ceil(corr_dim(rs.get("beta_slow", 1))), hd - 1)
        ramp = torch.clamp((torch.arange(hd // 2, dtype=torch.float64) - low) /
                           (high - low if high != low else 0.001), 0, 1)
        extrap = 1 - ramp
        inv = (inv / factor) * (1 - extrap) + inv * extrap
        return inv, rs.get("attention_factor") or 0.1 * math.log(factor) + 1.0
    return inv, 1.0


def torch_reference(spec, w, tokens, pos):
    """Logits from the Hugging Face Llama/Mistral/Qwen2/Qwen3/Gemma/Phi-3
    modeling math, float64."""
    T = {k: torch.from_numpy(v.astype(np.float64)) for k, v in w.items()}
    F = torch.nn.functional
    nh, nkv, hd, rd = spec["heads"], spec["kv"], head_dim(spec), n_rot(spec)
    n = len(tokens)
    phi3 = spec["arch"] == "phi3"

    def rmsnorm(x, weight):
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + spec["eps"]))

    def rotate_half(x):
        return torch.cat((-x[..., x.shape[-1] // 2:], x[..., :x.shape[-1] // 2]), dim=-1)

    def apply_rope(x, cos, sin):   # Phi-3: the first rd dims rotate, the rest pass
        xr, xp = x[..., :rd], x[..., rd:]
        return torch.cat((xr * cos + rotate_half(xr) * sin, xp), dim=-1)

    gemma = spec["arch"] in ("gemma2", "gemma3")
    if gemma:   # Gemma's RMSNorm multiplies by 1 + w
        def rmsnorm(x, weight):  # noqa: F811
            return (1.0 + weight) * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + spec["eps"]))

    def cos_sin(inv_freq, att):
        freqs = torch.outer(torch.tensor(pos, dtype=torch.float64), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos()[None] * att, emb.sin()[None] * att     # [1, n, hd]

    # HF's LongRoPE update: the long factors once positions pass the original context
    cs_global = cos_sin(*torch_rope(spec, rd, seq_len=max(pos) + 1))
    cs_local = cos_sin(1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)), 1.0)
    mask = torch.full((n, n), float("-inf"), dtype=torch.float64).triu(1)
    idx = torch.arange(n)
    mask_swa = mask.masked_fill(idx[:, None] - idx[None, :] >= spec.get("window", n + 1),
                                float("-inf"))
    x = T["model.embed_tokens.weight"][torch.tensor(tokens)]
    if gemma:
        x = x * spec["d"] ** 0.5
    for i in range(spec["layers"]):
        p = f"model.layers.{i}."
        sliding = gemma and (i % 2 == 0 if spec["arch"] == "gemma2" else (i + 1) % 6 != 0)
        sliding = sliding or (not gemma and bool(spec.get("window")))   # Mistral, Phi-3
        cos, sin = cs_local if sliding and spec["arch"] == "gemma3" else cs_global
        h = rmsnorm(x, T[p + "input_layernorm.weight"])
        if phi3:   # Phi3Attention: one qkv_proj, split by columns
            qkv = F.linear(h, T[p + "self_attn.qkv_proj.weight"])
            q, k, v = qkv[:, :nh * hd], qkv[:, nh * hd:(nh + nkv) * hd], qkv[:, (nh + nkv) * hd:]
        else:
            q = F.linear(h, T[p + "self_attn.q_proj.weight"], T.get(p + "self_attn.q_proj.bias"))
            k = F.linear(h, T[p + "self_attn.k_proj.weight"], T.get(p + "self_attn.k_proj.bias"))
            v = F.linear(h, T[p + "self_attn.v_proj.weight"], T.get(p + "self_attn.v_proj.bias"))
        if p + "self_attn.q_norm.weight" in T:   # Qwen3, Gemma 3: per head, before RoPE
            q = rmsnorm(q.view(n, nh, hd), T[p + "self_attn.q_norm.weight"])
            k = rmsnorm(k.view(n, nkv, hd), T[p + "self_attn.k_norm.weight"])
        q = q.view(n, nh, hd).transpose(0, 1)
        k = k.view(n, nkv, hd).transpose(0, 1)
        v = v.view(n, nkv, hd).transpose(0, 1)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        k = k.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
        if not gemma:
            att = torch.softmax(q @ k.transpose(1, 2) / hd ** 0.5 + (mask_swa if sliding else mask),
                                dim=-1)
            o = (att @ v).transpose(0, 1).reshape(n, nh * hd)
            x = x + F.linear(o, T[p + "self_attn.o_proj.weight"])
            h = rmsnorm(x, T[p + "post_attention_layernorm.weight"])
            if phi3:   # Phi3MLP: gate, up = gate_up_proj(h).chunk(2); down(up * silu(gate))
                gate, up = F.linear(h, T[p + "mlp.gate_up_proj.weight"]).chunk(2, dim=-1)
                x = x + F.linear(up * F.silu(gate), T[p + "mlp.down_proj.weight"])
                continue
            x = x + F.linear(F.silu(F.linear(h, T[p + "mlp.gate_proj.weight"])) *
                             F.linear(h, T[p + "mlp.up_proj.weight"]), T[p + "mlp.down_proj.weight"])
            continue
        # Gemma 2/3: query_pre_attn_scalar scaling, soft-capping, windows, post-norms
        sc = q @ k.transpose(1, 2) * hd ** -0.5
        if spec["arch"] == "gemma2":
            sc = torch.tanh(sc / spec["softcap"][0]) * spec["softcap"][0]
        att = torch.softmax(sc + (mask_swa if sliding else mask), dim=-1)
        o = (att @ v).transpose(0, 1).reshape(n, nh * hd)
        x = x + rmsnorm(F.linear(o, T[p + "self_attn.o_proj.weight"]),
                        T[p + "post_attention_layernorm.weight"])
        h = rmsnorm(x, T[p + "pre_feedforward_layernorm.weight"])
        f = F.linear(F.gelu(F.linear(h, T[p + "mlp.gate_proj.weight"]), approximate="tanh") *
                     F.linear(h, T[p + "mlp.up_proj.weight"]), T[p + "mlp.down_proj.weight"])
        x = x + rmsnorm(f, T[p + "post_feedforward_layernorm.weight"])
    x = rmsnorm(x, T["model.norm.weight"])
    head = T["model.embed_tokens.weight"] if spec["tied"] else T["lm_head.weight"]
    logits = x @ head.T
    if spec["arch"] == "gemma2":
        logits = torch.tanh(logits / spec["softcap"][1]) * spec["softcap"][1]
    return logits.numpy()


def hmt_logits(path, tokens, pos=None, n_ctx=64):
    with hmt.Model(path) as m, hmt.Context(m, n_ctx=n_ctx, n_threads=1) as ctx:
        ctx.eval(tokens=tokens, pos=pos, outputs=hmt.OUT_LOGITS)
        return np.array([np.array(ctx.logits(i), dtype=np.float64) for i in range(len(tokens))])


def rel_err(a, b):
    return float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))


# ---------------------------------------------------------------------------
# the model cases
# ---------------------------------------------------------------------------
CASES = [
    # SentencePiece tokenizer.model, MHA, untied, F32 -> f32
    dict(name="llama-spm", arch="llama", tok="spm", d=64, layers=2, heads=4, kv=4, ff=96,
         vocab=904, tied=False, src="F32", out="f32", theta=10000.0, eps=1e-5, inv_freq=True),
    # Llama 3-style byte-level BPE, GQA 8/2, tied, BF16 in 2 shards -> bf16
    dict(name="llama-bpe-gqa", arch="llama", tok="llama3", d=64, layers=2, heads=8, kv=2, ff=128,
         vocab=768, tied=True, src="BF16", out="bf16", theta=500000.0, eps=1e-5, shards=2),
    # Qwen2: biases, NEOX RoPE, GQA 4/2, untied, F16 -> f16
    dict(name="qwen2", arch="qwen2", tok="qwen2", d=64, layers=2, heads=4, kv=2, ff=96,
         vocab=768, tied=False, src="F16", out="f16", theta=1e6, eps=1e-6),
    # SmolLM-style: GQA 6/2 (head 16), tied with a stored lm_head, F32 -> f16 (rounding)
    dict(name="smollm", arch="llama", tok="smollm", d=96, layers=2, heads=6, kv=2, ff=160,
         vocab=763, tied=True, lm_head_in_file=True, src="F32", out="f16", theta=100000.0,
         eps=1e-5),
    # GPT-2 pre-tokenizer, Qwen2 tied, BF16 -> f32, 3 shards
    dict(name="qwen2-gpt2pre", arch="qwen2", tok="gpt2", d=32, layers=1, heads=2, kv=1, ff=64,
         vocab=800, tied=True, src="BF16", out="f32", theta=10000.0, eps=1e-6, shards=3),
    # Llama 3.1-style rope_scaling llama3 (-> rope_freqs.weight); positions
    # 0, 37, 74, ... reach past original_max_position_embeddings = 64
    dict(name="llama3-rope", arch="llama", tok="llama3", d=64, layers=2, heads=4, kv=2, ff=96,
         vocab=768, tied=True, src="BF16", out="f32", theta=500000.0, eps=1e-5, pos_stride=37,
         rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                           high_freq_factor=4.0, original_max_position_embeddings=64)),
    dict(name="llama-linear", arch="llama", tok="llama3", d=64, layers=1, heads=4, kv=2, ff=96,
         vocab=768, tied=False, src="F32", out="f32", theta=10000.0, eps=1e-5, pos_stride=11,
         rope_scaling=dict(type="linear", factor=4.0)),
    # Qwen3: q/k norms, head_dim 32 != hidden_size / heads, YaRN with its attention factor
    dict(name="qwen3-yarn", arch="qwen3", tok="qwen2", d=64, layers=2, heads=4, kv=2, hd=32,
         ff=96, vocab=768, tied=True, src="BF16", out="f32", theta=1e6, eps=1e-6, pos_stride=29,
         rope_scaling=dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=64)),
    # Gemma 2: norms stored 1 + w, window 4 on layers 0 and 2 (14 tokens reach past
    # it), soft-capping 5 / 8, GELU-tanh, embeddings x sqrt(d), tied; head 32 != d / heads
    dict(name="gemma2", arch="gemma2", tok="llama3", d=64, layers=3, heads=4, kv=2, hd=32,
         ff=96, vocab=768, tied=True, src="BF16", out="f32", theta=10000.0, eps=1e-6,
         window=4, softcap=(5.0, 8.0)),
    # Gemma 3: 7 layers (layer 5 global, base 1e6 x linear 4; the others base 10000,
    # window 4), q/k norms
    dict(name="gemma3", arch="gemma3", tok="llama3", d=64, layers=7, heads=4, kv=2, hd=16,
         ff=96, vocab=768, tied=True, src="F32", out="f32", theta=1e6, eps=1e-6, pos_stride=5,
         window=4, rope_scaling=dict(rope_type="linear", factor=4.0)),
    # Phi-3 (SentencePiece, like Llama's): fused qkv_proj / gate_up_proj, GQA 4/2,
    # 12 of 16 dims rotate (partial_rotary_factor 0.75), LongRoPE with original
    # context 32 (context 256), window 5 on every layer. Run twice (contexts):
    # 64 slots with positions x 5 (libhmt: context > 32, HF: positions > 32:
    # both the long factors), 32 slots with positions x 2 (both the short ones)
    dict(name="phi3", arch="phi3", tok="spm", d=64, layers=2, heads=4, kv=2, ff=96,
         vocab=904, tied=False, src="BF16", out="f32", theta=10000.0, eps=1e-5, partial=0.75,
         orig=32, window=5, runs=((64, 5), (32, 2)),
         rope_scaling=dict(type="longrope", short_factor=[1.0, 1.05, 1.1, 1.2, 1.3, 1.4],
                           long_factor=[1.0, 1.5, 2.2, 3.4, 4.8, 6.0])),
    # Phi-4-mini style: phi3 with the GPT-4o byte-level BPE (o200k split regex), tied
    dict(name="phi4-mini-bpe", arch="phi3", tok="gpt-4o", d=64, layers=1, heads=4, kv=2, ff=96,
         vocab=768, tied=True, src="BF16", out="f32", theta=10000.0, eps=1e-5, partial=0.75,
         orig=256),
    # Mistral: llama with a window (4) on every layer; 14 tokens reach past it
    dict(name="mistral-swa", arch="llama", hf="MistralForCausalLM", tok="llama3", d=64,
         layers=2, heads=4, kv=2, ff=96, vocab=768, tied=False, src="F16", out="f16",
         theta=10000.0, eps=1e-5, window=4),
]


def build_dir(root, spec, rng):
    mdir = os.path.join(root, spec["name"])
    os.makedirs(mdir)
    w = make_weights(spec, rng)
    write_config(os.path.join(mdir, "config.json"), spec)
    write_weights(mdir, w, spec["src"], spec.get("shards", 1))
    if spec["tok"] == "spm":
        tok_gguf = write_spm_tokenizer(mdir)
    else:
        tok_gguf = write_bpe_tokenizer(mdir, spec["tok"], merges_as_pairs=spec["name"] == "qwen2",
                                       bos_template=spec["tok"] == "llama3")
    return mdir, w, tok_gguf


def check_gguf(spec, out, tok_gguf):
    g = GGUFFile(out)
    a = spec["arch"]
    mt = {"f32": GGML_F32, "f16": GGML_F16, "bf16": GGML_BF16}[spec["out"]]
    ok = check(g.meta["general.architecture"] == a, "architecture")
    ok &= check(g.meta["general.file_type"] == {"f32": 0, "f16": 1, "bf16": 32}[spec["out"]], "file_type")
    hd = head_dim(spec)
    rs = spec.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type"))
    gemma = a in ("gemma2", "gemma3")
    explicit = spec.get("hd") or a in ("qwen3", "gemma2", "gemma3")
    for key, want in [("attention.key_length", hd if explicit else None),
                      ("attention.value_length", hd if explicit else None),
                      ("rope.scaling.type", kind if kind in ("linear", "yarn") else None),
                      ("rope.scaling.factor", rs["factor"] if kind in ("linear", "yarn") else None),
                      ("rope.scaling.original_context_length",
                       rs["original_max_position_embeddings"] if kind == "yarn" else
                       spec["orig"] if kind == "longrope" else None),
                      ("embedding_length", spec["d"]), ("block_count", spec["layers"]),
                      ("feed_forward_length", spec["ff"]), ("attention.head_count", spec["heads"]),
                      ("attention.head_count_kv", spec["kv"]), ("context_length", 256),
                      ("rope.dimension_count", hd if a == "llama" else n_rot(spec) if a == "phi3"
                       else None),
                      ("attention.sliding_window", spec.get("window") if a == "llama"
                       else spec.get("window", 0) if a == "phi3"  # 0: none (as convert_hf_to_gguf)
                       else spec["window"] if gemma else None),
                      ("vocab_size", spec["vocab"] if a == "llama" else None)]:
        ok &= check(g.meta.get(f"{a}.{key}") == want, f"{a}.{key} = {g.meta.get(f'{a}.{key}')}, want {want}")
    ok &= check(abs(g.meta[f"{a}.rope.freq_base"] - spec["theta"]) <= 1e-6 * spec["theta"], "freq_base")
    ok &= check(abs(g.meta[f"{a}.attention.layer_norm_rms_epsilon"] - spec["eps"]) < 1e-12, "eps")
    ok &= check(("output.weight" in g.tensors) == (not spec["tied"]), "output.weight iff untied")
    if gemma:
        ok &= check(g.meta.get(f"{a}.attention.sliding_window") == spec["window"], "sliding_window")
        for key, want in zip(("attn_logit_softcapping", "final_logit_softcapping"),
                             spec.get("softcap", (None, None))):
            ok &= check(g.meta.get(f"{a}.{key}") == want, f"{key} = {g.meta.get(f'{a}.{key}')}")
        ok &= check(all(abs(float(np.mean(GGUFFile(out).tensor(n)))) > 0.5 for n in g.tensors
                        if n.endswith("norm.weight")), "Gemma norms stored as 1 + w")
    ok &= check(("rope_freqs.weight" in g.tensors) == (kind == "llama3"), "rope_freqs.weight iff llama3")
    if kind == "longrope":   # HF's attention_factor for factor 256 / orig; the factor tables
        att = math.sqrt(1 + math.log(256 / spec["orig"]) / math.log(spec["orig"]))
        ok &= check(abs(g.meta.get(f"{a}.rope.scaling.attn_factor", 0) - att) < 1e-6, "attn_factor")
        for which in ("long", "short"):
            t = g.tensor(f"rope_factors_{which}.weight") if f"rope_factors_{which}.weight" in \
                g.tensors else None
            ok &= check(t is not None and np.array_equal(t, np.float32(rs[which + "_factor"])),
                        f"rope_factors_{which}.weight")
    n_expected = (2 + (not spec["tied"]) + (kind == "llama3") + 2 * (kind == "longrope") +
                  spec["layers"] * (6 if a == "phi3" else
                                    9 + 3 * (a == "qwen2") + 2 * (a in ("qwen3", "gemma3")) +
                                    2 * gemma))
    ok &= check(len(g.tensors) == n_expected, f"{len(g.tensors)} tensors, want {n_expected}")
    for name, t in g.tensors.items():
        want = GGML_F32 if len(t.ne) == 1 else mt
        ok &= check(t.type == want, f"{name}: type {t.type}, want {want}")
    # tokenizer arrays: the committed test GGUF's, padded to the table size
    toks = list(tok_gguf.meta["tokenizer.ggml.tokens"])
    types = [int(x) for x in tok_gguf.meta["tokenizer.ggml.token_type"]]
    if spec["tok"] == "spm":  # added_tokens.json adds a user-defined token after the pieces
        toks, types = toks + ["<extra>"], types + [4]
    pad = range(len(toks), spec["vocab"])
    ok &= check(list(g.meta["tokenizer.ggml.tokens"]) == toks + [f"[PAD{i}]" for i in pad], "tokens")
    ok &= check([int(x) for x in g.meta["tokenizer.ggml.token_type"]] == types + [5] * len(pad),
                "token types")
    if spec["tok"] == "spm":
        sc = np.asarray(g.meta["tokenizer.ggml.scores"])
        n_sp = len(toks) - 1
        ok &= check(np.array_equal(sc[:n_sp], np.asarray(tok_gguf.meta["tokenizer.ggml.scores"])) and
                    sc[n_sp] == -1000.0 and (sc[n_sp + 1:] == -10000.0).all(), "scores")
        ok &= check(g.meta["tokenizer.ggml.model"] == "llama", "model llama")
        ok &= check(g.meta["tokenizer.ggml.add_space_prefix"] is True, "add_space_prefix")
        ok &= check([g.meta.get(f"tokenizer.ggml.{k}_token_id") for k in ("bos", "eos", "unknown")] ==
                    [1, 2, 0], "spm special ids")
    else:
        ok &= check(g.meta["tokenizer.ggml.model"] == "gpt2", "model gpt2")
        ok &= check(g.meta["tokenizer.ggml.pre"] == PRE_GGUF_NAME[spec["tok"]],
                    f"pre {g.meta.get('tokenizer.ggml.pre')}")
        ok &= check(list(g.meta["tokenizer.ggml.merges"]) == list(tok_gguf.meta["tokenizer.ggml.merges"]),
                    "merges")
        ok &= check(g.meta["tokenizer.ggml.bos_token_id"] == 759 and
                    g.meta["tokenizer.ggml.eos_token_id"] == 761, "bpe bos/eos from tokenizer_config")
        ok &= check(g.meta.get("tokenizer.ggml.add_bos_token") ==
                    (True if spec["tok"] == "llama3" else None), "add_bos_token from the template")
        ok &= check(g.meta.get("tokenizer.chat_template") == "{{ messages }}", "chat_template")
    return ok


def check_tokenizer(spec, out):
    tsv = "spm_expected.tsv" if spec["tok"] == "spm" else f"bpe_{spec['tok']}_expected.tsv"
    bad = []
    cases = read_cases(tsv)
    with hmt.Model(out) as m:
        for flags, text, ids in cases:
            got = m.tokenize(text, add_bos=bool(flags & 1), special=bool(flags & 2))
            if got != ids:
                bad.append((flags, text, ids, got))
    if bad:
        f, t, ids, got = bad[0]
        print(f"    first mismatch: flags {f} {t[:40]!r}: want {ids[:12]} got {got[:12]}")
    ok = check(not bad, f"{len(bad)} of {len(cases)} tokenizations differ from {tsv}")
    return ok, f"{len(cases) - len(bad)}/{len(cases)} tokenizations match"


def check_forward(spec, out, w, rng):
    """Every (context size, position stride) run of the spec (default one:
    64 slots, its pos_stride); returns (ok, message)."""
    ok, msgs = True, []
    runs = spec.get("runs", ((64, spec.get("pos_stride", 1)),))
    for n_ctx, stride in runs:
        o, msg = check_forward_run(spec, out, w, rng, n_ctx, stride)
        ok &= o
        msgs.append((f"n_ctx {n_ctx}: " if len(runs) > 1 else "") + msg)
    return ok, "; ".join(msgs)


def check_forward_run(spec, out, w, rng, n_ctx, stride):
    tokens = [int(t) for t in rng.integers(0, spec["vocab"], 14)]
    pos = [i * stride for i in range(len(tokens))]
    got = hmt_logits(out, tokens, pos, n_ctx=n_ctx)
    wo = {k: as_output(v, spec["out"]) for k, v in w.items()}
    ref = numpy_reference(spec, wo, seq_len=max(pos) + 1).forward(tokens=tokens, pos=pos)[0]
    e_np = rel_err(got, ref)
    ok = check(e_np <= TOL, f"libhmt vs NumPy HF reference: {e_np:.2e} > {TOL}")
    wrong = numpy_reference(spec, wo, neox=False, seq_len=max(pos) + 1).forward(tokens=tokens,
                                                                                pos=pos)[0]
    e_wrong = rel_err(got, wrong)
    ok &= check(e_wrong > 50 * TOL, f"control: the other RoPE pairing should differ, {e_wrong:.2e}")
    msg = f"logits vs NumPy ref {e_np:.1e} (other RoPE pairing: {e_wrong:.1e}"
    if spec.get("rope_scaling"):
        plain = numpy_reference(spec, wo, scaled=False).forward(tokens=tokens, pos=pos)[0]
        e_plain = rel_err(got, plain)
        ok &= check(e_plain > 50 * TOL, f"control: unscaled RoPE should differ, {e_plain:.2e}")
        msg += f", unscaled RoPE: {e_plain:.1e}"
    if (spec.get("rope_scaling") or {}).get("type") == "longrope":   # the other factor table
        other = numpy_reference(spec, wo, seq_len=0 if max(pos) + 1 > spec["orig"] else 10 ** 6)
        e_other = rel_err(got, other.forward(tokens=tokens, pos=pos)[0])
        ok &= check(e_other > 50 * TOL, f"control: the other LongRoPE factors should differ, "
                    f"{e_other:.2e}")
        msg += f", other LongRoPE factors: {e_other:.1e}"
    if spec.get("window") and spec["arch"] not in ("gemma2", "gemma3"):
        full = numpy_reference(spec, wo, seq_len=max(pos) + 1)
        full.swa_layers = [False] * full.n_layer
        e_full = rel_err(got, full.forward(tokens=tokens, pos=pos)[0])
        ok &= check(e_full > 50 * TOL, f"control: no window should differ, {e_full:.2e}")
        msg += f", no window: {e_full:.1e}"
    msg += ")"
    if torch is not None:
        tref = torch_reference(spec, wo, tokens, pos)
        e_t = rel_err(got, tref)
        e_tn = rel_err(tref, ref)
        ok &= check(e_t <= TOL, f"libhmt vs PyTorch HF reference: {e_t:.2e} > {TOL}")
        ok &= check(e_tn <= 1e-9, f"PyTorch vs NumPy reference: {e_tn:.2e}")
        msg += f", vs PyTorch ref {e_t:.1e} (PyTorch vs NumPy {e_tn:.0e})"
    return ok, msg


def run_cases(root):
    rng = np.random.default_rng(20240607)
    for spec in CASES:
        if spec["tok"] == "spm":
            try:
                import sentencepiece  # noqa: F401
            except ImportError:
                print(f"{spec['name']}: skipped (python3-sentencepiece not installed)")
                continue
        t0 = time.time()
        mdir, w, tok_gguf = build_dir(root, spec, rng)
        out = os.path.join(root, spec["name"] + ".gguf")
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            rc = convert_hf.main([mdir, "-o", out, "--outtype", spec["out"]])
        if not check(rc == 0, f"{spec['name']}: conversion failed"):
            continue
        ok = check_gguf(spec, out, tok_gguf)
        ok_t, tok_msg = check_tokenizer(spec, out)
        ok_f, msg = check_forward(spec, out, w, rng)
        status = "ok" if ok and ok_t and ok_f else "FAIL"
        print(f"{spec['name']:14s} {spec['src']:>4s}->{spec['out']:<4s} {status}: {msg}; "
              f"{tok_msg} ({time.time() - t0:.1f} s)")


# ---------------------------------------------------------------------------
# quantized outtypes
# ---------------------------------------------------------------------------
# Expected types written out by hand from llama-quantize's rule (llama.cpp
# src/llama-quant.cpp, llama_tensor_get_type_impl and tensor_type_fallback),
# not computed with tools/gguf_quants.py's tensor_type, which they check.
QUANT_CASES = [
    # untied, 9 layers: use_more_bits picks layers 0 (< 9/8), 7, 8 (>= 63/8) and 3, 6
    # ((i - 1) % 3 == 2); rows of 256 (d) take the K-quants, rows of 320 (ffn_down) fall back
    dict(name="quant-llama", arch="llama", tok="llama3", d=256, layers=9, heads=4, kv=2, ff=320,
         vocab=768, tied=False, src="F32", out="f32", theta=10000.0, eps=1e-5, more_bits={0, 3, 6, 7, 8}),
    # tied qwen2, 2 layers (use_more_bits: layer 1): rows of 64 and 96 fall back everywhere
    dict(name="quant-qwen2", arch="qwen2", tok="qwen2", d=64, layers=2, heads=4, kv=2, ff=96,
         vocab=768, tied=True, src="F32", out="f32", theta=1e6, eps=1e-6, more_bits={1}),
]
QUANT_FTYPE = {"q8_0": 7, "q4_0": 2, "q4_k_m": 15}
QBLOCK = {"Q8_0": 32, "Q4_0": 32, "Q5_0": 32, "Q4_K": 256, "Q6_K": 256}
K_FALLBACK = {"Q4_K": "Q5_0", "Q6_K": "Q8_0"}
# RMS error / RMS of the weights, per tensor (tests/reference/quants_ref.py's
# measured round trips on N(0,1) data: Q8_0 0.0054, Q6_K 0.019, Q5_0 0.043,
# Q4_K 0.077, Q4_0 0.086), with some room
QRMS = {"Q8_0": 0.008, "Q6_K": 0.03, "Q5_0": 0.06, "Q4_K": 0.11, "Q4_0": 0.12}


def expected_type(spec, outtype, name, ne0):
    """llama-quantize's choice, by hand (see QUANT_CASES)."""
    is_out = name == "output.weight" or (spec["tied"] and name == "token_embd.weight")
    layer = int(name.split(".")[1]) if name.startswith("blk.") else -1
    if outtype == "q8_0":
        return "Q8_0"
    default = {"q4_0": "Q4_0", "q4_k_m": "Q4_K"}[outtype]
    t = default
    if is_out:
        t = "Q8_0" if ne0 % QBLOCK[default] else "Q6_K"
    elif outtype == "q4_k_m" and (name.endswith("attn_v.weight") or name.endswith("ffn_down.weight")) \
            and layer in spec["more_bits"]:
        t = "Q6_K"
    if ne0 % QBLOCK[t]:
        t = K_FALLBACK[t]
    return t


def block_bound(w, t):
    """Per-element error bound of the round-to-nearest block formats: half a
    step of the block's scale d (Q8_0: d = max|x|/127), one step where the
    value opposite the block's largest one is clipped (Q4_0/Q5_0: d = max/-8,
    max/-16, so +|max| needs q = 8 or 16), plus float16 rounding of d."""
    nb = QBLOCK[t]
    b = np.abs(w.reshape(-1, nb))
    amax = b.max(axis=1, keepdims=True)
    d = amax / {"Q8_0": 127.0, "Q4_0": 8.0, "Q5_0": 16.0}[t]
    step = 0.5 if t == "Q8_0" else 1.0
    return np.broadcast_to(step * d * (1 + 2.0 ** -10) + amax * 2.0 ** -10 + 1e-30, b.shape).reshape(w.shape)


def check_quant_tensors(spec, outtype, out, w, deq_hf=None):
    g = GGUFFile(out)
    ok = check(g.meta["general.file_type"] == QUANT_FTYPE[outtype] and
               g.meta.get("general.quantization_version") == 2,
               f"{spec['name']} {outtype}: file_type {g.meta['general.file_type']}, "
               f"quantization_version {g.meta.get('general.quantization_version')}")
    counts, worst = {}, {}
    hf_of = {"token_embd.weight": "model.embed_tokens.weight", "output.weight": "lm_head.weight"}
    for name, t in g.tensors.items():
        tname = g_type_name(t.type)
        if len(t.ne) == 1:
            ok &= check(tname == "F32", f"{spec['name']} {outtype}: {name} is {tname}, norms/biases stay F32")
            continue
        want = expected_type(spec, outtype, name, t.ne[0])
        ok &= check(tname == want, f"{spec['name']} {outtype}: {name} (rows of {t.ne[0]}) is {tname}, "
                                   f"llama-quantize's rule says {want}")
        counts[tname] = counts.get(tname, 0) + 1
        # the original float weights, in the GGUF's layout (llama q/k rows permuted)
        if name in hf_of:
            orig = w[hf_of[name]]
        else:
            _, i, rest = name.split(".", 2)
            orig = w[f"model.layers.{i}.{HF_NAMES[rest]}"]
            if spec["arch"] == "llama" and rest in ("attn_q.weight", "attn_k.weight"):
                orig = convert_hf.permute_rope(orig, spec["heads"] if rest == "attn_q.weight" else spec["kv"])
        deq = g.tensor(name)
        if deq_hf is not None:  # the dequantized weights back in HF layout and names
            hf = hf_of.get(name) or f"model.layers.{name.split('.')[1]}.{HF_NAMES[name.split('.', 2)[2]]}"
            back = deq
            if spec["arch"] == "llama" and name.endswith(("attn_q.weight", "attn_k.weight")):
                back = unpermute_rope(deq, spec["heads"] if name.endswith("attn_q.weight") else spec["kv"])
            deq_hf[hf] = back
        err = np.abs(deq - orig)
        rms = float(np.sqrt((err ** 2).mean() / (orig.astype(np.float64) ** 2).mean()))
        worst[tname] = max(worst.get(tname, 0.0), rms)
        ok &= check(rms <= QRMS[tname], f"{spec['name']} {outtype}: {name} ({tname}) RMS error {rms:.4f} "
                                        f"> {QRMS[tname]}")
        if tname in ("Q8_0", "Q4_0", "Q5_0"):
            bad = int((err > block_bound(orig, tname)).sum())
            ok &= check(bad == 0, f"{spec['name']} {outtype}: {name} ({tname}): {bad} elements beyond "
                                  "the block's rounding bound")
    return ok, counts, worst


def g_type_name(t):
    from gguf_read import TENSOR_TYPES
    return TENSOR_TYPES[t][0]


def run_quantized(root):
    rng = np.random.default_rng(99)
    for spec in QUANT_CASES:
        t0 = time.time()
        mdir, w, _ = build_dir(root, spec, rng)
        msgs = []
        for outtype in ("q8_0", "q4_0", "q4_k_m"):
            out = os.path.join(root, f"{spec['name']}-{outtype}.gguf")
            with contextlib.redirect_stdout(io.StringIO()):
                rc = convert_hf.main([mdir, "-o", out, "--outtype", outtype])
            if not check(rc == 0, f"{spec['name']}: --outtype {outtype} failed"):
                continue
            deq_hf = dict(w) if outtype == "q8_0" else None   # 1-D tensors stay as they are
            ok, counts, worst = check_quant_tensors(spec, outtype, out, w, deq_hf)
            if deq_hf is not None:
                w_q8 = deq_hf
            msgs.append(f"{outtype} {'ok' if ok else 'FAIL'} (" +
                        ", ".join(f"{n} {t} RMS<={worst[t]:.3f}" for t, n in sorted(counts.items())) + ")")
        # Q8_0 loads today: libhmt's logits of the q8_0 file equal the
        # reference forward pass on the dequantized weights (within TOL), and
        # differ from the f32 conversion's by what quantizing the weights
        # changes in the reference
        f32 = os.path.join(root, f"{spec['name']}-f32.gguf")
        with contextlib.redirect_stdout(io.StringIO()):
            rc = convert_hf.main([mdir, "-o", f32, "--outtype", "f32"])
        tokens = [int(t) for t in rng.integers(0, spec["vocab"], 12)]
        if check(rc == 0, f"{spec['name']}: f32 conversion failed"):
            a = hmt_logits(f32, tokens)
            b = hmt_logits(os.path.join(root, f"{spec['name']}-q8_0.gguf"), tokens)
            e = rel_err(b, a)
            ref = numpy_reference(spec, w).forward(tokens=tokens)[0]
            ref_q8 = numpy_reference(spec, w_q8).forward(tokens=tokens)[0]
            e_ref = rel_err(ref_q8, ref)
            e_deq = rel_err(b, ref_q8)
            check(e_deq <= TOL, f"{spec['name']}: q8_0 logits vs the reference on the dequantized "
                                f"weights {e_deq:.2e} > {TOL}")
            check(0 < e <= 1.1 * e_ref + TOL,
                  f"{spec['name']}: q8_0 logits vs f32's {e:.2e}, want <= 1.1 x {e_ref:.2e} (what the "
                  "weights' quantization changes in the reference)")
            msgs.append(f"q8_0 loaded: logits vs f32 conversion {e:.1e} (reference: the weights' "
                        f"quantization alone {e_ref:.1e}; libhmt vs reference on dequantized weights {e_deq:.1e})")
        print(f"{spec['name']:14s} quantized: " + "; ".join(msgs) + f" ({time.time() - t0:.1f} s)")


# ---------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------
def run_bad_inputs(root):
    spec = dict(name="base", arch="llama", tok="llama3", d=32, layers=1, heads=2, kv=1, ff=48,
                vocab=768, tied=False, src="F32", out="f32", theta=10000.0, eps=1e-5)
    base, w, _ = build_dir(root, spec, np.random.default_rng(5))
    st = os.path.join(base, "model.safetensors")
    n = [0]

    def variant(mutate):
        n[0] += 1
        d = os.path.join(root, f"bad{n[0]}")
        shutil.copytree(base, d)
        mutate(d)
        return d

    def edit_json(name, fn):
        def m(d):
            p = os.path.join(d, name)
            with open(p) as f:
                obj = json.load(f)
            fn(obj)
            with open(p, "w") as f:
                json.dump(obj, f)
        return m

    def rewrite_weights(fn):
        def m(d):
            ww = dict(w)
            fn(ww)
            write_safetensors(os.path.join(d, "model.safetensors"), ww, "F32")
        return m

    def patch_header(fn):
        """Rewrite the safetensors header JSON, keeping the data."""
        def m(d):
            p = os.path.join(d, "model.safetensors")
            raw = open(p, "rb").read()
            hl = int.from_bytes(raw[:8], "little")
            h = json.loads(raw[8:8 + hl])
            fn(h)
            hb = json.dumps(h).encode()
            hb += b" " * ((-len(hb)) % 8)
            open(p, "wb").write(len(hb).to_bytes(8, "little") + hb + raw[8 + hl:])
        return m

    def write_bytes(name, data):
        return lambda d: open(os.path.join(d, name), "wb").write(data)

    def remove(name):
        return lambda d: os.remove(os.path.join(d, name))

    def shard(d):
        os.remove(os.path.join(d, "model.safetensors"))
        write_weights(d, w, "F32", shards=2)
        os.remove(os.path.join(d, "model-00002-of-00002.safetensors"))

    size = os.path.getsize(st)
    rope_llama3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    cases = [
        ("missing directory", lambda d: shutil.rmtree(d), "not a directory"),
        ("no config.json", remove("config.json"), "config.json: not found"),
        ("config.json not JSON", write_bytes("config.json", b"{\"hidden_size\": 32,"), "not valid JSON"),
        ("other architecture", edit_json("config.json", lambda c: c.update(architectures=["GPT2LMHeadModel"])),
         "not supported"),
        ("gemma2 query_pre_attn_scalar", edit_json("config.json", lambda c: c.update(
            architectures=["Gemma2ForCausalLM"], hidden_act="gelu_pytorch_tanh", head_dim=16,
            tie_word_embeddings=True, query_pre_attn_scalar=99)), "query_pre_attn_scalar 99"),
        ("gemma2 untied", edit_json("config.json", lambda c: c.update(
            architectures=["Gemma2ForCausalLM"], hidden_act="gelu_pytorch_tanh", head_dim=16,
            query_pre_attn_scalar=16)), "tie_word_embeddings false"),
        ("gemma3 final soft-capping", edit_json("config.json", lambda c: c.update(
            architectures=["Gemma3ForCausalLM"], hidden_act="gelu_pytorch_tanh", head_dim=16,
            tie_word_embeddings=True, query_pre_attn_scalar=16, final_logit_softcapping=30.0)),
         "final_logit_softcapping 30.0"),
        ("gemma3 local RoPE base", edit_json("config.json", lambda c: c.update(
            architectures=["Gemma3ForCausalLM"], hidden_act="gelu_pytorch_tanh", head_dim=16,
            tie_word_embeddings=True, query_pre_attn_scalar=16, rope_local_base_freq=20000.0)),
         "rope_local_base_freq 20000.0"),
        ("gemma3 layer pattern", edit_json("config.json", lambda c: c.update(
            architectures=["Gemma3ForCausalLM"], hidden_act="gelu_pytorch_tanh", head_dim=16,
            tie_word_embeddings=True, query_pre_attn_scalar=16, sliding_window_pattern=4)),
         "sliding_window_pattern 4"),
        ("rope_scaling dynamic", edit_json("config.json", lambda c: c.update(rope_scaling={"type": "dynamic", "factor": 2.0})),
         "rope_scaling 'dynamic' not implemented"),
        ("rope_scaling longrope", edit_json("config.json", lambda c: c.update(rope_scaling={"rope_type": "longrope"})),
         "rope_scaling longrope on llama: libhmt applies LongRoPE factors to phi3 only"),
        ("rope_scaling unknown", edit_json("config.json", lambda c: c.update(rope_scaling={"rope_type": "dynamic"})),
         "rope_scaling 'dynamic' not implemented"),
        ("yarn beta_fast", edit_json("config.json", lambda c: c.update(rope_scaling={
            "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64, "beta_fast": 16})),
         "beta_fast 16"),
        ("llama3 on qwen2", edit_json("config.json", lambda c: c.update(
            architectures=["Qwen2ForCausalLM"], rope_scaling=rope_llama3)), "rope_freqs only to llama"),
        ("head_dim differs", edit_json("config.json", lambda c: c.update(head_dim=64)),
         "config.json implies [128, 32]"),
        ("partial rotary on llama", edit_json("config.json", lambda c: c.update(
            partial_rotary_factor=0.5)), "partial_rotary_factor 0.5 not supported"),
        ("phi3 without its fused tensors", edit_json("config.json", lambda c: c.update(
            architectures=["Phi3ForCausalLM"], original_max_position_embeddings=64)),
         "missing tensor(s) model.layers.0.self_attn.qkv_proj.weight"),
        ("phi3 odd rotary dims", edit_json("config.json", lambda c: c.update(
            architectures=["Phi3ForCausalLM"], partial_rotary_factor=0.2)),
         "partial_rotary_factor 0.2 rotates 3 of 16 dims"),
        ("phi3 longrope short factor list", edit_json("config.json", lambda c: c.update(
            architectures=["Phi3ForCausalLM"], original_max_position_embeddings=64,
            rope_scaling={"type": "longrope", "short_factor": [1.0] * 7, "long_factor": [2.0] * 8})),
         "short_factor must be 8 positive numbers"),
        ("phi3 longrope without original", edit_json("config.json", lambda c: c.update(
            architectures=["Phi3ForCausalLM"],
            rope_scaling={"type": "longrope", "short_factor": [1.0] * 8, "long_factor": [2.0] * 8})),
         "needs original_max_position_embeddings"),
        ("mistral negative window", edit_json("config.json", lambda c: c.update(
            architectures=["MistralForCausalLM"], sliding_window=-1)), "sliding_window -1"),
        ("heads do not divide", edit_json("config.json", lambda c: c.update(num_key_value_heads=3)),
         "do not divide"),
        ("attention_bias", edit_json("config.json", lambda c: c.update(attention_bias=True)), "attention_bias"),
        ("no weights", remove("model.safetensors"), "no weights"),
        ("only pytorch_model.bin", lambda d: (os.remove(os.path.join(d, "model.safetensors")),
                                              write_bytes("pytorch_model.bin", b"PK")(d)), "safetensors only"),
        ("truncated safetensors", lambda d: os.truncate(os.path.join(d, "model.safetensors"), size - 100),
         "truncated"),
        ("header length past the end", write_bytes("model.safetensors", (10 ** 6).to_bytes(8, "little") + b"{}"),
         "header length"),
        ("file shorter than 8 bytes", write_bytes("model.safetensors", b"\x01\x02"), "too short"),
        ("header not JSON", write_bytes("model.safetensors", (4).to_bytes(8, "little") + b"{{{{"),
         "not valid JSON"),
        ("offsets vs shape", patch_header(lambda h: h["model.norm.weight"].update(shape=[31])), "needs"),
        ("unsupported dtype", patch_header(lambda h: h["model.norm.weight"].update(dtype="I32")), "dtype I32"),
        ("unknown dtype", patch_header(lambda h: h["model.norm.weight"].update(dtype="F12")), "unknown dtype"),
        ("overlapping tensors", patch_header(lambda h: h["model.norm.weight"].update(
            data_offsets=h["model.embed_tokens.weight"]["data_offsets"][:1] +
            [h["model.embed_tokens.weight"]["data_offsets"][0] + 128])), "overlap"),
        ("missing tensor", rewrite_weights(lambda ww: ww.pop("model.layers.0.self_attn.k_proj.weight")),
         "missing tensor(s) model.layers.0.self_attn.k_proj.weight"),
        ("untied without lm_head", rewrite_weights(lambda ww: ww.pop("lm_head.weight")),
         "tie_word_embeddings is false"),
        ("unexpected tensor", rewrite_weights(lambda ww: ww.update({"model.layers.0.mlp.extra.weight": np.zeros(2, np.float32)})),
         "unexpected tensor(s) model.layers.0.mlp.extra.weight"),
        ("wrong shape", rewrite_weights(lambda ww: ww.update({"model.norm.weight": np.ones(33, np.float32)})),
         "config.json implies [32]"),
        ("NaN weight", rewrite_weights(lambda ww: ww["model.layers.0.mlp.up_proj.weight"].__setitem__((0, 0), np.nan)),
         "NaN"),
        ("shard missing", shard, "shard 'model-00002-of-00002.safetensors' not found"),
        ("no tokenizer", remove("tokenizer.json"), "no tokenizer"),
        ("unknown pre-tokenizer", edit_json("tokenizer.json", lambda t: t.update(
            pre_tokenizer={"type": "Whitespace"})), "pre-tokenizer (Whitespace)"),
        ("SentencePiece-style tokenizer.json", edit_json("tokenizer.json", lambda t: t["model"].update(byte_fallback=True)),
         "SentencePiece-style"),
        ("token id past the table", lambda d: (
            edit_json("config.json", lambda c: c.update(vocab_size=700))(d),
            rewrite_weights(lambda ww: ww.update({k: ww[k][:700] for k in
                                                  ("model.embed_tokens.weight", "lm_head.weight")}))(d)),
         "outside the embedding table"),
        ("bad tokenizer.model", write_bytes("tokenizer.model", b"not a protobuf at all"), "tokenizer.model"),
    ]
    for what, mutate, expect in cases:
        d = variant(mutate)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = convert_hf.main([d, "-o", os.path.join(root, "bad.gguf"), "--outtype", "f32"])
        msg = err.getvalue()
        if os.environ.get("SHOW_ERRORS"):
            print(f"  {what}: {msg.strip()}")
        check(rc == 1 and "convert_hf: error:" in msg and expect in msg,
              f"bad input '{what}': rc {rc}, message {msg.strip()!r} (want {expect!r})")
    check(not [n for n in os.listdir(root) if n.startswith("bad.gguf")],
          "no output or temporary left by failed conversions")
    # out-of-range values for f16 are found while writing: no partial file remains
    big = variant(rewrite_weights(lambda ww: ww["model.layers.0.mlp.up_proj.weight"].__setitem__((0, 0), 1e6)))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = convert_hf.main([big, "-o", os.path.join(root, "big.gguf"), "--outtype", "f16"])
    check(rc == 1 and "beyond float16's range" in err.getvalue() and
          not [n for n in os.listdir(root) if n.startswith("big.gguf")],
          f"f16 overflow: rc {rc} {err.getvalue().strip()!r}")
    # a quantized tensor's block scales are float16 too
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = convert_hf.main([big, "-o", os.path.join(root, "bigq.gguf"), "--outtype", "q4_k_m"])
    check(rc == 1 and "float16 block scales" in err.getvalue() and
          not [n for n in os.listdir(root) if n.startswith("bigq.gguf")],
          f"q4_k_m overflow: rc {rc} {err.getvalue().strip()!r}")
    # --pre rescues an unrecognized pre-tokenizer declaration
    odd = variant(edit_json("tokenizer.json", lambda t: t.update(pre_tokenizer={"type": "Whitespace"})))
    with contextlib.redirect_stdout(io.StringIO()):
        rc = convert_hf.main([odd, "-o", os.path.join(root, "odd.gguf"), "--pre", "llama-bpe"])
    check(rc == 0 and GGUFFile(os.path.join(root, "odd.gguf")).meta["tokenizer.ggml.pre"] == "llama-bpe",
          "--pre overrides the pre-tokenizer")
    # the real command line: exit status and message
    r = subprocess.run([PYTHON, CONVERTER, os.path.join(root, "nonexistent"), "-o", os.path.join(root, "x.gguf")],
                       capture_output=True, text=True)
    check(r.returncode == 1 and r.stderr.startswith("convert_hf: error:") and "Traceback" not in r.stderr,
          f"command line: rc {r.returncode}, stderr {r.stderr.strip()!r}")
    r = subprocess.run([PYTHON, CONVERTER, base, "-o", os.path.join(root, "cli.gguf"), "--outtype", "bf16"],
                       capture_output=True, text=True)
    check(r.returncode == 0 and "wrote" in r.stdout and os.path.isfile(os.path.join(root, "cli.gguf")),
          f"command line conversion: rc {r.returncode} {r.stderr.strip()!r}")
    print(f"bad inputs: {len(cases) + 1} rejected with a clear message; --pre override and CLI checked")


def run_base_path():
    """convert_hf.HParams as tools/convert_hmt_pytorch.py's --base-hf reads a
    config (full=False: it writes the metadata itself and carries no RoPE
    scaling, head_dim or Qwen3 yet): each is refused, never dropped."""
    base = dict(architectures=["LlamaForCausalLM"], hidden_size=64, num_hidden_layers=1,
                intermediate_size=96, num_attention_heads=4, num_key_value_heads=2, vocab_size=320)
    cases = [(dict(rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
              "rope_scaling"),
             (dict(rope_scaling={"type": "linear", "factor": 2.0}), "rope_scaling"),
             (dict(head_dim=32), "head_dim 32"),
             (dict(architectures=["Qwen3ForCausalLM"], head_dim=16), "Qwen3ForCausalLM"),
             (dict(architectures=["Phi3ForCausalLM"]), "Phi3ForCausalLM"),
             (dict(architectures=["MistralForCausalLM"], max_position_embeddings=32768),
              "sliding_window 4096")]
    for extra, want in cases:
        cfg = dict(base, **extra)
        try:
            convert_hf.HParams(cfg, "config.json")
            msg = None
        except convert_hf.HFError as e:
            msg = str(e)
        check(msg is not None and want in msg, f"base path: {extra} not refused ({msg!r})")
        full = convert_hf.HParams(cfg, "config.json", full=True)
        check(full is not None, f"convert(): {extra} accepted")
    check(convert_hf.HParams(base, "config.json").head_dim == 16, "base path: a plain config")
    print(f"base path (convert_hmt_pytorch --base-hf): {len(cases)} configs it cannot carry refused")


def main():
    t0 = time.time()
    root = tempfile.mkdtemp(prefix="hmt-convert-hf-")
    try:
        print(f"references: NumPy (tests/reference/llama_ref.py){' and PyTorch ' + torch.__version__ if torch else ''}")
        run_cases(root)
        run_quantized(root)
        run_bad_inputs(root)
        run_base_path()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"check_convert_hf: {passed} passed, {failed} failed ({time.time() - t0:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
