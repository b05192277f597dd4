/* Half-precision KV caches (HMT_P_KV_TYPE): contexts of every KV type
 * against the NumPy reference that rounds each cached key and value the
 * same way (tests/reference/kv_golden.py), with 1 and 2 threads and split
 * batches, up to a 300-slot case (a 280-row prompt, then decode steps
 * and rows past HMTI_ATT_ROWS; also on an F32 cache against the exact
 * reference); the key's checks; states and snapshots keep the cache's
 * type and refuse another. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backbone/attention.h"
#include "hmt/hmt.h"
#include "kernels/kernels.h"
#include "util/golden.h"
#include "util/testutil.h"

#define TOL_LOGIT 1e-4
#define MAX_CASES 32
#define KV_CTX 317 /* slots: case L has 300 rows; not a whole number of 32-slot key blocks */

typedef struct {
    char file[96], model[96], type[8];
    double ref_dl; /* what the rounding itself costs against the exact reference */
} kv_case;

static kv_case cases[MAX_CASES];
static int n_cases;

static void read_manifest(void) {
    if (n_cases) return;
    FILE *f = fopen(hmt_test_data("kv-manifest.txt"), "r");
    ck_assert_msg(f != NULL, "missing %s (run make testdata)", hmt_test_data("kv-manifest.txt"));
    char line[512], num[32];
    while (fgets(line, sizeof line, f) && n_cases < MAX_CASES) {
        if (line[0] == '#' || line[0] == '\n') continue;
        kv_case *c = &cases[n_cases++];
        hmt_test_field(line, "file", c->file, sizeof c->file);
        hmt_test_field(line, "model", c->model, sizeof c->model);
        hmt_test_field(line, "kv_type", c->type, sizeof c->type);
        hmt_test_field(line, "ref_kv_dlogit", num, sizeof num);
        c->ref_dl = atof(num);
    }
    fclose(f);
}

static int kv_type_of(const char *name) {
    if (!strcmp(name, "f32")) return HMT_KV_F32;
    if (!strcmp(name, "f16")) return HMT_KV_F16;
    ck_assert_str_eq(name, "bf16");
    return HMT_KV_BF16;
}

static hmt_params *ctx_params(int kv_type, int threads, int n_batch) {
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KV_TYPE, kv_type), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_CTX, KV_CTX), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, threads), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_BATCH, n_batch), HMT_OK);
    return p;
}

START_TEST(matches_rounded_reference) {
    read_manifest();
    if (_i >= n_cases) return;
    const kv_case *c = &cases[_i];
    hmt_model *m = hmt_test_load_model(c->model);
    hmt_golden g;
    hmt_golden_read(&g, c->file);
    float *l = malloc((size_t)g.n_rows * g.n_vocab * sizeof *l);
    float *h = malloc((size_t)g.n_rows * g.n_embd * sizeof *h);
    static const int configs[][2] = {{1, 512}, {2, 512}, {2, 7}};
    double worst = 0;
    for (size_t k = 0; k < sizeof configs / sizeof configs[0]; k++) {
        hmt_params *p = ctx_params(kv_type_of(c->type), configs[k][0], configs[k][1]);
        hmt_golden_replay_params(&g, m, p, l, h);
        hmt_params_free(p);
        double dl, dh;
        hmt_golden_compare(&g, l, h, &dl, &dh);
        /* The C code rounds its float32 keys, the reference its float64 ones:
         * where they straddle a rounding boundary (a few of the tens of
         * thousands of cached values) the two caches differ by one unit in
         * the last place, so the bound is relative to what the rounding
         * itself moves: three times closer to the rounded reference than the
         * exact one is (measured: 5 to 6000 times; HMT_TEST_REPORT=1). */
        const double tol = fmax(TOL_LOGIT, c->ref_dl / 3);
        ck_assert_msg(dl <= tol, "%s threads=%d n_batch=%d: max |dlogit| %.3g > %.3g (|dhidden| "
                      "%.3g)", c->file, configs[k][0], configs[k][1], dl, tol, dh);
        worst = dl > worst ? dl : worst;
    }
    /* HMT_TEST_REPORT=1: docs/API.md's table of what each type costs */
    if (getenv("HMT_TEST_REPORT"))
        printf("kvtype %s: max |dlogit| %.2e vs the rounded reference; the rounding costs "
               "%.2e\n", c->file, worst, c->ref_dl);
    free(l), free(h), free(g.buf);
    hmt_model_free(m);
}
END_TEST

