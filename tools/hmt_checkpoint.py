"""An HMT-pytorch RecurrentWrapper state dict split into its parts: the HMT
tensors (T, M_init, W_q, W_k) and the backbone under its Hugging Face names,
with PEFT LoRA pairs attached for merging. Layouts (design notes
algorithms.md §1.9; a `module.` prefix, from DDP/DeepSpeed, is stripped):

  mem [1, d] -> T              memory_cell.memory [1, d] -> M_init
  cross_attn.wq.weight, cross_attn.wk.weight [d_h, d] -> W_q, W_k (q = W_q s)
  memory_cell.mem_map.*        ignored (used only when switch_at fires: never at inference)
  memory_cell.model.<HF key>   the backbone
  memory_cell.model.base_model.model.<HF key>   the backbone under PEFT:
      X.base_layer.weight (older PEFT: X.weight) + X.lora_A.<name>.weight [r, in]
      + X.lora_B.<name>.weight [out, r]             -> W + (alpha/r) B A
      X.lora_embedding_A.<name> [r, V] + X.lora_embedding_B.<name> [d, r]
                                                    -> E + (alpha/r) (B A)^T
  Stage 1 (RMT) checkpoints have no mem and no cross_attn.

Standard library + NumPy; tensors come from tools/pth_read.py.
"""
import re

import numpy as np

HMT_KEYS = {"mem": "T", "memory_cell.memory": "M_init", "cross_attn.wq.weight": "Wq",
            "cross_attn.wk.weight": "Wk"}
_LORA = re.compile(r"^(.*)\.(lora_A|lora_B)\.([^.]+)\.weight$")
_LORA_EMB = re.compile(r"^(.*)\.(lora_embedding_A|lora_embedding_B)\.([^.]+)(?:\.weight)?$")
_BASE_LAYER = re.compile(r"^(.*)\.base_layer\.(weight|bias)$")


class LayoutError(Exception):
    """A state dict that is not an HMT-pytorch checkpoint we can read."""


class Source:
    """One backbone tensor (HF name): the stored tensor plus an optional LoRA
    pair, merged by value()."""

    def __init__(self, key, base):
        self.key, self.base, self.lora = key, base, None   # lora: (kind, A, B, scale)

    @property
    def shape(self):
        return tuple(self.base.shape)

    def value(self):
        """float32 (PEFT merges in the weights' dtype too); at most three
        copies of the tensor alive, which bounds memory on large embeddings."""
        w = np.array(self.base.f32(), dtype=np.float32)     # a writable copy
        if self.lora is None:
            return w
        kind, a, b, scale = self.lora
        delta = b.f32() @ a.f32()                           # [out, in], or [d, V] for an embedding
        delta *= np.float32(scale)
        w += delta.T if kind == "embedding" else delta
        return w


