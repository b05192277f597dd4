/* The FAISS IVF-PQ backend of kNN datastores (hmt_knn_faiss_*): recall@k
 * against exact search on the same datastore, exact distances for what it
 * returns, deterministic builds, save/load round trip, refused files, the
 * interpolation through it — and, in a build without FAISS, that every entry
 * point says so.
 *
 * Data: 24000 keys of width 64 (the test model's) drawn around 300 centres
 * (N(0, 1) centres, N(0, 0.9²) spread per coordinate: overlapping clusters,
 * so that the number of lists probed matters), values random; 200 queries
 * drawn the same way (not stored keys). Index: nlist 128, m 16 (16 bytes per
 * key), trained on 16384 sampled keys, nprobe 16 of 128 lists, re-ranking
 * 4·k candidates.
 *
 * Recall threshold: measured 0.984 (k = 16) and 0.971 (k = 64) on this data
 * (the build is deterministic: same seed, same file on any thread count);
 * required >= 0.93, a margin for other CPUs (libxsmm's AVX2 kernels sum in
 * another order, which can move a k-means centroid). Broken parts fall far
 * below it: probing 1 list gives 0.851, re-ranking only k PQ candidates
 * 0.731 (both checked to be lower than the full setting). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hmt/hmt.h"
#include "hmt/experimental.h"
#include "util/testutil.h"

#define N_KEYS 24000
#define N_CENTRES 300
#define N_QUERIES 200
#define RECALL_MIN 0.93

static uint64_t rs;

/* n clustered keys (and n_q queries from the same clusters) of width d. */
static void clustered(uint64_t seed, int d, size_t n, float *keys, size_t n_q, float *queries) {
    rs = seed;
    float *c = malloc((size_t)N_CENTRES * d * sizeof *c);
    for (size_t i = 0; i < (size_t)N_CENTRES * d; i++) c[i] = hmt_test_nrand(&rs);
    for (size_t i = 0; i < n + n_q; i++) {
        float *row = i < n ? keys + i * d : queries + (i - n) * d;
        const float *ci = c + (size_t)(hmt_test_urand(&rs) * N_CENTRES) * d;
        for (int p = 0; p < d; p++) row[p] = ci[p] + 0.9f * hmt_test_nrand(&rs);
    }
    free(c);
}

/* A datastore file of clustered keys for model m (F16 keys if f16); returns
 * its path (static). */
static const char *build_store_as(const hmt_model *m, uint64_t seed, size_t n, float *queries,
                                  size_t n_q, int f16) {
    static char keep[4096];
    snprintf(keep, sizeof keep, "%s", hmt_test_tmp_path(".knn"));
    const int d = hmt_model_n_embd(m);
    float *keys = malloc(n * d * sizeof *keys);
    hmt_token *vals = malloc(n * sizeof *vals);
    clustered(seed, d, n, keys, n_q, queries);
    for (size_t i = 0; i < n; i++) vals[i] = (hmt_token)(hmt_test_urand(&rs) * hmt_model_n_vocab(m));
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KNN_KEY_F16, f16), HMT_OK);
    hmt_knn_builder *b = NULL;
    ck_assert_int_eq(hmt_knn_builder_create(&b, m, keep, p), HMT_OK);
    ck_assert_int_eq(hmt_knn_builder_add(b, keys, vals, n), HMT_OK);
    ck_assert_msg(hmt_knn_builder_finish(b) == HMT_OK, "%s", hmt_last_error_msg());
    hmt_knn_builder_free(b);
    hmt_params_free(p);
    free(keys);
    free(vals);
    return keep;
}

static const char *build_store(const hmt_model *m, uint64_t seed, size_t n, float *queries,
                               size_t n_q) {
    return build_store_as(m, seed, n, queries, n_q, 0);
}

static hmt_knn *load_store(const hmt_model *m, const char *path, int threads) {
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, threads), HMT_OK);
    hmt_knn *knn = NULL;
    ck_assert_msg(hmt_knn_load(&knn, m, path, p) == HMT_OK, "%s", hmt_last_error_msg());
    hmt_params_free(p);
    return knn;
}

