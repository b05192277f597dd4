/* Internal to the quant_*.c kernels: each path's table of dot kernels, and
 * small helpers shared by the portable code. */
#ifndef HMT_KERNELS_QUANT_IMPL_H
#define HMT_KERNELS_QUANT_IMPL_H

#include <string.h>

#include "kernels/kernels.h"
#include "kernels/quant.h"

/* The kernel of one path for type, or NULL (quant_dot_ref.c, quant_dot_avx2.c,
 * quant_dot_vnni.c, quant_dot_avx512.c). */
hmti_vec_dot_fn hmti_qdot_ref(uint32_t type);
hmti_vec_dot_fn hmti_qdot_avx2(uint32_t type);
hmti_vec_dot_fn hmti_qdot_vnni(uint32_t type);
hmti_vec_dot_fn hmti_qdot_avx512(uint32_t type);

/* 4 rows at once (rows w, w + stride, ...; y[0..4)): bit-identical to 4 calls
 * of the same path's single-row kernel, the activation loaded once per block
 * for the 4. NULL if the path has none for type. */
typedef void (*hmti_vec_dot4_fn)(int64_t n, const void *w, size_t stride, const void *act, float *y);
hmti_vec_dot4_fn hmti_qdot4_vnni(uint32_t type);
hmti_vec_dot4_fn hmti_qdot4_avx512(uint32_t type);
/* The 512-bit VNNI kernels, tried first by hmti_qdot_vnni / hmti_qdot4_vnni:
 * 32-element block types (quant_dot_vnni_b32.c) and K-quants
 * (quant_dot_vnni_k.c); NULL where that file has none. */
hmti_vec_dot_fn hmti_qdot_vnni_b32(uint32_t type);
hmti_vec_dot4_fn hmti_qdot4_vnni_b32(uint32_t type);
hmti_vec_dot_fn hmti_qdot_vnni_k(uint32_t type);
hmti_vec_dot4_fn hmti_qdot4_vnni_k(uint32_t type);
/* IQ4_XS (quant_dot_vnni_iq4xs.c), tried after the K-quant file. */
hmti_vec_dot_fn hmti_qdot_vnni_iq4xs(uint32_t type);
hmti_vec_dot4_fn hmti_qdot4_vnni_iq4xs(uint32_t type);

/* nr = 1 or 2 F32 / F16 / BF16 rows (w, w + stride) against na <= 16
 * float activations (x + a * ldx; row q at y[a * ldy + q]), each
 * bit-identical to the same path's single-row kernel (quant_dot_avx512.c). */
typedef void (*hmti_vec_dotn_fn)(int64_t n, const void *w, size_t stride, int nr, const float *x, int64_t ldx,
                                 int na, float *y, int64_t ldy);
hmti_vec_dotn_fn hmti_qdotn_avx512(uint32_t type);

/* Several activation rows at once (quant_dot_vnni_multi.c): the wide
 * activation layout type needs (hmti_qmulti_kind), and n_groups whole
 * groups of 4 stored rows (row_bytes apart) against n_act wide
 * activations: y[a * ldy + r], each the bits of quant_dot_vnni_b32.c's
 * single-row kernel. */
int hmti_qmulti_vnni_kind(uint32_t type);
void hmti_gemv_q_groups_vnni(uint32_t type, int64_t n_groups, int64_t cols, const void *w, size_t row_bytes,
                             const void *wide, size_t wide_stride, int64_t n_act, float *y, int64_t ldy);

/* The same for the K-quants Q2_K..Q6_K (quant_dot_vnni_k.c, k23.c): stored
 * rows only, against n_act activation rows of hmti_q8_256 blocks (act +
 * a * act_stride), each the bits of that file's single-row kernel;
 * hmti_qmulti_vnni_k: 1 if this CPU has the kernel for type. */
int hmti_qmulti_vnni_k(uint32_t type);
void hmti_gemv_q_groups_vnni_k(uint32_t type, int64_t n_groups, int64_t cols, const void *w, size_t row_bytes,
                               const void *act, size_t act_stride, int64_t n_act, float *y, int64_t ldy);

