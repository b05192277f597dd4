/* AVX2 and AVX-512 row dequantizers (dequant.h) and the F32 tile transpose
 * of the prompt path. Each computes the portable formula of quant_dequant.c
 * in the same order with the same roundings: scales as scalar floats
 * ((d * sc), (dmin * m)), then one vector multiply (and subtract) per
 * element; no FMA (ISO C mode does not contract, clang is told so). The f16
 * scales go through vcvtph2ps, exact like hmti_f16_to_f32. */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu.h"
#include "kernels/dequant.h"
#include "kernels/quant_impl.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

AVX2_TARGET static inline float f16s(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

/* ================================ AVX-512 ================================== */
#define L16(p) _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#define CVT(v) _mm512_cvtepi32_ps(v)

AVX512_TARGET static void q4_0_512(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m512i m15 = _mm512_set1_epi32(15), k8 = _mm512_set1_epi32(8);
    for (int64_t i = 0; i < n; i += 32, b += 18, y += 32) {
        const __m512 d = _mm512_set1_ps(f16s(b));
        const __m512i q = L16(b + 2);
        _mm512_storeu_ps(y, _mm512_mul_ps(CVT(_mm512_sub_epi32(_mm512_and_si512(q, m15), k8)), d));
        _mm512_storeu_ps(y + 16, _mm512_mul_ps(CVT(_mm512_sub_epi32(_mm512_srli_epi32(q, 4), k8)), d));
    }
}

AVX512_TARGET static void q8_0_512(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n; i += 32, b += 34, y += 32) {
        const __m512 d = _mm512_set1_ps(f16s(b));
        const __m512i q0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(b + 2)));
        const __m512i q1 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(b + 18)));
        _mm512_storeu_ps(y, _mm512_mul_ps(CVT(q0), d));
        _mm512_storeu_ps(y + 16, _mm512_mul_ps(CVT(q1), d));
    }
}


/* y[0..16) = d1 * (float)q - m1 */
#define KSTORE(y, q, d1, m1) _mm512_storeu_ps(y, _mm512_sub_ps(_mm512_mul_ps(d1, CVT(q)), m1))

AVX512_TARGET static void q4_k_512(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m512i m15 = _mm512_set1_epi32(15);
    for (int64_t i = 0; i < n; i += 256, b += 144, y += 256) {
        const float d = f16s(b), dmin = f16s(b + 2);
        const uint8_t *qs = b + 16;
        for (int c = 0; c < 4; c++) {
            const __m512i qa = L16(qs + 32 * c), qb = L16(qs + 32 * c + 16);
            int sc, m;
            hmti_k_scale_min(2 * c, b + 4, &sc, &m);
            __m512 d1 = _mm512_set1_ps(d * (float)sc), m1 = _mm512_set1_ps(dmin * (float)m);
            KSTORE(y + 64 * c, _mm512_and_si512(qa, m15), d1, m1);
            KSTORE(y + 64 * c + 16, _mm512_and_si512(qb, m15), d1, m1);
            hmti_k_scale_min(2 * c + 1, b + 4, &sc, &m);
            d1 = _mm512_set1_ps(d * (float)sc);
            m1 = _mm512_set1_ps(dmin * (float)m);
            KSTORE(y + 64 * c + 32, _mm512_srli_epi32(qa, 4), d1, m1);
            KSTORE(y + 64 * c + 48, _mm512_srli_epi32(qb, 4), d1, m1);
        }
    }
}

AVX512_TARGET static void q5_k_512(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m512i m15 = _mm512_set1_epi32(15), one = _mm512_set1_epi32(1);
    for (int64_t i = 0; i < n; i += 256, b += 176, y += 256) {
        const float d = f16s(b), dmin = f16s(b + 2);
        const uint8_t *qh = b + 16, *qs = b + 48;
        const __m512i ha = L16(qh), hb = L16(qh + 16);
        for (int c = 0; c < 4; c++) {
            const __m512i qa = L16(qs + 32 * c), qb = L16(qs + 32 * c + 16);
            for (int h = 0; h < 2; h++) {
                int sc, m;
                hmti_k_scale_min(2 * c + h, b + 4, &sc, &m);
                const __m512 d1 = _mm512_set1_ps(d * (float)sc), m1 = _mm512_set1_ps(dmin * (float)m);
                const __m128i sh = _mm_cvtsi32_si128(4 * h), bit = _mm_cvtsi32_si128(2 * c + h);
                const __m512i la = _mm512_and_si512(_mm512_srl_epi32(qa, sh), m15);
                const __m512i lb = _mm512_and_si512(_mm512_srl_epi32(qb, sh), m15);
                const __m512i xa = _mm512_slli_epi32(_mm512_and_si512(_mm512_srl_epi32(ha, bit), one), 4);
                const __m512i xb = _mm512_slli_epi32(_mm512_and_si512(_mm512_srl_epi32(hb, bit), one), 4);
                KSTORE(y + 64 * c + 32 * h, _mm512_add_epi32(la, xa), d1, m1);
                KSTORE(y + 64 * c + 32 * h + 16, _mm512_add_epi32(lb, xb), d1, m1);
            }
        }
    }
}

