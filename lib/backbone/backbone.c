/* Llama / Qwen2 / Qwen3 / Gemma 2 / Gemma 3 forward pass: pre-norm blocks of
 * GQA attention with RoPE (qwen3, gemma3: per-head RMSNorm of q and k before
 * it) and a SwiGLU (gemma: GELU-tanh) gated feed-forward, then the final
 * RMSNorm and the LM head. Gemma adds: input rows scaled by sqrt(d), norms
 * of the attention and FFN outputs before each residual add, sliding-window
 * layers, attention and final logit soft-capping (model.h, gemma.c).
 *
 * Weights are packed matrices (kernels/matrix); activations are row-major
 * [row][feature] in one arena. Attention over the KV cache is attention.c;
 * the cache's layout, kv_layout.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backbone/attention.h"
#include "backbone/backbone.h"
#include "core/alloc.h"
#include "core/bigalloc.h"

static size_t arena_floats(const hmt_model *m, int32_t n_batch) {
    const size_t d = (size_t)m->n_embd, q = (size_t)m->n_head * m->head_dim;
    const size_t kv = (size_t)m->n_head_kv * m->head_dim, ff = (size_t)m->n_ff;
    return (size_t)n_batch * (3 * d + 2 * q + 2 * kv + 2 * ff);
}

static int alloc_scores(hmti_backbone *b, int n_threads) {
    size_t bytes = hmti_attention_scratch_floats(b, n_threads) * sizeof(float);
    if (bytes <= b->scores_bytes) return HMT_OK;
    float *s = hmti_big_alloc(bytes);
    if (!s) return hmti_errf(HMT_E_NOMEM, "context: out of memory for attention scores");
    hmti_big_free(b->scores, b->scores_bytes);
    b->scores = s;
    b->scores_bytes = bytes;
    return HMT_OK;
}

int hmti_backbone_init(hmti_backbone *b, const hmt_model *m, int32_t n_ctx, int32_t n_batch,
                       int kv_type, int64_t n_threads) {
    return hmti_backbone_init_seqs(b, m, n_ctx, n_batch, 1, kv_type, n_threads);
}

/* The GGML element type of a hmt_kv_type. */
static uint32_t kv_gtype_of(int kv_type) {
    return kv_type == HMT_KV_F16 ? HMTI_TYPE_F16 : kv_type == HMT_KV_BF16 ? HMTI_TYPE_BF16 : HMTI_TYPE_F32;
}

int hmti_backbone_init_seqs(hmti_backbone *b, const hmt_model *m, int32_t n_ctx, int32_t n_batch,
                            int32_t n_seq, int kv_type, int64_t n_threads) {
    memset(b, 0, sizeof *b);
    b->m = m;
    b->n_ctx = n_ctx;
    b->n_batch = n_batch;
    b->n_seq = n_seq;
    b->kv_type = kv_type;
    b->kv_gtype = kv_gtype_of(kv_type);
    b->kv_elt = hmti_row_size(b->kv_gtype, 1);
    const size_t kv_dim = (size_t)m->n_head_kv * m->head_dim;
    b->seq_elems = (size_t)m->n_layer * (size_t)n_ctx * kv_dim;
    b->kv_bytes = (size_t)n_seq * b->seq_elems * b->kv_elt;
    b->kt_head = hmti_kt_head_elems(m->head_dim, n_ctx);
    b->seq_k_elems = (size_t)m->n_layer * (size_t)m->n_head_kv * b->kt_head;
    b->kt_bytes = (size_t)n_seq * b->seq_k_elems * b->kv_elt;
    b->kt = hmti_big_alloc(b->kt_bytes);
    b->v = hmti_big_alloc(b->kv_bytes);
    b->arena_bytes = arena_floats(m, n_batch) * sizeof(float);
    b->arena = hmti_big_alloc(b->arena_bytes);
    b->row_seq = hmti_calloc((size_t)n_batch * 5, sizeof(int32_t));
    if (!b->kt || !b->v || !b->arena || !b->row_seq) {
        /* the sizes first: release zeroes them */
        const double mib = ((double)b->kt_bytes + (double)b->kv_bytes + (double)b->arena_bytes) / 1048576.0;
        hmti_backbone_release(b);
        if (n_seq == 1)
            return hmti_errf(HMT_E_NOMEM, "context: out of memory for a %d-token KV cache and "
                             "its scratch (%.1f MiB); ask for fewer tokens (HMT_P_N_CTX, -c)",
                             n_ctx, mib);
        return hmti_errf(HMT_E_NOMEM, "context: out of memory for %d %d-token KV caches and "
                         "their scratch (%.1f MiB); ask for fewer tokens (HMT_P_N_CTX, -c) or "
                         "sequences (HMT_P_N_SEQ)", n_seq, n_ctx, mib);
    }
    b->row_slot = b->row_seq + n_batch;
    b->runs = b->row_slot + n_batch;
    const size_t d = (size_t)m->n_embd, q = (size_t)m->n_head * m->head_dim;
    const size_t nb = (size_t)n_batch;
    float *p = b->arena;
    b->x = p, p += nb * d;
    b->xn = p, p += nb * d;
    b->xg = p, p += nb * d;
    b->qkv = p, p += nb * (q + 2 * kv_dim);
    b->att = p, p += nb * q;
    b->gu = p;
    int rc = hmti_backbone_set_threads(b, n_threads);
    if (rc) hmti_backbone_release(b);
    return rc;
}

