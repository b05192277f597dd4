/* AVX512-VNNI kernels of IQ4_XS on 512-bit registers (quant_dot_vnni.c
 * tries them after the K-quant file's). Per super-block of 256 weights, 4
 * sub-blocks of 32 per vector: the nibbles pick code-book values plus 128
 * (an unsigned vpdpbusd operand, vpshufb on the book in every 128-bit
 * lane), the activation's halves of each sub-block gathered into the
 * matching lanes by two 128-bit lane shuffles, and each lane group scaled
 * by its sub-block's 6-bit scale (unpacked with two pdep); the +128 comes
 * off through the activation's per-16 sums. The integer sum per
 * super-block is exact, and the float step is the portable path's
 * (quant_dot_ref.c dot_iq4_xs), so every result is its bits. The 4-row
 * kernel shares the activation's shuffles and returns the 1-row bits. */
#include <immintrin.h>
#include <string.h>

#include "kernels/quant_impl.h"

#define QT __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,bmi2,avx2,f16c")))
#define L128(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define L256(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define L512(p) _mm512_loadu_si512((const void *)(p))

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* the float step repeats the portable arithmetic */
#endif

enum { IQ4XS_BYTES = 136 };

/* The exact integer dot of one super-block: sum over sub-blocks of
 * scale * sum(value * x). lo/hi: the activation's first and second 16 of
 * sub-blocks 0..3 (h = 0) and 4..7 (h = 1) in lanes 0..3; asum: the
 * activation's sums per sub-block. */
QT static inline __attribute__((always_inline)) int
superblock(const uint8_t *b, const __m512i lo[2], const __m512i hi[2], __m256i asum) {
    const __m512i book = _mm512_xor_si512(_mm512_broadcast_i32x4(L128(hmti_iq4_values)),
                                          _mm512_set1_epi8((char)0x80));
    const __m512i m4 = _mm512_set1_epi8(15);
    /* scale ib = low nibble ib of bytes 4..7 | 2 bits ib of the u16 at 2 << 4, minus 32 */
    uint32_t sl;
    uint16_t sh;
    memcpy(&sl, b + 4, 4);
    memcpy(&sh, b + 2, 2);
    const uint64_t ls = _pdep_u64(sl, 0x0F0F0F0F0F0F0F0FULL) | _pdep_u64(sh, 0x3030303030303030ULL);
    const __m256i sc = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)ls)),
                                        _mm256_set1_epi32(32));
    __m512i t = _mm512_setzero_si512();
    for (int h = 0; h < 2; h++) {
        const __m512i q = L512(b + 8 + 64 * h);
        __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_shuffle_epi8(book, _mm512_and_si512(q, m4)), lo[h]);
        d = _mm512_dpbusd_epi32(d, _mm512_shuffle_epi8(book, _mm512_and_si512(_mm512_srli_epi16(q, 4), m4)), hi[h]);
        const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
        const __m512i s = _mm512_permutexvar_epi32(_mm512_add_epi32(idx, _mm512_set1_epi32(4 * h)),
                                                   _mm512_castsi256_si512(sc));
        t = _mm512_add_epi32(t, _mm512_mullo_epi32(d, s));
    }
    __m256i u = _mm256_add_epi32(_mm512_castsi512_si256(t), _mm512_extracti64x4_epi64(t, 1));
    u = _mm256_sub_epi32(u, _mm256_slli_epi32(_mm256_mullo_epi32(sc, asum), 7));
    __m128i v = _mm_add_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4E));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xB1));
    return _mm_cvtsi128_si32(v);
}

/* R rows (w + r * stride) against one activation row. */
QT static inline __attribute__((always_inline)) void
rows(const int R, int64_t n, const uint8_t *w, size_t stride, const hmti_q8_256 *a, float *y) {
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const uint8_t *pf = w; /* the 4 rows' span, consumed 4 super-blocks a step */
    for (int64_t i = 0; i < n / 256; i++, pf += R * IQ4XS_BYTES) {
        if (R == 4) hmti_pf_span(pf, 4 * IQ4XS_BYTES);
        const hmti_q8_256 *x = a + i;
        const __m512i A0 = L512(x->qs), A1 = L512(x->qs + 64), A2 = L512(x->qs + 128),
                      A3 = L512(x->qs + 192);
        const __m512i lo[2] = {_mm512_shuffle_i64x2(A0, A1, 0x88), _mm512_shuffle_i64x2(A2, A3, 0x88)};
        const __m512i hi[2] = {_mm512_shuffle_i64x2(A0, A1, 0xDD), _mm512_shuffle_i64x2(A2, A3, 0xDD)};
        const __m256i asum = _mm256_madd_epi16(L256(x->sum), _mm256_set1_epi16(1));
        for (int r = 0; r < R; r++) {
            const uint8_t *b = w + (size_t)r * stride + (size_t)i * IQ4XS_BYTES;
            const int isum = superblock(b, lo, hi, asum);
            s[r] += hmti_qf16(b) * x->d * (float)isum;
        }
    }
    for (int r = 0; r < R; r++) y[r] = s[r];
}

QT static float iq4_xs_z(int64_t n, const void *w, const void *act) {
    float y;
    rows(1, n, w, 0, act, &y);
    return y;
}

QT static void iq4_xs_z4(int64_t n, const void *w, size_t stride, const void *act, float *y) {
    rows(4, n, w, stride, act, y);
}

hmti_vec_dot_fn hmti_qdot_vnni_iq4xs(uint32_t type) {
    return type == HMTI_T_IQ4_XS && __builtin_cpu_supports("bmi2") ? iq4_xs_z : NULL;
}

hmti_vec_dot4_fn hmti_qdot4_vnni_iq4xs(uint32_t type) {
    return type == HMTI_T_IQ4_XS && __builtin_cpu_supports("bmi2") ? iq4_xs_z4 : NULL;
}
