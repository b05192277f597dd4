/* The HMT engine (docs/HMT.md): tokens are fed in any chunks; segments are
 * cut every L tokens; each segment gets its memorization prompt P (recalled,
 * passed, or none, by mode), its main pass runs incrementally on one KV
 * cache, and a closed segment's memory M is pushed into the FIFO cache. */
#include <stdlib.h>
#include <string.h>

#include "backbone/kv_shift.h"
#include "core/alloc.h"
#include "core/params.h"
#include "stream/recall.h"
#include "stream/stream.h"

/* ---- backbone helpers ---------------------------------------------------- */

/* Evaluate n rows (tokens or embeddings) at the next slots, splitting by
 * n_batch. Rows flagged in outs write consecutive logits / hidden rows. */
static int eval_rows(hmt_stream *s, int32_t *kv_n, int32_t n, const hmt_token *tok,
                     const float *embd, const uint8_t *outs, float *logits, float *hidden) {
    const hmt_model *m = s->model;
    for (int32_t done = 0; done < n;) {
        int32_t c = n - done < s->bb.n_batch ? n - done : s->bb.n_batch;
        const uint8_t *o = outs + done;
        int rc = hmti_backbone_forward(&s->bb, *kv_n, c, tok ? tok + done : NULL,
                                       embd ? embd + (size_t)done * m->n_embd : NULL, NULL, o,
                                       hidden, logits, hmti_abort_fn_of(&s->abort), &s->abort);
        if (rc) return rc;
        for (int32_t i = 0; i < c; i++) {
            if (o[i] & HMT_OUT_LOGITS) logits += m->n_vocab;
            if (o[i] & HMT_OUT_HIDDEN) hidden += m->n_embd;
        }
        *kv_n += c;
        done += c;
    }
    return HMT_OK;
}

/* One embedding row, optionally returning its final hidden state. */
static int eval_embd(hmt_stream *s, int32_t *kv_n, const float *v, float *hidden) {
    uint8_t o = hidden ? HMT_OUT_HIDDEN : 0;
    return eval_rows(s, kv_n, 1, NULL, v, &o, NULL, hidden);
}

/* Token rows without outputs (sensory tokens, summary prefix, window refill). */
static int eval_silent(hmt_stream *s, int32_t *kv_n, int32_t n, const hmt_token *tok) {
    if (n <= 0) return HMT_OK;
    for (int32_t done = 0; done < n; done += s->bb.n_batch) {
        int32_t c = n - done < s->bb.n_batch ? n - done : s->bb.n_batch;
        memset(s->flags, 0, (size_t)c);
        int rc = eval_rows(s, kv_n, c, tok + done, NULL, s->flags, NULL, NULL);
        if (rc) return rc;
    }
    return HMT_OK;
}

/* ---- outputs ------------------------------------------------------------- */

/* Outgrown blocks are retired, not freed (lib/core/outbuf.h): logits pointers
 * handed out stay readable until the stream is freed. */
static int reserve(hmt_stream *s, float **buf, size_t *cap, size_t rows, size_t width) {
    return hmti_outbuf_reserve(&s->retired, buf, cap, rows, width);
}

/* Evaluate n token rows as the next ready tokens of the stream, keeping
 * their logits (all of them, or only the last with all_logits = 0). */
