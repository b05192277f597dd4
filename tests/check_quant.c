/* GGML weight formats (lib/kernels/quant.h) against the NumPy reference
 * (tests/reference/quants_ref.py) and the SIMD dot kernels against the
 * portable C path.
 *
 * - dequantization: bit-exact to the NumPy dequantizer on the golden files
 *   quant-<TYPE>.golden (hand-made golden blocks, quantized data, random
 *   blocks with every bit pattern of the quant fields);
 * - activation blocks: d bit-exact, q and per-16 sums equal to quantize_act;
 * - each SIMD path vs the portable path: both compute the same exact
 *   per-block integer sums, then apply the block scales in float and add the
 *   nb block terms t_b in different orders. Each term carries <= 3 roundings
 *   (scale product, product with the sum, int->float above 2^24) and the sum
 *   of nb terms in any order errs by <= (nb - 1) u sum|t_b| (u = 2^-24), so
 *   each path is within (nb + 3) u S of the exact value and the two within
 *   2 (nb + 4) u S, where S = sum_i (|A_i| + |M_i|) |xq_i| bounds sum|t_b|:
 *   A, M the scale and min parts of the weight (w = A - M; M = 0 without
 *   mins), xq the dequantized activation. Float rows: nb = n, S = sum|w x|;
 * - vec_dot vs the float64 dot of the dequantized weights with the
 *   unquantized x: within the activation quantization error
 *   sum_i |w_i| |x_i - xq_i| (<= sum |w_i| d_block / 2) plus the float bound.
 * Paths the CPU lacks are skipped with a note. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu.h"
#include "kernels/dequant.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/quant_impl.h"
#include "util/testutil.h"

static const uint32_t TYPES[] = {HMTI_T_F32,  HMTI_T_F16,  HMTI_T_BF16, HMTI_T_Q4_0, HMTI_T_Q4_1,
                                 HMTI_T_Q5_0, HMTI_T_Q5_1, HMTI_T_Q8_0, HMTI_T_Q2_K, HMTI_T_Q3_K,
                                 HMTI_T_Q4_K, HMTI_T_Q5_K, HMTI_T_Q6_K, HMTI_T_IQ4_NL,
                                 HMTI_T_IQ4_XS};
#define N_TYPES ((int)(sizeof TYPES / sizeof TYPES[0]))
static const char *PATH_NAME[HMTI_QPATH_COUNT] = {"ref", "avx2", "avx512", "vnni"};

/* Byte offsets of the f16 scale field and the min field (-1: none). */
static void f16_fields(uint32_t type, int *d_off, int *m_off) {
    *m_off = -1;
    switch (type) {
    case HMTI_T_Q4_1: case HMTI_T_Q5_1: case HMTI_T_Q4_K: case HMTI_T_Q5_K:
        *d_off = 0, *m_off = 2; break;
    case HMTI_T_Q2_K: *d_off = 80, *m_off = 82; break;
    case HMTI_T_Q3_K: *d_off = 108; break;
    case HMTI_T_Q6_K: *d_off = 208; break;
    default: *d_off = 0; break;
    }
}

/* ---- golden files ----------------------------------------------------------------------- */
typedef struct {
    uint32_t type, rows, cols, row_bytes, act_block;
    const uint8_t *w;
    const float *deq, *x;
    const float *ad;       /* act_block: d[nb] */
    const int8_t *aq;      /* q[cols] */
    const int16_t *asum;   /* sums[cols / 16] */
    void *buf;
} golden;

static int load_golden(const char *name, golden *g) {
    char fname[64];
    snprintf(fname, sizeof fname, "quant-%s.golden", name);
    size_t len = 0;
    uint8_t *b = hmt_test_read_file(hmt_test_data(fname), &len);
    if (!b) return -1;
    uint32_t h[6];
    ck_assert_msg(len >= 28 && memcmp(b, "HMTQ", 4) == 0, "%s: bad header", fname);
    memcpy(h, b + 4, sizeof h);
    ck_assert_int_eq(h[0], 1);
    g->type = h[1], g->rows = h[2], g->cols = h[3], g->row_bytes = h[4], g->act_block = h[5];
    size_t off = 28;
    g->w = b + off;
    off += (size_t)g->rows * g->row_bytes;
    g->deq = (const float *)(b + off); /* the file buffer is malloc'd: offsets are 4-aligned */
    off += (size_t)g->rows * g->cols * 4;
    g->x = (const float *)(b + off);
    off += (size_t)g->cols * 4;
    if (g->act_block) {
        g->ad = (const float *)(b + off);
        off += (size_t)g->cols / g->act_block * 4;
        g->aq = (const int8_t *)(b + off);
        off += g->cols;
        g->asum = (const int16_t *)(b + off);
        off += (size_t)g->cols / 16 * 2;
    }
    ck_assert_msg(off == len, "%s: %zu bytes, expected %zu", fname, len, off);
    g->buf = b;
    return 0;
}

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

