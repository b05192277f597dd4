/* AVX512-VNNI kernels of the 32-element block types on 512-bit registers
 * (quant_dot_vnni.c dispatches to them first). */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu.h"
#include "kernels/quant_impl.h"

#define QT __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx2,fma,f16c")))
#define L128(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define L256(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))

/* Lane i of the result: lanes 2i and 2i+1 of x:y (x lanes 0..15, y 16..31) added. */
QT static inline __m512i fold_pairs(__m512i x, __m512i y) {
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    return _mm512_add_epi32(_mm512_permutex2var_epi32(x, ev, y), _mm512_permutex2var_epi32(x, od, y));
}

/* ---- 512-bit kernels of Q4_0 / Q4_1 / IQ4_NL / Q5_0 / Q5_1, 16 blocks per step --------- */
/* 1 or 4 rows per call. zmm m (m = 0..3) holds blocks 4m..4m+3 of a step of
 * 16, 128-bit lane k block 4m+k: its 64-byte load at the blocks' start
 * brings blocks 4m..4m+2 (one vpermb) and the 4 scales (and mins); block
 * 4m+3's last bytes lie past it and come by a masked broadcast (Q5_0, Q5_1:
 * see nib_weights). The nibbles (the high ones by one gf2p8affine: x >> 4)
 * are made unsigned weights u (Q4_0, Q4_1: q in 0..15; IQ4_NL: code-book
 * value + 128 by vpshufb; Q5_0, Q5_1: plus 16 where vpshufbitqmb finds the
 * 5th bit, q in 0..31) and dotted with the activation's elements 0..15 and
 * 16..31 of each block by vpdpbusd: each int32 lane is a sum of 8 products.
 * Q4_0, Q4_1: |lane| <= 8 * 15 * 127 < 2^15, so two packs with signed
 * saturation (never saturating) and vpmaddwd by ones fold the 4 zmm into one
 * whose lane 4k+m is the exact sum of block 4m+k; the other types' lanes (up
 * to 8 * 255 * 127) are folded by two rounds of vpermt2d pairs and adds,
 * lane b for block b. Minus 8 (Q4_0), 16 (Q5_0) or 128 (IQ4_NL) times the
 * block's activation sum, that is the block's integer dot. One vpermw per
 * zmm (Q5_0, Q5_1: two) puts the f16 scales in the same lane order (Q4_1,
 * Q5_1: the mins in the upper words), and times the activation scales they
 * are applied with one FMA per 16 blocks (Q4_1, Q5_1: a second one, min
 * times the activation's scale times its sum): 16 float terms per step, one
 * per block (or two), added into the 16 lanes of one accumulator per row
 * (within tests/check_quant.c's bound for any order; one FMA chain per row,
 * 4 in a 4-row call, and a step's work between FMAs). A 4-row call
 * does, row by row, exactly the operations of a 1-row call, so
 * hmti_gemv_q_rows returns the bits of the single-row kernel. */
#define QV                                                                                         \
    __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx512vbmi,avx512bitalg,gfni,avx2,fma,f16c")))
enum { KIND_Q4_0, KIND_Q4_1, KIND_IQ4_NL, KIND_Q5_0, KIND_Q5_1 };

/* Block bytes, the offset of the packed nibbles and of the 5th bits (Q5_0,
 * Q5_1) in a block. */
static inline int nib_bytes(int kind) {
    return kind == KIND_Q4_1 ? 20 : kind == KIND_Q5_0 ? 22 : kind == KIND_Q5_1 ? 24 : 18;
}
static inline int nib_qs(int kind) { return kind == KIND_Q4_1 ? 4 : kind == KIND_Q5_0 ? 6 : kind == KIND_Q5_1 ? 8 : 2; }
static inline int nib_qh(int kind) { return kind == KIND_Q5_0 ? 2 : 4; }
static inline int nib_five(int kind) { return kind == KIND_Q5_0 || kind == KIND_Q5_1; }
static inline int nib_min(int kind) { return kind == KIND_Q4_1 || kind == KIND_Q5_1; }
/* Lanes that fit int16 packs: Q4_0, Q4_1. */
static inline int nib_packs(int kind) { return kind == KIND_Q4_0 || kind == KIND_Q4_1; }

