/* Numeric kernels against plain scalar references written here (double
 * accumulation). Tolerances, stated per test:
 * - matmul, gemm_cm: |y - ref| <= 2e-6 · sqrt(K) · Σ|w·x| (+1e-30), i.e. a
 *   few float ulps of the absolute sum, growing like random-walk rounding;
 * - conversions: bit-exact (NaN: NaN of the same sign);
 * - rmsnorm, softmax, silu, rope, dot, axpy: 1e-5 relative (or absolute
 *   near 0), SLEEF's u10 functions being within 1 ulp. */
#include <check.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "core/alloc.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/kv_row.h"
#include "kernels/quant.h"
#include "util/testutil.h"

/* ---- helpers ----------------------------------------------------------------- */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint32_t rnd32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rndf(void) { return (float)((rnd32() & 0xFFFFFF) / 16777216.0 * 2.0 - 1.0); }

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Reference f16 -> double, by the definition of the format. */
static double ref_f16(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexp((double)m, -24);
    else v = ldexp((double)(1024 + m), e - 25);
    return s ? -v : v;
}

/* Reference float -> f16 by nearest-value search on the value line (ties to
 * even), independent of the bit tricks in the library. */
static uint16_t ref_to_f16(float f) {
    if (isnan(f)) return 0x7E00;
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    double a = fabs((double)f);
    if (a >= 65520.0) return sign | 0x7C00;
    /* binary search the largest finite h with value <= a */
    int lo = 0, hi = 0x7BFF;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (ref_f16((uint16_t)mid) <= a) lo = mid;
        else hi = mid - 1;
    }
    double vlo = ref_f16((uint16_t)lo);
    double vhi = lo == 0x7BFF ? 65536.0 : ref_f16((uint16_t)(lo + 1));
    int pick = lo;
    if (a - vlo > vhi - a) pick = lo + 1;
    else if (a - vlo == vhi - a) pick = (lo & 1) ? lo + 1 : lo;
    return (uint16_t)(sign | pick);
}

/* Reference float -> bf16: nearest by value in double, ties to even. */
static uint16_t ref_to_bf16(float f) {
    uint32_t u = fbits(f);
    if (isnan(f)) return 0x7FC0;
    uint16_t sign = (uint16_t)(u >> 16) & 0x8000;
    uint32_t lo = (u & 0x7FFFFFFFu) >> 16;
    double a = fabs((double)f);
    double vlo = fabs((double)bitsf(lo << 16));
    int e = (int)(lo >> 7); /* biased exponent of lo */
    double ulp = ldexp(1.0, (e ? e : 1) - 127 - 7);
    double vhi = vlo + ulp; /* value of lo + 1 (2^128 past the largest finite) */
    uint32_t pick = lo;
    if (a - vlo > vhi - a) pick = lo + 1;
    else if (a - vlo == vhi - a) pick = (lo & 1) ? lo + 1 : lo;
    return (uint16_t)(sign | pick);
}

static void assert_close(double got, double want, double tol, const char *what, int64_t i) {
    double err = fabs(got - want);
    double lim = tol * fmax(1.0, fabs(want));
    EXPECT_MSG(err <= lim, "%s[%lld]: got %.9g want %.9g (err %.3g > %.3g)", what,
                  (long long)i, got, want, err, lim);
}

/* ---- pool -------------------------------------------------------------------------- */
typedef struct {
    atomic_int hits[8];
    atomic_int bad_nth;
    int expect_nth;
    int32_t *cover;
    int64_t n;
} pool_arg;

static void pool_job(void *p, int ith, int nth) {
    pool_arg *a = p;
    if (nth != a->expect_nth || ith < 0 || ith >= nth) atomic_fetch_add(&a->bad_nth, 1);
    else atomic_fetch_add(&a->hits[ith], 1);
    int64_t lo, hi;
    hmti_split_range(a->n, ith, nth, 1, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) a->cover[i]++;
}

START_TEST(pool_runs_every_share_once) {
    for (int nt = 1; nt <= 4; nt++) {
        hmti_pool *pool = NULL;
        ck_assert_int_eq(hmti_pool_create(&pool, nt), HMT_OK);
        ck_assert_int_eq(hmti_pool_n_threads(pool), nt);
        pool_arg a;
        memset(&a, 0, sizeof a);
        a.expect_nth = nt;
        a.n = 1000;
        a.cover = calloc((size_t)a.n, sizeof *a.cover);
        const int runs = 2000;
        for (int r = 0; r < runs; r++) {
            hmti_pool_run(pool, pool_job, &a);
            if (r % 500 == 499) { /* let the workers fall asleep: exercises the condvar path */
                struct timespec ts = {0, 3000000};
                nanosleep(&ts, NULL);
            }
        }
        ck_assert_int_eq(atomic_load(&a.bad_nth), 0);
        for (int i = 0; i < nt; i++) EXPECT(atomic_load(&a.hits[i]) == runs);
        for (int64_t i = 0; i < a.n; i++) EXPECT(a.cover[i] == runs);
        free(a.cover);
        hmti_pool_release(pool);
    }
    hmti_pool_release(NULL);
    hmti_pool *p = NULL;
    ck_assert_int_eq(hmti_pool_create(&p, 0), HMT_E_INVAL);
    ck_assert_ptr_null(p);
}
END_TEST

/* Streaming work: every unit taken exactly once, whatever the shares,
 * segments, grab sizes and thread interleaving; a share takes its own
 * segment front to back before anything else; with one share idle the
 * others finish its segment from the back. */
typedef struct {
    hmti_swork w;
    int32_t *taken;
    int64_t n;
    atomic_int out_of_order;
    int idle_share; /* -1: all shares work */
} swork_arg;

/* Which of share ith's own segments [lo, hi) lies in (-1: another's); its range in slo, shi. */
static int own_segment(const hmti_swork *w, int64_t n, int ith, int64_t lo, int64_t hi, int64_t *slo,
                       int64_t *shi) {
    const int per = w->per_share, n_seg = w->n_share * per;
    for (int s = 0; s < per; s++) {
        hmti_split_range(n, (ith % w->n_share) * per + s, n_seg, 1, slo, shi);
        if (lo >= *slo && hi <= *shi) return s;
    }
    return -1;
}

static void swork_job(void *p, int ith, int nth) {
    (void)nth;
    swork_arg *a = p;
    if (ith == a->idle_share) return;
    int64_t lo[HMTI_SWORK_STREAMS], hi[HMTI_SWORK_STREAMS], own_next[HMTI_SWORK_STREAMS];
    for (int s = 0; s < HMTI_SWORK_STREAMS; s++) own_next[s] = -1;
    int own_done = 0, k;
    while ((k = hmti_swork_take(&a->w, ith, lo, hi)) > 0) {
        if (k > a->w.per_share) atomic_fetch_add(&a->out_of_order, 1);
        for (int t = 0; t < k; t++) {
            for (int64_t i = lo[t]; i < hi[t]; i++) a->taken[i]++; /* each unit by one share only */
            int64_t slo, shi;
            const int s = own_segment(&a->w, a->n, ith, lo[t], hi[t], &slo, &shi);
            if (s < 0) { /* stolen: one range a take, after the share's own work */
                own_done = 1;
                if (k > 1) atomic_fetch_add(&a->out_of_order, 1);
                continue;
            }
            if (own_done || (own_next[s] >= 0 && lo[t] != own_next[s]) || (own_next[s] < 0 && lo[t] != slo) ||
                hi[t] - lo[t] > a->w.grab || (t > 0 && lo[t] <= lo[t - 1]))
                atomic_fetch_add(&a->out_of_order, 1);
            own_next[s] = hi[t];
        }
    }
}

