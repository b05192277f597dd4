/* AVX-512 kernels of Q8_0, Q4_0, Q5_0, Q4_1, Q5_1 and IQ4_NL in groups of 16 rows
 * (quant_impl.h, quant.h): the dot products with one or several activation
 * rows (AVX512-VNNI) and the dequantizer of the prompt path.
 *
 * A block's weights come as 8 vectors W[v] whose int32 lane r holds 4
 * unsigned weights of row r, elements 4v..4v+3 (Q8_0: 8 loads of quants +
 * 128; Q4_0: 4 loads of nibble bytes, W[v] the low nibbles, W[4 + v] the
 * high ones: elements 16 + 4v..; Q5_0: the same plus 16 where the row's
 * 5th bit of the element is set; Q4_1, Q5_1: as Q4_0, Q5_0; IQ4_NL: as
 * Q4_0, each nibble replaced by its value + 128 by one vpshufb). One vpdpbusd
 * against the activation's matching dword broadcast adds them into row r's
 * lane, so 8 of them sum each row's block in its own lane, with no fold,
 * and the 16 lanes are the 16 rows' results. The lane starts at -offset * the activation block's sum
 * (the weights' offset, 128, 16 or 8, removed exactly; Q4_1, Q5_1: 0). Then,
 * per block in order, one FMA: acc = (float)sum * (f16 scale * the
 * activation's scale) + acc, and for Q4_1, Q5_1 a second one adding
 * (float)(the activation block's sum) * (f16 min * the activation's scale):
 * hmti_il16_dot_ref's steps; the several-row kernel does the same per
 * activation row, so each of its results is the one-row kernel's bits. */
#include <immintrin.h>

#include "kernels/quant_il16_x86.h"

#define QT __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx2,fma,f16c")))
#define AI __attribute__((always_inline))
/* fn(type, ...) with the type a constant inside, so its branches fold. */
#define BY_TYPE(type, fn, ...)                                                                   \
    ((type) == HMTI_T_Q4_0   ? fn(HMTI_T_Q4_0, __VA_ARGS__)                                      \
     : (type) == HMTI_T_Q5_0 ? fn(HMTI_T_Q5_0, __VA_ARGS__)                                      \
     : (type) == HMTI_T_Q4_1 ? fn(HMTI_T_Q4_1, __VA_ARGS__)                                      \
     : (type) == HMTI_T_Q5_1 ? fn(HMTI_T_Q5_1, __VA_ARGS__)                                      \
     : (type) == HMTI_T_IQ4_NL ? fn(HMTI_T_IQ4_NL, __VA_ARGS__)                                  \
                             : fn(HMTI_T_Q8_0, __VA_ARGS__))
#define L256(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))

enum { MAX_ACT = 8 }; /* activation rows per pass: 8 accumulators and the 8 weight vectors in registers */

/* The one-row kernels prefetch a block's lines PF_AHEAD bytes ahead into L1
 * only (hmti_pf_l1), as Q4_K's groups do: against hmti_pf_span (L1 at 2 KiB and L2 at
 * 34 KiB ahead) Q4_0 decode over memory went from 1.6x to 1.8-2.0x the
 * stored rows' speed at 2 threads, 1 thread 70-83% -> 85-96% of the stream
 * read (quant-bench, alternated builds); Q8_0 about the same either way. */
enum { PF_AHEAD = 4608 };

/* The activation block's dword v, broadcast (vpdpbusd's embedded broadcast). */
static inline int32_t act_dword(const hmti_q8_32 *x, int v) {
    int32_t q;
    memcpy(&q, x->qs + 4 * v, 4);
    return q;
}

/* The exact int sums of the block's 16 rows (weights W[0..7], offset off)
 * with x: two chains of 4 vpdpbusd, so that the two run side by side. */
QT static inline AI __m512i block_sums(const __m512i *W, const hmti_q8_32 *x, const int off) {
    __m512i s0 = _mm512_set1_epi32(-off * (x->sum[0] + x->sum[1])), s1 = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++) {
        s0 = _mm512_dpbusd_epi32(s0, W[v], _mm512_set1_epi32(act_dword(x, v)));
        s1 = _mm512_dpbusd_epi32(s1, W[4 + v], _mm512_set1_epi32(act_dword(x, 4 + v)));
    }
    return _mm512_add_epi32(s0, s1);
}

/* Q5_0, Q5_1: W[j] (columns 4j..4j+3) | 16 where the lane's 5th bits (Q) have
 * bits 4j..4j+3: byte j / 2 of the lane's 5th bits copied to its 4 bytes
 * (vpshufb), byte k tested against bit 4 (j % 2) + k. */
