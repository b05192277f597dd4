"""Write a random-weight GGUF model with real shapes for speed benchmarks.

    /usr/bin/python3 bench/gen_model.py                       # SmolLM2-135M shape, F32
    /usr/bin/python3 bench/gen_model.py --preset qwen2-0.5b --type bf16 -o /tmp/q.gguf
    /usr/bin/python3 bench/gen_model.py --n-layer 4 -o /tmp/small.gguf  # override a field

Weights are random (seeded, deterministic), so outputs are meaningless but the
compute and memory traffic are those of the real model. The file is a
complete model: hyperparameters as llama.cpp's converter writes them and a
valid tokenizer of exactly n_vocab tokens (SentencePiece-style for llama
presets unless --tokenizer gpt2, byte-level BPE for qwen2); see
tests/reference/gen_model.py for the construction.
"""
import argparse
import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "tests", "reference"))
from gen_model import ALL_WTYPES, make_model  # noqa: E402

PRESETS = {
    # HuggingFaceTB/SmolLM2-135M
    "smollm2-135m": dict(arch="llama", n_vocab=49152, n_embd=576, n_layer=30, n_head=9,
                         n_head_kv=3, n_ff=1536, n_ctx=2048, rope_base=100000.0,
                         rms_eps=1e-5, tied=True),
    # TinyLlama/TinyLlama-1.1B
    "tinyllama-1.1b": dict(arch="llama", n_vocab=32000, n_embd=2048, n_layer=22, n_head=32,
                           n_head_kv=4, n_ff=5632, n_ctx=2048, rope_base=10000.0,
                           rms_eps=1e-5, tied=False),
    # Qwen/Qwen2-0.5B
    "qwen2-0.5b": dict(arch="qwen2", n_vocab=151936, n_embd=896, n_layer=24, n_head=14,
                       n_head_kv=2, n_ff=4864, n_ctx=32768, rope_base=1000000.0,
                       rms_eps=1e-6, tied=True),
}

OVERRIDES = ["n_vocab", "n_embd", "n_layer", "n_head", "n_head_kv", "n_ff", "n_ctx"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="smollm2-135m", choices=sorted(PRESETS))
    ap.add_argument("--type", default="f32", choices=ALL_WTYPES,
                    help="type of the 2-D weights (norms/biases stay F32): one type for all "
                         "(llama-quantize --pure), or the q4_k_m mix (the rule tools/convert_hf.py "
                         "uses: tools/gguf_quants.py tensor_type)")
    ap.add_argument("-o", "--out", default=None,
                    help="output path (default models/bench-PRESET-TYPE.gguf)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer", choices=["spm", "gpt2"], default=None,
                    help="default: spm for llama, gpt2 for qwen2")
    ap.add_argument("--pre", default=None,
                    help="tokenizer.ggml.pre for gpt2 vocabularies (default qwen2; "
                         "SmolLM2's real tokenizer is gpt2 with pre smollm)")
    for k in OVERRIDES:
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=None)
    ap.add_argument("--rope-base", type=float, default=None)
    ap.add_argument("--tied", dest="tied", action="store_true", default=None)
    ap.add_argument("--untied", dest="tied", action="store_false")
    a = ap.parse_args(argv)

    cfg = dict(PRESETS[a.preset])
    for k in OVERRIDES:
        if getattr(a, k) is not None:
            cfg[k] = getattr(a, k)
    if a.rope_base is not None:
        cfg["rope_base"] = a.rope_base
    if a.tied is not None:
        cfg["tied"] = a.tied
    out = a.out or os.path.join("models", f"bench-{a.preset}-{a.type}.gguf")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    t0 = time.time()
    info = make_model(out, wtype=a.type, seed=a.seed, tokenizer=a.tokenizer, pre=a.pre,
                      name=f"bench-{a.preset}", **cfg)
    size = os.path.getsize(out)
    print(f"{out}: {info['n_params'] / 1e6:.1f}M params, {size / 2**20:.0f} MiB, "
          f"{time.time() - t0:.1f} s")
    print(" ".join(f"{k}={v}" for k, v in info.items()))


if __name__ == "__main__":
    main()
