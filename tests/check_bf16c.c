/* BF16 compute (HMT_P_COMPUTE_TYPE, lib/kernels/gemm_bf16.c):
 *
 * - hmti_matmul_bf16 on every engine this CPU has (AMX, own, libxsmm), packed F32
 *   and stored (F16, Q8_0, Q4_K + Q6_K) matrices, ragged rows, columns (odd,
 *   past one 512-column tile), input rows and strides, a bias, 1 and 2
 *   threads: against the float64 product of the BF16-rounded operands,
 *   within (cols + 8) · 2^-23 · Σ|w x| (F32 accumulation); the own engine
 *   also on random shapes;
 * - exactly hmti_matmul for decode-sized inputs, without an engine, and
 *   without the BF16 scratch;
 * - the key: bounds, refusal naming it, creation and runtime setting on a
 *   context and a stream, and the logits of the test models within the bound
 *   docs/QUANTS.md states ("BF16 compute"). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "hmt/hmt.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "util/testutil.h"

static float bf16_round(float v) { return hmti_bf16_to_f32(hmti_f32_to_bf16(v)); }

typedef struct {
    hmti_matrix m;
    hmti_arena arena; /* the packed copy (kind 0) */
    int64_t rows, cols;
    float *w;        /* the weights as the matmul sees them, [rows][cols] F32 */
    uint8_t *raw[2]; /* stored parts */
} mat;

/* Random bytes for a K-quant part, with finite f16 scales (d at d_off,
 * dmin at m_off if >= 0) in [0.001, 0.02). */
static void random_kquant(uint8_t *w, size_t n, int block, int d_off, int m_off, uint64_t *seed) {
    for (size_t i = 0; i < n; i++) w[i] = (uint8_t)(hmt_test_urand(seed) * 256);
    for (size_t b = 0; b < n / (size_t)block; b++) {
        const uint16_t d = hmti_f32_to_f16(0.001f + 0.019f * (float)hmt_test_urand(seed));
        memcpy(w + b * (size_t)block + d_off, &d, 2);
        if (m_off >= 0) memcpy(w + b * (size_t)block + m_off, &d, 2);
    }
}

/* One stored row of type t from the floats v (F16, Q8_0) or random (K-quants). */
static void stored_row(uint32_t t, const float *v, uint8_t *row, int64_t cols, uint64_t *seed) {
    if (t == HMTI_T_F16) {
        for (int64_t c = 0; c < cols; c++) {
            const uint16_t h = hmti_f32_to_f16(v[c]);
            memcpy(row + 2 * c, &h, 2);
        }
    } else if (t == HMTI_T_Q8_0) {
        for (int64_t b = 0; b < cols / 32; b++) {
            float amax = 0;
            for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(v[b * 32 + i]));
            const float d = amax / 127;
            const uint16_t h = hmti_f32_to_f16(d);
            uint8_t *blk = row + 34 * b;
            memcpy(blk, &h, 2);
            for (int i = 0; i < 32; i++)
                blk[2 + i] = (uint8_t)(int8_t)lrintf(d > 0 ? v[b * 32 + i] / d : 0);
        }
    } else {
        const int q4k = t == HMTI_T_Q4_K;
        random_kquant(row, hmti_qrow_bytes(t, cols), q4k ? 144 : 210, q4k ? 0 : 208, q4k ? 2 : -1,
                      seed);
    }
}

/* kind 0: packed F32; 1: stored F16; 2: stored Q8_0; 3: Q4_K rows then Q6_K. */
static void mat_make(mat *a, int kind, int64_t rows, int64_t cols, uint64_t *seed) {
    memset(a, 0, sizeof *a);
    a->rows = rows;
    a->cols = cols;
    a->w = malloc((size_t)(rows * cols) * sizeof(float));
    ck_assert_ptr_nonnull(a->w);
    for (int64_t i = 0; i < rows * cols; i++) a->w[i] = 0.1f * hmt_test_nrand(seed);
    if (kind == 0) {
        ck_assert_int_eq(hmti_matrix_pack(&a->m, a->w, 0, rows, cols, &a->arena), HMT_OK);
        return;
    }
    const uint32_t types[3][2] = {{HMTI_T_F16}, {HMTI_T_Q8_0}, {HMTI_T_Q4_K, HMTI_T_Q6_K}};
    const int n_parts = kind == 3 ? 2 : 1;
    int64_t prow[2] = {rows, 0};
    if (n_parts == 2) prow[0] = rows / 3, prow[1] = rows - rows / 3;
    const void *data[2];
    int64_t r0 = 0;
    for (int p = 0; p < n_parts; p++) {
        const uint32_t t = types[kind - 1][p];
        const size_t rb = hmti_qrow_bytes(t, cols);
        a->raw[p] = malloc(rb * (size_t)prow[p]);
        ck_assert_ptr_nonnull(a->raw[p]);
        for (int64_t r = 0; r < prow[p]; r++, r0++) {
            uint8_t *row = a->raw[p] + (size_t)r * rb;
            stored_row(t, a->w + r0 * cols, row, cols, seed);
            hmti_dequantize_row(t, row, a->w + r0 * cols, cols);
        }
        data[p] = a->raw[p];
    }
    ck_assert_int_eq(hmti_matrix_stored(&a->m, n_parts, data, types[kind - 1], prow, cols),
                     HMT_OK);
}

