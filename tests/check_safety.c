/* Issue 12 items 6-8: a datastore freed under its processor, the sampler's
 * rule for non-finite logits (the chain's rule), and non-finite numbers
 * refused where they enter: weights, adapter tensors, embedding rows,
 * snapshots, float parameters. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fnv.h"
#include "hmt/hmt.h"
#include "hmt/experimental.h"
#include "io/gguf.h"
#include "util/testutil.h"

static hmt_sampler *sampler_at(double temperature, int64_t top_k, double top_p) {
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_TEMPERATURE, temperature), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_TOP_K, top_k), HMT_OK);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_TOP_P, top_p), HMT_OK);
    hmt_sampler *s;
    ck_assert_int_eq(hmt_sampler_create(&s, p), HMT_OK);
    hmt_params_free(p);
    return s;
}

/* ---- item 7: one rule for the sampler and the chain ---------------------- */
START_TEST(sampler_nonfinite_rule) {
    const double temps[] = {0.0, 0.8};
    for (int ti = 0; ti < 2; ti++) {
        hmt_sampler *s = sampler_at(temps[ti], 0, 1.0);
        hmt_token t = 77;
        const float plus_inf[4] = {0, 0, INFINITY, -INFINITY};
        ck_assert_int_eq(hmt_sampler_sample(s, plus_inf, 4, &t), HMT_E_INVAL);
        ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "+inf"));
        ck_assert_int_eq(t, 77);
        const float nan_l[3] = {0, NAN, 1};
        ck_assert_int_eq(hmt_sampler_sample(s, nan_l, 3, &t), HMT_E_INVAL);
        ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "logit 1"));
        const float none[3] = {-INFINITY, -INFINITY, -INFINITY};
        ck_assert_int_eq(hmt_sampler_sample(s, none, 3, &t), HMT_E_INVAL);
        ck_assert_int_eq(t, 77);
        hmt_sampler_free(s);
    }
    /* -inf is a banned token: never drawn, whatever the draw; the others
     * follow softmax: p(3) = e / (1 + e) */
    hmt_sampler *s = sampler_at(1.0, 0, 1.0);
    const float z[4] = {-INFINITY, 0, -INFINITY, 1};
    int n3 = 0;
    for (int i = 0; i < 4000; i++) {
        hmt_token t;
        ck_assert_int_eq(hmt_sampler_sample(s, z, 4, &t), HMT_OK);
        ck_assert(t == 1 || t == 3);
        n3 += t == 3;
    }
    const double p3 = exp(1.0) / (1 + exp(1.0));
    ck_assert_double_eq_tol(n3 / 4000.0, p3, 5 * sqrt(p3 * (1 - p3) / 4000));
    hmt_sampler_free(s);
}
END_TEST

static int nan_apply(void *ud, float *logits, int32_t n, const float *key, int32_t n_key) {
    (void)ud, (void)key, (void)n_key;
    logits[n - 1] = NAN;
    return HMT_OK;
}

START_TEST(chain_names_the_source_of_a_nonfinite_logit) {
    hmt_sampler *chain = sampler_at(0.8, 0, 1.0);
    float out[4];
    hmt_token t = 77;
    const float nan_in[4] = {0, NAN, 1, 2};
    ck_assert_int_eq(hmt_sampler_apply(chain, nan_in, 4, NULL, 0, out), HMT_E_INVAL);
    const char *msg = hmt_last_error_msg();
    ck_assert_msg(!strstr(msg, "after the processors") && strstr(msg, "input logit 1"), "%s", msg);
    const float inf_in[4] = {0, 0, INFINITY, -INFINITY};
    ck_assert_int_eq(hmt_sampler_sample(chain, inf_in, 4, &t), HMT_E_INVAL);
    ck_assert_int_eq(t, 77);
    /* a processor that writes NaN is named */
    hmt_proc_i i;
    memset(&i, 0, sizeof i);
    i.struct_size = sizeof i;
    i.name = "nanwriter";
    i.apply = nan_apply;
    hmt_proc *p;
    ck_assert_int_eq(hmt_proc_create(&p, &i, NULL), HMT_OK);
    ck_assert_int_eq(hmt_sampler_add(chain, p), HMT_OK);
    hmt_proc_free(p);
    const float ok[4] = {0, 1, 2, 3};
    ck_assert_int_eq(hmt_sampler_apply(chain, ok, 4, NULL, 0, out), HMT_E_INVAL);
    msg = hmt_last_error_msg();
    ck_assert_msg(strstr(msg, "nanwriter") && strstr(msg, "logit 3"), "%s", msg);
    /* and the sample path names it too, leaving *out alone */
    ck_assert_int_eq(hmt_sampler_sample(chain, ok, 4, &t), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "nanwriter"));
    ck_assert_int_eq(t, 77);
    hmt_sampler_free(chain);
}
END_TEST