START_TEST(swork_takes_every_unit_once) {
    for (int nt = 1; nt <= 3; nt++) {
        hmti_pool *pool = NULL;
        ck_assert_int_eq(hmti_pool_create(&pool, nt), HMT_OK);
        const int64_t ns[] = {0, 1, 2, 7, 100, 1001};
        for (int streams = 1; streams <= HMTI_SWORK_STREAMS; streams += HMTI_SWORK_STREAMS - 1)
            for (int k = 0; k < 6; k++)
                for (int64_t grab = 1; grab <= 9; grab += 4)
                    for (int idle = -1; idle < nt; idle++) {
                        swork_arg *a = calloc(1, sizeof *a);
                        a->n = ns[k];
                        a->taken = calloc((size_t)a->n + 1, sizeof *a->taken);
                        a->idle_share = nt > 1 ? idle : -1;
                        for (int r = 0; r < 50; r++) {
                            hmti_swork_init(&a->w, a->n, grab, nt, streams);
                            hmti_pool_run(pool, swork_job, a);
                        }
                        for (int64_t i = 0; i < a->n; i++) EXPECT(a->taken[i] == 50);
                        ck_assert_int_eq(atomic_load(&a->out_of_order), 0);
                        free(a->taken);
                        free(a);
                    }
        hmti_pool_release(pool);
    }
}
END_TEST

/* A share's takes with 4 streams: a grab from the front of each of its 4
 * segments (its range's quarters) at once, until they are empty. */
START_TEST(swork_takes_four_streams) {
    hmti_swork w;
    hmti_swork_init(&w, 40, 3, 1, 4);
    static const int64_t want[][4][2] = {
        {{0, 3}, {10, 13}, {20, 23}, {30, 33}}, {{3, 6}, {13, 16}, {23, 26}, {33, 36}},
        {{6, 8}, {16, 18}, {26, 28}, {36, 38}}, {{8, 9}, {18, 19}, {28, 29}, {38, 39}},
        {{9, 10}, {19, 20}, {29, 30}, {39, 40}}};
    int64_t lo[4], hi[4];
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        ck_assert_int_eq(hmti_swork_take(&w, 0, lo, hi), 4);
        for (int s = 0; s < 4; s++) {
            ck_assert_int_eq(lo[s], want[k][s][0]);
            ck_assert_int_eq(hi[s], want[k][s][1]);
        }
    }
    ck_assert_int_eq(hmti_swork_take(&w, 0, lo, hi), 0);
    /* more shares than HMTI_SWORK_MAX allows 4 segments each: one stream each */
    hmti_swork_init(&w, 1000, 3, HMTI_SWORK_MAX / 2, 4);
    ck_assert_int_eq(w.per_share, 1);
}
END_TEST

/* One share alone, two segments: its own takes are grab units until half of
 * what is left is smaller, then halve; then it steals half of the other
 * segment from the back, then half of the rest... */
START_TEST(swork_takes_shrink) {
    hmti_swork w;
    hmti_swork_init(&w, 100, 9, 2, 1);
    static const int64_t want[][2] = {{0, 9},   {9, 18},  {18, 27}, {27, 36}, {36, 43}, {43, 47},
                                      {47, 49}, {49, 50}, {75, 100}, {62, 75}, {56, 62}, {53, 56},
                                      {51, 53}, {50, 51}};
    int64_t lo, hi;
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        ck_assert_int_eq(hmti_swork_take(&w, 0, &lo, &hi), 1);
        ck_assert_int_eq(lo, want[k][0]);
        ck_assert_int_eq(hi, want[k][1]);
    }
    ck_assert_int_eq(hmti_swork_take(&w, 0, &lo, &hi), 0);
}
END_TEST

START_TEST(split_range_covers_and_aligns) {
    int64_t aligns[] = {1, 3, 16};
    for (int64_t n = 0; n <= 100; n++)
        for (int nth = 1; nth <= 5; nth++)
            for (int ai = 0; ai < 3; ai++) {
                int64_t al = aligns[ai], prev = 0;
                for (int ith = 0; ith < nth; ith++) {
                    int64_t lo, hi;
                    hmti_split_range(n, ith, nth, al, &lo, &hi);
                    EXPECT(lo == prev);
                    EXPECT(hi >= lo && hi <= n);
                    EXPECT(lo == n || lo % al == 0);
                    EXPECT(hi == n || hi % al == 0);
                    prev = hi;
                }
                EXPECT(prev == n);
            }
}
END_TEST

/* ---- conversions ------------------------------------------------------------------ */
START_TEST(f16_all_patterns) {
    static uint16_t src[65536];
    static float row[65536];
    for (uint32_t h = 0; h < 65536; h++) src[h] = (uint16_t)h;
    hmti_row_to_f32(src, 1, row, 65536);
    for (uint32_t h = 0; h < 65536; h++) {
        float f = hmti_f16_to_f32((uint16_t)h);
        double want = ref_f16((uint16_t)h);
        if (isnan(want)) {
            EXPECT_MSG(isnan(f) && !!signbit(f) == !!(h & 0x8000), "f16 %04x: NaN expected", h);
            /* payload kept, made quiet */
            EXPECT_EQ(fbits(f) & 0x7FFFFFFFu, 0x7FC00000u | ((h & 0x3FFu) << 13));
            EXPECT_EQ(hmti_f32_to_f16(f) & 0x7E00u, 0x7E00u);
            EXPECT_EQ(hmti_f32_to_f16(f) & 0x8000u, h & 0x8000u);
        } else {
            EXPECT_MSG((double)f == want && !!signbit(f) == !!(h & 0x8000),
                          "f16 %04x: got %a want %a", h, (double)f, want);
            EXPECT_EQ(hmti_f32_to_f16(f), h); /* exact round trip */
        }
        EXPECT_MSG(fbits(row[h]) == fbits(f), "row f16 %04x: %08x vs %08x", h, fbits(row[h]),
                      fbits(f));
    }
    /* tails of the vector converter */
    for (int64_t n = 1; n <= 40; n++) {
        float out[41];
        out[n] = 7.0f;
        hmti_row_to_f32(src + 0x3C00, 1, out, n);
        for (int64_t i = 0; i < n; i++) EXPECT(out[i] == hmti_f16_to_f32((uint16_t)(0x3C00 + i)));
        EXPECT(out[n] == 7.0f);
    }
}
END_TEST