/* The lane of block b (0..15) in a step's folded sums. */
static inline int nib_lane(int kind, int b) { return nib_packs(kind) ? 4 * (b % 4) + b / 4 : b; }

typedef struct {
    __m512i lo[4], hi[4]; /* lane k of [m]: elements 0..15 / 16..31 of block 4m + k */
    __m512i off;          /* lane of block b: -offset * the sum of b's activation */
    __m512 d;             /* lane of block b: the scale of b's activation */
    __m512 dsum;          /* Q4_1, Q5_1, lane of block b: d * the sum of b's activation */
} nib_act;

/* The activation of a step of g <= 16 blocks (the lanes of missing blocks 0). */
QV static inline __attribute__((always_inline)) void
nib_act_load(const int kind, const int g, const hmti_q8_32 *a, nib_act *v) {
    /* blocks 4m..4m+3 as two [lo hi lo hi] (a load and an insert each), then
     * one shuffle for the lo halves and one for the hi halves */
#pragma GCC unroll 4
    for (int m = 0; m < 4; m++) {
        __m512i z[2];
        for (int h = 0; h < 2; h++) {
            const int b = 4 * m + 2 * h;
            z[h] = b < g ? _mm512_zextsi256_si512(L256(a[b].qs)) : _mm512_setzero_si512();
            if (b + 1 < g) z[h] = _mm512_inserti64x4(z[h], L256(a[b + 1].qs), 1);
        }
        v->lo[m] = _mm512_shuffle_i64x2(z[0], z[1], 0x88); /* 128-bit lanes 0, 2 of each */
        v->hi[m] = _mm512_shuffle_i64x2(z[0], z[1], 0xDD); /* lanes 1, 3 */
    }
    /* the d and sums of block b are dwords 10b of the blocks */
    const __m512i vidx = nib_packs(kind)
                             ? _mm512_setr_epi32(0, 40, 80, 120, 10, 50, 90, 130, 20, 60, 100, 140, 30, 70, 110, 150)
                             : _mm512_setr_epi32(0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150);
    __mmask16 live = 0;
    for (int b = 0; b < g; b++) live |= (__mmask16)(1u << nib_lane(kind, b));
    v->d = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, vidx, &a->d, 4);
    const __m512i sums = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, vidx, a->sum, 4);
    const int offset = kind == KIND_Q4_0 ? 8 : kind == KIND_Q5_0 ? 16 : kind == KIND_IQ4_NL ? 128 : 0;
    v->off = _mm512_madd_epi16(sums, _mm512_set1_epi16((short)-offset));
    if (nib_min(kind))
        v->dsum = _mm512_mul_ps(v->d, _mm512_cvtepi32_ps(_mm512_madd_epi16(sums, _mm512_set1_epi16(1))));
}

/* Zmm m of a step (z: its first block; blocks 4m.. of g): the weights u as
 * u8, low and high halves of each block, into *lo and *hi; the scales (and
 * mins) of its blocks merged into their words of *X. */
