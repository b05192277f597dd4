/* One layer's attention over the KV cache (attention.c), for the forward
 * pass (backbone.c): rows' queries, keys and values are in b->qkv (after
 * RoPE), the outputs go to b->att. */
#ifndef HMT_ATTENTION_H
#define HMT_ATTENTION_H

#include "backbone/backbone.h"

/* A decode step's attention splits its KV groups' work by slots and
 * components (attention.c, splits_step) from this many multiply-adds of its
 * K·q products (heads × slots × head_dim) on: below, the second job costs
 * about what it saves (SmolLM2 shape, 228 slots; 2 threads, split against
 * not: 0.985x at 60-92 slots, 1.00x at 200-290, 1.04-1.06x at 300-940,
 * 1.155x at 1800; docs/QUANTS.md, seventeenth session). */
#define HMTI_SPLIT_MACS (1 << 17)

/* How a step's attention runs, the same for each of its layers:
 * BY_HEADS: the caller stores the rows' keys and values, then the threads
 * take query heads; BY_ITEMS: each (run, KV head) item stores its own and
 * attends its group; SPLIT: one decode row, its keys' blocks then its
 * values' slices shared evenly by the threads. */
typedef enum { HMTI_ATT_BY_HEADS, HMTI_ATT_BY_ITEMS, HMTI_ATT_SPLIT } hmti_att_plan;

/* Floats of b->scores a pool of n_threads needs (the threads' score rows,
 * a half cache's widened copies, a split decode step's shared scores). */
size_t hmti_attention_scratch_floats(const hmti_backbone *b, int n_threads);

/* The plan of a step of n rows (b->runs holds their n_runs runs,
 * b->decode_batch is set): pass it to hmti_attention for every layer. */
hmti_att_plan hmti_attention_plan(const hmti_backbone *b, int32_t n, int32_t n_runs);

/* Layer `layer`: the rows' keys and values into the cache, then attention
 * over each row's visible slots. */
void hmti_attention(hmti_backbone *b, int layer, int32_t n, int32_t n_runs, hmti_att_plan plan);

#endif
