/* Samplers (include/hmt/sampler.h): processors run in order on a copy of the
 * logits, the result is checked and log-softmaxed (in double), then the draw
 * (draw.c) picks a token and every processor accepts it. The final
 * distribution is kept until the next apply so that accept can tell
 * built-ins the accepted token's final probability (DITTO's relative mode
 * records it). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/busy.h"
#include "core/error.h"
#include "core/params.h"
#include "hooks/draw.h"
#include "hooks/proc.h"
#include "kernels/kernels.h"

struct hmt_sampler {
    hmt_proc **procs;
    int32_t n, cap;
    float *work; /* logits being processed, then the final log-probabilities */
    int32_t work_cap;
    int32_t last_n; /* n_vocab of the last successful apply; 0 = none pending */
    hmti_draw draw;
    hmti_guard guard; /* last: see busy.h */
};

static const hmt_param SAMPLER_KEYS[] = {HMT_P_TEMPERATURE, HMT_P_TOP_K, HMT_P_TOP_P,
                                         HMT_P_SEED};

HMT_API int hmt_sampler_create(hmt_sampler **out, const hmt_params *params) {
    if (!out) return hmti_errf(HMT_E_INVAL, "hmt_sampler_create: out is NULL");
    *out = NULL;
    int rc = hmti_params_only(params, SAMPLER_KEYS, HMTI_NKEYS(SAMPLER_KEYS),
                              "hmt_sampler_create");
    if (rc) return rc;
    hmt_sampler *s = hmti_calloc(1, sizeof *s);
    if (!s) return hmti_errf(HMT_E_NOMEM, "hmt_sampler_create: out of memory");
    hmti_draw_init(&s->draw, params);
    hmti_guard_init(&s->guard, HMTI_MAGIC_SAMPLER);
    *out = s;
    return HMT_OK;
}

HMT_API void hmt_sampler_free(hmt_sampler *s) {
    if (!s || hmti_retire(&s->guard, HMTI_MAGIC_SAMPLER, "hmt_sampler_free")) return;
    for (int32_t i = 0; i < s->n; i++) {
        atomic_store(&s->procs[i]->in_sampler, 0);
        hmti_proc_release(s->procs[i]);
    }
    free(s->procs);
    free(s->work);
    hmti_draw_free(&s->draw);
    free(s);
}

static int sampler_add(hmt_sampler *s, hmt_proc *p) {
    if (!s) return hmti_errf(HMT_E_INVAL, "hmt_sampler_add: sampler is NULL");
    if (!p) return hmti_errf(HMT_E_INVAL, "hmt_sampler_add: processor is NULL");
    if (hmti_guard_check(&p->guard, HMTI_MAGIC_PROC, "hmt_sampler_add")) return HMT_E_MISUSE;
    if (atomic_load(&p->in_sampler))
        return hmti_errf(HMT_E_MISUSE,
                         "hmt_sampler_add: processor '%s' already belongs to a sampler",
                         p->vt.name ? p->vt.name : "?");
    if (s->n == s->cap) {
        int32_t cap = s->cap ? 2 * s->cap : 4;
        hmt_proc **np = hmti_realloc(s->procs, (size_t)cap * sizeof *np);
        if (!np) return hmti_errf(HMT_E_NOMEM, "hmt_sampler_add: out of memory");
        s->procs = np;
        s->cap = cap;
    }
    atomic_store(&p->in_sampler, 1);
    hmti_proc_retain(p);
    s->procs[s->n++] = p;
    return HMT_OK;
}

HMT_API int32_t hmt_sampler_n_procs(const hmt_sampler *s) { return s ? s->n : 0; }

HMT_API void hmt_sampler_reset(hmt_sampler *s) {
    if (!s || hmti_enter(&s->guard, HMTI_MAGIC_SAMPLER, "hmt_sampler_reset")) return;
    s->last_n = 0;
    for (int32_t i = 0; i < s->n; i++)
        if (s->procs[i]->vt.reset) s->procs[i]->vt.reset(s->procs[i]->user_data);
    hmti_leave(&s->guard);
}

HMT_API void hmt_sampler_reseed(hmt_sampler *s, uint64_t seed) {
    if (!s || hmti_enter(&s->guard, HMTI_MAGIC_SAMPLER, "hmt_sampler_reseed")) return;
    hmti_draw_reseed(&s->draw, seed);
    hmti_leave(&s->guard);
}

/* Index of the first NaN or +inf logit, or -1. */
static int32_t first_bad_logit(const float *z, int32_t n) {
    for (int32_t v = 0; v < n; v++)
        if (isnan(z[v]) || z[v] == INFINITY) return v;
    return -1;
}

