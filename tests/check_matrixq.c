/* Stored weight matrices (lib/kernels/matrix_q.c) on every supported type,
 * alone and as two parts of different types, with odd row counts, strides
 * and biases, on 1 and 2 threads:
 *
 * - prompt path against the float64 product of the dequantized weights,
 *   within (cols + 8) u Σ|w x| (float accumulation over k blocks);
 * - decode path bit-identical to hmti_gemv_q on each part (the same kernel
 *   on the same activation blocks), also after hmti_matrix_repack (types
 *   in 16-row groups: that layout's one-row kernel, checked in il16_layout);
 * - without reserved scratch, the fallback equals hmti_vec_dot_exact;
 * - hmti_quant_first_nonfinite finds a non-finite element or block scale;
 * - bad types and widths are refused. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/arena.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/quant_impl.h"
#include "util/testutil.h"

static const uint32_t TYPES[] = {HMTI_T_F32,  HMTI_T_F16,  HMTI_T_BF16, HMTI_T_Q4_0, HMTI_T_Q4_1,
                                 HMTI_T_Q5_0, HMTI_T_Q5_1, HMTI_T_Q8_0, HMTI_T_Q2_K, HMTI_T_Q3_K,
                                 HMTI_T_Q4_K, HMTI_T_Q5_K, HMTI_T_Q6_K, HMTI_T_IQ4_NL,
                                 HMTI_T_IQ4_XS};
#define N_TYPES ((int)(sizeof TYPES / sizeof TYPES[0]))

/* Byte offsets of a block type's f16 fields (-1: none). */
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

/* rows × cols random weights of type: floats N(0, 0.1) for F32/F16/BF16,
 * random bytes with finite f16 scales in [0.001, 0.02) for block types. */
static uint8_t *random_rows(uint32_t type, int64_t rows, int64_t cols, uint64_t *seed) {
    const hmti_qtraits *t = hmti_qtraits_of(type);
    const size_t rb = hmti_qrow_bytes(type, cols), n = rb * (size_t)rows;
    uint8_t *w = malloc(n);
    ck_assert_ptr_nonnull(w);
    if (t->block_elems == 1) {
        for (int64_t i = 0; i < rows * cols; i++) {
            const float v = 0.1f * hmt_test_nrand(seed);
            if (type == HMTI_T_F32) memcpy(w + 4 * i, &v, 4);
            uint16_t h = type == HMTI_T_F16 ? hmti_f32_to_f16(v) : hmti_f32_to_bf16(v);
            if (type != HMTI_T_F32) memcpy(w + 2 * i, &h, 2);
        }
        return w;
    }
    for (size_t i = 0; i < n; i++) w[i] = (uint8_t)(hmt_test_urand(seed) * 256);
    int d_off, m_off;
    f16_fields(type, &d_off, &m_off);
    for (size_t b = 0; b < n / (size_t)t->block_bytes; b++) {
        uint8_t *blk = w + b * (size_t)t->block_bytes;
        uint16_t d = hmti_f32_to_f16(0.001f + 0.019f * (float)hmt_test_urand(seed));
        memcpy(blk + d_off, &d, 2);
        if (m_off >= 0) {
            uint16_t m = hmti_f32_to_f16(0.02f * (float)hmt_test_urand(seed) - 0.01f);
            memcpy(blk + m_off, &m, 2);
        }
    }
    return w;
}

typedef struct {
    int n_parts;
    uint32_t types[2];
    int64_t rows[2], cols;
    uint8_t *data[2];
    float *deq; /* all rows dequantized, [rows][cols] */
    hmti_matrix m;
} fixture;

static void fixture_make(fixture *f, int n_parts, const uint32_t *types, const int64_t *rows,
                         int64_t cols, uint64_t *seed) {
    memset(f, 0, sizeof *f);
    f->n_parts = n_parts;
    f->cols = cols;
    int64_t total = 0;
    for (int i = 0; i < n_parts; i++) total += rows[i];
    f->deq = malloc((size_t)total * (size_t)cols * sizeof(float));
    const void *data[2];
    int64_t r0 = 0;
    for (int i = 0; i < n_parts; i++) {
        f->types[i] = types[i];
        f->rows[i] = rows[i];
        f->data[i] = random_rows(types[i], rows[i], cols, seed);
        data[i] = f->data[i];
        const size_t rb = hmti_qrow_bytes(types[i], cols);
        for (int64_t r = 0; r < rows[i]; r++, r0++)
            hmti_dequantize_row(types[i], f->data[i] + (size_t)r * rb, f->deq + r0 * cols, cols);
    }
    ck_assert_int_eq(hmti_matrix_stored(&f->m, n_parts, data, types, rows, cols), HMT_OK);
    ck_assert_int_eq(f->m.rows, total);
}

