"""RoPE scaling of a Hugging Face config as llama.cpp stores it in GGUF
(the one copy: tools/convert_hf.py and tests/reference/gen_model.py use it).

- "llama3" (Llama 3.1/3.2): no metadata key; a tensor rope_freqs.weight of
  head_dim/2 float32 factors that divide each pair's frequency (llama.cpp's
  convert_hf_to_gguf.py computes them from HF's _compute_llama3_parameters:
  wavelength 2 pi / theta_i below original / high_freq_factor keeps the
  frequency (factor 1), above original / low_freq_factor divides it by
  factor, in between 1 / ((1 - s) / factor + s) with
  s = (original / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)).
  Difference: convert_hf_to_gguf.py reads original_max_position_embeddings
  from the top level of config.json (default 8192), HF from rope_scaling;
  Llama 3.x configs give 8192 either way. This module follows HF.
- "linear": rope.scaling.type linear + rope.scaling.factor.
- "yarn": rope.scaling.type yarn + factor + original_context_length
  (+ attn_factor when the config gives attention_factor). beta_fast /
  beta_slow other than 32 / 1 are refused: llama.cpp's llama, qwen2 and
  qwen3 graphs use those defaults whatever the file says.
- "longrope" (or its old name "su"; Phi-3 128k, Phi-3.5, Phi-4-mini; arch
  phi3 only): the tensors rope_factors_long.weight and
  rope_factors_short.weight (float32, n_rot/2 each), the key
  rope.scaling.attn_factor = HF's attention_factor, else
  sqrt(1 + ln s / ln original) with s = max_position_embeddings / original
  (1 when s <= 1), as llama.cpp's Phi3MiniModel writes it. The original
  context (rope.scaling.original_context_length) is the config's top-level
  original_max_position_embeddings (Phi-3's place), else rope_scaling's.
"""
import math

import numpy as np


class RopeScalingError(ValueError):
    pass


def llama3_freq_factors(base, dim, factor, low_freq_factor, high_freq_factor, original):
    """rope_freqs.weight for HF's "llama3" rope_scaling: float32 [dim // 2]."""
    if not high_freq_factor > low_freq_factor > 0 or not factor > 0 or not original > 0:
        raise RopeScalingError("llama3 rope_scaling needs factor > 0, original_max_position_"
                               "embeddings > 0 and high_freq_factor > low_freq_factor > 0")
    theta = 1.0 / (float(base) ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    low_wavelen = original / low_freq_factor
    high_wavelen = original / high_freq_factor
    out = []
    for t in theta:
        wavelen = 2 * math.pi / t
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(float(factor))
        else:
            s = (original / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            out.append(1.0 / ((1 - s) / factor + s))
    return np.array(out, np.float32)


def longrope_attn_factor(rs, max_pos, original):
    """HF's LongRoPE attention_factor (_compute_longrope_parameters)."""
    if rs.get("attention_factor") is not None:
        return float(rs["attention_factor"])
    s = float(rs.get("factor") or max_pos / original)
    return math.sqrt(1.0 + math.log(s) / math.log(original)) if s > 1.0 else 1.0


def gguf_rope_scaling(rs, base, head_dim, arch, max_pos=None, original=None):
    """HF rope_scaling (dict or None) -> (float keys {suffix: value}, string
    keys {suffix: value}, uint32 keys {suffix: value}, tensors {name: float32
    array}), the GGUF form llama.cpp reads. head_dim: the rotated dims.
    max_pos, original: the config's max_position_embeddings and top-level
    original_max_position_embeddings (LongRoPE). Raises RopeScalingError for
    what libhmt (or llama.cpp's graph for arch) does not implement."""
    if rs is None:
        return {}, {}, {}, {}
    if not isinstance(rs, dict):
        raise RopeScalingError(f"rope_scaling {rs!r} is not a dict")
    kind = rs.get("rope_type", rs.get("type"))
    if kind in (None, "default"):
        return {}, {}, {}, {}

    def num(key, default=None):
        v = rs.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise RopeScalingError(f"rope_scaling {kind}: '{key}' must be a positive number "
                                   f"(got {v!r})")
        return float(v)

    if kind == "llama3":
        if arch != "llama":
            raise RopeScalingError(f"rope_scaling llama3 on {arch}: llama.cpp applies "
                                   "rope_freqs only to llama")
        ff = llama3_freq_factors(base, head_dim, num("factor", 8.0), num("low_freq_factor", 1.0),
                                 num("high_freq_factor", 4.0),
                                 num("original_max_position_embeddings", 8192))
        return {}, {}, {}, {"rope_freqs.weight": ff}
    if kind == "linear":
        return {"rope.scaling.factor": num("factor")}, {"rope.scaling.type": "linear"}, {}, {}
    if kind == "yarn":
        for key, default in (("beta_fast", 32.0), ("beta_slow", 1.0)):
            if key in rs and num(key) != default:
                raise RopeScalingError(f"rope_scaling yarn: {key} {rs[key]} (llama.cpp's "
                                       f"{arch} graph uses {default:g} whatever the file says)")
        for key in ("mscale", "mscale_all_dim", "truncate"):
            if key in rs and rs[key] not in (None, 0, 1, True):
                raise RopeScalingError(f"rope_scaling yarn: {key} {rs[key]!r} not implemented")
        floats = {"rope.scaling.factor": num("factor")}
        orig = rs.get("original_max_position_embeddings")
        if orig is None or isinstance(orig, bool) or not isinstance(orig, int) or orig <= 0:
            raise RopeScalingError("rope_scaling yarn needs original_max_position_embeddings")
        af = rs.get("attention_factor")
        if af is not None:
            # HF's attention_factor replaces 0.1 ln(factor) + 1; llama.cpp
            # multiplies its attn_factor into that: store the ratio
            floats["rope.scaling.attn_factor"] = num("attention_factor") / (
                0.1 * math.log(floats["rope.scaling.factor"]) + 1.0
                if floats["rope.scaling.factor"] > 1 else 1.0)
        return floats, {"rope.scaling.type": "yarn"}, \
            {"rope.scaling.original_context_length": orig}, {}
    if kind in ("longrope", "su"):
        if arch != "phi3":
            raise RopeScalingError(f"rope_scaling {kind} on {arch}: libhmt applies LongRoPE "
                                   "factors to phi3 only")
        orig = original if original is not None else rs.get("original_max_position_embeddings")
        if orig is None or isinstance(orig, bool) or not isinstance(orig, int) or orig <= 1:
            raise RopeScalingError("rope_scaling longrope needs original_max_position_embeddings")
        tensors = {}
        for which in ("long", "short"):
            f = rs.get(which + "_factor")
            if not isinstance(f, list) or len(f) != head_dim // 2 or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    and v > 0 for v in f):
                raise RopeScalingError(f"rope_scaling longrope: {which}_factor must be "
                                       f"{head_dim // 2} positive numbers (rotated dims / 2)")
            tensors[f"rope_factors_{which}.weight"] = np.array(f, np.float32)
        if max_pos is None:
            raise RopeScalingError("rope_scaling longrope needs max_position_embeddings")
        return {"rope.scaling.attn_factor": longrope_attn_factor(rs, max_pos, orig)}, {}, \
            {"rope.scaling.original_context_length": orig}, tensors
    raise RopeScalingError(f"rope_scaling {kind!r} not implemented (llama3, linear, yarn, "
                           "longrope are)")