static void mat_free(mat *a) {
    hmti_matrix_release(&a->m);
    hmti_arena_free(&a->arena);
    free(a->w);
    free(a->raw[0]);
    free(a->raw[1]);
}

static hmti_pool *pool_bf16(int threads, int64_t cols, int64_t max_n) {
    hmti_pool *p;
    ck_assert_int_eq(hmti_pool_create(&p, threads), HMT_OK);
    size_t sh, lo;
    hmti_matmul_scratch_bf16(cols, max_n, &sh, &lo);
    ck_assert_int_eq(hmti_pool_reserve(p, sh, lo), HMT_OK);
    return p;
}

/* n input rows (ldx = cols + 3, ldy = rows + 5, a bias) against float64. */
static void check_case(const mat *a, int threads, int64_t n, uint64_t *seed) {
    const int64_t rows = a->rows, cols = a->cols, ldx = cols + 3, ldy = rows + 5;
    float *x = malloc((size_t)(n * ldx) * sizeof *x), *y = malloc((size_t)(n * ldy) * sizeof *y);
    float *bias = malloc((size_t)rows * sizeof *bias);
    ck_assert(x && y && bias);
    for (int64_t i = 0; i < n * ldx; i++) x[i] = hmt_test_nrand(seed);
    for (int64_t r = 0; r < rows; r++) bias[r] = hmt_test_nrand(seed);
    for (int64_t i = 0; i < n * ldy; i++) y[i] = -1234.5f;
    hmti_pool *pool = pool_bf16(threads, cols, n);
    hmti_matmul_bf16(pool, &a->m, x, ldx, n, y, ldy, bias);
    const double u = ldexp(1.0, -23);
    for (int64_t i = 0; i < n; i++)
        for (int64_t r = 0; r < rows; r++) {
            double s = bias[r], mag = fabs(bias[r]);
            for (int64_t c = 0; c < cols; c++) {
                const double p = (double)bf16_round(a->w[r * cols + c]) *
                                 (double)bf16_round(x[i * ldx + c]);
                s += p;
                mag += fabs(p);
            }
            const double got = y[i * ldy + r], tol = (double)(cols + 8) * u * mag;
            ck_assert_msg(fabs(got - s) <= tol, "%lldx%lld n %lld, y[%lld][%lld] = %.9g, want "
                          "%.9g (tol %.3g)", (long long)rows, (long long)cols, (long long)n,
                          (long long)i, (long long)r, got, s, tol);
        }
    for (int64_t i = 0; i < n; i++) /* the stride gaps untouched */
        for (int64_t r = rows; r < ldy; r++) ck_assert(y[i * ldy + r] == -1234.5f);
    hmti_pool_release(pool);
    free(x);
    free(y);
    free(bias);
}

static const int64_t SHAPES[][2] = {{64, 64}, {37, 17}, {100, 600}, {200, 1100}, {33, 1024}};

/* _i: engine (AMX, own AVX512-BF16, libxsmm) × matrix kind */
START_TEST(against_float64) {
    static const int engines[] = {HMTI_BF16_AMX, HMTI_BF16_OWN, HMTI_BF16_LIBXSMM};
    const int engine = engines[_i / 4], kind = _i % 4;
    if (hmti_bf16_engine() < engine) return; /* not on this CPU */
    const int old = hmti_bf16_set_engine(engine);
    uint64_t seed = 0xB16C0DE + (uint64_t)_i;
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
        const int64_t cols = SHAPES[s][1];
        if (kind == 3 && cols % 256) continue;
        if (kind == 2 && cols % 32) continue;
        mat a;
        mat_make(&a, kind, SHAPES[s][0], cols, &seed);
        check_case(&a, 1, 5, &seed);
        check_case(&a, 2, 37, &seed);
        check_case(&a, 2, 70, &seed);
        mat_free(&a);
    }
    hmti_bf16_set_engine(old);
}
END_TEST

