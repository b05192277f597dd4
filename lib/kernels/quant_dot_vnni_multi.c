/* AVX512-VNNI kernels that dot a group of 4 weight rows of Q8_0, Q4_0,
 * Q5_0 or IQ4_NL with several activation rows at once (batched decode,
 * matrix_q.c), each result bit-identical to the single-row kernel of
 * quant_dot_vnni_b32.c on that row and activation.
 *
 * The single-row kernels spend most of their work per (row, activation):
 * unpacking the weights, and folding the vpdpbusd lanes (4 products each)
 * into one lane per block or half block by permutes. Here the weights of 4
 * rows are transposed once, so that int32 lane (r, j) of each vector holds
 * 4 weights of row r and block (or half block) j: vpdpbusd against the
 * activation's matching 4 bytes, broadcast to the 4 rows (a layout built
 * once per matmul: hmti_qact_wide), sums a whole block or half block in
 * its lane with no fold, and the transposed weights serve every activation
 * row. Unsigned weights (Q8_0: w + 128; Q4_0 q; Q5_0 q with its 5th bit;
 * IQ4_NL value + 128) have their offset removed exactly by starting the
 * lane at -offset * (the activation's sum over the lane's elements).
 *
 * The float arithmetic is the single-row kernel's, lane for lane: its
 * accumulator lane for block (half) j of a step gets, per step, the FMA of
 * (f16 weight scale * activation scale) with the exact integer sum; here
 * the same FMAs go into accumulators holding those lanes for 4 rows, in the
 * same step order, and each row's 16 lanes are put back in the single-row
 * order before the same _mm512_reduce_add_ps. Lanes of blocks a step does
 * not have are left alone (the single-row kernel adds 0 * 0 to them: the
 * same value, an accumulator is never -0). */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu.h"
#include "kernels/quant_impl.h"

#define QM                                                                                         \
    __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx2,fma,f16c")))
#define L128(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define L256(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))

enum { K_Q8_0, K_Q4_0, K_Q5_0, K_IQ4_NL };
enum { MAX_ACT = 8 }; /* activation rows per pass over a group: accumulators in registers */

static inline int k_bytes(int kind) { return kind == K_Q8_0 ? 34 : kind == K_Q5_0 ? 22 : 18; }
/* blocks per step of the single-row kernel's chunked form, and of one "quad" m */
static inline int k_chunk(int kind) { return kind == K_Q8_0 ? 8 : 16; }
static inline int k_group(int kind) { return kind == K_Q8_0 ? 2 : 4; }
/* offset of the quants in a stored block */
static inline int k_qs(int kind) { return kind == K_Q8_0 ? 2 : kind == K_Q5_0 ? 6 : 2; }
/* the single-row accumulator lane of block (or half block) j of quad m */
static inline int k_lane(int kind, int m, int j) { return kind == K_Q4_0 ? 4 * j + m : 4 * m + j; }
/* -offset = -(1 << shift) */
static inline int k_shift(int kind) { return kind == K_Q4_0 ? 3 : kind == K_Q5_0 ? 4 : 7; }

/* ---- the activation layout ------------------------------------------------------------ */
/* One record per quad of blocks (Q8_0: 2 blocks = 4 half blocks; the others:
 * 4 blocks), the last padded with zero blocks:
 *   q[v][j]: 4 bytes (dword) of element group v of half block / block j, so
 *            that a 16-byte broadcast lines up with the transposed weights
 *            (Q8_0: v = 0..3, elements 4v.. of each half; nibble types: v =
 *            0..3 elements 4v.. (low nibbles), v = 4..7 elements 16 + 4(v-4)..)
 *   ns[j]:   Q8_0: -128 * the half block's sum; others: -(the block's sum)
 *   d[j]:    the activation scale of j's block */
typedef struct {
    int8_t q[8][4][4];
    int32_t ns[4];
    float d[4];
} wide_rec;

static int kind_of(uint32_t type) {
    switch (type) {
    case HMTI_T_Q8_0: return K_Q8_0;
    case HMTI_T_Q4_0: return K_Q4_0;
    case HMTI_T_Q5_0: return K_Q5_0;
    case HMTI_T_IQ4_NL: return K_IQ4_NL;
    default: return -1;
    }
}

