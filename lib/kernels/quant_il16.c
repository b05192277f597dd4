/* Q8_0 in groups of 16 rows (quant.h, hmti_q_il_rows): the repacking, and
 * portable C versions of the dot product and the row dequantizer. The dot
 * product here is the oracle the vector kernels (quant_il16_x86.c,
 * quant_il16_amx.c) must equal bit for bit: each step is exact or one
 * float rounding that they do the same way. */
#include <math.h>
#include <string.h>

#include "kernels/quant_impl.h"

/* Byte of element e (0..31) of row r (0..15) in a block of the layout. */
static inline size_t quant_at(int r, int e) { return 32 + 64 * (size_t)(e / 4) + 4 * (size_t)r + (size_t)(e % 4); }

void hmti_il16_pack(int64_t nb, const uint8_t *src, size_t row_bytes, uint8_t *dst) {
    for (int64_t b = 0; b < nb; b++, dst += HMTI_IL16_BLOCK)
        for (int r = 0; r < HMTI_IL16_ROWS; r++) {
            const uint8_t *s = src + (size_t)r * row_bytes + (size_t)b * 34;
            memcpy(dst + 2 * r, s, 2);
            for (int e = 0; e < 32; e++) dst[quant_at(r, e)] = s[2 + e] ^ 0x80;
        }
}

void hmti_il16_dot_ref(int64_t nb, const uint8_t *g, const hmti_q8_32 *act, float *y) {
    float acc[HMTI_IL16_ROWS] = {0};
    for (int64_t b = 0; b < nb; b++, g += HMTI_IL16_BLOCK) {
        const hmti_q8_32 *x = &act[b];
        for (int r = 0; r < HMTI_IL16_ROWS; r++) {
            int32_t s = -128 * (x->sum[0] + x->sum[1]); /* the +128 of the stored quants */
            for (int e = 0; e < 32; e++) s += (int32_t)g[quant_at(r, e)] * x->qs[e];
            acc[r] = fmaf((float)s, hmti_qf16(g + 2 * r) * x->d, acc[r]);
        }
    }
    memcpy(y, acc, sizeof acc);
}

void hmti_il16_dequant_row(const uint8_t *g, int r, int64_t b0, int64_t n_blocks, float *dst) {
    g += (size_t)b0 * HMTI_IL16_BLOCK;
    for (int64_t b = 0; b < n_blocks; b++, g += HMTI_IL16_BLOCK, dst += 32) {
        const float d = hmti_qf16(g + 2 * r);
        for (int e = 0; e < 32; e++) dst[e] = (float)(int8_t)(g[quant_at(r, e)] ^ 0x80) * d;
    }
}
