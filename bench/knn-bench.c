/* knn-bench: kNN-LM datastore figures (docs/KNN.md).
 *
 *   knn-bench search -m MODEL [--sizes 10000,100000,1000000] [--k 1024] [--batch 256]
 *                    [--f16] [-t N]
 *     Random keys of the model's width (e.g. 576 for SmolLM2-135M) in a
 *     datastore file; exact search throughput (queries/s) for a batch of
 *     queries and for single queries, memory per stored key, build and load
 *     time.
 *
 *   knn-bench ppl -m MODEL -f TEXT [--train 0.8] [-c 256] [--k 1024]
 *                 [--lambda 0.25] [-t N]
 *     Tokenizes TEXT, builds a datastore from the first part (--train), and
 *     reports the perplexity of the held-out rest without and with the
 *     datastore (same windows, same model), plus the training part scored
 *     with its own datastore (a memorization sanity check).
 *
 *   knn-bench faiss -m MODEL [--sizes 100000,1000000] [--k 16] [--batch 256]
 *                   [--nprobe 32] [--nlist N] [--rerank 4] [--spread 0.9] [-t N]
 *     Clustered synthetic keys (1000 centres drawn N(0, 1), keys and queries
 *     N(centre, spread²) per coordinate); for each size: the FAISS IVF-PQ
 *     index build time and file size, exact vs FAISS search throughput
 *     (batch and single queries), and the FAISS result's recall@k against
 *     exact search over the batch's queries. With -f TEXT instead: the
 *     model's own keys, the datastore from the first 90 % of TEXT, the
 *     queries the keys of held-out positions.
 *
 * Uses only the public API. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hmt/experimental.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rs = 0x2545F4914F6CDD1Dull;
static float frand(void) { /* uniform [-1, 1) */
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (float)((double)(rs >> 40) / 8388608.0 - 1.0);
}

