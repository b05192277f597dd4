/* Misuse of handles (docs/ROBUSTNESS.md, "Concurrent use and freed handles"):
 * a second thread entering a context, stream, chain or datastore builder
 * while a call on it is running, a callback re-entering the handle it was
 * called from, and frees of freed handles all get HMT_E_MISUSE with a
 * message naming the function and the handle, and nothing crashes.
 *
 * The overlaps are made deterministic with a callback of the first call
 * (abort, recall, processor, progress) that lets the second thread make its
 * call and waits until it has returned. Run under ThreadSanitizer by
 * `make tsan` (CK_FORK=no). */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hmt/hmt.h"
#include "hmt/experimental.h"
#include "util/testutil.h"

#define MODEL "models/demo-random-f16.gguf"
#define ADAPTER "models/demo-random-hmt.gguf"
#define HMT_TEST_MSG 640 /* room for a library message */
#if defined(__SANITIZE_THREAD__)
#define SANITIZED_THREAD 1
#else
#define SANITIZED_THREAD 0
#endif

/* ---- the rendezvous: thread A, inside a callback, lets thread B call ---- */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inside, done;
    pthread_t owner;          /* thread A */
    int (*second)(void *arg); /* B's call on the same handle */
    void *arg;
    int rc_b;
    char msg_b[HMT_TEST_MSG];
} rendezvous;

static void rv_init(rendezvous *r, int (*second)(void *), void *arg) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->owner = pthread_self();
    r->second = second;
    r->arg = arg;
    r->rc_b = 1; /* not called */
}

static void wait_flag(rendezvous *r, const int *flag, int seconds) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += seconds;
    pthread_mutex_lock(&r->mu);
    while (!*flag && pthread_cond_timedwait(&r->cv, &r->mu, &t) == 0) {
    }
    pthread_mutex_unlock(&r->mu);
}

/* From A's callback: once, let B make its call and wait for it (bounded, so
 * a library that lets B in and blocks it fails the test instead of hanging). */
static void rv_hold(rendezvous *r) {
    if (!pthread_equal(pthread_self(), r->owner)) return;
    pthread_mutex_lock(&r->mu);
    const int first = !r->inside;
    r->inside = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (first) wait_flag(r, &r->done, 20);
}

static void *rv_second(void *arg) {
    rendezvous *r = arg;
    wait_flag(r, &r->inside, 60);
    int rc = r->second(r->arg);
    pthread_mutex_lock(&r->mu);
    r->rc_b = rc;
    snprintf(r->msg_b, sizeof r->msg_b, "%s", hmt_last_error_msg());
    r->done = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void rv_expect_misuse(rendezvous *r, const char *fn, const char *what) {
    ck_assert_msg(r->rc_b == HMT_E_MISUSE, "%s from a second thread returned %d (%s), not "
                  "HMT_E_MISUSE", fn, r->rc_b, r->msg_b);
    ck_assert_msg(strstr(r->msg_b, fn) && strstr(r->msg_b, what) && strstr(r->msg_b, "in use"),
                  "message does not name %s and the %s: %s", fn, what, r->msg_b);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

static hmt_model *load_model(void) {
    hmt_model *m = NULL;
    ck_assert_int_eq(hmt_model_load(&m, MODEL, NULL), HMT_OK);
    return m;
}

/* One worker thread per handle: no pool threads to join in forked children. */
static hmt_params *one_thread_params(void) {
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, 1), HMT_OK);
    return p;
}

static void tokens(hmt_token *t, int n, int32_t n_vocab) {
    for (int i = 0; i < n; i++) t[i] = (hmt_token)((i * 37 + 11) % n_vocab);
}

/* ==== contexts =============================================================== */
static int abort_hold(void *ud) {
    rv_hold(ud);
    return 0;
}

static int ctx_second_eval(void *arg) {
    hmt_token t = 1;
    return hmt_ctx_eval_tokens(arg, &t, 1, 0);
}

