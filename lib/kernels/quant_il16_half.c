/* F16 and BF16 in groups of 16 rows (quant_impl.h): portable C versions of
 * the dot product and the row dequantizer (the repacking is in
 * quant_il16_half_x86.c, beside the kernels: the layout exists only there). The dot
 * product here is the oracle the AVX-512 kernels (quant_il16_half_x86.c)
 * must equal bit for bit.
 *
 * Why the layout: a stored-row kernel reads 4 rows side by side, 4
 * streams; the group here is one stream (column c's 16 values are 32
 * contiguous bytes), read in order, as the packed F32 panels and the
 * 16-row quant groups are, which came closer to a streaming read on both
 * hosts measured (docs/QUANTS.md, "F16 and BF16 in groups of 16 rows"). */
#include <math.h>
#include <string.h>

#include "kernels/quant_impl.h"

static inline float half_at(uint32_t type, const uint8_t *g, int64_t c, int r) {
    uint16_t h;
    memcpy(&h, g + 2 * (16 * (size_t)c + (size_t)r), 2);
    return type == HMTI_T_F16 ? hmti_f16_to_f32(h) : hmti_bf16_to_f32(h);
}

void hmti_il16h_dot_ref(uint32_t type, int64_t cols, const uint8_t *g, const float *x, float *y) {
    for (int r = 0; r < HMTI_IL16_ROWS; r++) {
        float a[HMTI_IL16H_CHAINS] = {0};
        for (int64_t c = 0; c < cols; c++)
            a[c % HMTI_IL16H_CHAINS] = fmaf(half_at(type, g, c, r), x[c], a[c % HMTI_IL16H_CHAINS]);
        y[r] = (a[0] + a[1]) + (a[2] + a[3]);
    }
}

void hmti_il16h_dequant_row(uint32_t type, const uint8_t *g, int r, int64_t c0, int64_t n, float *dst) {
    for (int64_t c = 0; c < n; c++) dst[c] = half_at(type, g, c0 + c, r);
}
