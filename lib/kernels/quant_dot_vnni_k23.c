/* Q2_K and Q3_K on 512-bit registers (AVX512-VNNI with VBMI and GFNI, as
 * quant_dot_vnni_k.c, which dispatches here): one row, 4 rows, and a group
 * of 4 rows against several activation rows (batched decode).
 *
 * Both types keep 2-bit fields of element 128n + 32j + l at bits 2j of byte
 * 32n + l of qs[64], so one zmm load holds a super-block's fields and field j
 * of both halves is one vgf2p8affineqb (shift and mask): vector u[j] holds
 * elements 32j.. in its low 256 bits and 128 + 32j.. in its high ones,
 * dotted by vpdpbusd with the activation's matching halves. Q3_K adds its
 * third bit (bit 4n + j of hmask[l], hmask broadcast to both halves) as bit
 * 2 of u = q + 4 in 0..7 (k23_unpack). A lane's sum of 4 products is
 * within +-4 * 7 * 127 (int16), so vpackssdw packs two rows' vectors exactly
 * and vpdpwssd applies the 16 scales per row (as words, spread by vpermb).
 * The per-16 activation sums (hmti_q8_256.sum) times the scales (Q3_K: times
 * -4, removing the + 4) or the mins (Q2_K) are one more vpdpwssd / vpmaddwd
 * per 2 rows. The integer sums are exact and the float steps per row those
 * of quant_dot_ref.c (see quant_dot_vnni_k.c), so every kernel here returns
 * the portable result bit for bit. */
#include <immintrin.h>
#include <string.h>

#include "kernels/quant_dot_vnni_k.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* the float steps repeat the portable path's */
#endif

/* vpermb indices of words (vpermw is 2 uops on Ice Lake and later, vpermb
 * one). SC23_IDX: the scales (words 0..15 of row 2p, 16..31 of row 2p + 1)
 * of packs(t[0] of row 2p, t[0] of row 2p + 1): 128-bit lane L holds 4
 * lanes of sub-block (L & 1) + 8 (L >> 1) of row 2p, then 4 of row 2p + 1;
 * + 4j (bytes): t[j]. CORR_IDX: lane L holds the scales of sub-blocks 4L ..
 * 4L + 3 of the two rows, SUM_IDX the activation sums of the same ones, so
 * vpmaddwd of the two gives the rows' partial sums in the layout of the
 * packed products. */
static const uint8_t SC23_IDX[64] = {0, 1, 0, 1, 0, 1, 0, 1, 32, 33, 32, 33, 32, 33, 32, 33,
                                     2, 3, 2, 3, 2, 3, 2, 3, 34, 35, 34, 35, 34, 35, 34, 35,
                                     16, 17, 16, 17, 16, 17, 16, 17, 48, 49, 48, 49, 48, 49, 48, 49,
                                     18, 19, 18, 19, 18, 19, 18, 19, 50, 51, 50, 51, 50, 51, 50, 51};
static const uint8_t CORR_IDX[64] = {0, 1, 2, 3, 4, 5, 6, 7, 32, 33, 34, 35, 36, 37, 38, 39,
                                     8, 9, 10, 11, 12, 13, 14, 15, 40, 41, 42, 43, 44, 45, 46, 47,
                                     16, 17, 18, 19, 20, 21, 22, 23, 48, 49, 50, 51, 52, 53, 54, 55,
                                     24, 25, 26, 27, 28, 29, 30, 31, 56, 57, 58, 59, 60, 61, 62, 63};
static const uint8_t SUM_IDX[64] = {0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7,
                                    8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15,
                                    16, 17, 18, 19, 20, 21, 22, 23, 16, 17, 18, 19, 20, 21, 22, 23,
                                    24, 25, 26, 27, 28, 29, 30, 31, 24, 25, 26, 27, 28, 29, 30, 31};

/* The same for Q2_K's scale bytes (row r at bytes 16r..: + 32 for rows 2,
 * 3; + 2j: t[j]), through vpermb with the high bytes zeroed. */
