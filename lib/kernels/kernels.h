/* Numeric kernels: GEMM through libxsmm JIT kernels over tiles, a small
 * pthread pool, SLEEF vector math, f16/bf16 conversion, RMSNorm, RoPE,
 * softmax. Knows nothing about models: only arrays of numbers.
 *
 * Layout convention: "row-major [rows][cols]" unless a name ends in _cm
 * (column-major, BLAS style). All functions here are safe to call from any
 * thread; the pool runs one job at a time. */
#ifndef HMT_KERNELS_H
#define HMT_KERNELS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

/* ---- thread pool --------------------------------------------------------- */
typedef struct hmt_threadpool hmti_pool; /* the public hmt_threadpool */

/* A job runs fn(arg, ith, nth) on nth threads (the caller's thread is ith 0).
 * Workers spin briefly between jobs and then sleep, so back-to-back jobs (one
 * per layer per token) cost microseconds, and an idle pool costs no CPU. */
typedef void (*hmti_job_fn)(void *arg, int ith, int nth);

int hmti_pool_create(hmti_pool **out, int n_threads); /* n_threads >= 1 */
/* References: every user of a pool holds one; the last release frees it. */
void hmti_pool_retain(hmti_pool *pool);
void hmti_pool_release(hmti_pool *pool);
/* The process-wide default pool (one thread per online CPU), retained. */
int hmti_pool_default(hmti_pool **out);
/* HMT_P_N_THREADS: HMT_AUTO -> the default pool, else a private one. */
int hmti_pool_for_threads(hmti_pool **out, int64_t n_threads);
/* One user at a time: a forward pass or a search holds the pool for its whole
 * duration. acquire waits (HMT_E_MISUSE when this thread already holds it);
 * try_acquire returns 0 when another user holds it. */
int hmti_pool_acquire(hmti_pool *pool, const char *who);
int hmti_pool_try_acquire(hmti_pool *pool);
void hmti_pool_unlock(hmti_pool *pool);
/* HMT_E_MISUSE for a freed or foreign handle (NULL is fine). */
int hmti_pool_check(const hmti_pool *tp, const char *fn);
int hmti_pool_n_threads(const hmti_pool *pool);
void hmti_pool_run(hmti_pool *pool, hmti_job_fn fn, void *arg);
/* Scratch owned by the pool, kept until the pool is released: one buffer shared
 * by a job's threads and one per thread (index ith of the job), 64-byte
 * aligned, grown (never shrunk) by hmti_pool_reserve. The getters return
 * NULL with *bytes = 0 when nothing was reserved. */
int hmti_pool_reserve(hmti_pool *pool, size_t shared_bytes, size_t local_bytes);
void *hmti_pool_shared(hmti_pool *pool, size_t *bytes);
void *hmti_pool_local(hmti_pool *pool, int ith, size_t *bytes);
/* Split [0, n) into nth contiguous ranges, range ith -> [*lo, *hi); when
 * align > 1 the split points are multiples of align (except n itself). */
void hmti_split_range(int64_t n, int ith, int nth, int64_t align, int64_t *lo, int64_t *hi);
/* A queue of n work items that a job's threads take in runs of `grab`
 * consecutive items (one atomic add a run), so a thread the OS delays (2
 * shared cores) holds up one run, not its whole share. Initialise before
 * hmti_pool_run; take returns 0 when the queue is empty. */
typedef struct {
    int64_t n, grab;
    atomic_int_fast64_t next;
} hmti_work;
void hmti_work_init(hmti_work *w, int64_t n, int64_t grab);
int hmti_work_take(hmti_work *w, int64_t *lo, int64_t *hi);

/* Work of a streaming job (the decode GEMVs): units [0, n) cut into one
 * contiguous range per share, each range into `streams` (1 or up to
 * HMTI_SWORK_STREAMS) contiguous segments. Share ith takes a grab from the
 * front of each of its own segments at once, so it reads its rows as that
 * many long streams (the prefetches run on from take to take instead of
 * starting cold at each), and once they are empty takes grabs from the
 * back of the others' segments, one at a time (a share that starts late or
 * is descheduled does not hold the job up). A grab is half of what is left
 * in the segment; from one's own at most `grab` units. */
