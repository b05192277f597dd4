/* Row dequantizers with SIMD variants (quant_dequant.c portable,
 * quant_dequant_x86.c AVX2 / AVX-512), used by the prompt path of stored
 * matrices (matrix_q.c). Every variant gives the same floats as the
 * portable hmti_dequantize_row, bit for bit (same float operations in the
 * same order, no contraction). */
#ifndef HMT_KERNELS_DEQUANT_H
#define HMT_KERNELS_DEQUANT_H

#include <stdint.h>

/* dst[0..n) = the n elements at src (n a multiple of the type's block). */
typedef void (*hmti_dequant_fn)(const void *src, float *dst, int64_t n);

/* The row dequantizer of type for code path `path` (0 portable, 1 AVX2,
 * 2 AVX-512), falling back to a lower path for types without one; NULL for
 * an unsupported type. path must not exceed hmti_cpu_level(). */
hmti_dequant_fn hmti_dequant_path(uint32_t type, int path);
/* The same at hmti_cpu_level(). */
hmti_dequant_fn hmti_dequant_best(uint32_t type);

/* Portable ones (quant_dequant.c) and the x86 ones (NULL where none). */
hmti_dequant_fn hmti_dequant_ref(uint32_t type);
hmti_dequant_fn hmti_dequant_avx2(uint32_t type);
hmti_dequant_fn hmti_dequant_avx512(uint32_t type);

/* dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols (exact copy). */
void hmti_transpose_f32(const float *src, int64_t lds, float *dst, int64_t ldd, int64_t rows,
                        int64_t cols);
/* The same with the code of path l (<= hmti_cpu_level(); for tests). */
void hmti_transpose_f32_path(int l, const float *src, int64_t lds, float *dst, int64_t ldd,
                             int64_t rows, int64_t cols);

#endif
