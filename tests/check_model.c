/* Model loading and context misuse through the public API: bad paths, bad
 * arguments, wrong call order, out-of-range tokens, a full cache, abort. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmt/hmt.h"
#include "hooks/draw.h" /* hmti_draw_sample: the draw a sampler without processors is */
#include "util/testutil.h"

static const char *model_path(void) { return hmt_test_data("llama-f32.gguf"); }

START_TEST(load_errors) {
    hmt_model *m = (hmt_model *)1;
    ck_assert_int_eq(hmt_model_load(&m, "/nonexistent/model.gguf", NULL), HMT_E_IO);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "/nonexistent/model.gguf"));
    ck_assert_int_eq(hmt_model_load(NULL, model_path(), NULL), HMT_E_INVAL);
    ck_assert_int_eq(hmt_model_load(&m, NULL, NULL), HMT_E_INVAL);
    /* a file that is not GGUF */
    const char *p = hmt_test_tmp_path(".gguf");
    ck_assert_int_eq(hmt_test_write_file(p, "hello world, not a model", 24), 0);
    ck_assert_int_eq(hmt_model_load(&m, p, NULL), HMT_E_FORMAT);
    ck_assert_ptr_null(m);
    remove(p);
    hmt_model_free(NULL);
}
END_TEST

/* A key or tensor that changes the arithmetic in a way libhmt does not
 * implement is refused naming it, never ignored; a value out of range is a
 * format error naming it; a neutral value or an implemented RoPE variant
 * loads (unimplemented-manifest.txt, written by make_testdata.py). */
START_TEST(unimplemented_math_is_refused) {
    char path[4096], line[512];
    snprintf(path, sizeof path, "%s", hmt_test_data("unimplemented-manifest.txt"));
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s missing (make testdata)", path);
    int refused = 0, invalid = 0, loaded = 0;
    while (fgets(line, sizeof line, f)) {
        char file[256], verdict[16], name[128] = "";
        if (sscanf(line, "%255s %15s %127s", file, verdict, name) < 2) continue;
        hmt_model *m = NULL;
        const int rc = hmt_model_load(&m, hmt_test_data(file), NULL);
        if (!strcmp(verdict, "loads")) {
            ck_assert_msg(rc == HMT_OK, "%s: %s", file, hmt_last_error_msg());
            hmt_model_free(m);
            loaded++;
            continue;
        }
        const int want = !strcmp(verdict, "invalid") ? HMT_E_FORMAT : HMT_E_UNSUPPORTED;
        ck_assert_msg(rc == want, "%s: got %d, want %d (%s)", file, rc, want, hmt_last_error_msg());
        ck_assert_ptr_null(m);
        ck_assert_msg(strstr(hmt_last_error_msg(), name), "%s: the message does not name %s: %s",
                      file, name, hmt_last_error_msg());
        if (want == HMT_E_FORMAT)
            invalid++;
        else
            refused++;
    }
    fclose(f);
    ck_assert_int_ge(refused, 10);
    ck_assert_int_ge(invalid, 5);
    ck_assert_int_ge(loaded, 5);
}
END_TEST

START_TEST(shape_queries_and_null_model) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    ck_assert_str_eq(hmt_model_arch(m), "llama");
    ck_assert_int_gt(hmt_model_n_vocab(m), 0);
    ck_assert_int_gt(hmt_model_n_embd(m), 0);
    ck_assert_int_eq(hmt_model_n_vocab(NULL), 0);
    ck_assert_ptr_null(hmt_model_arch(NULL));
    char buf[64];
    size_t len;
    ck_assert_int_eq(hmt_model_meta_str(m, "general.architecture", buf, sizeof buf, &len), HMT_OK);
    ck_assert_str_eq(buf, "llama");
    ck_assert_uint_eq(len, 5);
    ck_assert_int_eq(hmt_model_meta_str(m, "general.architecture", buf, 3, &len), HMT_E_BUFFER);
    ck_assert_uint_eq(len, 5);
    ck_assert_str_eq(buf, "ll");
    ck_assert_int_eq(hmt_model_meta_str(m, "no.such.key", buf, sizeof buf, &len), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "no.such.key"));
    float e[4];
    ck_assert_int_eq(hmt_model_token_embedding(m, 0, e, 4), HMT_E_BUFFER);
    ck_assert_int_eq(hmt_model_token_embedding(m, -1, e, 4), HMT_E_TOKEN);
    hmt_model_free(m);
}
END_TEST

