/* GEMM: libxsmm JIT kernels over tiles, the packed-weight matmul (prompt
 * GEMM and decode GEMV), and the column-major hmti_gemm_cm used by
 * attention.
 *
 * Every libxsmm kernel is looked up through a small per-thread cache keyed by
 * its full descriptor, so a hot loop pays a few compares, not libxsmm's
 * registry lookup. Callers choose tile shapes from a fixed set, so the number
 * of kernels ever JIT-ed stays bounded whatever m, n, k the model produces.
 * Where libxsmm returns no kernel (no JIT on this CPU, leading dimensions
 * beyond int) a vectorized loop does the work. */
#include <immintrin.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <libxsmm.h>

#include "kernels/kernels.h"

/* ---- init ------------------------------------------------------------------ */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_impl(void) {
    libxsmm_init();
    /* The library never prints: keep libxsmm quiet unless a developer asked
     * for its diagnostics explicitly. */
    if (!getenv("LIBXSMM_VERBOSE")) libxsmm_set_verbosity(0);
}

void hmti_kernels_init(void) { pthread_once(&init_once, init_impl); }

/* ---- CPU level ------------------------------------------------------------- */
#include "kernels/cpu.h"

/* ---- kernel cache ------------------------------------------------------------ */
typedef struct {
    int32_t m, n, k, lda, ldb, ldc, beta, valid;
    libxsmm_smmfunction fn;
} kcache_entry;

#define KCACHE_SIZE 512 /* per thread; a model uses a few dozen shapes */
static _Thread_local kcache_entry kcache[KCACHE_SIZE];

static int fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

/* C(m×n) = A(m×k)·B(k×n) (+ C when beta), column-major; NULL if none. */
static libxsmm_smmfunction get_kernel(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb,
                                      int64_t ldc, int beta) {
    if (!fits_int(m) || !fits_int(n) || !fits_int(k) || !fits_int(lda) || !fits_int(ldb) ||
        !fits_int(ldc))
        return NULL;
    uint64_t h = (uint64_t)m * 0x9E3779B97F4A7C15u;
    h ^= (uint64_t)n * 0xC2B2AE3D27D4EB4Fu + (h >> 29);
    h ^= (uint64_t)k * 0x165667B19E3779F9u + (h >> 31);
    h ^= (uint64_t)lda * 0x27D4EB2F165667C5u + (h >> 27);
    h ^= (uint64_t)ldb * 0x94D049BB133111EBu + (h >> 30);
    h ^= (uint64_t)ldc * 0xBF58476D1CE4E5B9u + (h >> 28);
    h ^= (uint64_t)beta + (h >> 33);
    kcache_entry *e = &kcache[h % KCACHE_SIZE];
    if (e->valid && e->m == m && e->n == n && e->k == k && e->lda == lda && e->ldb == ldb &&
        e->ldc == ldc && e->beta == beta)
        return e->fn;
    hmti_kernels_init();
    libxsmm_blasint xlda = (libxsmm_blasint)lda, xldb = (libxsmm_blasint)ldb,
                    xldc = (libxsmm_blasint)ldc;
    float alpha = 1.0f, fbeta = beta ? 1.0f : 0.0f;
    int flags = beta ? LIBXSMM_GEMM_FLAG_NONE : LIBXSMM_GEMM_FLAG_BETA_0;
    int prefetch = LIBXSMM_GEMM_PREFETCH_NONE;
    libxsmm_smmfunction fn =
        libxsmm_smmdispatch((libxsmm_blasint)m, (libxsmm_blasint)n, (libxsmm_blasint)k, &xlda,
                            &xldb, &xldc, &alpha, &fbeta, &flags, &prefetch);
    e->m = (int32_t)m;
    e->n = (int32_t)n;
    e->k = (int32_t)k;
    e->lda = (int32_t)lda;
    e->ldb = (int32_t)ldb;
    e->ldc = (int32_t)ldc;
    e->beta = beta;
    e->fn = fn;
    e->valid = 1;
    return fn;
}

