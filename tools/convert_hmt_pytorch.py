#!/usr/bin/python3
"""Convert an HMT-pytorch checkpoint (the RecurrentWrapper's state dict:
torch.save .pth, or safetensors) to libhmt's GGUF files: the backbone the
checkpoint carries, and the HMT adapter (docs/HMT.md). No torch needed.

    /usr/bin/python3 tools/convert_hmt_pytorch.py model_weights_1000.pth \\
        --base-hf ~/models/SmolLM-135M  (or --base-gguf smollm-135m-f16.gguf) \\
        --out-model hmt-smollm.gguf --out-adapter hmt-smollm.adapter.gguf \\
        --pytorch-segment-length 1024 [--sensory-length 32] [--cache-size 100]

The checkpoint's layouts are read by tools/hmt_checkpoint.py (pth_read.py
reads the file): plain or `module.`-prefixed keys, PEFT LoRA (merged here:
W + (alpha/r) B A, embeddings E + (alpha/r) (B A)^T), stage 1 without recall.

The base model supplies what a state dict lacks: the metadata, the tokenizer
and the expected tensor names and shapes, from a GGUF (--base-gguf; its
tensors are all replaced) or a Hugging Face directory (--base-hf; read with
tools/convert_hf.py's functions, so the result is what convert_hf.py would
write with these weights). Backbones: llama, qwen2 and qwen3, RoPE scaling
included with --base-gguf (Llama 3.1's rope_freqs.weight is copied from the
base: a checkpoint holds no such tensor); --base-hf refuses rope_scaling and
Qwen3 for now (its metadata is written here, without those keys). The
checkpoint's backbone overrides the base's
weights (HMT-pytorch loads the whole state dict over the pretrained model).
HF names are mapped to llama.cpp's and Llama q/k rows permuted, as
convert_hf.py does. A tied base whose embedding gets a LoRA delta is untied:
PEFT adapts the input embedding only, the LM head keeps the original matrix.
--adapter-only writes just the adapter after checking that the checkpoint's
backbone equals the base's.

Names, shapes and layouts are checked before anything is written, values
(NaN, the f16 range) while writing; outputs are written atomically (a
unique temporary FILE.tmp-XXXXXXXX renamed when complete, removed on any
failure: tools/atomic_write.py). Exit status 0, or 1 with one line
`convert_hmt_pytorch: error: ...` (2 for a bad command line).
"""
import argparse
import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.join(_HERE, "..", "tests", "reference"))
import gguf_write as gw  # noqa: E402
from convert_hf import permute_rope  # noqa: E402
from gguf_read import GGUFError, GGUFFile  # noqa: E402  (the independent reader hmt_torch.py uses)
from hf_files import HFError  # noqa: E402
from hmt_checkpoint import Checkpoint, LayoutError, Source  # noqa: E402
from pth_read import CheckpointError, load  # noqa: E402

TYPES = {"f32": gw.F32, "f16": gw.F16, "bf16": gw.BF16}
FILE_TYPE = {"f32": 0, "f16": 1, "bf16": 32}                # llama_ftype
WTYPE = {"F32": gw.F32, "F16": gw.F16, "BF16": gw.BF16}       # checkpoint dtype -> adapter type
F16_MAX = 65504.0
# keys the writer sets itself
OWN_KEYS = ("general.alignment", "general.architecture", "general.name", "general.file_type",
            "general.quantization_version")


class ConvertError(Exception):
    """A checkpoint/base pair that cannot be converted; the message says why."""


# ---------------------------------------------------------------------------
# HF names -> llama.cpp names (the table of docs/CONVERTING.md, as convert_hf.py)
# ---------------------------------------------------------------------------
_HF_TOP = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
           "lm_head.weight": "output.weight"}
_HF_LAYER = {"input_layernorm.weight": "attn_norm.weight",
             "self_attn.q_proj.weight": "attn_q.weight", "self_attn.q_proj.bias": "attn_q.bias",
             "self_attn.k_proj.weight": "attn_k.weight", "self_attn.k_proj.bias": "attn_k.bias",
             "self_attn.v_proj.weight": "attn_v.weight", "self_attn.v_proj.bias": "attn_v.bias",
             "self_attn.o_proj.weight": "attn_output.weight",
             "post_attention_layernorm.weight": "ffn_norm.weight",
             "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
             "mlp.down_proj.weight": "ffn_down.weight",
             "self_attn.q_norm.weight": "attn_q_norm.weight",      # qwen3
             "self_attn.k_norm.weight": "attn_k_norm.weight"}
