"""tools/convert_hmt_pytorch.py end to end, without torch.

Small random base models (tests/reference/gen_model.py) and HMT-pytorch
checkpoints in every key layout of algorithms.md §1.9, written with
torch.save when torch is importable (and HMT_TEST_NO_TORCH is unset), else
with the minimal zip-pickle writer below (which one case always uses, so the
reader is exercised both ways; when torch is present the minimal writer's
files are also checked with torch.load). Per case:
  - the converted backbone equals this file's own NumPy merge of the
    checkpoint (W + (alpha/r) B A; embeddings E + (alpha/r)(B A)^T), mapped
    and q/k-permuted by this file's own index arithmetic;
  - the adapter holds the checkpoint's T, M_init, W_q, W_k exactly;
  - libhmt (python/hmt over $HMT_LIB_PATH) loads both files and its HMT
    logits for every token equal the NumPy oracle (tests/reference/hmt_ref.py)
    run on the checkpoint's own tensors: HF layout, HF rotate-half RoPE
    (NEOX pairs), no permutation;
and corrupt or hostile inputs give a clear error, exit status 1, no traceback.

    HMT_LIB_PATH=build/libhmt.so python3 tests/tools/check_convert_hmt.py
"""
import collections
import contextlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
import convert_hf  # noqa: E402
import convert_hmt_pytorch  # noqa: E402
import gguf_write as gw  # noqa: E402
import hmt_ref  # noqa: E402
from gen_model import make_model  # noqa: E402
from hf_dir import gguf_to_hf  # noqa: E402
from hmt_golden import BF16_ERR  # noqa: E402
from hmt_ref import bf16_margin  # noqa: E402
from gguf_read import GGUFFile  # noqa: E402
from llama_ref import Model  # noqa: E402

import hmt  # noqa: E402

torch = None
if not os.environ.get("HMT_TEST_NO_TORCH"):
    try:
        import torch  # noqa: F401
    except ImportError:
        torch = None

CONVERTER = os.path.join(ROOT, "tools", "convert_hmt_pytorch.py")
PYTHON = sys.executable
L, K, N, D_H, R, ALPHA = 8, 2, 3, 24, 4, 32.0
TOL_LOGIT = 1e-4          # libhmt (float32) vs the float64 oracle, as tests/python uses
FAILURES = []


def read(path):
    with open(path, "rb") as f:
        return f.read()


def check(what, ok, detail=""):
    print(f"  {what:66s} {'ok' if ok else 'FAIL'}{'  ' + detail if detail else ''}")
    if not ok:
        FAILURES.append(what)


# ---------------------------------------------------------------------------
# checkpoints: storages + strided tensor records, three writers
# ---------------------------------------------------------------------------
def bf16(a):
    return gw.bf16_to_f32(gw.bf16_bits(a)).reshape(np.shape(a))


class Ckpt:
    """A state dict as torch.save stores it: storages and (key, storage,
    offset, size, stride) records; `values` keeps each key's logical array."""

    def __init__(self):
        self.storages, self.records, self.values = {}, [], collections.OrderedDict()

    def _storage(self, flat, dtype):
        sid = str(len(self.storages))
        raw = {"F32": lambda a: a.astype("<f4"), "F16": lambda a: a.astype("<f2"),
               "BF16": lambda a: gw.bf16_bits(a).astype("<u2")}[dtype](flat)
        self.storages[sid] = (dtype, raw)
        return sid

    def add(self, key, a, dtype="F32", transposed=False):
        a = np.asarray(a, np.float32)
        a = bf16(a) if dtype == "BF16" else (a.astype(np.float16).astype(np.float32)
                                             if dtype == "F16" else a)
        if transposed:            # storage holds a.T; the record reads it with swapped strides
            sid = self._storage(np.ascontiguousarray(a.T).reshape(-1), dtype)
            stride = (1, a.shape[0])
        else:
            sid = self._storage(a.reshape(-1), dtype)
            stride = tuple(int(np.prod(a.shape[i + 1:])) for i in range(a.ndim))
        self.records.append((key, sid, dtype, 0, a.shape, stride))
        self.values[key] = a

    def add_shared(self, items):
        """Several F32 tensors in one storage at successive offsets."""
        flat = np.concatenate([np.asarray(a, np.float32).reshape(-1) for _, a in items])
        sid, off = self._storage(flat, "F32"), 0
        for key, a in items:
            a = np.asarray(a, np.float32)
            stride = tuple(int(np.prod(a.shape[i + 1:])) for i in range(a.ndim))
            self.records.append((key, sid, "F32", off, a.shape, stride))
            self.values[key] = a
            off += a.size

    def alias(self, key, other):
        """key shares other's storage and view (tied weights)."""
        rec = next(r for r in self.records if r[0] == other)
        self.records.append((key,) + rec[1:])
        self.values[key] = self.values[other]


