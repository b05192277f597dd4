/* kNN-LM datastores: exact search against brute force, the distribution and
 * interpolation against the NumPy golden (tests/reference/knn_ref.py), file
 * round trip and validation, building from a token stream, the processor.
 *
 * Tolerances: search distances are recomputed in double and returned as
 * float: relative 1e-6. Log-probabilities are float outputs of a double
 * computation from float inputs: |Δ| <= 2e-5 absolute (values are O(10)). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hmt/hmt.h"
#include "hmt/experimental.h"
#include "hooks/knn.h" /* hmti_knn_content_sum: forging the checksum of an edited file */
#include "util/testutil.h"

#define LP_TOL 2e-5

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

/* Build a datastore file from keys/values; returns its path (static). */
static const char *build_file(const hmt_model *m, const float *keys, const hmt_token *vals,
                              size_t n, int f16) {
    const char *path = hmt_test_tmp_path(".knn");
    static char keep[4096];
    snprintf(keep, sizeof keep, "%s", path);
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KNN_KEY_F16, f16), HMT_OK);
    hmt_knn_builder *b = NULL;
    ck_assert_int_eq(hmt_knn_builder_create(&b, m, keep, p), HMT_OK);
    /* two calls, to exercise appending */
    size_t h = n / 2;
    ck_assert_int_eq(hmt_knn_builder_add(b, keys, vals, h), HMT_OK);
    ck_assert_int_eq(hmt_knn_builder_add(b, keys + h * (size_t)hmt_model_n_embd(m), vals + h,
                                         n - h), HMT_OK);
    ck_assert_int_eq(hmt_knn_builder_count(b), (int64_t)n);
    ck_assert_msg(hmt_knn_builder_finish(b) == HMT_OK, "%s", hmt_last_error_msg());
    hmt_knn_builder_free(b);
    hmt_params_free(p);
    return keep;
}

static hmt_knn *load_knn(const hmt_model *m, const char *path, int threads) {
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, threads), HMT_OK);
    hmt_knn *knn = NULL;
    ck_assert_msg(hmt_knn_load(&knn, m, path, p) == HMT_OK, "%s", hmt_last_error_msg());
    hmt_params_free(p);
    return knn;
}

