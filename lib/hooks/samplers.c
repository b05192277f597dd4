/* llama.cpp's common samplers as next-token processors (include/hmt/sampler.h,
 * docs/PROCESSORS.md): min-p, locally typical, the repetition / frequency /
 * presence penalties and logit bias. The definitions are llama.cpp's
 * (src/llama-sampling.cpp), restated from the math in
 * tests/reference/sampler_ref.py; where llama.cpp leaves something open
 * (the order of ties, -inf inputs) the choice is stated here and there.
 *
 * A token a filter removes becomes -inf (llama.cpp shrinks its candidate
 * array instead: the same distribution). Values are computed in double and
 * rounded to float once; a kept logit is never rewritten. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/params.h"
#include "hooks/proc.h"
#include "kernels/kernels.h"

/* A token and the key it is ordered by: key ascending, then id ascending. */
typedef struct {
    double key;
    int32_t id;
} ranked;

static int ranked_cmp(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Scratch of n entries, kept across applies. */
static int grow_ranked(ranked **buf, int32_t *cap, int32_t n, const char *who) {
    if (n <= *cap) return HMT_OK;
    ranked *r = hmti_realloc(*buf, (size_t)n * sizeof *r);
    if (!r) return hmti_errf(HMT_E_NOMEM, "%s: out of memory", who);
    *buf = r;
    *cap = n;
    return HMT_OK;
}

/* Store v as token t's logit; a finite v beyond float's range is an error
 * (it would become an infinity nobody asked for). */
static int store(float *z, int32_t t, double v, const char *who) {
    if (isfinite(v) && fabs(v) > FLT_MAX)
        return hmti_errf(HMT_E_INVAL, "%s: the logit of token %d overflows float (%g)", who,
                         (int)t, v);
    z[t] = (float)v;
    return HMT_OK;
}

/* Every processor here ignores the kNN key. */
#define NO_KEY()                                                                                   \
    do {                                                                                           \
        (void)key;                                                                                 \
        (void)n_key;                                                                               \
    } while (0)

/* Create a processor over d (freed with free_fn on failure). */
static int make_proc(hmt_proc **out, const hmt_proc_i *iface, void *d, void (*free_fn)(void *),
                     int rc) {
    if (!rc) rc = hmti_proc_create_builtin(out, iface, d, NULL);
    if (rc) free_fn(d);
    return rc;
}

/* ---- filters: min-p and typical --------------------------------------------- */
typedef struct {
    double p;
    int64_t min_keep;
    ranked *buf;
    int32_t cap;
} filter;

static void filter_free(void *ud) {
    filter *f = ud;
    if (!f) return;
    free(f->buf);
    free(f);
}

/* Min-p: keep z >= max z + ln p; if fewer than min_keep pass, keep the
 * min_keep highest logits instead (ties: the lower id). */
static int min_p_apply(void *ud, float *z, int32_t n, const float *key, int32_t n_key) {
    NO_KEY();
    filter *f = ud;
    if (f->p <= 0) return HMT_OK;
    float zmax = z[0];
    for (int32_t v = 1; v < n; v++)
        if (z[v] > zmax) zmax = z[v];
    const double thr = (double)zmax + log(f->p);
    int64_t kept = 0;
    for (int32_t v = 0; v < n; v++) kept += (double)z[v] >= thr;
    if (kept >= f->min_keep) {
        for (int32_t v = 0; v < n; v++)
            if ((double)z[v] < thr) z[v] = -INFINITY;
        return HMT_OK;
    }
    if (f->min_keep >= n) return HMT_OK; /* every token is kept */
    int rc = grow_ranked(&f->buf, &f->cap, n, "min-p");
    if (rc) return rc;
    for (int32_t v = 0; v < n; v++) f->buf[v] = (ranked){-(double)z[v], v};
    qsort(f->buf, (size_t)n, sizeof *f->buf, ranked_cmp);
    for (int32_t i = (int32_t)f->min_keep; i < n; i++) z[f->buf[i].id] = -INFINITY;
    return HMT_OK;
}

/* Typical: H = entropy of softmax(z); order tokens by |-ln p - H| (ties: the
 * lower id) and keep them until their mass exceeds p, at least min_keep;
 * banned tokens (p = 0) come last and stay banned. */
static int typical_apply(void *ud, float *z, int32_t n, const float *key, int32_t n_key) {
    NO_KEY();
    filter *f = ud;
    if (f->p >= 1) return HMT_OK;
    double H;
    const double lse = hmti_logsumexp(z, n, &H);
    if (!isfinite(lse)) return HMT_OK; /* all -inf: the sampler reports it */
    int rc = grow_ranked(&f->buf, &f->cap, n, "typical");
    if (rc) return rc;
    for (int32_t v = 0; v < n; v++)
        f->buf[v] = (ranked){z[v] == -INFINITY ? INFINITY : fabs(lse - (double)z[v] - H), v};
    qsort(f->buf, (size_t)n, sizeof *f->buf, ranked_cmp);
    double cum = 0;
    int32_t last = n;
    for (int32_t i = 0; i < n; i++) {
        const float zi = z[f->buf[i].id];
        if (zi != -INFINITY) cum += exp((double)zi - lse);
        if (cum > f->p && (f->min_keep == 0 || i >= f->min_keep - 1)) {
            last = i + 1;
            break;
        }
    }
    for (int32_t i = last; i < n; i++) z[f->buf[i].id] = -INFINITY;
    return HMT_OK;
}

static int filter_create(hmt_proc **out, const hmt_params *params, hmt_param p_key,
                         const hmt_proc_i *iface, const char *fn) {
    if (!out) return hmti_errf(HMT_E_INVAL, "%s: out is NULL", fn);
    *out = NULL;
    const hmt_param keys[] = {p_key, HMT_P_MIN_KEEP};
    int rc = hmti_params_only(params, keys, HMTI_NKEYS(keys), fn);
    if (rc) return rc;
    filter *f = hmti_calloc(1, sizeof *f);
    if (!f) return hmti_errf(HMT_E_NOMEM, "%s: out of memory", fn);
    f->p = hmti_param_value(params, p_key);
    f->min_keep = (int64_t)hmti_param_value(params, HMT_P_MIN_KEEP);
    return make_proc(out, iface, f, filter_free, HMT_OK);
}

HMT_API int hmt_proc_min_p_create(hmt_proc **out, const hmt_params *params) {
    static const hmt_proc_i iface = {.struct_size = sizeof(hmt_proc_i),
                                     .name = "min-p",
                                     .apply = min_p_apply,
                                     .free_data = filter_free};
    return filter_create(out, params, HMT_P_MIN_P, &iface, "hmt_proc_min_p_create");
}

HMT_API int hmt_proc_typical_create(hmt_proc **out, const hmt_params *params) {
    static const hmt_proc_i iface = {.struct_size = sizeof(hmt_proc_i),
                                     .name = "typical",
                                     .apply = typical_apply,
                                     .free_data = filter_free};
    return filter_create(out, params, HMT_P_TYPICAL_P, &iface, "hmt_proc_typical_create");
}

/* ---- repetition / frequency / presence penalties ---------------------------- */
typedef struct {
    int32_t last_n; /* ring capacity; 0 = off */
    double repeat, freq, presence;
    hmt_token *ring; /* the last min(accepted, last_n) tokens, in any order */
    int32_t n, head;
    int32_t *count; /* n_vocab scratch, all zero between applies */
    int32_t count_cap;
} penalties;

static void penalties_free(void *ud) {
    penalties *d = ud;
    if (!d) return;
    free(d->ring);
    free(d->count);
    free(d);
}

static void penalties_accept(void *ud, hmt_token t) {
    penalties *d = ud;
    if (d->last_n == 0) return;
    d->ring[d->head] = t;
    d->head = (d->head + 1) % d->last_n;
    if (d->n < d->last_n) d->n++;
}

static void penalties_reset(void *ud) {
    penalties *d = ud;
    d->n = d->head = 0;
}

static int penalties_apply(void *ud, float *z, int32_t n_vocab, const float *key, int32_t n_key) {
    NO_KEY();
    penalties *d = ud;
    if (d->n == 0 || (d->repeat == 1 && d->freq == 0 && d->presence == 0)) return HMT_OK;
    if (n_vocab > d->count_cap) {
        int32_t *c = hmti_calloc((size_t)n_vocab, sizeof *c);
        if (!c) return hmti_errf(HMT_E_NOMEM, "penalties: out of memory");
        free(d->count);
        d->count = c;
        d->count_cap = n_vocab;
    }
    for (int32_t i = 0; i < d->n; i++)
        if (d->ring[i] < n_vocab) d->count[d->ring[i]]++; /* larger ids have no logit */
    int rc = HMT_OK;
    for (int32_t i = 0; i < d->n; i++) {
        const hmt_token t = d->ring[i];
        if (t >= n_vocab || d->count[t] == 0) continue;
        const int32_t c = d->count[t];
        d->count[t] = 0; /* each token once; the scratch is left all zero */
        double v = z[t];
        v = v <= 0 ? v * d->repeat : v / d->repeat;
        v -= c * d->freq + d->presence;
        if (!rc) rc = store(z, t, v, "penalties");
    }
    return rc;
}

HMT_API int hmt_proc_penalties_create(hmt_proc **out, const hmt_params *params) {
    static const char fn[] = "hmt_proc_penalties_create";
    if (!out) return hmti_errf(HMT_E_INVAL, "%s: out is NULL", fn);
    *out = NULL;
    static const hmt_param keys[] = {HMT_P_PENALTY_LAST_N, HMT_P_REPEAT_PENALTY,
                                     HMT_P_FREQUENCY_PENALTY, HMT_P_PRESENCE_PENALTY};
    int rc = hmti_params_only(params, keys, HMTI_NKEYS(keys), fn);
    if (rc) return rc;
    penalties *d = hmti_calloc(1, sizeof *d);
    if (!d) return hmti_errf(HMT_E_NOMEM, "%s: out of memory", fn);
    d->last_n = (int32_t)hmti_param_value(params, HMT_P_PENALTY_LAST_N);
    d->repeat = hmti_param_value(params, HMT_P_REPEAT_PENALTY);
    d->freq = hmti_param_value(params, HMT_P_FREQUENCY_PENALTY);
    d->presence = hmti_param_value(params, HMT_P_PRESENCE_PENALTY);
    if (d->last_n > 0 && !(d->ring = hmti_malloc((size_t)d->last_n * sizeof *d->ring)))
        rc = hmti_errf(HMT_E_NOMEM, "%s: out of memory", fn);
    static const hmt_proc_i iface = {.struct_size = sizeof(hmt_proc_i),
                                     .name = "penalties",
                                     .apply = penalties_apply,
                                     .accept = penalties_accept,
                                     .reset = penalties_reset,
                                     .free_data = penalties_free};
    return make_proc(out, &iface, d, penalties_free, rc);
}

/* ---- logit bias --------------------------------------------------------------- */
typedef struct {
    hmt_token *tok;
    float *bias;
    size_t n;
    int32_t n_vocab_model; /* 0 without a model */
} logit_bias;

static void logit_bias_free(void *ud) {
    logit_bias *d = ud;
    if (!d) return;
    free(d->tok);
    free(d->bias);
    free(d);
}

static int logit_bias_apply(void *ud, float *z, int32_t n_vocab, const float *key,
                            int32_t n_key) {
    NO_KEY();
    logit_bias *d = ud;
    if (d->n_vocab_model > 0 && n_vocab != d->n_vocab_model)
        return hmti_errf(HMT_E_INVAL, "logit-bias: n_vocab %d differs from the model's %d",
                         (int)n_vocab, (int)d->n_vocab_model);
    for (size_t i = 0; i < d->n; i++) /* all checked before any is applied */
        if (d->tok[i] >= n_vocab)
            return hmti_errf(HMT_E_INVAL, "logit-bias: token %d is outside the vocabulary "
                             "(n_vocab %d)", (int)d->tok[i], (int)n_vocab);
    for (size_t i = 0; i < d->n; i++) {
        int rc = store(z, d->tok[i], (double)z[d->tok[i]] + d->bias[i], "logit-bias");
        if (rc) return rc;
    }
    return HMT_OK;
}

HMT_API int hmt_proc_logit_bias_create(hmt_proc **out, const hmt_model *model,
                                       const hmt_token *tokens, const float *biases, size_t n) {
    static const char fn[] = "hmt_proc_logit_bias_create";
    if (!out) return hmti_errf(HMT_E_INVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (n > (size_t)INT32_MAX)
        return hmti_errf(HMT_E_INVAL, "%s: n = %zu pairs is more than any vocabulary", fn, n);
    if (n > 0 && (!tokens || !biases))
        return hmti_errf(HMT_E_INVAL, "%s: %s is NULL with n = %zu", fn,
                         !tokens ? "tokens" : "biases", n);
    int32_t nv = 0;
    if (model) {
        nv = hmt_model_n_vocab(model);
        if (nv <= 0) return hmti_errf(HMT_E_INVAL, "%s: the model has no vocabulary", fn);
    }
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || (nv > 0 && tokens[i] >= nv))
            return hmti_errf(HMT_E_INVAL, "%s: tokens[%zu] = %d is outside [0, %d)", fn, i,
                             (int)tokens[i], (int)(nv > 0 ? nv : INT32_MAX));
        if (isnan(biases[i]) || biases[i] == INFINITY)
            return hmti_errf(HMT_E_INVAL, "%s: biases[%zu] is %s (-inf bans a token; NaN and "
                             "+inf are refused)", fn, i, isnan(biases[i]) ? "NaN" : "+inf");
    }
    logit_bias *d = hmti_calloc(1, sizeof *d);
    if (!d) return hmti_errf(HMT_E_NOMEM, "%s: out of memory", fn);
    d->n = n;
    d->n_vocab_model = nv;
    int rc = HMT_OK;
    if (n > 0) {
        d->tok = hmti_malloc(n * sizeof *d->tok);
        d->bias = hmti_malloc(n * sizeof *d->bias);
        if (!d->tok || !d->bias) {
            rc = hmti_errf(HMT_E_NOMEM, "%s: out of memory", fn);
        } else {
            memcpy(d->tok, tokens, n * sizeof *d->tok);
            memcpy(d->bias, biases, n * sizeof *d->bias);
        }
    }
    static const hmt_proc_i iface = {.struct_size = sizeof(hmt_proc_i),
                                     .name = "logit-bias",
                                     .apply = logit_bias_apply,
                                     .free_data = logit_bias_free};
    return make_proc(out, &iface, d, logit_bias_free, rc);
}
