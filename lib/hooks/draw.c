/* The draw of a sampler: greedy, or top-k → temperature softmax → top-p → a draw from a
 * seeded xoshiro256** stream. Ties are broken by the lower token id so the
 * result never depends on sort stability. */
#include <math.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/params.h"
#include "hooks/draw.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(hmti_draw *s) {
    uint64_t *st = s->s;
    const uint64_t result = rotl(st[1] * 5, 7) * 9, t = st[1] << 17;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl(st[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double next_unit(hmti_draw *s) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

void hmti_draw_reseed(hmti_draw *s, uint64_t seed) {
    for (int i = 0; i < 4; i++) s->s[i] = splitmix64(&seed);
}

void hmti_draw_init(hmti_draw *s, const hmt_params *params) {
    s->temperature = hmti_param_value(params, HMT_P_TEMPERATURE);
    s->top_k = (int64_t)hmti_param_value(params, HMT_P_TOP_K);
    s->top_p = hmti_param_value(params, HMT_P_TOP_P);
    hmti_draw_reseed(s, (uint64_t)hmti_param_value(params, HMT_P_SEED));
}

void hmti_draw_free(hmti_draw *s) {
    free(s->work);
    s->work = NULL;
    s->work_cap = 0;
}

static int cand_desc(const void *pa, const void *pb) {
    const hmti_cand *a = pa, *b = pb;
    if (a->logit != b->logit) return a->logit > b->logit ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static int32_t argmax(const float *logits, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

int hmti_draw_sample(hmti_draw *s, const float *logits, int32_t n_vocab, hmt_token *out,
                       const char *who) {
    if (!s || !logits || !out || n_vocab <= 0)
        return hmti_errf(HMT_E_INVAL, "%s: NULL argument or n_vocab %d", who, n_vocab);
    /* the sampler's rule (hmt/sampler.h): -inf bans a token; NaN and +inf have no
     * probability, so they are refused rather than guessed at */
    int32_t any = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        if (isnan(logits[i]) || logits[i] == INFINITY)
            return hmti_errf(HMT_E_INVAL, "%s: logit %d is %s", who, i,
                             isnan(logits[i]) ? "NaN" : "+inf");
        any |= logits[i] != -INFINITY;
    }
    if (!any) return hmti_errf(HMT_E_INVAL, "%s: every logit is -inf (no token allowed)", who);
    if (s->temperature <= 0 || s->top_k == 1) {
        *out = argmax(logits, n_vocab);
        return HMT_OK;
    }
    if (n_vocab > s->work_cap) {
        hmti_cand *w = hmti_realloc(s->work, (size_t)n_vocab * sizeof *w);
        if (!w) return hmti_errf(HMT_E_NOMEM, "%s: out of memory", who);
        s->work = w;
        s->work_cap = n_vocab;
    }
    hmti_cand *c = s->work;
    for (int32_t i = 0; i < n_vocab; i++) c[i] = (hmti_cand){logits[i], i};
    qsort(c, (size_t)n_vocab, sizeof *c, cand_desc);
    int32_t n = n_vocab;
    if (s->top_k > 0 && s->top_k < n) n = (int32_t)s->top_k;
    /* softmax at temperature over the kept candidates, in double */
    double sum = 0;
    const double inv_t = 1.0 / s->temperature, top = c[0].logit;
    for (int32_t i = 0; i < n; i++) sum += exp((c[i].logit - top) * inv_t);
    /* top-p: smallest prefix whose mass reaches top_p (at least one token) */
    if (s->top_p < 1.0) {
        double acc = 0;
        int32_t keep = n;
        for (int32_t i = 0; i < n; i++) {
            acc += exp((c[i].logit - top) * inv_t) / sum;
            if (acc >= s->top_p) {
                keep = i + 1;
                break;
            }
        }
        if (keep < n) {
            n = keep;
            sum = 0;
            for (int32_t i = 0; i < n; i++) sum += exp((c[i].logit - top) * inv_t);
        }
    }
    double r = next_unit(s) * sum, acc = 0;
    for (int32_t i = 0; i < n; i++) {
        acc += exp((c[i].logit - top) * inv_t);
        if (r < acc) {
            *out = c[i].id;
            return HMT_OK;
        }
    }
    /* r landed on the rounding edge: the last candidate with any weight
     * (the best one has weight 1, so there is one; never a banned token) */
    while (n > 1 && exp((c[n - 1].logit - top) * inv_t) == 0) n--;
    *out = c[n - 1].id;
    return HMT_OK;
}
