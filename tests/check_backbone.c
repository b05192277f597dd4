/* The forward pass against the NumPy float64 reference (tests/reference/):
 * every test model × every golden case (batch, incremental chunks, input
 * embeddings, explicit positions), with 1 and 2 threads and a small n_batch
 * that forces internal splitting. Tolerances: tests/reference/README.md
 * (float32 vs float64 floor ~1e-5 at these sizes). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmt/hmt.h"
#include "kernels/kernels.h"
#include "util/golden.h"
#include "util/testutil.h"

#define TOL_LOGIT 1e-4
#define TOL_HIDDEN 5e-5
#define MAX_MODELS 32

typedef struct {
    char name[64], file[96], arch[16], wtype[16];
    long n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx_train, n_params, bos, eos;
    long n_ctx_short; /* LongRoPE: a context this long takes the short factors (S case) */
} manifest_entry;

static manifest_entry models[MAX_MODELS];
static int n_models;

static void read_manifest(void) {
    if (n_models) return;
    FILE *f = fopen(hmt_test_data("manifest.txt"), "r");
    ck_assert_msg(f != NULL, "missing %s (run make testdata)", hmt_test_data("manifest.txt"));
    char line[1024];
    while (fgets(line, sizeof line, f) && n_models < MAX_MODELS) {
        if (line[0] == '#' || line[0] == '\n') continue;
        manifest_entry *e = &models[n_models++];
        hmt_test_field(line, "name", e->name, sizeof e->name);
        hmt_test_field(line, "file", e->file, sizeof e->file);
        hmt_test_field(line, "arch", e->arch, sizeof e->arch);
        hmt_test_field(line, "wtype", e->wtype, sizeof e->wtype);
        e->n_vocab = hmt_test_field(line, "n_vocab", NULL, 0);
        e->n_embd = hmt_test_field(line, "n_embd", NULL, 0);
        e->n_layer = hmt_test_field(line, "n_layer", NULL, 0);
        e->n_head = hmt_test_field(line, "n_head", NULL, 0);
        e->n_head_kv = hmt_test_field(line, "n_head_kv", NULL, 0);
        e->n_ff = hmt_test_field(line, "n_ff", NULL, 0);
        e->n_ctx_train = hmt_test_field(line, "n_ctx_train", NULL, 0);
        e->n_params = hmt_test_field(line, "n_params", NULL, 0);
        e->bos = hmt_test_field(line, "bos", NULL, 0);
        e->eos = hmt_test_field(line, "eos", NULL, 0);
        e->n_ctx_short = hmt_test_field(line, "n_ctx_short", NULL, 0);
    }
    fclose(f);
}

/* Replay a golden case chunk by chunk in a context of n_ctx slots (0: the
 * model's); return max |Δ| of logits and hidden. */
static void replay(const hmt_golden *g, hmt_model *m, int threads, int n_batch, int n_ctx,
                   double *dl, double *dh) {
    float *l = malloc((size_t)g->n_rows * g->n_vocab * sizeof *l);
    float *h = malloc((size_t)g->n_rows * g->n_embd * sizeof *h);
    ck_assert(l && h);
    hmt_golden_replay_ctx(g, m, threads, n_batch, n_ctx, l, h);
    hmt_golden_compare(g, l, h, dl, dh);
    free(l);
    free(h);
}

START_TEST(matches_reference) {
    read_manifest();
    const int mi = _i / 4, ci = _i % 4;
    if (mi >= n_models) return;
    const manifest_entry *e = &models[mi];
    hmt_model *m;
    ck_assert_msg(hmt_model_load(&m, hmt_test_data(e->file), NULL) == HMT_OK, "%s: %s", e->file,
                  hmt_last_error_msg());
    char name[128];
    snprintf(name, sizeof name, "%s.%c.golden", e->name, "ABCD"[ci]);
    hmt_golden g;
    hmt_golden_read(&g, name);
    ck_assert_int_eq(g.n_vocab, hmt_model_n_vocab(m));
    /* Block-quantized weights (llama-q8): the prompt path for every chunk,
     * which computes on the exactly dequantized weights like the reference;
     * the decode path quantizes activations to 8 bits and is checked
     * against the matching reference in check_qmodel.c. */
    const int block =
        strcmp(e->wtype, "f32") && strcmp(e->wtype, "f16") && strcmp(e->wtype, "bf16");
    const int old_rows = hmti_matmul_set_decode_rows(block ? 0 : -1);
    static const int configs[][2] = {{1, 512}, {2, 512}, {2, 3}};
    double worst_l = 0, worst_h = 0;
    for (size_t k = 0; k < sizeof configs / sizeof configs[0]; k++) {
        double dl, dh;
        replay(&g, m, configs[k][0], configs[k][1], 0, &dl, &dh);
        worst_l = dl > worst_l ? dl : worst_l;
        worst_h = dh > worst_h ? dh : worst_h;
        if (!(dl <= TOL_LOGIT && dh <= TOL_HIDDEN)) hmti_matmul_set_decode_rows(old_rows);
        ck_assert_msg(dl <= TOL_LOGIT && dh <= TOL_HIDDEN,
                      "%s threads=%d n_batch=%d: max |dlogit| %.3g, |dhidden| %.3g", name,
                      configs[k][0], configs[k][1], dl, dh);
    }
    hmti_matmul_set_decode_rows(old_rows);
    /* HMT_TEST_REPORT=1: the measured errors (docs/MODELS.md's table) */
    if (getenv("HMT_TEST_REPORT"))
        printf("backbone %s: max |dlogit| %.2e, max |dhidden| %.2e\n", name, worst_l, worst_h);
    free(g.buf);
    hmt_model_free(m);
}
END_TEST

