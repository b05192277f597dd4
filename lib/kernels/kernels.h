/* Numeric kernels: GEMM through libxsmm JIT kernels over tiles, a small
 * pthread pool, SLEEF vector math, f16/bf16 conversion, RMSNorm, RoPE,
 * softmax. Knows nothing about models: only arrays of numbers.
 *
 * Layout convention: "row-major [rows][cols]" unless a name ends in _cm
 * (column-major, BLAS style). All functions here are safe to call from any
 * thread; the pool runs one job at a time. */
#ifndef HMT_KERNELS_H
#define HMT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ---- thread pool --------------------------------------------------------- */
typedef struct hmti_pool hmti_pool;

/* A job runs fn(arg, ith, nth) on nth threads (the caller's thread is ith 0).
 * Workers spin briefly between jobs and then sleep, so back-to-back jobs (one
 * per layer per token) cost microseconds, and an idle pool costs no CPU. */
typedef void (*hmti_job_fn)(void *arg, int ith, int nth);

int hmti_pool_create(hmti_pool **out, int n_threads); /* n_threads >= 1 */
void hmti_pool_free(hmti_pool *pool);
int hmti_pool_n_threads(const hmti_pool *pool);
void hmti_pool_run(hmti_pool *pool, hmti_job_fn fn, void *arg);
/* Split [0, n) into nth contiguous ranges, range ith -> [*lo, *hi); when
 * align > 1 the split points are multiples of align (except n itself). */
void hmti_split_range(int64_t n, int ith, int nth, int64_t align, int64_t *lo, int64_t *hi);

/* ---- packed weight matrices ---------------------------------------------- */
/* A weight W of logical shape [rows][cols] (rows = output features,
 * cols = input features, as a GGUF tensor with ne[0] = cols, ne[1] = rows),
 * converted to F32 and repacked into the panel layout the GEMM kernels read
 * fastest. The source is not referenced after hmti_matrix_pack returns. */
typedef struct {
    int64_t rows, cols;
    int64_t panel_rows;  /* rows per packed panel                       */
    float *data;         /* packed storage, owned (hmti_matrix_release) */
    size_t nbytes;
} hmti_matrix;

/* src_type: 0 = F32, 1 = F16, 30 = BF16, 8 = Q8_0 (ggml numbering). */
int hmti_matrix_pack(hmti_matrix *m, const void *src, uint32_t src_type, int64_t rows,
                     int64_t cols);
void hmti_matrix_release(hmti_matrix *m);
/* Copy row r of W back out as F32 (cols floats) — used for tied embeddings. */
void hmti_matrix_get_row(const hmti_matrix *m, int64_t r, float *out);

/* Y[i][r] = sum_c W[r][c] * X[i][c] (+ bias[r] if bias) for i < n,
 * X with row stride ldx >= cols, Y with row stride ldy >= rows.
 * Parallel over the pool; n = 1 is the decode (GEMV) case and is
 * memory-bandwidth bound. */
void hmti_matmul(hmti_pool *pool, const hmti_matrix *w, const float *x, int64_t ldx,
                 int64_t n, float *y, int64_t ldy, const float *bias);

/* Plain single-threaded column-major GEMM C = A·B + beta·C (m×k times k×n),
 * through libxsmm kernels with a bounded set of tile shapes (so varying m, n
 * never JITs without bound), loops where libxsmm declines. beta is 0 or 1. */
void hmti_gemm_cm(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                  const float *b, int64_t ldb, float *c, int64_t ldc, float beta);

/* ---- element-wise and row kernels (vectorized; SLEEF where transcendental) */
void hmti_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);
/* In place on x[n_head][head_dim] for one position.
 * neox = 0: rotate pairs (x[2i], x[2i+1]) (llama.cpp "norm" mode, arch llama);
 * neox = 1: rotate pairs (x[i], x[i + head_dim/2]) (qwen2).
 * Angle for pair i: pos * base^(-2i/head_dim). */
void hmti_rope(float *x, int n_head, int head_dim, int32_t pos, float base, int neox);
/* x[i] = exp(x[i] - max) / sum, in place; returns nothing. n >= 1. */
void hmti_softmax(float *x, int64_t n);
/* g[i] = silu(g[i]) * u[i] = g / (1 + exp(-g)) * u. */
void hmti_silu_mul(float *g, const float *u, int64_t n);
float hmti_dot(const float *a, const float *b, int64_t n);
/* y += a * x */
void hmti_axpy(float *y, float a, const float *x, int64_t n);
void hmti_add(float *y, const float *x, int64_t n);   /* y += x */
void hmti_scale(float *y, float a, int64_t n);        /* y *= a */

/* ---- conversions ---------------------------------------------------------- */
float hmti_f16_to_f32(uint16_t h);
uint16_t hmti_f32_to_f16(float f);   /* round to nearest even */
float hmti_bf16_to_f32(uint16_t h);
uint16_t hmti_f32_to_bf16(float f);  /* round to nearest even, NaN kept */
/* Row of n elements of src_type (ggml numbering) to F32. */
void hmti_row_to_f32(const void *src, uint32_t src_type, float *dst, int64_t n);
/* Bytes of one row of n elements (0 if n does not fit the block size). */
size_t hmti_row_size(uint32_t type, int64_t n);
/* Non-finite values (NaN, ±inf) where numbers enter the library: the first
 * such element of n stored in src_type (Q8_0: of a block whose scale is
 * non-finite, reported at the block's first element), read from the raw bits
 * without converting. Returns -1 when all are finite, else its index, and
 * its value (as converted to F32) in *value. */
int64_t hmti_row_first_nonfinite(const void *src, uint32_t src_type, int64_t n, float *value);
/* The same for F32 values. */
int64_t hmti_first_nonfinite(const float *v, int64_t n);
/* "NaN", "+inf" or "-inf" for a non-finite value (messages). */
const char *hmti_nonfinite_name(float v);

/* ---- one-time init --------------------------------------------------------- */
/* libxsmm_init through pthread_once; called by every entry point that JITs. */
void hmti_kernels_init(void);

#endif
