/* hmt-stream-bench: HMT stream throughput against the plain backbone run
 * segment by segment at the same L, in the same run, over growing inputs,
 * with the resident memory after each size (it must stay flat: an HMT stream
 * holds at most N memories and one segment's KV cache, whatever the length).
 *
 *   hmt-stream-bench -m MODEL -a ADAPTER [-t THREADS] [--max N] [-r REPEATS]
 *                    [--modes full,segments,rmt] [--chunk N]
 *
 * Inputs are random token ids. Every run is a fresh stream fed in chunks and
 * flushed, keeping the logits of every token (the scoring workload of
 * hmt-perplexity). Modes alternate inside each repeat so drift hits them
 * alike; figures are medians of the repeats. Sizes up to 4000 tokens are
 * repeated -r times, larger ones once.
 *
 * The expected ratio full / segments comes from counting the work: per
 * segment n >= 1 the HMT mode adds a summary pass of j + 2 rows and k + 2
 * rows of memory and sensory tokens to the L scored rows. Printed both as a
 * row count and as FLOPs (linear layers + causal attention at each row's
 * context + the LM head on scored rows). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ceiling.h"
#include "hmt/hmt.h"

#define PROG "hmt-stream-bench"

static const char *const MODE_NAME[4] = {"full", "rmt", "segments", "window"};

static void usage(FILE *f) {
    fprintf(f,
            "usage: " PROG " -m MODEL -a ADAPTER [options]\n"
            "  -m PATH         GGUF model\n"
            "  -a PATH         HMT adapter GGUF (gives L, k, j, N)\n"
            "  -t N            worker threads (default 2)\n"
            "  --max N         largest input size: sizes are 1000, 4000, 16000, 100000 up to N,\n"
            "                  and N itself if it is not one of them (default 16000)\n"
            "  -r N            repeats of sizes <= 4000 (default 3; larger sizes run once)\n"
            "  --modes LIST    comma-separated from full,rmt,segments (default full,segments,rmt)\n"
            "  --chunk N       tokens per hmt_stream_feed call (default 256)\n"
            "  -h, --help      this help\n");
}

/* kB of a "Key:   1234 kB" line of /proc/self/status, -1 if absent. */
static long proc_status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

typedef struct {
    double d, ff, layers, heads, kv_heads, vocab;
} shape;

/* FLOPs of a pass of P rows from position 0 (every row attends to itself and
 * all earlier rows), without the LM head. */
static double pass_flops(const shape *s, double P) {
    const double hd = s->d / s->heads, qd = s->heads * hd, kvd = s->kv_heads * hd;
    const double lin = 2 * s->d * (qd + 2 * kvd) + 2 * qd * s->d + 6 * s->d * s->ff;
    return s->layers * (P * lin + 4 * qd * P * (P + 1) / 2);
}

/* Work of one input of n tokens under a mode: rows evaluated and FLOPs. */
static void expected_work(const shape *s, int mode, int64_t n, int L, int k, int j, double *rows,
                          double *flops) {
    *rows = 0;
    *flops = 0;
    for (int64_t seg = 0; seg * L < n; seg++) {
        const int64_t Ls = n - seg * L < L ? n - seg * L : L;
        const int closed = Ls == L;
        const int ks = seg > 0 ? k : 0; /* sensory: the previous (full) segment's last k */
        double P;
        if (mode == HMT_MODE_SEGMENTS) {
            P = (double)Ls;
        } else {
            P = 1.0 + ks + (double)Ls + (closed ? 1 : 0);
            if (mode == HMT_MODE_FULL && seg > 0) {
                const double js = (double)(Ls < j ? Ls : j) + 2;
                *rows += js;
                *flops += pass_flops(s, js);
            }
        }
        *rows += P;
        *flops += pass_flops(s, P) + 2 * s->vocab * s->d * (double)Ls;
    }
}

static void check(int rc, const char *what) {
    if (rc == HMT_OK) return;
    fprintf(stderr, PROG ": %s: %s (%s)\n", what, hmt_last_error_msg(), hmt_strerror(rc));
    exit(1);
}

