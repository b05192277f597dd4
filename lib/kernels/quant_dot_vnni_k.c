/* AVX512-VNNI kernels of the K-quants on 512-bit registers (quant_dot_vnni.c
 * dispatches to them first). */
#include <immintrin.h>
#include <string.h>

#include "kernels/quant_impl.h"

#define QT __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx2,fma,f16c")))
#define L128(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define L256(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* the super-block kernels repeat the portable float arithmetic */
#endif

QT static inline int hsum_epi32_vnni(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

QT static inline float f16_vnni(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* ---- Q4_K / Q5_K on 512-bit registers ----------------------------------------------------- */
/* A super-block's 128 bytes of nibbles in two zmm: each zmm's low nibbles are
 * sub-blocks (2c, 2c + 2), its high nibbles (2c + 1, 2c + 3), dotted with the
 * matching activation halves by vpdpbusd; a lane's sum of 4 products is
 * within +-4 * 15 * 127, so the 6-bit scales (permuted onto the lanes) are
 * applied with vpmaddwd on its low 16 bits (the high half, sign bits, meets a
 * 0). One reduction per super-block gives the exact integer sum of the other
 * paths, and the float arithmetic is the portable path's term for term. */
QT static inline __attribute__((always_inline)) float q45_k_z(int64_t n, const void *w, const void *act,
                                                              const int five) {
    const uint8_t *b = w;
    const hmti_q8_256 *a = act;
    const __m512i m4 = _mm512_set1_epi8(15);
    const __m512i i0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
    const __m512i i1 = _mm512_add_epi32(i0, _mm512_set1_epi32(1));
    const __m512i i2 = _mm512_add_epi32(i0, _mm512_set1_epi32(4));
    const __m512i i3 = _mm512_add_epi32(i0, _mm512_set1_epi32(5));
    float s = 0.0f;
    /* Q5_K: the fifth bit of chunk c's low / high nibbles is bit 2c / 2c + 1 of qh */
    const __m512i m1 = _mm512_set1_epi8(1);
    const __m512i c0 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const int bytes = five ? 176 : 144, qo = five ? 48 : 16;
    for (int64_t i = 0; i < n / 256; i++, b += bytes) {
        uint32_t u[4];
        memcpy(u, b + 4, 12);
        u[3] = ((u[2] >> 4) & 0x0F0F0F0Fu) | (((u[1] >> 6) & 0x03030303u) << 4);
        const uint32_t m03 = u[1] & 0x3F3F3F3Fu;
        u[1] = (u[2] & 0x0F0F0F0Fu) | (((u[0] >> 6) & 0x03030303u) << 4);
        u[2] = m03;
        u[0] &= 0x3F3F3F3Fu;
        const __m128i scm = _mm_loadu_si128((const __m128i *)(const void *)u);
        const __m256i bsum = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(const void *)a[i].sum),
                                               _mm256_set1_epi16(1));
        const int msum = hsum_epi32_vnni(_mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(scm, 8)), bsum));
        const __m512i scv = _mm512_castsi256_si512(_mm256_cvtepu8_epi32(scm));
        const int8_t *q = a[i].qs;
#define A2(o0, o1) _mm512_inserti64x4(_mm512_castsi256_si512(L256(q + (o0))), L256(q + (o1)), 1)
        const __m512i raw0 = _mm512_loadu_si512(b + qo), raw1 = _mm512_loadu_si512(b + qo + 64);
        const __m512i z = _mm512_setzero_si512();
        __m512i u0 = _mm512_and_si512(raw0, m4), u1 = _mm512_and_si512(_mm512_srli_epi16(raw0, 4), m4);
        __m512i u2 = _mm512_and_si512(raw1, m4), u3 = _mm512_and_si512(_mm512_srli_epi16(raw1, 4), m4);
        if (five) { /* q + 16 * bit, q in 0..31: a lane's 4 products within +-4 * 31 * 127 */
            const __m512i QH = _mm512_broadcast_i64x4(L256(b + 16));
#define HB(k) _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(QH, _mm512_add_epi16(c0, _mm512_set1_epi16(k))), m1), 4)
            u0 = _mm512_or_si512(u0, HB(0));
            u1 = _mm512_or_si512(u1, HB(1));
            u2 = _mm512_or_si512(u2, HB(4));
            u3 = _mm512_or_si512(u3, HB(5));
#undef HB
        }
        __m512i t0 = _mm512_madd_epi16(_mm512_dpbusd_epi32(z, u0, A2(0, 64)), _mm512_permutexvar_epi32(i0, scv));
        __m512i t1 = _mm512_madd_epi16(_mm512_dpbusd_epi32(z, u1, A2(32, 96)), _mm512_permutexvar_epi32(i1, scv));
        __m512i t2 = _mm512_madd_epi16(_mm512_dpbusd_epi32(z, u2, A2(128, 192)), _mm512_permutexvar_epi32(i2, scv));
        __m512i t3 = _mm512_madd_epi16(_mm512_dpbusd_epi32(z, u3, A2(160, 224)), _mm512_permutexvar_epi32(i3, scv));
