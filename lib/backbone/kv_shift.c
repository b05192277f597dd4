/* Drop slots from a post-RoPE KV cache and re-position the later ones
 * (kv_shift.h). RoPE is a rotation per pair whose angle is linear in the
 * position, so moving a cached key from position p to p - n is one more
 * rotation by -n * f_i: the key is never recomputed (StreamingLLM keeps the
 * cached K/V and re-assigns positions inside the cache). */
#include <math.h>
#include <string.h>

#include "backbone/kv_shift.h"

/* Turn rows a and b (one rotated pair of one KV head, slots [0, n)) by the
 * angle -ang. Double for the angle and the products: the error stays at
 * float rounding however large count * f_i is. */
static void turn_back(float *a, float *b, int64_t n, double ang) {
    const double c = cos(ang), s = sin(ang);
    for (int64_t t = 0; t < n; t++) {
        const double x = a[t], y = b[t];
        a[t] = (float)(x * c + y * s);
        b[t] = (float)(y * c - x * s);
    }
}

void hmti_kv_shift(const hmt_model *m, float *kt, float *v, int64_t n_ctx, int32_t first,
                   int32_t count, int32_t n_past) {
    if (count <= 0 || first < 0 || first + count > n_past || n_past > n_ctx) return;
    const int64_t hd = m->head_dim, kv_dim = (int64_t)m->n_head_kv * hd;
    const int64_t moved = (int64_t)n_past - first - count; /* slots that move down */
    const int64_t half = m->rope.n_rot / 2;
    for (int l = 0; l < m->n_layer; l++) {
        /* the table this cache's keys were rotated with (LongRoPE: by n_ctx) */
        const double *freq = hmti_model_rope_freqs(m, m->layers[l].swa, (int32_t)n_ctx);
        float *vl = v + (size_t)l * n_ctx * kv_dim;
        if (moved > 0)
            memmove(vl + first * kv_dim, vl + (first + count) * kv_dim,
                    (size_t)(moved * kv_dim) * sizeof *vl);
        for (int h = 0; h < m->n_head_kv; h++) {
            float *kh = kt + ((size_t)l * m->n_head_kv + h) * hd * n_ctx; /* [hd][n_ctx] */
            if (moved <= 0) continue;
            for (int64_t c = 0; c < hd; c++)
                memmove(kh + c * n_ctx + first, kh + c * n_ctx + first + count,
                        (size_t)moved * sizeof *kh);
            for (int64_t i = 0; i < half; i++) {
                const int64_t i0 = m->rope_neox ? i : 2 * i, i1 = m->rope_neox ? i + half : 2 * i + 1;
                turn_back(kh + i0 * n_ctx + first, kh + i1 * n_ctx + first, moved,
                          (double)count * freq[i]);
            }
        }
    }
}

void hmti_kv_drop(hmti_backbone *b, int32_t first, int32_t count, int32_t n_past) {
    hmti_kv_shift(b->m, b->kt, b->v, b->n_ctx, first, count, n_past);
}
