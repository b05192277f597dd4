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

/* Move slots [from, from + n) of component c of one head's keys (blocks,
 * kv_layout.h) down to [to, to + n), to < from: in runs that stay inside a
 * block at both ends, lowest first, so nothing is read after it is
 * overwritten. */
static void move_down(unsigned char *keys, size_t e, int64_t hd, int64_t c, int64_t to, int64_t from,
                      int64_t n) {
    for (int64_t len; n > 0; to += len, from += len, n -= len) {
        len = hmti_kt_run(to, hmti_kt_run(from, n));
        memmove(keys + hmti_kt_at(hd, c, to) * e, keys + hmti_kt_at(hd, c, from) * e, (size_t)len * e);
    }
}

/* Turn components i0 and i1 (one rotated pair) of one head's keys, slots
 * [first, first + n), by the angle -ang. Double for the angle and the
 * products: the error stays at float rounding however large count * f_i
 * is. */
static void turn_back(const hmti_backbone *bb, unsigned char *keys, int64_t i0, int64_t i1, int64_t first,
                      int64_t n, double ang) {
    const int64_t hd = bb->m->head_dim;
    const double c = cos(ang), s = sin(ang);
    for (int64_t t = first; t < first + n; t++) {
        const size_t a = hmti_kt_at(hd, i0, t), b = hmti_kt_at(hd, i1, t);
        const double x = get(bb, keys, (int64_t)a), y = get(bb, keys, (int64_t)b);
        hmti_kv_put(bb, keys, a, (float)(x * c + y * s));
        hmti_kv_put(bb, keys, b, (float)(y * c - x * s));
    }
}

void hmti_kv_drop(hmti_backbone *b, int32_t first, int32_t count, int32_t n_past) {
    const hmt_model *m = b->m;
    const int64_t n_ctx = b->n_ctx;
    if (count <= 0 || first < 0 || first + count > n_past || n_past > n_ctx) return;
    const int64_t hd = m->head_dim;
    const int64_t moved = (int64_t)n_past - first - count; /* slots that move down */
    if (moved <= 0) return;
    const int64_t half = m->rope.n_rot / 2;
    const size_t e = b->kv_elt;
    for (int l = 0; l < m->n_layer; l++) {
        /* the table this cache's keys were rotated with (LongRoPE: by n_ctx) */
        const double *freq = hmti_model_rope_freqs(m, m->layers[l].swa, (int32_t)n_ctx);
        for (int h = 0; h < m->n_head_kv; h++) {
            unsigned char *values = hmti_backbone_v_head(b, 0, l, h);
            for (int64_t c0 = 0; c0 < hd; c0 += HMTI_V_SLICE)
                memmove(values + hmti_v_at(hd, n_ctx, c0, first) * e,
                        values + hmti_v_at(hd, n_ctx, c0, first + count) * e,
                        (size_t)(moved * hmti_v_width(hd, c0)) * e);
            unsigned char *keys = hmti_backbone_kt_head(b, 0, l, h);
            for (int64_t c = 0; c < hd; c++) move_down(keys, e, hd, c, first, first + count, moved);
            for (int64_t i = 0; i < half; i++) {
                const int64_t i0 = m->rope_neox ? i : 2 * i, i1 = m->rope_neox ? i + half : 2 * i + 1;
                turn_back(b, keys, i0, i1, first, moved, (double)count * freq[i]);
            }
        }
    }
}