static void fixture_free(fixture *f) {
    for (int i = 0; i < f->n_parts; i++) free(f->data[i]);
    free(f->deq);
    hmti_matrix_release(&f->m);
}

static hmti_pool *pool_for(int threads, int64_t cols, int reserve) {
    hmti_pool *p;
    ck_assert_int_eq(hmti_pool_create(&p, threads), HMT_OK);
    if (reserve) {
        size_t sh, lo;
        hmti_matmul_scratch(cols, &sh, &lo);
        ck_assert_int_eq(hmti_pool_reserve(p, sh, lo), HMT_OK);
    }
    return p;
}

/* Run the matmul with n input rows (ldx = cols + 3, ldy = rows + 5, a bias)
 * and check every output against the float64 reference, or bit-exactly
 * against the per-part kernels when exact_decode. */
static void check_case(const fixture *f, int threads, int64_t n, int decode_rows, int reserve,
                       uint64_t *seed) {
    const hmti_matrix *m = &f->m;
    const int64_t cols = f->cols, rows = m->rows, ldx = cols + 3, ldy = rows + 5;
    float *x = malloc((size_t)(n * ldx) * sizeof *x), *y = malloc((size_t)(n * ldy) * sizeof *y);
    float *bias = malloc((size_t)rows * sizeof *bias);
    for (int64_t i = 0; i < n * ldx; i++) x[i] = hmt_test_nrand(seed);
    for (int64_t r = 0; r < rows; r++) bias[r] = hmt_test_nrand(seed);
    for (int64_t i = 0; i < n * ldy; i++) y[i] = -1234.5f;
    hmti_pool *pool = pool_for(threads, cols, reserve);
    const int old = hmti_matmul_set_decode_rows(decode_rows);
    hmti_matmul(pool, m, x, ldx, n, y, ldy, bias);
    hmti_matmul_set_decode_rows(old);
    const int decode = n <= decode_rows;
    float *yk = malloc((size_t)rows * sizeof *yk);
    void *act = malloc(hmti_qact_bytes(HMTI_T_Q4_K, (cols + 255) / 256 * 256) +
                       hmti_qact_bytes(HMTI_T_Q8_0, (cols + 31) / 32 * 32) + 64);
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * ldx;
        float *yi = y + i * ldy;
        if (decode || !reserve) { /* the per-part kernels, bit for bit */
            int64_t r0 = 0;
            for (int p = 0; p < f->n_parts; p++) {
                const size_t rb = hmti_qrow_bytes(f->types[p], cols);
                const int floats = !hmti_qtraits_of(f->types[p])->act_block; /* also the exact fallback's kernel */
                if ((reserve || floats) && m->part[p].il && hmti_q_il_rows(f->types[p]) == 16) { /* its own float order */
                    hmti_quantize_act(f->types[p], xi, cols, act); /* the half types read xi */
                    hmti_gemv_q_rows_il(f->types[p], f->rows[p], 0, f->rows[p], cols, m->part[p].data,
                                        hmti_qact_bytes(f->types[p], cols) ? act : (const void *)xi, yk + r0);
                } else if (reserve)
                    hmti_gemv_q(f->types[p], f->rows[p], cols, f->data[p], rb, xi, yk + r0, act);
                else
                    hmti_gemv_q_exact(f->types[p], f->rows[p], cols, f->data[p], rb, xi, yk + r0);
                r0 += f->rows[p];
            }
            for (int64_t r = 0; r < rows; r++)
                EXPECT_MSG(yi[r] == yk[r] + bias[r],
                           "type %u/%u n=%lld threads=%d row %lld: %.9g vs %.9g", f->types[0],
                           f->types[f->n_parts - 1], (long long)n, threads, (long long)r, yi[r],
                           yk[r] + bias[r]);
        } else { /* the dequantized weights in float64 */
            for (int64_t r = 0; r < rows; r++) {
                double s = 0, sa = 0;
                for (int64_t c = 0; c < cols; c++) {
                    const double p = (double)f->deq[r * cols + c] * xi[c];
                    s += p, sa += fabs(p);
                }
                const double tol = (double)(cols + 8) * 0x1p-24 * (sa + fabs(bias[r]));
                EXPECT_MSG(fabs(yi[r] - (s + bias[r])) <= tol,
                           "type %u/%u n=%lld threads=%d row %lld: %.9g vs %.9g (tol %.3g)",
                           f->types[0], f->types[f->n_parts - 1], (long long)n, threads,
                           (long long)r, yi[r], s + bias[r], tol);
            }
        }
        for (int64_t r = rows; r < ldy; r++) EXPECT(yi[r] == -1234.5f); /* stride untouched */
    }
    hmti_pool_release(pool);
    free(x), free(y), free(bias), free(yk), free(act);
}