static int eval_ready(hmt_stream *s, int32_t *kv_n, int32_t n, const hmt_token *tok) {
    for (int32_t done = 0; done < n;) {
        int32_t c = n - done < s->bb.n_batch ? n - done : s->bb.n_batch;
        size_t row = s->all_logits ? (size_t)(s->n_ready - s->ready_first) : 0;
        const uint8_t want = (uint8_t)(HMT_OUT_LOGITS | (s->keep_ffn ? HMT_OUT_FFN_INPUT : 0));
        int rc = reserve(s, &s->logits, &s->logits_cap, row + (size_t)c, (size_t)s->model->n_vocab);
        if (!rc && s->keep_ffn) rc = reserve(s, &s->ffn, &s->ffn_cap, row + (size_t)c, (size_t)s->d);
        if (rc) return rc;
        memset(s->flags, s->all_logits ? want : 0, (size_t)c);
        s->flags[c - 1] = want;
        s->bb.ffn_in_out = s->keep_ffn ? s->ffn + row * (size_t)s->d : NULL;
        rc = eval_rows(s, kv_n, c, tok + done, NULL, s->flags,
                       s->logits + row * (size_t)s->model->n_vocab, NULL);
        if (rc) return rc;
        s->n_ready += c;
        done += c;
    }
    return HMT_OK;
}

/* ---- segments -------------------------------------------------------------- */

/* Summary pass [T, tok[0..n), T] → S. */
static int summarize(hmt_stream *s, const hmt_token *tok, int32_t n) {
    int32_t kv = 0;
    int rc = eval_embd(s, &kv, s->ad->summary_prompt, NULL);
    if (!rc) rc = eval_silent(s, &kv, n, tok);
    if (!rc) rc = eval_embd(s, &kv, s->ad->summary_prompt, s->s);
    return rc;
}

/* P of the open segment from S (full mode), or by mode. */
static void choose_p(hmt_stream *s, int have_s) {
    s->rn = 0;
    if (s->mode == HMT_MODE_FULL && have_s && s->fill > 0) {
        hmti_recall(s->ad, s->bf16, s->s, s->keys, s->mem, s->fill, s->rw, s->p, s->q);
        s->rn = s->fill;
        memcpy(s->rseg, s->mem_seg, (size_t)s->fill * sizeof *s->rseg);
        if (s->recall_fn) s->recall_fn(s->recall_data, s->seg_index, s->rw, s->rseg, s->rn);
    } else if (s->mode == HMT_MODE_RMT && s->has_last_m) {
        memcpy(s->p, s->last_m, (size_t)s->d * sizeof(float));
    } else if (s->ad) {
        memcpy(s->p, s->ad->memory_init, (size_t)s->d * sizeof(float));
    }
    s->p_known = 1;
}

/* Sinks of a segment pass (HMT_P_SEGMENT_SINKS): from the second segment on,
 * the first segment's first seg_sinks ids. */
static int32_t sinks_of(const hmt_stream *s) { return s->seg_index > 0 ? s->seg_sinks : 0; }

static int32_t kv_n_of(const hmt_stream *s) {
    return sinks_of(s) + (s->mode == HMT_MODE_SEGMENTS ? 0 : 1 + s->sens_len) + s->seg_eval;
}

/* Close a complete segment: trailing P → M, push, roll the sensory memory. */
static int close_segment(hmt_stream *s) {
    int32_t kv = kv_n_of(s);
    int have_m = s->mode == HMT_MODE_FULL || s->mode == HMT_MODE_RMT;
    if (have_m) {
        int rc = eval_embd(s, &kv, s->p, s->hidden);
        if (rc) return rc;
    }
    if (s->hook)
        s->hook(s->hook_data, s->seg_index, s->mode == HMT_MODE_FULL && s->seg_index > 0 ? s->s : NULL,
                have_m ? s->p : NULL, have_m ? s->hidden : NULL);
    if (s->mode == HMT_MODE_FULL) {
        if (s->fill == s->N) { /* FIFO: drop the oldest */
            memmove(s->mem, s->mem + s->d, (size_t)(s->N - 1) * s->d * sizeof(float));
            memmove(s->keys, s->keys + s->ad->d_h, (size_t)(s->N - 1) * s->ad->d_h * sizeof(float));
            memmove(s->mem_seg, s->mem_seg + 1, (size_t)(s->N - 1) * sizeof *s->mem_seg);
            s->fill--;
        }
        hmti_recall_key(s->ad, s->bf16, s->hidden, s->keys + (size_t)s->fill * s->ad->d_h,
                        s->mem + (size_t)s->fill * s->d);
        s->mem_seg[s->fill++] = s->seg_index;
    } else if (s->mode == HMT_MODE_RMT) {
        memcpy(s->last_m, s->hidden, (size_t)s->d * sizeof(float));
        s->has_last_m = 1;
    }
    /* roll: sensory = last k ids, previous segment = this one */
    if (s->mode != HMT_MODE_SEGMENTS) {
        s->sens_len = s->seg_len < s->k ? s->seg_len : s->k;
        memcpy(s->sens, s->seg_tok + s->seg_len - s->sens_len, (size_t)s->sens_len * sizeof *s->sens);
    }
    memcpy(s->prev_tok, s->seg_tok, (size_t)s->seg_len * sizeof *s->prev_tok);
    s->prev_len = s->seg_len;
    if (s->seg_index == 0) /* closed, so seg_len = L >= seg_sinks */
        memcpy(s->sink_tok, s->seg_tok, (size_t)s->seg_sinks * sizeof *s->sink_tok);
    s->seg_index++;
    s->seg_len = s->seg_eval = 0;
    s->p_known = s->prefix_done = 0;
    s->rn = 0;
    return HMT_OK;
}