/* ---- exact search against brute force ------------------------------------ */
typedef struct {
    double d;
    int64_t i;
} pair;
static int pair_cmp(const void *a, const void *b) {
    const pair *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* loop: bit 0 = F16 keys, bit 1 = 3 threads */
START_TEST(search_matches_brute_force) {
    const int f16 = _i & 1, threads = _i & 2 ? 3 : 1;
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    const int d = hmt_model_n_embd(m);
    const size_t n = 1500; /* three 512-key blocks, the last partial */
    float *keys = malloc(n * d * sizeof *keys);
    hmt_token *vals = malloc(n * sizeof *vals);
    for (size_t i = 0; i < n * (size_t)d; i++) keys[i] = hmt_test_nrand(&rng_state);
    for (size_t i = 0; i < n; i++) vals[i] = (hmt_token)(i % 320);
    /* exact ties: duplicated keys straddling blocks and the GEMM tile edges */
    const size_t dup[] = {3, 40, 511, 512, 1033, 1499};
    for (size_t t = 1; t < sizeof dup / sizeof *dup; t++)
        memcpy(keys + dup[t] * d, keys + dup[0] * d, d * sizeof *keys);
    const char *path = build_file(m, keys, vals, n, f16);
    hmt_knn *knn = load_knn(m, path, threads);
    ck_assert_int_eq(hmt_knn_count(knn), (int64_t)n);
    ck_assert_int_eq(hmt_knn_dim(knn), d);
    ck_assert_int_eq(hmt_knn_key_dtype(knn), f16 ? HMT_KNN_F16 : HMT_KNN_F32);
    /* the stored (possibly F16-rounded) keys are the truth */
    float *stored = malloc(n * d * sizeof *stored);
    for (size_t i = 0; i < n; i++) {
        hmt_token v;
        ck_assert_int_eq(hmt_knn_copy_entry(knn, (int64_t)i, stored + i * d, (size_t)d, &v), HMT_OK);
        ck_assert_int_eq(v, vals[i]);
    }
    const size_t nq = 260; /* > one 256-query group; query 0 sits on the duplicated key */
    float *q = malloc(nq * d * sizeof *q);
    for (size_t i = 0; i < nq * (size_t)d; i++) q[i] = hmt_test_nrand(&rng_state);
    memcpy(q, stored + dup[0] * d, d * sizeof *q);
    for (size_t i = 1; i < nq; i += 7) /* some queries near stored keys */
        for (int c = 0; c < d; c++)
            q[i * d + c] = stored[(i * 13 % n) * d + c] + 0.01f * hmt_test_nrand(&rng_state);
    const int32_t ks[] = {1, 5, 64, 300, (int32_t)n + 7};
    const size_t nqs[] = {1, 3, 7, nq};
    pair *bf = malloc(n * sizeof *bf);
    for (size_t a = 0; a < sizeof ks / sizeof *ks; a++)
        for (size_t b = 0; b < sizeof nqs / sizeof *nqs; b++) {
            const int32_t k = ks[a];
            const size_t qn = nqs[b];
            float *dist = malloc(qn * k * sizeof *dist);
            int64_t *idx = malloc(qn * k * sizeof *idx);
            hmt_token *vo = malloc(qn * k * sizeof *vo);
            ck_assert_int_eq(hmt_knn_search(knn, q, qn, k, dist, idx, vo), HMT_OK);
            /* values_out: the stored value of each index, -1 past the count */
            for (size_t j = 0; j < qn * (size_t)k; j++)
                EXPECT_MSG(vo[j] == (idx[j] < 0 ? -1 : vals[idx[j]]),
                           "k=%d slot %zu: value %d for index %lld", k, j, (int)vo[j],
                           (long long)idx[j]);
            for (size_t qi = 0; qi < qn; qi++) {
                for (size_t i = 0; i < n; i++) {
                    double s = 0;
                    for (int c = 0; c < d; c++) {
                        double t = (double)q[qi * d + c] - stored[i * d + c];
                        s += t * t;
                    }
                    bf[i].d = s;
                    bf[i].i = (int64_t)i;
                }
                qsort(bf, n, sizeof *bf, pair_cmp);
                for (int32_t j = 0; j < k; j++) {
                    if ((size_t)j >= n) {
                        EXPECT_EQ(idx[qi * k + j], -1);
                        EXPECT(isinf(dist[qi * k + j]));
                        continue;
                    }
                    EXPECT_MSG(idx[qi * k + j] == bf[j].i,
                                  "f16=%d thr=%d k=%d nq=%zu q=%zu rank %d: %lld vs %lld", f16,
                                  threads, k, qn, qi, j, (long long)idx[qi * k + j],
                                  (long long)bf[j].i);
                    EXPECT_MSG(fabs(dist[qi * k + j] - bf[j].d) < 1e-6 * (1 + bf[j].d),
                               "k=%d q=%zu rank %d: distance %g vs %g", k, qi, j,
                               (double)dist[qi * k + j], bf[j].d);
                }
            }
            if (k >= 6 && qn >= 1) /* the duplicated key: lower indices first */
                for (int t = 0; t < 6; t++) ck_assert_int_eq(idx[t], (int64_t)dup[t]);
            free(dist);
            free(idx);
            free(vo);
        }
    /* any output may be NULL */
    int64_t one;
    hmt_token one_v = -7;
    ck_assert_int_eq(hmt_knn_search(knn, q, 1, 1, NULL, &one, NULL), HMT_OK);
    ck_assert_int_eq(one, (int64_t)dup[0]);
    ck_assert_int_eq(hmt_knn_search(knn, q, 1, 1, NULL, NULL, &one_v), HMT_OK);
    ck_assert_int_eq(one_v, vals[dup[0]]);
    ck_assert_int_eq(hmt_knn_search(knn, q, 1, 0, NULL, &one, NULL), HMT_E_INVAL);
    ck_assert_int_eq(hmt_knn_search(knn, q, 0, 1, NULL, &one, NULL), HMT_E_INVAL);
    q[5] = NAN;
    ck_assert_int_eq(hmt_knn_search(knn, q, 1, 1, NULL, &one, NULL), HMT_E_INVAL);
    free(bf);
    free(q);
    free(stored);
    hmt_knn_free(knn);
    unlink(path);
    free(keys);
    free(vals);
    hmt_model_free(m);
}
END_TEST

/* ---- the NumPy golden ------------------------------------------------------ */
typedef struct {
    int32_t N, d, nv, nq, k, mode;
    double lam0, tau, beta, bias, lam_max;
    const float *keys, *queries, *logits;
    const int32_t *vals;
    const int64_t *idx;
    const double *dist, *lp, *lam;
} gcase;

static size_t read_cases(const unsigned char *g, size_t len, gcase *cs, size_t cap) {
    ck_assert(len > 12 && !memcmp(g, "KNNG", 4));
    uint32_t ver, n;
    memcpy(&ver, g + 4, 4);
    memcpy(&n, g + 8, 4);
    ck_assert_uint_eq(ver, 1);
    ck_assert_uint_le(n, cap);
    size_t pos = 12;
    for (uint32_t c = 0; c < n; c++) {
        gcase *x = &cs[c];
        memcpy(&x->N, g + pos, 24);
        pos += 24;
        double f[5];
        memcpy(f, g + pos, 40);
        pos += 40;
        x->lam0 = f[0], x->tau = f[1], x->beta = f[2], x->bias = f[3], x->lam_max = f[4];
#define TAKE(field, type, count)                                 \
    do {                                                         \
        size_t nb_ = (size_t)(count) * sizeof(type);             \
        ck_assert_uint_le(pos + nb_, len);                       \
        type *p_ = malloc(nb_ ? nb_ : 1); /* aligned copy */     \
        memcpy(p_, g + pos, nb_);                                \
        x->field = p_;                                           \
        pos += nb_;                                              \
    } while (0)
        TAKE(keys, float, x->N * x->d);
        TAKE(vals, int32_t, x->N);
        TAKE(queries, float, x->nq * x->d);
        TAKE(logits, float, x->nq * x->nv);
        TAKE(idx, int64_t, x->nq * x->k);
        TAKE(dist, double, x->nq * x->k);
        TAKE(lp, double, x->nq * x->nv);
        TAKE(lam, double, x->nq);
#undef TAKE
        ck_assert_uint_le(pos, len);
    }
    ck_assert_uint_eq(pos, len);
    return n;
}

/* with_k = 0: for hmt_knn_interpolate_neighbors, which refuses HMT_P_KNN_K
 * (its neighbours are given) */
static hmt_params *case_params_k(const gcase *c, int with_k) {
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    if (with_k) ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KNN_K, c->k), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KNN_LAMBDA_MODE, c->mode), HMT_OK);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_KNN_LAMBDA, c->lam0), HMT_OK);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_KNN_TEMPERATURE, c->tau), HMT_OK);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_KNN_BETA, c->beta), HMT_OK);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_KNN_BIAS, c->bias), HMT_OK);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_KNN_LAMBDA_MAX, c->lam_max), HMT_OK);
    return p;
}

static hmt_params *case_params(const gcase *c) { return case_params_k(c, 1); }

static void check_lp(const float *got, const double *want, int nv, const char *what, int ci,
                     int qi) {
    for (int v = 0; v < nv; v++) {
        if (isinf(want[v])) {
            ck_assert_msg(isinf(got[v]) && got[v] < 0, "%s case %d q %d v %d: %g vs -inf", what,
                          ci, qi, v, got[v]);
            continue;
        }
        ck_assert_msg(fabs(got[v] - want[v]) <= LP_TOL, "%s case %d q %d v %d: %.8g vs %.8g",
                      what, ci, qi, v, got[v], want[v]);
    }
}

