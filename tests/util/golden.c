#include "golden.h"

#include <check.h>
#include <math.h>
#include <string.h>

#include "testutil.h"

void hmt_golden_read(hmt_golden *g, const char *name) {
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

void hmt_golden_replay(const hmt_golden *g, hmt_model *m, int threads, int n_batch,
                       float *logits_out, float *hidden_out) {
    hmt_golden_replay_ctx(g, m, threads, n_batch, 0, logits_out, hidden_out);
}

void hmt_golden_replay_ctx(const hmt_golden *g, hmt_model *m, int threads, int n_batch,
                           int n_ctx, float *logits_out, float *hidden_out) {
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, threads), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_BATCH, n_batch), HMT_OK);
    if (n_ctx > 0) ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_CTX, n_ctx), HMT_OK);
    hmt_golden_replay_params(g, m, p, logits_out, hidden_out);
    hmt_params_free(p);
}

void hmt_golden_compare(const hmt_golden *g, const float *logits, const float *hidden, double *dl,
                        double *dh) {
    *dl = *dh = 0;
    for (size_t i = 0; i < (size_t)g->n_rows * g->n_vocab; i++) {
        double d = fabs((double)logits[i] - g->logits[i]);
        if (!(d <= *dl)) *dl = d; /* NaN propagates as a failure */
    }
    for (size_t i = 0; i < (size_t)g->n_rows * g->n_embd; i++) {
        double d = fabs((double)hidden[i] - g->hidden[i]);
        if (!(d <= *dh)) *dh = d;
    }
}

void hmt_golden_replay_params(const hmt_golden *g, hmt_model *m, const hmt_params *p,
                              float *logits_out, float *hidden_out) {
    hmt_ctx *ctx;
    ck_assert_msg(hmt_ctx_create(&ctx, m, p) == HMT_OK, "%s", hmt_last_error_msg());
    uint8_t outs[512];
    memset(outs, HMT_OUT_LOGITS | HMT_OUT_HIDDEN, sizeof outs);
    uint32_t row = 0, erow = 0;
    for (uint32_t c = 0; c < g->n_chunks; c++) {
        const uint32_t n = g->chunks[c];
        ck_assert_uint_le(n, sizeof outs);
        const int is_embd = g->tokens[row] < 0;
        int rc = hmt_ctx_eval(ctx, is_embd ? NULL : g->tokens + row,
                              is_embd ? g->embd + (size_t)erow * g->n_embd : NULL, n,
                              g->pos + row, outs);
        ck_assert_msg(rc == HMT_OK, "eval: %s", hmt_last_error_msg());
        for (uint32_t i = 0; i < n; i++) {
            const float *l = hmt_ctx_logits(ctx, (int32_t)i), *h = hmt_ctx_hidden(ctx, (int32_t)i);
            ck_assert_ptr_nonnull(l);
            ck_assert_ptr_nonnull(h);
            memcpy(logits_out + (size_t)(row + i) * g->n_vocab, l, g->n_vocab * sizeof *l);
            memcpy(hidden_out + (size_t)(row + i) * g->n_embd, h, g->n_embd * sizeof *h);
        }
        row += n;
        if (is_embd) erow += n;
    }
    ck_assert_int_eq(hmt_ctx_n_past(ctx), (int32_t)g->n_rows);
    hmt_ctx_free(ctx);
}
