/* gemm-ceiling: how close hmti_matmul gets to this machine's ceilings.
 *
 *   (a) the GEMM ceiling: raw libxsmm tiles, operands in cache, 1 and 2 threads;
 *   (b) hmti_matmul GFLOP/s at the SmolLM2-135M shapes with n = 256 (a prompt),
 *       cycling through 30 layers' worth of weights as the model does;
 *   (c) hmti_matmul with n = 1 (decode GEMV): effective GB/s of weights read,
 *       against the streaming-read bandwidth measured in the same run.
 * All figures are medians of repeated runs after a warm-up; the ratios are
 * what to compare across runs (absolute numbers drift on a shared VM). The
 * ceilings are measured before and after the hmti_matmul runs and the higher
 * value is used, so ratios err low rather than high when the machine is busy.
 *
 * usage: gemm-ceiling [max_threads (default 2)] [reps (default 7)] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ceiling.h"
#include "kernels/kernels.h"

enum { N_LAYERS = 30, HIDDEN = 576, FFN = 1536, KV = 192, VOCAB = 49152, N_PROMPT = 256 };

typedef struct {
    const char *name;
    int64_t rows, cols;
    int per_layer; /* instances per layer (q and o share a shape, k and v, gate and up) */
} shape;

static const shape shapes[] = {
    {"q,o   576x576", HIDDEN, HIDDEN, 2}, {"k,v   192x576", KV, HIDDEN, 2},
    {"gate,up 1536x576", FFN, HIDDEN, 2}, {"down  576x1536", HIDDEN, FFN, 1},
    {"lm_head 49152x576", VOCAB, HIDDEN, 0},
};
enum { N_SHAPES = sizeof shapes / sizeof shapes[0] };

static hmti_matrix *mats[N_SHAPES]; /* per shape: instances (N_LAYERS * per_layer, or 1) */
static int n_mats[N_SHAPES];
static hmti_arena weights;          /* their packed copies, kept for the run */

static int build_weights(void) {
    size_t max_src = (size_t)VOCAB * HIDDEN;
    float *src = malloc(max_src * sizeof(float));
    if (!src) return -1;
    uint32_t s = 12345;
    for (size_t i = 0; i < max_src; i++) {
        s = s * 1664525u + 1013904223u;
        src[i] = (float)((int32_t)(s >> 8) % 1000) * 1e-4f;
    }
    for (int i = 0; i < N_SHAPES; i++) {
        n_mats[i] = shapes[i].per_layer ? N_LAYERS * shapes[i].per_layer : 1;
        mats[i] = calloc((size_t)n_mats[i], sizeof(hmti_matrix));
        for (int j = 0; j < n_mats[i]; j++)
            if (hmti_matrix_pack(&mats[i][j], src, 0, shapes[i].rows, shapes[i].cols, &weights) != 0) return -1;
    }
    free(src);
    return 0;
}

/* One sample: every instance of the shape once; returns seconds. */
static double run_shape(hmti_pool *pool, int si, const float *x, int64_t n, float *y) {
    double t0 = hmtb_now();
    for (int j = 0; j < n_mats[si]; j++)
        hmti_matmul(pool, &mats[si][j], x, shapes[si].cols, n, y, shapes[si].rows, NULL);
    return hmtb_now() - t0;
}

/* A whole decode step's GEMVs: every layer's seven matrices in order, then the LM head. */
static double run_decode(hmti_pool *pool, const float *x, float *y) {
    double t0 = hmtb_now();
    for (int l = 0; l < N_LAYERS; l++)
        for (int si = 0; si < 4; si++)
            for (int r = 0; r < shapes[si].per_layer; r++)
                hmti_matmul(pool, &mats[si][l * shapes[si].per_layer + r], x, shapes[si].cols, 1, y,
                            shapes[si].rows, NULL);
    hmti_matmul(pool, &mats[4][0], x, HIDDEN, 1, y, VOCAB, NULL);
    return hmtb_now() - t0;
}

static size_t shape_bytes(int si) { return mats[si][0].nbytes * (size_t)n_mats[si]; }

static const char USAGE[] = "usage: gemm-ceiling [MAX_THREADS (1..64, default 2)] [REPS (1..64, default 7)]\n";

/* A positional count in [1, 64], or a message saying which: exit code 2. */
static int arg_count(const char *what, const char *v, int *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*v && !*end && x >= 1 && x <= 64) {
        *out = (int)x;
        return 1;
    }
    fprintf(stderr, "gemm-ceiling: %s must be a whole number in [1, 64], got '%s'\n%s", what, v,
            USAGE);
    return 0;
}

