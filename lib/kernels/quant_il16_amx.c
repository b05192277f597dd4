/* AMX int8 kernel of batched decode on Q8_0 in groups of 16 rows
 * (quant_impl.h): a group against up to 16 activation rows, each result
 * bit-identical to the one-row kernel (hmti_il16_dot_ref's steps).
 *
 * A block of the layout is an AMX B operand as it lies: 8 rows (element
 * dwords v = 0..7) of 64 bytes, column n = weight row n, 4 unsigned bytes
 * (quants + 128) each, the VNNI order a tile product reads. A = the M
 * activation rows' 32 signed quants of the block, loaded straight from
 * their hmti_q8_32 blocks (stride: the activation rows' stride). One
 * tdpbsud gives C[a][r] = the sum of row r's block with activation a, less
 * the 128 offset, exact; C row a plus -128 * the activation block's sum is
 * the one-row kernel's integer vector for activation a, and the same float
 * steps follow (cvt, f16 scales times the activation's scale, one FMA, in
 * block order).
 *
 * A C tile reaches the vector registers only through memory, and a tile is
 * not renamed: blocks alternate between two tile sets so that one block's
 * product runs while the previous block's C is stored and used. */
#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

#include "kernels/cpu.h"
#include "kernels/quant_impl.h"

#define QA __attribute__((target("amx-tile,amx-int8,avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c")))
/* GCC's AMX intrinsics are asm statements that name no memory they touch:
 * a compiler barrier around them keeps the C around them in order (as
 * gemm_bf16.c does). */
#define AMX_FENCE() __asm__ volatile("" ::: "memory")

enum { QA_ACT = 16 }; /* activation rows per pass: a tile's rows */

static atomic_int g_amx_enabled = 1; /* test hook */

void hmti_qmulti_amx_enable(int on) { atomic_store(&g_amx_enabled, on ? 1 : 0); }

int hmti_il16_amx(void) { return atomic_load_explicit(&g_amx_enabled, memory_order_relaxed) && hmti_cpu_has_amx_int8(); }

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* Tiles 0, 1: A of the even / odd blocks (m rows of 32 bytes); 2, 3: B (8
 * rows of 64); 4, 5: C (m rows of 64). */
QA static void tiles_config(int m) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t <= 1; t++) cfg.rows[t] = (uint8_t)m, cfg.colsb[t] = 32;
    for (int t = 2; t <= 3; t++) cfg.rows[t] = 8, cfg.colsb[t] = 64;
    for (int t = 4; t <= 5; t++) cfg.rows[t] = (uint8_t)m, cfg.colsb[t] = 64;
    AMX_FENCE();
    _tile_loadconfig(&cfg);
    AMX_FENCE();
}

/* The product of the block at blk with the activations' block at x (tile
 * numbers literal: the intrinsics paste them into the asm). */
#define ISSUE(A, B, C, x, as, blk)               \
    do {                                         \
        _tile_loadd(A, x, (long)(as));           \
        _tile_loadd(B, (blk) + 32, 64);          \
        _tile_zero(C);                           \
        _tile_dpbsud(C, A, B);                   \
    } while (0)

/* acc[a] += block b's float terms (c: its stored C, dw: its row scales). */
QA static inline __attribute__((always_inline)) void
block_floats(const int na, const uint8_t *act, size_t as, int64_t b, __m512 dw, int32_t (*c)[16], __m512 *acc) {
#pragma GCC unroll 16
    for (int a = 0; a < QA_ACT; a++) {
        if (a >= na) break;
        const hmti_q8_32 *x = (const hmti_q8_32 *)(const void *)(act + (size_t)a * as) + b;
        const __m512i s = _mm512_add_epi32(_mm512_load_si512(c[a]), _mm512_set1_epi32(-128 * (x->sum[0] + x->sum[1])));
        acc[a] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(x->d)), acc[a]);
    }
}

/* One group at g against na activations (act, as), tiles configured for na
 * rows: y[a * ldy + r]. */
QA static inline __attribute__((always_inline)) void
group_amx(int64_t nb, const uint8_t *g, const uint8_t *act, size_t as, const int na, float *y, int64_t ldy) {
    __m512 acc[QA_ACT];
    _Alignas(64) int32_t cbuf[2][QA_ACT][16];
#pragma GCC unroll 16
    for (int a = 0; a < QA_ACT; a++) acc[a] = _mm512_setzero_ps();
    const uint8_t *q = act + offsetof(hmti_q8_32, qs);
#define BLK(b) (g + (size_t)(b) * hmti_il16_block(HMTI_T_Q8_0))
#define ACT(b) (q + (size_t)(b) * sizeof(hmti_q8_32))
    AMX_FENCE();
    ISSUE(0, 2, 4, ACT(0), as, BLK(0));
    for (int64_t b = 0; b < nb; b += 2) {
        hmti_pf_span(BLK(b), 2 * hmti_il16_block(HMTI_T_Q8_0));
        if (b + 1 < nb) ISSUE(1, 3, 5, ACT(b + 1), as, BLK(b + 1));
        const __m512 d0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)BLK(b)));
        _tile_stored(4, cbuf[0], 64);
        AMX_FENCE();
        block_floats(na, act, as, b, d0, cbuf[0], acc);
        if (b + 1 >= nb) break;
        if (b + 2 < nb) {
            AMX_FENCE();
            ISSUE(0, 2, 4, ACT(b + 2), as, BLK(b + 2));
        }
        const __m512 d1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)BLK(b + 1)));
        _tile_stored(5, cbuf[1], 64);
        AMX_FENCE();
        block_floats(na, act, as, b + 1, d1, cbuf[1], acc);
    }
#undef BLK
#undef ACT
    for (int a = 0; a < na; a++) _mm512_storeu_ps(y + a * ldy, acc[a]);
}

QA void hmti_il16_multi_amx(int64_t n_groups, int64_t nb, const uint8_t *w, const uint8_t *act, size_t act_stride,
                            int64_t n_act, float *y, int64_t ldy) {
    const size_t gb = (size_t)nb * hmti_il16_block(HMTI_T_Q8_0);
    for (int64_t a = 0; a < n_act; a += QA_ACT) {
        const int na = (int)(n_act - a < QA_ACT ? n_act - a : QA_ACT);
        const uint8_t *x = act + (size_t)a * act_stride;
        tiles_config(na);
        for (int64_t i = 0; i < n_groups; i++) {
            const uint8_t *g = w + (size_t)i * gb;
            float *yo = y + a * ldy + 16 * i;
            if (na == 8) /* the usual batch, and the largest: counts the compiler knows */
                group_amx(nb, g, x, act_stride, 8, yo, ldy);
            else if (na == QA_ACT)
                group_amx(nb, g, x, act_stride, QA_ACT, yo, ldy);
            else
                group_amx(nb, g, x, act_stride, na, yo, ldy);
        }
    }
    _tile_release(); /* a thread holding the tile state makes every context switch save 8 KiB more */
}