START_TEST(every_type_both_paths) {
    const uint32_t t = TYPES[_i];
    const hmti_qtraits *tr = hmti_qtraits_of(t);
    uint64_t seed = 1000 + (uint64_t)_i;
    /* 256-wide rows for every type; 32-element and float types also 288 and
     * 1056 (repacked: whole chunks and a shorter last one) */
    const int64_t widths[] = {512, 288, 1056};
    for (int wi = 0; wi < 3; wi++) {
        const int64_t cols = widths[wi];
        if (cols % tr->block_elems) continue;
        /* one part; then two parts with a partner of the other block size */
        const uint32_t partner = cols % 256              ? HMTI_T_F16
                                 : tr->block_elems == 256 ? HMTI_T_Q8_0
                                                          : HMTI_T_Q6_K;
        fixture f;
        const int64_t rows1[] = {70}, rows2[] = {37, 90};
        const uint32_t types2[] = {t, partner};
        /* shapes 2, 3: the same, repacked (hmti_matrix_repack, where this
         * CPU has the layout): the same results, bit for bit */
        hmti_arena arena = {0};
        for (int shape = 0; shape < 4; shape++) {
            if (shape % 2 == 0)
                fixture_make(&f, 1, &t, rows1, cols, &seed);
            else
                fixture_make(&f, 2, types2, rows2, cols, &seed);
            if (shape >= 2) {
                const int mask = hmti_matrix_repack(&f.m, &arena);
                ck_assert_int_ge(mask, 0);
                if (mask & 1) ck_assert_int_eq(f.m.part[0].il, 1);
                if (!mask) { /* nothing to repack: already run as shape - 2 */
                    fixture_free(&f);
                    continue;
                }
            }
            for (int threads = 1; threads <= 2; threads++) {
                check_case(&f, threads, 1, 4, 1, &seed);   /* decode */
                check_case(&f, threads, 3, 4, 1, &seed);   /* decode, several rows */
                check_case(&f, threads, 9, 1 << 20, 1, &seed); /* decode in row groups */
                check_case(&f, threads, 5, 4, 1, &seed);   /* prompt, one n-tile */
                check_case(&f, threads, 70, 0, 1, &seed);  /* prompt, two n-tiles */
                check_case(&f, threads, 2, 4, 0, &seed);   /* no scratch: exact fallback */
            }
            /* get_row = the dequantized row */
            float row[1056];
            hmti_matrix_get_row(&f.m, f.m.rows - 1, row);
            ck_assert_mem_eq(row, f.deq + (f.m.rows - 1) * cols, (size_t)cols * sizeof(float));
            fixture_free(&f);
            hmti_arena_free(&arena);
        }
    }
}
END_TEST

/* The multi-row kernels (hmti_gemv_q_rows_multi) against one hmti_gemv_q_rows
 * (or _il) call per activation row, bit for bit: batch sizes 1..16 (Q8_0
 * 1..20, its 16-row groups with AMX on and off, 19 and 53 rows), row
 * ranges that start and end inside groups of 4, widths with a shorter last
 * chunk, stored and interleaved rows; the K-quants' super-block widths. */
