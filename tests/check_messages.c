/* Error messages (docs/ROBUSTNESS.md, "Messages"): each refusal has the
 * right status and says what was wrong and what to do. The programs' own
 * refusals are checked by tests/tools/check_tool_messages.sh. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "hmt/hmt.h"
#include "util/gguf_build.h"
#include "util/testutil.h"

#define MODEL "models/demo-random-f16.gguf"
#define ADAPTER "models/demo-random-hmt.gguf"

#define EXPECT_MSG_HAS(s)                                                                     \
    ck_assert_msg(strstr(hmt_last_error_msg(), s), "message lacks \"%s\": %s", s,            \
                  hmt_last_error_msg())

/* The size in the out-of-memory message was read after it was zeroed
 * ("a 2000000000-token KV cache (0 MiB)"). Fail each allocation of a
 * context create in turn until the KV cache's does. */
START_TEST(kv_cache_oom_message_gives_the_size) {
    hmt_model *m = NULL;
    ck_assert_int_eq(hmt_model_load(&m, MODEL, NULL), HMT_OK);
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, 1), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_CTX, 4096), HMT_OK);
    int seen = 0;
    for (long n = 1; n < 64 && !seen; n++) {
        hmt_ctx *ctx = NULL;
        hmti_alloc_fail_at(n);
        int rc = hmt_ctx_create(&ctx, m, p);
        hmti_alloc_fail_at(0);
        hmt_ctx_free(ctx);
        if (rc != HMT_E_NOMEM || !strstr(hmt_last_error_msg(), "KV cache")) continue;
        seen = 1;
        const char *at = strstr(hmt_last_error_msg(), "4096-token KV cache");
        ck_assert_msg(at, "%s", hmt_last_error_msg());
        double mib = 0;
        const char *paren = strchr(at, '(');
        ck_assert_msg(paren && sscanf(paren, "(%lf MiB)", &mib) == 1 && mib > 1.0,
                      "no size in: %s", hmt_last_error_msg());
        EXPECT_MSG_HAS("HMT_P_N_CTX");
    }
    ck_assert_msg(seen, "no allocation failure reached the KV cache");
    hmt_params_free(p);
    hmt_model_free(m);
}
END_TEST

/* A GGUF without general.architecture is a file defect: HMT_E_FORMAT. */
START_TEST(missing_architecture_is_a_format_error) {
    gguf_builder b;
    gguf_build_init(&b);
    gguf_build_u32(&b, "llama.block_count", 1);
    size_t len = 0;
    uint8_t *f = gguf_build_finish(&b, &len);
    const char *path = hmt_test_tmp_path(".gguf");
    ck_assert_int_eq(hmt_test_write_file(path, f, len), 0);
    hmt_model *m = NULL;
    ck_assert_int_eq(hmt_model_load(&m, path, NULL), HMT_E_FORMAT);
    EXPECT_MSG_HAS("missing metadata key 'general.architecture'");
    remove(path);
    free(f);
    gguf_build_free(&b);
}
END_TEST

START_TEST(adapter_given_as_model_says_where_it_goes) {
    hmt_model *m = NULL;
    ck_assert_int_eq(hmt_model_load(&m, ADAPTER, NULL), HMT_E_UNSUPPORTED);
    EXPECT_MSG_HAS("is an HMT adapter");
    EXPECT_MSG_HAS("hmt_adapter_load");
    EXPECT_MSG_HAS("-a");
}
END_TEST

START_TEST(model_given_as_adapter_says_so) {
    hmt_model *m = NULL;
    ck_assert_int_eq(hmt_model_load(&m, MODEL, NULL), HMT_OK);
    hmt_adapter *a = NULL;
    ck_assert_int_eq(hmt_adapter_load(&a, m, MODEL), HMT_E_FORMAT);
    EXPECT_MSG_HAS("not an HMT adapter");
    EXPECT_MSG_HAS("hmt_model_load");
    hmt_model_free(m);
}
END_TEST

