/* AVX-512 (F/BW/VL/DQ) dot kernels for F32 / F16 / BF16 rows against the
 * float activation: 16 lanes, 4 accumulators, masked tail. BF16 is widened
 * with a shift (exact), F16 with vcvtph2ps, so the weights are used exactly;
 * AVX512-BF16's vdpbf16ps would round the activation to bf16 and is not
 * used. The integer types run the AVX2 or VNNI kernels at this level. */
#include <immintrin.h>

#include "kernels/cpu.h"
#include "kernels/quant_impl.h"

AVX512_TARGET static inline __m512 ld_f32(const uint8_t *p, __mmask16 k) {
    return _mm512_maskz_loadu_ps(k, p);
}
AVX512_TARGET static inline __m512 ld_f16(const uint8_t *p, __mmask16 k) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, p));
}
AVX512_TARGET static inline __m512 ld_bf16(const uint8_t *p, __mmask16 k) {
    __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

#define FLOAT_DOT512(fname, LOAD, esize)                                                      \
    AVX512_TARGET static float fname(int64_t n, const void *w, const void *act) {            \
        const uint8_t *p = w;                                                                 \
        const float *x = act;                                                                 \
        const __mmask16 all = 0xFFFF;                                                         \
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                           \
        int64_t i = 0;                                                                        \
        for (; i + 64 <= n; i += 64) {                                                        \
            s0 = _mm512_fmadd_ps(LOAD(p + (i + 0) * esize, all), _mm512_loadu_ps(x + i), s0);       \
            s1 = _mm512_fmadd_ps(LOAD(p + (i + 16) * esize, all), _mm512_loadu_ps(x + i + 16), s1); \
            s2 = _mm512_fmadd_ps(LOAD(p + (i + 32) * esize, all), _mm512_loadu_ps(x + i + 32), s2); \
            s3 = _mm512_fmadd_ps(LOAD(p + (i + 48) * esize, all), _mm512_loadu_ps(x + i + 48), s3); \
        }                                                                                     \
        for (; i < n; i += 16) {                                                              \
            __mmask16 k = n - i >= 16 ? all : (__mmask16)((1u << (n - i)) - 1u);              \
            s0 = _mm512_fmadd_ps(LOAD(p + i * esize, k), _mm512_maskz_loadu_ps(k, x + i), s0); \
        }                                                                                     \
        return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3))); \
    }

FLOAT_DOT512(dot_f32_avx512, ld_f32, 4)
FLOAT_DOT512(dot_f16_avx512, ld_f16, 2)
FLOAT_DOT512(dot_bf16_avx512, ld_bf16, 2)

hmti_vec_dot_fn hmti_qdot_avx512(uint32_t type) {
    switch (type) {
    case HMTI_T_F32: return dot_f32_avx512;
    case HMTI_T_F16: return dot_f16_avx512;
    case HMTI_T_BF16: return dot_bf16_avx512;
    default: return NULL;
    }
}

/* 4 rows (w, w + stride, ...) against one activation: each x vector loaded
 * once for the 4, and each row's arithmetic exactly the single-row kernel's
 * (same 4 accumulators, same tail into the first, same reduction), so the
 * results are bit-identical to 4 calls of it. Written out register by
 * register: an array of accumulators is kept in memory at -O2. */
#define ROW4_FMA(LOAD, esize, o, k, xv, a0, a1, a2, a3)                                      \
    do {                                                                                      \
        a0 = _mm512_fmadd_ps(LOAD(p0 + (o) * esize, k), xv, a0);                              \
        a1 = _mm512_fmadd_ps(LOAD(p1 + (o) * esize, k), xv, a1);                              \
        a2 = _mm512_fmadd_ps(LOAD(p2 + (o) * esize, k), xv, a2);                              \
        a3 = _mm512_fmadd_ps(LOAD(p3 + (o) * esize, k), xv, a3);                              \
    } while (0)
#define SUM4(a, b, c, d) _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d)))

#define FLOAT_DOT4_512(fname, LOAD, esize)                                                    \
    AVX512_TARGET static void fname(int64_t n, const void *w, size_t stride, const void *act, \
                                    float *y) {                                               \
        const uint8_t *p0 = w, *p1 = p0 + stride, *p2 = p1 + stride, *p3 = p2 + stride;       \
        const float *x = act;                                                                 \
        const __mmask16 all = 0xFFFF;                                                         \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0; /* row 0's 4 sums */     \
        __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;        \
        __m512 d0 = a0, d1 = a0, d2 = a0, d3 = a0;                                            \
        int64_t i = 0;                                                                        \
        for (; i + 64 <= n; i += 64) {                                                        \
            hmti_pf_span(p0 + 4 * i * esize, 4 * 64 * esize);                                 \
            const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);        \
            const __m512 x2 = _mm512_loadu_ps(x + i + 32), x3 = _mm512_loadu_ps(x + i + 48);   \
            ROW4_FMA(LOAD, esize, i, all, x0, a0, b0, c0, d0);                                \
            ROW4_FMA(LOAD, esize, i + 16, all, x1, a1, b1, c1, d1);                           \
            ROW4_FMA(LOAD, esize, i + 32, all, x2, a2, b2, c2, d2);                           \
            ROW4_FMA(LOAD, esize, i + 48, all, x3, a3, b3, c3, d3);                           \
        }                                                                                     \
        for (; i < n; i += 16) {                                                              \
            __mmask16 k = n - i >= 16 ? all : (__mmask16)((1u << (n - i)) - 1u);              \
            const __m512 xv = _mm512_maskz_loadu_ps(k, x + i);                                \
            ROW4_FMA(LOAD, esize, i, k, xv, a0, b0, c0, d0);                                  \
        }                                                                                     \
        y[0] = SUM4(a0, a1, a2, a3);                                                          \
        y[1] = SUM4(b0, b1, b2, b3);                                                          \
        y[2] = SUM4(c0, c1, c2, c3);                                                          \
        y[3] = SUM4(d0, d1, d2, d3);                                                          \
    }