static int abort_after_calls(void *data) {
    int *left = data;
    return (*left)-- <= 0;
}

START_TEST(eval_misuse_keeps_state) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_CTX, 8), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, 1), HMT_OK);
    hmt_ctx *ctx = NULL;
    ck_assert_int_eq(hmt_ctx_create(NULL, m, p), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_create(&ctx, NULL, p), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_OK);
    ck_assert_int_eq(hmt_ctx_n_ctx(ctx), 8);

    hmt_token toks[9] = {1, 5, 6, 7, 8, 9, 10, 11, 12};
    ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, toks, 3, 1), HMT_OK);
    ck_assert_int_eq(hmt_ctx_n_past(ctx), 3);
    float first[8];
    memcpy(first, hmt_ctx_logits(ctx, 2), sizeof first);
    ck_assert_ptr_nonnull(hmt_ctx_logits(ctx, 0));
    ck_assert_ptr_null(hmt_ctx_logits(ctx, 3));
    ck_assert_ptr_null(hmt_ctx_hidden(ctx, 0)); /* only logits were asked for */

    /* rejected before anything changes: state and outputs intact */
    hmt_token bad[2] = {4, hmt_model_n_vocab(m)};
    ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, bad, 2, 0), HMT_E_TOKEN);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "token"));
    ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, toks, 6, 0), HMT_E_CTX_FULL);
    ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, toks, 0, 0), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_eval(ctx, toks, first, 1, NULL, NULL), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_eval(ctx, NULL, NULL, 1, NULL, NULL), HMT_E_INVAL);
    uint8_t badflag = 0x80;
    ck_assert_int_eq(hmt_ctx_eval(ctx, toks, NULL, 1, NULL, &badflag), HMT_E_INVAL);
    int32_t negpos = -1;
    ck_assert_int_eq(hmt_ctx_eval(ctx, toks, NULL, 1, &negpos, NULL), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_n_past(ctx), 3);
    ck_assert_mem_eq(hmt_ctx_logits(ctx, 2), first, sizeof first);

    /* abort midway: n_past unchanged, and the same eval then succeeds */
    int left = 1;
    ck_assert_int_eq(hmt_ctx_set_abort_callback(ctx, abort_after_calls, &left), HMT_OK);
    ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, toks + 3, 2, 0), HMT_E_ABORTED);
    ck_assert_int_eq(hmt_ctx_n_past(ctx), 3);
    ck_assert_int_eq(hmt_ctx_set_abort_callback(ctx, NULL, NULL), HMT_OK);

    /* rewind and replay gives the same logits */
    ck_assert_int_eq(hmt_ctx_kv_rewind(ctx, 4), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_kv_rewind(ctx, 2), HMT_OK);
    ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, toks + 2, 1, 0), HMT_OK);
    for (int i = 0; i < 8; i++) /* batch vs single-row kernels: rounding only */
        ck_assert_float_eq_tol(hmt_ctx_logits(ctx, -1)[i], first[i], 1e-4f);
    ck_assert_int_eq(hmt_ctx_kv_clear(ctx), HMT_OK);
    ck_assert_int_eq(hmt_ctx_n_past(ctx), 0);
    ck_assert_ptr_null(hmt_ctx_logits(ctx, -1));

    /* runtime thread count */
    double v;
    ck_assert_int_eq(hmt_ctx_set_int(ctx, HMT_P_N_THREADS, 2), HMT_OK);
    ck_assert_int_eq(hmt_ctx_get(ctx, HMT_P_N_THREADS, &v), HMT_OK);
    ck_assert(v == 2);
    ck_assert_int_eq(hmt_ctx_set_int(ctx, HMT_P_N_CTX, 16), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_get(ctx, HMT_P_N_CTX, &v), HMT_OK);
    ck_assert(v == 8);

    /* NULL handles */
    ck_assert_int_eq(hmt_ctx_eval_tokens(NULL, toks, 1, 0), HMT_E_INVAL);
    ck_assert_ptr_null(hmt_ctx_logits(NULL, 0));
    ck_assert_int_eq(hmt_ctx_kv_clear(NULL), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_n_past(NULL), 0);

    hmt_ctx_free(ctx);
    hmt_ctx_free(NULL);
    hmt_params_free(p);
    hmt_model_free(m);
}
END_TEST

