/* One query row's attention over a KV cache of 16-bit floats (F16 or
 * BF16, HMT_P_KV_TYPE), converting each cached element inside the dot
 * products: the decode case, which reads the cache once and so gains from
 * its half size (prompt rows widen the cache to F32 once and use GEMMs,
 * backbone.c). AVX-512 only, as the F32 cache's kernels: callers check
 * hmti_kv_row_direct() (kv_row.h) first. */
#ifndef HMT_KERNELS_KV_HALF_H
#define HMT_KERNELS_KV_HALF_H

#include <stdint.h>

/* s[t] = sum_{d < hd} k[d * ld + t] * q[d] for t < n (K stored transposed:
 * one row of slots per component), F32 sums. */
void hmti_kv_half_scores(const uint16_t *k, int64_t ld, int64_t hd, const float *q, int64_t n,
                         int bf16, float *s);
/* out[d] = sum_{t < n} p[t] * v[t * ld + d] for d < hd; hd a multiple of 16
 * and at most 256. */
void hmti_kv_half_values(const uint16_t *v, int64_t ld, int64_t hd, const float *p, int64_t n,
                         int bf16, float *out);

#endif
