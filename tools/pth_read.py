"""Read PyTorch state dicts without torch: `torch.save` zip archives (.pth,
.pt, .bin) and safetensors files. Standard library + NumPy.

    sd = load("model_weights_100.pth")      # {key: Tensor}
    t = sd["mem"]; t.dtype, t.shape         # "F32" / "F16" / "BF16" / ..., tuple
    t.f32()                                 # float32 NumPy array (bf16 widened exactly)
    t.raw()                                 # stored values (bf16 as uint16 bits)

torch.save (PyTorch >= 1.6) writes a zip archive holding `<name>/data.pkl`,
a pickle whose tensors are `torch._utils._rebuild_tensor_v2(storage, offset,
size, stride, ...)` calls and whose storages are persistent ids
('storage', torch.<Type>Storage, key, location, numel) naming the entry
`<name>/data/<key>` (raw little-endian values). The pickle is read by an
Unpickler that resolves only those rebuild functions, the storage types and
collections.OrderedDict: any other global (os.system, builtins.eval, ...) is
refused before anything runs. Stored entries are memory-mapped, so a large
checkpoint is not read into memory at once; every entry's CRC is checked.

Not read: the legacy pre-1.6 format (a bare pickle stream; detected and
reported) and tensor subclasses or objects other than tensors and dicts.
safetensors files are read by tools/hf_files.py (the Hugging Face
converter's reader); their tensors offer dtype, shape and f32().
"""
import collections
import mmap
import os
import pickle
import struct
import zipfile
import zlib

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint this reader cannot or will not load (message says why)."""


# torch storage class -> (our dtype name, NumPy dtype of the stored values)
_STORAGES = {
    "DoubleStorage": ("F64", "<f8"), "FloatStorage": ("F32", "<f4"),
    "HalfStorage": ("F16", "<f2"), "BFloat16Storage": ("BF16", "<u2"),
    "LongStorage": ("I64", "<i8"), "IntStorage": ("I32", "<i4"),
    "ShortStorage": ("I16", "<i2"), "CharStorage": ("I8", "i1"),
    "ByteStorage": ("U8", "u1"), "BoolStorage": ("BOOL", "?"),
}
_MAX_ELEMENTS = 1 << 40

# The legacy torch.save stream starts with the pickled magic number 0x1950a86a20f9469cfc6c.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


class Tensor:
    """One tensor of a state dict: dtype name, shape and a lazy view of its
    stored values (a memory map or bytes)."""

    __slots__ = ("dtype", "shape", "_view")

    def __init__(self, dtype, shape, view):
        self.dtype, self.shape, self._view = dtype, tuple(shape), view

    def raw(self):
        """The values as stored, C-contiguous (BF16: uint16 bit patterns)."""
        return np.ascontiguousarray(self._view)

    def f32(self):
        a = self.raw()
        if self.dtype == "BF16":
            return (a.astype(np.uint32) << 16).view(np.float32)
        return a.astype(np.float32)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def __repr__(self):
        return f"Tensor({self.dtype}, {list(self.shape)})"


class _StorageType:
    """Stands for torch.<X>Storage inside the pickle; never callable."""

    def __init__(self, name):
        self.name = name


class _Storage:
    def __init__(self, dtype, values):
        self.dtype, self.values = dtype, values     # values: 1-D NumPy array


def _int(x, what):
    if type(x) is not int or x < 0:
        raise CheckpointError(f"bad {what} {x!r} in a tensor record")
    return x


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    """torch._utils._rebuild_tensor(_v2): a strided view of a storage, with
    bounds checked (a corrupt record gives an error, never a wild read)."""
    if not isinstance(storage, _Storage):
        raise CheckpointError("tensor record without a storage")
    if not isinstance(size, tuple) or not isinstance(stride, tuple) or len(size) != len(stride):
        raise CheckpointError(f"bad tensor size/stride {size!r} / {stride!r}")
    off = _int(storage_offset, "storage offset")
    size = tuple(_int(s, "size") for s in size)
    stride = tuple(_int(s, "stride") for s in stride)
    n = int(np.prod(size, dtype=object)) if size else 1
    if n > _MAX_ELEMENTS:
        raise CheckpointError(f"tensor of {n} elements (size {list(size)}) is implausibly large")
    vals = storage.values
    if n == 0:
        return Tensor(storage.dtype, size, np.zeros(size, vals.dtype))
    last = off + sum((s - 1) * st for s, st in zip(size, stride))
    if last >= len(vals):
        raise CheckpointError(f"tensor (offset {off}, size {list(size)}, stride {list(stride)}) "
                              f"reaches element {last} of a storage of {len(vals)}")
    view = np.lib.stride_tricks.as_strided(vals[off:], shape=size,
                                           strides=tuple(s * vals.itemsize for s in stride),
                                           writeable=False)
    return Tensor(storage.dtype, size, view)


def _rebuild_parameter(data, requires_grad, backward_hooks, *state):
    if not isinstance(data, Tensor):
        raise CheckpointError("parameter record without a tensor")
    return data


_SAFE_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}
_SAFE_GLOBALS.update({("torch", k): _StorageType(k) for k in _STORAGES})


class _Unpickler(pickle.Unpickler):
    def __init__(self, data, storage_of):
        import io
        super().__init__(io.BytesIO(data))
        self._storage_of = storage_of

    def find_class(self, module, name):
        f = _SAFE_GLOBALS.get((module, name))
        if f is None:
            raise CheckpointError(
                f"its pickle references {module}.{name}, which a tensor state dict never "
                f"contains; refusing to load it (a checkpoint may only name torch's tensor "
                f"rebuild functions, storage types and collections.OrderedDict)")
        return f

    def persistent_load(self, pid):
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str)):
            raise CheckpointError(f"unexpected persistent id {pid!r:.80} (not a torch storage)")
        return self._storage_of(pid[1].name, pid[2], _int(pid[4], "storage size"))


class _Zip:
    """A torch.save zip archive, its stored entries memory-mapped."""

    def __init__(self, path, f):
        self.path = path
        try:
            self.zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, NotImplementedError,
                RuntimeError, EOFError) as e:
            raise CheckpointError(f"not a readable zip archive (truncated or corrupt?): {e}")
        self.size = os.fstat(f.fileno()).st_size
        self.mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if self.size else None
        pkl = [i.filename for i in self.zf.infolist() if i.filename.endswith("data.pkl")
               and i.filename.count("/") == 1]
        if len(pkl) != 1:
            raise CheckpointError("zip archive without exactly one '<name>/data.pkl': "
                                  "not written by torch.save")
        self.prefix = pkl[0][:-len("data.pkl")]
        bo = self.prefix + "byteorder"
        if bo in self.zf.namelist() and self.read(bo).strip() not in (b"little", b""):
            raise CheckpointError("big-endian checkpoint (byteorder record) is not supported")
        self.storages = {}

    def read(self, name):
        try:
            return self.zf.read(name)
        except KeyError:
            raise CheckpointError(f"missing archive entry {name}")
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError, RuntimeError,
                NotImplementedError) as e:      # e.g. an unknown compression method or version
            raise CheckpointError(f"corrupt or unsupported archive entry {name}: {e}")

    def entry(self, name):
        """The bytes of an entry as a zero-copy memoryview when stored."""
        try:
            info = self.zf.getinfo(name)
        except KeyError:
            raise CheckpointError(f"missing archive entry {name}")
        if info.compress_type != zipfile.ZIP_STORED or self.mm is None:
            return memoryview(self.read(name))
        h = info.header_offset
        if h + 30 > self.size or self.mm[h:h + 4] != b"PK\x03\x04":
            raise CheckpointError(f"corrupt local header of {name}")
        n, m = struct.unpack("<HH", self.mm[h + 26:h + 30])
        start = h + 30 + n + m
        if start + info.file_size > self.size:
            raise CheckpointError(f"entry {name} runs past the end of the file (truncated?)")
        view = memoryview(self.mm)[start:start + info.file_size]
        if zlib.crc32(view) != info.CRC:
            raise CheckpointError(f"entry {name} fails its CRC check (corrupt file)")
        return view

    def storage(self, type_name, key, numel):
        if key not in self.storages:
            self.storages[key] = self.entry(self.prefix + "data/" + key)
        buf = self.storages[key]
        dtype, np_dtype = _STORAGES[type_name]
        item = np.dtype(np_dtype).itemsize
        if numel * item > len(buf):
            raise CheckpointError(f"storage {key}: {numel} x {item} bytes declared, "
                                  f"{len(buf)} stored (truncated?)")
        return _Storage(dtype, np.frombuffer(buf, dtype=np_dtype, count=numel))

    def state_dict(self):
        data = self.read(self.prefix + "data.pkl")
        try:
            obj = _Unpickler(data, self.storage).load()
        except CheckpointError:
            raise
        except (pickle.UnpicklingError, EOFError, TypeError, AttributeError, ValueError,
                IndexError, KeyError, RecursionError, struct.error) as e:
            raise CheckpointError(f"corrupt pickle in {self.prefix}data.pkl: "
                                  f"{type(e).__name__}: {e}")
        return obj


class _RefTensor(Tensor):
    """A safetensors tensor read through tools/hf_files.py."""

    __slots__ = ("_ref",)

    def __init__(self, ref):
        super().__init__(ref.dtype, ref.shape, None)
        self._ref = ref

    def raw(self):
        raise CheckpointError("raw() is not available for safetensors tensors")

    def f32(self):
        import hf_files
        try:
            return self._ref.float32()
        except hf_files.HFError as e:
            raise CheckpointError(str(e)) from None


def _safetensors(path):
    import hf_files          # the Hugging Face converter's checked safetensors reader
    try:
        sf = hf_files.SafetensorsFile(path)
    except hf_files.HFError as e:
        raise CheckpointError(str(e)) from None
    return collections.OrderedDict((k, _RefTensor(r)) for k, r in sf.tensors.items())


def _flatten(obj):
    """The {key: Tensor} dict of a loaded object: a state dict, or a dict
    wrapping one under 'state_dict' / 'model' / 'module' (training scripts)."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"the checkpoint holds a {type(obj).__name__}, not a state dict")
    if not obj:
        raise CheckpointError("the checkpoint is an empty state dict")
    if obj and all(isinstance(v, Tensor) for v in obj.values()):
        return obj
    for k in ("state_dict", "model_state_dict", "model", "module"):
        if isinstance(obj.get(k), dict):
            return _flatten(obj[k])
    bad = [k for k, v in obj.items() if not isinstance(v, Tensor)]
    raise CheckpointError(f"the checkpoint is a dict but not a state dict of tensors "
                          f"(non-tensor entries: {bad[:5]})")


def load(path):
    """{key: Tensor} of one checkpoint file (torch.save zip or safetensors)."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise CheckpointError(f"{path}: {e.strerror}")
    with f:
        head = f.read(16)
        f.seek(0)
        try:
            if head.startswith(b"PK"):
                return _flatten(_Zip(path, f).state_dict())
            if len(head) >= 9 and head[8:9] == b"{":
                return _safetensors(path)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from None
        if not head:
            raise CheckpointError(f"{path}: empty file")
        if head.startswith(_LEGACY_MAGIC):
            raise CheckpointError(
                f"{path}: PyTorch's legacy (pre-1.6, non-zip) torch.save format is not supported; "
                f"re-save it with a recent torch: torch.save(torch.load(OLD), NEW)")
        if head[:1] == b"\x80":
            raise CheckpointError(f"{path}: a bare pickle, not a torch.save zip archive "
                                  f"(legacy format?); not supported")
        raise CheckpointError(f"{path}: not a torch.save zip archive or a safetensors file")
