/* Exact kNN search over a loaded datastore, the kNN-LM distribution and
 * interpolation (algorithms.md §2.4–2.5, §2.7), and the chain processor.
 *
 * Search: the datastore is split over the pool's threads in 512-key blocks
 * (split points at block multiples, so a key's place in the GEMM tiles does
 * not depend on the thread count). Per block, dot products q·k for a group of
 * up to 256 queries come from one libxsmm GEMM (hmti_gemm_cm; fewer than 4
 * queries use vectorized dots: a 1-row GEMM wastes the SIMD width), the
 * approximate distance ‖q‖² − 2q·k + ‖k‖² feeds a bounded max-heap of kc =
 * k + margin candidates per query and thread; the heaps are merged, the
 * candidates' distances recomputed directly as Σ(q−k)² (differences first:
 * no cancellation), and the k best sorted by (distance, index). */
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/params.h"
#include "hooks/knn.h"
#include "kernels/cpu.h"
#include "kernels/kernels.h"

#define KB 512      /* keys per block                                  */
#define QG 256      /* queries per GEMM group (one datastore pass each)  */
#define GEMM_MIN_Q 4 /* fewer queries: dot products                    */
#define IV_CHUNK 256 /* positions per batch in hmt_knn_interpolate    */

/* Candidates kept beyond k: absorbs GEMM rounding at the k-th boundary. */
static int64_t n_candidates(int64_t k, int64_t count) {
    int64_t margin = 32 + k / 16;
    int64_t kc = k + margin;
    return kc < count ? kc : count;
}

/* ---- bounded max-heap on (dist, idx): the root is the worst candidate ----- */
static inline int worse(float da, int64_t ia, float db, int64_t ib) {
    return da > db || (da == db && ia > ib);
}

static void heap_push(float *hd, int64_t *hi, int64_t *n, int64_t cap, float d, int64_t i) {
    int64_t c;
    if (*n < cap) {
        c = (*n)++;
        while (c > 0) {
            int64_t p = (c - 1) / 2;
            if (!worse(d, i, hd[p], hi[p])) break;
            hd[c] = hd[p];
            hi[c] = hi[p];
            c = p;
        }
        hd[c] = d;
        hi[c] = i;
        return;
    }
    if (!worse(hd[0], hi[0], d, i)) return; /* not better than the worst kept */
    c = 0;
    for (;;) {
        int64_t l = 2 * c + 1, r = l + 1, m = c;
        float md = d;
        int64_t mi = i;
        if (l < cap && worse(hd[l], hi[l], md, mi)) m = l, md = hd[l], mi = hi[l];
        if (r < cap && worse(hd[r], hi[r], md, mi)) m = r;
        if (m == c) break;
        hd[c] = hd[m];
        hi[c] = hi[m];
        c = m;
    }
    hd[c] = d;
    hi[c] = i;
}

typedef struct {
    const hmt_knn *knn;
    const float *q;  /* row-major nq × dim                   */
    float *qt;       /* column-major nq × dim (GEMM A)       */
    const float *qn; /* ‖q‖²                                 */
    int64_t nq, kc, k;
    int nth;
    float *hd;       /* heaps: [(share * nq + q) * kc]       */
    int64_t *hi;
    int64_t *hn;     /* [share * nq + q]                     */
    float **scratch; /* per share: KB*nq dots + KB*dim keys   */
    float *dist_out;
    int64_t *idx_out;
    double *exact;  /* per share: kc cands (2 doubles each) */
    int64_t *order; /* per share: 3·kc (merge heap)          */
} search_job;

