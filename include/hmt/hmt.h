/*
 * libhmt — memory-augmented LLM inference on the CPU.
 *
 * This umbrella header and the headers it includes are the specification of
 * libhmt's stable API: anything not declared in them is not part of it
 * (<hmt/experimental.h> is the opt-in tier that may still change). Each is
 * self-contained C99, includes only standard headers and its siblings, and
 * compiles as C and as C++. The pages of docs/ they cite are installed with
 * them, in <prefix>/share/doc/hmt.
 *
 *   <hmt/version.h>  versions, export macros
 *   <hmt/error.h>    status codes, the thread's last error, logging
 *   <hmt/params.h>   options: keys per object, HMT_AUTO, named modes
 *   <hmt/threadpool.h> thread pools shared by contexts, streams, datastores
 *   <hmt/model.h>    models and tokenizers
 *   <hmt/context.h>  contexts: a model with a KV cache
 *   <hmt/stream.h>   HMT adapters and document streams
 *   <hmt/sampler.h>  samplers, processors, DITTO
 *   <hmt/knn.h>      kNN-LM datastores and their processor
 *
 * Walkthrough
 * -----------
 *     hmt_model *model = NULL;
 *     if (hmt_model_load(&model, "model.gguf", NULL) != HMT_OK) {
 *         fprintf(stderr, "%s\n", hmt_last_error_msg());
 *         return 1;
 *     }
 *     hmt_ctx *ctx = NULL;
 *     if (hmt_ctx_create(&ctx, model, NULL) != HMT_OK) { ... }
 *     hmt_model_free(model);                       // ctx keeps it alive
 *
 *     hmt_token toks[256]; size_t n = 0;
 *     hmt_tokenize(hmt_ctx_model(ctx), "Hello", 5, HMT_TOKENIZE_ADD_BOS, toks, 256, &n);
 *     hmt_ctx_eval_tokens(ctx, toks, n, 0);        // logits of the last token
 *     const float *logits = hmt_ctx_logits(ctx, -1);
 *
 *     hmt_ctx_free(ctx);                           // frees the model too
 *
 * Conventions (they hold for every function unless its comment says otherwise)
 * -----------
 * - Status: functions returning `int` return HMT_OK (0) or a negative
 *   hmt_status; on failure the calling thread's hmt_last_error_msg() says
 *   what failed (<hmt/error.h>: the one error channel).
 * - Handles are opaque and created by the library. `hmt_x **out` arguments
 *   hand a reference to the caller, who releases it with hmt_x_free(); every
 *   _free() accepts NULL. On failure *out is set to NULL.
 * - Lifetimes, one rule: every handle that needs another after the call that
 *   created it holds a reference to it, so handles may be freed in any order
 *   and an object lives until its last holder is freed. Nothing is retained
 *   through a `const` parameter: a const handle is used during the call only.
 *
 *     handle        created by                 holds a reference to
 *     hmt_model     hmt_model_load             -
 *     hmt_ctx       hmt_ctx_create             its model
 *     hmt_adapter   hmt_adapter_load           its model
 *     hmt_stream    hmt_stream_create          its model and adapter
 *     hmt_proc      hmt_proc_create,           the datastore (kNN); DITTO
 *                   _ditto_create, _knn_create and user processors: nothing
 *     hmt_sampler   hmt_sampler_create         the processors added to it
 *     hmt_threadpool hmt_threadpool_create     -  (contexts, streams and
 *                                                datastores hold their pool)
 *     hmt_knn       hmt_knn_load               - (the model is only checked)
 *     hmt_knn_builder hmt_knn_builder_create   - (records the model's
 *                                                fingerprint)
 *     hmt_params    hmt_params_create, _copy   - (creators copy its values)
 *
 * - Pointers returned by getters are borrowed: they belong to the handle and
 *   stay valid for the lifetime stated at the function.
 * - Options: an opaque hmt_params object filled with typed, enum-keyed
 *   setters; each create function reads the keys of its object and refuses
 *   others (<hmt/params.h>). NULL means "all defaults".
 * - Threads: a model, adapter and loaded datastore are immutable and may be
 *   shared by any number of threads and handles. A context, stream, sampler,
 *   processor, builder or params object is used by one thread at a time: a
 *   call that overlaps another call on the same handle (from another thread,
 *   or from one of the handle's own callbacks) returns HMT_E_MISUSE and
 *   changes nothing. Callbacks run on the thread of the call that triggers
 *   them. The library never prints, exits or aborts.
 * - Freeing a handle twice, or using it after its _free(), is undefined, as
 *   with free(); libhmt catches it on a best-effort basis (HMT_E_MISUSE, the
 *   call is ignored; docs/API.md, "Misuse detection").
 * - Strings are UTF-8. Token ids are int32_t (hmt_token). Counts of elements
 *   in a caller's array are size_t and follow the array (`tokens, n`); model
 *   dimensions (n_vocab, n_embd, key widths, k) are int32_t; positions in a
 *   stream are int64_t.
 */
#ifndef HMT_H
#define HMT_H

#include "version.h"
#include "error.h"
#include "params.h"
#include "threadpool.h"
#include "model.h"
#include "context.h"
#include "stream.h"
#include "sampler.h"
#include "knn.h"

#endif /* HMT_H */
