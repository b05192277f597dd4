/* Samplers and their processors (0.1 chains), user callbacks and the DITTO repetition penalty
 * (include/hmt/sampler.h). The DITTO golden file comes from
 * tests/reference/ditto_ref.py, a NumPy reading of algorithms.md §3.4. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hmt/hmt.h"
#include "util/testutil.h"

/* ---- a user processor in C ---------------------------------------------- */
typedef struct {
    int applied, accepted, resets, freed;
    hmt_token last_accept;
    int ret;          /* what apply returns */
    int ban_argmax;   /* set the best token to -inf */
    float set_nan;    /* nonzero: write NaN into logits[0] */
    int all_neg_inf;  /* write -inf everywhere */
    const float *seen_key;
    int32_t seen_n_key;
    int prepared;
} user_state;

static int user_apply(void *ud, float *logits, int32_t n, const float *key, int32_t n_key) {
    user_state *u = ud;
    u->applied++;
    u->seen_key = key;
    u->seen_n_key = n_key;
    if (u->ban_argmax) {
        int32_t b = 0;
        for (int32_t i = 1; i < n; i++)
            if (logits[i] > logits[b]) b = i;
        logits[b] = -INFINITY;
    }
    if (u->set_nan != 0) logits[0] = NAN;
    if (u->all_neg_inf)
        for (int32_t i = 0; i < n; i++) logits[i] = -INFINITY;
    return u->ret;
}
static void user_accept(void *ud, hmt_token t) {
    user_state *u = ud;
    u->accepted++;
    u->last_accept = t;
}
static void user_reset(void *ud) { ((user_state *)ud)->resets++; }
static void user_free(void *ud) { ((user_state *)ud)->freed++; }
static int user_prepare(void *ud, const float *keys, size_t n, int32_t n_key) {
    (void)keys;
    (void)n;
    (void)n_key;
    ((user_state *)ud)->prepared++;
    return HMT_OK;
}

static hmt_proc_i user_iface(void) {
    hmt_proc_i i;
    memset(&i, 0, sizeof i);
    i.struct_size = sizeof i;
    i.name = "user";
    i.apply = user_apply;
    i.accept = user_accept;
    i.reset = user_reset;
    i.free_data = user_free;
    i.prepare = user_prepare;
    return i;
}

static void log_softmax(const float *z, int32_t n, double *out) {
    double top = -INFINITY, s = 0;
    for (int32_t i = 0; i < n; i++)
        if (z[i] > top) top = z[i];
    for (int32_t i = 0; i < n; i++) s += exp(z[i] - top);
    for (int32_t i = 0; i < n; i++) out[i] = z[i] - top - log(s);
}

START_TEST(proc_create_errors) {
    user_state u = {0};
    hmt_proc_i i = user_iface();
    hmt_proc *p = (hmt_proc *)&u;
    ck_assert_int_eq(hmt_proc_create(NULL, &i, &u), HMT_E_INVAL);
    ck_assert_int_eq(hmt_proc_create(&p, NULL, &u), HMT_E_INVAL);
    ck_assert_ptr_null(p);
    i.struct_size = 8; /* does not reach apply */
    ck_assert_int_eq(hmt_proc_create(&p, &i, &u), HMT_E_INVAL);
    ck_assert_ptr_null(p);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "struct_size"));
    i = user_iface();
    i.apply = NULL;
    ck_assert_int_eq(hmt_proc_create(&p, &i, &u), HMT_E_INVAL);
    ck_assert_int_eq(u.freed, 0); /* failure: user_data stays the caller's */
    /* a free-standing processor frees its data */
    i = user_iface();
    ck_assert_int_eq(hmt_proc_create(&p, &i, &u), HMT_OK);
    hmt_proc_free(p);
    ck_assert_int_eq(u.freed, 1);
    hmt_proc_free(NULL);
    ck_assert_int_eq(hmt_sampler_create(NULL, NULL), HMT_E_INVAL);
}
END_TEST

/* API 0.2: a sampler retains the processors added to it; the caller keeps
 * its own reference (hmt_proc_free, in any order), and a failed add changes
 * nothing: the processor stays the caller's. */
