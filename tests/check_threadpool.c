/* Thread pools (include/hmt/threadpool.h): objects sharing one pool give the
 * same results as with pools of their own, bit for bit (same thread count,
 * same splits); handles may be freed in any order; two threads evaluating on
 * one pool take turns; an eval nested in a callback on the same pool is
 * refused instead of deadlocking. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hmt/hmt.h"
#include "util/testutil.h"

#define MODEL "models/demo-random-f16.gguf"
#define N_TOK 24

static void tokens_for(int id, hmt_token *t, int32_t n_vocab) {
    for (int i = 0; i < N_TOK; i++) t[i] = (hmt_token)((id * 131 + i * 17 + 3) % n_vocab);
}

static hmt_ctx *new_ctx(hmt_model *m, int64_t n_threads) {
    hmt_params *p = NULL;
    hmt_ctx *ctx = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, n_threads), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_CTX, 64), HMT_OK);
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_OK);
    hmt_params_free(p);
    return ctx;
}

/* Logits after each of N_TOK single-token evals. */
static void run(hmt_ctx *ctx, int id, float *out) {
    const int32_t V = hmt_model_n_vocab(hmt_ctx_model(ctx));
    hmt_token t[N_TOK];
    tokens_for(id, t, V);
    for (int i = 0; i < N_TOK; i++) {
        ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, &t[i], 1, 0), HMT_OK);
        memcpy(out + (size_t)i * V, hmt_ctx_logits(ctx, -1), (size_t)V * sizeof(float));
    }
}

START_TEST(shared_pool_equals_private_pools) {
    hmt_model *m;
    ck_assert_int_eq(hmt_model_load(&m, MODEL, NULL), HMT_OK);
    const size_t per = (size_t)N_TOK * (size_t)hmt_model_n_vocab(m);
    float *a = malloc(per * sizeof *a), *b = malloc(per * sizeof *b);
    float *a2 = malloc(per * sizeof *a2), *b2 = malloc(per * sizeof *b2);
    hmt_ctx *ca = new_ctx(m, 2), *cb = new_ctx(m, 2); /* private pools of 2 */
    run(ca, 0, a);
    run(cb, 1, b);
    hmt_ctx_free(ca);
    hmt_ctx_free(cb);

    hmt_threadpool *tp = NULL;
    ck_assert_int_eq(hmt_threadpool_create(&tp, 2), HMT_OK);
    ck_assert_int_eq(hmt_threadpool_n_threads(tp), 2);
    ca = new_ctx(m, 1);
    cb = new_ctx(m, 1);
    ck_assert_int_eq(hmt_ctx_attach_threadpool(ca, tp), HMT_OK);
    ck_assert_int_eq(hmt_ctx_attach_threadpool(cb, tp), HMT_OK);
    hmt_threadpool_free(tp); /* the contexts hold it */
    double nt = 0;
    ck_assert_int_eq(hmt_ctx_get(ca, HMT_P_N_THREADS, &nt), HMT_OK);
    ck_assert(nt == 2);
    /* alternate the two contexts on the one pool */
    const int32_t V = hmt_model_n_vocab(m);
    hmt_token ta[N_TOK], tb[N_TOK];
    tokens_for(0, ta, V);
    tokens_for(1, tb, V);
    for (int i = 0; i < N_TOK; i++) {
        ck_assert_int_eq(hmt_ctx_eval_tokens(ca, &ta[i], 1, 0), HMT_OK);
        memcpy(a2 + (size_t)i * V, hmt_ctx_logits(ca, -1), (size_t)V * sizeof(float));
        ck_assert_int_eq(hmt_ctx_eval_tokens(cb, &tb[i], 1, 0), HMT_OK);
        memcpy(b2 + (size_t)i * V, hmt_ctx_logits(cb, -1), (size_t)V * sizeof(float));
    }
    ck_assert_mem_eq(a, a2, per * sizeof *a);
    ck_assert_mem_eq(b, b2, per * sizeof *b);
    hmt_model_free(m); /* any order: the contexts hold the model and the pool */
    hmt_ctx_free(cb);
    hmt_ctx_free(ca);
    free(a), free(b), free(a2), free(b2);
}
END_TEST

typedef struct {
    hmt_ctx *ctx;
    int id;
    float *out;
} job;

static void *work(void *arg) {
    job *j = arg;
    run(j->ctx, j->id, j->out);
    return NULL;
}

START_TEST(two_threads_take_turns_on_one_pool) {
    hmt_model *m;
    ck_assert_int_eq(hmt_model_load(&m, MODEL, NULL), HMT_OK);
    const size_t per = (size_t)N_TOK * (size_t)hmt_model_n_vocab(m);
    hmt_threadpool *tp = NULL;
    ck_assert_int_eq(hmt_threadpool_create(&tp, 2), HMT_OK);
    job serial[2], par[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        serial[i] = (job){new_ctx(m, 2), i, malloc(per * sizeof(float))};
        run(serial[i].ctx, i, serial[i].out);
        par[i] = (job){new_ctx(m, 1), i, malloc(per * sizeof(float))};
        ck_assert_int_eq(hmt_ctx_attach_threadpool(par[i].ctx, tp), HMT_OK);
    }
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, work, &par[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        ck_assert_mem_eq(par[i].out, serial[i].out, per * sizeof(float));
        hmt_ctx_free(serial[i].ctx), hmt_ctx_free(par[i].ctx);
        free(serial[i].out), free(par[i].out);
    }
    hmt_threadpool_free(tp);
    hmt_model_free(m);
}
END_TEST