QV static inline __attribute__((always_inline)) void
nib_weights(const int kind, const int g, const int m, const uint8_t *z, __m512i *lo, __m512i *hi, __m512i *X) {
    const int bb = nib_bytes(kind), qo = nib_qs(kind);
    const __m512i m4 = _mm512_set1_epi8(15);
    const __m512i shr4 = _mm512_set1_epi64(0x1020408000000000); /* gf2p8affine: x >> 4 */
    const int bytes = bb * (g - 4 * m);
    const __m512i L = bytes >= 64 ? _mm512_loadu_si512(z) : _mm512_maskz_loadu_epi8((1ull << bytes) - 1, z);
    __m512i W;
    if (!nib_five(kind)) {
        /* bytes of lane k < 3: the 16 packed bytes of block k (at bb k + qo) */
        const __m512i nib = kind == KIND_Q4_1
                                ? _mm512_set_epi64(0, 0, 0x3B3A393837363534, 0x333231302F2E2D2C, 0x2726252423222120,
                                                   0x1F1E1D1C1B1A1918, 0x131211100F0E0D0C, 0x0B0A090807060504)
                                : _mm512_set_epi64(0, 0, 0x3534333231302F2E, 0x2D2C2B2A29282726, 0x232221201F1E1D1C,
                                                   0x1B1A191817161514, 0x11100F0E0D0C0B0A, 0x0908070605040302);
        /* the scale of block k is word bb/2 k of the load: Q4_0, Q4_1 words
         * 4k + m of all 4 zmm (Q4_1's min, word 10k + 1: words 16 + 4k + m),
         * IQ4_NL words 4m..4m+3 of zmm m */
        const __m512i widx =
            kind == KIND_Q4_0
                ? _mm512_set_epi64(0, 0, 0, 0, 0x001B001B001B001B, 0x0012001200120012, 0x0009000900090009, 0)
            : kind == KIND_Q4_1
                ? _mm512_set_epi64(0x001F001F001F001F, 0x0015001500150015, 0x000B000B000B000B, 0x0001000100010001,
                                   0x001E001E001E001E, 0x0014001400140014, 0x000A000A000A000A, 0)
                : _mm512_set1_epi64(0x001B001200090000);
        W = _mm512_permutexvar_epi8(nib, L);
        W = 4 * m + 3 < g ? _mm512_mask_broadcast_i32x4(W, 0xF000, L128(z + 3 * bb + qo))
                          : _mm512_maskz_mov_epi32(0x0FFF, W);
        const __mmask32 wm = kind == KIND_Q4_0   ? 0x1111u << m
                             : kind == KIND_Q4_1 ? 0x11111111u << m
                                                 : 0xFu << (4 * m);
        *X = _mm512_mask_permutexvar_epi16(*X, wm, widx, L);
        *lo = _mm512_and_si512(W, m4);
        *hi = _mm512_gf2p8affine_epi64_epi8(W, shr4, 0);
        return;
    }
    /* Q5_0, Q5_1: 4 blocks are 88 or 96 bytes; a second load L2 ends with
     * them and brings the packed bytes of blocks 1..3 (block 0's by a masked
     * broadcast) and the scale (and min) of block 3; L the others and the
     * 5th bits of blocks 0..2 (block 3's by a masked broadcast). */
    const int o2 = 4 * bb - 64, bytes2 = bytes - o2;
    const __m512i L2 = bytes2 >= 64 ? _mm512_loadu_si512(z + o2)
                       : bytes2 > 0 ? _mm512_maskz_loadu_epi8((1ull << bytes2) - 1, z + o2)
                                    : _mm512_setzero_si512();
    const __m512i nib = kind == KIND_Q5_0
                            ? _mm512_set_epi64(0x3F3E3D3C3B3A3938, 0x3736353433323130, 0x2928272625242322,
                                               0x21201F1E1D1C1B1A, 0x131211100F0E0D0C, 0x0B0A090807060504, 0, 0)
                            : _mm512_set_epi64(0x3F3E3D3C3B3A3938, 0x3736353433323130, 0x2726252423222120,
                                               0x1F1E1D1C1B1A1918, 0x0F0E0D0C0B0A0908, 0x0706050403020100, 0, 0);
    /* qwords 2k, 2k+1 <- the 4 bytes of block k's 5th bits (k < 3, from L) */
    const __m512i qidx = kind == KIND_Q5_0
                             ? _mm512_set_epi64(0, 0, 0x31302F2E31302F2E, 0x31302F2E31302F2E, 0x1B1A19181B1A1918,
                                                0x1B1A19181B1A1918, 0x0504030205040302, 0x0504030205040302)
                             : _mm512_set_epi64(0, 0, 0x3736353437363534, 0x3736353437363534, 0x1F1E1D1C1F1E1D1C,
                                                0x1F1E1D1C1F1E1D1C, 0x0706050407060504, 0x0706050407060504);
    /* words 4m + k <- the scale of block k (k < 3 from L, 3 from L2); the
     * mins (Q5_1) in words 16 + 4m + k */
    const __m512i add16 = _mm512_set1_epi8(16);
    const __m512i widx = kind == KIND_Q5_0 ? _mm512_set1_epi64(0x00150016000B0000)
                                           : _mm512_set_epi64(0x00150019000D0001, 0x00150019000D0001,
                                                              0x00150019000D0001, 0x00150019000D0001,
                                                              0x00140018000C0000, 0x00140018000C0000,
                                                              0x00140018000C0000, 0x00140018000C0000);
    /* byte e of a lane: bit e of its block's 5th bits for the low half, bit
     * 16 + e for the high half */
    const __m512i clo = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    const __m512i chi = _mm512_add_epi8(clo, add16);
    W = _mm512_mask_broadcast_i32x4(_mm512_permutexvar_epi8(nib, L2), 0x000F, L128(z + qo));
    __m512i Q = _mm512_permutexvar_epi8(qidx, L);
    if (4 * m + 3 < g) Q = _mm512_mask_set1_epi32(Q, 0xF000, (int)hmti_qu32(z + 3 * bb + nib_qh(kind)));
    const __m512i l4 = _mm512_and_si512(W, m4), h4 = _mm512_gf2p8affine_epi64_epi8(W, shr4, 0);
    *lo = _mm512_mask_add_epi8(l4, _mm512_bitshuffle_epi64_mask(Q, clo), l4, add16);
    *hi = _mm512_mask_add_epi8(h4, _mm512_bitshuffle_epi64_mask(Q, chi), h4, add16);
    const __mmask32 k3 = (nib_min(kind) ? 0x70007u : 0x7u) << (4 * m);
    const __mmask32 k4 = (nib_min(kind) ? 0x80008u : 0x8u) << (4 * m);
    *X = _mm512_mask_permutexvar_epi16(*X, k3, widx, L);
    *X = _mm512_mask_permutexvar_epi16(*X, k4, widx, L2);
}