/* ---- Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, IQ4_NL in groups of 16 rows (quant.h, hmti_q_il_rows) */
/* A group's block b starts at b * hmti_il16_block(type): the 16 rows' f16
 * scales d (row order), Q4_1/Q5_1 then their f16 mins m (32 bytes), then
 * the weights as unsigned bytes so that a 64-byte load holds 4 weights of
 * each row in its own dword lane. Q8_0: the quants + 128 as [v 0..7][row
 * 0..15][4 bytes: elements 4v..4v+3]. Q4_0: the stored nibble bytes as [v
 * 0..3][row 0..15][4 bytes: bytes 4v..4v+3 of the row's block], so the low
 * nibbles are elements 4v..4v+3 and the high ones 16 + 4v..16 + 4v + 3 (q
 * + 8, 0..15). Q5_0: the 16 rows' 32-bit 5th bits (row order, 64 bytes),
 * then the nibbles as Q4_0's (q + 16, 0..31). Q4_1, Q5_1: as Q4_0, Q5_0
 * after the mins, q as stored (0..15, 0..31: value d q + m). IQ4_NL: as
 * Q4_0 (its nibbles index hmti_iq4_values; the kernels look the values up,
 * + 128). type: one of those six throughout (hmti_il16_block also takes the
 * half types and the K-quants below, which have their own functions).
 * Portable (quant_il16.c): */
enum { HMTI_IL16_ROWS = 16 };
/* The types laid out so (where the CPU has AVX512-VNNI). */
static inline int hmti_il16_type(uint32_t type) {
    return type == HMTI_T_Q8_0 || type == HMTI_T_Q4_0 || type == HMTI_T_Q5_0 || type == HMTI_T_Q4_1 ||
           type == HMTI_T_Q5_1 || type == HMTI_T_IQ4_NL || type == HMTI_T_Q4_K || type == HMTI_T_Q5_K ||
           type == HMTI_T_Q6_K || type == HMTI_T_IQ4_XS;
}
/* Q4_1 and Q5_1: a min per block (value d q + m). */
static inline int hmti_il16_has_min(uint32_t type) { return type == HMTI_T_Q4_1 || type == HMTI_T_Q5_1; }
/* Q5_0 and Q5_1: 32-bit 5th bits per row and block. */
static inline int hmti_il16_has_qh(uint32_t type) { return type == HMTI_T_Q5_0 || type == HMTI_T_Q5_1; }
/* F16 and BF16 (where the CPU has AVX-512), rows of a multiple of 32
 * columns: laid out as [column][row 0..15], 2 bytes each. */
static inline int hmti_il16_half(uint32_t type) { return type == HMTI_T_F16 || type == HMTI_T_BF16; }
/* Bytes of a group's block. */
static inline size_t hmti_il16_block(uint32_t type) {
    return hmti_il16_half(type) ? 1024
                                : 16 * (size_t)(type == HMTI_T_Q4_0 || type == HMTI_T_IQ4_NL ? 18
                                                : type == HMTI_T_Q5_0 ? 22
                                                : type == HMTI_T_Q4_1 ? 20
                                                : type == HMTI_T_Q5_1 ? 24
                                                : type == HMTI_T_Q4_K ? 144
                                                : type == HMTI_T_Q5_K ? 176
                                                : type == HMTI_T_Q6_K ? 210
                                                : type == HMTI_T_IQ4_XS ? 136
                                                                      : 34);
}
/* The offset the unsigned weights carry: 8 (Q4_0), 16 (Q5_0), 128 (Q8_0, IQ4_NL) or 0 (Q4_1, Q5_1). */
static inline int hmti_il16_offset(uint32_t type) {
    return type == HMTI_T_Q4_0 ? 8 : type == HMTI_T_Q5_0 ? 16 : hmti_il16_has_min(type) ? 0 : 128;
}
/* Where a block's 5th bits (Q5_0, Q5_1) start: after the scales (and the mins). */
static inline size_t hmti_il16_qh_at(uint32_t type) { return hmti_il16_has_min(type) ? 64 : 32; }
/* Where a block's quant bytes start: after the scales (and the mins, and the 5th bits). */
static inline size_t hmti_il16_quants(uint32_t type) {
    return hmti_il16_qh_at(type) + (hmti_il16_has_qh(type) ? 64 : 0);
}
/* 16 stored rows (row_bytes apart, nb blocks each) -> one group at dst. */
void hmti_il16_pack(uint32_t type, int64_t nb, const uint8_t *src, size_t row_bytes, uint8_t *dst);
/* y[r] = row r of the group at g dotted with act (nb blocks): per row,
 * acc = fmaf((float)(exact int sum of the block), f16 scale * act scale,
 * acc), Q4_1/Q5_1 then acc = fmaf((float)(act block's sum), f16 min * act
 * scale, acc), over the blocks in order, from 0. The vector kernels' oracle. */
