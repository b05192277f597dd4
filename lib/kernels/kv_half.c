/* Attention of one query row over a half-precision KV cache, converting
 * each element inside the dot products (kv_half.h). */
#include <immintrin.h>

#include "kernels/cpu.h"
#include "kernels/kv_half.h"

enum { ALL = 0xffff };

/* The halves (F16 or BF16) of p under mask k (0xffff: 16) as floats, 0
 * elsewhere. */
AVX512_TARGET static inline __m512 widen16(const uint16_t *p, __mmask16 k, int bf16) {
    const __m256i h = _mm256_maskz_loadu_epi16(k, p);
    if (bf16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
}

/* s[t] = sum_d k[d * ld + t] q[d], t < n: 64 slots per pass of the head
 * dimension (4 accumulators), then 16 at a time, then a masked tail. */
AVX512_TARGET void hmti_kv_half_scores(const uint16_t *k, int64_t ld, int64_t hd, const float *q,
                                       int64_t n, int bf16, float *s) {
    int64_t t = 0;
    for (; t + 64 <= n; t += 64) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t d = 0; d < hd; d++) {
            const uint16_t *r = k + d * ld + t;
            const __m512 qd = _mm512_set1_ps(q[d]);
            a0 = _mm512_fmadd_ps(widen16(r, ALL, bf16), qd, a0);
            a1 = _mm512_fmadd_ps(widen16(r + 16, ALL, bf16), qd, a1);
            a2 = _mm512_fmadd_ps(widen16(r + 32, ALL, bf16), qd, a2);
            a3 = _mm512_fmadd_ps(widen16(r + 48, ALL, bf16), qd, a3);
        }
        _mm512_storeu_ps(s + t, a0);
        _mm512_storeu_ps(s + t + 16, a1);
        _mm512_storeu_ps(s + t + 32, a2);
        _mm512_storeu_ps(s + t + 48, a3);
    }
    for (; t < n; t += 16) {
        const __mmask16 m = n - t >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - t)) - 1u);
        __m512 a = _mm512_setzero_ps();
        for (int64_t d = 0; d < hd; d++)
            a = _mm512_fmadd_ps(widen16(k + d * ld + t, m, bf16), _mm512_set1_ps(q[d]), a);
        _mm512_mask_storeu_ps(s + t, m, a);
    }
}

/* out = sum_t p[t] v[t * ld + .], NV vectors of 16 (NV a constant: the sums
 * stay in registers; a run-time count kept them on the stack, and the kernel
 * took twice the time of the F32 cache's GEMV for half its bytes). Two slots
 * per turn, each with its own sums, so that 2 * NV FMA chains run at once. */
#define HALF_VALUES(NV)                                                                        \
    AVX512_TARGET static void values_##NV(const uint16_t *v, int64_t ld, const float *p,         \
                                          int64_t n, int bf16, float *out) {                    \
        __m512 a[NV], b[NV];                                                                    \
        _Pragma("GCC unroll 16") for (int j = 0; j < NV; j++) a[j] = b[j] = _mm512_setzero_ps();  \
        int64_t t = 0;                                                                          \
        for (; t + 2 <= n; t += 2) {                                                            \
            const __m512 p0 = _mm512_set1_ps(p[t]), p1 = _mm512_set1_ps(p[t + 1]);              \
            const uint16_t *r0 = v + t * ld, *r1 = r0 + ld;                                     \
            _Pragma("GCC unroll 16") for (int j = 0; j < NV; j++) {                             \
                a[j] = _mm512_fmadd_ps(widen16(r0 + 16 * j, ALL, bf16), p0, a[j]);              \
                b[j] = _mm512_fmadd_ps(widen16(r1 + 16 * j, ALL, bf16), p1, b[j]);              \
            }                                                                                   \
        }                                                                                       \
        if (t < n) {                                                                            \
            const __m512 p0 = _mm512_set1_ps(p[t]);                                             \
            _Pragma("GCC unroll 16") for (int j = 0; j < NV; j++)                               \
                a[j] = _mm512_fmadd_ps(widen16(v + t * ld + 16 * j, ALL, bf16), p0, a[j]);      \
        }                                                                                       \
        _Pragma("GCC unroll 16") for (int j = 0; j < NV; j++)                                   \
            _mm512_storeu_ps(out + 16 * j, _mm512_add_ps(a[j], b[j]));                          \
    }
HALF_VALUES(1)
HALF_VALUES(2)
HALF_VALUES(4)
HALF_VALUES(8)

/* out[d] = sum_t p[t] v[t * ld + d], d < hd (a multiple of 16, at most 256):
 * in pieces of 128, 64, 32 and 16 columns. */
AVX512_TARGET void hmti_kv_half_values(const uint16_t *v, int64_t ld, int64_t hd, const float *p,
                                       int64_t n, int bf16, float *out) {
    int64_t d = 0;
    for (; d + 128 <= hd; d += 128) values_8(v + d, ld, p, n, bf16, out + d);
    if (d + 64 <= hd) values_4(v + d, ld, p, n, bf16, out + d), d += 64;
    if (d + 32 <= hd) values_2(v + d, ld, p, n, bf16, out + d), d += 32;
    if (d + 16 <= hd) values_1(v + d, ld, p, n, bf16, out + d);
}