void hmti_backbone_release(hmti_backbone *b) {
    hmti_pool_release(b->pool);
    hmti_big_free(b->kt, b->kt_bytes);
    hmti_big_free(b->v, b->kv_bytes);
    hmti_big_free(b->arena, b->arena_bytes);
    hmti_big_free(b->scores, b->scores_bytes);
    free(b->row_seq);
    memset(b, 0, sizeof *b);
}

/* Scratch for stored (non-F32) weight matrices and the BF16 path: input
 * widths d, q, ff. */
static int reserve_scratch(const hmti_backbone *b, hmti_pool *pool) {
    const hmt_model *m = b->m;
    int64_t max_cols = m->n_embd > m->n_ff ? m->n_embd : m->n_ff;
    if ((int64_t)m->n_head * m->head_dim > max_cols) max_cols = (int64_t)m->n_head * m->head_dim;
    size_t shared, local;
    if (b->compute == HMT_COMPUTE_BF16)
        hmti_matmul_scratch_bf16(max_cols, b->n_batch, &shared, &local);
    else
        hmti_matmul_scratch(max_cols, &shared, &local);
    return hmti_pool_reserve(pool, shared, local);
}

int hmti_backbone_attach(hmti_backbone *b, hmti_pool *pool) {
    int rc = alloc_scores(b, hmti_pool_n_threads(pool));
    if (!rc) rc = reserve_scratch(b, pool);
    if (rc) return rc;
    hmti_pool_retain(pool);
    hmti_pool_release(b->pool);
    b->pool = pool;
    b->n_threads = hmti_pool_n_threads(pool);
    return HMT_OK;
}

int hmti_backbone_set_threads(hmti_backbone *b, int64_t n_threads) {
    hmti_pool *pool;
    int rc = hmti_pool_for_threads(&pool, n_threads);
    if (rc) return rc;
    rc = hmti_backbone_attach(b, pool);
    hmti_pool_release(pool); /* b holds it now (or failed) */
    return rc;
}

/* The pool's scratch only grows: switching back and forth costs nothing
 * after the first switch to BF16. */
int hmti_backbone_set_compute(hmti_backbone *b, int compute) {
    const int old = b->compute;
    b->compute = compute;
    const int rc = reserve_scratch(b, b->pool);
    if (rc) b->compute = old;
    return rc;
}

/* The weight matmuls, in the context's compute type. Decode steps of
 * several sequences take the decode path together: the weights are read
 * once for all rows, and each row gets the bits its own step would. */
static void matmul(const hmti_backbone *b, const hmti_matrix *w, const float *x, int64_t ldx,
                   int64_t n, float *y, int64_t ldy, const float *bias) {
    if (b->decode_batch && b->compute != HMT_COMPUTE_BF16)
        hmti_matmul_decode(b->pool, w, x, ldx, n, y, ldy, bias);
    else if (b->compute == HMT_COMPUTE_BF16)
        hmti_matmul_bf16(b->pool, w, x, ldx, n, y, ldy, bias);
    else
        hmti_matmul(b->pool, w, x, ldx, n, y, ldy, bias);
}

/* ---- row-parallel helpers --------------------------------------------------- */

