"""GGML weight block formats in NumPy, written from the block layouts
(ggml-common.h block_* structs; value formulas of ggml-quants.c's
dequantize_row_*). Standard library + NumPy.

    TYPES[name] -> QType(name, ggml_id, block_elems, block_bytes)
    dequantize(name, raw_bytes) -> float32 array         exact to the layout
    quantize_act(x, k) -> (d, qs, sums)                   libhmt's 8-bit activation blocks
    (quantize(name, float_array) -> bytes: tools/gguf_quants.py, re-exported)

Dequantization is bit-exact to libhmt's C (lib/kernels/quant_dequant.c):
every product is float32 in the order GGML writes it (e.g. Q4_K is
(d*sc)*q - (dmin*m), two roundings, no fused multiply-add); f16 fields are
converted exactly.

The weight quantizers are not here: their one copy is tools/gguf_quants.py
(used by the converters and the model generators); this file only imports
them for the round trips and the golden data, so the dequantizers stay
independent of what they check (their own type table and code book too).

Element order inside a block (e = element index):
  Q4_0/Q4_1/IQ4_NL  e < 16: low nibble of qs[e]; e >= 16: high nibble of qs[e-16]
  Q5_0/Q5_1         same, 5th bit = bit e of the little-endian u32 qh
  Q2_K/Q3_K         e = 128n + 32j + l: bits 2j..2j+1 of qs[32n + l]; scale e // 16;
                    Q3_K high bit: bit 4n + j of hmask[l], set = +0, clear = -4
  Q4_K/Q5_K         e = 64c + 32h + l: nibble h of qs[32c + l]; scale/min e // 32;
                    Q5_K 5th bit: bit 2c + h of qh[l]
  Q6_K              e = 128n + 32k + l: low 4 bits from ql[64n + 32(k&1) + l]
                    (nibble k >> 1), high 2 bits from qh[32n + l] bits 2k..2k+1;
                    scale e // 16
  IQ4_XS            e = 32b + 16h + l: nibble h of qs[16b + l]; scale of sub-block b
"""
import os
import struct
import sys
from collections import namedtuple

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))

QK_K = 256
QType = namedtuple("QType", "name ggml_id block_elems block_bytes")

TYPES = {t.name: t for t in [
    QType("F32", 0, 1, 4), QType("F16", 1, 1, 2), QType("BF16", 30, 1, 2),
    QType("Q4_0", 2, 32, 18), QType("Q4_1", 3, 32, 20),
    QType("Q5_0", 6, 32, 22), QType("Q5_1", 7, 32, 24), QType("Q8_0", 8, 32, 34),
    QType("Q2_K", 10, QK_K, 84), QType("Q3_K", 11, QK_K, 110), QType("Q4_K", 12, QK_K, 144),
    QType("Q5_K", 13, QK_K, 176), QType("Q6_K", 14, QK_K, 210),
    QType("IQ4_NL", 20, 32, 18), QType("IQ4_XS", 23, QK_K, 136),
]}
BY_ID = {t.ggml_id: t for t in TYPES.values()}

# IQ4_NL / IQ4_XS code book (ggml-common.h kvalues_iq4nl)
IQ4_VALUES = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113],
                      dtype=np.int8)

F32 = np.float32


def bits_per_weight(name):
    t = TYPES[name]
    return 8.0 * t.block_bytes / t.block_elems


def row_bytes(name, n):
    t = TYPES[name]
    if n % t.block_elems:
        raise ValueError(f"{name}: row of {n} is not a multiple of {t.block_elems}")
    return n // t.block_elems * t.block_bytes


# ---- field helpers -------------------------------------------------------------
def _f16(b, off):
    """f16 field at byte offset off of each block -> float32 column [nb, 1]."""
    return b[:, off:off + 2].copy().view("<f2").astype(F32)


def _u8(b, off, n):
    return b[:, off:off + n]


def _nibbles32(qs):
    """qs [nb, 16] -> [nb, 32]: low nibbles then high nibbles."""
    return np.concatenate([qs & 0xF, qs >> 4], axis=1)


def _bits(qh_u32, n):
    """[nb] uint32 -> [nb, n] bit e of each."""
    return ((qh_u32[:, None] >> np.arange(n, dtype=np.uint32)) & 1).astype(np.uint8)