static void scan_share(void *arg, int ith, int nth) {
    search_job *j = arg;
    const hmt_knn *knn = j->knn;
    const int64_t d = knn->dim, nq = j->nq, kc = j->kc;
    int64_t lo, hi;
    hmti_split_range(knn->count, ith, nth, KB, &lo, &hi);
    float *dots = j->scratch[ith], *kbuf = dots + (size_t)KB * nq;
    float *hd = j->hd + (size_t)ith * nq * kc;
    int64_t *hix = j->hi + (size_t)ith * nq * kc, *hn = j->hn + (size_t)ith * nq;
    for (int64_t q = 0; q < nq; q++) hn[q] = 0;
    for (int64_t b0 = lo; b0 < hi; b0 += KB) {
        const int64_t nb = hi - b0 < KB ? hi - b0 : KB;
        const float *keys;
        if (knn->dtype == HMT_KNN_F16) {
            hmti_row_to_f32((const uint16_t *)knn->keys_raw + (size_t)b0 * d, 1, kbuf, nb * d);
            keys = kbuf;
        } else {
            keys = (const float *)knn->keys_raw + (size_t)b0 * d;
            if (nq >= GEMM_MIN_Q) { /* a private copy: measured 1.6x faster GEMMs than
                                       reading B from the file mapping */
                memcpy(kbuf, keys, (size_t)nb * d * sizeof *kbuf);
                keys = kbuf;
            }
        }
        if (nq >= GEMM_MIN_Q) {
            /* dots (nq × nb, column-major) = Qᵀ-layout (nq × d) · K-block (d × nb) */
            hmti_gemm_cm(nq, nb, d, j->qt, nq, keys, d, dots, nq, 0.0f);
        } else {
            for (int64_t c = 0; c < nb; c++)
                for (int64_t q = 0; q < nq; q++)
                    dots[c * nq + q] = hmti_dot(j->q + q * d, keys + c * d, d);
        }
        const float *kn = knn->norms + b0;
        for (int64_t q = 0; q < nq; q++) {
            float *h = hd + q * kc;
            int64_t *hx = hix + q * kc;
            const float qn = j->qn[q];
            for (int64_t c = 0; c < nb; c++) {
                float dist = qn + kn[c] - 2.0f * dots[c * nq + q];
                if (hn[q] == kc && dist > h[0]) continue; /* fast reject */
                heap_push(h, hx, &hn[q], kc, dist, b0 + c);
            }
        }
    }
}

static void merge_share(void *arg, int ith, int nth) {
    search_job *j = arg;
    const hmt_knn *knn = j->knn;
    const int64_t d = knn->dim, kc = j->kc, nq = j->nq;
    int64_t lo, hi;
    hmti_split_range(nq, ith, nth, 1, &lo, &hi);
    float *kbuf = j->scratch[ith] + (size_t)KB * nq;
    /* this share's merge heap (kc floats + kc indices) and candidates */
    float *mh = (float *)(void *)(j->order + (size_t)ith * kc * 3);
    int64_t *mi = j->order + (size_t)ith * kc * 3 + kc;
    void *cs = j->exact + (size_t)ith * kc * 2; /* hmti_knn_rerank's scratch */
    for (int64_t q = lo; q < hi; q++) {
        int64_t mn = 0;
        for (int s = 0; s < j->nth; s++) {
            const float *h = j->hd + ((size_t)s * nq + q) * kc;
            const int64_t *hx = j->hi + ((size_t)s * nq + q) * kc;
            const int64_t n = j->hn[(size_t)s * nq + q];
            for (int64_t c = 0; c < n; c++) heap_push(mh, mi, &mn, kc, h[c], hx[c]);
        }
        hmti_knn_rerank(knn, j->q + q * d, mi, mn, j->k, j->dist_out ? j->dist_out + q * j->k : NULL,
                        j->idx_out ? j->idx_out + q * j->k : NULL, kbuf, cs);
    }
}

