"""libhmt from Python: memory-augmented LLM inference on the CPU.

    import hmt
    with hmt.Model("model.gguf") as model, hmt.Context(model, n_ctx=512) as ctx:
        ids = model.tokenize("The history of")
        ctx.eval_tokens(ids)
        next_id = hmt.Sampler(temperature=0).sample_ctx(ctx)

ctypes and the standard library only; NumPy is used when importable (logits
come back as arrays). The shared library is found through $HMT_LIB_PATH, then
next to this package (hmt/libhmt.so.1, then ../build/libhmt.so.1 for an
in-tree checkout), then the system (the dynamic loader's path for
libhmt.so.1, then ctypes.util.find_library("hmt")). Its ABI number is checked at import. See
docs/PYTHON.md; the raw C functions are hmt.capi.lib.hmt_*.
"""
from . import _capi as capi
from ._api import (AUTO, COMPUTE_BF16, COMPUTE_F32, DETOKENIZE_SPECIAL, HAVE_NUMPY,
                   OUT_FFN_INPUT, OUT_HIDDEN, OUT_LOGITS, TOKENIZE_ADD_BOS, TOKENIZE_SPECIAL,
                   Adapter, ComputeType, Context, DittoMode, DittoProc, DittoRenorm, DittoScope,
                   HmtError, Knn, KnnBuilder, KnnDtype, KnnLambdaMode, KnnProc, KvType, LogitBiasProc,
                   LogLevel, MinPProc, Mode, Model, PenaltiesProc, TypicalProc, Param, Params, Proc, PyProc, Sampler, Status, Stream, ThreadPool, abi_version,
                   knn_faiss_available, knn_interpolate_neighbors, streams_feed, param_bounds, param_name,
                   set_log_callback, version, version_string)
from ._capi import ABI_VERSION, LIB_PATH, last_error_clear, last_error_msg, strerror

__version__ = ".".join(map(str, capi.BINDING_VERSION))

__all__ = ["Adapter", "Context", "HmtError", "LogLevel", "Mode", "Model", "Param", "Params",
           "Sampler", "Status", "Stream", "ThreadPool", "abi_version", "param_bounds", "param_name",
           "set_log_callback", "version", "version_string", "strerror", "last_error_msg",
           "last_error_clear", "capi", "ABI_VERSION", "LIB_PATH", "HAVE_NUMPY",
           "TOKENIZE_ADD_BOS", "TOKENIZE_SPECIAL", "DETOKENIZE_SPECIAL", "OUT_LOGITS",
           "OUT_HIDDEN", "OUT_FFN_INPUT", "AUTO", "COMPUTE_F32", "COMPUTE_BF16", "ComputeType",
           "KvType", "DittoMode", "DittoScope", "DittoRenorm", "KnnLambdaMode", "KnnDtype", "Proc",
           "PyProc", "DittoProc", "MinPProc", "TypicalProc", "PenaltiesProc", "LogitBiasProc",
           "KnnProc", "Knn", "KnnBuilder", "knn_faiss_available",
           "knn_interpolate_neighbors", "streams_feed", "__version__"]

_REMOVED = {
    "Chain": "hmt.Chain was removed in 0.2: the sampler is the chain now "
             "(hmt.Sampler(procs=[...]) with apply/accept/reset/sample; docs/PYTHON.md)",
}


def __getattr__(name):
    if name in _REMOVED:
        raise AttributeError(_REMOVED[name])
    raise AttributeError(f"module 'hmt' has no attribute {name!r}")
