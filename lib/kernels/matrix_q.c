/* Stored weight matrices (kernels.h): rows kept in their GGML type where
 * they lie (the mapped GGUF file), up to HMTI_MATRIX_MAX_PARTS row blocks of
 * possibly different types behind one logical [rows][cols] matrix.
 *
 * Decode (n <= decode rows): each input row is quantized ONCE into the
 * 8-bit blocks the parts' types need (both kinds at most: 32 and 256
 * elements; F32/F16/BF16 parts read the float row), then threads take
 * contiguous runs of 16 weight rows and dot each row with all n activation
 * rows (docs/QUANTS.md kernels), so every weight byte is read once.
 *
 * Prompt (more rows): threads take panels of TILE_ROWS weight rows; a panel
 * is dequantized TILE_COLS columns at a time (the CPU's SIMD dequantizer of
 * dequant.h, bit-exact to hmti_dequantize_row; 16 rows at a time through an
 * L1 tile and a SIMD block transpose) into the packed F32 panel layout, fed
 * to the same libxsmm tile GEMM the packed F32 path uses, accumulating over
 * the column blocks (beta = 1). The tile (2 × 128 KiB) stays in L2 while it
 * meets every n-tile of the input, so the dequantization is paid once per
 * weight per call and amortised over the n input rows. */
#include <stdatomic.h>
#include <string.h>

#include "core/error.h"
#include "kernels/dequant.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"

enum {
    TILE_ROWS = 64,   /* weight rows per prompt item (one panel)                   */
    TILE_COLS = 512,  /* columns dequantized at a time: a multiple of every block  */
    TILE_N = 64,      /* input rows per libxsmm call, as the packed path           */
    TILE_GROUP = 16,  /* rows dequantized before each transpose                    */
    DECODE_UNIT = 16, /* weight rows per decode unit: y lines are not shared       */
};

static atomic_int g_decode_rows = HMTI_DECODE_ROWS;

int hmti_matmul_set_decode_rows(int k) {
    return atomic_exchange(&g_decode_rows, k < 0 ? HMTI_DECODE_ROWS : k);
}

int hmti_matmul_decode_rows(void) {
    return atomic_load_explicit(&g_decode_rows, memory_order_relaxed);
}

int hmti_matrix_stored(hmti_matrix *m, int n_parts, const void *const *data,
                       const uint32_t *types, const int64_t *rows, int64_t cols) {
    if (!m) return hmti_errf(HMT_E_INVAL, "hmti_matrix_stored: NULL matrix");
    memset(m, 0, sizeof *m);
    if (n_parts < 1 || n_parts > HMTI_MATRIX_MAX_PARTS || cols <= 0)
        return hmti_errf(HMT_E_INVAL, "hmti_matrix_stored: %d parts, %lld columns", n_parts,
                         (long long)cols);
    for (int i = 0; i < n_parts; i++) {
        const hmti_qtraits *t = hmti_qtraits_of(types[i]);
        size_t rb = hmti_qrow_bytes(types[i], cols);
        if (!t) return hmti_errf(HMT_E_UNSUPPORTED, "weight type %u is not supported", types[i]);
        if (!rb)
            return hmti_errf(HMT_E_UNSUPPORTED, "a row of %lld elements is not a whole number "
                             "of %s blocks (%d elements)", (long long)cols, t->name,
                             (int)t->block_elems);
        if (!data[i] || rows[i] <= 0)
            return hmti_errf(HMT_E_INVAL, "hmti_matrix_stored: part %d is empty", i);
        m->part[i] = (hmti_matrix_part){data[i], types[i], rows[i], rb, 0};
        m->rows += rows[i];
        m->nbytes += rb * (size_t)rows[i];
    }
    m->cols = cols;
    m->n_parts = n_parts;
    return HMT_OK;
}

/* Part holding logical row r, and r's index inside it. */
static const hmti_matrix_part *part_of(const hmti_matrix *m, int64_t r, int64_t *local) {
    int i = 0;
    while (i + 1 < m->n_parts && r >= m->part[i].rows) r -= m->part[i++].rows;
    *local = r;
    return &m->part[i];
}