/* Search nq <= QG queries on nth shares (pool may be NULL: nth = 1). */
static int search_group(const hmt_knn *knn, hmti_pool *pool, int nth, const float *q, int64_t nq,
                        int64_t k, float *dist_out, int64_t *idx_out) {
    const int64_t d = knn->dim, kc = n_candidates(k, knn->count);
    search_job j = {.knn = knn, .q = q, .nq = nq, .kc = kc, .k = k, .nth = nth,
                    .dist_out = dist_out, .idx_out = idx_out};
    float *qn = hmti_malloc((size_t)nq * sizeof *qn);
    j.qt = hmti_malloc((size_t)nq * d * sizeof *j.qt);
    j.hd = hmti_malloc((size_t)nth * nq * kc * sizeof *j.hd);
    j.hi = hmti_malloc((size_t)nth * nq * kc * sizeof *j.hi);
    j.hn = hmti_malloc((size_t)nth * nq * sizeof *j.hn);
    j.scratch = hmti_calloc((size_t)nth, sizeof *j.scratch);
    j.exact = hmti_malloc((size_t)nth * kc * 2 * sizeof(double));
    j.order = hmti_malloc((size_t)nth * kc * 3 * sizeof(int64_t));
    int ok = qn && j.qt && j.hd && j.hi && j.hn && j.scratch && j.exact && j.order;
    for (int s = 0; ok && s < nth; s++)
        ok = (j.scratch[s] = hmti_malloc(((size_t)KB * nq + (size_t)KB * d) * sizeof(float))) != NULL;
    int rc = HMT_OK;
    if (ok) {
        for (int64_t i = 0; i < nq; i++) {
            double s = 0;
            for (int64_t p = 0; p < d; p++) {
                s += (double)q[i * d + p] * q[i * d + p];
                j.qt[p * nq + i] = q[i * d + p];
            }
            qn[i] = (float)s;
        }
        j.qn = qn;
        if (pool) {
            hmti_pool_run(pool, scan_share, &j);
            hmti_pool_run(pool, merge_share, &j);
        } else {
            scan_share(&j, 0, 1);
            merge_share(&j, 0, 1);
        }
    } else {
        rc = hmti_errf(HMT_E_NOMEM, "knn search: out of memory");
    }
    for (int s = 0; j.scratch && s < nth; s++) free(j.scratch[s]);
    free(j.scratch);
    free(qn);
    free(j.qt);
    free(j.hd);
    free(j.hi);
    free(j.hn);
    free(j.exact);
    free(j.order);
    return rc;
}

static int search_impl(const hmt_knn *knn, const float *queries, size_t n, int64_t k,
                       float *dist_out, int64_t *idx_out) {
    const int64_t d = knn->dim;
    for (size_t i = 0; i < n * (size_t)d; i++)
        if (!isfinite(queries[i]))
            return hmti_errf(HMT_E_INVAL, "knn search: query %zu is not finite", i / (size_t)d);
    if (knn->faiss) return hmti_knn_faiss_search(knn, queries, n, k, dist_out, idx_out);
    /* a pool busy with another user's work: search on this thread alone */
    int locked = knn->pool && knn->n_threads > 1 && hmti_pool_try_acquire(knn->pool);
    int rc = HMT_OK;
    /* bound the heaps (threads × queries × kc entries of 12 bytes) by ~24 MiB
     * per thread: large k means smaller query groups */
    const int64_t kc = n_candidates(k, knn->count);
    size_t qg = (size_t)((INT64_C(1) << 21) / kc);
    qg = qg < 1 ? 1 : qg > QG ? QG : qg;
    for (size_t q0 = 0; q0 < n && !rc; q0 += qg) {
        int64_t nq = (int64_t)(n - q0 < qg ? n - q0 : qg);
        rc = search_group(knn, locked ? knn->pool : NULL, locked ? knn->n_threads : 1,
                          queries + q0 * d, nq, k, dist_out ? dist_out + q0 * k : NULL,
                          idx_out ? idx_out + q0 * k : NULL);
    }
    if (locked) hmti_pool_unlock(knn->pool);
    return rc;
}