START_TEST(knn_interpolation_follows_the_rule) {
    const float d[2] = {1, 2};
    const hmt_token v[2] = {0, 1};
    float out[4], lam;
    const float bad[3][4] = {{0, NAN, 1, 2}, {0, INFINITY, 1, 2},
                             {-INFINITY, -INFINITY, -INFINITY, -INFINITY}};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(hmt_knn_interpolate_neighbors(NULL, d, v, 2, bad[i], 4, out, &lam),
                         HMT_E_INVAL);
        ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "position 0"));
    }
    const float ok[4] = {0, -INFINITY, 1, 2};
    ck_assert_int_eq(hmt_knn_interpolate_neighbors(NULL, d, v, 2, ok, 4, out, &lam), HMT_OK);
    ck_assert(isfinite(out[1])); /* neighbour 1 votes for the banned token: λ·p_kNN */
}
END_TEST

/* ---- item 6: the datastore outlives hmt_knn_free while a processor uses it */
START_TEST(knn_freed_under_its_processor) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    const int32_t d = hmt_model_n_embd(m), nv = hmt_model_n_vocab(m);
    enum { N = 64 };
    float *keys = malloc((size_t)N * d * sizeof *keys);
    hmt_token vals[N];
    uint64_t st = 12;
    for (int i = 0; i < N * d; i++) keys[i] = hmt_test_nrand(&st);
    for (int i = 0; i < N; i++) vals[i] = i % nv;
    const char *path = hmt_test_tmp_path(".knn");
    hmt_knn_builder *b;
    ck_assert_int_eq(hmt_knn_builder_create(&b, m, path, NULL), HMT_OK);
    ck_assert_int_eq(hmt_knn_builder_add(b, keys, vals, N), HMT_OK);
    ck_assert_int_eq(hmt_knn_builder_finish(b), HMT_OK);
    hmt_knn_builder_free(b);
    hmt_knn *knn;
    ck_assert_int_eq(hmt_knn_load(&knn, m, path, NULL), HMT_OK);
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KNN_K, 8), HMT_OK);
    hmt_proc *proc;
    ck_assert_int_eq(hmt_proc_knn_create(&proc, knn, p), HMT_OK);
    hmt_sampler *chain;
    ck_assert_int_eq(hmt_sampler_create(&chain, NULL), HMT_OK);
    ck_assert_int_eq(hmt_sampler_add(chain, proc), HMT_OK);
    hmt_proc_free(proc); /* the sampler keeps it */
    float *logits = calloc((size_t)nv, sizeof *logits), *before = malloc((size_t)nv * 4),
          *after = malloc((size_t)nv * 4);
    ck_assert_int_eq(hmt_sampler_apply(chain, logits, nv, keys + 5 * d, d, before), HMT_OK);
    hmt_knn_free(knn); /* the processor keeps it */
    remove(path);
    ck_assert_int_eq(hmt_sampler_apply(chain, logits, nv, keys + 5 * d, d, after), HMT_OK);
    ck_assert_mem_eq(before, after, (size_t)nv * sizeof *after);
    hmt_sampler_free(chain); /* the last reference */
    hmt_params_free(p);
    free(logits), free(before), free(after), free(keys);
    hmt_model_free(m);
}
END_TEST

/* ---- item 8: non-finite numbers at their source ------------------------- */
enum { T_F32 = 0, T_F16 = 1, T_Q8_0 = 8, T_BF16 = 30 };

/* Overwrite element `elem` of tensor `name` in a GGUF image with a
 * non-finite value of the tensor's type (for Q8_0: the block's scale). */
static void poison(uint8_t *buf, size_t len, const char *name, uint64_t elem, int use_inf) {
    hmti_gguf *g;
    ck_assert_int_eq(hmti_gguf_open_buffer(&g, buf, len), HMT_OK);
    const hmti_gguf_tensor *t = hmti_gguf_find_tensor(g, name);
    ck_assert_ptr_nonnull(t);
    uint8_t *at = buf + ((const uint8_t *)t->data - buf);
    const uint32_t f32 = use_inf ? 0xFF800000u : 0x7FC00001u;
    const uint16_t f16 = use_inf ? 0x7C00u : 0x7E01u, bf16 = use_inf ? 0x7F80u : 0x7FC1u;
    switch (t->type) {
    case T_F32: memcpy(at + elem * 4, &f32, 4); break;
    case T_F16: memcpy(at + elem * 2, &f16, 2); break;
    case T_BF16: memcpy(at + elem * 2, &bf16, 2); break;
    case T_Q8_0: memcpy(at + elem / 32 * 34, &f16, 2); break;
    default: ck_abort_msg("type %u", t->type);
    }
    hmti_gguf_close(g);
}

