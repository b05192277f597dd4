/* One query row's attention products over a KV cache, several heads of a
 * KV group at once (kv_row.h): both are the same product, a matrix of rows
 * read once against one vector per head, its elements F32 or widened from
 * F16/BF16 as they are loaded. A pass holds two sums (even and odd terms,
 * hmti_gemm_cm's col_blocks) per head and 16-lane vector, at most 20 of
 * them with the loaded vectors beside: the vectors per pass shrink as the
 * heads grow. Each lane's sums see the same terms in the same order
 * whatever the pass, so the bits do not depend on how many heads or
 * vectors a pass takes. */
#include <immintrin.h>

#include "kernels/cpu.h"
#include "kernels/kv_row.h"
#include "kernels/quant.h"

#define AI __attribute__((always_inline))

int hmti_kv_row_direct(void) { return hmti_cpu_level() == 2; }

/* Vectors per pass for nh heads: 2 * nh * vectors <= 20, at most 4, a power
 * of two so that a pass of scores reads whole 32-slot blocks of K, each as
 * one run (3 heads' group from memory, against the rows of n_ctx before:
 * 3 vectors a pass across the blocks 1.15x the time, 2 vectors 0.90x;
 * docs/QUANTS.md, sixteenth session). */
#define PER_PASS(nh) ((nh) <= 2 ? 4 : (nh) <= 5 ? 2 : 1)

