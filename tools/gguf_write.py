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
from atomic_write import atomic_write  # noqa: E402

# metadata value types
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
# tensor types (ggml numbering)
F32, F16, Q8_0, BF16 = 0, 1, 8, 30

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


def bf16_bits(a):
    """float32 array -> uint16 bfloat16 bits, round to nearest even."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return r


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
        if ttype == F32:
            data = a.astype("<f4").tobytes()
        elif ttype == F16:
            data = a.astype("<f2").tobytes()
        elif ttype == BF16:
            data = bf16_bits(a).astype("<u2").tobytes()
        elif ttype == Q8_0:
            data = q8_0_bytes(a)
        else:
            raise ValueError(ttype)
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


def q8_0_bytes(a):
    """Blocks of 32: f16 scale d = max|x|/127, then 32 int8 q = round(x/d)."""
    x = np.asarray(a, dtype=np.float32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    d = amax / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0.0)
    q = np.round(x * inv[:, None]).astype(np.int8)
    # vectorized: each 34-byte block is the f16 scale then the 32 int8 values
    out = np.empty((x.shape[0], 34), dtype=np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


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
_TYPE_SIZE = {F32: 4, F16: 2, BF16: 2}
_CHUNK = 1 << 22  # elements encoded at once: bounds the temporaries of bf16_bits


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
        called once, by write(), and encoded exactly as add_tensor would,
        a few million elements at a time."""
        if ttype not in _TYPE_SIZE:
            raise ValueError(f"deferred tensors are F32, F16 or BF16, not type {ttype}")
        shape = tuple(int(d) for d in shape)
        n = 1
        for d in shape:
            n *= d

        def chunks():
            a = make()
            if tuple(a.shape) != shape:
                raise ValueError(f"tensor {name}: made shape {tuple(a.shape)}, declared {shape}")
            flat = np.ascontiguousarray(a).reshape(-1)
            for i in range(0, max(flat.size, 1), _CHUNK):
                one = GGUFWriter()
                one.add_tensor(name, flat[i:i + _CHUNK], ttype)
                yield one.tensors[0][3]

        self.tensors.append((name, list(reversed(shape)), ttype,
                             _DeferredTensor(n * _TYPE_SIZE[ttype], chunks)))

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