AVX512_TARGET static void q6_k_512(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m512i m15 = _mm512_set1_epi32(15), m3 = _mm512_set1_epi32(3), k32 = _mm512_set1_epi32(32);
    for (int64_t i = 0; i < n; i += 256, b += 210, y += 256) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        const float d = f16s(b + 208);
        for (int nn = 0; nn < 2; nn++)
            for (int half = 0; half < 2; half++) {
                const int l0 = 16 * half;
                const __m512i h = L16(qh + 32 * nn + l0);
                const __m512i la = L16(ql + 64 * nn + l0), lb = L16(ql + 64 * nn + 32 + l0);
                for (int k = 0; k < 4; k++) {
                    const __m512i lo = _mm512_and_si512(
                        _mm512_srl_epi32((k & 1) ? lb : la, _mm_cvtsi32_si128(4 * (k >> 1))), m15);
                    const __m512i hi = _mm512_and_si512(_mm512_srl_epi32(h, _mm_cvtsi32_si128(2 * k)), m3);
                    const __m512i q = _mm512_sub_epi32(_mm512_or_si512(lo, _mm512_slli_epi32(hi, 4)), k32);
                    const int e = 128 * nn + 32 * k + l0;
                    const __m512 ds = _mm512_set1_ps(d * (float)sc[e / 16]);
                    _mm512_storeu_ps(y + e, _mm512_mul_ps(ds, CVT(q)));
                }
            }
    }
}

AVX512_TARGET static void f16_512(const void *src, float *y, int64_t n) {
    const uint16_t *s = src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(s + i))));
    for (; i < n; i++) y[i] = hmti_f16_to_f32(s[i]);
}

AVX512_TARGET static void bf16_512(const void *src, float *y, int64_t n) {
    const uint16_t *s = src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(s + i)));
        _mm512_storeu_si512(y + i, _mm512_slli_epi32(v, 16));
    }
    for (; i < n; i++) y[i] = hmti_bf16_to_f32(s[i]);
}

/* y[0..16) = (float)q * d + m */
#define MSTORE(y, q, d, m) _mm512_storeu_ps(y, _mm512_add_ps(_mm512_mul_ps(CVT(q), d), m))

AVX512_TARGET static void q4_1_512(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m512i m15 = _mm512_set1_epi32(15);
    for (int64_t i = 0; i < n; i += 32, b += 20, y += 32) {
        const __m512 d = _mm512_set1_ps(f16s(b)), m = _mm512_set1_ps(f16s(b + 2));
        const __m512i q = L16(b + 4);
        MSTORE(y, _mm512_and_si512(q, m15), d, m);
        MSTORE(y + 16, _mm512_srli_epi32(q, 4), d, m);
    }
}

/* Q5_0 / Q5_1 quants of one block: lo (elements 0..15), hi (16..31). */
AVX512_TARGET static inline void q5_quants(const uint8_t *qh4, const uint8_t *qs, __m512i *lo,
                                           __m512i *hi) {
    const uint32_t qh = hmti_qu32(qh4);
    const __m512i q = L16(qs), k16 = _mm512_set1_epi32(16);
    *lo = _mm512_mask_add_epi32(_mm512_and_si512(q, _mm512_set1_epi32(15)), (__mmask16)qh,
                                _mm512_and_si512(q, _mm512_set1_epi32(15)), k16);
    *hi = _mm512_mask_add_epi32(_mm512_srli_epi32(q, 4), (__mmask16)(qh >> 16),
                                _mm512_srli_epi32(q, 4), k16);
}

