"""Export hmt_train.py checkpoints as GGUF: the base model (llama.cpp's `llama`
architecture, names and metadata, SentencePiece tokenizer as llama.cpp's
converter stores it) and the HMT adapter (docs/HMT.md).

    python3 tools/export_gguf.py --dir build/brown --base models/brown-f16.gguf \
        --adapter models/brown-hmt.gguf [--type f16|f32] [--name brown]

Base: 2-D weights in --type (F16 default), norms F32, tied output (no
output.weight). q/k need no permutation: tools/hmt_torch.py already applies
RoPE to adjacent pairs as llama.cpp's `llama` arch does on GGUF weights.
Adapter: hmt.* keys and F32 tensors T, M_init, W_q, W_k.
"""
import argparse
import os
import sys

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import gguf_write as gw  # noqa: E402
from gguf_write import spm_vocab  # noqa: E402

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
TT = {"f32": gw.F32, "f16": gw.F16}




def export_base(d, out, ttype="f16", name="brown", ckpt="base.pt"):
    import sentencepiece as spm
    ck = torch.load(os.path.join(d, ckpt))
    c, sd = ck["config"], ck["model"]
    sp = spm.SentencePieceProcessor(model_file=os.path.join(d, "spm.model"))
    toks, scores, types = spm_vocab(sp)
    assert len(toks) == c["n_vocab"]
    arch = "llama"
    w = gw.GGUFWriter()
    w.add("general.architecture", arch)
    w.add("general.name", name)
    w.add("general.file_type", {"f32": 0, "f16": 1}[ttype], gw.UINT32)
    w.add("general.license", "MIT")
    w.add(f"{arch}.context_length", c["n_ctx"], gw.UINT32)
    w.add(f"{arch}.embedding_length", c["n_embd"], gw.UINT32)
    w.add(f"{arch}.block_count", c["n_layer"], gw.UINT32)
    w.add(f"{arch}.feed_forward_length", c["n_ff"], gw.UINT32)
    w.add(f"{arch}.attention.head_count", c["n_head"], gw.UINT32)
    w.add(f"{arch}.attention.head_count_kv", c["n_head_kv"], gw.UINT32)
    w.add(f"{arch}.rope.freq_base", float(c["rope_base"]), gw.FLOAT32)
    w.add(f"{arch}.attention.layer_norm_rms_epsilon", float(c["eps"]), gw.FLOAT32)
    w.add(f"{arch}.rope.dimension_count", c["n_embd"] // c["n_head"], gw.UINT32)
    w.add(f"{arch}.vocab_size", c["n_vocab"], gw.UINT32)
    w.add("tokenizer.ggml.model", "llama")
    w.add("tokenizer.ggml.tokens", toks, gw.ARRAY, gw.STRING)
    w.add("tokenizer.ggml.scores", scores, gw.ARRAY, gw.FLOAT32)
    w.add("tokenizer.ggml.token_type", types, gw.ARRAY, gw.INT32)
    w.add("tokenizer.ggml.bos_token_id", 1, gw.UINT32)
    w.add("tokenizer.ggml.eos_token_id", 2, gw.UINT32)
    w.add("tokenizer.ggml.unknown_token_id", 0, gw.UINT32)
    w.add("tokenizer.ggml.add_bos_token", True, gw.BOOL)
    w.add("tokenizer.ggml.add_eos_token", False, gw.BOOL)
    w.add("tokenizer.ggml.add_space_prefix", True, gw.BOOL)
    tt = TT[ttype]

    def T(n, key, typ=tt):
        w.add_tensor(n, sd[key].float().numpy(), typ)

    T("token_embd.weight", "tok_embd.weight")
    T("output_norm.weight", "output_norm", gw.F32)
    if not c["tied"]:
        T("output.weight", "output.weight")
    for i in range(c["n_layer"]):
        p, q = f"blk.{i}.", f"layers.{i}."
        T(p + "attn_norm.weight", q + "attn_norm", gw.F32)
        for nm in ("attn_q", "attn_k", "attn_v", "attn_output"):
            T(p + nm + ".weight", q + nm + ".weight")
        T(p + "ffn_norm.weight", q + "ffn_norm", gw.F32)
        for nm in ("ffn_gate", "ffn_up", "ffn_down"):
            T(p + nm + ".weight", q + nm + ".weight")
    w.write(out)
    n = sum(v.numel() for v in sd.values())
    print(f"wrote {out}: {n} parameters, {os.path.getsize(out)} bytes")


def export_adapter(d, out):
    ck = torch.load(os.path.join(d, "hmt.pt"))
    hp, p = ck["hp"], ck["params"]
    w = gw.GGUFWriter()
    w.add("general.architecture", "hmt")
    w.add("hmt.version", 1, gw.UINT32)
    w.add("hmt.embedding_length", int(p["T"].numel()), gw.UINT32)
    w.add("hmt.segment_length", int(hp["L"]), gw.UINT32)
    w.add("hmt.sensory_length", int(hp["k"]), gw.UINT32)
    w.add("hmt.summary_fraction", float(hp["fraction"]), gw.FLOAT32)
    w.add("hmt.cache_size", int(hp["N"]), gw.UINT32)
    w.add("hmt.recall_scale", "sqrt", gw.STRING)
    w.add("hmt.recall_bf16", False, gw.BOOL)
    w.add_tensor("hmt.summary_prompt", p["T"].float().numpy(), gw.F32)
    w.add_tensor("hmt.memory_init", p["M_init"].float().numpy(), gw.F32)
    w.add_tensor("hmt.recall.wq", p["Wq"].float().numpy(), gw.F32)
    w.add_tensor("hmt.recall.wk", p["Wk"].float().numpy(), gw.F32)
    w.write(out)
    print(f"wrote {out}: L={hp['L']} k={hp['k']} N={hp['N']} d_h={hp['d_h']}, "
          f"{os.path.getsize(out)} bytes")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default="build/brown")
    ap.add_argument("--base")
    ap.add_argument("--base-ckpt", default="base.pt",
                    help="backbone checkpoint in --dir (base-tuned.pt after hmt --tune-backbone 1)")
    ap.add_argument("--adapter")
    ap.add_argument("--type", choices=sorted(TT), default="f16")
    ap.add_argument("--name", default="brown")
    a = ap.parse_args(argv)
    if a.base:
        export_base(a.dir, a.base, a.type, a.name, a.base_ckpt)
    if a.adapter:
        export_adapter(a.dir, a.adapter)


if __name__ == "__main__":
    main()
