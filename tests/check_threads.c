/* One model shared by several threads, each with its own context or stream:
 * the results equal running the same work one after another, bit for bit
 * (each context uses one worker thread, so nothing is reassociated). Run
 * under ThreadSanitizer with `make tsan`. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hmt/hmt.h"
#include "util/testutil.h"

#define N_WORKERS 4
#define N_TOK 150

typedef struct {
    hmt_model *model;
    hmt_adapter *adapter;
    int id;
    float *out; /* logits of the last token of each of N_TOK steps */
    int rc;
} job;

static void tokens_for(int id, hmt_token *t, int32_t n_vocab) {
    for (int i = 0; i < N_TOK; i++) t[i] = (hmt_token)((id * 131 + i * 17 + 3) % n_vocab);
}

/* A plain context fed token by token, then an HMT stream over the same ids. */
static void *work(void *arg) {
    job *j = arg;
    const int32_t V = hmt_model_n_vocab(j->model);
    hmt_token t[N_TOK];
    tokens_for(j->id, t, V);
    hmt_params *p = NULL;
    hmt_ctx *ctx = NULL;
    hmt_stream *st = NULL;
    j->rc = hmt_params_create(&p);
    if (!j->rc) j->rc = hmt_params_set_int(p, HMT_P_N_THREADS, 1);
    if (!j->rc) j->rc = hmt_ctx_create(&ctx, j->model, p);
    for (int i = 0; !j->rc && i < N_TOK; i++) {
        j->rc = hmt_ctx_eval_tokens(ctx, &t[i], 1, 0);
        if (!j->rc) memcpy(j->out + (size_t)i * V, hmt_ctx_logits(ctx, -1), (size_t)V * sizeof(float));
    }
    if (!j->rc) j->rc = hmt_params_set_int(p, HMT_P_LOOKAHEAD, 0);
    if (!j->rc) j->rc = hmt_stream_create(&st, j->model, j->adapter, p);
    if (!j->rc) j->rc = hmt_stream_feed(st, t, N_TOK);
    if (!j->rc)
        memcpy(j->out + (size_t)N_TOK * V, hmt_stream_logits(st, N_TOK - 1), (size_t)V * sizeof(float));
    hmt_stream_free(st);
    hmt_ctx_free(ctx);
    hmt_params_free(p);
    return NULL;
}

START_TEST(shared_model_many_threads_equals_serial) {
    hmt_model *m;
    ck_assert_int_eq(hmt_model_load(&m, "models/demo-random-f16.gguf", NULL), HMT_OK);
    hmt_adapter *a;
    ck_assert_int_eq(hmt_adapter_load(&a, m, "models/demo-random-hmt.gguf"), HMT_OK);
    const size_t per = (size_t)(N_TOK + 1) * (size_t)hmt_model_n_vocab(m);
    job serial[N_WORKERS], par[N_WORKERS];
    pthread_t th[N_WORKERS];
    for (int i = 0; i < N_WORKERS; i++) {
        serial[i] = (job){m, a, i, malloc(per * sizeof(float)), 0};
        par[i] = (job){m, a, i, malloc(per * sizeof(float)), 0};
        work(&serial[i]);
        ck_assert_int_eq(serial[i].rc, HMT_OK);
    }
    for (int i = 0; i < N_WORKERS; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, work, &par[i]), 0);
    for (int i = 0; i < N_WORKERS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N_WORKERS; i++) {
        ck_assert_int_eq(par[i].rc, HMT_OK);
        ck_assert_mem_eq(par[i].out, serial[i].out, per * sizeof(float));
        free(serial[i].out);
        free(par[i].out);
    }
    hmt_adapter_free(a);
    hmt_model_free(m);
}
END_TEST

Suite *hmt_suite_threads(void);
Suite *hmt_suite_threads(void) {
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("shared model");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, shared_model_many_threads_equals_serial);
    suite_add_tcase(s, tc);
    return s;
}
