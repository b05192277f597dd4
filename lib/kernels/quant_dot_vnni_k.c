/* AVX512-VNNI kernels of the K-quants on 512-bit registers (quant_dot_vnni.c
 * dispatches to them first). They also use vpermb (AVX512-VBMI) and
 * vgf2p8affineqb (GFNI): without them (VNNI-only CPUs: Cascade / Cooper Lake)
 * this file offers no kernel. */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu.h"
#include "kernels/quant_dot_vnni_k.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* the super-block kernels repeat the portable float arithmetic */
#endif

/* ---- shared by the super-block kernels ------------------------------------------------- */
/* R rows at a time (R = 1 or 4: hmti_qdot4_vnni_k), the activation loaded
 * once per super-block for the R rows. Per super-block, the kernels build
 * int32 lanes whose sums are the exact integer dots of the portable path,
 * rows paired (one vpdpwssd accumulator per 2 rows); the 4 sums are reduced
 * together (pair_sums, then one fold over the 128-bit lanes) and the block
 * scales applied to the 4 rows in the lanes of one xmm, with the portable
 * path's float operations in its order. So every kernel here returns the
 * portable result bit for bit, and the 4-row kernels the 1-row kernel's.
 * (Float lanes FMA'd across super-blocks and reduced once per row, tried on
 * Q4_K, were no faster with the reduction shared by 4 rows, and changed the
 * rounding: check_qmodel.c's decode test, which needs half of its llama-q4km
 * replays within 1e-4 of the float64 reference and had 6/12, dropped to 3/12
 * by activation rounding flips.) */

/* Q4_K / Q5_K: the f16 d and dmin (bytes 0..3) of rows 0..3's super-block
 * (128-bit lane r of x) as floats times the activation's d: [d0..d3, dmin0..dmin3]. */
QT static inline __m256 scale8(__m512i x, float ad) {
    const __m512i idx = _mm512_castsi128_si512(_mm_setr_epi16(0, 8, 16, 24, 1, 9, 17, 25));
    return _mm256_mul_ps(_mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(idx, x))), _mm256_set1_ps(ad));
}

/* ---- Q4_K / Q5_K on 512-bit registers ----------------------------------------------------- */
/* A super-block's 128 bytes of nibbles in two zmm: each zmm's low nibbles are
 * sub-blocks (2c, 2c + 2), its high nibbles (2c + 1, 2c + 3), dotted with the
 * matching activation halves by vpdpbusd; a lane's sum of 4 products is within
 * +-4 * 31 * 127 (int16), so vpackssdw packs two such vectors exactly and
 * vpdpwssd applies the 6-bit scales (unpacked for the 4 rows at once, one row
 * per 128-bit lane, and spread onto the words by vpermb). The mins term
 * sum_j m_j * (activation sum of sub-block j) is one vpmaddwd for the 4 rows. */

/* Per 128-bit lane, bytes 0..15 of a super-block (d, dmin, 12 bytes of 6-bit
 * fields) -> [sc0..sc7, m0..m7]: j < 4: sc = q[j] & 63, m = q[j + 4] & 63;
 * j >= 4: the low 4 bits from q[j + 4] (low / high nibble), the top 2 from
 * bits 6..7 of q[j - 4] / q[j]. */
QT static inline __m512i k_scales_z(__m512i x) {
    const __m512i lo_idx = _mm512_broadcast_i32x4(_mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15));
    const __m512i hi_idx = _mm512_broadcast_i32x4(_mm_setr_epi8(-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11));
    const __m512i lo_mask = _mm512_broadcast_i32x4(_mm_setr_epi32(0x3F3F3F3F, 0x0F0F0F0F, 0x3F3F3F3F, 0x0F0F0F0F));
    const __m512i p = _mm512_shuffle_epi8(x, lo_idx);
    const __m512i lo = _mm512_mask_blend_epi8(0xF000F000F000F000ull, p, _mm512_srli_epi16(p, 4));
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(_mm512_shuffle_epi8(x, hi_idx), 2), _mm512_set1_epi8(0x30));
    return _mm512_ternarylogic_epi64(lo, hi, lo_mask, 0xEC); /* (lo & lo_mask) | hi */
}