/* The default: every object created with HMT_AUTO threads shares one pool. */
START_TEST(default_pool_is_shared_and_detach_returns_to_it) {
    hmt_model *m;
    ck_assert_int_eq(hmt_model_load(&m, MODEL, NULL), HMT_OK);
    hmt_ctx *a = NULL, *b = NULL;
    ck_assert_int_eq(hmt_ctx_create(&a, m, NULL), HMT_OK);
    ck_assert_int_eq(hmt_ctx_create(&b, m, NULL), HMT_OK);
    double na = 0, nb = 0;
    ck_assert_int_eq(hmt_ctx_get(a, HMT_P_N_THREADS, &na), HMT_OK);
    ck_assert_int_eq(hmt_ctx_get(b, HMT_P_N_THREADS, &nb), HMT_OK);
    ck_assert(na >= 1 && na == nb);
    hmt_threadpool *tp = NULL;
    ck_assert_int_eq(hmt_threadpool_create(&tp, 1), HMT_OK);
    ck_assert_int_eq(hmt_ctx_attach_threadpool(a, tp), HMT_OK);
    ck_assert_int_eq(hmt_ctx_get(a, HMT_P_N_THREADS, &na), HMT_OK);
    ck_assert(na == 1);
    ck_assert_int_eq(hmt_ctx_attach_threadpool(a, NULL), HMT_OK); /* back to the default */
    ck_assert_int_eq(hmt_ctx_get(a, HMT_P_N_THREADS, &na), HMT_OK);
    ck_assert(na == nb);
    hmt_token t = 1;
    ck_assert_int_eq(hmt_ctx_eval_tokens(a, &t, 1, 0), HMT_OK);
    hmt_threadpool_free(tp); /* released by a already: this frees it */
    hmt_ctx_free(a);
    hmt_ctx_free(b);
    hmt_model_free(m);
}
END_TEST

typedef struct {
    hmt_ctx *inner;
    int calls, rc;
} nest;

/* An abort callback that evaluates another context on the same pool. */
static int nested_eval(void *ud) {
    nest *n = ud;
    if (n->calls++ == 0) {
        hmt_token t = 2;
        n->rc = hmt_ctx_eval_tokens(n->inner, &t, 1, 0);
    }
    return 0;
}

START_TEST(nested_eval_on_the_same_pool_is_refused) {
    hmt_model *m;
    ck_assert_int_eq(hmt_model_load(&m, MODEL, NULL), HMT_OK);
    hmt_threadpool *tp = NULL;
    ck_assert_int_eq(hmt_threadpool_create(&tp, 2), HMT_OK);
    hmt_ctx *outer = new_ctx(m, 1), *inner = new_ctx(m, 1);
    ck_assert_int_eq(hmt_ctx_attach_threadpool(outer, tp), HMT_OK);
    ck_assert_int_eq(hmt_ctx_attach_threadpool(inner, tp), HMT_OK);
    nest n = {inner, 0, HMT_OK};
    ck_assert_int_eq(hmt_ctx_set_abort_callback(outer, nested_eval, &n), HMT_OK);
    hmt_token t = 1;
    ck_assert_int_eq(hmt_ctx_eval_tokens(outer, &t, 1, 0), HMT_OK);
    ck_assert_int_eq(n.rc, HMT_E_MISUSE);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "thread pool"));
    ck_assert_int_eq(hmt_ctx_n_past(inner), 0); /* nothing happened to it */
    ck_assert_int_eq(hmt_ctx_set_abort_callback(outer, NULL, NULL), HMT_OK);
    ck_assert_int_eq(hmt_ctx_eval_tokens(inner, &t, 1, 0), HMT_OK); /* usable */
    hmt_ctx_free(outer);
    hmt_ctx_free(inner);
    hmt_threadpool_free(tp);
    hmt_model_free(m);
}
END_TEST

START_TEST(bad_arguments) {
    hmt_threadpool *tp = (hmt_threadpool *)1;
    ck_assert_int_eq(hmt_threadpool_create(&tp, 0), HMT_E_INVAL);
    ck_assert_ptr_null(tp);
    ck_assert_int_eq(hmt_threadpool_create(&tp, 1025), HMT_E_INVAL);
    ck_assert_int_eq(hmt_threadpool_create(NULL, 2), HMT_E_INVAL);
    ck_assert_int_eq(hmt_threadpool_create(&tp, HMT_AUTO), HMT_OK);
    ck_assert_int_ge(hmt_threadpool_n_threads(tp), 1);
    ck_assert_int_eq(hmt_threadpool_n_threads(NULL), 0);
    ck_assert_int_eq(hmt_ctx_attach_threadpool(NULL, tp), HMT_E_INVAL);
    hmt_threadpool_free(tp);
    hmt_threadpool_free(NULL);
}
END_TEST

Suite *hmt_suite_threadpool(void);
Suite *hmt_suite_threadpool(void) {
    Suite *s = suite_create("threadpool");
    TCase *tc = tcase_create("pools");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, shared_pool_equals_private_pools);
    tcase_add_test(tc, two_threads_take_turns_on_one_pool);
    tcase_add_test(tc, default_pool_is_shared_and_detach_returns_to_it);
    tcase_add_test(tc, nested_eval_on_the_same_pool_is_refused);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}