AVX512_TARGET static inline AI __m512i fifth_bits(__m512i W, __m512i Q, int j) {
    const int src = j / 2;
    const __m512i idx = _mm512_broadcast_i32x4(_mm_setr_epi8(src, src, src, src, 4 + src, 4 + src, 4 + src, 4 + src,
                                                             8 + src, 8 + src, 8 + src, 8 + src, 12 + src, 12 + src,
                                                             12 + src, 12 + src));
    const __m512i bit = _mm512_set1_epi32((int)(0x08040201u << (4 * (j % 2))));
    const __mmask64 set = _mm512_test_epi8_mask(_mm512_shuffle_epi8(Q, idx), bit);
    return _mm512_mask_add_epi8(W, set, W, _mm512_set1_epi8(16)); /* bit 4 is clear in W */
}

/* The block's weights W[0..7], the 16 rows' scales dw and (Q4_1, Q5_1) mins mw. */
AVX512_TARGET static inline AI void load_block(const uint32_t type, const uint8_t *blk, __m512i *W, __m512 *dw,
                                               __m512 *mw) {
    if (type != HMTI_T_Q8_0) {
        const size_t qo = hmti_il16_quants(type);
        const __m512i m4 = _mm512_set1_epi8(15);
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            const __m512i q = _mm512_loadu_si512(blk + qo + 64 * v);
            W[v] = _mm512_and_si512(q, m4);
            W[4 + v] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
        }
        if (type == HMTI_T_IQ4_NL) { /* the values + 128, looked up by nibble */
            const __m512i lut = hmti_il16_iq4_book();
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) W[j] = _mm512_shuffle_epi8(lut, W[j]);
        }
        if (hmti_il16_has_qh(type)) {
            const __m512i Q = _mm512_loadu_si512(blk + hmti_il16_qh_at(type));
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) W[j] = fifth_bits(W[j], Q, j);
        }
    } else {
#pragma GCC unroll 8
        for (int v = 0; v < 8; v++) W[v] = _mm512_loadu_si512(blk + 32 + 64 * v);
    }
    *dw = _mm512_cvtph_ps(L256(blk));
    *mw = hmti_il16_has_min(type) ? _mm512_cvtph_ps(L256(blk + 32)) : _mm512_setzero_ps();
}

/* acc + the block's terms from its exact int sums s against x: s * (d * x's
 * scale), then Q4_1/Q5_1's x block sum * (m * x's scale). */
QT static inline AI __m512 block_terms(const uint32_t type, __m512i s, __m512 dw, __m512 mw, const hmti_q8_32 *x,
                                       __m512 acc) {
    const __m512 xd = _mm512_set1_ps(x->d);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, xd), acc);
    if (!hmti_il16_has_min(type)) return acc;
    return _mm512_fmadd_ps(_mm512_set1_ps((float)(x->sum[0] + x->sum[1])), _mm512_mul_ps(mw, xd), acc);
}

/* acc + one block of a group against one activation block x. */
QT static inline AI __m512 block_fma(const uint32_t type, const uint8_t *blk, const hmti_q8_32 *x, __m512 acc) {
    __m512i W[8];
    __m512 dw, mw;
    load_block(type, blk, W, &dw, &mw);
    return block_terms(type, block_sums(W, x, hmti_il16_offset(type)), dw, mw, x, acc);
}

/* n_groups groups against one activation, one group after another (one
 * sequential stream), its blocks in turns of TURN: over memory the loop
 * with 8 blocks a turn, a prefetch of two blocks' lines every second
 * block, reads 1.3-1.9x the bytes per second of the loop with one block a
 * turn (Q4_0, 1 thread, 400 MB of 576 / 2048 / 5632-column groups; the
 * same code otherwise, the same bits). That also made two groups side by
 * side (two streams; Q8_0's long groups until then) slower than one: Q8_0
 * 1.42-1.67x against the pairs (docs/QUANTS.md, thirteenth session). */
enum { TURN = 8 };
QT static inline AI void dot_groups(const uint32_t type, int64_t n_groups, int64_t nb, const uint8_t *w,
                                    const hmti_q8_32 *act, float *y) {
    const size_t bs = hmti_il16_block(type);
    for (int64_t i = 0; i < n_groups; i++) {
        __m512 acc = _mm512_setzero_ps();
        int64_t b = 0;
        for (; b + TURN <= nb; b += TURN, w += TURN * bs) {
#pragma GCC unroll 8
            for (int k = 0; k < TURN; k++) {
                if (k % 2 == 0) hmti_pf_l1(w + PF_AHEAD + k * bs, 2 * bs);
                acc = block_fma(type, w + k * bs, &act[b + k], acc);
            }
        }
        for (; b < nb; b++, w += bs) {
            hmti_pf_l1(w + PF_AHEAD, bs);
            acc = block_fma(type, w, &act[b], acc);
        }
        _mm512_storeu_ps(y + 16 * i, acc);
    }
}

