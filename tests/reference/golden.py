"""Golden-output file format "HMTG" v1 (see tests/reference/README.md).

All fields little-endian, no padding:
    char     magic[4] = "HMTG"
    uint32   version  = 1
    uint32   n_rows
    uint32   n_vocab
    uint32   n_embd
    uint32   n_embd_rows            rows given as input embeddings (token = -1)
    uint32   n_chunks               how the rows are split into hmt_ctx_eval calls
    int32    tokens[n_rows]         token id, or -1 for an embedding row
    int32    pos[n_rows]            explicit RoPE position of each row
    uint32   chunk[n_chunks]        rows per eval call, in order; sum = n_rows;
                                    a chunk never mixes token and embedding rows
    float32  embd[n_embd_rows][n_embd]   the embedding rows, in row order
    float32  logits[n_rows][n_vocab]
    float32  hidden[n_rows][n_embd]      final RMSNorm output (x output_norm)
"""
import struct

import numpy as np

MAGIC = b"HMTG"
VERSION = 1


def write_golden(path, tokens, pos, chunks, embd, logits, hidden):
    tokens = np.asarray(tokens, dtype="<i4")
    pos = np.asarray(pos, dtype="<i4")
    chunks = np.asarray(chunks, dtype="<u4")
    logits = np.asarray(logits, dtype="<f4")
    hidden = np.asarray(hidden, dtype="<f4")
    n_rows, n_vocab = logits.shape
    n_embd = hidden.shape[1]
    n_er = int((tokens < 0).sum())
    embd = np.zeros((0, n_embd), "<f4") if embd is None else np.asarray(embd, "<f4").reshape(-1, n_embd)
    assert embd.shape[0] == n_er and len(pos) == n_rows and len(tokens) == n_rows
    assert int(chunks.sum()) == n_rows and hidden.shape[0] == n_rows
    start = 0
    for c in chunks:  # chunks are homogeneous
        kinds = set((tokens[start:start + c] < 0).tolist())
        assert len(kinds) == 1, "a chunk mixes token and embedding rows"
        start += c
    with open(path, "wb") as f:
        f.write(MAGIC + struct.pack("<6I", VERSION, n_rows, n_vocab, n_embd, n_er, len(chunks)))
        for a in (tokens, pos, chunks, embd, logits, hidden):
            f.write(a.tobytes())


def read_golden(path):
    b = open(path, "rb").read()
    if b[:4] != MAGIC:
        raise ValueError("bad magic")
    version, n_rows, n_vocab, n_embd, n_er, n_chunks = struct.unpack_from("<6I", b, 4)
    if version != VERSION:
        raise ValueError(f"version {version}")
    off = 28
    out = {"n_vocab": n_vocab, "n_embd": n_embd}

    def take(name, dtype, count, shape=None):
        nonlocal off
        a = np.frombuffer(b, dtype=dtype, count=count, offset=off)
        off += a.nbytes
        out[name] = a.reshape(shape) if shape else a

    take("tokens", "<i4", n_rows)
    take("pos", "<i4", n_rows)
    take("chunks", "<u4", n_chunks)
    take("embd", "<f4", n_er * n_embd, (n_er, n_embd))
    take("logits", "<f4", n_rows * n_vocab, (n_rows, n_vocab))
    take("hidden", "<f4", n_rows * n_embd, (n_rows, n_embd))
    if off != len(b):
        raise ValueError("trailing bytes")
    return out