START_TEST(ctx_second_thread_gets_misuse) {
    hmt_model *m = load_model();
    hmt_params *p = one_thread_params();
    hmt_ctx *ctx = NULL;
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_OK);
    rendezvous r;
    rv_init(&r, ctx_second_eval, ctx);
    ck_assert_int_eq(hmt_ctx_set_abort_callback(ctx, abort_hold, &r), HMT_OK);
    pthread_t b;
    ck_assert_int_eq(pthread_create(&b, NULL, rv_second, &r), 0);
    hmt_token t[8];
    tokens(t, 8, hmt_model_n_vocab(m));
    int rc = hmt_ctx_eval_tokens(ctx, t, 8, 0);
    pthread_join(b, NULL);
    ck_assert_int_eq(rc, HMT_OK);
    rv_expect_misuse(&r, "hmt_ctx_eval_tokens", "context");
    /* the first call was not disturbed: 8 positions, finite logits */
    ck_assert_int_eq(hmt_ctx_n_past(ctx), 8);
    const float *l = hmt_ctx_logits(ctx, -1);
    ck_assert_ptr_nonnull(l);
    for (int32_t v = 0; v < hmt_model_n_vocab(m); v++) EXPECT(isfinite(l[v]));
    hmt_ctx_free(ctx);
    hmt_params_free(p);
    hmt_model_free(m);
}
END_TEST

typedef struct {
    hmt_ctx *ctx;
    int depth, rc_eval, rc_clear, rc_set;
    char msg[HMT_TEST_MSG], free_msg[HMT_TEST_MSG];
} reenter;

/* The abort callback calls back into its own context. */
static int abort_reenter(void *ud) {
    reenter *e = ud;
    if (e->depth++) return 0; /* a library without the guard would recurse */
    hmt_token t = 1;
    e->rc_eval = hmt_ctx_eval_tokens(e->ctx, &t, 1, 0);
    snprintf(e->msg, sizeof e->msg, "%s", hmt_last_error_msg());
    e->rc_clear = hmt_ctx_kv_clear(e->ctx);
    e->rc_set = hmt_ctx_set_abort_callback(e->ctx, NULL, NULL);
    if (e->rc_eval == HMT_E_MISUSE) { /* only then is freeing it here survivable */
        hmt_ctx_free(e->ctx);
        snprintf(e->free_msg, sizeof e->free_msg, "%s", hmt_last_error_msg());
    }
    return 0;
}

START_TEST(ctx_reentrant_call_from_callback_gets_misuse) {
    hmt_model *m = load_model();
    hmt_params *p = one_thread_params();
    hmt_ctx *ctx = NULL;
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_OK);
    reenter e = {.ctx = ctx};
    ck_assert_int_eq(hmt_ctx_set_abort_callback(ctx, abort_reenter, &e), HMT_OK);
    hmt_token t[4];
    tokens(t, 4, hmt_model_n_vocab(m));
    ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, t, 4, 0), HMT_OK);
    ck_assert_int_eq(e.rc_eval, HMT_E_MISUSE);
    ck_assert_msg(strstr(e.msg, "hmt_ctx_eval_tokens") && strstr(e.msg, "callback"), "%s", e.msg);
    ck_assert_int_eq(e.rc_clear, HMT_E_MISUSE);
    ck_assert_int_eq(e.rc_set, HMT_E_MISUSE);
    ck_assert_msg(strstr(e.free_msg, "hmt_ctx_free") && strstr(e.free_msg, "in use"), "%s",
                  e.free_msg);
    ck_assert_int_eq(hmt_ctx_n_past(ctx), 4); /* the clear was refused */
    /* the context was not freed and still works */
    ck_assert_int_eq(hmt_ctx_set_abort_callback(ctx, NULL, NULL), HMT_OK);
    ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, t, 1, 0), HMT_OK);
    hmt_ctx_free(ctx);
    hmt_params_free(p);
    hmt_model_free(m);
}
END_TEST

