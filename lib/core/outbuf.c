/* Grow-only output buffers that never move a block a caller may hold
 * (lib/core/outbuf.h). */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/outbuf.h"

int hmti_outbuf_reserve(hmti_retired *r, float **buf, size_t *cap, size_t rows, size_t width) {
    if (rows <= *cap) return HMT_OK;
    size_t want = *cap + *cap / 2;
    if (want < rows) want = rows;
    if (*buf && r->n == r->cap) { /* room to retire the old block, before anything changes */
        size_t ncap = r->cap ? 2 * r->cap : 8;
        void **nb = hmti_realloc(r->blocks, ncap * sizeof *nb);
        if (!nb) return hmti_errf(HMT_E_NOMEM, "out of memory for %zu output rows", want);
        r->blocks = nb;
        r->cap = ncap;
    }
    float *p = hmti_malloc(want * width * sizeof(float));
    if (!p) return hmti_errf(HMT_E_NOMEM, "out of memory for %zu output rows", want);
    if (*buf) {
        memcpy(p, *buf, *cap * width * sizeof(float));
        r->blocks[r->n++] = *buf;
    }
    *buf = p;
    *cap = want;
    return HMT_OK;
}

void hmti_outbuf_release(hmti_retired *r) {
    for (size_t i = 0; i < r->n; i++) free(r->blocks[i]);
    free(r->blocks);
    memset(r, 0, sizeof *r);
}
