/* Measuring helpers shared by the benchmark programs (header-only; C99):
 * the machine's ceilings measured in the same run as the thing compared
 * against them, so ratios hold even when absolute figures drift.
 *
 *   hmtb_now()                 monotonic seconds
 *   hmtb_median(v, n)          median (sorts v in place)
 *   hmtb_run_threads(n, fn, a) run fn(a, ith, nth) on n fresh threads, started
 *                              together; returns the wall time of the slowest
 *   hmtb_gemm_ceiling(nth,...) best FP32 GFLOP/s of raw libxsmm kernels with
 *                              operands in cache, over a few tile shapes, each
 *                              thread on its own tiles (the "GEMM ceiling")
 *   hmtb_stream_read_gbs(nth, bytes, reps)
 *                              streaming-read bandwidth, GB/s: the higher
 *                              median of two readers (one sequential stream
 *                              per thread, and 4 interleaved ones)
 *   hmtb_alloc(bytes)          page-aligned, huge-page-advised, pre-faulted
 *
 * Needs libxsmm (-lxsmm -lxsmmnoblas -lpthread -lrt -ldl -lm). */
#ifndef HMT_BENCH_CEILING_H
#define HMT_BENCH_CEILING_H

#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <libxsmm.h>

static inline double hmtb_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int hmtb_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static inline double hmtb_median(double *v, int n) {
    if (n <= 0) return 0.0;
    qsort(v, (size_t)n, sizeof *v, hmtb_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* n pseudo-random token ids in [0, vocab) from seed (a 64-bit LCG): the
 * benchmarks' fixed, reproducible inputs. */
static inline void hmtb_tokens(int32_t *tok, size_t n, int32_t vocab, uint64_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        tok[i] = (int32_t)((seed >> 33) % (uint64_t)vocab);
    }
}

/* Anonymous memory, 2 MiB aligned, THP advised and touched once, so timed
 * loops never pay first-touch page faults. NULL on failure. */
static inline void *hmtb_alloc(size_t bytes) {
    size_t huge = (size_t)2 << 20;
    size_t len = (bytes + huge - 1) / huge * huge + huge;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    char *a = (char *)(((uintptr_t)p + huge - 1) & ~(uintptr_t)(huge - 1));
    madvise(a, len - (size_t)(a - p), MADV_HUGEPAGE);
    memset(a, 1, bytes);
    return a; /* never unmapped: benchmarks allocate a few buffers for their lifetime */
}

/* ---- threads ------------------------------------------------------------------- */
typedef void (*hmtb_thread_fn)(void *arg, int ith, int nth);

typedef struct {
    hmtb_thread_fn fn;
    void *arg;
    int ith, nth;
    pthread_barrier_t *bar;
    double t;
} hmtb_thread_slot;

static inline void *hmtb_thread_main(void *p) {
    hmtb_thread_slot *s = p;
    pthread_barrier_wait(s->bar);
    double t0 = hmtb_now();
    s->fn(s->arg, s->ith, s->nth);
    s->t = hmtb_now() - t0;
    return NULL;
}

/* Runs fn on nth threads (nth - 1 new ones plus the caller) released by one
 * barrier; returns the longest per-thread time. */
static inline double hmtb_run_threads(int nth, hmtb_thread_fn fn, void *arg) {
    enum { MAXT = 64 };
    if (nth < 1) nth = 1;
    if (nth > MAXT) nth = MAXT;
    pthread_t th[MAXT];
    hmtb_thread_slot slot[MAXT];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)nth);
    for (int i = 0; i < nth; i++) {
        slot[i].fn = fn;
        slot[i].arg = arg;
        slot[i].ith = i;
        slot[i].nth = nth;
        slot[i].bar = &bar;
        slot[i].t = 0;
    }
    for (int i = 1; i < nth; i++) pthread_create(&th[i], NULL, hmtb_thread_main, &slot[i]);
    hmtb_thread_main(&slot[0]);
    double t = slot[0].t;
    for (int i = 1; i < nth; i++) {
        pthread_join(th[i], NULL);
        if (slot[i].t > t) t = slot[i].t;
    }
    pthread_barrier_destroy(&bar);
    return t;
}

