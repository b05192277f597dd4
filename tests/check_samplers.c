/* The built-in sampling processors (include/hmt/sampler.h: min-p, typical,
 * penalties, logit bias) against tests/reference/sampler_ref.py, a NumPy
 * statement of llama.cpp's definitions (samplers.golden), their argument
 * errors, and how they compose with the sampler's seeded draw. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "hmt/hmt.h"
#include "util/testutil.h"

/* ---- a spy: the last processor, copies the logits it is given ------------- */
typedef struct {
    float *seen;
    int32_t n;
} spy;

static int spy_apply(void *ud, float *z, int32_t n, const float *key, int32_t n_key) {
    (void)key;
    (void)n_key;
    spy *s = ud;
    memcpy(s->seen, z, (size_t)n * sizeof *z);
    s->n = n;
    return HMT_OK;
}

static void add_spy(hmt_sampler *smpl, spy *s) {
    static const hmt_proc_i iface = {
        .struct_size = sizeof(hmt_proc_i), .name = "spy", .apply = spy_apply};
    hmt_proc *p = NULL;
    ck_assert_int_eq(hmt_proc_create(&p, &iface, s), HMT_OK);
    ck_assert_int_eq(hmt_sampler_add(smpl, p), HMT_OK);
    hmt_proc_free(p);
}

static hmt_params *params_f(hmt_param k1, double v1, hmt_param k2, double v2) {
    hmt_params *pr = NULL;
    ck_assert_int_eq(hmt_params_create(&pr), HMT_OK);
    double lo, hi, def;
    int is_int;
    hmt_param ks[2] = {k1, k2};
    double vs[2] = {v1, v2};
    for (int i = 0; i < 2; i++) {
        if ((int)ks[i] == 0) continue;
        ck_assert_int_eq(hmt_param_bounds(ks[i], &lo, &hi, &def, &is_int), HMT_OK);
        if (is_int)
            ck_assert_int_eq(hmt_params_set_int(pr, ks[i], (int64_t)vs[i]), HMT_OK);
        else
            ck_assert_int_eq(hmt_params_set_float(pr, ks[i], vs[i]), HMT_OK);
    }
    return pr;
}

static void add_proc(hmt_sampler *smpl, hmt_proc *p) {
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(hmt_sampler_add(smpl, p), HMT_OK);
    hmt_proc_free(p);
}

/* Read one "proc ..." line of the golden file and add that processor. */
static void golden_proc(FILE *f, hmt_sampler *smpl, const char *cname) {
    char kind[32];
    ck_assert_int_eq(fscanf(f, " proc %31s", kind), 1);
    hmt_proc *p = NULL;
    if (!strcmp(kind, "min_p") || !strcmp(kind, "typical")) {
        double pv;
        int keep;
        ck_assert_int_eq(fscanf(f, "%lf %d", &pv, &keep), 2);
        const int mp = !strcmp(kind, "min_p");
        hmt_params *pr = params_f(mp ? HMT_P_MIN_P : HMT_P_TYPICAL_P, pv, HMT_P_MIN_KEEP, keep);
        ck_assert_int_eq(mp ? hmt_proc_min_p_create(&p, pr) : hmt_proc_typical_create(&p, pr),
                         HMT_OK);
        hmt_params_free(pr);
    } else if (!strcmp(kind, "penalties")) {
        int last_n;
        double rep, freq, pres;
        ck_assert_int_eq(fscanf(f, "%d %lf %lf %lf", &last_n, &rep, &freq, &pres), 4);
        hmt_params *pr = params_f(HMT_P_PENALTY_LAST_N, last_n, HMT_P_REPEAT_PENALTY, rep);
        ck_assert_int_eq(hmt_params_set_float(pr, HMT_P_FREQUENCY_PENALTY, freq), HMT_OK);
        ck_assert_int_eq(hmt_params_set_float(pr, HMT_P_PRESENCE_PENALTY, pres), HMT_OK);
        ck_assert_int_eq(hmt_proc_penalties_create(&p, pr), HMT_OK);
        hmt_params_free(pr);
    } else {
        ck_assert_msg(!strcmp(kind, "logit_bias"), "%s: unknown processor %s", cname, kind);
        int n;
        ck_assert_int_eq(fscanf(f, "%d", &n), 1);
        hmt_token tok[16];
        float bias[16];
        ck_assert(n <= 16);
        for (int i = 0; i < n; i++) ck_assert_int_eq(fscanf(f, "%d %f", &tok[i], &bias[i]), 2);
        ck_assert_int_eq(hmt_proc_logit_bias_create(&p, NULL, tok, bias, (size_t)n), HMT_OK);
    }
    add_proc(smpl, p);
}