START_TEST(traits_and_sizes) {
    for (int i = 0; i < N_TYPES; i++) {
        const hmti_qtraits *t = hmti_qtraits_of(TYPES[i]);
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(t->type, TYPES[i]);
        ck_assert_int_eq(hmti_qrow_bytes(TYPES[i], 0), 0);
        ck_assert_int_eq(hmti_qrow_bytes(TYPES[i], 512), (size_t)512 / t->block_elems * t->block_bytes);
        if (t->block_elems > 1) ck_assert_int_eq(hmti_qrow_bytes(TYPES[i], t->block_elems + 1), 0);
        ck_assert_ptr_nonnull(hmti_vec_dot_path(TYPES[i], HMTI_QPATH_REF));
        ck_assert_ptr_nonnull(hmti_vec_dot_best(TYPES[i]));
    }
    ck_assert_ptr_null(hmti_qtraits_of(9)); /* Q8_1: an activation format only */
    ck_assert_ptr_null(hmti_qtraits_of(15));
    ck_assert_ptr_null(hmti_vec_dot_best(99));
    ck_assert_int_eq(sizeof(hmti_q8_32), 40);
    ck_assert_int_eq(sizeof(hmti_q8_256), 292);
    ck_assert_int_eq(hmti_qact_bytes(HMTI_T_Q4_K, 512), 2 * sizeof(hmti_q8_256));
    ck_assert_int_eq(hmti_qact_bytes(HMTI_T_Q8_0, 96), 3 * sizeof(hmti_q8_32));
    ck_assert_int_eq(hmti_qact_bytes(HMTI_T_F16, 96), 0);
    /* non-finite activations give some q in range (garbage in), never UB */
    float x[32];
    for (int i = 0; i < 32; i++) x[i] = (float)i - 16.0f;
    x[3] = INFINITY, x[7] = NAN;
    hmti_q8_32 blk;
    hmti_quantize_q8_32(x, 32, &blk);
    for (int i = 0; i < 32; i++) EXPECT(blk.qs[i] >= -127 && blk.qs[i] <= 127);
}
END_TEST

START_TEST(dequant_matches_numpy) {
    const hmti_qtraits *t = hmti_qtraits_of(TYPES[_i]);
    golden g;
    if (load_golden(t->name, &g) != 0) ck_abort_msg("missing quant-%s.golden (make testdata)", t->name);
    ck_assert_int_eq(g.type, t->type);
    ck_assert_int_eq(g.row_bytes, hmti_qrow_bytes(t->type, g.cols));
    ck_assert_int_eq(g.act_block, t->act_block);
    float *row = malloc((g.cols + 1) * sizeof(float));
    for (uint32_t r = 0; r < g.rows; r++) {
        row[g.cols] = 42.0f;
        hmti_dequantize_row(t->type, g.w + (size_t)r * g.row_bytes, row, g.cols);
        for (uint32_t c = 0; c < g.cols; c++) {
            float want = g.deq[(size_t)r * g.cols + c];
            EXPECT_MSG(fbits(row[c]) == fbits(want), "%s row %u col %u: got %a want %a", t->name, r,
                       c, (double)row[c], (double)want);
        }
        EXPECT(row[g.cols] == 42.0f);
        for (int path = 0; path <= hmti_cpu_level(); path++) { /* the prompt path's dequantizers */
            row[g.cols] = 42.0f;
            hmti_dequant_path(t->type, path)(g.w + (size_t)r * g.row_bytes, row, g.cols);
            for (uint32_t c = 0; c < g.cols; c++) {
                float want = g.deq[(size_t)r * g.cols + c];
                EXPECT_MSG(fbits(row[c]) == fbits(want), "%s path %d row %u col %u: got %a want %a",
                           t->name, path, r, c, (double)row[c], (double)want);
            }
            EXPECT(row[g.cols] == 42.0f);
        }
    }
    /* activation blocks */
    if (g.act_block) {
        void *act = malloc(hmti_qact_bytes(t->type, g.cols));
        hmti_quantize_act(t->type, g.x, g.cols, act);
        for (uint32_t b = 0; b < g.cols / g.act_block; b++) {
            const float d = g.act_block == 32 ? ((hmti_q8_32 *)act)[b].d : ((hmti_q8_256 *)act)[b].d;
            const int8_t *q = g.act_block == 32 ? ((hmti_q8_32 *)act)[b].qs : ((hmti_q8_256 *)act)[b].qs;
            const int16_t *s = g.act_block == 32 ? ((hmti_q8_32 *)act)[b].sum : ((hmti_q8_256 *)act)[b].sum;
            EXPECT_MSG(fbits(d) == fbits(g.ad[b]), "%s act block %u: d %a want %a", t->name, b,
                       (double)d, (double)g.ad[b]);
            for (uint32_t j = 0; j < g.act_block; j++)
                EXPECT_MSG(q[j] == g.aq[b * g.act_block + j], "%s act block %u q[%u]: %d want %d",
                           t->name, b, j, q[j], g.aq[b * g.act_block + j]);
            for (uint32_t j = 0; j < g.act_block / 16; j++)
                EXPECT(s[j] == g.asum[b * g.act_block / 16 + j]);
        }
        free(act);
    }
    free(row);
    free(g.buf);
}
END_TEST