/* ---- GEMM ceiling ---------------------------------------------------------------- */
typedef struct {
    libxsmm_smmfunction fn;
    int m, n, k;
    long iters;
    float *buf[64]; /* per thread: A | B | C */
} hmtb_gemm_arg;

static inline void hmtb_gemm_thread(void *p, int ith, int nth) {
    hmtb_gemm_arg *g = p;
    (void)nth;
    float *a = g->buf[ith], *b = a + (size_t)g->m * g->k, *c = b + (size_t)g->k * g->n;
    for (long i = 0; i < g->iters; i++) g->fn(a, b, c);
}

/* Best GFLOP/s over tile shapes (m×n×k, column-major, beta 1, operands in
 * L2), nth threads each on private tiles; median of `reps` timings of about
 * `secs` seconds per shape. The winning shape goes to *best_m/n/k if given. */
static inline double hmtb_gemm_ceiling(int nth, double secs, int reps, int *best_m, int *best_n,
                                       int *best_k) {
    static const int shapes[][3] = {{64, 64, 576},  {64, 64, 1536}, {64, 32, 576},
                                    {32, 64, 576},  {64, 256, 576}, {48, 64, 576},
                                    {64, 128, 576}, {64, 64, 256}};
    enum { NSHAPES = sizeof shapes / sizeof shapes[0] };
    libxsmm_init();
    double best = 0;
    if (nth > 64) nth = 64;
    if (reps > 64) reps = 64;
    for (int s = 0; s < NSHAPES; s++) {
        hmtb_gemm_arg g;
        memset(&g, 0, sizeof g);
        g.m = shapes[s][0];
        g.n = shapes[s][1];
        g.k = shapes[s][2];
        libxsmm_blasint lda = g.m, ldb = g.k, ldc = g.m;
        float alpha = 1, beta = 1;
        int flags = LIBXSMM_GEMM_FLAG_NONE, pf = LIBXSMM_GEMM_PREFETCH_NONE;
        g.fn = libxsmm_smmdispatch(g.m, g.n, g.k, &lda, &ldb, &ldc, &alpha, &beta, &flags, &pf);
        if (!g.fn) continue;
        size_t floats = (size_t)g.m * g.k + (size_t)g.k * g.n + (size_t)g.m * g.n;
        for (int ti = 0; ti < nth; ti++) {
            if (posix_memalign((void **)&g.buf[ti], 64, floats * sizeof(float))) return 0;
            for (size_t i = 0; i < floats; i++) g.buf[ti][i] = 1e-3f * (float)(i % 17);
        }
        double flop = 2.0 * g.m * g.n * g.k;
        g.iters = 10;
        double t = hmtb_run_threads(nth, hmtb_gemm_thread, &g); /* warm-up + calibrate */
        g.iters = (long)(secs / (t / 10.0 > 1e-9 ? t / 10.0 : 1e-9));
        if (g.iters < 10) g.iters = 10;
        double r[64];
        for (int i = 0; i < reps; i++)
            r[i] = flop * (double)g.iters * nth / hmtb_run_threads(nth, hmtb_gemm_thread, &g) * 1e-9;
        double med = hmtb_median(r, reps);
        if (med > best) {
            best = med;
            if (best_m) *best_m = g.m;
            if (best_n) *best_n = g.n;
            if (best_k) *best_k = g.k;
        }
        for (int ti = 0; ti < nth; ti++) free(g.buf[ti]);
    }
    return best;
}

