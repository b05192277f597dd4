"""GGML weight quantizers in NumPy (standard library + NumPy): the one copy
in the repository, used by tools/gguf_write.py (hence tools/convert_hf.py),
tests/reference/gen_model.py (bench/gen_model.py) and the test-data
generators. The dequantizers, which are the test oracle, live apart in
tests/reference/quants_ref.py and do not use this file.

    TYPES[name] -> QType(name, ggml_id, block_elems, block_bytes)
    quantize(name, float_array) -> bytes        rows along the last axis
    tensor_type(outtype, tensor_name, n_layer, ne0, tied) -> type name
    OUTTYPES[outtype] -> (default type name, general.file_type)

The quantizers are round-to-nearest with max-based scales. For Q4_0/Q4_1/
Q5_0/Q5_1/Q8_0 they follow the shape of GGML's quantize_row_*_ref (max/-8,
(max-min)/15, ...) but round half to even and compute the quants with the
f16-rounded scale, so bytes may differ from llama-quantize in the last bit;
for the K-quants and IQ4 they are a plain one-pass choice of scales (no
search over scales as llama.cpp's make_qkx2_quants / make_qx_quants do), so
the error is somewhat larger than llama-quantize's (RMS error / RMS of N(0,1)
data: Q8_0 0.0054, Q6_K 0.019, Q4_K 0.077, Q4_0 0.086; tests/reference/
quants_ref.py measures them), but every block is a valid block of the format.
Block layouts: the docstring of tests/reference/quants_ref.py.
"""
from collections import namedtuple

import numpy as np

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


def row_bytes(name, n):
    t = TYPES[name]
    if n % t.block_elems:
        raise ValueError(f"{name}: row of {n} is not a multiple of {t.block_elems}")
    return n // t.block_elems * t.block_bytes


# ---- quantizers: x [nb, block_elems] float32 -> [nb, block_bytes] uint8 ----------
def _to_f16(v):
    return np.asarray(v, F32).astype("<f2")


def _f16_bytes(v):
    return _to_f16(v).reshape(-1, 1).view(np.uint8).reshape(-1, 2)


def _inv(d):
    d = np.asarray(d, F32)
    with np.errstate(divide="ignore"):
        return np.where(d != 0, F32(1) / np.where(d != 0, d, F32(1)), F32(0)).astype(F32)


def _signed_max(x):
    """Value of largest magnitude per row (first one on ties), keepdims."""
    i = np.abs(x).argmax(axis=-1)[..., None]
    return np.take_along_axis(x, i, axis=-1)


def _pack_nib32(q):
    return (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)


def _q_q4_0(x):
    d = (_signed_max(x) / F32(-8)).astype(F32)
    dh = _to_f16(d).astype(F32)
    q = np.clip(np.rint(x * _inv(dh)) + 8, 0, 15).astype(np.uint8)
    return np.concatenate([_f16_bytes(d), _pack_nib32(q)], axis=1)


def _q_q4_1(x, nmax=15):
    mn, mx = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    d = ((mx - mn) / F32(nmax)).astype(F32)
    dh, mh = _to_f16(d).astype(F32), _to_f16(mn).astype(F32)
    q = np.clip(np.rint((x - mh) * _inv(dh)), 0, nmax).astype(np.uint8)
    return d, mn, q


def _q_q4_1b(x):
    d, mn, q = _q_q4_1(x, 15)
    return np.concatenate([_f16_bytes(d), _f16_bytes(mn), _pack_nib32(q)], axis=1)


def _qh_bytes(q):
    hb = (q >> 4).astype(np.uint32) & 1
    qh = (hb << np.arange(32, dtype=np.uint32)).sum(axis=1).astype("<u4")
    return qh.reshape(-1, 1).view(np.uint8).reshape(-1, 4)


def _q_q5_0(x):
    d = (_signed_max(x) / F32(-16)).astype(F32)
    dh = _to_f16(d).astype(F32)
    q = np.clip(np.rint(x * _inv(dh)) + 16, 0, 31).astype(np.uint8)
    return np.concatenate([_f16_bytes(d), _qh_bytes(q), _pack_nib32(q & 15)], axis=1)


def _q_q5_1(x):
    d, mn, q = _q_q4_1(x, 31)
    return np.concatenate([_f16_bytes(d), _f16_bytes(mn), _qh_bytes(q), _pack_nib32(q & 15)], axis=1)


def _q_q8_0(x):
    d = (np.abs(x).max(axis=1, keepdims=True) / F32(127)).astype(F32)
    dh = _to_f16(d).astype(F32)
    q = np.clip(np.rint(x * _inv(dh)), -127, 127).astype(np.int8)
    return np.concatenate([_f16_bytes(d), q.view(np.uint8)], axis=1)


