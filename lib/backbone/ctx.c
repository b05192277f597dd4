/* Public context API: argument checks, batch splitting into n_batch chunks,
 * output bookkeeping, sequences (each its own KV cache; the single-sequence
 * calls use sequence 0), and the failure rule "a failed eval leaves every
 * sequence's n_past and cached positions as they were". */
#include <stdlib.h>
#include <string.h>

#include "backbone/backbone.h"
#include "backbone/ctx_state.h"
#include "core/abort.h"
#include "core/alloc.h"
#include "core/busy.h"
#include "core/outbuf.h"
#include "core/params.h"

struct hmt_ctx {
    hmt_model *model;
    hmti_backbone bb;
    int32_t *n_past;   /* [n_seq]: cached positions of each sequence */
    int32_t *cursor;   /* [n_seq]: eval scratch, next slot of each sequence */
    int32_t *row_slot; /* [rows_cap]: eval scratch, each row's slot */
    /* outputs of the last successful eval */
    float *logits, *hidden, *ffn;
    size_t logits_cap, hidden_cap, ffn_cap; /* in rows */
    int32_t *row_logits, *row_hidden, *row_ffn; /* batch row -> output row, -1 if none */
    uint8_t *flags;                   /* default flags when the caller passes NULL */
    size_t rows_cap;
    int32_t n_rows;
    hmti_abort abort;
    hmti_retired retired; /* output blocks outgrown, kept until free */
    hmti_guard guard; /* last: see busy.h */
};

static const hmt_param CTX_KEYS[] = {HMT_P_N_CTX, HMT_P_N_BATCH, HMT_P_N_SEQ, HMT_P_KV_TYPE,
                                     HMT_P_N_THREADS, HMT_P_COMPUTE_TYPE};

HMT_API int hmt_ctx_create(hmt_ctx **out, hmt_model *model, const hmt_params *params) {
    if (!out) return hmti_errf(HMT_E_INVAL, "hmt_ctx_create: out is NULL");
    *out = NULL;
    if (!model) return hmti_errf(HMT_E_INVAL, "hmt_ctx_create: model is NULL");
    if (hmti_guard_check(&model->guard, HMTI_MAGIC_MODEL, "hmt_ctx_create")) return HMT_E_MISUSE;
    int rc = hmti_params_only(params, CTX_KEYS, HMTI_NKEYS(CTX_KEYS), "hmt_ctx_create");
    if (rc) return rc;
    int64_t n_ctx = (int64_t)hmti_param_value(params, HMT_P_N_CTX);
    int64_t n_batch = (int64_t)hmti_param_value(params, HMT_P_N_BATCH);
    const int64_t n_threads = (int64_t)hmti_param_value(params, HMT_P_N_THREADS);
    const int32_t n_seq = (int32_t)hmti_param_value(params, HMT_P_N_SEQ);
    if (n_ctx == HMT_AUTO) n_ctx = model->n_ctx_train;
    if (n_batch > n_ctx) n_batch = n_ctx;
    hmt_ctx *ctx = hmti_calloc(1, sizeof *ctx);
    if (!ctx) return hmti_errf(HMT_E_NOMEM, "hmt_ctx_create: out of memory");
    ctx->n_past = hmti_calloc(2 * (size_t)n_seq, sizeof *ctx->n_past);
    if (!ctx->n_past) {
        free(ctx);
        return hmti_errf(HMT_E_NOMEM, "hmt_ctx_create: out of memory");
    }
    ctx->cursor = ctx->n_past + n_seq;
    rc = hmti_backbone_init_seqs(&ctx->bb, model, (int32_t)n_ctx, (int32_t)n_batch, n_seq,
                                 (int)hmti_param_value(params, HMT_P_KV_TYPE), n_threads);
    if (!rc) rc = hmti_backbone_set_compute(&ctx->bb,
                                            (int)hmti_param_value(params, HMT_P_COMPUTE_TYPE));
    if (rc) {
        hmti_backbone_release(&ctx->bb);
        free(ctx->n_past);
        free(ctx);
        return rc;
    }
    hmti_model_retain(model);
    ctx->model = model;
    hmti_guard_init(&ctx->guard, HMTI_MAGIC_CTX);
    *out = ctx;
    return HMT_OK;
}