static const uint8_t SC2_IDX[64] = {0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 16, 0, 16, 0, 16, 0,
                                    1, 0, 1, 0, 1, 0, 1, 0, 17, 0, 17, 0, 17, 0, 17, 0,
                                    8, 0, 8, 0, 8, 0, 8, 0, 24, 0, 24, 0, 24, 0, 24, 0,
                                    9, 0, 9, 0, 9, 0, 9, 0, 25, 0, 25, 0, 25, 0, 25, 0};
static const uint8_t CORR2_IDX[64] = {0, 0, 1, 0, 2, 0, 3, 0, 16, 0, 17, 0, 18, 0, 19, 0,
                                      4, 0, 5, 0, 6, 0, 7, 0, 20, 0, 21, 0, 22, 0, 23, 0,
                                      8, 0, 9, 0, 10, 0, 11, 0, 24, 0, 25, 0, 26, 0, 27, 0,
                                      12, 0, 13, 0, 14, 0, 15, 0, 28, 0, 29, 0, 30, 0, 31, 0};
#define WORD_BYTES 0x5555555555555555ull

/* Q3_K: per 128-bit lane, bytes 94..109 of a row's super-block (scales[12]
 * at 2..13, d at 14..15) -> its 16 signed scales (bytes, -32..31), as
 * hmti_q3k_scale: the low 4 bits of scale g are nibble g / 8 of scales[g % 8],
 * the top 2 bits 2 (g / 4) .. of scales[8 + g % 4]. vpshufb gathers each
 * qword's source bytes and vpmultishiftqb moves each field into place. */
QT static inline __m512i q3_scales(__m512i x) {
    const __m512i lo_src = _mm512_broadcast_i32x4(_mm_setr_epi8(2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5, 6, 7, 8, 9));
    const __m512i hi_src = _mm512_broadcast_i32x4(_mm_setr_epi8(10, 11, 12, 13, 10, 11, 12, 13, 10, 11, 12, 13, 10, 11, 12, 13));
    /* byte g: the bit offset of its field in the gathered qword (high fields: minus 4, landing on bits 4..5) */
    const __m512i lo_at = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 8, 16, 24, 32, 40, 48, 56, 4, 12, 20, 28, 36, 44, 52, 60));
    const __m512i hi_at = _mm512_broadcast_i32x4(_mm_setr_epi8(60, 4, 12, 20, 62, 6, 14, 22, 0, 8, 16, 24, 2, 10, 18, 26));
    const __m512i lo = _mm512_multishift_epi64_epi8(lo_at, _mm512_shuffle_epi8(x, lo_src));
    const __m512i hi = _mm512_and_si512(_mm512_multishift_epi64_epi8(hi_at, _mm512_shuffle_epi8(x, hi_src)),
                                        _mm512_set1_epi8(0x30));
    return _mm512_sub_epi8(_mm512_ternarylogic_epi64(lo, hi, _mm512_set1_epi8(15), 0xEC), _mm512_set1_epi8(32));
}

/* vgf2p8affineqb matrices (output bit i = parity of row byte 7 - i AND the
 * input byte). Q3_K: HM_NIB copies the 4 high bits of the half (hmask bits
 * 0..3 in the low 256 bits, 4..7 in the high ones) into both nibbles;
 * Q3_FIELD[j] takes field j's 2 bits and its high bit (bit 4 + j of lo, bit
 * j of hi, see k23_unpack) into bits 0..2. */
#define HM_NIB_LO 0x0102040801020408ull
#define HM_NIB_HI 0x1020408010204080ull
static const uint64_t Q3_FIELD[4] = {0x0102100000000000ull, 0x0408200000000000ull, 0x1020040000000000ull,
                                     0x4080080000000000ull};

/* One row's super-block (b) as the 4 unsigned vectors of the vpdpbusd below.
 * Q3_K: lo = the low nibbles of qs (fields 0, 1) under the high bits of
 * the 4 fields, hi = the high bits under the high nibbles of qs (fields 2,
 * 3), so each u[j] is one vgf2p8affineqb. */