START_TEST(multi_row_kernels_equal_single_rows) {
    const uint32_t types[] = {HMTI_T_Q8_0, HMTI_T_Q4_0, HMTI_T_Q5_0, HMTI_T_IQ4_NL, HMTI_T_F16, HMTI_T_BF16,
                              HMTI_T_F32,  HMTI_T_Q4_K, HMTI_T_Q5_K, HMTI_T_Q6_K,   HMTI_T_Q4_1, HMTI_T_Q5_1,
                              HMTI_T_IQ4_XS};
    const int64_t widths[] = {32, 96, 288, 576, 1056}, k_widths[] = {256, 512, 768, 1536, 2816};
    uint64_t seed = 4242;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const uint32_t t = types[ti];
        const int kind = hmti_qmulti_kind(t), il16 = hmti_q_il_rows(t) == 16;
        if (!kind && !il16) continue; /* no such kernel on this CPU (16-row groups always have one) */
        for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
            const int64_t cols = hmti_qtraits_of(t)->block_elems == HMTI_QK_K ? k_widths[wi] : widths[wi];
            /* the types of 16-row groups also on 53 rows: 3 groups and 5 rows */
            for (int64_t rows = 19; rows <= 53; rows += 34) {
            if (rows > 19 && hmti_q_il_rows(t) != 16) break;
            const int64_t ldx = cols + 5, ldy = rows + 3;
            const size_t rb = hmti_qrow_bytes(t, cols);
            uint8_t *w = random_rows(t, rows, cols, &seed), *il = malloc(rb * (size_t)rows);
            const int has_il = hmti_q_il_rows(t) > 0;
            if (has_il) hmti_q_interleave(t, rows, cols, w, il);
            const int max_n = t == HMTI_T_Q8_0 ? 20 : 16; /* Q8_0: past one AMX pass of 16 */
            float *x = malloc((size_t)max_n * (size_t)ldx * sizeof *x), *y = malloc((size_t)max_n * (size_t)ldy * sizeof *y);
            float *y1 = malloc((size_t)rows * sizeof *y1);
            const size_t ab = hmti_qact_bytes(t, cols), wb = kind == 1 || kind == 2 ? hmti_qact_wide_bytes(kind, cols) : 0;
            uint8_t *act = malloc((size_t)max_n * ab + 1), *wide = malloc((size_t)max_n * wb + 1);
            for (int64_t i = 0; i < max_n * ldx; i++) x[i] = hmt_test_nrand(&seed);
            for (int i = 0; i < max_n && ab; i++) {
                hmti_quantize_act(t, x + i * ldx, cols, act + (size_t)i * ab);
                if (wb) hmti_qact_wide(kind, (const hmti_q8_32 *)(const void *)(act + (size_t)i * ab), cols,
                                       wide + (size_t)i * wb);
            }
            const void *a0 = ab ? (const void *)act : (const void *)x;
            const size_t as = ab ? ab : (size_t)ldx * sizeof(float);
            for (int lay = kind ? 0 : 1; lay <= has_il; lay++) /* stored rows only with their own kernel */
                for (int amx = 1; amx >= 0; amx--) /* Q8_0's layout: with AMX (where the CPU has it), then without */
                for (int n = 1; n <= max_n; n++) {
                    if (!amx && (!lay || t != HMTI_T_Q8_0)) break;
                    hmti_qmulti_amx_enable(amx);
                    const int64_t r0 = n % 3, r1 = rows - n % 4;
                    hmti_gemv_q_rows_multi(t, lay, rows, r0, r1, cols, lay ? il : w, rb, a0, as, wide, wb, n, y, ldy);
                    for (int i = 0; i < n; i++) {
                        const void *ai = (const uint8_t *)a0 + (size_t)i * as;
                        if (lay)
                            hmti_gemv_q_rows_il(t, rows, r0, r1, cols, il, ai, y1);
                        else
                            hmti_gemv_q_rows(t, r0, r1, cols, w, rb, ai, y1);
                        for (int64_t r = r0; r < r1; r++)
                            EXPECT_MSG(memcmp(&y[i * ldy + r], &y1[r], sizeof(float)) == 0,
                                       "%s cols %lld rows %lld il %d amx %d batch %d act %d row %lld: %.9g vs %.9g",
                                       hmti_qtraits_of(t)->name, (long long)cols, (long long)rows, lay, amx, n, i,
                                       (long long)r, y[i * ldy + r], y1[r]);
                    }
                }
            hmti_qmulti_amx_enable(1);
            free(w), free(il), free(x), free(y), free(y1), free(act), free(wide);
            }
        }
    }
}
END_TEST

/* Element e (0..31; Q4_K, Q5_K, Q6_K 0..255) of a stored Q8_0 / Q4_0 /
 * Q5_0 / Q4_1 / Q5_1 / IQ4_NL / Q4_K / Q5_K / Q6_K block as its integer (the
 * K-quants: before their sub-block's scale; Q4_1 / Q5_1 / Q4_K / Q5_K: q,
 * 0..15 / 0..31, before its min). */