HMT_API void hmt_ctx_free(hmt_ctx *ctx) {
    if (!ctx || hmti_retire(&ctx->guard, HMTI_MAGIC_CTX, "hmt_ctx_free")) return;
    hmti_backbone_release(&ctx->bb);
    free(ctx->logits);
    free(ctx->hidden);
    free(ctx->row_logits);
    free(ctx->row_hidden);
    free(ctx->ffn);
    free(ctx->row_ffn);
    free(ctx->flags);
    free(ctx->row_slot);
    free(ctx->n_past);
    hmti_outbuf_release(&ctx->retired);
    hmti_model_release(ctx->model);
    free(ctx);
}

static int ctx_set_int(hmt_ctx *ctx, hmt_param key, int64_t value) {
    if (!ctx) return hmti_errf(HMT_E_INVAL, "hmt_ctx_set_int: ctx is NULL");
    if (key != HMT_P_N_THREADS && key != HMT_P_COMPUTE_TYPE)
        return hmti_errf(HMT_E_INVAL, "hmt_ctx_set_int: %s (key %d) cannot change on a "
                         "live context (runtime keys: n_threads, compute_type)",
                         hmti_param_name(key), (int)key);
    int rc = hmti_param_check(key, (double)value, 1);
    if (!rc)
        rc = key == HMT_P_N_THREADS
                 ? hmti_backbone_set_threads(&ctx->bb, value)
                 : hmti_backbone_set_compute(&ctx->bb, (int)value);
    return rc ? rc : HMT_OK;
}

HMT_API int hmt_ctx_get(const hmt_ctx *ctx, hmt_param key, double *out) {
    if (hmti_guard_check(HMTI_GUARD(ctx), HMTI_MAGIC_CTX, "hmt_ctx_get")) return HMT_E_MISUSE;
    if (!ctx || !out) return hmti_errf(HMT_E_INVAL, "hmt_ctx_get: %s is NULL", !ctx ? "ctx" : "out");
    switch (key) {
    case HMT_P_N_CTX: *out = ctx->bb.n_ctx; return HMT_OK;
    case HMT_P_N_BATCH: *out = ctx->bb.n_batch; return HMT_OK;
    case HMT_P_N_SEQ: *out = ctx->bb.n_seq; return HMT_OK;
    case HMT_P_KV_TYPE: *out = ctx->bb.kv_type; return HMT_OK;
    case HMT_P_N_THREADS: *out = ctx->bb.n_threads; return HMT_OK;
    case HMT_P_COMPUTE_TYPE: *out = ctx->bb.compute; return HMT_OK;
    default:
        return hmti_errf(HMT_E_INVAL, "hmt_ctx_get: %s (key %d) is not a context key",
                         hmti_param_name(key), (int)key);
    }
}

static int ctx_attach(hmt_ctx *ctx, hmt_threadpool *tp) {
    if (!ctx) return hmti_errf(HMT_E_INVAL, "hmt_ctx_attach_threadpool: ctx is NULL");
    if (hmti_pool_check(tp, "hmt_ctx_attach_threadpool")) return HMT_E_MISUSE;
    if (tp) return hmti_backbone_attach(&ctx->bb, tp);
    return hmti_backbone_set_threads(&ctx->bb, HMT_AUTO);
}

HMT_API const hmt_model *hmt_ctx_model(const hmt_ctx *ctx) { return ctx ? ctx->model : NULL; }
HMT_API int32_t hmt_ctx_n_past(const hmt_ctx *ctx) { return ctx ? ctx->n_past[0] : 0; }
HMT_API int32_t hmt_ctx_seq_n_past(const hmt_ctx *ctx, int32_t seq) {
    return ctx && seq >= 0 && seq < ctx->bb.n_seq ? ctx->n_past[seq] : -1;
}
HMT_API int32_t hmt_ctx_n_ctx(const hmt_ctx *ctx) { return ctx ? ctx->bb.n_ctx : 0; }