/* One fresh stream over toks[0..n): seconds; *rss_kb = VmRSS before free. */
static double run_once(hmt_model *m, hmt_adapter *a, int mode, int threads, const hmt_token *toks,
                       int64_t n, int64_t chunk, long *rss_kb, int32_t *fill) {
    hmt_params *p;
    check(hmt_params_create(&p), "params");
    check(hmt_params_set_int(p, HMT_P_MODE, mode), "mode");
    check(hmt_params_set_int(p, HMT_P_N_THREADS, threads ? threads : HMT_AUTO), "threads");
    hmt_stream *st;
    check(hmt_stream_create(&st, m, a, p), "stream");
    hmt_params_free(p);
    const double t0 = hmtb_now();
    for (int64_t done = 0; done < n; done += chunk) {
        const int64_t c = n - done < chunk ? n - done : chunk;
        check(hmt_stream_feed(st, toks + done, (size_t)c), "feed");
    }
    check(hmt_stream_flush(st), "flush");
    const double t = hmtb_now() - t0;
    if (hmt_stream_n_ready(st) != n) {
        fprintf(stderr, PROG ": %s: %lld of %lld tokens ready after flush\n", MODE_NAME[mode],
                (long long)hmt_stream_n_ready(st), (long long)n);
        exit(1);
    }
    if (rss_kb) *rss_kb = proc_status_kb("VmRSS");
    if (fill) *fill = hmt_stream_cache_fill(st);
    hmt_stream_free(st);
    return t;
}