QV static inline __attribute__((always_inline)) void
nib_step(const int kind, const int R, const int g, const uint8_t *w, size_t stride, const hmti_q8_32 *a,
         __m512 *acc) {
    const int bb = nib_bytes(kind);
    const __m512i ones = _mm512_set1_epi16(1);
    const __m512i tab = _mm512_broadcast_i32x4(_mm_xor_si128(L128(hmti_iq4_values), _mm_set1_epi8((char)0x80)));
    nib_act v;
    nib_act_load(kind, g, a, &v);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        const uint8_t *b = w + (size_t)r * stride;
        __m512i P[4], X = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int m = 0; m < 4; m++) {
            P[m] = _mm512_setzero_si512();
            if (4 * m >= g) continue;
            __m512i lo, hi;
            nib_weights(kind, g, m, b + 4 * bb * m, &lo, &hi, &X);
            if (kind == KIND_IQ4_NL) {
                lo = _mm512_shuffle_epi8(tab, lo);
                hi = _mm512_shuffle_epi8(tab, hi);
            }
            P[m] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(P[m], lo, v.lo[m]), hi, v.hi[m]);
        }
        __m512i S;
        if (nib_packs(kind)) {
            const __m512i P01 = _mm512_madd_epi16(_mm512_packs_epi32(P[0], P[1]), ones);
            const __m512i P23 = _mm512_madd_epi16(_mm512_packs_epi32(P[2], P[3]), ones);
            S = _mm512_dpwssd_epi32(v.off, _mm512_packs_epi32(P01, P23), ones);
        } else {
            S = _mm512_add_epi32(v.off, fold_pairs(fold_pairs(P[0], P[1]), fold_pairs(P[2], P[3])));
        }
        const __m512 sc = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(X)), v.d);
        acc[r] = _mm512_fmadd_ps(sc, _mm512_cvtepi32_ps(S), acc[r]);
        if (nib_min(kind))
            acc[r] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(X, 1)), v.dsum, acc[r]);
    }
}

