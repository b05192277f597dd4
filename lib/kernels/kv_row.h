/* One query row's attention products over an F32 KV cache for several
 * heads of one KV group at once: each cached element is read once for all
 * of them (the per-head GEMVs read the group's K and V once per head, from
 * L2 after the first: 3 heads of SmolLM2's group took 3x the time of one).
 * Each head's sums keep hmti_gemm_cm's order (two chains, even and odd
 * terms, added at the end), so every result is the per-head GEMV's bits
 * whatever the number of heads per call. AVX-512 only: callers check
 * hmti_kv_row_direct() first. */
#ifndef HMT_KERNELS_KV_ROW_H
#define HMT_KERNELS_KV_ROW_H

#include <stdint.h>

/* Heads per call at most. */
#define HMTI_KV_ROW_HEADS 8

/* Nonzero when this CPU runs the two kernels below, and kv_half.h's. */
int hmti_kv_row_direct(void);

/* For heads i < nh: s[i * lds + t] = sum_{d < hd} k[d * ld + t] * q[i * hd + d]
 * for t < n (K stored transposed: one row of slots per component). */
void hmti_kv_row_scores(const float *k, int64_t ld, int64_t hd, const float *q, int nh, int64_t n,
                        float *s, int64_t lds);
/* For heads i < nh: out[i * hd + d] = sum_{t < n} p[i * ldp + t] * v[t * ld + d]
 * for d < hd. */
void hmti_kv_row_values(const float *v, int64_t ld, int64_t hd, const float *p, int64_t ldp, int nh,
                        int64_t n, float *out);

#endif