/* Evaluate whatever the open segment allows; close it when complete. */
static int advance(hmt_stream *s, int flushing) {
    for (;;) {
        if (s->seg_len == 0) return HMT_OK;
        if (!s->p_known) {
            const int needs_query = s->mode == HMT_MODE_FULL && s->seg_index > 0;
            if (needs_query && s->lookahead) { /* its own first j tokens */
                int32_t jn = s->seg_len < s->j ? s->seg_len : s->j;
                if (s->seg_len < s->j && s->seg_len < s->L && !flushing) return HMT_OK;
                int rc = summarize(s, s->seg_tok, jn);
                if (rc) return rc;
            } else if (needs_query) { /* causal: the closed segment's start */
                int32_t jn = s->prev_len < s->j_gen ? s->prev_len : s->j_gen;
                int rc = summarize(s, s->prev_tok, jn);
                if (rc) return rc;
            }
            choose_p(s, needs_query);
        }
        int32_t kv = kv_n_of(s);
        if (!s->prefix_done) {
            kv = 0;
            int rc = eval_silent(s, &kv, sinks_of(s), s->sink_tok);
            if (rc) return rc;
            if (s->mode != HMT_MODE_SEGMENTS) {
                rc = eval_embd(s, &kv, s->p, NULL);
                if (!rc) rc = eval_silent(s, &kv, s->sens_len, s->sens);
                if (rc) return rc;
            }
            s->prefix_done = 1;
        }
        if (s->seg_eval < s->seg_len) {
            int rc = eval_ready(s, &kv, s->seg_len - s->seg_eval, s->seg_tok + s->seg_eval);
            if (rc) return rc;
            s->seg_eval = s->seg_len;
        }
        if (s->seg_len < s->L) return HMT_OK;
        int rc = close_segment(s);
        if (rc) return rc;
    }
}

/* Window mode: each token sees up to W-1 predecessors; a full cache keeps
 * its last W/2 tokens, re-evaluated from position 0. */
static int feed_window(hmt_stream *s, const hmt_token *tok, size_t n) {
    size_t done = 0;
    while (done < n) {
        int32_t kv = (int32_t)(s->n_fed - s->win_base);
        if (kv == s->W) {
            const int32_t keep = s->W / 2;
            hmt_token *tmp = s->seg_tok; /* scratch of W ids */
            for (int32_t i = 0; i < keep; i++)
                tmp[i] = s->win[(s->n_fed - keep + i) % s->W];
            kv = 0;
            int rc = eval_silent(s, &kv, keep, tmp);
            if (rc) return rc;
            s->win_base = s->n_fed - keep;
        }
        size_t c = n - done;
        if (c > (size_t)(s->W - kv)) c = (size_t)(s->W - kv);
        for (size_t i = 0; i < c; i++) s->win[(s->n_fed + (int64_t)i) % s->W] = tok[done + i];
        int rc = eval_ready(s, &kv, (int32_t)c, tok + done);
        if (rc) return rc;
        s->n_fed += (int64_t)c;
        done += c;
    }
    return HMT_OK;
}

