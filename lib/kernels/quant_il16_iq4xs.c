/* IQ4_XS in groups of 16 rows (quant_impl.h, hmti_q_il_rows): the
 * repacking, and portable C versions of the dot product and the row
 * dequantizer. The dot product is the oracle the vector kernels
 * (quant_il16_iq4xs_x86.c) must equal bit for bit: integer sums (exact) and
 * one float FMA per super-block, the same steps there. A stored super-block
 * (ggml-common.h's block_iq4_xs): f16 d, u16 scales_h, 4 bytes scales_l,
 * 128 bytes of nibbles (sub-block ib's 16 bytes: elements 32ib + j low,
 * 32ib + 16 + j high). */
#include <math.h>
#include <string.h>

#include "kernels/quant_impl.h"

/* Byte of element e (0..255) of row r (0..15) in a super-block of the
 * layout: the low nibble for e % 32 < 16, else the high one. */
static inline size_t nibble_at(int r, int e) {
    return HMTI_IL16_IQ4XS_QS + 256 * (size_t)(e / 32) + 64 * (size_t)(e % 16 / 4) + 4 * (size_t)r + (size_t)(e % 4);
}

/* The code-book value of element e of row r. */
static inline int value_at(const uint8_t *blk, int r, int e) {
    return hmti_iq4_values[(blk[nibble_at(r, e)] >> (e % 32 < 16 ? 0 : 4)) & 15];
}

/* Sub-block ib's scale - 32 of row r: the stored fields gathered back. */
static inline int scale_at(const uint8_t *blk, int r, int ib) {
    uint8_t b[8] = {0};
    memcpy(b + 2, blk + HMTI_IL16_IQ4XS_SH + 2 * r, 2);
    memcpy(b + 4, blk + HMTI_IL16_IQ4XS_SL + 4 * r, 4);
    return hmti_iq4xs_scale(ib, b);
}

void hmti_il16_iq4xs_pack(int64_t nsb, const uint8_t *src, size_t row_bytes, uint8_t *dst) {
    for (int64_t s = 0; s < nsb; s++, dst += HMTI_IL16_IQ4XS_BLOCK)
        for (int r = 0; r < HMTI_IL16_ROWS; r++) {
            const uint8_t *b = src + (size_t)r * row_bytes + (size_t)s * 136;
            memcpy(dst + 2 * r, b, 2);
            memcpy(dst + HMTI_IL16_IQ4XS_SH + 2 * r, b + 2, 2);
            memcpy(dst + HMTI_IL16_IQ4XS_SL + 4 * r, b + 4, 4);
            for (int ib = 0; ib < 8; ib++) /* the nibble bytes as they are, 4 at a time */
                for (int v = 0; v < 4; v++) memcpy(dst + nibble_at(r, 32 * ib + 4 * v), b + 8 + 16 * ib + 4 * v, 4);
        }
}

void hmti_il16_iq4xs_dot_ref(int64_t nsb, const uint8_t *g, const hmti_q8_256 *act, float *y) {
    float acc[HMTI_IL16_ROWS] = {0};
    for (int64_t s = 0; s < nsb; s++, g += HMTI_IL16_IQ4XS_BLOCK) {
        const hmti_q8_256 *x = &act[s];
        for (int r = 0; r < HMTI_IL16_ROWS; r++) {
            int32_t sum = 0;
            for (int ib = 0; ib < 8; ib++) {
                int32_t sj = 0;
                for (int e = 32 * ib; e < 32 * ib + 32; e++) sj += value_at(g, r, e) * x->qs[e];
                sum += scale_at(g, r, ib) * sj;
            }
            acc[r] = fmaf((float)sum, hmti_qf16(g + 2 * r) * x->d, acc[r]);
        }
    }
    memcpy(y, acc, sizeof acc);
}

/* As hmti_dequantize_row: (d * scale) * value, rounded after each step. */
void hmti_il16_iq4xs_dequant_row(const uint8_t *g, int r, int64_t s0, int64_t n, float *dst) {
    g += (size_t)s0 * HMTI_IL16_IQ4XS_BLOCK;
    for (int64_t s = 0; s < n; s++, g += HMTI_IL16_IQ4XS_BLOCK, dst += 256) {
        const float d = hmti_qf16(g + 2 * r);
        for (int ib = 0; ib < 8; ib++) {
            const float dl = d * (float)scale_at(g, r, ib);
            for (int e = 32 * ib; e < 32 * ib + 32; e++) dst[e] = dl * (float)value_at(g, r, e);
        }
    }
}
