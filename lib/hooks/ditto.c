/* The DITTO sentence-repetition penalty as a next-token processor
 * (algorithms.md §3.4, docs/PROCESSORS.md).
 *
 * State: the accepted tokens (with the final probability each had when it was
 * chosen), split into complete sentences (a sentence ends with a delimiter
 * token and includes it) and the open sentence c = hist[open_start .. n).
 * Each complete sentence stores a hash and the length of the run of identical
 * sentences ending at it, computed once when it closes.
 *
 * apply: the candidates are earlier sentences S of which c is a proper prefix
 * (scope consecutive: only the last one, r = its run; scope window: any of
 * the last W, r = its occurrences among them). The token y* = S[t] that
 * would continue the repeat gets the target probability
 *     power:    p' = λ^r · p
 *     relative: p' = min(p, λ · p_prev)   (p_prev: final probability of the
 *               same token at the same offset of the most recent copy; when
 *               unknown — the copy was fed without an apply — p_prev = p)
 * applied with exact renormalisation (p'(y*) set, every other token scaled by
 * (1 − Σp')/(1 − Σp)) or as a logit shift (z(y*) += ln(p'/p)). λ = 1 returns
 * without touching the logits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/params.h"
#include "hooks/proc.h"
#include "kernels/kernels.h"

enum { MODE_POWER = 0, MODE_RELATIVE = 1 };
enum { SCOPE_CONSECUTIVE = 0, SCOPE_WINDOW = 1 };
enum { RENORM_EXACT = 0, RENORM_LOGIT = 1 };

#define MAX_TOKEN_ID ((int32_t)1 << 30) /* bound on delimiter ids without a model */
#define COMPACT_MIN 4096                /* history tokens dropped at once, at least */

typedef struct {
    int64_t start; /* absolute token index of the first token */
    int32_t len;   /* tokens, the delimiter included */
    int32_t run;   /* identical sentences ending here, this one included */
    uint64_t hash;
} sentence;

typedef struct {
    hmt_token y;   /* the token that would continue the repeat */
    int32_t r;     /* repeats */
    double p_prev; /* final probability of y in the most recent copy (NaN: unknown) */
} candidate;

typedef struct {
    double lambda;
    int mode, scope, renorm;
    int32_t window, min_sentence, min_match;
    int32_t n_vocab_model; /* 0 without a model */
    uint8_t *delim;        /* delimiter bitmap, delim_n entries */
    int32_t delim_n;
    /* history: absolute index i is stored at hist[i - base] */
    hmt_token *hist;
    double *hp; /* final probability of each accepted token (NaN: unknown) */
    int64_t base, n, cap;
    int64_t open_start;
    sentence *sen; /* the sentences kept (the last `keep` at least) */
    int64_t n_sen, sen_cap;
    candidate *cands;
    int32_t cand_cap;
    uint8_t *mark; /* n_vocab scratch: tokens penalised in this apply */
    int32_t mark_cap;
} ditto;

static int ditto_apply(void *ud, float *logits, int32_t n_vocab, const float *key, int32_t n_key);

static int is_delim(const ditto *d, hmt_token t) {
    return t >= 0 && t < d->delim_n && d->delim[t];
}

static void ditto_reset(void *ud) {
    ditto *d = ud;
    d->base = d->n = d->open_start = 0;
    d->n_sen = 0;
}

static void ditto_free(void *ud) {
    ditto *d = ud;
    if (!d) return;
    free(d->delim);
    free(d->hist);
    free(d->hp);
    free(d->sen);
    free(d->cands);
    free(d->mark);
    free(d);
}

static const hmt_token *tok_at(const ditto *d, int64_t i) { return &d->hist[i - d->base]; }

static int same_sentence(const ditto *d, const sentence *a, const sentence *b) {
    return a->len == b->len && a->hash == b->hash &&
           !memcmp(tok_at(d, a->start), tok_at(d, b->start), (size_t)a->len * sizeof(hmt_token));
}

/* Sentences that later steps still need: the last one (consecutive scope:
 * its run is stored) or the last W (window scope). */
static int64_t sentences_kept(const ditto *d) {
    return d->scope == SCOPE_WINDOW ? d->window : 1;
}

