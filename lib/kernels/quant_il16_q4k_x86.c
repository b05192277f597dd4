/* AVX512-VNNI kernels of Q4_K and Q5_K in groups of 16 rows
 * (quant_impl.h): the dot products with one or several activation rows,
 * and the dequantizer of the prompt path.
 *
 * Per super-block, 3 loads give each row's 12 scale bytes in its dword
 * lane; byte-wise shifts, ands and a vpternlog turn them into SC[0..1]
 * and M[0..1], lane r holding row r's sc_4h..sc_4h+3 (m_...) one per byte.
 * A chunk (sub-blocks 2c, 2c + 1) is 8 nibble loads: & 15 gives sub-block
 * 2c's q, & 0xF0 sub-block 2c + 1's 16 q; vpdpbusd against the
 * activation's dwords broadcast sums each row in its own lane (the second
 * sum / 16 by an arithmetic shift, exact), times the sub-block's scales
 * (vpmulld) into S1. S2: the mins as words, (m_4h, m_4h+2) and (m_4h+1,
 * m_4h+3) per lane, by vpdpwssd against the activation's sub-block sums
 * paired alike. Then two FMAs per super-block, hmti_il16_q4k_dot_ref's
 * steps; the several-row kernel does the same per activation row, so each
 * of its results is the one-row kernel's bits. Q5_K: each nibble vector
 * gets its 5th bits (+ 16 in the bytes whose qh bit is set: one test and
 * one masked add), its high nibbles shifted down first. */
#include "kernels/quant_il16_x86.h"

#define QT __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx2,fma,f16c")))
#define AI __attribute__((always_inline))
#define LOAD(p) _mm512_loadu_si512((const void *)(p))

#define BY_TYPE(type, fn, ...) \
    ((type) == HMTI_T_Q5_K ? fn(HMTI_T_Q5_K, __VA_ARGS__) : fn(HMTI_T_Q4_K, __VA_ARGS__))

enum { MAX_ACT = 8 }; /* activation rows per pass: their sums and accumulators in registers */

/* Bytes prefetched per chunk (the whole super-block in 4 steps), and how far ahead: two super-blocks. */
static inline AI size_t pf_step(uint32_t type) { return hmti_il16_block(type) / 4; }
static inline AI size_t pf_ahead(uint32_t type) { return 2 * hmti_il16_block(type); }

/* The kernels prefetch chunk c of the super-block two ahead into L1 only
 * (hmti_pf_l1), a line per prefetch. hmti_pf_span (L1 and L2, the 4-row
 * kernels' way) measured no faster here than the stored rows' kernel over
 * memory and cost a third of the speed in cache; this one 1.1-1.3x the
 * stored rows over memory, one thread, quant-bench (docs/QUANTS.md). */

/* The super-block's scales and mins of the 16 rows: sc[h] lane r = row r's
 * sc_4h..sc_4h+3, a byte each (hmti_k_scale_min, byte-wise), m[h] the mins. */
AVX512_TARGET static inline AI void unpack_scales(const uint8_t *blk, __m512i sc[2], __m512i m[2]) {
    const __m512i Z0 = LOAD(blk + HMTI_IL16_Q4K_SCALES), Z1 = LOAD(blk + HMTI_IL16_Q4K_SCALES + 64),
                  Z2 = LOAD(blk + HMTI_IL16_Q4K_SCALES + 128);
    const __m512i m6 = _mm512_set1_epi8(63), m4 = _mm512_set1_epi8(15), top = _mm512_set1_epi8(0x30);
    sc[0] = _mm512_and_si512(Z0, m6);
    m[0] = _mm512_and_si512(Z1, m6);
    /* j >= 4: the low 4 bits from byte j + 4's nibbles, the top 2 from bits 6..7 of byte j - 4 / j
     * (16-bit shifts: what crosses from the next byte is masked off) */
    sc[1] = _mm512_ternarylogic_epi64(Z2, _mm512_and_si512(_mm512_srli_epi16(Z0, 2), top), m4, 0xEC); /* (a & c) | b */
    m[1] = _mm512_ternarylogic_epi64(_mm512_srli_epi16(Z2, 4), _mm512_and_si512(_mm512_srli_epi16(Z1, 2), top), m4,
                                     0xEC);
}