/* vpermb indices (words: the odd bytes are zeroed by the mask). SC_IDX: the
 * scales of packs(t0 of row 0, t0 of row 1): 128-bit lane L holds 4 lanes of
 * row 0's sub-block 2 (L / 2), then 4 of row 1's; + 1, 4, 5: t1, t2, t3
 * (sub-blocks 2c + 1, 2c + 4, 2c + 5); + 32: rows 2, 3. M_IDX: 128-bit lane
 * k holds the mins of sub-blocks 2k, 2k + 1 of rows 0..3. */
static const uint16_t SC_IDX[32] = {0, 0, 0, 0, 16, 16, 16, 16, 0, 0, 0, 0, 16, 16, 16, 16,
                                    2, 2, 2, 2, 18, 18, 18, 18, 2, 2, 2, 2, 18, 18, 18, 18};
static const uint16_t M_IDX[32] = {8,  9,  24, 25, 40, 41, 56, 57, 10, 11, 26, 27, 42, 43, 58, 59,
                                   12, 13, 28, 29, 44, 45, 60, 61, 14, 15, 30, 31, 46, 47, 62, 63};
#define WORD_BYTES 0x5555555555555555ull

/* The 4 vpdpbusd vectors of one row's super-block, t[k] against A[k]: within
 * int16 (see above). The high nibbles by vgf2p8affineqb (one op for shift and
 * mask); Q5_K: the fifth bit of chunk c's low / high nibbles is bit 2c / 2c + 1
 * of qh, moved onto bit 4 by vgf2p8affineqb and merged by vpternlog. */
QT static inline __attribute__((always_inline)) void q45_unpack(const uint8_t *b, const int five, __m512i u[4]) {
    const __m512i m4 = _mm512_set1_epi8(15);
    const __m512i hi_nib = _mm512_set1_epi64(0x1020408000000000ll); /* bits 4..7 -> 0..3 */
    const int qo = five ? 48 : 16;
    const __m512i raw0 = _mm512_loadu_si512(b + qo), raw1 = _mm512_loadu_si512(b + qo + 64);
    u[0] = raw0;
    u[1] = _mm512_gf2p8affine_epi64_epi8(raw0, hi_nib, 0);
    u[2] = raw1;
    u[3] = _mm512_gf2p8affine_epi64_epi8(raw1, hi_nib, 0);
    if (five) {
        const __m512i QH = _mm512_broadcast_i64x4(L256(b + 16));
        static const int bit[4] = {0, 1, 4, 5};
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            const __m512i to4 = _mm512_inserti64x4(_mm512_set1_epi64(1ll << (24 + bit[k])),
                                                   _mm256_set1_epi64x(1ll << (26 + bit[k])), 1);
            u[k] = _mm512_ternarylogic_epi64(u[k], _mm512_gf2p8affine_epi64_epi8(QH, to4, 0), m4, 0xEC);
        }
    } else {
        u[0] = _mm512_and_si512(u[0], m4);
        u[2] = _mm512_and_si512(u[2], m4);
    }
}

QT static inline __attribute__((always_inline)) void
q45_dots(const uint8_t *b, const int five, const __m512i A[4], __m512i t[4]) {
    __m512i u[4];
    q45_unpack(b, five, u);
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) t[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[k], A[k]);
}

/* The scaled sums of rows 2p, 2p + 1 (absent rows: zero): 128-bit lane L =
 * [2 partial sums of row 2p, 2 of row 2p + 1]. */
QT static inline __attribute__((always_inline)) __m512i
q45_pair(const int R, const int five, const int p, const uint8_t *w, size_t stride, const __m512i A[4], __m512i S) {
    static const int off[4] = {0, 1, 4, 5};
    __m512i t0[4], t1[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                            _mm512_setzero_si512()};
    q45_dots(w + (size_t)(2 * p) * stride, five, A, t0);
    if (2 * p + 1 < R) q45_dots(w + (size_t)(2 * p + 1) * stride, five, A, t1);
    const __m512i idx = _mm512_add_epi16(_mm512_loadu_si512(SC_IDX), _mm512_set1_epi16((short)(32 * p)));
    __m512i I = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++)
        I = _mm512_dpwssd_epi32(I, _mm512_packs_epi32(t0[k], t1[k]),
                                _mm512_maskz_permutexvar_epi8(WORD_BYTES, _mm512_add_epi16(idx, _mm512_set1_epi16((short)off[k])), S));
    return I;
}