/* Drop history no later step can read, when that frees enough. */
static void compact(ditto *d) {
    int64_t keep = sentences_kept(d);
    int64_t first_sen = d->n_sen > keep ? d->n_sen - keep : 0;
    int64_t first_tok = first_sen < d->n_sen ? d->sen[first_sen].start : d->open_start;
    int64_t drop = first_tok - d->base;
    if (drop < COMPACT_MIN || drop < (d->n - d->base) / 2) return;
    memmove(d->hist, d->hist + drop, (size_t)(d->n - first_tok) * sizeof *d->hist);
    memmove(d->hp, d->hp + drop, (size_t)(d->n - first_tok) * sizeof *d->hp);
    d->base = first_tok;
    memmove(d->sen, d->sen + first_sen, (size_t)(d->n_sen - first_sen) * sizeof *d->sen);
    d->n_sen -= first_sen;
}

/* Record the accepted token. On allocation failure the history is reset
 * (accept cannot report errors): the penalty then restarts from scratch. */
static void ditto_accept_final(void *ud, hmt_token token, double p_final) {
    ditto *d = ud;
    if (d->n - d->base == d->cap) {
        int64_t cap = d->cap ? 2 * d->cap : 256;
        hmt_token *h = hmti_realloc(d->hist, (size_t)cap * sizeof *h);
        if (h) d->hist = h;
        double *hp = h ? hmti_realloc(d->hp, (size_t)cap * sizeof *hp) : NULL;
        if (hp) d->hp = hp;
        if (!h || !hp) {
            ditto_reset(d);
            hmti_log(HMT_LOG_WARN, "ditto: out of memory; history reset");
            return;
        }
        d->cap = cap;
    }
    d->hist[d->n - d->base] = token;
    d->hp[d->n - d->base] = p_final;
    d->n++;
    if (!is_delim(d, token)) return;
    if (d->n_sen == d->sen_cap) {
        int64_t cap = d->sen_cap ? 2 * d->sen_cap : 64;
        sentence *s = hmti_realloc(d->sen, (size_t)cap * sizeof *s);
        if (!s) {
            ditto_reset(d);
            hmti_log(HMT_LOG_WARN, "ditto: out of memory; history reset");
            return;
        }
        d->sen = s;
        d->sen_cap = cap;
    }
    sentence s = {d->open_start, (int32_t)(d->n - d->open_start), 1, 1469598103934665603ull};
    const hmt_token *t = tok_at(d, s.start);
    for (int32_t i = 0; i < s.len; i++) s.hash = (s.hash ^ (uint32_t)t[i]) * 1099511628211ull;
    if (d->n_sen > 0 && same_sentence(d, &d->sen[d->n_sen - 1], &s))
        s.run = d->sen[d->n_sen - 1].run + 1;
    d->sen[d->n_sen++] = s;
    d->open_start = d->n;
    compact(d);
}

static void ditto_accept(void *ud, hmt_token token) { ditto_accept_final(ud, token, NAN); }

/* Is the open sentence a proper prefix of s, and s long enough to count? */
static int continues(const ditto *d, const sentence *s, int64_t t) {
    return s->len >= d->min_sentence && s->len > t &&
           !memcmp(tok_at(d, s->start), tok_at(d, d->open_start), (size_t)t * sizeof(hmt_token));
}

static int add_candidate(ditto *d, int32_t *nc, hmt_token y, int32_t r, double p_prev) {
    for (int32_t i = 0; i < *nc; i++)
        if (d->cands[i].y == y) { /* same continuation from another sentence */
            if (r > d->cands[i].r) d->cands[i].r = r;
            return HMT_OK; /* p_prev stays the most recent copy's */
        }
    if (*nc == d->cand_cap) {
        int32_t cap = d->cand_cap ? 2 * d->cand_cap : 8;
        candidate *c = hmti_realloc(d->cands, (size_t)cap * sizeof *c);
        if (!c) return hmti_errf(HMT_E_NOMEM, "ditto: out of memory");
        d->cands = c;
        d->cand_cap = cap;
    }
    d->cands[(*nc)++] = (candidate){y, r, p_prev};
    return HMT_OK;
}

