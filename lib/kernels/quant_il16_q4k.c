/* Q4_K and Q5_K in groups of 16 rows (quant_impl.h, hmti_q_il_rows): the
 * repacking, and portable C versions of the dot product and the row
 * dequantizer. The dot product is the oracle the vector kernels
 * (quant_il16_q4k_x86.c) must equal bit for bit: integer sums (exact) and
 * two float FMAs per super-block, the same steps there. Q5_K is Q4_K's
 * super-block with a 5th bit per weight (qh: bit j of qh[l] for element
 * 32j + l, ggml-quants.c's dequantize_row_q5_K), so q runs 0..31. */
#include <math.h>
#include <string.h>

#include "kernels/quant_impl.h"

/* Stored super-block bytes: d, dmin, 12 scale bytes, Q5_K's 32 qh bytes,
 * then the 128 nibble bytes. */
static inline int five(uint32_t type) { return type == HMTI_T_Q5_K; }
static inline size_t stored_qs(uint32_t type) { return five(type) ? 48 : 16; }

/* Byte of element e (0..255) of row r (0..15) in a super-block of the
 * layout: the low nibble for e % 64 < 32, else the high one. */
static inline size_t nibble_at(uint32_t type, int r, int e) {
    return hmti_il16_k4_qs(type) + 512 * (size_t)(e / 64) + 64 * (size_t)(e % 32 / 4) + 4 * (size_t)r +
           (size_t)(e % 4);
}

/* The q (0..15, Q5_K 0..31) of element e of row r. */
static inline int q_at(uint32_t type, const uint8_t *blk, int r, int e) {
    const int lo = (blk[nibble_at(type, r, e)] >> (e % 64 < 32 ? 0 : 4)) & 15;
    if (!five(type)) return lo;
    const int l = e % 32; /* qh[l] of row r, bit e / 32 */
    return lo | (blk[HMTI_IL16_Q5K_QH + 64 * (l / 4) + 4 * r + l % 4] >> (e / 32) & 1) << 4;
}

/* Scale and min (0..63) of sub-block j of row r: its 12 stored bytes
 * gathered back, decoded as the stored blocks are. */
static inline void scale_min(const uint8_t *blk, int r, int j, int *sc, int *m) {
    uint8_t q[12];
    for (int i = 0; i < 3; i++) memcpy(q + 4 * i, blk + HMTI_IL16_Q4K_SCALES + 64 * i + 4 * r, 4);
    hmti_k_scale_min(j, q, sc, m);
}

void hmti_il16_q4k_pack(uint32_t type, int64_t nsb, const uint8_t *src, size_t row_bytes, uint8_t *dst) {
    const size_t sb = hmti_il16_block(type) / HMTI_IL16_ROWS, qs = stored_qs(type);
    for (int64_t s = 0; s < nsb; s++, dst += hmti_il16_block(type))
        for (int r = 0; r < HMTI_IL16_ROWS; r++) {
            const uint8_t *b = src + (size_t)r * row_bytes + (size_t)s * sb;
            memcpy(dst + 2 * r, b, 2);                          /* d */
            memcpy(dst + HMTI_IL16_Q4K_DMIN + 2 * r, b + 2, 2); /* dmin */
            for (int i = 0; i < 3; i++) memcpy(dst + HMTI_IL16_Q4K_SCALES + 64 * i + 4 * r, b + 4 + 4 * i, 4);
            if (five(type))
                for (int k = 0; k < 8; k++) memcpy(dst + HMTI_IL16_Q5K_QH + 64 * k + 4 * r, b + 16 + 4 * k, 4);
            for (int c = 0; c < 4; c++) /* the nibble bytes as they are, 4 at a time */
                for (int k = 0; k < 8; k++)
                    memcpy(dst + nibble_at(type, r, 64 * c + 4 * k), b + qs + 32 * c + 4 * k, 4);
        }
}

void hmti_il16_q4k_dot_ref(uint32_t type, int64_t nsb, const uint8_t *g, const hmti_q8_256 *act, float *y) {
    float acc[HMTI_IL16_ROWS] = {0};
    for (int64_t s = 0; s < nsb; s++, g += hmti_il16_block(type)) {
        const hmti_q8_256 *x = &act[s];
        for (int r = 0; r < HMTI_IL16_ROWS; r++) {
            int32_t s1 = 0, s2 = 0;
            for (int j = 0; j < 8; j++) {
                int sc, m, sj = 0;
                scale_min(g, r, j, &sc, &m);
                for (int e = 32 * j; e < 32 * j + 32; e++) sj += q_at(type, g, r, e) * x->qs[e];
                s1 += sc * sj;
                s2 += m * (x->sum[2 * j] + x->sum[2 * j + 1]);
            }
            acc[r] = fmaf((float)s1, hmti_qf16(g + 2 * r) * x->d, acc[r]);
            acc[r] = fmaf(-(float)s2, hmti_qf16(g + HMTI_IL16_Q4K_DMIN + 2 * r) * x->d, acc[r]);
        }
    }
    memcpy(y, acc, sizeof acc);
}

/* As hmti_dequantize_row: (d * sc) * q - dmin * m, rounded after each step. */
void hmti_il16_q4k_dequant_row(uint32_t type, const uint8_t *g, int r, int64_t s0, int64_t n, float *dst) {
    g += (size_t)s0 * hmti_il16_block(type);
    for (int64_t s = 0; s < n; s++, g += hmti_il16_block(type), dst += 256) {
        const float d = hmti_qf16(g + 2 * r), dmin = hmti_qf16(g + HMTI_IL16_Q4K_DMIN + 2 * r);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            scale_min(g, r, j, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            for (int e = 32 * j; e < 32 * j + 32; e++) dst[e] = d1 * (float)q_at(type, g, r, e) - m1;
        }
    }
}
