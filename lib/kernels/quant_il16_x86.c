/* AVX-512 kernels of Q8_0 in groups of 16 rows (quant_impl.h, quant.h):
 * the dot products with one or several activation rows (AVX512-VNNI) and
 * the dequantizer of the prompt path.
 *
 * A 64-byte load of a block's quants holds, in int32 lane r, 4 weights + 128
 * of row r: one vpdpbusd against the activation's matching dword broadcast
 * adds them into row r's lane, so 8 of them sum each row's block in its own
 * lane, with no fold, and the 16 lanes are the 16 rows' results. The lane
 * starts at -128 * the activation block's sum (the +128 removed exactly).
 * Then, per block in order, one FMA: acc = (float)sum * (f16 scale * the
 * activation's scale) + acc, hmti_il16_dot_ref's steps; the several-row
 * kernel does the same per activation row, so each of its results is the
 * one-row kernel's bits. */
#include <immintrin.h>

#include "kernels/cpu.h"
#include "kernels/quant_impl.h"

#define QT __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx2,fma,f16c")))
#define L256(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))

enum { MAX_ACT = 8 }; /* activation rows per pass: 8 accumulators and the 8 weight vectors in registers */

/* The activation block's dword v, broadcast (vpdpbusd's embedded broadcast). */
static inline int32_t act_dword(const hmti_q8_32 *x, int v) {
    int32_t q;
    memcpy(&q, x->qs + 4 * v, 4);
    return q;
}

/* The exact int sums of the block's 16 rows (quants W[0..7]) with x: two
 * chains of 4 vpdpbusd, so that the two run side by side. */
QT static inline __attribute__((always_inline)) __m512i block_sums(const __m512i *W, const hmti_q8_32 *x) {
    __m512i s0 = _mm512_set1_epi32(-128 * (x->sum[0] + x->sum[1])), s1 = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++) {
        s0 = _mm512_dpbusd_epi32(s0, W[v], _mm512_set1_epi32(act_dword(x, v)));
        s1 = _mm512_dpbusd_epi32(s1, W[4 + v], _mm512_set1_epi32(act_dword(x, 4 + v)));
    }
    return _mm512_add_epi32(s0, s1);
}

QT static inline __attribute__((always_inline)) void load_block(const uint8_t *blk, __m512i *W, __m512 *dw) {
#pragma GCC unroll 8
    for (int v = 0; v < 8; v++) W[v] = _mm512_loadu_si512(blk + 32 + 64 * v);
    *dw = _mm512_cvtph_ps(L256(blk));
}

/* One group against one activation. Two blocks per turn: the second's loads
 * and integer chains do not wait for the first's FMA. */
QT static inline __attribute__((always_inline)) __m512 group_one(int64_t nb, const uint8_t *g,
                                                                  const hmti_q8_32 *a) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, g += HMTI_IL16_BLOCK) {
        hmti_pf_span(g, HMTI_IL16_BLOCK);
        __m512i W[8];
        __m512 dw;
        load_block(g, W, &dw);
        const __m512i s = block_sums(W, &a[b]);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(a[b].d)), acc);
    }
    return acc;
}

QT void hmti_il16_dot_vnni(int64_t n_groups, int64_t nb, const uint8_t *w, const hmti_q8_32 *act, float *y) {
    const size_t gb = (size_t)nb * HMTI_IL16_BLOCK;
    int64_t i = 0;
    for (; i + 2 <= n_groups; i += 2, w += 2 * gb) { /* two independent FMA chains */
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        const uint8_t *g0 = w, *g1 = w + gb;
        for (int64_t b = 0; b < nb; b++, g0 += HMTI_IL16_BLOCK, g1 += HMTI_IL16_BLOCK) {
            hmti_pf_span(g0, HMTI_IL16_BLOCK);
            hmti_pf_span(g1, HMTI_IL16_BLOCK);
            const __m512 da = _mm512_set1_ps(act[b].d);
            __m512i W[8];
            __m512 dw;
            load_block(g0, W, &dw);
            const __m512i s0 = block_sums(W, &act[b]);
            acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_mul_ps(dw, da), acc0);
            load_block(g1, W, &dw);
            const __m512i s1 = block_sums(W, &act[b]);
            acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), _mm512_mul_ps(dw, da), acc1);
        }
        _mm512_storeu_ps(y + 16 * i, acc0);
        _mm512_storeu_ps(y + 16 * i + 16, acc1);
    }
    if (i < n_groups) _mm512_storeu_ps(y + 16 * i, group_one(nb, w, act));
}