/* ---- streaming-read bandwidth ----------------------------------------------------- */
__attribute__((target("avx512f"))) static inline float hmtb_read_avx512(const float *p,
                                                                          size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 64 <= n; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_load_ps(p + i));
        s1 = _mm512_add_ps(s1, _mm512_load_ps(p + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_load_ps(p + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_load_ps(p + i + 48));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

__attribute__((target("avx2"))) static inline float hmtb_read_avx2(const float *p, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 32 <= n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(p + i));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(p + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(p + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(p + i + 24));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

/* The same sum over 4 sequential streams at once (the share's quarters):
 * on the Zen 5 host of sessions 8-13 it read 1.2-1.26x the bytes per second
 * of one stream, at 1 and 2 threads, so a ceiling measured with one stream
 * alone was not one (docs/QUANTS.md, thirteenth session). Kept apart from
 * the one-stream readers: one loop for both, its gap and step run-time
 * values, read 0.82x as fast as the loop above on one stream. */
__attribute__((target("avx512f"))) static inline float hmtb_read4_avx512(const float *p, size_t n) {
    const size_t q = n / 4 / 16 * 16;
    const float *a = p, *b = p + q, *c = p + 2 * q, *d = p + 3 * q;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 16 <= q; i += 16) {
        s0 = _mm512_add_ps(s0, _mm512_load_ps(a + i));
        s1 = _mm512_add_ps(s1, _mm512_load_ps(b + i));
        s2 = _mm512_add_ps(s2, _mm512_load_ps(c + i));
        s3 = _mm512_add_ps(s3, _mm512_load_ps(d + i));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

__attribute__((target("avx2"))) static inline float hmtb_read4_avx2(const float *p, size_t n) {
    const size_t q = n / 4 / 8 * 8;
    const float *a = p, *b = p + q, *c = p + 2 * q, *d = p + 3 * q;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 8 <= q; i += 8) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(a + i));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(b + i));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(c + i));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(d + i));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

typedef struct {
    const float *p;
    size_t n;    /* floats, a multiple of 64 per thread share */
    int streams; /* 1 or 4 */
    volatile float sink[64];
} hmtb_read_arg;

static inline void hmtb_read_thread(void *v, int ith, int nth) {
    hmtb_read_arg *r = v;
    size_t per = r->n / (size_t)nth / 64 * 64;
    const float *p = r->p + per * (size_t)ith;
    float s;
    if (__builtin_cpu_supports("avx512f"))
        s = r->streams == 4 ? hmtb_read4_avx512(p, per) : hmtb_read_avx512(p, per);
    else if (__builtin_cpu_supports("avx2"))
        s = r->streams == 4 ? hmtb_read4_avx2(p, per) : hmtb_read_avx2(p, per);
    else {
        float a = 0, b = 0, c = 0, d = 0;
        for (size_t i = 0; i + 4 <= per; i += 4) {
            a += p[i];
            b += p[i + 1];
            c += p[i + 2];
            d += p[i + 3];
        }
        s = a + b + c + d;
    }
    r->sink[ith] = s;
}

/* GB/s reading `bytes` (much larger than the last-level cache; 512 MiB
 * is a good choice) split over nth threads: the higher of the medians of
 * the two readers, run alternately. The buffer is allocated on first use
 * and kept for later calls of the same or smaller size. */
static inline double hmtb_stream_read_gbs(int nth, size_t bytes, int reps) {
    static float *buf;
    static size_t buf_bytes;
    if (!buf || buf_bytes < bytes) {
        buf = hmtb_alloc(bytes);
        buf_bytes = bytes;
        if (!buf) return 0;
    }
    hmtb_read_arg r;
    memset(&r, 0, sizeof r);
    r.p = buf;
    r.n = bytes / sizeof(float);
    r.streams = 1;
    size_t read = r.n / (size_t)nth / 64 * 64 * (size_t)nth * sizeof(float);
    hmtb_run_threads(nth, hmtb_read_thread, &r); /* warm-up */
    double v[2][64];
    if (reps > 64) reps = 64;
    for (int i = 0; i < reps; i++)
        for (int k = 0; k < 2; k++) {
            r.streams = k ? 4 : 1;
            v[k][i] = (double)read / hmtb_run_threads(nth, hmtb_read_thread, &r) * 1e-9;
        }
    const double one = hmtb_median(v[0], reps), four = hmtb_median(v[1], reps);
    return one > four ? one : four;
}

#endif