START_TEST(f32_to_f16_rounding) {
    /* midpoints between neighbours (and one float ulp either side) */
    for (uint32_t h = 0; h < 0x7C00; h++) {
        double lo = ref_f16((uint16_t)h), hi = h == 0x7BFF ? 65536.0 : ref_f16((uint16_t)(h + 1));
        float mid = (float)((lo + hi) / 2); /* exact: 12 significant bits */
        EXPECT((double)mid == (lo + hi) / 2);
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        EXPECT_EQ(hmti_f32_to_f16(mid), even);
        EXPECT_EQ(hmti_f32_to_f16(-mid), even | 0x8000u);
        EXPECT_EQ(hmti_f32_to_f16(nextafterf(mid, 0.0f)), h);
        EXPECT_EQ(hmti_f32_to_f16(nextafterf(mid, INFINITY)), h + 1);
    }
    EXPECT_EQ(hmti_f32_to_f16(INFINITY), 0x7C00);
    EXPECT_EQ(hmti_f32_to_f16(-INFINITY), 0xFC00);
    EXPECT_EQ(hmti_f32_to_f16(1e10f), 0x7C00);
    EXPECT_EQ(hmti_f32_to_f16(-0.0f), 0x8000);
    EXPECT_EQ(hmti_f32_to_f16(1e-10f), 0);
    EXPECT_EQ(hmti_f32_to_f16(bitsf(0x7F800001u)) & 0x7E00u, 0x7E00u); /* sNaN -> NaN */
    /* random floats over the whole range, and over the f16 range */
    for (int i = 0; i < 300000; i++) {
        float f = bitsf(rnd32() ^ (rnd32() << 16));
        if (i & 1) f = ldexpf(rndf(), (int)(rnd32() % 45) - 28);
        uint16_t got = hmti_f32_to_f16(f), want = ref_to_f16(f);
        if (isnan(f)) EXPECT_EQ(got & 0x7E00u, 0x7E00u);
        else EXPECT_MSG(got == want, "f32 %a -> %04x, want %04x", (double)f, got, want);
    }
}
END_TEST

START_TEST(bf16_all_patterns) {
    static uint16_t src[65536];
    static float row[65536];
    for (uint32_t h = 0; h < 65536; h++) src[h] = (uint16_t)h;
    hmti_row_to_f32(src, 30, row, 65536);
    for (uint32_t h = 0; h < 65536; h++) {
        float f = hmti_bf16_to_f32((uint16_t)h);
        EXPECT_EQ(fbits(f), h << 16);
        EXPECT_EQ(fbits(row[h]), h << 16);
        uint16_t back = hmti_f32_to_bf16(f);
        if (isnan(f)) {
            EXPECT(isnan(hmti_bf16_to_f32(back)));
            EXPECT_EQ(back & 0x8000u, h & 0x8000u);
        } else {
            EXPECT_EQ(back, h);
        }
        /* midpoint to the next pattern: ties to even, ±1 float ulp */
        if ((h & 0x7FFF) < 0x7F80) {
            float mid = bitsf((h << 16) | 0x8000u);
            uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
            EXPECT_EQ(hmti_f32_to_bf16(mid), even);
            EXPECT_EQ(hmti_f32_to_bf16(bitsf((h << 16) | 0x7FFFu)), h);
            EXPECT_EQ(hmti_f32_to_bf16(bitsf((h << 16) | 0x8001u)), h + 1);
        }
    }
    for (int i = 0; i < 300000; i++) {
        float f = bitsf(rnd32() ^ (rnd32() << 16));
        uint16_t got = hmti_f32_to_bf16(f);
        if (isnan(f)) {
            EXPECT(isnan(hmti_bf16_to_f32(got)));
        } else {
            uint16_t want = ref_to_bf16(f);
            EXPECT_MSG(got == want, "f32 %a -> bf16 %04x, want %04x", (double)f, got, want);
        }
    }
}
END_TEST

START_TEST(rows_and_sizes) {
    EXPECT_EQ(hmti_row_size(0, 10), 40);
    EXPECT_EQ(hmti_row_size(1, 10), 20);
    EXPECT_EQ(hmti_row_size(30, 10), 20);
    EXPECT_EQ(hmti_row_size(8, 64), 68);
    EXPECT_EQ(hmti_row_size(8, 65), 0);
    EXPECT_EQ(hmti_row_size(2, 64), 0); /* Q4_0: not supported */
    /* Q8_0 rows of 1..5 blocks against the definition */
    for (int nb = 1; nb <= 5; nb++) {
        uint8_t blk[5 * 34];
        for (int b = 0; b < nb; b++) {
            uint16_t d = hmti_f32_to_f16(0.01f * (float)(b + 1) * (b & 1 ? -1.0f : 1.0f));
            memcpy(blk + 34 * b, &d, 2);
            for (int j = 0; j < 32; j++) blk[34 * b + 2 + j] = (uint8_t)(rnd32() & 0xFF);
        }
        float out[160];
        hmti_row_to_f32(blk, 8, out, 32 * nb);
        for (int b = 0; b < nb; b++) {
            uint16_t d;
            memcpy(&d, blk + 34 * b, 2);
            for (int j = 0; j < 32; j++) {
                float want = (float)(ref_f16(d) * (int8_t)blk[34 * b + 2 + j]);
                EXPECT(out[32 * b + j] == want);
            }
        }
    }
    /* BF16 tails */
    uint16_t bsrc[40];
    for (int i = 0; i < 40; i++) bsrc[i] = hmti_f32_to_bf16((float)i - 3.5f);
    for (int64_t n = 1; n <= 40; n++) {
        float out[41];
        out[n] = 9.0f;
        hmti_row_to_f32(bsrc, 30, out, n);
        for (int64_t i = 0; i < n; i++) EXPECT(out[i] == (float)i - 3.5f);
        EXPECT(out[n] == 9.0f);
    }
}
END_TEST

/* ---- matmul -------------------------------------------------------------------------- */
/* Random source tensor of type t; wref gets its exact F32 values. */
static void *make_weights(uint32_t t, int64_t rows, int64_t cols, double *wref) {
    size_t rb = hmti_row_size(t, cols);
    uint8_t *src = malloc(rb * (size_t)rows + 1);
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *row = src + rb * (size_t)r;
        double *w = wref + r * cols;
        for (int64_t c = 0; c < cols; c++) {
            float v = rndf();
            if (t == 0) {
                memcpy(row + 4 * c, &v, 4);
                w[c] = v;
            } else if (t == 1) {
                uint16_t h = hmti_f32_to_f16(v);
                memcpy(row + 2 * c, &h, 2);
                w[c] = ref_f16(h);
            } else if (t == 30) {
                uint16_t h = hmti_f32_to_bf16(v);
                memcpy(row + 2 * c, &h, 2);
                w[c] = (double)bitsf((uint32_t)h << 16);
            }
        }
        if (t == 8) {
            for (int64_t b = 0; b < cols / 32; b++) {
                uint8_t *blk = row + 34 * b;
                uint16_t d = hmti_f32_to_f16(0.001f + 0.01f * (float)(rnd32() % 100) / 100.0f);
                memcpy(blk, &d, 2);
                for (int j = 0; j < 32; j++) {
                    int8_t q = (int8_t)(rnd32() & 0xFF);
                    blk[2 + j] = (uint8_t)q;
                    w[b * 32 + j] = (double)(float)(ref_f16(d) * q);
                }
            }
        }
    }
    return src;
}

