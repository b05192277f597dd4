"""Low-level ctypes binding of libhmt: library loading, the function table,
status codes and HmtError.

Every function declared in include/hmt/*.h (hmt.h's headers and the
experimental tier, experimental.h) has one entry in FUNCTIONS, with
its C prototype as a comment above it, so that a change to the header shows up
in review next to the Python side (tests/python/test_capi.py checks that the
table and the header agree: same functions, same number and kinds of
arguments, same enum values).

The raw functions are attributes of ``lib`` (a ctypes.CDLL), e.g.
``lib.hmt_model_n_vocab(model_ptr)``. Status-returning functions raise
HmtError instead of returning a negative code; the snprintf-style functions
(``_status_buffer`` below) return HMT_E_BUFFER instead of raising it, since it
is the answer to a size query.
"""
import ctypes
import ctypes.util
import enum
import os
import sys
import warnings
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_double, c_float, c_int,
                    c_int32, c_int64, c_size_t, c_uint8, c_uint32, c_uint64, c_void_p)

from ._version import ABI_VERSION, __version__ as _version

# The ABI this package is written against (HMT_ABI_VERSION, the N of
# libhmt.so.N) and the release whose functions it binds: the header's, copied
# into _version.py (`make python-version`).
BINDING_VERSION = tuple(int(x) for x in _version.split("."))


# ---------------------------------------------------------------------------
# Enums and flags (values from include/hmt/*.h; test_capi.py checks them)
# ---------------------------------------------------------------------------
class Status(enum.IntEnum):
    OK = 0
    E_INVAL = -1
    E_NOMEM = -2
    E_IO = -3
    E_FORMAT = -4
    E_UNSUPPORTED = -5
    E_CTX_FULL = -6
    E_ABORTED = -7
    E_MISUSE = -8
    E_BUFFER = -9
    E_TOKEN = -10
    E_INTERNAL = -11


class Param(enum.IntEnum):
    """Parameter keys: the stable ones of params.h, then the experimental ones
    of experimental.h (numbered from 1000; any release may change them)."""
    N_CTX = 100
    N_BATCH = 101
    N_SEQ = 102
    KV_TYPE = 103
    MODE = 200
    LOOKAHEAD = 201
    ALL_LOGITS = 202
    SEGMENT_LENGTH = 203
    SENSORY_LENGTH = 204
    CACHE_SIZE = 205
    SUMMARY_LENGTH = 207
    GEN_SUMMARY_LENGTH = 208
    RECALL_DIM = 209
    KEEP_FFN_INPUT = 210
    WINDOW = 211
    SINKS = 212
    KNN_K = 300
    KNN_LAMBDA = 301
    KNN_TEMPERATURE = 302
    KNN_KEY_F16 = 350
    N_THREADS = 400
    COMPUTE_TYPE = 401
    TEMPERATURE = 500
    TOP_K = 501
    TOP_P = 502
    SEED = 503
    MIN_P = 504
    MIN_KEEP = 505
    TYPICAL_P = 506
    PENALTY_LAST_N = 507
    REPEAT_PENALTY = 508
    FREQUENCY_PENALTY = 509
    PRESENCE_PENALTY = 510
    DITTO_LAMBDA = 600
    DITTO_MODE = 601
    DITTO_SCOPE = 602
    DITTO_WINDOW = 603
    DITTO_MIN_SENTENCE = 604
    DITTO_MIN_MATCH = 605
    DITTO_RENORM = 606
    # experimental.h
    RECALL_BF16 = 1000
    KNN_LAMBDA_MODE = 1001
    KNN_BETA = 1002
    KNN_BIAS = 1003
    KNN_LAMBDA_MAX = 1004
    KNN_NPROBE = 1005
    KNN_NLIST = 1006
    KNN_PQ_M = 1007
    KNN_TRAIN_SIZE = 1008
    KNN_RERANK = 1009
    KNN_SEED = 1010
    SEGMENT_SINKS = 1011


EXPERIMENTAL_KEY_MIN = 1000  # keys from here on are experimental.h's

# HMT_AUTO: "derive it from the model, the adapter or the machine", for the
# keys that offer it (hmt.param_bounds(key)[0] == AUTO); they default to it.
AUTO = -1


class ComputeType(enum.IntEnum):
    F32 = 0
    BF16 = 1


class KvType(enum.IntEnum):
    """Values of Param.KV_TYPE: the KV cache's element type."""
    F32 = 0
    F16 = 1
    BF16 = 2


class DittoMode(enum.IntEnum):
    POWER = 0
    RELATIVE = 1


class DittoScope(enum.IntEnum):
    CONSECUTIVE = 0
    WINDOWED = 1


class DittoRenorm(enum.IntEnum):
    EXACT = 0
    LOGIT = 1


class KnnLambdaMode(enum.IntEnum):
    """Values of Param.KNN_LAMBDA_MODE (experimental)."""
    FIXED = 0
    ENTROPY_GAP = 1
    ENTROPY_NORM = 2


class Mode(enum.IntEnum):
    FULL = 0
    RMT = 1
    SEGMENTS = 2
    WINDOW = 3
    SINKS = 4


class KnnDtype(enum.IntEnum):
    F32 = 0
    F16 = 1


class LogLevel(enum.IntEnum):
    ERROR = 0
    WARN = 1
    INFO = 2
    DEBUG = 3


TOKENIZE_ADD_BOS = 1 << 0
TOKENIZE_SPECIAL = 1 << 1
DETOKENIZE_SPECIAL = 1 << 0
OUT_LOGITS = 1 << 0
OUT_HIDDEN = 1 << 1
OUT_FFN_INPUT = 1 << 2
COMPUTE_F32 = ComputeType.F32  # values of Param.COMPUTE_TYPE
COMPUTE_BF16 = ComputeType.BF16