/* Tolerance (sampler_ref.py): -inf entries identical, others within
 * 1e-6 * max(1, |e|). */
START_TEST(golden) {
    const char *path = hmt_test_data("samplers.golden");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s missing: run make testdata", path);
    int ver, n_cases;
    ck_assert_int_eq(fscanf(f, "sampler-golden %d cases %d", &ver, &n_cases), 2);
    ck_assert_int_eq(ver, 1);
    int applies = 0, removed = 0, changed = 0;
    double worst = 0;
    for (int ci = 0; ci < n_cases; ci++) {
        char name[64];
        int nv, np, ns;
        ck_assert_int_eq(fscanf(f, " case %63s %d %d %d", name, &nv, &np, &ns), 4);
        hmt_sampler *smpl = NULL;
        ck_assert_int_eq(hmt_sampler_create(&smpl, NULL), HMT_OK);
        for (int k = 0; k < np; k++) golden_proc(f, smpl, name);
        float *z = malloc(sizeof(float) * (size_t)nv), *lp = malloc(sizeof(float) * (size_t)nv);
        double *e = malloc(sizeof(double) * (size_t)nv);
        spy s = {malloc(sizeof(float) * (size_t)nv), 0};
        add_spy(smpl, &s);
        for (int st = 0; st < ns; st++) {
            int reset, nacc;
            ck_assert_int_eq(fscanf(f, " step %d %d", &reset, &nacc), 2);
            if (reset) hmt_sampler_reset(smpl);
            for (int k = 0; k < nacc; k++) {
                int t;
                ck_assert_int_eq(fscanf(f, "%d", &t), 1);
                ck_assert_int_eq(hmt_sampler_accept(smpl, t), HMT_OK);
            }
            ck_assert_int_eq(fscanf(f, " z"), 0);
            for (int v = 0; v < nv; v++) ck_assert_int_eq(fscanf(f, "%f", &z[v]), 1);
            ck_assert_int_eq(fscanf(f, " e"), 0);
            for (int v = 0; v < nv; v++) ck_assert_int_eq(fscanf(f, "%lf", &e[v]), 1);
            s.n = 0;
            ck_assert_msg(hmt_sampler_apply(smpl, z, nv, NULL, 0, lp) == HMT_OK, "%s step %d: %s",
                          name, st, hmt_last_error_msg());
            ck_assert_int_eq(s.n, nv);
            for (int v = 0; v < nv; v++) {
                const double got = s.seen[v];
                if (isinf(e[v]) || isinf(got)) {
                    ck_assert_msg(got == e[v], "%s step %d token %d: %g, reference %g", name, st,
                                  v, got, e[v]);
                    removed += z[v] != -INFINITY;
                    continue;
                }
                const double d = fabs(got - e[v]);
                ck_assert_msg(d <= 1e-6 * fmax(1.0, fabs(e[v])),
                              "%s step %d token %d: %.9g, reference %.17g", name, st, v, got, e[v]);
                worst = fmax(worst, d / fmax(1.0, fabs(e[v])));
                changed += got != z[v];
            }
            applies++;
        }
        free(z);
        free(lp);
        free(e);
        free(s.seen);
        hmt_sampler_free(smpl);
    }
    fclose(f);
    /* the file exercised something: removals and modified logits */
    ck_assert_int_gt(applies, 100);
    ck_assert_int_gt(removed, 500);
    ck_assert_int_gt(changed, 200);
    ck_assert_double_lt(worst, 1e-6);
}
END_TEST

/* ---- errors ------------------------------------------------------------------ */
static void expect_err(int rc, int code, const char *needle) {
    ck_assert_int_eq(rc, code);
    ck_assert_msg(strstr(hmt_last_error_msg(), needle) != NULL, "message '%s' lacks '%s'",
                  hmt_last_error_msg(), needle);
}