QT static inline __attribute__((always_inline)) void k23_unpack(const uint8_t *b, const int three, __m512i u[4]) {
    const __m512i raw = _mm512_loadu_si512(b + (three ? 32 : 16));
    if (three) {
        const __m512i h = _mm512_gf2p8affine_epi64_epi8(
            _mm512_broadcast_i64x4(L256(b)),
            _mm512_inserti64x4(_mm512_set1_epi64((long long)HM_NIB_LO), _mm256_set1_epi64x((long long)HM_NIB_HI), 1), 0);
        const __m512i m = _mm512_set1_epi8(15);
        const __m512i lo = _mm512_ternarylogic_epi64(raw, h, m, 0xE4), hi = _mm512_ternarylogic_epi64(h, raw, m, 0xE4);
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            u[j] = _mm512_gf2p8affine_epi64_epi8(j < 2 ? lo : hi, _mm512_set1_epi64((long long)Q3_FIELD[j]), 0);
        return;
    }
    u[0] = _mm512_and_si512(raw, _mm512_set1_epi8(3));
#pragma GCC unroll 3
    for (int j = 1; j < 4; j++) { /* bits 2j, 2j + 1 -> 0, 1 */
        const long long field = (long long)((1ull << (2 * j + 56)) | (2ull << (2 * j + 48)));
        u[j] = _mm512_gf2p8affine_epi64_epi8(raw, _mm512_set1_epi64(field), 0);
    }
}

/* The scale words of the packed products t[j] of rows 2p, 2p + 1: from the
 * words W (Q3_K) or, zero-extended, the bytes (Q2_K) of k23_block_scales. */
QT static inline __m512i k23_spread(const int three, const int p, const int j, __m512i W) {
    if (three)
        return _mm512_permutexvar_epi8(_mm512_add_epi8(_mm512_loadu_si512(SC23_IDX), _mm512_set1_epi8((char)(4 * j))), W);
    const __m512i idx = _mm512_add_epi8(_mm512_loadu_si512(SC2_IDX), _mm512_set1_epi8((char)(32 * p + 2 * j)));
    return _mm512_maskz_permutexvar_epi8(WORD_BYTES, idx, W);
}

/* The scaled sums of rows 2p, 2p + 1 (absent rows: zero), as q45_pair in
 * quant_dot_vnni_k.c. */
QT static inline __attribute__((always_inline)) __m512i
k23_pair(const int R, const int three, const int p, const uint8_t *w, size_t stride, const __m512i A[4], __m512i W) {
    __m512i u0[4], u1[4], I = _mm512_setzero_si512();
    k23_unpack(w + (size_t)(2 * p) * stride, three, u0);
    if (2 * p + 1 < R) k23_unpack(w + (size_t)(2 * p + 1) * stride, three, u1);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        const __m512i t0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u0[j], A[j]);
        const __m512i t1 = 2 * p + 1 < R ? _mm512_dpbusd_epi32(_mm512_setzero_si512(), u1[j], A[j]) : _mm512_setzero_si512();
        I = _mm512_dpwssd_epi32(I, _mm512_packs_epi32(t0, t1), k23_spread(three, p, j, W));
    }
    return I;
}

/* Per super-block of rows 0..3 (128-bit lane r of x: 16 bytes of row r):
 * the scales of rows 2p, 2p + 1 as words (Q3_K: W[p]) or those of the 4
 * rows as bytes (Q2_K: W[0] = W[1]), for k23_spread; the scales (Q3_K) or
 * mins (Q2_K) of rows 2p, 2p + 1 spread onto the words of the activation
 * sums (CW[p]); [d, dmin] of rows 0..3 as floats in dd. */
QT static inline __attribute__((always_inline)) void
k23_block_scales(const int R, const int three, const uint8_t *w, size_t stride, __m512i W[2], __m512i CW[2], __m256 *dd) {
    if (three) {
        const __m512i x = lanes4(R, w + 94, stride);
        const __m512i s = q3_scales(x);
        W[0] = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(s));
        W[1] = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(s, 1));
