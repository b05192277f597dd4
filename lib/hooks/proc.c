/* Next-token processors and chains (include/hmt/hmt_proc.h).
 *
 * A chain copies the logits into its work buffer, runs each processor's
 * apply in order, checks the result, and writes the log-softmax (computed in
 * double) to the caller. It keeps that final distribution until the next
 * apply so that accept can tell built-ins the accepted token's final
 * probability (DITTO's relative mode records it). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/busy.h"
#include "core/error.h"
#include "hooks/proc.h"
#include "hooks/sampler.h"
#include "kernels/kernels.h"

struct hmt_proc {
    hmt_proc_i vt; /* the caller's vtable, zero-extended to our size */
    void *user_data;
    hmti_accept_final_fn accept_final; /* built-ins only */
    int in_chain;
    hmti_guard guard; /* last: see busy.h */
};

struct hmt_chain {
    hmt_proc **procs;
    int32_t n, cap;
    float *work; /* logits being processed, then the final log-probabilities */
    int32_t work_cap;
    int32_t last_n; /* n_vocab of the last successful apply; 0 = none pending */
    hmti_guard guard; /* last: see busy.h */
};

#define APPLY_END (offsetof(hmt_proc_i, apply) + sizeof(((hmt_proc_i *)0)->apply))

static int proc_new(hmt_proc **out, const hmt_proc_i *iface, void *user_data,
                    hmti_accept_final_fn accept_final) {
    if (!out) return hmti_errf(HMT_E_INVAL, "hmt_proc_create: out is NULL");
    *out = NULL;
    if (!iface) return hmti_errf(HMT_E_INVAL, "hmt_proc_create: iface is NULL");
    if (iface->struct_size < APPLY_END)
        return hmti_errf(HMT_E_INVAL,
                         "hmt_proc_create: iface->struct_size %u is smaller than the "
                         "interface's required part (%zu bytes)",
                         (unsigned)iface->struct_size, (size_t)APPLY_END);
    if (!iface->apply) return hmti_errf(HMT_E_INVAL, "hmt_proc_create: iface->apply is NULL");
    hmt_proc *p = hmti_calloc(1, sizeof *p);
    if (!p) return hmti_errf(HMT_E_NOMEM, "hmt_proc_create: out of memory");
    size_t n = iface->struct_size < sizeof p->vt ? iface->struct_size : sizeof p->vt;
    memcpy(&p->vt, iface, n); /* fields past n stay NULL */
    p->vt.struct_size = (uint32_t)sizeof p->vt;
    p->user_data = user_data;
    p->accept_final = accept_final;
    hmti_guard_init(&p->guard, HMTI_MAGIC_PROC);
    *out = p;
    return HMT_OK;
}

HMT_API int hmt_proc_create(hmt_proc **out, const hmt_proc_i *iface, void *user_data) {
    hmti_clear_error();
    return proc_new(out, iface, user_data, NULL);
}

int hmti_proc_create_builtin(hmt_proc **out, const hmt_proc_i *iface, void *user_data,
                             hmti_accept_final_fn accept_final) {
    return proc_new(out, iface, user_data, accept_final);
}

void *hmti_proc_data_if(const hmt_proc *p,
                        int (*apply)(void *, float *, int32_t, const float *, int32_t)) {
    return p && p->vt.apply == apply ? p->user_data : NULL;
}

static void proc_destroy(hmt_proc *p) {
    if (!p) return;
    hmti_guard_poison(&p->guard);
    if (p->vt.free_data) p->vt.free_data(p->user_data);
    free(p);
}

HMT_API void hmt_proc_free(hmt_proc *p) {
    /* a processor owned by a chain is freed by the chain: ignore the call
     * rather than leave the chain with a dangling pointer */
    if (!p || hmti_guard_check(&p->guard, HMTI_MAGIC_PROC, "hmt_proc_free") || p->in_chain)
        return;
    proc_destroy(p);
}

HMT_API int hmt_chain_create(hmt_chain **out) {
    hmti_clear_error();
    if (!out) return hmti_errf(HMT_E_INVAL, "hmt_chain_create: out is NULL");
    *out = hmti_calloc(1, sizeof **out);
    if (!*out) return hmti_errf(HMT_E_NOMEM, "hmt_chain_create: out of memory");
    hmti_guard_init(&(*out)->guard, HMTI_MAGIC_CHAIN);
    return HMT_OK;
}