/* ==== streams ================================================================ */
typedef struct {
    rendezvous *rv;
    hmt_stream *s;
    int depth, rc_save, rc_feed;
    char msg[HMT_TEST_MSG];
} stream_cb;

static void recall_cb(void *ud, int64_t segment, const float *w, const int64_t *segs, int32_t n) {
    (void)segment, (void)w, (void)segs, (void)n;
    stream_cb *c = ud;
    if (c->rv) {
        rv_hold(c->rv);
        return;
    }
    if (c->depth++) return;
    size_t len = 0;
    c->rc_save = hmt_stream_save(c->s, NULL, 0, &len);
    snprintf(c->msg, sizeof c->msg, "%s", hmt_last_error_msg());
    hmt_token t = 1;
    c->rc_feed = hmt_stream_feed(c->s, &t, 1);
}

static int stream_second_feed(void *arg) {
    hmt_token t = 1;
    return hmt_stream_feed(arg, &t, 1);
}

/* A full-mode stream and enough tokens for recall (segment 1 onwards). */
static hmt_stream *full_stream(hmt_model *m, hmt_adapter **a, hmt_params *p, int *n_tok) {
    ck_assert_int_eq(hmt_adapter_load(a, m, ADAPTER), HMT_OK);
    hmt_stream *s = NULL;
    ck_assert_int_eq(hmt_stream_create(&s, m, *a, p), HMT_OK);
    double L = 0;
    ck_assert_int_eq(hmt_stream_get(s, HMT_P_SEGMENT_LENGTH, &L), HMT_OK);
    *n_tok = 3 * (int)L;
    return s;
}

START_TEST(stream_second_thread_gets_misuse) {
    hmt_model *m = load_model();
    hmt_params *p = one_thread_params();
    hmt_adapter *a = NULL;
    int n = 0;
    hmt_stream *s = full_stream(m, &a, p, &n);
    rendezvous r;
    rv_init(&r, stream_second_feed, s);
    stream_cb c = {.rv = &r, .s = s};
    ck_assert_int_eq(hmt_stream_set_recall_callback(s, recall_cb, &c), HMT_OK);
    pthread_t b;
    ck_assert_int_eq(pthread_create(&b, NULL, rv_second, &r), 0);
    hmt_token *t = malloc((size_t)n * sizeof *t);
    tokens(t, n, hmt_model_n_vocab(m));
    int rc = hmt_stream_feed(s, t, (size_t)n);
    pthread_join(b, NULL);
    ck_assert_int_eq(rc, HMT_OK);
    rv_expect_misuse(&r, "hmt_stream_feed", "stream");
    ck_assert_int_eq(hmt_stream_n_fed(s), n); /* B's token was not taken */
    ck_assert_int_eq(hmt_stream_flush(s), HMT_OK);
    free(t);
    hmt_stream_free(s);
    hmt_adapter_free(a);
    hmt_params_free(p);
    hmt_model_free(m);
}
END_TEST

START_TEST(stream_reentrant_call_from_callback_gets_misuse) {
    hmt_model *m = load_model();
    hmt_params *p = one_thread_params();
    hmt_adapter *a = NULL;
    int n = 0;
    hmt_stream *s = full_stream(m, &a, p, &n);
    stream_cb c = {.s = s};
    ck_assert_int_eq(hmt_stream_set_recall_callback(s, recall_cb, &c), HMT_OK);
    hmt_token *t = malloc((size_t)n * sizeof *t);
    tokens(t, n, hmt_model_n_vocab(m));
    ck_assert_int_eq(hmt_stream_feed(s, t, (size_t)n), HMT_OK);
    ck_assert_int_ge(c.depth, 1);
    ck_assert_int_eq(c.rc_save, HMT_E_MISUSE);
    ck_assert_msg(strstr(c.msg, "hmt_stream_save") && strstr(c.msg, "stream"), "%s", c.msg);
    ck_assert_int_eq(c.rc_feed, HMT_E_MISUSE);
    ck_assert_int_eq(hmt_stream_n_fed(s), n);
    free(t);
    hmt_stream_free(s);
    hmt_adapter_free(a);
    hmt_params_free(p);
    hmt_model_free(m);
}
END_TEST