START_TEST(context_outlives_model_handle) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    hmt_ctx *ctx;
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, NULL), HMT_OK);
    hmt_model_free(m); /* the context keeps the model alive */
    hmt_token t = 1;
    ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, &t, 1, 0), HMT_OK);
    ck_assert_ptr_nonnull(hmt_ctx_logits(ctx, -1));
    ck_assert_int_gt(hmt_model_n_vocab(hmt_ctx_model(ctx)), 0);
    hmt_ctx_free(ctx);
}
END_TEST

START_TEST(sampler_is_deterministic) {
    float logits[50];
    for (int i = 0; i < 50; i++) logits[i] = (float)((i * 37) % 11) * 0.3f;
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_TEMPERATURE, 1.0), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_SEED, 42), HMT_OK);
    hmt_sampler *a, *b;
    ck_assert_int_eq(hmt_sampler_create(&a, p), HMT_OK);
    ck_assert_int_eq(hmt_sampler_create(&b, p), HMT_OK);
    int counts[50] = {0};
    for (int i = 0; i < 2000; i++) {
        hmt_token ta, tb;
        ck_assert_int_eq(hmt_sampler_sample(a, logits, 50, &ta), HMT_OK);
        ck_assert_int_eq(hmt_sampler_sample(b, logits, 50, &tb), HMT_OK);
        ck_assert_int_eq(ta, tb);
        counts[ta]++;
    }
    /* top-k 40 by default: the ten lowest logits (value 0) are never drawn
     * unless tied into the top 40; the best value (3.0) is drawn most */
    int best = 0;
    for (int i = 0; i < 50; i++)
        if (counts[i] > counts[best]) best = i;
    ck_assert_float_eq_tol(logits[best], 3.0f, 1e-6f);
    hmt_sampler_free(a);
    hmt_sampler_free(b);

    /* greedy: lowest id among the maxima */
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_TEMPERATURE, 0.0), HMT_OK);
    ck_assert_int_eq(hmt_sampler_create(&a, p), HMT_OK);
    hmt_token t;
    ck_assert_int_eq(hmt_sampler_sample(a, logits, 50, &t), HMT_OK);
    ck_assert_float_eq_tol(logits[t], 3.0f, 1e-6f);
    for (int i = 0; i < t; i++) ck_assert(logits[i] < logits[t]);
    ck_assert_int_eq(hmt_sampler_sample(a, logits, 0, &t), HMT_E_INVAL);
    /* a NULL sampler: check_proc's sampler_null_is_inval */
    hmt_sampler_free(a);
    hmt_params_free(p);
}
END_TEST

START_TEST(sampler_top_p_and_top_k_restrict) {
    /* probabilities ∝ exp(logit): token 0 carries ~0.84 of the mass */
    float logits[5] = {4.0f, 2.0f, 1.0f, 0.5f, 0.0f};
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_TEMPERATURE, 1.0), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_TOP_K, 0), HMT_OK);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_TOP_P, 0.8), HMT_OK);
    hmt_sampler *s;
    ck_assert_int_eq(hmt_sampler_create(&s, p), HMT_OK);
    for (int i = 0; i < 200; i++) {
        hmt_token t;
        ck_assert_int_eq(hmt_sampler_sample(s, logits, 5, &t), HMT_OK);
        ck_assert_int_eq(t, 0);
    }
    hmt_sampler_free(s);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_TOP_P, 1.0), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_TOP_K, 2), HMT_OK);
    ck_assert_int_eq(hmt_sampler_create(&s, p), HMT_OK);
    int seen[5] = {0};
    for (int i = 0; i < 500; i++) {
        hmt_token t;
        ck_assert_int_eq(hmt_sampler_sample(s, logits, 5, &t), HMT_OK);
        seen[t]++;
    }
    ck_assert_int_gt(seen[0], 0);
    ck_assert_int_gt(seen[1], 0);
    ck_assert_int_eq(seen[2] + seen[3] + seen[4], 0);
    hmt_sampler_free(s);
    hmt_params_free(p);
}
END_TEST