AVX512_TARGET static void q5_0_512(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m512i k16 = _mm512_set1_epi32(16);
    for (int64_t i = 0; i < n; i += 32, b += 22, y += 32) {
        const __m512 d = _mm512_set1_ps(f16s(b));
        __m512i lo, hi;
        q5_quants(b + 2, b + 6, &lo, &hi);
        _mm512_storeu_ps(y, _mm512_mul_ps(CVT(_mm512_sub_epi32(lo, k16)), d));
        _mm512_storeu_ps(y + 16, _mm512_mul_ps(CVT(_mm512_sub_epi32(hi, k16)), d));
    }
}

AVX512_TARGET static void q5_1_512(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n; i += 32, b += 24, y += 32) {
        const __m512 d = _mm512_set1_ps(f16s(b)), m = _mm512_set1_ps(f16s(b + 2));
        __m512i lo, hi;
        q5_quants(b + 4, b + 8, &lo, &hi);
        MSTORE(y, lo, d, m);
        MSTORE(y + 16, hi, d, m);
    }
}

AVX512_TARGET static inline __m512i iq4_table(void) {
    int32_t t[16];
    for (int i = 0; i < 16; i++) t[i] = hmti_iq4_values[i];
    return _mm512_loadu_si512(t);
}

AVX512_TARGET static void iq4_nl_512(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m512i tbl = iq4_table(), m15 = _mm512_set1_epi32(15);
    for (int64_t i = 0; i < n; i += 32, b += 18, y += 32) {
        const __m512 d = _mm512_set1_ps(f16s(b));
        const __m512i q = L16(b + 2);
        _mm512_storeu_ps(y, _mm512_mul_ps(CVT(_mm512_permutexvar_epi32(_mm512_and_si512(q, m15), tbl)), d));
        _mm512_storeu_ps(y + 16, _mm512_mul_ps(CVT(_mm512_permutexvar_epi32(_mm512_srli_epi32(q, 4), tbl)), d));
    }
}

AVX512_TARGET static void iq4_xs_512(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m512i tbl = iq4_table(), m15 = _mm512_set1_epi32(15);
    for (int64_t i = 0; i < n; i += 256, b += 136, y += 256) {
        const float d = f16s(b);
        for (int ib = 0; ib < 8; ib++) {
            const __m512 dl = _mm512_set1_ps(d * (float)hmti_iq4xs_scale(ib, b));
            const __m512i q = L16(b + 8 + 16 * ib);
            _mm512_storeu_ps(y + 32 * ib, _mm512_mul_ps(dl, CVT(_mm512_permutexvar_epi32(_mm512_and_si512(q, m15), tbl))));
            _mm512_storeu_ps(y + 32 * ib + 16, _mm512_mul_ps(dl, CVT(_mm512_permutexvar_epi32(_mm512_srli_epi32(q, 4), tbl))));
        }
    }
}

AVX512_TARGET static void q2_k_512(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m512i m3 = _mm512_set1_epi32(3);
    for (int64_t i = 0; i < n; i += 256, b += 84, y += 256) {
        const uint8_t *sc = b, *qs = b + 16;
        const float d = f16s(b + 80), dmin = f16s(b + 82);
        for (int nn = 0; nn < 2; nn++)
            for (int h = 0; h < 2; h++) {
                const __m512i q = L16(qs + 32 * nn + 16 * h);
                for (int j = 0; j < 4; j++) {
                    const int e = 128 * nn + 32 * j + 16 * h, s4 = sc[e / 16];
                    const __m512 dl = _mm512_set1_ps(d * (float)(s4 & 15));
                    const __m512 ml = _mm512_set1_ps(dmin * (float)(s4 >> 4));
                    KSTORE(y + e, _mm512_and_si512(_mm512_srl_epi32(q, _mm_cvtsi32_si128(2 * j)), m3), dl, ml);
                }
            }
    }
}