START_TEST(shape_queries_match_manifest) {
    read_manifest();
    ck_assert_int_ge(n_models, 8);
    for (int i = 0; i < n_models; i++) {
        const manifest_entry *e = &models[i];
        hmt_model *m;
        ck_assert_int_eq(hmt_model_load(&m, hmt_test_data(e->file), NULL), HMT_OK);
        ck_assert_str_eq(hmt_model_arch(m), e->arch);
        ck_assert_int_eq(hmt_model_n_vocab(m), e->n_vocab);
        ck_assert_int_eq(hmt_model_n_embd(m), e->n_embd);
        ck_assert_int_eq(hmt_model_n_layer(m), e->n_layer);
        ck_assert_int_eq(hmt_model_n_head(m), e->n_head);
        ck_assert_int_eq(hmt_model_n_head_kv(m), e->n_head_kv);
        ck_assert_int_eq(hmt_model_n_ff(m), e->n_ff);
        ck_assert_int_eq(hmt_model_n_ctx_train(m), e->n_ctx_train);
        ck_assert_uint_eq(hmt_model_n_params(m), (uint64_t)e->n_params);
        ck_assert_int_eq(hmt_model_token_bos(m), e->bos);
        ck_assert_int_eq(hmt_model_token_eos(m), e->eos);
        hmt_model_free(m);
    }
}
END_TEST

/* Input embeddings equal to a token's embedding row give that token's output. */
START_TEST(embedding_rows_equal_token_rows) {
    hmt_model *m;
    ck_assert_int_eq(hmt_model_load(&m, hmt_test_data("qwen2-f32.gguf"), NULL), HMT_OK);
    const int d = hmt_model_n_embd(m), V = hmt_model_n_vocab(m);
    hmt_token toks[3] = {5, 17, 42};
    float *emb = malloc(3 * (size_t)d * sizeof *emb), *ref = malloc((size_t)V * sizeof *ref);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(hmt_model_token_embedding(m, toks[i], emb + i * d, (size_t)d), HMT_OK);
    hmt_ctx *a, *b;
    ck_assert_int_eq(hmt_ctx_create(&a, m, NULL), HMT_OK);
    ck_assert_int_eq(hmt_ctx_create(&b, m, NULL), HMT_OK);
    ck_assert_int_eq(hmt_ctx_eval(a, toks, NULL, 3, NULL, NULL), HMT_OK);
    ck_assert_int_eq(hmt_ctx_eval(b, NULL, emb, 3, NULL, NULL), HMT_OK);
    ck_assert_mem_eq(hmt_ctx_logits(a, -1), hmt_ctx_logits(b, -1), (size_t)V * sizeof(float));
    ck_assert_mem_eq(hmt_ctx_hidden(a, -1), hmt_ctx_hidden(b, -1), (size_t)d * sizeof(float));
    free(emb);
    free(ref);
    hmt_ctx_free(a);
    hmt_ctx_free(b);
    hmt_model_free(m);
}
END_TEST

/* LongRoPE (phi3): a context no longer than the original one takes the
 * short factors (llama.cpp's rule, per context), the model's own context
 * (longer) the long ones (matches_reference); <name>.S.golden is case A
 * computed with the short factors. */
START_TEST(longrope_short_factors) {
    read_manifest();
    int n = 0;
    for (int i = 0; i < n_models; i++) {
        const manifest_entry *e = &models[i];
        if (e->n_ctx_short <= 0) continue;
        hmt_model *m;
        ck_assert_int_eq(hmt_model_load(&m, hmt_test_data(e->file), NULL), HMT_OK);
        char name[128];
        snprintf(name, sizeof name, "%.63s.S.golden", e->name);
        hmt_golden g;
        hmt_golden_read(&g, name);
        static const int configs[][2] = {{1, 512}, {2, 3}};
        for (size_t k = 0; k < sizeof configs / sizeof configs[0]; k++) {
            double dl, dh;
            replay(&g, m, configs[k][0], configs[k][1], (int)e->n_ctx_short, &dl, &dh);
            ck_assert_msg(dl <= TOL_LOGIT && dh <= TOL_HIDDEN,
                          "%s n_ctx=%ld threads=%d n_batch=%d: max |dlogit| %.3g, |dhidden| %.3g",
                          name, e->n_ctx_short, configs[k][0], configs[k][1], dl, dh);
            if (getenv("HMT_TEST_REPORT") && k == 0)
                printf("backbone %s (n_ctx %ld): max |dlogit| %.2e, max |dhidden| %.2e\n", name,
                       e->n_ctx_short, dl, dh);
        }
        /* one slot more than the original context: the long factors, which
         * the S golden must then miss (the choice is real) */
        double dl, dh;
        replay(&g, m, 1, 512, (int)e->n_ctx_short + 1, &dl, &dh);
        ck_assert_msg(dl > 1e-2, "%s at n_ctx %ld: |dlogit| %.3g, the long factors were not taken",
                      name, e->n_ctx_short + 1, dl);
        free(g.buf);
        hmt_model_free(m);
        n++;
    }
    ck_assert_int_ge(n, 1);
}
END_TEST

