/* Internal side of the sampler (lib/hooks/sampler.c), used by the chain. */
#ifndef HMT_SAMPLER_INTERNAL_H
#define HMT_SAMPLER_INTERNAL_H

#include "hmt/hmt.h"

/* The sampler's handle guard (busy.h), held by
 * hmt_chain_sample for its whole call (the processors run inside it). */
int hmti_sampler_enter(hmt_sampler *s, const char *fn);
void hmti_sampler_leave(hmt_sampler *s);

/* The caller holds the sampler's guard; draw from n log-probabilities (or
 * any logits) with the sampler's top-k → temperature → top-p → draw; does
 * not clear the thread's error message; messages are prefixed with `who`. */
int hmti_sampler_sample_logprobs(hmt_sampler *s, const float *logprobs, int32_t n,
                                 hmt_token *out, const char *who);

#endif