#define CHECK(call)                                                                        \
    do {                                                                                   \
        int rc_ = (call);                                                                  \
        if (rc_) {                                                                         \
            fprintf(stderr, "knn-bench: %s: %s (%s)\n", #call, hmt_last_error_msg(),       \
                    hmt_strerror(rc_));                                                    \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

/* Each libhmt object reads only its own keys: the bench keeps its settings
 * in one params object and hands each call the keys of its object. The
 * copies live until the program ends (free_subsets). */
static const hmt_param LOAD[] = {HMT_P_N_THREADS}, BUILD[] = {HMT_P_KNN_KEY_F16},
                       FBUILD[] = {HMT_P_KNN_NLIST}, ATTACH[] = {HMT_P_KNN_NPROBE, HMT_P_KNN_RERANK},
                       CTX[] = {HMT_P_N_THREADS, HMT_P_N_CTX}, MIX[] = {HMT_P_KNN_K, HMT_P_KNN_LAMBDA};
static hmt_params *subsets[64];
static int n_subsets;

static hmt_params *subset_of(const hmt_params *p, const hmt_param *keys, size_t n) {
    hmt_params *q = NULL;
    CHECK(hmt_params_create(&q));
    for (size_t i = 0; i < n; i++) {
        double v = 0;
        int is_int = 0;
        CHECK(hmt_params_get(p, keys[i], &v));
        CHECK(hmt_param_bounds(keys[i], NULL, NULL, NULL, &is_int));
        CHECK(is_int ? hmt_params_set_int(q, keys[i], (int64_t)v) : hmt_params_set_float(q, keys[i], v));
    }
    if (n_subsets == (int)(sizeof subsets / sizeof *subsets)) {
        fprintf(stderr, "knn-bench: too many parameter subsets\n");
        exit(1);
    }
    return subsets[n_subsets++] = q;
}
#define SUB(p, keys) subset_of(p, keys, sizeof keys / sizeof *keys)

static void free_subsets(void) {
    while (n_subsets > 0) hmt_params_free(subsets[--n_subsets]);
}

static hmt_params *mkparams(int threads) {
    hmt_params *p = NULL;
    CHECK(hmt_params_create(&p));
    CHECK(hmt_params_set_int(p, HMT_P_N_THREADS, threads ? threads : HMT_AUTO));
    return p;
}

static int bench_search(hmt_model *m, const char *sizes, int k, int batch, int f16,
                        int threads) {
    const int d = hmt_model_n_embd(m), nv = hmt_model_n_vocab(m);
    char path[256];
    snprintf(path, sizeof path, "/tmp/knn-bench-%d.knn", (int)getpid());
    printf("# exact search, d = %d, k = %d, %s keys, %d threads\n", d, k, f16 ? "F16" : "F32",
           threads);
    printf("%10s %10s %12s %14s %14s %12s %10s\n", "keys", "bytes/key", "file MB",
           "batch q/s", "single q/s", "build s", "load s");
    hmt_params *p = mkparams(threads);
    CHECK(hmt_params_set_int(p, HMT_P_KNN_KEY_F16, f16));
    float *q = malloc((size_t)batch * d * sizeof *q);
    float *dist = malloc((size_t)batch * k * sizeof *dist);
    int64_t *idx = malloc((size_t)batch * k * sizeof *idx);
    const size_t chunk = 4096;
    float *keys = malloc(chunk * d * sizeof *keys);
    hmt_token *vals = malloc(chunk * sizeof *vals);
    for (const char *s = sizes; *s;) {
        char *end;
        long long n = strtoll(s, &end, 10);
        s = *end == ',' ? end + 1 : end;
        if (n <= 0) break;
        double t0 = now();
        hmt_knn_builder *b = NULL;
        CHECK(hmt_knn_builder_create(&b, m, path, SUB(p, BUILD)));
        for (long long i = 0; i < n; i += (long long)chunk) {
            size_t c = (size_t)(n - i < (long long)chunk ? n - i : (long long)chunk);
            for (size_t j = 0; j < c * (size_t)d; j++) keys[j] = frand();
            for (size_t j = 0; j < c; j++) vals[j] = (hmt_token)((i + (long long)j) % nv);
            CHECK(hmt_knn_builder_add(b, keys, vals, c));
        }
        CHECK(hmt_knn_builder_finish(b));
        hmt_knn_builder_free(b);
        double t1 = now();
        hmt_knn *knn = NULL;
        CHECK(hmt_knn_load(&knn, m, path, SUB(p, LOAD)));
        double t2 = now();
        struct stat st;
        stat(path, &st);
        for (size_t j = 0; j < (size_t)batch * d; j++) q[j] = frand();
        /* batched */
        int reps = 0;
        double tb0 = now(), tb;
        do {
            CHECK(hmt_knn_search(knn, q, (size_t)batch, k, dist, idx, NULL));
            reps++;
            tb = now() - tb0;
        } while (tb < 1.0 && reps < 1000);
        double batch_qps = (double)reps * batch / tb;
        /* one query at a time (generation) */
        int singles = 0;
        double ts0 = now(), tsd;
        do {
            CHECK(hmt_knn_search(knn, q + (size_t)(singles % batch) * d, 1, k, dist, idx, NULL));
            singles++;
            tsd = now() - ts0;
        } while (tsd < 1.0 && singles < 100000);
        printf("%10lld %10.0f %12.1f %14.1f %14.1f %12.2f %10.2f\n", n,
               hmt_knn_bytes_per_key(knn), (double)st.st_size / 1e6, batch_qps,
               (double)singles / tsd, t1 - t0, t2 - t1);
        fflush(stdout);
        hmt_knn_free(knn);
        unlink(path);
    }
    free(q);
    free(dist);
    free(idx);
    free(keys);
    free(vals);
    hmt_params_free(p);
    return 0;
}

static float nrand(void) { /* N(0, 1) from two uniforms */
    float u = 0.5f * (frand() + 1.0f) + 1e-7f, v = frand();
    return sqrtf(-2.0f * logf(u)) * cosf(3.14159265f * v);
}

static double now_qps(const hmt_knn *knn, const float *q, int batch, int k, float *dist,
                      int64_t *idx, int single, int d) {
    int reps = 0;
    double t0 = now(), t;
    do {
        if (single)
            CHECK(hmt_knn_search(knn, q + (size_t)(reps % batch) * d, 1, k, dist, idx, NULL));
        else
            CHECK(hmt_knn_search(knn, q, (size_t)batch, k, dist, idx, NULL));
        reps++;
        t = now() - t0;
    } while (t < 2.0 && reps < 100000);
    return (double)reps * (single ? 1 : batch) / t;
}

static int faiss_rerank = 4; /* --rerank: FAISS candidates per neighbour */

/* One table row: exact vs FAISS on the datastore at path with queries q. */
static void faiss_row(hmt_model *m, const char *path, const hmt_params *p, const float *q,
                      int batch, int k) {
    const int d = hmt_model_n_embd(m);
    char ipath[300];
    snprintf(ipath, sizeof ipath, "%s.faiss", path);
    float *de = malloc((size_t)batch * k * sizeof *de), *da = malloc((size_t)batch * k * 4);
    int64_t *ie = malloc((size_t)batch * k * sizeof *ie), *ia = malloc((size_t)batch * k * 8);
    hmt_knn *exact = NULL, *approx = NULL;
    CHECK(hmt_knn_load(&exact, m, path, SUB(p, LOAD)));
    CHECK(hmt_knn_load(&approx, m, path, SUB(p, LOAD)));
    double t0 = now();
    CHECK(hmt_knn_faiss_build(exact, ipath, SUB(p, FBUILD), NULL, NULL));
    double t1 = now();
    CHECK(hmt_knn_faiss_attach(approx, ipath, SUB(p, ATTACH)));
    double t2 = now();
    struct stat st;
    stat(ipath, &st);
    CHECK(hmt_knn_search(exact, q, (size_t)batch, k, de, ie, NULL));
    CHECK(hmt_knn_search(approx, q, (size_t)batch, k, da, ia, NULL));
    double hit = 0;
    for (int r = 0; r < batch; r++)
        for (int a = 0; a < k; a++)
            for (int c = 0; c < k; c++)
                if (ia[(size_t)r * k + a] == ie[(size_t)r * k + c]) {
                    hit++;
                    break;
                }
    double eb = now_qps(exact, q, batch, k, de, ie, 0, d);
    double fb = now_qps(approx, q, batch, k, da, ia, 0, d);
    double e1 = now_qps(exact, q, batch, k, de, ie, 1, d);
    double f1 = now_qps(approx, q, batch, k, da, ia, 1, d);
    uint32_t nlist = 0, pq_m = 0; /* read back from the index header (docs/KNN.md) */
    FILE *f = fopen(ipath, "rb");
    unsigned char h[28];
    if (f && fread(h, 1, sizeof h, f) == sizeof h) {
        memcpy(&nlist, h + 20, 4);
        memcpy(&pq_m, h + 24, 4);
    }
    if (f) fclose(f);
    printf("%9lld %6u %4u %8.1f %8.1f %9.2f %11.1f %11.1f %11.1f %11.1f %9.3f\n",
           (long long)hmt_knn_count(exact), nlist, pq_m, t1 - t0, (double)st.st_size / 1e6,
           t2 - t1, eb, fb, e1, f1, hit / ((double)batch * k));
    fflush(stdout);
    hmt_knn_free(exact);
    hmt_knn_free(approx);
    unlink(ipath);
    free(de);
    free(da);
    free(ie);
    free(ia);
}

static void faiss_header(const hmt_model *m, const char *what, int k, int nprobe, int threads) {
    printf("# FAISS IVF-PQ vs exact, d = %d, k = %d, nprobe %d, rerank %d, %s, %d threads\n",
           hmt_model_n_embd(m), k, nprobe, faiss_rerank, what, threads);
    printf("%9s %6s %4s %8s %8s %9s %11s %11s %11s %11s %9s\n", "keys", "nlist", "m", "build s",
           "index MB", "attach s", "exact b q/s", "faiss b q/s", "exact 1 q/s", "faiss 1 q/s",
           "recall@k");
}

static hmt_params *faiss_params(int threads, int nprobe, int nlist) {
    hmt_params *p = mkparams(threads);
    CHECK(hmt_params_set_int(p, HMT_P_KNN_NPROBE, nprobe));
    CHECK(hmt_params_set_int(p, HMT_P_KNN_RERANK, faiss_rerank));
    CHECK(hmt_params_set_int(p, HMT_P_KNN_NLIST, nlist ? nlist : HMT_AUTO));
    return p;
}

static int bench_faiss(hmt_model *m, const char *sizes, int k, int batch, int nprobe, int nlist,
                       double spread, int threads) {
    const int d = hmt_model_n_embd(m), nv = hmt_model_n_vocab(m), nc = 1000;
    char path[256], what[64];
    snprintf(path, sizeof path, "/tmp/knn-bench-faiss-%d.knn", (int)getpid());
    snprintf(what, sizeof what, "clustered keys (spread %.2f)", spread);
    hmt_params *p = faiss_params(threads, nprobe, nlist);
    faiss_header(m, what, k, nprobe, threads);
    float *centres = malloc((size_t)nc * d * sizeof *centres);
    for (size_t j = 0; j < (size_t)nc * d; j++) centres[j] = nrand();
    const size_t chunk = 4096;
    float *keys = malloc(chunk * d * sizeof *keys), *q = malloc((size_t)batch * d * sizeof *q);
    hmt_token *vals = malloc(chunk * sizeof *vals);
    for (const char *s = sizes; *s;) {
        char *end;
        long long n = strtoll(s, &end, 10);
        s = *end == ',' ? end + 1 : end;
        if (n <= 0) break;
        hmt_knn_builder *b = NULL;
        CHECK(hmt_knn_builder_create(&b, m, path, SUB(p, BUILD)));
        for (long long i = 0; i < n; i += (long long)chunk) {
            size_t c = (size_t)(n - i < (long long)chunk ? n - i : (long long)chunk);
            for (size_t r = 0; r < c; r++) {
                const float *ce = centres + (size_t)(0.5 * (frand() + 1.0) * nc) % nc * d;
                for (int j = 0; j < d; j++) keys[r * d + j] = ce[j] + (float)spread * nrand();
                vals[r] = (hmt_token)((i + (long long)r) % nv);
            }
            CHECK(hmt_knn_builder_add(b, keys, vals, c));
        }
        CHECK(hmt_knn_builder_finish(b));
        hmt_knn_builder_free(b);
        for (size_t r = 0; r < (size_t)batch; r++) {
            const float *ce = centres + (size_t)(0.5 * (frand() + 1.0) * nc) % nc * d;
            for (int j = 0; j < d; j++) q[r * d + j] = ce[j] + (float)spread * nrand();
        }
        faiss_row(m, path, p, q, batch, k);
        unlink(path);
    }
    free(centres);
    free(keys);
    free(q);
    free(vals);
    hmt_params_free(p);
    return 0;
}

static char *read_all(const char *path, size_t *len);

/* Real keys: the datastore from the first 90 % of TEXT (windows of n_ctx),
 * the queries = the keys of the first `batch` held-out positions. */
static int bench_faiss_text(hmt_model *m, const char *text_path, int n_ctx, int k, int batch,
                            int nprobe, int nlist, int threads) {
    size_t len, n = 0;
    char *text = read_all(text_path, &len);
    if (!text) {
        fprintf(stderr, "knn-bench: cannot read %s\n", text_path);
        return 1;
    }
    int rc = hmt_tokenize(m, text, len, HMT_TOKENIZE_ADD_BOS, NULL, 0, &n);
    if (rc && rc != HMT_E_BUFFER) CHECK(rc);
    hmt_token *toks = malloc((n + 1) * sizeof *toks);
    CHECK(hmt_tokenize(m, text, len, HMT_TOKENIZE_ADD_BOS, toks, n + 1, &n));
    free(text);
    const size_t n_train = n * 9 / 10, d = (size_t)hmt_model_n_embd(m);
    if ((size_t)batch > n - n_train - 1) batch = (int)(n - n_train - 1);
    hmt_params *p = faiss_params(threads, nprobe, nlist);
    CHECK(hmt_params_set_int(p, HMT_P_N_CTX, n_ctx));
    hmt_ctx *ctx = NULL;
    CHECK(hmt_ctx_create(&ctx, m, SUB(p, CTX)));
    char path[256], what[400];
    snprintf(path, sizeof path, "/tmp/knn-bench-faiss-%d.knn", (int)getpid());
    hmt_knn_builder *b = NULL;
    CHECK(hmt_knn_builder_create(&b, m, path, SUB(p, BUILD)));
    CHECK(hmt_knn_builder_add_ctx(b, ctx, toks, n_train, NULL, NULL));
    CHECK(hmt_knn_builder_finish(b));
    hmt_knn_builder_free(b);
    float *q = malloc((size_t)batch * d * sizeof *q);
    uint8_t *outs = malloc((size_t)n_ctx);
    memset(outs, HMT_OUT_FFN_INPUT, (size_t)n_ctx);
    for (int got = 0; got < batch;) {
        int c = batch - got < n_ctx ? batch - got : n_ctx;
        CHECK(hmt_ctx_kv_clear(ctx));
        CHECK(hmt_ctx_eval(ctx, toks + n_train + got, NULL, (size_t)c, NULL, outs));
        for (int i = 0; i < c; i++)
            memcpy(q + (size_t)(got + i) * d, hmt_ctx_ffn_input(ctx, i), d * sizeof *q);
        got += c;
    }
    snprintf(what, sizeof what, "keys of %s (%zu tokens; held-out 10%% as queries)", text_path,
             n);
    faiss_header(m, what, k, nprobe, threads);
    faiss_row(m, path, p, q, batch, k);
    unlink(path);
    free(q);
    free(outs);
    free(toks);
    hmt_ctx_free(ctx);
    hmt_params_free(p);
    return 0;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* NLL sums over toks (windows of n_ctx, KV cleared per window — the same
 * windows the builder uses) without and with the datastore. */
static void score(hmt_ctx *ctx, const hmt_knn *knn, const hmt_params *kp, const hmt_token *toks,
                  size_t n, double *nll_lm, double *nll_knn, size_t *count) {
    const int d = hmt_model_n_embd(hmt_ctx_model(ctx)), nv = hmt_model_n_vocab(hmt_ctx_model(ctx));
    const size_t win = (size_t)hmt_ctx_n_ctx(ctx);
    uint8_t *outs = malloc(win);
    memset(outs, HMT_OUT_LOGITS | HMT_OUT_FFN_INPUT, win);
    float *keys = malloc(win * d * sizeof *keys), *lg = malloc(win * nv * sizeof *lg);
    float *lp = malloc(win * nv * sizeof *lp);
    *nll_lm = *nll_knn = 0;
    *count = 0;
    for (size_t w0 = 0; w0 + 1 < n; w0 += win) {
        size_t wn = n - w0 < win ? n - w0 : win;
        CHECK(hmt_ctx_kv_clear(ctx));
        CHECK(hmt_ctx_eval(ctx, toks + w0, NULL, wn, NULL, outs));
        size_t m = 0; /* positions with a next token */
        for (size_t i = 0; i < wn && w0 + i + 1 < n; i++, m++) {
            memcpy(keys + i * d, hmt_ctx_ffn_input(ctx, (int32_t)i), d * sizeof *keys);
            memcpy(lg + i * nv, hmt_ctx_logits(ctx, (int32_t)i), nv * sizeof *lg);
        }
        CHECK(hmt_knn_interpolate(knn, kp, keys, m, lg, nv, lp, NULL));
        for (size_t i = 0; i < m; i++) {
            const float *l = lg + i * nv;
            double mx = l[0], s = 0;
            for (int v = 1; v < nv; v++) mx = l[v] > mx ? l[v] : mx;
            for (int v = 0; v < nv; v++) s += exp((double)l[v] - mx);
            hmt_token y = toks[w0 + i + 1];
            *nll_lm -= (double)l[y] - mx - log(s);
            *nll_knn -= lp[i * nv + y];
        }
        *count += m;
    }
    free(outs);
    free(keys);
    free(lg);
    free(lp);
}

static int bench_ppl(hmt_model *m, const char *text_path, double train, int n_ctx, int k,
                     double lambda, int threads) {
    size_t len;
    char *text = read_all(text_path, &len);
    if (!text) {
        fprintf(stderr, "knn-bench: cannot read %s\n", text_path);
        return 1;
    }
    size_t n = 0;
    int rc = hmt_tokenize(m, text, len, HMT_TOKENIZE_ADD_BOS, NULL, 0, &n);
    if (rc && rc != HMT_E_BUFFER) CHECK(rc);
    hmt_token *toks = malloc((n + 1) * sizeof *toks);
    CHECK(hmt_tokenize(m, text, len, HMT_TOKENIZE_ADD_BOS, toks, n + 1, &n));
    free(text);
    size_t n_train = (size_t)((double)n * train);
    hmt_params *p = mkparams(threads);
    CHECK(hmt_params_set_int(p, HMT_P_N_CTX, n_ctx));
    CHECK(hmt_params_set_int(p, HMT_P_KNN_K, k));
    CHECK(hmt_params_set_float(p, HMT_P_KNN_LAMBDA, lambda));
    hmt_ctx *ctx = NULL;
    CHECK(hmt_ctx_create(&ctx, m, SUB(p, CTX)));
    char path[256];
    snprintf(path, sizeof path, "/tmp/knn-bench-ppl-%d.knn", (int)getpid());
    double t0 = now();
    hmt_knn_builder *b = NULL;
    CHECK(hmt_knn_builder_create(&b, m, path, SUB(p, BUILD)));
    CHECK(hmt_knn_builder_add_ctx(b, ctx, toks, n_train, NULL, NULL));
    CHECK(hmt_knn_builder_finish(b));
    hmt_knn_builder_free(b);
    double t1 = now();
    hmt_knn *knn = NULL;
    CHECK(hmt_knn_load(&knn, m, path, SUB(p, LOAD)));
    printf("# text %s: %zu tokens; datastore from the first %zu (%lld keys, %.2f s); "
           "window %d, k %d, lambda %.2f (fixed), tau 1\n",
           text_path, n, n_train, (long long)hmt_knn_count(knn), t1 - t0, n_ctx, k, lambda);
    double a, c;
    size_t cnt;
    double t2 = now();
    score(ctx, knn, SUB(p, MIX), toks + n_train, n - n_train, &a, &c, &cnt);
    double t3 = now();
    printf("held-out  (%6zu tokens): PPL LM %.3f   PPL kNN-LM %.3f   (%.0f tok/s scored)\n", cnt,
           exp(a / cnt), exp(c / cnt), cnt / (t3 - t2));
    score(ctx, knn, SUB(p, MIX), toks, n_train, &a, &c, &cnt);
    printf("train     (%6zu tokens): PPL LM %.3f   PPL kNN-LM %.3f   (datastore contains "
           "these very positions)\n", cnt, exp(a / cnt), exp(c / cnt));
    hmt_knn_free(knn);
    unlink(path);
    hmt_ctx_free(ctx);
    hmt_params_free(p);
    free(toks);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: knn-bench search -m MODEL [--sizes N,N,..] [--k K] [--batch Q] [--f16] "
               "[-t N]\n"
               "       knn-bench ppl -m MODEL -f TEXT [--train FRAC] [-c N_CTX] [--k K] "
               "[--lambda L] [-t N]\n"
               "       knn-bench faiss -m MODEL [--sizes N,N,..] [--k K] [--batch Q] "
               "[--nprobe P] [--nlist L] [--rerank R] [--spread S] [-t N]\n"
               "       knn-bench faiss -m MODEL -f TEXT [-c N_CTX] [--k K] [--batch Q] "
               "[--nprobe P] [--nlist L] [--rerank R] [-t N]\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *mode = argv[1], *model_path = NULL, *text = NULL;
    const char *sizes = "10000,100000,1000000";
    int k = 1024, batch = 256, f16 = 0, threads = 0, n_ctx = 256, nprobe = 32, nlist = 0;
    double train = 0.8, lambda = 0.25, spread = 0.9;
    int k_given = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--f16")) { f16 = 1; continue; }
        if (!v) {
            fprintf(stderr, "knn-bench: unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "-m")) model_path = v;
        else if (!strcmp(a, "-f")) text = v;
        else if (!strcmp(a, "--sizes")) sizes = v;
        else if (!strcmp(a, "--k")) k = atoi(v), k_given = 1;
        else if (!strcmp(a, "--nprobe")) nprobe = atoi(v);
        else if (!strcmp(a, "--nlist")) nlist = atoi(v);
        else if (!strcmp(a, "--spread")) spread = atof(v);
        else if (!strcmp(a, "--rerank")) faiss_rerank = atoi(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "-t")) threads = atoi(v);
        else if (!strcmp(a, "-c")) n_ctx = atoi(v);
        else if (!strcmp(a, "--train")) train = atof(v);
        else if (!strcmp(a, "--lambda")) lambda = atof(v);
        else {
            fprintf(stderr, "knn-bench: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    int is_faiss = !strcmp(mode, "faiss");
    if (is_faiss && !k_given) k = 16;
    if (is_faiss && !strcmp(sizes, "10000,100000,1000000")) sizes = "100000,1000000";
    const char *bad = strcmp(mode, "search") && strcmp(mode, "ppl") && !is_faiss
                          ? "the first argument is the mode: search, ppl or faiss"
                      : !model_path ? "-m MODEL is required"
                      : !strcmp(mode, "ppl") && !text ? "ppl needs -f TEXT"
                      : k < 1 ? "--k must be a whole number >= 1"
                      : batch < 1 ? "--batch must be a whole number >= 1"
                                  : NULL;
    if (bad) {
        fprintf(stderr, "knn-bench: %s\n", bad);
        usage(stderr);
        return 2;
    }
    if (is_faiss && !hmt_knn_faiss_available()) {
        fprintf(stderr, "knn-bench: this libhmt is built without FAISS\n");
        return 1;
    }
    hmt_model *m = NULL;
    CHECK(hmt_model_load(&m, model_path, NULL));
    int rc = is_faiss && text ? bench_faiss_text(m, text, n_ctx, k, batch, nprobe, nlist, threads)
             : is_faiss ? bench_faiss(m, sizes, k, batch, nprobe, nlist, spread, threads)
             : !strcmp(mode, "search") ? bench_search(m, sizes, k, batch, f16, threads)
                                       : bench_ppl(m, text, train, n_ctx, k, lambda, threads);
    hmt_model_free(m);
    free_subsets();
    return rc;
}