START_TEST(nonfinite_weights_are_refused) {
    const char *files[] = {"llama-f32.gguf", "llama-tied-f16.gguf", "llama-bf16.gguf",
                           "llama-q8.gguf"};
    const char *tensors[] = {"blk.1.ffn_down.weight", "token_embd.weight", "blk.0.attn_k.weight",
                             "output_norm.weight"};
    for (int f = 0; f < 4; f++) {
        size_t len;
        uint8_t *orig = hmt_test_read_file(hmt_test_data(files[f]), &len);
        ck_assert_ptr_nonnull(orig);
        for (int ti = 0; ti < 4; ti++) {
            uint8_t *buf = malloc(len);
            memcpy(buf, orig, len);
            const uint64_t elem = 3 + 9 * (uint64_t)ti; /* inside the smallest (64-wide) */
            poison(buf, len, tensors[ti], elem, ti & 1);
            const char *path = hmt_test_tmp_path(".gguf");
            ck_assert_int_eq(hmt_test_write_file(path, buf, len), 0);
            hmt_model *m = (hmt_model *)1;
            int rc = hmt_model_load(&m, path, NULL);
            const char *msg = hmt_last_error_msg();
            ck_assert_msg(rc == HMT_E_FORMAT, "%s %s: rc %d", files[f], tensors[ti], rc);
            ck_assert_ptr_null(m);
            ck_assert_msg(strstr(msg, tensors[ti]) && strstr(msg, ti & 1 ? "inf" : "NaN"),
                          "%s: %s", files[f], msg);
            remove(path);
            free(buf);
        }
        free(orig);
    }
}
END_TEST

START_TEST(nonfinite_adapter_tensors_are_refused) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    size_t len;
    uint8_t *orig = hmt_test_read_file(hmt_test_data("hmt-full-a.adapter.gguf"), &len);
    ck_assert_ptr_nonnull(orig);
    const char *tensors[] = {"hmt.summary_prompt", "hmt.memory_init", "hmt.recall.wq",
                             "hmt.recall.wk"};
    for (int ti = 0; ti < 4; ti++) {
        uint8_t *buf = malloc(len);
        memcpy(buf, orig, len);
        poison(buf, len, tensors[ti], 5, ti & 1);
        const char *path = hmt_test_tmp_path(".gguf");
        ck_assert_int_eq(hmt_test_write_file(path, buf, len), 0);
        hmt_adapter *a = (hmt_adapter *)1;
        ck_assert_int_eq(hmt_adapter_load(&a, m, path), HMT_E_FORMAT);
        ck_assert_ptr_null(a);
        const char *msg = hmt_last_error_msg();
        ck_assert_msg(strstr(msg, tensors[ti]) && strstr(msg, "element 5"), "%s", msg);
        remove(path);
        free(buf);
    }
    free(orig);
    hmt_model_free(m);
}
END_TEST

START_TEST(nonfinite_embedding_rows_are_refused) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    const int32_t d = hmt_model_n_embd(m);
    hmt_ctx *ctx;
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, NULL), HMT_OK);
    float *e = calloc(3 * (size_t)d, sizeof *e);
    for (int i = 0; i < 3 * d; i++) e[i] = 0.01f * (float)(i % 17);
    const float bad[2] = {NAN, -INFINITY};
    for (int k = 0; k < 2; k++) {
        e[d + 5] = bad[k];
        ck_assert_int_eq(hmt_ctx_eval(ctx, NULL, e, 3, NULL, NULL), HMT_E_INVAL);
        const char *msg = hmt_last_error_msg();
        ck_assert_msg(strstr(msg, "row 1") && strstr(msg, "column 5"), "%s", msg);
        ck_assert_int_eq(hmt_ctx_n_past(ctx), 0);
    }
    e[d + 5] = 0;
    ck_assert_int_eq(hmt_ctx_eval(ctx, NULL, e, 3, NULL, NULL), HMT_OK);
    free(e);
    hmt_ctx_free(ctx);
    hmt_model_free(m);
}
END_TEST

