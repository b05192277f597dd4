#!/usr/bin/env python3
"""Training data on which HMT's recall should pay off (docs/RETRIEVAL.md,
"An adapter that uses recall"): the copy task of tools/hmt_retrieval.py as a
training stream, written in the files tools/hmt_train.py reads.

usage: hmt_recall_curriculum.py -m MODEL -a ADAPTER [--train build/brown/train.txt]
                                [--spm build/brown/spm.model] --out DIR
                                [--L 32] [--span 16] [--distances 2,3,4,5,6]
                                [--repeat 0.5] [--tokens 1500000] [--seed 1]

The stream is cut in units of L tokens. Each unit opens with a span of
--span tokens and continues with natural text (the training documents, in
order). With probability --repeat the span repeats the one that opened the
unit d units earlier (d drawn from --distances; that span was new then), else
it is a fresh span of training text from elsewhere. Every --doc units a
document ends (BOS). Only the training split is used (never models/heldout).

Written to DIR: train_ids.npy (the stream; hmt_train.py uses it in place of
train.txt), spm.model (a copy: the trainer loads the tokenizer), hmt.pt (the
shipped adapter's parameters, so that stage 2 starts from them), and
curriculum.txt (these settings and counts).

hmt_train.py reads its B streams from random offsets that are not multiples
of L, so its segments do not line up with the units: a repeat is d segments
back, but it opens a segment only by chance (the recall query sees the first
j tokens of the segment). For segment-aligned training use instead
`hmt_train.py hmt --curriculum copy|kv`, which builds its documents with
aligned_batch() below (the fact opens segment s, the probe opens s + d).
"""
import argparse
import os
import random
import shutil
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(HERE, "..", "python"))
from atomic_write import atomic_write, write_text  # noqa: E402

BOS = 1
TASKS = ("copy", "kv")


def word_pieces(sp):
    """SentencePiece ids of whole lower-case words with the word-start mark
    (' word', 3+ letters): kv's keys and values, as hmt_retrieval.py's pool."""
    out = []
    for t in range(sp.get_piece_size()):
        s = sp.id_to_piece(t)
        if len(s) >= 4 and s[0] == "\u2581" and s[1:].isalpha() and s[1:].islower():
            out.append(t)
    return out


def fact(task, src, rng, span, pool):
    """(needle, probe, index of the first answer token in the probe) of one
    trial, as hmt_retrieval.py plants them: copy = a span of natural text,
    probed by itself (cue: its first 2 tokens); kv = 4 pairs 'key value' of
    random words, probed by one key and its value."""
    if task == "copy":
        a = int(rng.integers(0, len(src) - span))
        s = [int(t) for t in src[a:a + span]]
        return s, s, 2
    words = [pool[i] for i in rng.choice(len(pool), 8, replace=False)]
    q = int(rng.integers(0, 4))
    return words, [words[2 * q], words[2 * q + 1]], 1


def aligned_batch(task, src, rng, B, L, start, d, span=16, pool=None):
    """B training documents of (start + d + 1) segments of L tokens: BOS then
    training text (src from a random place), the fact opening segment
    `start` and the probe opening segment start + d (d >= 1), as the
    benchmark lays them out. Returns x [B, T + 1] (int64; inputs x[:, :T],
    targets x[:, 1:]) and ans [B, T] (True where the target is an answer
    token)."""
    T = (start + d + 1) * L
    x = np.empty((B, T + 1), np.int64)
    ans = np.zeros((B, T), bool)
    for b in range(B):
        a = int(rng.integers(0, len(src) - T - 1))
        x[b] = src[a:a + T + 1]
        x[b, 0] = BOS
        needle, probe, first = fact(task, src, rng, span, pool)
        x[b, start * L:start * L + len(needle)] = needle
        p = (start + d) * L
        x[b, p:p + len(probe)] = probe
        ans[b, p + first - 1:p + len(probe) - 1] = True   # logits i predict token i + 1
    return torch.from_numpy(x), torch.from_numpy(ans)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("-a", "--adapter", required=True)
    ap.add_argument("--train", default="build/brown/train.txt")
    ap.add_argument("--spm", default="build/brown/spm.model")
    ap.add_argument("--out", required=True)
    ap.add_argument("--L", type=int, default=32)
    ap.add_argument("--span", type=int, default=16)
    ap.add_argument("--distances", default="2,3,4,5,6")
    ap.add_argument("--repeat", type=float, default=0.5)
    ap.add_argument("--doc", type=int, default=64, help="units per document")
    ap.add_argument("--tokens", type=int, default=1500000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    dists = [int(x) for x in a.distances.split(",")]
    if not 0 < a.span < a.L or min(dists) < 1:
        ap.error("need 0 < --span < --L and distances >= 1")
    rng = random.Random(a.seed)
    import hmt
    from hmt_torch import load_gguf
    with hmt.Model(a.model) as model:
        with open(a.train, encoding="utf-8") as f:
            text = " ".join(d.replace("\n", " ") for d in f.read().split("\n\n") if d.strip())
        src = model.tokenize(text, add_bos=False)
    fill, at = a.L - a.span, 0
    out, opened, n_rep, n_units = [], [], 0, 0  # opened[u] = (span, fresh?)
    while len(out) < a.tokens:
        if n_units % a.doc == 0:
            out.append(1)  # BOS: a new document (the trainer does not reset on it)
            opened = []
        u = len(opened)
        d = rng.choice(dists)
        if rng.random() < a.repeat and u >= d and opened[u - d][1]:
            span, fresh = opened[u - d][0], False
            n_rep += 1
        else:
            b = rng.randrange(len(src) - a.span)
            span, fresh = src[b:b + a.span], True
        opened.append((span, fresh))
        out += span + [src[(at + i) % len(src)] for i in range(fill)]
        at += fill
        n_units += 1
    os.makedirs(a.out, exist_ok=True)
    with atomic_write(os.path.join(a.out, "train_ids.npy")) as f:
        np.save(f, np.asarray(out, np.int32))
    shutil.copyfile(a.spm, os.path.join(a.out, "spm.model"))
    _, p, hp = load_gguf(a.model, a.adapter)
    with atomic_write(os.path.join(a.out, "hmt.pt")) as f:
        torch.save(dict(hp=hp, params=p.state_dict()), f)
    write_text(os.path.join(a.out, "curriculum.txt"),
               f"{vars(a)}\n{len(out)} tokens, {n_units} units, {n_rep} repeats "
               f"({n_rep / n_units:.1%} of units)\n")
    print(f"{a.out}: {len(out)} tokens, {n_units} units of {a.L}, {n_rep} repeated spans")
    return 0


if __name__ == "__main__":
    sys.exit(main())
