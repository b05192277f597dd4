/* hmt_streams_feed: one token for each of several streams, the decode steps
 * among them in one pass over the weights (docs/HMT.md "Several streams").
 * A stream whose token is one backbone row at its next slot (inside an
 * open segment, or a window or sink cache with room) joins a batched pass
 * with the other such streams of the same shape; a token that opens or
 * needs more (a segment's prompt and prefix, a window refill, a sink
 * shift) is fed to its stream alone, exactly as hmt_stream_feed would. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "stream/stream.h"

#define FN "hmt_streams_feed"
enum { MAX_STREAMS = 256 };

static atomic_llong rows_batched; /* test hook: hmti_streams_rows_batched */

long long hmti_streams_rows_batched(void) { return atomic_load(&rows_batched); }

/* Streams whose steps can share a pass with lead's: the same cache shape
 * and arithmetic. */
static int same_pass(const hmt_stream *lead, const hmt_stream *s) {
    return s->bb.n_ctx == lead->bb.n_ctx && s->bb.kv_type == lead->bb.kv_type &&
           s->bb.compute == lead->bb.compute;
}

/* Every check before anything changes: arguments, handles (entered, so no
 * other thread uses them meanwhile), one model, tokens in range. On failure
 * the entered guards are left again. */
static int enter_all(hmt_stream *const *st, int32_t n, const hmt_token *tokens) {
    if (!st || !tokens) return hmti_errf(HMT_E_INVAL, FN ": %s is NULL", !st ? "streams" : "tokens");
    if (n < 1 || n > MAX_STREAMS)
        return hmti_errf(HMT_E_INVAL, FN ": n is %d, not in [1, %d]", (int)n, MAX_STREAMS);
    for (int32_t i = 0; i < n; i++) {
        if (!st[i]) return hmti_errf(HMT_E_INVAL, FN ": stream %d is NULL", (int)i);
        for (int32_t j = 0; j < i; j++)
            if (st[j] == st[i])
                return hmti_errf(HMT_E_INVAL, FN ": streams %d and %d are the same stream", (int)j,
                                 (int)i);
    }
    int32_t entered = 0, rc = HMT_OK;
    for (; entered < n && !rc; entered++) {
        rc = hmti_enter(HMTI_GUARD(st[entered]), HMTI_MAGIC_STREAM, FN);
        if (rc) break;
    }
    for (int32_t i = 0; !rc && i < n; i++) {
        const hmt_stream *s = st[i];
        if (s->model != st[0]->model)
            rc = hmti_errf(HMT_E_INVAL, FN ": stream %d runs another model than stream 0", (int)i);
        else if (s->broken)
            rc = hmti_errf(HMT_E_MISUSE, FN ": stream %d: an earlier failure left it unusable; "
                           "restore a snapshot or free it", (int)i);
        else if (tokens[i] < 0 || tokens[i] >= s->model->n_vocab)
            rc = hmti_errf(HMT_E_TOKEN, FN ": token %d (%d) outside [0, %d)", (int)i, tokens[i],
                           s->model->n_vocab);
    }
    if (rc)
        for (int32_t i = 0; i < entered; i++) hmti_leave(HMTI_GUARD(st[i]));
    return rc;
}

typedef struct {
    hmti_backbone *bb[HMTI_BATCH_DECODE_ROWS];
    hmt_stream *s[HMTI_BATCH_DECODE_ROWS];
    int32_t slot[HMTI_BATCH_DECODE_ROWS];
    hmt_token tok[HMTI_BATCH_DECODE_ROWS];
    uint8_t outs[HMTI_BATCH_DECODE_ROWS];
    int32_t n;
} pass;

/* Room in the lead stream for a pass's outputs: n rows of logits, then n
 * of FFN inputs (kept across calls: a step allocates nothing). */
static int reserve_pass(hmt_stream *lead, int32_t n) {
    const size_t need = (size_t)n * ((size_t)lead->model->n_vocab + (size_t)lead->d);
    if (need <= lead->pass_cap) return HMT_OK;
    float *b = hmti_malloc(need * sizeof *b);
    if (!b) return hmti_errf(HMT_E_NOMEM, FN ": out of memory");
    free(lead->pass_buf);
    lead->pass_buf = b;
    lead->pass_cap = need;
    return HMT_OK;
}

