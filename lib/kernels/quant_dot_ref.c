/* Portable dot products of one weight row with a quantized (or float)
 * activation: the oracle the SIMD paths are tested against. Per block the
 * integer part is exact (int32); scales are applied in float, blocks summed
 * in order into one float. */
#include "kernels/quant_impl.h"

#define Q8A(act) ((const hmti_q8_32 *)(act))
#define Q8K(act) ((const hmti_q8_256 *)(act))

/* ---- F32 / F16 / BF16 against the float activation ------------------------- */
static float dot_f32(int64_t n, const void *w, const void *act) {
    const uint8_t *a = w;
    const float *x = act;
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, a + 4 * i, 4); /* rows need no alignment in the dot kernels */
        s += v * x[i];
    }
    return s;
}

static float dot_f16(int64_t n, const void *w, const void *act) {
    const uint8_t *a = w;
    const float *x = act;
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += hmti_qf16(a + 2 * i) * x[i];
    return s;
}

static float dot_bf16(int64_t n, const void *w, const void *act) {
    const uint8_t *a = w;
    const float *x = act;
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, a + 2 * i, 2);
        s += hmti_bf16_to_f32(h) * x[i];
    }
    return s;
}

/* ---- 32-element blocks against hmti_q8_32 -------------------------------------- */
/* q[32] signed weight integers of a block -> sum q * a (exact). */
static int idot32(const int *q, const int8_t *a) {
    int s = 0;
    for (int j = 0; j < 32; j++) s += q[j] * a[j];
    return s;
}

static void nib32(const uint8_t *qs, int off, int *q) {
    for (int j = 0; j < 16; j++) {
        q[j] = (qs[j] & 15) + off;
        q[j + 16] = (qs[j] >> 4) + off;
    }
}

static void q5bits(const uint8_t *qh4, const uint8_t *qs, int off, int *q) {
    const uint32_t qh = hmti_qu32(qh4);
    for (int j = 0; j < 16; j++) {
        q[j] = ((qs[j] & 15) | (int)(((qh >> j) & 1) << 4)) + off;
        q[j + 16] = ((qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4)) + off;
    }
}

static float dot_q4_0(int64_t n, const void *w, const void *act) {
    const uint8_t *b = w;
    const hmti_q8_32 *a = Q8A(act);
    float s = 0.0f;
    for (int64_t i = 0; i < n / 32; i++, b += 18) {
        int q[32];
        nib32(b + 2, -8, q);
        s += hmti_qf16(b) * a[i].d * (float)idot32(q, a[i].qs);
    }
    return s;
}

static float dot_q4_1(int64_t n, const void *w, const void *act) {
    const uint8_t *b = w;
    const hmti_q8_32 *a = Q8A(act);
    float s = 0.0f;
    for (int64_t i = 0; i < n / 32; i++, b += 20) {
        int q[32];
        nib32(b + 4, 0, q);
        s += hmti_qf16(b) * a[i].d * (float)idot32(q, a[i].qs) +
             hmti_qf16(b + 2) * a[i].d * (float)(a[i].sum[0] + a[i].sum[1]);
    }
    return s;
}

static float dot_q5_0(int64_t n, const void *w, const void *act) {
    const uint8_t *b = w;
    const hmti_q8_32 *a = Q8A(act);
    float s = 0.0f;
    for (int64_t i = 0; i < n / 32; i++, b += 22) {
        int q[32];
        q5bits(b + 2, b + 6, -16, q);
        s += hmti_qf16(b) * a[i].d * (float)idot32(q, a[i].qs);
    }
    return s;
}

static float dot_q5_1(int64_t n, const void *w, const void *act) {
    const uint8_t *b = w;
    const hmti_q8_32 *a = Q8A(act);
    float s = 0.0f;
    for (int64_t i = 0; i < n / 32; i++, b += 24) {
        int q[32];
        q5bits(b + 4, b + 8, 0, q);
        s += hmti_qf16(b) * a[i].d * (float)idot32(q, a[i].qs) +
             hmti_qf16(b + 2) * a[i].d * (float)(a[i].sum[0] + a[i].sum[1]);
    }
    return s;
}

static float dot_q8_0(int64_t n, const void *w, const void *act) {
    const uint8_t *b = w;
    const hmti_q8_32 *a = Q8A(act);
    float s = 0.0f;
    for (int64_t i = 0; i < n / 32; i++, b += 34) {
        int q[32];
        for (int j = 0; j < 32; j++) q[j] = (int8_t)b[2 + j];
        s += hmti_qf16(b) * a[i].d * (float)idot32(q, a[i].qs);
    }
    return s;
}

static float dot_iq4_nl(int64_t n, const void *w, const void *act) {
    const uint8_t *b = w;
    const hmti_q8_32 *a = Q8A(act);
    float s = 0.0f;
    for (int64_t i = 0; i < n / 32; i++, b += 18) {
        int q[32];
        for (int j = 0; j < 16; j++) {
            q[j] = hmti_iq4_values[b[2 + j] & 15];
            q[j + 16] = hmti_iq4_values[b[2 + j] >> 4];
        }
        s += hmti_qf16(b) * a[i].d * (float)idot32(q, a[i].qs);
    }
    return s;
}

/* ---- 256-element super-blocks against hmti_q8_256 -------------------------------- */
/* sum over sub-blocks of 16 of scale[g] * sum(q * a) (exact in int32 for
 * every type here: |q| <= 127, |scale| <= 128). */
static int idot256_16(const int *q, const int *scale, const int8_t *a) {
    int s = 0;
    for (int g = 0; g < 16; g++) {
        int t = 0;
        for (int j = 0; j < 16; j++) t += q[16 * g + j] * a[16 * g + j];
        s += scale[g] * t;
    }
    return s;
}