/* Grow-only buffers: an eval allocates only when it needs more than any
 * earlier one did. */
static int reserve(void **p, size_t *cap, size_t want, size_t elem) {
    if (want <= *cap) return HMT_OK;
    void *q = hmti_realloc(*p, want * elem);
    if (!q) return hmti_errf(HMT_E_NOMEM, "eval: out of memory for %zu output rows", want);
    *p = q;
    *cap = want;
    return HMT_OK;
}

static int reserve_outputs(hmt_ctx *ctx, size_t n, size_t n_logits, size_t n_hidden,
                           size_t n_ffn) {
    const hmt_model *m = ctx->model;
    size_t rows_cap = ctx->rows_cap;
    int rc;
    if (n > rows_cap) {
        size_t c1 = rows_cap, c2 = rows_cap, c3 = rows_cap, c4 = rows_cap, c5 = rows_cap;
        if ((rc = reserve((void **)&ctx->row_logits, &c1, n, sizeof(int32_t))) ||
            (rc = reserve((void **)&ctx->row_hidden, &c2, n, sizeof(int32_t))) ||
            (rc = reserve((void **)&ctx->row_ffn, &c4, n, sizeof(int32_t))) ||
            (rc = reserve((void **)&ctx->row_slot, &c5, n, sizeof(int32_t))) ||
            (rc = reserve((void **)&ctx->flags, &c3, n, 1)))
            return rc;
        ctx->rows_cap = n;
    }
    /* outgrown blocks are retired, not freed: logits pointers handed out
     * stay readable until hmt_ctx_free */
    hmti_retired *r = &ctx->retired;
    if ((rc = hmti_outbuf_reserve(r, &ctx->logits, &ctx->logits_cap, n_logits,
                                  (size_t)m->n_vocab)) ||
        (rc = hmti_outbuf_reserve(r, &ctx->hidden, &ctx->hidden_cap, n_hidden,
                                  (size_t)m->n_embd)) ||
        (rc = hmti_outbuf_reserve(r, &ctx->ffn, &ctx->ffn_cap, n_ffn, (size_t)m->n_embd)))
        return rc;
    return HMT_OK;
}

/* Room for n rows of outputs as their HMT_OUT_* flags ask. */
static int reserve_flagged(hmt_ctx *ctx, size_t n, const uint8_t *outputs) {
    size_t n_logits = 0, n_hidden = 0, n_ffn = 0;
    for (size_t i = 0; i < n; i++) {
        n_logits += (outputs[i] & HMT_OUT_LOGITS) != 0;
        n_hidden += (outputs[i] & HMT_OUT_HIDDEN) != 0;
        n_ffn += (outputs[i] & HMT_OUT_FFN_INPUT) != 0;
    }
    return reserve_outputs(ctx, n, n_logits, n_hidden, n_ffn);
}

