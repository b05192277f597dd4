/*
 * libhmt — thread pools shared by contexts, streams and datastores.
 * Part of <hmt/hmt.h>; self-contained C99, compiles as C and as C++.
 *
 * Every context, stream and datastore runs its parallel work (matmuls,
 * attention, searches) on a thread pool. By default that is one pool for the
 * whole process, with one thread per online CPU, created on first use and
 * stopped when the last object using it is freed: a
 * host with many contexts does not start a pool for each. A host that wants
 * its own arrangement creates pools and attaches them (llama.h's
 * llama_attach_threadpool is the model):
 *
 *     hmt_threadpool *tp = NULL;
 *     hmt_threadpool_create(&tp, 8);
 *     hmt_ctx_attach_threadpool(ctx_a, tp);    // ctx_a and ctx_b share tp
 *     hmt_ctx_attach_threadpool(ctx_b, tp);
 *     hmt_threadpool_free(tp);                 // the contexts hold it
 *
 * A pool runs one object's work at a time: an eval (or feed, or search) holds
 * it for the whole call, so objects sharing a pool that are used from several
 * threads at once take turns (a datastore search that finds its pool busy
 * runs on the calling thread alone instead). Give objects their own pools to
 * run them in parallel. HMT_P_N_THREADS = n on a create function gives that
 * object a private pool of n threads; HMT_AUTO (the default) the shared one.
 * Workers spin about 100 µs after each job, then sleep: an idle pool costs no
 * CPU.
 */
#ifndef INCLUDE_HMT_THREADPOOL_H
#define INCLUDE_HMT_THREADPOOL_H

#include "params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hmt_threadpool hmt_threadpool;

/** Create a pool of n_threads threads (the calling thread counts as one of
 *  them while it runs a job), or HMT_AUTO for one per online CPU.
 *  Errors: HMT_E_INVAL (n_threads outside 1..1024), HMT_E_NOMEM (the threads
 *  could not be started). */
HMT_API HMT_NODISCARD int hmt_threadpool_create(hmt_threadpool **out, int32_t n_threads);
/** Release the caller's reference (NULL is a no-op): the pool stops when the
 *  last object using it is freed or attached elsewhere. */
HMT_API void hmt_threadpool_free(hmt_threadpool *tp);
/** Its number of threads (0 for NULL). */
HMT_API int32_t hmt_threadpool_n_threads(const hmt_threadpool *tp);

#ifdef __cplusplus
}
#endif

#endif /* INCLUDE_HMT_THREADPOOL_H */