START_TEST(interpolation_matches_numpy) {
    size_t len = 0;
    unsigned char *g = hmt_test_read_file(hmt_test_data("knn.golden"), &len);
    ck_assert_msg(g != NULL, "knn.golden missing: run make testdata");
    gcase cs[32];
    size_t n = read_cases(g, len, cs, 32);
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    for (size_t ci = 0; ci < n; ci++) {
        const gcase *c = &cs[ci];
        ck_assert_int_eq(c->d, hmt_model_n_embd(m));
        ck_assert_int_eq(c->nv, hmt_model_n_vocab(m));
        hmt_params *p = case_params(c), *pn = case_params_k(c, 0);
        /* 1. from the golden neighbours (no datastore) */
        float *out = malloc((size_t)c->nq * c->nv * sizeof *out);
        float *fd = malloc((size_t)c->k * sizeof *fd);
        hmt_token *fv = malloc((size_t)c->k * sizeof *fv);
        for (int qi = 0; qi < c->nq; qi++) {
            for (int j = 0; j < c->k; j++) {
                int64_t id = c->idx[qi * c->k + j];
                fd[j] = (float)c->dist[qi * c->k + j];
                fv[j] = id >= 0 ? c->vals[id] : -1;
            }
            float lam;
            ck_assert_int_eq(hmt_knn_interpolate_neighbors(pn, fd, fv, c->k,
                                                           c->logits + (size_t)qi * c->nv, c->nv,
                                                           out, &lam), HMT_OK);
            ck_assert_double_eq_tol(lam, c->lam[qi], 1e-6);
            check_lp(out, c->lp + (size_t)qi * c->nv, c->nv, "neighbors", (int)ci, qi);
        }
        /* 2. end to end: datastore file, exact search, batched interpolation */
        hmt_token *vals = malloc((size_t)c->N * sizeof *vals);
        memcpy(vals, c->vals, (size_t)c->N * sizeof *vals);
        const char *path = build_file(m, c->keys, vals, (size_t)c->N, 0);
        hmt_knn *knn = load_knn(m, path, 2);
        float *dist = malloc((size_t)c->nq * c->k * sizeof *dist);
        int64_t *idx = malloc((size_t)c->nq * c->k * sizeof *idx);
        hmt_token *vo = malloc((size_t)c->nq * c->k * sizeof *vo);
        ck_assert_int_eq(hmt_knn_search(knn, c->queries, (size_t)c->nq, c->k, dist, idx, vo),
                         HMT_OK);
        for (int j = 0; j < c->nq * c->k; j++) {
            ck_assert_int_eq(vo[j], idx[j] < 0 ? -1 : c->vals[idx[j]]);
            ck_assert_msg(idx[j] == c->idx[j], "case %zu: neighbour %d: %lld vs %lld", ci, j,
                          (long long)idx[j], (long long)c->idx[j]);
            if (c->idx[j] >= 0) ck_assert_double_eq_tol(dist[j], c->dist[j], 1e-6 * (1 + c->dist[j]));
        }
        float *lams = malloc((size_t)c->nq * sizeof *lams);
        ck_assert_int_eq(hmt_knn_interpolate(knn, p, c->queries, (size_t)c->nq, c->logits, c->nv,
                                             out, lams), HMT_OK);
        for (int qi = 0; qi < c->nq; qi++) {
            ck_assert_double_eq_tol(lams[qi], c->lam[qi], 1e-6);
            check_lp(out + (size_t)qi * c->nv, c->lp + (size_t)qi * c->nv, c->nv, "datastore",
                     (int)ci, qi);
        }
        /* 3. the sampler's processor gives the same distribution */
        hmt_sampler *chain = NULL;
        hmt_proc *proc = NULL;
        ck_assert_int_eq(hmt_sampler_create(&chain, NULL), HMT_OK);
        ck_assert_int_eq(hmt_proc_knn_create(&proc, knn, p), HMT_OK);
        ck_assert_int_eq(hmt_sampler_add(chain, proc), HMT_OK);
        hmt_proc_free(proc);
        if (c->lam0 < 1) /* λ = 1 leaves -inf entries: fine, but the chain needs one finite */
            for (int qi = 0; qi < c->nq; qi++) {
                ck_assert_msg(hmt_sampler_apply(chain, c->logits + (size_t)qi * c->nv, c->nv,
                                                c->queries + (size_t)qi * c->d, c->d,
                                                out) == HMT_OK,
                              "%s", hmt_last_error_msg());
                check_lp(out, c->lp + (size_t)qi * c->nv, c->nv, "processor", (int)ci, qi);
            }
        hmt_sampler_free(chain);
        free(vo);
        free(lams);
        free(dist);
        free(idx);
        hmt_knn_free(knn);
        unlink(path);
        free(vals);
        free(fd);
        free(fv);
        free(out);
        hmt_params_free(p);
        hmt_params_free(pn);
        free((void *)c->keys), free((void *)c->vals), free((void *)c->queries);
        free((void *)c->logits), free((void *)c->idx), free((void *)c->dist);
        free((void *)c->lp), free((void *)c->lam);
    }
    hmt_model_free(m);
    free(g);
}
END_TEST

