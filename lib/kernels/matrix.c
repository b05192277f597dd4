/* Packed weight matrices. W [rows][cols] is stored as ceil(rows / P) panels
 * of P = PANEL_ROWS rows; panel p is column-major P × cols (element (r, c) of
 * the panel at c·P + r), so one libxsmm call computes a P-row block of the
 * output from one contiguous panel, and the decode GEMV streams each panel
 * front to back. The last panel is padded with zero rows. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"

#define PANEL_ROWS 64

static int type_name_ok(uint32_t t) { return t == 0 || t == 1 || t == 8 || t == 30; }

int hmti_matrix_pack(hmti_matrix *m, const void *src, uint32_t src_type, int64_t rows,
                     int64_t cols, hmti_arena *arena) {
    if (!m) return hmti_errf(HMT_E_INVAL, "hmti_matrix_pack: NULL matrix");
    memset(m, 0, sizeof *m);
    if (!src || !arena) return hmti_errf(HMT_E_INVAL, "hmti_matrix_pack: NULL source or arena");
    if (rows <= 0 || cols <= 0)
        return hmti_errf(HMT_E_INVAL, "matrix shape %lld x %lld is invalid", (long long)rows,
                         (long long)cols);
    if (!type_name_ok(src_type))
        return hmti_errf(HMT_E_UNSUPPORTED, "tensor type %u is not supported for weights",
                         (unsigned)src_type);
    size_t row_bytes = hmti_row_size(src_type, cols);
    if (row_bytes == 0)
        return hmti_errf(HMT_E_UNSUPPORTED, "a row of %lld elements does not fit type %u's blocks",
                         (long long)cols, (unsigned)src_type);
    const int64_t P = PANEL_ROWS;
    int64_t n_panels = (rows + P - 1) / P;
    if ((uint64_t)n_panels > SIZE_MAX / sizeof(float) / (uint64_t)P / (uint64_t)cols)
        return hmti_errf(HMT_E_NOMEM, "matrix %lld x %lld is too large", (long long)rows,
                         (long long)cols);
    size_t nbytes = (size_t)n_panels * (size_t)P * (size_t)cols * sizeof(float);
    float *data = hmti_arena_alloc(arena, nbytes);
    if (!data)
        return hmti_errf(HMT_E_NOMEM, "out of memory packing a %lld x %lld matrix (%zu bytes)",
                         (long long)rows, (long long)cols, nbytes);
    float *tmp = hmti_malloc((size_t)P * (size_t)cols * sizeof(float));
    if (!tmp) {
        return hmti_errf(HMT_E_NOMEM, "out of memory packing a %lld x %lld matrix",
                         (long long)rows, (long long)cols);
    }
    const unsigned char *s = src;
    for (int64_t p = 0; p < n_panels; p++) {
        int64_t r0 = p * P;
        int64_t nr = rows - r0 < P ? rows - r0 : P;
        for (int64_t r = 0; r < nr; r++)
            hmti_row_to_f32(s + (size_t)(r0 + r) * row_bytes, src_type, tmp + r * cols, cols);
        if (nr < P) memset(tmp + nr * cols, 0, (size_t)(P - nr) * (size_t)cols * sizeof(float));
        /* transpose tmp [P][cols] into the panel (column-major P × cols), in
         * blocks of 16 columns so reads stay in one cache line */
        float *panel = data + (size_t)p * (size_t)P * (size_t)cols;
        for (int64_t c0 = 0; c0 < cols; c0 += 16) {
            int64_t cw = cols - c0 < 16 ? cols - c0 : 16;
            for (int64_t r = 0; r < P; r++) {
                const float *t = tmp + r * cols + c0;
                for (int64_t c = 0; c < cw; c++) panel[(c0 + c) * P + r] = t[c];
            }
        }
    }
    free(tmp);
    m->rows = rows;
    m->cols = cols;
    m->panel_rows = P;
    m->data = data;
    m->nbytes = nbytes;
    return HMT_OK;
}

int hmti_matrix_repack(hmti_matrix *m, hmti_arena *arena) {
    void *mem[HMTI_MATRIX_MAX_PARTS] = {0};
    int mask = 0;
    if (!arena) return -1;
    for (int i = 0; i < m->n_parts; i++) {
        const hmti_matrix_part *p = &m->part[i];
        if (p->il || !hmti_q_il_fits(p->type, p->rows, m->cols)) continue;
        if (!(mem[i] = hmti_arena_alloc(arena, p->row_bytes * (size_t)p->rows)))
            return -1; /* pieces already taken stay with the arena */
        hmti_q_interleave(p->type, p->rows, m->cols, p->data, mem[i]);
        mask |= 1 << i;
    }
    for (int i = 0; i < m->n_parts; i++)
        if (mask >> i & 1) {
            m->part[i].data = mem[i];
            m->part[i].il = 1;
        }
    return mask;
}

/* The copies belong to the arena (hmti_arena_free). */
void hmti_matrix_release(hmti_matrix *m) {
    if (m) memset(m, 0, sizeof *m);
}