int main(int argc, char **argv) {
    int max_threads = 2, reps = 7;
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (argc > 3) {
        fprintf(stderr, "gemm-ceiling: at most two arguments\n%s", USAGE);
        return 2;
    }
    if ((argc > 1 && !arg_count("MAX_THREADS", argv[1], &max_threads)) ||
        (argc > 2 && !arg_count("REPS", argv[2], &reps)))
        return 2;
    hmti_kernels_init();
    printf("libxsmm target: %s; reps %d (medians)\n", libxsmm_get_target_arch(), reps);

    if (build_weights() != 0) {
        fprintf(stderr, "gemm-ceiling: cannot build weights\n");
        return 1;
    }
    float *x = hmtb_alloc((size_t)N_PROMPT * FFN * sizeof(float));
    float *y = hmtb_alloc((size_t)N_PROMPT * VOCAB * sizeof(float));
    if (!x || !y) return 1;
    for (size_t i = 0; i < (size_t)N_PROMPT * FFN; i++) x[i] = (float)(i % 13) * 0.01f - 0.06f;
    size_t decode_bytes = 0;
    for (int si = 0; si < N_SHAPES; si++) decode_bytes += shape_bytes(si);

    for (int nth = 1; nth <= max_threads; nth++) {
        hmti_pool *pool = NULL;
        if (hmti_pool_create(&pool, nth) != 0) return 1;
        int bm = 0, bn = 0, bk = 0;
        double ceil_gf = hmtb_gemm_ceiling(nth, 0.05, reps, &bm, &bn, &bk);
        double bw = hmtb_stream_read_gbs(nth, (size_t)512 << 20, reps);
        printf("\n== %d thread%s ==\n", nth, nth > 1 ? "s" : "");
        double gf_shape[N_SHAPES], gbs_shape[N_SHAPES], gf_layers, gbs_decode, t_decode;
        double flop_all = 0, t_all = 0;
        for (int si = 0; si < N_SHAPES; si++) {
            double v[64];
            run_shape(pool, si, x, N_PROMPT, y); /* warm-up */
            for (int r = 0; r < reps; r++) v[r] = run_shape(pool, si, x, N_PROMPT, y);
            double t = hmtb_median(v, reps);
            double flop = 2.0 * shapes[si].rows * shapes[si].cols * N_PROMPT * n_mats[si];
            gf_shape[si] = flop / t * 1e-9;
            if (si < 4) {
                flop_all += flop;
                t_all += t;
            }
        }
        gf_layers = flop_all / t_all * 1e-9;
        for (int si = 0; si < N_SHAPES; si++) {
            double v[64];
            run_shape(pool, si, x, 1, y);
            for (int r = 0; r < reps; r++) v[r] = run_shape(pool, si, x, 1, y);
            gbs_shape[si] = (double)shape_bytes(si) / hmtb_median(v, reps) * 1e-9;
        }
        double v[64];
        run_decode(pool, x, y);
        for (int r = 0; r < reps; r++) v[r] = run_decode(pool, x, y);
        t_decode = hmtb_median(v, reps);
        gbs_decode = (double)decode_bytes / t_decode * 1e-9;

        int bm2 = 0, bn2 = 0, bk2 = 0;
        double ceil2 = hmtb_gemm_ceiling(nth, 0.05, reps, &bm2, &bn2, &bk2);
        double bw2 = hmtb_stream_read_gbs(nth, (size_t)512 << 20, reps);
        printf("GEMM ceiling (raw libxsmm tiles, in cache): %.1f GFLOP/s (before %.1f at %dx%dx%d, "
               "after %.1f at %dx%dx%d)\n",
               ceil_gf > ceil2 ? ceil_gf : ceil2, ceil_gf, bm, bn, bk, ceil2, bm2, bn2, bk2);
        printf("streaming-read bandwidth: %.1f GB/s (before %.1f, after %.1f)\n", bw > bw2 ? bw : bw2,
               bw, bw2);
        if (ceil2 > ceil_gf) ceil_gf = ceil2;
        if (bw2 > bw) bw = bw2;

        printf("prompt n=%d: %-18s %9s %8s\n", N_PROMPT, "shape", "GFLOP/s", "% ceil");
        for (int si = 0; si < N_SHAPES; si++)
            printf("  %-26s %9.1f %7.1f%%\n", shapes[si].name, gf_shape[si],
                   100.0 * gf_shape[si] / ceil_gf);
        printf("  %-26s %9.1f %7.1f%%\n", "all layers (30 x 7)", gf_layers,
               100.0 * gf_layers / ceil_gf);
        printf("decode n=1 GEMV: %-22s %8s %8s\n", "shape", "GB/s", "% bw");
        for (int si = 0; si < N_SHAPES; si++)
            printf("  %-26s %9.1f %7.1f%%%s\n", shapes[si].name, gbs_shape[si],
                   100.0 * gbs_shape[si] / bw,
                   shape_bytes(si) < ((size_t)64 << 20) ? "  (partly cache-resident)" : "");
        printf("  %-26s %9.1f %7.1f%%  (%.1f MB/token, %.1f ms, %.1f tokens/s GEMV-only)\n",
               "whole decode step", gbs_decode, 100.0 * gbs_decode / bw, decode_bytes * 1e-6,
               t_decode * 1e3, 1.0 / t_decode);
        hmti_pool_release(pool);
    }
    return 0;
}