/* ---- dot products --------------------------------------------------------------------- */
/* Exact value (float64) of the dot both paths approximate, the float bound S
 * (see the top comment), the activation quantization bound, and the dot with
 * the unquantized x. */
typedef struct {
    double exact_q, S, qerr, exact_x;
    int64_t nb;
} dot_ref;

static void reference_dot(uint32_t type, int64_t n, const uint8_t *wrow, const float *x,
                          const void *act, dot_ref *o) {
    const hmti_qtraits *t = hmti_qtraits_of(type);
    float *w = malloc((size_t)n * sizeof(float));
    float *pa = malloc((size_t)n * sizeof(float));
    float *pm = malloc((size_t)n * sizeof(float));
    double *xq = malloc((size_t)n * sizeof(double));
    hmti_dequantize_row(type, wrow, w, n);
    int d_off, m_off;
    f16_fields(type, &d_off, &m_off);
    if (m_off >= 0) { /* A part: min field zeroed; M part: scale field zeroed (w = A - M) */
        size_t rb = hmti_qrow_bytes(type, n);
        uint8_t *tmp = malloc(rb);
        memcpy(tmp, wrow, rb);
        for (size_t b = 0; b < rb; b += (size_t)t->block_bytes) tmp[b + m_off] = tmp[b + m_off + 1] = 0;
        hmti_dequantize_row(type, tmp, pa, n);
        memcpy(tmp, wrow, rb);
        for (size_t b = 0; b < rb; b += (size_t)t->block_bytes) tmp[b + d_off] = tmp[b + d_off + 1] = 0;
        hmti_dequantize_row(type, tmp, pm, n);
        free(tmp);
    } else {
        memcpy(pa, w, (size_t)n * sizeof(float));
        memset(pm, 0, (size_t)n * sizeof(float));
    }
    int k = t->act_block;
    for (int64_t i = 0; i < n; i++) {
        if (!k) {
            xq[i] = x[i];
        } else if (k == 32) {
            const hmti_q8_32 *a = act;
            xq[i] = (double)a[i / 32].d * a[i / 32].qs[i % 32];
        } else {
            const hmti_q8_256 *a = act;
            xq[i] = (double)a[i / 256].d * a[i / 256].qs[i % 256];
        }
    }
    memset(o, 0, sizeof *o);
    o->nb = k ? n / 16 : n; /* float terms: one per sub-block of >= 16 at most */
    for (int64_t i = 0; i < n; i++) {
        o->exact_q += (double)w[i] * xq[i];
        o->exact_x += (double)w[i] * x[i];
        o->S += (fabs((double)pa[i]) + fabs((double)pm[i])) * fabs(xq[i]);
        o->qerr += fabs((double)w[i]) * fabs((double)x[i] - xq[i]);
    }
    free(w), free(pa), free(pm), free(xq);
}

static double float_bound(const dot_ref *r) { return (r->nb + 4) * 0x1p-24 * r->S + 1e-30; }

typedef struct {
    double simd_ratio[HMTI_QPATH_COUNT]; /* max |path - ref| / (2 * float bound) */
    double q_ratio;                      /* max |ref - exact_x| / (qerr + float bound) */
    double exact_ratio;                  /* max |vec_dot_exact - exact_x| / (n u sum|w x|) */
} dot_stats;