/* One group against na <= MAX_ACT activations: the block's weights loaded
 * once, then per activation the one-row kernel's steps. */
QT static inline __attribute__((always_inline)) void
group_multi(int64_t nb, const uint8_t *g, const uint8_t *act, size_t as, const int na, float *y, int64_t ldy) {
    __m512 acc[MAX_ACT];
#pragma GCC unroll 8
    for (int a = 0; a < MAX_ACT; a++) acc[a] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, g += HMTI_IL16_BLOCK) {
        hmti_pf_span(g, HMTI_IL16_BLOCK);
        __m512i W[8];
        __m512 dw;
        load_block(g, W, &dw);
#pragma GCC unroll 8
        for (int a = 0; a < MAX_ACT; a++) {
            if (a >= na) break;
            const hmti_q8_32 *x = (const hmti_q8_32 *)(const void *)(act + (size_t)a * as) + b;
            const __m512i s = block_sums(W, x);
            acc[a] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(x->d)), acc[a]);
        }
    }
    for (int a = 0; a < na; a++) _mm512_storeu_ps(y + a * ldy, acc[a]);
}

QT void hmti_il16_multi_vnni(int64_t n_groups, int64_t nb, const uint8_t *w, const uint8_t *act, size_t act_stride,
                             int64_t n_act, float *y, int64_t ldy) {
    const size_t gb = (size_t)nb * HMTI_IL16_BLOCK;
    for (int64_t i = 0; i < n_groups; i++, w += gb)
        for (int64_t a = 0; a < n_act; a += MAX_ACT) {
            const uint8_t *x = act + (size_t)a * act_stride;
            float *yo = y + a * ldy + 16 * i;
            if (n_act - a >= MAX_ACT) /* a constant count: no per-row tests */
                group_multi(nb, w, x, act_stride, MAX_ACT, yo, ldy);
            else
                group_multi(nb, w, x, act_stride, (int)(n_act - a), yo, ldy);
        }
}

/* Per block: the 16 scales once; per 64-byte load, its 4 columns (byte k of
 * every lane, sign-extended after the ^ 0x80) times them, as the row
 * dequantizers do ((float)q * d, exact conversion, one rounding). Column c
 * of the 16 rows is one 64-byte store. */
AVX512_TARGET void hmti_il16_dequant_cols(const uint8_t *g, int64_t b0, int64_t n_blocks, float *dst, int64_t ld) {
    const __m512i c128 = _mm512_set1_epi8((char)0x80);
    g += (size_t)b0 * HMTI_IL16_BLOCK;
    for (int64_t b = 0; b < n_blocks; b++, g += HMTI_IL16_BLOCK, dst += 32 * ld) {
        const __m512 d = _mm512_cvtph_ps(L256(g));
#pragma GCC unroll 8
        for (int v = 0; v < 8; v++) {
            const __m512i q = _mm512_xor_si512(_mm512_loadu_si512(g + 32 + 64 * v), c128);
            float *o = dst + 4 * v * ld;
            _mm512_storeu_ps(o, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(q, 24), 24)), d));
            _mm512_storeu_ps(o + ld, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(q, 16), 24)), d));
            _mm512_storeu_ps(o + 2 * ld, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(q, 8), 24)), d));
            _mm512_storeu_ps(o + 3 * ld, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srai_epi32(q, 24)), d));
        }
    }
}