void hmti_il16_dot_ref(uint32_t type, int64_t nb, const uint8_t *g, const hmti_q8_32 *act, float *y);
/* Blocks [b0, b0 + n_blocks) of row r (0..15) of the group at g, exact. */
void hmti_il16_dequant_row(uint32_t type, const uint8_t *g, int r, int64_t b0, int64_t n_blocks, float *dst);
/* AVX512-VNNI (quant_il16_x86.c): the same as hmti_il16_dot_ref, bit for
 * bit, for n_groups consecutive groups at w (y[16 g + r]); and for n_act
 * activation rows (act + a * act_stride) at once: y[a * ldy + 16 g + r]. */
void hmti_il16_dot_vnni(uint32_t type, int64_t n_groups, int64_t nb, const uint8_t *w, const hmti_q8_32 *act,
                        float *y);
void hmti_il16_multi_vnni(uint32_t type, int64_t n_groups, int64_t nb, const uint8_t *w, const uint8_t *act,
                          size_t act_stride, int64_t n_act, float *y, int64_t ldy);
/* AVX-512: blocks [b0, b0 + n_blocks) of the group's 16 rows, exact, into
 * dst column-major: element (r, c) at dst[c * ld + r]. */
void hmti_il16_dequant_cols(uint32_t type, const uint8_t *g, int64_t b0, int64_t n_blocks, float *dst, int64_t ld);
/* AMX int8 (quant_il16_amx.c), Q8_0 only: hmti_il16_multi_vnni's results,
 * bit for bit, by tile products; hmti_il16_amx: 1 if this CPU (and the
 * test hook hmti_qmulti_amx_enable) lets it run. */
int hmti_il16_amx(void);
void hmti_il16_multi_amx(int64_t n_groups, int64_t nb, const uint8_t *w, const uint8_t *act, size_t act_stride,
                         int64_t n_act, float *y, int64_t ldy);

/* The half types' groups (quant_il16_half.c, portable): 16 stored rows
 * (row_bytes apart) -> one group at dst; y[r] = row r of the group at g
 * dotted with the float row x: per row, 4 chains a[c % 4] = fmaf(w, x[c],
 * a[c % 4]) over the columns in order, y = (a0 + a1) + (a2 + a3), the
 * vector kernels' oracle; columns [c0, c0 + n) of row r, exact. */
enum { HMTI_IL16H_CHAINS = 4 };
void hmti_il16h_pack(int64_t cols, const uint8_t *src, size_t row_bytes, uint8_t *dst); /* x86 file */
void hmti_il16h_dot_ref(uint32_t type, int64_t cols, const uint8_t *g, const float *x, float *y);
void hmti_il16h_dequant_row(uint32_t type, const uint8_t *g, int r, int64_t c0, int64_t n, float *dst);
/* AVX-512 (quant_il16_half_x86.c): hmti_il16h_dot_ref's bits for n_groups
 * consecutive groups at w (y[16 g + r]); for n_act activation rows (x +
 * a * ldx) at once (y[a * ldy + 16 g + r]); columns [c0, c0 + n) of a
 * group's 16 rows, exact, column-major (element (r, c) at dst[c * ld + r]). */
void hmti_il16h_dot(uint32_t type, int64_t n_groups, int64_t cols, const uint8_t *w, const float *x, float *y);
void hmti_il16h_dot4(uint32_t type, int64_t n_groups, int64_t cols, const uint8_t *const w[4], const float *x,
                     float *const y[4]);
void hmti_il16h_multi(uint32_t type, int64_t n_groups, int64_t cols, const uint8_t *w, const float *x, int64_t ldx,
                      int64_t n_act, float *y, int64_t ldy);
void hmti_il16h_dequant_cols(uint32_t type, const uint8_t *g, int64_t c0, int64_t n, float *dst, int64_t ld);