int main(int argc, char **argv) {
    const char *mpath = NULL, *apath = NULL, *modes_arg = "full,segments,rmt";
    int threads = 2, repeats = 3;
    long long max_n = 16000, chunk = 256;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, PROG ": %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "-m")) mpath = v;
        else if (!strcmp(a, "-a")) apath = v;
        else if (!strcmp(a, "-t")) threads = atoi(v);
        else if (!strcmp(a, "-r")) repeats = atoi(v);
        else if (!strcmp(a, "--max")) max_n = atoll(v);
        else if (!strcmp(a, "--chunk")) chunk = atoll(v);
        else if (!strcmp(a, "--modes")) modes_arg = v;
        else {
            fprintf(stderr, PROG ": unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    int modes[3], n_modes = 0;
    {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", modes_arg);
        for (char *tokp = strtok(buf, ","); tokp; tokp = strtok(NULL, ",")) {
            int md = -1;
            for (int k = 0; k < 3; k++)
                if (!strcmp(tokp, MODE_NAME[k])) md = k;
            if (md < 0 || n_modes == 3) {
                fprintf(stderr, PROG ": --modes takes full, rmt, segments (got '%s')\n", tokp);
                return 2;
            }
            modes[n_modes++] = md;
        }
    }
    const char *bad = !mpath ? "-m MODEL is required"
                      : !apath ? "-a ADAPTER is required"
                      : threads < 1 ? "-t must be a whole number >= 1"
                      : repeats < 1 || repeats > 50 ? "-r must be a whole number in [1, 50]"
                      : max_n < 2 ? "--max must be a whole number >= 2"
                      : chunk < 1 ? "--chunk must be a whole number >= 1"
                      : n_modes == 0 ? "--modes needs at least one of full, rmt, segments"
                                     : NULL;
    if (bad) {
        fprintf(stderr, PROG ": %s\n", bad);
        usage(stderr);
        return 2;
    }

    hmt_model *m;
    hmt_adapter *ad;
    check(hmt_model_load(&m, mpath, NULL), "loading the model");
    check(hmt_adapter_load(&ad, m, apath), "loading the adapter");
    double v;
    int L, k, j, N, dh;
    check(hmt_adapter_get(ad, HMT_P_SEGMENT_LENGTH, &v), "adapter L");
    L = (int)v;
    check(hmt_adapter_get(ad, HMT_P_SENSORY_LENGTH, &v), "adapter k");
    k = (int)v;
    check(hmt_adapter_get(ad, HMT_P_SUMMARY_LENGTH, &v), "adapter j");
    j = (int)v;
    check(hmt_adapter_get(ad, HMT_P_CACHE_SIZE, &v), "adapter N");
    N = (int)v;
    check(hmt_adapter_get(ad, HMT_P_RECALL_DIM, &v), "adapter d_h");
    dh = (int)v;
    const shape sh = {hmt_model_n_embd(m), hmt_model_n_ff(m),       hmt_model_n_layer(m),
                      hmt_model_n_head(m), hmt_model_n_head_kv(m), hmt_model_n_vocab(m)};

    int64_t sizes[8];
    int n_sizes = 0;
    static const int64_t std_sizes[] = {1000, 4000, 16000, 100000};
    for (int i = 0; i < 4; i++)
        if (std_sizes[i] <= max_n) sizes[n_sizes++] = std_sizes[i];
    if (n_sizes == 0 || sizes[n_sizes - 1] != max_n) sizes[n_sizes++] = max_n;

    hmt_token *toks = malloc((size_t)max_n * sizeof *toks);
    if (!toks) return 1;
    hmtb_tokens(toks, (size_t)max_n, (int32_t)sh.vocab, 0x484d54);

    printf("model %s: %s, %.1f M params, d %d, %d layers, vocab %d\n", mpath, hmt_model_arch(m),
           (double)hmt_model_n_params(m) / 1e6, (int)sh.d, (int)sh.layers, (int)sh.vocab);
    printf("adapter %s: L %d, k %d, j %d, N %d, d_h %d\n", apath, L, k, j, N, dh);
    printf("threads %d, chunk %lld tokens/feed, all logits kept, random token ids; "
           "medians of %d repeats for sizes <= 4000, 1 run above\n", threads, chunk, repeats);
    {
        double r_seg, f_seg, r_full, f_full, r_rmt, f_rmt;
        const int64_t big = 1000000;
        expected_work(&sh, HMT_MODE_SEGMENTS, big, L, k, j, &r_seg, &f_seg);
        expected_work(&sh, HMT_MODE_FULL, big, L, k, j, &r_full, &f_full);
        expected_work(&sh, HMT_MODE_RMT, big, L, k, j, &r_rmt, &f_rmt);
        printf("expected tok/s ratio vs segments (long input): full %.3f by rows "
               "(L / (L + j + k + 4) = %d / %d), %.3f by FLOPs; rmt %.3f by rows, %.3f by FLOPs\n",
               r_seg / r_full, L, L + j + k + 4, f_seg / f_full, r_seg / r_rmt, f_seg / f_rmt);
    }
    printf("baseline VmRSS after loading: %.1f MB\n\n", proc_status_kb("VmRSS") / 1024.0);

    /* warm-up: page faults, thread pool, kernel dispatch */
    {
        const int64_t w = max_n < 2 * L ? max_n : 2 * L;
        for (int i = 0; i < n_modes; i++)
            run_once(m, ad, modes[i], threads, toks, w, chunk, NULL, NULL);
    }

    printf("%8s %-9s %4s %10s %9s %9s %9s %10s %10s %6s\n", "tokens", "mode", "runs", "tok/s",
           "vs seg", "exp rows", "exp flop", "VmRSS MB", "VmHWM MB", "fill");
    double *t = malloc(sizeof(double) * (size_t)repeats * 3);
    if (!t) return 1;
    for (int si = 0; si < n_sizes; si++) {
        const int64_t n = sizes[si];
        const int reps = n <= 4000 ? repeats : 1;
        long rss[3] = {0, 0, 0};
        int32_t fill[3] = {0, 0, 0};
        for (int r = 0; r < reps; r++)
            for (int i = 0; i < n_modes; i++) {
                /* alternate the order between repeats */
                const int mi = r % 2 ? n_modes - 1 - i : i;
                t[mi * repeats + r] =
                    (double)n / run_once(m, ad, modes[mi], threads, toks, n, chunk, &rss[mi], &fill[mi]);
            }
        double tps[3], seg_tps = 0;
        for (int i = 0; i < n_modes; i++) {
            tps[i] = hmtb_median(t + i * repeats, reps);
            if (modes[i] == HMT_MODE_SEGMENTS) seg_tps = tps[i];
        }
        double r_seg, f_seg;
        expected_work(&sh, HMT_MODE_SEGMENTS, n, L, k, j, &r_seg, &f_seg);
        const long hwm = proc_status_kb("VmHWM");
        for (int i = 0; i < n_modes; i++) {
            double rw, fw;
            expected_work(&sh, modes[i], n, L, k, j, &rw, &fw);
            printf("%8lld %-9s %4d %10.1f ", (long long)n, MODE_NAME[modes[i]], reps, tps[i]);
            if (seg_tps > 0)
                printf("%9.3f %9.3f %9.3f ", tps[i] / seg_tps, r_seg / rw, f_seg / fw);
            else
                printf("%9s %9s %9s ", "-", "-", "-");
            printf("%10.1f %10.1f %6d\n", rss[i] / 1024.0, hwm / 1024.0, (int)fill[i]);
        }
        fflush(stdout);
    }
    printf("\nvs seg: measured tok/s over the segments mode's; exp rows / exp flop: the same ratio "
           "expected from the work counted (rows evaluated, FLOPs).\nVmRSS: resident set at the end "
           "of the size's last run, stream still alive; VmHWM: peak so far. fill: memories cached "
           "(<= N).\n");
    free(t);
    free(toks);
    hmt_adapter_free(ad);
    hmt_model_free(m);
    return 0;
}