/* One batched pass over the group's rows, then each stream records its
 * token. A failure of the pass changes no stream (its rows went to cache
 * slots past each one's fill). */
static int run_pass(pass *p) {
    hmt_stream *lead = p->s[0];
    const size_t nv = (size_t)lead->model->n_vocab, d = (size_t)lead->d;
    int rc = reserve_pass(lead, p->n);
    for (int32_t i = 0; !rc && i < p->n; i++) {
        rc = hmti_stream_step_reserve(p->s[i]);
        p->outs[i] = (uint8_t)(HMT_OUT_LOGITS | (p->s[i]->keep_ffn ? HMT_OUT_FFN_INPUT : 0));
    }
    if (rc) return rc;
    float *logits = lead->pass_buf, *ffn_rows = logits + (size_t)p->n * nv;
    /* FFN-input rows are written consecutively for the rows that want them */
    lead->bb.ffn_in_out = ffn_rows;
    rc = hmti_backbone_forward_peers(&lead->bb, p->bb, p->n, p->slot, p->tok, p->outs, logits,
                                     hmti_abort_fn_of(&lead->abort), &lead->abort);
    lead->bb.ffn_in_out = NULL;
    if (rc) return rc;
    if (p->n > 1) atomic_fetch_add(&rows_batched, p->n);
    const float *ffn = ffn_rows;
    for (int32_t i = 0; i < p->n; i++) {
        rc = hmti_stream_step_done(p->s[i], p->tok[i], logits + (size_t)i * nv, ffn);
        if (p->s[i]->keep_ffn) ffn += d;
        if (rc) return rc;
    }
    return HMT_OK;
}

/* Say which stream failed, keeping its message. */
static int failed(int rc, int32_t i) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hmt_last_error_msg());
    return hmti_errf(rc, FN ": stream %d: %s", (int)i, msg);
}

static int feed_all(hmt_stream *const *st, int32_t n, const hmt_token *tokens) {
    uint8_t done[MAX_STREAMS] = {0};
    pass pass_, *p = &pass_;
    int rc = HMT_OK;
    /* batched passes: the one-row steps, grouped with the first such stream
     * left, at most HMTI_BATCH_DECODE_ROWS (and its n_batch) at a time */
    for (int32_t lead = 0; !rc && lead < n; lead++) {
        if (done[lead] || hmti_stream_step_slot(st[lead]) < 0) continue;
        const int32_t cap = st[lead]->bb.n_batch < HMTI_BATCH_DECODE_ROWS ? st[lead]->bb.n_batch
                                                                           : HMTI_BATCH_DECODE_ROWS;
        p->n = 0;
        for (int32_t i = lead; i < n && p->n < cap; i++) {
            const int32_t slot = done[i] ? -1 : hmti_stream_step_slot(st[i]);
            if (slot < 0 || !same_pass(st[lead], st[i])) continue;
            p->s[p->n] = st[i], p->bb[p->n] = &st[i]->bb;
            p->slot[p->n] = slot, p->tok[p->n] = tokens[i];
            p->n++;
            done[i] = 1;
        }
        rc = run_pass(p);
        if (rc) rc = failed(rc, lead);
    }
    /* the rest alone */
    for (int32_t i = 0; !rc && i < n; i++)
        if (!done[i]) {
            rc = hmti_stream_feed(st[i], tokens + i, 1);
            if (rc) rc = failed(rc, i);
        }
    return rc;
}

HMT_API int hmt_streams_feed(hmt_stream *const *streams, int32_t n, const hmt_token *tokens) {
    int rc = enter_all(streams, n, tokens);
    if (rc) return rc;
    rc = feed_all(streams, n, tokens);
    for (int32_t i = 0; i < n; i++) hmti_leave(HMTI_GUARD(streams[i]));
    return rc;
}
