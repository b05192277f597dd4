/* AVX512-VNNI kernels of IQ4_XS in groups of 16 rows (quant_impl.h): the
 * dot products with one or several activation rows, and the dequantizer of
 * the prompt path.
 *
 * A sub-block ib is 4 nibble loads: & 15 and (>> 4) & 15 give each row's
 * 32 nibbles in its dword lane (elements 32ib + 4v.. and 32ib + 16 + 4v..),
 * one vpshufb each turns them into code-book value + 128 (u8), and 8
 * vpdpbusd against the activation's dwords broadcast sum each row in its
 * own lane, from -128 * the activation's sub-block sum: the exact dot of
 * the values. Times the sub-block's scale - 32 (two loads per super-block
 * give the 16 rows' 6-bit scales, shifts and masks pick sub-block ib's) and
 * summed over the 8 sub-blocks; then one FMA per super-block,
 * hmti_il16_iq4xs_dot_ref's steps. The several-row kernel does the same
 * per activation row, so each of its results is the one-row kernel's bits. */
#include <immintrin.h>

#include "kernels/cpu.h"
#include "kernels/quant_impl.h"

#define QT __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx2,fma,f16c")))
#define AI __attribute__((always_inline))
#define LOAD(p) _mm512_loadu_si512((const void *)(p))

enum {
    MAX_ACT = 8,                            /* activation rows per pass: their sums and accumulators in registers */
    PF_STEP = HMTI_IL16_IQ4XS_BLOCK / 8,    /* bytes prefetched per sub-block: the super-block in 8 steps */
    PF_AHEAD = 2 * HMTI_IL16_IQ4XS_BLOCK,   /* how far ahead: two super-blocks, into L1 (as Q4_K's groups) */
};

/* The 16 rows' scale fields: sl lane r = row r's scales_l, sh its scales_h. */
typedef struct {
    __m512i sl, sh;
} scale_fields;

AVX512_TARGET static inline AI scale_fields load_scales(const uint8_t *blk) {
    const scale_fields f = {LOAD(blk + HMTI_IL16_IQ4XS_SL),
                            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(blk + HMTI_IL16_IQ4XS_SH)))};
    return f;
}

/* Sub-block ib's scale - 32 of the 16 rows, as int32 lanes. */
AVX512_TARGET static inline AI __m512i scale_of(scale_fields f, const int ib) {
    const __m512i lo = _mm512_and_si512(_mm512_srli_epi32(f.sl, 4 * ib), _mm512_set1_epi32(15));
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi32(f.sh, 2 * ib), _mm512_set1_epi32(3));
    return _mm512_sub_epi32(_mm512_or_si512(lo, _mm512_slli_epi32(hi, 4)), _mm512_set1_epi32(32));
}

/* Sub-block ib's values + 128: W[v] elements 32ib + 4v.., W[4 + v] 32ib + 16 + 4v.. */
AVX512_TARGET static inline AI void load_sub(const uint8_t *blk, const int ib, __m512i W[8]) {
    const __m512i m4 = _mm512_set1_epi8(15);
    const __m512i lut = _mm512_broadcast_i32x4(
        _mm_add_epi8(_mm_loadu_si128((const __m128i *)(const void *)hmti_iq4_values), _mm_set1_epi8((char)0x80)));
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++) {
        const __m512i N = LOAD(blk + HMTI_IL16_IQ4XS_QS + 256 * ib + 64 * v);
        W[v] = _mm512_shuffle_epi8(lut, _mm512_and_si512(N, m4));
        W[4 + v] = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(N, 4), m4));
    }
}

/* Sub-block ib's value . a of the 16 rows, exact. */
QT static inline AI __m512i sub_sum(const __m512i W[8], const hmti_q8_256 *x, const int ib) {
    __m512i s = _mm512_set1_epi32(-128 * (x->sum[2 * ib] + x->sum[2 * ib + 1])), t = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++) {
        int32_t a0, a1;
        memcpy(&a0, x->qs + 32 * ib + 4 * v, 4);
        memcpy(&a1, x->qs + 32 * ib + 16 + 4 * v, 4);
        s = _mm512_dpbusd_epi32(s, W[v], _mm512_set1_epi32(a0));
        t = _mm512_dpbusd_epi32(t, W[4 + v], _mm512_set1_epi32(a1));
    }
    return _mm512_add_epi32(s, t);
}

/* acc + the super-block's FMA, from its exact int sum. */
AVX512_TARGET static inline AI __m512 sb_fma(const uint8_t *blk, __m512i sum, float xd, __m512 acc) {
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)blk));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(d, _mm512_set1_ps(xd)), acc);
}

/* One group after another: one sequential stream, prefetched spread
 * through the loop (1/8 of a super-block per sub-block). */