/* A decode step whose KV groups do not split evenly over the threads runs
 * as two jobs past HMTI_SPLIT_MACS (attention.c, splits_step): its logits
 * equal one thread's bit for bit, for every cache type, with one KV head
 * on 2 threads and two on 3, sliding windows included (llama-swa, gemma3).
 * The prompt, just past the threshold so that every step splits, runs on
 * one thread in both contexts: only the steps' thread counts differ. */
START_TEST(split_decode_equals_one_thread) {
    static const struct {
        const char *model;
        int threads;
    } split_cases[] = {{"llama-hd128-f32.gguf", 2}, {"llama-swa-f32.gguf", 3}, {"gemma3-f32.gguf", 3}};
    enum { STEPS = 5 };
    for (size_t ci = 0; ci < sizeof split_cases / sizeof split_cases[0]; ci++) {
        hmt_model *m = hmt_test_load_model(split_cases[ci].model);
        const int n = (int)(HMTI_SPLIT_MACS / ((int64_t)m->n_head * m->head_dim)) + 3, nv = m->n_vocab;
        hmt_token *t = malloc((size_t)(n + STEPS) * sizeof *t);
        float *one = malloc((size_t)nv * STEPS * sizeof *one);
        for (int i = 0; i < n + STEPS; i++) t[i] = (hmt_token)((i * 7919 + 13) % nv);
        for (int kv = HMT_KV_F32; kv <= HMT_KV_BF16; kv++)
            for (int threads = 1; threads <= split_cases[ci].threads; threads += split_cases[ci].threads - 1) {
                hmt_params *p = ctx_params(kv, 1, 512);
                ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_CTX, n + STEPS), HMT_OK);
                hmt_ctx *c;
                ck_assert_int_eq(hmt_ctx_create(&c, m, p), HMT_OK);
                ck_assert_int_eq(hmt_ctx_eval_tokens(c, t, n, 0), HMT_OK);
                ck_assert_int_eq(hmt_ctx_set_int(c, HMT_P_N_THREADS, threads), HMT_OK);
                for (int s = 0; s < STEPS; s++) {
                    ck_assert_int_eq(hmt_ctx_eval_tokens(c, t + n + s, 1, 0), HMT_OK);
                    const float *l = hmt_ctx_logits(c, 0);
                    if (threads == 1)
                        memcpy(one + (size_t)s * nv, l, (size_t)nv * sizeof *l);
                    else
                        ck_assert_msg(memcmp(one + (size_t)s * nv, l, (size_t)nv * sizeof *l) == 0,
                                      "%s kv type %d, %d threads: step %d's logits differ from one thread's",
                                      split_cases[ci].model, kv, threads, s);
                }
                hmt_ctx_free(c);
                hmt_params_free(p);
            }
        free(t), free(one);
        hmt_model_free(m);
    }
}
END_TEST

/* The key is checked, read back, and refused where nothing reads it. */
START_TEST(key_is_checked) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KV_TYPE, 3), HMT_E_INVAL);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KV_TYPE, -1), HMT_E_INVAL);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KV_TYPE, HMT_KV_BF16), HMT_OK);
    hmt_ctx *ctx;
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_OK);
    double v = -1;
    ck_assert_int_eq(hmt_ctx_get(ctx, HMT_P_KV_TYPE, &v), HMT_OK);
    ck_assert(v == HMT_KV_BF16);
    /* fixed at creation */
    ck_assert_int_eq(hmt_ctx_set_int(ctx, HMT_P_KV_TYPE, HMT_KV_F32), HMT_E_INVAL);
    hmt_ctx_free(ctx);
    hmt_sampler *s;
    ck_assert_int_eq(hmt_sampler_create(&s, p), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "kv_type"));
    hmt_params_free(p);
    hmt_model_free(m);
}
END_TEST