/* ---- API 0.2: a sampler without processors is the 0.1 sampler ------------- */
static hmt_params *draw_params(int c) {
    const double temps[3] = {0.8, 1.0, 0.5}, topp[3] = {0.95, 1.0, 0.7};
    const int topk[3] = {40, 0, 5}, seeds[3] = {0x484d54, 42, 7};
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_TEMPERATURE, temps[c]), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_TOP_K, topk[c]), HMT_OK);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_TOP_P, topp[c]), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_SEED, seeds[c]), HMT_OK);
    return p;
}

/* The tokens libhmt 0.1 (commit b96cebf, lib/hooks/sampler.c) drew for
 * these logits and settings: a sampler without processors must draw the
 * same ones, bit for bit, in 0.2. A second pass compares with the internal
 * draw (hmti_draw_sample) on other logits. */
START_TEST(sampler_without_processors_draws_as_0_1) {
    static const hmt_token want[3][24] = {
        {16, 30, 0, 40, 13, 48, 13, 47, 23, 12, 43, 11, 25, 45, 2, 21, 48, 21, 40, 49, 12, 26, 35, 31},
        {18, 27, 26, 33, 35, 12, 8, 12, 36, 14, 46, 29, 18, 34, 33, 4, 43, 14, 43, 34, 22, 36, 17, 49},
        {41, 9, 46, 9, 23, 14, 10, 1, 38, 6, 43, 34, 48, 11, 30, 44, 12, 26, 17, 8, 22, 36, 27, 18},
    };
    float lg[50];
    for (int c = 0; c < 3; c++) {
        hmt_params *p = draw_params(c);
        hmt_sampler *s;
        ck_assert_int_eq(hmt_sampler_create(&s, p), HMT_OK);
        ck_assert_int_eq(hmt_sampler_n_procs(s), 0);
        for (int i = 0; i < 24; i++) {
            for (int v = 0; v < 50; v++) lg[v] = (float)(((v * 37 + i * 11) % 23) * 0.25 - 2.0);
            hmt_token t;
            ck_assert_int_eq(hmt_sampler_sample(s, lg, 50, &t), HMT_OK);
            ck_assert_msg(t == want[c][i], "settings %d, draw %d: token %d, 0.1 drew %d", c, i,
                          (int)t, (int)want[c][i]);
        }
        /* the same against the draw itself, on random logits */
        hmt_sampler_reseed(s, 99);
        hmti_draw d;
        memset(&d, 0, sizeof d);
        hmti_draw_init(&d, p);
        hmti_draw_reseed(&d, 99);
        uint64_t st = 5 + (uint64_t)c;
        for (int i = 0; i < 300; i++) {
            for (int v = 0; v < 50; v++) lg[v] = 3.0f * hmt_test_nrand(&st);
            hmt_token a, b;
            ck_assert_int_eq(hmt_sampler_sample(s, lg, 50, &a), HMT_OK);
            ck_assert_int_eq(hmti_draw_sample(&d, lg, 50, &b, "test"), HMT_OK);
            ck_assert_int_eq(a, b);
        }
        hmti_draw_free(&d);
        hmt_sampler_free(s);
        hmt_params_free(p);
    }
}
END_TEST

/* hmt_sampler_sample_ctx(s, ctx, i) = hmt_sampler_sample(s, hmt_ctx_logits(ctx, i))
 * (no processors: no key used); hmt_sampler_sample_stream likewise. */