/* The stored value of each of n found indices (-1 for none). */
static void values_of(const hmt_knn *knn, const int64_t *idx, size_t n, hmt_token *out) {
    for (size_t j = 0; j < n; j++) out[j] = idx[j] >= 0 ? knn->values[idx[j]] : -1;
}

/* search_impl, then the stored values (idx_out may be NULL: a scratch then). */
static int search_values(const hmt_knn *knn, const float *queries, size_t n, int64_t k,
                         float *dist_out, int64_t *idx_out, hmt_token *values_out) {
    int64_t *idx = idx_out;
    if (values_out && !idx && !(idx = hmti_malloc(n * (size_t)k * sizeof *idx)))
        return hmti_errf(HMT_E_NOMEM, "knn search: out of memory");
    int rc = search_impl(knn, queries, n, k, dist_out, idx);
    if (values_out && !rc) values_of(knn, idx, n * (size_t)k, values_out);
    if (idx != idx_out) free(idx);
    return rc;
}

HMT_API int hmt_knn_search(const hmt_knn *knn, const float *queries, size_t n_queries, int32_t k,
                           float *dist_out, int64_t *idx_out, hmt_token *values_out) {
    if (!knn || !queries) return hmti_errf(HMT_E_INVAL, "knn search: NULL argument");
    if (k < 1 || n_queries == 0)
        return hmti_errf(HMT_E_INVAL, "knn search: k = %" PRId32 " and n_queries = %zu must be "
                         ">= 1", k, n_queries);
    hmti_guard *g = (hmti_guard *)&knn->guard; /* only the reader count changes */
    int rc = hmti_read_enter(g, HMTI_MAGIC_KNN, "hmt_knn_search");
    if (rc) return rc;
    rc = search_values(knn, queries, n_queries, k, dist_out, idx_out, values_out);
    hmti_read_leave(g);
    return rc;
}

/* ==== the distribution and the interpolation ================================ */
static const hmt_param KNN_KEYS[] = {HMT_P_KNN_K,           HMT_P_KNN_LAMBDA,
                                     HMT_P_KNN_TEMPERATURE, HMT_P_KNN_LAMBDA_MODE,
                                     HMT_P_KNN_BETA,        HMT_P_KNN_BIAS,
                                     HMT_P_KNN_LAMBDA_MAX};

/* KNN_KEYS[0] is HMT_P_KNN_K: with_k = 0 refuses it too. */
int hmti_knn_cfg_read(hmti_knn_cfg *c, const hmt_params *p, int with_k, const char *fn) {
    int rc = hmti_params_only(p, KNN_KEYS + !with_k, HMTI_NKEYS(KNN_KEYS) - !with_k, fn);
    if (rc) return rc;
    c->k = (int32_t)hmti_param_value(p, HMT_P_KNN_K);
    c->lambda = hmti_param_value(p, HMT_P_KNN_LAMBDA);
    c->temperature = hmti_param_value(p, HMT_P_KNN_TEMPERATURE);
    c->mode = (int)hmti_param_value(p, HMT_P_KNN_LAMBDA_MODE);
    c->beta = hmti_param_value(p, HMT_P_KNN_BETA);
    c->bias = hmti_param_value(p, HMT_P_KNN_BIAS);
    c->lambda_max = hmti_param_value(p, HMT_P_KNN_LAMBDA_MAX);
    return HMT_OK;
}

typedef struct {
    int32_t v;
    double lw;
} vw;

static int vw_cmp(const void *a, const void *b) {
    const vw *x = a, *y = b;
    return (x->v > y->v) - (x->v < y->v);
}