START_TEST(bad_params) {
    hmt_params *pr = NULL;
    ck_assert_int_eq(hmt_params_create(&pr), HMT_OK);
    expect_err(hmt_params_set_float(pr, HMT_P_MIN_P, 1.5), HMT_E_INVAL, "min_p");
    expect_err(hmt_params_set_float(pr, HMT_P_MIN_P, -0.1), HMT_E_INVAL, "min_p");
    expect_err(hmt_params_set_float(pr, HMT_P_MIN_P, NAN), HMT_E_INVAL, "min_p");
    expect_err(hmt_params_set_float(pr, HMT_P_TYPICAL_P, 1.01), HMT_E_INVAL, "typical_p");
    expect_err(hmt_params_set_float(pr, HMT_P_TYPICAL_P, NAN), HMT_E_INVAL, "typical_p");
    expect_err(hmt_params_set_int(pr, HMT_P_MIN_KEEP, -1), HMT_E_INVAL, "min_keep");
    expect_err(hmt_params_set_int(pr, HMT_P_PENALTY_LAST_N, -1), HMT_E_INVAL, "penalty_last_n");
    expect_err(hmt_params_set_float(pr, HMT_P_REPEAT_PENALTY, 0), HMT_E_INVAL, "repeat_penalty");
    expect_err(hmt_params_set_float(pr, HMT_P_REPEAT_PENALTY, INFINITY), HMT_E_INVAL,
               "repeat_penalty");
    expect_err(hmt_params_set_float(pr, HMT_P_FREQUENCY_PENALTY, NAN), HMT_E_INVAL,
               "frequency_penalty");
    expect_err(hmt_params_set_float(pr, HMT_P_PRESENCE_PENALTY, -INFINITY), HMT_E_INVAL,
               "presence_penalty");
    expect_err(hmt_params_set_int(pr, HMT_P_MIN_P, 0), HMT_E_INVAL, "min_p"); /* float key */
    /* nothing was set: every processor takes this object */
    hmt_proc *p = NULL;
    ck_assert_int_eq(hmt_proc_min_p_create(&p, pr), HMT_OK);
    hmt_proc_free(p);
    /* each reads only its own keys */
    ck_assert_int_eq(hmt_params_set_float(pr, HMT_P_MIN_P, 0.1), HMT_OK);
    p = (hmt_proc *)&p;
    expect_err(hmt_proc_typical_create(&p, pr), HMT_E_INVAL, "min_p");
    ck_assert_ptr_null(p);
    expect_err(hmt_proc_penalties_create(&p, pr), HMT_E_INVAL, "min-p processor");
    hmt_sampler *smpl = NULL;
    expect_err(hmt_sampler_create(&smpl, pr), HMT_E_INVAL, "min_p");
    ck_assert_ptr_null(smpl);
    ck_assert_int_eq(hmt_params_set_int(pr, HMT_P_MIN_KEEP, 3), HMT_OK);
    ck_assert_int_eq(hmt_proc_min_p_create(&p, pr), HMT_OK); /* min_keep is read by both */
    hmt_proc_free(p);
    hmt_params_free(pr);
    pr = params_f(HMT_P_TEMPERATURE, 0.5, (hmt_param)0, 0);
    expect_err(hmt_proc_min_p_create(&p, pr), HMT_E_INVAL, "temperature");
    hmt_params_free(pr);
    pr = params_f(HMT_P_PENALTY_LAST_N, 4, (hmt_param)0, 0);
    expect_err(hmt_proc_typical_create(&p, pr), HMT_E_INVAL, "penalty_last_n");
    hmt_params_free(pr);
    /* NULL out */
    expect_err(hmt_proc_min_p_create(NULL, NULL), HMT_E_INVAL, "out is NULL");
    expect_err(hmt_proc_typical_create(NULL, NULL), HMT_E_INVAL, "out is NULL");
    expect_err(hmt_proc_penalties_create(NULL, NULL), HMT_E_INVAL, "out is NULL");
    expect_err(hmt_proc_logit_bias_create(NULL, NULL, NULL, NULL, 0), HMT_E_INVAL, "out is NULL");
}
END_TEST