START_TEST(sampler_ownership) {
    user_state a = {0}, b = {0}, c = {0};
    hmt_proc_i i = user_iface();
    hmt_sampler *chain = NULL, *other = NULL;
    hmt_proc *pa, *pb, *pc;
    ck_assert_int_eq(hmt_sampler_create(&chain, NULL), HMT_OK);
    ck_assert_int_eq(hmt_sampler_create(&other, NULL), HMT_OK);
    ck_assert_int_eq(hmt_proc_create(&pa, &i, &a), HMT_OK);
    ck_assert_int_eq(hmt_proc_create(&pb, &i, &b), HMT_OK);
    ck_assert_int_eq(hmt_proc_create(&pc, &i, &c), HMT_OK);
    ck_assert_int_eq(hmt_sampler_add(chain, pa), HMT_OK);
    ck_assert_int_eq(hmt_sampler_add(chain, pb), HMT_OK);
    /* already in a sampler (this one or another): refused, nothing changes */
    ck_assert_int_eq(hmt_sampler_add(other, pa), HMT_E_MISUSE);
    ck_assert_int_eq(hmt_sampler_add(chain, pa), HMT_E_MISUSE);
    ck_assert_int_eq(hmt_sampler_n_procs(other), 0);
    /* our reference dropped: the sampler's keeps it alive */
    hmt_proc_free(pa);
    ck_assert_int_eq(a.freed, 0);
    ck_assert_int_eq(hmt_sampler_n_procs(chain), 2);
    /* a failed add (NULL sampler: sampler_null_is_inval, run in a child)
     * leaves the processor ours: still usable */
    ck_assert_int_eq(c.freed, 0);
    ck_assert_int_eq(hmt_sampler_add(other, pc), HMT_OK);
    hmt_proc_free(pc);
    ck_assert_int_eq(c.freed, 0);
    ck_assert_int_eq(hmt_sampler_add(chain, NULL), HMT_E_INVAL);
    ck_assert_int_eq(hmt_sampler_n_procs(chain), 2);
    hmt_sampler_reset(chain);
    ck_assert_int_eq(a.resets + b.resets, 2);
    ck_assert_int_eq(hmt_sampler_accept(chain, 3), HMT_OK);
    ck_assert_int_eq(a.accepted + b.accepted, 2);
    ck_assert_int_eq(b.last_accept, 3);
    ck_assert_int_eq(hmt_sampler_accept(chain, -1), HMT_E_INVAL);
    hmt_sampler_free(chain);
    ck_assert_int_eq(a.freed, 1); /* last reference */
    ck_assert_int_eq(b.freed, 0); /* we still hold pb */
    hmt_proc_free(pb);
    ck_assert_int_eq(b.freed, 1);
    hmt_sampler_free(other);
    ck_assert_int_eq(c.freed, 1);
    hmt_sampler_free(NULL);
    hmt_sampler_reset(NULL);
    ck_assert_int_eq(hmt_sampler_n_procs(NULL), 0);
}
END_TEST

/* Lifetimes: a processor and its sampler freed in either order; a processor
 * whose sampler is gone can join another one. */
START_TEST(sampler_proc_free_orders) {
    hmt_proc_i i = user_iface();
    for (int order = 0; order < 2; order++) {
        user_state u = {0};
        hmt_sampler *s;
        hmt_proc *p;
        ck_assert_int_eq(hmt_sampler_create(&s, NULL), HMT_OK);
        ck_assert_int_eq(hmt_proc_create(&p, &i, &u), HMT_OK);
        ck_assert_int_eq(hmt_sampler_add(s, p), HMT_OK);
        float z[4] = {0, 1, 2, 3}, out[4];
        if (order == 0) {
            hmt_proc_free(p);
            ck_assert_int_eq(u.freed, 0);
            ck_assert_int_eq(hmt_sampler_apply(s, z, 4, NULL, 0, out), HMT_OK);
            ck_assert_int_eq(u.applied, 1);
            hmt_sampler_free(s);
            ck_assert_int_eq(u.freed, 1);
        } else {
            hmt_sampler_free(s);
            ck_assert_int_eq(u.freed, 0);
            hmt_sampler *s2;
            ck_assert_int_eq(hmt_sampler_create(&s2, NULL), HMT_OK);
            ck_assert_int_eq(hmt_sampler_add(s2, p), HMT_OK);
            ck_assert_int_eq(hmt_sampler_apply(s2, z, 4, NULL, 0, out), HMT_OK);
            ck_assert_int_eq(u.applied, 1);
            hmt_proc_free(p);
            ck_assert_int_eq(u.freed, 0);
            hmt_sampler_free(s2);
            ck_assert_int_eq(u.freed, 1);
        }
    }
}
END_TEST

