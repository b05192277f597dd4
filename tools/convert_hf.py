#!/usr/bin/python3
"""Convert a Hugging Face model directory to one GGUF file that libhmt (and
llama.cpp) loads: llama.cpp's tensor names, metadata keys and tokenizer.

    /usr/bin/python3 tools/convert_hf.py MODEL_DIR -o OUT.gguf [--outtype f16]

MODEL_DIR holds config.json, model.safetensors (or model.safetensors.index.json
and its shards) and tokenizer.model and/or tokenizer.json (+ the optional
tokenizer_config.json, added_tokens.json). Architectures: LlamaForCausalLM
(Llama 2/3/3.1/3.2, TinyLlama, SmolLM/SmolLM2, OpenLLaMA), MistralForCausalLM
(as llama, with its sliding window), Qwen2ForCausalLM, Qwen3ForCausalLM,
Gemma2ForCausalLM, Gemma3ForCausalLM (text) and Phi3ForCausalLM (Phi-3,
Phi-3.5; Phi-4-mini with its o200k tokenizer.json); rope_scaling
llama3, linear, yarn and (Phi-3) longrope (tools/hf_rope.py; Gemma 3: linear).
Needs NumPy; python3-sentencepiece for tokenizer.model. No transformers,
no torch. Details, limits and how it was checked: docs/CONVERTING.md.

Layout facts (as llama.cpp's convert_hf_to_gguf.py):
- Llama q_proj/k_proj rows are permuted from HF's rotate-half RoPE order to
  llama.cpp's adjacent-pair order (per head: rows [0..hd/2) and [hd/2..hd)
  interleaved). Qwen2 and Qwen3 run NEOX RoPE on HF's order: nothing is permuted.
- Qwen3's per-head q_norm / k_norm become blk.N.attn_q_norm / attn_k_norm;
  a head_dim in config.json is written as attention.key_length/value_length.
- rope_scaling llama3 becomes the tensor rope_freqs.weight (first in the
  file, as llama.cpp writes it), linear and yarn rope.scaling.* keys.
- Norm weights and biases stay F32; matrices take --outtype: f32, f16, bf16,
  or quantized q8_0, q4_0, q4_k_m with the per-tensor types llama-quantize
  would choose (tools/gguf_quants.py tensor_type; docs/CONVERTING.md).
- Tied embeddings: no output.weight (the loader uses token_embd.weight).
- Gemma 2/3 (as convert_hf_to_gguf.py's Gemma2Model / Gemma3Model): every
  "*norm.weight" is stored as 1 + w (HF's Gemma RMSNorm multiplies by
  1 + w); input_layernorm, post_attention_layernorm, pre_feedforward_layernorm,
  post_feedforward_layernorm become attn_norm, post_attention_norm, ffn_norm,
  post_ffw_norm; head_dim, sliding_window and (Gemma 2) the soft-capping
  values are written; add_space_prefix false. What llama.cpp would compute
  differently from the config (query_pre_attn_scalar, the layer pattern, the
  local RoPE base, Gemma 3 soft-capping) is refused.
- Phi-3 (as convert_hf_to_gguf.py's Phi3MiniModel): qkv_proj and
  gate_up_proj stay fused as attn_qkv and ffn_up (gate rows first), nothing
  permuted (NEOX RoPE); rope.dimension_count = head size x
  partial_rotary_factor; original_context_length from the top-level
  original_max_position_embeddings; attention.sliding_window (0 when the
  config has none); longrope's factors as rope_factors_long/short.weight.
- A sliding_window of Mistral (default 4096, as MistralConfig) or of a Llama
  config that sets one is written as llama.attention.sliding_window (every
  layer; llama.cpp's own converter drops it, libhmt applies it:
  docs/MODELS.md).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_quants as gq  # noqa: E402
from gguf_write import FLOAT32, STRING, UINT32, StreamingGGUFWriter  # noqa: E402
from hf_files import HFError, load_json, open_weights  # noqa: E402
from hf_rope import RopeScalingError, gguf_rope_scaling  # noqa: E402
from hf_vocab import PRE_NAMES, convert_tokenizer  # noqa: E402

ARCHS = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2",
         "Qwen3ForCausalLM": "qwen3", "Gemma2ForCausalLM": "gemma2",
         "Gemma3ForCausalLM": "gemma3", "Phi3ForCausalLM": "phi3"}
GEMMA = ("gemma2", "gemma3")
# HF config defaults of LlamaConfig / Qwen2Config / Qwen3Config for keys a
# config.json may omit (head_dim None: hidden_size / num_attention_heads)
DEFAULTS = {
    "llama": {"max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
              "head_dim": None},
    "qwen2": {"max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
              "head_dim": None},
    "qwen3": {"max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
              "head_dim": 128},
    # Gemma2Config / Gemma3TextConfig
    "gemma2": {"max_position_embeddings": 8192, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
               "head_dim": 256, "sliding_window": 4096, "attn_logit_softcapping": 50.0,
               "final_logit_softcapping": 30.0, "query_pre_attn_scalar": 256},
    "gemma3": {"max_position_embeddings": 131072, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
               "head_dim": 256, "sliding_window": 4096, "query_pre_attn_scalar": 256,
               "rope_local_base_freq": 10000.0, "sliding_window_pattern": 6},
    # Phi3Config
    "phi3": {"max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
             "head_dim": None},
}
# the window a config without sliding_window gets (MistralConfig's default)
DEFAULT_WINDOW = {"MistralForCausalLM": 4096}
# --outtype -> (default type of the matrices, general.file_type): f32, f16,
# bf16, q8_0, q4_0, q4_k_m; which matrix gets which type is
# gguf_quants.tensor_type (llama-quantize's rule)
OUTTYPES = gq.OUTTYPES
F16_MAX = 65504.0


class HParams:
    """The hyperparameters libhmt needs, checked against what it implements.
    full: what convert() writes (Qwen3, head_dim, rope_scaling); without it
    (tools/convert_hmt_pytorch.py's --base-hf, which writes the metadata
    itself and carries none of these yet) they are refused, not dropped."""

    def __init__(self, cfg, where, full=False):
        def need_int(key, default=None):
            v = cfg.get(key, default)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise HFError(f"{where}: '{key}' must be a positive integer (got {v!r})")
            return v

        def need_float(key, default):
            v = cfg.get(key, default)
            if v is None:
                v = default
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0:
                raise HFError(f"{where}: '{key}' must be a positive number (got {v!r})")
            return float(v)

        archs = cfg.get("architectures")
        if not isinstance(archs, list) or len(archs) != 1 or archs[0] not in ARCHS:
            raise HFError(f"{where}: architectures {archs!r} not supported "
                          f"(one of {', '.join(ARCHS)})")
        self.hf_arch = archs[0]
        self.arch = ARCHS[archs[0]]
        if not full and self.arch in ("qwen3", "phi3") + GEMMA:
            raise HFError(f"{where}: {self.hf_arch} is converted by tools/convert_hf.py, not yet "
                          "carried through this path (llama and qwen2)")
        d = DEFAULTS[self.arch]
        self.n_embd = need_int("hidden_size")
        self.n_layer = need_int("num_hidden_layers")
        self.n_ff = need_int("intermediate_size")
        self.n_head = need_int("num_attention_heads")
        self.n_head_kv = (self.n_head if cfg.get("num_key_value_heads") is None
                          else need_int("num_key_value_heads"))
        self.n_vocab = need_int("vocab_size")
        self.n_ctx = need_int("max_position_embeddings", d["max_position_embeddings"])
        self.rope_theta = need_float("rope_theta", d["rope_theta"])
        self.rms_eps = need_float("rms_norm_eps", d["rms_norm_eps"])
        self.tied = cfg.get("tie_word_embeddings", self.arch in GEMMA)
        if not isinstance(self.tied, bool):
            raise HFError(f"{where}: tie_word_embeddings must be true or false")
        self.explicit_head_dim = cfg.get("head_dim", d["head_dim"]) is not None
        if not full and self.explicit_head_dim and cfg["head_dim"] * self.n_head != self.n_embd:
            raise HFError(f"{where}: head_dim {cfg['head_dim']} differs from hidden_size / "
                          "num_attention_heads; this path needs them equal (tools/convert_hf.py "
                          "converts it)")
        if self.explicit_head_dim:
            self.head_dim = need_int("head_dim", d["head_dim"])
        elif self.n_embd % self.n_head:
            raise HFError(f"{where}: hidden_size {self.n_embd} and {self.n_head} heads do not "
                          "divide evenly (and no head_dim)")
        else:
            self.head_dim = self.n_embd // self.n_head
        if self.n_head % self.n_head_kv:
            raise HFError(f"{where}: {self.n_head} heads and {self.n_head_kv} KV heads do not "
                          "divide evenly")
        if self.head_dim % 2:
            raise HFError(f"{where}: head size {self.head_dim} is odd (RoPE needs pairs)")
        self._check_supported(cfg, where, full)

    def _check_supported(self, cfg, where, full):
        """Reject what libhmt does not implement, instead of a wrong model."""
        if self.arch in GEMMA:
            self._check_gemma(cfg, where)
        else:
            act = cfg.get("hidden_act", "silu")
            if act != "silu":
                raise HFError(f"{where}: hidden_act {act!r} not supported (silu)")
        # rotated dims: Phi-3's partial_rotary_factor (Phi-4-mini: 0.75), as HF's
        # int(head_dim * factor); llama.cpp's llama, qwen2, qwen3 rotate whole heads
        prf = cfg.get("partial_rotary_factor", 1.0)
        self.n_rot = self.head_dim
        if self.arch == "phi3" and isinstance(prf, (int, float)) and not isinstance(prf, bool) \
                and 0 < prf <= 1:
            self.n_rot = int(self.head_dim * prf)
            if self.n_rot < 2 or self.n_rot % 2:
                raise HFError(f"{where}: partial_rotary_factor {prf} rotates {self.n_rot} of "
                              f"{self.head_dim} dims (RoPE needs an even number >= 2)")
        elif prf != 1.0:
            raise HFError(f"{where}: partial_rotary_factor {prf!r} not supported (1.0; Phi-3: "
                          "in (0, 1])")
        original = cfg.get("original_max_position_embeddings")
        try:
            self.rope = gguf_rope_scaling(cfg.get("rope_scaling"), self.rope_theta, self.n_rot,
                                          self.arch, max_pos=self.n_ctx,
                                          original=original if self.arch == "phi3" else None)
        except RopeScalingError as e:
            raise HFError(f"{where}: {e}") from None
        if not full and any(self.rope):
            raise HFError(f"{where}: rope_scaling {cfg['rope_scaling']!r}: tools/convert_hf.py "
                          "converts it; this path does not carry it yet (plain RoPE only)")
        self._check_window(cfg, where, full)
        if cfg.get("mlp_bias"):
            raise HFError(f"{where}: mlp_bias not supported (the MLP has no biases in libhmt)")
        if self.arch == "llama" and cfg.get("attention_bias"):
            raise HFError(f"{where}: attention_bias not supported for Llama (it adds an "
                          "o_proj bias, which libhmt does not have)")
        if self.arch == "qwen3" and cfg.get("attention_bias"):
            raise HFError(f"{where}: attention_bias not supported for Qwen3 (llama.cpp's qwen3 "
                          "has no q/k/v biases)")
        if self.arch in ("qwen2", "qwen3") and cfg.get("use_sliding_window"):
            raise HFError(f"{where}: use_sliding_window not supported (full attention only)")

    def _check_window(self, cfg, where, full):
        """Mistral-style windows (every layer): llama (Mistral), phi3."""
        if self.arch not in ("llama", "phi3"):
            return
        sw = cfg.get("sliding_window", DEFAULT_WINDOW.get(self.hf_arch))
        if sw is not None and (not isinstance(sw, int) or isinstance(sw, bool) or sw < 0):
            raise HFError(f"{where}: sliding_window {sw!r} must be a non-negative integer or null")
        if self.arch == "phi3" or sw:   # phi3: always written, 0 = none (as llama.cpp)
            self.sliding_window = sw or 0
        if not full and sw and sw < self.n_ctx:
            raise HFError(f"{where}: sliding_window {sw}: tools/convert_hf.py converts it; this "
                          "path does not carry it yet (full attention only)")

    def _check_gemma(self, cfg, where):
        """Gemma 2/3: the config values llama.cpp (and libhmt) read from the
        GGUF, or derive; anything it would compute differently is refused."""
        d = DEFAULTS[self.arch]

        def val(key):
            v = cfg.get(key, d.get(key))
            return d.get(key) if v is None and key in ("sliding_window", "rope_local_base_freq") else v

        act = cfg.get("hidden_activation") or cfg.get("hidden_act") or "gelu_pytorch_tanh"
        if act != "gelu_pytorch_tanh":
            raise HFError(f"{where}: hidden_activation {act!r} not supported (gelu_pytorch_tanh)")
        if not self.tied:
            raise HFError(f"{where}: tie_word_embeddings false: llama.cpp's {self.arch} ties the "
                          "LM head to the embeddings")
        # llama.cpp derives the query scale: n_embd / n_head for its 27B
        # type (46 / 62 layers), else the head size
        big = self.n_layer == (46 if self.arch == "gemma2" else 62)
        want = self.n_embd // self.n_head if big else self.head_dim
        qpas = val("query_pre_attn_scalar")
        if qpas != want:
            raise HFError(f"{where}: query_pre_attn_scalar {qpas!r}: llama.cpp (and libhmt) scale "
                          f"queries by 1/sqrt({want}) for this shape; the GGUF cannot say otherwise")
        self.sliding_window = val("sliding_window")
        if not isinstance(self.sliding_window, int) or isinstance(self.sliding_window, bool) or \
                self.sliding_window <= 0:
            raise HFError(f"{where}: sliding_window {self.sliding_window!r} must be a positive integer")
        self.softcap = {}
        if self.arch == "gemma2":
            for key in ("attn_logit_softcapping", "final_logit_softcapping"):
                v = val(key)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                    raise HFError(f"{where}: {key} {v!r}: llama.cpp's gemma2 always soft-caps "
                                  "(a positive number)")
                self.softcap[key] = float(v)
            if cfg.get("rope_scaling") is not None:
                raise HFError(f"{where}: rope_scaling on Gemma 2 not supported")
            return
        for key in ("attn_logit_softcapping", "final_logit_softcapping"):
            if cfg.get(key) is not None:
                raise HFError(f"{where}: {key} {cfg[key]!r} on Gemma 3: llama.cpp's sliding-window "
                              "gemma3 does not soft-cap, so libhmt refuses it")
        if float(val("rope_local_base_freq")) != 10000.0:
            raise HFError(f"{where}: rope_local_base_freq {cfg['rope_local_base_freq']!r}: llama.cpp "
                          "uses 10000 for Gemma 3's sliding layers")
        types = cfg.get("layer_types")
        pattern = ["sliding_attention" if i % 6 < 5 else "full_attention" for i in range(self.n_layer)]
        if types is not None and list(types) != pattern:
            raise HFError(f"{where}: layer_types is not llama.cpp's Gemma 3 pattern (5 sliding, 1 "
                          "full)")
        if types is None and val("sliding_window_pattern") != 6:
            raise HFError(f"{where}: sliding_window_pattern {cfg.get('sliding_window_pattern')!r}: "
                          "llama.cpp's Gemma 3 pattern is 6")
        rs = cfg.get("rope_scaling")
        if rs is not None and rs.get("rope_type", rs.get("type")) not in ("linear", "default"):
            raise HFError(f"{where}: rope_scaling {rs!r} on Gemma 3 not supported (linear)")

    def describe(self):
        return (f"{self.arch}, {self.n_layer} layers, embedding {self.n_embd}, heads "
                f"{self.n_head}/{self.n_head_kv} KV, head {self.head_dim}, FFN {self.n_ff}, "
                f"vocabulary {self.n_vocab}, "
                f"context {self.n_ctx}, rope_theta {self.rope_theta:g}, eps {self.rms_eps:g}, "
                f"{'tied' if self.tied else 'untied'} output")


def permute_rope(w, n_head):
    """HF rotate-half row order -> llama.cpp adjacent-pair order, per head
    (llama.cpp's LlamaModel.permute); works for weights and biases."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def plan_tensors(hp, weights, where):
    """[(gguf name, TensorRef, n_head to permute by or None)], checking that
    the checkpoint has exactly the tensors (and shapes) the config implies."""
    d, ff, hd = hp.n_embd, hp.n_ff, hp.head_dim
    q_dim, kv_dim = hp.n_head * hd, hp.n_head_kv * hd
    llama = hp.arch == "llama"
    gemma = hp.arch in GEMMA
    phi3 = hp.arch == "phi3"
    want = [("model.embed_tokens.weight", "token_embd.weight", (hp.n_vocab, d), None),
            ("model.norm.weight", "output_norm.weight", (d,), None)]
    if not hp.tied:
        want.append(("lm_head.weight", "output.weight", (hp.n_vocab, d), None))
    for i in range(hp.n_layer):
        p, b = f"model.layers.{i}.", f"blk.{i}."
        if phi3:   # fused, in libhmt's (and llama.cpp's) row order; NEOX: no permutation
            want += [
                (p + "input_layernorm.weight", b + "attn_norm.weight", (d,), None),
                (p + "self_attn.qkv_proj.weight", b + "attn_qkv.weight", (q_dim + 2 * kv_dim, d),
                 None),
                (p + "self_attn.o_proj.weight", b + "attn_output.weight", (d, q_dim), None),
                (p + "post_attention_layernorm.weight", b + "ffn_norm.weight", (d,), None),
                (p + "mlp.gate_up_proj.weight", b + "ffn_up.weight", (2 * ff, d), None),
                (p + "mlp.down_proj.weight", b + "ffn_down.weight", (d, ff), None)]
            continue
        want += [
            (p + "input_layernorm.weight", b + "attn_norm.weight", (d,), None),
            (p + "self_attn.q_proj.weight", b + "attn_q.weight", (q_dim, d), hp.n_head if llama else None),
            (p + "self_attn.k_proj.weight", b + "attn_k.weight", (kv_dim, d), hp.n_head_kv if llama else None),
            (p + "self_attn.v_proj.weight", b + "attn_v.weight", (kv_dim, d), None),
            (p + "self_attn.o_proj.weight", b + "attn_output.weight", (d, q_dim), None),
            (p + "post_attention_layernorm.weight",
             b + ("post_attention_norm.weight" if gemma else "ffn_norm.weight"), (d,), None),
            (p + "mlp.gate_proj.weight", b + "ffn_gate.weight", (ff, d), None),
            (p + "mlp.up_proj.weight", b + "ffn_up.weight", (ff, d), None),
            (p + "mlp.down_proj.weight", b + "ffn_down.weight", (d, ff), None),
        ]
        if gemma:
            want += [(p + "pre_feedforward_layernorm.weight", b + "ffn_norm.weight", (d,), None),
                     (p + "post_feedforward_layernorm.weight", b + "post_ffw_norm.weight", (d,),
                      None)]
        if hp.arch in ("qwen3", "gemma3"):
            want += [(p + "self_attn.q_norm.weight", b + "attn_q_norm.weight", (hd,), None),
                     (p + "self_attn.k_norm.weight", b + "attn_k_norm.weight", (hd,), None)]
        if hp.arch == "qwen2":
            want += [(p + "self_attn.q_proj.bias", b + "attn_q.bias", (q_dim,), None),
                     (p + "self_attn.k_proj.bias", b + "attn_k.bias", (kv_dim,), None),
                     (p + "self_attn.v_proj.bias", b + "attn_v.bias", (kv_dim,), None)]
    missing = [hf for hf, _, _, _ in want if hf not in weights]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        hint = (" (config.json says tie_word_embeddings is false)"
                if missing == ["lm_head.weight"] else "")
        raise HFError(f"{where}: missing tensor(s) {', '.join(missing[:3])}{more}{hint}")
    known = {hf for hf, _, _, _ in want}
    ignored = [n for n in weights if n not in known and
               (n.endswith(".rotary_emb.inv_freq") or (hp.tied and n == "lm_head.weight"))]
    extra = sorted(n for n in weights if n not in known and n not in ignored)
    if extra:
        more = f" and {len(extra) - 3} more" if len(extra) > 3 else ""
        raise HFError(f"{where}: unexpected tensor(s) {', '.join(extra[:3])}{more} "
                      f"({hp.hf_arch} as libhmt runs it has no such weights; check the config)")
    plan = []
    for hf, name, shape, perm in want:
        ref = weights[hf]
        if ref.shape != shape:
            raise HFError(f"{ref.file.path}: tensor '{hf}' has shape {list(ref.shape)}, "
                          f"config.json implies {list(shape)}")
        plan.append((name, ref, perm))
    return plan, ignored


def load_tensor(ref, perm, tname, shift=0.0):
    """The tensor as float32 (+ shift: Gemma's norms), permuted if asked,
    checked for values the output type (a gguf_quants type name) cannot
    hold: F16 and the block scales of the quantized types are float16."""
    a = ref.float32()
    if shift:
        a = a + np.float32(shift)
    if not np.isfinite(a).all():
        raise HFError(f"{ref.file.path}: tensor '{ref.name}' has NaN or infinite values")
    if tname not in ("F32", "BF16") and a.size and np.abs(a).max() > F16_MAX:
        what = "float16's range" if tname == "F16" else f"what {tname}'s float16 block scales hold"
        raise HFError(f"{ref.file.path}: tensor '{ref.name}' has values up to "
                      f"{np.abs(a).max():g}, beyond {what}; use --outtype bf16 or f32")
    return permute_rope(a, perm) if perm else a


def convert(model_dir, out_path, outtype="f16", name=None, pre=None, log=print):
    t0 = time.time()
    if not os.path.isdir(model_dir):
        raise HFError(f"{model_dir}: not a directory")
    cfg_path = os.path.join(model_dir, "config.json")
    cfg = load_json(cfg_path)
    if not isinstance(cfg, dict):
        raise HFError(f"{cfg_path}: not a JSON object")
    hp = HParams(cfg, cfg_path, full=True)
    if hp.arch == "phi3" and outtype == "q4_k_m":
        raise HFError(f"{cfg_path}: --outtype q4_k_m for phi3: llama-quantize gives its fused "
                      "attn_qkv its own type, which tools/gguf_quants.py does not choose yet; use "
                      "f32, f16, bf16, q8_0 or q4_0")
    weights = open_weights(model_dir)
    plan, ignored = plan_tensors(hp, weights, model_dir)
    vocab = convert_tokenizer(model_dir, hp.n_vocab, cfg, pre)
    file_type = OUTTYPES[outtype][1]
    quantized = OUTTYPES[outtype][0] not in ("F32", "F16", "BF16")

    w = StreamingGGUFWriter()
    a = hp.arch
    w.add("general.architecture", a, STRING)
    w.add("general.name", name or os.path.basename(os.path.abspath(model_dir)), STRING)
    w.add("general.file_type", file_type, UINT32)
    if quantized:
        w.add("general.quantization_version", 2, UINT32)  # GGML_QNT_VERSION
    ints = [("context_length", hp.n_ctx), ("embedding_length", hp.n_embd),
            ("block_count", hp.n_layer), ("feed_forward_length", hp.n_ff),
            ("attention.head_count", hp.n_head), ("attention.head_count_kv", hp.n_head_kv)]
    if a == "llama":  # llama.cpp writes these two for llama only
        ints += [("vocab_size", hp.n_vocab), ("rope.dimension_count", hp.head_dim)]
    if a == "phi3":   # and this one for phi3 (the rotated dims)
        ints.append(("rope.dimension_count", hp.n_rot))
    if hasattr(hp, "sliding_window"):
        ints.append(("attention.sliding_window", hp.sliding_window))
    if hp.explicit_head_dim or hp.arch in GEMMA:  # as llama.cpp, whenever config.json has head_dim
        ints += [("attention.key_length", hp.head_dim), ("attention.value_length", hp.head_dim)]
    rope_f, rope_s, rope_u, rope_tensors = hp.rope
    ints += list(rope_u.items())
    for key, value in ints:
        w.add(f"{a}.{key}", value, UINT32)
    w.add(f"{a}.rope.freq_base", hp.rope_theta, FLOAT32)
    for key, value in rope_s.items():
        w.add(f"{a}.{key}", value, STRING)
    for key, value in rope_f.items():
        w.add(f"{a}.{key}", float(value), FLOAT32)
    w.add(f"{a}.attention.layer_norm_rms_epsilon", hp.rms_eps, FLOAT32)
    for key, value in getattr(hp, "softcap", {}).items():
        w.add(f"{a}.{key}", value, FLOAT32)
    if hp.arch in GEMMA and "tokenizer.ggml.add_space_prefix" in vocab.flags:
        vocab.flags["tokenizer.ggml.add_space_prefix"] = False  # as convert_hf_to_gguf.py
    for key, value, vtype, elem in vocab.entries():
        w.add(key, value, vtype, elem)
    n_bytes, counts = 0, {}
    for tname, a in rope_tensors.items():  # rope_freqs / LongRoPE factors: first, as llama.cpp
        w.add_tensor_deferred(tname, a.shape, gq.TYPES["F32"].ggml_id, lambda a=a: a)
        n_bytes += len(w.tensors[-1][3])
        counts["F32"] = counts.get("F32", 0) + 1
    for gname, ref, perm in plan:
        tname = (gq.tensor_type(outtype, gname, hp.n_layer, ref.shape[-1], hp.tied)
                 if len(ref.shape) == 2 else "F32")
        counts[tname] = counts.get(tname, 0) + 1
        shift = 1.0 if hp.arch in GEMMA and gname.endswith("norm.weight") else 0.0
        w.add_tensor_deferred(gname, ref.shape, gq.TYPES[tname].ggml_id,
                              lambda ref=ref, perm=perm, tname=tname, shift=shift:
                              load_tensor(ref, perm, tname, shift))
        n_bytes += len(w.tensors[-1][3])

    log(f"{model_dir}: {hp.hf_arch} -> {hp.describe()}")
    log(f"  {vocab.summary()}")
    if ignored:
        log(f"  not converted: {', '.join(sorted(ignored)[:3])}"
            f"{' ...' if len(ignored) > 3 else ''} ({len(ignored)} tensors that libhmt does not use)")
    w.write(out_path)  # atomic: a failure leaves any old file whole and no temporary
    types = ", ".join(f"{n} {t}" for t, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    log(f"  wrote {out_path}: {len(plan)} tensors ({outtype}: {types}), "
        f"{os.path.getsize(out_path) / 1e6:.1f} MB of which tensors {n_bytes / 1e6:.1f} MB, "
        f"in {time.time() - t0:.1f} s")
    return hp, vocab


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Convert a Hugging Face Llama/Qwen2/Qwen3/Gemma2/Gemma3 model directory to a "
                    "GGUF file "
                    "for libhmt.")
    ap.add_argument("model_dir", help="directory with config.json, safetensors weights and a tokenizer")
    ap.add_argument("-o", "--outfile", required=True, help="output .gguf path")
    ap.add_argument("--outtype", choices=sorted(OUTTYPES), default="f16",
                    help="type of the weight matrices (default f16, as llama.cpp): f32, f16, "
                         "bf16, or quantized q8_0, q4_0, q4_k_m with llama-quantize's choice of "
                         "type per tensor; norm weights and biases stay f32")
    ap.add_argument("--name", help="general.name (default: the directory's name)")
    ap.add_argument("--pre", choices=PRE_NAMES,
                    help="byte-level BPE pre-tokenizer to record when tokenizer.json declares "
                         "one this converter does not recognize")
    args = ap.parse_args(argv)
    try:
        convert(args.model_dir, args.outfile, args.outtype, args.name, args.pre)
    except HFError as e:
        print(f"convert_hf: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # writing the output
        print(f"convert_hf: error: {e.filename or args.outfile}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