static int stored_int(uint32_t type, const uint8_t *blk, int e) {
    if (type == HMTI_T_Q4_K) return (blk[16 + 32 * (e / 64) + e % 32] >> (e % 64 < 32 ? 0 : 4)) & 15;
    if (type == HMTI_T_Q5_K) /* qh[32] at 16, then the nibbles; bit e / 32 of qh[e % 32] */
        return ((blk[48 + 32 * (e / 64) + e % 32] >> (e % 64 < 32 ? 0 : 4)) & 15) | (blk[16 + e % 32] >> (e / 32) & 1) << 4;
    if (type == HMTI_T_Q6_K) {
        const int n = e / 128, k = e % 128 / 32, l = e % 32;
        const int lo = (blk[64 * n + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 15;
        return (lo | ((blk[128 + 32 * n + l] >> (2 * k)) & 3) << 4) - 32;
    }
    if (type == HMTI_T_Q4_0) return (e < 16 ? blk[2 + e] & 15 : blk[2 + e - 16] >> 4) - 8;
    if (type == HMTI_T_Q5_0)
        return (e < 16 ? blk[6 + e] & 15 : blk[6 + e - 16] >> 4) + (int)(hmti_qu32(blk + 2) >> e & 1) * 16 - 16;
    if (type == HMTI_T_Q4_1) return e < 16 ? blk[4 + e] & 15 : blk[4 + e - 16] >> 4; /* d, m, nibbles */
    if (type == HMTI_T_IQ4_NL) return hmti_iq4_values[e < 16 ? blk[2 + e] & 15 : blk[2 + e - 16] >> 4];
    if (type == HMTI_T_IQ4_XS) /* d, scales_h, scales_l, then 16 bytes per 32 elements */
        return hmti_iq4_values[(blk[8 + 16 * (e / 32) + e % 16] >> (e % 32 < 16 ? 0 : 4)) & 15];
    if (type == HMTI_T_Q5_1) /* d, m, 5th bits, nibbles */
        return (e < 16 ? blk[8 + e] & 15 : blk[8 + e - 16] >> 4) + (int)(hmti_qu32(blk + 4) >> e & 1) * 16;
    return (int8_t)blk[2 + e];
}

/* The layout of 16-row groups (Q8_0, Q4_0, Q5_0, F16, BF16, Q6_K, Q4_K, Q5_K, Q4_1, Q5_1, IQ4_NL, IQ4_XS;
 * where this CPU has it): the one-row kernel equals the portable reference
 * (hmti_il16_dot_ref, hmti_il16h_dot_ref, hmti_il16_q6k_dot_ref,
 * hmti_il16_q4k_dot_ref) bit for bit on every group and
 * the stored rows' kernel past the groups, over row ranges that start and
 * end inside groups; the reference is the stored rows' exact dot (block
 * int sums times both scales, Q4_K's mins term too; the half types: the
 * weights times x; float64) up to float rounding; both dequantizers are
 * exact. */
START_TEST(il16_layout) {
    const uint32_t all[] = {HMTI_T_Q8_0, HMTI_T_Q4_0, HMTI_T_Q5_0, HMTI_T_F16,  HMTI_T_BF16,   HMTI_T_Q6_K,
                            HMTI_T_Q4_K, HMTI_T_Q5_K, HMTI_T_Q4_1, HMTI_T_Q5_1, HMTI_T_IQ4_NL, HMTI_T_IQ4_XS};
    const uint32_t type = all[_i];
    const int half = hmti_il16_half(type), q6k = type == HMTI_T_Q6_K, xs = type == HMTI_T_IQ4_XS;
    const int q4k = type == HMTI_T_Q4_K || type == HMTI_T_Q5_K; /* Q4_K's scales, mins and steps */
    const int q41 = type == HMTI_T_Q4_1 || type == HMTI_T_Q5_1;  /* + m * (activation block sum) */
    const int kq = q6k || q4k || xs; /* super-blocks of 256 columns */
    if (hmti_q_il_rows(type) != 16) return; /* no such layout on this CPU */
    /* 2080: Q8_0's 8-block turns and a tail */
    const int64_t shapes[][2] = {{16, 32}, {19, 96}, {37, 288}, {53, 576}, {69, 1056}, {32, 2080}, {17, 64}, {84, 1312}};
    const int64_t k_shapes[][2] = {{16, 256},  {19, 512}, {37, 768}, {53, 1536},
                                   {69, 256},  {32, 2816}, {17, 512}, {84, 1280}};
    const size_t bb = (size_t)hmti_qtraits_of(type)->block_bytes;
    const int64_t be = hmti_qtraits_of(type)->block_elems; /* hmti_q_il_dequant counts these */
    const int64_t kb = be > 32 ? be : 32;                   /* columns its kernels' blocks hold */
    uint64_t seed = 99;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int64_t rows = kq ? k_shapes[si][0] : shapes[si][0], cols = kq ? k_shapes[si][1] : shapes[si][1];
        const int64_t nb = cols / kb, rows16 = rows / 16 * 16;
        const size_t rb = hmti_qrow_bytes(type, cols);
        uint8_t *w = random_rows(type, rows, cols, &seed), *il = malloc(rb * (size_t)rows);
        hmti_q_interleave(type, rows, cols, w, il);
        float *x = malloc((size_t)cols * sizeof *x), *y = malloc((size_t)rows * sizeof *y);
        float *ref = malloc((size_t)rows * sizeof *ref), *deq = malloc((size_t)cols * 16 * sizeof *deq);
        float *row = malloc((size_t)cols * sizeof *row);
        void *act = malloc(hmti_qact_bytes(half ? HMTI_T_Q8_0 : type, cols));
        const hmti_q8_32 *a32 = act;
        const hmti_q8_256 *a256 = act;
        for (int64_t c = 0; c < cols; c++) x[c] = hmt_test_nrand(&seed);
        hmti_quantize_act(half ? HMTI_T_Q8_0 : type, x, cols, act);
        const void *a = half ? (const void *)x : (const void *)act; /* what the kernels read */
        for (int64_t g = 0; g < rows16; g += 16)
            if (half)
                hmti_il16h_dot_ref(type, cols, il + (size_t)g * rb, x, ref + g);
            else if (q6k)
                hmti_il16_q6k_dot_ref(nb, il + (size_t)g * rb, a256, ref + g);
            else if (q4k)
                hmti_il16_q4k_dot_ref(type, nb, il + (size_t)g * rb, a256, ref + g);
            else if (xs)
                hmti_il16_iq4xs_dot_ref(nb, il + (size_t)g * rb, a256, ref + g);
            else
                hmti_il16_dot_ref(type, nb, il + (size_t)g * rb, a32, ref + g);
        for (int64_t r = rows16; r < rows; r++) hmti_gemv_q_rows(type, r, r + 1, cols, w, rb, a, ref);
        for (int k = 0; k < 4; k++) {
            const int64_t r0 = (5 * k) % rows, r1 = rows - (3 * k) % (rows - r0);
            for (int64_t r = 0; r < rows; r++) y[r] = -1234.5f;
            hmti_gemv_q_rows_il(type, rows, r0, r1, cols, il, a, y);
            for (int64_t r = 0; r < rows; r++)
                EXPECT_MSG(r >= r0 && r < r1 ? memcmp(&y[r], &ref[r], sizeof(float)) == 0 : y[r] == -1234.5f,
                           "%s %lld x %lld rows [%lld, %lld) row %lld: %.9g vs %.9g", hmti_qtraits_of(type)->name, (long long)rows, (long long)cols,
                           (long long)r0, (long long)r1, (long long)r, y[r], ref[r]);
        }
        if (hmti_q_il_stream_min(type) >= 0 && rows16) { /* 4 places side by side: G / 4 groups each, or 1 */
            const int64_t G = rows16 / 16, n = G >= 4 ? G / 4 : 1;
            float *y4[4];
            const uint8_t *g4[4];
            for (int s = 0; s < 4; s++) {
                y4[s] = malloc((size_t)(16 * n) * sizeof(float));
                g4[s] = il + (size_t)(16 * ((s * G / 4) % G)) * rb;
            }
            hmti_gemv_q_il4(type, n, cols, g4, a, y4);
            for (int s = 0; s < 4; s++) {
                ck_assert_mem_eq(y4[s], ref + 16 * ((s * G / 4) % G), (size_t)(16 * n) * sizeof(float));
                free(y4[s]);
            }
        }
        for (int64_t r = 0; r < rows16 && half; r++) { /* the reference against the stored rows */
            double s = 0, sa = 0;
            hmti_dequantize_row(type, w + (size_t)r * rb, row, cols);
            for (int64_t c = 0; c < cols; c++) s += (double)row[c] * x[c], sa += fabs((double)row[c] * x[c]);
            EXPECT_MSG(fabs(ref[r] - s) <= (double)(cols + 2) * 0x1p-24 * sa, "row %lld: %.9g vs %.9g", (long long)r,
                       ref[r], s);
        }
        for (int64_t r = 0; r < rows16 && !half; r++) {
            double s = 0, sa = 0;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = w + (size_t)r * rb + (size_t)b * bb;
                int32_t is = 0, ms = 0; /* Q4_K: the mins term apart, times dmin */
                for (int e = 0; e < kb; e++) {
                    int sc = 1, m = 0;
                    if (q4k) hmti_k_scale_min(e / 32, blk + 4, &sc, &m);
                    if (q6k) sc = (int8_t)blk[192 + e / 16];
                    if (xs) sc = hmti_iq4xs_scale(e / 32, blk);
                    is += sc * stored_int(type, blk, e) * (kq ? a256[b].qs[e] : a32[b].qs[e]);
                    ms += m * (kq ? a256[b].qs[e] : 0);
                }
                const double t = (double)is * (q6k ? hmti_qf16(blk + 208) * a256[b].d
                                               : q4k || xs ? hmti_qf16(blk) * a256[b].d
                                                           : hmti_qf16(blk) * a32[b].d);
                const double tm = q4k   ? (double)ms * (hmti_qf16(blk + 2) * a256[b].d)
                                  : q41 ? -(double)(a32[b].sum[0] + a32[b].sum[1]) * (hmti_qf16(blk + 2) * a32[b].d)
                                        : 0;
                s += t - tm, sa += fabs(t) + fabs(tm);
            }
            EXPECT_MSG(fabs(ref[r] - s) <= (double)(nb + 2) * 0x1p-23 * sa, "row %lld: %.9g vs %.9g", (long long)r,
                       ref[r], s);
        }
        for (int64_t r = 0; r < rows; r++) { /* rows, from block 1 on */
            const int64_t c0 = nb > 1 ? kb : 0;
            hmti_dequantize_row(type, w + (size_t)r * rb, deq, cols);
            hmti_q_il_dequant(type, rows, cols, il, r, c0 / be, (cols - c0) / be, row);
            EXPECT_MSG(memcmp(row, deq + c0, (size_t)(cols - c0) * sizeof(float)) == 0, "dequant row %lld",
                       (long long)r);
        }
        for (int64_t g = 0; g < rows; g += 16) { /* whole groups column-major; nothing else */
            const int whole = g + 16 <= rows16;
            /* b0, nb: 32-column blocks for every type (the K-quants: whole super-blocks only) */
            if (kq) ck_assert_int_eq(hmti_q_il_dequant16(type, rows, cols, il, g, 1, 7, deq, 16), 0);
            ck_assert_int_eq(hmti_q_il_dequant16(type, rows, cols, il, g, 0, cols / 32, deq, 16), whole);
            ck_assert_int_eq(hmti_q_il_dequant16(type, rows, cols, il, g + 1, 0, cols / 32, deq, 16), 0);
            for (int i = 0; i < 16 && whole; i++) {
                hmti_dequantize_row(type, w + (size_t)(g + i) * rb, row, cols);
                for (int64_t c = 0; c < cols; c++)
                    EXPECT_MSG(memcmp(&deq[c * 16 + i], &row[c], sizeof(float)) == 0, "dequant16 row %lld col %lld",
                               (long long)(g + i), (long long)c);
            }
        }
        free(w), free(il), free(x), free(y), free(ref), free(deq), free(row), free(act);
    }
}
END_TEST