START_TEST(chain_errors_stop_the_chain) {
    user_state a = {0}, b = {0};
    hmt_proc_i i = user_iface();
    i.name = "failing";
    hmt_sampler *chain;
    hmt_proc *pa, *pb;
    ck_assert_int_eq(hmt_sampler_create(&chain, NULL), HMT_OK);
    ck_assert_int_eq(hmt_proc_create(&pa, &i, &a), HMT_OK);
    i.name = "second";
    ck_assert_int_eq(hmt_proc_create(&pb, &i, &b), HMT_OK);
    ck_assert_int_eq(hmt_sampler_add(chain, pa), HMT_OK);
    ck_assert_int_eq(hmt_sampler_add(chain, pb), HMT_OK);
    hmt_proc_free(pa);
    hmt_proc_free(pb);
    float z[5] = {0, 1, 2, 3, 4}, out[5];
    a.ret = HMT_E_UNSUPPORTED;
    ck_assert_int_eq(hmt_sampler_apply(chain, z, 5, NULL, 0, out), HMT_E_UNSUPPORTED);
    ck_assert_int_eq(a.applied, 1);
    ck_assert_int_eq(b.applied, 0); /* stopped */
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "failing"));
    hmt_token t = 77;
    ck_assert_int_eq(hmt_sampler_sample(chain, z, 5, &t), HMT_E_UNSUPPORTED);
    ck_assert_int_eq(t, 77);
    ck_assert_int_eq(a.accepted, 0);
    a.ret = 3; /* not a status */
    ck_assert_int_eq(hmt_sampler_apply(chain, z, 5, NULL, 0, out), HMT_E_INVAL);
    a.ret = HMT_OK;
    b.set_nan = 1;
    ck_assert_int_eq(hmt_sampler_apply(chain, z, 5, NULL, 0, out), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "NaN"));
    b.set_nan = 0;
    b.all_neg_inf = 1;
    ck_assert_int_eq(hmt_sampler_apply(chain, z, 5, NULL, 0, out), HMT_E_INVAL);
    b.all_neg_inf = 0;
    /* argument errors */
    ck_assert_int_eq(hmt_sampler_apply(chain, NULL, 5, NULL, 0, out), HMT_E_INVAL);
    ck_assert_int_eq(hmt_sampler_apply(chain, z, 0, NULL, 0, out), HMT_E_INVAL);
    ck_assert_int_eq(hmt_sampler_apply(chain, z, 5, NULL, 3, out), HMT_E_INVAL);
    ck_assert_int_eq(hmt_sampler_apply(chain, z, 5, NULL, 0, NULL), HMT_E_INVAL);
    ck_assert_int_eq(hmt_sampler_sample(chain, z, 5, NULL), HMT_E_INVAL);
    ck_assert_int_eq(hmt_sampler_sample(chain, NULL, 5, &t), HMT_E_INVAL);
    /* and it works again afterwards; the key reaches the processors */
    float key[3] = {1, 2, 3};
    ck_assert_int_eq(hmt_sampler_apply(chain, z, 5, key, 3, out), HMT_OK);
    ck_assert_ptr_eq(b.seen_key, key);
    ck_assert_int_eq(b.seen_n_key, 3);
    /* prepare reaches every processor that has it */
    ck_assert_int_eq(hmt_sampler_prepare(chain, key, 1, 3), HMT_OK);
    ck_assert_int_eq(a.prepared + b.prepared, 2);
    ck_assert_int_eq(hmt_sampler_prepare(chain, key, 0, 3), HMT_E_INVAL);
    ck_assert_int_eq(hmt_sampler_prepare(chain, NULL, 1, 3), HMT_E_INVAL);
    ck_assert_int_eq(hmt_sampler_prepare(chain, key, 1, 0), HMT_E_INVAL);
    hmt_sampler_free(chain);
    ck_assert_int_eq(a.freed + b.freed, 2);
}
END_TEST