/* ---- loop GEMM (edges and fallback) ------------------------------------------- */
/* C = A·B + beta·C, column-major, any sizes. Four columns of C share each
 * vector of A; accumulators live in registers across the whole k loop. */
/* nq (1..4) blocks of 16 rows of one column of c (b0 -> c0), side by side
 * (mk: each block's rows), each block's sum in two chains (even and odd p)
 * added at the end. Side by side, 2 nq chains run at once instead of 2:
 * attention's decode products, one column with k = 64..n_ctx, were bound
 * by the FMA latency. Each output keeps its own chains and order, so how
 * many blocks run together does not change a bit. */
AVX512_TARGET static inline __attribute__((always_inline)) void col_blocks(const int nq, int64_t k, const float *a,
                                                                         int64_t lda, const float *b0, float *c0,
                                                                         int beta, const __mmask16 *mk) {
    __m512 s[4], t[4];
#pragma GCC unroll 4
    for (int q = 0; q < nq; q++) {
        s[q] = beta ? _mm512_maskz_loadu_ps(mk[q], c0 + 16 * q) : _mm512_setzero_ps();
        t[q] = _mm512_setzero_ps();
    }
    int64_t p = 0;
    for (; p + 2 <= k; p += 2) {
        const __m512 x0 = _mm512_set1_ps(b0[p]), x1 = _mm512_set1_ps(b0[p + 1]);
        const float *r0 = a + p * lda, *r1 = r0 + lda;
#pragma GCC unroll 4
        for (int q = 0; q < nq; q++) {
            s[q] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk[q], r0 + 16 * q), x0, s[q]);
            t[q] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk[q], r1 + 16 * q), x1, t[q]);
        }
    }
    if (p < k)
#pragma GCC unroll 4
        for (int q = 0; q < nq; q++)
            s[q] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk[q], a + p * lda + 16 * q), _mm512_set1_ps(b0[p]), s[q]);
#pragma GCC unroll 4
    for (int q = 0; q < nq; q++) _mm512_mask_storeu_ps(c0 + 16 * q, mk[q], _mm512_add_ps(s[q], t[q]));
}

/* One column of c (b0 -> c0): rows [0, m) 64 at a time, then the rest (up
 * to 4 blocks, the last one partial) in one more pass. */
AVX512_TARGET static void loop_col_avx512(int64_t m, int64_t k, const float *a, int64_t lda,
                                          const float *b0, float *c0, int beta) {
    __mmask16 mk[4] = {0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF};
    int64_t i = 0;
    for (; i + 64 <= m; i += 64) col_blocks(4, k, a + i, lda, b0, c0 + i, beta, mk);
    const int64_t rest = m - i;
    if (!rest) return;
    const int nq = (int)((rest + 15) / 16), last = (int)(rest - 16 * (nq - 1));
    mk[nq - 1] = (__mmask16)(last == 16 ? 0xFFFFu : (1u << last) - 1u);
    switch (nq) { /* constant block counts: the sums stay in registers */
    case 1: col_blocks(1, k, a + i, lda, b0, c0 + i, beta, mk); break;
    case 2: col_blocks(2, k, a + i, lda, b0, c0 + i, beta, mk); break;
    case 3: col_blocks(3, k, a + i, lda, b0, c0 + i, beta, mk); break;
    default: col_blocks(4, k, a + i, lda, b0, c0 + i, beta, mk); break;
    }
}