/* The decode path's 4 streams a share (hmti_q_il_stream_min types,
 * repacked, one input row): bit-identical to the per-part kernels, on 1-3
 * threads, with quarters that cross a part boundary on a group (512 | 144
 * rows) or inside one (40 | 600) and a last group cut short (597 rows).
 * Q4_0 takes them only when each stream holds 256 KiB or more: its shapes
 * are that large at 3 threads (checked, so that they stay so). */
START_TEST(decode_four_streams) {
    const uint32_t types[] = {HMTI_T_F16, HMTI_T_BF16, HMTI_T_Q4_0};
    uint64_t seed = 4444;
    for (int ti = 0; ti < 3; ti++) {
        const uint32_t t = types[ti], tt[2] = {t, t};
        const int64_t min = hmti_q_il_stream_min(t);
        if (min < 0) continue; /* no such kernels on this CPU */
        const int big = t == HMTI_T_Q4_0;
        const int64_t shapes[2][3][2] = {{{597, 0}, {512, 144}, {40, 600}}, {{1429, 0}, {1024, 400}, {40, 1400}}};
        const int64_t cols = big ? 4096 : 288;
        for (int si = 0; si < 3; si++) {
            const int64_t *sh = shapes[big][si];
            if (big) ck_assert_int_ge((sh[0] + sh[1]) * (int64_t)hmti_qrow_bytes(t, cols) / (4 * 3), min);
            fixture f;
            fixture_make(&f, sh[1] ? 2 : 1, tt, sh, cols, &seed);
            hmti_arena arena = {0};
            ck_assert_int_gt(hmti_matrix_repack(&f.m, &arena), 0);
            for (int threads = 1; threads <= 3; threads++) check_case(&f, threads, 1, 4, 1, &seed);
            fixture_free(&f);
            hmti_arena_free(&arena);
        }
    }
}
END_TEST