START_TEST(chain_user_callback_and_sampler) {
    enum { N = 64 };
    float z[N], out[N];
    double ref[N];
    for (int i = 0; i < N; i++) z[i] = (float)sin(i * 1.7) * 3.0f;
    hmt_sampler *chain;
    ck_assert_int_eq(hmt_sampler_create(&chain, NULL), HMT_OK);
    /* no processors: the log-softmax */
    ck_assert_int_eq(hmt_sampler_apply(chain, z, N, NULL, 0, out), HMT_OK);
    log_softmax(z, N, ref);
    for (int i = 0; i < N; i++) ck_assert_double_eq_tol(out[i], ref[i], 1e-5);
    /* output may alias the input */
    float zz[N];
    memcpy(zz, z, sizeof z);
    ck_assert_int_eq(hmt_sampler_apply(chain, zz, N, NULL, 0, zz), HMT_OK);
    ck_assert_mem_eq(zz, out, sizeof out);
    hmt_sampler_free(chain);
    /* seeded sampling: two samplers with the same seed draw the same tokens */
    hmt_params *prm;
    ck_assert_int_eq(hmt_params_create(&prm), HMT_OK);
    ck_assert_int_eq(hmt_params_set_float(prm, HMT_P_TEMPERATURE, 1.0), HMT_OK);
    hmt_sampler *s1, *s2;
    ck_assert_int_eq(hmt_sampler_create(&s1, prm), HMT_OK);
    ck_assert_int_eq(hmt_sampler_create(&s2, prm), HMT_OK);
    for (int k = 0; k < 50; k++) {
        hmt_token a, b;
        ck_assert_int_eq(hmt_sampler_sample(s1, z, N, &a), HMT_OK);
        ck_assert_int_eq(hmt_sampler_sample(s2, z, N, &b), HMT_OK);
        ck_assert_int_eq(a, b);
    }
    /* a user processor that bans the best token: greedy picks the second */
    user_state u = {0}, u2 = {0};
    u.ban_argmax = 1;
    u2.ban_argmax = 1;
    hmt_proc_i i = user_iface();
    hmt_proc *p, *p2;
    ck_assert_int_eq(hmt_proc_create(&p, &i, &u), HMT_OK);
    ck_assert_int_eq(hmt_proc_create(&p2, &i, &u2), HMT_OK);
    int best = 0, second = -1;
    for (int k = 1; k < N; k++)
        if (z[k] > z[best]) best = k;
    for (int k = 0; k < N; k++)
        if (k != best && (second < 0 || z[k] > z[second])) second = k;
    hmt_params *g;
    ck_assert_int_eq(hmt_params_create(&g), HMT_OK);
    ck_assert_int_eq(hmt_params_set_float(g, HMT_P_TEMPERATURE, 0.0), HMT_OK);
    hmt_sampler *greedy;
    ck_assert_int_eq(hmt_sampler_create(&greedy, g), HMT_OK);
    ck_assert_int_eq(hmt_sampler_add(greedy, p), HMT_OK);
    hmt_proc_free(p);
    hmt_token t;
    ck_assert_int_eq(hmt_sampler_sample(greedy, z, N, &t), HMT_OK);
    ck_assert_int_eq(t, second);
    ck_assert_int_eq(u.accepted, 1); /* sample accepts */
    ck_assert_int_eq(u.last_accept, second);
    /* temperature sampling never draws the banned token (top-k 40 etc. apply
       to the processed distribution) */
    ck_assert_int_eq(hmt_sampler_add(s2, p2), HMT_OK);
    hmt_proc_free(p2);
    for (int k = 0; k < 200; k++) {
        ck_assert_int_eq(hmt_sampler_sample(s2, z, N, &t), HMT_OK);
        ck_assert_int_ne(t, best);
    }
    ck_assert_int_eq(u2.accepted, 200);
    ck_assert_int_eq(hmt_sampler_apply(s2, z, N, NULL, 0, out), HMT_OK);
    ck_assert(out[best] == -INFINITY);
    hmt_sampler_free(greedy);
    ck_assert_int_eq(u.freed, 1);
    hmt_sampler_free(s1);
    hmt_sampler_free(s2);
    hmt_params_free(g);
    hmt_params_free(prm);
    ck_assert_int_eq(u2.freed, 1);
}
END_TEST

START_TEST(proc_struct_size_versions) {
    /* an older caller whose struct ends after apply: the optional fields it
       did not compile are never read, even if garbage sits there */
    user_state u = {0};
    hmt_proc_i i = user_iface();
    i.struct_size = (uint32_t)((char *)&i.accept - (char *)&i);
    hmt_sampler *chain;
    hmt_proc *p;
    ck_assert_int_eq(hmt_proc_create(&p, &i, &u), HMT_OK);
    ck_assert_int_eq(hmt_sampler_create(&chain, NULL), HMT_OK);
    ck_assert_int_eq(hmt_sampler_add(chain, p), HMT_OK);
    hmt_proc_free(p);
    ck_assert_int_eq(hmt_sampler_accept(chain, 1), HMT_OK);
    const float keys[2] = {1, 2};
    ck_assert_int_eq(hmt_sampler_prepare(chain, keys, 1, 2), HMT_OK); /* no prepare read */
    hmt_sampler_reset(chain);
    hmt_sampler_free(chain);
    ck_assert_int_eq(u.accepted + u.resets + u.freed + u.prepared, 0);
    /* a newer caller's bigger struct is accepted */
    struct {
        hmt_proc_i i;
        void *future[4];
    } big;
    memset(&big, 0, sizeof big);
    big.i = user_iface();
    big.i.struct_size = sizeof big;
    ck_assert_int_eq(hmt_proc_create(&p, &big.i, &u), HMT_OK);
    hmt_proc_free(p);
    ck_assert_int_eq(u.freed, 1);
}
END_TEST