/* n = 0 is refused as what it is, whether or not tokens is NULL. */
START_TEST(empty_eval_says_n_is_zero) {
    hmt_model *m = NULL;
    ck_assert_int_eq(hmt_model_load(&m, MODEL, NULL), HMT_OK);
    hmt_ctx *ctx = NULL;
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, NULL), HMT_OK);
    ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, NULL, 0, 0), HMT_E_INVAL);
    EXPECT_MSG_HAS("no tokens to evaluate (n = 0)");
    hmt_token t = 1;
    ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, &t, 0, 1), HMT_E_INVAL);
    EXPECT_MSG_HAS("no tokens to evaluate (n = 0)");
    ck_assert_int_eq(hmt_ctx_eval(ctx, &t, NULL, 0, NULL, NULL), HMT_E_INVAL);
    EXPECT_MSG_HAS("no rows to evaluate (n = 0)");
    ck_assert_int_eq(hmt_ctx_n_past(ctx), 0);
    hmt_ctx_free(ctx);
    hmt_model_free(m);
}
END_TEST

/* Wrapping the previous message (model load: "model: tensor 'x': <detail>")
 * formatted into the buffer it read from: the detail came out garbled. */
START_TEST(wrapped_message_keeps_its_detail) {
    hmti_errf(HMT_E_INVAL, "a row of 33 elements does not fit type 8's blocks");
    ck_assert_int_eq(hmti_errf(HMT_E_FORMAT, "model: tensor '%s': %s", "blk.0.ffn_up.weight",
                               hmti_tls_errmsg()),
                     HMT_E_FORMAT);
    ck_assert_str_eq(hmt_last_error_msg(), "model: tensor 'blk.0.ffn_up.weight': a row of 33 "
                                           "elements does not fit type 8's blocks");
}
END_TEST

/* ---- API 0.2: each create function refuses the keys of other objects -------- */
static hmt_params *params_with(hmt_param key, int64_t value) {
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, key, value), HMT_OK);
    return p;
}

START_TEST(create_refuses_keys_of_other_objects) {
    hmt_model *m = NULL;
    ck_assert_int_eq(hmt_model_load(&m, hmt_test_data("llama-f32.gguf"), NULL), HMT_OK);
    hmt_adapter *a = NULL;
    ck_assert_int_eq(hmt_adapter_load(&a, m, hmt_test_data("hmt-full-a.adapter.gguf")), HMT_OK);
    /* a context given a sampler's key */
    hmt_params *p = params_with(HMT_P_TOP_K, 5);
    hmt_ctx *ctx = (hmt_ctx *)p;
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_E_INVAL);
    ck_assert_ptr_null(ctx);
    EXPECT_MSG_HAS("top_k");
    EXPECT_MSG_HAS("sampler");
    /* set to its default value is still set */
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_TOP_K, 40), HMT_OK);
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_E_INVAL);
    /* a copy keeps the set-ness */
    hmt_params *c = NULL;
    ck_assert_int_eq(hmt_params_copy(&c, p), HMT_OK);
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, c), HMT_E_INVAL);
    EXPECT_MSG_HAS("top_k");
    hmt_params_free(c);
    hmt_params_free(p);
    /* a model reads no key at all */
    p = params_with(HMT_P_N_THREADS, 2);
    hmt_model *m2 = (hmt_model *)p;
    ck_assert_int_eq(hmt_model_load(&m2, hmt_test_data("llama-f32.gguf"), p), HMT_E_INVAL);
    ck_assert_ptr_null(m2);
    EXPECT_MSG_HAS("n_threads");
    hmt_params_free(p);
    /* a stream's window is HMT_P_WINDOW; n_ctx is the context's */
    p = params_with(HMT_P_MODE, HMT_MODE_WINDOW);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_CTX, 16), HMT_OK);
    hmt_stream *st = (hmt_stream *)p;
    ck_assert_int_eq(hmt_stream_create(&st, m, NULL, p), HMT_E_INVAL);
    ck_assert_ptr_null(st);
    EXPECT_MSG_HAS("n_ctx");
    EXPECT_MSG_HAS("context");
    hmt_params_free(p);
    p = params_with(HMT_P_MODE, HMT_MODE_WINDOW);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_WINDOW, 16), HMT_OK);
    ck_assert_msg(hmt_stream_create(&st, m, NULL, p) == HMT_OK, "%s", hmt_last_error_msg());
    double v = 0;
    ck_assert_int_eq(hmt_stream_get(st, HMT_P_WINDOW, &v), HMT_OK);
    ck_assert(v == 16);
    ck_assert_int_eq(hmt_stream_get(st, HMT_P_N_CTX, &v), HMT_E_INVAL);
    hmt_stream_free(st);
    /* ... and the window's key is refused by a context */
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_E_INVAL);
    EXPECT_MSG_HAS("mode");
    hmt_params_free(p);
    /* HMT_P_WINDOW is a window-mode key only when read back */
    ck_assert_int_eq(hmt_stream_create(&st, m, a, NULL), HMT_OK);
    ck_assert_int_ne(hmt_stream_get(st, HMT_P_WINDOW, &v), HMT_OK);
    hmt_stream_free(st);
    /* a sampler given a stream's key; a DITTO processor given a sampler's;
     * a kNN processor given a context's (the datastore: check_knn_faiss) */
    p = params_with(HMT_P_SEGMENT_LENGTH, 8);
    hmt_sampler *s = NULL;
    ck_assert_int_eq(hmt_sampler_create(&s, p), HMT_E_INVAL);
    EXPECT_MSG_HAS("segment_length");
    hmt_params_free(p);
    p = params_with(HMT_P_SEED, 8);
    hmt_proc *proc = NULL;
    ck_assert_int_eq(hmt_proc_ditto_create(&proc, m, p), HMT_E_INVAL);
    ck_assert_ptr_null(proc);
    EXPECT_MSG_HAS("seed");
    hmt_params_free(p);
    /* keys never set are never refused: a fresh params object fits every
     * creator, and one with only a context's keys fits a context */
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_model_load(&m2, hmt_test_data("llama-f32.gguf"), p), HMT_OK);
    hmt_model_free(m2);
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_OK);
    hmt_ctx_free(ctx);
    ck_assert_int_eq(hmt_stream_create(&st, m, a, p), HMT_OK);
    hmt_stream_free(st);
    ck_assert_int_eq(hmt_sampler_create(&s, p), HMT_OK);
    hmt_sampler_free(s);
    ck_assert_int_eq(hmt_proc_ditto_create(&proc, m, p), HMT_OK);
    hmt_proc_free(proc);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_CTX, 64), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, 1), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_BATCH, 8), HMT_OK);
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_OK);
    ck_assert_int_eq(hmt_ctx_n_ctx(ctx), 64);
    hmt_ctx_free(ctx);
    hmt_params_free(p);
    hmt_adapter_free(a);
    hmt_model_free(m);
}
END_TEST

