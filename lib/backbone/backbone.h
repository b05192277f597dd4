/* The Llama-family forward pass over one context's KV cache. Inputs are rows
 * of token ids or input embeddings with explicit RoPE positions; outputs are
 * the final-normalized hidden states and/or logits of the rows asked for.
 * All buffers are allocated at init; a forward call allocates nothing. */
#ifndef HMT_BACKBONE_H
#define HMT_BACKBONE_H

#include "backbone/model.h"

/* Rows of queries processed together in attention (bounds the score buffer). */
#define HMTI_ATT_ROWS 64

typedef struct {
    const hmt_model *m;
    hmti_pool *pool; /* held: shared with other contexts, or private */
    int n_threads;   /* the pool's */
    int compute; /* HMT_P_COMPUTE_TYPE */
    int32_t n_ctx, n_batch;
    float *kt;     /* K cache, transposed for the score GEMM: [layer][kv_head][head_dim][n_ctx] */
    float *v;      /* V cache: [layer][n_ctx][kv_dim]                                            */
    size_t kv_bytes;
    float *arena;  /* one block for every scratch buffer below */
    size_t arena_bytes;
    float *x, *xn, *xg; /* [n_batch][d]: residual stream, normed, gathered for the LM head */
    float *qkv;         /* [n_batch][q_dim + 2 kv_dim]                                    */
    float *att;         /* [n_batch][q_dim]                                               */
    float *gu;          /* [n_batch][2 ff]: gate | up                                     */
    float *scores; /* [n_threads][HMTI_ATT_ROWS][n_ctx] */
    float *ffn_in_out; /* where forward writes HMT_OUT_FFN_INPUT rows, consecutively */
    size_t scores_bytes;
} hmti_backbone;

/* n_threads: HMT_P_N_THREADS (HMT_AUTO: the process's shared pool). */
int hmti_backbone_init(hmti_backbone *b, const hmt_model *m, int32_t n_ctx, int32_t n_batch,
                       int64_t n_threads);
void hmti_backbone_release(hmti_backbone *b);
int hmti_backbone_set_threads(hmti_backbone *b, int64_t n_threads);
/* Run on pool from now on (retained; the old one released). */
int hmti_backbone_attach(hmti_backbone *b, hmti_pool *pool);
/* HMT_P_COMPUTE_TYPE (value checked by the caller); grows the pool's
 * scratch to what the BF16 path needs. */
int hmti_backbone_set_compute(hmti_backbone *b, int compute);

/* Evaluate n (1..n_batch) rows into slots [n_past, n_past + n). Exactly one of
 * tokens / embd is non-NULL and validated by the caller, as are pos and the
 * room in the cache. Rows with HMT_OUT_HIDDEN in outputs[i] get their final
 * normalized hidden state written to consecutive rows of hidden_out, rows
 * with HMT_OUT_LOGITS their logits to consecutive rows of logits_out, rows
 * with HMT_OUT_FFN_INPUT the last block's normalized FFN input to
 * consecutive rows of b->ffn_in_out (set by the caller before the call).
 * Returns HMT_OK or HMT_E_ABORTED (cache slots >= n_past may then hold
 * partial data; the caller keeps n_past unchanged). */
int hmti_backbone_forward(hmti_backbone *b, int32_t n_past, int32_t n, const hmt_token *tokens,
                          const float *embd, const int32_t *pos, const uint8_t *outputs,
                          float *hidden_out, float *logits_out, hmt_abort_fn abort_fn,
                          void *abort_data);

#endif
