/* The Llama-family forward pass over one context's KV cache. Inputs are rows
 * of token ids or input embeddings with explicit RoPE positions; outputs are
 * the final-normalized hidden states and/or logits of the rows asked for.
 * All buffers are allocated at init; a forward call allocates nothing. */
#ifndef HMT_BACKBONE_H
#define HMT_BACKBONE_H

#include <string.h>

#include "backbone/kv_layout.h"
#include "backbone/model.h"

/* Rows of queries processed together in attention (bounds the score buffer). */
#define HMTI_ATT_ROWS 64

typedef struct hmti_backbone hmti_backbone;
struct hmti_backbone {
    const hmt_model *m;
    hmti_pool *pool; /* held: shared with other contexts, or private */
    int n_threads;   /* the pool's */
    int compute; /* HMT_P_COMPUTE_TYPE */
    int32_t n_ctx, n_batch, n_seq;
    int kv_type;       /* HMT_P_KV_TYPE (hmt_kv_type)                                 */
    uint32_t kv_gtype; /* its element type in GGML numbering: F32 0, F16 1, BF16 30 */
    size_t kv_elt;     /* bytes per cached element                                  */
    /* One cache region per sequence (hmti_backbone_kt/_v): */
    unsigned char *kt; /* K cache: [seq][layer][kv_head], kt_head elements each (kv_layout.h) */
    unsigned char *v;  /* V cache: [seq][layer][kv_head], n_ctx × head_dim elements each (kv_layout.h) */
    size_t kt_head, kt_bytes, kv_bytes, seq_elems, seq_k_elems;
    int32_t *row_seq, *row_slot; /* [n_batch]: each row's sequence and KV slot   */
    int32_t *runs;               /* [n_batch][3]: first row, rows, seq of a run  */
    int decode_batch; /* this chunk is decode steps of several sequences */
    float *arena;  /* one block for every scratch buffer below */
    size_t arena_bytes;
    float *x, *xn, *xg; /* [n_batch][d]: residual stream, normed, gathered for the LM head */
    float *qkv;         /* [n_batch][q_dim + 2 kv_dim]                                    */
    float *att;         /* [n_batch][q_dim]                                               */
    float *gu;          /* [n_batch][2 ff]: gate | up                                     */
    float *scores; /* per thread: [HMTI_ATT_ROWS][n_ctx] scores, then (half caches)
                      the F32 copy of one KV head's K and V, 2 × n_ctx × head_dim;
                      after them (2+ threads) a split decode step's [n_head][n_ctx] */
    float *ffn_in_out; /* where forward writes HMT_OUT_FFN_INPUT rows, consecutively */
    size_t scores_bytes;
    /* set only during hmti_backbone_forward_peers: sequence i is peers[i]'s
     * cache (sequence 0 of another backbone of the same shape) */
    hmti_backbone *const *peers;
};

/* n_threads: HMT_P_N_THREADS (HMT_AUTO: the process's shared pool);
 * kv_type: HMT_P_KV_TYPE (checked by the caller). One sequence; _init_seqs:
 * n_seq independent caches of n_ctx slots each. */
int hmti_backbone_init(hmti_backbone *b, const hmt_model *m, int32_t n_ctx, int32_t n_batch,
                       int kv_type, int64_t n_threads);
int hmti_backbone_init_seqs(hmti_backbone *b, const hmt_model *m, int32_t n_ctx, int32_t n_batch,
                            int32_t n_seq, int kv_type, int64_t n_threads);
/* Sequence seq's K and V cache regions (elements of kv_gtype). */
static inline unsigned char *hmti_backbone_kt(const hmti_backbone *b, int32_t seq) {
    if (b->peers) return b->peers[seq]->kt;
    return b->kt + (size_t)seq * b->seq_k_elems * b->kv_elt;
}
/* Layer l's keys of KV head g in sequence seq's K region (hmti_kt_at inside). */
static inline unsigned char *hmti_backbone_kt_head(const hmti_backbone *b, int32_t seq, int l, int64_t g) {
    return hmti_backbone_kt(b, seq) + ((size_t)l * b->m->n_head_kv + (size_t)g) * b->kt_head * b->kv_elt;
}
static inline unsigned char *hmti_backbone_v(const hmti_backbone *b, int32_t seq) {
    if (b->peers) return b->peers[seq]->v;
    return b->v + (size_t)seq * b->seq_elems * b->kv_elt;
}
/* Element i of cache array a (kt or v of some sequence) set to x, rounded
 * to the cache's type (to nearest even). */
static inline void hmti_kv_put(const hmti_backbone *b, unsigned char *a, size_t i, float x) {
    if (b->kv_gtype == HMTI_TYPE_F32) {
        memcpy(a + i * sizeof x, &x, sizeof x);
        return;
    }
    const uint16_t h = b->kv_gtype == HMTI_TYPE_F16 ? hmti_f32_to_f16(x) : hmti_f32_to_bf16(x);
    memcpy(a + i * sizeof h, &h, sizeof h);
}
/* Layer l's values of KV head g in sequence seq's V region (hmti_v_at inside). */
static inline unsigned char *hmti_backbone_v_head(const hmti_backbone *b, int32_t seq, int l, int64_t g) {
    return hmti_backbone_v(b, seq) + ((size_t)l * b->m->n_head_kv + (size_t)g) *
                                         hmti_v_head_elems(b->m->head_dim, b->n_ctx) * b->kv_elt;
}
/* Copy the first n slots of sequence src's cache over sequence dst's. */
void hmti_backbone_seq_copy(hmti_backbone *b, int32_t src, int32_t dst, int32_t n);
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
/* The same for rows of several sequences: row i goes to sequence seq[i] (seq
 * NULL: 0) at KV slot slot[i] (both validated by the caller: a sequence's rows take
 * consecutive slots in row order, after its cached ones); pos NULL means
 * each row's slot. Rows attend to their own sequence only. */
int hmti_backbone_forward_seqs(hmti_backbone *b, int32_t n, const int32_t *seq,
                               const int32_t *slot, const hmt_token *tokens, const float *embd,
                               const int32_t *pos, const uint8_t *outputs, float *hidden_out,
                               float *logits_out, hmt_abort_fn abort_fn, void *abort_data);

/* One token row for each of n backbones in one pass over the weights
 * (several HMT streams' decode steps, hmt_streams_feed): row i is
 * peers[i]'s, at its KV slot slot[i] (also its RoPE position). The pass
 * runs on b's scratch and pool; every peer has b's model, n_ctx, KV type
 * and compute type (checked by the caller, as is n <= b->n_batch). Outputs
 * as hmti_backbone_forward_seqs. */
int hmti_backbone_forward_peers(hmti_backbone *b, hmti_backbone *const *peers, int32_t n,
                                const int32_t *slot, const hmt_token *tokens,
                                const uint8_t *outputs, float *logits_out, hmt_abort_fn abort_fn,
                                void *abort_data);

#endif