static int ditto_apply(void *ud, float *z, int32_t n_vocab, const float *key, int32_t n_key) {
    (void)key;
    (void)n_key;
    ditto *d = ud;
    if (d->n_vocab_model > 0 && n_vocab != d->n_vocab_model)
        return hmti_errf(HMT_E_INVAL, "ditto: n_vocab %d differs from the model's %d",
                         (int)n_vocab, (int)d->n_vocab_model);
    if (d->lambda >= 1.0 || d->n_sen == 0) return HMT_OK;
    const int64_t t = d->n - d->open_start; /* tokens of the open sentence */
    if (t < d->min_match) return HMT_OK;
    /* 1. candidates, most recent sentence first */
    int32_t nc = 0;
    int64_t lo = d->scope == SCOPE_WINDOW ? d->n_sen - d->window : d->n_sen - 1;
    if (lo < 0) lo = 0;
    for (int64_t j = d->n_sen - 1; j >= lo; j--) {
        const sentence *s = &d->sen[j];
        if (!continues(d, s, t)) continue;
        int32_t r = s->run;
        if (d->scope == SCOPE_WINDOW) {
            r = 0;
            for (int64_t k = lo; k < d->n_sen; k++) r += same_sentence(d, &d->sen[k], s);
        }
        const int64_t at = s->start + t;
        int rc = add_candidate(d, &nc, *tok_at(d, at), r, d->hp[at - d->base]);
        if (rc) return rc;
    }
    if (nc == 0) return HMT_OK;
    /* 2. p over the incoming logits, in double */
    for (int32_t v = 0; v < n_vocab; v++)
        if (isnan(z[v])) return HMT_OK; /* the chain reports it */
    const double lse = hmti_logsumexp(z, n_vocab, NULL), ln_lambda = log(d->lambda);
    if (isinf(lse)) return HMT_OK; /* all -inf, or a +inf: the chain reports it */
    /* 3. targets: keep the candidates that lower their token */
    int32_t np = 0;
    double P = 0, Pt = 0;
    for (int32_t i = 0; i < nc; i++) {
        candidate c = d->cands[i];
        if (c.y < 0 || c.y >= n_vocab || z[c.y] == -INFINITY) continue;
        const double lp = (double)z[c.y] - lse, p = exp(lp);
        double ln_s;
        if (d->mode == MODE_POWER) {
            ln_s = c.r * ln_lambda;
        } else {
            const double pp = isnan(c.p_prev) ? p : c.p_prev;
            const double target = d->lambda * pp;
            if (!(target < p)) continue;
            ln_s = (target > 1e-300 ? log(target) : log(1e-300)) - lp;
        }
        /* reuse the candidate slot: y, and ln s in p_prev */
        d->cands[np++] = (candidate){c.y, c.r, ln_s};
        P += p;
        Pt += exp(lp + ln_s);
    }
    if (np == 0) return HMT_OK;
    if (d->renorm == RENORM_LOGIT) {
        for (int32_t i = 0; i < np; i++) z[d->cands[i].y] = (float)((double)z[d->cands[i].y] + d->cands[i].p_prev);
        return HMT_OK;
    }
    /* exact: the others share the mass the penalised tokens gave up */
    if (n_vocab > d->mark_cap) {
        uint8_t *m = hmti_realloc(d->mark, (size_t)n_vocab);
        if (!m) return hmti_errf(HMT_E_NOMEM, "ditto: out of memory");
        d->mark = m;
        d->mark_cap = n_vocab;
    }
    memset(d->mark, 0, (size_t)n_vocab);
    for (int32_t i = 0; i < np; i++) d->mark[d->cands[i].y] = 1;
    double rest = 0; /* mass of the other tokens, summed directly (no 1 − P cancellation) */
    for (int32_t v = 0; v < n_vocab; v++)
        if (!d->mark[v]) rest += exp((double)z[v] - lse);
    if (!(rest > 0)) return HMT_OK; /* nothing could take the mass: leave p unchanged */
    const double ln_scale = log((rest + (P - Pt)) / rest);
    for (int32_t v = 0; v < n_vocab; v++)
        if (!d->mark[v]) z[v] = (float)((double)z[v] - lse + ln_scale);
    for (int32_t i = 0; i < np; i++) {
        const hmt_token y = d->cands[i].y;
        z[y] = (float)((double)z[y] - lse + d->cands[i].p_prev);
    }
    return HMT_OK;
}

/* Default delimiters: every token whose text (control tokens not rendered)
 * ends in '.'. */
static int default_delimiters(ditto *d, const hmt_model *model) {
    const int32_t nv = hmt_model_n_vocab(model);
    d->delim = hmti_calloc((size_t)nv, 1);
    if (!d->delim) return hmti_errf(HMT_E_NOMEM, "hmt_proc_ditto_create: out of memory");
    d->delim_n = nv;
    char buf[256];
    for (hmt_token id = 0; id < nv; id++) {
        size_t len = 0;
        int rc = hmt_detokenize(model, &id, 1, 0, buf, sizeof buf, &len);
        if (rc == HMT_E_BUFFER) { /* longer than the buffer: only the last byte matters */
            char *big = hmti_malloc(len + 1);
            if (!big) return hmti_errf(HMT_E_NOMEM, "hmt_proc_ditto_create: out of memory");
            rc = hmt_detokenize(model, &id, 1, 0, big, len + 1, &len);
            if (!rc && len > 0) d->delim[id] = big[len - 1] == '.';
            free(big);
        } else if (!rc && len > 0) {
            d->delim[id] = buf[len - 1] == '.';
        }
    }
    return HMT_OK;
}