/* ==== samplers and their processors (API 0.2: the chain is the sampler) ===== */
typedef struct {
    rendezvous *rv;
    hmt_sampler *chain;
    int depth, rc_apply;
    char msg[HMT_TEST_MSG], free_msg[HMT_TEST_MSG];
} proc_cb;

static int apply_cb(void *ud, float *logits, int32_t n_vocab, const float *key, int32_t n_key) {
    (void)key, (void)n_key;
    proc_cb *c = ud;
    if (c->rv) {
        rv_hold(c->rv);
        return HMT_OK;
    }
    if (c->depth++) return HMT_OK;
    float out[16];
    c->rc_apply = hmt_sampler_apply(c->chain, logits, n_vocab, NULL, 0, out);
    snprintf(c->msg, sizeof c->msg, "%s", hmt_last_error_msg());
    hmt_sampler_free(c->chain); /* refused: the sampler is running */
    snprintf(c->free_msg, sizeof c->free_msg, "%s", hmt_last_error_msg());
    return HMT_OK;
}

static int chain_second_accept(void *arg) { return hmt_sampler_accept(arg, 1); }

static hmt_sampler *chain_with(proc_cb *c) {
    hmt_sampler *chain = NULL;
    ck_assert_int_eq(hmt_sampler_create(&chain, NULL), HMT_OK);
    const hmt_proc_i iface = {.struct_size = sizeof iface, .name = "test", .apply = apply_cb};
    hmt_proc *p = NULL;
    ck_assert_int_eq(hmt_proc_create(&p, &iface, c), HMT_OK);
    ck_assert_int_eq(hmt_sampler_add(chain, p), HMT_OK);
    hmt_proc_free(p); /* the sampler holds it */
    c->chain = chain;
    return chain;
}

START_TEST(chain_second_thread_gets_misuse) {
    rendezvous r;
    proc_cb c = {.rv = &r};
    hmt_sampler *chain = chain_with(&c);
    rv_init(&r, chain_second_accept, chain);
    pthread_t b;
    ck_assert_int_eq(pthread_create(&b, NULL, rv_second, &r), 0);
    float logits[16] = {0}, out[16];
    int rc = hmt_sampler_apply(chain, logits, 16, NULL, 0, out);
    pthread_join(b, NULL);
    ck_assert_int_eq(rc, HMT_OK);
    rv_expect_misuse(&r, "hmt_sampler_accept", "sampler");
    hmt_sampler_free(chain);
}
END_TEST

START_TEST(chain_reentrant_call_from_processor_gets_misuse) {
    proc_cb c = {0};
    hmt_sampler *chain = chain_with(&c);
    float logits[16] = {0}, out[16];
    ck_assert_int_eq(hmt_sampler_apply(chain, logits, 16, NULL, 0, out), HMT_OK);
    ck_assert_int_eq(c.rc_apply, HMT_E_MISUSE);
    ck_assert_msg(strstr(c.msg, "hmt_sampler_apply") && strstr(c.msg, "sampler"), "%s", c.msg);
    ck_assert_msg(strstr(c.free_msg, "hmt_sampler_free") && strstr(c.free_msg, "in use"), "%s",
                  c.free_msg);
    ck_assert_int_eq(hmt_sampler_apply(chain, logits, 16, NULL, 0, out), HMT_OK); /* alive */
    hmt_sampler_free(chain);
}
END_TEST

/* ==== samplers: hmt_sampler_sample holds its sampler for the whole call ===== */
typedef struct {
    rendezvous *rv;
    hmt_sampler *smp;
    int depth, rc_sample;
    char msg[HMT_TEST_MSG];
} sampler_cb;