static void check_matmul(hmti_pool *pool, uint32_t t, int64_t rows, int64_t cols, int64_t n,
                         int with_bias, int64_t padx, int64_t pady) {
    double *wref = malloc(sizeof(double) * (size_t)(rows * cols));
    void *src = make_weights(t, rows, cols, wref);
    hmti_matrix m;
    hmti_arena arena = {0};
    ck_assert_int_eq(hmti_matrix_pack(&m, src, t, rows, cols, &arena), HMT_OK);
    free(src);
    ck_assert_int_eq(m.rows, rows);
    ck_assert_int_eq(m.cols, cols);
    EXPECT(m.panel_rows > 0 && m.nbytes >= (size_t)(rows * cols) * 4);
    int64_t ldx = cols + padx, ldy = rows + pady;
    float *x = malloc(sizeof(float) * (size_t)(n * ldx));
    float *y = malloc(sizeof(float) * (size_t)(n * ldy + 16));
    float *bias = with_bias ? malloc(sizeof(float) * (size_t)rows) : NULL;
    for (int64_t i = 0; i < n * ldx; i++) x[i] = rndf();
    for (int64_t i = 0; i < n * ldy + 16; i++) y[i] = 1234.5f;
    if (bias)
        for (int64_t r = 0; r < rows; r++) bias[r] = rndf();
    hmti_matmul(pool, &m, x, ldx, n, y, ldy, bias);
    double tol = 2e-6 * sqrt((double)cols);
    for (int64_t i = 0; i < n; i++) {
        for (int64_t r = 0; r < rows; r++) {
            double s = 0, sa = 0;
            for (int64_t c = 0; c < cols; c++) {
                s += wref[r * cols + c] * x[i * ldx + c];
                sa += fabs(wref[r * cols + c] * x[i * ldx + c]);
            }
            if (bias) {
                s += bias[r];
                sa += fabs(bias[r]);
            }
            double err = fabs(y[i * ldy + r] - s);
            EXPECT_MSG(err <= tol * sa + 1e-30,
                          "matmul t%u %lldx%lld n%lld bias%d th%d: y[%lld][%lld]=%.9g want %.9g",
                          t, (long long)rows, (long long)cols, (long long)n, with_bias,
                          hmti_pool_n_threads(pool), (long long)i, (long long)r,
                          y[i * ldy + r], s);
        }
        for (int64_t r = rows; r < ldy; r++) EXPECT(y[i * ldy + r] == 1234.5f);
    }
    for (int64_t i = n * ldy; i < n * ldy + 16; i++) EXPECT(y[i] == 1234.5f);
    /* get_row reads back exactly what was packed */
    float *row = malloc(sizeof(float) * (size_t)cols);
    for (int64_t r = 0; r < rows; r += (rows > 8 ? rows / 7 : 1)) {
        hmti_matrix_get_row(&m, r, row);
        for (int64_t c = 0; c < cols; c++) EXPECT(row[c] == (float)wref[r * cols + c]);
    }
    free(row);
    free(x);
    free(y);
    free(bias);
    free(wref);
    hmti_matrix_release(&m);
    ck_assert_ptr_null(m.data);
    hmti_arena_free(&arena);
}

START_TEST(matmul_f32_shapes) {
    static const int64_t dims[] = {1, 3, 17, 64, 100, 257};
    static const int64_t ns[] = {1, 2, 3, 17, 64, 65, 100, 257};
    for (int th = 1; th <= 2; th++) {
        hmti_pool *pool = NULL;
        ck_assert_int_eq(hmti_pool_create(&pool, th), HMT_OK);
        int idx = 0;
        for (int ri = 0; ri < 6; ri++)
            for (int ci = 0; ci < 6; ci++)
                for (int ni = 0; ni < 8; ni++, idx++) {
                    if (dims[ri] * dims[ci] * ns[ni] > 3000000 && (idx % 3)) continue;
                    check_matmul(pool, 0, dims[ri], dims[ci], ns[ni], idx & 1, (idx >> 1) % 3 * 5,
                                 (idx >> 2) % 2 * 7);
                }
        hmti_pool_release(pool);
    }
}
END_TEST

START_TEST(matmul_all_types) {
    static const uint32_t types[] = {0, 1, 30, 8};
    static const int64_t rows[] = {1, 17, 64, 100, 257};
    static const int64_t cols[] = {32, 64, 96, 288};
    static const int64_t ns[] = {1, 3, 64, 100};
    for (int th = 1; th <= 2; th++) {
        hmti_pool *pool = NULL;
        ck_assert_int_eq(hmti_pool_create(&pool, th), HMT_OK);
        int idx = 0;
        for (int ti = 0; ti < 4; ti++)
            for (int ri = 0; ri < 5; ri++)
                for (int ci = 0; ci < 4; ci++)
                    for (int ni = 0; ni < 4; ni++, idx++)
                        check_matmul(pool, types[ti], rows[ri], cols[ci], ns[ni], idx & 1,
                                     idx % 3 == 0 ? 3 : 0, idx % 5 == 0 ? 4 : 0);
        hmti_pool_release(pool);
    }
}
END_TEST

START_TEST(matmul_model_shapes) {
    /* the decode split over 16-row chunks, LM-head-like panel counts */
    hmti_pool *pool = NULL;
    ck_assert_int_eq(hmti_pool_create(&pool, 2), HMT_OK);
    check_matmul(pool, 0, 576, 576, 1, 0, 0, 0);
    check_matmul(pool, 0, 192, 576, 1, 1, 0, 0);
    check_matmul(pool, 1, 1536, 576, 1, 0, 0, 0);
    check_matmul(pool, 0, 576, 1536, 2, 0, 0, 0);
    check_matmul(pool, 0, 2000, 64, 1, 0, 0, 0);
    check_matmul(pool, 0, 2000, 64, 5, 1, 0, 0);
    check_matmul(pool, 0, 192, 576, 33, 0, 0, 0);
    hmti_pool_release(pool);
}
END_TEST

/* hmti_matmul_gemv_rows (batched decode on packed weights): each of n
 * activation rows gets the bits of its own one-row hmti_matmul, for odd and
 * even widths (the k-blocks and the odd last column), partial panels,
 * bias, padded strides, more rows than one pass, 1 and 2 threads. */
