/* Allocation-failure injection: every allocation libhmt makes goes through
 * lib/core/alloc.c, whose test hook makes the n-th one fail. For n = 1, 2, ...
 * each operation must return a clean error (never crash), leak nothing (the
 * ASan build's LeakSanitizer checks each forked test), and leave earlier
 * objects usable. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

#include "hmt/hmt.h"
#include "util/testutil.h"

/* Run op with the n-th allocation failing, for n = 1.. until op succeeds
 * without reaching the failure. Each failure must be a clean status. */
typedef int (*op_fn)(void *state);

static void sweep(const char *what, op_fn op, void *state, long max_n) {
    for (long n = 1; n <= max_n; n++) {
        hmti_alloc_fail_at(n);
        int rc = op(state);
        const long failed = hmti_alloc_fail_at(0);
        if (!failed) {
            ck_assert_msg(rc == HMT_OK, "%s: failed without an injected failure: %s", what,
                          hmt_last_error_msg());
            ck_assert_msg(n > 10, "%s: only %ld allocations: is the hook wired?", what, n - 1);
            return; /* the whole operation ran below n allocations */
        }
        /* a clean error, or success where the library could do without that
         * allocation (e.g. a kernel falls back to plain loops) */
        ck_assert_msg(rc <= 0, "%s: allocation %ld failed and the call returned %d", what, n, rc);
        ck_assert_msg(rc != HMT_E_INTERNAL, "%s: allocation %ld: internal error", what, n);
    }
    ck_abort_msg("%s: more than %ld allocations", what, max_n);
}

static int op_load(void *state) {
    (void)state;
    hmt_model *m = NULL;
    int rc = hmt_model_load(&m, hmt_test_data("qwen2-f32.gguf"), NULL);
    hmt_model_free(m);
    return rc;
}

START_TEST(model_load_survives_every_failure) { sweep("model load", op_load, NULL, 5000); }
END_TEST

typedef struct {
    hmt_model *model;
    hmt_adapter *adapter;
    const char *adapter_path;
} fixture;

static int op_ctx(void *state) {
    fixture *f = state;
    hmt_ctx *ctx = NULL;
    hmt_token t[5] = {1, 2, 3, 4, 5};
    int rc = hmt_ctx_create(&ctx, f->model, NULL);
    if (!rc) rc = hmt_ctx_eval_tokens(ctx, t, 5, 1);
    hmt_ctx_free(ctx);
    return rc;
}

static int op_stream(void *state) {
    fixture *f = state;
    hmt_stream *s = NULL;
    hmt_token t[40];
    for (int i = 0; i < 40; i++) t[i] = (hmt_token)(i * 7 % 300);
    int rc = hmt_adapter_load(&f->adapter, f->model, f->adapter_path);
    if (!rc) rc = hmt_stream_create(&s, f->model, f->adapter, NULL);
    if (!rc) rc = hmt_stream_feed(s, t, 40);
    if (!rc) rc = hmt_stream_flush(s);
    size_t len = 0;
    if (!rc) rc = hmt_stream_save(s, NULL, 0, &len) == HMT_E_BUFFER ? HMT_OK : HMT_E_INTERNAL;
    if (!rc) rc = hmt_stream_save_file(s, hmt_test_tmp_path(".snap"));
    hmt_stream_free(s);
    hmt_adapter_free(f->adapter);
    f->adapter = NULL;
    return rc;
}

START_TEST(context_and_stream_survive_every_failure) {
    char adapter_path[4096];
    snprintf(adapter_path, sizeof adapter_path, "%s", hmt_test_data("hmt-full-a.adapter.gguf"));
    fixture f = {NULL, NULL, adapter_path};
    ck_assert_int_eq(hmt_model_load(&f.model, hmt_test_data("llama-f32.gguf"), NULL), HMT_OK);
    sweep("context create + eval", op_ctx, &f, 5000);
    sweep("adapter + stream + feed + snapshot", op_stream, &f, 5000);
    /* the model loaded before all those failures still works */
    ck_assert_int_eq(op_ctx(&f), HMT_OK);
    hmt_model_free(f.model);
}
END_TEST

static int op_knn(void *state) {
    fixture *f = state;
    hmt_knn_builder *b = NULL;
    const char *path = hmt_test_tmp_path(".knn");
    hmt_token t[24];
    for (int i = 0; i < 24; i++) t[i] = (hmt_token)(i * 11 % 300);
    hmt_ctx *ctx = NULL;
    int rc = hmt_knn_builder_create(&b, f->model, path, NULL);
    if (!rc) rc = hmt_ctx_create(&ctx, f->model, NULL);
    if (!rc) rc = hmt_knn_builder_add_ctx(b, ctx, t, 24, NULL, NULL);
    if (!rc) rc = hmt_knn_builder_finish(b);
    hmt_knn_builder_free(b);
    hmt_ctx_free(ctx);
    hmt_knn *k = NULL;
    if (!rc) rc = hmt_knn_load(&k, f->model, path, NULL);
    hmt_knn_free(k);
    remove(path);
    return rc;
}

START_TEST(datastore_build_survives_every_failure) {
    fixture f = {NULL, NULL, NULL};
    ck_assert_int_eq(hmt_model_load(&f.model, hmt_test_data("llama-f32.gguf"), NULL), HMT_OK);
    sweep("datastore build + load", op_knn, &f, 5000);
    hmt_model_free(f.model);
}
END_TEST

Suite *hmt_suite_oom(void);
Suite *hmt_suite_oom(void) {
    Suite *s = suite_create("oom");
    TCase *tc = tcase_create("allocation failures");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, model_load_survives_every_failure);
    tcase_add_test(tc, context_and_stream_survive_every_failure);
    tcase_add_test(tc, datastore_build_survives_every_failure);
    suite_add_tcase(s, tc);
    return s;
}