#pragma GCC unroll 2
        for (int p = 0; p < 2; p++) CW[p] = _mm512_permutexvar_epi8(_mm512_loadu_si512(CORR_IDX), W[p]);
        const __m128i d_idx = _mm_setr_epi8(14, 15, 30, 31, 46, 47, 62, 63, 14, 15, 30, 31, 46, 47, 62, 63);
        *dd = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi8(_mm512_castsi128_si512(d_idx), x)));
    } else {
        const __m512i x = lanes4(R, w, stride);
        W[0] = W[1] = _mm512_and_si512(x, _mm512_set1_epi8(15));
#pragma GCC unroll 2
        for (int p = 0; p < 2; p++) {
            const __m512i idx = _mm512_add_epi8(_mm512_loadu_si512(CORR2_IDX), _mm512_set1_epi8((char)(32 * p)));
            CW[p] = _mm512_srli_epi16(_mm512_maskz_permutexvar_epi8(WORD_BYTES, idx, x), 4);
        }
        const __m512i f = lanes4(R, w + 68, stride); /* d, dmin at bytes 12..15 of the lanes */
        const __m128i d_idx = _mm_setr_epi8(12, 13, 28, 29, 44, 45, 60, 61, 14, 15, 30, 31, 46, 47, 62, 63);
        *dd = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi8(_mm512_castsi128_si512(d_idx), f)));
    }
}

/* The activation's per-16 sums in the layout of CORR_IDX (Q3_K: times -4,
 * within +-4 * 16 * 127: words). */
QT static inline __m512i k23_sums(const int three, const hmti_q8_256 *x) {
    const __m512i s = _mm512_permutexvar_epi8(_mm512_loadu_si512(SUM_IDX), _mm512_zextsi256_si512(L256(x->sum)));
    return three ? _mm512_mullo_epi16(s, _mm512_set1_epi16(-4)) : s;
}

/* One super-block's float step for rows 0..3, the portable path's: Q3_K
 * (d d_a) isum; Q2_K (d d_a) isum - (dmin d_a) msum. I[p] / M[p]: the
 * scaled sums / mins terms of rows 2p, 2p + 1 (pair layout). */
QT static inline __attribute__((always_inline)) __m128
k23_step(const int three, const __m512i I[2], const __m512i M[2], __m256 dd, float ad) {
    const __m512i Ip = pair_sums(I[0], I[1]);
    if (three)
        return _mm_mul_ps(_mm_mul_ps(_mm256_castps256_ps128(dd), _mm_set1_ps(ad)), _mm_cvtepi32_ps(lane_sum(Ip)));
    const __m512i Mp = pair_sums(M[0], M[1]);
    /* sums over the 128-bit lanes: [isum of rows 0..3, msum of rows 0..3] */
    __m512i v = _mm512_add_epi32(_mm512_shuffle_i64x2(Ip, Mp, 0x44), _mm512_shuffle_i64x2(Ip, Mp, 0xEE));
    v = _mm512_add_epi32(v, _mm512_shuffle_i64x2(v, v, 0xB1));
    v = _mm512_shuffle_i64x2(v, v, 0x88);
    const __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm512_castsi512_si256(v)), _mm256_mul_ps(dd, _mm256_set1_ps(ad)));
    return _mm_sub_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

QT static inline __attribute__((always_inline)) void
k23_rows(const int R, const int three, int64_t n, const uint8_t *w, size_t stride, const hmti_q8_256 *a, float *out) {
    const size_t bytes = three ? 110 : 84;
    __m128 s = _mm_setzero_ps();
    const uint8_t *pf = w; /* as q45_k_rows */
#pragma GCC unroll 2
    for (int64_t i = 0; i < n / 256; i++, w += bytes, pf += R * bytes) {
        if (R == 4) hmti_pf_span(pf, 4 * bytes);
        __m512i W[2], CW[2];
        __m256 dd;
        k23_block_scales(R, three, w, stride, W, CW, &dd);
        const int8_t *q = a[i].qs;
#define A2(o0, o1) _mm512_inserti64x4(_mm512_castsi256_si512(L256(q + (o0))), L256(q + (o1)), 1)
        const __m512i A[4] = {A2(0, 128), A2(32, 160), A2(64, 192), A2(96, 224)};
#undef A2
        const __m512i sums = k23_sums(three, &a[i]);
        __m512i I[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()}, M[2] = {I[0], I[0]};
#pragma GCC unroll 2
        for (int p = 0; p < (R + 1) / 2; p++) {
            I[p] = k23_pair(R, three, p, w, stride, A, W[p]);
            if (three)
                I[p] = _mm512_dpwssd_epi32(I[p], CW[p], sums);
            else
                M[p] = _mm512_madd_epi16(CW[p], sums);
        }
        s = _mm_add_ps(s, k23_step(three, I, M, dd, a[i].d));
    }
    float y[4];
    _mm_storeu_ps(y, s);
    memcpy(out, y, (size_t)R * sizeof(float));
}

