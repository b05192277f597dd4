/* hmt-bench: prompt-processing and decode throughput of a GGUF model, each
 * printed as a ratio against ceilings measured in the same run on the same
 * machine: the best libxsmm GEMM rate (→ FP32 roofline in tokens/s) and the
 * streaming-read memory bandwidth (→ decode bound), plus the plain-loop
 * reference forward (bench/naive_forward.h) as the naive baseline.
 *
 *   hmt-bench -m MODEL [-t THREADS] [-p PROMPT_TOKENS] [-n DECODE_TOKENS] [-r REPEATS]
 *
 * Figures are medians over repeats, after a warm-up run, because this class
 * of machine drifts by tens of percent between runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ceiling.h"
#include "hmt/hmt.h"
#include "naive_forward.h"

static void check(int rc, const char *what) {
    if (rc == HMT_OK) return;
    fprintf(stderr, "hmt-bench: %s: %s (%s)\n", what, hmt_last_error_msg(), hmt_strerror(rc));
    exit(1);
}

/* Useful FLOPs per token of an n-token prompt with last-token logits only
 * (the convention of docs/performance: causal attention at average context
 * (n+1)/2, the LM head once per prompt). */
static double prompt_flops_per_token(const hmt_model *m, int n) {
    const double d = m->n_embd, hd = m->head_dim, ff = m->n_ff;
    const double qd = m->n_head * hd, kvd = m->n_head_kv * hd;
    const double linear = 2 * d * (qd + 2 * kvd) + 2 * qd * d + 6 * d * ff;
    const double attn = 4 * m->n_head * hd * (n + 1) / 2.0;
    return m->n_layer * (linear + attn) + 2.0 * m->n_vocab * d / n;
}

