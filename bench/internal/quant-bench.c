/* quant-bench: decode GEMV on weights kept in GGML block formats
 * (lib/kernels/quant.h), against the streaming-read bandwidth measured in
 * the same run (docs/QUANTS.md). For each weight type: a decode step over a
 * stack of layers (q, k, v, o, gate, up, down of a 768-wide model, widths
 * multiples of 256 so every type applies), each matrix one hmti_gemv_q_rows
 * job split over the pool after one activation quantization; reported as GB/s
 * of weights read, % of the bandwidth, and the per-path speed of one
 * matrix on one thread (ref / avx2 / avx512 / vnni). For the types this CPU
 * has an interleaved layout for (hmti_q_il_rows: quant.h), the same weights
 * repacked are timed too, the two layouts alternating rep by rep.
 *
 *   quant-bench [threads=2] [reps=7] [layers=30] [TYPE...]   (default types:
 *   Q8_0 Q4_0 Q4_K Q5_K Q6_K F16 BF16)
 *
 * Random bytes with finite f16 scales: speed does not depend on the values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ceiling.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "qfill.h"

#define HIDDEN 768
#define FFN 2048
#define KV 256
#define N_MAT 7
static const int64_t ROWS[N_MAT] = {HIDDEN, KV, KV, HIDDEN, FFN, FFN, HIDDEN};
static const int64_t COLS[N_MAT] = {HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, FFN};

typedef struct {
    uint32_t type;
    int64_t rows, cols;
    const uint8_t *w;
    size_t stride;
    const void *act;
    float *y;
    int il; /* w in the interleaved layout (hmti_q_interleave) */
} job;

static void gemv_job(void *p, int ith, int nth) {
    const job *j = p;
    int64_t lo, hi;
    hmti_split_range(j->rows, ith, nth, 16, &lo, &hi);
    if (lo < hi && j->il) hmti_gemv_q_rows_il(j->type, j->rows, lo, hi, j->cols, j->w, j->act, j->y);
    else if (lo < hi) hmti_gemv_q_rows(j->type, lo, hi, j->cols, j->w, j->stride, j->act, j->y);
}