/* HMT_AUTO takes the adapter's value; 0 sensory tokens is a real value. */
START_TEST(stream_auto_and_zero_sensory) {
    hmt_model *m = NULL;
    ck_assert_int_eq(hmt_model_load(&m, hmt_test_data("llama-f32.gguf"), NULL), HMT_OK);
    hmt_adapter *a = NULL;
    ck_assert_int_eq(hmt_adapter_load(&a, m, hmt_test_data("hmt-full-a.adapter.gguf")), HMT_OK);
    double L = 0, k = 0, v = -5;
    ck_assert_int_eq(hmt_adapter_get(a, HMT_P_SEGMENT_LENGTH, &L), HMT_OK);
    ck_assert_int_eq(hmt_adapter_get(a, HMT_P_SENSORY_LENGTH, &k), HMT_OK);
    ck_assert(L > 0);
    hmt_params *p = params_with(HMT_P_SEGMENT_LENGTH, HMT_AUTO);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_SEGMENT_LENGTH, 0), HMT_E_INVAL);
    EXPECT_MSG_HAS("segment_length");
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_SENSORY_LENGTH, 0), HMT_OK);
    hmt_stream *st = NULL;
    ck_assert_msg(hmt_stream_create(&st, m, a, p) == HMT_OK, "%s", hmt_last_error_msg());
    ck_assert_int_eq(hmt_stream_get(st, HMT_P_SEGMENT_LENGTH, &v), HMT_OK);
    ck_assert(v == L);
    ck_assert_int_eq(hmt_stream_get(st, HMT_P_SENSORY_LENGTH, &v), HMT_OK);
    ck_assert(v == 0);
    hmt_token toks[40];
    for (int i = 0; i < 40; i++) toks[i] = 3 + i;
    ck_assert_int_eq(hmt_stream_feed(st, toks, 40), HMT_OK);
    ck_assert_int_eq(hmt_stream_flush(st), HMT_OK);
    ck_assert_int_eq(hmt_stream_n_ready(st), 40);
    hmt_stream_free(st);
    /* HMT_AUTO everywhere (the defaults, set explicitly): the adapter's k */
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_SENSORY_LENGTH, HMT_AUTO), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_CACHE_SIZE, HMT_AUTO), HMT_OK);
    ck_assert_int_eq(hmt_stream_create(&st, m, a, p), HMT_OK);
    ck_assert_int_eq(hmt_stream_get(st, HMT_P_SENSORY_LENGTH, &v), HMT_OK);
    ck_assert(v == k);
    hmt_stream_free(st);
    hmt_params_free(p);
    /* a window stream's window = HMT_AUTO is the training context */
    p = params_with(HMT_P_MODE, HMT_MODE_WINDOW);
    ck_assert_int_eq(hmt_stream_create(&st, m, NULL, p), HMT_OK);
    ck_assert_int_eq(hmt_stream_get(st, HMT_P_WINDOW, &v), HMT_OK);
    ck_assert(v == hmt_model_n_ctx_train(m));
    hmt_stream_free(st);
    hmt_params_free(p);
    /* a context's n_ctx = HMT_AUTO is the training context */
    p = params_with(HMT_P_N_CTX, HMT_AUTO);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_CTX, 0), HMT_E_INVAL);
    hmt_ctx *ctx = NULL;
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_OK);
    ck_assert_int_eq(hmt_ctx_n_ctx(ctx), hmt_model_n_ctx_train(m));
    hmt_ctx_free(ctx);
    hmt_params_free(p);
    hmt_adapter_free(a);
    hmt_model_free(m);
}
END_TEST