class HmtError(Exception):
    """A libhmt call failed.

    code:    the hmt_status (a Status member when known, else the int)
    name:    the C function (or Python method) that failed
    message: the library's detail (hmt_last_error_msg() read right after the
             failing call, on the calling thread)
    """

    def __init__(self, code, name, message=""):
        try:
            code = Status(code)
        except ValueError:
            pass
        self.code = code
        self.name = name
        self.message = message
        super().__init__(code, name, message)

    def __str__(self):
        text = strerror(self.code)
        label = self.code.name if isinstance(self.code, Status) else str(self.code)
        msg = self.message
        if msg.startswith(f"{self.name}: "):  # libhmt's messages name their function
            return f"{msg} ({text}, HMT_{label})"
        detail = f": {msg}" if msg else ""
        return f"{self.name}{detail} ({text}, HMT_{label})"


# ---------------------------------------------------------------------------
# Opaque handle types: pointers to incomplete structs, so that ctypes rejects
# a handle of the wrong kind (an hmt_ctx * passed where an hmt_model * goes).
# ---------------------------------------------------------------------------
class hmt_params(Structure):
    pass


class hmt_model(Structure):
    pass


class hmt_ctx(Structure):
    pass


class hmt_sampler(Structure):
    pass


class hmt_adapter(Structure):
    pass


class hmt_stream(Structure):
    pass


class hmt_proc(Structure):
    pass


class hmt_knn(Structure):
    pass


class hmt_knn_builder(Structure):
    pass


class hmt_threadpool(Structure):
    pass


hmt_params_p = POINTER(hmt_params)
hmt_model_p = POINTER(hmt_model)
hmt_ctx_p = POINTER(hmt_ctx)
hmt_sampler_p = POINTER(hmt_sampler)
hmt_adapter_p = POINTER(hmt_adapter)
hmt_stream_p = POINTER(hmt_stream)
hmt_proc_p = POINTER(hmt_proc)
hmt_knn_p = POINTER(hmt_knn)
hmt_knn_builder_p = POINTER(hmt_knn_builder)
hmt_threadpool_p = POINTER(hmt_threadpool)
hmt_knn_dtype = c_int
hmt_token = c_int32
hmt_param = c_int  # enums are passed as int
hmt_log_level = c_int

# typedef void (*hmt_log_fn)(hmt_log_level level, const char *msg, void *user_data);
hmt_log_fn = CFUNCTYPE(None, hmt_log_level, c_char_p, c_void_p)
# typedef int (*hmt_abort_fn)(void *user_data);
hmt_abort_fn = CFUNCTYPE(c_int, c_void_p)
# typedef void (*hmt_recall_fn)(void *user_data, int64_t segment, const float *weights,
#                               const int64_t *segments, int32_t n);
hmt_recall_fn = CFUNCTYPE(None, c_void_p, c_int64, POINTER(c_float), POINTER(c_int64), c_int32)
# typedef int (*hmt_knn_progress_fn)(void *user_data, int64_t done, int64_t total);
hmt_knn_progress_fn = CFUNCTYPE(c_int, c_void_p, c_int64, c_int64)

# sampler.h: the processor vtable. Fields are only appended; struct_size
# tells the library how many this binding knows.
# int (*apply)(void *user_data, float *logits, int32_t n_vocab, const float *key, int32_t n_key);
hmt_proc_apply_fn = CFUNCTYPE(c_int, c_void_p, POINTER(c_float), c_int32, POINTER(c_float), c_int32)
# void (*accept)(void *user_data, hmt_token token);
hmt_proc_accept_fn = CFUNCTYPE(None, c_void_p, c_int32)
# void (*reset)(void *user_data);
hmt_proc_reset_fn = CFUNCTYPE(None, c_void_p)
# void (*free_data)(void *user_data);
hmt_proc_free_data_fn = CFUNCTYPE(None, c_void_p)
# int (*prepare)(void *user_data, const float *keys, size_t n, int32_t n_key);
hmt_proc_prepare_fn = CFUNCTYPE(c_int, c_void_p, POINTER(c_float), c_size_t, c_int32)


class hmt_proc_i(Structure):
    _fields_ = [("struct_size", c_uint32), ("name", c_char_p), ("apply", hmt_proc_apply_fn),
                ("accept", hmt_proc_accept_fn), ("reset", hmt_proc_reset_fn),
                ("free_data", hmt_proc_free_data_fn), ("prepare", hmt_proc_prepare_fn)]


# ---------------------------------------------------------------------------
# errcheck functions
# ---------------------------------------------------------------------------
def _message(args):
    """The message of the call that just failed: libhmt keeps one per thread
    (hmt_last_error_msg), set by the failing call and left alone by
    successful ones, so it is read here, right after the call, on its thread."""
    msg = b""
    try:
        msg = lib.hmt_last_error_msg() or b""
    except Exception:  # pragma: no cover - never let the message hide the error
        pass
    return msg.decode("utf-8", "replace")


def _status(result, func, args):
    """int status: raise HmtError on a negative result."""
    if result < 0:
        raise HmtError(result, func.__name__, _message(args))
    return result


def _status_buffer(result, func, args):
    """snprintf-style status: HMT_E_BUFFER is returned (size query), other
    negative results raise."""
    if result < 0 and result != Status.E_BUFFER:
        raise HmtError(result, func.__name__, _message(args))
    return result