HMT_API int hmt_proc_ditto_create(hmt_proc **out, const hmt_model *model,
                                  const hmt_params *params) {
    if (!out) return hmti_errf(HMT_E_INVAL, "hmt_proc_ditto_create: out is NULL");
    *out = NULL;
    static const hmt_param keys[] = {HMT_P_DITTO_LAMBDA,      HMT_P_DITTO_MODE,
                                     HMT_P_DITTO_SCOPE,       HMT_P_DITTO_WINDOW,
                                     HMT_P_DITTO_MIN_SENTENCE, HMT_P_DITTO_MIN_MATCH,
                                     HMT_P_DITTO_RENORM};
    int rc = hmti_params_only(params, keys, HMTI_NKEYS(keys), "hmt_proc_ditto_create");
    if (rc) return rc;
    ditto *d = hmti_calloc(1, sizeof *d);
    if (!d) return hmti_errf(HMT_E_NOMEM, "hmt_proc_ditto_create: out of memory");
    d->lambda = hmti_param_value(params, HMT_P_DITTO_LAMBDA);
    d->mode = (int)hmti_param_value(params, HMT_P_DITTO_MODE);
    d->scope = (int)hmti_param_value(params, HMT_P_DITTO_SCOPE);
    d->window = (int32_t)hmti_param_value(params, HMT_P_DITTO_WINDOW);
    d->min_sentence = (int32_t)hmti_param_value(params, HMT_P_DITTO_MIN_SENTENCE);
    d->min_match = (int32_t)hmti_param_value(params, HMT_P_DITTO_MIN_MATCH);
    d->renorm = (int)hmti_param_value(params, HMT_P_DITTO_RENORM);
    if (model) {
        d->n_vocab_model = hmt_model_n_vocab(model);
        if (d->n_vocab_model <= 0)
            rc = hmti_errf(HMT_E_INVAL, "hmt_proc_ditto_create: the model has no vocabulary");
        else
            rc = default_delimiters(d, model);
    }
    static const hmt_proc_i iface = {.struct_size = sizeof(hmt_proc_i),
                                     .name = "ditto",
                                     .apply = ditto_apply,
                                     .accept = ditto_accept,
                                     .reset = ditto_reset,
                                     .free_data = ditto_free};
    if (!rc) rc = hmti_proc_create_builtin(out, &iface, d, ditto_accept_final);
    if (rc) ditto_free(d);
    return rc;
}

static int ditto_set_delimiters(hmt_proc *p, const hmt_token *ids, size_t n) {
    ditto *d = hmti_proc_data_if(p, ditto_apply);
    if (!d) return hmti_errf(HMT_E_INVAL, "hmt_proc_ditto_set_delimiters: not a DITTO processor");
    if (n > 0 && !ids) return hmti_errf(HMT_E_INVAL, "hmt_proc_ditto_set_delimiters: ids is NULL");
    const int32_t bound = d->n_vocab_model > 0 ? d->n_vocab_model : MAX_TOKEN_ID;
    int32_t max_id = -1;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= bound)
            return hmti_errf(HMT_E_INVAL,
                             "hmt_proc_ditto_set_delimiters: id %d is outside [0, %d)",
                             (int)ids[i], (int)bound);
        if (ids[i] > max_id) max_id = ids[i];
    }
    uint8_t *m = hmti_calloc((size_t)max_id + 1, 1);
    if (!m) return hmti_errf(HMT_E_NOMEM, "hmt_proc_ditto_set_delimiters: out of memory");
    for (size_t i = 0; i < n; i++) m[ids[i]] = 1;
    free(d->delim);
    d->delim = m;
    d->delim_n = max_id + 1;
    ditto_reset(d);
    return HMT_OK;
}

HMT_API int hmt_proc_ditto_set_delimiters(hmt_proc *p, const hmt_token *ids, size_t n) {
    int rc = hmti_proc_enter(p, "hmt_proc_ditto_set_delimiters"); /* busy.h */
    if (rc) return rc;
    rc = ditto_set_delimiters(p, ids, n);
    hmti_proc_leave(p);
    return rc;
}
