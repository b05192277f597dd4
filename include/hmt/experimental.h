/*
 * libhmt — the experimental tier: what research may still change.
 *
 * Nothing declared here is stable. Functions are exported in the
 * HMT_EXPERIMENTAL version node (not in the stable ABI baseline) and keys are
 * numbered from 1000; any release may change or remove them (docs/ABI.md).
 * Including this header is the opt-in, in the manner of zstd's
 * ZSTD_STATIC_LINKING_ONLY: a host that does not include it uses only the
 * stable API. Self-contained C99, compiles as C and as C++.
 */
#ifndef INCLUDE_HMT_EXPERIMENTAL_H
#define INCLUDE_HMT_EXPERIMENTAL_H

#include "hmt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Experimental keys (hmt_params_set_int / _set_float, same rules as the
 * stable ones: each is read by the objects named and refused by the others)
 * ------------------------------------------------------------------------- */
/* Streams: emulate the reference's BF16 recall arithmetic; 0 off, 1 on, or
 * HMT_AUTO for the adapter's setting (default). */
#define HMT_P_RECALL_BF16 ((hmt_param)1000)
/* kNN-LM, adaptive λ (hmt_proc_knn_create, hmt_knn_interpolate(_neighbors)):
 * the λ rule (hmt_knn_lambda_mode, default fixed) and its constants. */
#define HMT_P_KNN_LAMBDA_MODE ((hmt_param)1001) /* int: hmt_knn_lambda_mode  */
#define HMT_P_KNN_BETA ((hmt_param)1002)        /* float: entropy_gap slope β (0)  */
#define HMT_P_KNN_BIAS ((hmt_param)1003)        /* float: entropy_gap offset b (0) */
#define HMT_P_KNN_LAMBDA_MAX ((hmt_param)1004)  /* float: upper clip of λ (1)     */
/* FAISS tuning (hmt_knn_faiss_attach: NPROBE, RERANK; hmt_knn_faiss_build:
 * NLIST, PQ_M, TRAIN_SIZE, SEED). */
#define HMT_P_KNN_NPROBE ((hmt_param)1005)     /* int: IVF lists probed (32)      */
#define HMT_P_KNN_NLIST ((hmt_param)1006)      /* int: IVF lists, or HMT_AUTO     */
#define HMT_P_KNN_PQ_M ((hmt_param)1007)       /* int: PQ bytes per key, or HMT_AUTO */
#define HMT_P_KNN_TRAIN_SIZE ((hmt_param)1008) /* int: training keys, or HMT_AUTO */
#define HMT_P_KNN_RERANK ((hmt_param)1009)     /* int: candidates per neighbour
                                                  re-scored exactly (4)          */
#define HMT_P_KNN_SEED ((hmt_param)1010)       /* int: sample and k-means seed
                                                  (0x484d54)                     */
/* Streams, modes full, rmt and segments: every segment pass after the first
 * also keeps the document's first S tokens as attention sinks, evaluated at
 * positions 0..S-1 before [P, sensory, segment] (which move up by S); 0 = off
 * (default); S <= L. An experiment (docs/PERPLEXITY.md, "Sinks in HMT
 * segments"): the shipped adapter was not trained with it. Streams using it
 * cannot be saved or restored (HMT_E_UNSUPPORTED). */
#define HMT_P_SEGMENT_SINKS ((hmt_param)1011)

/** Values of HMT_P_KNN_LAMBDA_MODE (the formulas are in <hmt/knn.h>). */
typedef enum hmt_knn_lambda_mode {
    HMT_KNN_LAMBDA_FIXED = 0,        /* λ = λ0 (the original kNN-LM)           */
    HMT_KNN_LAMBDA_ENTROPY_GAP = 1,  /* from the LM and kNN entropies' gap     */
    HMT_KNN_LAMBDA_ENTROPY_NORM = 2  /* from the kNN entropy over log k_eff    */
} hmt_knn_lambda_mode;

/* ---------------------------------------------------------------------------
 * Approximate search: a FAISS IVF-PQ index beside the datastore (docs/KNN.md)
 * ------------------------------------------------------------------------- */
