/* pool-bench: decode speed of contexts sharing the process's thread pool
 * against one context alone, through the public API only (issue 14: "two
 * contexts evaluated alternately on one pool keep the single-context
 * speed"). Three set-ups decode the same tokens, one token per eval:
 *   alone    one context on the shared default pool;
 *   shared   two contexts on the shared default pool, evaluated alternately;
 *   private  two contexts with private pools of n threads each (what every
 *            context had in 0.1), evaluated alternately.
 * Each figure is the median over repeats of the seconds per decoded token
 * (per context step), the set-ups interleaved within each repeat so that a
 * slow spell of the shared machine hits all three alike.
 *
 *   pool-bench -m MODEL [-n TOKENS] [-r REPEATS] [-t THREADS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hmt/hmt.h"

static void check(int rc, const char *what) {
    if (rc == HMT_OK) return;
    fprintf(stderr, "pool-bench: %s: %s (%s)\n", what, hmt_last_error_msg(), hmt_strerror(rc));
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static hmt_ctx *new_ctx(hmt_model *m, int64_t threads, int n_ctx) {
    hmt_params *p = NULL;
    hmt_ctx *ctx = NULL;
    check(hmt_params_create(&p), "params");
    check(hmt_params_set_int(p, HMT_P_N_THREADS, threads), "threads");
    check(hmt_params_set_int(p, HMT_P_N_CTX, n_ctx), "n_ctx");
    check(hmt_ctx_create(&ctx, m, p), "context");
    hmt_params_free(p);
    return ctx;
}

/* Seconds per eval: n single-token evals on each of the n_c contexts, in turn. */
static double decode(hmt_ctx **c, int n_c, const hmt_token *t, int n) {
    for (int i = 0; i < n_c; i++) check(hmt_ctx_kv_clear(c[i]), "clear");
    double t0 = now();
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n_c; i++) check(hmt_ctx_eval_tokens(c[i], &t[j], 1, 0), "eval");
    return (now() - t0) / ((double)n * n_c);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int n = 64, reps = 5, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: pool-bench -m MODEL [-n TOKENS] [-r REPEATS] [-t THREADS]\n"
                   "  decode seconds per token: one context alone, two contexts sharing the\n"
                   "  process's pool, two contexts with private pools (-t: their threads,\n"
                   "  default all CPUs)\n");
            return 0;
        }
        if (!v) break;
        if (!strcmp(a, "-m")) path = v;
        else if (!strcmp(a, "-n")) n = atoi(v);
        else if (!strcmp(a, "-r")) reps = atoi(v);
        else if (!strcmp(a, "-t")) threads = atoi(v);
        else {
            fprintf(stderr, "pool-bench: unknown option '%s'\n", a);
            return 2;
        }
        i++;
    }
    if (!path || n < 1 || reps < 1 || threads < 0) {
        fprintf(stderr, "pool-bench: -m MODEL is required (and -n, -r >= 1, -t >= 0)\n");
        return 2;
    }
    hmt_model *m = NULL;
    check(hmt_model_load(&m, path, NULL), "loading the model");
    hmt_token *t = malloc((size_t)n * sizeof *t);
    for (int j = 0; j < n; j++) t[j] = (hmt_token)((j * 7919 + 13) % hmt_model_n_vocab(m));
    hmt_ctx *alone = new_ctx(m, HMT_AUTO, n + 1);
    hmt_ctx *shared[2] = {new_ctx(m, HMT_AUTO, n + 1), new_ctx(m, HMT_AUTO, n + 1)};
    const int64_t priv_threads = threads > 0 ? threads : HMT_AUTO;
    hmt_ctx *priv[2] = {new_ctx(m, 1, n + 1), new_ctx(m, 1, n + 1)};
    for (int i = 0; i < 2; i++) { /* private pools: each its own of that size */
        hmt_threadpool *tp = NULL;
        check(hmt_threadpool_create(&tp, (int32_t)priv_threads), "threadpool");
        check(hmt_ctx_attach_threadpool(priv[i], tp), "attach");
        hmt_threadpool_free(tp);
    }
    double nt = 0;
    check(hmt_ctx_get(alone, HMT_P_N_THREADS, &nt), "threads");
    double *a = calloc((size_t)reps, sizeof *a), *s = calloc((size_t)reps, sizeof *s);
    double *p = calloc((size_t)reps, sizeof *p);
    decode(&alone, 1, t, n); /* warm-up: pages, JIT kernels, pools */
    decode(shared, 2, t, n);
    decode(priv, 2, t, n);
    for (int r = 0; r < reps; r++) {
        a[r] = decode(&alone, 1, t, n);
        s[r] = decode(shared, 2, t, n);
        p[r] = decode(priv, 2, t, n);
    }
    const double ma = median(a, reps), ms = median(s, reps), mp = median(p, reps);
    printf("# %s, %d decode steps per context, %d repeats, shared pool %.0f threads, "
           "private pools %d threads each\n", path, n, reps, nt,
           threads > 0 ? threads : (int)nt);
    printf("%-8s %12s %10s\n", "set-up", "ms/token", "vs alone");
    printf("%-8s %12.3f %10.3f\n", "alone", 1e3 * ma, 1.0);
    printf("%-8s %12.3f %10.3f\n", "shared", 1e3 * ms, ms / ma);
    printf("%-8s %12.3f %10.3f\n", "private", 1e3 * mp, mp / ma);
    hmt_ctx_free(alone);
    for (int i = 0; i < 2; i++) hmt_ctx_free(shared[i]), hmt_ctx_free(priv[i]);
    hmt_model_free(m);
    free(t), free(a), free(s), free(p);
    return 0;
}