AVX512_TARGET static void loop_gemm_avx512(int64_t m, int64_t n, int64_t k, const float *a,
                                           int64_t lda, const float *b, int64_t ldb, float *c,
                                           int64_t ldc, int beta) {
    const int64_t n4 = n / 4 * 4;
    for (int64_t i = 0; n4 && i < m; i += 16) {
        int64_t w = m - i < 16 ? m - i : 16;
        __mmask16 mk = (__mmask16)(w == 16 ? 0xFFFFu : (1u << w) - 1u);
        int64_t j = 0;
        for (; j < n4; j += 4) {
            const float *b0 = b + j * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
            float *c0 = c + j * ldc + i, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
            __m512 s0 = beta ? _mm512_maskz_loadu_ps(mk, c0) : _mm512_setzero_ps();
            __m512 s1 = beta ? _mm512_maskz_loadu_ps(mk, c1) : _mm512_setzero_ps();
            __m512 s2 = beta ? _mm512_maskz_loadu_ps(mk, c2) : _mm512_setzero_ps();
            __m512 s3 = beta ? _mm512_maskz_loadu_ps(mk, c3) : _mm512_setzero_ps();
            for (int64_t p = 0; p < k; p++) {
                __m512 av = _mm512_maskz_loadu_ps(mk, a + p * lda + i);
                s0 = _mm512_fmadd_ps(av, _mm512_set1_ps(b0[p]), s0);
                s1 = _mm512_fmadd_ps(av, _mm512_set1_ps(b1[p]), s1);
                s2 = _mm512_fmadd_ps(av, _mm512_set1_ps(b2[p]), s2);
                s3 = _mm512_fmadd_ps(av, _mm512_set1_ps(b3[p]), s3);
            }
            _mm512_mask_storeu_ps(c0, mk, s0);
            _mm512_mask_storeu_ps(c1, mk, s1);
            _mm512_mask_storeu_ps(c2, mk, s2);
            _mm512_mask_storeu_ps(c3, mk, s3);
        }
    }
    for (int64_t j = n4; j < n; j++) loop_col_avx512(m, k, a, lda, b + j * ldb, c + j * ldc, beta);
}

AVX2_TARGET static void loop_gemm_avx2(int64_t m, int64_t n, int64_t k, const float *a,
                                       int64_t lda, const float *b, int64_t ldb, float *c,
                                       int64_t ldc, int beta) {
    int64_t m8 = m & ~(int64_t)7;
    for (int64_t j = 0; j < n; j++) {
        const float *bj = b + j * ldb;
        float *cj = c + j * ldc;
        for (int64_t i = 0; i < m8; i += 8) {
            __m256 s0 = beta ? _mm256_loadu_ps(cj + i) : _mm256_setzero_ps();
            __m256 s1 = _mm256_setzero_ps();
            int64_t p = 0;
            for (; p + 2 <= k; p += 2) {
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + p * lda + i), _mm256_set1_ps(bj[p]), s0);
                s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + (p + 1) * lda + i),
                                     _mm256_set1_ps(bj[p + 1]), s1);
            }
            if (p < k)
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + p * lda + i), _mm256_set1_ps(bj[p]), s0);
            _mm256_storeu_ps(cj + i, _mm256_add_ps(s0, s1));
        }
        for (int64_t i = m8; i < m; i++) {
            float s = beta ? cj[i] : 0.0f;
            for (int64_t p = 0; p < k; p++) s += a[p * lda + i] * bj[p];
            cj[i] = s;
        }
    }
}

static void loop_gemm_scalar(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                             const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    for (int64_t j = 0; j < n; j++) {
        float *cj = c + j * ldc;
        if (!beta)
            for (int64_t i = 0; i < m; i++) cj[i] = 0.0f;
        for (int64_t p = 0; p < k; p++) {
            float bv = b[j * ldb + p];
            const float *ap = a + p * lda;
            for (int64_t i = 0; i < m; i++) cj[i] += ap[i] * bv;
        }
    }
}

static void loop_gemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                      const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    if (m <= 0 || n <= 0) return;
    int l = hmti_cpu_level();
    if (l == 2)
        loop_gemm_avx512(m, n, k, a, lda, b, ldb, c, ldc, beta);
    else if (l == 1)
        loop_gemm_avx2(m, n, k, a, lda, b, ldb, c, ldc, beta);
    else
        loop_gemm_scalar(m, n, k, a, lda, b, ldb, c, ldc, beta);
}

/* One tile through libxsmm, or the loop when there is no kernel. */
static void tile_gemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                      const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    libxsmm_smmfunction fn = get_kernel(m, n, k, lda, ldb, ldc, beta);
    if (fn)
        fn(a, b, c);
    else
        loop_gemm(m, n, k, a, lda, b, ldb, c, ldc, beta);
}