QT static inline __attribute__((always_inline)) void
q45_k_rows(const int R, const int five, int64_t n, const uint8_t *w, size_t stride, const hmti_q8_256 *a,
           float *out) {
    const size_t bytes = five ? 176 : 144;
    const __m512i m_idx = _mm512_loadu_si512(M_IDX);
    const __m512i b_idx = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    __m128 s = _mm_setzero_ps();
    /* unrolled by 2: two super-blocks' independent work in the loop body
     * measured 1.05-1.10x in cache (Q4_K, Q5_K, Q6_K alike) */
    const uint8_t *pf = w; /* the 4 rows' span, consumed 4 super-blocks a step */
#pragma GCC unroll 2
    for (int64_t i = 0; i < n / 256; i++, w += bytes, pf += R * bytes) {
        if (R == 4) hmti_pf_span(pf, 4 * bytes);
        const __m512i X = lanes4(R, w, stride);
        const __m512i S = k_scales_z(X);
        const int8_t *q = a[i].qs;
#define A2(o0, o1) _mm512_inserti64x4(_mm512_castsi256_si512(L256(q + (o0))), L256(q + (o1)), 1)
        const __m512i A[4] = {A2(0, 64), A2(32, 96), A2(128, 192), A2(160, 224)};
#undef A2
        const __m512i I01 = q45_pair(R, five, 0, w, stride, A, S);
        const __m512i I23 = R > 2 ? q45_pair(R, five, 1, w, stride, A, S) : _mm512_setzero_si512();
        const __m512i Ip = pair_sums(I01, I23);
        /* the activation sums of the 8 sub-blocks (within +-32 * 127: words), those of
         * 2k, 2k + 1 in each dword of 128-bit lane k; times the mins: lane k = the
         * partial mins terms of rows 0..3 */
        const __m128i bsum = _mm256_cvtepi32_epi16(_mm256_madd_epi16(L256(a[i].sum), _mm256_set1_epi16(1)));
        const __m512i M = _mm512_madd_epi16(_mm512_maskz_permutexvar_epi8(WORD_BYTES, m_idx, S),
                                            _mm512_permutexvar_epi32(b_idx, _mm512_castsi128_si512(bsum)));
        /* sums over the 128-bit lanes: [isum of rows 0..3, msum of rows 0..3] */
        __m512i v = _mm512_add_epi32(_mm512_shuffle_i64x2(Ip, M, 0x44), _mm512_shuffle_i64x2(Ip, M, 0xEE));
        v = _mm512_add_epi32(v, _mm512_shuffle_i64x2(v, v, 0xB1));
        v = _mm512_shuffle_i64x2(v, v, 0x88);
        /* times [d * d_a, dmin * d_a] of rows 0..3 */
        const __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm512_castsi512_si256(v)), scale8(X, a[i].d));
        s = _mm_add_ps(s, _mm_sub_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)));
    }
    float y[4];
    _mm_storeu_ps(y, s);
    memcpy(out, y, (size_t)R * sizeof(float));
}

#define DOT_K(name, five)                                                                    \
    QT static float name##_z(int64_t n, const void *w, const void *act) {                    \
        float y;                                                                             \
        q45_k_rows(1, five, n, w, 0, act, &y);                                               \
        return y;                                                                            \
    }                                                                                        \
    QT static void name##_z4(int64_t n, const void *w, size_t stride, const void *act, float *y) { \
        q45_k_rows(4, five, n, w, stride, act, y);                                           \
    }
DOT_K(q4_k, 0)
DOT_K(q5_k, 1)

/* ---- Q6_K on 512-bit registers ----------------------------------------------------- */
/* Per half super-block (128 weights): the 64 bytes of low nibbles in one zmm
 * give sub-block pairs (k0, k1) (& 15) and (k2, k3) (>> 4); the 2-bit high
 * parts come from the 32 qh bytes broadcast to both halves, moved per half
 * onto bits 4..5 by vgf2p8affineqb and merged by vpternlog. q - 32 in
 * -32..31: vpdpbusd of q (u8) starts from -32 * (the lane's 4 activations),
 * computed once per super-block for the rows, so a lane's sum of 4 products
 * is within +-4 * 32 * 127 (int16): vpackssdw packs two rows' vectors exactly
 * and vpdpwssd applies the int8 scales (sign-extended to words, spread onto
 * the words by vpermb). */