START_TEST(sample_ctx_and_stream_equal_sample) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    const int32_t nv = hmt_model_n_vocab(m);
    hmt_ctx *ctx;
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, NULL), HMT_OK);
    hmt_params *p = draw_params(1);
    hmt_sampler *a, *b;
    ck_assert_int_eq(hmt_sampler_create(&a, p), HMT_OK);
    ck_assert_int_eq(hmt_sampler_create(&b, p), HMT_OK);
    hmt_token prompt[5] = {1, 17, 33, 80, 5};
    ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, prompt, 5, 1), HMT_OK);
    for (int row = 0; row < 5; row++) { /* every row of an all-logits batch */
        hmt_token ta, tb;
        ck_assert_int_eq(hmt_sampler_sample_ctx(a, ctx, row, &ta), HMT_OK);
        ck_assert_int_eq(hmt_sampler_sample(b, hmt_ctx_logits(ctx, row), nv, &tb), HMT_OK);
        ck_assert_int_eq(ta, tb);
    }
    hmt_token t = prompt[4];
    for (int step = 0; step < 12; step++) { /* generation: the last row */
        ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, &t, 1, 0), HMT_OK);
        hmt_token ta, tb;
        ck_assert_int_eq(hmt_sampler_sample_ctx(a, ctx, -1, &ta), HMT_OK);
        ck_assert_int_eq(hmt_sampler_sample(b, hmt_ctx_logits(ctx, -1), nv, &tb), HMT_OK);
        ck_assert_int_eq(ta, tb);
        t = ta;
    }
    /* a row without logits is refused, *out unchanged */
    ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, prompt, 3, 0), HMT_OK);
    t = -5;
    ck_assert_int_eq(hmt_sampler_sample_ctx(a, ctx, 0, &t), HMT_E_INVAL);
    ck_assert_int_eq(t, -5);
    ck_assert_int_eq(hmt_sampler_sample_ctx(a, NULL, -1, &t), HMT_E_INVAL);
    /* a stream: every ready index */
    hmt_adapter *ad;
    ck_assert_int_eq(hmt_adapter_load(&ad, m, hmt_test_data("hmt-full-a.adapter.gguf")), HMT_OK);
    hmt_stream *st;
    ck_assert_int_eq(hmt_stream_create(&st, m, ad, NULL), HMT_OK);
    ck_assert_ptr_eq(hmt_stream_model(st), m);
    hmt_token doc[30];
    for (int i = 0; i < 30; i++) doc[i] = (hmt_token)(3 + (i * 7) % 300);
    ck_assert_int_eq(hmt_stream_feed(st, doc, 30), HMT_OK);
    ck_assert_int_eq(hmt_stream_flush(st), HMT_OK);
    int64_t first, end;
    hmt_stream_ready_range(st, &first, &end);
    ck_assert_int_gt(end, first);
    for (int64_t i = first; i < end; i++) {
        hmt_token ta, tb;
        ck_assert_int_eq(hmt_sampler_sample_stream(a, st, i, &ta), HMT_OK);
        ck_assert_int_eq(hmt_sampler_sample(b, hmt_stream_logits(st, i), nv, &tb), HMT_OK);
        ck_assert_int_eq(ta, tb);
    }
    ck_assert_int_eq(hmt_sampler_sample_stream(a, st, end, &t), HMT_E_INVAL);
    hmt_stream_free(st);
    hmt_adapter_free(ad);
    hmt_sampler_free(a);
    hmt_sampler_free(b);
    hmt_params_free(p);
    hmt_ctx_free(ctx);
    hmt_model_free(m);
}
END_TEST

Suite *hmt_suite_model(void);
Suite *hmt_suite_model(void) {
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, load_errors);
    tcase_add_test(tc, unimplemented_math_is_refused);
    tcase_add_test(tc, shape_queries_and_null_model);
    tcase_add_test(tc, eval_misuse_keeps_state);
    tcase_add_test(tc, context_outlives_model_handle);
    suite_add_tcase(s, tc);
    TCase *ts = tcase_create("sampler");
    tcase_set_timeout(ts, 60);
    tcase_add_test(ts, sampler_is_deterministic);
    tcase_add_test(ts, sampler_top_p_and_top_k_restrict);
    tcase_add_test(ts, sampler_without_processors_draws_as_0_1);
    tcase_add_test(ts, sample_ctx_and_stream_equal_sample);
    suite_add_tcase(s, ts);
    return s;
}