int hmti_qmulti_vnni_kind(uint32_t type) {
    const int k = kind_of(type);
    /* the single-row kernels these match: quant_dot_vnni_b32.c's (the 4-bit
     * and 5-bit ones only with the bit instructions) */
    if (k < 0 || hmti_quant_path() != HMTI_QPATH_VNNI || (k != K_Q8_0 && !hmti_cpu_has_avx512_bitops()))
        return 0;
    return k == K_Q8_0 ? 1 : 2;
}

size_t hmti_qact_wide_bytes(int wide_kind, int64_t cols) {
    const int64_t nb = cols / 32, g = wide_kind == 1 ? 2 : 4;
    return (size_t)((nb + g - 1) / g) * sizeof(wide_rec);
}

void hmti_qact_wide(int wide_kind, const hmti_q8_32 *a, int64_t cols, void *out) {
    const int64_t nb = cols / 32, g = wide_kind == 1 ? 2 : 4;
    wide_rec *rec = out;
    for (int64_t i = 0; i < nb; i += g, rec++) {
        memset(rec, 0, sizeof *rec);
        for (int64_t b = i; b < i + g && b < nb; b++) {
            const hmti_q8_32 *x = &a[b];
            if (wide_kind == 1) {
                for (int h = 0; h < 2; h++) {
                    const int j = 2 * (int)(b - i) + h;
                    for (int v = 0; v < 4; v++) memcpy(rec->q[v][j], x->qs + 16 * h + 4 * v, 4);
                    rec->ns[j] = -128 * x->sum[h];
                    rec->d[j] = x->d;
                }
            } else {
                const int j = (int)(b - i);
                for (int v = 0; v < 8; v++) memcpy(rec->q[v][j], x->qs + 16 * (v / 4) + 4 * (v % 4), 4);
                rec->ns[j] = -(x->sum[0] + x->sum[1]);
                rec->d[j] = x->d;
            }
        }
    }
}

/* ---- the weights of one quad of a step, for the 4 rows ---------------------------------- */
typedef struct {
    __m512i u[8]; /* Q8_0: u[v] = weights + 128; others: u[v] low nibbles, u[4 + v] high */
    __m512 dw;    /* lane (r, j): the f16 scale of row r's block of j */
} quad_w;

/* V[r]: dwords 4j + v = 4 weights of row r, block (half block) j ->
 * U[v]: lane 4r + j = those 4 weights. */
QM static inline __attribute__((always_inline)) void transpose4(const __m512i V[4], __m512i U[4]) {
    /* X01[v], v = 0, 1: lane 8v + 4r + j (r = 0, 1) = V[r][4j + v] */
    const __m512i i01 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    const __m512i i23 = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    const __m512i hi = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    const __m512i a = _mm512_permutex2var_epi32(V[0], i01, V[1]);
    const __m512i b = _mm512_permutex2var_epi32(V[0], i23, V[1]);
    const __m512i c = _mm512_permutex2var_epi32(V[2], i01, V[3]);
    const __m512i d = _mm512_permutex2var_epi32(V[2], i23, V[3]);
    U[0] = _mm512_permutex2var_epi32(a, lo, c);
    U[1] = _mm512_permutex2var_epi32(a, hi, c);
    U[2] = _mm512_permutex2var_epi32(b, lo, d);
    U[3] = _mm512_permutex2var_epi32(b, hi, d);
}