void hmti_gemm_tile(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                    const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    tile_gemm(m, n, k, a, lda, b, ldb, c, ldc, beta);
}

/* ---- hmti_gemm_cm ------------------------------------------------------------ */
/* Full GM×GN tiles go through libxsmm with k split into GK chunks (plus one
 * remainder chunk < GK): at most 2·GK kernels per leading-dimension triple.
 * Partial tiles at the m and n edges use the loop. */
enum { GM = 32, GN = 32, GK = 64 };

void hmti_gemm_cm(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                  int64_t ldb, float *c, int64_t ldc, float beta) {
    if (m <= 0 || n <= 0) return;
    int bflag = beta != 0.0f;
    if (k <= 0) {
        if (!bflag)
            for (int64_t j = 0; j < n; j++) memset(c + j * ldc, 0, (size_t)m * sizeof(float));
        return;
    }
    int64_t mf = m / GM * GM, nf = n / GN * GN;
    if (!nf) { /* no whole tile (decode's attention products): the loop over all rows at once */
        loop_gemm(m, n, k, a, lda, b, ldb, c, ldc, bflag);
        return;
    }
    for (int64_t j = 0; j < nf; j += GN) {
        for (int64_t i = 0; i < mf; i += GM) {
            float *cij = c + j * ldc + i;
            for (int64_t p = 0; p < k; p += GK) {
                int64_t kk = k - p < GK ? k - p : GK;
                tile_gemm(GM, GN, kk, a + p * lda + i, lda, b + j * ldb + p, ldb, cij, ldc,
                          p > 0 || bflag);
            }
        }
    }
    if (mf < m) /* bottom edge rows, all columns */
        loop_gemm(m - mf, n, k, a + mf, lda, b, ldb, c + mf, ldc, bflag);
    if (nf < n && mf > 0) /* right edge columns, full-tile rows */
        loop_gemm(mf, n - nf, k, a, lda, b + nf * ldb, ldb, c + nf * ldc, ldc, bflag);
}

/* ---- packed matmul -------------------------------------------------------- */
/* GEMV over packed panels: out[0..16·nv) = A[rows of panel chunk] · x, where
 * a points at the first row of the chunk inside its panel (column stride lda
 * = panel_rows). Two k-steps per iteration with independent accumulators.
 * No software prefetch: measured 1 KiB..16 KiB ahead, all slower than the
 * hardware prefetcher on these sequential panels. */

AVX512_TARGET static inline __attribute__((always_inline)) void
gemv_avx512_body(const float *a, int64_t lda, int64_t k, const float *x, float *out, const int nv) {
    __m512 s0[4], s1[4];
    for (int v = 0; v < nv; v++) s0[v] = s1[v] = _mm512_setzero_ps();
    int64_t p = 0;
    for (; p + 2 <= k; p += 2) {
        const float *a0 = a + p * lda, *a1 = a0 + lda;
        __m512 x0 = _mm512_set1_ps(x[p]), x1 = _mm512_set1_ps(x[p + 1]);
        for (int v = 0; v < nv; v++) {
            s0[v] = _mm512_fmadd_ps(_mm512_loadu_ps(a0 + 16 * v), x0, s0[v]);
            s1[v] = _mm512_fmadd_ps(_mm512_loadu_ps(a1 + 16 * v), x1, s1[v]);
        }
    }
    if (p < k) {
        __m512 x0 = _mm512_set1_ps(x[p]);
        for (int v = 0; v < nv; v++)
            s0[v] = _mm512_fmadd_ps(_mm512_loadu_ps(a + p * lda + 16 * v), x0, s0[v]);
    }
    for (int v = 0; v < nv; v++) _mm512_storeu_ps(out + 16 * v, _mm512_add_ps(s0[v], s1[v]));
}