/* The error rule across the API: after hmt_last_error_clear(), a run of
 * successful calls of every kind leaves the message empty (a call that
 * fails internally and recovers must not leave its message behind), and
 * after a failure they leave that failure's message. */
/* Each offender is noted (and the expected message put back) so that one
 * does not hide the next; the test fails at the end with the list. */
static char offenders[2048];
static void still(const char *expect, const char *what) {
    if (strcmp(hmt_last_error_msg(), expect) == 0) return;
    snprintf(offenders + strlen(offenders), sizeof offenders - strlen(offenders),
             "\n  after %s: \"%s\" (expected \"%s\")", what, hmt_last_error_msg(), expect);
    hmt_last_error_clear();
    if (expect[0]) hmti_errf(HMT_E_INVAL, "%s", expect);
}
#define STILL(what) still(expect, what)

static void successful_calls(const char *expect) {
    hmt_model *m = NULL;
    ck_assert_int_eq(hmt_model_load(&m, hmt_test_data("llama-f32.gguf"), NULL), HMT_OK);
    STILL("hmt_model_load");
    char buf[256];
    size_t len = 0, n = 0;
    ck_assert_int_eq(hmt_model_meta_str(m, "general.architecture", buf, sizeof buf, &len),
                     HMT_OK);
    hmt_token toks[64];
    ck_assert_int_eq(hmt_tokenize(m, "Hello there.", 12, HMT_TOKENIZE_ADD_BOS, toks, 64, &n),
                     HMT_OK);
    ck_assert_int_eq(hmt_detokenize(m, toks, n, 0, buf, sizeof buf, &len), HMT_OK);
    STILL("tokenize/detokenize");
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, 2), HMT_OK);
    hmt_ctx *ctx = NULL;
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_OK);
    STILL("hmt_ctx_create");
    for (int i = 0; i < 40; i++) toks[i] = (hmt_token)(3 + (i * 13) % 300);
    uint8_t outs[40];
    memset(outs, HMT_OUT_LOGITS | HMT_OUT_FFN_INPUT, sizeof outs);
    ck_assert_int_eq(hmt_ctx_eval(ctx, toks, NULL, 40, NULL, outs), HMT_OK);
    ck_assert_int_eq(hmt_ctx_kv_rewind(ctx, 20), HMT_OK);
    ck_assert_int_eq(hmt_ctx_eval(ctx, toks + 20, NULL, 20, NULL, outs), HMT_OK);
    ck_assert_int_eq(hmt_ctx_set_int(ctx, HMT_P_N_THREADS, 1), HMT_OK);
    STILL("hmt_ctx_eval");
    /* a datastore from the context, searched, and its processor */
    const char *path = hmt_test_tmp_path(".knn");
    char keep[4096];
    snprintf(keep, sizeof keep, "%s", path);
    hmt_knn_builder *b = NULL;
    ck_assert_int_eq(hmt_knn_builder_create(&b, m, keep, NULL), HMT_OK);
    ck_assert_int_eq(hmt_knn_builder_add_ctx(b, ctx, toks, 40, NULL, NULL), HMT_OK);
    ck_assert_int_eq(hmt_knn_builder_finish(b), HMT_OK);
    hmt_knn_builder_free(b);
    hmt_knn *knn = NULL;
    ck_assert_int_eq(hmt_knn_load(&knn, m, keep, p), HMT_OK);
    STILL("the datastore build and load");
    float dist[4], key[64];
    int64_t idx[4];
    ck_assert_int_eq(hmt_knn_copy_entry(knn, 3, key, 64, NULL), HMT_OK);
    ck_assert_int_eq(hmt_knn_search(knn, key, 1, 4, dist, idx, NULL), HMT_OK);
    hmt_proc *kp = NULL, *dp = NULL;
    ck_assert_int_eq(hmt_proc_knn_create(&kp, knn, NULL), HMT_OK);
    ck_assert_int_eq(hmt_proc_ditto_create(&dp, m, NULL), HMT_OK);
    hmt_sampler *s = NULL;
    ck_assert_int_eq(hmt_sampler_create(&s, NULL), HMT_OK);
    ck_assert_int_eq(hmt_sampler_add(s, dp), HMT_OK);
    ck_assert_int_eq(hmt_sampler_add(s, kp), HMT_OK);
    hmt_proc_free(kp);
    hmt_proc_free(dp);
    hmt_knn_free(knn);
    ck_assert_int_eq(hmt_ctx_eval(ctx, toks, NULL, 1, NULL, outs), HMT_OK);
    hmt_token t;
    ck_assert_int_eq(hmt_sampler_prepare(s, hmt_ctx_ffn_input(ctx, 0), 1, 64), HMT_OK);
    ck_assert_int_eq(hmt_sampler_sample_ctx(s, ctx, 0, &t), HMT_OK);
    STILL("the samplers");
    hmt_sampler_free(s);
    unlink(keep);
    /* a stream: feed, flush, save, restore */
    hmt_adapter *a = NULL;
    ck_assert_int_eq(hmt_adapter_load(&a, m, hmt_test_data("hmt-full-a.adapter.gguf")), HMT_OK);
    hmt_stream *st = NULL;
    ck_assert_int_eq(hmt_stream_create(&st, m, a, p), HMT_OK);
    ck_assert_int_eq(hmt_stream_feed(st, toks, 30), HMT_OK);
    size_t need = 0;
    ck_assert_int_eq(hmt_stream_save(st, NULL, 0, &need), HMT_E_BUFFER); /* a failure: */
    hmt_last_error_clear();                                                /* not this test's */
    if (expect[0]) hmti_errf(HMT_E_INVAL, "%s", expect);
    void *snap = malloc(need);
    ck_assert_int_eq(hmt_stream_save(st, snap, need, &need), HMT_OK);
    ck_assert_int_eq(hmt_stream_flush(st), HMT_OK);
    ck_assert_int_eq(hmt_stream_restore(st, snap, need), HMT_OK);
    double v;
    ck_assert_int_eq(hmt_stream_get(st, HMT_P_SEGMENT_LENGTH, &v), HMT_OK);
    STILL("the stream");
    free(snap);
    hmt_stream_free(st);
    hmt_adapter_free(a);
    hmt_params_free(p);
    hmt_ctx_free(ctx);
    hmt_model_free(m);
    STILL("the frees");
}