QT void hmti_il16_dot_vnni(uint32_t type, int64_t n_groups, int64_t nb, const uint8_t *w, const hmti_q8_32 *act,
                           float *y) {
    BY_TYPE(type, dot_groups, n_groups, nb, w, act, y);
}

/* One group against na <= MAX_ACT activations: the block's weights loaded
 * (and unpacked) once, then per activation the one-row kernel's steps.
 * Prefetch: the block PF_AHEAD bytes ahead into L1 and one line of it
 * MULTI_PF_L2 ahead into L2. hmti_pf_span (every line into L1 and L2) stalled
 * on the prefetches themselves (a third of the kernel's samples on them):
 * 8 SmolLM2-shaped sequences at 2 threads, one process, rounds alternated,
 * batched tokens/s Q8_0 1.20-1.25x, Q4_0 1.16x (docs/QUANTS.md, twelfth session). */
enum { MULTI_PF_L2 = 16384 };
QT static inline AI void group_multi(const uint32_t type, int64_t nb, const uint8_t *g, const uint8_t *act, size_t as,
                                     const int na, float *y, int64_t ldy) {
    const size_t bs = hmti_il16_block(type);
    __m512 acc[MAX_ACT];
#pragma GCC unroll 8
    for (int a = 0; a < MAX_ACT; a++) acc[a] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, g += bs) {
        hmti_pf_l1(g + PF_AHEAD, bs);
        __builtin_prefetch(g + MULTI_PF_L2, 0, 2);
        __m512i W[8];
        __m512 dw, mw;
        load_block(type, g, W, &dw, &mw);
#pragma GCC unroll 8
        for (int a = 0; a < MAX_ACT; a++) {
            if (a >= na) break;
            const hmti_q8_32 *x = (const hmti_q8_32 *)(const void *)(act + (size_t)a * as) + b;
            acc[a] = block_terms(type, block_sums(W, x, hmti_il16_offset(type)), dw, mw, x, acc[a]);
        }
    }
    for (int a = 0; a < na; a++) _mm512_storeu_ps(y + a * ldy, acc[a]);
}

QT static inline AI void multi_groups(const uint32_t type, int64_t n_groups, int64_t nb, const uint8_t *w,
                                      const uint8_t *act, size_t act_stride, int64_t n_act, float *y, int64_t ldy) {
    const size_t gb = (size_t)nb * hmti_il16_block(type);
    for (int64_t i = 0; i < n_groups; i++, w += gb)
        for (int64_t a = 0; a < n_act; a += MAX_ACT) {
            const uint8_t *x = act + (size_t)a * act_stride;
            float *yo = y + a * ldy + 16 * i;
            if (n_act - a >= MAX_ACT) /* a constant count: no per-row tests */
                group_multi(type, nb, w, x, act_stride, MAX_ACT, yo, ldy);
            else
                group_multi(type, nb, w, x, act_stride, (int)(n_act - a), yo, ldy);
        }
}

QT void hmti_il16_multi_vnni(uint32_t type, int64_t n_groups, int64_t nb, const uint8_t *w, const uint8_t *act,
                             size_t act_stride, int64_t n_act, float *y, int64_t ldy) {
    BY_TYPE(type, multi_groups, n_groups, nb, w, act, act_stride, n_act, y, ldy);
}

/* W[j] holds columns 4j..4j+3 (load_block), for every type: the row
 * dequantizers' (float)(u - off) * d, Q4_1/Q5_1 (float)u * d + m. */
AVX512_TARGET static inline AI void dequant_group(const uint32_t type, const uint8_t *g, int64_t n_blocks, float *dst,
                                                  int64_t ld) {
    for (int64_t b = 0; b < n_blocks; b++, g += hmti_il16_block(type), dst += 32 * ld) {
        __m512i W[8];
        __m512 d, m;
        load_block(type, g, W, &d, &m);
        for (int j = 0; j < 8; j++)
            hmti_il16_store_cols(dst + 4 * j * ld, ld, W[j], d, hmti_il16_offset(type), hmti_il16_has_min(type), m);
    }
}

AVX512_TARGET void hmti_il16_dequant_cols(uint32_t type, const uint8_t *g, int64_t b0, int64_t n_blocks, float *dst,
                                          int64_t ld) {
    g += (size_t)b0 * hmti_il16_block(type);
    BY_TYPE(type, dequant_group, g, n_blocks, dst, ld);
}