AVX512_TARGET static void gemv_avx512(const float *a, int64_t lda, int64_t k, const float *x,
                                      float *out, int nv) {
    switch (nv) {
    case 4: gemv_avx512_body(a, lda, k, x, out, 4); break;
    case 3: gemv_avx512_body(a, lda, k, x, out, 3); break;
    case 2: gemv_avx512_body(a, lda, k, x, out, 2); break;
    default: gemv_avx512_body(a, lda, k, x, out, 1); break;
    }
}

/* Several activation rows against a panel (batched decode). The panel is
 * walked in blocks of GEMV_KB columns (GEMV_KB x 64 rows = 16 KiB, in L1),
 * each block by 16-row chunk for up to 8 activation rows at a time, the
 * sums kept in acc between blocks: every weight comes from memory once for
 * all the rows, in the panel's order, while the register tile stays small.
 * The next block is prefetched spread over the passes of a block (pass q
 * of np fetching lines [q nv / np, (q + 1) nv / np) of each column): all
 * of it during the first pass stalled on the fill buffers. 8 SmolLM2-shaped
 * sequences at 2 threads, one process, rounds alternated: 1.18x the
 * batched tokens/s (docs/QUANTS.md, twelfth session). Each (row,
 * activation) keeps gemv_avx512_body's arithmetic exactly (two accumulators
 * by k parity from the first column, the odd last column into the first,
 * one add at the end), so every result is the one-row call's bits. */
/* GEMV_MAX_N: activation rows of one GEMV pass (hmti_matmul_gemv_rows) */
enum { GEMV_KB = 64, GEMV_MAX_N = HMTI_BATCH_DECODE_ROWS };

AVX512_TARGET static inline __attribute__((always_inline)) void
gemv_block(const float *a, int64_t lda, int64_t p0, int64_t p1, int64_t k, const float *x,
           int64_t ldx, float *acc, const int nv, const int R, const int pf0, const int pf1) {
    __m512 s0[4][4], s1[4][4];
    _Pragma("GCC unroll 4") for (int i = 0; i < R; i++)
        _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++) {
            s0[i][v] = p0 ? _mm512_loadu_ps(acc + 128 * i + 16 * v) : _mm512_setzero_ps();
            s1[i][v] = p0 ? _mm512_loadu_ps(acc + 128 * i + 64 + 16 * v) : _mm512_setzero_ps();
        }
    int64_t p = p0;
    for (; p + 2 <= p1; p += 2) {
        const float *a0 = a + p * lda;
        for (int v = pf0; v < pf1; v++) { /* lines [pf0, pf1) of the same two columns of the next block */
            _mm_prefetch((const char *)(a0 + GEMV_KB * lda + 16 * v), _MM_HINT_T0);
            _mm_prefetch((const char *)(a0 + (GEMV_KB + 1) * lda + 16 * v), _MM_HINT_T0);
        }
        __m512 w0[4], w1[4];
        _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++) {
            w0[v] = _mm512_loadu_ps(a0 + 16 * v);
            w1[v] = _mm512_loadu_ps(a0 + lda + 16 * v);
        }
        _Pragma("GCC unroll 4") for (int i = 0; i < R; i++) {
            const __m512 x0 = _mm512_set1_ps(x[i * ldx + p]), x1 = _mm512_set1_ps(x[i * ldx + p + 1]);
            _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++) {
                s0[i][v] = _mm512_fmadd_ps(w0[v], x0, s0[i][v]);
                s1[i][v] = _mm512_fmadd_ps(w1[v], x1, s1[i][v]);
            }
        }
    }
    if (p < p1) /* p1 == k, k odd: the body's tail */
        _Pragma("GCC unroll 4") for (int i = 0; i < R; i++) {
            const __m512 x0 = _mm512_set1_ps(x[i * ldx + p]);
            _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++)
                s0[i][v] = _mm512_fmadd_ps(_mm512_loadu_ps(a + p * lda + 16 * v), x0, s0[i][v]);
        }
    _Pragma("GCC unroll 4") for (int i = 0; i < R; i++)
        _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++) {
            if (p1 == k) {
                _mm512_storeu_ps(acc + 128 * i + 16 * v, _mm512_add_ps(s0[i][v], s1[i][v]));
            } else {
                _mm512_storeu_ps(acc + 128 * i + 16 * v, s0[i][v]);
                _mm512_storeu_ps(acc + 128 * i + 64 + 16 * v, s1[i][v]);
            }
        }
}