/* The functions of a K-quant family <name> in groups of 16 rows that does
 * not take the type (Q6_K, IQ4_XS), counting super-blocks of 256 columns:
 * pack (16 stored rows, row_bytes apart, -> one group at dst); dot_ref (y[r]
 * = row r of the group at g dotted with act, nsb super-blocks: the vector
 * kernels' oracle); dequant_row (super-blocks [s0, s0 + n) of row r,
 * exact); and, AVX512-VNNI (quant_il16_<name>_x86.c), dot (dot_ref's bits
 * for n_groups consecutive groups at w: y[16 g + r]), multi (for n_act
 * activation rows act + a * act_stride at once: y[a * ldy + 16 g + r]),
 * dequant_cols (super-blocks [s0, s0 + n) of a group's 16 rows, exact,
 * column-major: element (r, c) at dst[c * ld + r]). */
#define HMTI_IL16_K_DECLS(name)                                                                                  \
    void hmti_il16_##name##_pack(int64_t nsb, const uint8_t *src, size_t row_bytes, uint8_t *dst);              \
    void hmti_il16_##name##_dot_ref(int64_t nsb, const uint8_t *g, const hmti_q8_256 *act, float *y);          \
    void hmti_il16_##name##_dequant_row(const uint8_t *g, int r, int64_t s0, int64_t n, float *dst);            \
    void hmti_il16_##name##_dot(int64_t n_groups, int64_t nsb, const uint8_t *w, const hmti_q8_256 *act,       \
                                float *y);                                                                       \
    void hmti_il16_##name##_multi(int64_t n_groups, int64_t nsb, const uint8_t *w, const uint8_t *act,          \
                                  size_t act_stride, int64_t n_act, float *y, int64_t ldy);                      \
    void hmti_il16_##name##_dequant_cols(const uint8_t *g, int64_t s0, int64_t n, float *dst, int64_t ld)

/* ---- Q6_K in groups of 16 rows (quant_il16_q6k*.c, AVX512-VNNI) ------------------ */
/* A group's super-block s (256 columns) starts at s * HMTI_IL16_Q6K_BLOCK
 * (16 x 210 bytes: the file's bytes rearranged): the 16 rows' f16 d (row
 * order, 32 bytes), their int8 scales as [sub-block j 0..15][row 0..15]
 * (256 bytes), then 8 pairs of sub-blocks (2p, 2p + 1), 384 bytes each:
 * the low 4 bits of the 6-bit q (0..63) as [k 0..3][row 0..15][4 bytes],
 * byte i's low nibble element 32p + 4k + i, its high nibble element 32p +
 * 16 + 4k + i (Q4_0's way); then the top 2 bits as [t 0..1][row 0..15][4
 * bytes], bits 2k..2k+1 of byte i those of element 32p + 16t + 4k + i. So
 * a pair's 6 loads give, per row in its own dword lane, the 32 elements'
 * q in 8 vectors of 4, and a scale load per sub-block gives the 16 rows'. */
enum {
    HMTI_IL16_Q6K_BLOCK = 16 * 210,
    HMTI_IL16_Q6K_SCALES = 32,  /* after the 16 d */
    HMTI_IL16_Q6K_PAIRS = 288,  /* after the scales */
    HMTI_IL16_Q6K_PAIR = 384,   /* 256 bytes of nibbles, 128 of top bits */
};
/* The oracle (hmti_il16_q6k_dot_ref, HMTI_IL16_K_DECLS): per row and
 * super-block in order, the exact int sum S = sum over sub-blocks j of
 * sc_j * (sum of q * a over j - 32 * act sum_j), then acc = fmaf((float)S,
 * f16 d * act d, acc), from 0. */
HMTI_IL16_K_DECLS(q6k);

/* ---- Q4_K and Q5_K in groups of 16 rows (quant_il16_q4k*.c, AVX512-VNNI) --------- */
/* A group's super-block s (256 columns) starts at s * hmti_il16_block(type)
 * (16 x 144 or 16 x 176 bytes: the file's bytes rearranged): the 16 rows'
 * f16 d (row order, 32 bytes), their f16 dmin (32 bytes), their 12 bytes
 * of 6-bit scales and mins as stored, as [i 0..2][row 0..15][4 bytes:
 * bytes 4i..4i+3] (192 bytes: a load gives bytes 4i..4i+3 of each row in
 * its own dword lane, so the unpacking of hmti_k_scale_min is a few
 * byte-wise ops for the 16 rows); Q5_K then its 32 bytes of 5th bits qh as
 * [k 0..7][row 0..15][4 bytes: qh[4k..4k+3]] (512 bytes: bit j of qh[l] is
 * element 32j + l's); then the nibbles as [chunk c 0..3][k 0..7][row
 * 0..15][4 bytes: bytes 4k..4k+3 of the row's chunk c] (2048 bytes): byte
 * i's low nibble is element 64c + 4k + i (sub-block 2c), its high nibble
 * element 64c + 32 + 4k + i (sub-block 2c + 1). So each nibble load gives
 * 4 elements of each row of two sub-blocks, in the row's dword lane, and
 * Q5_K's qh load k their 5th bits for every chunk. type: HMTI_T_Q4_K or
 * HMTI_T_Q5_K throughout. */