/* Byte k (0..3) of each dword lane of v, as int32. */
AVX512_TARGET static inline AI __m512i byte_of(__m512i v, const int k) {
    if (k == 0) return _mm512_and_si512(v, _mm512_set1_epi32(0xFF));
    if (k == 3) return _mm512_srli_epi32(v, 24);
    return _mm512_srli_epi32(_mm512_slli_epi32(v, 24 - 8 * k), 24);
}

/* v + 16 in each byte whose bit `bit` in the same byte of Q is set (v's bit 4 is clear). */
AVX512_TARGET static inline AI __m512i add_fifth(__m512i v, __m512i Q, int bit) {
    const __mmask64 set = _mm512_test_epi8_mask(Q, _mm512_set1_epi8((char)(1 << bit)));
    return _mm512_mask_add_epi8(v, set, v, _mm512_set1_epi8(16));
}

/* Chunk c's 8 nibble vectors: L[k] sub-block 2c's q, H[k] sub-block 2c + 1's
 * 16 q (Q4_K: in the high nibble; Q5_K: shifted down, with the 5th bits). */
AVX512_TARGET static inline AI void load_chunk(const uint32_t type, const uint8_t *blk, int c, __m512i L[8],
                                               __m512i H[8]) {
    const __m512i m4 = _mm512_set1_epi8(15), h4 = _mm512_set1_epi8((char)0xF0);
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {
        const __m512i N = LOAD(blk + hmti_il16_k4_qs(type) + 512 * c + 64 * k);
        L[k] = _mm512_and_si512(N, m4);
        if (type == HMTI_T_Q5_K) {
            const __m512i Q = LOAD(blk + HMTI_IL16_Q5K_QH + 64 * k);
            L[k] = add_fifth(L[k], Q, 2 * c);
            H[k] = add_fifth(_mm512_and_si512(_mm512_srli_epi16(N, 4), m4), Q, 2 * c + 1);
        } else {
            H[k] = _mm512_and_si512(N, h4);
        }
    }
}

static inline int32_t act_dword(const int8_t *q) {
    int32_t a;
    memcpy(&a, q, 4);
    return a;
}

/* Chunk c's share of S1 for the 16 rows: sc_2c * (q . a over 2c) + sc_2c+1 * (... over 2c + 1), exact. */
QT static inline AI __m512i chunk_sum(const uint32_t type, const __m512i L[8], const __m512i H[8],
                                      const hmti_q8_256 *x, int c, __m512i sc_lo, __m512i sc_hi) {
    __m512i sl = _mm512_setzero_si512(), sh = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {
        sl = _mm512_dpbusd_epi32(sl, L[k], _mm512_set1_epi32(act_dword(x->qs + 64 * c + 4 * k)));
        sh = _mm512_dpbusd_epi32(sh, H[k], _mm512_set1_epi32(act_dword(x->qs + 64 * c + 32 + 4 * k)));
    }
    if (type == HMTI_T_Q4_K) sh = _mm512_srai_epi32(sh, 4); /* its H kept q * 16 */
    return _mm512_add_epi32(_mm512_mullo_epi32(sl, sc_lo), _mm512_mullo_epi32(sh, sc_hi));
}

/* S2 = sum_j m_j * (activation sum over sub-block j) for the 16 rows, exact
 * (sums within +-32 * 127, words; the products' pairs added by vpdpwssd). */
QT static inline AI __m512i mins_sum(const __m512i m[2], const hmti_q8_256 *x) {
    uint16_t b[8];
    for (int j = 0; j < 8; j++) b[j] = (uint16_t)(x->sum[2 * j] + x->sum[2 * j + 1]);
    __m512i s = _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const __m512i even = _mm512_and_si512(m[h], _mm512_set1_epi32(0x00FF00FF)); /* (m_4h, m_4h+2) */
        const __m512i odd = _mm512_srli_epi16(m[h], 8);                             /* (m_4h+1, m_4h+3) */
        s = _mm512_dpwssd_epi32(s, even, _mm512_set1_epi32((int32_t)(b[4 * h] | (uint32_t)b[4 * h + 2] << 16)));
        s = _mm512_dpwssd_epi32(s, odd, _mm512_set1_epi32((int32_t)(b[4 * h + 1] | (uint32_t)b[4 * h + 3] << 16)));
    }
    return s;
}

