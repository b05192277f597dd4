/* "HMTG" v1 golden cases (tests/reference/golden.py) and their replay
 * through the public API, shared by the backbone and quantized-model suites. */
#ifndef HMT_TEST_GOLDEN_H
#define HMT_TEST_GOLDEN_H

#include <stdint.h>

#include "hmt/hmt.h"

typedef struct {
    uint32_t n_rows, n_vocab, n_embd, n_embd_rows, n_chunks;
    int32_t *tokens, *pos;
    uint32_t *chunks;
    float *embd, *logits, *hidden;
    void *buf;
} hmt_golden;

/* Read build/testdata/<name> (aborts the test if missing or malformed). */
void hmt_golden_read(hmt_golden *g, const char *name);
/* Replay chunk by chunk on a new context; logits_out (n_rows × n_vocab) and
 * hidden_out (n_rows × n_embd) receive every row's outputs. */
void hmt_golden_replay(const hmt_golden *g, hmt_model *m, int threads, int n_batch,
                       float *logits_out, float *hidden_out);
/* The same in a context of n_ctx slots (0: the model's training context). */
void hmt_golden_replay_ctx(const hmt_golden *g, hmt_model *m, int threads, int n_batch,
                           int n_ctx, float *logits_out, float *hidden_out);
/* The same in a context created with params p. */
void hmt_golden_replay_params(const hmt_golden *g, hmt_model *m, const hmt_params *p,
                              float *logits_out, float *hidden_out);
/* max |Δ| of a replay's logits and hidden states against the golden's (NaN
 * anywhere: NaN). */
void hmt_golden_compare(const hmt_golden *g, const float *logits, const float *hidden, double *dl,
                        double *dh);

#endif