enum {
    HMTI_IL16_Q4K_DMIN = 32,   /* after the 16 d */
    HMTI_IL16_Q4K_SCALES = 64, /* after the 16 dmin */
    HMTI_IL16_Q5K_QH = 256,    /* Q5_K: after the scales */
};
/* Where the 4 chunks of 512 bytes of nibbles start: after the scales (Q4_K) or qh (Q5_K). */
static inline size_t hmti_il16_k4_qs(uint32_t type) { return type == HMTI_T_Q5_K ? 768 : 256; }
/* 16 stored rows (row_bytes apart, nsb super-blocks each) -> one group at dst. */
void hmti_il16_q4k_pack(uint32_t type, int64_t nsb, const uint8_t *src, size_t row_bytes, uint8_t *dst);
/* y[r] = row r of the group at g dotted with act (nsb super-blocks): per
 * row and super-block in order, the exact int sums S1 = sum over
 * sub-blocks j of sc_j * (sum of q * a over j; Q5_K's q with its 5th bit,
 * 0..31) and S2 = sum of m_j * (act sum over j), then acc = fmaf((float)S1,
 * f16 d * act d, acc) and acc = fmaf(-(float)S2, f16 dmin * act d, acc),
 * from 0. The vector kernels' oracle. */
void hmti_il16_q4k_dot_ref(uint32_t type, int64_t nsb, const uint8_t *g, const hmti_q8_256 *act, float *y);
/* Super-blocks [s0, s0 + n) of row r (0..15) of the group at g, exact. */
void hmti_il16_q4k_dequant_row(uint32_t type, const uint8_t *g, int r, int64_t s0, int64_t n, float *dst);
/* AVX512-VNNI (quant_il16_q4k_x86.c): hmti_il16_q4k_dot_ref's bits for
 * n_groups consecutive groups at w (y[16 g + r]); for n_act activation
 * rows (act + a * act_stride) at once (y[a * ldy + 16 g + r]); super-blocks
 * [s0, s0 + n) of a group's 16 rows, exact, column-major (element (r, c)
 * at dst[c * ld + r]). */
void hmti_il16_q4k_dot(uint32_t type, int64_t n_groups, int64_t nsb, const uint8_t *w, const hmti_q8_256 *act,
                       float *y);
void hmti_il16_q4k_multi(uint32_t type, int64_t n_groups, int64_t nsb, const uint8_t *w, const uint8_t *act,
                         size_t act_stride, int64_t n_act, float *y, int64_t ldy);
void hmti_il16_q4k_dequant_cols(uint32_t type, const uint8_t *g, int64_t s0, int64_t n, float *dst, int64_t ld);

/* ---- IQ4_XS in groups of 16 rows (quant_il16_iq4xs*.c, AVX512-VNNI) -------------- */
/* A group's super-block s (256 columns) starts at s * HMTI_IL16_IQ4XS_BLOCK
 * (16 x 136 bytes: the file's bytes rearranged): the 16 rows' f16 d (row
 * order, 32 bytes), their 16-bit scales_h (32 bytes), their 4 bytes of
 * scales_l (64 bytes: lane r of a load is row r's, so sub-block ib's low 4
 * scale bits are that lane's bits 4ib..4ib+3, the high 2 bits bits
 * 2ib..2ib+1 of scales_h), then the nibbles as [sub-block ib 0..7][v
 * 0..3][row 0..15][4 bytes: the row's stored bytes 16ib + 4v..+3] (2048
 * bytes): byte i's low nibble is element 32ib + 4v + i, its high nibble
 * element 32ib + 16 + 4v + i, each indexing hmti_iq4_values. */