static int check_eval_args(const hmt_ctx *ctx, size_t n, const hmt_token *tokens,
                           const float *embd, const int32_t *seq, const int32_t *pos,
                           const uint8_t *outputs) {
    const hmt_model *m = ctx->model;
    if (n == 0) return hmti_errf(HMT_E_INVAL, "eval: no rows to evaluate (n = 0)");
    if (!tokens == !embd)
        return hmti_errf(HMT_E_INVAL, "eval: give exactly one of tokens and embeddings");
    /* a bound before anything is allocated for the rows; assign_slots then
     * checks each sequence */
    if (!seq && n > (size_t)(ctx->bb.n_ctx - ctx->n_past[0]))
        return hmti_errf(HMT_E_CTX_FULL, "eval: %zu rows do not fit: %d of %d positions used", n,
                         ctx->n_past[0], ctx->bb.n_ctx);
    int64_t free_slots = 0;
    for (int32_t s = 0; seq && s < ctx->bb.n_seq; s++) free_slots += ctx->bb.n_ctx - ctx->n_past[s];
    if (seq && n > (uint64_t)free_slots)
        return hmti_errf(HMT_E_CTX_FULL, "eval: %zu rows do not fit in the %lld free positions of "
                         "the %d sequences", n, (long long)free_slots, ctx->bb.n_seq);
    for (size_t i = 0; seq && i < n; i++)
        if (seq[i] < 0 || seq[i] >= ctx->bb.n_seq)
            return hmti_errf(HMT_E_INVAL, "eval: row %zu: sequence %d outside [0, %d) "
                             "(HMT_P_N_SEQ)", i, seq[i], ctx->bb.n_seq);
    for (size_t i = 0; tokens && i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->n_vocab)
            return hmti_errf(HMT_E_TOKEN, "eval: row %zu: token %d outside [0, %d)", i, tokens[i],
                             m->n_vocab);
    if (embd) { /* a NaN row would poison every later row through attention */
        const int64_t bad = hmti_first_nonfinite(embd, (int64_t)(n * (size_t)m->n_embd));
        if (bad >= 0)
            return hmti_errf(HMT_E_INVAL, "eval: embedding row %lld, column %lld is %s",
                             (long long)(bad / m->n_embd), (long long)(bad % m->n_embd),
                             hmti_nonfinite_name(embd[bad]));
    }
    for (size_t i = 0; pos && i < n; i++)
        if (pos[i] < 0)
            return hmti_errf(HMT_E_INVAL, "eval: row %zu: negative position %d", i, pos[i]);
    for (size_t i = 0; outputs && i < n; i++)
        if (outputs[i] & ~(HMT_OUT_LOGITS | HMT_OUT_HIDDEN | HMT_OUT_FFN_INPUT))
            return hmti_errf(HMT_E_INVAL, "eval: row %zu: unknown output flags 0x%x", i, outputs[i]);
    return HMT_OK;
}

/* Rows [lo, hi) of outputs[] take the next output row of each kind they ask
 * for (next[]: logits, hidden, FFN input), -1 for a kind they do not. */
static void map_outputs(hmt_ctx *ctx, size_t lo, size_t hi, const uint8_t *outputs,
                        int32_t next[3]) {
    for (size_t i = lo; i < hi; i++) {
        ctx->row_logits[i] = (outputs[i] & HMT_OUT_LOGITS) ? next[0]++ : -1;
        ctx->row_hidden[i] = (outputs[i] & HMT_OUT_HIDDEN) ? next[1]++ : -1;
        ctx->row_ffn[i] = (outputs[i] & HMT_OUT_FFN_INPUT) ? next[2]++ : -1;
    }
}

/* Each row's slot: its sequence's next one, in row order (into
 * ctx->row_slot; ctx->cursor ends at each sequence's new n_past). */
static int assign_slots(hmt_ctx *ctx, size_t n, const int32_t *seq) {
    const int32_t n_seq = ctx->bb.n_seq;
    memcpy(ctx->cursor, ctx->n_past, (size_t)n_seq * sizeof *ctx->cursor);
    for (size_t i = 0; i < n; i++) {
        const int32_t s = seq ? seq[i] : 0;
        if (ctx->cursor[s] == ctx->bb.n_ctx) {
            size_t rows = 0;
            for (size_t r = 0; r < n; r++) rows += (seq ? seq[r] : 0) == s;
            return hmti_errf(HMT_E_CTX_FULL, "eval: the %zu rows of sequence %d do not fit: "
                             "%d of its %d positions used", rows, s, ctx->n_past[s],
                             ctx->bb.n_ctx);
        }
        ctx->row_slot[i] = ctx->cursor[s]++;
    }
    return HMT_OK;
}