#define HMTI_SWORK_MAX 64
#define HMTI_SWORK_STREAMS 4
typedef struct {
    /* front << 32 | back, in units; a cache line each, so that shares
     * grabbing from their own segments do not bounce one line between cores */
    _Alignas(64) _Atomic uint64_t v;
} hmti_swork_seg;
typedef struct {
    int64_t grab;
    int n_share, per_share; /* segments: n_share * per_share */
    hmti_swork_seg seg[HMTI_SWORK_MAX];
} hmti_swork;
/* streams: segments per share, clamped to [1, HMTI_SWORK_STREAMS]; 1 where
 * nth * streams would pass HMTI_SWORK_MAX. */
void hmti_swork_init(hmti_swork *w, int64_t n, int64_t grab, int nth, int streams);
/* The ranges [lo[k], hi[k]) of one take, k < HMTI_SWORK_STREAMS: returns
 * how many (several only from the share's own segments, then in memory
 * order), 0 when the work is done. */
int hmti_swork_take(hmti_swork *w, int ith, int64_t *lo, int64_t *hi);

/* ---- weight matrices --------------------------------------------------------- */
/* A weight W of logical shape [rows][cols] (rows = output features,
 * cols = input features, as a GGUF tensor with ne[0] = cols, ne[1] = rows),
 * in one of two forms:
 *
 * packed (n_parts == 0): converted to F32 and repacked into the panel layout
 * the GEMM kernels read fastest (hmti_matrix_pack);
 *
 * stored (n_parts >= 1, matrix_q.c): the rows are used where they are, in
 * their GGML type (lib/kernels/quant.h), never copied or expanded: rows
 * [0, part[0].rows) from part 0, the next part[1].rows from part 1, ... Each
 * part has its own type (a Q4_K_M file mixes Q4_K and Q6_K within q|k|v), so
 * q, k, v (or gate, up) form one matrix and share one quantized activation
 * without a copy. The caller keeps the parts' memory alive (the mapped GGUF
 * file). */
#define HMTI_MATRIX_MAX_PARTS 3
typedef struct {
    const void *data;  /* rows of `type`, row r at data + r * row_bytes */
    uint32_t type;     /* ggml type id */
    int64_t rows;
    size_t row_bytes;
    int il;            /* data in the interleaved layout (quant.h): a copy in an arena */
} hmti_matrix_part;

typedef struct {
    int64_t rows, cols;
    int64_t panel_rows;  /* packed: rows per packed panel                       */
    float *data;         /* packed: storage, an arena's piece                   */
    size_t nbytes;       /* packed: bytes of data; stored: bytes of the parts   */
    int n_parts;         /* 0: packed F32; else stored                          */
    hmti_matrix_part part[HMTI_MATRIX_MAX_PARTS];
} hmti_matrix;

/* src_type: 0 = F32, 1 = F16, 30 = BF16, 8 = Q8_0 (ggml numbering). The
 * packed copy comes from arena (core/arena.h: a model's weights), which owns
 * it: hmti_matrix_release only clears the matrix. */
int hmti_matrix_pack(hmti_matrix *m, const void *src, uint32_t src_type, int64_t rows,
                     int64_t cols, hmti_arena *arena);
/* A stored matrix of n_parts (1..HMTI_MATRIX_MAX_PARTS) row blocks, each
 * `rows[i]` rows of `types[i]` (any type hmti_qtraits_of knows) at data[i].
 * HMT_E_UNSUPPORTED for another type or a cols that is not a multiple of the
 * type's block. Nothing is allocated. */
int hmti_matrix_stored(hmti_matrix *m, int n_parts, const void *const *data,
                       const uint32_t *types, const int64_t *rows, int64_t cols);
/* Each part of a stored matrix whose type has an interleaved layout on
 * this CPU (hmti_q_il_rows, quant.h) copied once into it: the same bytes,
 * read by the decode kernels as one stream per 4 rows (Q8_0: 16), in a form
 * they read with fewer shuffles; results unchanged (Q8_0: the layout's own
 * float order, the same for one and several activation rows), from arena as
 * for hmti_matrix_pack; the source is no longer read. Returns a mask of the parts repacked (bit i: part i), or -1 out of
 * memory (the matrix is then left as it was). */
int hmti_matrix_repack(hmti_matrix *m, hmti_arena *arena);
void hmti_matrix_release(hmti_matrix *m);
/* Copy row r of W back out as F32 (cols floats). */
void hmti_matrix_get_row(const hmti_matrix *m, int64_t r, float *out);