_P = POINTER
# name, restype, argtypes, errcheck. The C prototype is the comment above.
FUNCTIONS = [
    # ---- versions ----
    # uint32_t hmt_version_number(void);
    ("hmt_version_number", c_uint32, [], None),
    # const char *hmt_version_string(void);
    ("hmt_version_string", c_char_p, [], None),
    # uint32_t hmt_abi_version(void);
    ("hmt_abi_version", c_uint32, [], None),

    # ---- status codes ----
    # const char *hmt_strerror(int status);
    ("hmt_strerror", c_char_p, [c_int], None),
    # const char *hmt_last_error_msg(void);
    ("hmt_last_error_msg", c_char_p, [], None),
    # void hmt_last_error_clear(void);
    ("hmt_last_error_clear", None, [], None),

    # ---- thread pools ----
    # int hmt_threadpool_create(hmt_threadpool **out, int32_t n_threads);
    ("hmt_threadpool_create", c_int, [_P(hmt_threadpool_p), c_int32], _status),
    # void hmt_threadpool_free(hmt_threadpool *tp);
    ("hmt_threadpool_free", None, [hmt_threadpool_p], None),
    # int32_t hmt_threadpool_n_threads(const hmt_threadpool *tp);
    ("hmt_threadpool_n_threads", c_int32, [hmt_threadpool_p], None),
    # int hmt_ctx_attach_threadpool(hmt_ctx *ctx, hmt_threadpool *tp);
    ("hmt_ctx_attach_threadpool", c_int, [hmt_ctx_p, hmt_threadpool_p], _status),
    # int hmt_stream_attach_threadpool(hmt_stream *stream, hmt_threadpool *tp);
    ("hmt_stream_attach_threadpool", c_int, [hmt_stream_p, hmt_threadpool_p], _status),
    # int hmt_knn_attach_threadpool(hmt_knn *knn, hmt_threadpool *tp);
    ("hmt_knn_attach_threadpool", c_int, [hmt_knn_p, hmt_threadpool_p], _status),

    # ---- parameters ----
    # int hmt_params_create(hmt_params **out);
    ("hmt_params_create", c_int, [_P(hmt_params_p)], _status),
    # int hmt_params_copy(hmt_params **out, const hmt_params *src);
    ("hmt_params_copy", c_int, [_P(hmt_params_p), hmt_params_p], _status),
    # void hmt_params_free(hmt_params *params);
    ("hmt_params_free", None, [hmt_params_p], None),
    # int hmt_params_set_int(hmt_params *params, hmt_param key, int64_t value);
    ("hmt_params_set_int", c_int, [hmt_params_p, hmt_param, c_int64], _status),
    # int hmt_params_set_float(hmt_params *params, hmt_param key, double value);
    ("hmt_params_set_float", c_int, [hmt_params_p, hmt_param, c_double], _status),
    # int hmt_params_get(const hmt_params *params, hmt_param key, double *out);
    ("hmt_params_get", c_int, [hmt_params_p, hmt_param, _P(c_double)], _status),
    # int hmt_param_bounds(hmt_param key, double *lo, double *hi, double *def, int *is_int);
    ("hmt_param_bounds", c_int, [hmt_param, _P(c_double), _P(c_double), _P(c_double), _P(c_int)],
     _status),
    # const char *hmt_param_name(hmt_param key);
    ("hmt_param_name", c_char_p, [hmt_param], None),

    # ---- logging ----
    # void hmt_log_set(hmt_log_fn fn, void *user_data);
    ("hmt_log_set", None, [hmt_log_fn, c_void_p], None),

    # ---- models ----
    # int hmt_model_load(hmt_model **out, const char *path, const hmt_params *params);
    ("hmt_model_load", c_int, [_P(hmt_model_p), c_char_p, hmt_params_p], _status),
    # void hmt_model_free(hmt_model *model);
    ("hmt_model_free", None, [hmt_model_p], None),
    # int32_t hmt_model_n_vocab(const hmt_model *model);
    ("hmt_model_n_vocab", c_int32, [hmt_model_p], None),
    # int32_t hmt_model_n_embd(const hmt_model *model);
    ("hmt_model_n_embd", c_int32, [hmt_model_p], None),
    # int32_t hmt_model_n_layer(const hmt_model *model);
    ("hmt_model_n_layer", c_int32, [hmt_model_p], None),
    # int32_t hmt_model_n_head(const hmt_model *model);
    ("hmt_model_n_head", c_int32, [hmt_model_p], None),
    # int32_t hmt_model_n_head_kv(const hmt_model *model);
    ("hmt_model_n_head_kv", c_int32, [hmt_model_p], None),
    # int32_t hmt_model_n_ff(const hmt_model *model);
    ("hmt_model_n_ff", c_int32, [hmt_model_p], None),
    # int32_t hmt_model_n_ctx_train(const hmt_model *model);
    ("hmt_model_n_ctx_train", c_int32, [hmt_model_p], None),
    # const char *hmt_model_arch(const hmt_model *model);
    ("hmt_model_arch", c_char_p, [hmt_model_p], None),
    # uint64_t hmt_model_n_params(const hmt_model *model);
    ("hmt_model_n_params", c_uint64, [hmt_model_p], None),
    # int hmt_model_meta_str(const hmt_model *model, const char *key, char *buf, size_t cap,
    #                        size_t *len_out);
    ("hmt_model_meta_str", c_int, [hmt_model_p, c_char_p, _P(c_char), c_size_t, _P(c_size_t)],
     _status_buffer),
    # hmt_token hmt_model_token_bos(const hmt_model *model);
    ("hmt_model_token_bos", hmt_token, [hmt_model_p], None),
    # hmt_token hmt_model_token_eos(const hmt_model *model);
    ("hmt_model_token_eos", hmt_token, [hmt_model_p], None),
    # hmt_token hmt_model_token_eot(const hmt_model *model);
    ("hmt_model_token_eot", hmt_token, [hmt_model_p], None),
    # int hmt_token_is_eog(const hmt_model *model, hmt_token token);   (0 or 1, never negative)
    ("hmt_token_is_eog", c_int, [hmt_model_p, hmt_token], _status),
    # const char *hmt_model_chat_template(const hmt_model *model);
    ("hmt_model_chat_template", c_char_p, [hmt_model_p], None),
    # int hmt_chat_apply(const hmt_model *model, const char *tmpl, const char *const *roles,
    #                    const char *const *contents, size_t n, int add_generation_prompt,
    #                    char *buf, size_t size, size_t *len);
    ("hmt_chat_apply", c_int,
     [hmt_model_p, c_char_p, _P(_P(c_char)), _P(_P(c_char)), c_size_t, c_int, _P(c_char),
      c_size_t, _P(c_size_t)], _status_buffer),
    # int hmt_model_token_embedding(const hmt_model *model, hmt_token token, float *out,
    #                               size_t cap);
    ("hmt_model_token_embedding", c_int, [hmt_model_p, hmt_token, _P(c_float), c_size_t], _status),

    # ---- tokenizer ----
    # int hmt_tokenize(const hmt_model *model, const char *text, size_t len, uint32_t flags,
    #                  hmt_token *out, size_t cap, size_t *n_out);
    ("hmt_tokenize", c_int,
     [hmt_model_p, c_char_p, c_size_t, c_uint32, _P(hmt_token), c_size_t, _P(c_size_t)],
     _status_buffer),
    # int hmt_detokenize(const hmt_model *model, const hmt_token *tokens, size_t n_tokens,
    #                    uint32_t flags, char *buf, size_t cap, size_t *len_out);
    ("hmt_detokenize", c_int,
     [hmt_model_p, _P(hmt_token), c_size_t, c_uint32, _P(c_char), c_size_t, _P(c_size_t)],
     _status_buffer),

    # ---- contexts ----
    # int hmt_ctx_create(hmt_ctx **out, hmt_model *model, const hmt_params *params);
    ("hmt_ctx_create", c_int, [_P(hmt_ctx_p), hmt_model_p, hmt_params_p], _status),
    # void hmt_ctx_free(hmt_ctx *ctx);
    ("hmt_ctx_free", None, [hmt_ctx_p], None),
    # int hmt_ctx_set_int(hmt_ctx *ctx, hmt_param key, int64_t value);
    ("hmt_ctx_set_int", c_int, [hmt_ctx_p, hmt_param, c_int64], _status),
    # int hmt_ctx_get(const hmt_ctx *ctx, hmt_param key, double *out);
    ("hmt_ctx_get", c_int, [hmt_ctx_p, hmt_param, _P(c_double)], _status),
    # const hmt_model *hmt_ctx_model(const hmt_ctx *ctx);
    ("hmt_ctx_model", hmt_model_p, [hmt_ctx_p], None),
    # int32_t hmt_ctx_n_past(const hmt_ctx *ctx);
    ("hmt_ctx_n_past", c_int32, [hmt_ctx_p], None),
    # int32_t hmt_ctx_n_ctx(const hmt_ctx *ctx);
    ("hmt_ctx_n_ctx", c_int32, [hmt_ctx_p], None),
    # int hmt_ctx_eval(hmt_ctx *ctx, const hmt_token *tokens, const float *embd, size_t n,
    #                  const int32_t *pos, const uint8_t *outputs);
    ("hmt_ctx_eval", c_int,
     [hmt_ctx_p, _P(hmt_token), _P(c_float), c_size_t, _P(c_int32), _P(c_uint8)], _status),
    # int hmt_ctx_eval_tokens(hmt_ctx *ctx, const hmt_token *tokens, size_t n, int all_logits);
    ("hmt_ctx_eval_tokens", c_int, [hmt_ctx_p, _P(hmt_token), c_size_t, c_int], _status),
    # const float *hmt_ctx_logits(const hmt_ctx *ctx, int32_t i);
    ("hmt_ctx_logits", _P(c_float), [hmt_ctx_p, c_int32], None),
    # const float *hmt_ctx_hidden(const hmt_ctx *ctx, int32_t i);
    ("hmt_ctx_hidden", _P(c_float), [hmt_ctx_p, c_int32], None),
    # const float *hmt_ctx_ffn_input(const hmt_ctx *ctx, int32_t i);
    ("hmt_ctx_ffn_input", _P(c_float), [hmt_ctx_p, c_int32], None),
    # int hmt_ctx_kv_clear(hmt_ctx *ctx);
    ("hmt_ctx_kv_clear", c_int, [hmt_ctx_p], _status),
    # int hmt_ctx_kv_rewind(hmt_ctx *ctx, int32_t n_keep);
    ("hmt_ctx_kv_rewind", c_int, [hmt_ctx_p, c_int32], _status),
    # int hmt_ctx_eval_seqs(hmt_ctx *ctx, const hmt_token *tokens, const float *embd,
    #                       const int32_t *seq, size_t n, const int32_t *pos,
    #                       const uint8_t *outputs);
    ("hmt_ctx_eval_seqs", c_int,
     [hmt_ctx_p, _P(hmt_token), _P(c_float), _P(c_int32), c_size_t, _P(c_int32), _P(c_uint8)],
     _status),
    # int32_t hmt_ctx_seq_n_past(const hmt_ctx *ctx, int32_t seq);
    ("hmt_ctx_seq_n_past", c_int32, [hmt_ctx_p, c_int32], None),
    # int hmt_ctx_seq_rewind(hmt_ctx *ctx, int32_t seq, int32_t n_keep);
    ("hmt_ctx_seq_rewind", c_int, [hmt_ctx_p, c_int32, c_int32], _status),
    # int hmt_ctx_seq_copy(hmt_ctx *ctx, int32_t src, int32_t dst);
    ("hmt_ctx_seq_copy", c_int, [hmt_ctx_p, c_int32, c_int32], _status),
    # int hmt_ctx_set_abort_callback(hmt_ctx *ctx, hmt_abort_fn fn, void *user_data);
    ("hmt_ctx_set_abort_callback", c_int, [hmt_ctx_p, hmt_abort_fn, c_void_p], _status),
    # int hmt_ctx_save(const hmt_ctx *ctx, void *buf, size_t cap, size_t *len_out);
    ("hmt_ctx_save", c_int, [hmt_ctx_p, c_void_p, c_size_t, _P(c_size_t)], _status_buffer),
    # int hmt_ctx_restore(hmt_ctx *ctx, const void *buf, size_t len);
    ("hmt_ctx_restore", c_int, [hmt_ctx_p, c_void_p, c_size_t], _status),
    # int hmt_ctx_save_file(const hmt_ctx *ctx, const char *path);
    ("hmt_ctx_save_file", c_int, [hmt_ctx_p, c_char_p], _status),
    # int hmt_ctx_restore_file(hmt_ctx *ctx, const char *path);
    ("hmt_ctx_restore_file", c_int, [hmt_ctx_p, c_char_p], _status),
    # int hmt_ctx_seq_save(const hmt_ctx *ctx, int32_t seq, void *buf, size_t cap,
    #                      size_t *len_out);
    ("hmt_ctx_seq_save", c_int, [hmt_ctx_p, c_int32, c_void_p, c_size_t, _P(c_size_t)],
     _status_buffer),
    # int hmt_ctx_seq_restore(hmt_ctx *ctx, int32_t seq, const void *buf, size_t len);
    ("hmt_ctx_seq_restore", c_int, [hmt_ctx_p, c_int32, c_void_p, c_size_t], _status),

    # ---- HMT adapters ----
    # int hmt_adapter_load(hmt_adapter **out, hmt_model *model, const char *path);
    ("hmt_adapter_load", c_int, [_P(hmt_adapter_p), hmt_model_p, c_char_p], _status),
    # void hmt_adapter_free(hmt_adapter *adapter);
    ("hmt_adapter_free", None, [hmt_adapter_p], None),
    # int hmt_adapter_get(const hmt_adapter *adapter, hmt_param key, double *out);
    ("hmt_adapter_get", c_int, [hmt_adapter_p, hmt_param, _P(c_double)], _status),

    # ---- HMT streams ----
    # int hmt_stream_create(hmt_stream **out, hmt_model *model, hmt_adapter *adapter,
    #                       const hmt_params *params);
    ("hmt_stream_create", c_int, [_P(hmt_stream_p), hmt_model_p, hmt_adapter_p, hmt_params_p],
     _status),
    # void hmt_stream_free(hmt_stream *stream);
    ("hmt_stream_free", None, [hmt_stream_p], None),
    # int hmt_stream_set_int(hmt_stream *stream, hmt_param key, int64_t value);
    ("hmt_stream_set_int", c_int, [hmt_stream_p, hmt_param, c_int64], _status),
    # int hmt_stream_get(const hmt_stream *stream, hmt_param key, double *out);
    ("hmt_stream_get", c_int, [hmt_stream_p, hmt_param, _P(c_double)], _status),
    # int hmt_stream_feed(hmt_stream *stream, const hmt_token *tokens, size_t n);
    ("hmt_stream_feed", c_int, [hmt_stream_p, _P(hmt_token), c_size_t], _status),
    # int hmt_streams_feed(hmt_stream *const *streams, int32_t n, const hmt_token *tokens);
    ("hmt_streams_feed", c_int, [_P(hmt_stream_p), c_int32, _P(hmt_token)], _status),
    # int hmt_stream_flush(hmt_stream *stream);
    ("hmt_stream_flush", c_int, [hmt_stream_p], _status),
    # const hmt_model *hmt_stream_model(const hmt_stream *stream);
    ("hmt_stream_model", hmt_model_p, [hmt_stream_p], None),
    # int64_t hmt_stream_n_fed(const hmt_stream *stream);
    ("hmt_stream_n_fed", c_int64, [hmt_stream_p], None),
    # int64_t hmt_stream_n_ready(const hmt_stream *stream);
    ("hmt_stream_n_ready", c_int64, [hmt_stream_p], None),
    # void hmt_stream_ready_range(const hmt_stream *stream, int64_t *first, int64_t *end);
    ("hmt_stream_ready_range", None, [hmt_stream_p, _P(c_int64), _P(c_int64)], None),
    # const float *hmt_stream_logits(const hmt_stream *stream, int64_t index);
    ("hmt_stream_logits", _P(c_float), [hmt_stream_p, c_int64], None),
    # const float *hmt_stream_ffn_input(const hmt_stream *stream, int64_t index);
    ("hmt_stream_ffn_input", _P(c_float), [hmt_stream_p, c_int64], None),
    # int64_t hmt_stream_n_segments(const hmt_stream *stream);
    ("hmt_stream_n_segments", c_int64, [hmt_stream_p], None),
    # int32_t hmt_stream_cache_fill(const hmt_stream *stream);
    ("hmt_stream_cache_fill", c_int32, [hmt_stream_p], None),
    # int hmt_stream_recall(const hmt_stream *stream, float *weights, int64_t *segments,
    #                       size_t cap, size_t *n_out);
    ("hmt_stream_recall", c_int, [hmt_stream_p, _P(c_float), _P(c_int64), c_size_t, _P(c_size_t)],
     _status_buffer),
    # int hmt_stream_set_recall_callback(hmt_stream *stream, hmt_recall_fn fn, void *user_data);
    ("hmt_stream_set_recall_callback", c_int, [hmt_stream_p, hmt_recall_fn, c_void_p], _status),
    # int hmt_stream_save(const hmt_stream *stream, void *buf, size_t cap, size_t *len_out);
    ("hmt_stream_save", c_int, [hmt_stream_p, c_void_p, c_size_t, _P(c_size_t)], _status_buffer),
    # int hmt_stream_restore(hmt_stream *stream, const void *buf, size_t len);
    ("hmt_stream_restore", c_int, [hmt_stream_p, c_void_p, c_size_t], _status),
    # int hmt_stream_save_file(const hmt_stream *stream, const char *path);
    ("hmt_stream_save_file", c_int, [hmt_stream_p, c_char_p], _status),
    # int hmt_stream_restore_file(hmt_stream *stream, const char *path);
    ("hmt_stream_restore_file", c_int, [hmt_stream_p, c_char_p], _status),
    # int hmt_stream_set_abort_callback(hmt_stream *stream, hmt_abort_fn fn, void *user_data);
    ("hmt_stream_set_abort_callback", c_int, [hmt_stream_p, hmt_abort_fn, c_void_p], _status),

    # ==== sampler.h: processors and samplers ====
    # int hmt_proc_create(hmt_proc **out, const hmt_proc_i *iface, void *user_data);
    ("hmt_proc_create", c_int, [_P(hmt_proc_p), _P(hmt_proc_i), c_void_p], _status),
    # void hmt_proc_free(hmt_proc *p);
    ("hmt_proc_free", None, [hmt_proc_p], None),
    # int hmt_sampler_create(hmt_sampler **out, const hmt_params *params);
    ("hmt_sampler_create", c_int, [_P(hmt_sampler_p), hmt_params_p], _status),
    # void hmt_sampler_free(hmt_sampler *sampler);
    ("hmt_sampler_free", None, [hmt_sampler_p], None),
    # int hmt_sampler_add(hmt_sampler *sampler, hmt_proc *p);
    ("hmt_sampler_add", c_int, [hmt_sampler_p, hmt_proc_p], _status),
    # int32_t hmt_sampler_n_procs(const hmt_sampler *sampler);
    ("hmt_sampler_n_procs", c_int32, [hmt_sampler_p], None),
    # int hmt_sampler_apply(hmt_sampler *sampler, const float *logits, int32_t n_vocab,
    #                       const float *key, int32_t n_key, float *logprobs_out);
    ("hmt_sampler_apply", c_int,
     [hmt_sampler_p, _P(c_float), c_int32, _P(c_float), c_int32, _P(c_float)], _status),
    # int hmt_sampler_accept(hmt_sampler *sampler, hmt_token token);
    ("hmt_sampler_accept", c_int, [hmt_sampler_p, hmt_token], _status),
    # int hmt_sampler_prepare(hmt_sampler *sampler, const float *keys, size_t n, int32_t n_key);
    ("hmt_sampler_prepare", c_int, [hmt_sampler_p, _P(c_float), c_size_t, c_int32], _status),
    # void hmt_sampler_reset(hmt_sampler *sampler);
    ("hmt_sampler_reset", None, [hmt_sampler_p], None),
    # void hmt_sampler_reseed(hmt_sampler *sampler, uint64_t seed);
    ("hmt_sampler_reseed", None, [hmt_sampler_p, c_uint64], None),
    # int hmt_sampler_sample(hmt_sampler *sampler, const float *logits, int32_t n_vocab,
    #                        hmt_token *out);
    ("hmt_sampler_sample", c_int, [hmt_sampler_p, _P(c_float), c_int32, _P(hmt_token)], _status),
    # int hmt_sampler_sample_ctx(hmt_sampler *sampler, const hmt_ctx *ctx, int32_t i,
    #                            hmt_token *out);
    ("hmt_sampler_sample_ctx", c_int, [hmt_sampler_p, hmt_ctx_p, c_int32, _P(hmt_token)],
     _status),
    # int hmt_sampler_sample_stream(hmt_sampler *sampler, const hmt_stream *stream,
    #                               int64_t index, hmt_token *out);
    ("hmt_sampler_sample_stream", c_int, [hmt_sampler_p, hmt_stream_p, c_int64, _P(hmt_token)],
     _status),
    # int hmt_proc_ditto_create(hmt_proc **out, const hmt_model *model, const hmt_params *params);
    ("hmt_proc_ditto_create", c_int, [_P(hmt_proc_p), hmt_model_p, hmt_params_p], _status),
    # int hmt_proc_ditto_set_delimiters(hmt_proc *p, const hmt_token *ids, size_t n);
    ("hmt_proc_ditto_set_delimiters", c_int, [hmt_proc_p, _P(hmt_token), c_size_t], _status),
    # int hmt_proc_min_p_create(hmt_proc **out, const hmt_params *params);
    ("hmt_proc_min_p_create", c_int, [_P(hmt_proc_p), hmt_params_p], _status),
    # int hmt_proc_typical_create(hmt_proc **out, const hmt_params *params);
    ("hmt_proc_typical_create", c_int, [_P(hmt_proc_p), hmt_params_p], _status),
    # int hmt_proc_penalties_create(hmt_proc **out, const hmt_params *params);
    ("hmt_proc_penalties_create", c_int, [_P(hmt_proc_p), hmt_params_p], _status),
    # int hmt_proc_logit_bias_create(hmt_proc **out, const hmt_model *model,
    #                                const hmt_token *tokens, const float *biases, size_t n);
    ("hmt_proc_logit_bias_create", c_int,
     [_P(hmt_proc_p), hmt_model_p, _P(hmt_token), _P(c_float), c_size_t], _status),

    # ==== knn.h: kNN-LM datastores ====
    # int hmt_knn_builder_create(hmt_knn_builder **out, const hmt_model *model, const char *path,
    #                            const hmt_params *params);
    ("hmt_knn_builder_create", c_int, [_P(hmt_knn_builder_p), hmt_model_p, c_char_p, hmt_params_p],
     _status),
    # void hmt_knn_builder_free(hmt_knn_builder *builder);
    ("hmt_knn_builder_free", None, [hmt_knn_builder_p], None),
    # int hmt_knn_builder_add(hmt_knn_builder *builder, const float *keys, const hmt_token *values,
    #                         size_t n);
    ("hmt_knn_builder_add", c_int, [hmt_knn_builder_p, _P(c_float), _P(hmt_token), c_size_t],
     _status),
    # int hmt_knn_builder_add_ctx(hmt_knn_builder *builder, hmt_ctx *ctx, const hmt_token *tokens,
    #                             size_t n, hmt_knn_progress_fn progress, void *user_data);
    ("hmt_knn_builder_add_ctx", c_int,
     [hmt_knn_builder_p, hmt_ctx_p, _P(hmt_token), c_size_t, hmt_knn_progress_fn, c_void_p],
     _status),
    # int hmt_knn_builder_add_stream(hmt_knn_builder *builder, hmt_stream *stream,
    #                                const hmt_token *tokens, size_t n,
    #                                hmt_knn_progress_fn progress, void *user_data);
    ("hmt_knn_builder_add_stream", c_int,
     [hmt_knn_builder_p, hmt_stream_p, _P(hmt_token), c_size_t, hmt_knn_progress_fn, c_void_p],
     _status),
    # int hmt_knn_builder_set_abort_callback(hmt_knn_builder *builder, hmt_abort_fn fn,
    #                                        void *user_data);
    ("hmt_knn_builder_set_abort_callback", c_int, [hmt_knn_builder_p, hmt_abort_fn, c_void_p],
     _status),
    # int64_t hmt_knn_builder_count(const hmt_knn_builder *builder);
    ("hmt_knn_builder_count", c_int64, [hmt_knn_builder_p], None),
    # int hmt_knn_builder_finish(hmt_knn_builder *builder);
    ("hmt_knn_builder_finish", c_int, [hmt_knn_builder_p], _status),
    # int hmt_knn_load(hmt_knn **out, const hmt_model *model, const char *path,
    #                  const hmt_params *params);
    ("hmt_knn_load", c_int, [_P(hmt_knn_p), hmt_model_p, c_char_p, hmt_params_p], _status),
    # void hmt_knn_free(hmt_knn *knn);
    ("hmt_knn_free", None, [hmt_knn_p], None),
    # int64_t hmt_knn_count(const hmt_knn *knn);
    ("hmt_knn_count", c_int64, [hmt_knn_p], None),
    # int32_t hmt_knn_dim(const hmt_knn *knn);
    ("hmt_knn_dim", c_int32, [hmt_knn_p], None),
    # int32_t hmt_knn_n_vocab(const hmt_knn *knn);
    ("hmt_knn_n_vocab", c_int32, [hmt_knn_p], None),
    # hmt_knn_dtype hmt_knn_key_dtype(const hmt_knn *knn);
    ("hmt_knn_key_dtype", hmt_knn_dtype, [hmt_knn_p], None),
    # double hmt_knn_bytes_per_key(const hmt_knn *knn);
    ("hmt_knn_bytes_per_key", c_double, [hmt_knn_p], None),
    # int hmt_knn_copy_entry(const hmt_knn *knn, int64_t i, float *key, size_t cap,
    #                        hmt_token *value);
    ("hmt_knn_copy_entry", c_int, [hmt_knn_p, c_int64, _P(c_float), c_size_t, _P(hmt_token)],
     _status),
    # int hmt_knn_search(const hmt_knn *knn, const float *queries, size_t n_queries, int32_t k,
    #                    float *dist_out, int64_t *idx_out, hmt_token *values_out);
    ("hmt_knn_search", c_int,
     [hmt_knn_p, _P(c_float), c_size_t, c_int32, _P(c_float), _P(c_int64), _P(hmt_token)],
     _status),
    # int hmt_knn_interpolate(const hmt_knn *knn, const hmt_params *params, const float *keys,
    #                         size_t n, const float *logits, int32_t n_vocab,
    #                         float *logprobs_out, float *lambda_out);
    ("hmt_knn_interpolate", c_int,
     [hmt_knn_p, hmt_params_p, _P(c_float), c_size_t, _P(c_float), c_int32, _P(c_float),
      _P(c_float)], _status),
    # int hmt_knn_interpolate_neighbors(const hmt_params *params, const float *dists,
    #                                   const hmt_token *values, int32_t n_neighbors,
    #                                   const float *logits, int32_t n_vocab,
    #                                   float *logprobs_out, float *lambda_out);
    ("hmt_knn_interpolate_neighbors", c_int,
     [hmt_params_p, _P(c_float), _P(hmt_token), c_int32, _P(c_float), c_int32, _P(c_float),
      _P(c_float)], _status),
    # int hmt_proc_knn_create(hmt_proc **out, hmt_knn *knn, const hmt_params *params);
    ("hmt_proc_knn_create", c_int, [_P(hmt_proc_p), hmt_knn_p, hmt_params_p], _status),

    # ---- experimental.h (HMT_EXPERIMENTAL version node) ----
    # int32_t hmt_knn_faiss_available(void);
    ("hmt_knn_faiss_available", c_int32, [], None),
    # int hmt_knn_faiss_build(const hmt_knn *knn, const char *path, const hmt_params *params,
    #                         hmt_knn_progress_fn progress, void *user_data);
    ("hmt_knn_faiss_build", c_int,
     [hmt_knn_p, c_char_p, hmt_params_p, hmt_knn_progress_fn, c_void_p], _status),
    # int hmt_knn_faiss_attach(hmt_knn *knn, const char *path, const hmt_params *params);
    ("hmt_knn_faiss_attach", c_int, [hmt_knn_p, c_char_p, hmt_params_p], _status),
    # void hmt_knn_faiss_detach(hmt_knn *knn);
    ("hmt_knn_faiss_detach", None, [hmt_knn_p], None),
]