# tensors of a base model that are no weights of the network: a checkpoint
# has none, they are copied from the base (Llama 3.1's RoPE frequency factors)
BASE_ONLY = ("rope_freqs.weight",)
ARCHS = ("llama", "qwen2", "qwen3")


def gguf_name(hf):
    """llama.cpp tensor name of an HF Llama/Qwen2 key, or None."""
    if hf in _HF_TOP:
        return _HF_TOP[hf]
    parts = hf.split(".", 3)
    if len(parts) == 4 and parts[:2] == ["model", "layers"] and parts[2].isdigit() \
            and parts[3] in _HF_LAYER:
        return f"blk.{int(parts[2])}.{_HF_LAYER[parts[3]]}"
    return None


def stored_as(a, ttype):
    """a as a file of tensor type ttype holds it (float32)."""
    if ttype == gw.F16:
        return a.astype(np.float16).astype(np.float32)
    if ttype == gw.BF16:
        return gw.bf16_to_f32(gw.bf16_bits(a)).reshape(a.shape)
    return a


# ---------------------------------------------------------------------------
# base models: what the state dict lacks
# ---------------------------------------------------------------------------
def _count(v, key, minimum=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ConvertError(f"the base model's {key} = {v!r} is not a valid count")
    return int(v)


class GGUFBase:
    """--base-gguf: metadata and tokenizer copied, every tensor replaced."""

    def __init__(self, path):
        try:
            self.g = g = GGUFFile(path)
        except (OSError, UnicodeDecodeError, GGUFError) as e:
            raise ConvertError(f"{path}: {e}")
        mt = g.meta
        self.where, self.arch = path, mt.get("general.architecture")
        if self.arch not in ARCHS:
            raise ConvertError(f"{path}: architecture {self.arch!r}; this converter takes "
                               f"{', '.join(ARCHS)} backbones")
        a = self.arch

        def need(key, default=None, minimum=1):
            v = mt.get(f"{a}.{key}", default)
            if v is None:
                raise ConvertError(f"{path}: no {a}.{key}")
            return _count(v, f"{a}.{key}", minimum)

        self.d = need("embedding_length")
        self.n_head = need("attention.head_count")
        self.n_head_kv = need("attention.head_count_kv", self.n_head)
        self.n_ctx = need("context_length", 0, minimum=0)
        self.order = list(g.tensor_order)
        self.shapes = {n: tuple(reversed(g.tensors[n].ne)) for n in self.order}
        self.alignment, self.name = g.alignment, mt.get("general.name")
        for n in ("token_embd.weight", "output_norm.weight"):
            if n not in self.shapes:
                raise ConvertError(f"{path}: no {n}: not a llama.cpp model file")

    def meta_entries(self):
        return [(k, v) + tuple(self.g.meta_type[k]) for k, v in self.g.meta.items()]

    def own_tensor(self, name):
        """A BASE_ONLY tensor of the file, as a checkpoint Source."""
        g = self.g

        class Stored:
            shape = self.shapes[name]

            def f32(self):
                return np.asarray(g.tensor(name), dtype=np.float32)
        return Source(f"{name} (copied from the base model)", Stored())

    def compare(self, name, mine):
        """max |mine - base| after rounding mine to the base's storage, and
        whether that is within the storage's own rounding."""
        t, theirs = self.g.tensors[name].type, self.g.tensor(name)
        diff = np.abs(stored_as(mine, t).astype(np.float64) - theirs)
        if t == gw.Q8_0:                # one quantization step of each 32-value block
            step = np.abs(mine).reshape(-1, 32).max(axis=1, keepdims=True) / 127.0
            return float(diff.max()), bool((diff.reshape(-1, 32) <= step * 1.0001 + 1e-12).all())
        return float(diff.max()), not diff.any()


class HFBase:
    """--base-hf: the directory read as tools/convert_hf.py reads it."""

    def __init__(self, model_dir):
        import convert_hf
        from hf_files import load_json, open_weights
        if not os.path.isdir(model_dir):
            raise ConvertError(f"{model_dir}: not a directory")
        cfg_path = os.path.join(model_dir, "config.json")
        cfg = load_json(cfg_path)
        if not isinstance(cfg, dict):
            raise ConvertError(f"{cfg_path}: not a JSON object")
        self.hp = hp = convert_hf.HParams(cfg, cfg_path)
        plan, _ = convert_hf.plan_tensors(hp, open_weights(model_dir), model_dir)
        self.vocab = convert_hf.convert_tokenizer(model_dir, hp.n_vocab, cfg)
        self.where, self.arch = model_dir, hp.arch
        self.d, self.n_head, self.n_head_kv, self.n_ctx = hp.n_embd, hp.n_head, hp.n_head_kv, hp.n_ctx
        self.order = [name for name, _, _ in plan]
        self.shapes = {name: tuple(ref.shape) for name, ref, _ in plan}
        self.refs = {name: (ref, perm) for name, ref, perm in plan}
        self.alignment, self.name = 32, os.path.basename(os.path.abspath(model_dir))

    def meta_entries(self):
        """The metadata convert_hf.convert() writes after general.*."""
        hp, a = self.hp, self.arch
        ints = [("context_length", hp.n_ctx), ("embedding_length", hp.n_embd),
                ("block_count", hp.n_layer), ("feed_forward_length", hp.n_ff),
                ("attention.head_count", hp.n_head), ("attention.head_count_kv", hp.n_head_kv)]
        if a == "llama":
            ints += [("vocab_size", hp.n_vocab), ("rope.dimension_count", hp.head_dim)]
        out = [(f"{a}.{k}", v, gw.UINT32, None) for k, v in ints]
        out += [(f"{a}.rope.freq_base", hp.rope_theta, gw.FLOAT32, None),
                (f"{a}.attention.layer_norm_rms_epsilon", hp.rms_eps, gw.FLOAT32, None)]
        return out + list(self.vocab.entries())

    def value(self, name):
        ref, perm = self.refs[name]
        a = ref.float32()
        return permute_rope(a, perm) if perm else a

    def compare(self, name, mine):
        ref = self.refs[name][0]
        t = {"F16": gw.F16, "BF16": gw.BF16}.get(ref.dtype, gw.F32)
        diff = np.abs(stored_as(mine, t).astype(np.float64) - self.value(name))
        return float(diff.max()), not diff.any()


# ---------------------------------------------------------------------------
# the plan: every output tensor, checked before anything is written
# ---------------------------------------------------------------------------
class Plan:
    def __init__(self, ck, base):
        self.ck, self.base, self.arch = ck, base, base.arch
        if any(k.startswith("model.decoder.") for k in ck.sources):
            raise ConvertError("the backbone is OPT (model.decoder.*); this converter takes "
                               f"{', '.join(ARCHS)} backbones only")
        by_name, unknown = {}, []
        for hf, s in ck.sources.items():
            n = gguf_name(hf)
            if n is None:
                unknown.append(hf)
            else:
                by_name[n] = s
        if unknown:
            raise ConvertError(f"{len(unknown)} backbone tensors have no llama.cpp name, "
                               f"e.g. {unknown[:4]} (expected a Llama/Qwen2/Qwen3 HF state dict)")
        self.notes, self.tensors = [], []           # tensors: (gguf name, shape, Source)
        for name in base.order:
            if name in BASE_ONLY and name not in by_name and hasattr(base, "own_tensor"):
                self._add(name, base.own_tensor(name), base.shapes[name])
                continue
            if name not in by_name:
                raise ConvertError(f"the checkpoint has no tensor for {name} of the base model")
            self._add(name, by_name.pop(name), base.shapes[name])
        head = by_name.pop("output.weight", None)
        emb = ck.sources["model.embed_tokens.weight"]
        if "output.weight" not in base.shapes:      # a tied base stays tied only if the checkpoint is
            why = None
            if emb.lora is not None:
                why = "the embedding has a LoRA delta, which PEFT applies to the input side only"
                if head is None:
                    head = Source("model.embed_tokens (without its LoRA delta)", emb.base)
            elif head is not None and (head.lora is not None or not _same(head.base, emb.base)):
                why = "the checkpoint's lm_head differs from its embedding"
            if why:
                at = [t[0] for t in self.tensors].index("output_norm.weight")
                self._add("output.weight", head, base.shapes["token_embd.weight"], at + 1)
                self.notes.append(f"untied: output.weight written because {why}")
        if by_name:
            raise ConvertError(f"checkpoint tensors with no place in the base model: "
                               f"{sorted(by_name)[:4]} (a different architecture?)")

    def _add(self, name, src, want, at=None):
        if src.shape != tuple(want):
            raise ConvertError(f"{src.key}: shape {list(src.shape)}, but the base model's {name} "
                               f"is {list(want)}")
        if self.arch == "llama" and name.endswith(".bias"):
            raise ConvertError(f"{src.key}: attention biases are not part of the llama architecture")
        if self.arch == "llama" and name.endswith(("attn_q.weight", "attn_k.weight")):
            heads = self.base.n_head if "attn_q" in name else self.base.n_head_kv
            if src.shape[0] % (2 * heads):
                raise ConvertError(f"{src.key}: {src.shape[0]} rows do not split into {heads} heads")
        entry = (name, src.shape, src)
        self.tensors.insert(len(self.tensors) if at is None else at, entry)

    def value(self, name, src, ttype=gw.F32):
        """The float32 tensor to write under name (LoRA merged, RoPE permuted)."""
        w = src.value()
        if not np.isfinite(w).all():
            raise ConvertError(f"{src.key}: NaN or infinite values")
        if ttype == gw.F16 and w.size and np.abs(w).max() > F16_MAX:
            raise ConvertError(f"{src.key}: values up to {np.abs(w).max():g}, beyond float16's "
                               f"range; use --type bf16 or f32")
        if self.arch == "llama" and name.endswith("attn_q.weight"):
            w = permute_rope(w, self.base.n_head)
        elif self.arch == "llama" and name.endswith("attn_k.weight"):
            w = permute_rope(w, self.base.n_head_kv)
        return np.ascontiguousarray(w, dtype=np.float32)


def _same(a, b):
    return a is b or (tuple(a.shape) == tuple(b.shape) and np.array_equal(a.f32(), b.f32()))


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------
def write_model(plan, path, wtype, name=None):
    base = plan.base
    w = gw.StreamingGGUFWriter(alignment=base.alignment)
    w.add("general.architecture", plan.arch, gw.STRING)
    if name or base.name:
        w.add("general.name", name or base.name, gw.STRING)
    w.add("general.file_type", FILE_TYPE[wtype], gw.UINT32)
    for key, value, vtype, etype in base.meta_entries():
        if key not in OWN_KEYS:
            w.add(key, value, vtype, etype)
    for tname, shape, src in plan.tensors:
        typ = TYPES[wtype] if len(shape) == 2 else gw.F32
        w.add_tensor_deferred(tname, shape, typ, lambda n=tname, s=src, t=typ: plan.value(n, s, t))
    w.write(path)  # atomic (gguf_write uses tools/atomic_write.py)


def check_backbone(plan):
    """--adapter-only: [(name, what)] of the planned tensors that differ from
    the base's (at the base's storage precision)."""
    bad = []
    for name, _, src in plan.tensors:
        if name not in plan.base.shapes:
            bad.append((name, "not in the (tied) base"))
            continue
        diff, same = plan.base.compare(name, plan.value(name, src))
        if not same:
            bad.append((name, f"max |diff| {diff:.3g}"))
    return bad


def write_adapter(p, d, a, path):
    w = gw.GGUFWriter()
    w.add("general.architecture", "hmt")
    if p["stage1"]:
        w.add("general.description", "HMT-pytorch stage-1 (RMT) checkpoint: no summary prompt "
              "or recall weights (zeros here); use mode rmt")
    w.add("hmt.version", 1, gw.UINT32)
    w.add("hmt.embedding_length", d, gw.UINT32)
    w.add("hmt.segment_length", a.L, gw.UINT32)
    w.add("hmt.sensory_length", a.sensory_length, gw.UINT32)
    w.add("hmt.summary_fraction", float(a.summary_fraction), gw.FLOAT32)
    if a.generation_summary_length is not None:
        w.add("hmt.generation_summary_length", a.generation_summary_length, gw.UINT32)
    w.add("hmt.cache_size", a.cache_size, gw.UINT32)
    w.add("hmt.recall_scale", a.recall_scale, gw.STRING)
    w.add("hmt.recall_bf16", bool(a.recall_bf16 and not p["stage1"]), gw.BOOL)
    w.add_tensor("hmt.summary_prompt", p["T"], gw.F32)
    w.add_tensor("hmt.memory_init", p["M_init"], gw.F32)
    wt = WTYPE.get(p["w_dtype"], gw.F32)        # bf16 weights stay bf16 (exact)
    w.add_tensor("hmt.recall.wq", p["Wq"], wt)
    w.add_tensor("hmt.recall.wk", p["Wk"], wt)
    w.write(path)  # atomic (gguf_write uses tools/atomic_write.py)
    return wt


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="HMT-pytorch checkpoint (.pth / .safetensors) -> libhmt GGUF model + "
                    "HMT adapter (docs/CONVERTING.md)")
    ap.add_argument("checkpoint", nargs="+", help="state dict file(s) (shards are merged)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--base-gguf", help="GGUF of the base model (metadata, tokenizer, shapes)")
    src.add_argument("--base-hf", help="Hugging Face directory of the base model (as convert_hf.py)")
    ap.add_argument("--out-model", help="GGUF to write with the checkpoint's backbone")
    ap.add_argument("--out-adapter", required=True, help="HMT adapter GGUF to write")
    ap.add_argument("--adapter-only", action="store_true",
                    help="write only the adapter; fails unless the checkpoint's backbone equals "
                         "the base model's")
    seg = ap.add_mutually_exclusive_group()
    seg.add_argument("--segment-length", type=int, dest="L",
                     help="L: real tokens per segment (libhmt's hmt.segment_length)")
    seg.add_argument("--pytorch-segment-length", type=int,
                     help="HMT-pytorch's --segment_length S (all slots): L = S - 2 - k")
    ap.add_argument("--sensory-length", type=int, default=32,
                    help="k, HMT-pytorch's --num_sensory (default 32, as all its scripts)")
    ap.add_argument("--cache-size", type=int, default=100,
                    help="N, HMT-pytorch's --mem_recall_context (default 100, its default)")
    ap.add_argument("--summary-fraction", type=float, default=0.5,
                    help="j = round(L * fraction), HMT-pytorch's sum_fraction (default 0.5)")
    ap.add_argument("--generation-summary-length", type=int,
                    help="j for generation (default: not written, libhmt uses L // 2)")
    ap.add_argument("--recall-scale", choices=("sqrt", "linear"), default="sqrt",
                    help="divide recall scores by sqrt(d_h) (default) or d_h")
    ap.add_argument("--no-recall-bf16", dest="recall_bf16", action="store_false",
                    help="recall in float32 instead of emulating HMT-pytorch's bf16 recall")
    ap.add_argument("--lora-alpha", type=float, default=32.0,
                    help="LoRA alpha (default 32, HMT-pytorch's LoraConfig); scale = alpha / r")
    ap.add_argument("--lora-r", type=int, help="expected LoRA rank (default: read from lora_A)")
    ap.add_argument("--lora-adapter", help="PEFT adapter name when there are several")
    ap.add_argument("--type", choices=sorted(TYPES), default="f16",
                    help="type of the backbone's weight matrices (default f16; norms and "
                         "biases stay F32)")
    ap.add_argument("--name", help="general.name of the model file (default: the base's)")
    a = ap.parse_args(argv)
    if not a.adapter_only and not a.out_model:
        ap.error("give --out-model (or --adapter-only)")
    if a.adapter_only and a.out_model:
        ap.error("--adapter-only writes no model; drop --out-model")
    if a.L is None and a.pytorch_segment_length is None:
        ap.error("the segment length is not in the checkpoint: give --segment-length L or "
                 "--pytorch-segment-length S (HMT-pytorch's --segment_length; L = S - 2 - k)")
    if a.sensory_length < 0:
        ap.error("--sensory-length must be >= 0")
    if a.L is None:
        a.L = a.pytorch_segment_length - 2 - a.sensory_length
    if not 1 <= a.L <= 1 << 20:
        ap.error(f"segment length L = {a.L} is outside [1, 1048576]")
    if a.sensory_length > a.L:
        ap.error(f"--sensory-length {a.sensory_length} exceeds L = {a.L}")
    if not 1 <= a.cache_size <= 65536:
        ap.error("--cache-size must be in [1, 65536]")
    if not 0 < a.summary_fraction <= 1:
        ap.error("--summary-fraction must be in (0, 1]")
    g = a.generation_summary_length
    if g is not None and not 1 <= g <= a.L:
        ap.error(f"--generation-summary-length must be in [1, {a.L}]")
    if a.lora_r is not None and a.lora_r < 1:
        ap.error("--lora-r must be >= 1")
    if not a.lora_alpha > 0:
        ap.error("--lora-alpha must be > 0")
    return a


