"""Pythonic classes over the ctypes table in _capi.

Lifetime rules (docs/PYTHON.md):
- every object has close() (idempotent), is a context manager, and frees its
  handle from a guarded __del__ when it is garbage-collected; a closed object
  refuses every use (HmtError E_MISUSE);
- libhmt itself keeps what a handle needs: contexts, streams and adapters
  retain their model, streams their adapter, kNN processors their datastore,
  samplers their processors. So the Python objects keep no parent alive, and
  any order of close()/collection is safe; close() with live NumPy views
  defers the free to the last view (_Lent). The Python side of a PyProc (its
  callables) lives exactly as long as the C processor: the C library's
  free_data drops it (_PY_PROCS);
- numbers are type- and range-checked before they reach ctypes (_args), and
  long calls turn Ctrl-C into KeyboardInterrupt (_interrupt);
- Python callables handed to C (abort, recall, log) are kept alive by the
  object that registered them; an exception raised inside one is caught, stops
  the computation where C allows it (abort), and is re-raised from the call
  that ran the callback.
"""
import array
import ctypes
import itertools
import os
import sys
import threading
import types
import weakref
from ctypes import sizeof as ctypes_sizeof
from ctypes import (POINTER, byref, c_char, c_double, c_float, c_int, c_int32, c_int64, c_size_t,
                    c_uint8, cast, create_string_buffer, string_at)

from . import _args, _capi, _interrupt
from ._capi import (AUTO, COMPUTE_BF16, COMPUTE_F32, DETOKENIZE_SPECIAL, OUT_FFN_INPUT,
                    OUT_HIDDEN, OUT_LOGITS, TOKENIZE_ADD_BOS, TOKENIZE_SPECIAL, ComputeType, KvType,
                    DittoMode, DittoRenorm, DittoScope, HmtError, KnnDtype, KnnLambdaMode,
                    LogLevel, Mode, Param, Status, hmt_abort_fn, hmt_adapter_p, hmt_ctx_p,
                    hmt_knn_builder_p, hmt_knn_p, hmt_knn_progress_fn, hmt_log_fn, hmt_model_p,
                    hmt_params_p, hmt_proc_accept_fn, hmt_proc_apply_fn, hmt_proc_free_data_fn,
                    hmt_proc_i, hmt_proc_p, hmt_proc_prepare_fn, hmt_proc_reset_fn,
                    hmt_recall_fn, hmt_sampler_p, hmt_stream_p, hmt_threadpool_p, lib)

np = None
if not os.environ.get("HMT_NO_NUMPY"):
    try:
        import numpy as np
    except ImportError:  # NumPy is optional
        np = None

HAVE_NUMPY = np is not None
_args.set_numpy(np)


# ---------------------------------------------------------------------------
# Argument and result conversion
# ---------------------------------------------------------------------------
def _int32_arg(seq, what="values", fn=None, code=Status.E_INVAL):
    """(pointer, n, keepalive) for a sequence of int32 (token ids, positions),
    type- and range-checked (_args)."""
    return _args.int32_seq(seq, what, fn, code)


def _tokens_arg(seq, fn):
    return _args.int32_seq(seq, "token id", fn, Status.E_TOKEN)


def _float_arg(seq, what="values"):
    """(pointer, n_floats, keepalive) for a flat or nested sequence of floats."""
    return _args.float_seq(seq, what)


def _float_vec(ptr, n, owner, copy):
    """n floats at ptr as an ndarray (a read-only view that keeps owner alive
    unless copy) or, without NumPy, an array.array('f') copy. None for NULL."""
    if not ptr:
        return None
    carr = cast(ptr, POINTER(c_float * n)).contents
    if np is None:
        out = array.array("f")
        out.frombytes(bytes(carr))
        return out
    if copy:
        return np.frombuffer(carr, dtype=np.float32).copy()
    carr._hmt_owner = owner  # the view -> ctypes array -> the handle's Python object
    carr._hmt_lent = owner._lent_token()  # ... and the C handle, even after close()
    view = np.frombuffer(carr, dtype=np.float32)
    view.flags.writeable = False
    return view


def _vec_list(values, dtype):
    if np is not None:
        return np.array(values, dtype=dtype)
    return array.array("f" if dtype == "f4" else "q", values)


def _path(p):
    return os.fsencode(p)


def _key(key):
    if isinstance(key, str):
        try:
            return Param[key.upper()]
        except KeyError:
            raise HmtError(Status.E_INVAL, "params", f"unknown parameter {key!r}") from None
    return _args.int32(key, "parameter key", "params")


# keys whose values are a named enum: a name ("rmt", "bf16") is taken too
_ENUM_OF = {Param.MODE: Mode, Param.COMPUTE_TYPE: ComputeType, Param.KV_TYPE: KvType,
            Param.DITTO_MODE: DittoMode, Param.DITTO_SCOPE: DittoScope,
            Param.DITTO_RENORM: DittoRenorm, Param.KNN_LAMBDA_MODE: KnnLambdaMode}


def _value(key, value):
    if isinstance(value, str):
        if value.lower() == "auto":
            return AUTO  # refused by set() for a key without HMT_AUTO
        enum_ = _ENUM_OF.get(key)
        if enum_ is not None:
            try:
                return enum_[value.upper()]
            except KeyError:
                raise HmtError(Status.E_INVAL, "params",
                               f"unknown {_name(key)} value {value!r}") from None
    return value


def _number(x, is_int):
    return int(x) if is_int else x