/* Quad m of a step of g stored blocks (row r's first at p + r * rs). */
QM static inline __attribute__((always_inline)) void
quad_load(const int kind, const uint8_t *p, size_t rs, int g, int m, quad_w *o) {
    const int G = k_group(kind), bb = k_bytes(kind), n = g - G * m < G ? g - G * m : G;
    __m512i V[4], QH = _mm512_setzero_si512();
    uint16_t sc[16];
    uint32_t qh[16];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        const uint8_t *blk = p + (size_t)r * rs + (size_t)(G * m) * (size_t)bb;
        if (kind == K_Q8_0) {
            __m512i v = _mm512_zextsi256_si512(L256(blk + 2));
            if (n > 1) v = _mm512_inserti64x4(v, L256(blk + bb + 2), 1);
            V[r] = v;
        } else {
            __m512i v = _mm512_setzero_si512();
            for (int j = 0; j < n; j++)
                v = _mm512_mask_broadcast_i32x4(v, (__mmask16)(0xFu << (4 * j)), L128(blk + j * bb + k_qs(kind)));
            V[r] = v;
        }
        for (int j = 0; j < 4; j++) {
            const int b = kind == K_Q8_0 ? j / 2 : j;
            sc[4 * r + j] = 0;
            qh[4 * r + j] = 0;
            if (b < n) {
                memcpy(&sc[4 * r + j], blk + b * bb, 2);
                if (kind == K_Q5_0) memcpy(&qh[4 * r + j], blk + b * bb + 2, 4);
            }
        }
    }
    o->dw = _mm512_cvtph_ps(L256(sc));
    if (kind == K_Q5_0) QH = _mm512_loadu_si512(qh);
    __m512i U[4];
    transpose4(V, U);
    if (kind == K_Q8_0) {
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) o->u[v] = _mm512_xor_si512(U[v], _mm512_set1_epi8((char)0x80));
        return;
    }
    const __m512i m4 = _mm512_set1_epi8(15);
    const __m512i tab = _mm512_broadcast_i32x4(_mm_xor_si128(L128(hmti_iq4_values), _mm_set1_epi8((char)0x80)));
    /* Q5_0: dword k of five = bytes 16 where bit i of k is set (vpermd reads a lane's low 4 bits) */
    const __m512i five = _mm512_setr_epi32(0, 0x10, 0x1000, 0x1010, 0x100000, 0x100010, 0x101000, 0x101010,
                                           0x10000000, 0x10000010, 0x10001000, 0x10001010, 0x10100000,
                                           0x10100010, 0x10101000, 0x10101010);
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++) {
        __m512i lo = _mm512_and_si512(U[v], m4), hi = _mm512_and_si512(_mm512_srli_epi16(U[v], 4), m4);
        if (kind == K_Q5_0) {
            lo = _mm512_or_si512(lo, _mm512_permutexvar_epi32(_mm512_srli_epi32(QH, 4 * v), five));
            hi = _mm512_or_si512(hi, _mm512_permutexvar_epi32(_mm512_srli_epi32(QH, 16 + 4 * v), five));
        }
        if (kind == K_IQ4_NL) {
            lo = _mm512_shuffle_epi8(tab, lo);
            hi = _mm512_shuffle_epi8(tab, hi);
        }
        o->u[v] = lo;
        o->u[4 + v] = hi;
    }
}

/* acc[a] (a < na) += the quad against record x of activation a. */
QM static inline __attribute__((always_inline)) void
quad_dot(const int kind, const quad_w *w, const uint8_t *x, size_t xs, int na, __m512 *acc) {
#pragma GCC unroll 8
    for (int a = 0; a < MAX_ACT; a++) {
        if (a >= na) break;
        const wide_rec *rec = (const wide_rec *)(const void *)(x + (size_t)a * xs);
        __m512i S = _mm512_broadcast_i32x4(L128(rec->ns));
        if (kind != K_Q8_0) S = _mm512_slli_epi32(S, k_shift(kind));
        const int nv = kind == K_Q8_0 ? 4 : 8;
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) S = _mm512_dpbusd_epi32(S, w->u[v], _mm512_broadcast_i32x4(L128(rec->q[v])));
        const __m512 sc = _mm512_mul_ps(w->dw, _mm512_broadcast_f32x4(_mm_loadu_ps(rec->d)));
        acc[a] = _mm512_fmadd_ps(sc, _mm512_cvtepi32_ps(S), acc[a]);
    }
}

/* The 4 rows' results from their accumulators (128-bit lane r of AC[m]:
 * row r, lanes k_lane(m, 0..3) of its single-row accumulator): each row's
 * _mm512_reduce_add_ps of those 16 lanes, in the order GCC's
 * avx512fintrin.h adds them (lane i + lane i + 8, then + 4, + 2, + 1),
 * done for the 4 rows at once. */
QM static inline __attribute__((always_inline)) __m128
reduce4(const int kind, __m512 a0, __m512 a1, __m512 a2, __m512 a3) {
    __m512 t;
    if (kind == K_Q4_0) { /* lane 4j + m: quarter-sums within each 128-bit lane first */
        __m512 c[4] = {a0, a1, a2, a3};
#pragma GCC unroll 4
        for (int m = 0; m < 4; m++) {
            c[m] = _mm512_add_ps(c[m], _mm512_permute_ps(c[m], 0x4E));  /* [0]+[2], [1]+[3] */
            c[m] = _mm512_add_ps(_mm512_permute_ps(c[m], 0xB1), c[m]);  /* ([1]+[3]) + ([0]+[2]) */
        }
        t = _mm512_add_ps(_mm512_add_ps(c[0], c[2]), _mm512_add_ps(c[1], c[3]));
    } else { /* lane 4m + j */
        const __m512 e = _mm512_add_ps(_mm512_add_ps(a3, a1), _mm512_add_ps(a2, a0));
        const __m512 f = _mm512_add_ps(e, _mm512_permute_ps(e, 0x4E));
        t = _mm512_add_ps(f, _mm512_permute_ps(f, 0xB1));
    }
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), t));
}