QT void hmti_il16_iq4xs_dot(int64_t n_groups, int64_t nsb, const uint8_t *w, const hmti_q8_256 *act, float *y) {
    for (int64_t i = 0; i < n_groups; i++) {
        __m512 acc = _mm512_setzero_ps();
        for (int64_t s = 0; s < nsb; s++, w += HMTI_IL16_IQ4XS_BLOCK) {
            const hmti_q8_256 *x = &act[s];
            const scale_fields f = load_scales(w);
            __m512i sum = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int ib = 0; ib < 8; ib++) {
                __m512i W[8];
                hmti_pf_l1(w + PF_AHEAD + PF_STEP * ib, PF_STEP);
                load_sub(w, ib, W);
                sum = _mm512_add_epi32(sum, _mm512_mullo_epi32(sub_sum(W, x, ib), scale_of(f, ib)));
            }
            acc = sb_fma(w, sum, x->d, acc);
        }
        _mm512_storeu_ps(y + 16 * i, acc);
    }
}

/* One group against na <= MAX_ACT activations: each sub-block loaded (and
 * looked up) once, then per activation the one-row kernel's steps. */
QT static inline AI void group_multi(int64_t nsb, const uint8_t *g, const uint8_t *act, size_t as, const int na,
                                     float *y, int64_t ldy) {
    __m512 acc[MAX_ACT];
#pragma GCC unroll 8
    for (int a = 0; a < MAX_ACT; a++) acc[a] = _mm512_setzero_ps();
    for (int64_t s = 0; s < nsb; s++, g += HMTI_IL16_IQ4XS_BLOCK) {
        const scale_fields f = load_scales(g);
        __m512i sum[MAX_ACT];
#pragma GCC unroll 8
        for (int a = 0; a < MAX_ACT; a++) sum[a] = _mm512_setzero_si512();
        for (int ib = 0; ib < 8; ib++) {
            __m512i W[8];
            hmti_pf_l1(g + PF_AHEAD + PF_STEP * ib, PF_STEP);
            load_sub(g, ib, W);
            const __m512i sc = scale_of(f, ib);
#pragma GCC unroll 8
            for (int a = 0; a < MAX_ACT; a++) {
                if (a >= na) break;
                const hmti_q8_256 *x = (const hmti_q8_256 *)(const void *)(act + (size_t)a * as) + s;
                sum[a] = _mm512_add_epi32(sum[a], _mm512_mullo_epi32(sub_sum(W, x, ib), sc));
            }
        }
#pragma GCC unroll 8
        for (int a = 0; a < MAX_ACT; a++) {
            if (a >= na) break;
            const hmti_q8_256 *x = (const hmti_q8_256 *)(const void *)(act + (size_t)a * as) + s;
            acc[a] = sb_fma(g, sum[a], x->d, acc[a]);
        }
    }
    for (int a = 0; a < na; a++) _mm512_storeu_ps(y + a * ldy, acc[a]);
}

QT void hmti_il16_iq4xs_multi(int64_t n_groups, int64_t nsb, const uint8_t *w, const uint8_t *act, size_t act_stride,
                              int64_t n_act, float *y, int64_t ldy) {
    const size_t gb = (size_t)nsb * HMTI_IL16_IQ4XS_BLOCK;
    for (int64_t i = 0; i < n_groups; i++, w += gb)
        for (int64_t a = 0; a < n_act; a += MAX_ACT) {
            const uint8_t *x = act + (size_t)a * act_stride;
            float *yo = y + a * ldy + 16 * i;
            if (n_act - a >= MAX_ACT) /* a constant count: no per-row tests */
                group_multi(nsb, w, x, act_stride, MAX_ACT, yo, ldy);
            else
                group_multi(nsb, w, x, act_stride, (int)(n_act - a), yo, ldy);
        }
}

/* Columns 4v..4v+3 of W (lane r: row r; value + 128 per byte) as
 * hmti_dequantize_row does them: (d * scale) * value; column c of the 16
 * rows is one 64-byte store. */
AVX512_TARGET static inline AI void store_cols(float *o, int64_t ld, __m512i W, __m512 ds) {
    const __m512i off = _mm512_set1_epi32(128);
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        const __m512i u = _mm512_srli_epi32(_mm512_slli_epi32(W, 24 - 8 * k), 24);
        _mm512_storeu_ps(o + k * ld, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(u, off)), ds));
    }
}

AVX512_TARGET void hmti_il16_iq4xs_dequant_cols(const uint8_t *g, int64_t s0, int64_t n, float *dst, int64_t ld) {
    g += (size_t)s0 * HMTI_IL16_IQ4XS_BLOCK;
    for (int64_t s = 0; s < n; s++, g += HMTI_IL16_IQ4XS_BLOCK) {
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)g));
        const scale_fields f = load_scales(g);
        for (int ib = 0; ib < 8; ib++, dst += 32 * ld) {
            __m512i W[8];
            load_sub(g, ib, W);
            const __m512 ds = _mm512_mul_ps(d, _mm512_cvtepi32_ps(scale_of(f, ib)));
            for (int v = 0; v < 4; v++) {
                store_cols(dst + 4 * v * ld, ld, W[v], ds);
                store_cols(dst + (16 + 4 * v) * ld, ld, W[4 + v], ds);
            }
        }
    }
}

/* ---- the family's table (quant_impl.h) ---- */
HMTI_IL16_K_FAMILY(iq4xs);