static int apply_sampler_cb(void *ud, float *logits, int32_t n_vocab, const float *key,
                            int32_t n_key) {
    (void)key, (void)n_key;
    sampler_cb *c = ud;
    if (c->rv) {
        rv_hold(c->rv);
        return HMT_OK;
    }
    if (c->depth++) return HMT_OK;
    hmt_token t;
    c->rc_sample = hmt_sampler_sample(c->smp, logits, n_vocab, &t);
    snprintf(c->msg, sizeof c->msg, "%s", hmt_last_error_msg());
    return HMT_OK;
}

static int sampler_second_sample(void *arg) {
    const float logits[16] = {0};
    hmt_token t;
    return hmt_sampler_sample(arg, logits, 16, &t);
}

static hmt_sampler *sampler_chain(sampler_cb *c) {
    hmt_sampler *smp = NULL;
    ck_assert_int_eq(hmt_sampler_create(&smp, NULL), HMT_OK);
    const hmt_proc_i iface = {.struct_size = sizeof iface, .name = "s", .apply = apply_sampler_cb};
    hmt_proc *p = NULL;
    ck_assert_int_eq(hmt_proc_create(&p, &iface, c), HMT_OK);
    ck_assert_int_eq(hmt_sampler_add(smp, p), HMT_OK);
    hmt_proc_free(p);
    c->smp = smp;
    return smp;
}

START_TEST(sampler_second_thread_gets_misuse) {
    rendezvous r;
    sampler_cb c = {.rv = &r};
    hmt_sampler *smp = sampler_chain(&c);
    rv_init(&r, sampler_second_sample, smp);
    pthread_t b;
    ck_assert_int_eq(pthread_create(&b, NULL, rv_second, &r), 0);
    float logits[16] = {0};
    hmt_token t = -1;
    int rc = hmt_sampler_sample(smp, logits, 16, &t);
    pthread_join(b, NULL);
    ck_assert_int_eq(rc, HMT_OK);
    ck_assert(t >= 0 && t < 16);
    rv_expect_misuse(&r, "hmt_sampler_sample", "sampler");
    hmt_sampler_free(smp);
}
END_TEST

START_TEST(sampler_reentrant_call_from_processor_gets_misuse) {
    sampler_cb c = {0};
    hmt_sampler *smp = sampler_chain(&c);
    float logits[16] = {0};
    hmt_token t = -1;
    ck_assert_int_eq(hmt_sampler_sample(smp, logits, 16, &t), HMT_OK);
    ck_assert_int_eq(c.rc_sample, HMT_E_MISUSE);
    ck_assert_msg(strstr(c.msg, "hmt_sampler_sample") && strstr(c.msg, "sampler"), "%s", c.msg);
    c.depth = 0;
    c.rc_sample = 0;
    ck_assert_int_eq(hmt_sampler_sample(smp, logits, 16, &t), HMT_OK); /* released after */
    ck_assert_int_eq(c.rc_sample, HMT_E_MISUSE); /* the callback tried again, refused again */
    hmt_sampler_free(smp);
}
END_TEST

/* ==== datastore builders ======================================================= */
typedef struct {
    hmt_knn_builder *b;
    const float *key;
    int depth, rc_add, rc_finish;
    char msg[HMT_TEST_MSG];
} progress_cb;

static int progress_reenter(void *ud, int64_t done, int64_t total) {
    (void)done, (void)total;
    progress_cb *c = ud;
    if (c->depth++) return 0;
    hmt_token v = 1;
    c->rc_add = hmt_knn_builder_add(c->b, c->key, &v, 1);
    snprintf(c->msg, sizeof c->msg, "%s", hmt_last_error_msg());
    c->rc_finish = hmt_knn_builder_finish(c->b);
    return 0;
}