AVX512_TARGET static void q3_k_512(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m512i m3 = _mm512_set1_epi32(3), one = _mm512_set1_epi32(1), k4 = _mm512_set1_epi32(4);
    for (int64_t i = 0; i < n; i += 256, b += 110, y += 256) {
        const uint8_t *hm = b, *qs = b + 32, *scb = b + 96;
        const float d = f16s(b + 108);
        for (int h = 0; h < 2; h++) {
            const __m512i hv = L16(hm + 16 * h);
            for (int nn = 0; nn < 2; nn++) {
                const __m512i q = L16(qs + 32 * nn + 16 * h);
                for (int j = 0; j < 4; j++) {
                    const int e = 128 * nn + 32 * j + 16 * h;
                    const __m512i lo = _mm512_and_si512(_mm512_srl_epi32(q, _mm_cvtsi32_si128(2 * j)), m3);
                    const __m512i hb = _mm512_and_si512(_mm512_srl_epi32(hv, _mm_cvtsi32_si128(4 * nn + j)), one);
                    const __m512i v = _mm512_add_epi32(_mm512_sub_epi32(lo, k4), _mm512_slli_epi32(hb, 2));
                    const __m512 dl = _mm512_set1_ps(d * (float)hmti_q3k_scale(e / 16, scb));
                    _mm512_storeu_ps(y + e, _mm512_mul_ps(dl, CVT(v)));
                }
            }
        }
    }
}

hmti_dequant_fn hmti_dequant_avx512(uint32_t type) {
    switch (type) {
    case HMTI_T_F16: return f16_512;
    case HMTI_T_BF16: return bf16_512;
    case HMTI_T_Q4_0: return q4_0_512;
    case HMTI_T_Q8_0: return q8_0_512;
    case HMTI_T_Q4_K: return q4_k_512;
    case HMTI_T_Q5_K: return q5_k_512;
    case HMTI_T_Q6_K: return q6_k_512;
    case HMTI_T_Q4_1: return q4_1_512;
    case HMTI_T_Q5_0: return q5_0_512;
    case HMTI_T_Q5_1: return q5_1_512;
    case HMTI_T_IQ4_NL: return iq4_nl_512;
    case HMTI_T_IQ4_XS: return iq4_xs_512;
    case HMTI_T_Q2_K: return q2_k_512;
    case HMTI_T_Q3_K: return q3_k_512;
    default: return NULL;
    }
}

/* ================================== AVX2 =================================== */
#define L8(p) _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(p)))
#define CVT8(v) _mm256_cvtepi32_ps(v)
#define KSTORE8(y, q, d1, m1) _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_mul_ps(d1, CVT8(q)), m1))

AVX2_TARGET static void q4_0_256(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m256i m15 = _mm256_set1_epi32(15), k8 = _mm256_set1_epi32(8);
    for (int64_t i = 0; i < n; i += 32, b += 18, y += 32) {
        const __m256 d = _mm256_set1_ps(f16s(b));
        for (int h = 0; h < 2; h++) {
            const __m256i q = L8(b + 2 + 8 * h);
            _mm256_storeu_ps(y + 8 * h, _mm256_mul_ps(CVT8(_mm256_sub_epi32(_mm256_and_si256(q, m15), k8)), d));
            _mm256_storeu_ps(y + 16 + 8 * h, _mm256_mul_ps(CVT8(_mm256_sub_epi32(_mm256_srli_epi32(q, 4), k8)), d));
        }
    }
}

AVX2_TARGET static void q8_0_256(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n; i += 32, b += 34, y += 32) {
        const __m256 d = _mm256_set1_ps(f16s(b));
        for (int h = 0; h < 4; h++) {
            const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(b + 2 + 8 * h)));
            _mm256_storeu_ps(y + 8 * h, _mm256_mul_ps(CVT8(q), d));
        }
    }
}

AVX2_TARGET static void q4_k_256(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m256i m15 = _mm256_set1_epi32(15);
    for (int64_t i = 0; i < n; i += 256, b += 144, y += 256) {
        const float d = f16s(b), dmin = f16s(b + 2);
        const uint8_t *qs = b + 16;
        for (int c = 0; c < 4; c++) {
            int sc0, m0, sc1, m1i;
            hmti_k_scale_min(2 * c, b + 4, &sc0, &m0);
            hmti_k_scale_min(2 * c + 1, b + 4, &sc1, &m1i);
            const __m256 da = _mm256_set1_ps(d * (float)sc0), ma = _mm256_set1_ps(dmin * (float)m0);
            const __m256 db = _mm256_set1_ps(d * (float)sc1), mb = _mm256_set1_ps(dmin * (float)m1i);
            for (int l = 0; l < 32; l += 8) {
                const __m256i q = L8(qs + 32 * c + l);
                KSTORE8(y + 64 * c + l, _mm256_and_si256(q, m15), da, ma);
                KSTORE8(y + 64 * c + 32 + l, _mm256_srli_epi32(q, 4), db, mb);
            }
        }
    }
}

