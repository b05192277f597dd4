/* HMT recall: P = softmax(W_q s · (W_k M_i)ᵀ / scale) · M over the cached
 * memories, with optional emulation of the reference's bf16 arithmetic
 * (docs/HMT.md). Keys W_k M_i are computed once, when a memory is cached. */
#ifndef HMT_RECALL_H
#define HMT_RECALL_H

#include "stream/adapter.h"

/* key[d_h] = W_k · mem (bf16-emulated when bf16). mem_out[d] receives the
 * memory as the value path will use it (bf16-rounded when bf16). */
void hmti_recall_key(const hmt_adapter *a, int bf16, const float *mem, float *key,
                     float *mem_out);

/* Recall over n cached (key, value) pairs, oldest first: weights[n] and
 * p[d]. q_scratch holds d_h floats. n >= 1. */
void hmti_recall(const hmt_adapter *a, int bf16, const float *s, const float *keys,
                 const float *values, int32_t n, float *weights, float *p, float *q_scratch);

#endif