/* Every available path on rows [0, rows) against ref and the float64 dots. */
static void check_dots(uint32_t type, int64_t rows, int64_t cols, const uint8_t *w, size_t stride,
                       const float *x, dot_stats *st) {
    const hmti_qtraits *t = hmti_qtraits_of(type);
    size_t ab = hmti_qact_bytes(type, cols);
    void *act = ab ? malloc(ab) : NULL;
    const void *a = x;
    if (ab) {
        hmti_quantize_act(type, x, cols, act);
        a = act;
    }
    hmti_vec_dot_fn ref = hmti_vec_dot_path(type, HMTI_QPATH_REF);
    float *y = malloc((size_t)(rows + 1) * sizeof(float));
    y[rows] = 7.0f;
    hmti_gemv_q(type, rows, cols, w, stride, x, y, act);
    EXPECT(y[rows] == 7.0f);
    hmti_vec_dot_fn best = hmti_vec_dot_best(type);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *wr = w + (size_t)r * stride;
        dot_ref dr;
        reference_dot(type, cols, wr, x, a, &dr);
        const float vr = ref(cols, wr, a);
        const double fb = float_bound(&dr);
        EXPECT_MSG(fabs(vr - dr.exact_q) <= fb, "%s ref r%lld n%lld: %.9g vs exact %.9g (bound %.3g)",
                   t->name, (long long)r, (long long)cols, (double)vr, dr.exact_q, fb);
        const double qb = dr.qerr * (1 + 1e-6) + fb;
        EXPECT_MSG(fabs(vr - dr.exact_x) <= qb, "%s ref vs float64 r%lld: %.9g vs %.9g (bound %.3g)",
                   t->name, (long long)r, (double)vr, dr.exact_x, qb);
        if (qb > 0 && fabs(vr - dr.exact_x) / qb > st->q_ratio) st->q_ratio = fabs(vr - dr.exact_x) / qb;
        for (int p = 1; p <= hmti_quant_path(); p++) {
            hmti_vec_dot_fn f = hmti_vec_dot_path(type, p);
            if (!f) continue;
            const float v = f(cols, wr, a);
            const double d = fabs((double)v - vr);
            EXPECT_MSG(d <= 2 * fb, "%s %s r%lld n%lld: %.9g vs ref %.9g (|d| %.3g > %.3g)", t->name,
                       PATH_NAME[p], (long long)r, (long long)cols, (double)v, (double)vr, d, 2 * fb);
            if (d / (2 * fb) > st->simd_ratio[p]) st->simd_ratio[p] = d / (2 * fb);
            /* the super-block kernels repeat the portable float steps on exact integer sums */
            if (t->block_elems == HMTI_QK_K)
                EXPECT_MSG(fbits(v) == fbits(vr), "%s %s r%lld n%lld: %.9g, not the portable bits %.9g", t->name,
                           PATH_NAME[p], (long long)r, (long long)cols, (double)v, (double)vr);
        }
        EXPECT_MSG(fbits(y[r]) == fbits(best(cols, wr, a)), "%s gemv row %lld", t->name, (long long)r);
        /* exact-activation variant: the float64 dot with x itself, within n u sum|w x| */
        double sx = 0;
        {
            float *wd = malloc((size_t)cols * sizeof(float));
            hmti_dequantize_row(type, wr, wd, cols);
            for (int64_t c = 0; c < cols; c++) sx += fabs((double)wd[c] * x[c]);
            free(wd);
        }
        const float ve = hmti_vec_dot_exact(type, cols, wr, x);
        const double eb = (cols + 4) * 0x1p-24 * sx + 1e-30;
        EXPECT_MSG(fabs(ve - dr.exact_x) <= eb, "%s exact r%lld: %.9g vs %.9g (bound %.3g)", t->name,
                   (long long)r, (double)ve, dr.exact_x, eb);
        if (fabs(ve - dr.exact_x) / eb > st->exact_ratio) st->exact_ratio = fabs(ve - dr.exact_x) / eb;
    }
    float *ye = malloc((size_t)rows * sizeof(float));
    hmti_gemv_q_exact(type, rows, cols, w, stride, x, ye);
    for (int64_t r = 0; r < rows; r++)
        EXPECT(fbits(ye[r]) == fbits(hmti_vec_dot_exact(type, cols, w + (size_t)r * stride, x)));
    free(ye);
    free(y);
    free(act);
}

