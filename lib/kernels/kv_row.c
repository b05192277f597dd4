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

/* Vectors per pass for nh heads: 2 * nh * vectors <= 20, at most 4. */
#define PER_PASS(nh) ((nh) == 1 ? 4 : 10 / (nh) > 4 ? 4 : 10 / (nh))

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
 * sum_{r < rows} a[r * lda + 16 j + lane] * x[i * ldx + r] for vectors
 * j < nv (the last one's lanes `last`), even and odd r in two sums added at
 * the end (col_blocks' order). Scores: r is the head component, the lanes
 * slots; values: r is the slot, the lanes components. */
AVX512_TARGET static inline AI void pass(const uint32_t type, const int nh, const int nv, const void *a, int64_t lda,
                                         int64_t rows,
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
            a0[j] = load16(type, a, r * lda + 16 * j, j == nv - 1 ? last : 0xffff);
            a1[j] = load16(type, a, (r + 1) * lda + 16 * j, j == nv - 1 ? last : 0xffff);
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
        for (int j = 0; j < nv; j++) a0[j] = load16(type, a, r * lda + 16 * j, j == nv - 1 ? last : 0xffff);
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

/* Lanes [0, width) in passes of PER_PASS(nh) vectors, then one vector at a time. */
AVX512_TARGET static inline AI void passes(const uint32_t type, const int nh, const void *a, int64_t lda,
                                           int64_t rows, int64_t width, const float *x, int64_t ldx, float *y,
                                           int64_t ldy) {
    const int nv = PER_PASS(nh);
    const size_t es = type == HMTI_T_F32 ? 4 : 2;
    int64_t c = 0;
    for (; c + 16 * nv <= width; c += 16 * nv)
        pass(type, nh, nv, (const char *)a + c * es, lda, rows, x, ldx, y + c, ldy, 0xffff);
    for (; c < width; c += 16)
        pass(type, nh, 1, (const char *)a + c * es, lda, rows, x, ldx, y + c, ldy, lanes(width - c));
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

AVX512_TARGET void hmti_kv_row_scores(const void *k, uint32_t type, int64_t ld, int64_t hd, const float *q, int nh,
                                      int64_t n, float *s, int64_t lds) {
    BY_TYPE(type, nh, k, ld, hd, n, q, hd, s, lds);
}

AVX512_TARGET void hmti_kv_row_values(const void *v, uint32_t type, int64_t ld, int64_t hd, const float *p,
                                      int64_t ldp, int nh, int64_t n, float *out) {
    BY_TYPE(type, nh, v, ld, n, hd, p, ldp, out, hd);
}
