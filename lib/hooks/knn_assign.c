/* Nearest centroid for many vectors: the assignment step of k-means and of
 * IVF-PQ encoding (lib/hooks/knn_faiss.h). Per group of up to QB vectors and block
 * of up to CB centroids, one libxsmm GEMM gives the dot products, laid out so
 * that each vector's column is contiguous, and a 16-lane (AVX-512) scan of
 * ‖c‖² − 2x·c keeps the minimum; ‖x‖² is added back at the end. Groups are
 * split over the pool's threads. */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "hooks/knn_faiss.h"
#include "kernels/cpu.h"
#include "kernels/kernels.h"

#define QB 256 /* vectors per GEMM group  */
#define CB 512 /* centroids per GEMM block */

typedef struct {
    const float *x, *ct, *cn; /* ct: centroids transposed, d × nc */
    int64_t n, nc, d;
    float *dist;
    int64_t *idx;
    float **scratch; /* per thread: CB·QB dots */
} assign_job;

/* argmin over c < nb of cn[c] − 2·dots[c], lowest index on ties: per-lane
 * minima (AVX-512, 16 lanes, when the CPU has it), then the lanes reduced. */
static void lanes_reduce(const float *bv, const int32_t *bi, int lanes, float *best, int32_t *at) {
    for (int u = 0; u < lanes; u++)
        if (bi[u] >= 0 && (bv[u] < *best || (bv[u] == *best && bi[u] < *at)))
            *best = bv[u], *at = bi[u];
}

static void block_min_scalar(const float *cn, const float *dots, int32_t nb, float *best,
                             int32_t *at) {
    for (int32_t c = 0; c < nb; c++) {
        float v = cn[c] - 2.0f * dots[c];
        if (v < *best) *best = v, *at = c;
    }
}

#if defined(__x86_64__)
AVX512_TARGET static void block_min_avx512(const float *cn, const float *dots, int32_t nb,
                                           float *best, int32_t *at) {
    __m512 bv = _mm512_set1_ps(INFINITY);
    __m512i bi = _mm512_set1_epi32(-1);
    __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    const __m512 m2 = _mm512_set1_ps(-2.0f);
    int32_t c = 0;
    for (; c + 16 <= nb; c += 16) {
        /* fma(−2, dot, cn) rounds once, like cn − 2·dot (2·dot is exact) */
        __m512 v = _mm512_fmadd_ps(m2, _mm512_loadu_ps(dots + c), _mm512_loadu_ps(cn + c));
        __mmask16 lt = _mm512_cmp_ps_mask(v, bv, _CMP_LT_OQ);
        bv = _mm512_mask_mov_ps(bv, lt, v);
        bi = _mm512_mask_mov_epi32(bi, lt, idx);
        idx = _mm512_add_epi32(idx, step);
    }
    float fv[16];
    int32_t fi[16];
    _mm512_storeu_ps(fv, bv);
    _mm512_storeu_si512(fi, bi);
    lanes_reduce(fv, fi, 16, best, at);
    float tv = INFINITY;
    int32_t ti = -1;
    block_min_scalar(cn + c, dots + c, nb - c, &tv, &ti);
    if (ti >= 0) lanes_reduce(&tv, (int32_t[]){c + ti}, 1, best, at);
}
#endif

static void block_min(const float *cn, const float *dots, int32_t nb, float *best, int32_t *at) {
    *best = INFINITY;
    *at = -1;
#if defined(__x86_64__)
    if (hmti_cpu_level() >= 2) {
        block_min_avx512(cn, dots, nb, best, at);
        return;
    }
#endif
    block_min_scalar(cn, dots, nb, best, at);
}

static void assign_share(void *arg, int ith, int nth) {
    assign_job *j = arg;
    const int64_t d = j->d;
    int64_t lo, hi;
    hmti_split_range(j->n, ith, nth, QB, &lo, &hi);
    float *dots = j->scratch[ith];
    for (int64_t g0 = lo; g0 < hi; g0 += QB) {
        const int64_t nq = hi - g0 < QB ? hi - g0 : QB;
        const float *x = j->x + g0 * d;
        float *best = j->dist + g0;
        int64_t *bi = j->idx + g0;
        for (int64_t q = 0; q < nq; q++) best[q] = INFINITY, bi[q] = -1;
        for (int64_t c0 = 0; c0 < j->nc; c0 += CB) {
            const int64_t nb = j->nc - c0 < CB ? j->nc - c0 : CB;
            /* dots (nb × nq, column-major) = Cᵀ-block (nb × d) · X (d × nq) */
            hmti_gemm_cm(nb, nq, d, j->ct + c0, j->nc, x, d, dots, nb, 0.0f);
            for (int64_t q = 0; q < nq; q++) {
                float v;
                int32_t at;
                block_min(j->cn + c0, dots + q * nb, (int32_t)nb, &v, &at);
                if (at >= 0 && v < best[q]) best[q] = v, bi[q] = c0 + at;
            }
        }
        for (int64_t q = 0; q < nq; q++) {
            double s = 0;
            for (int64_t p = 0; p < d; p++) s += (double)x[q * d + p] * x[q * d + p];
            float v = (float)(s + best[q]);
            best[q] = v > 0 ? v : 0;
            if (bi[q] < 0) bi[q] = 0; /* only with non-finite input; keep an index valid */
        }
    }
}

int hmti_nearest_rows(hmti_pool *pool, const float *x, int64_t n, const float *c, int64_t nc,
                      int64_t d, float *dist, int64_t *idx) {
    if (n <= 0) return HMT_OK;
    if (nc <= 0 || d <= 0 || nc > INT32_MAX)
        return hmti_errf(HMT_E_INTERNAL, "nearest rows: %lld centroids", (long long)nc);
    const int nth = pool ? hmti_pool_n_threads(pool) : 1;
    assign_job j = {.x = x, .n = n, .nc = nc, .d = d, .dist = dist, .idx = idx};
    float *cn = hmti_malloc((size_t)nc * sizeof *cn);
    float *ct = hmti_malloc((size_t)nc * (size_t)d * sizeof *ct);
    j.scratch = hmti_calloc((size_t)nth, sizeof *j.scratch);
    int ok = cn && ct && j.scratch;
    for (int t = 0; ok && t < nth; t++)
        ok = (j.scratch[t] = hmti_malloc((size_t)QB * CB * sizeof(float))) != NULL;
    if (ok) {
        for (int64_t i = 0; i < nc; i++) {
            double s = 0;
            for (int64_t p = 0; p < d; p++) {
                s += (double)c[i * d + p] * c[i * d + p];
                ct[p * nc + i] = c[i * d + p];
            }
            cn[i] = (float)s;
        }
        j.cn = cn;
        j.ct = ct;
        if (pool && nth > 1)
            hmti_pool_run(pool, assign_share, &j);
        else
            assign_share(&j, 0, 1);
    }
    for (int t = 0; j.scratch && t < nth; t++) free(j.scratch[t]);
    free(j.scratch);
    free(cn);
    free(ct);
    return ok ? HMT_OK : hmti_errf(HMT_E_NOMEM, "nearest rows: out of memory");
}