/* Sinks mode (StreamingLLM): the cache holds the first n_sinks tokens and
 * the most recent ones, each at the position of its slot. A full cache drops
 * the oldest half (rounded up) of its R = W - n_sinks recent slots; the later
 * slots move down with their keys turned back by as many positions
 * (kv_shift.c), so nothing is re-evaluated and the shift costs one pass over
 * the cache per ceil(R/2) tokens. A token sees the sinks and between
 * R - ceil(R/2) and R - 1 recent predecessors. */
static int feed_sinks(hmt_stream *s, const hmt_token *tok, size_t n) {
    size_t done = 0;
    while (done < n) {
        int32_t kv = (int32_t)(s->n_fed - s->win_base);
        if (kv == s->W) {
            const int32_t drop = (s->W - s->n_sinks + 1) / 2;
            hmti_kv_drop(&s->bb, s->n_sinks, drop, kv);
            s->win_base += drop;
            kv -= drop;
        }
        size_t c = n - done;
        if (c > (size_t)(s->W - kv)) c = (size_t)(s->W - kv);
        int rc = eval_ready(s, &kv, (int32_t)c, tok + done);
        if (rc) return rc;
        s->n_fed += (int64_t)c;
        done += c;
    }
    return HMT_OK;
}

/* The outputs a call leaves readable: the tokens it made ready, or, when it
 * made none ready (pending under lookahead, an empty flush), those of the
 * previous call, which nothing has overwritten. */
static void finish_call(hmt_stream *s, int64_t first, int64_t prev_first) {
    if (s->n_ready == first)
        s->ready_first = prev_first;
    else
        s->ready_first = s->all_logits ? first : s->n_ready - 1;
}

/* ---- one-token steps of several streams (streams_feed.c) ------------------- */

int32_t hmti_stream_step_slot(const hmt_stream *s) {
    if (s->broken) return -1;
    if (!hmti_mode_segmented(s->mode)) {
        const int64_t kv = s->n_fed - s->win_base; /* a full cache refills or shifts first */
        return kv < s->W ? (int32_t)kv : -1;
    }
    /* the open segment's prompt and prefix are in the cache and every token
     * fed so far is evaluated: the next one is one row */
    if (s->seg_len == 0 || !s->p_known || !s->prefix_done || s->seg_eval != s->seg_len)
        return -1;
    return kv_n_of(s);
}

int hmti_stream_step_reserve(hmt_stream *s) {
    int rc = reserve(s, &s->logits, &s->logits_cap, 1, (size_t)s->model->n_vocab);
    if (!rc && s->keep_ffn) rc = reserve(s, &s->ffn, &s->ffn_cap, 1, (size_t)s->d);
    return rc;
}

int hmti_stream_step_done(hmt_stream *s, hmt_token tok, const float *logits, const float *ffn) {
    const int64_t first = s->n_ready, prev_first = s->ready_first;
    memcpy(s->logits, logits, (size_t)s->model->n_vocab * sizeof *logits);
    if (s->keep_ffn) memcpy(s->ffn, ffn, (size_t)s->d * sizeof *ffn);
    if (s->mode == HMT_MODE_WINDOW) s->win[s->n_fed % s->W] = tok;
    if (hmti_mode_segmented(s->mode)) {
        s->seg_tok[s->seg_len++] = tok;
        s->seg_eval++;
    }
    s->n_fed++;
    s->n_ready++;
    if (hmti_mode_segmented(s->mode) && s->seg_len == s->L) {
        int rc = close_segment(s);
        if (rc) {
            s->broken = 1;
            return rc;
        }
    }
    finish_call(s, first, prev_first);
    return HMT_OK;
}