def _affine_sub(xs, nmax, smax):
    """Sub-blocks xs [nb, ns, n] with scale and min: x ~ d*sc*q - dmin*m,
    sc, m in 0..smax, q in 0..nmax. Returns d, dmin (f16-rounded f32), sc, m, q."""
    mn = np.minimum(xs.min(axis=2), 0)
    mx = xs.max(axis=2)
    scale = ((mx - mn) / F32(nmax)).astype(F32)      # [nb, ns]
    mins = (-mn).astype(F32)
    max_s = scale.max(axis=1, keepdims=True)
    max_m = mins.max(axis=1, keepdims=True)
    d = _to_f16(max_s / F32(smax)).astype(F32)
    dmin = _to_f16(max_m / F32(smax)).astype(F32)
    sc = np.clip(np.rint(scale * _inv(d)), 0, smax).astype(np.int32)
    # round the min up so that x + dmin*m stays >= 0 where it can
    m = np.clip(np.ceil(mins * _inv(dmin)), 0, smax).astype(np.int32)
    dl = (d * sc.astype(F32))[:, :, None]
    ml = (dmin * m.astype(F32))[:, :, None]
    q = np.clip(np.rint((xs + ml) * _inv(dl)), 0, nmax).astype(np.int32)
    return d, dmin, sc, m, q


def _symm_sub(xs, qmax, scale_lo, scale_hi):
    """Sub-blocks xs [nb, ns, n], x ~ d*sc*q with q in [-qmax, qmax-1] and
    signed sub-block scales sc in [scale_lo, scale_hi]. Returns d (f16-rounded), sc, q."""
    s = (_signed_max(xs)[..., 0] / F32(-qmax)).astype(F32)     # [nb, ns], maps max to -qmax
    smax = _signed_max(s)                                        # [nb, 1]
    iscale = (F32(scale_lo) * _inv(smax)).astype(F32)            # maps smax to scale_lo
    d = _to_f16(_inv(iscale)).astype(F32)
    sc = np.clip(np.rint(s * _inv(d)), scale_lo, scale_hi).astype(np.int32)
    dl = (d * sc.astype(F32))[:, :, None]
    q = np.clip(np.rint(xs * _inv(dl)), -qmax, qmax - 1).astype(np.int32)
    return d, sc, q


def _pack_lo2(q):
    """[nb, 256] 2-bit values -> qs [nb, 64] (inverse of _lo2)."""
    nb = q.shape[0]
    q = q.reshape(nb, 2, 4, 32).astype(np.uint8)
    return (q[:, :, 0] | (q[:, :, 1] << 2) | (q[:, :, 2] << 4) | (q[:, :, 3] << 6)).reshape(nb, 64)


def _q_q2_k(x):
    nb = x.shape[0]
    d, dmin, sc, m, q = _affine_sub(x.reshape(nb, 16, 16), 3, 15)
    scales = (sc | (m << 4)).astype(np.uint8)
    return np.concatenate([scales, _pack_lo2(q.reshape(nb, 256)), _f16_bytes(d), _f16_bytes(dmin)], axis=1)