START_TEST(first_nonfinite) {
    uint64_t seed = 7;
    for (int i = 0; i < N_TYPES; i++) {
        const uint32_t t = TYPES[i];
        const hmti_qtraits *tr = hmti_qtraits_of(t);
        const int64_t n = 1024;
        uint8_t *w = random_rows(t, 1, n, &seed);
        ck_assert_int_eq(hmti_quant_first_nonfinite(t, w, n, NULL), -1);
        if (tr->block_elems == 1) {
            /* the vector scans test 64 or 128 elements per turn: before, at
             * and past turn edges, in the scalar tail (n = 1021), and the
             * first of two */
            const size_t es = (size_t)tr->block_bytes;
            const int64_t m = 1021, pos[] = {0, 5, 63, 64, 127, 128, 129, 255, 256, 700, 1019, 1020};
            uint8_t *bad = random_rows(t, 1, m, &seed);
            ck_assert_int_eq(hmti_quant_first_nonfinite(t, bad, m, NULL), -1);
            for (int k = (int)(sizeof pos / sizeof pos[0]) - 1; k >= 0; k--) { /* last first: each new one is first */
                if (t == HMTI_T_F32) {
                    const float nan = k % 2 ? NAN : -INFINITY;
                    memcpy(bad + pos[k] * es, &nan, 4);
                } else {
                    const uint16_t inf = t == HMTI_T_F16 ? (k % 2 ? 0x7C00 : 0xFE01) : (k % 2 ? 0x7F80 : 0xFFC1);
                    memcpy(bad + pos[k] * es, &inf, 2);
                }
                ck_assert_int_eq(hmti_quant_first_nonfinite(t, bad, m, NULL), pos[k]);
            }
            free(bad);
        } else {
            int d_off, m_off;
            f16_fields(t, &d_off, &m_off);
            const uint16_t inf = 0xFC00, nan = 0x7E01;
            memcpy(w + 3 * (size_t)tr->block_bytes + d_off, &inf, 2);
            ck_assert_int_eq(hmti_quant_first_nonfinite(t, w, n, NULL), 3 * tr->block_elems);
            if (m_off >= 0) {
                memcpy(w + 1 * (size_t)tr->block_bytes + m_off, &nan, 2);
                ck_assert_int_eq(hmti_quant_first_nonfinite(t, w, n, NULL), tr->block_elems);
            }
        }
        free(w);
    }
}
END_TEST