#define GEMV_BLOCK(NV, R) gemv_block(a, lda, p0, p1, k, xi, ldx, ac, NV, R, pf0, pf1)

/* Activation rows of gemv_multi_avx512's next pass, R at most. */
static inline int pass_rows(int64_t left, int R) { return left >= R ? R : left >= 2 ? 2 : 1; }

/* Rows of nv chunks of 16 (a panel's rows, lda = panel rows) against n
 * activation rows: out[i * 64 + r] = row r · x_i. */
AVX512_TARGET static void gemv_multi_avx512(const float *a, int64_t lda, int64_t k, const float *x,
                                            int64_t ldx, int64_t n, float *out, int nv) {
    /* per activation: the even-column sums of the 64 rows, then the odd;
     * at the end the results in [0, 64) */
    float acc[GEMV_MAX_N][128];
    const int R = nv > 2 ? 2 : 4;
    int np = 0; /* passes per block */
    for (int64_t i = 0; i < n; i += pass_rows(n - i, R)) np++;
    for (int64_t p0 = 0; p0 < k; p0 += GEMV_KB) {
        const int64_t p1 = k - p0 < GEMV_KB ? k : p0 + GEMV_KB;
        for (int64_t i = 0, q = 0; i < n; q++) {
            const int r = pass_rows(n - i, R);
            const float *xi = x + i * ldx;
            float *ac = acc[i];
            const int pf0 = (int)(q * nv / np), pf1 = (int)((q + 1) * nv / np);
            switch (nv * 8 + r) {
            case 4 * 8 + 2: GEMV_BLOCK(4, 2); break;
            case 4 * 8 + 1: GEMV_BLOCK(4, 1); break;
            case 3 * 8 + 2: GEMV_BLOCK(3, 2); break;
            case 3 * 8 + 1: GEMV_BLOCK(3, 1); break;
            case 2 * 8 + 4: GEMV_BLOCK(2, 4); break;
            case 2 * 8 + 2: GEMV_BLOCK(2, 2); break;
            case 2 * 8 + 1: GEMV_BLOCK(2, 1); break;
            case 1 * 8 + 4: GEMV_BLOCK(1, 4); break;
            case 1 * 8 + 2: GEMV_BLOCK(1, 2); break;
            default: GEMV_BLOCK(1, 1); break;
            }
            i += r;
        }
    }
    for (int64_t i = 0; i < n; i++) memcpy(out + i * 64, acc[i], (size_t)nv * 16 * sizeof(float));
}

static void gemv_chunk(const float *a, int64_t lda, int64_t k, const float *x, float *out,
                       int64_t nrows) {
    if (hmti_cpu_level() == 2 && nrows % 16 == 0 && nrows <= 64) {
        gemv_avx512(a, lda, k, x, out, (int)(nrows / 16));
        return;
    }
    /* AVX2 and generic: the loop GEMM with n = 1 */
    loop_gemm(nrows, 1, k, a, lda, x, k, out, nrows, 0);
}

typedef struct {
    const float *a;
    int64_t rows, k, pr; /* pr = panel_rows */
    const float *x;
    int64_t ldx, n;
    float *y;
    int64_t ldy;
    const float *bias;
    /* GEMM: items = panels × n_sub × n_tiles; GEMV: items = 16-row chunks */
    int64_t nt, n_tiles, sub, n_sub;
    hmti_work work; /* the items, taken in runs by the threads */
} mm_job;

/* Runs of about 1/6 of a thread's share: few atomics, good balance. */
static int64_t grab_size(int64_t n_items, int nth, int64_t cap) {
    int64_t g = n_items / ((int64_t)nth * 6);
    if (g > cap) g = cap;
    return g < 1 ? 1 : g;
}

