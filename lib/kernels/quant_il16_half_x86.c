/* AVX-512 kernels of F16 and BF16 in groups of 16 rows (quant_impl.h):
 * the dot products with one or several activation rows and the dequantizer
 * of the prompt path.
 *
 * Column c of a group is 16 halves, one per row: converted (exactly) they
 * are one vector whose lane r is row r's weight, so one FMA with x[c]
 * broadcast adds column c into all 16 rows' sums, with no fold at the end.
 * Columns c = 0, 1, 2, 3 (mod 4) go to 4 accumulators, summed as
 * (a0 + a1) + (a2 + a3): hmti_il16h_dot_ref's steps. The several-row kernel
 * keeps 4 accumulators per activation row, so each of its results is the
 * one-row kernel's bits. The one-row kernel reads 4 places of a matrix
 * side by side when the decode job hands it a share's quarters
 * (hmti_il16h_dot4), with no software prefetch, which the hardware
 * prefetcher follows best; the several-row kernel does 4 times the work
 * per byte and needs it (without: 0.6x on 8 rows; docs/QUANTS.md, "F16 and
 * BF16 in groups of 16 rows"). */
#include <immintrin.h>

#include "kernels/cpu.h"
#include "kernels/quant_impl.h"

#define AI __attribute__((always_inline))
#define BY_TYPE(type, fn, ...) \
    ((type) == HMTI_T_F16 ? fn(HMTI_T_F16, __VA_ARGS__) : fn(HMTI_T_BF16, __VA_ARGS__))

enum { MAX_ACT = 4 }; /* activation rows per pass: 16 accumulators */

/* Column c's 16 weights as floats (p: its 32 bytes). */
AVX512_TARGET static inline AI __m512 column(const uint32_t type, const uint8_t *p) {
    const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)p);
    if (type == HMTI_T_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* 8 rows (16 bytes each, row_bytes apart) of 8 columns -> 8 columns of the
 * 8 rows, column k at dst + 32 k: three rounds of interleaves (SSE2). */
static inline AI void transpose8x8(const uint8_t *src, size_t row_bytes, uint8_t *dst) {
    __m128i a[8], t[8], u[8];
    for (int r = 0; r < 8; r++) a[r] = _mm_loadu_si128((const __m128i *)(const void *)(src + r * row_bytes));
    for (int r = 0; r < 8; r += 2) {
        t[r] = _mm_unpacklo_epi16(a[r], a[r + 1]);     /* columns 0..3 of rows r, r + 1 */
        t[r + 1] = _mm_unpackhi_epi16(a[r], a[r + 1]); /* columns 4..7 */
    }
    for (int h = 0; h < 8; h += 4) /* rows h..h+3: u[h + k] = columns 2k, 2k + 1 */
        for (int k = 0; k < 2; k++) {
            u[h + 2 * k] = _mm_unpacklo_epi32(t[h + k], t[h + 2 + k]);
            u[h + 2 * k + 1] = _mm_unpackhi_epi32(t[h + k], t[h + 2 + k]);
        }
    for (int k = 0; k < 4; k++) {
        _mm_storeu_si128((__m128i *)(void *)(dst + 64 * k), _mm_unpacklo_epi64(u[k], u[4 + k]));
        _mm_storeu_si128((__m128i *)(void *)(dst + 64 * k + 32), _mm_unpackhi_epi64(u[k], u[4 + k]));
    }
}

void hmti_il16h_pack(int64_t cols, const uint8_t *src, size_t row_bytes, uint8_t *dst) {
    for (int r0 = 0; r0 < HMTI_IL16_ROWS; r0 += 8)
        for (int64_t c = 0; c < cols; c += 8) transpose8x8(src + r0 * row_bytes + 2 * c, row_bytes, dst + 32 * c + 2 * r0);
}

AVX512_TARGET static inline AI __m512 sum4(const __m512 *a) {
    return _mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3]));
}

/* The one-row kernel reads 4 places side by side when asked (dot4: a
 * share's quarters, hmti_swork), with no software prefetch: the hardware's
 * follows these streams best. 6 or 8 side by side spill the accumulators;
 * 4 neighbouring groups (short streams) were 0.7x with 576-column groups
 * (docs/QUANTS.md, thirteenth and fourteenth sessions). */
enum { STREAMS = 4 };

/* n (a constant, <= STREAMS) groups at g[0..n) against x, side by side: n
 * independent streams, 4 accumulators each (each result is the one-group
 * loop's bits), group k's results to y[k]. */
AVX512_TARGET static inline AI void streams_dot(const uint32_t type, const int n, int64_t cols,
                                                const uint8_t *const *g, const float *x, float *const *y) {
    __m512 a[STREAMS][4];
#pragma GCC unroll 4
    for (int k = 0; k < n; k++)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) a[k][j] = _mm512_setzero_ps();
    for (int64_t c = 0; c < cols; c += 4)
#pragma GCC unroll 4
        for (int k = 0; k < n; k++)
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++)
                a[k][j] = _mm512_fmadd_ps(column(type, g[k] + 32 * (c + j)), _mm512_set1_ps(x[c + j]), a[k][j]);
#pragma GCC unroll 4
    for (int k = 0; k < n; k++) _mm512_storeu_ps(y[k], sum4(a[k]));
}

AVX512_TARGET static inline AI void dot_groups(const uint32_t type, int64_t n_groups, int64_t cols,
                                               const uint8_t *w, const float *x, float *y) {
    for (int64_t i = 0; i < n_groups; i++, w += 32 * (size_t)cols) {
        float *const yo[1] = {y + 16 * i};
        streams_dot(type, 1, cols, &w, x, yo);
    }
}