START_TEST(refusals) {
    hmti_matrix m;
    const uint8_t buf[64] = {0};
    const void *data[1] = {buf};
    const uint32_t bad[] = {9, 16, 15};
    const int64_t rows[1] = {1};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(hmti_matrix_stored(&m, 1, data, &bad[i], rows, 32), HMT_E_UNSUPPORTED);
    const uint32_t q4k = HMTI_T_Q4_K, q40 = HMTI_T_Q4_0;
    ck_assert_int_eq(hmti_matrix_stored(&m, 1, data, &q4k, rows, 32), HMT_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(hmti_tls_errmsg(), "Q4_K"));
    ck_assert_int_eq(hmti_matrix_stored(&m, 1, data, &q40, rows, 48), HMT_E_UNSUPPORTED);
    ck_assert_int_eq(hmti_matrix_stored(&m, 0, data, &q40, rows, 32), HMT_E_INVAL);
    ck_assert_int_eq(hmti_matrix_stored(&m, 1, data, &q40, rows, 32), HMT_OK);
    ck_assert_int_eq(m.n_parts, 1);
    ck_assert_uint_eq(m.nbytes, 18);
    hmti_matrix_release(&m);
}
END_TEST

Suite *hmt_suite_matrixq(void);
Suite *hmt_suite_matrixq(void) {
    Suite *s = suite_create("matrixq");
    TCase *tc = tcase_create("stored");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, every_type_both_paths, 0, N_TYPES);
    tcase_add_test(tc, multi_row_kernels_equal_single_rows);
    tcase_add_loop_test(tc, il16_layout, 0, 12); /* Q8_0, Q4_0, Q5_0, F16, BF16, Q6_K, Q4_K, Q5_K, Q4_1, Q5_1, IQ4_NL, IQ4_XS */
    tcase_add_test(tc, decode_four_streams);
    tcase_add_test(tc, first_nonfinite);
    tcase_add_test(tc, refusals);
    suite_add_tcase(s, tc);
    return s;
}