/* Scratch a stored-matrix matmul needs for inputs of at most max_cols
 * columns (hmti_pool_reserve): shared = the quantized activation rows of the
 * decode path, local = one thread's dequantized tile of the prompt path. */
void hmti_matmul_scratch(int64_t max_cols, size_t *shared_bytes, size_t *local_bytes);
/* Inputs of at most this many rows take the decode path on stored matrices
 * (activation quantized to 8-bit blocks, dot products on the stored blocks);
 * more rows take the prompt path (weights dequantized into F32 tiles, libxsmm
 * GEMM, exact activations). Test hook: hmti_matmul_set_decode_rows(k) sets
 * it for the process (k < 0 restores the default); returns the old value. */
#define HMTI_DECODE_ROWS 4
/* Rows that are separate decode steps (one row per sequence of a batched
 * decode, hmt_ctx_eval_seqs) take the decode path up to this many rows per
 * call (hmti_matmul_decode): each weight unit is read from memory once for
 * all of them, and each row's result is bit-identical to its own one-row
 * call. hmti_matmul_scratch reserves activation rows for this many. */
#define HMTI_BATCH_DECODE_ROWS 16
int hmti_matmul_set_decode_rows(int k);
int hmti_matmul_decode_rows(void); /* the value in force */

/* Y[i][r] = sum_c W[r][c] * X[i][c] (+ bias[r] if bias) for i < n,
 * X with row stride ldx >= cols, Y with row stride ldy >= rows.
 * Parallel over the pool; n = 1 is the decode (GEMV) case and is
 * memory-bandwidth bound. A stored matrix goes to hmti_matmul_stored. */
void hmti_matmul(hmti_pool *pool, const hmti_matrix *w, const float *x, int64_t ldx,
                 int64_t n, float *y, int64_t ldy, const float *bias);
/* hmti_matmul of a packed matrix on the decode (GEMV) path for any n, in
 * passes of HMTI_BATCH_DECODE_ROWS rows: each weight read once per pass for
 * all of them, and each row's result bit-identical to its own n = 1 call. */
void hmti_matmul_gemv_rows(hmti_pool *pool, const hmti_matrix *w, const float *x, int64_t ldx,
                           int64_t n, float *y, int64_t ldy, const float *bias);
/* The same for a stored matrix (matrix_q.c), using the pool's scratch; with
 * too little reserved it falls back to exact dot products (slow, no memory). */
/* hmti_matmul on the decode path for any n (stored matrices: the rows in
 * groups that fit the pool's scratch, HMTI_BATCH_DECODE_ROWS with
 * hmti_matmul_scratch's reservation); packed F32 matrices: hmti_matmul_gemv_rows. */
void hmti_matmul_decode(hmti_pool *pool, const hmti_matrix *w, const float *x, int64_t ldx,
                        int64_t n, float *y, int64_t ldy, const float *bias);
void hmti_matmul_stored(hmti_pool *pool, const hmti_matrix *w, const float *x, int64_t ldx,
                        int64_t n, float *y, int64_t ldy, const float *bias);
/* One tile C(m×n) = A(m×k)·B(k×n) (+ C when beta), column-major, through a
 * cached libxsmm kernel or the vector loop: the building block of the packed
 * GEMM, shared with the stored-matrix prompt path. */
void hmti_gemm_tile(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                    const float *b, int64_t ldb, float *c, int64_t ldc, int beta);

/* ---- BF16 compute (gemm_bf16.c) -------------------------------------------- */
/* hmti_matmul with the prompt path (n > decode rows) computed in BF16:
 * activations and weights rounded to BF16 (round to nearest even), products
 * summed in F32. The weights are rounded per 64-row × 512-column tile as a
 * call meets them (packed panels read in place, stored types dequantized
 * first), the activations once per call. Needs the scratch of
 * hmti_matmul_scratch_bf16 reserved on the pool; without it, without a BF16
 * engine, or for n <= decode rows it is exactly hmti_matmul. */
void hmti_matmul_bf16(hmti_pool *pool, const hmti_matrix *w, const float *x, int64_t ldx,
                      int64_t n, float *y, int64_t ldy, const float *bias);
/* hmti_matmul_scratch plus the BF16 path's: the BF16 activations of up to
 * max_n rows of max_cols (shared; fewer rows per group when it is smaller),
 * one VNNI weight tile per thread (local). */
void hmti_matmul_scratch_bf16(int64_t max_cols, int64_t max_n, size_t *shared_bytes,
                              size_t *local_bytes);
