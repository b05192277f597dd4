/* Exact-activation dot products on block-quantized rows: the weights are
 * dequantized (bit-exactly, hmti_dequantize_row) a super-block at a time
 * into a small buffer and dotted with the float activation (hmti_dot,
 * vectorized), so the result is the dot of the stored weights with x itself
 * up to float rounding, independent of 8-bit activation quantization. For
 * tests and for decode rows that must match the prompt path; slower than the
 * quantized-activation kernels (the dequantization is the portable C). */
#include "kernels/quant_impl.h"

#define CHUNK 256 /* a multiple of every block size */

float hmti_vec_dot_exact(uint32_t type, int64_t n, const void *w, const float *x) {
    const hmti_qtraits *t = hmti_qtraits_of(type);
    if (!t || n <= 0 || n % t->block_elems) return 0.0f;
    if (t->act_block == 0) return hmti_vec_dot_best(type)(n, w, x);
    float buf[CHUNK];
    const uint8_t *p = w;
    float s = 0.0f;
    for (int64_t i = 0; i < n; i += CHUNK) {
        const int64_t m = n - i < CHUNK ? n - i : CHUNK;
        hmti_dequantize_row(type, p, buf, m);
        s += hmti_dot(buf, x + i, m);
        p += (size_t)(m / t->block_elems) * (size_t)t->block_bytes;
    }
    return s;
}

void hmti_gemv_q_exact(uint32_t type, int64_t rows, int64_t cols, const void *w, size_t row_stride,
                       const float *x, float *y) {
    const uint8_t *row = w;
    for (int64_t r = 0; r < rows; r++, row += row_stride) y[r] = hmti_vec_dot_exact(type, cols, row, x);
}