enum { GEMV_CHUNK = 16, MM_NT = 64 };

/* Rows [16 u0, 16 u1) for the job's n activation rows (n <= GEMV_MAX_N). */
static void gemv_range(const mm_job *j, int64_t u0, int64_t u1) {
    int64_t per_panel = (j->pr + GEMV_CHUNK - 1) / GEMV_CHUNK;
    float out[GEMV_MAX_N * 64];
    while (u0 < u1) {
        int64_t p = u0 / per_panel, c0 = u0 % per_panel;
        int64_t c1 = per_panel;
        if (p * per_panel + c1 > u1) c1 = u1 - p * per_panel;
        if (c1 - c0 > 64 / GEMV_CHUNK) c1 = c0 + 64 / GEMV_CHUNK;
        int64_t row0 = p * j->pr + c0 * GEMV_CHUNK;
        int64_t nrows = (c1 - c0) * GEMV_CHUNK;
        const float *ap = j->a + p * j->pr * j->k + c0 * GEMV_CHUNK;
        int64_t valid = j->rows - row0 < nrows ? j->rows - row0 : nrows;
        if (nrows > j->pr - c0 * GEMV_CHUNK) nrows = j->pr - c0 * GEMV_CHUNK; /* pr % 16 != 0 */
        if (valid > nrows) valid = nrows;
        if (j->n > 1 && hmti_cpu_level() == 2 && nrows % 16 == 0)
            gemv_multi_avx512(ap, j->pr, j->k, j->x, j->ldx, j->n, out, (int)(nrows / 16));
        else
            for (int64_t i = 0; i < j->n; i++) gemv_chunk(ap, j->pr, j->k, j->x + i * j->ldx, out + i * 64, nrows);
        for (int64_t i = 0; i < j->n; i++) {
            float *yo = j->y + i * j->ldy + row0;
            const float *o = out + i * 64;
            if (j->bias)
                for (int64_t r = 0; r < valid; r++) yo[r] = o[r] + j->bias[row0 + r];
            else
                memcpy(yo, o, (size_t)valid * sizeof(float));
        }
        u0 = p * per_panel + c1;
    }
}

static void gemv_job(void *arg, int ith, int nth) {
    (void)ith;
    (void)nth;
    int64_t lo, hi;
    while (hmti_work_take(&((mm_job *)arg)->work, &lo, &hi)) gemv_range(arg, lo, hi);
}

static void gemm_range(const mm_job *j, int64_t i0, int64_t i1) {
    for (int64_t it = i0; it < i1; it++) {
        int64_t t = it % j->n_tiles, ps = it / j->n_tiles;
        int64_t s = ps % j->n_sub, p = ps / j->n_sub;
        int64_t row0 = p * j->pr + s * j->sub;
        int64_t m = j->rows - row0 < j->sub ? j->rows - row0 : j->sub;
        if (m <= 0) continue;
        int64_t col0 = t * j->nt;
        int64_t nn = j->n - col0 < j->nt ? j->n - col0 : j->nt;
        const float *ap = j->a + p * j->pr * j->k + s * j->sub;
        float *cp = j->y + col0 * j->ldy + row0;
        tile_gemm(m, nn, j->k, ap, j->pr, j->x + col0 * j->ldx, j->ldx, cp, j->ldy, 0);
        if (j->bias) {
            const float *bb = j->bias + row0;
            for (int64_t c = 0; c < nn; c++) {
                float *yc = cp + c * j->ldy;
                for (int64_t i = 0; i < m; i++) yc[i] += bb[i];
            }
        }
    }
}

static void gemm_job(void *arg, int ith, int nth) {
    (void)ith;
    (void)nth;
    int64_t lo, hi;
    while (hmti_work_take(&((mm_job *)arg)->work, &lo, &hi)) gemm_range(arg, lo, hi);
}

