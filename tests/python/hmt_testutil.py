"""Shared helpers for the Python tests: paths, standard-library readers of the
golden files (tests/reference/README.md: "HMTG" and "HMTH" v1) and small
vector helpers that work with NumPy arrays and array.array alike.

Environment: HMT_LIB_PATH (the library), HMT_TESTDATA (build/testdata),
HMT_C_DUMP (optional: tests/python/c_dump built against the same library),
HMT_PY_QUICK (skip the slow leak test).
"""
import array
import math
import os
import struct
import sys
import unittest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))

import hmt  # noqa: E402

TESTDATA = os.environ.get("HMT_TESTDATA") or os.path.join(ROOT, "build", "testdata")
HEADER = os.path.join(ROOT, "include", "hmt", "hmt.h")
TOL_LOGIT = 1e-4
TOL_VEC = 5e-5
TOL_WEIGHT = 1e-5


def data(name):
    p = os.path.join(TESTDATA, name)
    if not os.path.exists(p):
        raise unittest.SkipTest(f"{p} missing (run make testdata)")
    return p


def read_manifest(name="manifest.txt"):
    rows = []
    with open(data(name)) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            rows.append(dict(kv.split("=", 1) for kv in line.split()))
    return rows


def _floats(b, off, n):
    a = array.array("f")
    a.frombytes(b[off:off + 4 * n])
    if sys.byteorder != "little":
        a.byteswap()
    return a, off + 4 * n


def _ints(b, off, n, code="i"):
    a = array.array(code)
    a.frombytes(b[off:off + a.itemsize * n])
    if sys.byteorder != "little":
        a.byteswap()
    return a, off + a.itemsize * n


def read_hmtg(path):
    """HMTG v1: dict with tokens, pos, chunks, embd (rows), logits (rows),
    hidden (rows); rows are array.array('f')."""
    with open(path, "rb") as f:
        b = f.read()
    assert b[:4] == b"HMTG", path
    version, n_rows, n_vocab, n_embd, n_er, n_chunks = struct.unpack_from("<6I", b, 4)
    assert version == 1
    off = 28
    g = dict(n_rows=n_rows, n_vocab=n_vocab, n_embd=n_embd)
    g["tokens"], off = _ints(b, off, n_rows)
    g["pos"], off = _ints(b, off, n_rows)
    g["chunks"], off = _ints(b, off, n_chunks, "I")
    flat, off = _floats(b, off, n_er * n_embd)
    g["embd"] = [flat[i * n_embd:(i + 1) * n_embd] for i in range(n_er)]
    flat, off = _floats(b, off, n_rows * n_vocab)
    g["logits"] = [flat[i * n_vocab:(i + 1) * n_vocab] for i in range(n_rows)]
    flat, off = _floats(b, off, n_rows * n_embd)
    g["hidden"] = [flat[i * n_embd:(i + 1) * n_embd] for i in range(n_rows)]
    assert off == len(b)
    return g


HMTH_FIELDS = ["version", "n_tokens", "n_vocab", "n_embd", "L", "k", "N", "j", "j_gen", "mode",
               "lookahead", "bf16", "scale_kind", "n_segments", "d_h", "n_ctx"]


def read_hmth(path):
    """HMTH v1: header fields, tokens, logits (rows), segments (cached,
    weights, S, P, M)."""
    with open(path, "rb") as f:
        b = f.read()
    assert b[:4] == b"HMTH", path
    h = dict(zip(HMTH_FIELDS, struct.unpack_from("<16I", b, 4)))
    assert h["version"] == 1
    off = 68
    n, V, d = h["n_tokens"], h["n_vocab"], h["n_embd"]
    h["tokens"], off = _ints(b, off, n)
    flat, off = _floats(b, off, n * V)
    h["logits"] = [flat[i * V:(i + 1) * V] for i in range(n)]
    segs = []
    for _ in range(h["n_segments"]):
        (nc,) = struct.unpack_from("<I", b, off)
        off += 4
        cached, off = _ints(b, off, nc)
        weights, off = _floats(b, off, nc)
        r = dict(cached=list(cached), weights=weights)
        for f in ("S", "P", "M"):
            r[f], off = _floats(b, off, d)
        segs.append(r)
    assert off == len(b)
    h["segments"] = segs
    return h


def maxdiff(a, b):
    a, b = list(a), list(b)
    assert len(a) == len(b), (len(a), len(b))
    return max((abs(float(x) - float(y)) for x, y in zip(a, b)), default=0.0)


def all_finite(v):
    return all(math.isfinite(float(x)) for x in v)


def as_bytes(v):
    """The float32 bytes of a vector (ndarray or array.array)."""
    if isinstance(v, array.array):
        return v.tobytes()
    return v.astype("<f4").tobytes()


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise unittest.SkipTest("no VmRSS in /proc/self/status")


def stream_params(case):
    """Stream kwargs of an hmt-manifest.txt case."""
    kw = dict(mode=hmt.Mode[case["mode"].upper()], lookahead=int(case["lookahead"]), n_threads=1)
    if case["adapter"] == "-" and case["mode"] == "segments":
        kw["segment_length"] = int(case["L"])
    if case["mode"] == "window":
        kw["window"] = int(case["n_ctx"])  # the manifest's field; the stream key is window
    return kw