#undef A2
        const int isum = _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_add_epi32(t0, t1), _mm512_add_epi32(t2, t3)));
        s += f16_vnni(b) * a[i].d * (float)isum - f16_vnni(b + 2) * a[i].d * (float)msum;
    }
    return s;
}
QT static float q4_k_z(int64_t n, const void *w, const void *act) { return q45_k_z(n, w, act, 0); }
QT static float q5_k_z(int64_t n, const void *w, const void *act) { return q45_k_z(n, w, act, 1); }

/* ---- Q6_K on 512-bit registers ----------------------------------------------------- */
/* Per half super-block (128 weights): the 64 bytes of low nibbles in one zmm
 * give sub-block pairs (k0, k1) (& 15) and (k2, k3) (>> 4), the 2-bit high
 * parts come from the 32 qh bytes broadcast to both halves and shifted per
 * half (vpsrlvw); u in 0..63 against s8 activation: a lane's 4 products are
 * within +-4 * 63 * 127 (int16), so the int8 scales (16 bits, permuted onto
 * the lanes of their 16 elements) are applied with vpmaddwd. Exact integer
 * sum, then the portable path's float arithmetic. */
QT static float q6_k_z(int64_t n, const void *w, const void *act) {
    const uint8_t *b = w;
    const hmti_q8_256 *a = act;
    const __m512i m4 = _mm512_set1_epi8(15), m3 = _mm512_set1_epi8(3);
    const __m512i sh01 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m512i sh23 = _mm512_add_epi16(sh01, _mm512_set1_epi16(4));
    const __m512i lane4 = _mm512_srli_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 2);
    float s = 0.0f;
    for (int64_t i = 0; i < n / 256; i++, b += 210) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)(const void *)(b + 192));
        const int corr = hsum_epi32_vnni(_mm256_madd_epi16(
            _mm256_cvtepi8_epi16(sc8), _mm256_loadu_si256((const __m256i *)(const void *)a[i].sum)));
        const __m512i scv = _mm512_and_si512(_mm512_cvtepi8_epi32(sc8), _mm512_set1_epi32(0xFFFF));
        __m512i acc = _mm512_setzero_si512();
        for (int nn = 0; nn < 2; nn++) {
            const __m512i L = _mm512_loadu_si512(b + 64 * nn);
            const __m512i QH = _mm512_broadcast_i64x4(L256(b + 128 + 32 * nn));
            const __m512i h01 = _mm512_and_si512(_mm512_srlv_epi16(QH, sh01), m3);
            const __m512i h23 = _mm512_and_si512(_mm512_srlv_epi16(QH, sh23), m3);
            const __m512i u01 = _mm512_or_si512(_mm512_and_si512(L, m4), _mm512_slli_epi16(h01, 4));
            const __m512i u23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(L, 4), m4),
                                                _mm512_slli_epi16(h23, 4));
            const __m512i z = _mm512_setzero_si512();
            const __m512i p01 = _mm512_dpbusd_epi32(z, u01, _mm512_loadu_si512(a[i].qs + 128 * nn));
            const __m512i p23 = _mm512_dpbusd_epi32(z, u23, _mm512_loadu_si512(a[i].qs + 128 * nn + 64));
            const __m512i s01 = _mm512_permutexvar_epi32(_mm512_add_epi32(lane4, _mm512_set1_epi32(8 * nn)), scv);
            const __m512i s23 = _mm512_permutexvar_epi32(_mm512_add_epi32(lane4, _mm512_set1_epi32(8 * nn + 4)), scv);
            acc = _mm512_add_epi32(acc, _mm512_add_epi32(_mm512_madd_epi16(p01, s01), _mm512_madd_epi16(p23, s23)));
        }
        s += f16_vnni(b + 208) * a[i].d * (float)(_mm512_reduce_add_epi32(acc) - 32 * corr);
    }
    return s;
}

hmti_vec_dot_fn hmti_qdot_vnni_k(uint32_t type) {
    switch (type) {
    case HMTI_T_Q4_K: return q4_k_z;
    case HMTI_T_Q5_K: return q5_k_z;
    case HMTI_T_Q6_K: return q6_k_z;
    default: return NULL;
    }
}

hmti_vec_dot4_fn hmti_qdot4_vnni_k(uint32_t type) {
    (void)type;
    return NULL;
}