static void job_init(mm_job *j, const hmti_matrix *w, const float *x, int64_t ldx, int64_t n,
                     float *y, int64_t ldy, const float *bias) {
    memset(j, 0, sizeof *j);
    j->a = w->data;
    j->rows = w->rows;
    j->k = w->cols;
    j->pr = w->panel_rows;
    j->x = x;
    j->ldx = ldx;
    j->n = n;
    j->y = y;
    j->ldy = ldy;
    j->bias = bias;
}

/* The GEMV path for j->n <= GEMV_MAX_N activation rows: every weight read
 * once for all of them. */
static void gemv(hmti_pool *pool, mm_job *j) {
    int nth = hmti_pool_n_threads(pool);
    if (nth > 1 && j->rows * j->k * j->n < 32 * 1024) nth = 1; /* not worth a wake-up */
    const int64_t n_items = (j->rows + GEMV_CHUNK - 1) / GEMV_CHUNK;
    if (nth == 1) {
        gemv_range(j, 0, n_items);
        return;
    }
    /* Whole panels per grab: each thread then streams contiguous memory,
     * which the hardware prefetchers follow; splitting a panel's rows
     * between threads makes both read with a stride. */
    const int64_t per_panel = (j->pr + GEMV_CHUNK - 1) / GEMV_CHUNK;
    const int64_t n_panels = (j->rows + j->pr - 1) / j->pr;
    hmti_work_init(&j->work, n_items, grab_size(n_panels, nth, INT64_MAX) * per_panel);
    hmti_pool_run(pool, gemv_job, j);
}

void hmti_matmul_gemv_rows(hmti_pool *pool, const hmti_matrix *w, const float *x, int64_t ldx,
                           int64_t n, float *y, int64_t ldy, const float *bias) {
    if (w->n_parts) { /* not reached: stored matrices have their own decode path */
        hmti_matmul_stored(pool, w, x, ldx, n, y, ldy, bias);
        return;
    }
    for (int64_t i = 0; i < n; i += GEMV_MAX_N) {
        mm_job j;
        job_init(&j, w, x + i * ldx, ldx, n - i < GEMV_MAX_N ? n - i : GEMV_MAX_N, y + i * ldy, ldy,
                 bias);
        gemv(pool, &j);
    }
}

void hmti_matmul(hmti_pool *pool, const hmti_matrix *w, const float *x, int64_t ldx, int64_t n,
                 float *y, int64_t ldy, const float *bias) {
    if (n <= 0 || w->rows <= 0) return;
    if (w->n_parts) {
        hmti_matmul_stored(pool, w, x, ldx, n, y, ldy, bias);
        return;
    }
    mm_job j;
    job_init(&j, w, x, ldx, n, y, ldy, bias);
    if (n == 1) {
        gemv(pool, &j);
        return;
    }
    int nth = hmti_pool_n_threads(pool);
    int64_t n_panels = (w->rows + j.pr - 1) / j.pr;
    j.nt = MM_NT;
    j.n_tiles = (n + MM_NT - 1) / MM_NT;
    /* Split panels into row blocks when there are too few items to balance
     * the threads (e.g. 3 panels × 1 tile on 2 threads), never below 32
     * rows: 16-row blocks take libxsmm kernels whose sums differ in the
     * last bits, so a 3-thread prompt's logits differed from a 1- or
     * 2-thread one's (up to 3.3e-6; docs/QUANTS.md, seventeenth session). */
    j.n_sub = 1;
    j.sub = j.pr;
    while (nth > 1 && j.sub % 64 == 0) {
        int64_t items = n_panels * j.n_sub * j.n_tiles;
        if (items % nth == 0 || items >= 8 * nth) break;
        j.n_sub *= 2;
        j.sub /= 2;
    }
    const int64_t n_items = n_panels * j.n_sub * j.n_tiles;
    if (nth > 1 && n_items > 1 && 2 * w->rows * w->cols * n >= 1000000) {
        hmti_work_init(&j.work, n_items, grab_size(n_items, nth, j.n_tiles * j.n_sub));
        hmti_pool_run(pool, gemm_job, &j);
    } else {
        gemm_range(&j, 0, n_items);
    }
}