START_TEST(gemv_rows_equal_single_rows) {
    static const int64_t rows[] = {1, 17, 64, 100, 257};
    static const int64_t cols[] = {1, 3, 64, 65, 130, 257};
    static const int64_t ns[] = {2, 3, 5, 8, 16, 19};
    for (int th = 1; th <= 2; th++) {
        hmti_pool *pool = NULL;
        ck_assert_int_eq(hmti_pool_create(&pool, th), HMT_OK);
        int idx = 0;
        for (int ri = 0; ri < 5; ri++)
            for (int ci = 0; ci < 6; ci++)
                for (int ni = 0; ni < 6; ni++, idx++) {
                    const int64_t R = rows[ri], C = cols[ci], n = ns[ni];
                    const int64_t ldx = C + idx % 3, ldy = R + idx % 2 * 5;
                    double *wref = malloc(sizeof(double) * (size_t)(R * C));
                    void *src = make_weights(0, R, C, wref);
                    hmti_matrix m;
                    hmti_arena arena = {0};
                    ck_assert_int_eq(hmti_matrix_pack(&m, src, 0, R, C, &arena), HMT_OK);
                    float *x = malloc(sizeof(float) * (size_t)(n * ldx));
                    float *y = malloc(sizeof(float) * (size_t)(n * ldy));
                    float *one = malloc(sizeof(float) * (size_t)R);
                    float *bias = idx & 1 ? malloc(sizeof(float) * (size_t)R) : NULL;
                    for (int64_t i = 0; i < n * ldx; i++) x[i] = rndf();
                    if (bias)
                        for (int64_t r = 0; r < R; r++) bias[r] = rndf();
                    hmti_matmul_gemv_rows(pool, &m, x, ldx, n, y, ldy, bias);
                    for (int64_t i = 0; i < n; i++) {
                        hmti_matmul(pool, &m, x + i * ldx, ldx, 1, one, R, bias);
                        EXPECT_MSG(!memcmp(one, y + i * ldy, (size_t)R * sizeof(float)),
                                   "gemv_rows %lldx%lld n%lld th%d: row %lld differs from its "
                                   "own call", (long long)R, (long long)C, (long long)n, th,
                                   (long long)i);
                    }
                    free(src);
                    free(wref);
                    free(x);
                    free(y);
                    free(one);
                    free(bias);
                    hmti_matrix_release(&m);
                    hmti_arena_free(&arena);
                }
        hmti_pool_release(pool);
    }
}
END_TEST

START_TEST(matrix_pack_errors) {
    hmti_matrix m;
    hmti_arena a = {0};
    float one = 1.0f;
    hmt_last_error_clear();
    ck_assert_int_eq(hmti_matrix_pack(&m, &one, 2, 1, 32, &a), HMT_E_UNSUPPORTED);
    EXPECT(strlen(hmti_tls_errmsg()) > 0);
    ck_assert_int_eq(hmti_matrix_pack(&m, &one, 8, 1, 33, &a), HMT_E_UNSUPPORTED);
    ck_assert_int_eq(hmti_matrix_pack(&m, &one, 0, 0, 4, &a), HMT_E_INVAL);
    ck_assert_int_eq(hmti_matrix_pack(&m, NULL, 0, 1, 4, &a), HMT_E_INVAL);
    ck_assert_int_eq(hmti_matrix_pack(&m, &one, 0, 1, 4, NULL), HMT_E_INVAL);
    ck_assert_int_eq(hmti_matrix_pack(&m, &one, 0, (int64_t)1 << 40, (int64_t)1 << 40, &a),
                     HMT_E_NOMEM);
    ck_assert_ptr_null(m.data);
    ck_assert_ptr_null(a.last); /* nothing allocated by a refused pack */
    hmti_matrix_release(&m);
}
END_TEST

/* A model's weight arena (core/arena.h): aligned, zeroed, disjoint pieces; a
 * piece larger than a region; an injected failure leaves it usable; a
 * matrix packed into it after those pieces equals one packed alone into a
 * fresh arena, and its release leaves the piece to the arena. */
START_TEST(weight_arena) {
    hmti_arena a = {0};
    static const size_t sizes[] = {1, 100, 64, 4096, 3u << 20, 7, (size_t)200 << 20, 65};
    unsigned char *p[8];
    for (int i = 0; i < 8; i++) {
        p[i] = hmti_arena_alloc(&a, sizes[i]);
        ck_assert_ptr_nonnull(p[i]);
        ck_assert_uint_eq((uintptr_t)p[i] % 64, 0);
        const size_t n = sizes[i] < 8192 ? sizes[i] : 8192; /* first bytes: zero, then marked */
        for (size_t k = 0; k < n; k++) ck_assert_uint_eq(p[i][k], 0);
        memset(p[i], i + 1, n);
        p[i][sizes[i] - 1] = (unsigned char)(i + 1);
    }
    ck_assert_uint_eq((uintptr_t)p[0] % ((uintptr_t)2 << 20), 0); /* a region starts on a huge page */
    for (int i = 0; i < 8; i++) /* no piece overwrote another */
        EXPECT(p[i][0] == i + 1 && p[i][sizes[i] - 1] == i + 1);
    unsigned char *big = hmti_arena_alloc(&a, HMTI_ARENA_REGION + 1); /* its own region */
    ck_assert_ptr_nonnull(big);
    big[HMTI_ARENA_REGION] = 9;
    hmti_alloc_fail_at(1);
    ck_assert_ptr_null(hmti_arena_alloc(&a, 10));
    ck_assert_int_eq(hmti_alloc_fail_at(0), 1);
    ck_assert_ptr_nonnull(hmti_arena_alloc(&a, 10));

    enum { R = 70, C = 96 };
    float *src = malloc(sizeof(float) * R * C);
    for (int i = 0; i < R * C; i++) src[i] = rndf();
    hmti_matrix own, in;
    hmti_arena fresh = {0};
    ck_assert_int_eq(hmti_matrix_pack(&own, src, 0, R, C, &fresh), HMT_OK);
    ck_assert_int_eq(hmti_matrix_pack(&in, src, 0, R, C, &a), HMT_OK);
    ck_assert_uint_eq(in.nbytes, own.nbytes);
    ck_assert_mem_eq(in.data, own.data, own.nbytes);
    const float *in_data = in.data;
    hmti_matrix_release(&in);
    ck_assert_float_eq(in_data[0], own.data[0]); /* still the arena's */
    hmti_matrix_release(&own);
    hmti_arena_free(&fresh);
    free(src);
    hmti_arena_free(&a);
    ck_assert_ptr_null(a.last);
    ck_assert_ptr_nonnull(hmti_arena_alloc(&a, 10)); /* reusable */
    hmti_arena_free(&a);
}
END_TEST