static hmt_ctx *new_ctx(hmt_model *m, int kv_type) {
    hmt_params *p = ctx_params(kv_type, 1, 512);
    hmt_ctx *c;
    ck_assert_int_eq(hmt_ctx_create(&c, m, p), HMT_OK);
    hmt_params_free(p);
    return c;
}

static void eval_logits(hmt_ctx *c, const hmt_token *t, int n) {
    uint8_t outs[40] = {0};
    outs[n - 1] = HMT_OUT_LOGITS;
    ck_assert_msg(hmt_ctx_eval(c, t, NULL, n, NULL, outs) == HMT_OK, "%s", hmt_last_error_msg());
}

/* A half cache's state is half an F32 one's cache bytes, restores
 * bit-identically into a context of its type and is refused by another. */
START_TEST(states_keep_the_type) {
    hmt_model *m = hmt_test_load_model("qwen3-f32.gguf");
    const int n_vocab = hmt_model_n_vocab(m);
    hmt_token t[24];
    uint64_t rng = 9;
    for (int i = 0; i < 24; i++) t[i] = (hmt_token)(hmt_test_urand(&rng) * n_vocab);
    size_t len[3];
    unsigned char *st[3];
    for (int k = 0; k < 3; k++) {
        hmt_ctx *c = new_ctx(m, k);
        eval_logits(c, t, 20);
        ck_assert_int_eq(hmt_ctx_save(c, NULL, 0, &len[k]), HMT_E_BUFFER);
        st[k] = malloc(len[k]);
        ck_assert_int_eq(hmt_ctx_save(c, st[k], len[k], &len[k]), HMT_OK);
        hmt_ctx_free(c);
    }
    ck_assert_uint_eq(len[HMT_KV_F16], len[HMT_KV_BF16]);
    ck_assert_uint_lt(len[HMT_KV_F16], len[HMT_KV_F32]);
    for (int k = 1; k < 3; k++) {
        /* restored, it continues as the context it was saved from */
        hmt_ctx *a = new_ctx(m, k), *b = new_ctx(m, k);
        ck_assert_int_eq(hmt_ctx_restore(b, st[k], len[k]), HMT_OK);
        eval_logits(a, t, 20);
        eval_logits(a, t + 20, 4);
        eval_logits(b, t + 20, 4);
        ck_assert_mem_eq(hmt_ctx_logits(a, 3), hmt_ctx_logits(b, 3), (size_t)n_vocab * sizeof(float));
        /* another type: refused by name, nothing changed */
        ck_assert_int_eq(hmt_ctx_restore(b, st[3 - k], len[3 - k]), HMT_E_INVAL);
        ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), k == HMT_KV_F16 ? "its KV cache is BF16"
                                                                           : "its KV cache is F16"));
        ck_assert_int_eq(hmt_ctx_restore(b, st[0], len[0]), HMT_E_INVAL);
        ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "its KV cache is F32"));
        ck_assert_int_eq(hmt_ctx_n_past(b), 24);
        hmt_ctx_free(a), hmt_ctx_free(b);
    }
    for (int k = 0; k < 3; k++) free(st[k]);
    hmt_model_free(m);
}
END_TEST

/* A forked half-cache sequence continues like a fresh context. */
START_TEST(sequences_fork_half_caches) {
    hmt_model *m = hmt_test_load_model("gemma2-f32.gguf");
    const int n_vocab = hmt_model_n_vocab(m);
    hmt_params *p = ctx_params(HMT_KV_F16, 1, 512);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_SEQ, 2), HMT_OK);
    hmt_ctx *two;
    ck_assert_int_eq(hmt_ctx_create(&two, m, p), HMT_OK);
    hmt_params_free(p);
    hmt_ctx *one = new_ctx(m, HMT_KV_F16);
    hmt_token t[13];
    uint64_t rng = 5;
    for (int i = 0; i < 13; i++) t[i] = (hmt_token)(hmt_test_urand(&rng) * n_vocab);
    eval_logits(two, t, 12);
    ck_assert_int_eq(hmt_ctx_seq_copy(two, 0, 1), HMT_OK);
    const int32_t seq = 1;
    const uint8_t out = HMT_OUT_LOGITS;
    ck_assert_int_eq(hmt_ctx_eval_seqs(two, t + 12, NULL, &seq, 1, NULL, &out), HMT_OK);
    eval_logits(one, t, 12);
    eval_logits(one, t + 12, 1);
    ck_assert_mem_eq(hmt_ctx_logits(two, 0), hmt_ctx_logits(one, 0), (size_t)n_vocab * sizeof(float));
    hmt_ctx_free(one), hmt_ctx_free(two);
    hmt_model_free(m);
}
END_TEST