/* A prompt's and the next steps' logits do not depend on the thread count
 * (docs/API.md promises it): a 2051-row prompt in chunks of 512 on 3 and
 * 4 threads once split the F32 GEMM's panels into 16-row blocks, whose
 * libxsmm kernels sum in another order (|dlogit| up to 3.3e-6 against 1
 * thread). Also stored weights (the quantized and half prompt paths, the
 * decode kernels), BF16 compute and a half KV cache. */
static const struct {
    const char *model;
    int rows, compute, kv;
} THREAD_CASES[] = {
    {"llama-swa-f32.gguf", 2051, HMT_COMPUTE_F32, HMT_KV_F32},
    {"llama-q4km.gguf", 700, HMT_COMPUTE_F32, HMT_KV_F32},
    {"llama-q4_0.gguf", 700, HMT_COMPUTE_BF16, HMT_KV_F16},
    {"llama-q8.gguf", 700, HMT_COMPUTE_BF16, HMT_KV_F32},
    {"llama-linear-f16.gguf", 700, HMT_COMPUTE_F32, HMT_KV_BF16},
    {"llama-bf16.gguf", 700, HMT_COMPUTE_BF16, HMT_KV_F32},
};

START_TEST(logits_do_not_depend_on_threads) {
    enum { STEPS = 2 };
    const int n = THREAD_CASES[_i].rows;
    hmt_model *m = hmt_test_load_model(THREAD_CASES[_i].model);
    const int nv = hmt_model_n_vocab(m);
    hmt_token *t = malloc((size_t)(n + STEPS) * sizeof *t);
    float *one = malloc((size_t)nv * (STEPS + 1) * sizeof *one);
    for (int i = 0; i < n + STEPS; i++) t[i] = (hmt_token)((i * 7919 + 13) % nv);
    for (int threads = 1; threads <= 4; threads++) {
        hmt_params *p;
        ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
        ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, threads), HMT_OK);
        ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_CTX, n + STEPS), HMT_OK);
        ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_BATCH, 512), HMT_OK);
        ck_assert_int_eq(hmt_params_set_int(p, HMT_P_COMPUTE_TYPE, THREAD_CASES[_i].compute), HMT_OK);
        ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KV_TYPE, THREAD_CASES[_i].kv), HMT_OK);
        hmt_ctx *c;
        ck_assert_int_eq(hmt_ctx_create(&c, m, p), HMT_OK);
        for (int s = 0; s <= STEPS; s++) {
            ck_assert_int_eq(s ? hmt_ctx_eval_tokens(c, t + n + s - 1, 1, 0) : hmt_ctx_eval_tokens(c, t, n, 0),
                             HMT_OK);
            const float *l = hmt_ctx_logits(c, -1);
            ck_assert_ptr_nonnull(l);
            if (threads == 1)
                memcpy(one + (size_t)s * nv, l, (size_t)nv * sizeof *l);
            else
                ck_assert_msg(memcmp(one + (size_t)s * nv, l, (size_t)nv * sizeof *l) == 0,
                              "%s, %d threads: %s's logits differ from one thread's", THREAD_CASES[_i].model,
                              threads, s ? "a step" : "the prompt");
        }
        hmt_ctx_free(c);
        hmt_params_free(p);
    }
    free(t), free(one);
    hmt_model_free(m);
}
END_TEST

Suite *hmt_suite_backbone(void);
Suite *hmt_suite_backbone(void) {
    Suite *s = suite_create("backbone");
    TCase *tc = tcase_create("reference");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, shape_queries_match_manifest);
    tcase_add_loop_test(tc, matches_reference, 0, 4 * MAX_MODELS);
    tcase_add_test(tc, embedding_rows_equal_token_rows);
    tcase_add_test(tc, longrope_short_factors);
    tcase_add_loop_test(tc, logits_do_not_depend_on_threads, 0,
                        (int)(sizeof THREAD_CASES / sizeof THREAD_CASES[0]));
    suite_add_tcase(s, tc);
    return s;
}