enum {
    HMTI_IL16_IQ4XS_BLOCK = 16 * 136,
    HMTI_IL16_IQ4XS_SH = 32,  /* after the 16 d */
    HMTI_IL16_IQ4XS_SL = 64,  /* after the 16 scales_h */
    HMTI_IL16_IQ4XS_QS = 128, /* after the scales_l: 8 sub-blocks of 256 bytes */
};
/* The oracle (hmti_il16_iq4xs_dot_ref, HMTI_IL16_K_DECLS): per row and
 * super-block in order, the exact int sum S = sum over sub-blocks ib of
 * (scale_ib - 32) * (sum of value * a over ib), then acc = fmaf((float)S,
 * f16 d * act d, acc), from 0. */
HMTI_IL16_K_DECLS(iq4xs);

/* ---- the 16-row layouts as families, for the dispatch (quant_types.c) ------------ */
/* A family's calls, every range in columns: cols is the width of the
 * layout's block (32, or 256 for the K-quants), and column ranges are
 * multiples of it (any width for the half types' dequantizers). act is the
 * type's quantized activation row (floats for the half types); each x86
 * file defines its family's table from the functions above. */
typedef struct {
    int cols;
    /* 16 stored rows (row_bytes apart) -> one group at dst */
    void (*pack)(uint32_t type, int64_t cols, const uint8_t *src, size_t row_bytes, uint8_t *dst);
    /* n_groups consecutive groups at w against one activation: y[16 g + r] */
    void (*dot)(uint32_t type, int64_t n_groups, int64_t cols, const uint8_t *w, const void *act, float *y);
    /* ... against n_act activations act_stride bytes apart: y[a * ldy + 16 g + r], each the dot's bits */
    void (*multi)(uint32_t type, int64_t n_groups, int64_t cols, const uint8_t *w, const void *act,
                  size_t act_stride, int64_t n_act, float *y, int64_t ldy);
    /* columns [c0, c0 + n) of row r (0..15) of the group at g, exact */
    void (*dequant_row)(uint32_t type, const uint8_t *g, int r, int64_t c0, int64_t n, float *dst);
    /* columns [c0, c0 + n) of the group's 16 rows, exact: element (r, c) at dst[c * ld + r] */
    void (*dequant_cols)(uint32_t type, const uint8_t *g, int64_t c0, int64_t n, float *dst, int64_t ld);
    /* n_groups consecutive groups at each of w[0..3] against one activation,
     * read side by side (4 streams): y[s][16 g + r], each the dot's bits;
     * NULL where 4 streams do not pay (hmti_gemv_q_il4) */
    void (*dot4)(uint32_t type, int64_t n_groups, int64_t cols, const uint8_t *const w[4], const void *act,
                 float *const y[4]);
    /* With dot4: the bytes each stream must hold for it to pay for the type
     * (hmti_q_il_stream_min), -1 where it does not */
    int64_t (*dot4_min)(uint32_t type);
} hmti_il16_family;
/* The table var of a family whose functions (pack, dot, multi, drow: the
 * dequant_row, dcols: the dequant_cols) count blocks of COLS columns and
 * take the type first (TA = HMTI_IL16_TYPED: the Q8_0 and Q4_K families)
 * or not (TA = HMTI_IL16_UNTYPED: Q6_K, IQ4_XS), with dot4 and dot4_min
 * as they are (NULL, NULL: none): one definition, in that family's x86
 * file. */
