/* AVX2 + FMA + F16C dot kernels: the integer kernels of quant_dot_x86.inc
 * with u8 x s8 products through vpmaddubsw / vpmaddwd, and F32 / F16 / BF16
 * rows against the float activation. */
#include <immintrin.h>

#include "kernels/cpu.h"
#include "kernels/quant_impl.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* the super-block kernels repeat the portable float arithmetic */
#endif

#define QT AVX2_TARGET
#define K(name) name##_avx2

QT static inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}

QT static inline __m256i dot_sc(__m256i u, __m256i s, int sc_lo, int sc_hi) {
    const __m256i sc = _mm256_set_m128i(_mm_set1_epi16((short)sc_hi), _mm_set1_epi16((short)sc_lo));
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), sc);
}

#include "kernels/quant_dot_x86.inc"

/* ---- float rows: 4 accumulators of 8 lanes, scalar tail ------------------------------ */
QT static inline __m256 load_f16x8(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}
QT static inline __m256 load_bf16x8(const uint8_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

#define FLOAT_DOT(fname, LOAD, SCALAR, esize)                                              \
    QT static float fname(int64_t n, const void *w, const void *act) {                     \
        const uint8_t *p = w;                                                              \
        const float *x = act;                                                              \
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                        \
        int64_t i = 0;                                                                     \
        for (; i + 32 <= n; i += 32) {                                                     \
            s0 = _mm256_fmadd_ps(LOAD(p + (i + 0) * esize), _mm256_loadu_ps(x + i + 0), s0);   \
            s1 = _mm256_fmadd_ps(LOAD(p + (i + 8) * esize), _mm256_loadu_ps(x + i + 8), s1);   \
            s2 = _mm256_fmadd_ps(LOAD(p + (i + 16) * esize), _mm256_loadu_ps(x + i + 16), s2); \
            s3 = _mm256_fmadd_ps(LOAD(p + (i + 24) * esize), _mm256_loadu_ps(x + i + 24), s3); \
        }                                                                                  \
        for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(LOAD(p + i * esize), _mm256_loadu_ps(x + i), s0); \
        float s = hsum_ps_avx2(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));  \
        for (; i < n; i++) s += SCALAR(p + i * esize) * x[i];                              \
        return s;                                                                          \
    }

static inline float f32_at(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}
static inline float bf16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return hmti_bf16_to_f32(h);
}
#define LOAD_F32(p) _mm256_loadu_ps((const float *)(const void *)(p))

FLOAT_DOT(dot_f32_avx2, LOAD_F32, f32_at, 4)
FLOAT_DOT(dot_f16_avx2, load_f16x8, hmti_qf16, 2)
FLOAT_DOT(dot_bf16_avx2, load_bf16x8, bf16_at, 2)

hmti_vec_dot_fn hmti_qdot_avx2(uint32_t type) {
    switch (type) {
    case HMTI_T_F32: return dot_f32_avx2;
    case HMTI_T_F16: return dot_f16_avx2;
    case HMTI_T_BF16: return dot_bf16_avx2;
    default: return int_kernel_avx2(type);
    }
}
