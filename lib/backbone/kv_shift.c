/* Drop slots from a post-RoPE KV cache and re-position the later ones
 * (kv_shift.h). RoPE is a rotation per pair whose angle is linear in the
 * position, so moving a cached key from position p to p - n is one more
 * rotation by -n * f_i: the key is never recomputed (StreamingLLM keeps the
 * cached K/V and re-assigns positions inside the cache). */
#include <math.h>
#include <string.h>

#include "backbone/kv_shift.h"

static double get(const hmti_backbone *b, const unsigned char *a, int64_t t) {
    if (b->kv_gtype == HMTI_TYPE_F32) {
        float x;
        memcpy(&x, a + t * sizeof x, sizeof x);
        return x;
    }
    uint16_t h;
    memcpy(&h, a + t * sizeof h, sizeof h);
    return b->kv_gtype == HMTI_TYPE_F16 ? hmti_f16_to_f32(h) : hmti_bf16_to_f32(h);
}

/* Turn rows a and b (one rotated pair of one KV head, slots [0, n)) by the
 * angle -ang. Double for the angle and the products: the error stays at
 * float rounding however large count * f_i is. */
static void turn_back(const hmti_backbone *bb, unsigned char *a, unsigned char *b, int64_t n,
                      double ang) {
    const double c = cos(ang), s = sin(ang);
    for (int64_t t = 0; t < n; t++) {
        const double x = get(bb, a, t), y = get(bb, b, t);
        hmti_kv_put(bb, a, (size_t)t, (float)(x * c + y * s));
        hmti_kv_put(bb, b, (size_t)t, (float)(y * c - x * s));
    }
}

void hmti_kv_drop(hmti_backbone *b, int32_t first, int32_t count, int32_t n_past) {
    const hmt_model *m = b->m;
    const int64_t n_ctx = b->n_ctx;
    if (count <= 0 || first < 0 || first + count > n_past || n_past > n_ctx) return;
    const int64_t hd = m->head_dim, kv_dim = (int64_t)m->n_head_kv * hd;
    const int64_t moved = (int64_t)n_past - first - count; /* slots that move down */
    const int64_t half = m->rope.n_rot / 2;
    const size_t e = b->kv_elt;
    for (int l = 0; l < m->n_layer; l++) {
        /* the table this cache's keys were rotated with (LongRoPE: by n_ctx) */
        const double *freq = hmti_model_rope_freqs(m, m->layers[l].swa, (int32_t)n_ctx);
        unsigned char *vl = b->v + (size_t)l * n_ctx * kv_dim * e;
        if (moved > 0)
            memmove(vl + first * kv_dim * e, vl + (first + count) * kv_dim * e,
                    (size_t)(moved * kv_dim) * e);
        for (int h = 0; h < m->n_head_kv; h++) {
            /* [hd][n_ctx] */
            unsigned char *kh = b->kt + ((size_t)l * m->n_head_kv + h) * hd * n_ctx * e;
            if (moved <= 0) continue;
            for (int64_t c = 0; c < hd; c++)
                memmove(kh + (c * n_ctx + first) * e, kh + (c * n_ctx + first + count) * e,
                        (size_t)moved * e);
            for (int64_t i = 0; i < half; i++) {
                const int64_t i0 = m->rope_neox ? i : 2 * i, i1 = m->rope_neox ? i + half : 2 * i + 1;
                turn_back(b, kh + (i0 * n_ctx + first) * e, kh + (i1 * n_ctx + first) * e, moved,
                          (double)count * freq[i]);
            }
        }
    }
}