/* vgf2p8affineqb matrix moving bits p, p + 1 of each byte to bits 4, 5 (the
 * others 0), for bit p0 in the low 256 bits and p1 in the high ones (output
 * bit i is row byte 7 - i of the qword). */
QT static inline __m512i bits_to_45(int p0, int p1) {
    return _mm512_inserti64x4(_mm512_set1_epi64((1ll << (24 + p0)) | (2ll << (16 + p0))),
                              _mm256_set1_epi64x((1ll << (24 + p1)) | (2ll << (16 + p1))), 1);
}

/* vpermb indices into the scales of rows 0, 1 (words 0..15, 16..31), word j
 * of the result at bytes 2j, 2j + 1 (vpermw is 2 uops here, vpermb 1): those
 * of packs(P0 of row 0, P0 of row 1), P0 = the low nibbles of the first half
 * (128-bit lane L: 4 lanes of row 0's sub-block L, then 4 of row 1's); + 8k:
 * P_k (k = 2h: the low nibbles of half h, 2h + 1: its high nibbles). */
static const uint8_t Q6_SC_BIDX[64] = {0, 1, 0, 1, 0, 1, 0, 1, 32, 33, 32, 33, 32, 33, 32, 33,
                                       2, 3, 2, 3, 2, 3, 2, 3, 34, 35, 34, 35, 34, 35, 34, 35,
                                       4, 5, 4, 5, 4, 5, 4, 5, 36, 37, 36, 37, 36, 37, 36, 37,
                                       6, 7, 6, 7, 6, 7, 6, 7, 38, 39, 38, 39, 38, 39, 38, 39};

/* One row's super-block as the 4 unsigned vectors (q in 0..63) of the vpdpbusd below. */
QT static inline __attribute__((always_inline)) void q6_unpack(const uint8_t *b, __m512i u[4]) {
    const __m512i m4 = _mm512_set1_epi8(15);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const __m512i L = _mm512_loadu_si512(b + 64 * h);
        const __m512i QH = _mm512_broadcast_i64x4(L256(b + 128 + 32 * h));
        u[2 * h] = _mm512_ternarylogic_epi64(L, _mm512_gf2p8affine_epi64_epi8(QH, bits_to_45(0, 2), 0), m4, 0xEC);
        u[2 * h + 1] = _mm512_ternarylogic_epi64(_mm512_srli_epi16(L, 4), _mm512_gf2p8affine_epi64_epi8(QH, bits_to_45(4, 6), 0),
                                                 m4, 0xEC);
    }
}

/* The 4 vpdpbusd vectors of one row's super-block; C[k]: -32 * the 4-activation
 * sums of A[k]. */
QT static inline __attribute__((always_inline)) void
q6_dots(const uint8_t *b, const __m512i A[4], const __m512i C[4], __m512i P[4]) {
    __m512i u[4];
    q6_unpack(b, u);
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) P[k] = _mm512_dpbusd_epi32(C[k], u[k], A[k]);
}

/* The scaled sums of rows 2p, 2p + 1 (absent rows: zero), as q45_pair; W: their
 * scales as words. */
QT static inline __attribute__((always_inline)) __m512i
q6_pair(const int R, const int p, const uint8_t *w, size_t stride, const __m512i A[4], const __m512i C[4], __m512i W) {
    __m512i P0[4], P1[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                            _mm512_setzero_si512()};
    q6_dots(w + (size_t)(2 * p) * stride, A, C, P0);
    if (2 * p + 1 < R) q6_dots(w + (size_t)(2 * p + 1) * stride, A, C, P1);
    const __m512i idx = _mm512_loadu_si512(Q6_SC_BIDX);
    __m512i I = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++)
        I = _mm512_dpwssd_epi32(I, _mm512_packs_epi32(P0[k], P1[k]),
                                _mm512_permutexvar_epi8(_mm512_add_epi8(idx, _mm512_set1_epi8((char)(8 * k))), W));
    return I;
}

/* The 16 int8 scales of the 2 rows of y (256-bit lanes, bytes 14..29) as words. */
static const uint8_t Q6_SCALE_BYTES[64] = {14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
                                           46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61};
