/* Shared by the 512-bit K-quant kernels (quant_dot_vnni_k.c: Q4_K, Q5_K,
 * Q6_K and the dispatch; quant_dot_vnni_k23.c: Q2_K, Q3_K): the target,
 * the row-lane loads and the pairing of row sums. Include after immintrin.h. */
#ifndef HMT_KERNELS_QUANT_DOT_VNNI_K_H
#define HMT_KERNELS_QUANT_DOT_VNNI_K_H

#include "kernels/quant_impl.h"

#define QT __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx512vbmi,gfni,avx2,fma,f16c")))
#define L128(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define L256(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))

/* 16 bytes at p of rows 0..R-1 in 128-bit lanes 0..R-1 (the others zero);
 * the inserts in a tree, not a chain. */
QT static inline __attribute__((always_inline)) __m512i lanes4(const int R, const uint8_t *p, size_t stride) {
    if (R == 1) return _mm512_zextsi128_si512(L128(p));
    const __m256i lo = _mm256_inserti128_si256(_mm256_castsi128_si256(L128(p)), L128(p + stride), 1);
    const __m256i hi = _mm256_inserti128_si256(_mm256_castsi128_si256(L128(p + 2 * stride)), L128(p + 3 * stride), 1);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* Rows paired in vpackssdw: I01 holds, per 128-bit lane, 2 partial sums of
 * row 0 then 2 of row 1 (I23: rows 2, 3). -> per 128-bit lane, the partial
 * sums of rows 0..3 (int32, exact). */
QT static inline __m512i pair_sums(__m512i I01, __m512i I23) {
    const __m512 a = _mm512_castsi512_ps(I01), b = _mm512_castsi512_ps(I23);
    return _mm512_add_epi32(_mm512_castps_si512(_mm512_shuffle_ps(a, b, 0x88)),
                            _mm512_castps_si512(_mm512_shuffle_ps(a, b, 0xDD)));
}

/* Per 128-bit lane [rows 0..3] of v (int32) summed over the 4 lanes. */
QT static inline __m128i lane_sum(__m512i v) {
    const __m256i v2 = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    return _mm_add_epi32(_mm256_castsi256_si128(v2), _mm256_extracti128_si256(v2, 1));
}

/* A group of 4 stored rows (w, row stride) against na <= KM_ACT activation
 * rows of hmti_q8_256 blocks (act + a * as): y[a * ldy + r]. */
enum { KM_ACT = 8 };
typedef void (*k_multi_fn)(int64_t n, const uint8_t *w, size_t stride, const uint8_t *act, size_t as, int na,
                           float *y, int64_t ldy);

/* quant_dot_vnni_k23.c's kernels for type (Q2_K, Q3_K), NULL for others;
 * the caller has checked hmti_cpu_has_avx512_bitops. */
hmti_vec_dot_fn hmti_qdot_vnni_k23(uint32_t type);
hmti_vec_dot4_fn hmti_qdot4_vnni_k23(uint32_t type);
k_multi_fn hmti_qmulti_fn_vnni_k23(uint32_t type);

#endif
