/* AVX512-VNNI dot kernels: the integer kernels of quant_dot_x86.inc with
 * u8 x s8 products through vpdpbusd on 256-bit registers (AVX512VL). The
 * float types have no kernel of their own here (quant_dot_avx512.c serves
 * them). */
#include <immintrin.h>

#include "kernels/quant_impl.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* the super-block kernels repeat the portable float arithmetic */
#endif

#define QT __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx2,fma,f16c")))
#define K(name) name##_vnni

QT static inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) {
    return _mm256_dpbusd_epi32(acc, u, s);
}

QT static inline __m256i dot_sc(__m256i u, __m256i s, int sc_lo, int sc_hi) {
    const __m256i sc = _mm256_set_m128i(_mm_set1_epi32(sc_hi), _mm_set1_epi32(sc_lo));
    return _mm256_mullo_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s), sc);
}

#include "kernels/quant_dot_x86.inc"

hmti_vec_dot_fn hmti_qdot_vnni(uint32_t type) {
    hmti_vec_dot_fn f = hmti_qdot_vnni_b32(type);
    if (!f) f = hmti_qdot_vnni_k(type);
    if (!f) f = hmti_qdot_vnni_iq4xs(type);
    return f ? f : int_kernel_vnni(type);
}

hmti_vec_dot4_fn hmti_qdot4_vnni(uint32_t type) {
    hmti_vec_dot4_fn f = hmti_qdot4_vnni_b32(type);
    if (!f) f = hmti_qdot4_vnni_k(type);
    return f ? f : hmti_qdot4_vnni_iq4xs(type);
}
