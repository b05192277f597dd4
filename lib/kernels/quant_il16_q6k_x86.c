/* AVX512-VNNI kernels of Q6_K in groups of 16 rows (quant_impl.h): the dot
 * products with one or several activation rows, and the dequantizer of
 * the prompt path.
 *
 * A pair of sub-blocks (32 columns) comes as 8 vectors W[4t + k] whose
 * int32 lane r holds row r's q (0..63) of columns 16t + 4k..+3 of the pair:
 * 4 nibble loads (low nibbles t = 0, high t = 1) or'ed with the top 2 bits
 * of 2 loads, each field shifted onto bits 4..5. Per sub-block j, 4
 * vpdpbusd against the activation's dwords broadcast sum each row in its
 * own lane, from -32 * the activation's sum over j (q - 32, exact); times
 * the 16 rows' scales (vpmulld) into the super-block's sum, then one FMA
 * per super-block: acc = (float)sum * (f16 d * activation d) + acc,
 * hmti_il16_q6k_dot_ref's steps. The several-row kernel does the same per
 * activation row, so each of its results is the one-row kernel's bits. */
#include "kernels/quant_il16_x86.h"

#define QT __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx2,fma,f16c")))
#define AI __attribute__((always_inline))
#define LOAD(p) _mm512_loadu_si512((const void *)(p))

enum {
    MAX_ACT = 8,                           /* activation rows per pass: their sums and accumulators in registers */
    PF_STEP = HMTI_IL16_Q6K_BLOCK / 8,     /* bytes prefetched per pair: the whole super-block in 8 steps */
    PF_AHEAD = 2 * HMTI_IL16_Q6K_BLOCK,    /* the one-row kernel's distance: two super-blocks */
};

/* The one-row kernel prefetches step p of the super-block two ahead into L1
 * only (hmti_pf_l1), as Q4_K's groups do. Against hmti_pf_span (L1 at 2 KiB
 * and L2 at 34 KiB ahead), quant-bench's Q6_K step, 2 alternated rounds:
 * 768-wide matrices 5.85-5.88 -> 4.63-6.04 ms at 1 thread, 3.73-3.74 ->
 * 2.97-3.18 at 2; TinyLlama-shaped ones 10.8-13.3 -> 8.5-9.1 and 5.8-6.6 ->
 * 4.7-4.9. */

/* Field k (bits 2k..2k+1 of each byte) of H on bits 4..5, the rest 0
 * (16-bit shifts: what crosses into the next byte is masked off). */
AVX512_TARGET static inline AI __m512i top_bits(__m512i H, const int k) {
    const __m512i m = _mm512_set1_epi8(0x30);
    if (k == 0) return _mm512_and_si512(_mm512_slli_epi16(H, 4), m);
    if (k == 1) return _mm512_and_si512(_mm512_slli_epi16(H, 2), m);
    if (k == 2) return _mm512_and_si512(H, m);
    return _mm512_and_si512(_mm512_srli_epi16(H, 2), m);
}

/* The pair at pr as W[0..7]. */
AVX512_TARGET static inline AI void load_pair(const uint8_t *pr, __m512i *W) {
    const __m512i m4 = _mm512_set1_epi8(15);
    const __m512i H0 = LOAD(pr + 256), H1 = LOAD(pr + 320);
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        const __m512i N = LOAD(pr + 64 * k);
        W[k] = _mm512_ternarylogic_epi64(N, top_bits(H0, k), m4, 0xEC); /* (N & 15) | top */
        W[4 + k] = _mm512_ternarylogic_epi64(_mm512_srli_epi16(N, 4), top_bits(H1, k), m4, 0xEC);
    }
}

/* The 16 rows' int8 scales of sub-block j as int32 lanes. */
AVX512_TARGET static inline AI __m512i scales(const uint8_t *blk, int j) {
    return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(blk + HMTI_IL16_Q6K_SCALES + 16 * j)));
}

/* Sub-block j's (q - 32) . a of the 16 rows (Wj: its 4 vectors), exact. */
QT static inline AI __m512i sub_sum(const __m512i *Wj, const hmti_q8_256 *x, int j) {
    __m512i s = _mm512_set1_epi32(-32 * x->sum[j]);
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        int32_t a;
        memcpy(&a, x->qs + 16 * j + 4 * k, 4);
        s = _mm512_dpbusd_epi32(s, Wj[k], _mm512_set1_epi32(a));
    }
    return s;
}