/* FAISS is an optional dependency of libhmt. In a build without it these
 * functions exist but build/attach fail with HMT_E_UNSUPPORTED.
 *
 *     hmt_knn_faiss_build(knn, "wiki.knn.faiss", params, NULL, NULL); // once
 *     hmt_knn_faiss_attach(knn, "wiki.knn.faiss", params);            // per load
 *     hmt_knn_search(knn, ...);   // now: IVF-PQ candidates, exact distances
 */

/** [EXPERIMENTAL] 1 when this libhmt was built with the FAISS backend, 0 otherwise. */
HMT_API int32_t hmt_knn_faiss_available(void);

/** [EXPERIMENTAL] Build an IVF-PQ index (docs/KNN.md) over all keys of knn and write
 *  it to path (through a unique temporary "<path>.tmp-XXXXXX", renamed over
 *  path when complete: a failure leaves path as it was). The coarse
 *  quantizer (nlist lists, k-means) and the product quantizer (m
 *  sub-quantizers of 8 bits: m bytes per key) are trained on a random sample
 *  of the keys, drawn without replacement; then every key is added, read in
 *  chunks from the mapped datastore. params keys: HMT_P_KNN_NLIST,
 *  HMT_P_KNN_PQ_M, HMT_P_KNN_TRAIN_SIZE (HMT_AUTO for each: see
 *  docs/KNN.md), HMT_P_KNN_SEED (the sample and the k-means seeds: equal
 *  seeds give equal files). Runs on the datastore's threads. progress (may be
 *  NULL) is called after each chunk of keys added; nonzero stops the build.
 *  The file records the datastore's identity (its header, values and a
 *  sample of keys), so it can only be attached to the same datastore.
 *  Errors: HMT_E_INVAL (NULL; m not dividing the key width; fewer than
 *  39·max(nlist, 256) training keys — k-means needs 39 per centroid; nlist
 *  or the training size above the key count), HMT_E_UNSUPPORTED (FAISS not
 *  built in), HMT_E_IO, HMT_E_ABORTED, HMT_E_NOMEM. */
HMT_API HMT_NODISCARD int hmt_knn_faiss_build(const hmt_knn *knn, const char *path,
                                              const hmt_params *params,
                                              hmt_knn_progress_fn progress, void *user_data);

/** [EXPERIMENTAL] Read an index file written by hmt_knn_faiss_build for this datastore and
 *  attach it (replacing one attached before): from then on hmt_knn_search,
 *  hmt_knn_interpolate and the kNN processors take, for each query, the
 *  k·HMT_P_KNN_RERANK best candidates of the IVF-PQ search over
 *  HMT_P_KNN_NPROBE lists, recompute their distances exactly from the stored
 *  keys (as exact search does), and return the k best of those. The result
 *  is approximate only in which keys are found (recall < 1), never in the
 *  distances. Call it before the datastore is shared: it must not run while
 *  another call (another thread, or a callback of an index build) uses the
 *  same datastore, and returns HMT_E_MISUSE then. The file is read and closed;
 *  the index lives in memory until hmt_knn_faiss_detach or hmt_knn_free.
 *  Errors: HMT_E_INVAL (NULL; an index built for another datastore: the
 *  message says what differs), HMT_E_IO, HMT_E_FORMAT (not an index file,
 *  truncated, corrupt: the message says which), HMT_E_UNSUPPORTED (FAISS not
 *  built in; a newer file version), HMT_E_NOMEM. On error the datastore
 *  keeps the index it had. */
HMT_API HMT_NODISCARD int hmt_knn_faiss_attach(hmt_knn *knn, const char *path,
                                               const hmt_params *params);

/** [EXPERIMENTAL] Drop the attached index (exact search again); no-op without one or for
 *  NULL. Same rule as attach: not while another call uses the datastore
 *  (then nothing is dropped and hmt_last_error_msg() says so). */
HMT_API void hmt_knn_faiss_detach(hmt_knn *knn);

#ifdef __cplusplus
}
#endif

#endif /* INCLUDE_HMT_EXPERIMENTAL_H */