START_TEST(nonfinite_snapshot_is_refused) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    hmt_adapter *a;
    ck_assert_int_eq(hmt_adapter_load(&a, m, hmt_test_data("hmt-full-a.adapter.gguf")), HMT_OK);
    hmt_stream *st;
    ck_assert_int_eq(hmt_stream_create(&st, m, a, NULL), HMT_OK);
    hmt_token toks[21];
    for (int i = 0; i < 21; i++) toks[i] = 3 + i;
    ck_assert_int_eq(hmt_stream_feed(st, toks, 21), HMT_OK);
    size_t len;
    ck_assert_int_eq(hmt_stream_save(st, NULL, 0, &len), HMT_E_BUFFER);
    unsigned char *snap = malloc(len), *bad = malloc(len);
    ck_assert_int_eq(hmt_stream_save(st, snap, len, &len), HMT_OK);
    /* the arrays start after the 200-byte head with the open segment's,
     * previous segment's and sensory ids; then P, S, last M (d floats each) */
    int64_t ctr[16];
    memcpy(ctr, snap + 72, sizeof ctr);
    const size_t p_at = 200 + (size_t)(ctr[3] + ctr[7] + ctr[8]) * sizeof(hmt_token);
    const size_t d = (size_t)hmt_model_n_embd(m);
    const size_t where[3] = {p_at + 4 * 3, p_at + 4 * (2 * d + 1), len - 8 - 4 * 2}; /* P, M, logits */
    const char *field[3] = {"P", "last M", "logits"};
    for (int k = 0; k < 3; k++) {
        memcpy(bad, snap, len);
        const float nan = NAN;
        memcpy(bad + where[k], &nan, 4);
        uint64_t h = hmti_fnv1a(HMTI_FNV_INIT, bad, len - 8);
        memcpy(bad + len - 8, &h, 8);
        ck_assert_int_eq(hmt_stream_restore(st, bad, len), HMT_E_FORMAT);
        const char *msg = hmt_last_error_msg();
        ck_assert_msg(strstr(msg, field[k]) && strstr(msg, "not finite"), "%s", msg);
    }
    ck_assert_int_eq(hmt_stream_restore(st, snap, len), HMT_OK);
    ck_assert_int_eq(hmt_stream_feed(st, toks, 3), HMT_OK);
    free(snap), free(bad);
    hmt_stream_free(st);
    hmt_adapter_free(a);
    hmt_model_free(m);
}
END_TEST

START_TEST(nonfinite_float_params_are_refused) {
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    const hmt_param keys[] = {HMT_P_TEMPERATURE, HMT_P_TOP_P, HMT_P_KNN_LAMBDA,
                              HMT_P_KNN_TEMPERATURE, HMT_P_KNN_BETA, HMT_P_KNN_BIAS,
                              HMT_P_KNN_LAMBDA_MAX, HMT_P_DITTO_LAMBDA};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        double before;
        ck_assert_int_eq(hmt_params_get(p, keys[i], &before), HMT_OK);
        ck_assert_int_eq(hmt_params_set_float(p, keys[i], NAN), HMT_E_INVAL);
        ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "nan"));
        ck_assert_int_eq(hmt_params_set_float(p, keys[i], INFINITY), HMT_E_INVAL);
        ck_assert_int_eq(hmt_params_set_float(p, keys[i], -INFINITY), HMT_E_INVAL);
        double after;
        ck_assert_int_eq(hmt_params_get(p, keys[i], &after), HMT_OK);
        ck_assert(after == before);
    }
    hmt_params_free(p);
}
END_TEST

Suite *hmt_suite_safety(void);
Suite *hmt_suite_safety(void) {
    Suite *s = suite_create("safety");
    TCase *tc = tcase_create("nonfinite");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sampler_nonfinite_rule);
    tcase_add_test(tc, chain_names_the_source_of_a_nonfinite_logit);
    tcase_add_test(tc, knn_interpolation_follows_the_rule);
    tcase_add_test(tc, knn_freed_under_its_processor);
    tcase_add_test(tc, nonfinite_weights_are_refused);
    tcase_add_test(tc, nonfinite_adapter_tensors_are_refused);
    tcase_add_test(tc, nonfinite_embedding_rows_are_refused);
    tcase_add_test(tc, nonfinite_snapshot_is_refused);
    tcase_add_test(tc, nonfinite_float_params_are_refused);
    suite_add_tcase(s, tc);
    return s;
}
