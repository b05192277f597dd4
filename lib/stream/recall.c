#include "stream/recall.h"

#include <math.h>

#include "kernels/kernels.h"

static float round_bf16(float x, int bf16) {
    return bf16 ? hmti_bf16_to_f32(hmti_f32_to_bf16(x)) : x;
}

/* y[r] = round(W[r] · round(x)) for the d_h rows of W [d_h][d]; products
 * accumulate in double so the only rounding that matters is the emulated one. */
static void project(const float *w, int32_t rows, int32_t d, const float *x, int bf16, float *y) {
    for (int32_t r = 0; r < rows; r++) {
        double acc = 0;
        const float *wr = w + (size_t)r * d;
        for (int32_t c = 0; c < d; c++)
            acc += (double)round_bf16(wr[c], bf16) * (double)round_bf16(x[c], bf16);
        y[r] = round_bf16((float)acc, bf16);
    }
}

void hmti_recall_key(const hmt_adapter *a, int bf16, const float *mem, float *key,
                     float *mem_out) {
    project(a->wk, a->d_h, a->d, mem, bf16, key);
    for (int32_t c = 0; c < a->d; c++) mem_out[c] = round_bf16(mem[c], bf16);
}

void hmti_recall(const hmt_adapter *a, int bf16, const float *s, const float *keys,
                 const float *values, int32_t n, float *weights, float *p, float *q) {
    const int32_t dh = a->d_h, d = a->d;
    project(a->wq, dh, d, s, bf16, q);
    const double scale = a->scale == HMTI_SCALE_LINEAR ? (double)dh : sqrt((double)dh);
    for (int32_t i = 0; i < n; i++) {
        double acc = 0;
        for (int32_t r = 0; r < dh; r++) acc += (double)q[r] * (double)keys[(size_t)i * dh + r];
        /* PyTorch rounds the bf16 matmul's output, then the division's */
        weights[i] = bf16 ? round_bf16(round_bf16((float)acc, 1) / (float)scale, 1)
                          : (float)(acc / scale);
    }
    hmti_softmax(weights, n);
    for (int32_t i = 0; i < n; i++) weights[i] = round_bf16(weights[i], bf16);
    for (int32_t c = 0; c < d; c++) {
        double acc = 0;
        for (int32_t i = 0; i < n; i++) acc += (double)weights[i] * (double)values[(size_t)i * d + c];
        p[c] = round_bf16((float)acc, bf16);
    }
}