START_TEST(defaults_reproduce_knnlm) {
    /* defaults: k 1024, λ 0.25 fixed, τ 1 */
    float d[3] = {0.5f, 1.0f, 2.0f};
    hmt_token v[3] = {2, 2, 0};
    float logits[4] = {0.1f, -1.0f, 2.0f, 0.3f}, out[4], lam;
    ck_assert_int_eq(hmt_knn_interpolate_neighbors(NULL, d, v, 3, logits, 4, out, &lam), HMT_OK);
    ck_assert_float_eq(lam, 0.25f);
    double z = exp(-0.5) + exp(-1.0) + exp(-2.0), s = 0;
    for (int i = 0; i < 4; i++) s += exp(logits[i]);
    double pk[4] = {exp(-2.0) / z, 0, (exp(-0.5) + exp(-1.0)) / z, 0};
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq_tol(exp(out[i]), 0.25 * pk[i] + 0.75 * exp(logits[i]) / s, 1e-6);
    /* in place (documented: logprobs_out may alias logits): the same values */
    float inplace[4];
    memcpy(inplace, logits, sizeof inplace);
    ck_assert_int_eq(hmt_knn_interpolate_neighbors(NULL, d, v, 3, inplace, 4, inplace, NULL),
                     HMT_OK);
    for (int i = 0; i < 4; i++) ck_assert_float_eq(inplace[i], out[i]);
    /* λ = 0: the LM unchanged; entropy_gap with β = 0 equals fixed */
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KNN_LAMBDA_MODE, 1), HMT_OK);
    float out2[4];
    ck_assert_int_eq(hmt_knn_interpolate_neighbors(p, d, v, 3, logits, 4, out2, &lam), HMT_OK);
    ck_assert_float_eq(lam, 0.25f);
    for (int i = 0; i < 4; i++) ck_assert_float_eq_tol(out2[i], out[i], 1e-7);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_KNN_LAMBDA, 0.0), HMT_OK);
    ck_assert_int_eq(hmt_knn_interpolate_neighbors(p, d, v, 3, logits, 4, out2, NULL), HMT_OK);
    for (int i = 0; i < 4; i++) ck_assert_double_eq_tol(out2[i], logits[i] - log(s), 1e-6);
    /* errors */
    v[1] = 4;
    ck_assert_int_eq(hmt_knn_interpolate_neighbors(p, d, v, 3, logits, 4, out2, NULL),
                     HMT_E_TOKEN);
    ck_assert_int_eq(hmt_knn_interpolate_neighbors(p, d, v, 3, NULL, 4, out2, NULL), HMT_E_INVAL);
    hmt_params_free(p);
}
END_TEST

/* ---- the file: round trip, validation --------------------------------------- */
static void put_u64(unsigned char *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }
static uint64_t fnv(const unsigned char *b, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
static void fix_checksum(unsigned char *b) { put_u64(b, 88, fnv(b, 88)); }
/* After editing keys or values: their content checksum, then the header's. */
static void fix_content(unsigned char *b, size_t len) {
    uint64_t koff, sum;
    memcpy(&koff, b + 40, 8);
    ck_assert_int_eq(hmti_knn_content_sum(NULL, b + koff, len - koff, &sum), HMT_OK);
    put_u64(b, 80, sum);
    fix_checksum(b);
}

static int try_load(const hmt_model *m, const unsigned char *buf, size_t len) {
    const char *path = hmt_test_tmp_path(".knn");
    ck_assert_int_eq(hmt_test_write_file(path, buf, len), 0);
    hmt_knn *knn = (hmt_knn *)1;
    int rc = hmt_knn_load(&knn, m, path, NULL);
    if (rc) ck_assert_ptr_null(knn);
    hmt_knn_free(knn);
    unlink(path);
    return rc;
}

START_TEST(file_round_trip_and_validation) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    const int d = hmt_model_n_embd(m);
    const size_t n = 37;
    float keys[37 * 64];
    hmt_token vals[37];
    for (size_t i = 0; i < n * (size_t)d; i++) keys[i] = hmt_test_nrand(&rng_state);
    for (size_t i = 0; i < n; i++) vals[i] = (hmt_token)(i * 7 % 320);
    for (int f16 = 0; f16 < 2; f16++) {
        const char *path = build_file(m, keys, vals, n, f16);
        ck_assert_int_eq(hmt_test_temporaries(path), 0); /* renamed away */
        size_t len;
        unsigned char *good = hmt_test_read_file(path, &len);
        const size_t kbytes = n * d * (f16 ? 2 : 4), voff = (128 + kbytes + 63) / 64 * 64;
        ck_assert_uint_eq(len, voff + n * 4); /* header, keys, padding, values */
        hmt_knn *knn = load_knn(m, path, 1);
        ck_assert_double_eq(hmt_knn_bytes_per_key(knn), d * (f16 ? 2.0 : 4.0) + 8);
        float k[64];
        hmt_token v;
        for (size_t i = 0; i < n; i++) {
            ck_assert_int_eq(hmt_knn_copy_entry(knn, (int64_t)i, k, 64, &v), HMT_OK);
            ck_assert_int_eq(v, vals[i]);
            for (int c = 0; c < d; c++) {
                if (f16)
                    ck_assert_float_eq_tol(k[c], keys[i * d + c], 1e-3 * (1 + fabsf(keys[i * d + c])));
                else
                    ck_assert_float_eq(k[c], keys[i * d + c]);
            }
        }
        ck_assert_int_eq(hmt_knn_copy_entry(knn, (int64_t)n, k, 64, &v), HMT_E_INVAL);
        ck_assert_int_eq(hmt_knn_copy_entry(knn, 0, k, 10, &v), HMT_E_BUFFER);
        hmt_knn_free(knn);

        unsigned char *b = malloc(len + 64);
        /* every truncation is refused */
        for (size_t cut = 0; cut < len; cut += (cut < 200 ? 1 : 97)) {
            ck_assert_int_eq(try_load(m, good, cut), HMT_E_FORMAT);
        }
        /* appended garbage */
        memcpy(b, good, len);
        memset(b + len, 0, 64);
        ck_assert_int_eq(try_load(m, b, len + 64), HMT_E_FORMAT);
        /* magic */
        memcpy(b, good, len);
        b[0] ^= 1;
        ck_assert_int_eq(try_load(m, b, len), HMT_E_FORMAT);
        ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "magic"));
        /* a header byte without fixing the checksum */
        memcpy(b, good, len);
        b[33] ^= 1;
        ck_assert_int_eq(try_load(m, b, len), HMT_E_FORMAT);
        ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "checksum"));
        /* huge count (checksum fixed): overflow / size checks */
        memcpy(b, good, len);
        put_u64(b, 32, UINT64_MAX / 3);
        fix_checksum(b);
        ck_assert_int_eq(try_load(m, b, len), HMT_E_FORMAT);
        /* keys offset pointing past the end */
        memcpy(b, good, len);
        put_u64(b, 40, UINT64_MAX - 63);
        fix_checksum(b);
        ck_assert_int_eq(try_load(m, b, len), HMT_E_FORMAT);
        /* newer version */
        memcpy(b, good, len);
        b[8] = 3;
        fix_checksum(b);
        ck_assert_int_eq(try_load(m, b, len), HMT_E_UNSUPPORTED);
        /* version 1 (no content checksum): refused, with what to do */
        memcpy(b, good, len);
        b[8] = 1;
        fix_checksum(b);
        ck_assert_int_eq(try_load(m, b, len), HMT_E_UNSUPPORTED);
        ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "rebuild"));
        /* one key bit, header untouched: the content checksum */
        memcpy(b, good, len);
        b[128 + 5] ^= 0x10;
        ck_assert_int_eq(try_load(m, b, len), HMT_E_FORMAT);
        ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "content checksum"));
        /* a value out of range */
        memcpy(b, good, len);
        int32_t bad = 320;
        memcpy(b + voff + 4 * 5, &bad, 4);
        fix_content(b, len);
        ck_assert_int_eq(try_load(m, b, len), HMT_E_FORMAT);
        ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "value 320"));
        /* a non-finite key */
        memcpy(b, good, len);
        memset(b + 128 + 3 * d * (f16 ? 2 : 4), 0xff, 4);
        fix_content(b, len);
        ck_assert_int_eq(try_load(m, b, len), HMT_E_FORMAT);
        ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "not finite"));
        free(b);
        free(good);

        /* the same shape, another model: refused */
        hmt_model *other = hmt_test_load_model("llama-tied-f16.gguf");
        ck_assert_int_eq(hmt_model_n_embd(other), d);
        ck_assert_int_eq(hmt_model_n_vocab(other), 320);
        hmt_knn *x = NULL;
        ck_assert_int_eq(hmt_knn_load(&x, other, path, NULL), HMT_E_INVAL);
        ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "another model"));
        hmt_model_free(other);
        unlink(path);
    }
    hmt_knn *x = NULL;
    ck_assert_int_eq(hmt_knn_load(&x, m, "/nonexistent/x.knn", NULL), HMT_E_IO);
    ck_assert_int_eq(hmt_knn_load(&x, NULL, "x", NULL), HMT_E_INVAL);
    hmt_model_free(m);
}
END_TEST