void hmti_matrix_get_row(const hmti_matrix *m, int64_t r, float *out) {
    if (!m->n_parts) {
        int64_t P = m->panel_rows;
        const float *panel = m->data + (size_t)(r / P) * (size_t)P * (size_t)m->cols;
        for (int64_t c = 0; c < m->cols; c++) out[c] = panel[c * P + r % P];
        return;
    }
    int64_t lr;
    const hmti_matrix_part *p = part_of(m, r, &lr);
    if (p->il)
        hmti_q_il_dequant(p->type, p->rows, m->cols, p->data, lr, 0,
                          m->cols / hmti_qtraits_of(p->type)->block_elems, out);
    else
        hmti_dequantize_row(p->type, (const char *)p->data + (size_t)lr * p->row_bytes, out, m->cols);
}

/* ---- scratch ------------------------------------------------------------------- */
static size_t act_row_bytes(int kind, int64_t cols) {
    if (kind == 32) return cols % 32 ? 0 : hmti_qact_bytes(HMTI_T_Q8_0, cols);
    return cols % HMTI_QK_K ? 0 : hmti_qact_bytes(HMTI_T_Q4_K, cols);
}

void hmti_matmul_scratch(int64_t max_cols, size_t *shared_bytes, size_t *local_bytes) {
    /* both activation kinds for HMTI_BATCH_DECODE_ROWS rows, rounded up to whole blocks */
    const int64_t c32 = (max_cols + 31) / 32 * 32, c256 = (max_cols + 255) / 256 * 256;
    *shared_bytes = (size_t)HMTI_BATCH_DECODE_ROWS *
                    (act_row_bytes(32, c32) + act_row_bytes(256, c256) +
                     hmti_qact_wide_bytes(1, c32) + hmti_qact_wide_bytes(2, c32));
    *local_bytes = 2 * (size_t)TILE_ROWS * TILE_COLS * sizeof(float);
}

/* ---- shared job state ------------------------------------------------------------- */
typedef struct {
    const hmti_matrix *w;
    const float *x;
    int64_t ldx, n;
    float *y;
    int64_t ldy;
    const float *bias;
    hmti_pool *pool;
    /* decode: quantized activation rows of each kind (row i at act + i * bytes),
     * and the 32-element ones in the multi-row kernels' wide layouts 1, 2 */
    const uint8_t *act32, *act256, *wide[4];
    size_t a32, a256, aw[4];
    hmti_work work;   /* prompt: panels          */
    hmti_swork swork; /* decode: DECODE_UNIT rows */
} mq_job;

static int64_t grab_size(int64_t units, int nth) {
    int64_t g = units / ((int64_t)nth * 4);
    return g < 1 ? 1 : g;
}

/* ---- decode ------------------------------------------------------------------------- */
/* The multi-row kernel kind a part's batched decode uses (hmti_qmulti_kind;
 * 0: one activation row at a time): a part in groups of 16 rows always has
 * one, reading the activation blocks as they are (3), whichever kernels the
 * type's stored rows have on this CPU. */
static int part_multi_kind(const hmti_matrix_part *p) {
    return p->il && hmti_q_il_rows(p->type) == 16 ? 3 : hmti_qmulti_kind(p->type);
}

/* Input row i in the form a part of activation kind `kind` reads. */
static const void *act_row(const mq_job *j, int kind, int64_t i) {
    return kind == 0    ? (const void *)(j->x + i * j->ldx)
           : kind == 32 ? (const void *)(j->act32 + (size_t)i * j->a32)
                        : (const void *)(j->act256 + (size_t)i * j->a256);
}

/* Output row i's rows [r0, r1) += the bias, if any. */
static void add_bias(const mq_job *j, int64_t i, int64_t r0, int64_t r1) {
    if (!j->bias) return;
    float *yi = j->y + i * j->ldy;
    for (int64_t r = r0; r < r1; r++) yi[r] += j->bias[r];
}