AVX2_TARGET static void q5_k_256(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m256i m15 = _mm256_set1_epi32(15), one = _mm256_set1_epi32(1);
    for (int64_t i = 0; i < n; i += 256, b += 176, y += 256) {
        const float d = f16s(b), dmin = f16s(b + 2);
        const uint8_t *qh = b + 16, *qs = b + 48;
        for (int c = 0; c < 4; c++)
            for (int h = 0; h < 2; h++) {
                int sc, m;
                hmti_k_scale_min(2 * c + h, b + 4, &sc, &m);
                const __m256 d1 = _mm256_set1_ps(d * (float)sc), m1 = _mm256_set1_ps(dmin * (float)m);
                const __m128i sh = _mm_cvtsi32_si128(4 * h), bit = _mm_cvtsi32_si128(2 * c + h);
                for (int l = 0; l < 32; l += 8) {
                    const __m256i lo = _mm256_and_si256(_mm256_srl_epi32(L8(qs + 32 * c + l), sh), m15);
                    const __m256i x = _mm256_slli_epi32(_mm256_and_si256(_mm256_srl_epi32(L8(qh + l), bit), one), 4);
                    KSTORE8(y + 64 * c + 32 * h + l, _mm256_add_epi32(lo, x), d1, m1);
                }
            }
    }
}

AVX2_TARGET static void q6_k_256(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    const __m256i m15 = _mm256_set1_epi32(15), m3 = _mm256_set1_epi32(3), k32 = _mm256_set1_epi32(32);
    for (int64_t i = 0; i < n; i += 256, b += 210, y += 256) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        const float d = f16s(b + 208);
        for (int nn = 0; nn < 2; nn++)
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < 32; l += 8) {
                    const __m256i lo = _mm256_and_si256(
                        _mm256_srl_epi32(L8(ql + 64 * nn + 32 * (k & 1) + l), _mm_cvtsi32_si128(4 * (k >> 1))), m15);
                    const __m256i hi = _mm256_and_si256(_mm256_srl_epi32(L8(qh + 32 * nn + l), _mm_cvtsi32_si128(2 * k)), m3);
                    const __m256i q = _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), k32);
                    const int e = 128 * nn + 32 * k + l;
                    _mm256_storeu_ps(y + e, _mm256_mul_ps(_mm256_set1_ps(d * (float)sc[e / 16]), CVT8(q)));
                }
    }
}

AVX2_TARGET static void f16_256(const void *src, float *y, int64_t n) {
    const uint16_t *s = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(s + i))));
    for (; i < n; i++) y[i] = hmti_f16_to_f32(s[i]);
}

AVX2_TARGET static void bf16_256(const void *src, float *y, int64_t n) {
    const uint16_t *s = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(s + i)));
        _mm256_storeu_si256((__m256i *)(void *)(y + i), _mm256_slli_epi32(v, 16));
    }
    for (; i < n; i++) y[i] = hmti_bf16_to_f32(s[i]);
}

hmti_dequant_fn hmti_dequant_avx2(uint32_t type) {
    switch (type) {
    case HMTI_T_F16: return f16_256;
    case HMTI_T_BF16: return bf16_256;
    case HMTI_T_Q4_0: return q4_0_256;
    case HMTI_T_Q8_0: return q8_0_256;
    case HMTI_T_Q4_K: return q4_k_256;
    case HMTI_T_Q5_K: return q5_k_256;
    case HMTI_T_Q6_K: return q6_k_256;
    default: return NULL;
    }
}

/* ================================ transpose ================================= */
/* Fully unrolled: the 16 (8) rows live in registers. */
#define UNROLL _Pragma("GCC unroll 16")

/* 16 × 16 block: rows of s to columns of d. For each group L of 4 columns,
 * v[i] gets in 128-bit lane q row i + 4q's columns 4L..4L+3 (a broadcast
 * load and three masked ones: load ports, no shuffle), then a 4 × 4
 * transpose inside the lanes gives column 4L + j with rows in order. */