QV static inline __attribute__((always_inline)) void
nib_rows(const int kind, const int R, int64_t n, const uint8_t *w, size_t stride, const hmti_q8_32 *a,
         float *out) {
    __m512 acc[4];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    const int64_t nb = n / 32, bb = nib_bytes(kind);
    int64_t i = 0;
    for (; i + 16 <= nb; i += 16) {
        if (R == 4) hmti_pf_span(w + 4 * (size_t)i * bb, 4 * 16 * (size_t)bb);
        nib_step(kind, R, 16, w + (size_t)i * bb, stride, a + i, acc);
    }
    if (i + 8 <= nb) { /* 768-wide rows: one step of 16 and one of 8 */
        nib_step(kind, R, 8, w + (size_t)i * bb, stride, a + i, acc);
        i += 8;
    }
    if (i < nb) nib_step(kind, R, (int)(nb - i), w + (size_t)i * bb, stride, a + i, acc);
    for (int r = 0; r < R; r++) out[r] = _mm512_reduce_add_ps(acc[r]);
}

#define DOT_Z(name, kind)                                                                   \
    QV static float name##_z(int64_t n, const void *w, const void *act) {                   \
        float y;                                                                            \
        nib_rows(kind, 1, n, w, 0, act, &y);                                                \
        return y;                                                                           \
    }                                                                                       \
    QV static void name##_z4(int64_t n, const void *w, size_t stride, const void *act, float *y) { \
        nib_rows(kind, 4, n, w, stride, act, y);                                            \
    }
DOT_Z(q4_0, KIND_Q4_0)
DOT_Z(q4_1, KIND_Q4_1)
DOT_Z(iq4_nl, KIND_IQ4_NL)
DOT_Z(q5_0, KIND_Q5_0)
DOT_Z(q5_1, KIND_Q5_1)
#undef DOT_Z

/* ---- 512-bit kernels of Q8_0, 8 blocks per step, 1 or 4 rows per call ----------------- */
/* zmm j (j = 0..3) holds blocks 2j, 2j+1 of a step of 8: a 256-bit load of
 * one's 32 weights and an insert of the other's. The weights are made
 * unsigned (w ^ 0x80 = w + 128, u8) and dotted with the activation (s8) by
 * vpdpbusd; the offset is removed exactly by starting the int32 lanes at
 * -128 * (the lane's activation values), a vector of the activation only
 * (shared by the rows of a call): |lane| <= 4 * 128 * 127. Two rounds of
 * vpermt2d pairs and adds fold the 4 zmm into one whose lane 2b+h is the
 * exact sum over elements 16h..16h+15 of block b. One vpermw per zmm, from
 * the 64-byte load at its first block, puts the f16 scales in the same lane
 * order; times the activation scales they are applied with one FMA per 8
 * blocks: 16 float terms per step, two per block, added into the 16 lanes of
 * one accumulator per row (within tests/check_quant.c's bound for any
 * order). A 4-row call does, row by row, exactly the operations of a 1-row
 * call. */
typedef struct {
    __m512i q[4], init[4]; /* [j]: blocks 2j, 2j+1; -128 * the lane's sums */
    __m512 d;              /* lane 2b+h: the scale of block b's activation */
} q80_act;

/* The activation of a step of g <= 8 blocks (the lanes of missing blocks 0). */
QT static inline __attribute__((always_inline)) void
q80_act_load(const int g, const hmti_q8_32 *a, q80_act *v) {
    const __m512i c128 = _mm512_set1_epi8((char)0x80);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        const int b = 2 * j;
        v->q[j] = b < g ? _mm512_zextsi256_si512(L256(a[b].qs)) : _mm512_setzero_si512();
        if (b + 1 < g) v->q[j] = _mm512_inserti64x4(v->q[j], L256(a[b + 1].qs), 1);
        v->init[j] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                      _mm512_dpbusd_epi32(_mm512_setzero_si512(), c128, v->q[j]));
    }
    const __m512i idx = _mm512_setr_epi32(0, 0, 10, 10, 20, 20, 30, 30, 40, 40, 50, 50, 60, 60, 70, 70);
    const __mmask16 live = (__mmask16)((1u << (2 * g)) - 1u);
    v->d = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, idx, &a->d, 4);
}