QT static inline __m512i q6_scales(__m512i y) {
    return _mm512_cvtepi8_epi16(_mm512_castsi512_si256(_mm512_permutexvar_epi8(_mm512_loadu_si512(Q6_SCALE_BYTES), y)));
}

QT static inline __attribute__((always_inline)) void
q6_k_rows(const int R, int64_t n, const uint8_t *w, size_t stride, const hmti_q8_256 *a, float *out) {
    const __m512i c32 = _mm512_set1_epi8(32);
    __m128 s = _mm_setzero_ps();
    const uint8_t *pf = w; /* as q45_k_rows */
#pragma GCC unroll 2 /* as q45_k_rows */
    for (int64_t i = 0; i < n / 256; i++, w += 210, pf += R * 210) {
        if (R == 4) hmti_pf_span(pf, 4 * 210);
        /* 256-bit lane h of Y01 / Y23: bytes 178..209 of row h / 2 + h (scales at 14..29, d at 30..31) */
        const __m512i Y01 = R == 1 ? _mm512_zextsi256_si512(L256(w + 178))
                                   : _mm512_inserti64x4(_mm512_castsi256_si512(L256(w + 178)), L256(w + stride + 178), 1);
        const __m512i Y23 = R > 2 ? _mm512_inserti64x4(_mm512_castsi256_si512(L256(w + 2 * stride + 178)),
                                                       L256(w + 3 * stride + 178), 1)
                                  : _mm512_setzero_si512();
        __m512i A[4], C[4];
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            A[k] = _mm512_loadu_si512(a[i].qs + 64 * k);
            C[k] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), c32, A[k]));
        }
        const __m512i I01 = q6_pair(R, 0, w, stride, A, C, q6_scales(Y01));
        const __m512i I23 = R > 2 ? q6_pair(R, 1, w, stride, A, C, q6_scales(Y23)) : _mm512_setzero_si512();
        const __m512i v = pair_sums(I01, I23);
        const __m256i v2 = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
        const __m128i isum = _mm_add_epi32(_mm256_castsi256_si128(v2), _mm256_extracti128_si256(v2, 1));
        const __m128 d = _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(
            Y01, _mm512_castsi128_si512(_mm_setr_epi16(15, 31, 47, 63, 0, 0, 0, 0)), Y23)));
        s = _mm_add_ps(s, _mm_mul_ps(_mm_mul_ps(d, _mm_set1_ps(a[i].d)), _mm_cvtepi32_ps(isum)));
    }
    float y[4];
    _mm_storeu_ps(y, s);
    memcpy(out, y, (size_t)R * sizeof(float));
}

QT static float q6_k_z(int64_t n, const void *w, const void *act) {
    float y;
    q6_k_rows(1, n, w, 0, act, &y);
    return y;
}
QT static void q6_k_z4(int64_t n, const void *w, size_t stride, const void *act, float *y) {
    q6_k_rows(4, n, w, stride, act, y);
}

/* ---- several activation rows at once (batched decode) ------------------------------------ */
/* A group of 4 stored rows against na <= KM_ACT activation rows (act + a *
 * as, y[a * ldy + r]): each super-block of the 4 rows is unpacked once and
 * its scales spread onto the words once, then dotted with every activation
 * row. The integer sums are exact and the float steps per row those of
 * q45_k_rows / q6_k_rows, so every result is the single-row kernel's bits.
 * The unpacked rows (16 zmm) and scales (8) outlive the registers: the
 * compiler keeps them in L1, where vpdpbusd / vpdpwssd read them directly. */

