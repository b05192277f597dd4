"""NumPy reference forward pass for llama-family GGUF models (archs `llama`,
`qwen2`, `qwen3`, `gemma2`, `gemma3` and `phi3`), written from the math in
float64 so it is an oracle for the C implementation, not a twin of it.

    m = Model("model.gguf")                      # float64 by default
    logits, hidden, cache = m.forward(tokens=[1, 5, 9])
    logits2, hidden2, cache = m.forward(tokens=[7], cache=cache)   # continue

Per layer (pre-norm residual):
    h   = RMSNorm(x) * attn_norm              RMSNorm(x) = x / sqrt(mean(x^2) + eps)
    q,k,v = h Wq^T (+bq), h Wk^T (+bk), h Wv^T (+bv)   (biases: qwen2)
    q,k = RMSNorm(q_h) * q_norm, RMSNorm(k_h) * k_norm per head   (qwen3 only)
    q,k = RoPE(q, pos), RoPE(k, pos) on the first n_rot dims of each head
          llama: "normal" mode, pairs (x[2i], x[2i+1]) of each head
          qwen2, qwen3: NEOX mode, pairs (x[i], x[i + n_rot/2])
          (rotated pair) * mscale; angle_i = pos * freq_i, i < n_rot/2
          freq_i: see rope_table() (base^(-2i/n_rot), llama3 factors,
          linear and YaRN scaling as llama.cpp reads them from the GGUF)
    head size hd = attention.key_length, default n_embd / n_head
    attention per head, q head h reads kv head h // (n_head/n_head_kv);
          row r (KV slot n_past + r) attends to slots 0 .. n_past + r
          (causal by slot, whatever the positions), scale 1/sqrt(hd)
    x  += attn Wo^T
    h   = RMSNorm(x) * ffn_norm
    x  += (silu(h Wg^T) * (h Wu^T)) Wd^T
hidden = RMSNorm(x) * output_norm ; logits = hidden W_out^T
(W_out = output.weight, or token_embd.weight when output.weight is absent).

Gemma 2 / Gemma 3 (Hugging Face's modeling_gemma2.py / modeling_gemma3.py,
read through the GGUF as llama.cpp reads it; see gemma_hparams()):
    x = E[tokens] * sqrt(d)    (gemma2 scales caller embeddings too; gemma3
                                does not: its scale is part of the lookup)
    per layer:
    h = RMSNorm(x) * attn_norm        (the GGUF holds 1 + w of HF's (1 + w) norms)
    q, k, v as above; gemma3: per-head RMSNorm of q and k (q_norm, k_norm)
    q, k = RoPE (NEOX pairs); gemma3 sliding layers: base 10000, unscaled
    scores = q.k * s,  s = query_pre_attn_scalar^-1/2 as llama.cpp derives it
             (n_embd / n_head for its "27B" layer counts, else head size)
    gemma2: scores = c * tanh(scores / c)   (attn_logit_softcapping)
    sliding layers (gemma2: il % 2 == 0, gemma3: il % 6 < 5): row at slot s
             attends to slots s - W + 1 .. s only (W = attention.sliding_window)
    x += RMSNorm(attn Wo^T) * post_attention_norm
    h = RMSNorm(x) * ffn_norm
    x += RMSNorm((gelu_tanh(h Wg^T) * (h Wu^T)) Wd^T) * post_ffw_norm
    logits = hidden E^T; gemma2: logits = c * tanh(logits / c) (final_logit_softcapping)

Phi-3 (Hugging Face's modeling_phi3.py, read through the GGUF as llama.cpp
reads it): the llama block above with
    q|k|v = h Wqkv^T, split into n_head*hd, n_kv*hd, n_kv*hd columns
            (attn_qkv.weight; or separate attn_q/k/v)
    gate|up = h Wgu^T, split in halves: gate first (HF's gate_up_proj.chunk(2)),
            x += (silu(gate) * up) Wd^T          (ffn_up.weight, 2 n_ff rows)
    RoPE NEOX on the first n_rot dims (partial_rotary_factor)
    LongRoPE: theta_i = base^(-2i/n_rot) / ext_i, ext = rope_factors_long when
            the context (n_ctx slots) is longer than original_context_length,
            else rope_factors_short; cos and sin * rope.scaling.attn_factor
            (HF chooses by the current sequence length instead: the same
            for every sequence that fits the original context)
Sliding window (Mistral-style: llama, qwen2, phi3 with
attention.sliding_window W > 0): every layer, row at slot s attends to slots
s - W + 1 .. s (HF's sliding-window mask, kv > q - W).

Rows are token ids (embedding lookup) or caller-given input embeddings.
`python3 llama_ref.py [MODEL.gguf]` runs a self-check (on a generated model
when no path is given).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_read import GGUFFile  # noqa: E402


def yarn_corr_dims(n_rot, n_ctx_orig, base, beta_fast=32.0, beta_slow=1.0):
    """The dims YaRN ramps between (ggml_rope_yarn_corr_dims), evaluated in
    float32 like ggml, since a floor/ceil of it picks the dims:
    corr(beta) = n_rot * ln(n_ctx_orig / (beta * 2 pi)) / (2 ln base)."""
    f = np.float32

    def corr(beta):
        return f(n_rot) * np.log(f(n_ctx_orig) / (f(beta) * f(2) * f(np.pi))) / (f(2) * np.log(f(base)))
    lo = max(0.0, float(np.floor(corr(beta_fast))))
    hi = min(float(n_rot - 1), float(np.ceil(corr(beta_slow))))
    return lo, hi


def rope_table(meta, n_rot, base, n_ctx_train, freq_factors=None):
    """Per-pair frequency (angle per position) and magnitude of RoPE as
    llama.cpp reads them from a GGUF file (meta(key_suffix, default)).
    Returns (freq [n_rot/2] float64, mscale, kind). The math:
      theta_i = base^(-2i/n_rot) / ff_i     ff = rope_freqs.weight (llama3 scaling)
      kind none:    freq_i = theta_i
      kind linear:  freq_i = theta_i / factor               (the default kind)
      kind yarn:    freq_i = theta_i * ((1 - r_i) / factor + r_i),
                    r_i = 1 - clip((i - lo) / max(0.001, hi - lo), 0, 1)
                    (r = 1: extrapolated, original frequency; r = 0: interpolated)
                    lo, hi = yarn_corr_dims(n_rot, original_context_length, base)
      mscale = attn_factor * (1 + 0.1 ln factor if yarn and factor > 1 else 1)
    factor = rope.scaling.factor, else rope.scale_linear, else 1 (0 = unset).
    HF transformers' _compute_yarn_parameters is the same but its corr dims
    are in float64 and its attention_factor may come from the config; the
    GGUF has only attn_factor, which llama.cpp multiplies in."""
    kind = meta("rope.scaling.type", "linear")
    if kind not in ("none", "linear", "yarn"):
        raise ValueError(f"rope scaling {kind!r} not implemented")
    factor = float(meta("rope.scaling.factor", meta("rope.scale_linear", 0.0)) or 1.0)
    attn = float(meta("rope.scaling.attn_factor", 1.0))
    i = np.arange(n_rot // 2, dtype=np.float64)
    theta = float(base) ** (-2.0 * i / n_rot)
    if freq_factors is not None:
        theta = theta / np.asarray(freq_factors, np.float64)
    if kind == "none":
        if factor != 1.0:
            raise ValueError("a factor with scaling type none")
        return theta, attn, kind
    if kind == "linear":
        return theta / factor, attn, kind
    lo, hi = yarn_corr_dims(n_rot, int(meta("rope.scaling.original_context_length", n_ctx_train)),
                            base)
    r = 1.0 - np.clip((i - lo) / max(0.001, hi - lo), 0.0, 1.0)
    mscale = attn * (1.0 + 0.1 * np.log(factor) if factor > 1.0 else 1.0)
    return theta * ((1.0 - r) / factor + r), mscale, kind


def hf_rope(rs, base, dim, seq_len=0, max_pos=None, original=None):
    """Hugging Face's RoPE frequencies and attention factor for a config's
    rope_scaling (modeling_rope_utils' _compute_default_rope_parameters,
    _compute_linear_scaling_rope_parameters, _compute_llama3_parameters,
    _compute_yarn_parameters, _compute_longrope_parameters, written out in
    float64 from their published math): (inv_freq [dim/2], attention_factor).
    The independent statement the GGUF form (rope_table) is checked against.
    longrope: seq_len picks the long factors when > the original context
    (original: the config's top-level original_max_position_embeddings,
    else rope_scaling's); max_pos: max_position_embeddings (its factor)."""
    inv = 1.0 / float(base) ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    kind = (rs or {}).get("rope_type", (rs or {}).get("type"))
    if kind in (None, "default"):
        return inv, 1.0
    if kind == "linear":
        return inv / rs["factor"], 1.0
    if kind == "llama3":
        f, lo, hi, old = (rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"],
                          rs["original_max_position_embeddings"])
        wl = 2 * np.pi / inv
        scaled = np.where(wl > old / lo, inv / f, inv)
        sm = (old / wl - lo) / (hi - lo)
        mid = ~(wl < old / hi) & ~(wl > old / lo)
        return np.where(mid, (1 - sm) * scaled / f + sm * scaled, scaled), 1.0
    if kind == "yarn":
        f, old = rs["factor"], rs["original_max_position_embeddings"]
        bf, bs = rs.get("beta_fast", 32), rs.get("beta_slow", 1)

        def corr(rot):
            return dim * np.log(old / (rot * 2 * np.pi)) / (2 * np.log(base))
        low, high = max(np.floor(corr(bf)), 0), min(np.ceil(corr(bs)), dim - 1)
        ramp = np.clip((np.arange(dim // 2) - low) / (high - low if high != low else 0.001), 0, 1)
        extrap = 1 - ramp
        att = rs.get("attention_factor") or (0.1 * np.log(f) + 1.0 if f > 1 else 1.0)
        return inv / f * (1 - extrap) + inv * extrap, att
    if kind in ("longrope", "su"):
        old = original or rs["original_max_position_embeddings"]
        f = rs.get("factor") or max_pos / old
        att = rs.get("attention_factor") or (np.sqrt(1 + np.log(f) / np.log(old)) if f > 1 else 1.0)
        ext = np.asarray(rs["long_factor"] if seq_len > old else rs["short_factor"], np.float64)
        return 1.0 / (ext * float(base) ** (np.arange(0, dim, 2, dtype=np.float64) / dim)), att
    raise ValueError(f"rope_scaling {kind!r}")


def gemma_hparams(m, meta):
    """Gemma 2 / 3 hyperparameters as llama.cpp reads them from the GGUF
    (meta(key_suffix, default)), set on the Model m; neutral values for the
    other architectures. Hugging Face's config names in brackets:
      gemma2: window [sliding_window] default 4096 on layers il % 2 == 0,
              attn [attn_logit_softcapping] default 50, final
              [final_logit_softcapping] default 30, every input row * sqrt(d)
      gemma3: window on layers il % 6 < 5 (absent or 0: none) whose RoPE is
              [rope_local_base_freq] 10000, unscaled; token rows * sqrt(d)
      scale [query_pre_attn_scalar^-1/2]: 1/sqrt(n_embd / n_head) when the
              layer count is llama.cpp's 27B type (46 / 62), else 1/sqrt(hd)
    """
    arch = m.arch
    m.attn_scale = 1.0 / np.sqrt(m.head_dim)
    m.attn_softcap = m.final_softcap = 0.0
    m.embd_scale = m.input_scale = 1.0
    m.gelu = arch in ("gemma2", "gemma3")
    m.n_swa, period = 0, 0
    m.inv_freq_swa = m.inv_freq
    if arch in ("llama", "qwen2", "phi3"):
        m.n_swa = int(meta("attention.sliding_window", 0))
        m.swa_layers = [m.n_swa > 0] * m.n_layer
        return
    if arch == "gemma2":
        m.n_swa, period = int(meta("attention.sliding_window", 4096)), 2
        m.attn_softcap = float(meta("attn_logit_softcapping", 50.0))
        m.final_softcap = float(meta("final_logit_softcapping", 30.0))
        m.input_scale = np.sqrt(m.n_embd)
    elif arch == "gemma3":
        m.n_swa, period = int(meta("attention.sliding_window", 0)), 6
        m.embd_scale = np.sqrt(m.n_embd)
        i = np.arange(m.n_rot // 2, dtype=np.float64)
        m.inv_freq_swa = (10000.0 ** (-2.0 * i / m.n_rot)).astype(m.dtype)
    if m.gelu and m.n_layer == (46 if arch == "gemma2" else 62):
        m.attn_scale = 1.0 / np.sqrt(m.n_embd // m.n_head)
    m.swa_layers = [bool(m.n_swa) and il % period < period - 1 for il in range(m.n_layer)]


class Cache:
    """KV cache: per layer K and V as [n_slots, n_head_kv, head_dim] (post-RoPE K),
    and kr, the same keys before RoPE (sink_ref.py re-positions them)."""

    def __init__(self, n_layer, n_head_kv, head_dim, dtype):
        self.k = [np.zeros((0, n_head_kv, head_dim), dtype) for _ in range(n_layer)]
        self.v = [np.zeros((0, n_head_kv, head_dim), dtype) for _ in range(n_layer)]
        self.kr = [np.zeros((0, n_head_kv, head_dim), dtype) for _ in range(n_layer)]
        self.pos = np.zeros(0, np.int64)

    @property
    def n(self):
        return len(self.pos)

    def copy(self):
        c = Cache.__new__(Cache)
        c.k, c.v, c.kr, c.pos = list(self.k), list(self.v), list(self.kr), self.pos.copy()
        return c


class Model:
    # what the cache stores of each new K (after RoPE) and V: None keeps
    # them exact; kv_golden.py sets a rounding to F16 or BF16 (a class
    # default: tools build models without __init__ too)
    kv_store = None

    def __init__(self, path, dtype=np.float64, rope_mode=None):
        """dtype float64 (the oracle) or float32 (to measure single-precision
        error). rope_mode: None = by arch, or force "norm"/"neox" (tests)."""
        self.dtype = np.dtype(dtype)
        g = GGUFFile(path)
        self.meta = g.meta
        arch = g.meta["general.architecture"]
        if arch not in ("llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"):
            raise ValueError(f"unsupported architecture {arch}")
        self.arch = arch

        def hp(key, default=None):
            v = g.meta.get(f"{arch}.{key}", default)
            if v is None:
                raise KeyError(f"{arch}.{key}")
            return v

        self.n_embd = int(hp("embedding_length"))
        self.n_layer = int(hp("block_count"))
        self.n_ff = int(hp("feed_forward_length"))
        self.n_head = int(hp("attention.head_count"))
        self.n_head_kv = int(hp("attention.head_count_kv", self.n_head))
        self.n_ctx_train = int(hp("context_length"))
        self.rope_base = float(hp("rope.freq_base", 10000.0))
        self.eps = float(hp("attention.layer_norm_rms_epsilon"))
        self.head_dim = int(hp("attention.key_length", self.n_embd // self.n_head))
        if int(hp("attention.value_length", self.n_embd // self.n_head)) != self.head_dim:
            raise ValueError("key and value head sizes differ")
        self.n_rot = int(hp("rope.dimension_count", self.head_dim))
        if self.n_rot % 2 or not 2 <= self.n_rot <= self.head_dim:
            raise ValueError("rope.dimension_count must be even and <= the head size")
        if self.n_head % self.n_head_kv:
            raise ValueError("n_head not a multiple of n_head_kv")
        self.neox = {"norm": False, "neox": True,
                     None: arch in ("qwen2", "qwen3", "gemma2", "gemma3", "phi3")}[rope_mode]

        def W(name):
            return g.tensor(name).astype(self.dtype)

        self.tok_embd = W("token_embd.weight")
        self.n_vocab = self.tok_embd.shape[0]
        if f"{arch}.vocab_size" in g.meta:
            assert int(g.meta[f"{arch}.vocab_size"]) == self.n_vocab
        self.tied = "output.weight" not in g.tensors
        self.output = self.tok_embd if self.tied else W("output.weight")
        self.output_norm = W("output_norm.weight")
        self.layers = []
        for i in range(self.n_layer):
            p = f"blk.{i}."
            L = {k: W(p + k + ".weight") for k in
                 ("attn_norm", "attn_output", "ffn_norm", "ffn_up", "ffn_down")}
            q_dim, kv_dim = self.n_head * self.head_dim, self.n_head_kv * self.head_dim
            if p + "attn_qkv.weight" in g.tensors:   # phi3: fused q|k|v rows
                qkv = W(p + "attn_qkv.weight")
                assert qkv.shape[0] == q_dim + 2 * kv_dim
                L["attn_q"], L["attn_k"], L["attn_v"] = np.split(qkv, [q_dim, q_dim + kv_dim])
            else:
                for k in ("attn_q", "attn_k", "attn_v"):
                    L[k] = W(p + k + ".weight")
            if arch == "phi3":   # ffn_up holds gate then up (HF gate_up_proj.chunk(2))
                assert L["ffn_up"].shape[0] == 2 * self.n_ff
                L["ffn_gate"], L["ffn_up"] = np.split(L["ffn_up"], 2)
            else:
                L["ffn_gate"] = W(p + "ffn_gate.weight")
            for b in ("attn_q", "attn_k", "attn_v"):
                L[b + ".bias"] = W(p + b + ".bias") if p + b + ".bias" in g.tensors else None
            for nm in ("attn_q_norm", "attn_k_norm"):
                L[nm] = W(p + nm + ".weight") if arch in ("qwen3", "gemma3") else None
            for nm in ("post_attention_norm", "post_ffw_norm"):
                L[nm] = W(p + nm + ".weight") if arch in ("gemma2", "gemma3") else None
            self.layers.append(L)
        self.n_params = sum(int(np.prod(t.ne)) for t in g.tensors.values())
        ff = None
        if "rope_freqs.weight" in g.tensors:
            if arch != "llama":
                raise ValueError("rope_freqs.weight is applied by llama.cpp to arch llama only")
            ff = g.tensor("rope_freqs.weight").astype(np.float64).reshape(-1)
            assert ff.shape == (self.n_rot // 2,)
        meta = lambda k, d=None: g.meta.get(f"{arch}.{k}", d)  # noqa: E731
        self.long_freq = None
        if "rope_factors_long.weight" in g.tensors or "rope_factors_short.weight" in g.tensors:
            if arch != "phi3":
                raise ValueError("LongRoPE factors are applied to arch phi3 only")
            ff = g.tensor("rope_factors_short.weight").astype(np.float64).reshape(-1)
            fl = g.tensor("rope_factors_long.weight").astype(np.float64).reshape(-1)
            assert ff.shape == fl.shape == (self.n_rot // 2,)
            self.long_freq = rope_table(meta, self.n_rot, self.rope_base, self.n_ctx_train,
                                        fl)[0].astype(self.dtype)
        inv_freq, self.mscale, self.rope_kind = rope_table(
            meta, self.n_rot, self.rope_base, self.n_ctx_train, ff)
        self.inv_freq = self.short_freq = inv_freq.astype(self.dtype)
        self.n_ctx_orig = int(meta("rope.scaling.original_context_length", self.n_ctx_train))
        gemma_hparams(self, meta)
        if arch == "gemma2" and not self.tied:
            raise ValueError("llama.cpp's gemma2 ties the LM head to token_embd")
        self.use_context(self.n_ctx_train)

    def use_context(self, n_ctx):
        """The context size (KV slots) of the runs that follow: LongRoPE takes
        the long factors when it exceeds the original context (llama.cpp's
        choice per context), else the short ones. Default: the model's."""
        self.n_ctx = int(n_ctx)
        if self.long_freq is not None:
            self.inv_freq = self.long_freq if self.n_ctx > self.n_ctx_orig else self.short_freq
            self.inv_freq_swa = self.inv_freq

    # ---- building blocks ---------------------------------------------------
    def rmsnorm(self, x, w):
        ms = np.mean(x * x, axis=-1, keepdims=True)
        return x / np.sqrt(ms + self.dtype.type(self.eps)) * w

    def rope(self, x, pos, inv_freq=None):
        """x: [n, heads, hd]; pos: [n]. Returns a copy with the first n_rot
        dims of each head rotated (and scaled by mscale); the rest as they were.
        inv_freq: the table (default the model's global one)."""
        inv_freq = self.inv_freq if inv_freq is None else inv_freq
        ang = pos.astype(self.dtype)[:, None] * inv_freq[None, :]   # [n, n_rot/2]
        ms = self.dtype.type(self.mscale)
        c = np.cos(ang)[:, None, :] * ms
        s = np.sin(ang)[:, None, :] * ms
        y = x.copy()
        r = x[..., :self.n_rot]
        if self.neox:
            h = self.n_rot // 2
            a, b = r[..., :h], r[..., h:]
            y[..., :h] = a * c - b * s
            y[..., h:self.n_rot] = a * s + b * c
        else:
            a, b = r[..., 0::2], r[..., 1::2]
            y[..., 0:self.n_rot:2] = a * c - b * s
            y[..., 1:self.n_rot:2] = a * s + b * c
        return y

    def embed_rows(self, toks):
        """The input embeddings of tokens (what forward(tokens=) starts from
        and forward(embd=) takes): token_embd rows, scaled for gemma3."""
        return self.tok_embd[np.asarray(toks, np.int64).reshape(-1)] * self.dtype.type(self.embd_scale)

    def new_cache(self):
        return Cache(self.n_layer, self.n_head_kv, self.head_dim, self.dtype)

    # ---- forward -------------------------------------------------------------
    def forward(self, tokens=None, embd=None, pos=None, cache=None):
        """Evaluate n rows appended to the cache. Exactly one of tokens ([n]
        ids) or embd ([n, n_embd]) is given. pos: [n] RoPE positions, default
        n_past + arange(n). Returns (logits [n, n_vocab], hidden [n, n_embd],
        new_cache); the cache passed in is not modified."""
        if (tokens is None) == (embd is None):
            raise ValueError("give exactly one of tokens / embd")
        cache = self.new_cache() if cache is None else cache.copy()
        if tokens is not None:
            tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
            if tokens.min() < 0 or tokens.max() >= self.n_vocab:
                raise ValueError("token id out of range")
            x = self.embed_rows(tokens)
        else:
            x = np.array(embd, dtype=self.dtype).reshape(-1, self.n_embd)
        x = x * self.dtype.type(self.input_scale)
        n = x.shape[0]
        n_past = cache.n
        pos = (n_past + np.arange(n)) if pos is None else np.asarray(pos, np.int64).reshape(n)
        hd, nh, nkv = self.head_dim, self.n_head, self.n_head_kv
        group = nh // nkv
        scale = self.dtype.type(self.attn_scale)
        # mask[r, j]: row r (slot n_past + r) may attend to slot j
        S = n_past + n
        qslot = (n_past + np.arange(n))[:, None]
        mask = np.arange(S)[None, :] <= qslot
        # sliding-window layers: also within the window (by slot)
        mask_swa = mask & (qslot - np.arange(S)[None, :] < max(self.n_swa, 1))
        for li, L in enumerate(self.layers):
            h = self.rmsnorm(x, L["attn_norm"])
            q = h @ L["attn_q"].T
            k = h @ L["attn_k"].T
            v = h @ L["attn_v"].T
            if L["attn_q.bias"] is not None:
                q = q + L["attn_q.bias"]
            if L["attn_k.bias"] is not None:
                k = k + L["attn_k.bias"]
            if L["attn_v.bias"] is not None:
                v = v + L["attn_v.bias"]
            q, k = q.reshape(n, nh, hd), k.reshape(n, nkv, hd)
            if L["attn_q_norm"] is not None:
                q = self.rmsnorm(q, L["attn_q_norm"])
                k = self.rmsnorm(k, L["attn_k_norm"])
            swa = self.swa_layers[li]
            cache.kr[li] = np.concatenate([cache.kr[li], k], axis=0)
            q = self.rope(q, pos, self.inv_freq_swa if swa else None)
            k = self.rope(k, pos, self.inv_freq_swa if swa else None)
            v = v.reshape(n, nkv, hd)
            if self.kv_store is not None:   # a half-precision KV cache
                k, v = self.kv_store(k), self.kv_store(v)
            K = np.concatenate([cache.k[li], k], axis=0)   # [S, nkv, hd]
            V = np.concatenate([cache.v[li], v], axis=0)
            cache.k[li], cache.v[li] = K, V
            out = np.empty((n, nh, hd), self.dtype)
            for hq in range(nh):
                hk = hq // group
                sc = (q[:, hq, :] @ K[:, hk, :].T) * scale          # [n, S]
                if self.attn_softcap:
                    c = self.dtype.type(self.attn_softcap)
                    sc = np.tanh(sc / c) * c
                sc = np.where(mask_swa if swa else mask, sc, -np.inf)
                sc = sc - sc.max(axis=1, keepdims=True)
                p = np.exp(sc)
                p = p / p.sum(axis=1, keepdims=True)
                out[:, hq, :] = p @ V[:, hk, :]
            a = out.reshape(n, nh * hd) @ L["attn_output"].T
            if L.get("post_attention_norm") is not None:
                a = self.rmsnorm(a, L["post_attention_norm"])
            x = x + a
            h = self.rmsnorm(x, L["ffn_norm"])
            gt = h @ L["ffn_gate"].T
            up = h @ L["ffn_up"].T
            if self.gelu:   # the tanh form (gelu_pytorch_tanh)
                c0 = self.dtype.type(np.sqrt(2.0 / np.pi))
                act = 0.5 * gt * (1 + np.tanh(c0 * (gt + self.dtype.type(0.044715) * gt ** 3))) * up
            else:
                act = gt / (1 + np.exp(-gt)) * up
            f = act @ L["ffn_down"].T
            if L.get("post_ffw_norm") is not None:
                f = self.rmsnorm(f, L["post_ffw_norm"])
            x = x + f
        cache.pos = np.concatenate([cache.pos, pos])
        hidden = self.rmsnorm(x, self.output_norm)
        logits = hidden @ self.output.T
        if self.final_softcap:
            c = self.dtype.type(self.final_softcap)
            logits = np.tanh(logits / c) * c
        return logits, hidden, cache

    def forward_chunks(self, chunks):
        """chunks: list of dicts with 'tokens' or 'embd', optional 'pos';
        evaluated in order on one cache. Returns concatenated (logits, hidden)."""
        cache, Ls, Hs = None, [], []
        for c in chunks:
            lg, hi, cache = self.forward(tokens=c.get("tokens"), embd=c.get("embd"),
                                         pos=c.get("pos"), cache=cache)
            Ls.append(lg)
            Hs.append(hi)
        return np.concatenate(Ls), np.concatenate(Hs)


# ---------------------------------------------------------------------------
# self-check
# ---------------------------------------------------------------------------
def _unpermute_hf(w, n_head):
    """Inverse of convert_hf_to_gguf's permute for q/k rows: GGUF (adjacent
    pairs) row order -> HF (rotate_half) row order."""
    rows = w.shape[0]
    return (w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:])
             .swapaxes(1, 2).reshape(w.shape))


def self_check(path, verbose=True):
    m = Model(path)
    rng = np.random.default_rng(0)
    n = 11
    toks = rng.integers(0, m.n_vocab, n)
    ok = True

    def report(name, err, tol, at_least=False):
        """err <= tol, or err >= tol when at_least (a change that must show)."""
        nonlocal ok
        good = err >= tol if at_least else err <= tol
        ok &= good
        if verbose:
            print(f"  {name:52s} {err:.3e}  {'ok' if good else 'FAIL'} "
                  f"({'>=' if at_least else '<='} {tol:g})")

    lg, hd, _ = m.forward(tokens=toks)
    if verbose:
        print(f"{path}: arch={m.arch} vocab={m.n_vocab} d={m.n_embd} layers={m.n_layer} "
              f"heads={m.n_head}/{m.n_head_kv} hd={m.head_dim} ff={m.n_ff} tied={m.tied}")
        print(f"  logit std {lg.std():.3f}, max |logit| {np.abs(lg).max():.3f}, "
              f"hidden rms {np.sqrt((hd ** 2).mean()):.3f}")
    # 1. incremental == batch
    l2, h2 = m.forward_chunks([{"tokens": toks[:4]}, {"tokens": toks[4:5]}, {"tokens": toks[5:]}])
    report("incremental (4+1+6) == batch", max(np.abs(l2 - lg).max(), np.abs(h2 - hd).max()), 1e-10)
    # 2. embedding rows == token rows
    l3, h3, _ = m.forward(embd=m.embed_rows(toks))
    report("embedding rows == token rows", np.abs(l3 - lg).max(), 1e-12)
    # 3. RoPE relative-position invariance: shifting every position by s
    l4, _, _ = m.forward(tokens=toks, pos=np.arange(n) + 37)
    report("shift all positions by 37 (RoPE relative)", np.abs(l4 - lg).max(), 1e-9)
    # 4. causality: row r is independent of later rows
    l5, _, _ = m.forward(tokens=toks[:6])
    report("prefix rows unaffected by later rows", np.abs(l5 - lg[:6]).max(), 1e-12)
    # 5. explicit default positions == implicit
    l6, _, _ = m.forward(tokens=toks, pos=np.arange(n))
    report("explicit pos 0..n-1 == default", np.abs(l6 - lg).max(), 0.0)
    # 6. pos != slot: mask is by slot; positions only enter RoPE
    p = np.array([0, 2, 7, 3, 10, 5, 1, 4, 9, 8, 6])
    l7, _, _ = m.forward(tokens=toks, pos=p)
    l8, _ = m.forward_chunks([{"tokens": toks[:4], "pos": p[:4]}, {"tokens": toks[4:], "pos": p[4:]}])
    report("non-contiguous positions: chunked == batch", np.abs(l8 - l7).max(), 1e-10)
    d_pos = np.abs(l7 - lg).max()
    report("non-contiguous positions change the logits", d_pos, 1e-2, at_least=True)
    # 7. RoPE convention vs HF rotate_half: for llama, un-permuting q/k to HF
    #    order and rotating NEOX-style must give the same result.
    if m.arch == "llama":
        mh = Model(path, rope_mode="neox")
        for L in mh.layers:
            L["attn_q"] = _unpermute_hf(L["attn_q"], mh.n_head)
            L["attn_k"] = _unpermute_hf(L["attn_k"], mh.n_head_kv)
        lh, _, _ = mh.forward(tokens=toks)
        report("llama norm-rope == HF rotate_half on un-permuted q/k", np.abs(lh - lg).max(), 1e-10)
    # 8. sensitivity: the wrong RoPE mode must differ clearly
    mw = Model(path, rope_mode="norm" if m.neox else "neox")
    lw, _, _ = mw.forward(tokens=toks)
    d_w = np.abs(lw - lg).max()
    report("the other RoPE mode changes the logits", d_w, 1e-2, at_least=True)
    # 9. float32 vs float64
    m32 = Model(path, dtype=np.float32)
    l32, h32, _ = m32.forward(tokens=toks)
    d32 = np.abs(l32 - lg).max()
    if verbose:
        print(f"  float32 vs float64: max |dlogit| {d32:.3e}, max |dhidden| {np.abs(h32 - hd).max():.3e}")
    return ok


if __name__ == "__main__":
    paths = sys.argv[1:]
    if not paths:
        import tempfile
        from gen_model import make_model
        tmp = tempfile.mkdtemp()
        paths = [os.path.join(tmp, "llama.gguf"), os.path.join(tmp, "qwen2.gguf")]
        make_model(paths[0], arch="llama", seed=1)
        make_model(paths[1], arch="qwen2", seed=2, n_head=8, n_head_kv=2, rope_base=1e6, rms_eps=1e-6)
    all_ok = all([self_check(p) for p in paths])
    print("self-check", "PASSED" if all_ok else "FAILED")
    sys.exit(0 if all_ok else 1)