START_TEST(builder_misuse) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    const char *path = hmt_test_tmp_path(".knn");
    char keep[4096];
    snprintf(keep, sizeof keep, "%s", path);
    hmt_knn_builder *b = NULL;
    ck_assert_int_eq(hmt_knn_builder_create(&b, m, keep, NULL), HMT_OK);
    ck_assert_int_eq(hmt_test_temporaries(keep), 1);
    ck_assert_int_eq(hmt_knn_builder_finish(b), HMT_E_MISUSE); /* empty */
    float key[64] = {0};
    hmt_token v = 320;
    ck_assert_int_eq(hmt_knn_builder_add(b, key, &v, 1), HMT_E_TOKEN);
    v = 1;
    key[3] = INFINITY;
    ck_assert_int_eq(hmt_knn_builder_add(b, key, &v, 1), HMT_E_INVAL);
    ck_assert_int_eq(hmt_knn_builder_count(b), 0);
    key[3] = 0;
    ck_assert_int_eq(hmt_knn_builder_add(b, key, &v, 1), HMT_OK);
    hmt_knn_builder_free(b); /* unfinished: the temporary file goes away */
    ck_assert_int_eq(hmt_test_temporaries(keep), 0);
    ck_assert_int_ne(access(keep, F_OK), 0);
    ck_assert_int_eq(hmt_knn_builder_create(&b, m, keep, NULL), HMT_OK);
    ck_assert_int_eq(hmt_knn_builder_add(b, key, &v, 1), HMT_OK);
    ck_assert_int_eq(hmt_knn_builder_finish(b), HMT_OK);
    ck_assert_int_eq(hmt_knn_builder_finish(b), HMT_E_MISUSE);
    ck_assert_int_eq(hmt_knn_builder_add(b, key, &v, 1), HMT_E_MISUSE);
    hmt_knn_builder_free(b);
    ck_assert_int_eq(access(keep, F_OK), 0);
    unlink(keep);
    ck_assert_int_eq(hmt_knn_builder_create(&b, m, "/nonexistent/dir/x.knn", NULL), HMT_E_IO);
    ck_assert_ptr_null(b);
    hmt_knn_builder_free(NULL);
    hmt_knn_free(NULL);
    hmt_model_free(m);
}
END_TEST

/* ---- built from a token stream ------------------------------------------------ */
static int count_progress(void *ud, int64_t done, int64_t total) {
    int *calls = ud;
    ck_assert_int_le(done, total);
    (*calls)++;
    return 0;
}
static int stop_progress(void *ud, int64_t done, int64_t total) {
    (void)ud, (void)done, (void)total;
    return 1;
}