static float dot_q2_k(int64_t n, const void *w, const void *act) {
    const uint8_t *b = w;
    const hmti_q8_256 *a = Q8K(act);
    float s = 0.0f;
    for (int64_t i = 0; i < n / 256; i++, b += 84) {
        int q[256], sc[16], msum = 0;
        for (int e = 0; e < 256; e++) q[e] = (b[16 + 32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        for (int g = 0; g < 16; g++) {
            sc[g] = b[g] & 15;
            msum += (b[g] >> 4) * a[i].sum[g];
        }
        s += hmti_qf16(b + 80) * a[i].d * (float)idot256_16(q, sc, a[i].qs) -
             hmti_qf16(b + 82) * a[i].d * (float)msum;
    }
    return s;
}

static float dot_q3_k(int64_t n, const void *w, const void *act) {
    const uint8_t *b = w;
    const hmti_q8_256 *a = Q8K(act);
    float s = 0.0f;
    for (int64_t i = 0; i < n / 256; i++, b += 110) {
        int q[256], sc[16];
        for (int e = 0; e < 256; e++) {
            const int nn = e / 128, j = (e % 128) / 32, l = e % 32;
            q[e] = ((b[32 + 32 * nn + l] >> (2 * j)) & 3) - (((b[l] >> (4 * nn + j)) & 1) ? 0 : 4);
        }
        for (int g = 0; g < 16; g++) sc[g] = hmti_q3k_scale(g, b + 96);
        s += hmti_qf16(b + 108) * a[i].d * (float)idot256_16(q, sc, a[i].qs);
    }
    return s;
}

static float dot_q45_k(int64_t n, const void *w, const void *act, int five) {
    const uint8_t *b = w;
    const hmti_q8_256 *a = Q8K(act);
    const int bytes = five ? 176 : 144;
    float s = 0.0f;
    for (int64_t i = 0; i < n / 256; i++, b += bytes) {
        const uint8_t *qh = b + 16, *qs = b + (five ? 48 : 16);
        int isum = 0, msum = 0;
        for (int c = 0; c < 4; c++)
            for (int h = 0; h < 2; h++) {
                int sc, m, t = 0;
                const int j = 2 * c + h;
                hmti_k_scale_min(j, b + 4, &sc, &m);
                for (int l = 0; l < 32; l++) {
                    int q = (qs[32 * c + l] >> (4 * h)) & 15;
                    if (five) q += ((qh[l] >> j) & 1) << 4;
                    t += q * a[i].qs[32 * j + l];
                }
                isum += sc * t;
                msum += m * (a[i].sum[2 * j] + a[i].sum[2 * j + 1]);
            }
        s += hmti_qf16(b) * a[i].d * (float)isum - hmti_qf16(b + 2) * a[i].d * (float)msum;
    }
    return s;
}

static float dot_q4_k(int64_t n, const void *w, const void *act) { return dot_q45_k(n, w, act, 0); }
static float dot_q5_k(int64_t n, const void *w, const void *act) { return dot_q45_k(n, w, act, 1); }

static float dot_q6_k(int64_t n, const void *w, const void *act) {
    const uint8_t *b = w;
    const hmti_q8_256 *a = Q8K(act);
    float s = 0.0f;
    for (int64_t i = 0; i < n / 256; i++, b += 210) {
        int q[256], sc[16];
        for (int e = 0; e < 256; e++) {
            const int nn = e / 128, k = (e % 128) / 32, l = e % 32;
            const int lo = (b[64 * nn + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 15;
            const int hi = (b[128 + 32 * nn + l] >> (2 * k)) & 3;
            q[e] = (lo | (hi << 4)) - 32;
        }
        for (int g = 0; g < 16; g++) sc[g] = (int8_t)b[192 + g];
        s += hmti_qf16(b + 208) * a[i].d * (float)idot256_16(q, sc, a[i].qs);
    }
    return s;
}

static float dot_iq4_xs(int64_t n, const void *w, const void *act) {
    const uint8_t *b = w;
    const hmti_q8_256 *a = Q8K(act);
    float s = 0.0f;
    for (int64_t i = 0; i < n / 256; i++, b += 136) {
        int isum = 0;
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *qs = b + 8 + 16 * ib;
            const int8_t *x = a[i].qs + 32 * ib;
            int t = 0;
            for (int j = 0; j < 16; j++)
                t += hmti_iq4_values[qs[j] & 15] * x[j] + hmti_iq4_values[qs[j] >> 4] * x[j + 16];
            isum += hmti_iq4xs_scale(ib, b) * t;
        }
        s += hmti_qf16(b) * a[i].d * (float)isum;
    }
    return s;
}

hmti_vec_dot_fn hmti_qdot_ref(uint32_t type) {
    switch (type) {
    case HMTI_T_F32: return dot_f32;
    case HMTI_T_F16: return dot_f16;
    case HMTI_T_BF16: return dot_bf16;
    case HMTI_T_Q4_0: return dot_q4_0;
    case HMTI_T_Q4_1: return dot_q4_1;
    case HMTI_T_Q5_0: return dot_q5_0;
    case HMTI_T_Q5_1: return dot_q5_1;
    case HMTI_T_Q8_0: return dot_q8_0;
    case HMTI_T_Q2_K: return dot_q2_k;
    case HMTI_T_Q3_K: return dot_q3_k;
    case HMTI_T_Q4_K: return dot_q4_k;
    case HMTI_T_Q5_K: return dot_q5_k;
    case HMTI_T_Q6_K: return dot_q6_k;
    case HMTI_T_IQ4_NL: return dot_iq4_nl;
    case HMTI_T_IQ4_XS: return dot_iq4_xs;
    default: return NULL;
    }
}
