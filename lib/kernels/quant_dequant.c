/* Dequantization of GGML weight blocks to F32, portable C. Each formula is
 * float32 in the order GGML's dequantize_row_* evaluates it ((d * sc) * q -
 * (dmin * m), two roundings), so the result is bit-exact to
 * tests/reference/quants_ref.py. Contraction into FMA would change the last
 * bit: GCC does not contract in ISO C mode (-std=c11), clang is told so. */
#include "kernels/cpu.h"
#include "kernels/dequant.h"
#include "kernels/quant_impl.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

static void dq_q4_0(const uint8_t *b, float *y) {
    const float d = hmti_qf16(b);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((b[2 + j] & 15) - 8) * d;
        y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
    }
}

static void dq_q4_1(const uint8_t *b, float *y) {
    const float d = hmti_qf16(b), m = hmti_qf16(b + 2);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(b[4 + j] & 15) * d + m;
        y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
    }
}

static void dq_q5(const uint8_t *qh4, const uint8_t *qs, int q[32]) {
    const uint32_t qh = hmti_qu32(qh4);
    for (int j = 0; j < 16; j++) {
        q[j] = (qs[j] & 15) | (int)(((qh >> j) & 1) << 4);
        q[j + 16] = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
    }
}

static void dq_q5_0(const uint8_t *b, float *y) {
    const float d = hmti_qf16(b);
    int q[32];
    dq_q5(b + 2, b + 6, q);
    for (int j = 0; j < 32; j++) y[j] = (float)(q[j] - 16) * d;
}

static void dq_q5_1(const uint8_t *b, float *y) {
    const float d = hmti_qf16(b), m = hmti_qf16(b + 2);
    int q[32];
    dq_q5(b + 4, b + 8, q);
    for (int j = 0; j < 32; j++) y[j] = (float)q[j] * d + m;
}

static void dq_q8_0(const uint8_t *b, float *y) {
    const float d = hmti_qf16(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

static void dq_iq4_nl(const uint8_t *b, float *y) {
    const float d = hmti_qf16(b);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)hmti_iq4_values[b[2 + j] & 15] * d;
        y[j + 16] = (float)hmti_iq4_values[b[2 + j] >> 4] * d;
    }
}

/* Q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin. */
static void dq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *sc = b, *qs = b + 16;
    const float d = hmti_qf16(b + 80), dmin = hmti_qf16(b + 82);
    for (int e = 0; e < 256; e++) {
        const int n = e / 128, j = (e % 128) / 32, l = e % 32, s = sc[e / 16];
        const float dl = d * (float)(s & 15), ml = dmin * (float)(s >> 4);
        y[e] = dl * (float)((qs[32 * n + l] >> (2 * j)) & 3) - ml;
    }
}

/* Q3_K: hmask[32], qs[64], scales[12], d. */
static void dq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hm = b, *qs = b + 32, *scb = b + 96;
    const float d = hmti_qf16(b + 108);
    for (int e = 0; e < 256; e++) {
        const int n = e / 128, j = (e % 128) / 32, l = e % 32;
        const float dl = d * (float)hmti_q3k_scale(e / 16, scb);
        const int q = ((qs[32 * n + l] >> (2 * j)) & 3) - (((hm[l] >> (4 * n + j)) & 1) ? 0 : 4);
        y[e] = dl * (float)q;
    }
}