QT static inline __attribute__((always_inline)) void
q80_step(const int R, const int g, const uint8_t *w, size_t stride, const hmti_q8_32 *a, __m512 *acc) {
    /* words 4j..4j+3 <- words 0, 0, 17, 17 of zmm j's load: blocks 2j, 2j+1 */
    const __m512i widx = _mm512_set1_epi64(0x0011001100000000);
    const __m512i c128 = _mm512_set1_epi8((char)0x80);
    q80_act v;
    q80_act_load(g, a, &v);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        const uint8_t *b = w + (size_t)r * stride;
        __m512i P[4], X = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            P[j] = _mm512_setzero_si512();
            if (2 * j >= g) continue;
            const uint8_t *p = b + 68 * j;
            __m512i W = _mm512_castsi256_si512(L256(p + 2)), D;
            if (2 * j + 1 < g) {
                W = _mm512_inserti64x4(W, L256(p + 36), 1);
                D = _mm512_loadu_si512(p);
            } else {
                D = _mm512_maskz_loadu_epi16(1, p);
            }
            P[j] = _mm512_dpbusd_epi32(v.init[j], _mm512_xor_si512(W, c128), v.q[j]);
            X = _mm512_mask_permutexvar_epi16(X, (__mmask32)(0xFu << (4 * j)), widx, D);
        }
        const __m512i S = fold_pairs(fold_pairs(P[0], P[1]), fold_pairs(P[2], P[3]));
        const __m512 sc = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(X)), v.d);
        acc[r] = _mm512_fmadd_ps(sc, _mm512_cvtepi32_ps(S), acc[r]);
    }
}

QT static inline __attribute__((always_inline)) void
q80_rows(const int R, int64_t n, const uint8_t *w, size_t stride, const hmti_q8_32 *a, float *out) {
    __m512 acc[4];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    const int64_t nb = n / 32;
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) {
        if (R == 4) hmti_pf_span(w + 4 * (size_t)i * 34, 4 * 8 * 34);
        q80_step(R, 8, w + (size_t)i * 34, stride, a + i, acc);
    }
    if (i < nb) q80_step(R, (int)(nb - i), w + (size_t)i * 34, stride, a + i, acc);
    for (int r = 0; r < R; r++) out[r] = _mm512_reduce_add_ps(acc[r]);
}

QT static float q8_0_z(int64_t n, const void *w, const void *act) {
    float y;
    q80_rows(1, n, w, 0, act, &y);
    return y;
}

QT static void q8_0_z4(int64_t n, const void *w, size_t stride, const void *act, float *y) {
    q80_rows(4, n, w, stride, act, y);
}

hmti_vec_dot_fn hmti_qdot_vnni_b32(uint32_t type) {
    switch (type) {
    case HMTI_T_Q4_0: return hmti_cpu_has_avx512_bitops() ? q4_0_z : NULL;
    case HMTI_T_Q4_1: return hmti_cpu_has_avx512_bitops() ? q4_1_z : NULL;
    case HMTI_T_Q5_0: return hmti_cpu_has_avx512_bitops() ? q5_0_z : NULL;
    case HMTI_T_Q5_1: return hmti_cpu_has_avx512_bitops() ? q5_1_z : NULL;
    case HMTI_T_Q8_0: return q8_0_z;
    case HMTI_T_IQ4_NL: return hmti_cpu_has_avx512_bitops() ? iq4_nl_z : NULL;
    default: return NULL;
    }
}

hmti_vec_dot4_fn hmti_qdot4_vnni_b32(uint32_t type) {
    switch (type) {
    case HMTI_T_Q4_0: return hmti_cpu_has_avx512_bitops() ? q4_0_z4 : NULL;
    case HMTI_T_Q4_1: return hmti_cpu_has_avx512_bitops() ? q4_1_z4 : NULL;
    case HMTI_T_Q5_0: return hmti_cpu_has_avx512_bitops() ? q5_0_z4 : NULL;
    case HMTI_T_Q5_1: return hmti_cpu_has_avx512_bitops() ? q5_1_z4 : NULL;
    case HMTI_T_Q8_0: return q8_0_z4;
    case HMTI_T_IQ4_NL: return hmti_cpu_has_avx512_bitops() ? iq4_nl_z4 : NULL;
    default: return NULL;
    }
}
