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
#include "kernels/quant_il16_x86.h"

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
    const __m512i lut = hmti_il16_iq4_book();
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
            acc = hmti_il16_sb_fma(w, sum, x->d, acc);
        }
        _mm512_storeu_ps(y + 16 * i, acc);
    }
}

/* Super-block s of the group at g against na <= MAX_ACT activations: each
 * sub-block loaded (and looked up) once, sum[a] the one-row kernel's int sum. */
QT static inline AI void sb_sums(const uint8_t *g, const uint8_t *act, size_t as, int64_t s, const int na,
                                 __m512i sum[MAX_ACT]) {
    const scale_fields f = load_scales(g);
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
            sum[a] = _mm512_add_epi32(sum[a], _mm512_mullo_epi32(sub_sum(W, hmti_il16_k_act(act, as, a, s), ib), sc));
        }
    }
}

HMTI_IL16_K_MULTI(iq4xs, HMTI_IL16_IQ4XS_BLOCK)

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
                hmti_il16_store_cols(dst + 4 * v * ld, ld, W[v], ds, 128, 0, _mm512_setzero_ps());
                hmti_il16_store_cols(dst + (16 + 4 * v) * ld, ld, W[4 + v], ds, 128, 0, _mm512_setzero_ps());
            }
        }
    }
}

/* ---- the family's table (quant_impl.h) ---- */
HMTI_IL16_FAMILY(hmti_il16_iq4xs_family, 256, HMTI_IL16_UNTYPED, hmti_il16_iq4xs_pack, hmti_il16_iq4xs_dot,
                 hmti_il16_iq4xs_multi, hmti_il16_iq4xs_dequant_row, hmti_il16_iq4xs_dequant_cols, NULL, NULL);