/* ---- DITTO ----------------------------------------------------------------- */

static hmt_proc *make_ditto(const hmt_model *m, double lambda, int mode, int scope, int window,
                            int min_sent, int min_match, int renorm) {
    hmt_params *prm;
    ck_assert_int_eq(hmt_params_create(&prm), HMT_OK);
    ck_assert_int_eq(hmt_params_set_float(prm, HMT_P_DITTO_LAMBDA, lambda), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(prm, HMT_P_DITTO_MODE, mode), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(prm, HMT_P_DITTO_SCOPE, scope), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(prm, HMT_P_DITTO_WINDOW, window), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(prm, HMT_P_DITTO_MIN_SENTENCE, min_sent), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(prm, HMT_P_DITTO_MIN_MATCH, min_match), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(prm, HMT_P_DITTO_RENORM, renorm), HMT_OK);
    hmt_proc *p = NULL;
    ck_assert_int_eq(hmt_proc_ditto_create(&p, m, prm), HMT_OK);
    hmt_params_free(prm);
    return p;
}

/* A sampler holding p; the caller's reference is dropped (the sampler keeps
 * p alive until it is freed). */
static hmt_sampler *sampler_of(hmt_proc *p) {
    hmt_sampler *c;
    ck_assert_int_eq(hmt_sampler_create(&c, NULL), HMT_OK);
    ck_assert_int_eq(hmt_sampler_add(c, p), HMT_OK);
    hmt_proc_free(p);
    return c;
}

START_TEST(ditto_golden) {
    const char *path = hmt_test_data("ditto.golden");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s missing: run make testdata", path);
    int ver, n_cases;
    ck_assert_int_eq(fscanf(f, "ditto-golden %d cases %d", &ver, &n_cases), 2);
    ck_assert_int_eq(ver, 1);
    int total_fired = 0, total_steps = 0;
    for (int ci = 0; ci < n_cases; ci++) {
        char name[64];
        double lambda;
        int mode, scope, window, min_sent, min_match, renorm, nv, nd, n_steps;
        ck_assert_int_eq(fscanf(f, " case %63s %lf %d %d %d %d %d %d %d %d", name, &lambda, &mode,
                                &scope, &window, &min_sent, &min_match, &renorm, &nv, &nd),
                         10);
        hmt_token delims[8];
        ck_assert(nd <= 8);
        for (int k = 0; k < nd; k++) ck_assert_int_eq(fscanf(f, "%d", &delims[k]), 1);
        ck_assert_int_eq(fscanf(f, " steps %d", &n_steps), 1);
        hmt_proc *p = make_ditto(NULL, lambda, mode, scope, window, min_sent, min_match, renorm);
        ck_assert_int_eq(hmt_proc_ditto_set_delimiters(p, delims, (size_t)nd), HMT_OK);
        hmt_sampler *chain = sampler_of(p);
        float *z = malloc(sizeof(float) * (size_t)nv), *out = malloc(sizeof(float) * (size_t)nv);
        double *e = malloc(sizeof(double) * (size_t)nv), *plain = malloc(sizeof(double) * (size_t)nv);
        for (int st = 0; st < n_steps; st++) {
            int apply, tok, nf;
            ck_assert_int_eq(fscanf(f, " step %d %d %d", &apply, &tok, &nf), 3);
            if (apply) {
                ck_assert_int_eq(fscanf(f, " z"), 0);
                for (int v = 0; v < nv; v++) ck_assert_int_eq(fscanf(f, "%f", &z[v]), 1);
                ck_assert_int_eq(fscanf(f, " e"), 0);
                for (int v = 0; v < nv; v++) ck_assert_int_eq(fscanf(f, "%lf", &e[v]), 1);
                ck_assert_int_eq(hmt_sampler_apply(chain, z, nv, NULL, 0, out), HMT_OK);
                log_softmax(z, nv, plain);
                double maxd = 0;
                for (int v = 0; v < nv; v++) maxd = fmax(maxd, fabs(out[v] - e[v]));
                ck_assert_msg(maxd < 2e-5, "%s step %d: max |logp - ref| = %g", name, st, maxd);
                /* mass sums to one */
                double sum = 0;
                for (int v = 0; v < nv; v++) sum += exp(out[v]);
                ck_assert_double_eq_tol(sum, 1.0, 1e-5);
                int changed = 0;
                for (int v = 0; v < nv; v++) changed |= fabs(out[v] - plain[v]) > 1e-5;
                ck_assert_msg(changed == (nf > 0), "%s step %d: fired %d, changed %d", name, st,
                              nf, changed);
            }
            for (int k = 0; k < nf; k++) {
                int y;
                double ratio;
                ck_assert_int_eq(fscanf(f, " f %d %lf", &y, &ratio), 2);
                /* the penalised token's probability moved by exactly this factor */
                const double got = exp((double)out[y] - plain[y]);
                ck_assert_msg(fabs(got - ratio) < 2e-5 * fmax(1.0, ratio),
                              "%s step %d token %d: ratio %g, reference %g", name, st, y, got,
                              ratio);
            }
            total_fired += nf;
            total_steps++;
            ck_assert_int_eq(hmt_sampler_accept(chain, tok), HMT_OK);
        }
        free(z);
        free(out);
        free(e);
        free(plain);
        hmt_sampler_free(chain);
    }
    fclose(f);
    ck_assert_int_gt(total_fired, 50);
    ck_assert_int_gt(total_steps, 100);
}
END_TEST