START_TEST(built_from_tokens_equals_ffn_input) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    const int d = hmt_model_n_embd(m);
    enum { N = 75, WIN = 32, BATCH = 12 };
    hmt_token toks[N];
    for (int i = 0; i < N; i++) toks[i] = (hmt_token)((i * 37 + 11) % 320);
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_CTX, WIN), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_BATCH, BATCH), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, 2), HMT_OK);
    hmt_ctx *ctx = NULL;
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_OK);
    const char *path = hmt_test_tmp_path(".knn");
    char keep[4096];
    snprintf(keep, sizeof keep, "%s", path);
    hmt_knn_builder *b = NULL;
    ck_assert_int_eq(hmt_knn_builder_create(&b, m, keep, NULL), HMT_OK);
    ck_assert_int_eq(hmt_knn_builder_add_ctx(b, ctx, toks, 20, stop_progress, NULL),
                     HMT_E_ABORTED);
    hmt_knn_builder_free(b);
    ck_assert_int_eq(hmt_knn_builder_create(&b, m, keep, NULL), HMT_OK);
    int calls = 0;
    ck_assert_msg(hmt_knn_builder_add_ctx(b, ctx, toks, N, count_progress, &calls) == HMT_OK,
                  "%s", hmt_last_error_msg());
    ck_assert_int_eq(calls, 7); /* windows 32+32+11 in chunks of 12: 3 + 3 + 1 */
    ck_assert_int_eq(hmt_knn_builder_count(b), N - 1);
    ck_assert_int_eq(hmt_knn_builder_finish(b), HMT_OK);
    hmt_knn_builder_free(b);
    hmt_knn *knn = load_knn(m, keep, 1);
    ck_assert_int_eq(hmt_knn_count(knn), N - 1);
    /* reference: the same windows evaluated in one batch each, FFN inputs read */
    hmt_ctx *ref = NULL;
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_BATCH, WIN), HMT_OK);
    ck_assert_int_eq(hmt_ctx_create(&ref, m, p), HMT_OK);
    uint8_t outs[WIN];
    memset(outs, HMT_OUT_FFN_INPUT, sizeof outs);
    float key[64];
    double worst = 0;
    for (int w0 = 0; w0 < N; w0 += WIN) {
        int wn = N - w0 < WIN ? N - w0 : WIN;
        ck_assert_int_eq(hmt_ctx_kv_clear(ref), HMT_OK);
        ck_assert_int_eq(hmt_ctx_eval(ref, toks + w0, NULL, (size_t)wn, NULL, outs), HMT_OK);
        for (int i = 0; i < wn && w0 + i + 1 < N; i++) {
            const float *f = hmt_ctx_ffn_input(ref, i);
            ck_assert_ptr_nonnull(f);
            hmt_token v;
            ck_assert_int_eq(hmt_knn_copy_entry(knn, w0 + i, key, 64, &v), HMT_OK);
            ck_assert_int_eq(v, toks[w0 + i + 1]);
            for (int c = 0; c < d; c++) {
                double e = fabs(key[c] - f[c]);
                if (e > worst) worst = e;
            }
        }
    }
    ck_assert_msg(worst < 1e-4, "keys differ from hmt_ctx_ffn_input by %g", worst);
    /* the nearest stored key of a stored key is itself (distance 0) */
    float dist[2];
    int64_t idx[2];
    ck_assert_int_eq(hmt_knn_copy_entry(knn, 40, key, 64, NULL), HMT_OK);
    hmt_token vo[2];
    ck_assert_int_eq(hmt_knn_search(knn, key, 1, 2, dist, idx, vo), HMT_OK);
    ck_assert_int_eq(idx[0], 40);
    ck_assert_int_eq(vo[0], toks[41]);
    ck_assert_float_eq(dist[0], 0.0f);
    /* the processor: no key -> misuse with a clear message; wrong width -> inval */
    hmt_sampler *chain = NULL;
    hmt_proc *proc = NULL;
    ck_assert_int_eq(hmt_sampler_create(&chain, NULL), HMT_OK);
    ck_assert_int_eq(hmt_proc_knn_create(&proc, knn, NULL), HMT_OK);
    ck_assert_int_eq(hmt_sampler_add(chain, proc), HMT_OK);
    hmt_proc_free(proc);
    const float *lg = hmt_ctx_logits(ref, -1);
    float *lp = malloc(320 * sizeof *lp), *lg2 = malloc(320 * sizeof *lg2);
    for (int v = 0; v < 320; v++) lg2[v] = (float)((v * 31) % 17) * 0.1f;
    (void)lg;
    ck_assert_int_eq(hmt_sampler_apply(chain, lg2, 320, NULL, 0, lp), HMT_E_MISUSE);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "key"));
    ck_assert_int_eq(hmt_sampler_apply(chain, lg2, 320, key, 10, lp), HMT_E_INVAL);
    ck_assert_int_eq(hmt_sampler_apply(chain, lg2, 320, key, 64, lp), HMT_OK);
    double s = 0;
    for (int v = 0; v < 320; v++) s += exp(lp[v]);
    ck_assert_double_eq_tol(s, 1.0, 1e-5);
    hmt_sampler_free(chain);
    ck_assert_int_eq(hmt_proc_knn_create(NULL, knn, NULL), HMT_E_INVAL);
    free(lp);
    free(lg2);
    hmt_knn_free(knn);
    unlink(keep);

    /* through a stream (plain segments): n - 1 pairs, values the next tokens */
    hmt_params *sp = NULL;
    ck_assert_int_eq(hmt_params_create(&sp), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(sp, HMT_P_MODE, HMT_MODE_SEGMENTS), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(sp, HMT_P_SEGMENT_LENGTH, 16), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(sp, HMT_P_ALL_LOGITS, 0), HMT_OK);
    hmt_stream *st = NULL;
    ck_assert_msg(hmt_stream_create(&st, m, NULL, sp) == HMT_OK, "%s", hmt_last_error_msg());
    ck_assert_int_eq(hmt_knn_builder_create(&b, m, keep, NULL), HMT_OK);
    ck_assert_msg(hmt_knn_builder_add_stream(b, st, toks, N, NULL, NULL) == HMT_OK, "%s",
                  hmt_last_error_msg());
    /* the caller's settings are its own: restored after the call */
    double setting = -1;
    ck_assert_int_eq(hmt_stream_get(st, HMT_P_ALL_LOGITS, &setting), HMT_OK);
    ck_assert_double_eq(setting, 0);
    ck_assert_int_eq(hmt_stream_get(st, HMT_P_KEEP_FFN_INPUT, &setting), HMT_OK);
    ck_assert_double_eq(setting, 0);
    ck_assert_int_eq(hmt_knn_builder_count(b), N - 1);
    ck_assert_int_eq(hmt_knn_builder_finish(b), HMT_OK);
    hmt_knn_builder_free(b);
    knn = load_knn(m, keep, 1);
    for (int i = 0; i < N - 1; i++) {
        hmt_token v;
        ck_assert_int_eq(hmt_knn_copy_entry(knn, i, key, 64, &v), HMT_OK);
        ck_assert_int_eq(v, toks[i + 1]);
    }
    /* segment 0 of the stream = window 0 of a plain context of the same tokens */
    ck_assert_int_eq(hmt_ctx_kv_clear(ref), HMT_OK);
    ck_assert_int_eq(hmt_ctx_eval(ref, toks, NULL, 16, NULL, outs), HMT_OK);
    ck_assert_int_eq(hmt_knn_copy_entry(knn, 9, key, 64, NULL), HMT_OK);
    for (int c = 0; c < d; c++) ck_assert_float_eq_tol(key[c], hmt_ctx_ffn_input(ref, 9)[c], 1e-4);
    hmt_knn_free(knn);
    unlink(keep);
    hmt_stream_free(st);
    hmt_params_free(sp);
    hmt_ctx_free(ref);
    hmt_ctx_free(ctx);
    hmt_params_free(p);
    hmt_model_free(m);
}
END_TEST