START_TEST(builder_reentrant_call_from_progress_gets_misuse) {
    hmt_model *m = load_model();
    hmt_params *p = one_thread_params();
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_CTX, 32), HMT_OK);
    hmt_ctx *ctx = NULL;
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_OK);
    const char *path = hmt_test_tmp_path(".knn");
    hmt_knn_builder *b = NULL;
    ck_assert_int_eq(hmt_knn_builder_create(&b, m, path, NULL), HMT_OK);
    float *key = calloc((size_t)hmt_model_n_embd(m), sizeof *key);
    progress_cb c = {.b = b, .key = key};
    hmt_token t[20];
    tokens(t, 20, hmt_model_n_vocab(m));
    ck_assert_int_eq(hmt_knn_builder_add_ctx(b, ctx, t, 20, progress_reenter, &c), HMT_OK);
    ck_assert_int_eq(c.rc_add, HMT_E_MISUSE);
    ck_assert_msg(strstr(c.msg, "hmt_knn_builder_add") && strstr(c.msg, "builder"), "%s", c.msg);
    ck_assert_int_eq(c.rc_finish, HMT_E_MISUSE);
    ck_assert_int_eq(hmt_knn_builder_count(b), 19); /* only the pairs of add_ctx */
    ck_assert_int_eq(hmt_knn_builder_finish(b), HMT_OK);
    hmt_knn_builder_free(b);
    remove(path);
    free(key);
    hmt_ctx_free(ctx);
    hmt_params_free(p);
    hmt_model_free(m);
}
END_TEST

/* ==== datastores: shared by searches; attach, detach and free exclusive ====== */
typedef struct {
    hmt_knn *knn;
    int depth, rc_attach, rc_search;
    char msg[HMT_TEST_MSG], detach_msg[HMT_TEST_MSG], free_msg[HMT_TEST_MSG];
} build_cb;

static int progress_knn(void *ud, int64_t done, int64_t total) {
    (void)done, (void)total;
    build_cb *c = ud;
    if (c->depth++) return 0;
    c->rc_attach = hmt_knn_faiss_attach(c->knn, "/nonexistent.faiss", NULL);
    snprintf(c->msg, sizeof c->msg, "%s", hmt_last_error_msg());
    hmt_knn_faiss_detach(c->knn);
    snprintf(c->detach_msg, sizeof c->detach_msg, "%s", hmt_last_error_msg());
    if (c->rc_attach == HMT_E_MISUSE) { /* only then is freeing it here survivable */
        hmt_knn_free(c->knn);
        snprintf(c->free_msg, sizeof c->free_msg, "%s", hmt_last_error_msg());
    }
    const int32_t d = hmt_knn_dim(c->knn);
    float *q = calloc((size_t)d, sizeof *q);
    int64_t idx = -1;
    c->rc_search = hmt_knn_search(c->knn, q, 1, 1, NULL, &idx, NULL); /* searches may share it */
    free(q);
    return 0;
}