/* Feed tokens through accept, applying on flat-ish logits at every step
 * (records final probabilities), and return the output at the end. */
static void feed(hmt_sampler *c, const hmt_token *t, int n, const float *z, int32_t nv, float *out) {
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(hmt_sampler_apply(c, z, nv, NULL, 0, out), HMT_OK);
        ck_assert_int_eq(hmt_sampler_accept(c, t[i]), HMT_OK);
    }
}

START_TEST(ditto_model_delimiters_and_factors) {
    hmt_model *m = NULL;
    ck_assert_int_eq(hmt_model_load(&m, hmt_test_data("llama-f32.gguf"), NULL), HMT_OK);
    const int32_t nv = hmt_model_n_vocab(m);
    /* the '.' token of this vocabulary (a byte token) */
    hmt_token dot = -1;
    for (hmt_token v = 0; v < nv && dot < 0; v++) {
        char buf[64];
        size_t n = 0;
        if (!hmt_detokenize(m, &v, 1, 0, buf, sizeof buf, &n) && n == 1 && buf[0] == '.') dot = v;
    }
    ck_assert_int_ge(dot, 0);
    ck_assert(dot != 60 && dot != 61 && dot != 62 && dot != 70);
    float *z = malloc(sizeof(float) * (size_t)nv), *out = malloc(sizeof(float) * (size_t)nv);
    double *plain = malloc(sizeof(double) * (size_t)nv);
    for (int32_t v = 0; v < nv; v++) z[v] = (float)cos(v * 0.37);
    log_softmax(z, nv, plain);
    const hmt_token sent[] = {60, 61, 62, dot};
    /* power, consecutive: after k copies the continuation gets λ^k */
    hmt_proc *p = make_ditto(m, 0.5, 0, 0, 8, 2, 0, 0);
    hmt_sampler *c = sampler_of(p);
    /* first copy: the accepted tokens are never penalised */
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(hmt_sampler_apply(c, z, nv, NULL, 0, out), HMT_OK);
        for (int32_t v = 0; v < nv; v++) ck_assert_double_eq_tol(out[v], plain[v], 1e-6);
        ck_assert_int_eq(hmt_sampler_accept(c, sent[i]), HMT_OK);
    }
    for (int copies = 1; copies <= 3; copies++) {
        for (int i = 0; i < 4; i++) {
            ck_assert_int_eq(hmt_sampler_apply(c, z, nv, NULL, 0, out), HMT_OK);
            const hmt_token y = sent[i];
            const double s = pow(0.5, copies), p0 = exp(plain[y]);
            ck_assert_double_eq_tol(exp(out[y]), s * p0, 1e-6 * p0);
            /* every other token scaled by (1 - s p)/(1 - p) */
            const double k = (1 - s * p0) / (1 - p0);
            for (int32_t v = 0; v < nv; v += 17)
                if (v != y) ck_assert_double_eq_tol(exp(out[v]), k * exp(plain[v]), 1e-6);
            ck_assert_int_eq(hmt_sampler_accept(c, y), HMT_OK);
        }
    }
    /* a different sentence breaks away: nothing fires once it deviates */
    ck_assert_int_eq(hmt_sampler_accept(c, 60), HMT_OK);
    ck_assert_int_eq(hmt_sampler_accept(c, 70), HMT_OK);
    ck_assert_int_eq(hmt_sampler_apply(c, z, nv, NULL, 0, out), HMT_OK);
    for (int32_t v = 0; v < nv; v++) ck_assert_double_eq_tol(out[v], plain[v], 1e-6);
    /* reset forgets the history */
    hmt_sampler_reset(c);
    ck_assert_int_eq(hmt_sampler_apply(c, z, nv, NULL, 0, out), HMT_OK);
    for (int32_t v = 0; v < nv; v++) ck_assert_double_eq_tol(out[v], plain[v], 1e-6);
    /* wrong vocabulary size */
    ck_assert_int_eq(hmt_sampler_apply(c, z, nv - 1, NULL, 0, out), HMT_E_INVAL);
    hmt_sampler_free(c);

    /* relative: p'(y) = min(p, λ p_prev), p_prev the final probability in the
       previous copy (here λ^(n-1) p for the n-th copy) */
    p = make_ditto(m, 0.5, 1, 0, 8, 2, 0, 0);
    c = sampler_of(p);
    feed(c, sent, 4, z, nv, out);
    for (int copies = 1; copies <= 3; copies++)
        for (int i = 0; i < 4; i++) {
            ck_assert_int_eq(hmt_sampler_apply(c, z, nv, NULL, 0, out), HMT_OK);
            const double p0 = exp(plain[sent[i]]);
            ck_assert_double_eq_tol(exp(out[sent[i]]), pow(0.5, copies) * p0, 1e-6 * p0);
            ck_assert_int_eq(hmt_sampler_accept(c, sent[i]), HMT_OK);
        }
    hmt_sampler_free(c);

    /* λ = 1: the output is bit-identical to an empty chain's */
    hmt_sampler *empty;
    ck_assert_int_eq(hmt_sampler_create(&empty, NULL), HMT_OK);
    float *ref = malloc(sizeof(float) * (size_t)nv);
    for (int mode = 0; mode < 2; mode++)
        for (int scope = 0; scope < 2; scope++) {
            p = make_ditto(m, 1.0, mode, scope, 8, 2, 0, mode);
            c = sampler_of(p);
            for (int k = 0; k < 4; k++)
                for (int i = 0; i < 4; i++) {
                    ck_assert_int_eq(hmt_sampler_apply(c, z, nv, NULL, 0, out), HMT_OK);
                    ck_assert_int_eq(hmt_sampler_apply(empty, z, nv, NULL, 0, ref), HMT_OK);
                    ck_assert_mem_eq(out, ref, sizeof(float) * (size_t)nv);
                    ck_assert_int_eq(hmt_sampler_accept(c, sent[i]), HMT_OK);
                }
            hmt_sampler_free(c);
        }
    hmt_sampler_free(empty);

    /* delimiter errors */
    p = make_ditto(m, 0.5, 0, 0, 8, 2, 0, 0);
    hmt_token bad = nv;
    ck_assert_int_eq(hmt_proc_ditto_set_delimiters(p, &bad, 1), HMT_E_INVAL);
    ck_assert_int_eq(hmt_proc_ditto_set_delimiters(p, NULL, 1), HMT_E_INVAL);
    ck_assert_int_eq(hmt_proc_ditto_set_delimiters(NULL, &dot, 1), HMT_E_INVAL);
    ck_assert_int_eq(hmt_proc_ditto_set_delimiters(p, NULL, 0), HMT_OK); /* no sentences */
    c = sampler_of(p);
    feed(c, sent, 4, z, nv, out);
    feed(c, sent, 4, z, nv, out);
    ck_assert_int_eq(hmt_sampler_apply(c, z, nv, NULL, 0, out), HMT_OK);
    for (int32_t v = 0; v < nv; v++) ck_assert_double_eq_tol(out[v], plain[v], 1e-6);
    hmt_sampler_free(c);
    user_state u = {0};
    hmt_proc_i ui = user_iface();
    ck_assert_int_eq(hmt_proc_create(&p, &ui, &u), HMT_OK);
    ck_assert_int_eq(hmt_proc_ditto_set_delimiters(p, &dot, 1), HMT_E_INVAL);
    hmt_proc_free(p);
    ck_assert_int_eq(hmt_proc_ditto_create(NULL, m, NULL), HMT_E_INVAL);
    free(ref);
    free(z);
    free(out);
    free(plain);
    hmt_model_free(m);
}
END_TEST