static void decode_rows(const mq_job *j, int64_t r0, int64_t r1) {
    const hmti_matrix *w = j->w;
    int64_t base = 0;
    for (int pi = 0; pi < w->n_parts; base += w->part[pi++].rows) {
        const hmti_matrix_part *p = &w->part[pi];
        const int64_t lo = r0 > base ? r0 : base, hi = r1 < base + p->rows ? r1 : base + p->rows;
        if (lo >= hi) continue;
        const int kind = hmti_qtraits_of(p->type)->act_block;
        const int wk = j->n > 1 ? part_multi_kind(p) : 0;
        if (wk) { /* all input rows at once: each weight group unpacked once for them */
            const void *act = act_row(j, kind, 0);
            const size_t as = kind == 0 ? (size_t)j->ldx * sizeof(float) : kind == 32 ? j->a32 : j->a256;
            hmti_gemv_q_rows_multi(p->type, p->il, p->rows, lo - base, hi - base, w->cols, p->data,
                                   p->row_bytes, act, as, j->wide[wk], j->aw[wk], j->n, j->y + base, j->ldy);
            for (int64_t i = 0; i < j->n; i++) add_bias(j, i, lo, hi);
            continue;
        }
        /* one input row at a time over the range: the GEMV's multi-row kernels
         * and row prefetch (quant_types.c); the rows stay in L1/L2 for the next
         * input row (a decode unit is DECODE_UNIT rows) */
        for (int64_t i = 0; i < j->n; i++) {
            const void *act = act_row(j, kind, i);
            float *yi = j->y + i * j->ldy;
            if (p->il)
                hmti_gemv_q_rows_il(p->type, p->rows, lo - base, hi - base, w->cols, p->data, act,
                                    yi + base);
            else
                hmti_gemv_q_rows(p->type, lo - base, hi - base, w->cols, p->data, p->row_bytes,
                                 act, yi + base);
            add_bias(j, i, lo, hi);
        }
    }
}

/* Interleaved parts whose kernels read 4 places side by side faster
 * (hmti_q_il_stream_min), each of a share's 4 streams (its quarters,
 * hmti_swork) long enough for them: F16 and BF16 any length (over memory
 * one thread read 1.13-1.24x the bytes per second of one stream,
 * fourteenth session), Q4_0 256 KiB (eighteenth session; docs/QUANTS.md). */
static int decode_streams(const mq_job *j, int nth) {
    const hmti_matrix *w = j->w;
    if (j->n != 1) return 1;
    int64_t need = 0;
    double bytes = 0;
    for (int i = 0; i < w->n_parts; i++) {
        const int64_t min = w->part[i].il ? hmti_q_il_stream_min(w->part[i].type) : -1;
        if (min < 0) return 1;
        need = min > need ? min : need;
        bytes += (double)w->part[i].rows * (double)w->part[i].row_bytes;
    }
    return bytes / (HMTI_SWORK_STREAMS * nth) >= (double)need ? HMTI_SWORK_STREAMS : 1;
}

_Static_assert(HMTI_SWORK_STREAMS == 4, "decode_four hands the kernels 4 places");

/* Rows [lo[s], hi[s]) for s < 4 (a share's quarters), read side by side
 * while each has whole groups left in its part and the parts share a type;
 * what is left range by range. */
static void decode_four(const mq_job *j, int64_t *lo, const int64_t *hi) {
    const hmti_matrix *w = j->w;
    for (;;) {
        const uint8_t *g[4];
        float *y[4];
        int64_t n = INT64_MAX;
        int s = 0;
        for (; s < 4; s++) {
            int64_t r;
            const hmti_matrix_part *p = part_of(w, lo[s], &r);
            const int64_t in_part = p->rows / 16 * 16 - r; /* whole groups' rows left in the part */
            const int64_t left = hi[s] - lo[s] < in_part ? hi[s] - lo[s] : in_part;
            if (r % 16 || left < 16 || p->type != w->part[0].type) break;
            n = left / 16 < n ? left / 16 : n;
            g[s] = (const uint8_t *)p->data + (size_t)r * p->row_bytes;
            y[s] = j->y + lo[s];
        }
        if (s < 4) break;
        hmti_gemv_q_il4(w->part[0].type, n, w->cols, g, act_row(j, hmti_qtraits_of(w->part[0].type)->act_block, 0), y);
        for (s = 0; s < 4; s++) {
            add_bias(j, 0, lo[s], lo[s] + 16 * n);
            lo[s] += 16 * n;
        }
    }
    for (int s = 0; s < 4; s++) decode_rows(j, lo[s], hi[s]);
}