typedef struct {
    hmti_backbone *b;
    int32_t n;
    const float *norm_w; /* rmsnorm weight: xn = rmsnorm(x), or rmsnorm(xn) when post */
    int post;
} rows_job;

static void job_rmsnorm(void *arg, int ith, int nth) {
    rows_job *j = arg;
    const int64_t d = j->b->m->n_embd;
    const float *src = j->post ? j->b->xn : j->b->x;
    int64_t lo, hi;
    hmti_split_range(j->n, ith, nth, 1, &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        hmti_rmsnorm(j->b->xn + i * d, src + i * d, j->norm_w, d, j->b->m->rms_eps);
}

static void job_swiglu(void *arg, int ith, int nth) {
    rows_job *j = arg;
    const int64_t ff = j->b->m->n_ff;
    int64_t lo, hi;
    hmti_split_range(j->n, ith, nth, 1, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) {
        float *g = j->b->gu + i * 2 * ff;
        if (j->b->m->gelu)
            hmti_gelu_mul(g, g + ff, ff);
        else
            hmti_silu_mul(g, g + ff, ff);
    }
}

/* Row jobs too small to be worth waking the pool run on the caller: up to
 * a batched decode step's rows (16 rows of norms or a gated FFN
 * activation take a few µs to ~25 µs; a pool wake-up and barrier 10-65 µs
 * on a loaded 2-core machine, see hmti_attention in attention.c). Each
 * row's result is the same either way. */
static void run_rows(hmti_backbone *b, hmti_job_fn fn, rows_job *j) {
    if (j->n <= HMTI_BATCH_DECODE_ROWS)
        fn(j, 0, 1);
    else
        hmti_pool_run(b->pool, fn, j);
}

/* Per-head RMSNorm of q or k (qwen3), in place, before RoPE. */
static void head_norm(float *x, int n_head, int64_t hd, const float *w, float eps) {
    for (int h = 0; h < n_head; h++) hmti_rmsnorm(x + h * hd, x + h * hd, w, hd, eps);
}

/* Apply RoPE to the new rows' q and k (store_kv puts k, v in the cache). */
static void rope_rows(hmti_backbone *b, int layer, int32_t n, const int32_t *pos) {
    const hmt_model *m = b->m;
    const hmti_layer *L = &m->layers[layer];
    const int64_t hd = m->head_dim;
    const int64_t q_dim = (int64_t)m->n_head * hd, kv_dim = (int64_t)m->n_head_kv * hd;
    const double *freq = hmti_model_rope_freqs(m, L->swa, b->n_ctx); /* LongRoPE: by n_ctx */
    for (int32_t i = 0; i < n; i++) {
        const int32_t p = pos ? pos[i] : (int32_t)b->row_slot[i];
        float *q = b->qkv + (size_t)i * (q_dim + 2 * kv_dim), *k = q + q_dim;
        if (L->q_norm) {
            head_norm(q, m->n_head, hd, L->q_norm, m->rms_eps);
            head_norm(k, m->n_head_kv, hd, L->k_norm, m->rms_eps);
        }
        hmti_rope(q, m->n_head, (int)hd, m->rope.n_rot, p, freq, m->rope_mscale, m->rope_neox);
        hmti_rope(k, m->n_head_kv, (int)hd, m->rope.n_rot, p, freq, m->rope_mscale, m->rope_neox);
    }
}

/* The last block's normalized FFN input is the kNN-LM key. */
static void keep_ffn_input(hmti_backbone *b, int32_t n, const uint8_t *outputs) {
    const int64_t d = b->m->n_embd;
    float *out = b->ffn_in_out;
    for (int32_t i = 0; i < n; i++)
        if (outputs[i] & HMT_OUT_FFN_INPUT) {
            memcpy(out, b->xn + (size_t)i * d, (size_t)d * sizeof(float));
            out += d;
        }
}

/* Gemma: xn = rmsnorm(xn) * w (the attention or FFN output, before the add). */
static void post_norm(hmti_backbone *b, int32_t n, const float *w) {
    if (!w) return;
    rows_job rj = {b, n, w, 1};
    run_rows(b, job_rmsnorm, &rj);
}

static void layer_forward(hmti_backbone *b, int l, int32_t n, int32_t n_runs, hmti_att_plan plan,
                          const int32_t *pos, const uint8_t *outputs) {
    const hmt_model *m = b->m;
    const hmti_layer *L = &m->layers[l];
    const int64_t d = m->n_embd, hd = m->head_dim, ff = m->n_ff;
    const int64_t q_dim = (int64_t)m->n_head * hd, kv_dim = (int64_t)m->n_head_kv * hd;
    rows_job rj = {b, n, L->attn_norm, 0};
    run_rows(b, job_rmsnorm, &rj);
    matmul(b, &L->wqkv, b->xn, d, n, b->qkv, q_dim + 2 * kv_dim, L->bqkv);
    rope_rows(b, l, n, pos);
    hmti_attention(b, l, n, n_runs, plan);
    /* x += Wo·att, computed into xn (free now) then added */
    matmul(b, &L->wo, b->att, q_dim, n, b->xn, d, NULL);
    post_norm(b, n, L->attn_post_norm);
    hmti_add(b->x, b->xn, (int64_t)n * d);
    rj.norm_w = L->ffn_norm;
    run_rows(b, job_rmsnorm, &rj);
    if (l == m->n_layer - 1 && outputs) keep_ffn_input(b, n, outputs);
    matmul(b, &L->gate_up, b->xn, d, n, b->gu, 2 * ff, NULL);
    run_rows(b, job_swiglu, &rj);
    matmul(b, &L->down, b->gu, 2 * ff, n, b->xn, d, NULL);
    post_norm(b, n, L->ffn_post_norm);
    hmti_add(b->x, b->xn, (int64_t)n * d);
}

/* Split rows into runs of one sequence at consecutive slots: attention
 * works run by run. A chunk of several runs, each short enough for the
 * decode path on its own, is a batched decode step (decode_batch). */
static int32_t find_runs(hmti_backbone *b, int32_t n) {
    int32_t n_runs = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t *last = b->runs + 3 * (n_runs - 1);
        if (n_runs && last[2] == b->row_seq[i] &&
            b->row_slot[last[0]] + last[1] == b->row_slot[i]) {
            last[1]++;
            continue;
        }
        int32_t *run = b->runs + 3 * n_runs++;
        run[0] = i, run[1] = 1, run[2] = b->row_seq[i];
    }
    int short_runs = 1;
    for (int32_t r = 0; r < n_runs; r++) short_runs &= b->runs[3 * r + 1] <= HMTI_DECODE_ROWS;
    b->decode_batch = n_runs > 1 && short_runs && n <= HMTI_BATCH_DECODE_ROWS;
    return n_runs;
}