/* Lanes [0, left) of a vector: all 16 when left >= 16. */
static inline __mmask16 lanes(int64_t left) {
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

/* Elements [i, i + 16) of a (lanes under k; 0 elsewhere) as floats. */
AVX512_TARGET static inline AI __m512 load16(const uint32_t type, const void *a, int64_t i, __mmask16 k) {
    if (type == HMTI_T_F32) return _mm512_maskz_loadu_ps(k, (const float *)a + i);
    const __m256i h = _mm256_maskz_loadu_epi16(k, (const uint16_t *)a + i);
    if (type == HMTI_T_BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
}

/* One pass of either product: for heads i < nh, y[i * ldy + 16 j + lane] =
 * sum_{r < rows} a[j][r * lda + lane] * x[i * ldx + r] for vectors j < nv
 * (the last one's lanes `last`), even and odd r in two sums added at the
 * end (col_blocks' order). Scores: r is the head component, the lanes
 * slots; values: r is the slot, the lanes components. */
AVX512_TARGET static inline AI void pass(const uint32_t type, const int nh, const int nv, const char *const *a,
                                         int64_t lda, int64_t rows,
                                         const float *x, int64_t ldx, float *y, int64_t ldy, __mmask16 last) {
    __m512 e[HMTI_KV_ROW_HEADS][4], o[HMTI_KV_ROW_HEADS][4], a0[4], a1[4];
#pragma GCC unroll 8
    for (int i = 0; i < nh; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) e[i][j] = o[i][j] = _mm512_setzero_ps();
    int64_t r = 0;
    for (; r + 2 <= rows; r += 2) {
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) {
            a0[j] = load16(type, a[j], r * lda, j == nv - 1 ? last : 0xffff);
            a1[j] = load16(type, a[j], (r + 1) * lda, j == nv - 1 ? last : 0xffff);
        }
#pragma GCC unroll 8
        for (int i = 0; i < nh; i++) {
            const __m512 x0 = _mm512_set1_ps(x[i * ldx + r]), x1 = _mm512_set1_ps(x[i * ldx + r + 1]);
#pragma GCC unroll 4
            for (int j = 0; j < nv; j++) {
                e[i][j] = _mm512_fmadd_ps(a0[j], x0, e[i][j]);
                o[i][j] = _mm512_fmadd_ps(a1[j], x1, o[i][j]);
            }
        }
    }
    if (r < rows) {
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) a0[j] = load16(type, a[j], r * lda, j == nv - 1 ? last : 0xffff);
#pragma GCC unroll 8
        for (int i = 0; i < nh; i++)
#pragma GCC unroll 4
            for (int j = 0; j < nv; j++) e[i][j] = _mm512_fmadd_ps(a0[j], _mm512_set1_ps(x[i * ldx + r]), e[i][j]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < nh; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            _mm512_mask_storeu_ps(y + i * ldy + 16 * j, j == nv - 1 ? last : 0xffff, _mm512_add_ps(e[i][j], o[i][j]));
}

/* The lanes of row 0 cut into blocks of `block` lanes, bstride elements
 * apart (one block: block past every lane): a cursor 16 lanes at a time,
 * none of them crossing a block. */
typedef struct {
    const char *block; /* the cursor's block */
    int64_t lane;      /* its lane there */
} cursor;

static inline AI const char *take16(cursor *u, int64_t block, size_t bstride_bytes, size_t es) {
    const char *p = u->block + (size_t)u->lane * es;
    u->lane += 16;
    if (u->lane == block) u->block += bstride_bytes, u->lane = 0;
    return p;
}

/* Lanes [c0, c0 + width) in passes of PER_PASS(nh) vectors, then of 2,
 * then one vector at a time, into y[.. + c - c0]; no vector may cross a
 * block. (A 32-component slice of values for 1-2 heads, whose passes take
 * 4 vectors, is one pass of 2 rather than two of 1 reading half of each
 * 128-byte row.) */
AVX512_TARGET static inline AI void passes(const uint32_t type, const int nh, const void *a, int64_t lda,
                                           int64_t block, int64_t bstride, int64_t rows, int64_t c0,
                                           int64_t width, const float *x, int64_t ldx, float *y, int64_t ldy) {
    const int nv = PER_PASS(nh);
    const size_t es = type == HMTI_T_F32 ? 4 : 2, bb = (size_t)bstride * es;
    cursor u = {(const char *)a + (size_t)(c0 / block) * bb, c0 % block};
    const char *at[4];
    int64_t c = 0;
    for (; c + 16 * nv <= width; c += 16 * nv) {
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) at[j] = take16(&u, block, bb, es);
        pass(type, nh, nv, at, lda, rows, x, ldx, y + c, ldy, 0xffff);
    }
    for (; nv > 2 && c + 32 <= width; c += 32) {
        at[0] = take16(&u, block, bb, es);
        at[1] = take16(&u, block, bb, es);
        pass(type, nh, 2, at, lda, rows, x, ldx, y + c, ldy, 0xffff);
    }
    for (; c < width; c += 16) {
        at[0] = take16(&u, block, bb, es);
        pass(type, nh, 1, at, lda, rows, x, ldx, y + c, ldy, lanes(width - c));
    }
}

/* passes(type, nh, ...) with nh a constant inside. */
#define BY_HEADS(type, nh, ...)                                                                 \
    switch (nh) {                                                                               \
    case 1: passes(type, 1, __VA_ARGS__); break;                                                \
    case 2: passes(type, 2, __VA_ARGS__); break;                                                \
    case 3: passes(type, 3, __VA_ARGS__); break;                                                \
    case 4: passes(type, 4, __VA_ARGS__); break;                                                \
    case 5: passes(type, 5, __VA_ARGS__); break;                                                \
    case 6: passes(type, 6, __VA_ARGS__); break;                                                \
    case 7: passes(type, 7, __VA_ARGS__); break;                                                \
    default: passes(type, 8, __VA_ARGS__); break;                                               \
    }

/* ... with the element type a constant inside too (F32, F16, else BF16). */
#define BY_TYPE(type, nh, ...)                                                                  \
    switch (type) {                                                                             \
    case HMTI_T_F32: BY_HEADS(HMTI_T_F32, nh, __VA_ARGS__); break;                         \
    case HMTI_T_F16: BY_HEADS(HMTI_T_F16, nh, __VA_ARGS__); break;                         \
    default: BY_HEADS(HMTI_T_BF16, nh, __VA_ARGS__); break;                                   \
    }

/* Slots from t0 on in whole 16-lane vectors when t0 is a vector's start
 * (a decode step from slot 0), else block by block (a sliding window's
 * first slot anywhere). */
AVX512_TARGET void hmti_kv_row_scores(const void *k, uint32_t type, int64_t block, int64_t hd, int64_t t0,
                                      int64_t n, const float *q, int nh, float *s, int64_t lds) {
    if (t0 % 16 == 0) {
        BY_TYPE(type, nh, k, block, block, hd * block, hd, t0, n, q, hd, s, lds);
        return;
    }
    for (int64_t t = t0, r; t < t0 + n; t += r) {
        r = t0 + n - t < block - t % block ? t0 + n - t : block - t % block;
        BY_TYPE(type, nh, k, block, block, hd * block, hd, t, r, q, hd, s + (t - t0), lds);
    }
}

AVX512_TARGET void hmti_kv_row_values(const void *v, uint32_t type, int64_t ld, int64_t width, const float *p,
                                      int64_t ldp, int nh, int64_t n, float *out, int64_t ldo) {
    BY_TYPE(type, nh, v, ld, width, 0, n, 0, width, p, ldp, out, ldo);
}