# ---------------------------------------------------------------------------
# Finding and loading the library
# ---------------------------------------------------------------------------
SONAME = f"libhmt.so.{ABI_VERSION}"
_HERE = os.path.dirname(os.path.abspath(__file__))


def _candidates():
    """(how, path-or-name) in search order: $HMT_LIB_PATH, the copy bundled
    in the package (a wheel), the in-tree build (a source checkout only), the
    system by SONAME, then whatever libhmt find_library knows (which may be
    another ABI: the import then says so)."""
    env = os.environ.get("HMT_LIB_PATH")
    if env:
        yield "HMT_LIB_PATH", os.path.join(env, SONAME) if os.path.isdir(env) else env
        return  # an explicit choice is never silently replaced by another library
    yield "package", os.path.join(_HERE, SONAME)
    root = os.path.dirname(os.path.dirname(_HERE))
    if os.path.exists(os.path.join(root, "include", "hmt", "hmt.h")):
        yield "in-tree build", os.path.join(root, "build", SONAME)
    yield "dynamic loader", SONAME
    found = ctypes.util.find_library("hmt")
    if found and found != SONAME:
        yield "find_library", found


def _load():
    tried = []
    for how, path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(f"{how}: {path} (missing)")
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append(f"{how}: {path} ({e})")
    raise ImportError("hmt: cannot load libhmt (set HMT_LIB_PATH to libhmt.so.N); tried:\n  "
                      + "\n  ".join(tried))


