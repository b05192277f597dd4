"""Writing Hugging Face model directories for tools/convert_hf.py's checks,
independently of the converter's own readers: safetensors files (single or
sharded with an index), config.json, and a byte-level BPE tokenizer.json in
the layouts the Hugging Face tokenizers library saves.

As a command, it writes a whole directory from a GGUF in llama.cpp's layout
(the converter's inverse: q/k rows un-permuted for llama), so the converter
can be measured and round-tripped on models of real size, e.g. the random
models of bench/gen_model.py:

    /usr/bin/python3 tests/tools/hf_dir.py MODEL.gguf OUTDIR [--dtype BF16] [--shards 2]
"""
import argparse
import json
import os
import sys

import numpy as np

_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(_ROOT, "tests", "reference"))
from gguf_read import GGUFFile  # noqa: E402


def bf16_truncate(a):
    """float32 values that BF16 holds exactly (low 16 bits dropped)."""
    return (np.asarray(a, np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32)


def stored(a, dtype):
    """The values an HF file of this dtype holds for a (as float32)."""
    if dtype == "F16":
        return a.astype(np.float16).astype(np.float32)
    if dtype == "BF16":
        return bf16_truncate(a)
    return a.astype(np.float32)


def _encode(a, dtype):
    if dtype == "F16":
        return a.astype("<f2").tobytes()
    if dtype == "BF16":
        return (np.asarray(a, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
    return a.astype("<f4").tobytes()


def write_safetensors(path, tensors, dtype):
    """{name: array} -> one .safetensors file, every tensor stored as dtype."""
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, a in tensors.items():
        n = a.size * (4 if dtype == "F32" else 2)
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h)
        for a in tensors.values():
            f.write(_encode(a, dtype))


def write_weights(mdir, weights, dtype, shards=1):
    """model.safetensors, or `shards` files plus model.safetensors.index.json."""
    if shards == 1:
        write_safetensors(os.path.join(mdir, "model.safetensors"), weights, dtype)
        return
    names = list(weights)
    wmap = {}
    for k, idx in enumerate(np.array_split(np.arange(len(names)), shards)):
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        write_safetensors(os.path.join(mdir, fname), {names[i]: weights[names[i]] for i in idx}, dtype)
        wmap.update({names[i]: fname for i in idx})
    with open(os.path.join(mdir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": wmap}, f, indent=1)


# tokenizer.json pre_tokenizer of each family, keyed by llama.cpp's name
_BYTELEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
_SPLIT_TAIL = {
    "llama-bpe": r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
}
PRE_TOKENIZERS = {
    "gpt-2": _BYTELEVEL,
    "smollm": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, _BYTELEVEL]},
}
_SPLIT = {name: r"(?i:'s|'t|'re|'ve|'m|'ll|'d)" + tail for name, tail in _SPLIT_TAIL.items()}
# tiktoken's o200k_base, as Phi-4-mini's tokenizer.json spells it
_O200K_WORD = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]%s[\p{Ll}\p{Lm}\p{Lo}\p{M}]%s" \
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
_SPLIT["gpt-4o"] = "|".join([_O200K_WORD % ("*", "+"), _O200K_WORD % ("+", "*"), r"\p{N}{1,3}",
                             r" ?[^\s\p{L}\p{N}]+[\r\n/]*", r"\s*[\r\n]+", r"\s+(?!\S)", r"\s+"])
for _name, _regex in _SPLIT.items():
    PRE_TOKENIZERS[_name] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "behavior": "Isolated", "invert": False, "pattern": {"Regex": _regex}},
        dict(_BYTELEVEL, use_regex=False, trim_offsets=_name != "qwen2")]}