/* API 0.2: the build keys (hmt_knn_faiss_build) and the search keys
 * (hmt_knn_faiss_attach) are read by different functions, each refusing the
 * other's: two params objects. */
static hmt_params *index_params(void) {
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KNN_NLIST, 128), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KNN_PQ_M, 16), HMT_OK);
    return p;
}

static void build_index(const hmt_knn *knn, const char *path, const hmt_params *p) {
    ck_assert_msg(hmt_knn_faiss_build(knn, path, p, NULL, NULL) == HMT_OK, "%s",
                  hmt_last_error_msg());
}

static int attach_rerank(hmt_knn *knn, const char *path, int nprobe, int rerank) {
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KNN_NPROBE, nprobe), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KNN_RERANK, rerank), HMT_OK);
    int rc = hmt_knn_faiss_attach(knn, path, p);
    hmt_params_free(p);
    return rc;
}

static int attach(hmt_knn *knn, const char *path, int nprobe) {
    return attach_rerank(knn, path, nprobe, 4);
}

/* Mean |found ∩ exact| / k over the queries. */
static double recall(const int64_t *found, const int64_t *exact, size_t nq, int k) {
    double hit = 0;
    for (size_t q = 0; q < nq; q++)
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++)
                if (found[q * k + a] == exact[q * k + b]) {
                    hit++;
                    break;
                }
    return hit / ((double)nq * k);
}

static int count_progress(void *ud, int64_t done, int64_t total) {
    int64_t *last = ud;
    ck_assert_int_gt(done, *last);
    ck_assert_int_le(done, total);
    *last = done;
    return 0;
}

static int stop_progress(void *ud, int64_t done, int64_t total) {
    (void)ud, (void)done, (void)total;
    return 1;
}

