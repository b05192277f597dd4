/* One query row's attention products over a KV cache, for several heads
 * of one KV group at once: each cached element is read once for all of
 * them (the per-head GEMVs read the group's K and V once per head, from
 * L2 after the first: 3 heads of SmolLM2's group took 3x the time of one).
 * The cache is F32, or F16/BF16 (HMT_P_KV_TYPE) widened inside the
 * products, so a half cache is read in place at half the bytes. Each
 * head's sums keep hmti_gemm_cm's order (two chains, even and odd terms,
 * added at the end), so every result is the per-head GEMV's bits over the
 * cache's values widened to F32, whatever the number of heads per call.
 * AVX-512 only: callers check hmti_kv_row_direct() first. */
#ifndef HMT_KERNELS_KV_ROW_H
#define HMT_KERNELS_KV_ROW_H

#include <stdint.h>

/* Heads per call at most. */
#define HMTI_KV_ROW_HEADS 8

/* Nonzero when this CPU runs the two kernels below. */
int hmti_kv_row_direct(void);

/* Both: type is the cache's element type, HMTI_T_F32, HMTI_T_F16 or
 * HMTI_T_BF16 (quant.h); ld, block and the indices into k or v count
 * elements of that type.
 *
 * For heads i < nh: s[i * lds + t - t0] = sum_{d < hd} K(d, t) * q[i * hd + d]
 * for t in [t0, t0 + n), K in blocks of slots, each [hd][block] (the
 * backbone's, kv_layout.h): K(d, t) = k[((t / block) * hd + d) * block + t % block],
 * block a multiple of 16. */
void hmti_kv_row_scores(const void *k, uint32_t type, int64_t block, int64_t hd, int64_t t0, int64_t n,
                        const float *q, int nh, float *s, int64_t lds);
/* For heads i < nh: out[i * ldo + d] = sum_{t < n} p[i * ldp + t] * v[t * ld + d]
 * for d < width (a head's components, or a slice of them: each result is
 * the same whatever slice it is computed in). */
void hmti_kv_row_values(const void *v, uint32_t type, int64_t ld, int64_t width, const float *p,
                        int64_t ldp, int nh, int64_t n, float *out, int64_t ldo);

#endif