/* ---- hmt_sampler_prepare: the batched search changes nothing ---------------- */
/* A kNN processor given the keys of the coming positions by
 * hmt_sampler_prepare returns, at each of them, the very bits it returns
 * without prepare; an apply whose key is not the next prepared one (out of
 * order, or a key never prepared) is still right. 300 positions: more than
 * one prepared batch (256). */
START_TEST(prepare_is_bit_identical) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    const int32_t d = hmt_model_n_embd(m), nv = hmt_model_n_vocab(m);
    enum { N = 600, NQ = 300 };
    float *keys = malloc((size_t)N * d * sizeof *keys);
    hmt_token *vals = malloc(N * sizeof *vals);
    uint64_t st = 77;
    for (size_t i = 0; i < (size_t)N * d; i++) keys[i] = hmt_test_nrand(&st);
    for (int i = 0; i < N; i++) vals[i] = (hmt_token)((i * 7) % nv);
    const char *path = build_file(m, keys, vals, N, 0);
    char keep[4096];
    snprintf(keep, sizeof keep, "%s", path);
    hmt_knn *knn = load_knn(m, keep, 2);
    float *q = malloc((size_t)NQ * d * sizeof *q), *lg = malloc((size_t)NQ * nv * sizeof *lg);
    for (size_t i = 0; i < (size_t)NQ * d; i++) q[i] = hmt_test_nrand(&st);
    for (int i = 0; i < NQ; i += 3) /* some right next to stored keys */
        for (int c = 0; c < d; c++)
            q[(size_t)i * d + c] = keys[(size_t)(i * 11 % N) * d + c] + 0.01f * hmt_test_nrand(&st);
    for (size_t i = 0; i < (size_t)NQ * nv; i++) lg[i] = 2.0f * hmt_test_nrand(&st);
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KNN_K, 16), HMT_OK);
    hmt_sampler *plain, *prep;
    hmt_proc *pa, *pb;
    ck_assert_int_eq(hmt_sampler_create(&plain, NULL), HMT_OK);
    ck_assert_int_eq(hmt_sampler_create(&prep, NULL), HMT_OK);
    ck_assert_int_eq(hmt_proc_knn_create(&pa, knn, p), HMT_OK);
    ck_assert_int_eq(hmt_proc_knn_create(&pb, knn, p), HMT_OK);
    ck_assert_int_eq(hmt_sampler_add(plain, pa), HMT_OK);
    ck_assert_int_eq(hmt_sampler_add(prep, pb), HMT_OK);
    hmt_proc_free(pa);
    hmt_proc_free(pb);
    hmt_knn_free(knn); /* the processors hold it */
    float *ref = malloc((size_t)NQ * nv * sizeof *ref), *out = malloc((size_t)nv * sizeof *out);
    for (int i = 0; i < NQ; i++)
        ck_assert_int_eq(hmt_sampler_apply(plain, lg + (size_t)i * nv, nv, q + (size_t)i * d, d,
                                           ref + (size_t)i * nv),
                         HMT_OK);
    /* in order, after one prepare of every position */
    ck_assert_int_eq(hmt_sampler_prepare(prep, q, NQ, d), HMT_OK);
    for (int i = 0; i < NQ; i++) {
        ck_assert_int_eq(hmt_sampler_apply(prep, lg + (size_t)i * nv, nv, q + (size_t)i * d, d,
                                           out),
                         HMT_OK);
        ck_assert_msg(!memcmp(out, ref + (size_t)i * nv, (size_t)nv * sizeof *out),
                      "position %d differs with prepare", i);
        ck_assert_int_eq(hmt_sampler_accept(prep, 1), HMT_OK);
    }
    /* prepared 0..9, but position 5 comes first, then 0..9 in order, then a
     * key that was never prepared */
    ck_assert_int_eq(hmt_sampler_prepare(prep, q, 10, d), HMT_OK);
    const int order[12] = {5, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 200};
    for (int j = 0; j < 12; j++) {
        const int i = order[j];
        ck_assert_int_eq(hmt_sampler_apply(prep, lg + (size_t)i * nv, nv, q + (size_t)i * d, d,
                                           out),
                         HMT_OK);
        ck_assert_msg(!memcmp(out, ref + (size_t)i * nv, (size_t)nv * sizeof *out),
                      "step %d (position %d) differs after an out-of-order apply", j, i);
    }
    /* reset forgets the prepared keys; prepare with a wrong key width fails */
    ck_assert_int_eq(hmt_sampler_prepare(prep, q, 4, d), HMT_OK);
    hmt_sampler_reset(prep);
    ck_assert_int_eq(hmt_sampler_apply(prep, lg + 3 * (size_t)nv, nv, q + 3 * (size_t)d, d, out),
                     HMT_OK);
    ck_assert(!memcmp(out, ref + 3 * (size_t)nv, (size_t)nv * sizeof *out));
    ck_assert_int_eq(hmt_sampler_prepare(prep, q, 4, d - 1), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "knn"));
    hmt_sampler_free(plain);
    hmt_sampler_free(prep);
    hmt_params_free(p);
    unlink(keep);
    free(keys), free(vals), free(q), free(lg), free(ref), free(out);
    hmt_model_free(m);
}
END_TEST