/* The engine behind hmti_matmul_bf16 on this CPU: AMX tiles, the library's
 * own AVX512-BF16 kernel, or none (F32); libxsmm's BF16 GEMM only when capped
 * to it. Test hook: hmti_bf16_set_engine(e) caps it at e for the process
 * (e < 0 lifts the cap); returns the old engine. */
enum { HMTI_BF16_NONE = 0, HMTI_BF16_LIBXSMM = 1, HMTI_BF16_OWN = 2, HMTI_BF16_AMX = 3 };
int hmti_bf16_engine(void);
int hmti_bf16_set_engine(int e);
/* Rows [r0, r0 + nr) (nr <= 64), columns [k0, k0 + kk) (k0 a multiple of
 * 512, kk <= 512) of a stored matrix, dequantized into the column-major F32
 * block returned (leading dimension 64), inside scratch (a thread's part of
 * hmti_matmul_scratch's local bytes). For the BF16 path. */
const float *hmti_stored_block_f32(const hmti_matrix *w, int64_t r0, int64_t nr, int64_t k0,
                                   int64_t kk, float *scratch);

/* Plain single-threaded column-major GEMM C = A·B + beta·C (m×k times k×n),
 * through libxsmm kernels with a bounded set of tile shapes (so varying m, n
 * never JITs without bound), loops where libxsmm declines. beta is 0 or 1. */
void hmti_gemm_cm(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                  const float *b, int64_t ldb, float *c, int64_t ldc, float beta);

/* ---- element-wise and row kernels (vectorized; SLEEF where transcendental) */
void hmti_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);
/* In place on x[n_head][head_dim] for one position: the first n_rot
 * (even, 2..head_dim) dims of each head rotate, the rest stay as they are.
 * neox = 0: pairs (x[2i], x[2i+1]) (llama.cpp "norm" mode, arch llama);
 * neox = 1: pairs (x[i], x[i + n_rot/2]) (qwen2, qwen3).
 * Pair i (< n_rot/2) turns by pos * freq[i] (the model's per-dimension
 * frequencies: base^(-2i/n_rot) with any scaling folded in), and both
 * outputs are multiplied by mscale (YaRN's attention factor; 1 otherwise). */
void hmti_rope(float *x, int n_head, int head_dim, int n_rot, int32_t pos, const double *freq,
               float mscale, int neox);
/* The plain RoPE table: freq[i] = base^(-2i/n_rot), i < n_rot/2. */
void hmti_rope_freqs(double *freq, int n_rot, double base);
/* x[i] = exp(x[i] - max) / sum, in place; returns nothing. n >= 1. */
void hmti_softmax(float *x, int64_t n);
/* log sum exp(z[i]) in double, shifted by the max; z must hold no NaN.
 * -inf if every z is -inf (or n is 0), +inf if one is +inf. entropy (if not
 * NULL): the entropy in nats of softmax(z) (NaN in those two cases). */
double hmti_logsumexp(const float *z, int64_t n, double *entropy);
/* g[i] = silu(g[i]) * u[i] = g / (1 + exp(-g)) * u. */
void hmti_silu_mul(float *g, const float *u, int64_t n);
/* g[i] = gelu(g[i]) * u[i], GELU in its tanh form (PyTorch approximate="tanh",
 * ggml_gelu): 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))). */
void hmti_gelu_mul(float *g, const float *u, int64_t n);
/* Soft-capping (Gemma 2): x[i] = cap * tanh(x[i] * scale / cap), in place; cap > 0. */
void hmti_softcap(float *x, float scale, float cap, int64_t n);
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
/* Non-finite values (NaN, ±inf) where numbers enter the library: the index
 * of the first non-finite value of v[0..n), or -1 when all are finite; read
 * from the raw bits (weights in their stored types: hmti_quant_first_nonfinite). */
int64_t hmti_first_nonfinite(const float *v, int64_t n);
/* The same for n F16 (bf16 = 0) or BF16 halves at h (any alignment). */
int64_t hmti_first_nonfinite_half(const void *h, int64_t n, int bf16);
/* "NaN", "+inf" or "-inf" for a non-finite value (messages). */
const char *hmti_nonfinite_name(float v);

/* ---- one-time init --------------------------------------------------------- */
/* libxsmm_init through pthread_once; called by every entry point that JITs. */
void hmti_kernels_init(void);

#endif
