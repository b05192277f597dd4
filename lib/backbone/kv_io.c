/* KV regions through a state walk (kv_io.h). */
#include "backbone/kv_io.h"

static void walk_elems(hmti_walk *c, uint32_t gtype, unsigned char *field, size_t n, const char *name,
                       int64_t base) {
    if (gtype == HMTI_TYPE_F32)
        hmti_walk_floats(c, (float *)field, n, name, base);
    else
        hmti_walk_halves(c, (uint16_t *)field, n, gtype == HMTI_TYPE_BF16, name, base);
}

void hmti_kv_walk(hmti_walk *c, const hmt_model *m, const hmti_kv_region *r) {
    const size_t kvd = (size_t)m->n_head_kv * m->head_dim, n = (size_t)r->n, e = hmti_row_size(r->gtype, 1);
    /* CHECK moves no data: no pointer is formed into a region that may be
     * smaller than the state being checked */
    const int data = c->kind != HMTI_CHECK;
    const int64_t hd = m->head_dim;
    const size_t head = hmti_kt_head_elems(hd, (int64_t)r->stride);
    const size_t v_head = hmti_v_head_elems(hd, (int64_t)r->stride);
    for (int l = 0; l < m->n_layer; l++) {
        for (size_t row = 0; row < kvd; row++) {
            const size_t at = (size_t)l * kvd + row; /* the row saved: slots of one component */
            if (!data) {
                walk_elems(c, r->gtype, NULL, n, "K cache", (int64_t)(at * n));
                continue;
            }
            const unsigned char *keys = r->kt + (at / (size_t)hd) * head * e; /* layer l, KV head */
            for (int64_t t = 0, len; t < (int64_t)n; t += len) { /* block by block */
                len = hmti_kt_run(t, (int64_t)n - t);
                const size_t i = hmti_kt_at(hd, (int64_t)(row % (size_t)hd), t);
                walk_elems(c, r->gtype, (unsigned char *)keys + i * e, (size_t)len, "K cache",
                           (int64_t)(at * n) + t);
            }
        }
        if (!data) {
            walk_elems(c, r->gtype, NULL, n * kvd, "V cache", (int64_t)((size_t)l * n * kvd));
            continue;
        }
        /* saved slot by slot, kv_dim values each: every head's slices in turn */
        const unsigned char *layer_v = r->v + (size_t)l * (size_t)m->n_head_kv * v_head * e;
        for (size_t t = 0; t < n; t++)
            for (int64_t g = 0; g < m->n_head_kv; g++)
                for (int64_t c0 = 0; c0 < hd; c0 += HMTI_V_SLICE) {
                    const size_t i = (size_t)g * v_head + hmti_v_at(hd, (int64_t)r->stride, c0, (int64_t)t);
                    walk_elems(c, r->gtype, (unsigned char *)layer_v + i * e, (size_t)hmti_v_width(hd, c0),
                               "V cache", (int64_t)(((size_t)l * n + t) * kvd + (size_t)(g * hd + c0)));
                }
    }
}

uint64_t hmti_kv_walk_bytes(const hmt_model *m, int64_t n, uint32_t gtype) {
    return 2 * (uint64_t)m->n_layer * (uint64_t)m->n_head_kv * (uint64_t)m->head_dim *
           (uint64_t)hmti_row_size(gtype, n);
}
