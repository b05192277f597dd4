"""Python numbers into C arguments, checked (docs/PYTHON.md, "Types").

ctypes converts a Python int to a C integer by silently dropping the high
bits (2**32 + 5 becomes 5) and float() accepts strings and bools, so every
number the classes pass to C goes through these helpers first:

- an integer argument takes an int or a NumPy integer (anything with
  __index__); bool, float, str and the rest raise TypeError;
- a value outside the C type's range raises HmtError (E_TOKEN for token
  ids, E_INVAL otherwise), as the library does for its own range checks;
- a float argument takes int, float or NumPy numbers; bool and str raise
  TypeError. Non-finite floats go through: the library decides where they
  are refused (embeddings, keys, NaN/+inf logits).
"""
import array
import numbers
import operator
from ctypes import POINTER, c_float, c_int32, cast

from ._capi import HmtError, Status

INT32 = (-2 ** 31, 2 ** 31 - 1)
INT64 = (-2 ** 63, 2 ** 63 - 1)
UINT64 = (0, 2 ** 64 - 1)
SIZE = (0, 2 ** 63 - 1)  # size_t, bounded to what ctypes and int64 share

np = None


def set_numpy(module):
    global np
    np = module


def _is_bool(x):
    # NumPy's bool_ too, also when the binding runs without NumPy (HMT_NO_NUMPY)
    return isinstance(x, bool) or getattr(getattr(x, "dtype", None), "kind", None) == "b"


def _type_error(what, x):
    return TypeError(f"{what} must be an integer, not {type(x).__name__}")


def integer(x, what, lo, hi, fn, code=Status.E_INVAL):
    """x as a Python int within [lo, hi]."""
    if _is_bool(x) or isinstance(x, (float, str, bytes)):
        raise _type_error(what, x)
    try:
        v = operator.index(x)
    except TypeError:
        raise _type_error(what, x) from None
    if not lo <= v <= hi:
        raise HmtError(code, fn, f"{what} {v} is outside [{lo}, {hi}]")
    return v


def int32(x, what, fn, lo=INT32[0], code=Status.E_INVAL):
    return integer(x, what, lo, INT32[1], fn, code)


def int64(x, what, fn, lo=INT64[0]):
    return integer(x, what, lo, INT64[1], fn)


def real(x, what, fn=None):
    """x as a Python float (int, float or a NumPy number; not bool/str)."""
    if _is_bool(x) or not isinstance(x, numbers.Real):
        raise TypeError(f"{what} must be a real number, not {type(x).__name__}")
    return float(x)


def int32_seq(seq, what, fn, code=Status.E_INVAL, lo=INT32[0]):
    """(pointer, n, keepalive) for a sequence of int32 (token ids: code
    E_TOKEN and lo 0 is left to the library, which names the vocabulary)."""
    if seq is None:
        return None, 0, None
    if isinstance(seq, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of integers, not {type(seq).__name__}")
    if isinstance(seq, array.array) and seq.typecode in "il" and seq.itemsize == 4:
        n = len(seq)
        if n == 0:
            return None, 0, None
        buf = (c_int32 * n).from_buffer(seq)
        return cast(buf, POINTER(c_int32)), n, buf
    if np is not None:
        a = np.asarray(seq)
        if a.size == 0:
            return None, 0, None
        if a.dtype.kind == "O":  # Python ints beyond int64, or mixed objects
            a = np.array([integer(x, what, lo, INT32[1], fn, code) for x in a.reshape(-1)],
                         dtype=np.int32)
        elif a.dtype.kind not in "iu":
            raise TypeError(f"{what} must hold integers, not {a.dtype}")
        else:
            a = a.reshape(-1)
            bad = (a < lo) | (a > INT32[1])
            if bad.any():
                i = int(np.argmax(bad))
                raise HmtError(code, fn, f"{what} {int(a[i])} (at {i}) is outside "
                               f"[{lo}, {INT32[1]}]")
            a = np.ascontiguousarray(a, dtype=np.int32)
        return a.ctypes.data_as(POINTER(c_int32)), a.size, a
    vals = [integer(x, what, lo, INT32[1], fn, code) for x in seq]
    n = len(vals)
    if n == 0:
        return None, 0, None
    buf = (c_int32 * n)(*vals)
    return cast(buf, POINTER(c_int32)), n, buf


def float_seq(seq, what="values"):
    """(pointer, n_floats, keepalive) for a flat or nested sequence of floats."""
    if isinstance(seq, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of numbers, not {type(seq).__name__}")
    if np is not None:
        a = np.asarray(seq)
        if a.size and a.dtype.kind not in "fiu":
            raise TypeError(f"{what} must hold real numbers, not {a.dtype}")
        a = np.ascontiguousarray(a, dtype=np.float32).reshape(-1)
        return a.ctypes.data_as(POINTER(c_float)), a.size, a
    if isinstance(seq, array.array) and seq.typecode == "f":
        n = len(seq)
        buf = (c_float * n).from_buffer(seq) if n else (c_float * 0)()
        return cast(buf, POINTER(c_float)), n, buf
    flat = []
    for x in seq:
        if isinstance(x, (list, tuple, array.array)):
            flat.extend(real(v, what) for v in x)
        else:
            flat.append(real(x, what))
    buf = (c_float * len(flat))(*flat)
    return cast(buf, POINTER(c_float)), len(flat), buf
