/* Reference outputs computed through the C API, for tests/python/test_same_as_c.py
 * (built by check_python.sh against the library the Python tests load).
 *
 *   c_dump ctx    MODEL OUT tok...          every row's logits then hidden (float32)
 *   c_dump stream MODEL ADAPTER OUT tok...  feed one at a time + flush: every
 *                                           token's logits, then the final recall
 *                                           weights (float32) and segments (int64)
 * One thread, so results are bit-comparable with the same calls from Python. */
#include <hmt/hmt.h>
#include <stdio.h>
#include <stdlib.h>

static int die(const char *what) {
    fprintf(stderr, "c_dump: %s: %s\n", what, hmt_last_error_msg());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 5) return fprintf(stderr, "usage: see c_dump.c\n"), 2;
    const int is_stream = argv[1][0] == 's';
    const int first_tok = is_stream ? 5 : 4;
    if (argc <= first_tok) return 2;
    size_t n = (size_t)(argc - first_tok);
    hmt_token *toks = malloc(n * sizeof *toks);
    for (size_t i = 0; i < n; i++) toks[i] = atoi(argv[first_tok + (int)i]);
    hmt_model *m = NULL;
    hmt_params *p = NULL;
    if (hmt_model_load(&m, argv[2], NULL) || hmt_params_create(&p) ||
        hmt_params_set_int(p, HMT_P_N_THREADS, 1))
        return die("setup");
    FILE *f = fopen(argv[is_stream ? 4 : 3], "wb");
    if (!f) return 1;
    const int V = hmt_model_n_vocab(m), d = hmt_model_n_embd(m);
    if (!is_stream) {
        hmt_ctx *ctx = NULL;
        if (hmt_ctx_create(&ctx, m, p)) return die("ctx");
        uint8_t *outs = malloc(n);
        for (size_t i = 0; i < n; i++) outs[i] = HMT_OUT_LOGITS | HMT_OUT_HIDDEN;
        if (hmt_ctx_eval(ctx, toks, NULL, n, NULL, outs)) return die("eval");
        for (size_t i = 0; i < n; i++) fwrite(hmt_ctx_logits(ctx, (int32_t)i), 4, (size_t)V, f);
        for (size_t i = 0; i < n; i++) fwrite(hmt_ctx_hidden(ctx, (int32_t)i), 4, (size_t)d, f);
        free(outs);
        hmt_ctx_free(ctx);
    } else {
        hmt_adapter *a = NULL;
        hmt_stream *st = NULL;
        if (hmt_adapter_load(&a, m, argv[3]) || hmt_stream_create(&st, m, a, p)) return die("stream");
        for (size_t i = 0; i <= n; i++) {
            if (i < n ? hmt_stream_feed(st, toks + i, 1) : hmt_stream_flush(st)) return die("feed");
            int64_t b, e;
            hmt_stream_ready_range(st, &b, &e);
            for (int64_t t = b; t < e; t++) fwrite(hmt_stream_logits(st, t), 4, (size_t)V, f);
        }
        float w[64];
        int64_t s[64];
        size_t k = 0;
        if (hmt_stream_recall(st, w, s, 64, &k)) return die("recall");
        fwrite(w, 4, k, f);
        fwrite(s, 8, k, f);
        hmt_stream_free(st);
        hmt_adapter_free(a);
    }
    fclose(f);
    free(toks);
    hmt_params_free(p);
    hmt_model_free(m);
    return 0;
}