static void print_stats(const char *what, uint32_t type, const dot_stats *st) {
    printf("check_quant %s %-6s: |simd-ref|/bound", what, hmti_qtraits_of(type)->name);
    for (int p = 1; p < HMTI_QPATH_COUNT; p++)
        if (p <= hmti_quant_path() && hmti_vec_dot_path(type, p))
            printf(" %s %.3f", PATH_NAME[p], st->simd_ratio[p]);
    printf("  |ref-f64|/qbound %.3f  |exact-f64|/bound %.3f\n", st->q_ratio, st->exact_ratio);
}

START_TEST(dots_on_golden_rows) {
    const hmti_qtraits *t = hmti_qtraits_of(TYPES[_i]);
    golden g;
    if (load_golden(t->name, &g) != 0) ck_abort_msg("missing quant-%s.golden (make testdata)", t->name);
    dot_stats st;
    memset(&st, 0, sizeof st);
    check_dots(t->type, g.rows, g.cols, g.w, g.row_bytes, g.x, &st);
    print_stats("golden", t->type, &st);
    free(g.buf);
}
END_TEST

/* Random rows: random bytes (every bit pattern of the quant fields) with
 * finite f16 scales, as quants_ref.random_blocks; float rows N(0, 1). */
static uint64_t g_rng = 0x5DEECE66DULL;

static void random_rows(uint32_t type, int64_t rows, int64_t cols, uint8_t *w, size_t stride) {
    const hmti_qtraits *t = hmti_qtraits_of(type);
    int d_off, m_off;
    f16_fields(type, &d_off, &m_off);
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *row = w + (size_t)r * stride;
        if (t->block_elems == 1) {
            for (int64_t c = 0; c < cols; c++) {
                float v = hmt_test_nrand(&g_rng);
                if (type == HMTI_T_F32) memcpy(row + 4 * c, &v, 4);
                else {
                    uint16_t h = type == HMTI_T_F16 ? hmti_f32_to_f16(v) : hmti_f32_to_bf16(v);
                    memcpy(row + 2 * c, &h, 2);
                }
            }
            continue;
        }
        for (size_t i = 0; i < hmti_qrow_bytes(type, cols); i++)
            row[i] = (uint8_t)(hmt_test_urand(&g_rng) * 256);
        for (size_t b = 0; b < hmti_qrow_bytes(type, cols); b += (size_t)t->block_bytes)
            for (int f = 0; f < 2; f++) {
                int off = f ? m_off : d_off;
                if (off < 0) continue;
                float v = hmt_test_nrand(&g_rng) * ldexpf(1.0f, (int)(hmt_test_urand(&g_rng) * 14) - 12);
                uint16_t h = hmti_f32_to_f16(v);
                memcpy(row + b + off, &h, 2);
            }
    }
}

/* One activation block (k values) equals the portable definition's. */
static void expect_portable_block(const float *x, int k, float d, const int8_t *qs,
                                  const int16_t *sum) {
    int8_t q[256];
    int16_t sums[16];
    const float d_ref = hmti_quantize_block_ref(x, k, q, sums);
    ck_assert_uint_eq(fbits(d_ref), fbits(d));
    ck_assert_mem_eq(q, qs, (size_t)k);
    ck_assert_mem_eq(sums, sum, (size_t)(k / 16) * sizeof *sums);
}

/* The activation blocks every dot reads (hmti_quantize_q8_32 / _256, the
 * vector copy on this CPU) equal the portable definition bit for bit: d,
 * every q and every per-16 sum, on rows of normal values over a wide range
 * of scales, all-zero blocks, ties at .5 after scaling, and non-finite
 * values (garbage in, but the same garbage). */