QT static inline __attribute__((always_inline)) void
q45_k_multi(const int five, int64_t n, const uint8_t *w, size_t stride, const uint8_t *act, size_t as, int na,
            float *y, int64_t ldy) {
    static const int off[4] = {0, 1, 4, 5};
    const size_t bytes = five ? 176 : 144;
    const __m512i m_idx = _mm512_loadu_si512(M_IDX), sc_idx = _mm512_loadu_si512(SC_IDX);
    const __m512i b_idx = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512i d_idx = _mm512_castsi128_si512(_mm_setr_epi16(0, 8, 16, 24, 1, 9, 17, 25));
    __m128 s[KM_ACT];
    for (int a = 0; a < KM_ACT; a++) s[a] = _mm_setzero_ps();
    const uint8_t *pf = w;
    for (int64_t i = 0; i < n / 256; i++, w += bytes, pf += 4 * bytes) {
        hmti_pf_span(pf, 4 * bytes);
        const __m512i X = lanes4(4, w, stride);
        const __m512i S = k_scales_z(X);
        __m512i U[4][4], SW[2][4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) q45_unpack(w + (size_t)r * stride, five, U[r]);
#pragma GCC unroll 2
        for (int p = 0; p < 2; p++)
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                SW[p][k] = _mm512_maskz_permutexvar_epi8(
                    WORD_BYTES, _mm512_add_epi16(sc_idx, _mm512_set1_epi16((short)(32 * p + off[k]))), S);
        const __m512i MS = _mm512_maskz_permutexvar_epi8(WORD_BYTES, m_idx, S);
        /* [d0..d3, dmin0..dmin3] of the 4 rows, as scale8 before its product */
        const __m256 dd = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(d_idx, X)));
        for (int a = 0; a < na; a++) {
            const hmti_q8_256 *x = (const hmti_q8_256 *)(const void *)(act + (size_t)a * as) + i;
            const int8_t *q = x->qs;
#define A2(o0, o1) _mm512_inserti64x4(_mm512_castsi256_si512(L256(q + (o0))), L256(q + (o1)), 1)
            const __m512i A[4] = {A2(0, 64), A2(32, 96), A2(128, 192), A2(160, 224)};
#undef A2
            __m512i I[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
#pragma GCC unroll 2
            for (int p = 0; p < 2; p++)
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++)
                    I[p] = _mm512_dpwssd_epi32(I[p],
                                               _mm512_packs_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), U[2 * p][k], A[k]),
                                                                  _mm512_dpbusd_epi32(_mm512_setzero_si512(), U[2 * p + 1][k], A[k])),
                                               SW[p][k]);
            const __m512i Ip = pair_sums(I[0], I[1]);
            const __m128i bsum = _mm256_cvtepi32_epi16(_mm256_madd_epi16(L256(x->sum), _mm256_set1_epi16(1)));
            const __m512i M = _mm512_madd_epi16(MS, _mm512_permutexvar_epi32(b_idx, _mm512_castsi128_si512(bsum)));
            __m512i v = _mm512_add_epi32(_mm512_shuffle_i64x2(Ip, M, 0x44), _mm512_shuffle_i64x2(Ip, M, 0xEE));
            v = _mm512_add_epi32(v, _mm512_shuffle_i64x2(v, v, 0xB1));
            v = _mm512_shuffle_i64x2(v, v, 0x88);
            const __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm512_castsi512_si256(v)),
                                           _mm256_mul_ps(dd, _mm256_set1_ps(x->d)));
            s[a] = _mm_add_ps(s[a], _mm_sub_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)));
        }
    }
    for (int a = 0; a < na; a++) _mm_storeu_ps(y + a * ldy, s[a]);
}

QT static inline __attribute__((always_inline)) void
q6_k_multi(int64_t n, const uint8_t *w, size_t stride, const uint8_t *act, size_t as, int na, float *y,
           int64_t ldy) {
    const __m512i c32 = _mm512_set1_epi8(32), idx = _mm512_loadu_si512(Q6_SC_BIDX);
    __m128 s[KM_ACT];
    for (int a = 0; a < KM_ACT; a++) s[a] = _mm_setzero_ps();
    const uint8_t *pf = w;
    for (int64_t i = 0; i < n / 256; i++, w += 210, pf += 4 * 210) {
        hmti_pf_span(pf, 4 * 210);
        const __m512i Y01 = _mm512_inserti64x4(_mm512_castsi256_si512(L256(w + 178)), L256(w + stride + 178), 1);
        const __m512i Y23 = _mm512_inserti64x4(_mm512_castsi256_si512(L256(w + 2 * stride + 178)),
                                               L256(w + 3 * stride + 178), 1);
        const __m512i W[2] = {q6_scales(Y01), q6_scales(Y23)};
        __m512i U[4][4], SW[2][4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) q6_unpack(w + (size_t)r * stride, U[r]);
#pragma GCC unroll 2
        for (int p = 0; p < 2; p++)
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                SW[p][k] = _mm512_permutexvar_epi8(_mm512_add_epi8(idx, _mm512_set1_epi8((char)(8 * k))), W[p]);
        const __m128 d = _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(
            Y01, _mm512_castsi128_si512(_mm_setr_epi16(15, 31, 47, 63, 0, 0, 0, 0)), Y23)));
        for (int a = 0; a < na; a++) {
            const hmti_q8_256 *x = (const hmti_q8_256 *)(const void *)(act + (size_t)a * as) + i;
            __m512i A[4], C[4];
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                A[k] = _mm512_loadu_si512(x->qs + 64 * k);
                C[k] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), c32, A[k]));
            }
            __m512i I[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
#pragma GCC unroll 2
            for (int p = 0; p < 2; p++)
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++)
                    I[p] = _mm512_dpwssd_epi32(I[p],
                                               _mm512_packs_epi32(_mm512_dpbusd_epi32(C[k], U[2 * p][k], A[k]),
                                                                  _mm512_dpbusd_epi32(C[k], U[2 * p + 1][k], A[k])),
                                               SW[p][k]);
            const __m512i v = pair_sums(I[0], I[1]);
            const __m256i v2 = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
            const __m128i isum = _mm_add_epi32(_mm256_castsi256_si128(v2), _mm256_extracti128_si256(v2, 1));
            s[a] = _mm_add_ps(s[a], _mm_mul_ps(_mm_mul_ps(d, _mm_set1_ps(x->d)), _mm_cvtepi32_ps(isum)));
        }
    }
    for (int a = 0; a < na; a++) _mm_storeu_ps(y + a * ldy, s[a]);
}