START_TEST(faiss_recall_and_exact_distances) {
    if (!hmt_knn_faiss_available()) return; /* faiss_not_built_in covers this build */
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    const int d = hmt_model_n_embd(m);
    float *q = malloc((size_t)N_QUERIES * d * sizeof *q);
    const char *store = build_store(m, 0x5EED0001, N_KEYS, q, N_QUERIES);
    char ipath[4200], ipath2[4200];
    snprintf(ipath, sizeof ipath, "%s.faiss", store);
    snprintf(ipath2, sizeof ipath2, "%s.2.faiss", store);
    hmt_knn *exact = load_store(m, store, 2), *approx = load_store(m, store, 2);
    hmt_params *p = index_params();
    int64_t last = 0;
    ck_assert_msg(hmt_knn_faiss_build(exact, ipath, p, count_progress, &last) == HMT_OK, "%s",
                  hmt_last_error_msg());
    ck_assert_int_eq(last, N_KEYS);
    ck_assert_int_eq(access(ipath, F_OK), 0);
    ck_assert_int_eq(attach(approx, ipath, 16), HMT_OK);

    float *stored = malloc((size_t)N_KEYS * d * sizeof *stored);
    for (int64_t i = 0; i < N_KEYS; i++)
        ck_assert_int_eq(hmt_knn_copy_entry(exact, i, stored + i * d, (size_t)d, NULL), HMT_OK);
    const int ks[] = {16, 64};
    for (size_t a = 0; a < 2; a++) {
        const int k = ks[a];
        float *de = malloc((size_t)N_QUERIES * k * sizeof *de), *da = malloc(N_QUERIES * k * 4);
        int64_t *ie = malloc((size_t)N_QUERIES * k * sizeof *ie), *ia = malloc(N_QUERIES * k * 8);
        ck_assert_int_eq(hmt_knn_search(exact, q, N_QUERIES, k, de, ie, NULL), HMT_OK);
        ck_assert_int_eq(hmt_knn_search(approx, q, N_QUERIES, k, da, ia, NULL), HMT_OK);
        double r = recall(ia, ie, N_QUERIES, k);
        printf("knn_faiss: recall@%d = %.3f (nprobe 16 of 128 lists)\n", k, r);
        fflush(stdout);
        ck_assert_msg(r >= RECALL_MIN, "recall@%d %.3f < %.2f", k, r, RECALL_MIN);
        for (size_t i = 0; i < (size_t)N_QUERIES * k; i++) {
            ck_assert_int_ge(ia[i], 0);
            ck_assert_int_lt(ia[i], N_KEYS);
            /* the distance is the exact one of the key returned */
            double s = 0;
            const float *qi = q + (i / k) * d, *ki = stored + ia[i] * d;
            for (int c = 0; c < d; c++) s += ((double)qi[c] - ki[c]) * ((double)qi[c] - ki[c]);
            ck_assert_double_eq_tol(da[i], s, 1e-6 * s + 1e-12);
            if (i % k) ck_assert_float_le(da[i - 1], da[i]); /* nearest first */
            for (int b = 0; b < k; b++) /* and bit-identical to exact search's for that key */
                if (ie[(i / k) * k + b] == ia[i]) ck_assert_float_eq(de[(i / k) * k + b], da[i]);
        }
        /* fewer probed lists: fewer found, exact distances all the same */
        if (k == 16) {
            ck_assert_int_eq(attach(approx, ipath, 1), HMT_OK);
            ck_assert_int_eq(hmt_knn_search(approx, q, N_QUERIES, k, da, ia, NULL), HMT_OK);
            double r1 = recall(ia, ie, N_QUERIES, k);
            printf("knn_faiss: recall@16 = %.3f with nprobe 1\n", r1);
            fflush(stdout);
            ck_assert_double_lt(r1, r);
            /* fewer candidates re-ranked: PQ's ranking errors show */
            ck_assert_int_eq(attach_rerank(approx, ipath, 16, 1), HMT_OK);
            ck_assert_int_eq(hmt_knn_search(approx, q, N_QUERIES, k, da, ia, NULL), HMT_OK);
            double rr = recall(ia, ie, N_QUERIES, k);
            printf("knn_faiss: recall@16 = %.3f re-ranking k instead of 4k candidates\n", rr);
            fflush(stdout);
            ck_assert_double_lt(rr, r);
            ck_assert_int_eq(attach(approx, ipath, 16), HMT_OK);
        }
        free(de);
        free(da);
        free(ie);
        free(ia);
    }

    /* the interpolation goes through the index: equal to the neighbours' math */
    const int32_t nv = hmt_model_n_vocab(m), k = 32;
    hmt_params *ip = NULL;
    ck_assert_int_eq(hmt_params_create(&ip), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(ip, HMT_P_KNN_K, k), HMT_OK);
    float *logits = malloc((size_t)nv * sizeof *logits), *lp = malloc(nv * 4), *lp2 = malloc(nv * 4);
    for (int32_t v = 0; v < nv; v++) logits[v] = hmt_test_nrand(&rs);
    float dist[32];
    int64_t idx[32];
    hmt_token vals[32];
    ck_assert_int_eq(hmt_knn_interpolate(approx, ip, q, 1, logits, nv, lp, NULL), HMT_OK);
    ck_assert_int_eq(hmt_knn_search(approx, q, 1, k, dist, idx, NULL), HMT_OK);
    for (int i = 0; i < k; i++) ck_assert_int_eq(hmt_knn_copy_entry(approx, idx[i], NULL, 0, &vals[i]), HMT_OK);
    hmt_params *np = NULL; /* the neighbours are given: HMT_P_KNN_K is not its key */
    ck_assert_int_eq(hmt_params_create(&np), HMT_OK);
    ck_assert_int_eq(hmt_knn_interpolate_neighbors(ip, dist, vals, k, logits, nv, lp2, NULL),
                     HMT_E_INVAL);
    ck_assert_int_eq(hmt_knn_interpolate_neighbors(np, dist, vals, k, logits, nv, lp2, NULL), HMT_OK);
    hmt_params_free(np);
    for (int32_t v = 0; v < nv; v++) ck_assert_float_eq(lp[v], lp2[v]);
    hmt_params_free(ip);
    free(logits);
    free(lp);
    free(lp2);

    /* the same seed builds the same file, on any thread count; a reload
     * searches identically */
    hmt_knn *one = load_store(m, store, 1);
    hmt_params *p2 = NULL; /* the default seed, given explicitly (0.2: HMT_P_KNN_SEED) */
    ck_assert_int_eq(hmt_params_copy(&p2, p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p2, HMT_P_KNN_SEED, 0x484d54), HMT_OK);
    build_index(one, ipath2, p2);
    hmt_params_free(p2);
    size_t l1, l2;
    unsigned char *f1 = hmt_test_read_file(ipath, &l1), *f2 = hmt_test_read_file(ipath2, &l2);
    ck_assert_uint_eq(l1, l2);
    ck_assert_int_eq(memcmp(f1, f2, l1), 0);
    const int kk = 16;
    float *d1 = malloc(N_QUERIES * kk * 4), *d2 = malloc(N_QUERIES * kk * 4);
    int64_t *i1 = malloc(N_QUERIES * kk * 8), *i2 = malloc(N_QUERIES * kk * 8);
    ck_assert_int_eq(hmt_knn_search(approx, q, N_QUERIES, kk, d1, i1, NULL), HMT_OK);
    ck_assert_int_eq(attach(one, ipath2, 16), HMT_OK);
    ck_assert_int_eq(hmt_knn_search(one, q, N_QUERIES, kk, d2, i2, NULL), HMT_OK);
    ck_assert_int_eq(memcmp(i1, i2, N_QUERIES * kk * 8), 0);
    ck_assert_int_eq(memcmp(d1, d2, N_QUERIES * kk * 4), 0);
    /* one query at a time (generation) gives the batch's answer */
    for (int t = 0; t < 5; t++) {
        ck_assert_int_eq(hmt_knn_search(one, q + t * d, 1, kk, d2, i2, NULL), HMT_OK);
        ck_assert_int_eq(memcmp(i1 + t * kk, i2, kk * 8), 0);
    }
    /* detached: exact again */
    hmt_knn_faiss_detach(one);
    hmt_knn_faiss_detach(one);
    float de[16];
    int64_t ie[16];
    ck_assert_int_eq(hmt_knn_search(one, q, 1, kk, d2, i2, NULL), HMT_OK);
    ck_assert_int_eq(hmt_knn_search(exact, q, 1, kk, de, ie, NULL), HMT_OK);
    ck_assert_int_eq(memcmp(i2, ie, sizeof ie), 0);
    hmt_knn_free(one);

    /* refused files; a failed attach keeps the index attached before */
    const char *bad = hmt_test_tmp_path(".faiss");
    char badp[4096];
    snprintf(badp, sizeof badp, "%s", bad);
    unsigned char *b = malloc(l1);
    struct {
        size_t len, flip; /* flip: byte to invert, or SIZE_MAX */
        int code;
        const char *msg;
    } cases[] = {
        {l1 / 2, (size_t)-1, HMT_E_FORMAT, "truncated"},
        {100, (size_t)-1, HMT_E_FORMAT, "truncated header"},
        {l1, 0, HMT_E_FORMAT, "magic"},
        {l1, 20, HMT_E_FORMAT, "checksum"},
        {l1, l1 - 9, HMT_E_FORMAT, "checksum mismatch (corrupt file)"},
        {l1, 200, HMT_E_FORMAT, "checksum mismatch (corrupt file)"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        memcpy(b, f1, l1);
        if (cases[c].flip != (size_t)-1) b[cases[c].flip] ^= 0x10;
        ck_assert_int_eq(hmt_test_write_file(badp, b, cases[c].len), 0);
        ck_assert_int_eq(attach(approx, badp, 16), cases[c].code);
        ck_assert_msg(strstr(hmt_last_error_msg(), cases[c].msg), "case %zu: %s", c,
                      hmt_last_error_msg());
    }
    ck_assert_int_eq(attach(approx, store, 16), HMT_E_FORMAT); /* the datastore itself */
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "not a libhmt FAISS index"));
    ck_assert_int_eq(attach(approx, "/nonexistent/x.faiss", 16), HMT_E_IO);
    ck_assert_int_eq(hmt_knn_search(approx, q, N_QUERIES, kk, d2, i2, NULL), HMT_OK);
    ck_assert_int_eq(memcmp(i1, i2, N_QUERIES * kk * 8), 0); /* still the first index */

    /* an index of another datastore: same shape but other keys, other width */
    float *q2 = malloc((size_t)N_QUERIES * 96 * sizeof *q2);
    const char *store2 = build_store(m, 0x5EED0002, N_KEYS, q2, N_QUERIES);
    ck_assert_int_eq(hmt_knn_load(&one, m, store2, NULL), HMT_OK);
    ck_assert_int_eq(attach(one, ipath, 16), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "another datastore (same shape"));
    hmt_knn_free(one);
    unlink(store2);
    hmt_model *m96 = hmt_test_load_model("llama-q8.gguf");
    ck_assert_int_eq(hmt_model_n_embd(m96), 96);
    store2 = build_store(m96, 0x5EED0003, 12000, q2, N_QUERIES);
    one = load_store(m96, store2, 2);
    ck_assert_int_eq(attach(one, ipath, 16), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "width 64; this one: 12000 keys of width 96"));
    /* and its own index, built with the automatic shape, works there */
    ck_assert_msg(hmt_knn_faiss_build(one, badp, NULL, NULL, NULL) == HMT_OK, "%s",
                  hmt_last_error_msg());
    ck_assert_int_eq(hmt_knn_faiss_attach(one, badp, NULL), HMT_OK);
    ck_assert_int_eq(hmt_knn_search(one, q2, 4, 8, d2, i2, NULL), HMT_OK);
    for (int i = 0; i < 32; i++) ck_assert(i2[i] >= 0 && i2[i] < 12000);
    hmt_knn_free(one);
    hmt_model_free(m96);
    unlink(store2);

    free(q2);
    free(b);
    free(f1);
    free(f2);
    free(d1);
    free(d2);
    free(i1);
    free(i2);
    free(stored);
    free(q);
    hmt_params_free(p);
    hmt_knn_free(exact);
    hmt_knn_free(approx);
    unlink(ipath);
    unlink(ipath2);
    unlink(badp);
    unlink(store);
    hmt_model_free(m);
}
END_TEST