/* acc + the super-block's two FMAs, from its exact int sums. */
AVX512_TARGET static inline AI __m512 sb_fma(const uint8_t *blk, __m512i s1, __m512i s2, float xd, __m512 acc) {
    const __m512 xv = _mm512_set1_ps(xd);
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)blk));
    const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(blk + HMTI_IL16_Q4K_DMIN)));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), _mm512_mul_ps(d, xv), acc);
    return _mm512_fnmadd_ps(_mm512_cvtepi32_ps(s2), _mm512_mul_ps(dmin, xv), acc); /* fmaf(-s2, ...): exact negation */
}

/* One group after another: one sequential stream, prefetched spread
 * through the loop (a quarter of a super-block per chunk). */
QT static inline AI void dot_groups(const uint32_t type, int64_t n_groups, int64_t nsb, const uint8_t *w,
                                    const hmti_q8_256 *act, float *y) {
    for (int64_t i = 0; i < n_groups; i++) {
        __m512 acc = _mm512_setzero_ps();
        for (int64_t s = 0; s < nsb; s++, w += hmti_il16_block(type)) {
            const hmti_q8_256 *x = &act[s];
            __m512i sc[2], m[2], s1 = _mm512_setzero_si512();
            unpack_scales(w, sc, m);
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                __m512i L[8], H[8];
                hmti_pf_l1(w + pf_ahead(type) + pf_step(type) * c, pf_step(type));
                load_chunk(type, w, c, L, H);
                s1 = _mm512_add_epi32(s1, chunk_sum(type, L, H, x, c, byte_of(sc[c / 2], 2 * c % 4),
                                                    byte_of(sc[c / 2], 2 * c % 4 + 1)));
            }
            acc = sb_fma(w, s1, mins_sum(m, x), x->d, acc);
        }
        _mm512_storeu_ps(y + 16 * i, acc);
    }
}

QT void hmti_il16_q4k_dot(uint32_t type, int64_t n_groups, int64_t nsb, const uint8_t *w, const hmti_q8_256 *act,
                          float *y) {
    BY_TYPE(type, dot_groups, n_groups, nsb, w, act, y);
}

/* One group against na <= MAX_ACT activations: each chunk loaded (and
 * unpacked) once, then per activation the one-row kernel's steps. */
QT static inline AI void group_multi(const uint32_t type, int64_t nsb, const uint8_t *g, const uint8_t *act,
                                     size_t as, const int na, float *y, int64_t ldy) {
    __m512 acc[MAX_ACT];
#pragma GCC unroll 8
    for (int a = 0; a < MAX_ACT; a++) acc[a] = _mm512_setzero_ps();
    for (int64_t s = 0; s < nsb; s++, g += hmti_il16_block(type)) {
        __m512i s1[MAX_ACT], sc[2], m[2];
#pragma GCC unroll 8
        for (int a = 0; a < MAX_ACT; a++) s1[a] = _mm512_setzero_si512();
        unpack_scales(g, sc, m);
        for (int c = 0; c < 4; c++) {
            __m512i L[8], H[8];
            hmti_pf_l1(g + pf_ahead(type) + pf_step(type) * c, pf_step(type));
            load_chunk(type, g, c, L, H);
            const __m512i sc_lo = byte_of(sc[c / 2], 2 * c % 4), sc_hi = byte_of(sc[c / 2], 2 * c % 4 + 1);
#pragma GCC unroll 8
            for (int a = 0; a < MAX_ACT; a++) {
                if (a >= na) break;
                const hmti_q8_256 *x = hmti_il16_k_act(act, as, a, s);
                s1[a] = _mm512_add_epi32(s1[a], chunk_sum(type, L, H, x, c, sc_lo, sc_hi));
            }
        }
#pragma GCC unroll 8
        for (int a = 0; a < MAX_ACT; a++) {
            if (a >= na) break;
            const hmti_q8_256 *x = hmti_il16_k_act(act, as, a, s);
            acc[a] = sb_fma(g, s1[a], mins_sum(m, x), x->d, acc[a]);
        }
    }
    for (int a = 0; a < na; a++) _mm512_storeu_ps(y + a * ldy, acc[a]);
}

