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