/* A long loop: the history is compacted, the penalty keeps firing right. */
START_TEST(ditto_long_history) {
    enum { NV = 50 };
    float z[NV], out[NV];
    double plain[NV];
    for (int v = 0; v < NV; v++) z[v] = (float)v * 0.01f;
    log_softmax(z, NV, plain);
    hmt_token delim = 1;
    for (int scope = 0; scope < 2; scope++) {
        hmt_proc *p = make_ditto(NULL, 0.9, 0, scope, 3, 2, 0, 0);
        ck_assert_int_eq(hmt_proc_ditto_set_delimiters(p, &delim, 1), HMT_OK);
        hmt_sampler *c = sampler_of(p);
        /* 3000 sentences "k k+1 ... ." of varying content, then a repeat */
        for (int s = 0; s < 3000; s++) {
            for (int i = 0; i < 4; i++) ck_assert_int_eq(hmt_sampler_accept(c, 2 + (s * 7 + i) % 40), HMT_OK);
            ck_assert_int_eq(hmt_sampler_accept(c, delim), HMT_OK);
        }
        const int s = 2999;
        ck_assert_int_eq(hmt_sampler_accept(c, 2 + (s * 7) % 40), HMT_OK);
        ck_assert_int_eq(hmt_sampler_apply(c, z, NV, NULL, 0, out), HMT_OK);
        const hmt_token y = 2 + (s * 7 + 1) % 40;
        ck_assert_double_eq_tol(exp(out[y] - plain[y]), 0.9, 1e-5);
        hmt_sampler_free(c);
    }
}
END_TEST