/* The own AVX512-BF16 engine on random shapes: rows across its 16-row
 * vectors and 64-row panels (and the 32-row halves 2 threads split one
 * panel into), input rows across its 6-row register blocks, columns not a
 * multiple of 32 (within and past a 512-column tile), packed F32 and stored
 * F16 weights. */
START_TEST(own_random_shapes) {
    if (hmti_bf16_engine() < HMTI_BF16_OWN) return; /* no AVX512-BF16 */
    const int old = hmti_bf16_set_engine(HMTI_BF16_OWN);
    uint64_t seed = 0x0B16EC0DE;
    for (int t = 0; t < 24; t++) {
        const int64_t rows = 1 + (int64_t)(hmt_test_urand(&seed) * 200);
        const int64_t cols = 1 + (int64_t)(hmt_test_urand(&seed) * 1300);
        const int64_t n = 5 + (int64_t)(hmt_test_urand(&seed) * 80);
        mat a;
        mat_make(&a, t % 3 == 2, rows, cols, &seed);
        check_case(&a, 1 + t % 2, n, &seed);
        mat_free(&a);
    }
    hmti_bf16_set_engine(old);
}
END_TEST

/* Cases that must give hmti_matmul's floats exactly. */
static void expect_f32(const mat *a, hmti_pool *pool, int64_t n, uint64_t *seed) {
    const int64_t cols = a->cols, rows = a->rows;
    float *x = malloc((size_t)(n * cols) * sizeof *x);
    float *y0 = malloc((size_t)(n * rows) * sizeof *y0);
    float *y1 = malloc((size_t)(n * rows) * sizeof *y1);
    ck_assert(x && y0 && y1);
    for (int64_t i = 0; i < n * cols; i++) x[i] = hmt_test_nrand(seed);
    hmti_matmul(pool, &a->m, x, cols, n, y0, rows, NULL);
    hmti_matmul_bf16(pool, &a->m, x, cols, n, y1, rows, NULL);
    ck_assert_int_eq(memcmp(y0, y1, (size_t)(n * rows) * sizeof *y0), 0);
    free(x);
    free(y0);
    free(y1);
}

START_TEST(falls_back_to_f32) {
    uint64_t seed = 77;
    mat a;
    mat_make(&a, 0, 70, 96, &seed);
    hmti_pool *pool = pool_bf16(2, 96, 64);
    expect_f32(&a, pool, HMTI_DECODE_ROWS, &seed); /* decode */
    const int old = hmti_bf16_set_engine(HMTI_BF16_NONE);
    expect_f32(&a, pool, 40, &seed); /* no engine */
    hmti_bf16_set_engine(old);
    hmti_pool_release(pool);
    hmti_pool *bare;
    ck_assert_int_eq(hmti_pool_create(&bare, 1), HMT_OK);
    expect_f32(&a, bare, 40, &seed); /* no scratch */
    hmti_pool_release(bare);
    mat_free(&a);
}
END_TEST

START_TEST(key) {
    double lo, hi, def;
    int is_int;
    ck_assert_int_eq(hmt_param_bounds(HMT_P_COMPUTE_TYPE, &lo, &hi, &def, &is_int), HMT_OK);
    ck_assert(lo == HMT_COMPUTE_F32 && hi == HMT_COMPUTE_BF16 && def == HMT_COMPUTE_F32 && is_int);
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_COMPUTE_TYPE, 2), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "compute_type"));
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_COMPUTE_TYPE, -1), HMT_E_INVAL);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_COMPUTE_TYPE, 1.0), HMT_E_INVAL);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_COMPUTE_TYPE, HMT_COMPUTE_BF16), HMT_OK);
    /* a stream takes it at creation and live */
    hmt_model *m;
    ck_assert_int_eq(hmt_model_load(&m, hmt_test_data("llama-f32.gguf"), NULL), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_MODE, HMT_MODE_SEGMENTS), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_SEGMENT_LENGTH, 16), HMT_OK);
    hmt_stream *s;
    ck_assert_int_eq(hmt_stream_create(&s, m, NULL, p), HMT_OK);
    double v;
    ck_assert_int_eq(hmt_stream_get(s, HMT_P_COMPUTE_TYPE, &v), HMT_OK);
    ck_assert(v == HMT_COMPUTE_BF16);
    ck_assert_int_eq(hmt_stream_set_int(s, HMT_P_COMPUTE_TYPE, 5), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "compute_type"));
    ck_assert_int_eq(hmt_stream_set_int(s, HMT_P_COMPUTE_TYPE, HMT_COMPUTE_F32), HMT_OK);
    ck_assert_int_eq(hmt_stream_get(s, HMT_P_COMPUTE_TYPE, &v), HMT_OK);
    ck_assert(v == HMT_COMPUTE_F32);
    hmt_stream_free(s);
    hmt_model_free(m);
    hmt_params_free(p);
}
END_TEST