/* Bytes a decode step must stream: every packed weight once. */
static double decode_bytes_per_token(const hmt_model *m) {
    double b = (double)m->output.nbytes;
    for (int l = 0; l < m->n_layer; l++) {
        const hmti_layer *L = &m->layers[l];
        b += (double)(L->wqkv.nbytes + L->wo.nbytes + L->gate_up.nbytes + L->down.nbytes);
    }
    return b;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int threads = 2, n_prompt = 256, n_decode = 32, repeats = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: hmt-bench -m MODEL [-t THREADS=2] [-p PROMPT=256] [-n DECODE=32] [-r REPEATS=5]\n");
            return 0;
        }
        if (!v) {
            fprintf(stderr, "hmt-bench: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "-m")) path = v;
        else if (!strcmp(a, "-t")) threads = atoi(v);
        else if (!strcmp(a, "-p")) n_prompt = atoi(v);
        else if (!strcmp(a, "-n")) n_decode = atoi(v);
        else if (!strcmp(a, "-r")) repeats = atoi(v);
        else {
            fprintf(stderr, "hmt-bench: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    const char *bad = !path ? "-m MODEL is required"
                      : threads < 1 ? "-t must be a whole number >= 1"
                      : n_prompt < 1 ? "-p must be a whole number >= 1"
                      : n_decode < 1 ? "-n must be a whole number >= 1"
                      : repeats < 1 || repeats > 100 ? "-r must be a whole number in [1, 100]"
                                                     : NULL;
    if (bad) {
        fprintf(stderr, "hmt-bench: %s\n"
                        "usage: hmt-bench -m MODEL [-t THREADS] [-p PROMPT] [-n DECODE] [-r REPEATS]\n",
                bad);
        return 2;
    }

    hmt_model *m;
    check(hmt_model_load(&m, path, NULL), "load");
    hmt_params *p;
    check(hmt_params_create(&p), "params");
    check(hmt_params_set_int(p, HMT_P_N_THREADS, threads), "threads");
    check(hmt_params_set_int(p, HMT_P_N_CTX, n_prompt + n_decode + 1), "n_ctx");
    hmt_ctx *ctx;
    check(hmt_ctx_create(&ctx, m, p), "context");
    printf("model %s: %s, %.1f M params, d %d, %d layers, %d/%d heads, ff %d, vocab %d\n", path,
           hmt_model_arch(m), hmt_model_n_params(m) / 1e6, m->n_embd, m->n_layer, m->n_head,
           m->n_head_kv, m->n_ff, m->n_vocab);
    printf("threads %d, prompt %d tokens, decode %d tokens, %d repeats (medians)\n\n", threads,
           n_prompt, n_decode, repeats);

    hmt_token *toks = malloc((size_t)(n_prompt + n_decode) * sizeof *toks);
    if (!toks) return 1;
    for (int i = 0; i < n_prompt + n_decode; i++) toks[i] = (hmt_token)((i * 7919 + 13) % m->n_vocab);

    /* ceilings, measured before and after the runs on this machine; the
     * higher is used, so the ratios err low */
    double gemm = hmtb_gemm_ceiling(threads, 0.2, 5, NULL, NULL, NULL);
    double bw = hmtb_stream_read_gbs(threads, (size_t)512 << 20, 5);

    double *pp = malloc(sizeof(double) * (size_t)repeats), *tg = malloc(sizeof(double) * (size_t)repeats);
    for (int r = -1; r < repeats; r++) { /* r = -1: warm-up (page faults, JIT) */
        check(hmt_ctx_kv_clear(ctx), "clear");
        double t0 = hmtb_now();
        check(hmt_ctx_eval_tokens(ctx, toks, (size_t)n_prompt, 0), "prompt");
        double t1 = hmtb_now();
        for (int i = 0; i < n_decode; i++)
            check(hmt_ctx_eval_tokens(ctx, toks + n_prompt + i, 1, 0), "decode");
        double t2 = hmtb_now();
        if (r >= 0) {
            pp[r] = n_prompt / (t1 - t0);
            tg[r] = n_decode / (t2 - t1);
        }
    }
    const double gemm2 = hmtb_gemm_ceiling(threads, 0.2, 5, NULL, NULL, NULL);
    const double bw2 = hmtb_stream_read_gbs(threads, (size_t)512 << 20, 5);
    if (gemm2 > gemm) gemm = gemm2;
    if (bw2 > bw) bw = bw2;
    const double pp_tps = hmtb_median(pp, repeats), tg_tps = hmtb_median(tg, repeats);

    /* naive baseline: plain loops, one token at a time, one thread */
    naive_model nm;
    double naive_tps = 0;
    const int n_naive = 8;
    if (naive_init(&nm, m, n_naive) == 0) {
        float *logits = malloc((size_t)m->n_vocab * sizeof *logits);
        double t0 = hmtb_now();
        for (int i = 0; i < n_naive; i++) naive_forward_token(&nm, toks[i], i, logits);
        naive_tps = n_naive / (hmtb_now() - t0);
        free(logits);
        naive_free(&nm);
    }

    const double fpt = prompt_flops_per_token(m, n_prompt);
    const double roof = gemm * 1e9 / fpt;
    const double bpt = decode_bytes_per_token(m);
    const double bound = bw * 1e9 / bpt;
    printf("ceilings   GEMM %.1f GFLOP/s (best libxsmm tile, %d threads), stream read %.1f GB/s\n",
           gemm, threads, bw);
    printf("prompt     %.1f MFLOP/token -> FP32 roofline %.0f tok/s\n", fpt / 1e6, roof);
    printf("decode     %.1f MB/token -> bandwidth bound %.1f tok/s\n\n", bpt / 1e6, bound);
    printf("%-24s %10s %12s %12s\n", "", "tok/s", "of ceiling", "vs naive");
    printf("%-24s %10.1f %11.1f%% %11.1fx\n", "prompt processing", pp_tps, 100 * pp_tps / roof,
           naive_tps > 0 ? pp_tps / naive_tps : 0);
    printf("%-24s %10.1f %11.1f%% %11.1fx\n", "decode (1 token)", tg_tps, 100 * tg_tps / bound,
           naive_tps > 0 ? tg_tps / naive_tps : 0);
    printf("%-24s %10.2f\n", "naive plain loops", naive_tps);
    printf("\nprompt GFLOP/s achieved %.1f; decode GB/s achieved %.1f\n", pp_tps * fpt / 1e9,
           tg_tps * bpt / 1e9);

    free(pp);
    free(tg);
    free(toks);
    hmt_ctx_free(ctx);
    hmt_params_free(p);
    hmt_model_free(m);
    return 0;
}