/* A group of 4 rows against na activation rows (k_multi_fn): each
 * super-block of the 4 rows unpacked and its scales spread once, then the
 * integer steps of k23_rows and its float step per activation row. */
QT static inline __attribute__((always_inline)) void
k23_multi(const int three, int64_t n, const uint8_t *w, size_t stride, const uint8_t *act, size_t as, int na,
          float *y, int64_t ldy) {
    const size_t bytes = three ? 110 : 84;
    __m128 s[KM_ACT];
    for (int a = 0; a < KM_ACT; a++) s[a] = _mm_setzero_ps();
    const uint8_t *pf = w;
    for (int64_t i = 0; i < n / 256; i++, w += bytes, pf += 4 * bytes) {
        hmti_pf_span(pf, 4 * bytes);
        __m512i W[2], U[4][4], SW[2][4], CW[2];
        __m256 dd;
        k23_block_scales(4, three, w, stride, W, CW, &dd);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) k23_unpack(w + (size_t)r * stride, three, U[r]);
#pragma GCC unroll 2
        for (int p = 0; p < 2; p++)
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) SW[p][j] = k23_spread(three, p, j, W[p]);
        for (int a = 0; a < na; a++) {
            const hmti_q8_256 *x = (const hmti_q8_256 *)(const void *)(act + (size_t)a * as) + i;
            const int8_t *q = x->qs;
#define A2(o0, o1) _mm512_inserti64x4(_mm512_castsi256_si512(L256(q + (o0))), L256(q + (o1)), 1)
            const __m512i A[4] = {A2(0, 128), A2(32, 160), A2(64, 192), A2(96, 224)};
#undef A2
            const __m512i sums = k23_sums(three, x);
            __m512i I[2], M[2];
#pragma GCC unroll 2
            for (int p = 0; p < 2; p++) {
                I[p] = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++)
                    I[p] = _mm512_dpwssd_epi32(I[p],
                                               _mm512_packs_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), U[2 * p][j], A[j]),
                                                                  _mm512_dpbusd_epi32(_mm512_setzero_si512(), U[2 * p + 1][j], A[j])),
                                               SW[p][j]);
                if (three)
                    I[p] = _mm512_dpwssd_epi32(I[p], CW[p], sums);
                else
                    M[p] = _mm512_madd_epi16(CW[p], sums);
            }
            s[a] = _mm_add_ps(s[a], k23_step(three, I, M, dd, x->d));
        }
    }
    for (int a = 0; a < na; a++) _mm_storeu_ps(y + a * ldy, s[a]);
}

#define DOT_K23(name, three)                                                                           \
    QT static float name##_z(int64_t n, const void *w, const void *act) {                              \
        float y;                                                                                       \
        k23_rows(1, three, n, w, 0, act, &y);                                                          \
        return y;                                                                                      \
    }                                                                                                  \
    QT static void name##_z4(int64_t n, const void *w, size_t stride, const void *act, float *y) {     \
        k23_rows(4, three, n, w, stride, act, y);                                                      \
    }                                                                                                  \
    QT static void name##_m4(int64_t n, const uint8_t *w, size_t st, const uint8_t *x, size_t as, int na, \
                             float *y, int64_t ldy) {                                                  \
        k23_multi(three, n, w, st, x, as, na, y, ldy);                                                 \
    }
DOT_K23(q2_k, 0)
DOT_K23(q3_k, 1)

hmti_vec_dot_fn hmti_qdot_vnni_k23(uint32_t type) {
    return type == HMTI_T_Q2_K ? q2_k_z : type == HMTI_T_Q3_K ? q3_k_z : NULL;
}

hmti_vec_dot4_fn hmti_qdot4_vnni_k23(uint32_t type) {
    return type == HMTI_T_Q2_K ? q2_k_z4 : type == HMTI_T_Q3_K ? q3_k_z4 : NULL;
}

k_multi_fn hmti_qmulti_fn_vnni_k23(uint32_t type) {
    return type == HMTI_T_Q2_K ? q2_k_m4 : type == HMTI_T_Q3_K ? q3_k_m4 : NULL;
}
