/* Activation rows to 8-bit blocks (quant.h): the one definition every dot
 * path reads. Portable C (the oracle, bit-exact to quants_ref.quantize_act
 * for finite x: float32 throughout, round half to even) and an AVX-512 copy
 * of the same operations, bit-identical to it: it runs once per matmul on
 * every input row, serially before the weights are read, and the scalar
 * loop (libm's fmaxf/fminf/nearbyintf per element) took about 4% of a
 * 2-thread decode step of a TinyLlama-shaped Q4_0 model. */
#include <immintrin.h>
#include <math.h>

#include "kernels/cpu.h"
#include "kernels/quant_impl.h"

float hmti_quantize_block_ref(const float *x, int k, int8_t *q, int16_t *sums) {
    float amax = 0.0f;
    for (int j = 0; j < k; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < k; j++) {
        /* default rounding mode: half to even; fmaxf/fminf also send a NaN
         * (from a NaN or infinite x) to a number, so the cast is defined */
        const float v = fminf(fmaxf(nearbyintf(x[j] * id), -127.0f), 127.0f);
        q[j] = (int8_t)v;
    }
    for (int g = 0; g < k / 16; g++) {
        int s = 0;
        for (int j = 0; j < 16; j++) s += q[16 * g + j];
        sums[g] = (int16_t)s;
    }
    return d;
}

/* k a multiple of 16. max_ps(a, b) returns b when a is NaN, as fmaxf
 * ignores a NaN: |x| NaN leaves the running max, a NaN product becomes -127
 * in the clamp, exactly the portable code's results. */
AVX512_TARGET static float quantize_block_avx512(const float *x, int k, int8_t *q, int16_t *sums) {
    __m512 m = _mm512_setzero_ps();
    for (int j = 0; j < k; j += 16) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + j)), m);
    const float d = _mm512_reduce_max_ps(m) / 127.0f;
    const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (int j = 0; j < k; j += 16) {
        const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(x + j), id),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m512i v = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(r, lo), hi));
        _mm_storeu_si128((__m128i *)(q + j), _mm512_cvtepi32_epi8(v));
        sums[j / 16] = (int16_t)_mm512_reduce_add_epi32(v);
    }
    return d;
}

typedef float (*block_fn)(const float *, int, int8_t *, int16_t *);

static block_fn best(void) {
    return hmti_cpu_level() >= 2 ? quantize_block_avx512 : hmti_quantize_block_ref;
}

void hmti_quantize_q8_32(const float *x, int64_t n, hmti_q8_32 *out) {
    const block_fn f = best();
    for (int64_t i = 0; i < n / 32; i++) out[i].d = f(x + 32 * i, 32, out[i].qs, out[i].sum);
}

void hmti_quantize_q8_256(const float *x, int64_t n, hmti_q8_256 *out) {
    const block_fn f = best();
    for (int64_t i = 0; i < n / HMTI_QK_K; i++)
        out[i].d = f(x + HMTI_QK_K * i, HMTI_QK_K, out[i].qs, out[i].sum);
}