def _missing_stub(name):
    def stub(*args, **kwargs):
        raise HmtError(Status.E_UNSUPPORTED, name,
                       f"the loaded libhmt ({LIB_PATH}, {lib.hmt_version_string().decode()}) "
                       f"has no {name}")
    stub.__name__ = name
    stub.missing = True
    return stub


def _bind(cdll):
    missing = []
    for name, restype, argtypes, errcheck in FUNCTIONS:
        try:
            fn = getattr(cdll, name)
        except AttributeError:
            missing.append(name)
            setattr(cdll, name, _missing_stub(name))
            continue
        fn.restype = restype
        fn.argtypes = argtypes
        if errcheck is not None:
            fn.errcheck = errcheck
    return missing


lib, LIB_PATH = _load()
MISSING = _bind(lib)

_abi = lib.hmt_abi_version() if "hmt_abi_version" not in MISSING else None
if _abi != ABI_VERSION:
    raise ImportError(f"hmt: {LIB_PATH} has ABI {_abi}, this package needs ABI {ABI_VERSION} "
                      f"(libhmt.so.{ABI_VERSION}); set HMT_LIB_PATH to a matching library")
_ver = lib.hmt_version_number()
LIB_VERSION = (_ver // 10000, _ver // 100 % 100, _ver % 100)
if MISSING:
    warnings.warn(f"hmt: libhmt {'.'.join(map(str, LIB_VERSION))} at {LIB_PATH} lacks "
                  f"{len(MISSING)} function(s) this binding knows ({', '.join(MISSING)}); "
                  "calling them raises HmtError(E_UNSUPPORTED)", RuntimeWarning, stacklevel=2)


def available(name):
    """True when the loaded library exports the C function `name`."""
    return name not in MISSING and any(f[0] == name for f in FUNCTIONS)


def strerror(code):
    """hmt_strerror(code) as str."""
    try:
        return lib.hmt_strerror(int(code)).decode("utf-8", "replace")
    except Exception:  # interpreter shutdown
        return "error"


def last_error_msg():
    """hmt_last_error_msg() as str: the message of the last failure on the
    calling thread ("" if none since the start or last_error_clear());
    successful calls leave it alone."""
    return lib.hmt_last_error_msg().decode("utf-8", "replace")


def last_error_clear():
    """hmt_last_error_clear(): empty the calling thread's message."""
    lib.hmt_last_error_clear()


def _ensure_cleanup():
    # The library must not call into a Python log callback after the
    # interpreter has torn it down.
    import atexit

    def reset():
        try:
            lib.hmt_log_set(hmt_log_fn(), None)
        except Exception:
            pass
    atexit.register(reset)


_ensure_cleanup()
del _abi, _ver, sys