static int usage(FILE *f, int rc) {
    fprintf(f, "usage: quant-bench [THREADS=2] [REPS=7] [LAYERS=30] [TYPE...]\n"
               "  decode GEMV on GGML weight blocks against the streaming-read bandwidth;\n"
               "  TYPE: Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS F16 BF16 F32\n");
    return rc;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage(stdout, 0);
    for (int i = 1; i < argc && i < 4; i++)
        if (atoi(argv[i]) < 1) {
            fprintf(stderr, "quant-bench: '%s' must be a positive count (argument %d)\n", argv[i], i);
            return usage(stderr, 2);
        }
    int max_threads = argc > 1 ? atoi(argv[1]) : 2;
    int reps = argc > 2 ? atoi(argv[2]) : 7;
    int layers = argc > 3 ? atoi(argv[3]) : 30;
    if (max_threads < 1) max_threads = 1;
    if (reps < 1 || reps > 64) reps = 7;
    if (layers < 1) layers = 1;
    uint32_t types[32];
    int nt = 0;
    for (int i = 4; i < argc && nt < 32; i++) {
        uint32_t t = hmtb_qtype(argv[i]);
        if (t == 999) {
            fprintf(stderr, "quant-bench: unknown type %s\n", argv[i]);
            return usage(stderr, 2);
        }
        types[nt++] = t;
    }
    if (!nt) {
        static const uint32_t def[] = {8, 2, 12, 13, 14, 1, 30};
        for (int i = 0; i < 7; i++) types[nt++] = def[i];
    }
    static const char *path_name[HMTI_QPATH_COUNT] = {"ref", "avx2", "avx512", "vnni"};
    printf("quant-bench: %d layers of %d matrices (hidden %d, ffn %d, kv %d); CPU path '%s'; "
           "reps %d (medians)\n", layers, N_MAT, HIDDEN, FFN, KV, path_name[hmti_quant_path()], reps);

    float *x = hmtb_alloc(FFN * sizeof(float));
    float *y = hmtb_alloc(FFN * sizeof(float));
    void *act = hmtb_alloc(hmti_qact_bytes(2, FFN) + hmti_qact_bytes(12, FFN) + 4096);
    if (!x || !y || !act) return 1;
    for (int i = 0; i < FFN; i++) x[i] = (float)((i * 37) % 101) * 0.02f - 1.0f;

    for (int ti = 0; ti < nt; ti++) {
        const uint32_t type = types[ti];
        const char *name = hmti_qtraits_of(type)->name;
        size_t off[N_MAT], per_layer = 0;
        for (int m = 0; m < N_MAT; m++) {
            off[m] = per_layer;
            per_layer += hmti_qrow_bytes(type, COLS[m]) * (size_t)ROWS[m];
        }
        const size_t total = per_layer * (size_t)layers;
        uint8_t *w = hmtb_alloc(total);
        if (!w) {
            fprintf(stderr, "quant-bench: cannot allocate %zu bytes\n", total);
            return 1;
        }
        hmtb_qfill(type, w, total);
        /* the same weights in the interleaved layout, if this CPU has its kernels */
        const int il = hmti_q_il_rows(type) > 0;
        uint8_t *wi = il ? hmtb_alloc(total) : NULL;
        if (il && !wi) return 1;
        if (il)
            for (int l = 0; l < layers; l++)
                for (int m = 0; m < N_MAT; m++)
                    hmti_q_interleave(type, ROWS[m], COLS[m], w + (size_t)l * per_layer + off[m],
                                      wi + (size_t)l * per_layer + off[m]);
        printf("\n== %s: %.3f bits/weight, %.1f MB of weights per step ==\n", name,
               8.0 * (double)hmti_qtraits_of(type)->block_bytes / hmti_qtraits_of(type)->block_elems,
               (double)total * 1e-6);
        /* per-path speed, one thread, one matrix (gate: FFN x HIDDEN) reused (cache-warm) */
        printf("  one thread, %dx%d (%.2f MB, repeated): ", FFN, HIDDEN,
               (double)hmti_qrow_bytes(type, HIDDEN) * FFN * 1e-6);
        if (hmti_qact_bytes(type, HIDDEN)) hmti_quantize_act(type, x, HIDDEN, act);
        const void *a = hmti_qact_bytes(type, HIDDEN) ? act : (const void *)x;
        for (int p = 0; p <= hmti_quant_path(); p++) {
            hmti_vec_dot_fn f = hmti_vec_dot_path(type, p);
            if (!f) continue;
            const size_t rb = hmti_qrow_bytes(type, HIDDEN);
            double v[64];
            for (int r = 0; r < reps; r++) {
                double t0 = hmtb_now();
                for (int it = 0; it < 8; it++)
                    for (int64_t row = 0; row < FFN; row++) y[row] = f(HIDDEN, w + off[4] + row * rb, a);
                v[r] = (hmtb_now() - t0) / 8;
            }
            printf(" %s %.1f GB/s", path_name[p], (double)rb * FFN / hmtb_median(v, reps) * 1e-9);
        }
        { /* the GEMV on this CPU's path: multi-row kernels where the path has them */
            const size_t rb = hmti_qrow_bytes(type, HIDDEN);
            double v[64];
            for (int r = 0; r < reps; r++) {
                double t0 = hmtb_now();
                for (int it = 0; it < 8; it++)
                    hmti_gemv_q_rows(type, 0, FFN, HIDDEN, w + off[4], rb, a, y);
                v[r] = (hmtb_now() - t0) / 8;
            }
            printf(" | gemv %.1f GB/s", (double)rb * FFN / hmtb_median(v, reps) * 1e-9);
            if (il) {
                for (int r = 0; r < reps; r++) {
                    double t0 = hmtb_now();
                    for (int it = 0; it < 8; it++)
                        hmti_gemv_q_rows_il(type, FFN, 0, FFN, HIDDEN, wi + off[4], a, y);
                    v[r] = (hmtb_now() - t0) / 8;
                }
                printf(", interleaved %.1f GB/s", (double)rb * FFN / hmtb_median(v, reps) * 1e-9);
            }
        }
        printf("\n");
        for (int nth = 1; nth <= max_threads; nth++) {
            hmti_pool *pool = NULL;
            if (hmti_pool_create(&pool, nth) != 0) return 1;
            double bw = hmtb_stream_read_gbs(nth, (size_t)256 << 20, reps);
            double v[2][64];
            /* r = -1: warm-up; the two layouts alternate, so that a slow spell hits both */
            for (int r = -1; r < reps; r++)
                for (int k = 0; k <= il; k++) {
                    const uint8_t *base = k ? wi : w;
                    double t0 = hmtb_now();
                    for (int l = 0; l < layers; l++)
                        for (int m = 0; m < N_MAT; m++) {
                            job j = {type, ROWS[m], COLS[m], base + (size_t)l * per_layer + off[m],
                                     hmti_qrow_bytes(type, COLS[m]), x, y, k};
                            if (hmti_qact_bytes(type, COLS[m])) {
                                hmti_quantize_act(type, x, COLS[m], act);
                                j.act = act;
                            }
                            hmti_pool_run(pool, gemv_job, &j);
                        }
                    if (r >= 0) v[k][r] = hmtb_now() - t0;
                }
            for (int k = 0; k <= il; k++) {
                double t = hmtb_median(v[k], reps);
                double gbs = (double)total / t * 1e-9;
                printf("  %d thread%s%s: decode step %.2f ms, %.1f GB/s = %.1f%% of the streaming "
                       "read (%.1f GB/s)\n", nth, nth > 1 ? "s" : " ", k ? ", interleaved" : "",
                       t * 1e3, gbs, 100.0 * gbs / bw, bw);
            }
            hmti_pool_release(pool);
        }
    }
    return 0;
}