static void decode_job(void *arg, int ith, int nth) {
    (void)nth;
    mq_job *j = arg;
    int64_t lo[HMTI_SWORK_STREAMS], hi[HMTI_SWORK_STREAMS];
    int k;
    while ((k = hmti_swork_take(&j->swork, ith, lo, hi)) > 0) {
        for (int s = 0; s < k; s++) {
            lo[s] *= DECODE_UNIT;
            hi[s] = hi[s] * DECODE_UNIT < j->w->rows ? hi[s] * DECODE_UNIT : j->w->rows;
        }
        if (k == 4)
            decode_four(j, lo, hi);
        else /* stolen, or the share's own but some quarters done */
            for (int s = 0; s < k; s++) decode_rows(j, lo[s], hi[s]);
    }
}

/* The wide activation layout a part's multi-row kernel reads (0: none). */
static int wide_kind(const hmti_matrix_part *p) {
    const int k = part_multi_kind(p);
    return k == 1 || k == 2 ? k : 0;
}

/* Rows of x in groups that fit the shared scratch; 0 if not even one fits. */
static int decode(hmti_pool *pool, mq_job *j) {
    const hmti_matrix *w = j->w;
    int need32 = 0, need256 = 0, needw[4] = {0, 0, 0, 0};
    for (int i = 0; i < w->n_parts; i++) {
        const int k = hmti_qtraits_of(w->part[i].type)->act_block;
        need32 |= k == 32;
        need256 |= k == 256;
        if (j->n > 1) needw[wide_kind(&w->part[i])] = 1;
    }
    j->a32 = need32 ? act_row_bytes(32, w->cols) : 0;
    j->a256 = need256 ? act_row_bytes(256, w->cols) : 0;
    for (int k = 1; k < 3; k++) j->aw[k] = needw[k] ? hmti_qact_wide_bytes(k, w->cols) : 0;
    size_t have;
    uint8_t *buf = hmti_pool_shared(pool, &have);
    const size_t per_row = j->a32 + j->a256 + j->aw[1] + j->aw[2];
    const int64_t group = per_row ? (int64_t)(have / per_row) : j->n;
    if (group < 1) return 0;
    const float *x = j->x;
    float *y = j->y;
    const int64_t n = j->n;
    int nth = hmti_pool_n_threads(pool);
    if (nth > 1 && w->rows * w->cols < 32 * 1024) nth = 1; /* not worth a wake-up */
    const int64_t n_units = (w->rows + DECODE_UNIT - 1) / DECODE_UNIT;
    for (int64_t i0 = 0; i0 < n; i0 += group) {
        j->n = n - i0 < group ? n - i0 : group;
        j->x = x + i0 * j->ldx;
        j->y = y + i0 * j->ldy;
        j->act32 = buf;
        j->act256 = buf + (size_t)j->n * j->a32;
        j->wide[1] = j->act256 + (size_t)j->n * j->a256;
        j->wide[2] = j->wide[1] + (size_t)j->n * j->aw[1];
        for (int64_t i = 0; i < j->n; i++) {
            if (need32) {
                hmti_q8_32 *a = (hmti_q8_32 *)(buf + (size_t)i * j->a32);
                hmti_quantize_q8_32(j->x + i * j->ldx, w->cols, a);
                for (int k = 1; k < 3; k++)
                    if (j->aw[k]) hmti_qact_wide(k, a, w->cols, (uint8_t *)j->wide[k] + (size_t)i * j->aw[k]);
            }
            if (need256)
                hmti_quantize_q8_256(j->x + i * j->ldx, w->cols,
                                     (hmti_q8_256 *)(buf + (size_t)j->n * j->a32 +
                                                     (size_t)i * j->a256));
        }
        /* grabs of 1/8 of a segment (a take from a share's own 4 streams
         * holds 4 of them): only how finely a share that finishes early can
         * take over the rest of another's */
        const int streams = decode_streams(j, nth);
        hmti_swork_init(&j->swork, n_units, n_units / ((int64_t)nth * 8 * streams), nth, streams);
        if (nth == 1)
            decode_job(j, 0, 1);
        else
            hmti_pool_run(pool, decode_job, j);
    }
    return 1;
}