/* n_groups groups at each of w[0..3] side by side. */
AVX512_TARGET static inline AI void dot_streams(const uint32_t type, int64_t n_groups, int64_t cols,
                                                const uint8_t *const *w, const float *x, float *const *y) {
    const size_t gb = 32 * (size_t)cols;
    for (int64_t i = 0; i < n_groups; i++) {
        const uint8_t *const g[STREAMS] = {w[0] + i * gb, w[1] + i * gb, w[2] + i * gb, w[3] + i * gb};
        float *const yo[STREAMS] = {y[0] + 16 * i, y[1] + 16 * i, y[2] + 16 * i, y[3] + 16 * i};
        streams_dot(type, STREAMS, cols, g, x, yo);
    }
}

AVX512_TARGET void hmti_il16h_dot(uint32_t type, int64_t n_groups, int64_t cols, const uint8_t *w, const float *x,
                                  float *y) {
    BY_TYPE(type, dot_groups, n_groups, cols, w, x, y);
}

AVX512_TARGET void hmti_il16h_dot4(uint32_t type, int64_t n_groups, int64_t cols, const uint8_t *const w[4],
                                   const float *x, float *const y[4]) {
    BY_TYPE(type, dot_streams, n_groups, cols, w, x, y);
}

/* One group against na <= MAX_ACT activation rows (x + a * ldx). */
AVX512_TARGET static inline AI void group_multi(const uint32_t type, int64_t cols, const uint8_t *g, const float *x,
                                                int64_t ldx, const int na, float *y, int64_t ldy) {
    __m512 acc[MAX_ACT][4];
#pragma GCC unroll 4
    for (int a = 0; a < MAX_ACT; a++)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) acc[a][j] = _mm512_setzero_ps();
    for (int64_t c = 0; c < cols; c += 4, g += 128) {
        hmti_pf_span(g, 128);
        __m512 W[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) W[j] = column(type, g + 32 * j);
#pragma GCC unroll 4
        for (int a = 0; a < MAX_ACT; a++) {
            if (a >= na) break;
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++)
                acc[a][j] = _mm512_fmadd_ps(W[j], _mm512_set1_ps(x[a * ldx + c + j]), acc[a][j]);
        }
    }
    for (int a = 0; a < na; a++) _mm512_storeu_ps(y + a * ldy, sum4(acc[a]));
}

AVX512_TARGET static inline AI void multi_groups(const uint32_t type, int64_t n_groups, int64_t cols,
                                                 const uint8_t *w, const float *x, int64_t ldx, int64_t n_act,
                                                 float *y, int64_t ldy) {
    const size_t gb = 32 * (size_t)cols;
    for (int64_t i = 0; i < n_groups; i++, w += gb)
        for (int64_t a = 0; a < n_act; a += MAX_ACT) {
            float *yo = y + a * ldy + 16 * i;
            if (n_act - a >= MAX_ACT) /* a constant count: no per-row tests */
                group_multi(type, cols, w, x + a * ldx, ldx, MAX_ACT, yo, ldy);
            else
                group_multi(type, cols, w, x + a * ldx, ldx, (int)(n_act - a), yo, ldy);
        }
}

AVX512_TARGET void hmti_il16h_multi(uint32_t type, int64_t n_groups, int64_t cols, const uint8_t *w, const float *x,
                                    int64_t ldx, int64_t n_act, float *y, int64_t ldy) {
    BY_TYPE(type, multi_groups, n_groups, cols, w, x, ldx, n_act, y, ldy);
}

AVX512_TARGET static inline AI void dequant_cols(const uint32_t type, const uint8_t *g, int64_t n, float *dst,
                                                 int64_t ld) {
    for (int64_t c = 0; c < n; c++) _mm512_storeu_ps(dst + c * ld, column(type, g + 32 * c));
}

AVX512_TARGET void hmti_il16h_dequant_cols(uint32_t type, const uint8_t *g, int64_t c0, int64_t n, float *dst,
                                           int64_t ld) {
    BY_TYPE(type, dequant_cols, g + 32 * c0, n, dst, ld);
}

/* ---- the family's table (quant_impl.h): ranges in columns ------------------------- */
static void fam_pack(uint32_t type, int64_t cols, const uint8_t *src, size_t row_bytes, uint8_t *dst) {
    (void)type;
    hmti_il16h_pack(cols, src, row_bytes, dst);
}
static void fam_dot(uint32_t type, int64_t n_groups, int64_t cols, const uint8_t *w, const void *act, float *y) {
    hmti_il16h_dot(type, n_groups, cols, w, act, y);
}
static void fam_multi(uint32_t type, int64_t n_groups, int64_t cols, const uint8_t *w, const void *act,
                      size_t act_stride, int64_t n_act, float *y, int64_t ldy) {
    hmti_il16h_multi(type, n_groups, cols, w, act, (int64_t)(act_stride / sizeof(float)), n_act, y, ldy);
}
static void fam_dot4(uint32_t type, int64_t n_groups, int64_t cols, const uint8_t *const w[4], const void *act,
                     float *const y[4]) {
    hmti_il16h_dot4(type, n_groups, cols, w, act, y);
}
/* 4 streams pay for F16 and BF16 on matrices of any size (docs/QUANTS.md,
 * fourteenth session: the SmolLM2 shape's smallest gained too). */
static int64_t fam_dot4_min(uint32_t type) {
    (void)type;
    return 0;
}
const hmti_il16_family hmti_il16_half_family = {32,       fam_pack, fam_dot, fam_multi, hmti_il16h_dequant_row,
                                                hmti_il16h_dequant_cols, fam_dot4, fam_dot4_min};