/* Q4_0: 4 places side by side (a share's quarters, hmti_swork), one block
 * of each a step, sharing the activation's broadcasts, each block's lines
 * prefetched STREAM_PF_AHEAD bytes (4 blocks) ahead into L1; every result
 * is the one-group loop's bits. In the model (one process, 24-30 rounds
 * alternated, medians): TinyLlama-shaped Q4_0 decode 1.13-1.20x at 1
 * thread, 0.99-1.01x at 2; SmolLM2-shaped 1.04x at both. Without the
 * prefetch 0.94x, 2 or 8 blocks ahead 0.97-0.98x of this. Short streams
 * lose (40-120 KB at 2 threads on the SmolLM2 shape: 0.88-0.99x), hence
 * Q4_0_STREAM_MIN; Q8_0, which reads one stream well, lost on long ones
 * too (0.91x). The 4 places through block_fma, each with its own
 * broadcasts, instead of q4_0_blocks4: 0.94x (1 and 2 threads).
 * docs/QUANTS.md, eighteenth session. */
enum { STREAM_PF_AHEAD = 4 * 288 };
static const int64_t Q4_0_STREAM_MIN = 256 * 1024;

QT static inline AI void q4_0_blocks4(const uint8_t *const *g, const hmti_q8_32 *x, __m512 *acc) {
    const __m512i m4 = _mm512_set1_epi8(15), off = _mm512_set1_epi32(-8 * (x->sum[0] + x->sum[1]));
    __m512i s0[4], s1[4];
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        s0[k] = off;
        s1[k] = _mm512_setzero_si512();
        hmti_pf_l1(g[k] + STREAM_PF_AHEAD, 288);
    }
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++) { /* load_block's W[v] and W[4 + v], per place */
        const __m512i a0 = _mm512_set1_epi32(act_dword(x, v)), a1 = _mm512_set1_epi32(act_dword(x, 4 + v));
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            const __m512i q = _mm512_loadu_si512(g[k] + 32 + 64 * v);
            s0[k] = _mm512_dpbusd_epi32(s0[k], _mm512_and_si512(q, m4), a0);
            s1[k] = _mm512_dpbusd_epi32(s1[k], _mm512_and_si512(_mm512_srli_epi16(q, 4), m4), a1);
        }
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++)
        acc[k] = block_terms(HMTI_T_Q4_0, _mm512_add_epi32(s0[k], s1[k]), _mm512_cvtph_ps(L256(g[k])),
                             _mm512_setzero_ps(), x, acc[k]);
}

QT static void q4_0_dot4(int64_t n_groups, int64_t nb, const uint8_t *const *w, const hmti_q8_32 *act,
                         float *const *y) {
    const size_t gb = (size_t)nb * 288;
    for (int64_t i = 0; i < n_groups; i++) {
        const uint8_t *g[4] = {w[0] + i * gb, w[1] + i * gb, w[2] + i * gb, w[3] + i * gb};
        __m512 acc[4];
        for (int k = 0; k < 4; k++) acc[k] = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            q4_0_blocks4(g, &act[b], acc);
            for (int k = 0; k < 4; k++) g[k] += 288;
        }
        for (int k = 0; k < 4; k++) _mm512_storeu_ps(y[k] + 16 * i, acc[k]);
    }
}

static void dot4_groups(uint32_t type, int64_t n_groups, int64_t cols, const uint8_t *const w[4], const void *act,
                        float *const y[4]) {
    (void)type; /* Q4_0, the one type dot4_min admits */
    q4_0_dot4(n_groups, cols / 32, w, act, y);
}

static int64_t dot4_min(uint32_t type) { return type == HMTI_T_Q4_0 ? Q4_0_STREAM_MIN : -1; }

/* ---- the family's table (quant_impl.h): blocks of 32 columns ---------------------- */
/* Several activation rows: the AMX kernel where it runs (it reads Q8_0's layout only). */
static void multi_blocks(uint32_t type, int64_t n_groups, int64_t nb, const uint8_t *w, const void *act,
                         size_t act_stride, int64_t n_act, float *y, int64_t ldy) {
    if (type == HMTI_T_Q8_0 && hmti_il16_amx())
        hmti_il16_multi_amx(n_groups, nb, w, act, act_stride, n_act, y, ldy);
    else
        hmti_il16_multi_vnni(type, n_groups, nb, w, act, act_stride, n_act, y, ldy);
}
HMTI_IL16_FAMILY(hmti_il16_q32_family, 32, HMTI_IL16_TYPED, hmti_il16_pack, hmti_il16_dot_vnni, multi_blocks, hmti_il16_dequant_row,
                 hmti_il16_dequant_cols, dot4_groups, dot4_min);