static double sigmoid(double x) {
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

static double logaddexp(double a, double b) {
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    double m = a > b ? a : b;
    return m + log(exp(a - m) + exp(b - m));
}

/* One position. pairs: scratch of n entries. Values were range-checked. */
static void mix(const hmti_knn_cfg *cfg, const float *dists, const int32_t *vals, int64_t n,
                const float *logits, int32_t nv, float *out, float *lambda_out, vw *pairs) {
    /* the LM: log-softmax and entropy, in double */
    double h_lm;
    const double lse = hmti_logsumexp(logits, nv, &h_lm);
    /* the retrieval distribution: log softmax(−d/τ) summed per value */
    int64_t m = 0;
    double wmax = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        if (vals[i] < 0 || !(dists[i] < INFINITY)) continue;
        pairs[m].v = vals[i];
        pairs[m].lw = -(double)dists[i] / cfg->temperature;
        if (pairs[m].lw > wmax) wmax = pairs[m].lw;
        m++;
    }
    double lambda = 0;
    int64_t ng = 0;
    if (m > 0) {
        double sw = 0;
        for (int64_t i = 0; i < m; i++) sw += exp(pairs[i].lw - wmax);
        const double lz = wmax + log(sw);
        for (int64_t i = 0; i < m; i++) pairs[i].lw -= lz;
        qsort(pairs, (size_t)m, sizeof *pairs, vw_cmp); /* stable enough: sums only */
        /* group: pairs[ng] = (value, log p_kNN(value)) */
        for (int64_t i = 0; i < m;) {
            int64_t e = i;
            double gm = -INFINITY;
            while (e < m && pairs[e].v == pairs[i].v) {
                if (pairs[e].lw > gm) gm = pairs[e].lw;
                e++;
            }
            double s = 0;
            for (int64_t t = i; t < e; t++) s += exp(pairs[t].lw - gm);
            pairs[ng].v = pairs[i].v;
            pairs[ng].lw = gm + log(s);
            ng++;
            i = e;
        }
        double h_knn = 0;
        for (int64_t g = 0; g < ng; g++)
            if (pairs[g].lw > -INFINITY) h_knn -= exp(pairs[g].lw) * pairs[g].lw;
        if (h_knn < 0) h_knn = 0;
        lambda = cfg->lambda;
        if (cfg->mode == 1) {
            lambda = cfg->lambda * sigmoid(cfg->beta * (h_lm - h_knn) + cfg->bias) /
                     sigmoid(cfg->bias);
        } else if (cfg->mode == 2) {
            double f = ng > 1 ? 1.0 - h_knn / log((double)ng) : 1.0;
            f = f < 0 ? 0 : f > 1 ? 1 : f;
            lambda = cfg->lambda * f;
        }
        if (cfg->mode != 0) lambda = lambda < 0 ? 0 : lambda > cfg->lambda_max ? cfg->lambda_max
                                                                                : lambda;
    }
    const double l1 = lambda < 1 ? log1p(-lambda) : -INFINITY;
    const double ll = lambda > 0 ? log(lambda) : -INFINITY;
    /* the mixed values of the retrieved tokens first: out may alias logits */
    if (lambda > 0)
        for (int64_t g = 0; g < ng; g++)
            pairs[g].lw = logaddexp(l1 + ((double)logits[pairs[g].v] - lse), ll + pairs[g].lw);
    for (int32_t v = 0; v < nv; v++) out[v] = (float)(l1 + ((double)logits[v] - lse));
    if (lambda > 0)
        for (int64_t g = 0; g < ng; g++) out[pairs[g].v] = (float)pairs[g].lw;
    if (lambda_out) *lambda_out = (float)lambda;
}

/* The sampler's rule for logits (hmt/sampler.h): -inf bans a token, NaN and +inf
 * are refused, and so is a row with every token banned (its log-softmax is
 * undefined). HMT_OK or HMT_E_INVAL naming position and entry. */
static int check_logits(const float *logits, size_t n, int32_t nv) {
    for (size_t p = 0; p < n; p++) {
        const float *z = logits + p * (size_t)nv;
        int any = 0;
        for (int32_t v = 0; v < nv; v++) {
            if (isnan(z[v]) || z[v] == INFINITY)
                return hmti_errf(HMT_E_INVAL, "knn interpolate: position %zu: logit %" PRId32
                                 " is %s", p, v, isnan(z[v]) ? "NaN" : "+inf");
            any |= z[v] != -INFINITY;
        }
        if (!any)
            return hmti_errf(HMT_E_INVAL, "knn interpolate: position %zu: every logit is -inf", p);
    }
    return HMT_OK;
}