/* Bad shapes and arguments get clear errors before any work. */
START_TEST(faiss_build_arguments) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    const int d = hmt_model_n_embd(m);
    float *q = malloc((size_t)d * sizeof *q);
    const char *store = build_store(m, 0x5EED0004, 3000, q, 1);
    char keep[4096];
    snprintf(keep, sizeof keep, "%s", store);
    hmt_knn *knn = load_store(m, keep, 1);
    char ipath[4096];
    snprintf(ipath, sizeof ipath, "%s", hmt_test_tmp_path(".faiss"));
    ck_assert_int_eq(hmt_knn_faiss_build(NULL, ipath, NULL, NULL, NULL), HMT_E_INVAL);
    ck_assert_int_eq(hmt_knn_faiss_build(knn, NULL, NULL, NULL, NULL), HMT_E_INVAL);
    ck_assert_int_eq(hmt_knn_faiss_attach(NULL, ipath, NULL), HMT_E_INVAL);
    hmt_knn_faiss_detach(NULL);
    if (!hmt_knn_faiss_available()) { /* faiss_not_built_in covers the rest */
        hmt_knn_free(knn);
        unlink(keep);
        free(q);
        hmt_model_free(m);
        return;
    }
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    /* 0.2: the sampler's seed is not the build's (HMT_P_KNN_SEED) */
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_SEED, 1), HMT_OK);
    ck_assert_int_eq(hmt_knn_faiss_build(knn, ipath, p, NULL, NULL), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "seed"));
    hmt_params_free(p);
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    /* 3000 keys cannot train 256 PQ centroids with 39 points each */
    ck_assert_int_eq(hmt_knn_faiss_build(knn, ipath, p, NULL, NULL), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "39 per centroid"));
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KNN_PQ_M, 7), HMT_OK);
    ck_assert_int_eq(hmt_knn_faiss_build(knn, ipath, p, NULL, NULL), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "do not divide"));
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KNN_PQ_M, 0), HMT_E_INVAL); /* 0.2: not auto */
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KNN_PQ_M, HMT_AUTO), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KNN_NLIST, 5000), HMT_OK);
    ck_assert_int_eq(hmt_knn_faiss_build(knn, ipath, p, NULL, NULL), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "5000 lists for 3000 keys"));
    ck_assert_int_ne(access(ipath, F_OK), 0);
    hmt_params_free(p);
    hmt_knn_free(knn);
    unlink(keep);

    /* F16 keys: a build stopped by its progress callback leaves no file; a
     * complete one, probing every list with many candidates, finds what
     * exact search finds, with the same (F16-key) distances */
    float *q4 = malloc(4 * (size_t)d * sizeof *q4);
    store = build_store_as(m, 0x5EED0005, 12000, q4, 4, 1);
    snprintf(keep, sizeof keep, "%s", store);
    knn = load_store(m, keep, 2);
    ck_assert_int_eq(hmt_knn_key_dtype(knn), HMT_KNN_F16);
    ck_assert_int_eq(hmt_knn_faiss_build(knn, ipath, NULL, stop_progress, NULL), HMT_E_ABORTED);
    ck_assert_int_ne(access(ipath, F_OK), 0);
    ck_assert_int_eq(hmt_test_temporaries(ipath), 0);
    ck_assert_msg(hmt_knn_faiss_build(knn, ipath, NULL, NULL, NULL) == HMT_OK, "%s",
                  hmt_last_error_msg());
    hmt_knn *approx = load_store(m, keep, 2);
    p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KNN_NPROBE, 1 << 20), HMT_OK); /* all lists */
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KNN_RERANK, 64), HMT_OK);
    ck_assert_int_eq(hmt_knn_faiss_attach(approx, ipath, p), HMT_OK);
    hmt_params_free(p);
    float de[4 * 8], da[4 * 8];
    int64_t ie[4 * 8], ia[4 * 8];
    ck_assert_int_eq(hmt_knn_search(knn, q4, 4, 8, de, ie, NULL), HMT_OK);
    ck_assert_int_eq(hmt_knn_search(approx, q4, 4, 8, da, ia, NULL), HMT_OK);
    ck_assert_int_eq(memcmp(ie, ia, sizeof ie), 0);
    ck_assert_int_eq(memcmp(de, da, sizeof de), 0);
    hmt_knn_free(approx);
    hmt_knn_free(knn);
    unlink(keep);
    unlink(ipath);
    free(q4);
    free(q);
    hmt_model_free(m);
}
END_TEST