START_TEST(successful_calls_leave_the_message) {
    offenders[0] = '\0';
    hmt_last_error_clear();
    successful_calls("");
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_TOP_K, -3), HMT_E_INVAL);
    hmt_params_free(p);
    char failure[512];
    snprintf(failure, sizeof failure, "%s", hmt_last_error_msg());
    ck_assert_str_ne(failure, "");
    successful_calls(failure);
    hmt_last_error_clear();
    ck_assert_str_eq(hmt_last_error_msg(), "");
    ck_assert_msg(offenders[0] == '\0', "successful calls changed the message:%s", offenders);
}
END_TEST

Suite *hmt_suite_messages(void);
Suite *hmt_suite_messages(void) {
    Suite *s = suite_create("messages");
    TCase *tc = tcase_create("library messages");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, kv_cache_oom_message_gives_the_size);
    tcase_add_test(tc, missing_architecture_is_a_format_error);
    tcase_add_test(tc, adapter_given_as_model_says_where_it_goes);
    tcase_add_test(tc, model_given_as_adapter_says_so);
    tcase_add_test(tc, empty_eval_says_n_is_zero);
    tcase_add_test(tc, wrapped_message_keeps_its_detail);
    tcase_add_test(tc, create_refuses_keys_of_other_objects);
    tcase_add_test(tc, stream_auto_and_zero_sensory);
    tcase_add_test(tc, successful_calls_leave_the_message);
    suite_add_tcase(s, tc);
    return s;
}