/* ---- public API ------------------------------------------------------------ */

int hmti_stream_feed(hmt_stream *s, const hmt_token *tokens, size_t n) {
    if (!s) return hmti_errf(HMT_E_INVAL, "hmt_stream_feed: stream is NULL");
    if (s->broken)
        return hmti_errf(HMT_E_MISUSE, "hmt_stream_feed: an earlier failure left the "
                                               "stream unusable; restore a snapshot or free it");
    if (!tokens && n) return hmti_errf(HMT_E_INVAL, "hmt_stream_feed: tokens is NULL");
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= s->model->n_vocab)
            return hmti_errf(HMT_E_TOKEN, "hmt_stream_feed: token %zu (%d) outside [0, %d)",
                                     i, tokens[i], s->model->n_vocab);
    const int64_t first = s->n_ready, prev_first = s->ready_first;
    s->ready_first = first;
    int rc = HMT_OK;
    if (s->mode == HMT_MODE_WINDOW) {
        rc = feed_window(s, tokens, n);
    } else if (s->mode == HMT_MODE_SINKS) {
        rc = feed_sinks(s, tokens, n);
    } else {
        size_t done = 0;
        while (!rc && done < n) {
            size_t c = n - done;
            if (c > (size_t)(s->L - s->seg_len)) c = (size_t)(s->L - s->seg_len);
            memcpy(s->seg_tok + s->seg_len, tokens + done, c * sizeof *tokens);
            s->seg_len += (int32_t)c;
            s->n_fed += (int64_t)c;
            done += c;
            rc = advance(s, 0);
        }
    }
    if (rc) {
        s->broken = 1;
        return rc;
    }
    finish_call(s, first, prev_first);
    return HMT_OK;
}

static int stream_flush(hmt_stream *s) {
    if (!s) return hmti_errf(HMT_E_INVAL, "hmt_stream_flush: stream is NULL");
    if (s->broken)
        return hmti_errf(HMT_E_MISUSE, "hmt_stream_flush: an earlier failure left the "
                                               "stream unusable; restore a snapshot or free it");
    const int64_t first = s->n_ready, prev_first = s->ready_first;
    s->ready_first = first;
    int rc = hmti_mode_segmented(s->mode) ? advance(s, 1) : HMT_OK;
    if (rc) {
        s->broken = 1;
        return rc;
    }
    finish_call(s, first, prev_first);
    return HMT_OK;
}

HMT_API const hmt_model *hmt_stream_model(const hmt_stream *s) { return s ? s->model : NULL; }
HMT_API int64_t hmt_stream_n_fed(const hmt_stream *s) { return s ? s->n_fed : 0; }
HMT_API int64_t hmt_stream_n_ready(const hmt_stream *s) { return s ? s->n_ready : 0; }

HMT_API void hmt_stream_ready_range(const hmt_stream *s, int64_t *first, int64_t *end) {
    if (first) *first = s ? s->ready_first : 0;
    if (end) *end = s ? s->n_ready : 0;
}

HMT_API const float *hmt_stream_logits(const hmt_stream *s, int64_t index) {
    if (!s || index < s->ready_first || index >= s->n_ready) return NULL;
    const size_t row = s->all_logits ? (size_t)(index - s->ready_first) : 0;
    return s->logits + row * (size_t)s->model->n_vocab;
}

HMT_API const float *hmt_stream_ffn_input(const hmt_stream *s, int64_t index) {
    if (!s || !s->keep_ffn || !s->ffn || index < s->ready_first || index >= s->n_ready) return NULL;
    const size_t row = s->all_logits ? (size_t)(index - s->ready_first) : 0;
    return s->ffn + row * (size_t)s->d;
}

HMT_API int64_t hmt_stream_n_segments(const hmt_stream *s) {
    if (!s || !hmti_mode_segmented(s->mode)) return 0;
    return s->seg_index + (s->seg_len > 0 ? 1 : 0);
}