START_TEST(datastore_attach_detach_free_during_a_build_get_misuse) {
    if (!hmt_knn_faiss_available() || SANITIZED_THREAD) return; /* FAISS runs OpenMP */
    hmt_model *m = load_model();
    const int d = hmt_model_n_embd(m);
    const size_t n = 10000;
    float *keys = malloc(n * (size_t)d * sizeof *keys);
    hmt_token *vals = malloc(n * sizeof *vals);
    uint64_t rs = 0x5eed;
    for (size_t i = 0; i < n * (size_t)d; i++) keys[i] = hmt_test_nrand(&rs);
    for (size_t i = 0; i < n; i++) vals[i] = (hmt_token)(i % 7);
    char path[4096], ipath[4096];
    snprintf(path, sizeof path, "%s", hmt_test_tmp_path(".knn"));
    snprintf(ipath, sizeof ipath, "%s", hmt_test_tmp_path(".faiss"));
    hmt_knn_builder *b = NULL;
    ck_assert_int_eq(hmt_knn_builder_create(&b, m, path, NULL), HMT_OK);
    ck_assert_int_eq(hmt_knn_builder_add(b, keys, vals, n), HMT_OK);
    ck_assert_int_eq(hmt_knn_builder_finish(b), HMT_OK);
    hmt_knn_builder_free(b);
    hmt_params *p = one_thread_params();
    hmt_knn *knn = NULL;
    ck_assert_int_eq(hmt_knn_load(&knn, m, path, p), HMT_OK);
    build_cb c = {.knn = knn};
    /* 0.2: the build and attach read no n_threads (the datastore's, from load) */
    ck_assert_msg(hmt_knn_faiss_build(knn, ipath, NULL, progress_knn, &c) == HMT_OK, "%s",
                  hmt_last_error_msg());
    ck_assert_int_ge(c.depth, 1);
    ck_assert_int_eq(c.rc_attach, HMT_E_MISUSE);
    ck_assert_msg(strstr(c.msg, "hmt_knn_faiss_attach") && strstr(c.msg, "datastore is in use"),
                  "%s", c.msg);
    ck_assert_msg(strstr(c.detach_msg, "hmt_knn_faiss_detach"), "%s", c.detach_msg);
    ck_assert_msg(strstr(c.free_msg, "hmt_knn_free"), "%s", c.free_msg);
    ck_assert_int_eq(c.rc_search, HMT_OK);
    ck_assert_int_eq(hmt_knn_faiss_attach(knn, ipath, NULL), HMT_OK); /* free again */
    hmt_knn_faiss_detach(knn);
    hmt_knn_free(knn);
    remove(path);
    remove(ipath);
    hmt_params_free(p);
    free(keys);
    free(vals);
    hmt_model_free(m);
}
END_TEST

/* ==== freed handles ============================================================ */
/* The model's and adapter's caller reference is released once: a second free
 * while a context or stream still holds them is ignored with a message (it
 * used to destroy them under the context). Memory is still ours: reliable. */
START_TEST(model_double_free_while_held_is_ignored) {
    hmt_model *m = load_model();
    hmt_params *p = one_thread_params();
    hmt_adapter *a = NULL;
    int n = 0;
    hmt_stream *s = full_stream(m, &a, p, &n);
    hmt_ctx *ctx = NULL;
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_OK);
    hmt_adapter_free(a);
    hmt_adapter_free(a);
    ck_assert_msg(strstr(hmt_last_error_msg(), "hmt_adapter_free") &&
                  strstr(hmt_last_error_msg(), "already freed"), "%s", hmt_last_error_msg());
    hmt_model_free(m);
    hmt_model_free(m);
    ck_assert_msg(strstr(hmt_last_error_msg(), "hmt_model_free") &&
                  strstr(hmt_last_error_msg(), "already freed"), "%s", hmt_last_error_msg());
    hmt_token t[4] = {1, 2, 3, 4};
    ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, t, 4, 0), HMT_OK);
    ck_assert_int_eq(hmt_stream_feed(s, t, 4), HMT_OK);
    hmt_ctx_free(ctx);
    hmt_stream_free(s); /* the last holder: model and adapter go now */
    hmt_params_free(p);
}
END_TEST

/* In a child: free each kind of handle twice and use a freed one. The guard
 * at the end of each handle still holds the poison right after free (glibc
 * keeps its free-list pointers in the first 16 bytes); with the memory
 * reused in between, this check is best effort. Exit 0: every misuse was
 * refused with a message. */
/* ASan and TSan report the read of a freed guard themselves
 * (heap-use-after-free): their own, stronger, detection of the bug. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
/* A second free is caught either by the poison (the usual case: "already
 * freed") or, when the allocator has reused the freed block's last bytes,
 * by a magic word that is no longer the handle's ("not a live ..."): both
 * are refusals; which one depends on the allocator (busy.h: best effort). */
static int refused_free(const char *fn) {
    const char *msg = hmt_last_error_msg();
    return strstr(msg, fn) && (strstr(msg, "already freed") || strstr(msg, "not a live"));
}