def convert(a):
    sd = {}
    for path in a.checkpoint:
        part = load(path)
        dup = sorted(set(sd) & set(part))
        if dup:
            raise ConvertError(f"{path}: keys also in an earlier file, e.g. {dup[:3]}")
        sd.update(part)
    ck = Checkpoint(sd, a.lora_alpha, a.lora_r, a.lora_adapter)
    base = GGUFBase(a.base_gguf) if a.base_gguf else HFBase(a.base_hf)
    plan = Plan(ck, base)
    p = ck.hmt_tensors(base.d)
    d_h = p["Wq"].shape[0]
    print(f"checkpoint: {len(sd)} tensors, {ck.layout}; "
          f"{'stage 1 (RMT: no recall)' if p['stage1'] else f'stage 2, d_h = {d_h}'}; "
          f"{len(ck.ignored)} mem_map tensors ignored")
    if ck.lora_modules:
        print(f"LoRA merged into {len(ck.lora_modules)} weights: rank {sorted(ck.lora_ranks)}, "
              f"alpha {a.lora_alpha:g}, scale alpha/r")
    for n in plan.notes:
        print("note:", n)
    if p["stage1"]:
        print("note: stage-1 checkpoint: the adapter is for mode rmt (full mode would recall "
              "with zero weights)")
    if base.n_ctx and a.L + a.sensory_length + 2 > base.n_ctx:
        print(f"warning: k + L + 2 = {a.L + a.sensory_length + 2} exceeds the base model's "
              f"context length {base.n_ctx}; streams need an n_ctx of at least that")
    if not p["stage1"] and base.d >= 4096 and d_h >= 4096 and a.recall_scale == "sqrt":
        print("note: for d, d_h >= 4096 HMT-pytorch's current PPL evaluation divides the recall "
              "scores by d_h (--recall-scale linear); its generate() uses sqrt(d_h)")
    if a.adapter_only:
        bad = check_backbone(plan)
        if bad:
            raise ConvertError(
                f"--adapter-only: the checkpoint's backbone differs from {base.where} in "
                f"{len(bad)} of {len(plan.tensors)} tensors: "
                + "; ".join(f"{n} ({w})" for n, w in bad[:5]) +
                ". HMT-pytorch loads the checkpoint's backbone over the base model, so convert "
                "it too (--out-model)")
        print(f"backbone: all {len(plan.tensors)} tensors equal the base model's")
    else:
        write_model(plan, a.out_model, a.type, a.name)
        print(f"wrote {a.out_model}: {len(plan.tensors)} tensors ({a.type} matrices), metadata "
              f"and tokenizer from {base.where}, {os.path.getsize(a.out_model)} bytes")
    wt = write_adapter(p, base.d, a, a.out_adapter)
    print(f"wrote {a.out_adapter}: L={a.L} k={a.sensory_length} N={a.cache_size} "
          f"fraction={a.summary_fraction:g} d={base.d} d_h={d_h} scale={a.recall_scale} "
          f"bf16={'on' if a.recall_bf16 and not p['stage1'] else 'off'} "
          f"W_q/W_k {'BF16' if wt == gw.BF16 else 'F16' if wt == gw.F16 else 'F32'}")


def main(argv=None):
    a = parse_args(argv)
    try:
        convert(a)
    except (ConvertError, CheckpointError, LayoutError, GGUFError, HFError) as e:
        print(f"convert_hmt_pytorch: error: {e}", file=sys.stderr)
        return 1
    except MemoryError:
        print("convert_hmt_pytorch: error: out of memory", file=sys.stderr)
        return 1
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"convert_hmt_pytorch: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