def write_bpe_tokenizer_json(path, tokens, types, merges, pre, merges_as_pairs=False,
                             bos_template=None):
    """tokenizer.json of a byte-level BPE: NORMAL (type 1) tokens form the
    vocabulary, the others are added tokens (special when CONTROL, type 3).
    bos_template: a BOS text the post-processor prepends (as Llama 3's)."""
    vocab = {t: i for i, t in enumerate(tokens) if types[i] == 1}
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": types[i] == 3}
             for i, t in enumerate(tokens) if types[i] != 1]
    post = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
    if bos_template:
        post = {"type": "Sequence", "processors": [post, {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos_template, "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [], "special_tokens": {}}]}
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
          "normalizer": {"type": "NFC"} if pre == "qwen2" else None,
          "pre_tokenizer": PRE_TOKENIZERS[pre], "post_processor": post,
          "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                      "use_regex": True},
          "model": {"type": "BPE", "dropout": None, "unk_token": None,
                    "continuing_subword_prefix": None, "end_of_word_suffix": None,
                    "fuse_unk": False, "byte_fallback": False, "ignore_merges": pre in ("llama-bpe", "gpt-4o"),
                    "vocab": vocab,
                    "merges": [m.split(" ") for m in merges] if merges_as_pairs else list(merges)}}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)


# ---------------------------------------------------------------------------
# GGUF (llama.cpp layout) -> HF directory
# ---------------------------------------------------------------------------
def unpermute_rope(w, n_head):
    """llama.cpp adjacent-pair row order -> HF rotate-half order, per head."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


HF_NAMES = {"attn_norm.weight": "input_layernorm.weight", "attn_q.weight": "self_attn.q_proj.weight",
            "attn_k.weight": "self_attn.k_proj.weight", "attn_v.weight": "self_attn.v_proj.weight",
            "attn_output.weight": "self_attn.o_proj.weight", "attn_q.bias": "self_attn.q_proj.bias",
            "attn_k.bias": "self_attn.k_proj.bias", "attn_v.bias": "self_attn.v_proj.bias",
            "ffn_norm.weight": "post_attention_layernorm.weight", "ffn_gate.weight": "mlp.gate_proj.weight",
            "ffn_up.weight": "mlp.up_proj.weight", "ffn_down.weight": "mlp.down_proj.weight"}


def gguf_to_hf(gguf_path, mdir, dtype="BF16", shards=1):
    g = GGUFFile(gguf_path)
    m = g.meta
    a = m["general.architecture"]
    if m.get("tokenizer.ggml.model") != "gpt2":
        raise SystemExit(f"{gguf_path}: only byte-level BPE (gpt2) vocabularies can be written "
                         "as tokenizer.json here")
    n_head, n_kv = int(m[f"{a}.attention.head_count"]), int(m[f"{a}.attention.head_count_kv"])
    os.makedirs(mdir, exist_ok=True)
    weights = {}
    for name in g.tensors:
        t = g.tensor(name)
        if name.startswith("blk."):
            _, i, rest = name.split(".", 2)
            if a == "llama" and rest in ("attn_q.weight", "attn_k.weight"):
                t = unpermute_rope(t, n_head if rest == "attn_q.weight" else n_kv)
            hf = f"model.layers.{i}.{HF_NAMES[rest]}"
        else:
            hf = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
                  "output.weight": "lm_head.weight"}[name]
        weights[hf] = t
    write_weights(mdir, weights, dtype, shards)
    n_vocab = g.tensors["token_embd.weight"].ne[1]
    cfg = {"architectures": ["LlamaForCausalLM" if a == "llama" else "Qwen2ForCausalLM"],
           "model_type": a, "hidden_size": int(m[f"{a}.embedding_length"]),
           "intermediate_size": int(m[f"{a}.feed_forward_length"]),
           "num_hidden_layers": int(m[f"{a}.block_count"]), "num_attention_heads": n_head,
           "num_key_value_heads": n_kv, "vocab_size": int(n_vocab),
           "max_position_embeddings": int(m[f"{a}.context_length"]),
           "rms_norm_eps": float(m[f"{a}.attention.layer_norm_rms_epsilon"]),
           "rope_theta": float(m[f"{a}.rope.freq_base"]),
           "tie_word_embeddings": "output.weight" not in g.tensors, "hidden_act": "silu",
           "torch_dtype": {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}[dtype]}
    with open(os.path.join(mdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    tokens = list(m["tokenizer.ggml.tokens"])
    types = [int(t) for t in m["tokenizer.ggml.token_type"]]
    pre = {"llama3": "llama-bpe", "gpt2": "gpt-2"}.get(m.get("tokenizer.ggml.pre"),
                                                        m.get("tokenizer.ggml.pre", "gpt-2"))
    write_bpe_tokenizer_json(os.path.join(mdir, "tokenizer.json"), tokens, types,
                             m["tokenizer.ggml.merges"], pre)
    tc = {}
    for kind, key in (("bos", "bos_token_id"), ("eos", "eos_token_id"), ("unk", "unknown_token_id"),
                      ("pad", "padding_token_id")):
        if f"tokenizer.ggml.{key}" in m:
            tc[f"{kind}_token"] = tokens[int(m[f"tokenizer.ggml.{key}"])]
    for kind in ("bos", "eos"):
        if f"tokenizer.ggml.add_{kind}_token" in m:
            tc[f"add_{kind}_token"] = bool(m[f"tokenizer.ggml.add_{kind}_token"])
    with open(os.path.join(mdir, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gguf")
    ap.add_argument("outdir")
    ap.add_argument("--dtype", choices=["F32", "F16", "BF16"], default="BF16")
    ap.add_argument("--shards", type=int, default=1)
    args = ap.parse_args()
    gguf_to_hf(args.gguf, args.outdir, args.dtype, args.shards)


if __name__ == "__main__":
    main()
