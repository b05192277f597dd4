/* One query row's attention products over an F32 KV cache, several heads
 * of a KV group at once (kv_row.h). A pass holds two sums (even and odd
 * terms, hmti_gemm_cm's col_blocks) per head and 16-lane vector, at most
 * 20 of them with the loaded vectors beside: the vectors per pass shrink
 * as the heads grow. Each lane's sums see the same terms in the same order
 * whatever the pass, so the bits do not depend on how many heads or
 * vectors a pass takes. */
#include <immintrin.h>

#include "kernels/cpu.h"
#include "kernels/kv_row.h"

#define AI __attribute__((always_inline))

int hmti_kv_row_direct(void) { return hmti_cpu_level() == 2; }

/* Vectors per pass for nh heads: 2 * nh * vectors <= 20, at most 4. */
#define PER_PASS(nh) ((nh) == 1 ? 4 : 10 / (nh) > 4 ? 4 : 10 / (nh))

/* Lanes [0, left) of a vector: all 16 when left >= 16. */
static inline __mmask16 lanes(int64_t left) {
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

/* Scores of slots [0, 16 nv) at k (the last vector's lanes `last`), heads i < nh. */
AVX512_TARGET static inline AI void scores_pass(const int nh, const int nv, const float *k, int64_t ld, int64_t hd,
                                                const float *q, float *s, int64_t lds, __mmask16 last) {
    __m512 e[HMTI_KV_ROW_HEADS][4], o[HMTI_KV_ROW_HEADS][4], a0[4], a1[4];
#pragma GCC unroll 8
    for (int i = 0; i < nh; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) e[i][j] = o[i][j] = _mm512_setzero_ps();
    int64_t d = 0;
    for (; d + 2 <= hd; d += 2) {
        const float *r0 = k + d * ld, *r1 = r0 + ld;
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) {
            a0[j] = _mm512_maskz_loadu_ps(j == nv - 1 ? last : 0xffff, r0 + 16 * j);
            a1[j] = _mm512_maskz_loadu_ps(j == nv - 1 ? last : 0xffff, r1 + 16 * j);
        }
#pragma GCC unroll 8
        for (int i = 0; i < nh; i++) {
            const __m512 x0 = _mm512_set1_ps(q[i * hd + d]), x1 = _mm512_set1_ps(q[i * hd + d + 1]);
#pragma GCC unroll 4
            for (int j = 0; j < nv; j++) {
                e[i][j] = _mm512_fmadd_ps(a0[j], x0, e[i][j]);
                o[i][j] = _mm512_fmadd_ps(a1[j], x1, o[i][j]);
            }
        }
    }
    if (d < hd) {
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) a0[j] = _mm512_maskz_loadu_ps(j == nv - 1 ? last : 0xffff, k + d * ld + 16 * j);
#pragma GCC unroll 8
        for (int i = 0; i < nh; i++)
#pragma GCC unroll 4
            for (int j = 0; j < nv; j++) e[i][j] = _mm512_fmadd_ps(a0[j], _mm512_set1_ps(q[i * hd + d]), e[i][j]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < nh; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            _mm512_mask_storeu_ps(s + i * lds + 16 * j, j == nv - 1 ? last : 0xffff, _mm512_add_ps(e[i][j], o[i][j]));
}

AVX512_TARGET static inline AI void scores_heads(const int nh, const float *k, int64_t ld, int64_t hd, const float *q,
                                                 int64_t n, float *s, int64_t lds) {
    const int nv = PER_PASS(nh);
    int64_t t = 0;
    for (; t + 16 * nv <= n; t += 16 * nv) scores_pass(nh, nv, k + t, ld, hd, q, s + t, lds, 0xffff);
    for (; t < n; t += 16) scores_pass(nh, 1, k + t, ld, hd, q, s + t, lds, lanes(n - t));
}

/* Components [0, 16 nv) of the values at v (the last vector's lanes `last`), heads i < nh. */
AVX512_TARGET static inline AI void values_pass(const int nh, const int nv, const float *v, int64_t ld,
                                                const float *p, int64_t ldp, int64_t n, float *out, int64_t hd,
                                                __mmask16 last) {
    __m512 e[HMTI_KV_ROW_HEADS][4], o[HMTI_KV_ROW_HEADS][4], a0[4], a1[4];
#pragma GCC unroll 8
    for (int i = 0; i < nh; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) e[i][j] = o[i][j] = _mm512_setzero_ps();
    int64_t t = 0;
    for (; t + 2 <= n; t += 2) {
        const float *r0 = v + t * ld, *r1 = r0 + ld;
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) {
            a0[j] = _mm512_maskz_loadu_ps(j == nv - 1 ? last : 0xffff, r0 + 16 * j);
            a1[j] = _mm512_maskz_loadu_ps(j == nv - 1 ? last : 0xffff, r1 + 16 * j);
        }
#pragma GCC unroll 8
        for (int i = 0; i < nh; i++) {
            const __m512 x0 = _mm512_set1_ps(p[i * ldp + t]), x1 = _mm512_set1_ps(p[i * ldp + t + 1]);
#pragma GCC unroll 4
            for (int j = 0; j < nv; j++) {
                e[i][j] = _mm512_fmadd_ps(a0[j], x0, e[i][j]);
                o[i][j] = _mm512_fmadd_ps(a1[j], x1, o[i][j]);
            }
        }
    }
    if (t < n) {
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) a0[j] = _mm512_maskz_loadu_ps(j == nv - 1 ? last : 0xffff, v + t * ld + 16 * j);
#pragma GCC unroll 8
        for (int i = 0; i < nh; i++)
#pragma GCC unroll 4
            for (int j = 0; j < nv; j++) e[i][j] = _mm512_fmadd_ps(a0[j], _mm512_set1_ps(p[i * ldp + t]), e[i][j]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < nh; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            _mm512_mask_storeu_ps(out + i * hd + 16 * j, j == nv - 1 ? last : 0xffff, _mm512_add_ps(e[i][j], o[i][j]));
}

AVX512_TARGET static inline AI void values_heads(const int nh, const float *v, int64_t ld, int64_t hd, const float *p,
                                                 int64_t ldp, int64_t n, float *out) {
    const int nv = PER_PASS(nh);
    int64_t d = 0;
    for (; d + 16 * nv <= hd; d += 16 * nv) values_pass(nh, nv, v + d, ld, p, ldp, n, out + d, hd, 0xffff);
    for (; d < hd; d += 16) values_pass(nh, 1, v + d, ld, p, ldp, n, out + d, hd, lanes(hd - d));
}

/* fn(nh, ...) with nh a constant inside. */
#define BY_HEADS(nh, fn, ...)                                                                   \
    switch (nh) {                                                                               \
    case 1: fn(1, __VA_ARGS__); break;                                                          \
    case 2: fn(2, __VA_ARGS__); break;                                                          \
    case 3: fn(3, __VA_ARGS__); break;                                                          \
    case 4: fn(4, __VA_ARGS__); break;                                                          \
    case 5: fn(5, __VA_ARGS__); break;                                                          \
    case 6: fn(6, __VA_ARGS__); break;                                                          \
    case 7: fn(7, __VA_ARGS__); break;                                                          \
    default: fn(8, __VA_ARGS__); break;                                                         \
    }

AVX512_TARGET void hmti_kv_row_scores(const float *k, int64_t ld, int64_t hd, const float *q, int nh, int64_t n,
                                      float *s, int64_t lds) {
    BY_HEADS(nh, scores_heads, k, ld, hd, q, n, s, lds);
}

AVX512_TARGET void hmti_kv_row_values(const float *v, int64_t ld, int64_t hd, const float *p, int64_t ldp, int nh,
                                      int64_t n, float *out) {
    BY_HEADS(nh, values_heads, v, ld, hd, p, ldp, n, out);
}
