/* hmt-bench: prompt-processing and decode throughput of GGUF models, each
 * printed as a ratio against ceilings measured in the same run on the same
 * machine: the best libxsmm GEMM rate (→ FP32 roofline in tokens/s) and the
 * streaming-read memory bandwidth, the better of one and four sequential
 * streams a thread (bench/ceiling.h; → decode bound: the bytes of weights a
 * token really reads, in each model's own types, LM head included); with
 * several models, prompt speed also as a ratio to the first model (give the
 * F32 file first), and the resident memory each load added against the file
 * size (docs/API.md "Memory"). --naive adds the plain-loop reference forward
 * (bench/internal/naive_forward.h, one thread) as a baseline. --bf16 also times each
 * prompt with HMT_P_COMPUTE_TYPE = HMT_COMPUTE_BF16 on the same context,
 * right after the F32 one, and prints the ratio of the two.
 *
 *   hmt-bench -m MODEL [-m MODEL ...] [-t THREADS] [-p PROMPT_TOKENS]
 *             [-n DECODE_TOKENS] [-r REPEATS] [--naive] [--bf16]
 *
 * Figures are medians over repeats, after a warm-up run, because this class
 * of machine drifts by tens of percent between runs; the repeats of the
 * models are interleaved so that a slow spell hits all of them alike. The
 * decode is compared with two bandwidths: the higher of the stream reads
 * before and after all the runs ("of bound"), and, repeat by repeat, the
 * higher of the stream reads just before and after that decode
 * ("adjacent": the host's bandwidth of that moment). */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
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

/* Bytes a decode step must stream: every weight matrix once, in its own
 * type (matrix nbytes: packed F32, or the stored blocks). */
static double decode_bytes_per_token(const hmt_model *m) {
    double b = (double)m->output.nbytes;
    for (int l = 0; l < m->n_layer; l++) {
        const hmti_layer *L = &m->layers[l];
        b += (double)(L->wqkv.nbytes + L->wo.nbytes + L->gate_up.nbytes + L->down.nbytes);
    }
    return b;
}