START_TEST(act_blocks_equal_portable) {
    enum { N = 2048 };
    static float x[N];
    for (int trial = 0; trial < 40; trial++) {
        const float scale = ldexpf(1.0f, (int)(hmt_test_urand(&g_rng) * 60) - 30);
        for (int i = 0; i < N; i++) x[i] = hmt_test_nrand(&g_rng) * scale;
        if (trial % 4 == 1) memset(x + 256, 0, 256 * sizeof(float)); /* zero blocks */
        if (trial % 4 == 2)                                          /* exact ties */
            for (int i = 0; i < N; i++) x[i] = (float)((int)(hmt_test_urand(&g_rng) * 255) - 127) * 0.5f;
        if (trial % 4 == 3) {
            x[5] = INFINITY, x[40] = -INFINITY, x[300] = NAN, x[301] = -NAN, x[700] = FLT_MAX;
            x[1000] = 1e-42f; /* subnormal */
        }
        static hmti_q8_32 a32[N / 32];
        static hmti_q8_256 a256[N / 256];
        hmti_quantize_q8_32(x, N, a32);
        hmti_quantize_q8_256(x, N, a256);
        for (int b = 0; b < N / 32; b++)
            expect_portable_block(x + 32 * b, 32, a32[b].d, a32[b].qs, a32[b].sum);
        for (int b = 0; b < N / 256; b++)
            expect_portable_block(x + 256 * b, 256, a256[b].d, a256[b].qs, a256[b].sum);
    }
}
END_TEST

/* Every path's row dequantizer gives the portable one's floats, bit for bit,
 * on random blocks (all bit patterns of the quant fields; F16/BF16: random
 * finite bit patterns, subnormals included). */
START_TEST(dequant_paths_bit_exact) {
    const uint32_t type = TYPES[_i];
    const hmti_qtraits *t = hmti_qtraits_of(type);
    const int64_t cols = 1024, rows = 16;
    const size_t stride = hmti_qrow_bytes(type, cols);
    uint8_t *w = malloc(stride * rows);
    float *want = malloc(cols * sizeof(float)), *got = malloc((cols + 1) * sizeof(float));
    random_rows(type, rows, cols, w, stride);
    if (type == HMTI_T_F16 || type == HMTI_T_BF16)
        for (int64_t i = 0; i < rows * cols; i++) {
            uint16_t h = (uint16_t)(hmt_test_urand(&g_rng) * 65536);
            const uint16_t e = type == HMTI_T_F16 ? 0x7C00 : 0x7F80;
            if ((h & e) == e) h &= (uint16_t)~0x4000; /* no inf / NaN */
            memcpy(w + 2 * i, &h, 2);
        }
    ck_assert_ptr_nonnull(hmti_dequant_best(type));
    for (int path = 1; path <= hmti_cpu_level(); path++)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t n = t->block_elems == 1 ? 1 : t->block_elems; n <= cols; n = n * 2 + (t->block_elems == 1)) {
                hmti_dequantize_row(type, w + (size_t)r * stride, want, n);
                got[n] = 42.0f;
                hmti_dequant_path(type, path)(w + (size_t)r * stride, got, n);
                for (int64_t c = 0; c < n; c++)
                    EXPECT_MSG(fbits(got[c]) == fbits(want[c]), "%s path %d n %lld col %lld: %a want %a",
                               t->name, path, (long long)n, (long long)c, (double)got[c], (double)want[c]);
                EXPECT(got[n] == 42.0f);
            }
    free(w);
    free(want);
    free(got);
}
END_TEST

START_TEST(transpose_exact) {
    enum { R = 64, C = 80, LDS = 96, LDD = 72 };
    float *s = malloc(R * LDS * sizeof(float)), *d = malloc(C * LDD * sizeof(float));
    for (int i = 0; i < R * LDS; i++) s[i] = (float)i;
    static const int shapes[][2] = {{64, 80}, {16, 16}, {17, 33}, {3, 5}, {48, 64}, {64, 7}};
    for (int k = 0; k < 6 * (hmti_cpu_level() + 2); k++) {
        const int rows = shapes[k % 6][0], cols = shapes[k % 6][1], path = k / 6 - 1;
        for (int i = 0; i < C * LDD; i++) d[i] = -1.0f;
        if (path < 0)
            hmti_transpose_f32(s, LDS, d, LDD, rows, cols);
        else
            hmti_transpose_f32_path(path, s, LDS, d, LDD, rows, cols);
        for (int c = 0; c < C; c++)
            for (int r = 0; r < LDD; r++)
                EXPECT_MSG(d[c * LDD + r] == (c < cols && r < rows ? s[r * LDS + c] : -1.0f),
                           "%dx%d: (%d, %d) = %g", rows, cols, r, c, (double)d[c * LDD + r]);
    }
    free(s);
    free(d);
}
END_TEST