QT static inline AI void multi_groups(const uint32_t type, int64_t n_groups, int64_t nsb, const uint8_t *w,
                                      const uint8_t *act, size_t act_stride, int64_t n_act, float *y, int64_t ldy) {
    const size_t gb = (size_t)nsb * hmti_il16_block(type);
    for (int64_t i = 0; i < n_groups; i++, w += gb)
        for (int64_t a = 0; a < n_act; a += MAX_ACT) {
            const uint8_t *x = act + (size_t)a * act_stride;
            float *yo = y + a * ldy + 16 * i;
            if (n_act - a >= MAX_ACT) /* a constant count: no per-row tests */
                group_multi(type, nsb, w, x, act_stride, MAX_ACT, yo, ldy);
            else
                group_multi(type, nsb, w, x, act_stride, (int)(n_act - a), yo, ldy);
        }
}

QT void hmti_il16_q4k_multi(uint32_t type, int64_t n_groups, int64_t nsb, const uint8_t *w, const uint8_t *act,
                            size_t act_stride, int64_t n_act, float *y, int64_t ldy) {
    BY_TYPE(type, multi_groups, n_groups, nsb, w, act, act_stride, n_act, y, ldy);
}

/* As hmti_dequantize_row: (d * sc) * q - dmin * m, each step rounded; the
 * nibbles of one load are columns 4k..4k+3 of a sub-block, column c of the
 * 16 rows one 64-byte store. */
AVX512_TARGET static inline AI void dequant_cols(const uint32_t type, const uint8_t *g, int64_t n, float *dst,
                                                 int64_t ld) {
    const __m512i m4 = _mm512_set1_epi8(15);
    for (int64_t s = 0; s < n; s++, g += hmti_il16_block(type)) {
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)g));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(g + HMTI_IL16_Q4K_DMIN)));
        __m512i sc[2], m[2];
        unpack_scales(g, sc, m);
        for (int j = 0; j < 8; j++, dst += 32 * ld) {
            const __m512 ds = _mm512_mul_ps(d, _mm512_cvtepi32_ps(byte_of(sc[j / 4], j % 4)));
            const __m512 dm = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(byte_of(m[j / 4], j % 4)));
            for (int k = 0; k < 8; k++) {
                const __m512i N = LOAD(g + hmti_il16_k4_qs(type) + 512 * (j / 2) + 64 * k);
                __m512i Q = _mm512_and_si512(j % 2 ? _mm512_srli_epi16(N, 4) : N, m4);
                if (type == HMTI_T_Q5_K) Q = add_fifth(Q, LOAD(g + HMTI_IL16_Q5K_QH + 64 * k), j);
#pragma GCC unroll 4
                for (int i = 0; i < 4; i++)
                    _mm512_storeu_ps(dst + (4 * k + i) * ld,
                                     _mm512_sub_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(byte_of(Q, i)), ds), dm));
            }
        }
    }
}

AVX512_TARGET void hmti_il16_q4k_dequant_cols(uint32_t type, const uint8_t *g, int64_t s0, int64_t n, float *dst,
                                              int64_t ld) {
    g += (size_t)s0 * hmti_il16_block(type);
    BY_TYPE(type, dequant_cols, g, n, dst, ld);
}

/* ---- the family's table (quant_impl.h): super-blocks of 256 columns --------------- */
HMTI_IL16_FAMILY(hmti_il16_q4k_family, 256, HMTI_IL16_TYPED, hmti_il16_q4k_pack, hmti_il16_q4k_dot, hmti_il16_q4k_multi,
                 hmti_il16_q4k_dequant_row, hmti_il16_q4k_dequant_cols, NULL, NULL);