static int forward(hmti_backbone *b, int32_t n, const hmt_token *tokens, const float *embd,
                   const int32_t *pos, const uint8_t *outputs, float *hidden_out,
                   float *logits_out, hmt_abort_fn abort_fn, void *abort_data) {
    const hmt_model *m = b->m;
    const int64_t d = m->n_embd;
    const int32_t n_runs = find_runs(b, n);
    const hmti_att_plan plan = hmti_attention_plan(b, n, n_runs);
    for (int32_t i = 0; i < n; i++) {
        if (tokens)
            hmti_model_embed(m, tokens[i], b->x + (size_t)i * d);
        else
            memcpy(b->x + (size_t)i * d, embd + (size_t)i * d, (size_t)d * sizeof(float));
    }
    if (m->input_scale != 1.0f) hmti_scale(b->x, m->input_scale, (int64_t)n * d); /* gemma2 */
    for (int l = 0; l < m->n_layer; l++) {
        if (abort_fn && abort_fn(abort_data))
            return hmti_errf(HMT_E_ABORTED, "eval: aborted by the callback before layer %d", l);
        layer_forward(b, l, n, n_runs, plan, pos, outputs);
    }
    /* Final norm for rows that want an output; gather logit rows into xg. */
    int32_t n_logits = 0;
    for (int32_t i = 0; i < n; i++) {
        const uint8_t f = outputs[i];
        const float *x = b->x + (size_t)i * d;
        if (f & HMT_OUT_HIDDEN) {
            hmti_rmsnorm(hidden_out, x, m->output_norm, d, m->rms_eps);
            hidden_out += d;
        }
        if (f & HMT_OUT_LOGITS)
            hmti_rmsnorm(b->xg + (size_t)n_logits++ * d, x, m->output_norm, d, m->rms_eps);
    }
    if (n_logits) matmul(b, &m->output, b->xg, d, n_logits, logits_out, m->n_vocab, NULL);
    if (n_logits && m->final_softcap > 0) /* gemma2 */
        hmti_softcap(logits_out, 1.0f, m->final_softcap, (int64_t)n_logits * m->n_vocab);
    return HMT_OK;
}