static int child_double_frees(void) {
    hmt_model *m = NULL;
    if (hmt_model_load(&m, MODEL, NULL)) return 10;
    hmt_params *p = NULL;
    if (hmt_params_create(&p) || hmt_params_set_int(p, HMT_P_N_THREADS, 1) ||
        hmt_params_set_int(p, HMT_P_MODE, HMT_MODE_SEGMENTS) ||
        hmt_params_set_int(p, HMT_P_SEGMENT_LENGTH, 16))
        return 11;
    hmt_params *pc = NULL; /* 0.2: a context refuses the stream's keys */
    if (hmt_params_create(&pc) || hmt_params_set_int(pc, HMT_P_N_THREADS, 1)) return 11;
    hmt_ctx *ctx = NULL;
    hmt_stream *s = NULL;
    hmt_proc *proc = NULL;
    hmt_sampler *smp = NULL;
    const hmt_proc_i iface = {.struct_size = sizeof iface, .name = "df", .apply = apply_cb};
    if (hmt_ctx_create(&ctx, m, pc) || hmt_stream_create(&s, m, NULL, p) ||
        hmt_proc_create(&proc, &iface, NULL) || hmt_sampler_create(&smp, NULL))
        return 12;
    hmt_params_free(pc);
    hmt_ctx_free(ctx);
    hmt_ctx_free(ctx);
    if (!refused_free("hmt_ctx_free")) return 20;
    hmt_token t = 1;
    if (hmt_ctx_eval_tokens(ctx, &t, 1, 0) != HMT_E_MISUSE) return 21;
    hmt_stream_free(s);
    hmt_stream_free(s);
    if (!refused_free("hmt_stream_free")) return 22;
    if (hmt_stream_feed(s, &t, 1) != HMT_E_MISUSE) return 23;
    hmt_proc_free(proc);
    hmt_proc_free(proc);
    if (!refused_free("hmt_proc_free")) return 24;
    hmt_sampler_free(smp);
    hmt_sampler_free(smp);
    if (!refused_free("hmt_sampler_free")) return 25;
    hmt_params_free(p);
    hmt_params_free(p);
    if (!refused_free("hmt_params_free")) return 26;
    hmt_model_free(m); /* the last reference: destroyed */
    hmt_model_free(m);
    if (!strstr(hmt_last_error_msg(), "hmt_model_free")) return 27;
    return 0;
}
#endif

START_TEST(double_free_is_caught_in_a_child) {
#if SANITIZED
    ck_assert(1);
#else
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) _exit(child_double_frees());
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(!WIFSIGNALED(st), "the child died of signal %d (a double free crashed)",
                  WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "the child failed check %d (see child_double_frees)", WEXITSTATUS(st));
#endif
}
END_TEST

Suite *hmt_suite_misuse(void);
Suite *hmt_suite_misuse(void) {
    Suite *s = suite_create("misuse");
    TCase *tc = tcase_create("concurrent and re-entrant use");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ctx_second_thread_gets_misuse);
    tcase_add_test(tc, ctx_reentrant_call_from_callback_gets_misuse);
    tcase_add_test(tc, stream_second_thread_gets_misuse);
    tcase_add_test(tc, stream_reentrant_call_from_callback_gets_misuse);
    tcase_add_test(tc, chain_second_thread_gets_misuse);
    tcase_add_test(tc, chain_reentrant_call_from_processor_gets_misuse);
    tcase_add_test(tc, sampler_second_thread_gets_misuse);
    tcase_add_test(tc, sampler_reentrant_call_from_processor_gets_misuse);
    tcase_add_test(tc, builder_reentrant_call_from_progress_gets_misuse);
    tcase_add_test(tc, datastore_attach_detach_free_during_a_build_get_misuse);
    suite_add_tcase(s, tc);
    tc = tcase_create("freed handles");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, model_double_free_while_held_is_ignored);
    tcase_add_test(tc, double_free_is_caught_in_a_child);
    suite_add_tcase(s, tc);
    return s;
}