/* ---- prompt ------------------------------------------------------------------------- */
/* Rows [r0, r0 + nr) of w, columns [k0, k0 + kk), dequantized and transposed
 * into panel (column-major nr × kk, leading dimension TILE_ROWS): 16 rows at
 * a time into tmp (16 KiB: stays in L1) with the CPU's dequantizer
 * (dequant.h, exact), then a SIMD block transpose. */
static void dequant_tile(const hmti_matrix *w, int64_t r0, int64_t nr, int64_t k0, int64_t kk,
                         float *tmp, float *panel) {
    for (int64_t g = 0; g < nr; g += TILE_GROUP) {
        const int64_t ng = nr - g < TILE_GROUP ? nr - g : TILE_GROUP;
        int64_t l16;
        const hmti_matrix_part *p16 = part_of(w, r0 + g, &l16);
        if (ng == TILE_GROUP && p16->il && /* one whole group of the 16-row layout: straight into the panel */
            hmti_q_il_dequant16(p16->type, p16->rows, w->cols, p16->data, l16, k0 / 32, kk / 32, panel + g, TILE_ROWS))
            continue;
        for (int64_t i = 0; i < ng; i++) {
            int64_t lr;
            const hmti_matrix_part *p = part_of(w, r0 + g + i, &lr);
            const hmti_qtraits *t = hmti_qtraits_of(p->type);
            if (p->il) {
                hmti_q_il_dequant(p->type, p->rows, w->cols, p->data, lr, k0 / t->block_elems,
                                  kk / t->block_elems, tmp + i * TILE_COLS);
                continue;
            }
            const char *src = (const char *)p->data + (size_t)lr * p->row_bytes +
                              (size_t)(k0 / t->block_elems) * (size_t)t->block_bytes;
            hmti_dequant_best(p->type)(src, tmp + i * TILE_COLS, kk);
        }
        hmti_transpose_f32(tmp, TILE_COLS, panel + g, TILE_ROWS, ng, kk);
    }
}

static void prompt_panel(const mq_job *j, int64_t p, float *tmp, float *panel) {
    const hmti_matrix *w = j->w;
    const int64_t r0 = p * TILE_ROWS;
    const int64_t nr = w->rows - r0 < TILE_ROWS ? w->rows - r0 : TILE_ROWS;
    for (int64_t k0 = 0; k0 < w->cols; k0 += TILE_COLS) {
        const int64_t kk = w->cols - k0 < TILE_COLS ? w->cols - k0 : TILE_COLS;
        dequant_tile(w, r0, nr, k0, kk, tmp, panel);
        for (int64_t c0 = 0; c0 < j->n; c0 += TILE_N) {
            const int64_t nn = j->n - c0 < TILE_N ? j->n - c0 : TILE_N;
            hmti_gemm_tile(nr, nn, kk, panel, TILE_ROWS, j->x + c0 * j->ldx + k0, j->ldx,
                           j->y + c0 * j->ldy + r0, j->ldy, k0 > 0);
        }
    }
    if (j->bias)
        for (int64_t i = 0; i < j->n; i++) {
            float *yi = j->y + i * j->ldy + r0;
            for (int64_t r = 0; r < nr; r++) yi[r] += j->bias[r0 + r];
        }
}

const float *hmti_stored_block_f32(const hmti_matrix *w, int64_t r0, int64_t nr, int64_t k0,
                                   int64_t kk, float *scratch) {
    float *panel = scratch + TILE_ROWS * TILE_COLS;
    dequant_tile(w, r0, nr, k0, kk, scratch, panel);
    return panel;
}

static void prompt_job(void *arg, int ith, int nth) {
    (void)nth;
    mq_job *j = arg;
    size_t have;
    float *tmp = hmti_pool_local(j->pool, ith, &have);
    float *panel = tmp + TILE_ROWS * TILE_COLS;
    int64_t lo, hi;
    while (hmti_work_take(&j->work, &lo, &hi))
        for (int64_t p = lo; p < hi; p++) prompt_panel(j, p, tmp, panel);
}

