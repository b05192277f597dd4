/* Pieces the AVX-512 kernels of the 16-row families share: IQ4_NL's code
 * book as unsigned bytes, the column store of the dequantizers (Q8_0's
 * family, Q6_K, IQ4_XS), an activation row's super-block, and for the
 * K-quant families with one f16 d per row and super-block and one FMA per
 * super-block (Q6_K, IQ4_XS) the FMA and the several-row driver. For
 * HMTI_IL16_K_MULTI an including file defines QT (its target attribute),
 * MAX_ACT and sb_sums (below). */
#ifndef HMT_KERNELS_QUANT_IL16_X86_H
#define HMT_KERNELS_QUANT_IL16_X86_H

#include <immintrin.h>

#include "kernels/cpu.h"
#include "kernels/quant_impl.h"

/* The 16 code-book values (hmti_iq4_values) + 128 as u8, in every 128-bit
 * lane: vpshufb by a nibble gives its weight as vpdpbusd's unsigned operand. */
AVX512_TARGET static inline __attribute__((always_inline)) __m512i hmti_il16_iq4_book(void) {
    return _mm512_broadcast_i32x4(
        _mm_add_epi8(_mm_loadu_si128((const __m128i *)(const void *)hmti_iq4_values), _mm_set1_epi8((char)0x80)));
}

/* acc + the super-block's FMA from its exact int sums: (float)sum * (the
 * 16 rows' f16 d at blk * the activation's scale) + acc. */
AVX512_TARGET static inline __attribute__((always_inline)) __m512 hmti_il16_sb_fma(const uint8_t *blk, __m512i sum,
                                                                                  float xd, __m512 acc) {
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)blk));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(d, _mm512_set1_ps(xd)), acc);
}

/* Columns 4v..4v+3 of the 16 rows from W (lane r: row r, byte k: column
 * 4v + k, as an unsigned weight + off) as the row dequantizers do them:
 * (float)(u - off) * ds, exact conversion, one rounding; with has_min
 * (Q4_1, Q5_1: off 0) + m, a second. Column c is one 64-byte store at
 * o + c * ld. */
AVX512_TARGET static inline __attribute__((always_inline)) void hmti_il16_store_cols(float *o, int64_t ld, __m512i W,
                                                                                    __m512 ds, int off,
                                                                                    const int has_min, __m512 m) {
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        const __m512i u = _mm512_srli_epi32(_mm512_slli_epi32(W, 24 - 8 * k), 24);
        const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(u, _mm512_set1_epi32(off))), ds);
        _mm512_storeu_ps(o + k * ld, has_min ? _mm512_add_ps(v, m) : v);
    }
}

/* Activation a's super-block s, the rows act_stride bytes apart. */
static inline __attribute__((always_inline)) const hmti_q8_256 *hmti_il16_k_act(const uint8_t *act, size_t as, int a,
                                                                               int64_t s) {
    return (const hmti_q8_256 *)(const void *)(act + (size_t)a * as) + s;
}

/* hmti_il16_<name>_multi and its group_multi (one group against na <=
 * MAX_ACT activations): per super-block, the including file's
 * sb_sums(g, act, act_stride, s, na, sum) gives each activation's exact int
 * sum (each sub-block loaded and unpacked once for all of them), then the
 * one-row kernel's FMA per activation; the full passes of MAX_ACT rows
 * with a constant count (no per-row tests). */
#define HMTI_IL16_K_MULTI(name, BLOCK)                                                                              \
    QT static inline __attribute__((always_inline)) void group_multi(int64_t nsb, const uint8_t *g,                \
                                                                     const uint8_t *act, size_t as, const int na,  \
                                                                     float *y, int64_t ldy) {                      \
        __m512 acc[MAX_ACT];                                                                                       \
        _Pragma("GCC unroll 8") for (int a = 0; a < MAX_ACT; a++) acc[a] = _mm512_setzero_ps();                    \
        for (int64_t s = 0; s < nsb; s++, g += (BLOCK)) {                                                          \
            __m512i sum[MAX_ACT];                                                                                  \
            sb_sums(g, act, as, s, na, sum);                                                                       \
            _Pragma("GCC unroll 8") for (int a = 0; a < MAX_ACT; a++) {                                            \
                if (a >= na) break;                                                                                \
                acc[a] = hmti_il16_sb_fma(g, sum[a], hmti_il16_k_act(act, as, a, s)->d, acc[a]);                   \
            }                                                                                                      \
        }                                                                                                          \
        for (int a = 0; a < na; a++) _mm512_storeu_ps(y + a * ldy, acc[a]);                                        \
    }                                                                                                              \
    QT void hmti_il16_##name##_multi(int64_t n_groups, int64_t nsb, const uint8_t *w, const uint8_t *act,         \
                                     size_t act_stride, int64_t n_act, float *y, int64_t ldy) {                    \
        const size_t gb = (size_t)nsb * (BLOCK);                                                                   \
        for (int64_t i = 0; i < n_groups; i++, w += gb)                                                            \
            for (int64_t a = 0; a < n_act; a += MAX_ACT) {                                                         \
                const uint8_t *x = act + (size_t)a * act_stride;                                                   \
                float *yo = y + a * ldy + 16 * i;                                                                  \
                if (n_act - a >= MAX_ACT)                                                                          \
                    group_multi(nsb, w, x, act_stride, MAX_ACT, yo, ldy);                                          \
                else                                                                                               \
                    group_multi(nsb, w, x, act_stride, (int)(n_act - a), yo, ldy);                                 \
            }                                                                                                      \
    }

#endif
