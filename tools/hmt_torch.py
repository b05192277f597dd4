"""PyTorch Llama / Qwen2 / Qwen3 backbone + HMT (docs/HMT.md), the trainer's
model code.

Weights are kept in llama.cpp's GGUF layout so export is a plain copy:
  q/k RoPE on the first n_rot dims of each head, llama in "normal" mode
  (adjacent pairs (x[2i], x[2i+1])), qwen2/qwen3 in NEOX mode (pairs
  (x[i], x[i + n_rot/2])), angle_i = pos * f_i with the file's RoPE table
  (base^(-2i/n_rot), or the scaled one: llama_ref.rope_table) times mscale;
  qwen2 q/k/v biases; qwen3 per-head q/k RMSNorm before RoPE;
  RMSNorm x / sqrt(mean(x^2) + eps) * w; SwiGLU FFN; tied LM head
  (token_embd) unless untied. Training from scratch makes llama models.
Same math as tests/reference/llama_ref.py and hmt_ref.py (the C library's
oracles), in float32 (or float64 for checks).

HMT (mode full), per segment n of x (L tokens), see docs/HMT.md:
  S_n = final-norm hidden of the trailing T of backbone([T, E(x_n[:j]), T])   (n >= 1)
  P_n = softmax((W_q S_n) . (W_k M_i)^T / sqrt(d_h)) . M   over the cached M (before M_n)
  P_0 = M_init
  backbone([P_n, E(sensory_n), E(x_n), P_n]) -> logits of x rows, M_n = last row
rmt: P_n = M_{n-1}. segments: backbone(x_n) from position 0.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Config:
    def __init__(self, n_vocab=3000, n_embd=256, n_layer=4, n_head=4, n_head_kv=4, n_ff=688,
                 n_ctx=512, rope_base=10000.0, eps=1e-5, tied=True, arch="llama", head_dim=None,
                 n_rot=None, rope_freq=None, mscale=1.0, gemma=None):
        self.n_vocab, self.n_embd, self.n_layer = n_vocab, n_embd, n_layer
        self.n_head, self.n_head_kv, self.n_ff = n_head, n_head_kv, n_ff
        self.n_ctx, self.rope_base, self.eps, self.tied = n_ctx, rope_base, eps, tied
        if arch not in ("llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"):
            raise ValueError(f"arch {arch!r} (llama, qwen2, qwen3, gemma2, gemma3, phi3)")
        self.arch = arch
        self.head_dim = head_dim or n_embd // n_head
        self.n_rot = n_rot or self.head_dim
        # per-pair RoPE frequencies (None: base^(-2i/n_rot)) and magnitude
        self.rope_freq = None if rope_freq is None else [float(f) for f in rope_freq]
        self.mscale = float(mscale)
        # Gemma 2/3 (llama_ref.gemma_hparams' fields, as llama.cpp reads the
        # GGUF): attn_scale, attn_softcap, final_softcap, embd_scale,
        # input_scale, n_swa, swa_layers, rope_freq_swa; neutral otherwise
        g = dict(attn_scale=1.0 / math.sqrt(self.head_dim), attn_softcap=0.0, final_softcap=0.0,
                 embd_scale=1.0, input_scale=1.0, n_swa=0, swa_layers=[False] * n_layer,
                 rope_freq_swa=None)
        g.update(gemma or {})
        self.__dict__.update(g)
        self.swa_layers = [bool(x) for x in self.swa_layers]
        self.rope_freq_swa = None if self.rope_freq_swa is None else [float(f) for f in
                                                                       self.rope_freq_swa]

    def to_dict(self):
        return dict(self.__dict__)


def linear(x, w):
    """x @ w.T through a 1x1 convolution in float32 (under bf16 autocast: F.linear,
    which oneDNN runs fast in bf16): this torch's BLAS is the generic
    reference one (a few GFLOPS), its oneDNN convolution is ~50x faster.
    Same math in float32 (different summation order only)."""
    if not FAST_LINEAR or x.dtype != torch.float32 or torch.is_autocast_cpu_enabled():
        return F.linear(x, w)
    sh = x.shape
    x2 = x.reshape(-1, sh[-1]).t()[None, :, :, None]
    y = F.conv2d(x2, w[:, :, None, None])
    return y[0, :, :, 0].t().reshape(*sh[:-1], w.shape[0])


FAST_LINEAR = True


def rmsnorm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, hd = c.n_embd, c.head_dim
        bias = c.arch == "qwen2"
        self.attn_norm = nn.Parameter(torch.ones(d))
        self.attn_q = nn.Linear(d, c.n_head * hd, bias=bias)
        self.attn_k = nn.Linear(d, c.n_head_kv * hd, bias=bias)
        self.attn_v = nn.Linear(d, c.n_head_kv * hd, bias=bias)
        if c.arch in ("qwen3", "gemma3"):
            self.attn_q_norm = nn.Parameter(torch.ones(hd))
            self.attn_k_norm = nn.Parameter(torch.ones(hd))
        if c.arch in ("gemma2", "gemma3"):
            self.post_attention_norm = nn.Parameter(torch.ones(d))
            self.post_ffw_norm = nn.Parameter(torch.ones(d))
        self.attn_output = nn.Linear(c.n_head * hd, d, bias=False)
        self.ffn_norm = nn.Parameter(torch.ones(d))
        self.ffn_gate = nn.Linear(d, c.n_ff, bias=False)
        self.ffn_up = nn.Linear(d, c.n_ff, bias=False)
        self.ffn_down = nn.Linear(c.n_ff, d, bias=False)


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.tok_embd = nn.Embedding(c.n_vocab, c.n_embd)
        self.layers = nn.ModuleList([Block(c) for _ in range(c.n_layer)])
        self.output_norm = nn.Parameter(torch.ones(c.n_embd))
        self.output = None if c.tied else nn.Linear(c.n_embd, c.n_vocab, bias=False)
        if c.rope_freq is not None:
            inv = torch.tensor(c.rope_freq, dtype=torch.float64)
        else:
            i = torch.arange(c.n_rot // 2, dtype=torch.float64)
            inv = c.rope_base ** (-2 * i / c.n_rot)
        self.register_buffer("inv_freq", inv, persistent=False)
        inv_swa = inv if c.rope_freq_swa is None else torch.tensor(c.rope_freq_swa, dtype=torch.float64)
        self.register_buffer("inv_freq_swa", inv_swa, persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        std = 0.02
        nn.init.normal_(self.tok_embd.weight, std=std)
        for b in self.layers:
            for m in (b.attn_q, b.attn_k, b.attn_v, b.ffn_gate, b.ffn_up):
                nn.init.normal_(m.weight, std=std)
            for m in (b.attn_output, b.ffn_down):
                nn.init.normal_(m.weight, std=std / math.sqrt(2 * self.c.n_layer))
        if self.output is not None:
            nn.init.normal_(self.output.weight, std=std)

    def rope(self, x, n, inv_freq=None):
        """x [B, n, h, hd], positions 0..n-1: the first n_rot dims rotate,
        adjacent pairs (llama.cpp normal mode, llama) or NEOX (qwen2, qwen3,
        gemma2, gemma3); inv_freq: the table (default the global one)."""
        c = self.c
        inv_freq = self.inv_freq if inv_freq is None else inv_freq
        pos = torch.arange(n, dtype=torch.float64, device=x.device)
        ang = pos[:, None] * inv_freq[None, :]                         # [n, n_rot/2]
        cs = (ang.cos() * c.mscale).to(x.dtype)[None, :, None, :]
        sn = (ang.sin() * c.mscale).to(x.dtype)[None, :, None, :]
        r, rest = x[..., :c.n_rot], x[..., c.n_rot:]
        if c.arch == "llama":
            a, b = r[..., 0::2], r[..., 1::2]
            r = torch.stack((a * cs - b * sn, a * sn + b * cs), dim=-1).flatten(-2)
        else:
            a, b = r[..., :c.n_rot // 2], r[..., c.n_rot // 2:]
            r = torch.cat((a * cs - b * sn, a * sn + b * cs), dim=-1)
        return torch.cat((r, rest), dim=-1) if rest.shape[-1] else r

    def embed(self, toks):
        e = self.tok_embd(toks)
        return e if self.c.embd_scale == 1.0 else e * self.c.embd_scale   # gemma3

    def forward_embd(self, x):
        """x [B, n, d] input embeddings at positions 0..n-1 (fresh cache).
        Returns final-norm hidden [B, n, d]."""
        c = self.c
        B, n, d = x.shape
        hd = c.head_dim
        group = c.n_head // c.n_head_kv

        def proj(m, h):
            y = linear(h, m.weight)
            return y if m.bias is None else y + m.bias
        gemma = c.arch in ("gemma2", "gemma3")
        if c.input_scale != 1.0:   # gemma2: every input row
            x = x * c.input_scale
        for li, L in enumerate(self.layers):
            swa = c.swa_layers[li]
            h = rmsnorm(x, L.attn_norm, c.eps)
            q = proj(L.attn_q, h).view(B, n, c.n_head, hd)
            k = proj(L.attn_k, h).view(B, n, c.n_head_kv, hd)
            if c.arch in ("qwen3", "gemma3"):
                q, k = rmsnorm(q, L.attn_q_norm, c.eps), rmsnorm(k, L.attn_k_norm, c.eps)
            inv = self.inv_freq_swa if swa else None
            q, k = self.rope(q, n, inv), self.rope(k, n, inv)
            v = proj(L.attn_v, h).view(B, n, c.n_head_kv, hd)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            if group > 1:
                k = k.repeat_interleave(group, dim=1)
                v = v.repeat_interleave(group, dim=1)
            att = (q @ k.transpose(-1, -2)) * c.attn_scale
            if c.attn_softcap:   # gemma2
                att = torch.tanh(att / c.attn_softcap) * c.attn_softcap
            mask = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
            if swa:   # the row at slot s sees slots s - n_swa + 1 .. s
                mask = mask & ~torch.ones(n, n, dtype=torch.bool, device=x.device).tril(-c.n_swa)
            att = att.masked_fill(~mask, float("-inf")).softmax(-1)
            o = (att @ v).transpose(1, 2).reshape(B, n, c.n_head * hd)
            a = linear(o, L.attn_output.weight)
            x = x + (rmsnorm(a, L.post_attention_norm, c.eps) if gemma else a)
            h = rmsnorm(x, L.ffn_norm, c.eps)
            gate = linear(h, L.ffn_gate.weight)
            gate = F.gelu(gate, approximate="tanh") if gemma else F.silu(gate)
            f = linear(gate * linear(h, L.ffn_up.weight), L.ffn_down.weight)
            x = x + (rmsnorm(f, L.post_ffw_norm, c.eps) if gemma else f)
        return rmsnorm(x, self.output_norm, c.eps)

    def logits(self, hidden):
        W = self.tok_embd.weight if self.output is None else self.output.weight
        z = linear(hidden, W)
        if self.c.final_softcap:   # gemma2
            z = torch.tanh(z / self.c.final_softcap) * self.c.final_softcap
        return z

    def forward(self, toks):
        h = self.forward_embd(self.embed(toks))
        return self.logits(h), h


class HMTParams(nn.Module):
    def __init__(self, d, d_h, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.T = nn.Parameter(torch.randn(d, generator=g) * 0.02)
        self.M_init = nn.Parameter(torch.randn(d, generator=g) * 0.02)
        self.Wq = nn.Parameter(torch.randn(d_h, d, generator=g) / math.sqrt(d))
        self.Wk = nn.Parameter(torch.randn(d_h, d, generator=g) / math.sqrt(d))


class HMT:
    """Segment-level HMT over a batch of parallel token streams."""

    def __init__(self, model, params, L, k, N, fraction=0.5, mode="full"):
        self.m, self.p, self.L, self.k, self.N = model, params, L, k, N
        self.j = max(1, int(round(L * float(torch.tensor(fraction, dtype=torch.float32)))))
        self.mode = mode
        # training hook: called with each recall's scores [B, m] (a regulariser
        # reads them); the math is unchanged
        self.on_scores = None

    def new_state(self):
        return dict(n=0, mems=[], sens=None)

    @staticmethod
    def detach(state):
        return dict(n=state["n"], mems=[m.detach() for m in state["mems"]],
                    sens=state["sens"])

    def summary(self, x):
        B = x.shape[0]
        T = self.p.T.to(self.m.tok_embd.weight.dtype)[None, None].expand(B, 1, -1)
        e = torch.cat([T, self.m.embed(x[:, :self.j]), T], 1)
        return self.m.forward_embd(e)[:, -1]

    def recall(self, S, mems):
        M = torch.stack(mems, 1)                                   # [B, m, d]
        Wq, Wk = self.p.Wq.to(S.dtype), self.p.Wk.to(S.dtype)
        q = S @ Wq.t()                                             # [B, d_h]
        K = M @ Wk.t()                                             # [B, m, d_h]
        s = (K @ q[:, :, None])[..., 0] / math.sqrt(Wq.shape[0])  # [B, m]
        if self.on_scores is not None:
            self.on_scores(s)
        w = s.softmax(-1)
        return (w[:, :, None] * M).sum(1), w

    def segment(self, state, x):
        """x [B, L_n] token ids of segment n. Returns (logits [B, L_n, V], new state)."""
        B = x.shape[0]
        dt = self.m.tok_embd.weight.dtype
        if self.mode == "segments":
            lg, _ = self.m(x)
            return lg, dict(n=state["n"] + 1, mems=[], sens=None)
        n = state["n"]
        if n == 0:
            P = self.p.M_init.to(dt)[None].expand(B, -1)
        elif self.mode == "rmt":
            P = state["mems"][-1]
        else:
            P, _ = self.recall(self.summary(x), state["mems"][-self.N:])
        parts = [P[:, None]]
        ks = 0
        if state["sens"] is not None and self.k > 0:
            parts.append(self.m.embed(state["sens"]))
            ks = state["sens"].shape[1]
        parts += [self.m.embed(x), P[:, None]]
        h = self.m.forward_embd(torch.cat(parts, 1))
        lg = self.m.logits(h[:, 1 + ks:1 + ks + x.shape[1]])
        M = h[:, -1]
        mems = (state["mems"] + [M])[-self.N:]
        sens = x[:, -self.k:] if self.k > 0 else None
        return lg, dict(n=n + 1, mems=mems, sens=sens)


def load_gguf(path, adapter_path=None, dtype=torch.float32, n_ctx=None):
    """A GGUF llama model (and optionally an HMT adapter) as (Llama, HMTParams
    or None, adapter hp dict or None), weights as stored (F16 -> exact floats).
    Uses tests/reference/gguf_read.py (independent reader). phi3's fused
    attn_qkv and ffn_up (gate|up) are split into the q/k/v and gate/up
    modules. n_ctx: the context the backbone runs in, which picks LongRoPE's
    short or long factors as libhmt does (llama_ref.Model.use_context);
    default the adapter's pass k + L + 2 (libhmt's HMT context), else the
    model's own context."""
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                    "reference"))
    import numpy as np
    from gguf_read import GGUFFile
    from llama_ref import Model as RefModel
    g = GGUFFile(path)
    mt = g.meta
    a = mt["general.architecture"]
    if a not in ("llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"):
        raise ValueError(f"arch {a!r}: llama, qwen2, qwen3, gemma2, gemma3 or phi3")
    ref = RefModel(path)   # the head size and RoPE table as libhmt reads them (llama_ref.rope_table)
    if n_ctx is None and adapter_path is not None:
        am = GGUFFile(adapter_path).meta
        n_ctx = int(am.get("hmt.sensory_length", 0)) + int(am["hmt.segment_length"]) + 2
    if n_ctx is not None:
        ref.use_context(n_ctx)
    c = Config(n_vocab=g.tensors["token_embd.weight"].ne[1], n_embd=int(mt[a + ".embedding_length"]),
               n_layer=int(mt[a + ".block_count"]), n_head=int(mt[a + ".attention.head_count"]),
               n_head_kv=int(mt.get(a + ".attention.head_count_kv", mt[a + ".attention.head_count"])),
               n_ff=int(mt[a + ".feed_forward_length"]), n_ctx=int(mt[a + ".context_length"]),
               rope_base=float(mt.get(a + ".rope.freq_base", 10000.0)),
               eps=float(mt[a + ".attention.layer_norm_rms_epsilon"]),
               tied="output.weight" not in g.tensors, arch=a, head_dim=ref.head_dim,
               n_rot=ref.n_rot, rope_freq=ref.inv_freq.tolist(), mscale=ref.mscale,
               gemma=dict(attn_scale=ref.attn_scale, attn_softcap=ref.attn_softcap,
                          final_softcap=ref.final_softcap, embd_scale=ref.embd_scale,
                          input_scale=ref.input_scale, n_swa=ref.n_swa,
                          swa_layers=ref.swa_layers, rope_freq_swa=ref.inv_freq_swa.tolist()))
    del ref
    m = Llama(c)
    sd = {"tok_embd.weight": "token_embd.weight", "output_norm": "output_norm.weight"}
    if not c.tied:
        sd["output.weight"] = "output.weight"
    for i in range(c.n_layer):
        for nm in ("attn_norm", "ffn_norm"):
            sd[f"layers.{i}.{nm}"] = f"blk.{i}.{nm}.weight"
        for nm in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
            sd[f"layers.{i}.{nm}.weight"] = f"blk.{i}.{nm}.weight"
        if a == "qwen2":
            for nm in ("attn_q", "attn_k", "attn_v"):
                sd[f"layers.{i}.{nm}.bias"] = f"blk.{i}.{nm}.bias"
        if a in ("qwen3", "gemma3"):
            for nm in ("attn_q_norm", "attn_k_norm"):
                sd[f"layers.{i}.{nm}"] = f"blk.{i}.{nm}.weight"
        if a in ("gemma2", "gemma3"):
            for nm in ("post_attention_norm", "post_ffw_norm"):
                sd[f"layers.{i}.{nm}"] = f"blk.{i}.{nm}.weight"
    def tensor(name):
        """A GGUF tensor, or a part of phi3's fused ones ("name#i": part i)."""
        name, part = (name.split("#") + [None])[:2]
        t = g.tensor(name)
        if part is None:
            return t.copy()
        q, kv = c.n_head * c.head_dim, c.n_head_kv * c.head_dim
        splits = [q, q + kv] if name.endswith("attn_qkv.weight") else [c.n_ff]
        return np.split(t, splits)[int(part)].copy()
    if a == "phi3":
        for i in range(c.n_layer):
            for j, nm in enumerate(("attn_q", "attn_k", "attn_v")):
                if f"blk.{i}.attn_qkv.weight" in g.tensors:   # else separate, as llama.cpp allows
                    sd[f"layers.{i}.{nm}.weight"] = f"blk.{i}.attn_qkv.weight#{j}"
            sd[f"layers.{i}.ffn_gate.weight"] = f"blk.{i}.ffn_up.weight#0"
            sd[f"layers.{i}.ffn_up.weight"] = f"blk.{i}.ffn_up.weight#1"
    m.load_state_dict({k: torch.from_numpy(tensor(v)) for k, v in sd.items()})
    m.to(dtype)
    if adapter_path is None:
        return m, None, None
    ga = GGUFFile(adapter_path)
    am = ga.meta
    Wq = torch.from_numpy(ga.tensor("hmt.recall.wq").copy())
    p = HMTParams(c.n_embd, Wq.shape[0])
    p.load_state_dict(dict(T=torch.from_numpy(ga.tensor("hmt.summary_prompt").reshape(-1).copy()),
                           M_init=torch.from_numpy(ga.tensor("hmt.memory_init").reshape(-1).copy()),
                           Wq=Wq, Wk=torch.from_numpy(ga.tensor("hmt.recall.wk").copy())))
    p.to(dtype)
    hp = dict(L=int(am["hmt.segment_length"]), k=int(am.get("hmt.sensory_length", 0)),
              N=int(am["hmt.cache_size"]), d_h=int(Wq.shape[0]),
              fraction=float(am.get("hmt.summary_fraction", 0.5)))
    return m, p, hp
