/* Q8_0, Q4_0, Q5_0, Q4_1, Q5_1 and IQ4_NL in groups of 16 rows (quant.h,
 * hmti_q_il_rows): the repacking, and portable C versions of the dot
 * product and the row dequantizer. The dot product here is the oracle the vector kernels
 * (quant_il16_x86.c, quant_il16_amx.c) must equal bit for bit: each step is
 * exact or one float rounding that they do the same way. */
#include <math.h>
#include <string.h>

#include "kernels/quant_impl.h"

/* Byte holding element e (0..31) of row r (0..15) in a block of the layout
 * (the nibble types: element e and e + 16 share a byte, low and high nibble). */
static inline size_t quant_at(uint32_t type, int r, int e) {
    const int v = type == HMTI_T_Q8_0 ? e / 4 : e % 16 / 4;
    return hmti_il16_quants(type) + 64 * (size_t)v + 4 * (size_t)r + (size_t)(e % 4);
}

/* Element e of row r as the unsigned weight the kernels multiply: the
 * signed value + hmti_il16_offset(type). */
static inline int weight_at(uint32_t type, const uint8_t *blk, int r, int e) {
    const uint8_t q = blk[quant_at(type, r, e)];
    if (type == HMTI_T_Q8_0) return q;
    const int nib = e < 16 ? q & 15 : q >> 4;
    if (type == HMTI_T_IQ4_NL) return hmti_iq4_values[nib] + 128;
    if (!hmti_il16_has_qh(type)) return nib;
    return nib | (int)(hmti_qu32(blk + hmti_il16_qh_at(type) + 4 * r) >> e & 1) << 4;
}

void hmti_il16_pack(uint32_t type, int64_t nb, const uint8_t *src, size_t row_bytes, uint8_t *dst) {
    const size_t bb = hmti_il16_block(type) / HMTI_IL16_ROWS;
    for (int64_t b = 0; b < nb; b++, dst += hmti_il16_block(type))
        for (int r = 0; r < HMTI_IL16_ROWS; r++) {
            const uint8_t *s = src + (size_t)r * row_bytes + (size_t)b * bb;
            memcpy(dst + 2 * r, s, 2);
            if (type == HMTI_T_Q8_0) {
                for (int e = 0; e < 32; e++) dst[quant_at(type, r, e)] = s[2 + e] ^ 0x80;
                continue;
            }
            /* stored: d, Q4_1/Q5_1's m, Q5_0/Q5_1's 5th bits, the nibbles */
            const int min = hmti_il16_has_min(type), qh = 2 + 2 * min, qs = qh + 4 * hmti_il16_has_qh(type);
            if (min) memcpy(dst + 32 + 2 * r, s + 2, 2);
            if (hmti_il16_has_qh(type)) memcpy(dst + hmti_il16_qh_at(type) + 4 * r, s + qh, 4);
            for (int v = 0; v < 4; v++) /* the nibble bytes as they are, 4 at a time */
                memcpy(dst + quant_at(type, r, 4 * v), s + qs + 4 * v, 4);
        }
}

void hmti_il16_dot_ref(uint32_t type, int64_t nb, const uint8_t *g, const hmti_q8_32 *act, float *y) {
    float acc[HMTI_IL16_ROWS] = {0};
    for (int64_t b = 0; b < nb; b++, g += hmti_il16_block(type)) {
        const hmti_q8_32 *x = &act[b];
        for (int r = 0; r < HMTI_IL16_ROWS; r++) {
            int32_t s = -hmti_il16_offset(type) * (x->sum[0] + x->sum[1]); /* the weights' offset */
            for (int e = 0; e < 32; e++) s += weight_at(type, g, r, e) * x->qs[e];
            acc[r] = fmaf((float)s, hmti_qf16(g + 2 * r) * x->d, acc[r]);
            if (hmti_il16_has_min(type)) /* + m * (the activation block's sum) */
                acc[r] = fmaf((float)(x->sum[0] + x->sum[1]), hmti_qf16(g + 32 + 2 * r) * x->d, acc[r]);
        }
    }
    memcpy(y, acc, sizeof acc);
}

void hmti_il16_dequant_row(uint32_t type, const uint8_t *g, int r, int64_t b0, int64_t n_blocks, float *dst) {
    g += (size_t)b0 * hmti_il16_block(type);
    for (int64_t b = 0; b < n_blocks; b++, g += hmti_il16_block(type), dst += 32) {
        const float d = hmti_qf16(g + 2 * r);
        if (hmti_il16_has_min(type)) { /* as the stored rows: q * d + m, two roundings */
            const float m = hmti_qf16(g + 32 + 2 * r);
            for (int e = 0; e < 32; e++) dst[e] = (float)weight_at(type, g, r, e) * d + m;
            continue;
        }
        for (int e = 0; e < 32; e++) dst[e] = (float)(weight_at(type, g, r, e) - hmti_il16_offset(type)) * d;
    }
}
