"""Reading a Hugging Face model directory's files with the standard library
and NumPy: JSON files, and safetensors weights (one model.safetensors, or
shards listed by model.safetensors.index.json).

safetensors layout: an 8-byte little-endian header length N, N bytes of JSON
({name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}),
then the raw little-endian tensor bytes; offsets count from the end of the
header. Every field is checked before use, so a damaged file gives an
HFError naming the file and the field, never a crash or a silent misread.
"""
import json
import math
import os
import struct

import numpy as np


class HFError(Exception):
    """A model directory that cannot be converted; the message says why."""


def load_json(path, what=None):
    """The parsed JSON of a file; HFError if missing or invalid."""
    what = what or os.path.basename(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise HFError(f"{path}: not found") from None
    except OSError as e:
        raise HFError(f"{path}: cannot read {what}: {e.strerror}") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise HFError(f"{path}: {what} is not UTF-8 ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise HFError(f"{path}: {what} is not valid JSON ({e.msg} at line {e.lineno}, "
                      f"column {e.colno})") from None


# Bytes per element of every dtype the safetensors format defines (so any
# valid file's offsets can be checked), and the ones we can read as floats.
_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
             "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
FLOAT_DTYPES = ("F32", "F16", "BF16")
_MAX_HEADER = 100 << 20  # the format's own limit


class TensorRef:
    """One tensor of a safetensors file, read on demand."""

    def __init__(self, sf, name, dtype, shape, begin, end):
        self.file, self.name, self.dtype, self.shape = sf, name, dtype, tuple(shape)
        self.begin, self.end = begin, end

    @property
    def nbytes(self):
        return self.end - self.begin

    def float32(self):
        """The tensor as a float32 NumPy array (a copy)."""
        if self.dtype not in FLOAT_DTYPES:
            raise HFError(f"{self.file.path}: tensor '{self.name}' has dtype {self.dtype}; "
                          f"only {', '.join(FLOAT_DTYPES)} can be converted")
        raw = self.file.raw(self.begin, self.end)
        if self.dtype == "BF16":
            a = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            a = raw.view("<f4" if self.dtype == "F32" else "<f2").astype(np.float32)
        return a.reshape(self.shape)


class SafetensorsFile:
    """The validated header of one .safetensors file; data is memory-mapped
    only when a tensor is read."""

    def __init__(self, path):
        self.path = path
        self._map = None
        try:
            size = os.path.getsize(path)
            with open(path, "rb") as f:
                head = f.read(8)
                if len(head) < 8:
                    raise HFError(f"{path}: {size} bytes, too short for a safetensors file "
                                  "(8-byte header length missing)")
                (n,) = struct.unpack("<Q", head)
                if n > _MAX_HEADER or n > size - 8:
                    raise HFError(f"{path}: header length {n} exceeds the file size ({size} bytes) "
                                  f"or the format's {_MAX_HEADER}-byte limit: truncated or not "
                                  "a safetensors file")
                header = f.read(n)
        except FileNotFoundError:
            raise HFError(f"{path}: weights file not found") from None
        except OSError as e:
            raise HFError(f"{path}: cannot read: {e.strerror}") from None
        try:
            meta = json.loads(header.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise HFError(f"{path}: safetensors header is not valid JSON ({e})") from None
        if not isinstance(meta, dict):
            raise HFError(f"{path}: safetensors header is not a JSON object")
        self.data_start = 8 + n
        self.data_size = size - self.data_start
        self.metadata = meta.pop("__metadata__", None) or {}
        self.tensors = {}
        for name, info in meta.items():
            self.tensors[name] = self._entry(name, info)
        # regions must not overlap (a sign of a corrupt or hand-edited header)
        spans = sorted((t.begin, t.end, t.name) for t in self.tensors.values() if t.end > t.begin)
        for (b0, e0, n0), (b1, _, n1) in zip(spans, spans[1:]):
            if b1 < e0:
                raise HFError(f"{path}: tensors '{n0}' and '{n1}' overlap in the data section")

    def _entry(self, name, info):
        where = f"{self.path}: tensor '{name}'"
        if not isinstance(info, dict):
            raise HFError(f"{where}: header entry is not an object")
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _ITEMSIZE:
            raise HFError(f"{where}: unknown dtype {dtype!r}")
        if (not isinstance(shape, list) or
                not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise HFError(f"{where}: bad shape {shape!r}")
        if (not isinstance(offs, list) or len(offs) != 2 or
                not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)):
            raise HFError(f"{where}: bad data_offsets {offs!r}")
        begin, end = offs
        if not 0 <= begin <= end:
            raise HFError(f"{where}: bad data_offsets [{begin}, {end}]")
        if end > self.data_size:
            raise HFError(f"{where}: data [{begin}, {end}) extends past the end of the data "
                          f"section ({self.data_size} bytes): the file is truncated")
        want = math.prod(shape) * _ITEMSIZE[dtype]
        if end - begin != want:
            raise HFError(f"{where}: data_offsets span {end - begin} bytes but {dtype} "
                          f"{shape} needs {want}")
        return TensorRef(self, name, dtype, shape, begin, end)

    def raw(self, begin, end):
        """Bytes [begin, end) of the data section as a uint8 array."""
        if end == begin:
            return np.zeros(0, np.uint8)
        if self._map is None:
            self._map = np.memmap(self.path, dtype=np.uint8, mode="r")
            if len(self._map) != self.data_start + self.data_size:
                raise HFError(f"{self.path}: the file changed size while being read")
        return np.array(self._map[self.data_start + begin:self.data_start + end])


def open_weights(model_dir):
    """{tensor name: TensorRef} over model.safetensors or the shards of
    model.safetensors.index.json."""
    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.isfile(index_path):
        return _open_sharded(model_dir, index_path)
    if os.path.isfile(single):
        return dict(SafetensorsFile(single).tensors)
    names = sorted(os.listdir(model_dir))
    if any(n.endswith((".bin", ".pt", ".pth")) for n in names):
        raise HFError(f"{model_dir}: only PyTorch pickle weights (.bin/.pt) found; this converter "
                      "reads safetensors only (model.safetensors or a sharded index)")
    shards = [n for n in names if n.endswith(".safetensors")]
    if shards:
        raise HFError(f"{model_dir}: {len(shards)} .safetensors file(s) but neither "
                      "model.safetensors nor model.safetensors.index.json")
    raise HFError(f"{model_dir}: no weights (model.safetensors or model.safetensors.index.json)")


def _open_sharded(model_dir, index_path):
    index = load_json(index_path)
    wmap = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(wmap, dict) or not wmap:
        raise HFError(f"{index_path}: no 'weight_map' object")
    files = {}
    for name, fname in wmap.items():
        if (not isinstance(fname, str) or not fname or os.path.basename(fname) != fname or
                fname in (".", "..")):
            raise HFError(f"{index_path}: tensor '{name}' maps to {fname!r}, not a file name "
                          "in the model directory")
        files.setdefault(fname, []).append(name)
    out = {}
    for fname in sorted(files):
        path = os.path.join(model_dir, fname)
        if not os.path.isfile(path):
            raise HFError(f"{index_path}: shard '{fname}' not found (listed for "
                          f"{len(files[fname])} tensors, e.g. '{files[fname][0]}')")
        sf = SafetensorsFile(path)
        for name in files[fname]:
            if name not in sf.tensors:
                raise HFError(f"{path}: tensor '{name}' listed in {os.path.basename(index_path)} "
                              "is not in this shard")
        for name, ref in sf.tensors.items():
            if wmap.get(name) != fname:
                raise HFError(f"{path}: tensor '{name}' is in this shard but the index "
                              f"{'does not list it' if name not in wmap else 'puts it in ' + repr(wmap[name])}")
            out[name] = ref
    return out