/* The largest |Δlogit| of BF16 compute against F32, relative to the largest
 * |logit|, on test models of each kind (F32, F16, Q4_K_M weights; llama and
 * qwen2), a 40-token prompt with every row's logits. Measured 0.005-0.015;
 * docs/QUANTS.md states the bound checked here. */
#define BF16_MAX_DLOGIT 0.03

START_TEST(model_logits) {
    const char *files[] = {"llama-f32.gguf", "qwen2-f32.gguf", "llama-tied-f16.gguf",
                           "llama-q4km.gguf"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        hmt_model *m;
        ck_assert_int_eq(hmt_model_load(&m, hmt_test_data(files[f]), NULL), HMT_OK);
        hmt_params *p;
        ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
        ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, 2), HMT_OK);
        ck_assert_int_eq(hmt_params_set_int(p, HMT_P_COMPUTE_TYPE, HMT_COMPUTE_BF16), HMT_OK);
        hmt_ctx *ctx;
        ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_OK);
        double v;
        ck_assert_int_eq(hmt_ctx_get(ctx, HMT_P_COMPUTE_TYPE, &v), HMT_OK);
        ck_assert(v == HMT_COMPUTE_BF16);
        const int n = 40, nv = hmt_model_n_vocab(m);
        hmt_token toks[40];
        for (int i = 0; i < n; i++) toks[i] = (hmt_token)((i * 7919 + 13) % nv);
        float *l16 = malloc((size_t)n * (size_t)nv * sizeof *l16);
        ck_assert_ptr_nonnull(l16);
        ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, toks, n, 1), HMT_OK);
        memcpy(l16, hmt_ctx_logits(ctx, 0), (size_t)n * (size_t)nv * sizeof *l16);
        ck_assert_int_eq(hmt_ctx_set_int(ctx, HMT_P_COMPUTE_TYPE, 7), HMT_E_INVAL);
        ck_assert_int_eq(hmt_ctx_set_int(ctx, HMT_P_COMPUTE_TYPE, HMT_COMPUTE_F32), HMT_OK);
        ck_assert_int_eq(hmt_ctx_kv_clear(ctx), HMT_OK);
        ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, toks, n, 1), HMT_OK);
        const float *l32 = hmt_ctx_logits(ctx, 0);
        double dmax = 0, lmax = 0;
        for (int64_t i = 0; i < (int64_t)n * nv; i++) {
            dmax = fmax(dmax, fabs(l16[i] - l32[i]));
            lmax = fmax(lmax, fabs(l32[i]));
        }
        ck_assert_msg(dmax <= BF16_MAX_DLOGIT * lmax, "%s: max |Δlogit| %.3g, max |logit| %.3g",
                      files[f], dmax, lmax);
        if (hmti_bf16_engine() != HMTI_BF16_NONE) ck_assert(dmax > 0); /* it did compute in BF16 */
        free(l16);
        hmt_ctx_free(ctx);
        hmt_params_free(p);
        hmt_model_free(m);
    }
}
END_TEST

Suite *hmt_suite_bf16c(void);
Suite *hmt_suite_bf16c(void) {
    Suite *s = suite_create("bf16c");
    TCase *tc = tcase_create("bf16c");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, against_float64, 0, 12);
    tcase_add_test(tc, own_random_shapes);
    tcase_add_test(tc, falls_back_to_f32);
    tcase_add_test(tc, key);
    tcase_add_test(tc, model_logits);
    suite_add_tcase(s, tc);
    return s;
}