/* ---- gemm_cm ------------------------------------------------------------------------ */
START_TEST(gemm_cm_sizes) {
    static const int64_t dims[] = {1, 3, 17, 31, 32, 33, 64, 65, 100, 130};
    int idx = 0;
    for (int mi = 0; mi < 10; mi++)
        for (int ni = 0; ni < 10; ni++)
            for (int ki = 0; ki < 10; ki++, idx++) {
                if ((mi + 2 * ni + 3 * ki) % 3) continue; /* a third of the grid */
                int64_t m = dims[mi], n = dims[ni], k = dims[ki];
                int64_t lda = m + (idx % 3), ldb = k + (idx % 2) * 5, ldc = m + (idx % 4);
                float beta = (idx & 1) ? 1.0f : 0.0f;
                float *a = malloc(sizeof(float) * (size_t)(lda * k));
                float *b = malloc(sizeof(float) * (size_t)(ldb * n));
                float *c = malloc(sizeof(float) * (size_t)(ldc * n));
                float *c0 = malloc(sizeof(float) * (size_t)(ldc * n));
                for (int64_t i = 0; i < lda * k; i++) a[i] = rndf();
                for (int64_t i = 0; i < ldb * n; i++) b[i] = rndf();
                for (int64_t i = 0; i < ldc * n; i++) c0[i] = c[i] = rndf();
                hmti_gemm_cm(m, n, k, a, lda, b, ldb, c, ldc, beta);
                double tol = 2e-6 * sqrt((double)k + 1);
                for (int64_t j = 0; j < n; j++) {
                    for (int64_t i = 0; i < m; i++) {
                        double s = beta ? c0[j * ldc + i] : 0.0, sa = fabs(s);
                        for (int64_t p = 0; p < k; p++) {
                            s += (double)a[p * lda + i] * b[j * ldb + p];
                            sa += fabs((double)a[p * lda + i] * b[j * ldb + p]);
                        }
                        EXPECT_MSG(fabs(c[j * ldc + i] - s) <= tol * sa + 1e-30,
                                      "gemm_cm %lldx%lldx%lld beta %g: c[%lld,%lld] %.9g want %.9g",
                                      (long long)m, (long long)n, (long long)k, (double)beta,
                                      (long long)i, (long long)j, c[j * ldc + i], s);
                    }
                    for (int64_t i = m; i < ldc; i++) EXPECT(c[j * ldc + i] == c0[j * ldc + i]);
                }
                free(a);
                free(b);
                free(c);
                free(c0);
            }
}
END_TEST

START_TEST(gemm_cm_decode_pattern) {
    /* m grows by one per call, as attention scores during decode; k = 0 */
    const int64_t k = 64, maxm = 300;
    float *a = malloc(sizeof(float) * (size_t)(maxm * k));
    float b[64], c[300];
    for (int64_t i = 0; i < maxm * k; i++) a[i] = rndf();
    for (int i = 0; i < 64; i++) b[i] = rndf();
    for (int64_t m = 1; m <= maxm; m += 7) {
        /* A as k × m column-major read transposed: here simply m × k, lda = maxm */
        hmti_gemm_cm(m, 1, k, a, maxm, b, k, c, m, 0.0f);
        for (int64_t i = 0; i < m; i++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) s += (double)a[p * maxm + i] * b[p];
            EXPECT(fabs(c[i] - s) < 1e-4);
        }
    }
    c[0] = 5.0f;
    hmti_gemm_cm(1, 1, 0, a, 1, b, 1, c, 1, 1.0f);
    EXPECT(c[0] == 5.0f);
    hmti_gemm_cm(1, 1, 0, a, 1, b, 1, c, 1, 0.0f);
    EXPECT(c[0] == 0.0f);
    free(a);
}
END_TEST

/* The one-row attention kernels of several heads (kv_row.h) against one
 * hmti_gemm_cm per head, bit for bit, over an F32 cache and over F16 and
 * BF16 caches (against the GEMM on their values widened to F32): 1-8
 * heads, head sizes that fill passes of 4, 3, 2 and 1 vectors or end in a
 * partial one (and one odd), slot counts below, at and past a pass (odd
 * ones too), the keys in the backbone's blocks of 32 slots from slot 0, a
 * vector's start (16) and a slot inside one (5; a sliding window's first
 * slot). k holds the keys transposed (row d: slots of component d, ld
 * apart), as the GEMM reads them. */
static void kv_row_case(uint32_t type, const void *k, const float *kw, const void *v, const float *vw,
                        const float *q, int64_t ld, int64_t ldv, int64_t hd, int64_t t0, int64_t n, int nh) {
    enum { B = 32 };
    const size_t es = type == HMTI_T_F32 ? 4 : 2;
    unsigned char *kb = malloc(es * (size_t)((ld + B - 1) / B * B * hd));
    for (int64_t d = 0; d < hd; d++)
        for (int64_t t = 0; t < ld; t++)
            memcpy(kb + (size_t)(((t / B) * hd + d) * B + t % B) * es,
                   (const unsigned char *)k + (size_t)(d * ld + t) * es, es);
    float *s = malloc(sizeof(float) * 8 * (size_t)ld), *ref = malloc(sizeof(float) * (size_t)ld);
    float *out = malloc(sizeof(float) * 8 * 136), *oref = malloc(sizeof(float) * 136);
    hmti_kv_row_scores(kb, type, B, hd, t0, n, q, nh, s, ld);
    for (int i = 0; i < nh; i++) {
        hmti_gemm_cm(n, 1, hd, kw + t0, ld, q + i * hd, hd, ref, ld, 0.0f);
        EXPECT_MSG(memcmp(s + i * ld, ref, (size_t)n * sizeof(float)) == 0,
                   "type %u scores hd %lld slots %lld+%lld heads %d: head %d", type, (long long)hd, (long long)t0,
                   (long long)n, nh, i);
    }
    for (int i = 0; i < nh; i++) /* as probabilities: the scores softmaxed */
        hmti_softmax(s + i * ld, n);
    /* the whole head, then slices of 32 (the backbone's V cache,
     * kv_layout.h) and of 16 */
    const int64_t widths[] = {hd, 32, 16};
    for (int wi = 0; wi < 3; wi++) {
        memset(out, 0xff, sizeof(float) * 8 * 136);
        for (int64_t c0 = 0, w; c0 < hd; c0 += w) {
            w = hd - c0 < widths[wi] ? hd - c0 : widths[wi];
            hmti_kv_row_values((const unsigned char *)v + (size_t)c0 * es, type, ldv, w, s, ld, nh, n, out + c0, hd);
        }
        for (int i = 0; i < nh; i++) {
            hmti_gemm_cm(hd, 1, n, vw, ldv, s + i * ld, ld, oref, hd, 0.0f);
            EXPECT_MSG(memcmp(out + i * hd, oref, (size_t)hd * sizeof(float)) == 0,
                       "type %u values hd %lld n %lld heads %d slices of %lld: head %d", type, (long long)hd,
                       (long long)n, nh, (long long)widths[wi], i);
        }
    }
    free(s), free(ref), free(out), free(oref), free(kb);
}