HMT_API int32_t hmt_stream_cache_fill(const hmt_stream *s) { return s ? s->fill : 0; }

HMT_API int hmt_stream_recall(const hmt_stream *s, float *weights, int64_t *segments, size_t cap,
                              size_t *n_out) {
    if (hmti_guard_check(HMTI_GUARD(s), HMTI_MAGIC_STREAM, "hmt_stream_recall")) return HMT_E_MISUSE;
    if (!s || !n_out || ((!weights || !segments) && cap))
        return hmti_errf(HMT_E_INVAL, "hmt_stream_recall: %s is NULL", !s ? "stream"
                         : !n_out ? "n_out" : "weights or segments (with cap > 0)");
    *n_out = (size_t)s->rn;
    if (cap < (size_t)s->rn)
        return hmti_errf(HMT_E_BUFFER, "hmt_stream_recall: need room for %d",
                                               s->rn);
    if (s->rn) {
        memcpy(weights, s->rw, (size_t)s->rn * sizeof *weights);
        memcpy(segments, s->rseg, (size_t)s->rn * sizeof *segments);
    }
    return HMT_OK;
}

static int stream_set_recall_callback(hmt_stream *s, hmt_recall_fn fn, void *user_data) {
    if (!s) return hmti_errf(HMT_E_INVAL, "hmt_stream_set_recall_callback: stream is NULL");
    s->recall_fn = fn;
    s->recall_data = user_data;
    return HMT_OK;
}

HMT_API int hmt_stream_set_abort_callback(hmt_stream *s, hmt_abort_fn fn, void *user_data) {
    if (!s) return hmti_errf(HMT_E_INVAL, "hmt_stream_set_abort_callback: stream is NULL");
    s->abort.fn = fn;
    s->abort.data = user_data;
    return HMT_OK;
}

void hmti_stream_set_extra_abort(hmt_stream *s, hmt_abort_fn fn, void *data) {
    s->abort.extra_fn = fn;
    s->abort.extra_data = data;
}



static int stream_set_int(hmt_stream *s, hmt_param key, int64_t value) {
    if (!s) return hmti_errf(HMT_E_INVAL, "hmt_stream_set_int: stream is NULL");
    int rc = hmti_param_check(key, (double)value, 1);
    if (rc) return rc;
    switch (key) {
    case HMT_P_LOOKAHEAD:
        /* The rule applies to segments whose first token arrives from now on;
         * a segment whose P is pending under lookahead must be flushed first. */
        if (!value && s->lookahead && s->seg_len > 0 && !s->p_known)
            return hmti_errf(HMT_E_MISUSE, "hmt_stream_set_int: flush before switching "
                                                   "to the causal rule");
        s->lookahead = (int)value;
        return HMT_OK;
    case HMT_P_ALL_LOGITS: s->all_logits = (int)value; return HMT_OK;
    case HMT_P_KEEP_FFN_INPUT: s->keep_ffn = (int)value; return HMT_OK;
    case HMT_P_N_THREADS:
        rc = hmti_backbone_set_threads(&s->bb, value);
        return rc ? rc : HMT_OK;
    case HMT_P_COMPUTE_TYPE:
        rc = hmti_backbone_set_compute(&s->bb, (int)value);
        return rc ? rc : HMT_OK;
    default:
        return hmti_errf(HMT_E_INVAL, "hmt_stream_set_int: %s (key %d) cannot change on a "
                         "live stream (runtime keys: lookahead, all_logits, keep_ffn_input, "
                         "n_threads, compute_type)", hmti_param_name(key), (int)key);
    }
}