def k_scale_min(sc12):
    """The 12 packed scale bytes of Q4_K/Q5_K -> (sc [nb, 8], m [nb, 8]) in 0..63:
    j < 4: sc = b[j] & 63, m = b[j+4] & 63;
    j >= 4: sc = (b[j+4] & 15) | (b[j-4] >> 6) << 4, m = (b[j+4] >> 4) | (b[j] >> 6) << 4."""
    b = sc12.astype(np.int32)
    sc = np.empty((b.shape[0], 8), np.int32)
    m = np.empty_like(sc)
    sc[:, :4] = b[:, 0:4] & 63
    m[:, :4] = b[:, 4:8] & 63
    sc[:, 4:] = (b[:, 8:12] & 15) | ((b[:, 0:4] >> 6) << 4)
    m[:, 4:] = (b[:, 8:12] >> 4) | ((b[:, 4:8] >> 6) << 4)
    return sc, m


def q3k_scales(sc12):
    """The 12 packed scale bytes of Q3_K -> 16 signed scales (6 bits, minus 32):
    low 4 bits of scale j: nibble (j >= 8) of b[j % 8]; high 2 bits: bits
    2(j // 4)..+1 of b[8 + j % 4]."""
    b = sc12.astype(np.int32)
    j = np.arange(16)
    low = (b[:, j % 8] >> (4 * (j // 8))) & 15
    high = (b[:, 8 + j % 4] >> (2 * (j // 4))) & 3
    return (low | (high << 4)) - 32


def iq4xs_scales(b):
    """IQ4_XS: 8 sub-block scales (6 bits, minus 32) from scales_h (u16 at 2) and scales_l[4] at 4."""
    sh = b[:, 2:4].copy().view("<u2").astype(np.int32)[:, 0]
    sl = b[:, 4:8].astype(np.int32)
    ib = np.arange(8)
    low = (sl[:, ib // 2] >> (4 * (ib % 2))) & 15
    high = (sh[:, None] >> (2 * ib)) & 3
    return (low | (high << 4)) - 32


# ---- dequantizers: blocks [nb, block_bytes] uint8 -> [nb, block_elems] float32 ---
def _dq_q4_0(b):
    d = _f16(b, 0)
    q = _nibbles32(_u8(b, 2, 16)).astype(np.int32) - 8
    return q.astype(F32) * d


def _dq_q4_1(b):
    d, m = _f16(b, 0), _f16(b, 2)
    q = _nibbles32(_u8(b, 4, 16))
    return q.astype(F32) * d + m


def _q5(b, off_qh):
    qh = b[:, off_qh:off_qh + 4].copy().view("<u4")[:, 0]
    return _nibbles32(_u8(b, off_qh + 4, 16)) | (_bits(qh, 32) << 4)


def _dq_q5_0(b):
    d = _f16(b, 0)
    return (_q5(b, 2).astype(np.int32) - 16).astype(F32) * d


def _dq_q5_1(b):
    d, m = _f16(b, 0), _f16(b, 2)
    return _q5(b, 4).astype(F32) * d + m


def _dq_q8_0(b):
    d = _f16(b, 0)
    return b[:, 2:34].view(np.int8).astype(F32) * d


def _lo2(qs64):
    """Q2_K/Q3_K 2-bit fields: qs [nb, 64] -> [nb, 256] (e = 128n + 32j + l)."""
    nb = qs64.shape[0]
    q = qs64.reshape(nb, 2, 1, 32) >> (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1)
    return (q & 3).reshape(nb, 256)


def _dq_q2_k(b):
    nb = b.shape[0]
    sc = b[:, 0:16].astype(np.int32)
    q = _lo2(b[:, 16:80]).astype(F32).reshape(nb, 16, 16)
    d, dmin = _f16(b, 80), _f16(b, 82)
    dl = (d * (sc & 15).astype(F32))[:, :, None]
    ml = (dmin * (sc >> 4).astype(F32))[:, :, None]
    return (dl * q - ml).reshape(nb, 256)


def _dq_q3_k(b):
    nb = b.shape[0]
    hmask = b[:, 0:32]
    lo = _lo2(b[:, 32:96]).astype(np.int32)
    sc = q3k_scales(b[:, 96:108])
    d = _f16(b, 108)
    # high bit of e = 128n + 32j + l: bit 4n + j of hmask[l]
    hb = (hmask.reshape(nb, 1, 32) >> np.arange(8, dtype=np.uint8).reshape(1, 8, 1)) & 1
    q = lo - 4 * (1 - hb.reshape(nb, 256).astype(np.int32))
    dl = (d * sc.astype(F32))[:, :, None]
    return (dl * q.astype(F32).reshape(nb, 16, 16)).reshape(nb, 256)


def _nib_k(qs128):
    """Q4_K/Q5_K nibbles: qs [nb, 128] -> [nb, 256] (e = 64c + 32h + l)."""
    nb = qs128.shape[0]
    q = qs128.reshape(nb, 4, 1, 32) >> np.array([0, 4], np.uint8).reshape(1, 1, 2, 1)
    return (q & 15).reshape(nb, 256)


def _dq_q4_k(b):
    nb = b.shape[0]
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, m = k_scale_min(b[:, 4:16])
    q = _nib_k(b[:, 16:144]).astype(F32).reshape(nb, 8, 32)
    d1 = (d * sc.astype(F32))[:, :, None]
    m1 = (dmin * m.astype(F32))[:, :, None]
    return (d1 * q - m1).reshape(nb, 256)


def _dq_q5_k(b):
    nb = b.shape[0]
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, m = k_scale_min(b[:, 4:16])
    qh = b[:, 16:48]
    hb = (qh.reshape(nb, 1, 32) >> np.arange(8, dtype=np.uint8).reshape(1, 8, 1)) & 1
    q = (_nib_k(b[:, 48:176]) + 16 * hb.reshape(nb, 256)).astype(F32).reshape(nb, 8, 32)
    d1 = (d * sc.astype(F32))[:, :, None]
    m1 = (dmin * m.astype(F32))[:, :, None]
    return (d1 * q - m1).reshape(nb, 256)


def _dq_q6_k(b):
    nb = b.shape[0]
    ql = b[:, 0:128].reshape(nb, 2, 2, 32)          # [n][k & 1][l]
    qh = b[:, 128:192].reshape(nb, 2, 1, 32)        # [n][l]
    sc = b[:, 192:208].view(np.int8).astype(F32)    # [nb, 16]
    d = _f16(b, 208)
    low = np.stack([ql[:, :, 0] & 15, ql[:, :, 1] & 15, ql[:, :, 0] >> 4, ql[:, :, 1] >> 4], axis=2)
    high = (qh >> (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1)) & 3
    q = (low | (high << 4)).astype(np.int32).reshape(nb, 16, 16) - 32
    return ((d * sc)[:, :, None] * q.astype(F32)).reshape(nb, 256)


def _dq_iq4_nl(b):
    d = _f16(b, 0)
    return IQ4_VALUES[_nibbles32(_u8(b, 2, 16))].astype(F32) * d


def _dq_iq4_xs(b):
    nb = b.shape[0]
    d = _f16(b, 0)
    ls = iq4xs_scales(b)
    qs = b[:, 8:136].reshape(nb * 8, 16)
    v = IQ4_VALUES[_nibbles32(qs)].astype(F32).reshape(nb, 8, 32)
    dl = (d * ls.astype(F32))[:, :, None]
    return (dl * v).reshape(nb, 256)


_DEQ = {"Q4_0": _dq_q4_0, "Q4_1": _dq_q4_1, "Q5_0": _dq_q5_0, "Q5_1": _dq_q5_1,
        "Q8_0": _dq_q8_0, "Q2_K": _dq_q2_k, "Q3_K": _dq_q3_k, "Q4_K": _dq_q4_k,
        "Q5_K": _dq_q5_k, "Q6_K": _dq_q6_k, "IQ4_NL": _dq_iq4_nl, "IQ4_XS": _dq_iq4_xs}


def dequantize(name, raw):
    """Raw bytes of whole blocks -> flat float32 array."""
    raw = np.frombuffer(bytes(raw), np.uint8) if not isinstance(raw, np.ndarray) else raw.view(np.uint8)
    raw = raw.reshape(-1)
    if name == "F32":
        return raw.view("<f4").astype(F32)
    if name == "F16":
        return raw.view("<f2").astype(F32)
    if name == "BF16":
        return (raw.view("<u2").astype(np.uint32) << 16).view(F32)
    t = TYPES[name]
    if raw.size % t.block_bytes:
        raise ValueError(f"{name}: {raw.size} bytes is not a whole number of blocks")
    return _DEQ[name](raw.reshape(-1, t.block_bytes)).reshape(-1).astype(F32)


# ---- quantizers: the one copy is tools/gguf_quants.py ---------------------------
# (re-exported here for the golden data below and older callers)
from gguf_quants import _f16_bytes, _inv, _k_scales12, quantize  # noqa: E402


# ---- activation quantization (libhmt's own 8-bit blocks; lib/kernels/quant.h) ---
def act_block(name):
    """Activation block length a weight type is dotted with: 256 for the K-quants
    and IQ4_XS (per-16 sums kept), 32 for the 32-element types, 0 for F32/F16/BF16
    (those dot against the float activation)."""
    t = TYPES[name]
    return 0 if t.block_elems == 1 else t.block_elems


def quantize_act(x, k):
    """x [n] float32 in blocks of k (32 or 256): per block d = max|x| / 127,
    id = 1/d (0 if d == 0), q = round-half-even(x * id) clipped to [-127, 127],
    all float32. Returns d [nb] float32, qs [nb, k] int8, sums [nb, k // 16] int32
    (sum of q over each 16 elements; the 32-type kernels use pairs of them)."""
    xb = np.asarray(x, F32).reshape(-1, k)
    d = (np.abs(xb).max(axis=1) / F32(127)).astype(F32)
    idv = _inv(d)
    q = np.clip(np.rint(xb * idv[:, None]), -127, 127).astype(np.int8)
    sums = q.astype(np.int32).reshape(q.shape[0], k // 16, 16).sum(axis=2)
    return d, q, sums


# ---- golden blocks and self-test -------------------------------------------------
def _h(v):
    return np.array([v], "<f2").view(np.uint8)


def golden_blocks():
    """Hand-made blocks whose values follow from the layout by hand:
    list of (type, raw bytes [block_bytes], expected float32 [block_elems])."""
    out = []
    e32 = np.arange(32)
    # Q4_0: d = 0.5, nibble of element e = e % 16 -> (e % 16 - 8) * 0.5
    b = np.concatenate([_h(0.5), np.array([(j) | (j << 4) for j in range(16)], np.uint8)])
    out.append(("Q4_0", b, ((e32 % 16) - 8) * 0.5))
    # Q4_1: d = 0.25, m = -1, low nibble j, high nibble 15 - j
    b = np.concatenate([_h(0.25), _h(-1.0), np.array([j | ((15 - j) << 4) for j in range(16)], np.uint8)])
    q = np.concatenate([np.arange(16), 15 - np.arange(16)])
    out.append(("Q4_1", b, q * 0.25 - 1.0))
    # Q5_0: d = 1, nibbles all 0, qh bit e set for odd e -> odd e: 16 - 16 = 0, even: -16
    qh = sum(1 << e for e in range(1, 32, 2))
    b = np.concatenate([_h(1.0), np.frombuffer(struct.pack("<I", qh), np.uint8), np.zeros(16, np.uint8)])
    out.append(("Q5_0", b, np.where(e32 % 2 == 1, 0.0, -16.0)))
    # Q5_1: d = 2, m = 3, low nibble 15 everywhere, qh bit 31 only -> 15*2+3, last 31*2+3
    b = np.concatenate([_h(2.0), _h(3.0), np.frombuffer(struct.pack("<I", 1 << 31), np.uint8),
                        np.full(16, 0xFF, np.uint8)])
    out.append(("Q5_1", b, np.where(e32 == 31, 31 * 2.0 + 3, 15 * 2.0 + 3)))
    # Q8_0: d = 0.125, q = e - 16
    b = np.concatenate([_h(0.125), (e32 - 16).astype(np.int8).view(np.uint8)])
    out.append(("Q8_0", b, (e32 - 16) * 0.125))
    e = np.arange(256)
    # Q2_K: scale byte j = (j & 15) | (2 << 4) -> dl = 1 * (j & 15), ml = 0.5 * 2;
    # all qs bytes 0b11100100: 2-bit field j of every byte = j -> q(e) = (e % 128) // 32
    b = np.concatenate([np.array([(j & 15) | (2 << 4) for j in range(16)], np.uint8),
                        np.full(64, 0b11100100, np.uint8), _h(1.0), _h(0.5)])
    out.append(("Q2_K", b, (e // 16 % 16) * ((e % 128) // 32) - 1.0))
    # Q3_K: d = 1; all 16 scales 33 (-> +1): low nibble 1 in every b[0..7] nibble,
    # high bits 2 (binary 10) -> b[8..11] = 0b10101010; qs = 0 -> low 2 bits 0;
    # hmask byte l = 0x0F for l < 16 else 0 -> e with n = 0 and l < 16: q = 0, else -4
    b = np.concatenate([np.where(np.arange(32) < 16, 0x0F, 0).astype(np.uint8), np.zeros(64, np.uint8),
                        np.array([0x11] * 8 + [0xAA] * 4, np.uint8), _h(1.0)])
    l = e % 32
    out.append(("Q3_K", b, np.where((e < 128) & (l < 16), 0.0, -4.0)))
    # Q4_K: d = 1, dmin = 0.5; sub-block j: sc = j + 1, m = 2j (j >= 4 use the packed
    # form), nibbles: low 3, high 12 -> sub-block j even: (j + 1) * 3 - j, odd: (j + 1) * 12 - j
    sc = np.arange(1, 9).reshape(1, 8)
    mm = (2 * np.arange(8)).reshape(1, 8)
    b = np.concatenate([_h(1.0), _h(0.5), _k_scales12(sc, mm)[0], np.full(128, 0xC3, np.uint8)])
    j = e // 32
    out.append(("Q4_K", b, (j + 1) * np.where(j % 2 == 0, 3, 12) - 0.5 * 2 * j))
    # Q5_K: sc = 40 + j, m = 63 - j (6 bits, exercises the high bits), d = 0.25, dmin = 0.125,
    # qs all 0x00, qh byte l = l (bits 0..4 of l) -> 5th bit of e = bit (e // 32) of (e % 32)
    sc = (40 + np.arange(8)).reshape(1, 8)
    mm = (63 - np.arange(8)).reshape(1, 8)
    b = np.concatenate([_h(0.25), _h(0.125), _k_scales12(sc, mm)[0], np.arange(32, dtype=np.uint8),
                        np.zeros(128, np.uint8)])
    q = 16 * ((l >> j) & 1)
    out.append(("Q5_K", b, np.float32(0.25 * (40 + j)) * q - np.float32(0.125 * (63 - j))))
    # Q6_K: d = 2^-4, scales s_j = j - 8 (int8); ql = 0x21 (low nibble 1, high 2),
    # qh = 0b11100100 (field k = k) -> q = (low | k << 4) - 32 with k = (e % 128) // 32,
    # low = 1 for k even (low nibble), 2 for k odd... k in {0,1} use low nibbles, {2,3} high
    b = np.concatenate([np.full(128, 0x21, np.uint8), np.full(64, 0b11100100, np.uint8),
                        (np.arange(16) - 8).astype(np.int8).view(np.uint8), _h(1 / 16)])
    k = (e % 128) // 32
    low = np.where(k < 2, 1, 2)
    out.append(("Q6_K", b, (e // 16 - 8) / 16 * ((low | (k << 4)) - 32)))
    # IQ4_NL: d = 1, nibble e % 16 -> code-book value
    b = np.concatenate([_h(1.0), np.array([j | (j << 4) for j in range(16)], np.uint8)])
    out.append(("IQ4_NL", b, IQ4_VALUES[e32 % 16].astype(np.float64)))
    # IQ4_XS: d = 0.5, sub-block scale ls_b = 32 + b - 4 (b = 0..7 -> -4..3); nibbles e % 16
    u = 32 + np.arange(8) - 4
    sh = sum(int(u[ib] >> 4) << (2 * ib) for ib in range(8))
    sl = [int((u[2 * i] & 15) | ((u[2 * i + 1] & 15) << 4)) for i in range(4)]
    b = np.concatenate([_h(0.5), np.frombuffer(struct.pack("<H", sh), np.uint8), np.array(sl, np.uint8),
                        np.tile(np.array([j | (j << 4) for j in range(16)], np.uint8), 8)])
    out.append(("IQ4_XS", b, 0.5 * (e // 32 - 4) * IQ4_VALUES[e % 16]))
    return [(n, np.asarray(b, np.uint8), np.asarray(v, np.float64)) for n, b, v in out]


# Round-trip limits: RMS error / RMS of N(0,1) blocks. Measured (this quantizer):
# Q8_0 0.0054, Q6_K 0.019, Q5_1 0.037, Q5_K 0.038, Q5_0 0.043, Q4_1 0.076,
# Q4_K 0.077, IQ4_NL 0.081, IQ4_XS 0.081, Q4_0 0.086, Q3_K 0.156, Q2_K 0.324
# (`quants_ref.py` prints them; F16 2e-4, BF16 1.7e-3).
RT_LIMIT = {"Q8_0": 0.007, "Q6_K": 0.025, "Q5_0": 0.05, "Q5_1": 0.05, "Q5_K": 0.055,
            "Q4_0": 0.11, "Q4_1": 0.1, "Q4_K": 0.11, "IQ4_NL": 0.09, "IQ4_XS": 0.1,
            "Q3_K": 0.24, "Q2_K": 0.5, "F16": 5e-4, "BF16": 4e-3, "F32": 0.0}


def self_check(verbose=False):
    """Golden blocks, byte sizes, quantize -> dequantize round trips; raises on failure."""
    import gguf_quants
    assert {n: tuple(t) for n, t in TYPES.items()} == \
        {n: tuple(t) for n, t in gguf_quants.TYPES.items()}, "type tables differ"
    assert np.array_equal(IQ4_VALUES, gguf_quants.IQ4_VALUES), "IQ4 code books differ"
    for name, b, want in golden_blocks():
        t = TYPES[name]
        assert b.size == t.block_bytes, (name, b.size)
        got = dequantize(name, b)
        assert got.size == t.block_elems
        assert np.array_equal(got.astype(np.float64), want), (name, got[:8], want[:8])
    rng = np.random.default_rng(5)
    x = rng.standard_normal((16, 512)).astype(F32)
    x[3] *= 1e-3                        # small blocks
    x[4, :256] = 0                      # an all-zero super-block
    x[5] = np.abs(x[5])                 # all positive (min = 0 branch)
    res = {}
    for name, t in TYPES.items():
        raw = quantize(name, x)
        assert len(raw) == row_bytes(name, 512) * 16, name
        y = dequantize(name, raw).reshape(x.shape)
        assert np.isfinite(y).all(), name
        assert np.all(y[4, :256] == 0), name
        rel = float(np.sqrt(((y - x) ** 2).mean()) / np.sqrt((x ** 2).mean()))
        # scale-free: also check the tiny row on its own
        rel3 = float(np.sqrt(((y[3] - x[3]) ** 2).mean()) / np.sqrt((x[3] ** 2).mean()))
        res[name] = rel
        assert rel <= RT_LIMIT[name] and rel3 <= 1.5 * RT_LIMIT[name] + 1e-3, (name, rel, rel3)
        # quantizing the dequantized values again is (nearly) a fixed point
        if name != "F32":
            y2 = dequantize(name, quantize(name, y)).reshape(x.shape)
            rel2 = float(np.sqrt(((y2 - y) ** 2).mean()) / np.sqrt((y ** 2).mean()))
            assert rel2 <= RT_LIMIT[name], (name, "requantize", rel2)
    # activation blocks: |x - d q| <= d/2 (plus float rounding), sums
    for k in (32, 256):
        xa = rng.standard_normal(1024).astype(F32)
        xa[:k] = 0
        d, q, s = quantize_act(xa, k)
        assert d[0] == 0 and not q[0].any()
        err = np.abs(xa.reshape(-1, k) - d[:, None] * q.astype(F32))
        assert np.all(err <= d[:, None] * 0.5001 + 1e-30), k
        assert np.abs(q).max() == 127
        assert np.array_equal(s, q.astype(np.int32).reshape(len(d), -1, 16).sum(axis=2))
    if verbose:
        print("quants_ref: golden blocks OK; round-trip rel. RMS error: "
              + " ".join(f"{n} {v:.4f}" for n, v in sorted(res.items(), key=lambda kv: kv[1])))
    return res


# ---- golden files for tests/check_quant.c ---------------------------------------------
# f16 fields of each block (byte offsets): (scale fields..., min field or None)
F16_FIELDS = {"Q4_0": ([0], None), "Q4_1": ([0], 2), "Q5_0": ([0], None), "Q5_1": ([0], 2),
              "Q8_0": ([0], None), "Q2_K": ([80], 82), "Q3_K": ([108], None), "Q4_K": ([0], 2),
              "Q5_K": ([0], 2), "Q6_K": ([208], None), "IQ4_NL": ([0], None), "IQ4_XS": ([0], None)}
GOLDEN_MAGIC = b"HMTQ"
GOLDEN_ROWS, GOLDEN_COLS = 16, 512


def random_blocks(name, nb, rng):
    """nb blocks of random bytes (every bit pattern of the quant fields) whose
    f16 scale/min fields are finite: N(0,1) * 2^U(-12, 2), a few subnormal
    (2^-20) and a few zero."""
    t = TYPES[name]
    b = rng.integers(0, 256, (nb, t.block_bytes), dtype=np.uint8)
    scales, mfield = F16_FIELDS[name]
    for off in scales + ([mfield] if mfield is not None else []):
        v = (rng.standard_normal(nb) * 2.0 ** rng.uniform(-12, 2, nb)).astype(F32)
        v[rng.random(nb) < 0.05] = 2.0 ** -20
        v[rng.random(nb) < 0.03] = 0.0
        b[:, off:off + 2] = _f16_bytes(v)
    return b


def golden_weights(name, rows, cols, rng):
    """Row 0: the golden block(s) repeated; rows 1-4: quantized N(0,1) data at
    four scales; the rest random blocks. Returns raw bytes [rows, row_bytes]."""
    t = TYPES[name]
    rb = row_bytes(name, cols)
    if t.block_elems == 1:
        x = rng.standard_normal((rows, cols)).astype(F32) * F32(3)
        if name == "F16":   # every finite f16 magnitude class, subnormals included
            x[0] = (np.arange(cols, dtype=np.uint16) * 61).astype(np.uint16).view("<f2").astype(F32)
            x[0][~np.isfinite(x[0])] = 1.0
        return np.frombuffer(quantize(name, x), np.uint8).reshape(rows, rb).copy()
    out = np.empty((rows, rb), np.uint8)
    gb = [b for n, b, _ in golden_blocks() if n == name][0]
    out[0] = np.tile(gb, cols // t.block_elems)
    for r in range(1, 5):
        x = rng.standard_normal(cols).astype(F32) * F32(10.0 ** (r - 3))
        out[r] = np.frombuffer(quantize(name, x), np.uint8)
    out[5:] = random_blocks(name, (rows - 5) * (cols // t.block_elems), rng).reshape(rows - 5, rb)
    return out


def write_golden_file(path, name, rng, rows=GOLDEN_ROWS, cols=GOLDEN_COLS):
    """Format "HMTQ" v1, little-endian: magic, u32 version = 1, type (ggml id),
    rows, cols, row_bytes, act_block (0/32/256); u8 weights[rows][row_bytes];
    f32 dequantized[rows][cols]; f32 x[cols]; then if act_block: f32 d[nb],
    i8 q[cols], i16 sums[cols / 16] (nb = cols / act_block) = quantize_act(x)."""
    t = TYPES[name]
    w = golden_weights(name, rows, cols, rng)
    deq = dequantize(name, w.reshape(-1)).reshape(rows, cols)
    x = rng.standard_normal(cols).astype(F32)
    x[:32] = 0                              # an all-zero activation block
    x[40] = 2.5 * np.abs(x[32:64]).max()    # one block dominated by a single value
    k = act_block(name)
    with open(path, "wb") as f:
        f.write(GOLDEN_MAGIC + struct.pack("<6I", 1, t.ggml_id, rows, cols, w.shape[1], k))
        f.write(w.tobytes())
        f.write(deq.astype("<f4").tobytes())
        f.write(x.astype("<f4").tobytes())
        if k:
            d, q, s = quantize_act(x, k)
            f.write(d.astype("<f4").tobytes() + q.tobytes() + s.astype("<i2").tobytes())
    return deq


def write_goldens(outdir, seed=1313):
    """One quant-<TYPE>.golden per type into outdir; returns the names."""
    import os
    self_check()
    rng = np.random.default_rng(seed)
    names = list(TYPES)
    for name in names:
        write_golden_file(os.path.join(outdir, f"quant-{name}.golden"), name, rng)
    return names


if __name__ == "__main__":
    self_check(verbose=True)
    if len(sys.argv) > 1:
        for n in sys.argv[1:]:
            print(n, f"{bits_per_weight(n):.4f} bits/weight")