START_TEST(kv_row_equals_gemm_per_head) {
    if (!hmti_kv_row_direct()) return; /* no AVX-512: the per-head GEMVs run */
    enum { LD = 331, LDV = 8 * 136 };
    const size_t nk = 136 * LD, nv = (size_t)LD * LDV;
    float *k = malloc(sizeof(float) * nk), *v = malloc(sizeof(float) * nv), *q = malloc(sizeof(float) * 8 * 136);
    uint16_t *kh = malloc(2 * nk), *vh = malloc(2 * nv);
    float *kw = malloc(sizeof(float) * nk), *vw = malloc(sizeof(float) * nv);
    for (size_t i = 0; i < nk; i++) k[i] = rndf();
    for (size_t i = 0; i < nv; i++) v[i] = rndf();
    for (int64_t i = 0; i < 8 * 136; i++) q[i] = rndf();
    const int64_t hds[] = {64, 128, 80, 136, 33}, ns[] = {1, 7, 16, 47, 64, 193, 300};
    for (int t = 0; t < 3; t++) {
        const uint32_t type = t == 0 ? HMTI_T_F32 : t == 1 ? HMTI_T_F16 : HMTI_T_BF16;
        for (size_t i = 0; t && i < nk + nv; i++) { /* the half copies and their values widened */
            const float x = i < nk ? k[i] : v[i - nk];
            const uint16_t h = type == HMTI_T_F16 ? hmti_f32_to_f16(x) : hmti_f32_to_bf16(x);
            *(i < nk ? &kh[i] : &vh[i - nk]) = h;
            *(i < nk ? &kw[i] : &vw[i - nk]) = type == HMTI_T_F16 ? hmti_f16_to_f32(h) : hmti_bf16_to_f32(h);
        }
        const void *kc = t ? (const void *)kh : k, *vc = t ? (const void *)vh : v;
        const float *kr = t ? kw : k, *vr = t ? vw : v; /* what the GEMM reads */
        for (int hi = 0; hi < 5; hi++)
            for (int ni = 0; ni < 7; ni++)
                for (int nh = 1; nh <= HMTI_KV_ROW_HEADS; nh++)
                    for (int64_t t0 = 0; t0 <= 16; t0 += t0 ? 11 : 5) /* 0, 5, 16 */
                        kv_row_case(type, kc, kr, vc, vr, q, LD, LDV, hds[hi], t0, ns[ni], nh);
    }
    free(k), free(v), free(q), free(kh), free(vh), free(kw), free(vw);
}
END_TEST

/* ---- element-wise ------------------------------------------------------------------------- */
START_TEST(vector_ops) {
    float a[1100], b[1100], y[1100], y0[1100];
    for (int i = 0; i < 1100; i++) {
        a[i] = rndf();
        b[i] = rndf();
        y0[i] = rndf();
    }
    for (int64_t n = 0; n <= 1100; n += (n < 70 ? 1 : 97)) {
        double s = 0, sa = 0;
        for (int64_t i = 0; i < n; i++) {
            s += (double)a[i] * b[i];
            sa += fabs((double)a[i] * b[i]);
        }
        EXPECT_MSG(fabs(hmti_dot(a, b, n) - s) <= 1e-6 * sa + 1e-30, "dot n=%lld", (long long)n);
        memcpy(y, y0, sizeof y);
        hmti_axpy(y, 0.75f, a, n);
        for (int64_t i = 0; i < 1100; i++)
            assert_close(y[i], i < n ? y0[i] + 0.75 * a[i] : y0[i], 1e-6, "axpy", i);
        memcpy(y, y0, sizeof y);
        hmti_add(y, a, n);
        for (int64_t i = 0; i < 1100; i++) EXPECT(y[i] == (i < n ? y0[i] + a[i] : y0[i]));
        memcpy(y, y0, sizeof y);
        hmti_scale(y, -1.5f, n);
        for (int64_t i = 0; i < 1100; i++) EXPECT(y[i] == (i < n ? y0[i] * -1.5f : y0[i]));
    }
}
END_TEST

START_TEST(rmsnorm_matches) {
    static const int64_t ns[] = {1, 7, 16, 17, 63, 576, 1000};
    float x[1000], w[1000], y[1001];
    for (int i = 0; i < 1000; i++) {
        x[i] = rndf() * 3.0f;
        w[i] = rndf();
    }
    for (int t = 0; t < 7; t++) {
        int64_t n = ns[t];
        y[n] = 42.0f;
        hmti_rmsnorm(y, x, w, n, 1e-5f);
        double ss = 0;
        for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
        double sc = 1.0 / sqrt(ss / (double)n + 1e-5);
        for (int64_t i = 0; i < n; i++) assert_close(y[i], x[i] * sc * w[i], 1e-5, "rmsnorm", i);
        EXPECT(y[n] == 42.0f);
    }
    /* in place */
    float z[17];
    memcpy(z, x, sizeof z);
    hmti_rmsnorm(z, z, w, 17, 1e-6f);
    hmti_rmsnorm(y, x, w, 17, 1e-6f);
    ck_assert_mem_eq(z, y, sizeof z);
}
END_TEST

/* log-sum-exp and entropy against a long double sum, with masked (-inf)
 * entries and ragged lengths; the all -inf and +inf cases. */
START_TEST(logsumexp_matches) {
    static const int64_t ns[] = {1, 3, 8, 9, 17, 100, 4097, 32000};
    float *x = malloc(sizeof(float) * 32000);
    for (int t = 0; t < 8; t++) {
        const int64_t n = ns[t];
        for (int64_t i = 0; i < n; i++) x[i] = rndf() * 40.0f - (t == 5 ? 500.0f : 0.0f);
        if (n > 3) x[2] = x[n - 1] = -INFINITY;
        long double mx = -INFINITY, se = 0, spl = 0;
        for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
        for (int64_t i = 0; i < n; i++) {
            const long double e = expl((long double)x[i] - mx);
            se += e;
            if (e > 0) spl += e * ((long double)x[i] - mx);
        }
        const double want = (double)(mx + logl(se)), want_h = (double)(logl(se) - spl / se);
        double h;
        const double got = hmti_logsumexp(x, n, &h);
        EXPECT_MSG(fabs(got - want) <= 1e-12 * fabs(want) + 1e-13, "lse n=%lld: %.17g vs %.17g",
                   (long long)n, got, want);
        EXPECT_MSG(fabs(h - want_h) <= 1e-12 * fabs(want_h) + 1e-13, "entropy n=%lld: %.17g vs %.17g",
                   (long long)n, h, want_h);
        EXPECT(hmti_logsumexp(x, n, NULL) == got);
    }
    for (int64_t i = 0; i < 20; i++) x[i] = -INFINITY;
    double h = 0;
    EXPECT(hmti_logsumexp(x, 20, &h) == -INFINITY && isnan(h));
    x[7] = INFINITY;
    EXPECT(hmti_logsumexp(x, 20, NULL) == INFINITY);
    EXPECT(hmti_logsumexp(x, 0, NULL) == -INFINITY);
    free(x);
}
END_TEST

START_TEST(softmax_matches) {
    static const int64_t ns[] = {1, 2, 15, 16, 17, 100, 1000, 4097};
    float *x = malloc(sizeof(float) * 4098), *x0 = malloc(sizeof(float) * 4098);
    for (int t = 0; t < 8; t++) {
        int64_t n = ns[t];
        for (int64_t i = 0; i < n; i++) x0[i] = rndf() * 30.0f + (t == 3 ? 1000.0f : 0.0f);
        if (n > 3) x0[2] = -INFINITY; /* masked entry */
        memcpy(x, x0, sizeof(float) * (size_t)n);
        x[n] = 3.0f;
        hmti_softmax(x, n);
        double mx = -INFINITY, s = 0;
        for (int64_t i = 0; i < n; i++) mx = fmax(mx, x0[i]);
        for (int64_t i = 0; i < n; i++) s += exp((double)x0[i] - mx);
        double tot = 0;
        for (int64_t i = 0; i < n; i++) {
            double want = exp((double)x0[i] - mx) / s;
            EXPECT_MSG(fabs(x[i] - want) <= 1e-5 * want + 1e-12, "softmax n=%lld [%lld] %g vs %g",
                          (long long)n, (long long)i, x[i], want);
            tot += x[i];
        }
        EXPECT(fabs(tot - 1.0) < 1e-5);
        EXPECT(x[n] == 3.0f);
    }
    free(x);
    free(x0);
}
END_TEST