HMT_API int hmt_knn_interpolate_neighbors(const hmt_params *params, const float *dists,
                                          const hmt_token *values, int32_t n_neighbors,
                                          const float *logits, int32_t n_vocab,
                                          float *logprobs_out, float *lambda_out) {
    if (!logits || !logprobs_out || n_neighbors < 0 || (n_neighbors > 0 && (!dists || !values)))
        return hmti_errf(HMT_E_INVAL, "knn interpolate: NULL argument or negative count");
    if (n_vocab < 1) return hmti_errf(HMT_E_INVAL, "knn interpolate: n_vocab %" PRId32, n_vocab);
    for (int32_t i = 0; i < n_neighbors; i++) {
        if (values[i] >= n_vocab || values[i] < -1)
            return hmti_errf(HMT_E_TOKEN, "knn interpolate: value %" PRId32 " outside [0, %"
                             PRId32 ")", values[i], n_vocab);
        if (isnan(dists[i]) || dists[i] < 0)
            return hmti_errf(HMT_E_INVAL, "knn interpolate: distance %d is negative or NaN", i);
    }
    int rc = check_logits(logits, 1, n_vocab);
    if (rc) return rc;
    hmti_knn_cfg cfg;
    if ((rc = hmti_knn_cfg_read(&cfg, params, 0, "hmt_knn_interpolate_neighbors"))) return rc;
    vw *pairs = hmti_malloc(((size_t)n_neighbors + 1) * sizeof *pairs);
    if (!pairs) return hmti_errf(HMT_E_NOMEM, "knn interpolate: out of memory");
    mix(&cfg, dists, values, n_neighbors, logits, n_vocab, logprobs_out, lambda_out, pairs);
    free(pairs);
    return HMT_OK;
}

static int knn_interpolate(const hmt_knn *knn, const hmt_params *params, const float *keys,
                           size_t n, const float *logits, int32_t n_vocab, float *logprobs_out,
                           float *lambda_out) {
    if (!knn || !keys || !logits || !logprobs_out || n == 0)
        return hmti_errf(HMT_E_INVAL, "knn interpolate: NULL argument or n = 0");
    if (n_vocab != knn->n_vocab)
        return hmti_errf(HMT_E_INVAL, "knn interpolate: n_vocab %" PRId32 " but the datastore's "
                         "model has %" PRId32, n_vocab, knn->n_vocab);
    int rc = check_logits(logits, n, n_vocab);
    if (rc) return rc;
    hmti_knn_cfg cfg;
    if ((rc = hmti_knn_cfg_read(&cfg, params, 1, "hmt_knn_interpolate"))) return rc;
    const int64_t k = cfg.k;
    int64_t chunk = (INT64_C(1) << 22) / k; /* dist + idx buffers <= 48 MiB */
    chunk = chunk < 1 ? 1 : chunk > IV_CHUNK ? IV_CHUNK : chunk;
    if ((size_t)chunk > n) chunk = (int64_t)n;
    float *dist = hmti_malloc((size_t)chunk * k * sizeof *dist);
    int64_t *idx = hmti_malloc((size_t)chunk * k * sizeof *idx);
    int32_t *vals = hmti_malloc((size_t)k * sizeof *vals);
    vw *pairs = hmti_malloc((size_t)k * sizeof *pairs);
    rc = dist && idx && vals && pairs ? HMT_OK
                                      : hmti_errf(HMT_E_NOMEM, "knn interpolate: out of memory");
    for (size_t p0 = 0; p0 < n && !rc; p0 += (size_t)chunk) {
        size_t cn = n - p0 < (size_t)chunk ? n - p0 : (size_t)chunk;
        rc = search_impl(knn, keys + p0 * (size_t)knn->dim, cn, k, dist, idx);
        for (size_t i = 0; i < cn && !rc; i++) {
            values_of(knn, idx + i * k, (size_t)k, vals);
            size_t row = (p0 + i) * (size_t)n_vocab;
            mix(&cfg, dist + i * k, vals, k, logits + row, n_vocab, logprobs_out + row,
                lambda_out ? lambda_out + p0 + i : NULL, pairs);
        }
    }
    free(dist);
    free(idx);
    free(vals);
    free(pairs);
    return rc;
}