START_TEST(bad_logit_bias) {
    hmt_token tok[3] = {1, 5, 7};
    float bias[3] = {1, -2, -INFINITY};
    hmt_proc *p = (hmt_proc *)&p;
    expect_err(hmt_proc_logit_bias_create(&p, NULL, NULL, bias, 3), HMT_E_INVAL, "tokens");
    ck_assert_ptr_null(p);
    expect_err(hmt_proc_logit_bias_create(&p, NULL, tok, NULL, 3), HMT_E_INVAL, "biases");
    tok[1] = -1;
    expect_err(hmt_proc_logit_bias_create(&p, NULL, tok, bias, 3), HMT_E_INVAL, "tokens[1] = -1");
    tok[1] = 5;
    bias[0] = NAN;
    expect_err(hmt_proc_logit_bias_create(&p, NULL, tok, bias, 3), HMT_E_INVAL, "biases[0] is NaN");
    bias[0] = INFINITY;
    expect_err(hmt_proc_logit_bias_create(&p, NULL, tok, bias, 3), HMT_E_INVAL, "+inf");
    bias[0] = 1;
    /* n = 0 is a processor that changes nothing */
    ck_assert_int_eq(hmt_proc_logit_bias_create(&p, NULL, NULL, NULL, 0), HMT_OK);
    hmt_proc_free(p);
    /* with a model: ids are checked against its vocabulary now */
    hmt_model *m = NULL;
    ck_assert_int_eq(hmt_model_load(&m, hmt_test_data("llama-f32.gguf"), NULL), HMT_OK);
    const int32_t nv = hmt_model_n_vocab(m);
    tok[2] = nv;
    expect_err(hmt_proc_logit_bias_create(&p, m, tok, bias, 3), HMT_E_INVAL, "tokens[2]");
    tok[2] = nv - 1;
    ck_assert_int_eq(hmt_proc_logit_bias_create(&p, m, tok, bias, 3), HMT_OK);
    hmt_sampler *smpl = NULL;
    ck_assert_int_eq(hmt_sampler_create(&smpl, NULL), HMT_OK);
    add_proc(smpl, p);
    hmt_model_free(m); /* the processor keeps no reference */
    float z[400] = {0}, lp[400];
    expect_err(hmt_sampler_apply(smpl, z, nv + 1, NULL, 0, lp), HMT_E_INVAL, "differs");
    ck_assert_int_eq(hmt_sampler_apply(smpl, z, nv, NULL, 0, lp), HMT_OK);
    ck_assert(lp[nv - 1] == -INFINITY && lp[1] > lp[0] && lp[5] < lp[0]);
    hmt_sampler_free(smpl);
    /* without a model: an id outside the logits is refused at apply */
    tok[2] = 300;
    ck_assert_int_eq(hmt_proc_logit_bias_create(&p, NULL, tok, bias, 3), HMT_OK);
    ck_assert_int_eq(hmt_sampler_create(&smpl, NULL), HMT_OK);
    add_proc(smpl, p);
    expect_err(hmt_sampler_apply(smpl, z, 300, NULL, 0, lp), HMT_E_INVAL, "token 300 is outside");
    ck_assert_msg(strstr(hmt_last_error_msg(), "logit-bias") != NULL, "%s", hmt_last_error_msg());
    ck_assert_int_eq(hmt_sampler_apply(smpl, z, 301, NULL, 0, lp), HMT_OK);
    hmt_sampler_free(smpl);
}
END_TEST