/* Every sampler entry point given a NULL sampler returns HMT_E_INVAL
 * (sampler.h: "Errors: HMT_E_INVAL (NULL ...)"). Each call runs in a child
 * process, so one crash does not hide the others; the failure lists them. */
static int null_call(int which, hmt_proc *p, const hmt_ctx *ctx) {
    float z[4] = {0, 1, 2, 3}, out[4];
    hmt_token t;
    switch (which) {
    case 0: return hmt_sampler_add(NULL, p);
    case 1: return hmt_sampler_apply(NULL, z, 4, NULL, 0, out);
    case 2: return hmt_sampler_accept(NULL, 1);
    case 3: return hmt_sampler_prepare(NULL, z, 1, 4);
    case 4: return hmt_sampler_sample(NULL, z, 4, &t);
    case 5: return hmt_sampler_sample_ctx(NULL, ctx, -1, &t);
    default: return HMT_OK;
    }
}

START_TEST(sampler_null_is_inval) {
    static const char *names[] = {"hmt_sampler_add", "hmt_sampler_apply", "hmt_sampler_accept",
                                  "hmt_sampler_prepare", "hmt_sampler_sample",
                                  "hmt_sampler_sample_ctx"};
    user_state u = {0};
    hmt_proc_i i = user_iface();
    hmt_proc *p;
    ck_assert_int_eq(hmt_proc_create(&p, &i, &u), HMT_OK);
    hmt_model *m = NULL;
    ck_assert_int_eq(hmt_model_load(&m, hmt_test_data("llama-f32.gguf"), NULL), HMT_OK);
    hmt_ctx *ctx;
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, NULL), HMT_OK);
    const hmt_token tok = 5;
    ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, &tok, 1, 0), HMT_OK);
    char bad[512] = "";
    for (int which = 0; which < 6; which++) {
        fflush(NULL);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) _exit(null_call(which, p, ctx) == HMT_E_INVAL ? 0 : 1);
        int st = 0;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            snprintf(bad + strlen(bad), sizeof bad - strlen(bad), " %s(%s)", names[which],
                     WIFSIGNALED(st) ? "crashed" : "not HMT_E_INVAL");
    }
    /* the processor is untouched and still ours */
    ck_assert_int_eq(u.freed, 0);
    hmt_proc_free(p);
    ck_assert_int_eq(u.freed, 1);
    hmt_ctx_free(ctx);
    hmt_model_free(m);
    ck_assert_msg(bad[0] == '\0', "NULL sampler:%s", bad);
}
END_TEST

Suite *hmt_suite_proc(void);
Suite *hmt_suite_proc(void) {
    Suite *s = suite_create("proc");
    TCase *tc = tcase_create("chain");
    tcase_add_test(tc, proc_create_errors);
    tcase_add_test(tc, sampler_ownership);
    tcase_add_test(tc, sampler_proc_free_orders);
    tcase_add_test(tc, chain_errors_stop_the_chain);
    tcase_add_test(tc, chain_user_callback_and_sampler);
    tcase_add_test(tc, proc_struct_size_versions);
    tcase_add_test(tc, sampler_null_is_inval);
    suite_add_tcase(s, tc);
    TCase *td = tcase_create("ditto");
    tcase_set_timeout(td, 60);
    tcase_add_test(td, ditto_golden);
    tcase_add_test(td, ditto_model_delimiters_and_factors);
    tcase_add_test(td, ditto_long_history);
    suite_add_tcase(s, td);
    return s;
}