/* A reader of the datastore's guard (busy.h) for the call. */
HMT_API int hmt_knn_interpolate(const hmt_knn *knn, const hmt_params *params, const float *keys,
                                size_t n, const float *logits, int32_t n_vocab,
                                float *logprobs_out, float *lambda_out) {
    hmti_guard *g = knn ? (hmti_guard *)&knn->guard : NULL;
    int rc = hmti_read_enter(g, HMTI_MAGIC_KNN, "hmt_knn_interpolate");
    if (rc) return rc;
    rc = knn_interpolate(knn, params, keys, n, logits, n_vocab, logprobs_out, lambda_out);
    hmti_read_leave(g);
    return rc;
}

/* ==== the processor ========================================================== */
/* hmt_sampler_prepare hands it the keys of the coming positions: they are
 * searched in one batch (a single query streams the whole datastore; a batch
 * of 256 was 4x faster on the Brown datastore), and each apply whose key is
 * the next prepared one takes its neighbours from there. */
enum { PREP_MAX = 256 };

typedef struct {
    hmt_knn *knn;
    hmti_knn_cfg cfg;
    float *dist, *tmp; /* dist: PREP_MAX × k rows; tmp: n_vocab */
    int64_t *idx;      /* PREP_MAX × k: the neighbours found */
    int32_t *vals;     /* k: the applied row's values */
    float *keys;       /* PREP_MAX × dim: the prepared keys */
    size_t n_prep, next; /* prepared rows, the next one to be applied */
    vw *pairs;
    float last_lambda;
} knn_proc;

static void knn_proc_free(void *ud) {
    knn_proc *p = ud;
    if (!p) return;
    hmti_knn_release(p->knn);
    free(p->dist);
    free(p->tmp);
    free(p->idx);
    free(p->vals);
    free(p->keys);
    free(p->pairs);
    free(p);
}

/* Search n keys (n <= PREP_MAX) into rows 0.. of dist/idx, as a reader of
 * the datastore's guard (as hmt_knn_search). */
static int knn_proc_search(knn_proc *p, const float *keys, size_t n) {
    hmti_guard *g = (hmti_guard *)&p->knn->guard;
    int rc = hmti_read_enter(g, HMTI_MAGIC_KNN, "knn processor");
    if (rc) return rc;
    rc = search_impl(p->knn, keys, n, p->cfg.k, p->dist, p->idx);
    hmti_read_leave(g);
    return rc;
}

static int knn_proc_prepare(void *ud, const float *keys, size_t n, int32_t n_key) {
    knn_proc *p = ud;
    p->n_prep = p->next = 0;
    if (n_key != p->knn->dim)
        return hmti_errf(HMT_E_INVAL, "knn processor: key of %" PRId32 " floats, the datastore's "
                         "are %" PRId32, n_key, p->knn->dim);
    if (n > PREP_MAX) n = PREP_MAX; /* the rest is searched one by one */
    int rc = knn_proc_search(p, keys, n);
    if (rc) return rc;
    memcpy(p->keys, keys, n * (size_t)n_key * sizeof *keys);
    p->n_prep = n;
    return HMT_OK;
}