/* A logit pushed past float's range is an error, not an infinity. */
START_TEST(penalty_overflow) {
    hmt_params *pr = params_f(HMT_P_REPEAT_PENALTY, 1e-6, HMT_P_PENALTY_LAST_N, 4);
    hmt_proc *p = NULL;
    ck_assert_int_eq(hmt_proc_penalties_create(&p, pr), HMT_OK);
    hmt_params_free(pr);
    hmt_sampler *smpl = NULL;
    ck_assert_int_eq(hmt_sampler_create(&smpl, NULL), HMT_OK);
    add_proc(smpl, p);
    float z[4] = {1e36f, -1e36f, 0, 1}, lp[4];
    ck_assert_int_eq(hmt_sampler_apply(smpl, z, 4, NULL, 0, lp), HMT_OK); /* nothing accepted */
    ck_assert_int_eq(hmt_sampler_accept(smpl, 0), HMT_OK); /* 1e36 / 1e-6 */
    expect_err(hmt_sampler_apply(smpl, z, 4, NULL, 0, lp), HMT_E_INVAL, "overflows");
    hmt_sampler_reset(smpl); /* forgets token 0 */
    ck_assert_int_eq(hmt_sampler_apply(smpl, z, 4, NULL, 0, lp), HMT_OK);
    ck_assert_int_eq(hmt_sampler_accept(smpl, 3), HMT_OK);
    ck_assert_int_eq(hmt_sampler_apply(smpl, z, 4, NULL, 0, lp), HMT_OK); /* 1 / 1e-6: fine */
    hmt_sampler_free(smpl);
}
END_TEST

/* ---- composition with the draw -------------------------------------------- */
/* temperature 1, top-k 0, top-p 1 is llama.cpp's "dist": the processors'
 * distribution itself. Min-p's removed tokens are never drawn, and the kept
 * ones come at their renormalized probabilities. */
START_TEST(draw_after_min_p) {
    enum { NV = 16, DRAWS = 20000 };
    hmt_params *sp = params_f(HMT_P_TEMPERATURE, 1.0, HMT_P_TOP_K, 0);
    ck_assert_int_eq(hmt_params_set_float(sp, HMT_P_TOP_P, 1.0), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(sp, HMT_P_SEED, 1234), HMT_OK);
    hmt_sampler *smpl = NULL;
    ck_assert_int_eq(hmt_sampler_create(&smpl, sp), HMT_OK);
    hmt_params *pr = params_f(HMT_P_MIN_P, 0.2, (hmt_param)0, 0);
    hmt_proc *p = NULL;
    ck_assert_int_eq(hmt_proc_min_p_create(&p, pr), HMT_OK);
    add_proc(smpl, p);
    float z[NV];
    for (int v = 0; v < NV; v++) z[v] = (float)(0.25 * v - 2);
    /* kept: z >= max + ln 0.2 = 1.75 - 1.609, ids 9..15 */
    const double thr = 1.75 + log(0.2);
    double mass = 0;
    for (int v = 0; v < NV; v++)
        if (z[v] >= thr) mass += exp(z[v]);
    int count[NV] = {0};
    hmt_token first[8];
    for (int i = 0; i < DRAWS; i++) {
        hmt_token t;
        ck_assert_int_eq(hmt_sampler_sample(smpl, z, NV, &t), HMT_OK);
        if (i < 8) first[i] = t;
        count[t]++;
    }
    for (int v = 0; v < NV; v++) {
        if (z[v] < thr) {
            EXPECT_MSG(count[v] == 0, "token %d (removed) drawn %d times", v, count[v]);
            continue;
        }
        const double pk = exp(z[v]) / mass, sd = sqrt(DRAWS * pk * (1 - pk));
        EXPECT_MSG(fabs(count[v] - DRAWS * pk) < 5 * sd, "token %d: %d draws, expected %.0f", v,
                   count[v], DRAWS * pk);
    }
    /* seeded: the same seed gives the same tokens */
    hmt_sampler_reseed(smpl, 1234);
    for (int i = 0; i < 8; i++) {
        hmt_token t;
        ck_assert_int_eq(hmt_sampler_sample(smpl, z, NV, &t), HMT_OK);
        ck_assert_int_eq(t, first[i]);
    }
    hmt_sampler_free(smpl);
    hmt_params_free(sp);
    hmt_params_free(pr);
}
END_TEST

/* The sample functions accept what they draw: penalties see it next time,
 * and only the last n; reset forgets. */
