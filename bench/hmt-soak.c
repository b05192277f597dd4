/* hmt-soak: stream many tokens through one HMT stream and show that it stays
 * healthy: resident memory flat once the memory cache is full, no NaN or Inf
 * in any logit, time per token flat.
 *
 *   hmt-soak [-m MODEL] [-a ADAPTER] [-n TOKENS=1000000] [-t THREADS=1] [-c CHUNK=64]
 *
 * Prints one line per tenth of the run: tokens, RSS (MiB), µs/token over the
 * last tenth, cache fill, segments; exits 1 on a non-finite logit. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ceiling.h"
#include "hmt/hmt.h"

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) v = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return v;
}

static void check(int rc, const char *what) {
    if (rc == HMT_OK) return;
    fprintf(stderr, "hmt-soak: %s: %s\n", what, hmt_last_error_msg());
    exit(1);
}

static void usage(FILE *f) {
    fprintf(f, "usage: hmt-soak [-m MODEL] [-a ADAPTER] [-n TOKENS] [-t THREADS] [-c CHUNK]\n"
               "  -m PATH    GGUF model (default models/demo-random-f16.gguf)\n"
               "  -a PATH    HMT adapter (default models/demo-random-hmt.gguf)\n"
               "  -n N       tokens to stream, >= 10 (default 1000000)\n"
               "  -t N       worker threads, >= 1 (default 1)\n"
               "  -c N       tokens per feed call, >= 1 (default 64)\n"
               "  -h, --help show this help\n");
}

/* A whole number in [lo, hi] or a message naming the option. */
static int parse_count(const char *opt, const char *v, long long lo, long long hi,
                       long long *out) {
    char *end;
    long long x = strtoll(v, &end, 10);
    if (*v && !*end && x >= lo && x <= hi) {
        *out = x;
        return 1;
    }
    fprintf(stderr, "hmt-soak: %s takes a whole number in [%lld, %lld], got '%s'\n", opt, lo, hi, v);
    return 0;
}

int main(int argc, char **argv) {
    const char *model_path = "models/demo-random-f16.gguf", *adapter_path = "models/demo-random-hmt.gguf";
    long long total = 1000000, threads = 1, chunk = 64;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        int ok = v != NULL;
        if (!v) fprintf(stderr, "hmt-soak: unknown option or missing value: %s\n", a);
        else if (!strcmp(a, "-m")) model_path = v;
        else if (!strcmp(a, "-a")) adapter_path = v;
        else if (!strcmp(a, "-n")) ok = parse_count("-n", v, 10, INT64_MAX / 2, &total);
        else if (!strcmp(a, "-t")) ok = parse_count("-t", v, 1, 1024, &threads);
        else if (!strcmp(a, "-c")) ok = parse_count("-c", v, 1, 1 << 20, &chunk);
        else {
            fprintf(stderr, "hmt-soak: unknown option %s\n", a);
            ok = 0;
        }
        if (!ok) {
            usage(stderr);
            return 2;
        }
    }
    hmt_model *m;
    hmt_adapter *a;
    hmt_params *p;
    hmt_stream *s;
    check(hmt_model_load(&m, model_path, NULL), "load model");
    check(hmt_adapter_load(&a, m, adapter_path), "load adapter");
    check(hmt_params_create(&p), "params");
    check(hmt_params_set_int(p, HMT_P_N_THREADS, threads ? threads : HMT_AUTO), "threads");
    check(hmt_stream_create(&s, m, a, p), "stream");
    const int32_t V = hmt_model_n_vocab(m);
    hmt_token *buf = malloc((size_t)chunk * sizeof *buf);
    if (!buf) {
        fprintf(stderr, "hmt-soak: out of memory for a chunk of %lld tokens (lower -c)\n", chunk);
        return 1;
    }
    uint64_t x = 0x9e3779b97f4a7c15ull;
    printf("%12s %10s %12s %8s %10s\n", "tokens", "RSS MiB", "us/token", "cache", "segments");
    long long done = 0, mark = 0;
    double t_mark = hmtb_now();
    int bad = 0;
    while (done < total) {
        int n = (int)(total - done < chunk ? total - done : chunk);
        for (int i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (hmt_token)(x % (uint64_t)V);
        }
        check(hmt_stream_feed(s, buf, (size_t)n), "feed");
        int64_t first, end;
        hmt_stream_ready_range(s, &first, &end);
        for (int64_t t = first; t < end && !bad; t++) {
            const float *l = hmt_stream_logits(s, t);
            for (int32_t v = 0; v < V; v++)
                if (!isfinite(l[v])) {
                    fprintf(stderr, "hmt-soak: non-finite logit at token %lld\n", (long long)t);
                    bad = 1;
                    break;
                }
        }
        done += n;
        if (done - mark >= total / 10 || done == total) {
            double now = hmtb_now();
            printf("%12lld %10.1f %12.2f %8d %10lld\n", done, rss_kib() / 1024.0,
                   1e6 * (now - t_mark) / (double)(done - mark), hmt_stream_cache_fill(s),
                   (long long)hmt_stream_n_segments(s));
            fflush(stdout);
            mark = done;
            t_mark = now;
        }
        if (bad) break;
    }
    free(buf);
    hmt_stream_free(s);
    hmt_params_free(p);
    hmt_adapter_free(a);
    hmt_model_free(m);
    return bad ? 1 : 0;
}
