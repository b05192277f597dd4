/* gemv-stream: how close the decode GEMVs come to a pure streaming read.
 *
 *   gemv-stream [THREADS=1] [REPS=3] [TYPE...]
 *
 * For each type (default F16 BF16 Q8_0 Q6_K Q4_K Q4_0): a matrix of about
 * 1 GiB (2048 columns, random blocks with finite scales: the speed does not
 * depend on the values), the activation quantized once, the rows split into
 * one contiguous range per thread (as the decode's hmti_swork does), and the
 * best of REPS passes of hmti_gemv_q_rows over it, stored and (where this
 * CPU has kernels for it) repacked; beside it the streaming read of a 512 MiB
 * buffer measured right before. Much larger than any cache, so this is the
 * kernels' streaming efficiency without the model around them (matrix
 * boundaries, barriers, attention): docs/QUANTS.md "Decode speed". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ceiling.h"
#include "kernels/quant.h"
#include "qfill.h"

typedef struct {
    uint32_t type;
    int64_t rows, cols;
    const uint8_t *w;
    size_t rb;
    const void *act;
    float *y;
    int il, nth;
} gemv_job;

static void gemv_share(void *arg, int ith, int nth) {
    const gemv_job *j = arg;
    const int64_t per = j->rows / nth / 4 * 4;
    const int64_t r0 = per * ith, r1 = ith == nth - 1 ? j->rows : r0 + per;
    if (j->il)
        hmti_gemv_q_rows_il(j->type, j->rows, r0, r1, j->cols, j->w, j->act, j->y);
    else
        hmti_gemv_q_rows(j->type, r0, r1, j->cols, j->w, j->rb, j->act, j->y);
}

static double best_gbs(gemv_job *j, int reps, size_t bytes) {
    double best = 0;
    hmtb_run_threads(j->nth, gemv_share, j); /* warm-up: page faults */
    for (int r = 0; r < reps; r++) {
        const double g = (double)bytes / hmtb_run_threads(j->nth, gemv_share, j) * 1e-9;
        if (g > best) best = g;
    }
    return best;
}

static int usage(FILE *f, int rc) {
    fprintf(f, "usage: gemv-stream [THREADS=1] [REPS=3] [TYPE...]\n"
               "  decode GEMVs over ~1 GiB against a pure streaming read (default types\n"
               "  F16 BF16 Q8_0 Q6_K Q4_K Q4_0)\n");
    return rc;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage(stdout, 0);
    const int nth = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 3;
    const char *dflt[] = {"F16", "BF16", "Q8_0", "Q6_K", "Q4_K", "Q4_0"};
    const char **names = argc > 3 ? (const char **)argv + 3 : dflt;
    const int n_types = argc > 3 ? argc - 3 : 6;
    if (nth < 1 || nth > 64 || reps < 1 || reps > 64) {
        fprintf(stderr, "gemv-stream: THREADS must be 1..64 and REPS 1..64\n");
        return usage(stderr, 2);
    }
    for (int k = 0; k < n_types; k++)
        if (hmtb_qtype(names[k]) == 999) {
            fprintf(stderr, "gemv-stream: unknown type %s\n", names[k]);
            return usage(stderr, 2);
        }
    const int64_t cols = 2048;
    float *x = malloc((size_t)cols * sizeof *x);
    void *act = aligned_alloc(64, 1 << 20);
    if (!x || !act) return 1;
    for (int64_t i = 0; i < cols; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    printf("threads %d, best of %d passes over ~1 GiB, 2048 columns (GB/s of weights)\n", nth, reps);
    printf("%-6s %9s %9s %9s %9s\n", "type", "stream", "stored", "repacked", "of stream");
    for (int k = 0; k < n_types; k++) {
        const hmti_qtraits *t = hmti_qtraits_of(hmtb_qtype(names[k]));
        const size_t rb = hmti_qrow_bytes(t->type, cols);
        const int64_t rows = (int64_t)(((size_t)1 << 30) / rb / 64 * 64);
        const size_t bytes = (size_t)rows * rb;
        uint8_t *w = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        float *y = malloc((size_t)rows * sizeof *y);
        if (w == MAP_FAILED || !y) return 1;
        madvise(w, bytes, MADV_HUGEPAGE);
        hmtb_qfill(t->type, w, bytes);
        hmti_quantize_act(t->type, x, cols, act);
        gemv_job j = {t->type, rows, cols, w, rb, hmti_qact_bytes(t->type, cols) ? act : (void *)x,
                      y, 0, nth};
        const double stream = hmtb_stream_read_gbs(nth, (size_t)512 << 20, 5);
        const double stored = best_gbs(&j, reps, bytes);
        double repacked = 0;
        if (hmti_q_il_rows(t->type) > 0) {
            uint8_t *w2 = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (w2 == MAP_FAILED) return 1;
            madvise(w2, bytes, MADV_HUGEPAGE);
            hmti_q_interleave(t->type, rows, cols, w, w2);
            j.w = w2, j.il = 1;
            repacked = best_gbs(&j, reps, bytes);
            munmap(w2, bytes);
        }
        const double best = repacked > stored ? repacked : stored;
        char rp[16] = "-";
        if (repacked > 0) snprintf(rp, sizeof rp, "%.1f", repacked);
        printf("%-6s %9.1f %9.1f %9s %8.1f%%\n", t->name, stream, stored, rp, 100 * best / stream);
        munmap(w, bytes);
        free(y);
    }
    free(x);
    free(act);
    return 0;
}