START_TEST(dots_random_shapes) {
    const uint32_t type = TYPES[_i];
    const hmti_qtraits *t = hmti_qtraits_of(type);
    static const int64_t rows_list[] = {1, 3, 67, 9}; /* 9: the 4-row kernels on padded rows */
    static const int64_t cols_k[] = {256, 512, 2048 + 256};
    /* 7 blocks: the 512-bit kernels' partial second half; 29 = 16 + 8 + 5: each
     * step size of the 512-bit Q4_0 and Q8_0 kernels once */
    static const int64_t cols_32[] = {32, 96, 224, 288, 2048 + 32, 928};
    static const int64_t cols_f[] = {1, 7, 16, 33, 100, 256, 2048 + 255};
    const int64_t *cl = t->block_elems == 256 ? cols_k : t->block_elems == 32 ? cols_32 : cols_f;
    const int nc = t->block_elems == 256 ? 3 : t->block_elems == 32 ? 6 : 7;
    dot_stats st;
    memset(&st, 0, sizeof st);
    for (int ri = 0; ri < 4; ri++)
        for (int ci = 0; ci < nc; ci++) {
            const int64_t rows = rows_list[ri], cols = cl[ci];
            /* padded rows too (by 4: F32 rows stay 4-byte aligned, as GGUF rows are) */
            const size_t stride = hmti_qrow_bytes(type, cols) + (ri % 2 ? 4 : 0);
            uint8_t *w = malloc(stride * (size_t)rows);
            float *x = malloc((size_t)cols * sizeof(float));
            random_rows(type, rows, cols, w, stride);
            for (int64_t c = 0; c < cols; c++) x[c] = hmt_test_nrand(&g_rng) * (ci == 1 ? 1e-3f : 1.0f);
            check_dots(type, rows, cols, w, stride, x, &st);
            free(w);
            free(x);
        }
    print_stats("random", type, &st);
}
END_TEST

/* Each path's 4-row kernel (quant_impl.h) gives, bit for bit, what 4 calls
 * of the same path's single-row kernel give: the GEMV mixes the two within a
 * matrix (row counts not a multiple of 4), and the decode result must not
 * depend on where a thread's rows start. Padded rows too. */
START_TEST(dot4_paths_bit_identical) {
    const uint32_t type = TYPES[_i];
    const hmti_qtraits *t = hmti_qtraits_of(type);
    static const int64_t cols_k[] = {256, 2048 + 256};
    static const int64_t cols_32[] = {32, 224, 2048 + 32};
    static const int64_t cols_f[] = {1, 17, 64, 100, 2048 + 255};
    const int64_t *cl = t->block_elems == 256 ? cols_k : t->block_elems == 32 ? cols_32 : cols_f;
    const int nc = t->block_elems == 256 ? 2 : t->block_elems == 32 ? 3 : 5;
    for (int p = HMTI_QPATH_AVX512; p <= hmti_quant_path(); p++) {
        hmti_vec_dot4_fn dot4 = p == HMTI_QPATH_AVX512 ? hmti_qdot4_avx512(type) : hmti_qdot4_vnni(type);
        hmti_vec_dot_fn dot = hmti_vec_dot_path(type, p);
        if (!dot4) continue;
        ck_assert_msg(dot != NULL, "%s: path %s has a 4-row kernel but no single-row one", t->name,
                      PATH_NAME[p]);
        for (int ci = 0; ci < nc; ci++)
            for (int pad = 0; pad <= 4; pad += 4) {
                const int64_t cols = cl[ci];
                const size_t stride = hmti_qrow_bytes(type, cols) + (size_t)pad;
                uint8_t *w = malloc(4 * stride);
                float *x = malloc((size_t)cols * sizeof(float)), y[4];
                random_rows(type, 4, cols, w, stride);
                for (int64_t c = 0; c < cols; c++) x[c] = hmt_test_nrand(&g_rng);
                const size_t ab = hmti_qact_bytes(type, cols);
                void *act = ab ? malloc(ab) : NULL;
                if (ab) hmti_quantize_act(type, x, cols, act);
                const void *a = ab ? act : (const void *)x;
                dot4(cols, w, stride, a, y);
                for (int r = 0; r < 4; r++)
                    EXPECT_MSG(fbits(y[r]) == fbits(dot(cols, w + (size_t)r * stride, a)),
                               "%s %s n%lld pad %d row %d", t->name, PATH_NAME[p], (long long)cols,
                               pad, r);
                free(w), free(x), free(act);
            }
    }
}
END_TEST

/* The multi-row kernels of Q2_K and Q3_K (batched decode: a group of 4 rows
 * against up to 8 activation rows at a time) against one
 * hmti_gemv_q_rows call per activation row, bit for bit: batch sizes 1..11,
 * row ranges starting and ending inside groups of 4, padded rows.
 * (check_matrixq runs the other K-quants' ones.) */