/* A processor's failure, reported with its position and name. */
static int proc_failed(const hmt_proc *p, int32_t i, int rc, const char *who) {
    char msg[HMTI_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", hmti_tls_errmsg());
    const char *name = p->vt.name ? p->vt.name : "?";
    if (rc > 0)
        return hmti_errf(HMT_E_INVAL, "%s: processor %d ('%s') returned %d (not a status)%s%s",
                         who, (int)i, name, rc, *msg ? ": " : "", msg);
    return hmti_errf(rc, "%s: processor %d ('%s') failed (%s)%s%s", who, (int)i, name,
                     hmt_strerror(rc), *msg ? ": " : "", msg);
}

/* Run the processors and leave the final log-probabilities in s->work. */
static int run(hmt_sampler *s, const float *logits, int32_t n_vocab, const float *key,
               int32_t n_key, const char *who) {
    if (!s) return hmti_errf(HMT_E_INVAL, "%s: sampler is NULL", who);
    if (!logits || n_vocab <= 0)
        return hmti_errf(HMT_E_INVAL, "%s: NULL logits or n_vocab %d", who, (int)n_vocab);
    if (n_key < 0 || (n_key > 0 && !key))
        return hmti_errf(HMT_E_INVAL, "%s: n_key %d with key %s", who, (int)n_key,
                         key ? "set" : "NULL");
    if (!key) n_key = 0;
    s->last_n = 0;
    if (n_vocab > s->work_cap) {
        float *w = hmti_realloc(s->work, (size_t)n_vocab * sizeof *w);
        if (!w) return hmti_errf(HMT_E_NOMEM, "%s: out of memory", who);
        s->work = w;
        s->work_cap = n_vocab;
    }
    float *z = s->work;
    memcpy(z, logits, (size_t)n_vocab * sizeof *z);
    /* one rule at every step (the draw's too): -inf allowed, NaN and +inf
     * not; checked after each step so the message names where it came from */
    int32_t bad = first_bad_logit(z, n_vocab);
    if (bad >= 0)
        return hmti_errf(HMT_E_INVAL, "%s: input logit %d is %s", who, (int)bad,
                         isnan(z[bad]) ? "NaN" : "+inf");
    for (int32_t i = 0; i < s->n; i++) {
        hmt_proc *p = s->procs[i];
        int rc = p->vt.apply(p->user_data, z, n_vocab, key, n_key);
        if (rc != HMT_OK) return proc_failed(p, i, rc, who);
        if ((bad = first_bad_logit(z, n_vocab)) >= 0)
            return hmti_errf(HMT_E_INVAL, "%s: processor %d ('%s') made logit %d %s", who, (int)i,
                             p->vt.name ? p->vt.name : "?", (int)bad,
                             isnan(z[bad]) ? "NaN" : "+inf");
    }
    const double lse = hmti_logsumexp(z, n_vocab, NULL);
    if (lse == -INFINITY)
        return hmti_errf(HMT_E_INVAL, "%s: every logit is -inf %s (no token allowed)", who,
                         s->n ? "after the processors" : "in the input");
    for (int32_t v = 0; v < n_vocab; v++) z[v] = (float)((double)z[v] - lse);
    s->last_n = n_vocab;
    return HMT_OK;
}

static int apply(hmt_sampler *s, const float *logits, int32_t n_vocab, const float *key,
                 int32_t n_key, float *logprobs_out) {
    if (!logprobs_out) return hmti_errf(HMT_E_INVAL, "hmt_sampler_apply: logprobs_out is NULL");
    int rc = run(s, logits, n_vocab, key, n_key, "hmt_sampler_apply");
    if (rc) return rc;
    memcpy(logprobs_out, s->work, (size_t)n_vocab * sizeof *logprobs_out);
    return HMT_OK;
}

static void accept_token(hmt_sampler *s, hmt_token token) {
    double p_final = NAN;
    if (s->last_n > 0 && token < s->last_n) p_final = exp((double)s->work[token]);
    s->last_n = 0; /* one accept per apply */
    for (int32_t i = 0; i < s->n; i++) {
        hmt_proc *p = s->procs[i];
        if (p->accept_final) p->accept_final(p->user_data, token, p_final);
        else if (p->vt.accept) p->vt.accept(p->user_data, token);
    }
}

static int accept_checked(hmt_sampler *s, hmt_token token) {
    if (!s) return hmti_errf(HMT_E_INVAL, "hmt_sampler_accept: sampler is NULL");
    if (token < 0) return hmti_errf(HMT_E_INVAL, "hmt_sampler_accept: token %d < 0", (int)token);
    accept_token(s, token);
    return HMT_OK;
}

static int prepare(hmt_sampler *s, const float *keys, size_t n, int32_t n_key) {
    if (!s) return hmti_errf(HMT_E_INVAL, "hmt_sampler_prepare: sampler is NULL");
    if (!keys || n == 0 || n_key <= 0)
        return hmti_errf(HMT_E_INVAL, "hmt_sampler_prepare: keys %s, n %zu, n_key %d",
                         keys ? "set" : "NULL", n, (int)n_key);
    for (int32_t i = 0; i < s->n; i++) {
        hmt_proc *p = s->procs[i];
        if (!p->vt.prepare) continue;
        int rc = p->vt.prepare(p->user_data, keys, n, n_key);
        if (rc != HMT_OK) return proc_failed(p, i, rc, "hmt_sampler_prepare");
    }
    return HMT_OK;
}

/* With processors the draw sees their log-probabilities; without, the
 * logits themselves (the same softmax, and the 0.1 sampler's exact bits). */
static int sample(hmt_sampler *s, const float *logits, int32_t n_vocab, const float *key,
                  int32_t n_key, hmt_token *out, const char *who) {
    if (!s || !out) return hmti_errf(HMT_E_INVAL, "%s: %s is NULL", who, !s ? "sampler" : "out");
    const float *z = logits;
    if (s->n > 0) {
        int rc = run(s, logits, n_vocab, key, n_key, who);
        if (rc) return rc;
        z = s->work;
    }
    hmt_token t;
    int rc = hmti_draw_sample(&s->draw, z, n_vocab, &t, who);
    if (rc) return rc;
    accept_token(s, t);
    *out = t;
    return HMT_OK;
}

/* ---- public entry points: the sampler's guard (busy.h) around each call; a
 * processor callback re-entering its own sampler gets HMT_E_MISUSE ---- */
#define GUARDED(fn, call) HMTI_GUARDED(s, HMTI_MAGIC_SAMPLER, fn, call)

HMT_API int hmt_sampler_add(hmt_sampler *s, hmt_proc *p) {
    GUARDED("hmt_sampler_add", sampler_add(s, p));
}
HMT_API int hmt_sampler_apply(hmt_sampler *s, const float *logits, int32_t n_vocab,
                              const float *key, int32_t n_key, float *logprobs_out) {
    GUARDED("hmt_sampler_apply", apply(s, logits, n_vocab, key, n_key, logprobs_out));
}
HMT_API int hmt_sampler_accept(hmt_sampler *s, hmt_token token) {
    GUARDED("hmt_sampler_accept", accept_checked(s, token));
}
HMT_API int hmt_sampler_prepare(hmt_sampler *s, const float *keys, size_t n, int32_t n_key) {
    GUARDED("hmt_sampler_prepare", prepare(s, keys, n, n_key));
}
HMT_API int hmt_sampler_sample(hmt_sampler *s, const float *logits, int32_t n_vocab,
                               hmt_token *out) {
    GUARDED("hmt_sampler_sample", sample(s, logits, n_vocab, NULL, 0, out, "hmt_sampler_sample"));
}

HMT_API int hmt_sampler_sample_ctx(hmt_sampler *s, const hmt_ctx *ctx, int32_t i,
                                   hmt_token *out) {
    if (!ctx) return hmti_errf(HMT_E_INVAL, "hmt_sampler_sample_ctx: ctx is NULL");
    const float *logits = hmt_ctx_logits(ctx, i);
    if (!logits)
        return hmti_errf(HMT_E_INVAL, "hmt_sampler_sample_ctx: row %d has no logits", (int)i);
    const float *key = hmt_ctx_ffn_input(ctx, i);
    const hmt_model *m = hmt_ctx_model(ctx);
    GUARDED("hmt_sampler_sample_ctx",
            sample(s, logits, hmt_model_n_vocab(m), key, key ? hmt_model_n_embd(m) : 0, out,
                   "hmt_sampler_sample_ctx"));
}

HMT_API int hmt_sampler_sample_stream(hmt_sampler *s, const hmt_stream *stream, int64_t index,
                                      hmt_token *out) {
    if (!stream) return hmti_errf(HMT_E_INVAL, "hmt_sampler_sample_stream: stream is NULL");
    const float *logits = hmt_stream_logits(stream, index);
    if (!logits)
        return hmti_errf(HMT_E_INVAL, "hmt_sampler_sample_stream: index %lld is not ready",
                         (long long)index);
    const float *key = hmt_stream_ffn_input(stream, index);
    const hmt_model *m = hmt_stream_model(stream);
    GUARDED("hmt_sampler_sample_stream",
            sample(s, logits, hmt_model_n_vocab(m), key, key ? hmt_model_n_embd(m) : 0, out,
                   "hmt_sampler_sample_stream"));
}