QT static void q4_k_m4(int64_t n, const uint8_t *w, size_t st, const uint8_t *x, size_t as, int na, float *y, int64_t ldy) {
    q45_k_multi(0, n, w, st, x, as, na, y, ldy);
}
QT static void q5_k_m4(int64_t n, const uint8_t *w, size_t st, const uint8_t *x, size_t as, int na, float *y, int64_t ldy) {
    q45_k_multi(1, n, w, st, x, as, na, y, ldy);
}
QT static void q6_k_m4(int64_t n, const uint8_t *w, size_t st, const uint8_t *x, size_t as, int na, float *y, int64_t ldy) {
    q6_k_multi(n, w, st, x, as, na, y, ldy);
}

static k_multi_fn k_multi(uint32_t type) {
    if (!hmti_cpu_has_avx512_bitops()) return NULL;
    switch (type) {
    case HMTI_T_Q4_K: return q4_k_m4;
    case HMTI_T_Q5_K: return q5_k_m4;
    case HMTI_T_Q6_K: return q6_k_m4;
    default: return hmti_qmulti_fn_vnni_k23(type);
    }
}

int hmti_qmulti_vnni_k(uint32_t type) { return k_multi(type) != NULL; }

void hmti_gemv_q_groups_vnni_k(uint32_t type, int64_t n_groups, int64_t cols, const void *w, size_t row_bytes,
                               const void *act, size_t act_stride, int64_t n_act, float *y, int64_t ldy) {
    const k_multi_fn f = k_multi(type);
    for (int64_t g = 0; g < n_groups; g++) {
        const uint8_t *gw = (const uint8_t *)w + (size_t)(4 * g) * row_bytes;
        for (int64_t a = 0; a < n_act; a += KM_ACT)
            f(cols, gw, row_bytes, (const uint8_t *)act + (size_t)a * act_stride, act_stride,
              (int)(n_act - a < KM_ACT ? n_act - a : KM_ACT), y + a * ldy + 4 * g, ldy);
    }
}

hmti_vec_dot_fn hmti_qdot_vnni_k(uint32_t type) {
    if (!hmti_cpu_has_avx512_bitops()) return NULL;
    switch (type) {
    case HMTI_T_Q4_K: return q4_k_z;
    case HMTI_T_Q5_K: return q5_k_z;
    case HMTI_T_Q6_K: return q6_k_z;
    default: return hmti_qdot_vnni_k23(type);
    }
}

hmti_vec_dot4_fn hmti_qdot4_vnni_k(uint32_t type) {
    if (!hmti_cpu_has_avx512_bitops()) return NULL;
    switch (type) {
    case HMTI_T_Q4_K: return q4_k_z4;
    case HMTI_T_Q5_K: return q5_k_z4;
    case HMTI_T_Q6_K: return q6_k_z4;
    default: return hmti_qdot4_vnni_k23(type);
    }
}
