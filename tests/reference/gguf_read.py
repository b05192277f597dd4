"""Small independent GGUF reader (standard library + NumPy).

Written from the GGUF specification, not from tools/gguf_write.py, so that a
round trip writer -> reader checks both. Supports GGUF versions 2 and 3
(little-endian), every metadata value type, and tensors of type F32, F16,
BF16 and Q8_0, which are returned as float32 NumPy arrays in PyTorch shape
order (the reverse of GGUF's ne[]).

    g = GGUFFile("model.gguf")
    g.version, g.alignment
    g.meta["llama.block_count"]          # Python value (numeric arrays: np.ndarray)
    g.meta_type["tokenizer.ggml.tokens"] # (value type, element type or None)
    g.tensors["blk.0.attn_q.weight"]     # TensorInfo(name, ne, type, offset)
    g.tensor("blk.0.attn_q.weight")      # float32 array, shape reversed(ne)

Command line: `gguf_read.py FILE` prints the metadata and tensor table.
"""
import mmap
import struct
import sys
from collections import namedtuple

import numpy as np

# metadata value types (GGUF spec)
VT_UINT8, VT_INT8, VT_UINT16, VT_INT16, VT_UINT32, VT_INT32, VT_FLOAT32, VT_BOOL, \
    VT_STRING, VT_ARRAY, VT_UINT64, VT_INT64, VT_FLOAT64 = range(13)
VT_NAMES = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"]
_VT_DTYPE = {VT_UINT8: "<u1", VT_INT8: "<i1", VT_UINT16: "<u2", VT_INT16: "<i2",
             VT_UINT32: "<u4", VT_INT32: "<i4", VT_FLOAT32: "<f4", VT_BOOL: "<u1",
             VT_UINT64: "<u8", VT_INT64: "<i8", VT_FLOAT64: "<f8"}

# tensor types (ggml numbering): (name, block elements, block bytes)
GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30
TENSOR_TYPES = {GGML_F32: ("F32", 1, 4), GGML_F16: ("F16", 1, 2),
                GGML_Q8_0: ("Q8_0", 32, 34), GGML_BF16: ("BF16", 1, 2)}
# The other GGML block types, dequantized by quants_ref.py (written from the
# block layouts, separately from this reader's own Q8_0 decoding above).
try:
    import quants_ref as _qr
    for _t in _qr.TYPES.values():
        TENSOR_TYPES.setdefault(_t.ggml_id, (_t.name, _t.block_elems, _t.block_bytes))
except ImportError:  # pragma: no cover (quants_ref.py sits next to this file)
    _qr = None

TensorInfo = namedtuple("TensorInfo", "name ne type offset")


class GGUFError(ValueError):
    pass