# ---------------------------------------------------------------------------
# Module-level functions
# ---------------------------------------------------------------------------
def version():
    """Release version of the loaded library, as a tuple (major, minor, patch)."""
    n = lib.hmt_version_number()
    return (n // 10000, n // 100 % 100, n % 100)


def version_string():
    return lib.hmt_version_string().decode()


def abi_version():
    return lib.hmt_abi_version()


def param_bounds(key):
    """(lo, hi, default, is_int) of a parameter key (Param, int or name). lo
    is AUTO (-1) for the keys that take AUTO (the values between it and the
    smallest real one are refused)."""
    lo, hi, de, ii = c_double(), c_double(), c_double(), c_int()
    lib.hmt_param_bounds(_key(key), byref(lo), byref(hi), byref(de), byref(ii))
    is_int = bool(ii.value)
    return (_number(lo.value, is_int), _number(hi.value, is_int), _number(de.value, is_int), is_int)


def param_name(key):
    """The key's name as the library's messages print it ("top_k"), or None
    for a key this library does not know."""
    name = lib.hmt_param_name(_key(key))
    return None if name is None else name.decode()


_log_cb = None  # the CFUNCTYPE object C holds (module global: hmt_log_set is global)


def _unraisable(exc, where, obj=None):
    try:
        sys.unraisablehook(types.SimpleNamespace(exc_type=type(exc), exc_value=exc,
                                                 exc_traceback=exc.__traceback__,
                                                 err_msg=f"Exception ignored in {where}", object=obj))
    except Exception:
        pass


def set_log_callback(fn):
    """Route libhmt's log lines to fn(level: LogLevel, message: str); None
    discards them (the default). Global: set it before starting threads. An
    exception raised by fn is reported through sys.unraisablehook."""
    global _log_cb
    if fn is None:
        lib.hmt_log_set(hmt_log_fn(), None)
        _log_cb = None
        return

    def tramp(level, msg, _ud):
        try:
            try:
                level = LogLevel(level)
            except ValueError:
                pass
            fn(level, (msg or b"").decode("utf-8", "replace"))
        except BaseException as e:  # never propagate into C
            _unraisable(e, "hmt log callback", fn)

    cb = hmt_log_fn(tramp)
    lib.hmt_log_set(cb, None)
    _log_cb = cb


# ---------------------------------------------------------------------------
# Handles
# ---------------------------------------------------------------------------
class _Lent:
    """Held by every NumPy view of a handle's memory. close() hands the C
    handle to it, so the memory is freed when the last view is gone (at once
    when there is none) and a view never reads freed memory."""

    __slots__ = ("h", "free_fn")

    def __init__(self):
        self.h = self.free_fn = None

    def __del__(self):
        h, self.h = self.h, None
        if h:
            try:
                self.free_fn(h)
            except Exception:  # interpreter shutdown
                pass


class _Handle:
    """Owns one C handle. Subclasses set _free_fn (kept on the class so that
    __del__ still works while the interpreter tears modules down)."""

    _h = None
    _lent = None
    _free_fn = None
    _kind = "handle"

    def close(self):
        """Close the object (idempotent): any later use raises
        HmtError(E_MISUSE). The C object is freed now, or, while NumPy views
        of its memory are alive, when the last of them is gone."""
        h, self._h = self._h, None
        if not h:
            return
        lent, self._lent = self._lent, None
        if lent is None:
            self._free_fn(h)
        else:  # freed as this function drops its reference, unless views hold it
            lent.h, lent.free_fn = h, self._free_fn

    def _lent_token(self):
        if self._lent is None:
            self._lent = _Lent()
        return self._lent

    @property
    def closed(self):
        return not self._h

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if self._h and self._free_fn is not None:
                self.close()
        except Exception:
            pass

    @property
    def _handle(self):
        h = self._h
        if not h:
            raise HmtError(Status.E_MISUSE, type(self).__name__, f"the {self._kind} is closed")
        return h


def _with_params(params, kwargs):
    """(params pointer or None, temporary Params to close). The object gets
    exactly the keys set on params plus kwargs: the library refuses a key
    the object does not read, so nothing else is ever added here."""
    if not kwargs:
        return (params._handle if params is not None else None), None
    tmp = params.copy() if params is not None else Params()
    try:
        for k, v in kwargs.items():
            tmp.set(k, v)
    except BaseException:
        tmp.close()
        raise
    return tmp._handle, tmp


def _create(ptr_type, fn, params, kwargs, *args):
    """New handle from an hmt_*_create / _load fn(&out, *args, params), with
    kwargs applied to a temporary copy of params."""
    p, tmp = _with_params(params, kwargs)
    try:
        out = ptr_type()
        fn(byref(out), *args, p)
    finally:
        if tmp is not None:
            tmp.close()
    return out


class Params(_Handle):
    """An hmt_params object: typed, enum-keyed options. Keys are Param
    members, their int values, or their names ("n_ctx", "temperature");
    hmt.Params(n_ctx=256, n_threads=2). Values are typed by the key; AUTO (or
    "auto") for the keys that take it, enum names for enum keys ("rmt").

    Only keys that are set count: an object created from a Params refuses
    (HmtError E_INVAL naming the key) a set key it does not read, e.g. top_k
    for a Context. Keys never set keep their defaults and are never refused."""

    _free_fn = staticmethod(lib.hmt_params_free)
    _kind = "params object"

    def __init__(self, **kwargs):
        out = hmt_params_p()
        lib.hmt_params_create(byref(out))
        self._h = out
        for k, v in kwargs.items():
            self.set(k, v)

    def set(self, key, value):
        """Set a key. Integer keys take an int (or bool, for the 0/1 flags);
        float keys an int or float. Another type, or a value outside the
        key's bounds (NaN and inf included), raises HmtError(E_INVAL)."""
        key = _key(key)
        value = _value(key, value)
        is_int = param_bounds(key)[3]
        fn = "hmt_params_set_int" if is_int else "hmt_params_set_float"
        try:
            if is_int:
                v = _args.int64(int(value) if _args._is_bool(value) else value,
                                f"parameter {_name(key)}", fn)
            else:
                v = _args.real(value, f"parameter {_name(key)}")
        except TypeError as e:
            raise HmtError(Status.E_INVAL, fn, str(e)) from None
        if is_int:
            lib.hmt_params_set_int(self._handle, key, v)
        else:
            lib.hmt_params_set_float(self._handle, key, v)
        return self

    def get(self, key):
        key = _key(key)
        out = c_double()
        lib.hmt_params_get(self._handle, key, byref(out))
        return _number(out.value, param_bounds(key)[3])

    __setitem__ = set
    __getitem__ = get

    def copy(self):
        """A new Params with the same values and the same keys set
        (hmt_params_copy)."""
        out = hmt_params_p()
        lib.hmt_params_copy(byref(out), self._handle)
        p = Params.__new__(Params)
        p._h = out
        return p

    def as_dict(self):
        """{name: value} of every key (set or default) this library knows."""
        out = {}
        for key in Param:
            try:
                out[key.name.lower()] = self.get(key)
            except HmtError:
                pass
        return out


def _name(key):
    try:
        return Param(key).name.lower()
    except ValueError:
        name = lib.hmt_param_name(int(key))
        return name.decode() if name else str(key)


class Model(_Handle):
    """A loaded GGUF model (immutable; shareable between threads)."""

    _free_fn = staticmethod(lib.hmt_model_free)
    _kind = "model"

    def __init__(self, path, params=None, **kwargs):
        self._h = _create(hmt_model_p, lib.hmt_model_load, params, kwargs, _path(path))
        self.path = os.fspath(path)

    @classmethod
    def load(cls, path, params=None, **kwargs):
        return cls(path, params, **kwargs)

    def __repr__(self):
        if self.closed:
            return "<hmt.Model closed>"
        return (f"<hmt.Model {self.arch} {self.path!r} vocab={self.n_vocab} embd={self.n_embd} "
                f"layers={self.n_layer}>")

    n_vocab = property(lambda self: lib.hmt_model_n_vocab(self._handle))
    n_embd = property(lambda self: lib.hmt_model_n_embd(self._handle))
    n_layer = property(lambda self: lib.hmt_model_n_layer(self._handle))
    n_head = property(lambda self: lib.hmt_model_n_head(self._handle))
    n_head_kv = property(lambda self: lib.hmt_model_n_head_kv(self._handle))
    n_ff = property(lambda self: lib.hmt_model_n_ff(self._handle))
    n_ctx_train = property(lambda self: lib.hmt_model_n_ctx_train(self._handle))
    n_params = property(lambda self: lib.hmt_model_n_params(self._handle))
    arch = property(lambda self: lib.hmt_model_arch(self._handle).decode())
    token_bos = property(lambda self: lib.hmt_model_token_bos(self._handle))
    token_eos = property(lambda self: lib.hmt_model_token_eos(self._handle))

    @property
    def bos(self):
        """BOS id, or None when the model has none."""
        t = self.token_bos
        return None if t < 0 else t

    @property
    def eos(self):
        t = self.token_eos
        return None if t < 0 else t

    @property
    def eot(self):
        """The end-of-turn token id (tokenizer.ggml.eot_token_id, else found
        by its text, as llama.cpp does), or None."""
        t = lib.hmt_model_token_eot(self._handle)
        return None if t < 0 else t

    def token_is_eog(self, token):
        """True if generation should stop at this token: the model's whole
        end-of-generation set (eos, eot, eom and the end-of-turn tokens),
        not only eos. False for an id outside the vocabulary."""
        return bool(lib.hmt_token_is_eog(self._handle, int(token)))

    @property
    def chat_template(self):
        """The model's tokenizer.chat_template text, or None."""
        t = lib.hmt_model_chat_template(self._handle)
        return None if t is None else t.decode("utf-8", "replace")

    def chat_apply(self, messages, add_generation_prompt=True, template=None):
        """The prompt text of a conversation, formatted with the model's chat
        template (template=None), a family name ("llama2", "llama3",
        "chatml", "gemma", "phi3", "phi4", "mistral-v1", "mistral-v3",
        "mistral-v3-tekken", "mistral-v7", "mistral-v7-tekken", "deepseek3")
        or a template text.
        messages: (role, content) pairs or {"role": ..., "content": ...}
        dicts; roles "system", "user", "assistant". The text leaves out the
        leading BOS: tokenize it with add_bos=True, special=True.
        HmtError E_UNSUPPORTED for a template libhmt does not recognise."""
        roles, contents = [], []
        for m in messages:
            r, c = (m["role"], m["content"]) if isinstance(m, dict) else m
            roles.append(r.encode("utf-8") if isinstance(r, str) else bytes(r))
            contents.append(c.encode("utf-8") if isinstance(c, str) else bytes(c))
        n = len(roles)
        keep = [ctypes.create_string_buffer(x) for x in roles + contents]
        ptrs = [ctypes.cast(b, POINTER(c_char)) for b in keep]
        r_arr = (POINTER(c_char) * max(n, 1))(*ptrs[:n])
        c_arr = (POINTER(c_char) * max(n, 1))(*ptrs[n:])
        tmpl = None if template is None else (
            template.encode("utf-8") if isinstance(template, str) else bytes(template))
        need = c_size_t()
        cap = 256 + sum(len(x) for x in contents) * 2
        while True:
            buf = (c_char * cap)()
            rc = lib.hmt_chat_apply(self._handle, tmpl, r_arr,
                                    c_arr, n, 1 if add_generation_prompt else 0, buf, cap,
                                    byref(need))
            if rc != Status.E_BUFFER:
                return bytes(buf[:need.value]).decode("utf-8", "replace")
            cap = need.value + 1

    def meta(self, key, default=HmtError):
        """A metadata value rendered as text. A missing key raises HmtError
        (E_INVAL) unless a default is given."""
        k = key.encode() if isinstance(key, str) else bytes(key)
        need = c_size_t()
        cap = 256
        while True:
            buf = create_string_buffer(cap)
            try:
                rc = lib.hmt_model_meta_str(self._handle, k, buf, cap, byref(need))
            except HmtError:
                if default is not HmtError:
                    return default
                raise
            if rc != Status.E_BUFFER:
                return buf.raw[:need.value].decode("utf-8", "replace")
            cap = need.value + 1

    def tokenize(self, text, add_bos=True, special=False):
        """Token ids (a list) of text (str, or bytes taken as UTF-8)."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        flags = (TOKENIZE_ADD_BOS if add_bos else 0) | (TOKENIZE_SPECIAL if special else 0)
        n = c_size_t()
        cap = len(data) + 2
        while True:
            out = (c_int32 * cap)()
            rc = lib.hmt_tokenize(self._handle, data, len(data), flags, out, cap, byref(n))
            if rc != Status.E_BUFFER:
                return out[:n.value]
            cap = n.value

    def detokenize_bytes(self, tokens, special=False):
        """The UTF-8 bytes of token ids (one token may end mid-character)."""
        ptr, n, keep = _tokens_arg(tokens, "hmt_detokenize")
        flags = DETOKENIZE_SPECIAL if special else 0
        need = c_size_t()
        cap = 16 * n + 1
        while True:
            buf = (c_char * cap)()
            rc = lib.hmt_detokenize(self._handle, ptr, n, flags, buf, cap, byref(need))
            if rc != Status.E_BUFFER:
                del keep
                return buf.raw[:need.value]
            cap = need.value + 1

    def detokenize(self, tokens, special=False, errors="replace"):
        """Text of token ids (str; invalid UTF-8 handled per `errors`)."""
        return self.detokenize_bytes(tokens, special).decode("utf-8", errors)

    def token_embedding(self, token):
        """Input embedding of a token (n_embd floats; a copy)."""
        d = self.n_embd
        buf = (c_float * d)()
        token = _args.int32(token, "token id", "hmt_model_token_embedding")
        lib.hmt_model_token_embedding(self._handle, token, buf, d)
        if np is not None:
            return np.frombuffer(buf, dtype=np.float32).copy()
        return array.array("f", buf)


class _LentModel(Model):
    """The model of a Context or Stream, for `ctx.model` / `stream.model`
    once the Model object it was created with is closed or collected: the
    handle libhmt's context/stream holds (hmt_ctx_model, hmt_stream_model),
    borrowed, so usable while that owner is open; close() only lets it go."""

    _free_fn = None

    def __init__(self, owner, handle, path):
        self._owner = owner  # the C model lives as long as the owner's handle
        self._h = handle
        self.path = path

    @property
    def _handle(self):
        if self._owner.closed:
            self._h = None
        return Model._handle.fget(self)

    @property
    def closed(self):
        return not self._h or self._owner.closed

    def close(self):
        self._h = None


def _model_of(owner, getter):
    """owner's model: the Model object it was created with while that is
    open, else the model owner's handle holds (a _LentModel)."""
    m = owner._model_ref()
    if m is not None and not m.closed:
        return m
    return _LentModel(owner, getter(owner._handle), owner._model_path)


def _out_flags(outputs, n):
    if outputs is None:
        return None, None
    def flag(v):
        return _args.integer(v, "output flags", 0, 255, "hmt_ctx_eval")
    if isinstance(outputs, int) or (np is not None and isinstance(outputs, np.integer)):
        buf = (c_uint8 * n)(*([flag(outputs)] * n))
    else:
        vals = [flag(v) for v in outputs]
        if len(vals) != n:
            raise HmtError(Status.E_INVAL, "hmt_ctx_eval",
                           f"outputs has {len(vals)} flags for {n} rows")
        buf = (c_uint8 * n)(*vals)
    return cast(buf, POINTER(c_uint8)), buf


class _CallbackErrors:
    """Exceptions raised inside Python callbacks, re-raised after the C call."""

    def __init__(self):
        self.pending = []

    def reraise(self, cause=None):
        if self.pending:
            e, self.pending = self.pending[0], []
            raise e from cause


class _Abortable:
    """The C abort callback of a context, stream or builder. One CFUNCTYPE
    per object polls Ctrl-C (_interrupt) and the user's function; it is
    installed in C while a user function is set, and otherwise only for the
    duration of a long call on the main thread (so that calls on other
    threads never take the GIL between layers)."""

    _abort_setter = None  # the C hmt_*_set_abort_callback, on the class

    def _init_abort(self):
        errors = self._errors
        box = types.SimpleNamespace(fn=None)  # not self: no cycle through the callback

        def tramp(_ud):
            try:
                if _interrupt.pending():
                    return 1
                fn = box.fn
                return 1 if fn is not None and fn() else 0
            except BaseException as e:
                errors.pending.append(e)
                return 1

        self._abort_box = box
        self._abort_cb = hmt_abort_fn(tramp)  # C holds it: kept as long as we are

    def set_abort_callback(self, fn):
        """fn() is polled between layers; a true result stops the call with
        HmtError(E_ABORTED). An exception raised by fn also stops it and is
        re-raised from the call. None removes it (Ctrl-C still works)."""
        self._abort_setter(self._handle, self._abort_cb if fn is not None else hmt_abort_fn(),
                           None)
        self._abort_box.fn = fn

    def _call_long(self, fn, *args):
        """fn(*args) with Ctrl-C turned into KeyboardInterrupt and callback
        exceptions re-raised."""
        with _interrupt.interruptible() as g:
            install = g.active and self._abort_box.fn is None
            if install:
                self._abort_setter(self._handle, self._abort_cb, None)
            try:
                fn(*args)
            except HmtError as e:
                self._errors.reraise(e)
                raise
            finally:
                if install and self._h:
                    self._abort_setter(self._h, hmt_abort_fn(), None)
            self._errors.reraise()


class _Keyed:
    """get / set_int of enum keys through a handle's C getter and setter
    (the class names them: _get_fn, _set_fn)."""

    _get_fn = _set_fn = None

    def get(self, key):
        key = _key(key)
        out = c_double()
        self._get_fn(self._handle, key, byref(out))
        return _number(out.value, param_bounds(key)[3])

    def set_int(self, key, value):
        fn = getattr(self._set_fn, "__name__", "set_int")
        self._set_fn(self._handle, _key(key), _args.int64(value, f"parameter {_name(_key(key))}", fn))


def _saved_bytes(fn, *args):
    """The state a snprintf-style C save function fn(*args, buf, cap, &len)
    writes, as bytes: asked for its size, then written (again if it grew)."""
    need = c_size_t()
    fn(*args, None, 0, byref(need))
    while True:
        buf = create_string_buffer(max(1, need.value))
        if fn(*args, buf, len(buf), byref(need)) != Status.E_BUFFER:
            return string_at(buf, need.value)


class _Saved:
    """save / restore of a handle's state as bytes or a file, through the C
    functions the class names (_save_fn, _restore_fn, _save_file_fn,
    _restore_file_fn). Needs _Abortable's _call_long."""

    _save_fn = _restore_fn = _save_file_fn = _restore_file_fn = None

    def save(self):
        """The state, as bytes."""
        return _saved_bytes(self._save_fn, self._handle)

    def restore(self, data):
        """Restore a state taken by save() (bytes-like)."""
        data = bytes(data)
        self._call_long(self._restore_fn, self._handle, data, len(data))

    def save_file(self, path):
        """Write the state to path (atomically: on failure path is unchanged)."""
        self._save_file_fn(self._handle, _path(path))

    def restore_file(self, path):
        """Restore a state written by save_file()."""
        self._call_long(self._restore_file_fn, self._handle, _path(path))


class Context(_Saved, _Abortable, _Keyed, _Handle):
    """A context: KV caches over a model, one per sequence (keys n_ctx,
    n_batch, n_seq, kv_type, n_threads, compute_type; another key set raises HmtError
    E_INVAL naming it). The C
    context holds its own reference to the model: closing the Model object
    first is safe."""

    _free_fn = staticmethod(lib.hmt_ctx_free)
    # save() / restore(): the KV cache and the last eval's outputs (C:
    # hmt_ctx_save, docs/API.md "Context state")
    _save_fn = staticmethod(lib.hmt_ctx_save)
    _restore_fn = staticmethod(lib.hmt_ctx_restore)
    _save_file_fn = staticmethod(lib.hmt_ctx_save_file)
    _restore_file_fn = staticmethod(lib.hmt_ctx_restore_file)
    _get_fn = staticmethod(lib.hmt_ctx_get)

    def attach_threadpool(self, tp):
        """Run on ThreadPool tp from now on (None: the process's shared pool)."""
        lib.hmt_ctx_attach_threadpool(self._handle, _pool_handle(tp))
    _set_fn = staticmethod(lib.hmt_ctx_set_int)
    _abort_setter = staticmethod(lib.hmt_ctx_set_abort_callback)
    _kind = "context"

    def __init__(self, model, params=None, **kwargs):
        self._h = _create(hmt_ctx_p, lib.hmt_ctx_create, params, kwargs, model._handle)
        self._model_ref = weakref.ref(model)  # for .model only: C keeps the model alive
        self._model_path = model.path
        self._n_vocab = model.n_vocab
        self._n_embd = model.n_embd
        self._errors = _CallbackErrors()
        self._init_abort()

    @property
    def model(self):
        """The Model this context was created with (while it is open), else
        the model the context holds, as a Model usable while it is open."""
        return _model_of(self, lib.hmt_ctx_model)

    n_past = property(lambda self: lib.hmt_ctx_n_past(self._handle))
    n_ctx = property(lambda self: lib.hmt_ctx_n_ctx(self._handle))


    @property
    def n_threads(self):
        return self.get(Param.N_THREADS)

    @n_threads.setter
    def n_threads(self, n):
        self.set_int(Param.N_THREADS, n)

    def eval(self, tokens=None, embd=None, pos=None, outputs=None):
        """Evaluate a batch: token ids, or input embeddings (n × n_embd
        floats, flat or nested). pos: RoPE positions (None = n_past + i).
        outputs: None (logits and hidden of the last row), one HMT_OUT_* flag
        set for every row, or a flag per row."""
        return self._eval("hmt_ctx_eval", tokens, embd, None, pos, outputs)

    def eval_seqs(self, seq, tokens=None, embd=None, pos=None, outputs=None):
        """Evaluate rows of several sequences in one pass: row i is appended to
        sequence seq[i] (one id per row, 0 … n_seq-1); the rest as eval(), pos
        None meaning each row's slot in its sequence. Outputs are read by
        batch row with logits(i) etc."""
        return self._eval("hmt_ctx_eval_seqs", tokens, embd, seq, pos, outputs)

    def _eval(self, fn, tokens, embd, seq, pos, outputs):
        if (tokens is None) == (embd is None):
            raise HmtError(Status.E_INVAL, fn, "give exactly one of tokens and embd")
        tptr = eptr = None
        keep = []
        if tokens is not None:
            tptr, n, k = _tokens_arg(tokens, fn)
            keep.append(k)
        else:
            eptr, nf, k = _float_arg(embd, "embd")
            keep.append(k)
            if nf % self._n_embd:
                raise HmtError(Status.E_INVAL, fn,
                               f"embd has {nf} floats, not a multiple of n_embd = {self._n_embd}")
            n = nf // self._n_embd
        pptr = sptr = None
        if pos is not None:
            pptr, npos, k = _int32_arg(pos, "position", fn)
            keep.append(k)
            if npos != n:
                raise HmtError(Status.E_INVAL, fn, f"pos has {npos} entries for {n} rows")
        if seq is not None:
            sptr, nseq, k = _int32_arg(seq, "sequence", fn)
            keep.append(k)
            if nseq != n:
                raise HmtError(Status.E_INVAL, fn, f"seq has {nseq} entries for {n} rows")
        optr, k = _out_flags(outputs, n)
        keep.append(k)
        if fn == "hmt_ctx_eval":
            self._call_long(lib.hmt_ctx_eval, self._handle, tptr, eptr, n, pptr, optr)
        else:
            self._call_long(lib.hmt_ctx_eval_seqs, self._handle, tptr, eptr, sptr, n, pptr, optr)
        return n

    def eval_tokens(self, tokens, all_logits=False):
        """Evaluate token ids at the next positions (logits of every row when
        all_logits, else of the last)."""
        ptr, n, keep = _tokens_arg(tokens, "hmt_ctx_eval_tokens")
        self._call_long(lib.hmt_ctx_eval_tokens, self._handle, ptr, n, 1 if all_logits else 0)
        return n

    def logits(self, i=-1, copy=False):
        """Logits of batch row i of the last eval (-1 = last row), or None if
        not requested. With NumPy and copy=False: a read-only view of the
        context's buffer, valid until the next eval/kv_clear/kv_rewind/restore/close
        (it keeps the Context alive). Otherwise a copy."""
        i = _args.int32(i, "row", "hmt_ctx_logits")
        return _float_vec(lib.hmt_ctx_logits(self._handle, i), self._n_vocab, self, copy)

    def hidden(self, i=-1, copy=False):
        """Final normalized hidden state of batch row i; same rules as logits()."""
        i = _args.int32(i, "row", "hmt_ctx_hidden")
        return _float_vec(lib.hmt_ctx_hidden(self._handle, i), self._n_embd, self, copy)

    def ffn_input(self, i=-1, copy=False):
        """The last block's normalized FFN input (the kNN-LM key) of batch row
        i, when HMT_OUT_FFN_INPUT was requested for it; same rules as logits()."""
        i = _args.int32(i, "row", "hmt_ctx_ffn_input")
        return _float_vec(lib.hmt_ctx_ffn_input(self._handle, i), self._n_embd, self, copy)

    def kv_clear(self):
        lib.hmt_ctx_kv_clear(self._handle)

    def kv_rewind(self, n_keep):
        lib.hmt_ctx_kv_rewind(self._handle, _args.int32(n_keep, "n_keep", "hmt_ctx_kv_rewind"))

    def seq_n_past(self, seq):
        """Positions cached in sequence seq (-1 if out of range)."""
        return lib.hmt_ctx_seq_n_past(self._handle, _args.int32(seq, "seq", "hmt_ctx_seq_n_past"))

    def seq_rewind(self, seq, n_keep):
        """Keep the first n_keep positions of sequence seq (0 clears it)."""
        lib.hmt_ctx_seq_rewind(self._handle, _args.int32(seq, "seq", "hmt_ctx_seq_rewind"),
                               _args.int32(n_keep, "n_keep", "hmt_ctx_seq_rewind"))

    def seq_save(self, seq):
        """The state of sequence seq (its cached positions) as bytes."""
        return _saved_bytes(lib.hmt_ctx_seq_save, self._handle,
                            _args.int32(seq, "seq", "hmt_ctx_seq_save"))

    def seq_restore(self, seq, data):
        """Load a state's cached positions into sequence seq."""
        data = bytes(data)
        self._call_long(lib.hmt_ctx_seq_restore, self._handle,
                        _args.int32(seq, "seq", "hmt_ctx_seq_restore"), data, len(data))

    def seq_copy(self, src, dst):
        """Make sequence dst a copy of sequence src (fork a shared prefix)."""
        lib.hmt_ctx_seq_copy(self._handle, _args.int32(src, "src", "hmt_ctx_seq_copy"),
                             _args.int32(dst, "dst", "hmt_ctx_seq_copy"))


class ThreadPool(_Handle):
    """Worker threads shared by contexts, streams and datastores
    (<hmt/threadpool.h>). By default every object uses the process's shared
    pool; attach one of these to give objects another (ctx.attach_threadpool(tp)).
    The objects it is attached to hold it: closing it here is always safe."""

    _free_fn = staticmethod(lib.hmt_threadpool_free)
    _kind = "thread pool"

    def __init__(self, n_threads=AUTO):
        out = hmt_threadpool_p()
        lib.hmt_threadpool_create(byref(out), int(n_threads))
        self._h = out

    @property
    def n_threads(self):
        return lib.hmt_threadpool_n_threads(self._handle)


def _pool_handle(tp):
    """The C pool of tp, or NULL (the process's shared pool) for None."""
    return None if tp is None else tp._handle


class Adapter(_Keyed, _Handle):
    """HMT parameters for a model (from a GGUF file, or the model's own file
    when path is None). The C adapter holds its own reference to the model."""

    _free_fn = staticmethod(lib.hmt_adapter_free)
    _get_fn = staticmethod(lib.hmt_adapter_get)
    _kind = "adapter"

    def __init__(self, model, path=None):
        out = hmt_adapter_p()
        lib.hmt_adapter_load(byref(out), model._handle, None if path is None else _path(path))
        self._h = out
        self._model_ref = weakref.ref(model)
        self.path = None if path is None else os.fspath(path)

    @property
    def model(self):
        """The Model this adapter was loaded for, or None once that object is
        closed or collected (the adapter keeps working: libhmt holds the model)."""
        m = self._model_ref()
        return m if m is not None and not m.closed else None


    segment_length = property(lambda self: self.get(Param.SEGMENT_LENGTH))
    sensory_length = property(lambda self: self.get(Param.SENSORY_LENGTH))
    cache_size = property(lambda self: self.get(Param.CACHE_SIZE))
    recall_bf16 = property(lambda self: self.get(Param.RECALL_BF16))
    summary_length = property(lambda self: self.get(Param.SUMMARY_LENGTH))
    gen_summary_length = property(lambda self: self.get(Param.GEN_SUMMARY_LENGTH))
    recall_dim = property(lambda self: self.get(Param.RECALL_DIM))


class Stream(_Saved, _Abortable, _Keyed, _Handle):
    """An HMT document stream (docs/HMT.md). Stream(model, adapter,
    mode="full", n_threads=2) or with a Params; only stream keys (the window
    of mode="window" is `window`, not n_ctx; mode="sinks" takes `window`, the
    cache size, and `sinks`). The C stream holds its own
    references to the model and the adapter: closing them first is safe."""

    _free_fn = staticmethod(lib.hmt_stream_free)
    # save() / restore(): a snapshot of the whole stream state
    _save_fn = staticmethod(lib.hmt_stream_save)
    _restore_fn = staticmethod(lib.hmt_stream_restore)
    _save_file_fn = staticmethod(lib.hmt_stream_save_file)
    _restore_file_fn = staticmethod(lib.hmt_stream_restore_file)
    _get_fn = staticmethod(lib.hmt_stream_get)

    def attach_threadpool(self, tp):
        """Run on ThreadPool tp from now on (None: the process's shared pool)."""
        lib.hmt_stream_attach_threadpool(self._handle, _pool_handle(tp))
    _set_fn = staticmethod(lib.hmt_stream_set_int)
    _abort_setter = staticmethod(lib.hmt_stream_set_abort_callback)
    _kind = "stream"

    def __init__(self, model, adapter=None, params=None, **kwargs):
        self._h = _create(hmt_stream_p, lib.hmt_stream_create, params, kwargs, model._handle,
                          None if adapter is None else adapter._handle)
        self._model_ref = weakref.ref(model)  # for .model/.adapter only
        self._model_path = model.path
        self._adapter_ref = None if adapter is None else weakref.ref(adapter)
        self._n_vocab = model.n_vocab
        self._model_n_embd = model.n_embd
        self._recall_cb = None
        self._errors = _CallbackErrors()
        self._init_abort()

    @property
    def model(self):
        """As Context.model (hmt_stream_model)."""
        return _model_of(self, lib.hmt_stream_model)

    @property
    def adapter(self):
        """The Adapter this stream was created with, or None (none given, or
        that object is closed or collected: the stream keeps its own reference)."""
        a = self._adapter_ref() if self._adapter_ref is not None else None
        return a if a is not None and not a.closed else None

    n_fed = property(lambda self: lib.hmt_stream_n_fed(self._handle))
    n_ready = property(lambda self: lib.hmt_stream_n_ready(self._handle))
    n_segments = property(lambda self: lib.hmt_stream_n_segments(self._handle))
    cache_fill = property(lambda self: lib.hmt_stream_cache_fill(self._handle))


    @property
    def lookahead(self):
        return bool(self.get(Param.LOOKAHEAD))

    @lookahead.setter
    def lookahead(self, on):
        self.set_int(Param.LOOKAHEAD, 1 if on else 0)

    @property
    def ready_range(self):
        """range of stream indices whose logits the last feed/flush made ready."""
        first, end = c_int64(), c_int64()
        lib.hmt_stream_ready_range(self._handle, byref(first), byref(end))
        return range(first.value, end.value)

    def _run(self, fn, *args):
        self._call_long(fn, *args)
        return self.ready_range

    def feed(self, tokens):
        """Append token ids and evaluate what can be; returns the ready range.
        Ctrl-C (or the abort callback) stops it within one layer: then the
        stream is unusable until restore() (feed/flush/save raise
        HmtError(E_MISUSE)), as after any other failure of feed/flush."""
        ptr, n, keep = _tokens_arg(tokens, "hmt_stream_feed")
        if n == 0:
            return self.ready_range
        return self._run(lib.hmt_stream_feed, self._handle, ptr, n)

    def flush(self):
        """Make every fed token ready; returns the ready range."""
        return self._run(lib.hmt_stream_flush, self._handle)

    def logits(self, index, copy=False):
        """Logits predicting token index + 1 (index in ready_range), else
        None. View/copy rules as Context.logits (valid until the next
        feed/flush/restore/close)."""
        index = _args.int64(index, "index", "hmt_stream_logits")
        return _float_vec(lib.hmt_stream_logits(self._handle, index), self._n_vocab, self, copy)

    def ffn_input(self, index, copy=False):
        """kNN-LM key of a ready token (with keep_ffn_input=1), else None."""
        index = _args.int64(index, "index", "hmt_stream_ffn_input")
        return _float_vec(lib.hmt_stream_ffn_input(self._handle, index), self._model_n_embd, self,
                          copy)

    def ready_logits(self):
        """Copies of the logits of every ready index: an (n, n_vocab) ndarray
        with NumPy, else a list of array.array."""
        rows = [self.logits(i, copy=True) for i in self.ready_range]
        if np is not None:
            return np.stack(rows) if rows else np.zeros((0, self._n_vocab), np.float32)
        return rows

    def recall(self):
        """(weights, segments) of the open segment's recall, oldest memory first."""
        n = c_size_t()
        cap = max(1, self.cache_fill)
        while True:
            w = (c_float * cap)()
            s = (c_int64 * cap)()
            rc = lib.hmt_stream_recall(self._handle, w, s, cap, byref(n))
            if rc != Status.E_BUFFER:
                return _vec_list(w[:n.value], "f4"), list(s[:n.value])
            cap = n.value

    def set_recall_callback(self, fn):
        """fn(segment: int, weights, segments: list) is called each time a
        segment's memorization prompt is computed (full mode). The data are
        copies. An exception raised by fn is re-raised from the feed/flush
        that ran it (the computation itself completes). None removes it."""
        if fn is None:
            lib.hmt_stream_set_recall_callback(self._handle, hmt_recall_fn(), None)
            self._recall_cb = None
            return
        errors = self._errors

        def tramp(_ud, segment, weights, segments, n):
            try:
                fn(segment, _vec_list(weights[:n], "f4"), segments[:n])
            except BaseException as e:
                errors.pending.append(e)

        cb = hmt_recall_fn(tramp)
        lib.hmt_stream_set_recall_callback(self._handle, cb, None)
        self._recall_cb = cb


# ---------------------------------------------------------------------------
# Samplers and processors (sampler.h)
# ---------------------------------------------------------------------------
class _ProcErrors(threading.local):
    """Exceptions raised inside PyProc callbacks on this thread (libhmt calls
    a processor only from the thread calling into its sampler), re-raised by
    the Sampler method that ran them."""

    def __init__(self):
        self.pending = []
        self.depth = 0  # Sampler calls running on this thread (a callback may nest one)


_proc_errors = _ProcErrors()


def _py_floats(ptr, n):
    """A Python-owned copy of n floats at ptr (ctypes array, and an ndarray
    over it with NumPy): a callback may keep it after C freed ptr."""
    buf = (c_float * n)()
    ctypes.memmove(buf, ptr, n * 4)
    return buf, (np.frombuffer(buf, dtype=np.float32) if np is not None else buf)


# The Python side of every live PyProc, by the user_data of its C processor.
# libhmt reference-counts processors (the creator and a sampler each hold
# one); when the last reference goes it calls free_data, which drops the
# entry here. So the callables live exactly as long as C may call them, and
# the C trampolines below are module-level: never freed while running.
_PY_PROCS = {}
_PY_PROC_IDS = itertools.count(1)


def _t_apply(ud, logits, n_vocab, key, n_key, _procs=_PY_PROCS):
    try:
        d = _procs[ud]
        k = None
        if key and n_key > 0:
            k = _py_floats(key, n_key)[1]
            if np is not None:
                k.flags.writeable = False
        buf, z = _py_floats(logits, n_vocab)
        rc = d.apply(z, k)
        ctypes.memmove(logits, buf, n_vocab * 4)
        return _args.int32(rc, "apply's status", "apply") if rc else 0
    except BaseException as e:
        _proc_errors.pending.append(e)
        return int(Status.E_ABORTED)


def _t_accept(ud, token, _procs=_PY_PROCS):
    try:
        _procs[ud].accept(token)
    except BaseException as e:
        _proc_errors.pending.append(e)


def _t_reset(ud, _procs=_PY_PROCS):
    try:
        _procs[ud].reset()
    except BaseException as e:
        _proc_errors.pending.append(e)


def _t_prepare(ud, keys, n, n_key, _procs=_PY_PROCS):
    try:
        d = _procs[ud]
        buf, flat = _py_floats(keys, n * n_key)
        if np is not None:
            rows = flat.reshape(n, n_key)
            rows.flags.writeable = False
        else:
            rows = [array.array("f", buf[r * n_key:(r + 1) * n_key]) for r in range(n)]
        rc = d.prepare(rows)
        return _args.int32(rc, "prepare's status", "prepare") if rc else 0
    except BaseException as e:
        _proc_errors.pending.append(e)
        return int(Status.E_ABORTED)


def _t_free_data(ud, _procs=_PY_PROCS):
    try:
        _procs.pop(ud, None)
    except BaseException:  # interpreter shutdown
        pass


_T_APPLY = hmt_proc_apply_fn(_t_apply)
_T_ACCEPT = hmt_proc_accept_fn(_t_accept)
_T_RESET = hmt_proc_reset_fn(_t_reset)
_T_PREPARE = hmt_proc_prepare_fn(_t_prepare)
_T_FREE_DATA = hmt_proc_free_data_fn(_t_free_data)


class Proc(_Handle):
    """A next-token processor. Sampler.add(p) makes the sampler hold its own
    reference (libhmt counts them): p.close() only drops this object's
    reference, in any order with the sampler's close(), and the sampler goes
    on using the processor. A processor joins one sampler at most
    (HmtError E_MISUSE otherwise)."""

    _free_fn = staticmethod(lib.hmt_proc_free)
    _kind = "processor"


class PyProc(Proc):
    """A processor written in Python.

    apply(logits, key) modifies logits (n_vocab float32, writable: an ndarray
    with NumPy, else a ctypes array) in place; key is the kNN key of the
    position (read-only) or None. Both are copies owned by Python (the
    edited logits are copied back), so keeping them is safe. It may return
    None/0, or a negative Status to stop the sampler. accept(token), reset()
    and prepare(keys) (the keys of the next positions, n rows of n_key
    floats: Sampler.prepare) are optional. An exception stops the sampler's
    call and is re-raised from it."""

    def __init__(self, apply, accept=None, reset=None, name=None, prepare=None):
        for what, fn in (("apply", apply), ("accept", accept), ("reset", reset),
                         ("prepare", prepare)):
            if fn is not None and not callable(fn):
                raise TypeError(f"PyProc: {what} must be callable")
        if apply is None:
            raise TypeError("PyProc: apply is required")
        name_b = (name or getattr(apply, "__name__", None) or "python").encode()
        ud = next(_PY_PROC_IDS)
        # the name lives in the entry: C reads iface->name until free_data
        _PY_PROCS[ud] = types.SimpleNamespace(apply=apply, accept=accept, reset=reset,
                                              prepare=prepare, name=name_b)
        iface = hmt_proc_i()
        iface.struct_size = ctypes_sizeof(hmt_proc_i)
        iface.name = name_b
        iface.apply = _T_APPLY
        iface.accept = _T_ACCEPT if accept else hmt_proc_accept_fn()
        iface.reset = _T_RESET if reset else hmt_proc_reset_fn()
        iface.free_data = _T_FREE_DATA
        iface.prepare = _T_PREPARE if prepare else hmt_proc_prepare_fn()
        out = hmt_proc_p()
        try:
            lib.hmt_proc_create(byref(out), byref(iface), ud)
        except BaseException:
            _PY_PROCS.pop(ud, None)  # free_data is not called on failure
            raise
        self._h = out


class DittoProc(Proc):
    """The DITTO sentence-repetition penalty (ditto_* keys only)."""

    def __init__(self, model=None, params=None, **kwargs):
        self._h = _create(hmt_proc_p, lib.hmt_proc_ditto_create, params, kwargs,
                          None if model is None else model._handle)

    def set_delimiters(self, ids):
        """Token ids that end a sentence (resets the history)."""
        ptr, n, keep = _tokens_arg(ids, "hmt_proc_ditto_set_delimiters")
        lib.hmt_proc_ditto_set_delimiters(self._handle, ptr, n)


class MinPProc(Proc):
    """Min-p (llama.cpp's): keep the tokens with p >= min_p * max p, at least
    min_keep of them (keys min_p, min_keep). MinPProc(min_p=0.05)."""

    def __init__(self, params=None, **kwargs):
        self._h = _create(hmt_proc_p, lib.hmt_proc_min_p_create, params, kwargs)


class TypicalProc(Proc):
    """Locally typical sampling (llama.cpp's): keep the tokens closest to the
    entropy until their mass exceeds typical_p, at least min_keep (keys
    typical_p, min_keep). TypicalProc(typical_p=0.9)."""

    def __init__(self, params=None, **kwargs):
        self._h = _create(hmt_proc_p, lib.hmt_proc_typical_create, params, kwargs)


class PenaltiesProc(Proc):
    """Repetition / frequency / presence penalties over the last
    penalty_last_n accepted tokens (llama.cpp's; keys penalty_last_n,
    repeat_penalty, frequency_penalty, presence_penalty)."""

    def __init__(self, params=None, **kwargs):
        self._h = _create(hmt_proc_p, lib.hmt_proc_penalties_create, params, kwargs)


class LogitBiasProc(Proc):
    """Logit bias: bias is a mapping {token: bias} or a sequence of (token,
    bias) pairs (a token listed twice gets both; -inf bans it). With a model
    the ids are checked against its vocabulary at once."""

    def __init__(self, bias, model=None):
        pairs = list(bias.items()) if hasattr(bias, "items") else list(bias)
        for pair in pairs:
            if not hasattr(pair, "__len__") or len(pair) != 2:
                raise HmtError(Status.E_INVAL, "hmt_proc_logit_bias_create",
                               f"{pair!r} is not a (token, bias) pair")
        tptr, n, keep_t = _tokens_arg([t for t, _ in pairs], "hmt_proc_logit_bias_create")
        bptr, nb, keep_b = _float_arg([float(b) for _, b in pairs] or [0.0], "biases")
        out = hmt_proc_p()
        lib.hmt_proc_logit_bias_create(byref(out), None if model is None else model._handle,
                                       tptr if n else None, bptr if n else None, n)
        self._h = out


class Sampler(_Handle):
    """A sampler: processors (added in order, run on each position's logits),
    then top-k, temperature, top-p and a seeded draw (keys temperature,
    top_k, top_p, seed; another key set raises HmtError E_INVAL naming it).

    Sampler(temperature=0.8, seed=1, procs=[DittoProc(model)]). Without
    processors it is a plain sampler; apply() alone gives the processed
    distribution (for scoring). The sampler holds a reference to each
    processor it was given (libhmt): the Proc objects may be closed at once.
    This is what 0.1's Chain was (docs/PYTHON.md)."""

    _free_fn = staticmethod(lib.hmt_sampler_free)
    _kind = "sampler"
    _busy = 0

    def __init__(self, params=None, *, procs=(), **kwargs):
        self._h = _create(hmt_sampler_p, lib.hmt_sampler_create, params, kwargs)
        for p in procs:
            self.add(p)

    def close(self):
        if self._busy:
            raise HmtError(Status.E_MISUSE, "Sampler.close",
                           "the sampler is running (closed from one of its processors)")
        super().close()

    def add(self, proc):
        """Append a processor; the sampler holds its own reference to it.
        Returns the sampler."""
        lib.hmt_sampler_add(self._handle, proc._handle)
        return self

    def __len__(self):
        return lib.hmt_sampler_n_procs(self._handle)

    n_procs = property(__len__)

    def _call(self, fn, *args):
        """fn(handle, *args), re-raising the first exception a PyProc raised
        during it (with the HmtError, if the call failed, as its cause)."""
        h = self._handle
        errs = _proc_errors
        if errs.depth == 0:
            errs.pending.clear()  # left by raw lib calls: not this call's
        mark = len(errs.pending)
        self._busy += 1
        errs.depth += 1
        cause = None
        try:
            fn(h, *args)
        except HmtError as e:
            cause = e
        finally:
            errs.depth -= 1
            self._busy -= 1
            mine = errs.pending[mark:]
            del errs.pending[mark:]
        if mine:
            raise mine[0] from cause
        if cause is not None:
            raise cause

    def apply(self, logits, key=None):
        """Log-probabilities after every processor (a new vector); key: the
        kNN-LM key of the position (Context.ffn_input / Stream.ffn_input), or
        None. Does not accept a token (accept() it)."""
        lptr, n, keep_l = _float_arg(logits, "logits")
        kptr, nk, keep_k = (None, 0, None) if key is None else _float_arg(key, "key")
        out = (c_float * n)()
        self._call(lib.hmt_sampler_apply, lptr, n, kptr, nk, out)
        if np is not None:
            return np.frombuffer(out, dtype=np.float32)
        return array.array("f", bytes(out))

    def accept(self, token):
        """Tell every processor the next token (sampled elsewhere, or a
        prompt/ground-truth token). The sample methods accept their own."""
        self._call(lib.hmt_sampler_accept,
                   _args.int32(token, "token id", "hmt_sampler_accept", code=Status.E_TOKEN))

    def prepare(self, keys, n_key=None):
        """The kNN-LM keys of the next positions (n rows of n_key floats: a
        2-D array, a list of rows, or flat with n_key given), so that the
        kNN processor searches them in one batch. Optional: the results are
        the same without it."""
        if n_key is None:
            shape = getattr(keys, "shape", None)
            if shape is not None and len(shape) == 2:
                n_key = shape[1]
            elif shape is None and len(keys) and hasattr(keys[0], "__len__"):
                n_key = len(keys[0])
            else:
                raise HmtError(Status.E_INVAL, "hmt_sampler_prepare",
                               "keys must be rows of n_key floats, or give n_key")
        n_key = _args.integer(n_key, "n_key", 1, _args.INT32[1], "hmt_sampler_prepare")
        kptr, nf, keep = _float_arg(keys, "keys")
        if nf % n_key:
            raise HmtError(Status.E_INVAL, "hmt_sampler_prepare",
                           f"{nf} key floats for keys of width {n_key}")
        self._call(lib.hmt_sampler_prepare, kptr, nf // n_key, n_key)

    def reset(self):
        """A new document starts: every processor forgets its history."""
        self._call(lib.hmt_sampler_reset)

    def reseed(self, seed):
        lib.hmt_sampler_reseed(self._handle, _args.integer(seed, "seed", *_args.UINT64,
                                                            "hmt_sampler_reseed"))

    def sample(self, logits):
        """Draw a token id from a vector of logits (not modified), through
        the processors without a key; the token is accepted."""
        ptr, n, keep = _float_arg(logits, "logits")
        out = c_int32()
        self._call(lib.hmt_sampler_sample, ptr, n, byref(out))
        return out.value

    def sample_ctx(self, ctx, i=-1):
        """Draw from batch row i of ctx's last eval (-1 = its last row), with
        its kNN-LM key when that row's FFN input was kept; accepted."""
        i = _args.int32(i, "row", "hmt_sampler_sample_ctx")
        out = c_int32()
        self._call(lib.hmt_sampler_sample_ctx, ctx._handle, i, byref(out))
        return out.value

    def sample_stream(self, stream, index=None):
        """Draw from a ready index of stream (None = its last ready one), with
        its kNN-LM key when keep_ffn_input is on; accepted."""
        if index is None:
            index = stream.n_ready - 1
        index = _args.int64(index, "index", "hmt_sampler_sample_stream")
        out = c_int32()
        self._call(lib.hmt_sampler_sample_stream, stream._handle, index, byref(out))
        return out.value


# ---------------------------------------------------------------------------
# kNN-LM (knn.h)
# ---------------------------------------------------------------------------
def _progress_cb(progress, errors):
    if progress is None:
        return hmt_knn_progress_fn()

    def tramp(_ud, done, total):
        try:
            return 1 if progress(done, total) else 0
        except BaseException as e:
            errors.pending.append(e)
            return 1
    return hmt_knn_progress_fn(tramp)


def _interrupt_progress(progress, errors):
    """A progress callback that also stops on Ctrl-C (calls without an abort
    hook of their own: the FAISS build)."""
    def check(done, total):
        return _interrupt.pending() or (progress is not None and progress(done, total))
    return _progress_cb(check, errors)


class KnnBuilder(_Abortable, _Handle):
    """Writes a datastore file (finish() renames it into place)."""

    _free_fn = staticmethod(lib.hmt_knn_builder_free)
    _abort_setter = staticmethod(lib.hmt_knn_builder_set_abort_callback)
    _kind = "kNN builder"

    def __init__(self, model, path, params=None, **kwargs):
        self._h = _create(hmt_knn_builder_p, lib.hmt_knn_builder_create, params, kwargs,
                          model._handle, _path(path))
        self._dim = model.n_embd
        self._errors = _CallbackErrors()
        self._init_abort()

    count = property(lambda self: lib.hmt_knn_builder_count(self._handle))

    def add(self, keys, values):
        """Append pairs: keys n × n_embd floats, values n token ids."""
        vptr, n, keep_v = _tokens_arg(values, "hmt_knn_builder_add")
        kptr, nk, keep_k = _float_arg(keys, "keys")
        if nk != n * self._dim:
            raise HmtError(Status.E_INVAL, "hmt_knn_builder_add",
                           f"{nk} key floats for {n} values of width {self._dim}")
        lib.hmt_knn_builder_add(self._handle, kptr, vptr, n)

    def add_ctx(self, ctx, tokens, progress=None):
        """Run ctx over tokens and add (key of t, token t+1). progress(done,
        total) may return True to stop (HmtError E_ABORTED). Ctrl-C stops it
        within one layer (KeyboardInterrupt): the pairs added so far stay and
        the builder and ctx stay usable."""
        ptr, n, keep = _tokens_arg(tokens, "hmt_knn_builder_add_ctx")
        cb = _progress_cb(progress, self._errors)
        self._call_long(lib.hmt_knn_builder_add_ctx, self._handle, ctx._handle, ptr, n, cb, None)

    def add_stream(self, stream, tokens, progress=None):
        """The same through an HMT stream (after Ctrl-C the stream is
        unusable until restored, as after Stream.feed)."""
        ptr, n, keep = _tokens_arg(tokens, "hmt_knn_builder_add_stream")
        cb = _progress_cb(progress, self._errors)
        self._call_long(lib.hmt_knn_builder_add_stream, self._handle, stream._handle, ptr, n, cb,
                        None)

    def finish(self):
        lib.hmt_knn_builder_finish(self._handle)


class Knn(_Handle):
    """A loaded (memory-mapped, validated) datastore; immutable. Key
    n_threads. kNN processors hold their own reference to it (libhmt):
    closing the Knn under a live KnnProc is safe."""

    _free_fn = staticmethod(lib.hmt_knn_free)

    def attach_threadpool(self, tp):
        """Search on ThreadPool tp from now on (None: the process's shared
        pool); not while another thread searches this datastore."""
        lib.hmt_knn_attach_threadpool(self._handle, _pool_handle(tp))
    _kind = "kNN datastore"

    def __init__(self, model, path, params=None, **kwargs):
        self._h = _create(hmt_knn_p, lib.hmt_knn_load, params, kwargs, model._handle, _path(path))
        self.path = os.fspath(path)

    count = property(lambda self: lib.hmt_knn_count(self._handle))
    __len__ = lambda self: self.count  # noqa: E731
    dim = property(lambda self: lib.hmt_knn_dim(self._handle))
    n_vocab = property(lambda self: lib.hmt_knn_n_vocab(self._handle))
    bytes_per_key = property(lambda self: lib.hmt_knn_bytes_per_key(self._handle))

    @property
    def key_dtype(self):
        return KnnDtype(lib.hmt_knn_key_dtype(self._handle))

    def copy_entry(self, i):
        """(key, value) of stored pair i (hmt_knn_copy_entry)."""
        d = self.dim
        key = (c_float * d)()
        value = c_int32()
        lib.hmt_knn_copy_entry(self._handle, _args.int64(i, "index", "hmt_knn_copy_entry"), key, d,
                               byref(value))
        return _vec_list(key[:], "f4"), value.value

    get = copy_entry  # the 0.1 name

    def search(self, queries, k, values=False):
        """Exact k-NN of n queries (n × dim): (distances, indices), each n × k
        (a 2-D ndarray, or a list of rows without NumPy); with values=True
        also the stored values (token ids; -1 where the index is -1):
        (distances, indices, values)."""
        qptr, nq, keep = _float_arg(queries, "queries")
        k = _args.integer(k, "k", 1, 65536, "hmt_knn_search")
        d = self.dim
        if nq == 0 or nq % d:
            raise HmtError(Status.E_INVAL, "hmt_knn_search", f"{nq} floats for queries of width {d}")
        n = nq // d
        dist = (c_float * (n * k))()
        idx = (c_int64 * (n * k))()
        vals = (c_int32 * (n * k))() if values else None
        lib.hmt_knn_search(self._handle, qptr, n, k, dist, idx, vals)
        if np is not None:
            out = (np.frombuffer(dist, np.float32).reshape(n, k),
                   np.frombuffer(idx, np.int64).reshape(n, k))
            if values:
                out += (np.frombuffer(vals, np.int32).reshape(n, k),)
            return out
        out = ([list(dist[r * k:(r + 1) * k]) for r in range(n)],
               [list(idx[r * k:(r + 1) * k]) for r in range(n)])
        if values:
            out += ([list(vals[r * k:(r + 1) * k]) for r in range(n)],)
        return out

    def interpolate(self, keys, logits, params=None, **kwargs):
        """kNN-LM log-probabilities for n positions: (logprobs n × n_vocab,
        lambdas n)."""
        V = self.n_vocab
        kptr, nk, keep_k = _float_arg(keys, "keys")
        lptr, nl, keep_l = _float_arg(logits, "logits")
        n = nl // V if V else 0
        out = (c_float * max(1, nl))()
        lam = (c_float * max(1, n))()
        p, tmp = _with_params(params, kwargs)
        try:
            lib.hmt_knn_interpolate(self._handle, p, kptr, n, lptr, V, out, lam)
        finally:
            if tmp is not None:
                tmp.close()
        if np is not None:
            return np.frombuffer(out, np.float32)[:nl].reshape(n, V), np.frombuffer(lam, np.float32)[:n]
        return [array.array("f", out[r * V:(r + 1) * V]) for r in range(n)], list(lam[:n])


    def faiss_build(self, path, params=None, progress=None, **kwargs):
        """[experimental] Write a FAISS IVF-PQ index of this datastore to path
        (keys knn_nlist, knn_pq_m, knn_train_size, knn_seed). progress(done, total) may return True
        to stop (HmtError E_ABORTED). E_UNSUPPORTED without FAISS."""
        errors = _CallbackErrors()
        cb = _interrupt_progress(progress, errors)
        p, tmp = _with_params(params, kwargs)
        try:
            with _interrupt.interruptible():
                try:
                    lib.hmt_knn_faiss_build(self._handle, _path(path), p, cb, None)
                except HmtError as e:
                    errors.reraise(e)
                    raise
        finally:
            if tmp is not None:
                tmp.close()
        errors.reraise()

    def faiss_attach(self, path, params=None, **kwargs):
        """[experimental] Search through the index file at path from now on
        (keys knn_nprobe, knn_rerank); distances stay exact. Not while other threads search."""
        p, tmp = _with_params(params, kwargs)
        try:
            lib.hmt_knn_faiss_attach(self._handle, _path(path), p)
        finally:
            if tmp is not None:
                tmp.close()

    def faiss_detach(self):
        """Exact search again."""
        lib.hmt_knn_faiss_detach(self._handle)


def knn_faiss_available():
    """True when this libhmt was built with the FAISS backend."""
    return bool(lib.hmt_knn_faiss_available())


def streams_feed(streams, tokens):
    """One token for each of several Streams of one model (hmt_streams_feed):
    as stream.feed([token]) for each, with the one-row steps of all of them
    evaluated together (at most 16 per pass over the weights). Returns each
    stream's ready range. A failure raises HmtError naming the stream."""
    streams, tokens = list(streams), list(tokens)
    if len(streams) != len(tokens):
        raise HmtError(Status.E_INVAL, "hmt_streams_feed",
                       f"{len(streams)} streams but {len(tokens)} tokens")
    for s in streams:
        if not isinstance(s, Stream):
            raise HmtError(Status.E_INVAL, "hmt_streams_feed", "streams must be hmt.Stream objects")
    n = len(streams)
    handles = (hmt_stream_p * max(n, 1))(*[s._handle for s in streams])
    ptr, _, keep = _tokens_arg(tokens, "hmt_streams_feed")  # keep: the array stays alive
    lib.hmt_streams_feed(handles, n, ptr)
    return [s.ready_range for s in streams]


def knn_interpolate_neighbors(dists, values, logits, params=None, **kwargs):
    """The kNN-LM interpolation from given neighbours (one position):
    (logprobs, lambda)."""
    dptr, nd, keep_d = _float_arg(dists, "dists")
    vptr, nv, keep_v = _int32_arg(values, "value", "hmt_knn_interpolate_neighbors", Status.E_TOKEN)
    lptr, V, keep_l = _float_arg(logits, "logits")
    if nd != nv:
        raise HmtError(Status.E_INVAL, "hmt_knn_interpolate_neighbors",
                       f"{nd} distances for {nv} values")
    out = (c_float * V)()
    lam = c_float()
    p, tmp = _with_params(params, kwargs)
    try:
        lib.hmt_knn_interpolate_neighbors(p, dptr, vptr, nv, lptr, V, out, byref(lam))
    finally:
        if tmp is not None:
            tmp.close()
    vec = np.frombuffer(out, np.float32) if np is not None else array.array("f", bytes(out))
    return vec, lam.value


class KnnProc(Proc):
    """The kNN-LM processor (keys knn_k, knn_lambda, knn_temperature and the
    experimental knn_lambda_mode, knn_beta, knn_bias, knn_lambda_max). The C
    processor holds its own reference to the datastore: the Knn may be
    closed while the processor (or the sampler holding it) is in use."""

    def __init__(self, knn, params=None, **kwargs):
        self._h = _create(hmt_proc_p, lib.hmt_proc_knn_create, params, kwargs, knn._handle)


__all__ = ["HmtError", "Status", "Param", "Mode", "LogLevel", "Params", "Model", "Context",
           "Sampler", "Adapter", "Stream", "version", "version_string", "abi_version",
           "param_bounds", "param_name", "set_log_callback", "HAVE_NUMPY", "TOKENIZE_ADD_BOS",
           "TOKENIZE_SPECIAL", "DETOKENIZE_SPECIAL", "OUT_LOGITS", "OUT_HIDDEN",
           "OUT_FFN_INPUT", "AUTO", "COMPUTE_F32", "COMPUTE_BF16", "ComputeType", "KvType", "streams_feed", "DittoMode",
           "DittoScope", "DittoRenorm", "KnnLambdaMode", "KnnDtype", "Proc", "PyProc",
           "DittoProc", "MinPProc", "TypicalProc", "PenaltiesProc", "LogitBiasProc", "KnnProc", "Knn", "KnnBuilder", "knn_faiss_available",
           "knn_interpolate_neighbors"]
