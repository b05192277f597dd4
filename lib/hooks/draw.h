/* The last step of a sampler: top-k → temperature softmax → top-p → a draw
 * from a seeded RNG (lib/hooks/draw.c). */
#ifndef HMT_DRAW_H
#define HMT_DRAW_H

#include "hmt/hmt.h"

typedef struct {
    float logit;
    int32_t id;
} hmti_cand;

typedef struct {
    double temperature, top_p;
    int64_t top_k;
    uint64_t s[4]; /* xoshiro256** state */
    hmti_cand *work;
    int32_t work_cap;
} hmti_draw;

/* Settings from params (HMT_P_TEMPERATURE, _TOP_K, _TOP_P, _SEED). */
void hmti_draw_init(hmti_draw *d, const hmt_params *params);
void hmti_draw_free(hmti_draw *d);
void hmti_draw_reseed(hmti_draw *d, uint64_t seed);

/* Draw from n logits or log-probabilities (the softmax is the same); -inf
 * bans a token (it is never returned, not even on the rounding edge of a
 * draw), NaN/+inf and an all -inf vector are refused. Messages are
 * prefixed with `who`. */
int hmti_draw_sample(hmti_draw *d, const float *logits, int32_t n, hmt_token *out,
                     const char *who);

#endif
