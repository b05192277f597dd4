/* One layer's attention over the KV cache (attention.c), for the forward
 * pass (backbone.c): rows' queries, keys and values are in b->qkv (after
 * RoPE), the outputs go to b->att. */
#ifndef HMT_ATTENTION_H
#define HMT_ATTENTION_H

#include "backbone/backbone.h"

/* Floats of b->scores a pool of n_threads needs (the threads' score rows,
 * a half cache's widened copies, a split decode step's shared scores). */
size_t hmti_attention_scratch_floats(const hmti_backbone *b, int n_threads);

/* Whether the attention job itself stores the n rows' keys and values
 * (b->runs holds their n_runs runs, b->decode_batch is set): pass the
 * answer to hmti_attention for every layer of the step. */
int hmti_attention_stores_in_job(const hmti_backbone *b, int32_t n, int32_t n_runs);

/* Layer `layer`: the rows' keys and values into the cache (here, unless
 * kv_in_job), then attention over each row's visible slots. */
void hmti_attention(hmti_backbone *b, int layer, int32_t n, int32_t n_runs, int kv_in_job);

#endif
