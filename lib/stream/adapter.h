/* HMT adapter: the hmt.* hyperparameters and tensors (docs/HMT.md), loaded
 * from a GGUF file and validated against a base model. Immutable. */
#ifndef HMT_ADAPTER_H
#define HMT_ADAPTER_H

#include "backbone/model.h"

typedef enum { HMTI_SCALE_SQRT = 0, HMTI_SCALE_LINEAR = 1 } hmti_recall_scale;

struct hmt_adapter {
    atomic_int refs;
    hmt_model *model;
    int32_t d, d_h;
    int32_t segment_length, sensory_length, cache_size, gen_summary_length;
    int gen_summary_given; /* hmt.generation_summary_length is in the file */
    float summary_fraction;
    hmti_recall_scale scale;
    int recall_bf16;
    float *summary_prompt, *memory_init; /* [d]     */
    float *wq, *wk;                      /* [d_h][d] */
    uint64_t fingerprint;                /* hyperparameters and tensors (snapshots) */
    atomic_int user_freed;               /* hmt_adapter_free was called          */
    hmti_guard guard;                    /* last: see busy.h (magic only)        */
};

/* Load from an open GGUF (the adapter file, or the model's own). */
int hmti_adapter_load_gguf(hmt_adapter **out, hmt_model *model, const hmti_gguf *g);
void hmti_adapter_retain(const hmt_adapter *a);
void hmti_adapter_release(const hmt_adapter *a);
/* j for the lookahead rule: round-half-even(L · fraction), at least 1. */
int32_t hmti_adapter_summary_length(const hmt_adapter *a, int32_t L);

#endif