static int ctx_eval(hmt_ctx *ctx, size_t n, const hmt_token *tokens, const float *embd,
                    const int32_t *seq, const int32_t *pos, const uint8_t *outputs) {
    if (!ctx) return hmti_errf(HMT_E_INVAL, "hmt_ctx_eval: ctx is NULL");
    int rc = check_eval_args(ctx, n, tokens, embd, seq, pos, outputs);
    if (!rc) rc = reserve_outputs(ctx, n, 0, 0, 0);
    if (!rc) rc = assign_slots(ctx, n, seq);
    if (rc) return rc;
    if (!outputs) {
        memset(ctx->flags, 0, n);
        ctx->flags[n - 1] = HMT_OUT_LOGITS | HMT_OUT_HIDDEN;
        outputs = ctx->flags;
    }
    if ((rc = reserve_flagged(ctx, n, outputs))) return rc;

    /* From here on the previous outputs are being overwritten. */
    ctx->n_rows = 0;
    const hmt_model *m = ctx->model;
    size_t done = 0;
    int32_t next[3] = {0, 0, 0}; /* output rows written: logits, hidden, FFN input */
    while (done < n) {
        const size_t chunk = n - done < (size_t)ctx->bb.n_batch ? n - done : (size_t)ctx->bb.n_batch;
        ctx->bb.ffn_in_out = ctx->ffn ? ctx->ffn + (size_t)next[2] * (size_t)m->n_embd : NULL;
        rc = hmti_backbone_forward_seqs(
            &ctx->bb, (int32_t)chunk, seq ? seq + done : NULL, ctx->row_slot + done,
            tokens ? tokens + done : NULL, embd ? embd + done * (size_t)m->n_embd : NULL,
            pos ? pos + done : NULL, outputs + done,
            ctx->hidden ? ctx->hidden + (size_t)next[1] * (size_t)m->n_embd : NULL,
            ctx->logits ? ctx->logits + (size_t)next[0] * (size_t)m->n_vocab : NULL,
            hmti_abort_fn_of(&ctx->abort), &ctx->abort);
        if (rc) return rc; /* n_past unchanged: the slots written are unused */
        map_outputs(ctx, done, done + chunk, outputs, next);
        done += chunk;
    }
    memcpy(ctx->n_past, ctx->cursor, (size_t)ctx->bb.n_seq * sizeof *ctx->n_past);
    ctx->n_rows = (int32_t)n;
    return HMT_OK;
}

static int ctx_eval_seqs(hmt_ctx *ctx, size_t n, const hmt_token *tokens, const float *embd,
                         const int32_t *seq, const int32_t *pos, const uint8_t *outputs) {
    if (ctx && !seq) return hmti_errf(HMT_E_INVAL, "hmt_ctx_eval_seqs: seq is NULL");
    return ctx_eval(ctx, n, tokens, embd, seq, pos, outputs);
}

static int ctx_eval_tokens(hmt_ctx *ctx, const hmt_token *tokens, size_t n, int all_logits) {
    if (!ctx) return hmti_errf(HMT_E_INVAL, "hmt_ctx_eval_tokens: ctx is NULL");
    if (n == 0)
        return hmti_errf(HMT_E_INVAL, "hmt_ctx_eval_tokens: no tokens to evaluate "
                                                "(n = 0); nothing was changed");
    if (!tokens) return hmti_errf(HMT_E_INVAL, "hmt_ctx_eval_tokens: tokens is NULL");
    if (!all_logits) return ctx_eval(ctx, n, tokens, NULL, NULL, NULL, NULL);
    int rc = reserve_outputs(ctx, n, 0, 0, 0);
    if (rc) return rc;
    memset(ctx->flags, HMT_OUT_LOGITS, n);
    return ctx_eval(ctx, n, tokens, NULL, NULL, NULL, ctx->flags);
}

static int32_t out_row(const hmt_ctx *ctx, const int32_t *map, int32_t i) {
    if (!ctx || ctx->n_rows == 0) return -1;
    if (i == -1) i = ctx->n_rows - 1;
    if (i < 0 || i >= ctx->n_rows) return -1;
    return map[i];
}

HMT_API const float *hmt_ctx_logits(const hmt_ctx *ctx, int32_t i) {
    int32_t r = out_row(ctx, ctx ? ctx->row_logits : NULL, i);
    return r < 0 ? NULL : ctx->logits + (size_t)r * (size_t)ctx->model->n_vocab;
}

