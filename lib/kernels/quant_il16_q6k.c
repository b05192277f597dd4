/* Q6_K in groups of 16 rows (quant_impl.h, hmti_q_il_rows): the repacking,
 * and portable C versions of the dot product and the row dequantizer. The
 * dot product is the oracle the vector kernels (quant_il16_q6k_x86.c) must
 * equal bit for bit: integer sums (exact) and one float FMA per
 * super-block, the same steps there. */
#include <math.h>
#include <string.h>

#include "kernels/quant_impl.h"

/* Where element e (0..255) of row r (0..15) keeps its low 4 bits (the low
 * nibble of the byte for e % 32 < 16, else the high one) and its top 2
 * bits (bits 2k..2k+1, k = e % 16 / 4) in a super-block of the layout. */
static inline size_t nibble_at(int r, int e) {
    return HMTI_IL16_Q6K_PAIRS + HMTI_IL16_Q6K_PAIR * (size_t)(e / 32) + 64 * (size_t)(e % 16 / 4) + 4 * (size_t)r +
           (size_t)(e % 4);
}
static inline size_t top_at(int r, int e) {
    return HMTI_IL16_Q6K_PAIRS + HMTI_IL16_Q6K_PAIR * (size_t)(e / 32) + 256 + 64 * (size_t)(e % 32 / 16) +
           4 * (size_t)r + (size_t)(e % 4);
}

/* q (0..63) of element e of row r: the signed weight + 32. */
static inline int q_at(const uint8_t *blk, int r, int e) {
    const int nib = (blk[nibble_at(r, e)] >> (e % 32 < 16 ? 0 : 4)) & 15;
    return nib | ((blk[top_at(r, e)] >> (2 * (e % 16 / 4))) & 3) << 4;
}

/* q of element e of a stored block (GGML's ql / qh bits). */
static inline int stored_q(const uint8_t *b, int e) {
    const int n = e / 128, k = e % 128 / 32, l = e % 32;
    const int lo = (b[64 * n + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 15;
    return lo | ((b[128 + 32 * n + l] >> (2 * k)) & 3) << 4;
}

void hmti_il16_q6k_pack(int64_t nsb, const uint8_t *src, size_t row_bytes, uint8_t *dst) {
    for (int64_t s = 0; s < nsb; s++, dst += HMTI_IL16_Q6K_BLOCK) {
        memset(dst, 0, HMTI_IL16_Q6K_BLOCK); /* the bit fields are or'ed in */
        for (int r = 0; r < HMTI_IL16_ROWS; r++) {
            const uint8_t *b = src + (size_t)r * row_bytes + (size_t)s * 210;
            memcpy(dst + 2 * r, b + 208, 2);
            for (int j = 0; j < 16; j++) dst[HMTI_IL16_Q6K_SCALES + 16 * j + r] = b[192 + j];
            for (int e = 0; e < 256; e++) {
                const int q = stored_q(b, e);
                dst[nibble_at(r, e)] |= (uint8_t)((q & 15) << (e % 32 < 16 ? 0 : 4));
                dst[top_at(r, e)] |= (uint8_t)((q >> 4) << (2 * (e % 16 / 4)));
            }
        }
    }
}

void hmti_il16_q6k_dot_ref(int64_t nsb, const uint8_t *g, const hmti_q8_256 *act, float *y) {
    float acc[HMTI_IL16_ROWS] = {0};
    for (int64_t s = 0; s < nsb; s++, g += HMTI_IL16_Q6K_BLOCK) {
        const hmti_q8_256 *x = &act[s];
        for (int r = 0; r < HMTI_IL16_ROWS; r++) {
            int32_t sum = 0;
            for (int j = 0; j < 16; j++) {
                int32_t sj = -32 * x->sum[j]; /* the weights' offset */
                for (int e = 16 * j; e < 16 * j + 16; e++) sj += q_at(g, r, e) * x->qs[e];
                sum += (int8_t)g[HMTI_IL16_Q6K_SCALES + 16 * j + r] * sj;
            }
            acc[r] = fmaf((float)sum, hmti_qf16(g + 2 * r) * x->d, acc[r]);
        }
    }
    memcpy(y, acc, sizeof acc);
}

/* As hmti_dequantize_row: (d * scale) * (q - 32), rounded after each product. */
void hmti_il16_q6k_dequant_row(const uint8_t *g, int r, int64_t s0, int64_t n, float *dst) {
    g += (size_t)s0 * HMTI_IL16_Q6K_BLOCK;
    for (int64_t s = 0; s < n; s++, g += HMTI_IL16_Q6K_BLOCK, dst += 256) {
        const float d = hmti_qf16(g + 2 * r);
        for (int e = 0; e < 256; e++) {
            const float ds = d * (float)(int8_t)g[HMTI_IL16_Q6K_SCALES + 16 * (e / 16) + r];
            dst[e] = ds * (float)(q_at(g, r, e) - 32);
        }
    }
}
