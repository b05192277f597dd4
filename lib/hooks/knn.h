/* kNN-LM datastore internals shared by knn.c (file format, builder, loader)
 * and knn_search.c (exact search, interpolation, the chain processor), with
 * knn_index.c (FAISS) and knn_exact.c (exact distances, re-ranking) below. */
#ifndef HMT_KNN_INTERNAL_H
#define HMT_KNN_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/busy.h"
#include "core/error.h"
#include "hmt/experimental.h"
#include "kernels/kernels.h"

/* ---- file format (docs/KNN.md) ---------------------------------------------
 * Little-endian. A 128-byte header, then the keys (count × dim, F32 or F16,
 * row-major) at keys_offset, then the values (count × int32) at
 * values_offset; both offsets are multiples of the alignment (64). */
#define HMTI_KNN_MAGIC "HMTKNNDS"
#define HMTI_KNN_VERSION 2u      /* 2: content checksum (version 1 is refused) */
#define HMTI_KNN_HEADER_SIZE 128u
#define HMTI_KNN_ALIGN 64u
#define HMTI_KNN_CHECKED_BYTES 88u /* header bytes covered by the checksum */

enum {
    HMTI_KNN_OFF_MAGIC = 0,      /* char[8]                                  */
    HMTI_KNN_OFF_VERSION = 8,    /* u32                                      */
    HMTI_KNN_OFF_HSIZE = 12,     /* u32 header size (128)                    */
    HMTI_KNN_OFF_DIM = 16,       /* u32 key width                            */
    HMTI_KNN_OFF_KEY_DTYPE = 20, /* u32 hmt_knn_dtype                        */
    HMTI_KNN_OFF_VAL_DTYPE = 24, /* u32 0 = int32                            */
    HMTI_KNN_OFF_ALIGN = 28,     /* u32 alignment of the sections            */
    HMTI_KNN_OFF_COUNT = 32,     /* u64 number of pairs                      */
    HMTI_KNN_OFF_KEYS = 40,      /* u64 keys offset                          */
    HMTI_KNN_OFF_VALUES = 48,    /* u64 values offset                        */
    HMTI_KNN_OFF_FSIZE = 56,     /* u64 file size                            */
    HMTI_KNN_OFF_MODEL_FP = 64,  /* u64 model fingerprint                    */
    HMTI_KNN_OFF_N_VOCAB = 72,   /* i32 model n_vocab                        */
    HMTI_KNN_OFF_KEY_KIND = 76,  /* u32 0 = last FFN input (reserved)        */
    HMTI_KNN_OFF_CONTENT = 80,   /* u64 checksum of [keys offset, file size) */
    HMTI_KNN_OFF_CHECKSUM = 88   /* u64 FNV-1a of bytes [0, 88)              */
};


struct hmt_knn {
    const uint8_t *keys_raw; /* inside the mapping                  */
    const int32_t *values;   /* inside the mapping                  */
    float *norms;            /* ‖k_i‖², computed at load            */
    int64_t count;
    int32_t dim, n_vocab;
    hmt_knn_dtype dtype;
    void *map;
    size_t map_len;
    hmti_pool *pool;          /* search threads (held; maybe shared)    */
    int n_threads;            /* the pool's                             */
    struct hmti_faiss *faiss; /* attached IVF-PQ index or NULL (knn_index.c) */
    int32_t nprobe, rerank;   /* its search settings, read at attach */
    _Atomic int refs;         /* the caller's + one per kNN processor */
    atomic_int user_freed;    /* hmt_knn_free was called (once only)   */
    hmti_guard guard;         /* last: see busy.h                    */
};

/* The content checksum of len bytes (keys, padding, values: lib/hooks/knn_sum.c),
 * shared over pool when not NULL. HMT_OK or HMT_E_NOMEM. */
int hmti_knn_content_sum(hmti_pool *pool, const uint8_t *p, uint64_t len, uint64_t *out);

/* References: hmt_knn_free drops the caller's; a kNN processor holds one, so
 * the datastore outlives it whatever the order of the frees. */
void hmti_knn_retain(const hmt_knn *knn);
void hmti_knn_release(const hmt_knn *knn);

/* Key i as F32 into out[dim]. */
void hmti_knn_key(const hmt_knn *knn, int64_t i, float *out);

/* Σ(q−k)² in double, differences first: the exact distance every search
 * returns (knn_exact.c). */
double hmti_knn_sqdist(const float *a, const float *b, int64_t d);

/* Recompute the exact distances of n candidate ids (−1 = none) of query q and
 * write the k best by (distance, index) to dist_out/idx_out (either may be
 * NULL; slots past the candidates get −1 and +inf). kbuf: dim floats;
 * scratch: n·16 bytes (knn_exact.c). */
void hmti_knn_rerank(const hmt_knn *knn, const float *q, const int64_t *ids, int64_t n, int64_t k,
                     float *dist_out, int64_t *idx_out, float *kbuf, void *scratch);

/* Search through the attached FAISS index (knn->faiss != NULL), queries
 * already checked finite (knn_index.c). */
int hmti_knn_faiss_search(const hmt_knn *knn, const float *queries, size_t n, int64_t k,
                          float *dist_out, int64_t *idx_out);

/* The interpolation settings, read once from a params object. */
typedef struct {
    int32_t k;
    double lambda, temperature, beta, bias, lambda_max;
    int mode;
} hmti_knn_cfg;

/* Read the kNN keys of params (HMT_E_INVAL naming another key set on it;
 * with_k = 0: HMT_P_KNN_K is another key). */
int hmti_knn_cfg_read(hmti_knn_cfg *cfg, const hmt_params *params, int with_k, const char *fn);

#endif