def _q_q3_k(x):
    nb = x.shape[0]
    d, sc, q = _symm_sub(x.reshape(nb, 16, 16), 4, -32, 31)
    q = q.reshape(nb, 256) + 4                       # 0..7
    hb = (q >> 2).reshape(nb, 8, 32).astype(np.uint8)  # bit index 4n + j = e // 32
    hmask = (hb << np.arange(8, dtype=np.uint8).reshape(1, 8, 1)).sum(axis=1).astype(np.uint8)
    u = (sc + 32).astype(np.int32)                   # 0..63
    j = np.arange(16)
    scb = np.zeros((nb, 12), np.int32)
    for jj in range(16):
        scb[:, jj % 8] |= (u[:, jj] & 15) << (4 * (jj // 8))
        scb[:, 8 + jj % 4] |= (u[:, jj] >> 4) << (2 * (jj // 4))
    del j
    return np.concatenate([hmask, _pack_lo2(q & 3), scb.astype(np.uint8), _f16_bytes(d)], axis=1)


def _k_scales12(sc, m):
    """Inverse of k_scale_min: sc, m [nb, 8] in 0..63 -> 12 bytes."""
    b = np.zeros((sc.shape[0], 12), np.int32)
    b[:, 0:4] = sc[:, :4] | ((sc[:, 4:] >> 4) << 6)
    b[:, 4:8] = m[:, :4] | ((m[:, 4:] >> 4) << 6)
    b[:, 8:12] = (sc[:, 4:] & 15) | ((m[:, 4:] & 15) << 4)
    return b.astype(np.uint8)


def _pack_nib_k(q):
    nb = q.shape[0]
    q = q.reshape(nb, 4, 2, 32).astype(np.uint8)
    return (q[:, :, 0] | (q[:, :, 1] << 4)).reshape(nb, 128)


def _q_q4_k(x):
    nb = x.shape[0]
    d, dmin, sc, m, q = _affine_sub(x.reshape(nb, 8, 32), 15, 63)
    return np.concatenate([_f16_bytes(d), _f16_bytes(dmin), _k_scales12(sc, m),
                           _pack_nib_k(q.reshape(nb, 256))], axis=1)


def _q_q5_k(x):
    nb = x.shape[0]
    d, dmin, sc, m, q = _affine_sub(x.reshape(nb, 8, 32), 31, 63)
    q = q.reshape(nb, 256)
    hb = (q >> 4).reshape(nb, 8, 32).astype(np.uint8)
    qh = (hb << np.arange(8, dtype=np.uint8).reshape(1, 8, 1)).sum(axis=1).astype(np.uint8)
    return np.concatenate([_f16_bytes(d), _f16_bytes(dmin), _k_scales12(sc, m), qh,
                           _pack_nib_k(q & 15)], axis=1)


def _q_q6_k(x):
    nb = x.shape[0]
    d, sc, q = _symm_sub(x.reshape(nb, 16, 16), 32, -128, 127)
    q = (q.reshape(nb, 2, 4, 32) + 32).astype(np.uint8)     # [n][k][l], 0..63
    lo, hi = q & 15, q >> 4
    ql = np.stack([lo[:, :, 0] | (lo[:, :, 2] << 4), lo[:, :, 1] | (lo[:, :, 3] << 4)], axis=2)
    qh = hi[:, :, 0] | (hi[:, :, 1] << 2) | (hi[:, :, 2] << 4) | (hi[:, :, 3] << 6)
    return np.concatenate([ql.reshape(nb, 128), qh.reshape(nb, 64),
                           sc.astype(np.int8).view(np.uint8), _f16_bytes(d)], axis=1)


def _iq4_index(v):
    """Nearest code-book entry (lower one on ties) of v (in code-book units)."""
    return np.abs(v[..., None] - IQ4_VALUES.astype(F32)).argmin(axis=-1).astype(np.uint8)


def _q_iq4_nl(x):
    d = (_signed_max(x) / F32(-127)).astype(F32)
    dh = _to_f16(d).astype(F32)
    q = _iq4_index(x * _inv(dh))
    return np.concatenate([_f16_bytes(d), _pack_nib32(q)], axis=1)


def _q_iq4_xs(x):
    nb = x.shape[0]
    xs = x.reshape(nb, 8, 32)
    s = (_signed_max(xs)[..., 0] / F32(-127)).astype(F32)
    smax = _signed_max(s)
    iscale = (F32(-32) * _inv(smax)).astype(F32)
    d = _to_f16(_inv(iscale)).astype(F32)
    ls = np.clip(np.rint(s * _inv(d)), -32, 31).astype(np.int32)
    dl = (d * ls.astype(F32))[:, :, None]
    q = _iq4_index(xs * _inv(dl)).reshape(nb * 8, 32)
    u = ls + 32
    sh = np.zeros(nb, np.int64)
    sl = np.zeros((nb, 4), np.int32)
    for ib in range(8):
        sh |= (u[:, ib] >> 4).astype(np.int64) << (2 * ib)
        sl[:, ib // 2] |= (u[:, ib] & 15) << (4 * (ib % 2))
    shb = sh.astype("<u2").reshape(-1, 1).view(np.uint8).reshape(nb, 2)
    return np.concatenate([_f16_bytes(d), shb, sl.astype(np.uint8),
                           _pack_nib32(q).reshape(nb, 128)], axis=1)


_QUANT = {"Q4_0": _q_q4_0, "Q4_1": _q_q4_1b, "Q5_0": _q_q5_0, "Q5_1": _q_q5_1, "Q8_0": _q_q8_0,
          "Q2_K": _q_q2_k, "Q3_K": _q_q3_k, "Q4_K": _q_q4_k, "Q5_K": _q_q5_k, "Q6_K": _q_q6_k,
          "IQ4_NL": _q_iq4_nl, "IQ4_XS": _q_iq4_xs}


def bf16_bits(x):
    """float32 array -> uint16 bfloat16 bits, round to nearest even (a NaN
    stays a quiet NaN)."""
    u = np.ascontiguousarray(x, dtype=F32).view(np.uint32).astype(np.uint64)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(nan, ((u >> 16) | 0x40).astype(np.uint16), r)


def quantize(name, x):
    """Float array (any shape, rows along the last axis, length a multiple of the
    block size) -> raw bytes of the blocks, row-major."""
    x = np.ascontiguousarray(x, dtype=F32)
    if name == "F32":
        return x.astype("<f4").tobytes()
    if name == "F16":
        return x.astype("<f2").tobytes()
    if name == "BF16":
        return bf16_bits(x).astype("<u2").tobytes()
    t = TYPES[name]
    if x.shape[-1] % t.block_elems:
        raise ValueError(f"{name}: rows of {x.shape[-1]} are not a multiple of {t.block_elems}")
    blocks = x.reshape(-1, t.block_elems)
    out = _QUANT[name](blocks)
    assert out.shape == (blocks.shape[0], t.block_bytes) and out.dtype == np.uint8, (name, out.shape)
    return out.tobytes()


# ---- which tensor gets which type ----------------------------------------------------
# outtype -> (default type of the 2-D weights, general.file_type = llama.cpp's
# LLAMA_FTYPE: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7,
# MOSTLY_Q4_K_M 15, MOSTLY_BF16 32; include/llama.h)
OUTTYPES = {"f32": ("F32", 0), "f16": ("F16", 1), "bf16": ("BF16", 32),
            "q8_0": ("Q8_0", 7), "q4_0": ("Q4_0", 2), "q4_k_m": ("Q4_K", 15)}
# Single-type files ("pure": every 2-D weight of one type, as llama-quantize
# --pure; only the fallback below applies), with their llama_ftype:
# MOSTLY_Q4_1 3, Q5_0 8, Q5_1 9, Q2_K 10, Q3_K_S 11, Q4_K_S 14, Q5_K_S 16,
# Q6_K 18, IQ4_NL 25, IQ4_XS 30.
PURE = {"f32": ("F32", 0), "f16": ("F16", 1), "bf16": ("BF16", 32), "q8_0": ("Q8_0", 7),
        "q4_0": ("Q4_0", 2), "q4_1": ("Q4_1", 3), "q5_0": ("Q5_0", 8), "q5_1": ("Q5_1", 9),
        "q2_k": ("Q2_K", 10), "q3_k": ("Q3_K", 11), "q4_k": ("Q4_K", 14), "q5_k": ("Q5_K", 16),
        "q6_k": ("Q6_K", 18), "iq4_nl": ("IQ4_NL", 25), "iq4_xs": ("IQ4_XS", 30)}

# llama-quantize's fallback when a row length (ne0) is not a multiple of the
# type's block (tensor_type_fallback); then F16 if it is not a multiple of 32
# either. Q2_K/Q3_K -> IQ4_NL is the older llama.cpp rule (current master
# takes Q4_0); kept so that existing test models do not change.
FALLBACK = {"Q2_K": "IQ4_NL", "Q3_K": "IQ4_NL", "IQ4_XS": "IQ4_NL", "Q4_K": "Q5_0",
            "Q5_K": "Q5_1", "Q6_K": "Q8_0"}


def use_more_bits(i_layer, n_layer):
    """llama-quantize's layers that get more bits in the *_K_M mixes: the
    first eighth, the last eighth, and every third layer in between."""
    return i_layer < n_layer // 8 or i_layer >= 7 * n_layer // 8 or (i_layer - n_layer // 8) % 3 == 2


def fallback(t, ne0):
    if ne0 % TYPES[t].block_elems:
        t = FALLBACK.get(t, t)
        if ne0 % TYPES[t].block_elems:
            t = "F16"
    return t


def tensor_type(outtype, name, n_layer, ne0, tied, pure=False):
    """The type of the 2-D weight `name` (llama.cpp's name, e.g.
    "blk.3.attn_v.weight") with rows of ne0 elements in a file of `outtype`,
    as llama-quantize's llama_tensor_get_type chooses it (llama.cpp
    src/llama-quant.cpp) for dense llama/qwen2 models:
      output.weight (token_embd.weight when tied): Q6_K for the quantized
        outtypes other than q8_0 (Q8_0 if ne0 is not a multiple of the
        default type's block);
      q4_k_m: attn_v and ffn_down of the layers use_more_bits picks Q6_K,
        every other weight (token_embd included) Q4_K;
      q4_0 / q8_0: every other weight of that type;
    then the fallback for rows that are not a multiple of the block.
    pure=True: every weight of the outtype's type (llama-quantize --pure).
    Norms and biases (1-D) are not asked for: they stay F32. The rules for
    MoE, Falcon and 70B models and the imatrix exceptions do not apply."""
    default = (PURE if pure else OUTTYPES)[outtype][0]
    if default in ("F32", "F16", "BF16"):
        return default        # llama-quantize changes nothing for float outtypes
    t = default
    if not pure:
        layer = int(name.split(".")[1]) if name.startswith("blk.") else -1
        if name == "output.weight" or (tied and name == "token_embd.weight"):
            if ne0 % TYPES[default].block_elems:
                t = "Q8_0"
            elif default != "Q8_0":
                t = "Q6_K"
        elif outtype == "q4_k_m" and name.endswith(("attn_v.weight", "ffn_down.weight")) \
                and use_more_bits(layer, n_layer):
            t = "Q6_K"
    return fallback(t, ne0)