static hmt_stream *sinks_stream(hmt_model *m, int kv_type) {
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_MODE, HMT_MODE_SINKS), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_WINDOW, 12), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_SINKS, 2), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KV_TYPE, kv_type), HMT_OK);
    hmt_stream *s;
    ck_assert_msg(hmt_stream_create(&s, m, NULL, p) == HMT_OK, "%s", hmt_last_error_msg());
    hmt_params_free(p);
    return s;
}

/* Streams take the key; a sinks stream shifts its half cache (its keys turned
 * and rounded again) and stays within the F32 stream's logits by what the
 * rounding costs; snapshots keep the type and refuse another. */
START_TEST(streams_take_half_caches) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    const int n_vocab = hmt_model_n_vocab(m);
    hmt_stream *h = sinks_stream(m, HMT_KV_F16), *f = sinks_stream(m, HMT_KV_F32);
    hmt_token t[40];
    uint64_t rng = 3;
    for (int i = 0; i < 40; i++) t[i] = (hmt_token)(hmt_test_urand(&rng) * n_vocab);
    ck_assert_int_eq(hmt_stream_feed(h, t, 30), HMT_OK);
    ck_assert_int_eq(hmt_stream_feed(f, t, 30), HMT_OK);
    double worst = 0;
    int64_t first, end;
    hmt_stream_ready_range(f, &first, &end);
    ck_assert_int_eq(end - first, 30);
    for (int64_t i = first; i < end; i++) {
        const float *a = hmt_stream_logits(h, i), *b = hmt_stream_logits(f, i);
        for (int v = 0; v < n_vocab; v++) worst = fmax(worst, fabs((double)a[v] - b[v]));
    }
    ck_assert_msg(worst > 0 && worst < 1e-2, "F16 vs F32 sinks stream: %.3g", worst);
    size_t len, lf;
    ck_assert_int_eq(hmt_stream_save(h, NULL, 0, &len), HMT_E_BUFFER);
    unsigned char *b = malloc(len);
    ck_assert_int_eq(hmt_stream_save(h, b, len, &len), HMT_OK);
    ck_assert_int_eq(hmt_stream_save(f, NULL, 0, &lf), HMT_E_BUFFER);
    ck_assert_uint_lt(len, lf);
    ck_assert_int_eq(hmt_stream_restore(f, b, len), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "KV type"));
    hmt_stream *r = sinks_stream(m, HMT_KV_F16);
    ck_assert_int_eq(hmt_stream_restore(r, b, len), HMT_OK);
    ck_assert_int_eq(hmt_stream_feed(h, t + 30, 10), HMT_OK);
    ck_assert_int_eq(hmt_stream_feed(r, t + 30, 10), HMT_OK);
    const int64_t last = hmt_stream_n_ready(h) - 1;
    ck_assert_mem_eq(hmt_stream_logits(h, last), hmt_stream_logits(r, last),
                     (size_t)n_vocab * sizeof(float));
    free(b);
    hmt_stream_free(h), hmt_stream_free(f), hmt_stream_free(r);
    hmt_model_free(m);
}
END_TEST

Suite *hmt_suite_kvtype(void);
Suite *hmt_suite_kvtype(void) {
    Suite *s = suite_create("kvtype");
    TCase *tc = tcase_create("kvtype");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, matches_rounded_reference, 0, MAX_CASES);
    tcase_add_test(tc, key_is_checked);
    tcase_add_test(tc, split_decode_equals_one_thread);
    tcase_add_test(tc, states_keep_the_type);
    tcase_add_test(tc, sequences_fork_half_caches);
    tcase_add_test(tc, streams_take_half_caches);
    suite_add_tcase(s, tc);
    return s;
}