static int chain_add(hmt_chain *chain, hmt_proc *p) {
    hmti_clear_error();
    if (!p) return hmti_errf(HMT_E_INVAL, "hmt_chain_add: processor is NULL");
    if (hmti_guard_check(&p->guard, HMTI_MAGIC_PROC, "hmt_chain_add")) return HMT_E_MISUSE;
    if (p->in_chain)
        return hmti_errf(HMT_E_MISUSE, "hmt_chain_add: processor '%s' already belongs to a chain",
                         p->vt.name ? p->vt.name : "?");
    if (!chain) {
        proc_destroy(p);
        return hmti_errf(HMT_E_INVAL, "hmt_chain_add: chain is NULL (the processor was freed)");
    }
    if (chain->n == chain->cap) {
        int32_t cap = chain->cap ? 2 * chain->cap : 4;
        hmt_proc **np = hmti_realloc(chain->procs, (size_t)cap * sizeof *np);
        if (!np) {
            proc_destroy(p);
            return hmti_errf(HMT_E_NOMEM, "hmt_chain_add: out of memory (the processor was freed)");
        }
        chain->procs = np;
        chain->cap = cap;
    }
    p->in_chain = 1;
    chain->procs[chain->n++] = p;
    return HMT_OK;
}

HMT_API int32_t hmt_chain_n_procs(const hmt_chain *chain) { return chain ? chain->n : 0; }

HMT_API void hmt_chain_free(hmt_chain *chain) {
    if (!chain || hmti_retire(&chain->guard, HMTI_MAGIC_CHAIN, "hmt_chain_free")) return;
    for (int32_t i = 0; i < chain->n; i++) proc_destroy(chain->procs[i]);
    free(chain->procs);
    free(chain->work);
    free(chain);
}

HMT_API void hmt_chain_reset(hmt_chain *chain) {
    if (!chain || hmti_enter(&chain->guard, HMTI_MAGIC_CHAIN, "hmt_chain_reset")) return;
    chain->last_n = 0;
    for (int32_t i = 0; i < chain->n; i++)
        if (chain->procs[i]->vt.reset) chain->procs[i]->vt.reset(chain->procs[i]->user_data);
    hmti_leave(&chain->guard);
}

/* Index of the first NaN or +inf logit, or -1. */
static int32_t first_bad_logit(const float *z, int32_t n) {
    for (int32_t v = 0; v < n; v++)
        if (isnan(z[v]) || z[v] == INFINITY) return v;
    return -1;
}

/* Run the processors and leave the final log-probabilities in chain->work. */
static int chain_run(hmt_chain *chain, const float *logits, int32_t n_vocab, const float *key,
                     int32_t n_key, const char *who) {
    if (!chain || !logits || n_vocab <= 0)
        return hmti_errf(HMT_E_INVAL, "%s: NULL argument or n_vocab %d", who, (int)n_vocab);
    if (n_key < 0 || (n_key > 0 && !key))
        return hmti_errf(HMT_E_INVAL, "%s: n_key %d with key %s", who, (int)n_key,
                         key ? "set" : "NULL");
    if (!key) n_key = 0;
    chain->last_n = 0;
    if (n_vocab > chain->work_cap) {
        float *w = hmti_realloc(chain->work, (size_t)n_vocab * sizeof *w);
        if (!w) return hmti_errf(HMT_E_NOMEM, "%s: out of memory", who);
        chain->work = w;
        chain->work_cap = n_vocab;
    }
    float *z = chain->work;
    memcpy(z, logits, (size_t)n_vocab * sizeof *z);
    /* one rule at every step (the sampler's): -inf allowed, NaN and +inf
     * not; checked after each step so the message names where it came from */
    int32_t bad = first_bad_logit(z, n_vocab);
    if (bad >= 0)
        return hmti_errf(HMT_E_INVAL, "%s: input logit %d is %s", who, (int)bad,
                         isnan(z[bad]) ? "NaN" : "+inf");
    for (int32_t i = 0; i < chain->n; i++) {
        hmt_proc *p = chain->procs[i];
        int rc = p->vt.apply(p->user_data, z, n_vocab, key, n_key);
        if (rc != HMT_OK) {
            char msg[HMTI_ERRMSG_MAX];
            snprintf(msg, sizeof msg, "%s", hmti_tls_errmsg());
            if (rc > 0)
                return hmti_errf(HMT_E_INVAL, "%s: processor %d ('%s') returned %d (not a status)%s%s",
                                 who, (int)i, p->vt.name ? p->vt.name : "?", rc, *msg ? ": " : "",
                                 msg);
            return hmti_errf(rc, "%s: processor %d ('%s') failed (%s)%s%s", who, (int)i,
                             p->vt.name ? p->vt.name : "?", hmt_strerror(rc), *msg ? ": " : "",
                             msg);
        }
        if ((bad = first_bad_logit(z, n_vocab)) >= 0)
            return hmti_errf(HMT_E_INVAL, "%s: processor %d ('%s') made logit %d %s", who, (int)i,
                             p->vt.name ? p->vt.name : "?", (int)bad,
                             isnan(z[bad]) ? "NaN" : "+inf");
    }
    const double lse = hmti_logsumexp(z, n_vocab, NULL);
    if (lse == -INFINITY)
        return hmti_errf(HMT_E_INVAL, "%s: every logit is -inf %s (no token allowed)", who,
                         chain->n ? "after the processors" : "in the input");
    for (int32_t v = 0; v < n_vocab; v++) z[v] = (float)((double)z[v] - lse);
    chain->last_n = n_vocab;
    return HMT_OK;
}