HMT_API int hmt_stream_get(const hmt_stream *s, hmt_param key, double *out) {
    if (hmti_guard_check(HMTI_GUARD(s), HMTI_MAGIC_STREAM, "hmt_stream_get")) return HMT_E_MISUSE;
    if (!s || !out) return hmti_errf(HMT_E_INVAL, "hmt_stream_get: %s is NULL", !s ? "stream" : "out");
    switch ((int)key) { /* int: experimental keys are outside the enum */
    case HMT_P_MODE: *out = s->mode; break;
    case HMT_P_LOOKAHEAD: *out = s->lookahead; break;
    case HMT_P_ALL_LOGITS: *out = s->all_logits; break;
    case HMT_P_KEEP_FFN_INPUT: *out = s->keep_ffn; break;
    case HMT_P_SEGMENT_LENGTH: *out = s->L; break;
    case HMT_P_SENSORY_LENGTH: *out = s->k; break;
    case HMT_P_CACHE_SIZE: *out = s->N; break;
    case HMT_P_RECALL_BF16: *out = s->bf16; break;
    case HMT_P_SEGMENT_SINKS: *out = s->seg_sinks; break;
    case HMT_P_SUMMARY_LENGTH: *out = s->j; break;
    case HMT_P_GEN_SUMMARY_LENGTH: *out = s->j_gen; break;
    case HMT_P_RECALL_DIM: *out = s->ad ? s->ad->d_h : 0; break;
    case HMT_P_WINDOW:
        if (hmti_mode_segmented(s->mode))
            return hmti_errf(HMT_E_INVAL, "hmt_stream_get: window is a key of HMT_MODE_WINDOW "
                             "and HMT_MODE_SINKS streams only");
        *out = s->W;
        break;
    case HMT_P_SINKS:
        if (s->mode != HMT_MODE_SINKS)
            return hmti_errf(HMT_E_INVAL, "hmt_stream_get: sinks is a key of HMT_MODE_SINKS "
                             "streams only");
        *out = s->n_sinks;
        break;
    case HMT_P_N_BATCH: *out = s->bb.n_batch; break;
    case HMT_P_KV_TYPE: *out = s->bb.kv_type; break;
    case HMT_P_N_THREADS: *out = s->bb.n_threads; break;
    case HMT_P_COMPUTE_TYPE: *out = s->bb.compute; break;
    default:
        return hmti_errf(HMT_E_INVAL, "hmt_stream_get: %s (key %d) is not a stream key",
                         hmti_param_name(key), (int)key);
    }
    return HMT_OK;
}

/* ---- public entry points: the handle guard (busy.h) around each call ---- */
#define GUARDED(fn, call) HMTI_GUARDED(s, HMTI_MAGIC_STREAM, fn, call)

HMT_API int hmt_stream_feed(hmt_stream *s, const hmt_token *tokens, size_t n) {
    GUARDED("hmt_stream_feed", hmti_stream_feed(s, tokens, n));
}
HMT_API int hmt_stream_flush(hmt_stream *s) { GUARDED("hmt_stream_flush", stream_flush(s)); }
static int stream_attach(hmt_stream *s, hmt_threadpool *tp) {
    if (!s) return hmti_errf(HMT_E_INVAL, "hmt_stream_attach_threadpool: stream is NULL");
    if (hmti_pool_check(tp, "hmt_stream_attach_threadpool")) return HMT_E_MISUSE;
    if (tp) return hmti_backbone_attach(&s->bb, tp);
    return hmti_backbone_set_threads(&s->bb, HMT_AUTO);
}

HMT_API int hmt_stream_attach_threadpool(hmt_stream *s, hmt_threadpool *tp) {
    GUARDED("hmt_stream_attach_threadpool", stream_attach(s, tp));
}

HMT_API int hmt_stream_set_int(hmt_stream *s, hmt_param key, int64_t value) {
    GUARDED("hmt_stream_set_int", stream_set_int(s, key, value));
}
HMT_API int hmt_stream_set_recall_callback(hmt_stream *s, hmt_recall_fn fn, void *user_data) {
    GUARDED("hmt_stream_set_recall_callback", stream_set_recall_callback(s, fn, user_data));
}