FLOAT_DOT4_512(dot4_f32_avx512, ld_f32, 4)
FLOAT_DOT4_512(dot4_f16_avx512, ld_f16, 2)
FLOAT_DOT4_512(dot4_bf16_avx512, ld_bf16, 2)

hmti_vec_dot4_fn hmti_qdot4_avx512(uint32_t type) {
    switch (type) {
    case HMTI_T_F32: return dot4_f32_avx512;
    case HMTI_T_F16: return dot4_f16_avx512;
    case HMTI_T_BF16: return dot4_bf16_avx512;
    default: return NULL;
    }
}

/* nr = 1 or 2 rows (w, w + stride) against na <= 16 activation rows
 * (x + a * ldx; row q's result at y[a * ldy + q]), two activations at a
 * time: each (row, activation) keeps the single-row kernel's 4 accumulators
 * and their FMAs in the same order (accumulator k takes elements 64 t + 16 k
 * .. + 15, the masked tail goes into the first, the same reduction), so the
 * results are its bits. 64 columns cost 8 weight and 8 activation loads
 * for 32 FMAs, 16 accumulators in registers; the activations stream once
 * per pair, the two rows (a few KiB) are re-read from L1. */
#define FLOAT_DOTN_512(fname, LOAD, esize)                                                     \
    AVX512_TARGET static inline __attribute__((always_inline)) void fname##_r(                 \
        const int NR, const int R, int64_t n, const uint8_t *p, size_t stride, const float *x,  \
        int64_t ldx, int pf, float *y, int64_t ldy) {                                          \
        const __mmask16 all = 0xFFFF;                                                          \
        __m512 s[2][2][4];                                                                     \
        _Pragma("GCC unroll 2") for (int q = 0; q < NR; q++)                                   \
            _Pragma("GCC unroll 2") for (int a = 0; a < R; a++)                                \
                _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) s[q][a][k] = _mm512_setzero_ps(); \
        int64_t i = 0;                                                                         \
        for (; i + 64 <= n; i += 64)                                                           \
            _Pragma("GCC unroll 2") for (int q = 0; q < NR; q++) {                             \
                if (pf) hmti_pf_span(p + q * stride + i * esize, 64 * esize);                  \
                _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {                          \
                    const __m512 wv = LOAD(p + q * stride + (i + 16 * k) * esize, all);        \
                    _Pragma("GCC unroll 2") for (int a = 0; a < R; a++)                        \
                        s[q][a][k] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + a * ldx + i + 16 * k), s[q][a][k]); \
                }                                                                              \
            }                                                                                  \
        for (; i < n; i += 16) {                                                               \
            __mmask16 m = n - i >= 16 ? all : (__mmask16)((1u << (n - i)) - 1u);               \
            _Pragma("GCC unroll 2") for (int q = 0; q < NR; q++) {                             \
                const __m512 wv = LOAD(p + q * stride + i * esize, m);                         \
                _Pragma("GCC unroll 2") for (int a = 0; a < R; a++)                            \
                    s[q][a][0] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + a * ldx + i), s[q][a][0]); \
            }                                                                                  \
        }                                                                                      \
        _Pragma("GCC unroll 2") for (int q = 0; q < NR; q++)                                   \
            _Pragma("GCC unroll 2") for (int a = 0; a < R; a++)                                \
                y[a * ldy + q] = SUM4(s[q][a][0], s[q][a][1], s[q][a][2], s[q][a][3]);          \
    }                                                                                          \
    AVX512_TARGET static void fname(int64_t n, const void *w, size_t stride, int nr, const float *x, \
                                    int64_t ldx, int na, float *y, int64_t ldy) {              \
        for (int a = 0; a < na; a += 2) { /* the first pair brings the rows: it prefetches */ \
            const float *xa = x + a * ldx;                                                     \
            float *ya = y + a * ldy;                                                           \
            switch ((na - a >= 2 ? 2 : 1) + 2 * (nr == 2)) {                                   \
            case 4: fname##_r(2, 2, n, w, stride, xa, ldx, a == 0, ya, ldy); break;            \
            case 3: fname##_r(2, 1, n, w, stride, xa, ldx, a == 0, ya, ldy); break;            \
            case 2: fname##_r(1, 2, n, w, stride, xa, ldx, a == 0, ya, ldy); break;            \
            default: fname##_r(1, 1, n, w, stride, xa, ldx, a == 0, ya, ldy); break;           \
            }                                                                                  \
        }                                                                                      \
    }

FLOAT_DOTN_512(dotn_f32_avx512, ld_f32, 4)
FLOAT_DOTN_512(dotn_f16_avx512, ld_f16, 2)
FLOAT_DOTN_512(dotn_bf16_avx512, ld_bf16, 2)

hmti_vec_dotn_fn hmti_qdotn_avx512(uint32_t type) {
    switch (type) {
    case HMTI_T_F32: return dotn_f32_avx512;
    case HMTI_T_F16: return dotn_f16_avx512;
    case HMTI_T_BF16: return dotn_bf16_avx512;
    default: return NULL;
    }
}