static int chain_apply(hmt_chain *chain, const float *logits, int32_t n_vocab,
                       const float *key, int32_t n_key, float *logprobs_out) {
    hmti_clear_error();
    if (!logprobs_out) return hmti_errf(HMT_E_INVAL, "hmt_chain_apply: logprobs_out is NULL");
    int rc = chain_run(chain, logits, n_vocab, key, n_key, "hmt_chain_apply");
    if (rc) return rc;
    memcpy(logprobs_out, chain->work, (size_t)n_vocab * sizeof *logprobs_out);
    return HMT_OK;
}

static void chain_accept(hmt_chain *chain, hmt_token token) {
    double p_final = NAN;
    if (chain->last_n > 0 && token < chain->last_n) p_final = exp((double)chain->work[token]);
    chain->last_n = 0; /* one accept per apply */
    for (int32_t i = 0; i < chain->n; i++) {
        hmt_proc *p = chain->procs[i];
        if (p->accept_final) p->accept_final(p->user_data, token, p_final);
        else if (p->vt.accept) p->vt.accept(p->user_data, token);
    }
}

static int chain_accept_checked(hmt_chain *chain, hmt_token token) {
    hmti_clear_error();
    if (!chain) return hmti_errf(HMT_E_INVAL, "hmt_chain_accept: chain is NULL");
    if (token < 0) return hmti_errf(HMT_E_INVAL, "hmt_chain_accept: token %d < 0", (int)token);
    chain_accept(chain, token);
    return HMT_OK;
}

static int chain_sample(hmt_chain *chain, hmt_sampler *sampler, const float *logits,
                        int32_t n_vocab, const float *key, int32_t n_key, hmt_token *out) {
    hmti_clear_error();
    if (!sampler || !out) return hmti_errf(HMT_E_INVAL, "hmt_chain_sample: NULL sampler or out");
    int rc = chain_run(chain, logits, n_vocab, key, n_key, "hmt_chain_sample");
    if (rc) return rc;
    hmt_token t;
    rc = hmti_sampler_sample_logprobs(sampler, chain->work, n_vocab, &t, "hmt_chain_sample");
    if (rc) return rc;
    if (chain->work[t] == -INFINITY) { /* a draw on the rounding edge: never a banned token */
        int32_t best = 0;
        for (int32_t v = 1; v < n_vocab; v++)
            if (chain->work[v] > chain->work[best]) best = v;
        t = best;
    }
    chain_accept(chain, t);
    *out = t;
    return HMT_OK;
}

/* ---- public entry points: the chain's guard (busy.h) around each call; a
 * processor callback re-entering its own chain gets HMT_E_MISUSE ---- */
#define GUARDED(fn, call) HMTI_GUARDED(chain, HMTI_MAGIC_CHAIN, fn, call)

HMT_API int hmt_chain_add(hmt_chain *chain, hmt_proc *p) {
    int rc = hmti_enter(HMTI_GUARD(chain), HMTI_MAGIC_CHAIN, "hmt_chain_add");
    if (rc) { /* the contract: the chain takes p, also on failure */
        if (p && p->guard.magic == HMTI_MAGIC_PROC && !p->in_chain) proc_destroy(p);
        return rc;
    }
    rc = chain_add(chain, p);
    hmti_leave(HMTI_GUARD(chain));
    return rc;
}
HMT_API int hmt_chain_apply(hmt_chain *chain, const float *logits, int32_t n_vocab,
                            const float *key, int32_t n_key, float *logprobs_out) {
    GUARDED("hmt_chain_apply", chain_apply(chain, logits, n_vocab, key, n_key, logprobs_out));
}
HMT_API int hmt_chain_accept(hmt_chain *chain, hmt_token token) {
    GUARDED("hmt_chain_accept", chain_accept_checked(chain, token));
}
HMT_API int hmt_chain_sample(hmt_chain *chain, hmt_sampler *sampler, const float *logits,
                             int32_t n_vocab, const float *key, int32_t n_key, hmt_token *out) {
    int rc = hmti_enter(HMTI_GUARD(chain), HMTI_MAGIC_CHAIN, "hmt_chain_sample");
    if (rc) return rc;
    rc = hmti_sampler_enter(sampler, "hmt_chain_sample"); /* the sampler too */
    if (!rc) {
        rc = chain_sample(chain, sampler, logits, n_vocab, key, n_key, out);
        hmti_sampler_leave(sampler);
    }
    hmti_leave(HMTI_GUARD(chain));
    return rc;
}

int hmti_proc_enter(hmt_proc *p, const char *fn) {
    return hmti_enter(HMTI_GUARD(p), HMTI_MAGIC_PROC, fn);
}
void hmti_proc_leave(hmt_proc *p) { hmti_leave(HMTI_GUARD(p)); }