/* Without FAISS compiled in: the query says so, build and attach report
 * HMT_E_UNSUPPORTED with a message naming the missing backend, and exact
 * search is untouched. (With FAISS: the query says 1.) */
START_TEST(faiss_not_built_in) {
    int avail = hmt_knn_faiss_available();
    ck_assert(avail == 0 || avail == 1);
#ifdef HMT_HAVE_FAISS
    ck_assert_int_eq(avail, 1);
#else
    ck_assert_int_eq(avail, 0);
#endif
    if (avail) return;
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    const int d = hmt_model_n_embd(m);
    float *q = malloc((size_t)d * sizeof *q);
    const char *store = build_store(m, 0x5EED0006, 12000, q, 1);
    char keep[4096];
    snprintf(keep, sizeof keep, "%s", store);
    hmt_knn *knn = load_store(m, keep, 1);
    const char *ipath = hmt_test_tmp_path(".faiss");
    ck_assert_int_eq(hmt_knn_faiss_build(knn, ipath, NULL, NULL, NULL), HMT_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "not built into this libhmt"));
    ck_assert_int_ne(access(ipath, F_OK), 0);
    ck_assert_int_eq(hmt_knn_faiss_attach(knn, keep, NULL), HMT_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "not built into this libhmt"));
    float dist[4];
    int64_t idx[4];
    ck_assert_int_eq(hmt_knn_search(knn, q, 1, 4, dist, idx, NULL), HMT_OK);
    hmt_knn_free(knn);
    unlink(keep);
    free(q);
    hmt_model_free(m);
}
END_TEST

Suite *hmt_suite_knn_faiss(void);
Suite *hmt_suite_knn_faiss(void) {
    Suite *s = suite_create("knn_faiss");
    TCase *tc = tcase_create("faiss");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, faiss_not_built_in);
    tcase_add_test(tc, faiss_build_arguments);
    tcase_add_test(tc, faiss_recall_and_exact_distances);
    suite_add_tcase(s, tc);
    return s;
}