static double silu_ref(double x) { return x / (1.0 + exp(-x)); }
static double gelu_ref(double x) {
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

/* A gate g[i] = f(g[i]) * u[i] against double precision, every length 1 ..
 * 300 in steps of 13 (vector bodies and tails), elements past n untouched;
 * tolerance rel * |want| + abs_g * |g u|. */
static void check_gate(void (*fn)(float *, const float *, int64_t), double (*ref)(double),
                       double rel, double abs_g, const char *name) {
    float g[300], u[300], g0[300];
    for (int i = 0; i < 300; i++) {
        g0[i] = rndf() * 12.0f;
        u[i] = rndf();
    }
    g0[0] = -100.0f;
    g0[1] = 100.0f;
    g0[2] = 0.0f;
    g0[3] = -88.0f;
    for (int64_t n = 1; n <= 300; n += 13) {
        memcpy(g, g0, sizeof g);
        fn(g, u, n);
        for (int64_t i = 0; i < 300; i++) {
            double want = i < n ? ref(g0[i]) * u[i] : g0[i];
            EXPECT_MSG(fabs(g[i] - want) <= rel * fabs(want) + abs_g * fabs(g0[i] * u[i]) + 1e-30,
                       "%s[%lld] %g vs %g", name, (long long)i, g[i], want);
        }
    }
}

START_TEST(silu_mul_matches) { check_gate(hmti_silu_mul, silu_ref, 1e-5, 0.0, "silu"); }
END_TEST

/* GELU (tanh form) · mul and soft-capping against double precision. */
START_TEST(gelu_mul_and_softcap_match) {
    check_gate(hmti_gelu_mul, gelu_ref, 1e-6, 2e-6, "gelu");
    float x[300], x0[300];
    for (int i = 0; i < 300; i++) x0[i] = rndf() * 100.0f;
    for (int64_t n = 1; n <= 300; n += 13) {
        memcpy(x, x0, sizeof x);
        hmti_softcap(x, 0.25f, 5.0f, n);
        for (int64_t i = 0; i < 300; i++) {
            double want = i < n ? 5.0 * tanh((double)x0[i] * 0.25 / 5.0) : x0[i];
            EXPECT_MSG(fabs(x[i] - want) <= 2e-6 * 5.0, "softcap[%lld] %g vs %g", (long long)i,
                       x[i], want);
        }
    }
}
END_TEST

START_TEST(rope_matches) {
    /* head sizes, rotated dims (0: all; partial rotary leaves the rest) */
    static const int hds[] = {2, 64, 80, 128, 34, 64, 128};
    static const int rots[] = {0, 0, 0, 0, 0, 32, 6};
    static const int32_t poss[] = {0, 1, 17, 1000, 100000, 5000000};
    static const float bases[] = {10000.0f, 1000000.0f};
    float x[4 * 128], x0[4 * 128];
    double freq[64];
    for (int hi = 0; hi < 7; hi++)
        for (int pi = 0; pi < 6; pi++)
            for (int bi = 0; bi < 4; bi++)
                for (int neox = 0; neox <= 1; neox++) {
                    const int hd = hds[hi], nh = 3, nr = rots[hi] ? rots[hi] : hd;
                    /* bi 2, 3: a scaled table (every pair its own factor) and a magnitude */
                    hmti_rope_freqs(freq, nr, bases[bi & 1]);
                    const float ms = bi >= 2 ? 1.25f : 1.0f;
                    if (bi >= 2)
                        for (int i = 0; i < nr / 2; i++) freq[i] /= 1.0 + 0.37 * i;
                    for (int i = 0; i < nh * hd + 1; i++) x0[i] = rndf();
                    memcpy(x, x0, sizeof x);
                    hmti_rope(x, nh, hd, nr, poss[pi], freq, ms, neox);
                    for (int h = 0; h < nh; h++) {
                        for (int i = 0; i < nr / 2; i++) {
                            double th = (double)poss[pi] * pow((double)bases[bi & 1], -2.0 * i / nr);
                            if (bi >= 2) th /= 1.0 + 0.37 * i;
                            int i0 = neox ? i : 2 * i, i1 = neox ? i + nr / 2 : 2 * i + 1;
                            double a = x0[h * hd + i0], b = x0[h * hd + i1];
                            double w0 = ms * (a * cos(th) - b * sin(th));
                            double w1 = ms * (a * sin(th) + b * cos(th));
                            EXPECT_MSG(fabs(x[h * hd + i0] - w0) < 2e-6 &&
                                              fabs(x[h * hd + i1] - w1) < 2e-6,
                                          "rope hd%d rot%d pos%d neox%d h%d i%d: (%g,%g) vs (%g,%g)",
                                          hd, nr, poss[pi], neox, h, i, x[h * hd + i0],
                                          x[h * hd + i1], w0, w1);
                        }
                        for (int i = nr; i < hd; i++) EXPECT(x[h * hd + i] == x0[h * hd + i]);
                    }
                    EXPECT(x[nh * hd] == x0[nh * hd]);
                }
}
END_TEST

Suite *hmt_suite_kernels(void);
Suite *hmt_suite_kernels(void) {
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, pool_runs_every_share_once);
    tcase_add_test(tc, swork_takes_every_unit_once);
    tcase_add_test(tc, swork_takes_shrink);
    tcase_add_test(tc, swork_takes_four_streams);
    tcase_add_test(tc, kv_row_equals_gemm_per_head);
    tcase_add_test(tc, split_range_covers_and_aligns);
    suite_add_tcase(s, tc);

    tc = tcase_create("convert");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, f16_all_patterns);
    tcase_add_test(tc, f32_to_f16_rounding);
    tcase_add_test(tc, bf16_all_patterns);
    tcase_add_test(tc, rows_and_sizes);
    suite_add_tcase(s, tc);

    tc = tcase_create("matmul");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, matmul_f32_shapes);
    tcase_add_test(tc, matmul_all_types);
    tcase_add_test(tc, matmul_model_shapes);
    tcase_add_test(tc, gemv_rows_equal_single_rows);
    tcase_add_test(tc, matrix_pack_errors);
    tcase_add_test(tc, weight_arena);
    tcase_add_test(tc, gemm_cm_sizes);
    tcase_add_test(tc, gemm_cm_decode_pattern);
    suite_add_tcase(s, tc);

    tc = tcase_create("elementwise");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, vector_ops);
    tcase_add_test(tc, rmsnorm_matches);
    tcase_add_test(tc, softmax_matches);
    tcase_add_test(tc, logsumexp_matches);
    tcase_add_test(tc, silu_mul_matches);
    tcase_add_test(tc, gelu_mul_and_softcap_match);
    tcase_add_test(tc, rope_matches);
    suite_add_tcase(s, tc);
    return s;
}