/* API 0.2: each datastore function reads its own keys and refuses the
 * others, naming them; keys never set are never refused. */
START_TEST(knn_functions_refuse_foreign_keys) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    const int32_t d = hmt_model_n_embd(m), nv = hmt_model_n_vocab(m);
    enum { N = 40 };
    float *keys = malloc((size_t)N * d * sizeof *keys);
    hmt_token vals[N];
    uint64_t st = 3;
    for (size_t i = 0; i < (size_t)N * d; i++) keys[i] = hmt_test_nrand(&st);
    for (int i = 0; i < N; i++) vals[i] = (hmt_token)(i % nv);
    hmt_params *knn_k = NULL, *threads = NULL, *f16 = NULL;
    ck_assert_int_eq(hmt_params_create(&knn_k), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(knn_k, HMT_P_KNN_K, 4), HMT_OK);
    ck_assert_int_eq(hmt_params_create(&threads), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(threads, HMT_P_N_THREADS, 1), HMT_OK);
    ck_assert_int_eq(hmt_params_create(&f16), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(f16, HMT_P_KNN_KEY_F16, 1), HMT_OK);
    const char *path = hmt_test_tmp_path(".knn");
    char keep[4096];
    snprintf(keep, sizeof keep, "%s", path);
    hmt_knn_builder *b = NULL;
    ck_assert_int_eq(hmt_knn_builder_create(&b, m, keep, threads), HMT_E_INVAL);
    ck_assert_ptr_null(b);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "n_threads"));
    ck_assert_int_eq(hmt_knn_builder_create(&b, m, keep, f16), HMT_OK);
    ck_assert_int_eq(hmt_knn_builder_add(b, keys, vals, N), HMT_OK);
    ck_assert_int_eq(hmt_knn_builder_finish(b), HMT_OK);
    hmt_knn_builder_free(b);
    hmt_knn *knn = NULL;
    ck_assert_int_eq(hmt_knn_load(&knn, m, keep, knn_k), HMT_E_INVAL);
    ck_assert_ptr_null(knn);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "knn_k"));
    ck_assert_int_eq(hmt_knn_load(&knn, m, keep, f16), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "knn_key_f16"));
    ck_assert_int_eq(hmt_knn_load(&knn, m, keep, threads), HMT_OK);
    hmt_proc *p = NULL;
    ck_assert_int_eq(hmt_proc_knn_create(&p, knn, threads), HMT_E_INVAL);
    ck_assert_ptr_null(p);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "n_threads"));
    float *lg = calloc((size_t)nv, sizeof *lg), *out = malloc((size_t)nv * sizeof *out);
    ck_assert_int_eq(hmt_knn_interpolate(knn, threads, keys, 1, lg, nv, out, NULL), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "n_threads"));
    ck_assert_int_eq(hmt_knn_interpolate(knn, knn_k, keys, 1, lg, nv, out, NULL), HMT_OK);
    const float dist[2] = {1, 2};
    ck_assert_int_eq(hmt_knn_interpolate_neighbors(f16, dist, vals, 2, lg, nv, out, NULL),
                     HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "knn_key_f16"));
    ck_assert_int_eq(hmt_proc_knn_create(&p, knn, knn_k), HMT_OK);
    hmt_proc_free(p);
    hmt_params *fresh = NULL; /* nothing set: every one of them takes it */
    ck_assert_int_eq(hmt_params_create(&fresh), HMT_OK);
    ck_assert_int_eq(hmt_proc_knn_create(&p, knn, fresh), HMT_OK);
    hmt_proc_free(p);
    ck_assert_int_eq(hmt_knn_interpolate(knn, fresh, keys, 1, lg, nv, out, NULL), HMT_OK);
    hmt_knn_free(knn);
    ck_assert_int_eq(hmt_knn_load(&knn, m, keep, fresh), HMT_OK);
    hmt_knn_free(knn);
    hmt_params_free(fresh);
    unlink(keep);
    hmt_params_free(knn_k), hmt_params_free(threads), hmt_params_free(f16);
    free(keys), free(lg), free(out);
    hmt_model_free(m);
}
END_TEST

Suite *hmt_suite_knn(void);
Suite *hmt_suite_knn(void) {
    Suite *s = suite_create("knn");
    TCase *tc = tcase_create("search");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, search_matches_brute_force, 0, 4);
    suite_add_tcase(s, tc);
    tc = tcase_create("math");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, defaults_reproduce_knnlm);
    tcase_add_test(tc, interpolation_matches_numpy);
    tcase_add_test(tc, prepare_is_bit_identical);
    tcase_add_test(tc, knn_functions_refuse_foreign_keys);
    suite_add_tcase(s, tc);
    tc = tcase_create("file");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, file_round_trip_and_validation);
    tcase_add_test(tc, builder_misuse);
    tcase_add_test(tc, built_from_tokens_equals_ffn_input);
    suite_add_tcase(s, tc);
    return s;
}