__attribute__((always_inline)) AVX512_TARGET static inline void tr16(const float *s, int64_t lds,
                                                                    float *d, int64_t ldd) {
    UNROLL
    for (int L = 0; L < 4; L++) {
        __m512 v[4];
        UNROLL
        for (int i = 0; i < 4; i++) {
            const float *p = s + i * lds + 4 * L;
            __m512 x = _mm512_broadcast_f32x4(_mm_loadu_ps(p));
            x = _mm512_mask_broadcast_f32x4(x, 0x00F0, _mm_loadu_ps(p + 4 * lds));
            x = _mm512_mask_broadcast_f32x4(x, 0x0F00, _mm_loadu_ps(p + 8 * lds));
            v[i] = _mm512_mask_broadcast_f32x4(x, 0xF000, _mm_loadu_ps(p + 12 * lds));
        }
        const __m512 t0 = _mm512_unpacklo_ps(v[0], v[1]), t1 = _mm512_unpackhi_ps(v[0], v[1]);
        const __m512 t2 = _mm512_unpacklo_ps(v[2], v[3]), t3 = _mm512_unpackhi_ps(v[2], v[3]);
        _mm512_storeu_ps(d + (4 * L + 0) * ldd, _mm512_shuffle_ps(t0, t2, 0x44));
        _mm512_storeu_ps(d + (4 * L + 1) * ldd, _mm512_shuffle_ps(t0, t2, 0xEE));
        _mm512_storeu_ps(d + (4 * L + 2) * ldd, _mm512_shuffle_ps(t1, t3, 0x44));
        _mm512_storeu_ps(d + (4 * L + 3) * ldd, _mm512_shuffle_ps(t1, t3, 0xEE));
    }
}

/* 8 × 8 block. */
AVX2_TARGET __attribute__((always_inline)) static inline void tr8(const float *s, int64_t lds, float *d, int64_t ldd) {
    __m256 r[8], t[8];
    UNROLL
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(s + i * lds);
    UNROLL
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    UNROLL
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    UNROLL
    for (int j = 0; j < 4; j++) {
        _mm256_storeu_ps(d + j * ldd, _mm256_permute2f128_ps(r[j], r[4 + j], 0x20));
        _mm256_storeu_ps(d + (4 + j) * ldd, _mm256_permute2f128_ps(r[j], r[4 + j], 0x31));
    }
}

static void tr_scalar(const float *src, int64_t lds, float *dst, int64_t ldd, int64_t r0,
                      int64_t r1, int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++)
        for (int64_t r = r0; r < r1; r++) dst[c * ldd + r] = src[r * lds + c];
}

AVX512_TARGET static void transpose_512(const float *src, int64_t lds, float *dst, int64_t ldd,
                                        int64_t rows, int64_t cols) {
    const int64_t R = rows & ~(int64_t)15, C = cols & ~(int64_t)15;
    for (int64_t c = 0; c < C; c += 16)
        for (int64_t r = 0; r < R; r += 16) tr16(src + r * lds + c, lds, dst + c * ldd + r, ldd);
    tr_scalar(src, lds, dst, ldd, R, rows, 0, cols);
    tr_scalar(src, lds, dst, ldd, 0, R, C, cols);
}

AVX2_TARGET static void transpose_256(const float *src, int64_t lds, float *dst, int64_t ldd,
                                      int64_t rows, int64_t cols) {
    const int64_t R = rows & ~(int64_t)7, C = cols & ~(int64_t)7;
    for (int64_t c = 0; c < C; c += 8)
        for (int64_t r = 0; r < R; r += 8) tr8(src + r * lds + c, lds, dst + c * ldd + r, ldd);
    tr_scalar(src, lds, dst, ldd, R, rows, 0, cols);
    tr_scalar(src, lds, dst, ldd, 0, R, C, cols);
}

void hmti_transpose_f32(const float *src, int64_t lds, float *dst, int64_t ldd, int64_t rows,
                        int64_t cols) {
    hmti_transpose_f32_path(hmti_cpu_level(), src, lds, dst, ldd, rows, cols);
}

void hmti_transpose_f32_path(int l, const float *src, int64_t lds, float *dst, int64_t ldd,
                             int64_t rows, int64_t cols) {
    if (l == 2)
        transpose_512(src, lds, dst, ldd, rows, cols);
    else if (l == 1)
        transpose_256(src, lds, dst, ldd, rows, cols);
    else
        tr_scalar(src, lds, dst, ldd, 0, rows, 0, cols);
}
