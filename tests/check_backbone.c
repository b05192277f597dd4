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
#include "util/testutil.h"

#define TOL_LOGIT 1e-4
#define TOL_HIDDEN 5e-5
#define MAX_MODELS 16

typedef struct {
    char name[64], file[96], arch[16];
    long n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx_train, n_params, bos, eos;
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
    }
    fclose(f);
}

/* "HMTG" v1 golden case, see tests/reference/README.md. */
typedef struct {
    uint32_t n_rows, n_vocab, n_embd, n_embd_rows, n_chunks;
    int32_t *tokens, *pos;
    uint32_t *chunks;
    float *embd, *logits, *hidden;
    void *buf;
} golden;

static void golden_read(golden *g, const char *name) {
    size_t len;
    unsigned char *b = hmt_test_read_file(hmt_test_data(name), &len);
    ck_assert_msg(b != NULL, "missing golden file %s", name);
    ck_assert(len >= 28 && !memcmp(b, "HMTG", 4));
    uint32_t h[6];
    memcpy(h, b + 4, sizeof h);
    ck_assert_uint_eq(h[0], 1);
    g->n_rows = h[1], g->n_vocab = h[2], g->n_embd = h[3], g->n_embd_rows = h[4], g->n_chunks = h[5];
    unsigned char *p = b + 28;
    g->tokens = (int32_t *)p, p += 4 * g->n_rows;
    g->pos = (int32_t *)p, p += 4 * g->n_rows;
    g->chunks = (uint32_t *)p, p += 4 * g->n_chunks;
    g->embd = (float *)p, p += 4 * (size_t)g->n_embd_rows * g->n_embd;
    g->logits = (float *)p, p += 4 * (size_t)g->n_rows * g->n_vocab;
    g->hidden = (float *)p, p += 4 * (size_t)g->n_rows * g->n_embd;
    ck_assert_uint_eq((size_t)(p - b), len);
    g->buf = b;
}

/* Replay a golden case chunk by chunk; return max |Δ| of logits and hidden. */
static void replay(const golden *g, hmt_model *m, int threads, int n_batch, double *dl, double *dh) {
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, threads), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_BATCH, n_batch), HMT_OK);
    hmt_ctx *ctx;
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_OK);
    hmt_params_free(p);
    uint8_t outs[64];
    memset(outs, HMT_OUT_LOGITS | HMT_OUT_HIDDEN, sizeof outs);
    *dl = *dh = 0;
    uint32_t row = 0, erow = 0;
    for (uint32_t c = 0; c < g->n_chunks; c++) {
        const uint32_t n = g->chunks[c];
        ck_assert_uint_le(n, sizeof outs);
        const int is_embd = g->tokens[row] < 0;
        int rc = hmt_ctx_eval(ctx, n, is_embd ? NULL : g->tokens + row,
                              is_embd ? g->embd + (size_t)erow * g->n_embd : NULL, g->pos + row, outs);
        ck_assert_msg(rc == HMT_OK, "eval: %s", hmt_ctx_errmsg(ctx));
        for (uint32_t i = 0; i < n; i++) {
            const float *l = hmt_ctx_logits(ctx, (int32_t)i), *h = hmt_ctx_hidden(ctx, (int32_t)i);
            ck_assert_ptr_nonnull(l);
            ck_assert_ptr_nonnull(h);
            for (uint32_t v = 0; v < g->n_vocab; v++) {
                double d = fabs((double)l[v] - g->logits[(size_t)(row + i) * g->n_vocab + v]);
                if (!(d <= *dl)) *dl = d; /* NaN propagates as a failure */
            }
            for (uint32_t e = 0; e < g->n_embd; e++) {
                double d = fabs((double)h[e] - g->hidden[(size_t)(row + i) * g->n_embd + e]);
                if (!(d <= *dh)) *dh = d;
            }
        }
        row += n;
        if (is_embd) erow += n;
    }
    ck_assert_int_eq(hmt_ctx_n_past(ctx), (int32_t)g->n_rows);
    hmt_ctx_free(ctx);
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
    golden g;
    golden_read(&g, name);
    ck_assert_int_eq(g.n_vocab, hmt_model_n_vocab(m));
    static const int configs[][2] = {{1, 512}, {2, 512}, {2, 3}};
    for (size_t k = 0; k < sizeof configs / sizeof configs[0]; k++) {
        double dl, dh;
        replay(&g, m, configs[k][0], configs[k][1], &dl, &dh);
        ck_assert_msg(dl <= TOL_LOGIT && dh <= TOL_HIDDEN,
                      "%s threads=%d n_batch=%d: max |dlogit| %.3g, |dhidden| %.3g", name,
                      configs[k][0], configs[k][1], dl, dh);
    }
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
    ck_assert_int_eq(hmt_ctx_eval(a, 3, toks, NULL, NULL, NULL), HMT_OK);
    ck_assert_int_eq(hmt_ctx_eval(b, 3, NULL, emb, NULL, NULL), HMT_OK);
    ck_assert_mem_eq(hmt_ctx_logits(a, -1), hmt_ctx_logits(b, -1), (size_t)V * sizeof(float));
    ck_assert_mem_eq(hmt_ctx_hidden(a, -1), hmt_ctx_hidden(b, -1), (size_t)d * sizeof(float));
    free(emb);
    free(ref);
    hmt_ctx_free(a);
    hmt_ctx_free(b);
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
    suite_add_tcase(s, tc);
    return s;
}