/* The pool is held for the whole pass: contexts sharing it take turns. */
static int run_forward(hmti_backbone *b, int32_t n, const hmt_token *tokens, const float *embd,
                       const int32_t *pos, const uint8_t *outputs, float *hidden_out,
                       float *logits_out, hmt_abort_fn abort_fn, void *abort_data) {
    int rc = hmti_pool_acquire(b->pool, "eval");
    if (rc) return rc;
    rc = forward(b, n, tokens, embd, pos, outputs, hidden_out, logits_out, abort_fn, abort_data);
    hmti_pool_unlock(b->pool);
    return rc;
}

int hmti_backbone_forward(hmti_backbone *b, int32_t n_past, int32_t n, const hmt_token *tokens,
                          const float *embd, const int32_t *pos, const uint8_t *outputs,
                          float *hidden_out, float *logits_out, hmt_abort_fn abort_fn,
                          void *abort_data) {
    for (int32_t i = 0; i < n; i++) b->row_seq[i] = 0, b->row_slot[i] = n_past + i;
    return run_forward(b, n, tokens, embd, pos, outputs, hidden_out, logits_out, abort_fn,
                       abort_data);
}

int hmti_backbone_forward_seqs(hmti_backbone *b, int32_t n, const int32_t *seq,
                               const int32_t *slot, const hmt_token *tokens, const float *embd,
                               const int32_t *pos, const uint8_t *outputs, float *hidden_out,
                               float *logits_out, hmt_abort_fn abort_fn, void *abort_data) {
    if (seq)
        memcpy(b->row_seq, seq, (size_t)n * sizeof *seq);
    else
        memset(b->row_seq, 0, (size_t)n * sizeof *b->row_seq);
    memcpy(b->row_slot, slot, (size_t)n * sizeof *slot);
    return run_forward(b, n, tokens, embd, pos, outputs, hidden_out, logits_out, abort_fn,
                       abort_data);
}

int hmti_backbone_forward_peers(hmti_backbone *b, hmti_backbone *const *peers, int32_t n,
                                const int32_t *slot, const hmt_token *tokens,
                                const uint8_t *outputs, float *logits_out, hmt_abort_fn abort_fn,
                                void *abort_data) {
    for (int32_t i = 0; i < n; i++) b->row_seq[i] = i;
    memcpy(b->row_slot, slot, (size_t)n * sizeof *slot);
    b->peers = peers;
    const int rc = run_forward(b, n, tokens, NULL, NULL, outputs, NULL, logits_out, abort_fn,
                               abort_data);
    b->peers = NULL;
    return rc;
}

/* Per layer and KV head: K, the blocks holding n slots, one run (the last
 * block whole: its slots from n on are free in dst); V, each slice's first
 * n slots. */
void hmti_backbone_seq_copy(hmti_backbone *b, int32_t src, int32_t dst, int32_t n) {
    if (src == dst || n <= 0) return;
    const hmt_model *m = b->m;
    const int64_t hd = m->head_dim;
    const size_t e = b->kv_elt, keys = hmti_kt_head_elems(hd, n), values = hmti_v_head_elems(hd, b->n_ctx);
    const unsigned char *ks = hmti_backbone_kt(b, src), *vs = hmti_backbone_v(b, src);
    unsigned char *kd = hmti_backbone_kt(b, dst), *vd = hmti_backbone_v(b, dst);
    for (size_t h = 0; h < (size_t)m->n_layer * m->n_head_kv; h++) {
        memcpy(kd + h * b->kt_head * e, ks + h * b->kt_head * e, keys * e);
        for (int64_t c0 = 0; c0 < hd; c0 += HMTI_V_SLICE) {
            const size_t at = (h * values + hmti_v_at(hd, b->n_ctx, c0, 0)) * e;
            memcpy(vd + at, vs + at, (size_t)n * (size_t)hmti_v_width(hd, c0) * e);
        }
    }
}