HMT_API const float *hmt_ctx_hidden(const hmt_ctx *ctx, int32_t i) {
    int32_t r = out_row(ctx, ctx ? ctx->row_hidden : NULL, i);
    return r < 0 ? NULL : ctx->hidden + (size_t)r * (size_t)ctx->model->n_embd;
}

HMT_API const float *hmt_ctx_ffn_input(const hmt_ctx *ctx, int32_t i) {
    int32_t r = out_row(ctx, ctx ? ctx->row_ffn : NULL, i);
    return r < 0 ? NULL : ctx->ffn + (size_t)r * (size_t)ctx->model->n_embd;
}

static int ctx_kv_clear(hmt_ctx *ctx) {
    if (!ctx) return hmti_errf(HMT_E_INVAL, "hmt_ctx_kv_clear: ctx is NULL");
    memset(ctx->n_past, 0, (size_t)ctx->bb.n_seq * sizeof *ctx->n_past);
    ctx->n_rows = 0;
    return HMT_OK;
}

static int ctx_kv_rewind(hmt_ctx *ctx, int32_t n_keep) {
    if (!ctx) return hmti_errf(HMT_E_INVAL, "hmt_ctx_kv_rewind: ctx is NULL");
    if (n_keep < 0 || n_keep > ctx->n_past[0])
        return hmti_errf(HMT_E_INVAL, "hmt_ctx_kv_rewind: n_keep %d outside [0, %d]",
                                   n_keep, ctx->n_past[0]);
    ctx->n_past[0] = n_keep;
    ctx->n_rows = 0;
    return HMT_OK;
}

int hmti_ctx_check_seq(const hmt_ctx *ctx, int32_t seq, const char *fn, const char *what) {
    if (seq < 0 || seq >= ctx->bb.n_seq)
        return hmti_errf(HMT_E_INVAL, "%s: %s %d outside [0, %d) (HMT_P_N_SEQ)", fn, what, seq,
                         ctx->bb.n_seq);
    return HMT_OK;
}

/* The outputs of the last eval stay readable: other sequences' rows are
 * still what they were. */
static int ctx_seq_rewind(hmt_ctx *ctx, int32_t seq, int32_t n_keep) {
    if (!ctx) return hmti_errf(HMT_E_INVAL, "hmt_ctx_seq_rewind: ctx is NULL");
    int rc = hmti_ctx_check_seq(ctx, seq, "hmt_ctx_seq_rewind", "sequence");
    if (rc) return rc;
    if (n_keep < 0 || n_keep > ctx->n_past[seq])
        return hmti_errf(HMT_E_INVAL, "hmt_ctx_seq_rewind: n_keep %d outside [0, %d] "
                         "(sequence %d)", n_keep, ctx->n_past[seq], seq);
    ctx->n_past[seq] = n_keep;
    return HMT_OK;
}

static int ctx_seq_copy(hmt_ctx *ctx, int32_t src, int32_t dst) {
    if (!ctx) return hmti_errf(HMT_E_INVAL, "hmt_ctx_seq_copy: ctx is NULL");
    int rc = hmti_ctx_check_seq(ctx, src, "hmt_ctx_seq_copy", "source sequence");
    if (!rc) rc = hmti_ctx_check_seq(ctx, dst, "hmt_ctx_seq_copy", "destination sequence");
    if (rc) return rc;
    hmti_backbone_seq_copy(&ctx->bb, src, dst, ctx->n_past[src]);
    ctx->n_past[dst] = ctx->n_past[src];
    return HMT_OK;
}

static int ctx_set_abort_callback(hmt_ctx *ctx, hmt_abort_fn fn, void *user_data) {
    if (!ctx) return hmti_errf(HMT_E_INVAL, "hmt_ctx_set_abort_callback: ctx is NULL");
    ctx->abort.fn = fn;
    ctx->abort.data = user_data;
    return HMT_OK;
}

/* ---- public entry points: the handle guard (busy.h) around each call ---- */
#define GUARDED(fn, call) HMTI_GUARDED(ctx, HMTI_MAGIC_CTX, fn, call)