START_TEST(k23_multi_rows_equal_single_rows) {
    static const uint32_t types[] = {HMTI_T_Q2_K, HMTI_T_Q3_K};
    static const int64_t cols_list[] = {256, 768, 2816};
    for (int ti = 0; ti < 2; ti++) {
        const uint32_t type = types[ti];
        if (hmti_qmulti_kind(type) != 3) continue; /* no such kernel on this CPU */
        for (int ci = 0; ci < 3; ci++) {
            const int64_t cols = cols_list[ci], rows = 19, ldy = rows + 3;
            const size_t stride = hmti_qrow_bytes(type, cols) + (size_t)(ci == 1 ? 4 : 0);
            const size_t ab = hmti_qact_bytes(type, cols);
            uint8_t *w = malloc(stride * (size_t)rows), *act = malloc(11 * ab);
            float *x = malloc((size_t)cols * sizeof(float)), *y = malloc(11 * (size_t)ldy * sizeof(float));
            float y1[19];
            random_rows(type, rows, cols, w, stride);
            for (int a = 0; a < 11; a++) {
                for (int64_t c = 0; c < cols; c++) x[c] = hmt_test_nrand(&g_rng);
                hmti_quantize_act(type, x, cols, act + (size_t)a * ab);
            }
            for (int n = 1; n <= 11; n++) {
                const int64_t r0 = n % 3, r1 = rows - n % 4;
                hmti_gemv_q_rows_multi(type, 0, rows, r0, r1, cols, w, stride, act, ab, NULL, 0, n, y, ldy);
                for (int a = 0; a < n; a++) {
                    hmti_gemv_q_rows(type, r0, r1, cols, w, stride, act + (size_t)a * ab, y1);
                    for (int64_t r = r0; r < r1; r++)
                        EXPECT_MSG(fbits(y[a * ldy + r]) == fbits(y1[r]), "%s cols %lld batch %d act %d row %lld: %.9g vs %.9g",
                                   hmti_qtraits_of(type)->name, (long long)cols, n, a, (long long)r,
                                   (double)y[a * ldy + r], (double)y1[r]);
                }
            }
            free(w), free(act), free(x), free(y);
        }
    }
}
END_TEST

START_TEST(paths_reported) {
    int p = hmti_quant_path();
    ck_assert(p >= 0 && p < HMTI_QPATH_COUNT);
    if (p < HMTI_QPATH_VNNI)
        printf("check_quant: this CPU runs paths up to '%s'; the %s kernels are not tested here\n",
               PATH_NAME[p], p < HMTI_QPATH_AVX2 ? "AVX2/AVX-512" : "higher");
    /* the kernels the lead relies on exist at AVX2 and at the top levels */
    static const uint32_t must[] = {HMTI_T_Q8_0, HMTI_T_Q4_0, HMTI_T_Q4_K, HMTI_T_Q5_K, HMTI_T_Q6_K,
                                    HMTI_T_F16, HMTI_T_BF16};
    for (int i = 0; i < 7; i++) {
        ck_assert_ptr_nonnull(hmti_vec_dot_path(must[i], HMTI_QPATH_AVX2));
        ck_assert(hmti_vec_dot_path(must[i], HMTI_QPATH_AVX512) || hmti_vec_dot_path(must[i], HMTI_QPATH_VNNI));
    }
}
END_TEST

Suite *hmt_suite_quant(void);
Suite *hmt_suite_quant(void) {
    Suite *s = suite_create("quant");
    TCase *tc = tcase_create("formats");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, traits_and_sizes);
    tcase_add_loop_test(tc, dequant_matches_numpy, 0, N_TYPES);
    tcase_add_loop_test(tc, dequant_paths_bit_exact, 0, N_TYPES);
    tcase_add_test(tc, transpose_exact);
    tcase_add_test(tc, act_blocks_equal_portable);
    suite_add_tcase(s, tc);
    tc = tcase_create("dots");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, paths_reported);
    tcase_add_loop_test(tc, dots_on_golden_rows, 0, N_TYPES);
    tcase_add_loop_test(tc, dots_random_shapes, 0, N_TYPES);
    tcase_add_loop_test(tc, dot4_paths_bit_identical, 0, N_TYPES);
    tcase_add_test(tc, k23_multi_rows_equal_single_rows);
    suite_add_tcase(s, tc);
    return s;
}