/* Resident memory of this process, bytes (/proc/self/statm). */
static double rss_bytes(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

#define MAX_MODELS 16

typedef struct {
    const char *path;
    hmt_model *m;
    hmt_ctx *ctx;
    int kv;                          /* HMT_P_KV_TYPE of its context (--kv after its -m) */
    int n_ctx;                       /* its context's size (--ctx after its -m); 0: the run's */
    double file_mb, load_mb, ctx_mb; /* file size; RSS added by the load, by ctx + first eval */
    double pp[100], tg[100], pp_bf16[100];
    double bw[100]; /* stream-read GB/s right around that repeat's decode (the higher of before, after) */
} bench_model;

static void usage(FILE *f) {
    fprintf(f, "usage: hmt-bench -m MODEL [-m MODEL ...] [-t THREADS=2] [-p PROMPT=256] "
               "[-n DECODE=32] [-r REPEATS=5] [--naive] [--bf16]\n"
               "  --kv T after a -m: that model's context keeps an f32 (default), f16 or bf16 KV cache\n"
               "  --ctx N after a -m: that model's context holds N slots (default: prompt + decode + 1;\n"
               "  a larger one is what an application sizing for its longest input has)\n"
               "  (the same file may be given twice, with two cache types or sizes)\n");
}

/* The prompt alone in BF16 compute; the context is left in F32. */
static double bf16_prompt_rate(bench_model *b, const hmt_token *toks, int n_prompt) {
    check(hmt_ctx_set_int(b->ctx, HMT_P_COMPUTE_TYPE, HMT_COMPUTE_BF16), "compute type");
    check(hmt_ctx_kv_clear(b->ctx), "clear");
    const double t0 = hmtb_now();
    check(hmt_ctx_eval_tokens(b->ctx, toks, (size_t)n_prompt, 0), "prompt (bf16)");
    const double t1 = hmtb_now();
    check(hmt_ctx_set_int(b->ctx, HMT_P_COMPUTE_TYPE, HMT_COMPUTE_F32), "compute type");
    return n_prompt / (t1 - t0);
}

/* Stream-read GB/s now, short (the ones around each decode). */
static double stream_now(int threads) { return hmtb_stream_read_gbs(threads, (size_t)256 << 20, 3); }

/* One prompt of n_prompt tokens, then n_decode single-token steps, a
 * stream read just before and after them (a shared host's bandwidth moves
 * by tens of percent within a minute: the decode is also compared with the
 * bandwidth of its own moment); with bf16 the prompt again in BF16
 * compute. */
static void run_once(bench_model *b, const hmt_token *toks, int n_prompt, int n_decode, int bf16,
                     int threads, int r) {
    check(hmt_ctx_kv_clear(b->ctx), "clear");
    double t0 = hmtb_now();
    check(hmt_ctx_eval_tokens(b->ctx, toks, (size_t)n_prompt, 0), "prompt");
    double t1 = hmtb_now();
    const double bw0 = r >= 0 ? stream_now(threads) : 0;
    const double t_dec = hmtb_now();
    for (int i = 0; i < n_decode; i++)
        check(hmt_ctx_eval_tokens(b->ctx, toks + n_prompt + i, 1, 0), "decode");
    double t2 = hmtb_now();
    if (r >= 0) {
        const double bw1 = stream_now(threads);
        b->pp[r] = n_prompt / (t1 - t0);
        b->tg[r] = n_decode / (t2 - t_dec);
        b->bw[r] = bw0 > bw1 ? bw0 : bw1;
    }
    if (bf16) {
        const double rate = bf16_prompt_rate(b, toks, n_prompt);
        if (r >= 0) b->pp_bf16[r] = rate;
    }
}

static double naive_rate(const hmt_model *m, const hmt_token *toks) {
    naive_model nm;
    const int n_naive = 8;
    if (naive_init(&nm, m, n_naive) != 0) return 0;
    float *logits = malloc((size_t)m->n_vocab * sizeof *logits);
    double t0 = hmtb_now();
    for (int i = 0; i < n_naive && logits; i++) naive_forward_token(&nm, toks[i], i, logits);
    double rate = n_naive / (hmtb_now() - t0);
    free(logits);
    naive_free(&nm);
    return rate;
}

int main(int argc, char **argv) {
    bench_model bm[MAX_MODELS];
    int n_models = 0, threads = 2, n_prompt = 256, n_decode = 32, repeats = 5, naive = 0, bf16 = 0;
    memset(bm, 0, sizeof bm);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--naive")) {
            naive = 1;
            continue;
        }
        if (!strcmp(a, "--bf16")) {
            bf16 = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "hmt-bench: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "-m")) {
            if (n_models == MAX_MODELS) {
                fprintf(stderr, "hmt-bench: at most %d models\n", MAX_MODELS);
                return 2;
            }
            bm[n_models++].path = v;
        } else if (!strcmp(a, "--kv") && n_models) {
            bm[n_models - 1].kv = !strcmp(v, "f32") ? HMT_KV_F32 : !strcmp(v, "f16") ? HMT_KV_F16
                                : !strcmp(v, "bf16") ? HMT_KV_BF16 : -1;
            if (bm[n_models - 1].kv < 0) {
                fprintf(stderr, "hmt-bench: --kv takes f32, f16 or bf16, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--ctx") && n_models) {
            bm[n_models - 1].n_ctx = atoi(v);
            if (bm[n_models - 1].n_ctx < 1) {
                fprintf(stderr, "hmt-bench: --ctx takes a whole number >= 1, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "-t")) threads = atoi(v);
        else if (!strcmp(a, "-p")) n_prompt = atoi(v);
        else if (!strcmp(a, "-n")) n_decode = atoi(v);
        else if (!strcmp(a, "-r")) repeats = atoi(v);
        else {
            fprintf(stderr, "hmt-bench: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    const char *bad = !n_models ? "-m MODEL is required"
                      : threads < 1 ? "-t must be a whole number >= 1"
                      : n_prompt < 1 ? "-p must be a whole number >= 1"
                      : n_decode < 1 ? "-n must be a whole number >= 1"
                      : repeats < 1 || repeats > 100 ? "-r must be a whole number in [1, 100]"
                                                     : NULL;
    for (int k = 0; k < n_models && !bad; k++)
        if (bm[k].n_ctx && bm[k].n_ctx < n_prompt + n_decode) bad = "--ctx must hold the prompt and the decoded tokens";
    if (bad) {
        fprintf(stderr, "hmt-bench: %s\n", bad);
        usage(stderr);
        return 2;
    }

    hmt_params *p;
    check(hmt_params_create(&p), "params");
    check(hmt_params_set_int(p, HMT_P_N_THREADS, threads ? threads : HMT_AUTO), "threads");
    check(hmt_params_set_int(p, HMT_P_N_CTX, n_prompt + n_decode + 1), "n_ctx");
    /* the process's one-time costs (libxsmm's code registry, 8 MiB) before
     * the first load, so that every model's figure is its own */
    const double r_init = rss_bytes();
    hmti_kernels_init();
    const double init_mb = (rss_bytes() - r_init) / 1e6;
    int32_t n_vocab = 0;
    for (int k = 0; k < n_models; k++) {
        bench_model *b = &bm[k];
        struct stat st;
        b->file_mb = stat(b->path, &st) == 0 ? st.st_size / 1e6 : 0;
        double r0 = rss_bytes();
        check(hmt_model_load(&b->m, b->path, NULL), b->path);
        b->load_mb = (rss_bytes() - r0) / 1e6;
        const hmt_model *m = b->m;
        char ctx_note[32] = "";
        if (b->n_ctx) snprintf(ctx_note, sizeof ctx_note, " (n_ctx %d)", b->n_ctx);
        printf("model %d %s%s%s: %s, %.1f M params, d %d, %d layers, %d/%d heads, ff %d, vocab %d\n",
               k, b->path, b->kv == HMT_KV_F16 ? " (F16 KV cache)" : b->kv == HMT_KV_BF16 ? " (BF16 KV cache)" : "", ctx_note,
               hmt_model_arch(m), hmt_model_n_params(m) / 1e6, m->n_embd, m->n_layer,
               m->n_head, m->n_head_kv, m->n_ff, m->n_vocab);
        if (!n_vocab || m->n_vocab < n_vocab) n_vocab = m->n_vocab;
    }
    printf("threads %d, prompt %d tokens, decode %d tokens, %d repeats (medians, models "
           "interleaved)\n\n", threads, n_prompt, n_decode, repeats);

    hmt_token *toks = malloc((size_t)(n_prompt + n_decode) * sizeof *toks);
    if (!toks) return 1;
    for (int i = 0; i < n_prompt + n_decode; i++) toks[i] = (hmt_token)((i * 7919 + 13) % n_vocab);
    for (int k = 0; k < n_models; k++) { /* context, then the warm-up (page faults, JIT) */
        double r0 = rss_bytes();
        hmt_params *pk;
        check(hmt_params_copy(&pk, p), "params");
        check(hmt_params_set_int(pk, HMT_P_KV_TYPE, bm[k].kv), "kv type");
        if (bm[k].n_ctx) check(hmt_params_set_int(pk, HMT_P_N_CTX, bm[k].n_ctx), "n_ctx");
        check(hmt_ctx_create(&bm[k].ctx, bm[k].m, pk), "context");
        hmt_params_free(pk);
        run_once(&bm[k], toks, n_prompt, n_decode, bf16, threads, -1);
        bm[k].ctx_mb = (rss_bytes() - r0) / 1e6;
    }

    /* ceilings, measured before and after the runs on this machine; the
     * higher is used, so the ratios err low */
    double gemm = hmtb_gemm_ceiling(threads, 0.2, 5, NULL, NULL, NULL);
    double bw = hmtb_stream_read_gbs(threads, (size_t)512 << 20, 5);
    for (int r = 0; r < repeats; r++)
        for (int k = 0; k < n_models; k++) run_once(&bm[k], toks, n_prompt, n_decode, bf16, threads, r);
    const double gemm2 = hmtb_gemm_ceiling(threads, 0.2, 5, NULL, NULL, NULL);
    const double bw2 = hmtb_stream_read_gbs(threads, (size_t)512 << 20, 5);
    if (gemm2 > gemm) gemm = gemm2;
    if (bw2 > bw) bw = bw2;
    printf("ceilings: GEMM %.1f GFLOP/s (best libxsmm tile, %d threads), stream read %.1f GB/s\n\n",
           gemm, threads, bw);

    printf("%-3s %9s %9s %9s %9s | %9s %8s %8s | %9s %9s %9s %8s %8s\n", "", "file MB", "load MB",
           "load/file", "ctx MB", "prompt/s", "roofline", "vs m0", "MB/token", "bound/s",
           "decode/s", "of bound", "adjacent");
    double pp0 = 0;
    for (int k = 0; k < n_models; k++) {
        bench_model *b = &bm[k];
        const double pp_tps = hmtb_median(b->pp, repeats), tg_tps = hmtb_median(b->tg, repeats);
        if (k == 0) pp0 = pp_tps;
        const double fpt = prompt_flops_per_token(b->m, n_prompt), roof = gemm * 1e9 / fpt;
        const double bpt = decode_bytes_per_token(b->m), bound = bw * 1e9 / bpt;
        double adj[100]; /* per repeat: decode against the bandwidth of its own moment */
        for (int r = 0; r < repeats; r++) adj[r] = b->tg[r] * bpt / (b->bw[r] * 1e9);
        printf("m%-2d %9.1f %9.1f %9.3f %9.1f | %9.1f %7.1f%% %7.1f%% | %9.1f %9.1f %9.1f %7.1f%% %7.1f%%\n",
               k, b->file_mb, b->load_mb, b->file_mb > 0 ? b->load_mb / b->file_mb : 0, b->ctx_mb,
               pp_tps, 100 * pp_tps / roof, 100 * pp_tps / pp0, bpt / 1e6, bound, tg_tps,
               100 * tg_tps / bound, 100 * hmtb_median(adj, repeats));
    }
    printf("\nload MB: resident memory the model load added (weights; mapped file pages "
           "count once touched;\nthe library's one-time initialization before the first load, "
           "%.1f MB, is not counted);\nctx MB: the context and its first evaluation (KV cache, "
           "scratch); roofline: FP32 GEMM ceiling;\nMB/token: weights read per decode step, "
           "each in its own type; bound/s: stream-read GB/s / MB/token;\nof bound: decode/s / bound/s "
           "(the higher of the stream reads before and after all runs);\nadjacent: median over the "
           "repeats of decode/s against the higher of the stream reads just\nbefore and after that "
           "repeat's decode (256 MiB, median of 3).\n", init_mb);
    if (bf16) {
        printf("\nBF16 compute (HMT_P_COMPUTE_TYPE), prompt %d tokens, same contexts, each "
               "right after its F32 prompt:\n%-3s %9s %9s %9s\n", n_prompt, "", "f32/s", "bf16/s",
               "bf16/f32");
        for (int k = 0; k < n_models; k++) {
            double ratio[100]; /* per repeat: the two prompts ran back to back */
            for (int r = 0; r < repeats; r++) ratio[r] = bm[k].pp_bf16[r] / bm[k].pp[r];
            printf("m%-2d %9.1f %9.1f %8.2fx\n", k, hmtb_median(bm[k].pp, repeats),
                   hmtb_median(bm[k].pp_bf16, repeats), hmtb_median(ratio, repeats));
        }
        printf("bf16/f32: median over the repeats of the ratio of the two prompts.\n");
    }
    if (naive) {
        double rate = naive_rate(bm[0].m, toks);
        printf("naive plain loops (model 0, 1 thread): %.2f tok/s; prompt %.1fx, decode %.1fx "
               "faster\n", rate, rate > 0 ? hmtb_median(bm[0].pp, repeats) / rate : 0,
               rate > 0 ? hmtb_median(bm[0].tg, repeats) / rate : 0);
    }

    free(toks);
    for (int k = 0; k < n_models; k++) {
        hmt_ctx_free(bm[k].ctx);
        hmt_model_free(bm[k].m);
    }
    hmt_params_free(p);
    return 0;
}