static int prompt(hmti_pool *pool, mq_job *j) {
    size_t have;
    hmti_pool_local(pool, 0, &have);
    if (have < 2 * (size_t)TILE_ROWS * TILE_COLS * sizeof(float)) return 0;
    const hmti_matrix *w = j->w;
    int nth = hmti_pool_n_threads(pool);
    const int64_t n_panels = (w->rows + TILE_ROWS - 1) / TILE_ROWS;
    if (nth > 1 && (n_panels < 2 || 2 * w->rows * w->cols * j->n < 1000000)) nth = 1;
    hmti_work_init(&j->work, n_panels, grab_size(n_panels, nth));
    if (nth == 1)
        prompt_job(j, 0, 1);
    else
        hmti_pool_run(pool, prompt_job, j);
    return 1;
}

/* ---- entry ------------------------------------------------------------------------- */
/* hmti_vec_dot_exact's arithmetic on row lr of an interleaved part. */
static float dot_exact_il(const hmti_matrix *w, const hmti_matrix_part *p, int64_t lr, const float *x) {
    const int64_t be = hmti_qtraits_of(p->type)->block_elems;
    float buf[256], s = 0.0f;
    for (int64_t i = 0; i < w->cols; i += 256) {
        const int64_t m = w->cols - i < 256 ? w->cols - i : 256;
        hmti_q_il_dequant(p->type, p->rows, w->cols, p->data, lr, i / be, m / be, buf);
        s += hmti_dot(buf, x + i, m);
    }
    return s;
}

/* Without reserved scratch: exact dot products, one thread (correct, slow). */
static void fallback(const mq_job *j) {
    const hmti_matrix *w = j->w;
    int64_t base = 0;
    for (int pi = 0; pi < w->n_parts; base += w->part[pi++].rows) {
        const hmti_matrix_part *p = &w->part[pi];
        for (int64_t i = 0; i < j->n; i++) {
            const float *x = j->x + i * j->ldx;
            float *y = j->y + i * j->ldy + base;
            if (p->il && !hmti_qtraits_of(p->type)->act_block) /* F16, BF16: the float kernel is exact already */
                hmti_gemv_q_rows_il(p->type, p->rows, 0, p->rows, w->cols, p->data, x, y);
            else
                for (int64_t r = 0; r < p->rows; r++)
                    y[r] = p->il ? dot_exact_il(w, p, r, x)
                                 : hmti_vec_dot_exact(p->type, w->cols, (const char *)p->data + (size_t)r * p->row_bytes, x);
            for (int64_t r = 0; r < p->rows && j->bias; r++) y[r] += j->bias[base + r];
        }
    }
}

static void job_init(mq_job *j, hmti_pool *pool, const hmti_matrix *w, const float *x,
                     int64_t ldx, int64_t n, float *y, int64_t ldy, const float *bias) {
    memset(j, 0, sizeof *j);
    j->w = w;
    j->x = x;
    j->ldx = ldx;
    j->n = n;
    j->y = y;
    j->ldy = ldy;
    j->bias = bias;
    j->pool = pool;
}

void hmti_matmul_decode(hmti_pool *pool, const hmti_matrix *w, const float *x, int64_t ldx,
                        int64_t n, float *y, int64_t ldy, const float *bias) {
    if (n <= 0 || w->rows <= 0) return;
    if (!w->n_parts) {
        hmti_matmul_gemv_rows(pool, w, x, ldx, n, y, ldy, bias);
        return;
    }
    mq_job j;
    job_init(&j, pool, w, x, ldx, n, y, ldy, bias);
    if (!decode(pool, &j)) fallback(&j);
}

void hmti_matmul_stored(hmti_pool *pool, const hmti_matrix *w, const float *x, int64_t ldx,
                        int64_t n, float *y, int64_t ldy, const float *bias) {
    if (n <= 0 || w->rows <= 0) return;
    mq_job j;
    job_init(&j, pool, w, x, ldx, n, y, ldy, bias);
    const int done = n <= atomic_load_explicit(&g_decode_rows, memory_order_relaxed)
                         ? decode(pool, &j)
                         : prompt(pool, &j);
    if (!done) fallback(&j);
}