class Checkpoint:
    """sd: {key: tensor with dtype, shape, f32()}. Attributes: hmt
    (T/M_init/Wq/Wk -> tensor), sources ({HF key: Source}), peft (bool),
    lora_modules, lora_ranks, ignored (mem_map keys)."""

    def __init__(self, sd, lora_alpha=32.0, lora_r=None, lora_adapter=None):
        self.hmt, raw = {}, {}
        self.ignored, unknown = [], []
        self.peft = None
        for key, t in sd.items():
            k = key
            while k.startswith("module."):
                k = k[len("module."):]
            if k in HMT_KEYS:
                if HMT_KEYS[k] in self.hmt:
                    raise LayoutError(f"{k} appears twice (with and without a module. prefix?)")
                self.hmt[HMT_KEYS[k]] = t
            elif k.startswith("memory_cell.mem_map."):
                self.ignored.append(k)
            elif k.startswith("memory_cell.model."):
                k = k[len("memory_cell.model."):]
                peft = k.startswith("base_model.model.")
                if self.peft is not None and peft != self.peft:
                    raise LayoutError("backbone keys mix the PEFT layout "
                                      "(memory_cell.model.base_model.model.*) and the plain one")
                self.peft = peft
                k = k[len("base_model.model."):] if peft else k
                if k in raw:
                    raise LayoutError(f"backbone tensor {k} appears twice (with and without a "
                                      f"module. prefix?)")
                raw[k] = t
            else:
                unknown.append(key)
        if unknown:
            raise LayoutError(f"{len(unknown)} keys are not HMT-pytorch RecurrentWrapper keys, "
                              f"e.g. {unknown[:4]} (expected mem, memory_cell.*, cross_attn.*)")
        if not raw:
            raise LayoutError("no backbone (memory_cell.model.*) in the checkpoint")
        self.sources = self._sources(raw, lora_alpha, lora_r, lora_adapter)

    def _sources(self, raw, alpha, want_r, adapter):
        src, loras, names = {}, {}, set()
        for k, t in raw.items():
            if k.endswith("rotary_emb.inv_freq"):          # a recomputed buffer, not a weight
                continue
            if "lora_magnitude_vector" in k:
                raise LayoutError(f"{k}: DoRA adapters are not supported")
            m = _LORA.match(k) or _LORA_EMB.match(k)
            if m:
                kind = "embedding" if "embedding" in m.group(2) else "linear"
                part = loras.setdefault((m.group(1) + ".weight", m.group(3)), {})
                part[m.group(2)[-1]] = (kind, t)
                names.add(m.group(3))
                continue
            m = _BASE_LAYER.match(k)
            name = f"{m.group(1)}.{m.group(2)}" if m else k
            if name in src:
                raise LayoutError(f"backbone tensor {name} is stored twice ({src[name].key} and {k})")
            src[name] = Source(k, t)
        if len(names) > 1 and adapter is None:
            raise LayoutError(f"the checkpoint holds several LoRA adapters {sorted(names)}; "
                              f"choose one with --lora-adapter")
        if adapter is not None and names and adapter not in names:
            raise LayoutError(f"no LoRA adapter named {adapter!r} (found {sorted(names)})")
        self.lora_modules, self.lora_ranks = [], set()
        for (name, nm), parts in sorted(loras.items()):
            if adapter is not None and nm != adapter:
                continue
            if set(parts) != {"A", "B"}:
                raise LayoutError(f"LoRA of {name} ({nm}) has only lora_{''.join(parts)}")
            if name not in src:
                raise LayoutError(f"LoRA for {name}, but no such backbone tensor")
            (kind, a), (_, b) = parts["A"], parts["B"]
            w = src[name].shape
            if len(a.shape) != 2 or len(b.shape) != 2 or len(w) != 2:
                raise LayoutError(f"LoRA of {name}: A {list(a.shape)}, B {list(b.shape)}, "
                                  f"W {list(w)} are not all matrices")
            r = a.shape[0]
            # linear: W [out, in], A [r, in], B [out, r];  embedding: E [V, d], A [r, V], B [d, r]
            want_a = (r, w[1] if kind == "linear" else w[0])
            want_b = (w[0] if kind == "linear" else w[1], r)
            if tuple(a.shape) != want_a or tuple(b.shape) != want_b or r < 1:
                raise LayoutError(f"LoRA of {name}: A {list(a.shape)} and B {list(b.shape)} do "
                                  f"not fit the weight {list(w)} (want A {list(want_a)}, "
                                  f"B {list(want_b)})")
            if want_r is not None and r != want_r:
                raise LayoutError(f"LoRA of {name} has rank {r}, --lora-r says {want_r}")
            src[name].lora = (kind, a, b, alpha / r)
            self.lora_modules.append(name)
            self.lora_ranks.add(r)
        return src

    @property
    def layout(self):
        if not self.peft:
            return "plain backbone"
        if any(_BASE_LAYER.match(s.key) for s in self.sources.values()):
            return "PEFT LoRA (base_layer)"
        return "PEFT LoRA (older layout, no base_layer)"

    def hmt_tensors(self, d):
        """dict(T [d], M_init [d], Wq [d_h, d], Wk, w_dtype, stage1) as float32.
        Stage 1: T = 0 and W_q = W_k = 0 with d_h = 1 (for mode rmt)."""
        h, have = self.hmt, sorted(self.hmt)
        if "M_init" not in h:
            raise LayoutError(f"memory_cell.memory is missing (HMT tensors found: {have or 'none'}):"
                              f" not an HMT-pytorch checkpoint")
        stage1 = not ({"T", "Wq", "Wk"} & set(h))
        if not stage1 and not {"T", "Wq", "Wk"} <= set(h):
            raise LayoutError(f"a stage-2 checkpoint needs mem, cross_attn.wq and cross_attn.wk; "
                              f"found only {have}")
        m = h["M_init"]
        if len(m.shape) != 2 or m.shape[1] != d:
            raise LayoutError(f"memory_cell.memory has shape {list(m.shape)}; want [1, {d}]")
        if m.shape[0] != 1:
            raise LayoutError(f"memory_cell.memory holds {m.shape[0]} memory tokens; libhmt's HMT "
                              f"uses one (num_mem_tokens = 1)")
        out = {"M_init": m.f32().reshape(d), "stage1": stage1}
        if stage1:
            z = np.zeros((1, d), np.float32)
            out.update(T=np.zeros(d, np.float32), Wq=z, Wk=z.copy(), w_dtype="F32")
            return out
        if h["T"].size != d:
            raise LayoutError(f"mem has shape {list(h['T'].shape)}; want [1, {d}]")
        wq, wk = h["Wq"], h["Wk"]
        if len(wq.shape) != 2 or wq.shape[1] != d or tuple(wk.shape) != tuple(wq.shape):
            raise LayoutError(f"cross_attn.wq/wk have shapes {list(wq.shape)} / {list(wk.shape)}; "
                              f"want [d_h, {d}] both")
        out.update(T=h["T"].f32().reshape(d), Wq=wq.f32(), Wk=wk.f32(),
                   w_dtype=wq.dtype if wq.dtype == wk.dtype else "F32")
        for k in ("T", "M_init", "Wq", "Wk"):
            if not np.isfinite(out[k]).all():
                raise LayoutError(f"{k} has NaN or infinite values")
        return out
