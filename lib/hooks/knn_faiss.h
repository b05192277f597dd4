/* The bridge between libhmt's C and FAISS's C++ (lib/hooks/knn_faiss.cc, the only
 * C++ file; lib/hooks/knn_faiss_stub.c when libhmt is built without FAISS). This
 * header is read by both languages, so it holds plain C types only.
 *
 * Every function returns an hmt_status and records a message through
 * hmti_errf; no C++ exception ever crosses it. The heavy arithmetic of
 * training and encoding (nearest-centroid assignment of many vectors) is not
 * done by FAISS, whose Debian build has scalar distance loops and the
 * reference BLAS, but by hmti_nearest_rows below (libxsmm GEMMs on libhmt's
 * pool); FAISS keeps the k-means iterations, the index structure, its file
 * format and the IVF-PQ search. */
#ifndef HMT_KNN_FAISS_H
#define HMT_KNN_FAISS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hmt_threadpool hmti_pool;
typedef struct hmti_faiss hmti_faiss; /* one IndexIVFPQ */

/* For each of the n rows of x (row-major n × d), the nearest of the nc rows
 * of c (row-major nc × d) by squared L2 (lowest index on ties): its index in
 * idx[i] and the squared distance (from the GEMM form, clamped at 0) in
 * dist[i]. Runs on pool (NULL: the calling thread). lib/knn_assign.c. */
int hmti_nearest_rows(hmti_pool *pool, const float *x, int64_t n, const float *c, int64_t nc,
                      int64_t d, float *dist, int64_t *idx);

/* 1 when FAISS is compiled in. */
int hmti_faiss_available(void);

/* An untrained IndexIVFPQ: nlist lists, m sub-quantizers of 8 bits, L2. */
int hmti_faiss_create(hmti_faiss **out, int32_t d, int32_t nlist, int32_t m, uint64_t seed);
void hmti_faiss_free(hmti_faiss *f);

/* Train the coarse centroids (k-means, FAISS's 10 iterations) and the product
 * quantizer on the residuals of n training vectors. */
int hmti_faiss_train(hmti_faiss *f, hmti_pool *pool, int64_t n, const float *x);

/* Add n vectors with ids first_id … first_id+n−1: coarse list and PQ code
 * computed with hmti_nearest_rows, appended to the inverted lists. */
int hmti_faiss_add(hmti_faiss *f, hmti_pool *pool, int64_t first_id, int64_t n, const float *x);

/* Serialize with faiss::write_index through write(ud, bytes, n) (nonzero =
 * failed: the error is the callback's, already recorded). */
typedef int (*hmti_faiss_write_fn)(void *ud, const void *bytes, size_t n);
int hmti_faiss_write(const hmti_faiss *f, hmti_faiss_write_fn write, void *ud);

/* Deserialize len bytes written by hmti_faiss_write; anything but an L2
 * IndexIVFPQ over a flat quantizer with in-memory lists and 8-bit codes is
 * refused (HMT_E_FORMAT). */
int hmti_faiss_read(hmti_faiss **out, const void *bytes, size_t len);

typedef struct {
    int32_t d, nlist, m, nbits;
    int64_t ntotal;
} hmti_faiss_shape;
void hmti_faiss_get_shape(const hmti_faiss *f, hmti_faiss_shape *out);

/* Approximate k nearest for nq queries with nprobe lists each, on n_threads
 * OpenMP threads: dist (PQ estimates) and labels (−1 past the candidates
 * found), nq × k each. Thread-safe on one index. */
int hmti_faiss_search(const hmti_faiss *f, int n_threads, const float *q, int64_t nq, int64_t k,
                      int32_t nprobe, float *dist, int64_t *labels);

#ifdef __cplusplus
}
#endif

#endif