#define HMTI_IL16_TYPED(type) type,
#define HMTI_IL16_UNTYPED(type)
#define HMTI_IL16_FAMILY(var, COLS, TA, pack, dot, multi, drow, dcols, d4, d4min)                                \
    static void var##_pack(uint32_t type, int64_t cols, const uint8_t *src, size_t row_bytes, uint8_t *dst) {   \
        (void)type;                                                                                              \
        pack(TA(type) cols / (COLS), src, row_bytes, dst);                                                       \
    }                                                                                                            \
    static void var##_dot(uint32_t type, int64_t n_groups, int64_t cols, const uint8_t *w, const void *act,      \
                          float *y) {                                                                            \
        (void)type;                                                                                              \
        dot(TA(type) n_groups, cols / (COLS), w, act, y);                                                        \
    }                                                                                                            \
    static void var##_multi(uint32_t type, int64_t n_groups, int64_t cols, const uint8_t *w, const void *act,    \
                            size_t act_stride, int64_t n_act, float *y, int64_t ldy) {                           \
        (void)type;                                                                                              \
        multi(TA(type) n_groups, cols / (COLS), w, act, act_stride, n_act, y, ldy);                              \
    }                                                                                                            \
    static void var##_drow(uint32_t type, const uint8_t *g, int r, int64_t c0, int64_t n, float *dst) {         \
        (void)type;                                                                                              \
        drow(TA(type) g, r, c0 / (COLS), n / (COLS), dst);                                                       \
    }                                                                                                            \
    static void var##_dcols(uint32_t type, const uint8_t *g, int64_t c0, int64_t n, float *dst, int64_t ld) {   \
        (void)type;                                                                                              \
        dcols(TA(type) g, c0 / (COLS), n / (COLS), dst, ld);                                                     \
    }                                                                                                            \
    const hmti_il16_family var = {COLS, var##_pack, var##_dot, var##_multi, var##_drow, var##_dcols, d4, d4min}
extern const hmti_il16_family hmti_il16_q32_family;  /* Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, IQ4_NL (quant_il16_x86.c) */
extern const hmti_il16_family hmti_il16_q6k_family;  /* Q6_K (quant_il16_q6k_x86.c) */
extern const hmti_il16_family hmti_il16_q4k_family;  /* Q4_K, Q5_K (quant_il16_q4k_x86.c) */
extern const hmti_il16_family hmti_il16_half_family; /* F16, BF16 (quant_il16_half_x86.c) */
extern const hmti_il16_family hmti_il16_iq4xs_family; /* IQ4_XS (quant_il16_iq4xs_x86.c) */

/* Little-endian fields of a block (blocks are byte arrays: no alignment). */
static inline float hmti_qf16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return hmti_f16_to_f32(h);
}
static inline uint32_t hmti_qu32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Q4_K / Q5_K: 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes. */
static inline void hmti_k_scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q3_K: signed scale of sub-block j (0..15), -32..31. */
static inline int hmti_q3k_scale(int j, const uint8_t *s) {
    int low = (s[j % 8] >> (4 * (j / 8))) & 15;
    int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | (high << 4)) - 32;
}

/* IQ4_XS: signed scale of sub-block ib (0..7), -32..31; b = the block. */
static inline int hmti_iq4xs_scale(int ib, const uint8_t *b) {
    uint16_t sh;
    memcpy(&sh, b + 2, 2);
    int low = (b[4 + ib / 2] >> (4 * (ib % 2))) & 15;
    int high = (sh >> (2 * ib)) & 3;
    return (low | (high << 4)) - 32;
}

extern const int8_t hmti_iq4_values[16];

/* Software prefetch spread through a 4-row decode kernel's loop: the 4 rows
 * of a group are one contiguous span (stored rows are contiguous; an
 * interleaved group is one span by construction), so a kernel that has
 * consumed up to `pos` in it and consumes `bytes` more this step prefetches
 * those bytes HMTI_PF_L1 ahead into L1 and HMTI_PF_L2 ahead into L2. A few
 * lines per step keep memory busy while the step computes; the same lines
 * prefetched in one burst per row group (the row loop's way, still used for
 * single rows) stall the core on its fill buffers instead. Measured on a
 * 1 GiB F16 GEMV, one thread: 93-100% of a pure streaming read spread,
 * 78-85% in bursts (docs/QUANTS.md "Decode speed"). */
enum { HMTI_PF_L1 = 2048, HMTI_PF_L2 = 2048 + 32768 };
static inline __attribute__((always_inline)) void hmti_pf_span(const uint8_t *pos, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) {
        __builtin_prefetch(pos + HMTI_PF_L1 + o, 0, 3);
        __builtin_prefetch(pos + HMTI_PF_L2 + o, 0, 2);
    }
}

/* The 16-row groups' one-row kernels instead prefetch `bytes` at pos (a
 * fixed distance ahead of what they read, chosen per family) into L1 only,
 * a line per prefetch: faster over memory than hmti_pf_span for Q4_K, Q6_K,
 * Q4_0 (docs/QUANTS.md). */
static inline __attribute__((always_inline)) void hmti_pf_l1(const uint8_t *pos, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(pos + o, 0, 3);
}

#endif