class GGUFFile:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            try:
                self.buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError:  # empty file
                raise GGUFError("file is empty")
        self.pos = 0
        if self._take(4) != b"GGUF":
            raise GGUFError("bad magic")
        self.version = self._u32()
        if self.version not in (2, 3):
            raise GGUFError(f"unsupported GGUF version {self.version}")
        n_tensors = self._u64()
        n_kv = self._u64()
        self.meta, self.meta_type = {}, {}
        for _ in range(n_kv):
            key = self._string()
            vtype = self._u32()
            if key in self.meta:
                raise GGUFError(f"duplicate key {key}")
            val, elem = self._value(vtype)
            self.meta[key] = val
            self.meta_type[key] = (vtype, elem)
        self.alignment = int(self.meta.get("general.alignment", 32))
        if self.alignment <= 0 or self.alignment & (self.alignment - 1):
            raise GGUFError("general.alignment must be a power of two")
        self.tensors = {}
        self.tensor_order = []
        for _ in range(n_tensors):
            name = self._string()
            n_dims = self._u32()
            if not 1 <= n_dims <= 4:
                raise GGUFError(f"{name}: n_dims {n_dims}")
            ne = [self._u64() for _ in range(n_dims)]
            ttype = self._u32()
            offset = self._u64()
            if ttype not in TENSOR_TYPES:
                raise GGUFError(f"{name}: unsupported tensor type {ttype}")
            if offset % self.alignment:
                raise GGUFError(f"{name}: misaligned offset")
            if name in self.tensors:
                raise GGUFError(f"duplicate tensor {name}")
            self.tensors[name] = TensorInfo(name, ne, ttype, offset)
            self.tensor_order.append(name)
        self.data_start = self.pos + (-self.pos) % self.alignment
        for t in self.tensors.values():
            if self.data_start + t.offset + self.nbytes(t) > len(self.buf):
                raise GGUFError(f"{t.name}: data past end of file")

    # ---- primitive readers ------------------------------------------------
    def _take(self, n):
        if self.pos + n > len(self.buf):
            raise GGUFError("unexpected end of file")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def _u32(self):
        return struct.unpack("<I", self._take(4))[0]

    def _u64(self):
        return struct.unpack("<Q", self._take(8))[0]

    def _string(self):
        n = self._u64()
        return self._take(n).decode("utf-8")

    def _value(self, vtype):
        if vtype == VT_STRING:
            return self._string(), None
        if vtype == VT_ARRAY:
            elem = self._u32()
            n = self._u64()
            if elem == VT_STRING:
                return [self._string() for _ in range(n)], elem
            if elem == VT_ARRAY:
                return [self._value(VT_ARRAY)[0] for _ in range(n)], elem
            if elem not in _VT_DTYPE:
                raise GGUFError(f"bad array element type {elem}")
            dt = np.dtype(_VT_DTYPE[elem])
            a = np.frombuffer(self._take(n * dt.itemsize), dtype=dt).copy()
            if elem == VT_BOOL:
                a = a.astype(bool)
            return a, elem
        if vtype not in _VT_DTYPE:
            raise GGUFError(f"bad value type {vtype}")
        dt = np.dtype(_VT_DTYPE[vtype])
        v = np.frombuffer(self._take(dt.itemsize), dtype=dt)[0]
        if vtype == VT_BOOL:
            return bool(v), None
        if vtype in (VT_FLOAT32, VT_FLOAT64):
            return float(v), None
        return int(v), None

    # ---- tensors ------------------------------------------------------------
    @staticmethod
    def nbytes(t):
        _, blk, bb = TENSOR_TYPES[t.type]
        n = int(np.prod(t.ne, dtype=np.int64))
        if t.ne[0] % blk:
            raise GGUFError(f"{t.name}: row length {t.ne[0]} not a multiple of {blk}")
        return n // blk * bb

    def raw(self, name):
        t = self.tensors[name]
        start = self.data_start + t.offset
        return np.frombuffer(self.buf, dtype=np.uint8, count=self.nbytes(t), offset=start)

    def tensor(self, name):
        """Dequantized float32 array in PyTorch order (shape = reversed ne)."""
        t = self.tensors[name]
        raw = self.raw(name)
        shape = tuple(reversed(t.ne))
        if t.type == GGML_F32:
            a = raw.view("<f4").astype(np.float32)
        elif t.type == GGML_F16:
            a = raw.view("<f2").astype(np.float32)
        elif t.type == GGML_BF16:
            a = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
        elif t.type == GGML_Q8_0:
            blocks = raw.reshape(-1, 34)
            d = blocks[:, :2].copy().view("<f2").astype(np.float32)   # [nb, 1]
            q = blocks[:, 2:].copy().view(np.int8).astype(np.float32)  # [nb, 32]
            a = (d * q).reshape(-1)
        elif _qr is not None and t.type in TENSOR_TYPES:
            a = _qr.dequantize(TENSOR_TYPES[t.type][0], raw)
        else:  # pragma: no cover (rejected at open)
            raise GGUFError(t.type)
        return a.reshape(shape)


def _summary(v):
    if isinstance(v, np.ndarray):
        return f"[array of {len(v)} {v.dtype}] {v[:6].tolist()}{'...' if len(v) > 6 else ''}"
    if isinstance(v, list):
        return f"[array of {len(v)}] {v[:6]!r}{'...' if len(v) > 6 else ''}"
    return repr(v)


def main(argv):
    for path in argv[1:]:
        g = GGUFFile(path)
        print(f"{path}: GGUF v{g.version}, {len(g.meta)} keys, {len(g.tensors)} tensors, "
              f"alignment {g.alignment}")
        for k, v in g.meta.items():
            vt, et = g.meta_type[k]
            ty = VT_NAMES[vt] + (f"[{VT_NAMES[et]}]" if et is not None else "")
            print(f"  {k} ({ty}) = {_summary(v)}")
        total = 0
        for name in g.tensor_order:
            t = g.tensors[name]
            n = int(np.prod(t.ne))
            total += n
            print(f"  {name:32s} {TENSOR_TYPES[t.type][0]:5s} ne={t.ne}")
        print(f"  total elements {total}")


if __name__ == "__main__":
    main(sys.argv)
