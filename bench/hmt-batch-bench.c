/* hmt-batch-bench: decoding S sequences together (one hmt_ctx_eval_seqs call
 * of S rows per step) against decoding them one after another (S calls of
 * one row), in the same run, on two contexts holding the same prompts.
 *
 *   hmt-batch-bench -m MODEL [-s SEQS] [-p PROMPT] [-n STEPS] [-t THREADS]
 *
 * Every step feeds the same fixed random token to both contexts' sequence s
 * (no sampling: both paths see identical inputs), alternating which path
 * runs first, so drift on a shared machine hits both alike. Printed: each
 * path's tokens/s over all steps, the median of the per-step time ratios,
 * and the largest |Δlogit| between the two paths (the batched one computes
 * the weight products as one GEMM over S rows, the other as S GEMVs). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ceiling.h"
#include "hmt/hmt.h"

#define PROG "hmt-batch-bench"

static void usage(FILE *f) {
    fprintf(f, "usage: " PROG " -m MODEL [options]\n"
               "  -m PATH     GGUF model\n"
               "  -s N        sequences decoded together (default 8)\n"
               "  -p N        prompt tokens per sequence, evaluated untimed (default 32)\n"
               "  -n N        decode steps timed (default 32)\n"
               "  -t N        worker threads (default 2)\n"
               "  -h, --help  this help\n");
}

static int die(const char *what) {
    fprintf(stderr, PROG ": %s: %s\n", what, hmt_last_error_msg());
    return 1;
}

static int make_ctx(hmt_ctx **out, hmt_model *m, int n_seq, int n_ctx, int threads) {
    hmt_params *p;
    int rc = hmt_params_create(&p);
    if (!rc) rc = hmt_params_set_int(p, HMT_P_N_SEQ, n_seq);
    if (!rc) rc = hmt_params_set_int(p, HMT_P_N_CTX, n_ctx);
    if (!rc) rc = hmt_params_set_int(p, HMT_P_N_THREADS, threads);
    if (!rc) rc = hmt_ctx_create(out, m, p);
    hmt_params_free(p);
    return rc;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int S = 8, P = 32, N = 32, T = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "-m")) path = v;
        else if (!strcmp(a, "-s")) S = atoi(v);
        else if (!strcmp(a, "-p")) P = atoi(v);
        else if (!strcmp(a, "-n")) N = atoi(v);
        else if (!strcmp(a, "-t")) T = atoi(v);
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!path || S < 1 || S > 256 || P < 1 || N < 1 || T < 1) {
        usage(stderr);
        return 2;
    }
    hmt_model *m;
    if (hmt_model_load(&m, path, NULL)) return die(path);
    const int V = hmt_model_n_vocab(m);
    hmt_ctx *batched, *serial;
    if (make_ctx(&batched, m, S, P + N, T) || make_ctx(&serial, m, S, P + N, T))
        return die("context");
    hmt_token *tok = malloc((size_t)S * (P + N) * sizeof *tok);
    int32_t *seq = malloc((size_t)(S > P ? S : P) * sizeof *seq);
    double *ratio = malloc((size_t)N * sizeof *ratio);
    float *row = malloc((size_t)S * V * sizeof *row);
    if (!tok || !seq || !ratio || !row) return fprintf(stderr, PROG ": out of memory\n"), 1;
    hmtb_tokens(tok, (size_t)S * (P + N), V, 0x9e3779b97f4a7c15u); /* tok[s * (P + N) + t] */
    for (int s = 0; s < S; s++) { /* sequence s's prompt, in both contexts */
        for (int t = 0; t < P; t++) seq[t] = s;
        if (hmt_ctx_eval_seqs(batched, tok + (size_t)s * (P + N), NULL, seq, (size_t)P, NULL,
                              NULL) ||
            hmt_ctx_eval_seqs(serial, tok + (size_t)s * (P + N), NULL, seq, (size_t)P, NULL,
                              NULL))
            return die("prompt");
    }
    for (int s = 0; s < S; s++) seq[s] = s;
    uint8_t *outs = malloc((size_t)S);
    memset(outs, HMT_OUT_LOGITS, (size_t)S);
    hmt_token *step = malloc((size_t)S * sizeof *step);
    double t_batched = 0, t_serial = 0, worst = 0;
    for (int k = 0; k < N; k++) {
        for (int s = 0; s < S; s++) step[s] = tok[(size_t)s * (P + N) + P + k];
        double tb = 0, ts = 0;
        for (int pass = 0; pass < 2; pass++) {
            if ((pass == 0) == (k % 2 == 0)) {
                const double t0 = hmtb_now();
                if (hmt_ctx_eval_seqs(batched, step, NULL, seq, (size_t)S, NULL, outs))
                    return die("batched step");
                tb = hmtb_now() - t0;
            } else {
                const double t0 = hmtb_now();
                for (int s = 0; s < S; s++) {
                    if (hmt_ctx_eval_seqs(serial, step + s, NULL, seq + s, 1, NULL, outs))
                        return die("serial step");
                    memcpy(row + (size_t)s * V, hmt_ctx_logits(serial, 0), (size_t)V * sizeof *row);
                }
                ts = hmtb_now() - t0;
            }
        }
        for (int s = 0; s < S; s++) {
            const float *b = hmt_ctx_logits(batched, s), *r = row + (size_t)s * V;
            for (int v = 0; v < V; v++) {
                const double d = fabs((double)b[v] - r[v]);
                if (!(d <= worst)) worst = d;
            }
        }
        t_batched += tb, t_serial += ts;
        ratio[k] = ts / tb;
    }
    printf("model %s, %d sequences, prompt %d, %d steps, %d threads\n", path, S, P, N, T);
    printf("batched  %9.1f tok/s\n", (double)S * N / t_batched);
    printf("serial   %9.1f tok/s\n", (double)S * N / t_serial);
    printf("speedup  %9.2fx (total time), median per-step %.2fx\n", t_serial / t_batched,
           hmtb_median(ratio, N));
    printf("max |dlogit| batched vs serial: %.3g\n", worst);
    free(tok), free(seq), free(ratio), free(row), free(outs), free(step);
    hmt_ctx_free(batched);
    hmt_ctx_free(serial);
    hmt_model_free(m);
    return 0;
}
