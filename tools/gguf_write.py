"""Minimal GGUF v3 writer (standard library + NumPy), used by libhmt's tools
and test-data generators. Follows the GGUF specification: little-endian
header, metadata key/values, tensor infos, then tensor data aligned to
general.alignment (default 32). write() is atomic (tools/atomic_write.py):
the old file stays whole until the new one is complete."""
import os
import struct
import sys

import numpy as np

if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_quants as gq  # noqa: E402
from atomic_write import atomic_write  # noqa: E402
from gguf_quants import bf16_bits  # noqa: E402,F401  (re-exported)

# metadata value types
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
# tensor types (ggml numbering); add_tensor takes any type of gguf_quants.TYPES
F32, F16, Q4_0, Q8_0, Q4_K, Q6_K, BF16 = 0, 1, 2, 8, 12, 14, 30

_SCALAR = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
           FLOAT32: "<f", BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}


def _str(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def _infer_type(v):
    if isinstance(v, bool):
        return BOOL
    if isinstance(v, int):
        return UINT32 if 0 <= v < 2**32 else INT64
    if isinstance(v, float):
        return FLOAT32
    if isinstance(v, (str, bytes)):
        return STRING
    if isinstance(v, (list, tuple, np.ndarray)):
        return ARRAY
    raise TypeError(f"cannot infer GGUF type of {v!r}")


def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


class GGUFWriter:
    def __init__(self, alignment=32):
        self.kv = []        # (key, type, payload bytes)
        self.tensors = []   # (name, shape ne[], type, data bytes)
        self.alignment = alignment
        if alignment != 32:
            self.add("general.alignment", alignment, UINT32)

    def add(self, key, value, vtype=None, elem_type=None):
        vtype = _infer_type(value) if vtype is None else vtype
        self.kv.append((key, vtype, self._value(value, vtype, elem_type)))

    def _value(self, v, vtype, elem_type=None):
        if vtype == STRING:
            return _str(v)
        if vtype == ARRAY:
            items = list(v)
            if elem_type is None:
                elem_type = _infer_type(items[0]) if items else UINT32
                if elem_type == UINT32 and any(isinstance(x, int) and x < 0 for x in items):
                    elem_type = INT32
            out = struct.pack("<IQ", elem_type, len(items))
            if elem_type in _SCALAR and elem_type != BOOL:
                dt = np.dtype(_SCALAR[elem_type])
                return out + np.asarray(items, dtype=dt).tobytes()
            return out + b"".join(self._value(x, elem_type) for x in items)
        return struct.pack(_SCALAR[vtype], v)

    def add_tensor(self, name, array, ttype=F32):
        """array: NumPy array in C order, shape (..., ne1, ne0) as in PyTorch;
        stored with ne reversed as GGUF/ggml expects."""
        a = np.asarray(array, dtype=np.float32)
        ne = list(reversed(a.shape))
        if ttype not in gq.BY_ID:
            raise ValueError(f"tensor {name}: unknown ggml type {ttype}")
        data = gq.quantize(gq.BY_ID[ttype].name, a)   # rows along the last axis
        self.tensors.append((name, ne, ttype, data))

    def tobytes(self, version=3):
        out = bytearray(self._header(version))
        for _, _, _, data in self.tensors:
            out += data
            out += b"\0" * ((-len(out)) % self.alignment)
        return bytes(out)

    def _header(self, version=3):
        out = bytearray(b"GGUF")
        out += struct.pack("<IQQ", version, len(self.tensors), len(self.kv))
        for key, vtype, payload in self.kv:
            out += _str(key) + struct.pack("<I", vtype) + payload
        offset = 0
        for name, ne, ttype, data in self.tensors:
            out += _str(name) + struct.pack("<I", len(ne))
            out += b"".join(struct.pack("<Q", n) for n in ne)
            out += struct.pack("<IQ", ttype, offset)
            offset += len(data)
            offset += (-offset) % self.alignment
        out += b"\0" * ((-len(out)) % self.alignment)
        return bytes(out)

    def write(self, path, version=3):
        """Same bytes as tobytes(), streamed tensor by tensor (large models),
        written atomically."""
        with atomic_write(path) as f:
            n = f.write(self._header(version))
            for _, _, _, data in self.tensors:
                n += f.write(data)
                pad = (-n) % self.alignment
                n += f.write(b"\0" * pad)


# llama.cpp token types (tokenizer.ggml.token_type)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def spm_vocab(sp):
    """A SentencePiece processor's pieces, scores and llama.cpp token types,
    as llama.cpp's converter writes them into tokenizer.ggml.*."""
    toks, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        toks.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        t = NORMAL
        if sp.is_unknown(i):
            t = UNKNOWN
        elif sp.is_control(i):
            t = CONTROL
        elif sp.is_unused(i):
            t = UNUSED
        elif sp.is_byte(i):
            t = BYTE
        types.append(t)
    return toks, scores, types


# ---------------------------------------------------------------------------
# Writing large models one tensor at a time
# ---------------------------------------------------------------------------
_CHUNK = 1 << 22  # elements encoded at once (whole rows): bounds the temporaries


def tensor_nbytes(ttype, shape):
    """Bytes of a tensor of ggml type ttype and PyTorch-order shape."""
    rows = 1
    for d in shape[:-1]:
        rows *= d
    return rows * gq.row_bytes(gq.BY_ID[ttype].name, shape[-1]) if shape else gq.BY_ID[ttype].block_bytes


class _DeferredTensor:
    """Tensor bytes made at write time by chunks(); the size is known before."""

    def __init__(self, nbytes, chunks):
        self.nbytes, self.chunks = nbytes, chunks

    def __len__(self):
        return self.nbytes


class StreamingGGUFWriter(GGUFWriter):
    """A GGUFWriter whose tensors can be produced while the file is being
    written (add_tensor_deferred), so that converting a model holds one
    tensor in memory, not all of them. Use write(); tobytes() does not take
    deferred tensors."""

    def add_tensor_deferred(self, name, shape, ttype, make):
        """make() returns the float32 array of `shape` (PyTorch order); it is
        called once, by write(), and encoded exactly as add_tensor would
        (any type of gguf_quants.TYPES), whole rows a few million elements at
        a time."""
        if ttype not in gq.BY_ID:
            raise ValueError(f"tensor {name}: unknown ggml type {ttype}")
        shape = tuple(int(d) for d in shape)
        nbytes = tensor_nbytes(ttype, shape)   # raises if rows do not fit the blocks

        def chunks():
            a = make()
            if tuple(a.shape) != shape:
                raise ValueError(f"tensor {name}: made shape {tuple(a.shape)}, declared {shape}")
            ne0 = shape[-1] if shape else 1
            rows = np.ascontiguousarray(a).reshape(-1, ne0)
            step = max(1, _CHUNK // max(ne0, 1))
            for i in range(0, max(rows.shape[0], 1), step):
                yield gq.quantize(gq.BY_ID[ttype].name, rows[i:i + step])

        self.tensors.append((name, list(reversed(shape)), ttype, _DeferredTensor(nbytes, chunks)))

    def write(self, path, version=3):
        with atomic_write(path) as f:
            n = f.write(self._header(version))
            for name, _, _, data in self.tensors:
                if isinstance(data, _DeferredTensor):
                    size = 0
                    for part in data.chunks():
                        size += f.write(part)
                    if size != len(data):
                        raise ValueError(f"tensor {name}: {size} bytes, header says {len(data)}")
                    n += size
                else:
                    n += f.write(data)
                n += f.write(b"\0" * ((-n) % self.alignment))