HMT_API int hmt_ctx_set_int(hmt_ctx *ctx, hmt_param key, int64_t value) {
    GUARDED("hmt_ctx_set_int", ctx_set_int(ctx, key, value));
}
HMT_API int hmt_ctx_attach_threadpool(hmt_ctx *ctx, hmt_threadpool *tp) {
    GUARDED("hmt_ctx_attach_threadpool", ctx_attach(ctx, tp));
}
HMT_API int hmt_ctx_eval(hmt_ctx *ctx, const hmt_token *tokens, const float *embd, size_t n,
                         const int32_t *pos, const uint8_t *outputs) {
    GUARDED("hmt_ctx_eval", ctx_eval(ctx, n, tokens, embd, NULL, pos, outputs));
}
HMT_API int hmt_ctx_eval_seqs(hmt_ctx *ctx, const hmt_token *tokens, const float *embd,
                              const int32_t *seq, size_t n, const int32_t *pos,
                              const uint8_t *outputs) {
    GUARDED("hmt_ctx_eval_seqs", ctx_eval_seqs(ctx, n, tokens, embd, seq, pos, outputs));
}
HMT_API int hmt_ctx_seq_rewind(hmt_ctx *ctx, int32_t seq, int32_t n_keep) {
    GUARDED("hmt_ctx_seq_rewind", ctx_seq_rewind(ctx, seq, n_keep));
}
HMT_API int hmt_ctx_seq_copy(hmt_ctx *ctx, int32_t src, int32_t dst) {
    GUARDED("hmt_ctx_seq_copy", ctx_seq_copy(ctx, src, dst));
}
HMT_API int hmt_ctx_eval_tokens(hmt_ctx *ctx, const hmt_token *tokens, size_t n, int all_logits) {
    GUARDED("hmt_ctx_eval_tokens", ctx_eval_tokens(ctx, tokens, n, all_logits));
}
HMT_API int hmt_ctx_kv_clear(hmt_ctx *ctx) { GUARDED("hmt_ctx_kv_clear", ctx_kv_clear(ctx)); }
HMT_API int hmt_ctx_kv_rewind(hmt_ctx *ctx, int32_t n_keep) {
    GUARDED("hmt_ctx_kv_rewind", ctx_kv_rewind(ctx, n_keep));
}
HMT_API int hmt_ctx_set_abort_callback(hmt_ctx *ctx, hmt_abort_fn fn, void *user_data) {
    GUARDED("hmt_ctx_set_abort_callback", ctx_set_abort_callback(ctx, fn, user_data));
}

int hmti_abort_poll(void *abort) {
    const hmti_abort *a = abort;
    return (a->fn && a->fn(a->data)) || (a->extra_fn && a->extra_fn(a->extra_data));
}

void hmti_ctx_set_extra_abort(hmt_ctx *ctx, hmt_abort_fn fn, void *data) {
    ctx->abort.extra_fn = fn;
    ctx->abort.extra_data = data;
}

/* ---- for lib/backbone/ctx_state.c (ctx_state.h) ---- */
hmti_guard *hmti_ctx_guard(hmt_ctx *ctx) { return HMTI_GUARD(ctx); }
hmti_backbone *hmti_ctx_backbone(hmt_ctx *ctx) { return &ctx->bb; }
int32_t hmti_ctx_n_rows(const hmt_ctx *ctx) { return ctx->n_rows; }

int hmti_ctx_set_outputs(hmt_ctx *ctx, int32_t n_past, int32_t n_rows, const uint8_t *flags) {
    int rc = reserve_flagged(ctx, (size_t)n_rows, flags);
    if (rc) return rc;
    int32_t next[3] = {0, 0, 0};
    map_outputs(ctx, 0, (size_t)n_rows, flags, next);
    ctx->n_past[0] = n_past;
    ctx->n_rows = n_rows;
    return HMT_OK;
}

void hmti_ctx_set_seq_n_past(hmt_ctx *ctx, int32_t seq, int32_t n_past) {
    ctx->n_past[seq] = n_past;
}