static int knn_proc_apply(void *ud, float *logits, int32_t n_vocab, const float *key,
                          int32_t n_key) {
    knn_proc *p = ud;
    if (!key)
        return hmti_errf(HMT_E_MISUSE, "knn processor: no key for this position (the kNN-LM "
                         "needs the last block's FFN input: evaluate with HMT_OUT_FFN_INPUT or "
                         "HMT_P_KEEP_FFN_INPUT and pass it to the sampler)");
    if (n_key != p->knn->dim)
        return hmti_errf(HMT_E_INVAL, "knn processor: key of %" PRId32 " floats, the datastore's "
                         "are %" PRId32, n_key, p->knn->dim);
    if (n_vocab != p->knn->n_vocab)
        return hmti_errf(HMT_E_INVAL, "knn processor: n_vocab %" PRId32 " but the datastore's "
                         "model has %" PRId32, n_vocab, p->knn->n_vocab);
    const size_t k = (size_t)p->cfg.k, dim = (size_t)n_key;
    size_t row = 0;
    if (p->next < p->n_prep && !memcmp(key, p->keys + p->next * dim, dim * sizeof *key)) {
        row = p->next++;
    } else {
        p->n_prep = p->next = 0; /* off the prepared sequence: search alone */
        int rc = knn_proc_search(p, key, 1);
        if (rc) return rc;
    }
    memcpy(p->tmp, logits, (size_t)n_vocab * sizeof *logits);
    values_of(p->knn, p->idx + row * k, k, p->vals);
    mix(&p->cfg, p->dist + row * k, p->vals, (int64_t)k, p->tmp, n_vocab, logits,
        &p->last_lambda, p->pairs);
    return HMT_OK;
}

static void knn_proc_reset(void *ud) {
    knn_proc *p = ud;
    p->n_prep = p->next = 0;
}

HMT_API int hmt_proc_knn_create(hmt_proc **out, hmt_knn *knn, const hmt_params *params) {
    if (out) *out = NULL;
    if (!out || !knn) return hmti_errf(HMT_E_INVAL, "hmt_proc_knn_create: NULL argument");
    if (hmti_guard_check(&knn->guard, HMTI_MAGIC_KNN, "hmt_proc_knn_create")) return HMT_E_MISUSE;
    hmti_knn_cfg cfg;
    int rc = hmti_knn_cfg_read(&cfg, params, 1, "hmt_proc_knn_create");
    if (rc) return rc;
    knn_proc *p = hmti_calloc(1, sizeof *p);
    if (!p) return hmti_errf(HMT_E_NOMEM, "hmt_proc_knn_create: out of memory");
    hmti_knn_retain(knn); /* released in knn_proc_free: hmt_knn_free may come first */
    p->knn = knn;
    p->cfg = cfg;
    const size_t k = (size_t)p->cfg.k;
    p->dist = hmti_malloc(PREP_MAX * k * sizeof *p->dist);
    p->idx = hmti_malloc(PREP_MAX * k * sizeof *p->idx);
    p->vals = hmti_malloc(k * sizeof *p->vals);
    p->keys = hmti_malloc(PREP_MAX * (size_t)knn->dim * sizeof *p->keys);
    p->pairs = hmti_malloc(k * sizeof *p->pairs);
    p->tmp = hmti_malloc((size_t)knn->n_vocab * sizeof *p->tmp);
    if (!p->dist || !p->idx || !p->vals || !p->keys || !p->pairs || !p->tmp) {
        knn_proc_free(p);
        return hmti_errf(HMT_E_NOMEM, "hmt_proc_knn_create: out of memory");
    }
    static const hmt_proc_i iface = {
        .struct_size = sizeof(hmt_proc_i),
        .name = "knn",
        .apply = knn_proc_apply,
        .reset = knn_proc_reset,
        .free_data = knn_proc_free,
        .prepare = knn_proc_prepare,
    };
    rc = hmt_proc_create(out, &iface, p);
    if (rc) knn_proc_free(p);
    return rc;
}
