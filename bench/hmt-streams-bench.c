/* hmt-streams-bench: S HMT streams generating together (one hmt_streams_feed
 * call of S tokens per step) against the same streams fed one after another
 * (S calls of hmt_stream_feed), in the same run, on two sets of streams
 * holding the same prompts.
 *
 *   hmt-streams-bench -m MODEL [-a ADAPTER] [-L N] [-s STREAMS] [-p PROMPT]
 *                     [-n STEPS] [-t THREADS]
 *
 * With an adapter the streams run mode full under the causal (generation)
 * rule, else mode segments with segment length -L. Every step feeds the
 * same fixed random token to stream s of both sets, alternating which set
 * runs first, so drift on a shared machine hits both alike. Steps that open
 * a segment run alone in both sets and are timed too. Printed: each set's
 * tokens/s, the median per-step time ratio, and the largest |Δlogit|
 * between the two sets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ceiling.h"
#include "hmt/hmt.h"

#define PROG "hmt-streams-bench"

static void usage(FILE *f) {
    fprintf(f, "usage: " PROG " -m MODEL [options]\n"
               "  -m PATH     GGUF model\n"
               "  -a PATH     HMT adapter: mode full, causal rule (default: mode segments)\n"
               "  -L N        segment length without an adapter (default 256)\n"
               "  -s N        streams generating together (default 8)\n"
               "  -p N        prompt tokens per stream, fed untimed (default 32)\n"
               "  -n N        generation steps timed (default 32)\n"
               "  -t N        worker threads (default 2)\n"
               "  -h, --help  this help\n");
}

static int die(const char *what) {
    fprintf(stderr, PROG ": %s: %s\n", what, hmt_last_error_msg());
    return 1;
}

static int make_stream(hmt_stream **out, hmt_model *m, hmt_adapter *a, int L, int threads) {
    hmt_params *p;
    int rc = hmt_params_create(&p);
    if (!rc && a) rc = hmt_params_set_int(p, HMT_P_LOOKAHEAD, 0);
    if (!rc && !a) rc = hmt_params_set_int(p, HMT_P_MODE, HMT_MODE_SEGMENTS);
    if (!rc && !a) rc = hmt_params_set_int(p, HMT_P_SEGMENT_LENGTH, L);
    if (!rc) rc = hmt_params_set_int(p, HMT_P_N_THREADS, threads);
    if (!rc) rc = hmt_stream_create(out, m, a, p);
    hmt_params_free(p);
    return rc;
}

int main(int argc, char **argv) {
    const char *path = NULL, *apath = NULL;
    int S = 8, P = 32, N = 32, T = 2, L = 256;
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
        else if (!strcmp(a, "-a")) apath = v;
        else if (!strcmp(a, "-L")) L = atoi(v);
        else if (!strcmp(a, "-s")) S = atoi(v);
        else if (!strcmp(a, "-p")) P = atoi(v);
        else if (!strcmp(a, "-n")) N = atoi(v);
        else if (!strcmp(a, "-t")) T = atoi(v);
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!path || S < 1 || S > 256 || P < 1 || N < 1 || T < 1 || L < 1) {
        usage(stderr);
        return 2;
    }
    hmt_model *m;
    if (hmt_model_load(&m, path, NULL)) return die(path);
    hmt_adapter *ad = NULL;
    if (apath && hmt_adapter_load(&ad, m, apath)) return die(apath);
    const int V = hmt_model_n_vocab(m);
    hmt_stream **bat = calloc((size_t)S, sizeof *bat), **one = calloc((size_t)S, sizeof *one);
    hmt_token *tok = malloc((size_t)S * (P + N) * sizeof *tok), *step = malloc((size_t)S * sizeof *step);
    double *ratio = malloc((size_t)N * sizeof *ratio);
    if (!bat || !one || !tok || !step || !ratio) return fprintf(stderr, PROG ": out of memory\n"), 1;
    hmtb_tokens(tok, (size_t)S * (P + N), V, 0x9e3779b97f4a7c15u); /* tok[s * (P + N) + t] */
    for (int s = 0; s < S; s++) {
        if (make_stream(&bat[s], m, ad, L, T) || make_stream(&one[s], m, ad, L, T))
            return die("stream");
        if (hmt_stream_feed(bat[s], tok + (size_t)s * (P + N), (size_t)P) ||
            hmt_stream_feed(one[s], tok + (size_t)s * (P + N), (size_t)P))
            return die("prompt");
    }
    double t_bat = 0, t_one = 0, worst = 0;
    for (int k = 0; k < N; k++) {
        for (int s = 0; s < S; s++) step[s] = tok[(size_t)s * (P + N) + P + k];
        double tb = 0, to = 0;
        for (int pass = 0; pass < 2; pass++) {
            const double t0 = hmtb_now();
            if ((pass == 0) == (k % 2 == 0)) {
                if (hmt_streams_feed(bat, S, step)) return die("batched step");
                tb = hmtb_now() - t0;
            } else {
                for (int s = 0; s < S; s++)
                    if (hmt_stream_feed(one[s], step + s, 1)) return die("one-by-one step");
                to = hmtb_now() - t0;
            }
        }
        for (int s = 0; s < S; s++) {
            const int64_t last = hmt_stream_n_ready(one[s]) - 1;
            const float *b = hmt_stream_logits(bat[s], last), *o = hmt_stream_logits(one[s], last);
            for (int v = 0; v < V; v++) {
                const double d = fabs((double)b[v] - o[v]);
                if (!(d <= worst)) worst = d;
            }
        }
        t_bat += tb, t_one += to;
        ratio[k] = to / tb;
    }
    printf("model %s, %s, %d streams, prompt %d, %d steps, %d threads\n", path,
           ad ? "mode full (causal rule)" : "mode segments", S, P, N, T);
    printf("together      %9.1f tok/s\n", (double)S * N / t_bat);
    printf("one by one    %9.1f tok/s\n", (double)S * N / t_one);
    printf("speedup       %9.2fx (total time), median per-step %.2fx\n", t_one / t_bat,
           hmtb_median(ratio, N));
    printf("max |dlogit| together vs one by one: %.3g\n", worst);
    for (int s = 0; s < S; s++) hmt_stream_free(bat[s]), hmt_stream_free(one[s]);
    free(bat), free(one), free(tok), free(step), free(ratio);
    hmt_adapter_free(ad);
    hmt_model_free(m);
    return 0;
}
