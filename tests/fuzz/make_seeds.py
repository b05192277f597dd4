#!/usr/bin/env python3
"""Seed inputs for one fuzz target (tests/fuzz/fuzz_TARGET.c), written into
OUTDIR from the files the project already has: the GGUF models and adapters
in models/ and BUILD/testdata, the tokenizer test vocabularies and their
expected-output tables, and kNN datastores written by BUILD/bin/hmt-datastore.
(fuzz_snapshot writes its own seeds: real snapshots, see its header.)

usage: make_seeds.py TARGET OUTDIR BUILD
"""
import os
import shutil
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TOKDATA = os.path.join(ROOT, "tests", "data", "tokenizer")
DEMO_MODEL = os.path.join(ROOT, "models", "demo-random-f16.gguf")
DEMO_ADAPTER = os.path.join(ROOT, "models", "demo-random-hmt.gguf")
TEXT = os.path.join(ROOT, "models", "heldout", "ca10.txt")  # a held-out Brown document
# Same order as VOCABS in fuzz_tokenizer.c: the first input byte picks one.
VOCABS = ["spm", "bpe_gpt2", "bpe_llama3", "bpe_qwen2", "bpe_smollm", "bpe_default", "bpe_gpt-4o"]


def copy(paths, out):
    n = 0
    for p in paths:
        if not os.path.exists(p):
            sys.exit(f"make_seeds: {p} missing (run make testdata / make tools)")
        shutil.copy(p, out)
        n += 1
    return n


def testdata(build, suffix):
    d = os.path.join(build, "testdata")
    if not os.path.isdir(d):
        sys.exit(f"make_seeds: {d} missing (run make testdata B={build})")
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(suffix))


def text_bytes(n):
    with open(TEXT, "rb") as f:
        return f.read(n)


def gguf(out, build):
    # Whole files; libFuzzer cuts the larger models at -max_len, which still
    # leaves their headers, metadata and tensor tables to mutate.
    vocabs = [os.path.join(TOKDATA, v + ".gguf") for v in VOCABS]
    models = [p for p in testdata(build, ".gguf") if os.path.getsize(p) < (1 << 20)]
    return copy(vocabs + models + [DEMO_MODEL, DEMO_ADAPTER], out)


def adapter(out, build):
    # The demo adapter fits the fuzzed model; the testdata ones do not and
    # exercise the mismatch checks.
    return copy([DEMO_ADAPTER] + testdata(build, ".adapter.gguf"), out)


def tokenizer(out, build):
    n = 0
    for i, v in enumerate(VOCABS):
        prefix = bytes([i])
        inputs = [text_bytes(600), b"\xff\xfe<s>\x00 \xe2\x96\x81x</s>\xc3"]
        for table in (f"{v}_expected.tsv", f"pretok_{v.split('_')[-1]}_expected.tsv"):
            path = os.path.join(TOKDATA, table)
            if not os.path.exists(path):
                continue
            with open(path) as f:
                for line in f:
                    cols = line.rstrip("\n").split("\t")
                    if line.startswith("#") or len(cols) < 2:
                        continue
                    inputs.append(bytes.fromhex(cols[1]))
        for j, data in enumerate(dict.fromkeys(inputs)):
            with open(os.path.join(out, f"{v}-{j:04d}"), "wb") as f:
                f.write(prefix + data)
            n += 1
    return n


def knn(out, build):
    tool = os.path.join(build, "bin", "hmt-datastore")
    if not os.path.exists(tool):
        sys.exit(f"make_seeds: {tool} missing (run make tools B={build})")
    text = os.path.join(out, "text.tmp")
    with open(text, "wb") as f:
        f.write(text_bytes(160))
    runs = {"f32.knn": [], "f16.knn": ["--f16"], "hmt.knn": ["-a", DEMO_ADAPTER]}
    for name, extra in runs.items():
        subprocess.run([tool, "-m", DEMO_MODEL, "-f", text, "-o", os.path.join(out, name),
                        "-t", "1", "-q", *extra], check=True)
    os.remove(text)
    return len(runs)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    target, out, build = sys.argv[1:]
    os.makedirs(out, exist_ok=True)
    makers = {"gguf": gguf, "adapter": adapter, "tokenizer": tokenizer, "knn": knn}
    n = makers[target](out, build) if target in makers else 0
    print(f"make_seeds: {target}: {n} seed files in {out}")


if __name__ == "__main__":
    main()