START_TEST(penalties_history) {
    hmt_params *pr = params_f(HMT_P_PENALTY_LAST_N, 2, HMT_P_PRESENCE_PENALTY, 100);
    hmt_proc *p = NULL;
    ck_assert_int_eq(hmt_proc_penalties_create(&p, pr), HMT_OK);
    hmt_params_free(pr);
    hmt_params *sp = params_f(HMT_P_TEMPERATURE, 0, (hmt_param)0, 0);
    hmt_sampler *smpl = NULL;
    ck_assert_int_eq(hmt_sampler_create(&smpl, sp), HMT_OK);
    hmt_params_free(sp);
    add_proc(smpl, p);
    float z[5] = {4, 3, 2, 1, 0};
    hmt_token t, got[4];
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(hmt_sampler_sample(smpl, z, 5, &t), HMT_OK);
        got[i] = t;
    }
    /* greedy, each drawn token banned for the next two draws: 0, 1, 2, 0 */
    ck_assert_int_eq(got[0], 0);
    ck_assert_int_eq(got[1], 1);
    ck_assert_int_eq(got[2], 2);
    ck_assert_int_eq(got[3], 0);
    hmt_sampler_reset(smpl);
    ck_assert_int_eq(hmt_sampler_sample(smpl, z, 5, &t), HMT_OK);
    ck_assert_int_eq(t, 0); /* 0 was in the window before the reset */
    hmt_sampler_free(smpl);
}
END_TEST

/* ---- allocation failures (lib/core/alloc.c's hook) ------------------------ */
/* Create all four, run them once; every allocation of it may fail. */
static int all_four(void) {
    hmt_params *pp = NULL, *tp = NULL;
    hmt_sampler *s = NULL;
    hmt_proc *p[4] = {NULL, NULL, NULL, NULL};
    const hmt_token tok[2] = {1, 6};
    const float bias[2] = {0.5f, -INFINITY};
    float z[8] = {1, 2, 3, -1, 0.5f, 2.5f, 0, -2}, lp[8];
    int rc = hmt_params_create(&pp);
    if (!rc) rc = hmt_params_create(&tp);
    if (!rc) rc = hmt_params_set_float(pp, HMT_P_REPEAT_PENALTY, 1.5);
    if (!rc) rc = hmt_params_set_float(tp, HMT_P_TYPICAL_P, 0.5);
    if (!rc) rc = hmt_sampler_create(&s, NULL);
    if (!rc) rc = hmt_proc_logit_bias_create(&p[0], NULL, tok, bias, 2);
    if (!rc) rc = hmt_proc_penalties_create(&p[1], pp);
    if (!rc) rc = hmt_proc_typical_create(&p[2], tp);
    if (!rc) rc = hmt_proc_min_p_create(&p[3], NULL);
    for (int i = 0; i < 4; i++) {
        if (!rc) rc = hmt_sampler_add(s, p[i]);
        hmt_proc_free(p[i]);
    }
    if (!rc) rc = hmt_sampler_accept(s, 2);
    if (!rc) rc = hmt_sampler_apply(s, z, 8, NULL, 0, lp);
    hmt_sampler_free(s);
    hmt_params_free(pp);
    hmt_params_free(tp);
    return rc;
}

START_TEST(allocation_failures) {
    long n = 1;
    for (;; n++) {
        ck_assert_int_lt(n, 1000);
        hmti_alloc_fail_at(n);
        const int rc = all_four();
        if (!hmti_alloc_fail_at(0)) {
            ck_assert_msg(rc == HMT_OK, "no failure injected, yet: %s", hmt_last_error_msg());
            break;
        }
        ck_assert_msg(rc == HMT_E_NOMEM, "allocation %ld failed: status %d (%s)", n, rc,
                      hmt_last_error_msg());
    }
    ck_assert_int_gt(n, 12); /* the hook saw the processors' allocations */
}
END_TEST

Suite *hmt_suite_samplers(void);
Suite *hmt_suite_samplers(void) {
    Suite *s = suite_create("samplers");
    TCase *tc = tcase_create("golden");
    tcase_add_test(tc, golden);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("errors");
    tcase_add_test(te, bad_params);
    tcase_add_test(te, bad_logit_bias);
    tcase_add_test(te, penalty_overflow);
    tcase_add_test(te, allocation_failures);
    tcase_set_timeout(te, 60);
    suite_add_tcase(s, te);
    TCase *td = tcase_create("draw");
    tcase_add_test(td, draw_after_min_p);
    tcase_add_test(td, penalties_history);
    tcase_set_timeout(td, 60);
    suite_add_tcase(s, td);
    return s;
}
