/* Abort callbacks of streams and datastore builds (issue 12 item 10): polled
 * between layers, and the state each leaves after an abort as documented in
 * hmt/stream.h and hmt/knn.h. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmt/hmt.h"
#include "util/testutil.h"

typedef struct {
    int calls, stop_at; /* return 1 from call number stop_at on (0: never) */
} counter;

static int count_abort(void *ud) {
    counter *c = ud;
    c->calls++;
    return c->stop_at && c->calls >= c->stop_at;
}

typedef struct {
    hmt_model *m;
    hmt_adapter *a;
    hmt_token toks[200];
} fixture;

static void open_fx(fixture *fx) {
    ck_assert_int_eq(hmt_model_load(&fx->m, hmt_test_data("llama-f32.gguf"), NULL), HMT_OK);
    ck_assert_int_eq(hmt_adapter_load(&fx->a, fx->m, hmt_test_data("hmt-full-a.adapter.gguf")),
                     HMT_OK);
    for (int i = 0; i < 200; i++) fx->toks[i] = 3 + (i * 7) % 200;
}

static void close_fx(fixture *fx) {
    hmt_adapter_free(fx->a);
    hmt_model_free(fx->m);
}

START_TEST(stream_abort_between_layers) {
    fixture fx;
    open_fx(&fx);
    hmt_stream *st, *ref;
    ck_assert_int_eq(hmt_stream_create(&st, fx.m, fx.a, NULL), HMT_OK);
    ck_assert_int_eq(hmt_stream_create(&ref, fx.m, fx.a, NULL), HMT_OK);
    ck_assert_int_eq(hmt_stream_set_abort_callback(NULL, count_abort, NULL), HMT_E_INVAL);
    /* polled once per layer of every pass: a whole feed polls many times */
    counter c = {0, 0};
    ck_assert_int_eq(hmt_stream_set_abort_callback(st, count_abort, &c), HMT_OK);
    ck_assert_int_eq(hmt_stream_feed(st, fx.toks, 40), HMT_OK);
    ck_assert_int_eq(hmt_stream_feed(ref, fx.toks, 40), HMT_OK);
    const int per_feed = c.calls;
    ck_assert_int_gt(per_feed, 2 * hmt_model_n_layer(fx.m));
    size_t len;
    ck_assert_int_eq(hmt_stream_save(st, NULL, 0, &len), HMT_E_BUFFER);
    void *snap = malloc(len);
    ck_assert_int_eq(hmt_stream_save(st, snap, len, &len), HMT_OK);
    /* stop in the middle of the next feed */
    c.calls = 0;
    c.stop_at = per_feed / 2;
    ck_assert_int_eq(hmt_stream_feed(st, fx.toks + 40, 40), HMT_E_ABORTED);
    ck_assert_int_eq(c.calls, per_feed / 2); /* stopped at once */
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "abort"));
    /* documented state: unusable until a restore */
    ck_assert_int_eq(hmt_stream_feed(st, fx.toks + 40, 1), HMT_E_MISUSE);
    ck_assert_int_eq(hmt_stream_flush(st), HMT_E_MISUSE);
    ck_assert_int_eq(hmt_stream_restore(st, snap, len), HMT_OK);
    c.stop_at = 0;
    ck_assert_int_eq(hmt_stream_set_abort_callback(st, NULL, NULL), HMT_OK);
    ck_assert_int_eq(hmt_stream_feed(st, fx.toks + 40, 40), HMT_OK);
    ck_assert_int_eq(hmt_stream_feed(ref, fx.toks + 40, 40), HMT_OK);
    const int32_t nv = hmt_model_n_vocab(fx.m);
    const int64_t last = hmt_stream_n_ready(ref) - 1;
    ck_assert_int_eq(hmt_stream_n_ready(st), last + 1);
    ck_assert_mem_eq(hmt_stream_logits(st, last), hmt_stream_logits(ref, last),
                     (size_t)nv * sizeof(float));
    free(snap);
    hmt_stream_free(st);
    hmt_stream_free(ref);
    close_fx(&fx);
}
END_TEST

START_TEST(builder_abort_in_ctx_and_stream) {
    fixture fx;
    open_fx(&fx);
    const char *path = hmt_test_tmp_path(".knn");
    hmt_knn_builder *b;
    ck_assert_int_eq(hmt_knn_builder_create(&b, fx.m, path, NULL), HMT_OK);
    ck_assert_int_eq(hmt_knn_builder_set_abort_callback(NULL, count_abort, NULL), HMT_E_INVAL);
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_CTX, 64), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_BATCH, 16), HMT_OK);
    hmt_ctx *ctx;
    ck_assert_int_eq(hmt_ctx_create(&ctx, fx.m, p), HMT_OK);
    /* the context's own callback sees nothing of the builder's */
    counter own = {0, 0}, c = {0, 0};
    ck_assert_int_eq(hmt_ctx_set_abort_callback(ctx, count_abort, &own), HMT_OK);
    ck_assert_int_eq(hmt_knn_builder_set_abort_callback(b, count_abort, &c), HMT_OK);
    const int layers = hmt_model_n_layer(fx.m);
    c.stop_at = 3 * layers + 2; /* inside the fourth chunk of 16 tokens */
    ck_assert_int_eq(hmt_knn_builder_add_ctx(b, ctx, fx.toks, 200, NULL, NULL), HMT_E_ABORTED);
    ck_assert_int_eq(c.calls, c.stop_at);
    ck_assert_int_eq(own.calls, c.calls); /* both polled between the same layers */
    ck_assert_int_eq(hmt_knn_builder_count(b), 3 * 16); /* the chunks done stay */
    /* the builder's callback is gone from the context after the call */
    own.calls = 0;
    const int before = c.calls;
    ck_assert_int_eq(hmt_ctx_kv_clear(ctx), HMT_OK);
    ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, fx.toks, 4, 0), HMT_OK);
    ck_assert_int_eq(own.calls, layers);
    ck_assert_int_eq(c.calls, before);
    /* through a stream: same rule; the stream is then unusable */
    hmt_stream *st;
    ck_assert_int_eq(hmt_stream_create(&st, fx.m, fx.a, NULL), HMT_OK);
    c.calls = 0;
    c.stop_at = 5 * layers;
    ck_assert_int_eq(hmt_knn_builder_add_stream(b, st, fx.toks, 200, NULL, NULL), HMT_E_ABORTED);
    ck_assert_int_eq(c.calls, c.stop_at);
    ck_assert_int_eq(hmt_stream_feed(st, fx.toks, 1), HMT_E_MISUSE);
    /* the builder still works: finish with what it has */
    const int64_t n = hmt_knn_builder_count(b);
    ck_assert_int_ge(n, 48);
    ck_assert_int_eq(hmt_knn_builder_finish(b), HMT_OK);
    hmt_knn *knn;
    ck_assert_int_eq(hmt_knn_load(&knn, fx.m, path, NULL), HMT_OK);
    ck_assert_int_eq(hmt_knn_count(knn), n);
    hmt_knn_free(knn);
    remove(path);
    hmt_stream_free(st);
    hmt_knn_builder_free(b);
    hmt_ctx_free(ctx);
    hmt_params_free(p);
    close_fx(&fx);
}
END_TEST

Suite *hmt_suite_abort(void);
Suite *hmt_suite_abort(void) {
    Suite *s = suite_create("abort");
    TCase *tc = tcase_create("abort");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, stream_abort_between_layers);
    tcase_add_test(tc, builder_abort_in_ctx_and_stream);
    suite_add_tcase(s, tc);
    return s;
}
