/* Activation rows to 8-bit blocks (quant.h), portable C: the one definition
 * every dot path reads. It runs once per matmul on one row (cols values), a
 * negligible cost next to the weights, so it has no SIMD variant; the loops
 * are plain enough for the compiler to vectorize. Bit-exact to
 * quants_ref.quantize_act for finite x: float32 throughout, round half to
 * even. */
#include <math.h>

#include "kernels/quant_impl.h"

/* One block of k values: returns d, fills q[k] and the per-16 sums. */
static float quantize_block(const float *x, int k, int8_t *q, int16_t *sums) {
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

void hmti_quantize_q8_32(const float *x, int64_t n, hmti_q8_32 *out) {
    for (int64_t i = 0; i < n / 32; i++) out[i].d = quantize_block(x + 32 * i, 32, out[i].qs, out[i].sum);
}

void hmti_quantize_q8_256(const float *x, int64_t n, hmti_q8_256 *out) {
    for (int64_t i = 0; i < n / HMTI_QK_K; i++)
        out[i].d = quantize_block(x + HMTI_QK_K * i, HMTI_QK_K, out[i].qs, out[i].sum);
}
