/* Exact squared L2 distances in double and the re-ranking of candidate
 * ids by them: the last step of every search (the exact scan's merged heaps
 * in knn_search.c, FAISS's candidates in knn_index.c), below both. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "hooks/knn.h"
#include "kernels/cpu.h"

/* Σ(q−k)² in double: differences first, so without the cancellation of the
 * GEMM form. Eight independent accumulators let the compiler vectorize the
 * loop (a plain reduction may not be reordered), so every variant adds in
 * the same order and gives the same bits. The AVX-512 / AVX2 variant is
 * chosen once, at first use, from kernels/cpu.c's detection: a plain
 * function pointer, not an IFUNC (GCC's target_clones resolver runs before
 * ThreadSanitizer's runtime is up and crashed `make tsan` before main). */
typedef double (*sqdist_fn)(const float *a, const float *b, int64_t d);

static inline __attribute__((always_inline)) double sqdist_body(const float *a, const float *b,
                                                                int64_t d) {
    double acc[8] = {0};
    int64_t p = 0;
    for (; p + 8 <= d; p += 8)
        for (int u = 0; u < 8; u++) {
            double t = (double)a[p + u] - (double)b[p + u];
            acc[u] += t * t;
        }
    for (; p < d; p++) {
        double t = (double)a[p] - (double)b[p];
        acc[0] += t * t;
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

#if defined(__GNUC__) && !defined(__clang__)
#define SQDIST_OPT __attribute__((optimize("O3")))
#else
#define SQDIST_OPT
#endif

static SQDIST_OPT double sqdist_default(const float *a, const float *b, int64_t d) {
    return sqdist_body(a, b, d);
}
#if defined(__x86_64__)
static SQDIST_OPT AVX2_TARGET double sqdist_avx2(const float *a, const float *b, int64_t d) {
    return sqdist_body(a, b, d);
}
static SQDIST_OPT AVX512_TARGET double sqdist_avx512(const float *a, const float *b, int64_t d) {
    return sqdist_body(a, b, d);
}
#endif

static _Atomic(sqdist_fn) sqdist_chosen;

static sqdist_fn sqdist_pick(void) {
    sqdist_fn f = sqdist_default;
#if defined(__x86_64__)
    const int level = hmti_cpu_level();
    f = level >= 2 ? sqdist_avx512 : level == 1 ? sqdist_avx2 : sqdist_default;
#endif
    atomic_store_explicit(&sqdist_chosen, f, memory_order_relaxed);
    return f;
}

double hmti_knn_sqdist(const float *a, const float *b, int64_t d) {
    sqdist_fn f = atomic_load_explicit(&sqdist_chosen, memory_order_relaxed);
    return (f ? f : sqdist_pick())(a, b, d);
}

/* Sort candidates of one query by (exact distance, index). */
typedef struct {
    double d;
    int64_t i;
} cand;

static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->d < y->d) return -1;
    if (x->d > y->d) return 1;
    return (x->i > y->i) - (x->i < y->i);
}

void hmti_knn_rerank(const hmt_knn *knn, const float *q, const int64_t *ids, int64_t n, int64_t k,
                     float *dist_out, int64_t *idx_out, float *kbuf, void *scratch) {
    const int64_t d = knn->dim;
    cand *cs = scratch;
    int64_t m = 0;
    for (int64_t c = 0; c < n; c++) {
        if (ids[c] < 0 || ids[c] >= knn->count) continue;
        const float *kv;
        if (knn->dtype == HMT_KNN_F16) {
            hmti_knn_key(knn, ids[c], kbuf);
            kv = kbuf;
        } else {
            kv = (const float *)knn->keys_raw + (size_t)ids[c] * d;
        }
        cs[m].d = hmti_knn_sqdist(q, kv, d);
        cs[m].i = ids[c];
        m++;
    }
    qsort(cs, (size_t)m, sizeof *cs, cand_cmp);
    for (int64_t c = 0; c < k; c++) {
        if (dist_out) dist_out[c] = c < m ? (float)cs[c].d : INFINITY;
        if (idx_out) idx_out[c] = c < m ? cs[c].i : -1;
    }
}