/* One group after another: one sequential stream, prefetched spread
 * through the loop (1/8 of a super-block per pair: measured faster over
 * memory than no software prefetch: 1 thread, quant-bench's 155 MB step,
 * 22-25 GB/s against 15-18.5). */
QT void hmti_il16_q6k_dot(int64_t n_groups, int64_t nsb, const uint8_t *w, const hmti_q8_256 *act, float *y) {
    for (int64_t i = 0; i < n_groups; i++) {
        __m512 acc = _mm512_setzero_ps();
        for (int64_t s = 0; s < nsb; s++, w += HMTI_IL16_Q6K_BLOCK) {
            const hmti_q8_256 *x = &act[s];
            __m512i sum0 = _mm512_setzero_si512(), sum1 = _mm512_setzero_si512(); /* two chains */
#pragma GCC unroll 8
            for (int p = 0; p < 8; p++) {
                __m512i W[8];
                hmti_pf_l1(w + PF_AHEAD + PF_STEP * p, PF_STEP);
                load_pair(w + HMTI_IL16_Q6K_PAIRS + HMTI_IL16_Q6K_PAIR * p, W);
                sum0 = _mm512_add_epi32(sum0, _mm512_mullo_epi32(sub_sum(W, x, 2 * p), scales(w, 2 * p)));
                sum1 = _mm512_add_epi32(sum1, _mm512_mullo_epi32(sub_sum(W + 4, x, 2 * p + 1), scales(w, 2 * p + 1)));
            }
            acc = hmti_il16_sb_fma(w, _mm512_add_epi32(sum0, sum1), x->d, acc);
        }
        _mm512_storeu_ps(y + 16 * i, acc);
    }
}

/* Super-block s of the group at g against na <= MAX_ACT activations: each
 * pair loaded (and unpacked) once, sum[a] the one-row kernel's int sum. */
QT static inline AI void sb_sums(const uint8_t *g, const uint8_t *act, size_t as, int64_t s, const int na,
                                 __m512i sum[MAX_ACT]) {
#pragma GCC unroll 8
    for (int a = 0; a < MAX_ACT; a++) sum[a] = _mm512_setzero_si512();
    for (int p = 0; p < 8; p++) {
        __m512i W[8];
        hmti_pf_span(g + PF_STEP * p, PF_STEP);
        load_pair(g + HMTI_IL16_Q6K_PAIRS + HMTI_IL16_Q6K_PAIR * p, W);
        const __m512i sc0 = scales(g, 2 * p), sc1 = scales(g, 2 * p + 1);
#pragma GCC unroll 8
        for (int a = 0; a < MAX_ACT; a++) {
            if (a >= na) break;
            const hmti_q8_256 *x = hmti_il16_k_act(act, as, a, s);
            sum[a] = _mm512_add_epi32(sum[a], _mm512_add_epi32(_mm512_mullo_epi32(sub_sum(W, x, 2 * p), sc0),
                                                               _mm512_mullo_epi32(sub_sum(W + 4, x, 2 * p + 1), sc1)));
        }
    }
}

HMTI_IL16_K_MULTI(q6k, HMTI_IL16_Q6K_BLOCK)

AVX512_TARGET void hmti_il16_q6k_dequant_cols(const uint8_t *g, int64_t s0, int64_t n, float *dst, int64_t ld) {
    g += (size_t)s0 * HMTI_IL16_Q6K_BLOCK;
    for (int64_t s = 0; s < n; s++, g += HMTI_IL16_Q6K_BLOCK) {
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)g));
        for (int p = 0; p < 8; p++, dst += 32 * ld) {
            __m512i W[8];
            load_pair(g + HMTI_IL16_Q6K_PAIRS + HMTI_IL16_Q6K_PAIR * p, W);
            for (int t = 0; t < 2; t++) {
                const __m512 ds = _mm512_mul_ps(d, _mm512_cvtepi32_ps(scales(g, 2 * p + t)));
                for (int k = 0; k < 4; k++)
                    hmti_il16_store_cols(dst + (16 * t + 4 * k) * ld, ld, W[4 * t + k], ds, 32, 0, _mm512_setzero_ps());
            }
        }
    }
}

/* ---- the family's table (quant_impl.h) ---- */
HMTI_IL16_FAMILY(hmti_il16_q6k_family, 256, HMTI_IL16_UNTYPED, hmti_il16_q6k_pack, hmti_il16_q6k_dot,
                 hmti_il16_q6k_multi, hmti_il16_q6k_dequant_row, hmti_il16_q6k_dequant_cols, NULL, NULL);