/* Q4_K: d, dmin, scales[12], qs[128]. */
static void dq_q4_k(const uint8_t *b, float *y) {
    const float d = hmti_qf16(b), dmin = hmti_qf16(b + 2);
    const uint8_t *qs = b + 16;
    for (int c = 0; c < 4; c++)
        for (int h = 0; h < 2; h++) {
            int sc, m;
            hmti_k_scale_min(2 * c + h, b + 4, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            for (int l = 0; l < 32; l++)
                y[64 * c + 32 * h + l] = d1 * (float)((qs[32 * c + l] >> (4 * h)) & 15) - m1;
        }
}

/* Q5_K: d, dmin, scales[12], qh[32], qs[128]. */
static void dq_q5_k(const uint8_t *b, float *y) {
    const float d = hmti_qf16(b), dmin = hmti_qf16(b + 2);
    const uint8_t *qh = b + 16, *qs = b + 48;
    for (int c = 0; c < 4; c++)
        for (int h = 0; h < 2; h++) {
            int sc, m;
            hmti_k_scale_min(2 * c + h, b + 4, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            for (int l = 0; l < 32; l++) {
                int q = ((qs[32 * c + l] >> (4 * h)) & 15) + (((qh[l] >> (2 * c + h)) & 1) << 4);
                y[64 * c + 32 * h + l] = d1 * (float)q - m1;
            }
        }
}

/* Q6_K: ql[128], qh[64], scales[16] (int8), d. */
static void dq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const float d = hmti_qf16(b + 208);
    for (int e = 0; e < 256; e++) {
        const int n = e / 128, k = (e % 128) / 32, l = e % 32;
        const int lo = (ql[64 * n + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 15;
        const int hi = (qh[32 * n + l] >> (2 * k)) & 3;
        y[e] = d * (float)sc[e / 16] * (float)((lo | (hi << 4)) - 32);
    }
}

/* IQ4_XS: d, scales_h (u16), scales_l[4], qs[128]. */
static void dq_iq4_xs(const uint8_t *b, float *y) {
    const float d = hmti_qf16(b);
    const uint8_t *qs = b + 8;
    for (int ib = 0; ib < 8; ib++) {
        const float dl = d * (float)hmti_iq4xs_scale(ib, b);
        for (int j = 0; j < 16; j++) {
            y[32 * ib + j] = dl * (float)hmti_iq4_values[qs[16 * ib + j] & 15];
            y[32 * ib + j + 16] = dl * (float)hmti_iq4_values[qs[16 * ib + j] >> 4];
        }
    }
}

typedef void (*block_fn)(const uint8_t *, float *);

static block_fn block_of(uint32_t type) {
    switch (type) {
    case HMTI_T_Q4_0: return dq_q4_0;
    case HMTI_T_Q4_1: return dq_q4_1;
    case HMTI_T_Q5_0: return dq_q5_0;
    case HMTI_T_Q5_1: return dq_q5_1;
    case HMTI_T_Q8_0: return dq_q8_0;
    case HMTI_T_Q2_K: return dq_q2_k;
    case HMTI_T_Q3_K: return dq_q3_k;
    case HMTI_T_Q4_K: return dq_q4_k;
    case HMTI_T_Q5_K: return dq_q5_k;
    case HMTI_T_Q6_K: return dq_q6_k;
    case HMTI_T_IQ4_NL: return dq_iq4_nl;
    case HMTI_T_IQ4_XS: return dq_iq4_xs;
    default: return NULL;
    }
}

void hmti_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n) {
    const hmti_qtraits *t = hmti_qtraits_of(type);
    if (!t || n <= 0 || n % t->block_elems) return;
    if (t->block_elems == 1) { /* F32, F16, BF16: the exact converters */
        hmti_row_to_f32(src, type, dst, n);
        return;
    }
    const block_fn f = block_of(type);
    if (!f) return;
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / t->block_elems; i++, b += t->block_bytes, dst += t->block_elems)
        f(b, dst);
}

/* ---- per-type row functions and the dispatch ------------------------------------ */
#define ROW_FN(name, type)                                                                    \
    static void name(const void *src, float *dst, int64_t n) {                                \
        hmti_dequantize_row(type, src, dst, n);                                               \
    }
ROW_FN(row_f32, HMTI_T_F32)
ROW_FN(row_f16, HMTI_T_F16)
ROW_FN(row_bf16, HMTI_T_BF16)
ROW_FN(row_q4_0, HMTI_T_Q4_0)
ROW_FN(row_q4_1, HMTI_T_Q4_1)
ROW_FN(row_q5_0, HMTI_T_Q5_0)
ROW_FN(row_q5_1, HMTI_T_Q5_1)
ROW_FN(row_q8_0, HMTI_T_Q8_0)
ROW_FN(row_q2_k, HMTI_T_Q2_K)
ROW_FN(row_q3_k, HMTI_T_Q3_K)
ROW_FN(row_q4_k, HMTI_T_Q4_K)
ROW_FN(row_q5_k, HMTI_T_Q5_K)
ROW_FN(row_q6_k, HMTI_T_Q6_K)
ROW_FN(row_iq4_nl, HMTI_T_IQ4_NL)
ROW_FN(row_iq4_xs, HMTI_T_IQ4_XS)

hmti_dequant_fn hmti_dequant_ref(uint32_t type) {
    switch (type) {
    case HMTI_T_F32: return row_f32;
    case HMTI_T_F16: return row_f16;
    case HMTI_T_BF16: return row_bf16;
    case HMTI_T_Q4_0: return row_q4_0;
    case HMTI_T_Q4_1: return row_q4_1;
    case HMTI_T_Q5_0: return row_q5_0;
    case HMTI_T_Q5_1: return row_q5_1;
    case HMTI_T_Q8_0: return row_q8_0;
    case HMTI_T_Q2_K: return row_q2_k;
    case HMTI_T_Q3_K: return row_q3_k;
    case HMTI_T_Q4_K: return row_q4_k;
    case HMTI_T_Q5_K: return row_q5_k;
    case HMTI_T_Q6_K: return row_q6_k;
    case HMTI_T_IQ4_NL: return row_iq4_nl;
    case HMTI_T_IQ4_XS: return row_iq4_xs;
    default: return NULL;
    }
}

hmti_dequant_fn hmti_dequant_path(uint32_t type, int path) {
    hmti_dequant_fn f = NULL;
    if (path >= 2) f = hmti_dequant_avx512(type);
    if (!f && path >= 1) f = hmti_dequant_avx2(type);
    return f ? f : hmti_dequant_ref(type);
}

hmti_dequant_fn hmti_dequant_best(uint32_t type) {
    return hmti_dequant_path(type, hmti_cpu_level());
}