/* One group of 4 stored rows (row r at w + r * stride) against na <=
 * MAX_ACT activations: y[a * ldy + r]. The steps are the single-row
 * kernel's: Q8_0 steps of 8 blocks; the others steps of 16, then one of 8
 * if it fits, then the rest. */
QM static inline __attribute__((always_inline)) void
group_rows(const int kind, int64_t nb, const uint8_t *w, size_t stride, const uint8_t *x, size_t xs, int na,
           float *y, int64_t ldy) {
    const int C = k_chunk(kind), G = k_group(kind);
    const size_t bb = (size_t)k_bytes(kind);
    __m512 accm[4][MAX_ACT];
    const size_t span = 4 * (size_t)nb * bb, part = (span / 4 + 63) & ~(size_t)63;
    for (int m = 0; m < 4; m++) {
        /* the next groups' bytes, a quarter per quad (as hmti_pf_span spreads them) */
        hmti_pf_span(w + (size_t)m * part, part);
        __m512 acc[MAX_ACT];
#pragma GCC unroll 8 /* not a memset: the accumulators stay in registers */
        for (int a = 0; a < MAX_ACT; a++) acc[a] = _mm512_setzero_ps();
        for (int64_t i = 0; i < nb;) {
            const int g = (int)(nb - i >= C ? C : kind != K_Q8_0 && nb - i >= 8 ? 8 : nb - i);
            if (G * m < g) {
                quad_w q;
                quad_load(kind, w + (size_t)i * bb, stride, g, m, &q);
                quad_dot(kind, &q, x + (size_t)((i + G * m) / G) * sizeof(wide_rec), xs, na, acc);
            }
            i += g;
        }
        for (int a = 0; a < na; a++) accm[m][a] = acc[a];
    }
    for (int a = 0; a < na; a++) {
        const __m128 v = reduce4(kind, accm[0][a], accm[1][a], accm[2][a], accm[3][a]);
        _mm_storeu_ps(y + a * ldy, v);
    }
}

/* A full batch of MAX_ACT rows (the common case) with na a constant: the
 * per-row tests go, and the accumulators stay in registers. */
/* Stored rows only (their interleaved layout, groups of 16 rows, has its
 * own kernels: quant_il16_x86.c, quant_il16_amx.c). */
#define GROUP_FN(name, kind)                                                                  \
    QM static void name(int64_t nb, const uint8_t *w, size_t stride, const uint8_t *x, size_t xs, \
                        int na, float *y, int64_t ldy) {                                      \
        if (na == MAX_ACT)                                                                    \
            group_rows(kind, nb, w, stride, x, xs, MAX_ACT, y, ldy);                          \
        else                                                                                  \
            group_rows(kind, nb, w, stride, x, xs, na, y, ldy);                               \
    }
GROUP_FN(group_q8_0, K_Q8_0)
GROUP_FN(group_q4_0, K_Q4_0)
GROUP_FN(group_q5_0, K_Q5_0)
GROUP_FN(group_iq4_nl, K_IQ4_NL)
#undef GROUP_FN

typedef void (*group_fn)(int64_t, const uint8_t *, size_t, const uint8_t *, size_t, int, float *, int64_t);

void hmti_gemv_q_groups_vnni(uint32_t type, int64_t n_groups, int64_t cols, const void *w, size_t row_bytes,
                             const void *wide, size_t wide_stride, int64_t n_act, float *y, int64_t ldy) {
    const int kind = kind_of(type);
    const group_fn f = kind == K_Q8_0 ? group_q8_0 : kind == K_Q4_0 ? group_q4_0 : kind == K_Q5_0 ? group_q5_0 : group_iq4_nl;
    for (int64_t g = 0; g < n_groups; g++) {
        const uint8_t *gw = (const uint8_t *)w + (size_t)(4 * g) * row_bytes;
        for (int64_t a = 0; a < n_act; a += MAX_ACT)
            f(cols / 32, gw, row_bytes, (const uint8_t *)wide + (size_t)a * wide_stride, wide_stride,
              (int)(n_act - a < MAX_ACT ? n_act - a : MAX_ACT), y + a * ldy + 4 * g, ldy);
    }
}