# minimal pickle protocol 2, as torch.save writes a state dict
def _s(x):
    b = x.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _i(n):
    return b"J" + struct.pack("<i", n)


def _g(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def _t(items):
    return b"(" + b"".join(items) + b"t"


_STORAGE = {"F32": "FloatStorage", "F16": "HalfStorage", "BF16": "BFloat16Storage"}


def state_dict_pickle(ck, numel_override=None):
    out = b"\x80\x02" + _g("collections", "OrderedDict") + b")R("
    for key, sid, dtype, off, shape, stride in ck.records:
        numel = len(ck.storages[sid][1]) if numel_override is None else numel_override
        pid = _t([_s("storage"), _g("torch", _STORAGE[dtype]), _s(sid), _s("cpu"), _i(numel)])
        out += _s(key) + _g("torch._utils", "_rebuild_tensor_v2") + _t([
            pid + b"Q", _i(off), _t([_i(x) for x in shape]), _t([_i(x) for x in stride]),
            b"\x89", _g("collections", "OrderedDict") + b")R"]) + b"R"
    return out + b"u."


def write_zip(path, pkl, storages):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        for sid, (_, raw) in storages.items():
            z.writestr(f"archive/data/{sid}", raw.tobytes())
        z.writestr("archive/version", b"3\n")


def write_minimal(path, ck):
    write_zip(path, state_dict_pickle(ck), ck.storages)


def write_torch(path, ck):
    st = {}
    for sid, (dtype, raw) in ck.storages.items():
        if dtype == "BF16":
            st[sid] = torch.from_numpy(raw.view(np.int16).copy()).view(torch.bfloat16)
        else:
            st[sid] = torch.from_numpy(raw.copy())
    sd = collections.OrderedDict()
    for key, sid, _, off, shape, stride in ck.records:
        sd[key] = st[sid].as_strided(shape, stride, off)
    torch.save(sd, path)


def write_safetensors(path, ck):
    header, blobs, off = {}, [], 0
    for key, a in ck.values.items():
        b = np.ascontiguousarray(a, "<f4").tobytes()
        header[key] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---------------------------------------------------------------------------
# a "fine-tuned" backbone in HF layout, HMT tensors, LoRA
# ---------------------------------------------------------------------------
def hf_backbone(info, rng):
    d, V, nff, nh, nkv = (info[k] for k in ("n_embd", "n_vocab", "n_ff", "n_head", "n_head_kv"))
    hd = info.get("head_dim") or d // nh

    def n(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    w = collections.OrderedDict()
    w["model.embed_tokens.weight"] = n((V, d), 3 / np.sqrt(d) if info["tied"] else 1.0)
    for i in range(info["n_layer"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = 1 + n(d, 0.1)
        w[p + "self_attn.q_proj.weight"] = n((nh * hd, d), 1.4 / np.sqrt(d))
        w[p + "self_attn.k_proj.weight"] = n((nkv * hd, d), 1.4 / np.sqrt(d))
        w[p + "self_attn.v_proj.weight"] = n((nkv * hd, d), 1 / np.sqrt(d))
        if info["arch"] == "qwen2":
            for x, rows in (("q", nh * hd), ("k", nkv * hd), ("v", nkv * hd)):
                w[p + f"self_attn.{x}_proj.bias"] = n(rows, 0.3)
        if info["arch"] == "qwen3":
            w[p + "self_attn.q_norm.weight"] = 1 + n(hd, 0.1)
            w[p + "self_attn.k_norm.weight"] = 1 + n(hd, 0.1)
        w[p + "self_attn.o_proj.weight"] = n((d, nh * hd), 1 / np.sqrt(nh * hd))
        w[p + "post_attention_layernorm.weight"] = 1 + n(d, 0.1)
        w[p + "mlp.gate_proj.weight"] = n((nff, d), 1 / np.sqrt(d))
        w[p + "mlp.up_proj.weight"] = n((nff, d), 1 / np.sqrt(d))
        w[p + "mlp.down_proj.weight"] = n((d, nff), 1 / np.sqrt(nff))
    w["model.norm.weight"] = 1 + n(d, 0.1)
    w["lm_head.weight"] = w["model.embed_tokens.weight"] if info["tied"] else n((V, d), 3 / np.sqrt(d))
    return w


GGUF_OF = {"input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
           "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
           "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
           "self_attn.v_proj.bias": "attn_v.bias", "self_attn.o_proj.weight": "attn_output.weight",
           "post_attention_layernorm.weight": "ffn_norm.weight",
           "mlp.gate_proj.weight": "ffn_gate.weight",
           "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
           "self_attn.q_norm.weight": "attn_q_norm.weight",
           "self_attn.k_norm.weight": "attn_k_norm.weight"}


def gguf_of(hf):
    top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
           "lm_head.weight": "output.weight"}
    if hf in top:
        return top[hf]
    _, _, i, rest = hf.split(".", 3)
    return f"blk.{i}.{GGUF_OF[rest]}"


def llama_row_order(rows, heads):
    """HF row of each llama.cpp row: row head*hd + 2i + half of llama.cpp's
    layout is HF row head*hd + half*hd/2 + i (RoPE pair (i, i + hd/2))."""
    hd = rows // heads
    return np.array([h * hd + half * (hd // 2) + i for h in range(heads) for i in range(hd // 2)
                     for half in (0, 1)])


def to_llama_rows(w, heads):
    return w[llama_row_order(len(w), heads)]


def hmt_tensors(d, rng, wdtype):
    t = {"mem": rng.standard_normal((1, d)).astype(np.float32),
         "memory_cell.memory": rng.standard_normal((1, d)).astype(np.float32),
         "memory_cell.mem_map.linear.weight": rng.standard_normal((d, d)).astype(np.float32),
         "memory_cell.mem_map.inv_linear.weight": rng.standard_normal((d, d)).astype(np.float32)}
    for x in ("wq", "wk"):
        w = (rng.standard_normal((D_H, d)) * 1.4 / np.sqrt(d)).astype(np.float32)
        t[f"cross_attn.{x}.weight"] = bf16(w) if wdtype == "BF16" else w
    return t


LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def make_case(c, info, rng, hf=None):
    """(Ckpt, effective HF weights, HMT tensors) of case c (backbone hf, or random)."""
    hf = hf_backbone(info, rng) if hf is None else hf
    ht = hmt_tensors(info["n_embd"], rng, c.get("wdtype", "F32"))
    eff = collections.OrderedDict((k, v.copy()) for k, v in hf.items())
    ck = Ckpt()
    layout = c.get("layout", "plain")
    pre = "module." if layout == "module" else ""
    mc = pre + "memory_cell.model." + ("base_model.model." if layout.startswith("peft") else "")
    if not c.get("stage1"):
        ck.add_shared([(pre + "mem", ht["mem"]), (pre + "memory_cell.memory", ht["memory_cell.memory"])])
        ck.add(pre + "cross_attn.wq.weight", ht["cross_attn.wq.weight"], c.get("wdtype", "F32"))
        ck.add(pre + "cross_attn.wk.weight", ht["cross_attn.wk.weight"], c.get("wdtype", "F32"),
               transposed=True)
    else:
        ck.add(pre + "memory_cell.memory", ht["memory_cell.memory"])
    for k in ("memory_cell.mem_map.linear.weight", "memory_cell.mem_map.inv_linear.weight"):
        ck.add(pre + k, ht[k])
    targets = [f"model.layers.{i}.{m}" for i in range(info["n_layer"]) for m in c.get("lora", ())]
    scale = ALPHA / R
    for key, w in hf.items():
        if key == "lm_head.weight" and info["tied"]:
            base_key = "model.embed_tokens." + ("base_layer.weight" if c.get("emb_lora") else "weight")
            ck.alias(mc + key, mc + base_key)
            continue
        mod = key.rsplit(".", 1)[0]
        if mod in targets or (key == "model.embed_tokens.weight" and c.get("emb_lora")):
            emb = key == "model.embed_tokens.weight"
            old = layout == "peft_old"
            ck.add(mc + (key if old else mod + ".base_layer.weight"), w)
            rows, cols = w.shape
            if emb:      # PEFT's lora_embedding_A [r, V], lora_embedding_B [d, r] (ParameterDict)
                a = (rng.standard_normal((R, rows)) / np.sqrt(rows)).astype(np.float32)
                b = (rng.standard_normal((cols, R)) * 0.05).astype(np.float32)
                ck.add(mc + mod + ".lora_embedding_A.default", a)
                ck.add(mc + mod + ".lora_embedding_B.default", b)
                eff[key] = (w + scale * (b.astype(np.float64) @ a).T).astype(np.float32)
            else:
                a = (rng.standard_normal((R, cols)) / np.sqrt(cols)).astype(np.float32)
                b = (rng.standard_normal((rows, R)) * 0.01).astype(np.float32)
                ck.add(mc + mod + ".lora_A.default.weight", a)
                ck.add(mc + mod + ".lora_B.default.weight", b)
                eff[key] = (w + scale * (b.astype(np.float64) @ a)).astype(np.float32)
        else:
            ck.add(mc + key, w, transposed=key.endswith("o_proj.weight") and c.get("strided", False))
    if c.get("emb_lora"):              # LM head keeps the un-adapted matrix (PEFT)
        eff["lm_head.weight"] = hf["model.embed_tokens.weight"]
    elif info["tied"]:                 # tied: no separate LM head to write
        del eff["lm_head.weight"]
    return ck, eff, ht


# ---------------------------------------------------------------------------
# the oracle: hmt_ref on the checkpoint's own tensors
# ---------------------------------------------------------------------------
def oracle_model(path, base, eff, info):
    """A GGUF with the effective HF tensors under llama.cpp names, HF row
    order (no permutation), read by llama_ref with NEOX (rotate-half) RoPE."""
    w = gw.GGUFWriter()
    arch = info["arch"]
    w.add("general.architecture", arch)
    for k, v in base.meta.items():
        if k.startswith(arch + "."):
            w.add(k, v, *base.meta_type[k])
    if "rope_freqs.weight" in base.tensors:
        w.add_tensor("rope_freqs.weight", base.tensor("rope_freqs.weight"), gw.F32)
    for k, v in eff.items():
        w.add_tensor(gguf_of(k), v, gw.F32)
    w.write(path)
    return Model(path, rope_mode="neox")


def oracle_adapter(ht, d, stage1, bf16_recall):
    a = hmt_ref.Adapter.__new__(hmt_ref.Adapter)
    a.d, a.L, a.k, a.N = d, L, K, N
    a.fraction, a.gen_summary_length, a.scale_kind = float(np.float32(0.5)), None, "sqrt"
    a.bf16 = bf16_recall
    z = np.zeros(d)
    a.T = z if stage1 else ht["mem"].reshape(-1).astype(np.float64)
    a.M_init = ht["memory_cell.memory"].reshape(-1).astype(np.float64)
    a.Wq = np.zeros((1, d)) if stage1 else ht["cross_attn.wq.weight"].astype(np.float64)
    a.Wk = np.zeros((1, d)) if stage1 else ht["cross_attn.wk.weight"].astype(np.float64)
    a.d_h = a.Wq.shape[0]
    return a


def libhmt_logits(model_path, adapter_path, mode, toks):
    with hmt.Model(model_path) as m, hmt.Adapter(m, adapter_path) as a, \
            hmt.Stream(m, a, mode=mode, n_threads=1) as st:
        out = {}
        for part in (toks[:13], toks[13:]):
            for i in st.feed(part):
                out[i] = st.logits(i, copy=True)
        for i in st.flush():
            out[i] = st.logits(i, copy=True)
        return np.stack([np.asarray(out[i]) for i in range(len(toks))])


# ---------------------------------------------------------------------------
class Ran:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_converter(argv, subprocess_=False):
    """The converter's exit status and output; in-process (fast) unless
    subprocess_. An exception escaping main() is reported as a crash."""
    if subprocess_:
        r = subprocess.run([PYTHON, CONVERTER] + argv, capture_output=True, text=True, timeout=120)
        return Ran(r.returncode, r.stdout, r.stderr)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = convert_hmt_pytorch.main(argv)
        except SystemExit as e:          # argparse
            rc = e.code
        except BaseException:            # a crash: keep the traceback for the report
            rc = "crash"
            err.write("Traceback (crash):\n" + traceback.format_exc())
    return Ran(rc, out.getvalue(), err.getvalue())


def convert(ckpt, base, out_model, out_adapter, *extra, subprocess_=False):
    argv = [ckpt] + (list(base) if isinstance(base, tuple) else ["--base-gguf", base])
    argv += ["--out-adapter", out_adapter, "--segment-length", str(L),
            "--sensory-length", str(K), "--cache-size", str(N)]
    argv += ["--out-model", out_model, "--type", "f32"] if out_model else []
    return run_converter(argv + list(extra), subprocess_)


CASES = [
    # bf16 recall cases: seed 130 keeps every bf16-rounded value of the recall clear of a
    # rounding boundary (checked below), so float32 C rounds as the float64 oracle does
    dict(name="plain", base="llama", strided=True, bf16_recall=True, subprocess=True, seed=130),
    dict(name="module. prefix, tied base (minimal writer)", base="llama-tied", layout="module",
         writer="minimal"),
    dict(name="LoRA, base_layer (all linears)", base="llama", layout="peft", lora=LINEARS),
    dict(name="LoRA, older PEFT (q, v)", base="llama", layout="peft_old",
         lora=("self_attn.q_proj", "self_attn.v_proj")),
    dict(name="LoRA on the embedding, tied base", base="llama-tied", layout="peft",
         lora=("self_attn.q_proj", "self_attn.v_proj"), emb_lora=True),
    dict(name="stage 1 (RMT, no mem/cross_attn)", base="llama", stage1=True, mode="rmt"),
    dict(name="bf16 cross attention", base="llama", wdtype="BF16", bf16_recall=True, seed=130),
    dict(name="qwen2 (biases, no permutation)", base="qwen2"),
    dict(name="llama3 RoPE scaling (rope_freqs.weight from the base)", base="llama3"),
    dict(name="qwen3 (q/k norms, head size 32 != 64/4)", base="qwen3"),
    dict(name="safetensors", base="llama", writer="safetensors"),
    dict(name="--base-hf (an HF directory, read as convert_hf.py does)", base="llama-bpe",
         base_hf=True, layout="peft", lora=("self_attn.q_proj", "self_attn.k_proj")),
]


def run_case(c, tmp, bases, toks, seed):
    info, base_path = bases[c["base"]][:2]
    base = GGUFFile(base_path)
    rng = np.random.default_rng(seed)
    ck, eff, ht = make_case(c, info, rng)
    writer = c.get("writer", "torch" if torch is not None else "minimal")
    stem = os.path.join(tmp, f"case-{CASES.index(c)}")
    ckpt = stem + (".safetensors" if writer == "safetensors" else ".pth")
    {"torch": write_torch, "minimal": write_minimal, "safetensors": write_safetensors}[writer](ckpt, ck)
    print(f"{c['name']}  [{c['base']}, {writer}]")
    if writer == "minimal" and torch is not None:      # the minimal writer makes real torch files
        sd = torch.load(ckpt)
        check("torch.load reads the minimal writer's file identically",
              all(np.array_equal(sd[k].float().numpy(), v) for k, v in ck.values.items()))
    bf16_on = bool(c.get("bf16_recall"))
    flags = [] if bf16_on else ["--no-recall-bf16"]
    r = convert(ckpt, ("--base-hf", bases[c["base"]][2]) if c.get("base_hf") else base_path,
                stem + ".gguf", stem + ".hmt.gguf", *flags, subprocess_=c.get("subprocess", False))
    check("converter exits 0" + (" (run as a script)" if c.get("subprocess") else ""),
          r.returncode == 0, r.stderr.strip()[-300:])
    if r.returncode:
        return None
    if c.get("base_hf"):     # base_path is what convert_hf.py wrote for that directory
        r = convert(ckpt, base_path, stem + ".2.gguf", stem + ".2.hmt.gguf", *flags)
        same = r.returncode == 0 and read(stem + ".gguf") == read(stem + ".2.gguf")
        check("same model bytes as with --base-gguf of convert_hf.py's output", same)
    out, ad = GGUFFile(stem + ".gguf"), GGUFFile(stem + ".hmt.gguf")
    # backbone = this file's NumPy merge, mapped and permuted here
    worst, missing = 0.0, []
    for k, v in eff.items():
        name = gguf_of(k)
        if name not in out.tensors:
            missing.append(name)
            continue
        if info["arch"] == "llama" and name.endswith("attn_q.weight"):
            v = to_llama_rows(v, info["n_head"])
        elif info["arch"] == "llama" and name.endswith("attn_k.weight"):
            v = to_llama_rows(v, info["n_head_kv"])
        worst = max(worst, float(np.abs(out.tensor(name) - v).max()))
    copied = [n for n in out.tensors if n == "rope_freqs.weight"]
    check("backbone = NumPy merge (LoRA, permutation), max |diff| <= 1e-6",
          not missing and worst <= 1e-6 and len(out.tensors) == len(eff) + len(copied),
          f"{worst:.1e} {missing}")
    if "rope_freqs.weight" in base.tensors:
        check("rope_freqs.weight copied from the base", copied and np.array_equal(
            out.tensor("rope_freqs.weight"), base.tensor("rope_freqs.weight")))
    if info["tied"]:
        check("tied base: " + ("untied (LM head keeps the un-adapted embedding)" if c.get("emb_lora")
                               else "stays tied (no output.weight)"),
              ("output.weight" in out.tensors) == bool(c.get("emb_lora")))
    check("tokenizer and metadata copied from the base",
          all(out.meta.get(k) == base.meta[k] if not isinstance(base.meta[k], np.ndarray)
              else np.array_equal(out.meta[k], base.meta[k])
              for k in base.meta if k.startswith(("tokenizer.", info["arch"] + "."))))
    st1 = bool(c.get("stage1"))
    pairs = [("hmt.memory_init", "memory_cell.memory")]
    if not st1:
        pairs += [("hmt.summary_prompt", "mem"), ("hmt.recall.wq", "cross_attn.wq.weight"),
                  ("hmt.recall.wk", "cross_attn.wk.weight")]
    exact = all(np.array_equal(ad.tensor(a).reshape(-1), ht[k].reshape(-1)) for a, k in pairs)
    wtype = ad.tensors["hmt.recall.wq"].type
    check("adapter holds the checkpoint's T, M_init, W_q, W_k exactly", exact,
          f"W type {'BF16' if wtype == gw.BF16 else 'F32' if wtype == gw.F32 else wtype}")
    keys = tuple(ad.meta[f"hmt.{k}"] for k in ("segment_length", "sensory_length", "cache_size",
                                                "recall_bf16"))
    check("adapter keys L, k, N, recall_bf16", keys == (L, K, N, bf16_on and not st1))
    if c.get("wdtype") == "BF16":
        check("bf16 W_q/W_k stay BF16 in the adapter", wtype == gw.BF16)
    # libhmt vs the oracle on the checkpoint's tensors
    mode = c.get("mode", "full")
    h = hmt_ref.HMT(oracle_model(stem + ".oracle.gguf", base, eff, info),
                    oracle_adapter(ht, info["n_embd"], st1, bf16_on), mode=mode)
    res = h.run(toks)
    ref = res.logits
    if h.bf16:    # every bf16-rounded value must lie clear of a rounding boundary (hmt_golden.py)
        h.trace = []
        h.run(toks)
        worst = min(float(bf16_margin(v).min()) / BF16_ERR[q] for t in h.trace for q, v in t.items())
        check("bf16 recall: no value within float32 error of a rounding boundary", worst >= 1.0,
              f"margin {worst:.1f} x the error bound")
    got = libhmt_logits(stem + ".gguf", stem + ".hmt.gguf", mode, toks)
    dl = float(np.abs(got - ref).max())
    check(f"libhmt {mode} logits of {len(toks)} tokens = oracle on the checkpoint",
          dl <= TOL_LOGIT, f"max |diff| {dl:.1e}")
    if len(h.a.Wq) > 1:       # the recall matters in this test: segment 2 weights not uniform
        w = res.segments[3]["weights"]
        check("recall weights are not uniform", float(np.ptp(w)) > 0.05, f"w = {np.round(w, 3)}")
    with hmt.Model(stem + ".gguf") as m1, hmt.Model(base_path) as m0:
        check("libhmt tokenizes with the copied tokenizer",
              m1.tokenize("the memory model") == m0.tokenize("the memory model"))
    return ckpt, stem


def expect_error(what, r, needle, status=1):
    err = r.stderr
    ok = r.returncode == status and needle.lower() in err.lower() and "Traceback" not in err
    check(what, ok, err.strip().splitlines()[-1][:150] if err.strip() else f"exit {r.returncode}")


def error_cases(tmp, bases, plain_ckpt, plain_stem):
    print("adapter-only and bad inputs")
    info, base_path = bases["llama"]
    out = os.path.join(tmp, "err")
    # --adapter-only: the converted model is the checkpoint's backbone; the original base is not
    ao = os.path.join(tmp, "adapter-only.gguf")
    r = convert(plain_ckpt, plain_stem + ".gguf", None, ao, "--adapter-only")
    same = r.returncode == 0 and read(ao) == read(plain_stem + ".hmt.gguf")
    check("--adapter-only on the matching base: same adapter bytes", same, r.stderr.strip()[-200:])
    hfinfo, _, hfdir = bases["llama-bpe"]
    g = GGUFFile(bases["llama-bpe"][1])
    hf_of = {gguf_of(k): k for k in hf_backbone(hfinfo, np.random.default_rng(0))}
    hf = collections.OrderedDict()
    for name in g.tensor_order:             # the HF directory's weights, back in HF names and rows
        v = g.tensor(name)
        if name.endswith(("attn_q.weight", "attn_k.weight")):
            u = np.empty_like(v)
            u[llama_row_order(len(v), hfinfo["n_head" if "attn_q" in name else "n_head_kv"])] = v
            v = u
        hf[hf_of[name]] = v
    ck, _, _ = make_case(dict(), hfinfo, np.random.default_rng(8), hf=hf)
    p = os.path.join(tmp, "same-as-hf.pth")
    write_minimal(p, ck)
    r = convert(p, ("--base-hf", hfdir), None, os.path.join(tmp, "adapter-only-hf.gguf"),
                "--adapter-only")
    check("--adapter-only with --base-hf holding the same backbone", r.returncode == 0,
          r.stderr.strip()[-200:])
    hf["model.layers.1.self_attn.k_proj.weight"] = hf["model.layers.1.self_attn.k_proj.weight"].copy()
    hf["model.layers.1.self_attn.k_proj.weight"][5, 7] += 1e-3
    ck, _, _ = make_case(dict(), hfinfo, np.random.default_rng(8), hf=hf)
    write_minimal(p, ck)
    expect_error("... and with one weight changed by 1e-3: refused, naming it",
                 convert(p, ("--base-hf", hfdir), None, out + ".c.gguf", "--adapter-only"),
                 "blk.1.attn_k.weight")
    # a Q8_0 copy of the converted model: equal within one quantization step per block
    g = GGUFFile(plain_stem + ".gguf")
    w = gw.GGUFWriter()
    for k, v in g.meta.items():
        w.add(k, v, *g.meta_type[k])
    for name in g.tensor_order:
        v = g.tensor(name)
        w.add_tensor(name, v, gw.Q8_0 if v.ndim == 2 else gw.F32)
    w.write(os.path.join(tmp, "plain-q8_0.gguf"))
    r = convert(plain_ckpt, os.path.join(tmp, "plain-q8_0.gguf"), None,
                os.path.join(tmp, "adapter-only-q8.gguf"), "--adapter-only")
    check("--adapter-only on a Q8_0 copy of the converted model", r.returncode == 0,
          r.stderr.strip()[-200:])
    # a state dict wrapped in {"state_dict": ...}, as some training scripts save it
    ck, _, _ = make_case(dict(), info, np.random.default_rng(9))
    p = os.path.join(tmp, "wrapped.pth")
    write_zip(p, b"\x80\x02}" + _s("state_dict") + state_dict_pickle(ck)[2:-1] + b"s.", ck.storages)
    r = convert(p, base_path, os.path.join(tmp, "wrapped.gguf"), os.path.join(tmp, "wrapped.hmt.gguf"))
    check("a state dict wrapped in {'state_dict': ...} converts", r.returncode == 0,
          r.stderr.strip()[-200:])
    expect_error("--adapter-only on a different base: refused",
                 convert(plain_ckpt, base_path, None, out + ".b.gguf", "--adapter-only"), "differs")
    check("... and no adapter written", not os.path.exists(out + ".b.gguf"))

    def bad(name, data):
        p = os.path.join(tmp, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    blob = read(plain_ckpt)
    expect_error("truncated zip", convert(bad("trunc.pth", blob[:len(blob) // 2]), base_path,
                                          out + ".gguf", out + ".hmt.gguf"), "zip")
    info0 = next(i for i in zipfile.ZipFile(plain_ckpt).infolist()
                 if "/data/" in i.filename and i.file_size > 64)
    h = info0.header_offset           # data start: after the local header's name and extra field
    start = h + 30 + sum(struct.unpack("<HH", blob[h + 26:h + 30])) + 8
    flipped = bytearray(blob)
    flipped[start] ^= 0x40
    expect_error("a corrupted storage byte (CRC)", convert(bad("crc.pth", bytes(flipped)), base_path,
                                                          out + ".gguf", out + ".hmt.gguf"), "CRC")
    marker = os.path.join(tmp, "pwned")
    evil = b"\x80\x02" + _g("os", "system") + _t([_s("touch " + marker)]) + b"R."
    p = os.path.join(tmp, "evil.pth")
    write_zip(p, evil, {})
    expect_error("pickle calling os.system: refused (script)",
                 convert(p, base_path, out + ".gguf", out + ".hmt.gguf", subprocess_=True), "os.system")
    check("... and it did not run", not os.path.exists(marker))
    write_zip(p, b"\x80\x02" + _g("builtins", "eval") + _t([_s("1+1")]) + b"R.", {})
    expect_error("pickle calling builtins.eval: refused", convert(p, base_path, out + ".gguf",
                                                                  out + ".hmt.gguf"), "builtins.eval")
    write_zip(p, b"\x80\x02]q\x00.", {})
    expect_error("a pickle that is not a state dict", convert(p, base_path, out + ".gguf",
                                                              out + ".hmt.gguf"), "not a state dict")
    legacy = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02M\xe9\x03."
    expect_error("legacy (pre-1.6) torch.save format", convert(bad("legacy.pth", legacy), base_path,
                                                               out + ".gguf", out + ".hmt.gguf"),
                 "legacy")
    rng = np.random.default_rng(7)
    ck, _, _ = make_case(dict(), info, rng)
    p = os.path.join(tmp, "oob.pth")
    write_zip(p, state_dict_pickle(ck, numel_override=3), ck.storages)
    expect_error("a tensor record past its storage", convert(p, base_path, out + ".gguf",
                                                             out + ".hmt.gguf"), "storage")
    # wrong shapes
    ck, _, _ = make_case(dict(), info, rng)
    ck.records = [r if not r[0].endswith("layers.1.self_attn.q_proj.weight") else
                  (r[0], r[1], r[2], 0, (r[4][0], r[4][1] - 8), (r[4][1] - 8, 1)) for r in ck.records]
    write_minimal(p, ck)
    expect_error("a backbone tensor of the wrong shape", convert(p, base_path, out + ".gguf",
                                                                 out + ".hmt.gguf"), "q_proj")
    ck, _, _ = make_case(dict(layout="peft", lora=("self_attn.q_proj",)), info, rng)
    key = next(k for k in ck.values if k.endswith("layers.0.self_attn.q_proj.lora_B.default.weight"))
    ck.records = [r for r in ck.records if r[0] != key]
    ck.add(key, np.zeros((info["n_embd"], R + 1), np.float32))
    write_minimal(p, ck)
    expect_error("LoRA A/B of mismatched rank", convert(p, base_path, out + ".gguf",
                                                        out + ".hmt.gguf"), "do not fit")
    ck, _, _ = make_case(dict(), info, rng)
    ck.add("memory_cell.model.model.decoder.embed_positions.weight", np.zeros((4, 4), np.float32))
    write_minimal(p, ck)
    expect_error("an OPT backbone", convert(p, base_path, out + ".gguf", out + ".hmt.gguf"), "OPT")
    r = run_converter([plain_ckpt, "--base-gguf", base_path, "--out-model", out + ".gguf",
                       "--out-adapter", out + ".hmt.gguf"])
    expect_error("no segment length given", r, "segment length", status=2)
    check("no output left behind by the failures",
          not [f for f in os.listdir(tmp) if f.startswith("err")])


def main():
    t0 = time.time()
    if not os.environ.get("HMT_LIB_PATH"):
        print("check_convert_hmt: set HMT_LIB_PATH to the built libhmt.so")
        return 1
    tmp = tempfile.mkdtemp(prefix="hmt-convert-")
    try:
        bases = {}
        for name, kw in (("llama", dict(arch="llama")), ("llama-tied", dict(arch="llama", tied=True)),
                         ("qwen2", dict(arch="qwen2", n_head=4, n_head_kv=1)),
                         ("llama3", dict(arch="llama", rope_scaling=dict(
                             rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                             high_freq_factor=4.0, original_max_position_embeddings=32))),
                         ("qwen3", dict(arch="qwen3", n_head=4, n_head_kv=2, head_dim=32))):
            path = os.path.join(tmp, f"base-{name}.gguf")
            bases[name] = (make_model(path, n_vocab=320, n_embd=64, n_layer=2, n_ff=160, n_ctx=128,
                                      seed=3, **kw), path)
        # an HF directory (tests/tools/hf_dir.py) and convert_hf.py's GGUF of it
        path, hf_path = os.path.join(tmp, "base-bpe-src.gguf"), os.path.join(tmp, "hf-base")
        info = make_model(path, arch="llama", tokenizer="gpt2", pre="smollm", n_vocab=320, n_embd=64,
                          n_layer=2, n_ff=160, n_ctx=128, seed=4)
        gguf_to_hf(path, hf_path, dtype="F32")
        with contextlib.redirect_stdout(io.StringIO()):
            rc = convert_hf.main([hf_path, "-o", os.path.join(tmp, "base-bpe.gguf"), "--outtype", "f32"])
        check("convert_hf.py converts the HF base directory", rc == 0)
        bases["llama-bpe"] = (info, os.path.join(tmp, "base-bpe.gguf"), hf_path)
        toks = np.random.default_rng(1).integers(3, 320, 37)
        how = (f"torch.save (torch {torch.__version__})" if torch else
               "the minimal zip-pickle writer (no torch)")
        print(f"check_convert_hmt: checkpoints written with {how}")
        plain = None
        for i, c in enumerate(CASES):
            got = run_case(c, tmp, bases, toks, c.get("seed", 100 + i))
            if i == 0:
                plain = got
        if plain:
            error_cases(tmp, bases, *plain)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"check_convert_hmt: {'FAIL: ' + '; '.join(FAILURES) if FAILURES else 'OK'} "
          f"({time.time() - t0:.1f} s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
