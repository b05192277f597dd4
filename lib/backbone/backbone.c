/* Llama / Qwen2 / Qwen3 / Gemma 2 / Gemma 3 forward pass: pre-norm blocks of
 * GQA attention with RoPE (qwen3, gemma3: per-head RMSNorm of q and k before
 * it) and a SwiGLU (gemma: GELU-tanh) gated feed-forward, then the final
 * RMSNorm and the LM head. Gemma adds: input rows scaled by sqrt(d), norms
 * of the attention and FFN outputs before each residual add, sliding-window
 * layers, attention and final logit soft-capping (model.h, gemma.c).
 *
 * Weights are packed matrices (kernels/matrix); activations are row-major
 * [row][feature] in one arena. The K cache is stored per KV head in blocks
 * of slots, each [head_dim][HMTI_KT_BLOCK] (kv_layout.h), so that scores =
 * K·q is a plain column-major GEMM per block; V per KV head in slices of
 * components, each [slot][HMTI_V_SLICE], so that out = V·p is one per
 * slice. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backbone/backbone.h"
#include "core/alloc.h"
#include "core/bigalloc.h"
#include "kernels/kv_row.h"

static size_t arena_floats(const hmt_model *m, int32_t n_batch) {
    const size_t d = (size_t)m->n_embd, q = (size_t)m->n_head * m->head_dim;
    const size_t kv = (size_t)m->n_head_kv * m->head_dim, ff = (size_t)m->n_ff;
    return (size_t)n_batch * (3 * d + 2 * q + 2 * kv + 2 * ff);
}

/* One thread's share of b->scores, in floats. */
static size_t scores_floats(const hmti_backbone *b) {
    const size_t widen = b->kv_gtype == HMTI_TYPE_F32 ? 0 : b->kt_head + (size_t)b->n_ctx * b->m->head_dim;
    return (size_t)HMTI_ATT_ROWS * (size_t)b->n_ctx + widen;
}

/* The split decode step's scores, [n_head][n_ctx], after the threads' own. */
static float *step_scores(const hmti_backbone *b) {
    return b->scores + (size_t)b->n_threads * scores_floats(b);
}

static int alloc_scores(hmti_backbone *b, int n_threads) {
    const size_t step = n_threads > 1 ? (size_t)b->m->n_head * (size_t)b->n_ctx : 0;
    size_t bytes = ((size_t)n_threads * scores_floats(b) + step) * sizeof(float);
    if (bytes <= b->scores_bytes) return HMT_OK;
    float *s = hmti_big_alloc(bytes);
    if (!s) return hmti_errf(HMT_E_NOMEM, "context: out of memory for attention scores");
    hmti_big_free(b->scores, b->scores_bytes);
    b->scores = s;
    b->scores_bytes = bytes;
    return HMT_OK;
}

int hmti_backbone_init(hmti_backbone *b, const hmt_model *m, int32_t n_ctx, int32_t n_batch,
                       int kv_type, int64_t n_threads) {
    return hmti_backbone_init_seqs(b, m, n_ctx, n_batch, 1, kv_type, n_threads);
}

/* The GGML element type of a hmt_kv_type. */
static uint32_t kv_gtype_of(int kv_type) {
    return kv_type == HMT_KV_F16 ? HMTI_TYPE_F16 : kv_type == HMT_KV_BF16 ? HMTI_TYPE_BF16 : HMTI_TYPE_F32;
}

int hmti_backbone_init_seqs(hmti_backbone *b, const hmt_model *m, int32_t n_ctx, int32_t n_batch,
                            int32_t n_seq, int kv_type, int64_t n_threads) {
    memset(b, 0, sizeof *b);
    b->m = m;
    b->n_ctx = n_ctx;
    b->n_batch = n_batch;
    b->n_seq = n_seq;
    b->kv_type = kv_type;
    b->kv_gtype = kv_gtype_of(kv_type);
    b->kv_elt = hmti_row_size(b->kv_gtype, 1);
    const size_t kv_dim = (size_t)m->n_head_kv * m->head_dim;
    b->seq_elems = (size_t)m->n_layer * (size_t)n_ctx * kv_dim;
    b->kv_bytes = (size_t)n_seq * b->seq_elems * b->kv_elt;
    b->kt_head = hmti_kt_head_elems(m->head_dim, n_ctx);
    b->seq_k_elems = (size_t)m->n_layer * (size_t)m->n_head_kv * b->kt_head;
    b->kt_bytes = (size_t)n_seq * b->seq_k_elems * b->kv_elt;
    b->kt = hmti_big_alloc(b->kt_bytes);
    b->v = hmti_big_alloc(b->kv_bytes);
    b->arena_bytes = arena_floats(m, n_batch) * sizeof(float);
    b->arena = hmti_big_alloc(b->arena_bytes);
    b->row_seq = hmti_calloc((size_t)n_batch * 5, sizeof(int32_t));
    if (!b->kt || !b->v || !b->arena || !b->row_seq) {
        /* the sizes first: release zeroes them */
        const double mib = ((double)b->kt_bytes + (double)b->kv_bytes + (double)b->arena_bytes) / 1048576.0;
        hmti_backbone_release(b);
        if (n_seq == 1)
            return hmti_errf(HMT_E_NOMEM, "context: out of memory for a %d-token KV cache and "
                             "its scratch (%.1f MiB); ask for fewer tokens (HMT_P_N_CTX, -c)",
                             n_ctx, mib);
        return hmti_errf(HMT_E_NOMEM, "context: out of memory for %d %d-token KV caches and "
                         "their scratch (%.1f MiB); ask for fewer tokens (HMT_P_N_CTX, -c) or "
                         "sequences (HMT_P_N_SEQ)", n_seq, n_ctx, mib);
    }
    b->row_slot = b->row_seq + n_batch;
    b->runs = b->row_slot + n_batch;
    const size_t d = (size_t)m->n_embd, q = (size_t)m->n_head * m->head_dim;
    const size_t nb = (size_t)n_batch;
    float *p = b->arena;
    b->x = p, p += nb * d;
    b->xn = p, p += nb * d;
    b->xg = p, p += nb * d;
    b->qkv = p, p += nb * (q + 2 * kv_dim);
    b->att = p, p += nb * q;
    b->gu = p;
    int rc = hmti_backbone_set_threads(b, n_threads);
    if (rc) hmti_backbone_release(b);
    return rc;
}

void hmti_backbone_release(hmti_backbone *b) {
    hmti_pool_release(b->pool);
    hmti_big_free(b->kt, b->kt_bytes);
    hmti_big_free(b->v, b->kv_bytes);
    hmti_big_free(b->arena, b->arena_bytes);
    hmti_big_free(b->scores, b->scores_bytes);
    free(b->row_seq);
    memset(b, 0, sizeof *b);
}

/* Scratch for stored (non-F32) weight matrices and the BF16 path: input
 * widths d, q, ff. */
static int reserve_scratch(const hmti_backbone *b, hmti_pool *pool) {
    const hmt_model *m = b->m;
    int64_t max_cols = m->n_embd > m->n_ff ? m->n_embd : m->n_ff;
    if ((int64_t)m->n_head * m->head_dim > max_cols) max_cols = (int64_t)m->n_head * m->head_dim;
    size_t shared, local;
    if (b->compute == HMT_COMPUTE_BF16)
        hmti_matmul_scratch_bf16(max_cols, b->n_batch, &shared, &local);
    else
        hmti_matmul_scratch(max_cols, &shared, &local);
    return hmti_pool_reserve(pool, shared, local);
}

int hmti_backbone_attach(hmti_backbone *b, hmti_pool *pool) {
    int rc = alloc_scores(b, hmti_pool_n_threads(pool));
    if (!rc) rc = reserve_scratch(b, pool);
    if (rc) return rc;
    hmti_pool_retain(pool);
    hmti_pool_release(b->pool);
    b->pool = pool;
    b->n_threads = hmti_pool_n_threads(pool);
    return HMT_OK;
}

int hmti_backbone_set_threads(hmti_backbone *b, int64_t n_threads) {
    hmti_pool *pool;
    int rc = hmti_pool_for_threads(&pool, n_threads);
    if (rc) return rc;
    rc = hmti_backbone_attach(b, pool);
    hmti_pool_release(pool); /* b holds it now (or failed) */
    return rc;
}

/* The pool's scratch only grows: switching back and forth costs nothing
 * after the first switch to BF16. */
int hmti_backbone_set_compute(hmti_backbone *b, int compute) {
    const int old = b->compute;
    b->compute = compute;
    const int rc = reserve_scratch(b, b->pool);
    if (rc) b->compute = old;
    return rc;
}

/* The weight matmuls, in the context's compute type. Decode steps of
 * several sequences take the decode path together: the weights are read
 * once for all rows, and each row gets the bits its own step would. */
static void matmul(const hmti_backbone *b, const hmti_matrix *w, const float *x, int64_t ldx,
                   int64_t n, float *y, int64_t ldy, const float *bias) {
    if (b->decode_batch && b->compute != HMT_COMPUTE_BF16)
        hmti_matmul_decode(b->pool, w, x, ldx, n, y, ldy, bias);
    else if (b->compute == HMT_COMPUTE_BF16)
        hmti_matmul_bf16(b->pool, w, x, ldx, n, y, ldy, bias);
    else
        hmti_matmul(b->pool, w, x, ldx, n, y, ldy, bias);
}

/* ---- row-parallel helpers --------------------------------------------------- */

typedef struct {
    hmti_backbone *b;
    int32_t n;
    const float *norm_w; /* rmsnorm weight: xn = rmsnorm(x), or rmsnorm(xn) when post */
    int post;
} rows_job;

static void job_rmsnorm(void *arg, int ith, int nth) {
    rows_job *j = arg;
    const int64_t d = j->b->m->n_embd;
    const float *src = j->post ? j->b->xn : j->b->x;
    int64_t lo, hi;
    hmti_split_range(j->n, ith, nth, 1, &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        hmti_rmsnorm(j->b->xn + i * d, src + i * d, j->norm_w, d, j->b->m->rms_eps);
}

static void job_swiglu(void *arg, int ith, int nth) {
    rows_job *j = arg;
    const int64_t ff = j->b->m->n_ff;
    int64_t lo, hi;
    hmti_split_range(j->n, ith, nth, 1, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) {
        float *g = j->b->gu + i * 2 * ff;
        if (j->b->m->gelu)
            hmti_gelu_mul(g, g + ff, ff);
        else
            hmti_silu_mul(g, g + ff, ff);
    }
}

/* Row jobs too small to be worth waking the pool run on the caller: up to
 * a batched decode step's rows (16 rows of norms or a gated FFN
 * activation take a few µs to ~25 µs; a pool wake-up and barrier 10-65 µs
 * on a loaded 2-core machine, see run_attention). Each row's result is the
 * same either way. */
static void run_rows(hmti_backbone *b, hmti_job_fn fn, rows_job *j) {
    if (j->n <= HMTI_BATCH_DECODE_ROWS)
        fn(j, 0, 1);
    else
        hmti_pool_run(b->pool, fn, j);
}

/* ---- attention ----------------------------------------------------------------- */

typedef struct {
    hmti_backbone *b;
    int layer;
    int32_t n_runs; /* b->runs[3 i]: first row, rows, sequence; slots follow row_slot */
    int store;      /* by (run, KV head), each storing its rows' keys and values first */
} att_job;

/* The first slot a row at `slot` attends to: 0, or on a sliding-window
 * layer (win > 0) slot - win + 1 (llama.cpp's mask: p1 - p0 < n_swa, by
 * slot here as the causal mask is). */
static int64_t window_start(int64_t slot, int64_t win) {
    return win && slot + 1 - win > 0 ? slot + 1 - win : 0;
}

/* One row's scores turned into attention weights in place: scaled by the
 * model's attn_scale (Gemma: soft-capped), then softmaxed. */
static void weigh_scores(const hmt_model *m, float *row, int64_t n) {
    if (m->attn_softcap > 0)
        hmti_softcap(row, m->attn_scale, m->attn_softcap, n);
    else
        hmti_scale(row, m->attn_scale, n);
    hmti_softmax(row, n);
}

/* One KV head's keys and values for a run, as F32: K in the cache's blocks
 * (slot t's component d at k[hmti_kt_at(hd, d, t - korigin)], korigin a
 * block's first slot) and V in the cache's slices of vrows slots from slot
 * vorigin (v[hmti_v_at(hd, vrows, d, t - vorigin)]). An F32 cache is read
 * in place (origins 0, vrows n_ctx); a half cache is widened once per KV
 * head, run and thread (every query head of the group then reads the
 * copy): the whole key blocks holding the slots any row of the run sees,
 * in one conversion (a head's blocks are contiguous), and those slots'
 * values, one conversion per slice. */
typedef struct {
    const float *k, *v;
    int64_t vrows, korigin, vorigin;
} kv_view;

static kv_view view_of(const hmti_backbone *b, int layer, int64_t g, const int32_t *run,
                       float *wide) {
    const hmt_model *m = b->m;
    const int64_t hd = m->head_dim, n_ctx = b->n_ctx;
    const size_t e = b->kv_elt;
    const unsigned char *kt = hmti_backbone_kt_head(b, run[2], layer, g);
    const unsigned char *v = hmti_backbone_v_head(b, run[2], layer, g);
    if (b->kv_gtype == HMTI_TYPE_F32)
        return (kv_view){(const float *)kt, (const float *)v, n_ctx, 0, 0};
    const int64_t win = m->layers[layer].swa ? m->n_swa : 0;
    const int64_t end = (int64_t)b->row_slot[run[0]] + run[1];
    const int64_t lo = window_start(b->row_slot[run[0]], win), span = end - lo;
    const int64_t k0 = lo / HMTI_KT_BLOCK * HMTI_KT_BLOCK; /* lo's block */
    const size_t at = hmti_kt_at(hd, 0, k0);
    float *wk = wide, *wv = wide + b->kt_head;
    hmti_row_to_f32(kt + at * e, b->kv_gtype, wk, (int64_t)(hmti_kt_head_elems(hd, end) - at));
    for (int64_t c0 = 0; c0 < hd; c0 += HMTI_V_SLICE) {
        const int64_t w = hmti_v_width(hd, c0);
        hmti_row_to_f32(v + hmti_v_at(hd, n_ctx, c0, lo) * e, b->kv_gtype, wv + c0 * span, span * w);
    }
    return (kv_view){wk, wv, span, k0, lo};
}

/* Scores (slots [first, first + span) × rows, col-major, ld lds) = K · Q:
 * one GEMM per block. Block starts are multiples of hmti_gemm_cm's tile
 * rows, so a run from slot 0 gets the bits one GEMM over all its slots
 * would. */
static void key_scores(const kv_view *kv, int64_t hd, int64_t first, int64_t span, int32_t rows,
                       const float *q, int64_t ldq, float *s, int64_t lds) {
    for (int64_t t = first, n; t < first + span; t += n) {
        n = hmti_kt_run(t, first + span - t);
        hmti_gemm_cm(n, rows, hd, kv->k + hmti_kt_at(hd, 0, t - kv->korigin), HMTI_KT_BLOCK, q, ldq,
                     s + (t - first), lds, 0.0f);
    }
}

/* Head h of one run of rows (b->runs: first row, rows, sequence; the run's
 * slots are consecutive from row_slot[first]): out = softmax(K q / sqrt(hd))
 * V over the causal prefix of each row, HMTI_ATT_ROWS query rows at a time,
 * reading the run's cache through kv. Gemma: the scale is the model's
 * attn_scale, the scores are soft-capped before the softmax, and on a
 * sliding-window layer the row at slot s attends to slots s - n_swa + 1 .. s
 * only (llama.cpp's mask: p1 - p0 < n_swa, by slot here as the causal mask
 * is). s: this thread's score buffer. */
static void attend_run(const hmti_backbone *b, int layer, int64_t h, const int32_t *run,
                       const kv_view *kv, float *s) {
    const hmt_model *m = b->m;
    const int64_t hd = m->head_dim, n_ctx = b->n_ctx;
    const int64_t q_dim = (int64_t)m->n_head * hd, kv_dim = (int64_t)m->n_head_kv * hd;
    const int64_t qkv_dim = q_dim + 2 * kv_dim;
    const int64_t win = m->layers[layer].swa ? m->n_swa : 0;
    const int32_t run_end = run[0] + run[1];
    for (int32_t r0 = run[0]; r0 < run_end; r0 += HMTI_ATT_ROWS) {
        const int32_t rows = run_end - r0 < HMTI_ATT_ROWS ? run_end - r0 : HMTI_ATT_ROWS;
        const int64_t end = (int64_t)b->row_slot[r0] + rows; /* slots any row sees: */
        const int64_t first = window_start(end - rows, win), span = end - first; /* [first, end) */
        key_scores(kv, hd, first, span, rows, b->qkv + (size_t)r0 * qkv_dim + h * hd, qkv_dim, s, n_ctx);
        for (int32_t r = 0; r < rows; r++) {
            float *row = s + (size_t)r * n_ctx;
            const int64_t slot = (int64_t)b->row_slot[r0] + r; /* sees [lo, slot] */
            const int64_t lo = window_start(slot, win); /* >= first: rows only move on */
            const int64_t a = lo - first, visible = slot + 1 - lo;
            weigh_scores(m, row + a, visible);
            if (a) memset(row, 0, (size_t)a * sizeof *row);
            if (span > a + visible)
                memset(row + a + visible, 0, (size_t)(span - a - visible) * sizeof *row);
        }
        /* out (hd × rows, col-major, ld q_dim) = V (hd × span) · P, slice by
         * slice (each slice's rows are hmti_gemm_cm's tile height, so the
         * bits are one GEMM's over all components) */
        for (int64_t c0 = 0; c0 < hd; c0 += HMTI_V_SLICE) {
            const int64_t w = hmti_v_width(hd, c0);
            hmti_gemm_cm(w, rows, span, kv->v + hmti_v_at(hd, kv->vrows, c0, first - kv->vorigin), w, s,
                         n_ctx, b->att + (size_t)r0 * q_dim + h * hd + c0, q_dim, 0.0f);
        }
    }
}

/* Heads i < nh: out[i * head_dim + c] for the components c of the slice at
 * c0 = the weights p (rows n_ctx apart) · one head's values vh of slots
 * [first, first + n). */
static void slice_values(const hmti_backbone *b, const unsigned char *vh, int64_t c0, int64_t first, int64_t n,
                         const float *p, int nh, float *out) {
    const int64_t hd = b->m->head_dim, w = hmti_v_width(hd, c0);
    hmti_kv_row_values(vh + hmti_v_at(hd, b->n_ctx, c0, first) * b->kv_elt, b->kv_gtype, w, w, p, b->n_ctx, nh, n,
                       out + c0, hd);
}

/* Heads per kernel call out of `left`: at most 5, whose passes take 2
 * vectors (32 slots of a key block, a 32-component value slice: whole
 * lines), where 6-8 heads take 1 (half of each line, twice); `left` cut
 * into even chunks. TinyLlama's 8-head groups as 4 + 4: 1.08x the decode
 * speed at 1800 slots (docs/QUANTS.md, seventeenth session). Each head's
 * result is the same whatever its chunk (kv_row.h). */
static int64_t head_chunk(int64_t left) {
    const int64_t chunks = (left + 4) / 5;
    return (left + chunks - 1) / chunks;
}

/* Heads [ha, hb) of one KV group on a one-row run (a decode step), the
 * cache read in place: each cached element once for all of them, a half
 * cache widened inside the products (kernels/kv_row.h), each head's result
 * attend_run's bits over the widened cache. SmolLM2's 3-head groups: 3x
 * fewer reads of K and V from L2 (docs/QUANTS.md, fourteenth session); a
 * half cache: half the bytes of an F32 one and no widened copy. The window
 * and the weighing of the scores are attend_run's. */
static void attend_row_heads(const hmti_backbone *b, int layer, int64_t ha, int64_t hb, const int32_t *run,
                             float *s) {
    const hmt_model *m = b->m;
    const int64_t hd = m->head_dim, n_ctx = b->n_ctx;
    const int64_t q_dim = (int64_t)m->n_head * hd, kv_dim = (int64_t)m->n_head_kv * hd;
    const int64_t g = ha / (m->n_head / m->n_head_kv), win = m->layers[layer].swa ? m->n_swa : 0;
    const int64_t slot = b->row_slot[run[0]], first = window_start(slot, win), n = slot + 1 - first;
    const unsigned char *k = hmti_backbone_kt_head(b, run[2], layer, g);
    const unsigned char *v = hmti_backbone_v_head(b, run[2], layer, g);
    const float *q = b->qkv + (size_t)run[0] * (q_dim + 2 * kv_dim);
    float *out = b->att + (size_t)run[0] * q_dim;
    /* up to HMTI_ATT_ROWS heads at a time: all their scores (a second
     * chunk of heads finds the keys in cache), then all their values */
    for (int64_t h0 = ha, h1; h0 < hb; h0 = h1) {
        h1 = hb - h0 < HMTI_ATT_ROWS ? hb : h0 + HMTI_ATT_ROWS;
        for (int64_t h = h0, nh; h < h1; h += nh) {
            nh = head_chunk(h1 - h);
            hmti_kv_row_scores(k, b->kv_gtype, HMTI_KT_BLOCK, hd, first, n, q + h * hd, (int)nh,
                               s + (h - h0) * n_ctx, n_ctx);
        }
        for (int64_t h = h0; h < h1; h++) weigh_scores(m, s + (h - h0) * n_ctx, n);
        for (int64_t h = h0, nh; h < h1; h += nh) {
            nh = head_chunk(h1 - h);
            for (int64_t c0 = 0; c0 < hd; c0 += HMTI_V_SLICE)
                slice_values(b, v, c0, first, n, s + (h - h0) * n_ctx, (int)nh, out + h * hd);
        }
    }
}

/* Whether a run's row reads the cache in place, several heads at once. */
static int reads_heads(const int32_t *run) {
    return run[1] == 1 && hmti_kv_row_direct();
}

/* Row i's key and value of KV head g (after RoPE) into its sequence's cache. */
static void store_kv_head(const hmti_backbone *b, int layer, int32_t i, int64_t g) {
    const hmt_model *m = b->m;
    const int64_t hd = m->head_dim, n_ctx = b->n_ctx;
    const int64_t q_dim = (int64_t)m->n_head * hd, kv_dim = (int64_t)m->n_head_kv * hd;
    unsigned char *kt = hmti_backbone_kt_head(b, b->row_seq[i], layer, g);
    unsigned char *v = hmti_backbone_v_head(b, b->row_seq[i], layer, g);
    const int64_t slot = b->row_slot[i];
    const float *k = b->qkv + (size_t)i * (q_dim + 2 * kv_dim) + q_dim + g * hd, *vv = k + kv_dim;
    const size_t k0 = hmti_kt_at(hd, 0, slot); /* components HMTI_KT_BLOCK apart */
    if (b->kv_gtype == HMTI_TYPE_F32) {
        float *kf = (float *)kt + k0;
        for (int64_t c = 0; c < hd; c++) kf[c * HMTI_KT_BLOCK] = k[c];
        for (int64_t c0 = 0; c0 < hd; c0 += HMTI_V_SLICE)
            memcpy((float *)v + hmti_v_at(hd, n_ctx, c0, slot), vv + c0, (size_t)hmti_v_width(hd, c0) * sizeof(float));
        return;
    }
    for (int64_t c = 0; c < hd; c++) hmti_kv_put(b, kt, k0 + c * HMTI_KT_BLOCK, k[c]);
    for (int64_t c = 0; c < hd; c++) hmti_kv_put(b, v, hmti_v_at(hd, n_ctx, c, slot), vv[c]);
}

/* Rows [0, n)'s keys and values into the cache. */
static void store_kv(const hmti_backbone *b, int layer, int32_t n) {
    for (int32_t i = 0; i < n; i++)
        for (int64_t g = 0; g < b->m->n_head_kv; g++) store_kv_head(b, layer, i, g);
}

/* Heads of KV head g on one run, its cache viewed once. */
static void attend_group(const hmti_backbone *b, int layer, int64_t g, const int32_t *run, float *s,
                         float *wide) {
    const int64_t group = b->m->n_head / b->m->n_head_kv;
    if (reads_heads(run)) {
        attend_row_heads(b, layer, g * group, (g + 1) * group, run, s);
        return;
    }
    const kv_view kv = view_of(b, layer, g, run, wide);
    for (int64_t h = g * group; h < (g + 1) * group; h++) attend_run(b, layer, h, run, &kv, s);
}

/* A decode step (runs of distinct sequences, or one row: kv_in_step):
 * items (run, KV head) split over the threads, each storing its rows' keys
 * and values of that head, then attending the head's group of query heads.
 * An item reads only what it wrote and its sequence's earlier slots, so no
 * barrier is needed; the stores, one line per key component, run in
 * parallel and leave the lines in the cache that reads them next. */
static void job_attention_items(void *arg, int ith, int nth) {
    const att_job *j = arg;
    const hmti_backbone *b = j->b;
    float *s = b->scores + (size_t)ith * scores_floats(b);
    float *wide = s + (size_t)HMTI_ATT_ROWS * b->n_ctx;
    const int64_t n_kv = b->m->n_head_kv;
    int64_t i0, i1;
    hmti_split_range(j->n_runs * n_kv, ith, nth, 1, &i0, &i1);
    for (int64_t it = i0; it < i1; it++) {
        const int32_t *run = b->runs + 3 * (it / n_kv);
        const int64_t g = it % n_kv;
        for (int32_t i = run[0]; i < run[0] + run[1]; i++) store_kv_head(b, j->layer, i, g);
        attend_group(b, j->layer, g, run, s, wide);
    }
}

/* Heads [h0, h1) of this thread, every run; a run's cache viewed once per
 * KV head. */
static void job_attention(void *arg, int ith, int nth) {
    const att_job *j = arg;
    const hmti_backbone *b = j->b;
    float *s = b->scores + (size_t)ith * scores_floats(b);
    float *wide = s + (size_t)HMTI_ATT_ROWS * b->n_ctx;
    const int64_t group = b->m->n_head / b->m->n_head_kv;
    int64_t h0, h1;
    hmti_split_range(b->m->n_head, ith, nth, 1, &h0, &h1);
    for (int32_t ri = 0; ri < j->n_runs; ri++) {
        const int32_t *run = b->runs + 3 * ri;
        if (reads_heads(run)) { /* this thread's heads of each group at once */
            for (int64_t h = h0, e; h < h1; h = e) {
                e = (h / group + 1) * group < h1 ? (h / group + 1) * group : h1; /* the group's end */
                attend_row_heads(b, j->layer, h, e, run, s);
            }
            continue;
        }
        kv_view kv;
        for (int64_t h = h0; h < h1; h++) {
            if (h == h0 || h % group == 0) kv = view_of(b, j->layer, h / group, run, wide);
            attend_run(b, j->layer, h, run, &kv, s);
        }
    }
}

/* Multiply-adds of the runs' K·q products (rows × heads × slots seen ×
 * head_dim, windows ignored): how much a job would have to do. */
static int64_t attention_macs(const hmti_backbone *b, int32_t n_runs) {
    int64_t macs = 0;
    for (int32_t ri = 0; ri < n_runs; ri++) {
        const int32_t *run = b->runs + 3 * ri;
        macs += (int64_t)run[1] * ((int64_t)b->row_slot[run[0]] + run[1]);
    }
    return macs * b->m->n_head * b->m->head_dim;
}

/* A decode step whose KV groups do not split evenly over the threads (the
 * SmolLM2 shape's 3 on 2: one thread read two groups' keys and values
 * while the other read one) runs as two jobs: scores = K·q of every head
 * over each thread's share of the slots (whole key blocks; the share
 * holding the new slot stores its key and value first), then each thread
 * weighs the heads of the groups it needs (a copy of their scores) and
 * computes slices of those groups' outputs (components). Every thread
 * then reads an even share of the cache. Each score and each output
 * component is attend_row_heads' bits: the kernels' lanes do not depend
 * on where a call starts or how wide it is (kv_row.h). */
static int splits_step(const hmti_backbone *b, int32_t n_runs) {
    const hmt_model *m = b->m;
    return n_runs == 1 && !b->decode_batch && reads_heads(b->runs) && b->n_threads > 1 &&
           m->n_head_kv % b->n_threads != 0 && m->n_head / m->n_head_kv <= HMTI_ATT_ROWS &&
           attention_macs(b, n_runs) >= HMTI_SPLIT_MACS;
}

typedef struct {
    const hmti_backbone *b;
    int layer;
} step_job;

/* The decode row's slots [first, slot] (first > 0 on a sliding window). */
static void step_slots(const hmti_backbone *b, int layer, int64_t *first, int64_t *slot) {
    *slot = b->row_slot[b->runs[0]];
    *first = window_start(*slot, b->m->layers[layer].swa ? b->m->n_swa : 0);
}

/* Items (KV head g, key block) in the cache's order, so that a thread's
 * share of a layer's keys is one run of memory; the thread holding a
 * group's block of the new slot stores that group's key and value first. */
static void job_step_scores(void *arg, int ith, int nth) {
    const step_job *j = arg;
    const hmti_backbone *b = j->b;
    const hmt_model *m = b->m;
    const int32_t *run = b->runs;
    const int64_t hd = m->head_dim, n_ctx = b->n_ctx, group = m->n_head / m->n_head_kv;
    const int64_t qkv_dim = ((int64_t)m->n_head + 2 * m->n_head_kv) * hd;
    int64_t first, slot, i0, i1;
    step_slots(b, j->layer, &first, &slot);
    const int64_t b0 = first / HMTI_KT_BLOCK, nb = slot / HMTI_KT_BLOCK + 1 - b0;
    const float *q = b->qkv + (size_t)run[0] * qkv_dim;
    float *s = step_scores(b);
    hmti_split_range(m->n_head_kv * nb, ith, nth, 1, &i0, &i1);
    for (int64_t it = i0, e; it < i1; it = e) {
        const int64_t g = it / nb;
        e = (g + 1) * nb < i1 ? (g + 1) * nb : i1; /* this group's blocks in the share */
        const int64_t lo = (b0 + it % nb) * HMTI_KT_BLOCK > first ? (b0 + it % nb) * HMTI_KT_BLOCK : first;
        const int64_t hi = e % nb ? (b0 + e % nb) * HMTI_KT_BLOCK : slot + 1;
        if (hi == slot + 1) store_kv_head(b, j->layer, run[0], g);
        const unsigned char *k = hmti_backbone_kt_head(b, run[2], j->layer, g);
        for (int64_t h = g * group, nh; h < (g + 1) * group; h += nh) {
            nh = head_chunk((g + 1) * group - h);
            hmti_kv_row_scores(k, b->kv_gtype, HMTI_KT_BLOCK, hd, lo, hi - lo, q + h * hd, (int)nh,
                               s + h * n_ctx + (lo - first), n_ctx);
        }
    }
}

static void job_step_values(void *arg, int ith, int nth) {
    const step_job *j = arg;
    const hmti_backbone *b = j->b;
    const hmt_model *m = b->m;
    const int32_t *run = b->runs;
    const int64_t hd = m->head_dim, n_ctx = b->n_ctx, group = m->n_head / m->n_head_kv;
    const int64_t q_dim = (int64_t)m->n_head * hd, slices = (hd + HMTI_V_SLICE - 1) / HMTI_V_SLICE;
    int64_t first, slot, i0, i1;
    step_slots(b, j->layer, &first, &slot);
    const int64_t n = slot + 1 - first;
    const float *s = step_scores(b);
    float *p = b->scores + (size_t)ith * scores_floats(b); /* the weights of one group's heads */
    float *out = b->att + (size_t)run[0] * q_dim;
    hmti_split_range(m->n_head_kv * slices, ith, nth, 1, &i0, &i1);
    for (int64_t it = i0, weighed = -1; it < i1; it++) {
        const int64_t g = it / slices, c0 = it % slices * HMTI_V_SLICE;
        if (g != weighed) {
            for (int64_t r = 0; r < group; r++) {
                memcpy(p + r * n_ctx, s + (g * group + r) * n_ctx, (size_t)n * sizeof *p);
                weigh_scores(m, p + r * n_ctx, n);
            }
            weighed = g;
        }
        const unsigned char *v = hmti_backbone_v_head(b, run[2], j->layer, g);
        for (int64_t r = 0, nh; r < group; r += nh) {
            nh = head_chunk(group - r);
            slice_values(b, v, c0, first, n, p + r * n_ctx, (int)nh, out + (g * group + r) * hd);
        }
    }
}

/* Attention over a short context runs on the caller alone: below 2^15
 * multiply-adds per K·q product (rows × heads × visible slots × head_dim),
 * ~10 µs at decode, a pool job's wake-up and barrier can cost more than the
 * second thread saves (SmolLM2 at 48 slots on a loaded 2-core machine: 65 µs
 * per layer on 2 threads, 9-14 µs on 1). Each head's result is the same
 * either way. */
static void run_attention(hmti_backbone *b, att_job *aj) {
    const int64_t macs = attention_macs(b, aj->n_runs);
    const hmti_job_fn fn = aj->store ? job_attention_items : job_attention;
    if (macs < (1 << 15)) {
        fn(aj, 0, 1);
    } else if (aj->store && splits_step(b, aj->n_runs)) {
        step_job sj = {b, aj->layer};
        hmti_pool_run(b->pool, job_step_scores, &sj);
        hmti_pool_run(b->pool, job_step_values, &sj);
    } else {
        hmti_pool_run(b->pool, fn, aj);
    }
}

/* Per-head RMSNorm of q or k (qwen3), in place, before RoPE. */
static void head_norm(float *x, int n_head, int64_t hd, const float *w, float eps) {
    for (int h = 0; h < n_head; h++) hmti_rmsnorm(x + h * hd, x + h * hd, w, hd, eps);
}

/* Apply RoPE to the new rows' q and k (store_kv puts k, v in the cache). */
static void rope_rows(hmti_backbone *b, int layer, int32_t n, const int32_t *pos) {
    const hmt_model *m = b->m;
    const hmti_layer *L = &m->layers[layer];
    const int64_t hd = m->head_dim;
    const int64_t q_dim = (int64_t)m->n_head * hd, kv_dim = (int64_t)m->n_head_kv * hd;
    const double *freq = hmti_model_rope_freqs(m, L->swa, b->n_ctx); /* LongRoPE: by n_ctx */
    for (int32_t i = 0; i < n; i++) {
        const int32_t p = pos ? pos[i] : (int32_t)b->row_slot[i];
        float *q = b->qkv + (size_t)i * (q_dim + 2 * kv_dim), *k = q + q_dim;
        if (L->q_norm) {
            head_norm(q, m->n_head, hd, L->q_norm, m->rms_eps);
            head_norm(k, m->n_head_kv, hd, L->k_norm, m->rms_eps);
        }
        hmti_rope(q, m->n_head, (int)hd, m->rope.n_rot, p, freq, m->rope_mscale, m->rope_neox);
        hmti_rope(k, m->n_head_kv, (int)hd, m->rope.n_rot, p, freq, m->rope_mscale, m->rope_neox);
    }
}

/* Runs of distinct sequences only: an item then never reads a row another
 * item stores. */
static int distinct_runs(const hmti_backbone *b, int32_t n_runs) {
    for (int32_t r = 1; r < n_runs; r++)
        for (int32_t q = 0; q < r; q++)
            if (b->runs[3 * r + 2] == b->runs[3 * q + 2]) return 0;
    return 1;
}

/* Whether the attention job stores the keys and values (by KV head, in
 * parallel: job_attention_items) rather than the caller before it: a
 * batched decode step of distinct sequences (an item then never reads a
 * row another item stores), or a single row when every thread can take
 * whole KV groups. A single row's stores (one line per key component)
 * were ~3 of the ~7 kilocycles of serial work before each layer's
 * attention at 2 threads on the SmolLM2 shape, whose 3 groups split 2 / 1
 * read no more a thread than its 9 heads split 5 / 4 did (docs/QUANTS.md,
 * sixteenth session). A step that splits its groups (splits_step) stores
 * them in its first job. */
static int kv_in_step(const hmti_backbone *b, int32_t n, int32_t n_runs) {
    if (b->decode_batch) return distinct_runs(b, n_runs);
    return n == 1 && (b->m->n_head_kv >= b->n_threads || splits_step(b, n_runs));
}

/* The last block's normalized FFN input is the kNN-LM key. */
static void keep_ffn_input(hmti_backbone *b, int32_t n, const uint8_t *outputs) {
    const int64_t d = b->m->n_embd;
    float *out = b->ffn_in_out;
    for (int32_t i = 0; i < n; i++)
        if (outputs[i] & HMT_OUT_FFN_INPUT) {
            memcpy(out, b->xn + (size_t)i * d, (size_t)d * sizeof(float));
            out += d;
        }
}

/* Gemma: xn = rmsnorm(xn) * w (the attention or FFN output, before the add). */
static void post_norm(hmti_backbone *b, int32_t n, const float *w) {
    if (!w) return;
    rows_job rj = {b, n, w, 1};
    run_rows(b, job_rmsnorm, &rj);
}

/* kv_in_att: the attention job stores the keys and values (job_attention_items). */
static void layer_forward(hmti_backbone *b, int l, int32_t n, int32_t n_runs, int kv_in_att,
                          const int32_t *pos, const uint8_t *outputs) {
    const hmt_model *m = b->m;
    const hmti_layer *L = &m->layers[l];
    const int64_t d = m->n_embd, hd = m->head_dim, ff = m->n_ff;
    const int64_t q_dim = (int64_t)m->n_head * hd, kv_dim = (int64_t)m->n_head_kv * hd;
    rows_job rj = {b, n, L->attn_norm, 0};
    run_rows(b, job_rmsnorm, &rj);
    matmul(b, &L->wqkv, b->xn, d, n, b->qkv, q_dim + 2 * kv_dim, L->bqkv);
    rope_rows(b, l, n, pos);
    att_job aj = {b, l, n_runs, kv_in_att};
    if (!aj.store) store_kv(b, l, n);
    run_attention(b, &aj);
    /* x += Wo·att, computed into xn (free now) then added */
    matmul(b, &L->wo, b->att, q_dim, n, b->xn, d, NULL);
    post_norm(b, n, L->attn_post_norm);
    hmti_add(b->x, b->xn, (int64_t)n * d);
    rj.norm_w = L->ffn_norm;
    run_rows(b, job_rmsnorm, &rj);
    if (l == m->n_layer - 1 && outputs) keep_ffn_input(b, n, outputs);
    matmul(b, &L->gate_up, b->xn, d, n, b->gu, 2 * ff, NULL);
    run_rows(b, job_swiglu, &rj);
    matmul(b, &L->down, b->gu, 2 * ff, n, b->xn, d, NULL);
    post_norm(b, n, L->ffn_post_norm);
    hmti_add(b->x, b->xn, (int64_t)n * d);
}

/* Split rows into runs of one sequence at consecutive slots: attention
 * works run by run. A chunk of several runs, each short enough for the
 * decode path on its own, is a batched decode step (decode_batch). */
static int32_t find_runs(hmti_backbone *b, int32_t n) {
    int32_t n_runs = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t *last = b->runs + 3 * (n_runs - 1);
        if (n_runs && last[2] == b->row_seq[i] &&
            b->row_slot[last[0]] + last[1] == b->row_slot[i]) {
            last[1]++;
            continue;
        }
        int32_t *run = b->runs + 3 * n_runs++;
        run[0] = i, run[1] = 1, run[2] = b->row_seq[i];
    }
    int short_runs = 1;
    for (int32_t r = 0; r < n_runs; r++) short_runs &= b->runs[3 * r + 1] <= HMTI_DECODE_ROWS;
    b->decode_batch = n_runs > 1 && short_runs && n <= HMTI_BATCH_DECODE_ROWS;
    return n_runs;
}

static int forward(hmti_backbone *b, int32_t n, const hmt_token *tokens, const float *embd,
                   const int32_t *pos, const uint8_t *outputs, float *hidden_out,
                   float *logits_out, hmt_abort_fn abort_fn, void *abort_data) {
    const hmt_model *m = b->m;
    const int64_t d = m->n_embd;
    const int32_t n_runs = find_runs(b, n);
    const int kv_in_att = kv_in_step(b, n, n_runs);
    for (int32_t i = 0; i < n; i++) {
        if (tokens)
            hmti_model_embed(m, tokens[i], b->x + (size_t)i * d);
        else
            memcpy(b->x + (size_t)i * d, embd + (size_t)i * d, (size_t)d * sizeof(float));
    }
    if (m->input_scale != 1.0f) hmti_scale(b->x, m->input_scale, (int64_t)n * d); /* gemma2 */
    for (int l = 0; l < m->n_layer; l++) {
        if (abort_fn && abort_fn(abort_data))
            return hmti_errf(HMT_E_ABORTED, "eval: aborted by the callback before layer %d", l);
        layer_forward(b, l, n, n_runs, kv_in_att, pos, outputs);
    }
    /* Final norm for rows that want an output; gather logit rows into xg. */
    int32_t n_logits = 0;
    for (int32_t i = 0; i < n; i++) {
        const uint8_t f = outputs[i];
        const float *x = b->x + (size_t)i * d;
        if (f & HMT_OUT_HIDDEN) {
            hmti_rmsnorm(hidden_out, x, m->output_norm, d, m->rms_eps);
            hidden_out += d;
        }
        if (f & HMT_OUT_LOGITS)
            hmti_rmsnorm(b->xg + (size_t)n_logits++ * d, x, m->output_norm, d, m->rms_eps);
    }
    if (n_logits) matmul(b, &m->output, b->xg, d, n_logits, logits_out, m->n_vocab, NULL);
    if (n_logits && m->final_softcap > 0) /* gemma2 */
        hmti_softcap(logits_out, 1.0f, m->final_softcap, (int64_t)n_logits * m->n_vocab);
    return HMT_OK;
}

/* The pool is held for the whole pass: contexts sharing it take turns. */
static int run_forward(hmti_backbone *b, int32_t n, const hmt_token *tokens, const float *embd,
                       const int32_t *pos, const uint8_t *outputs, float *hidden_out,
                       float *logits_out, hmt_abort_fn abort_fn, void *abort_data) {
    int rc = hmti_pool_acquire(b->pool, "eval");
    if (rc) return rc;
    rc = forward(b, n, tokens, embd, pos, outputs, hidden_out, logits_out, abort_fn, abort_data);
    hmti_pool_unlock(b->pool);
    return rc;
}

int hmti_backbone_forward(hmti_backbone *b, int32_t n_past, int32_t n, const hmt_token *tokens,
                          const float *embd, const int32_t *pos, const uint8_t *outputs,
                          float *hidden_out, float *logits_out, hmt_abort_fn abort_fn,
                          void *abort_data) {
    for (int32_t i = 0; i < n; i++) b->row_seq[i] = 0, b->row_slot[i] = n_past + i;
    return run_forward(b, n, tokens, embd, pos, outputs, hidden_out, logits_out, abort_fn,
                       abort_data);
}

int hmti_backbone_forward_seqs(hmti_backbone *b, int32_t n, const int32_t *seq,
                               const int32_t *slot, const hmt_token *tokens, const float *embd,
                               const int32_t *pos, const uint8_t *outputs, float *hidden_out,
                               float *logits_out, hmt_abort_fn abort_fn, void *abort_data) {
    if (seq)
        memcpy(b->row_seq, seq, (size_t)n * sizeof *seq);
    else
        memset(b->row_seq, 0, (size_t)n * sizeof *b->row_seq);
    memcpy(b->row_slot, slot, (size_t)n * sizeof *slot);
    return run_forward(b, n, tokens, embd, pos, outputs, hidden_out, logits_out, abort_fn,
                       abort_data);
}

int hmti_backbone_forward_peers(hmti_backbone *b, hmti_backbone *const *peers, int32_t n,
                                const int32_t *slot, const hmt_token *tokens,
                                const uint8_t *outputs, float *logits_out, hmt_abort_fn abort_fn,
                                void *abort_data) {
    for (int32_t i = 0; i < n; i++) b->row_seq[i] = i;
    memcpy(b->row_slot, slot, (size_t)n * sizeof *slot);
    b->peers = peers;
    const int rc = run_forward(b, n, tokens, NULL, NULL, outputs, NULL, logits_out, abort_fn,
                               abort_data);
    b->peers = NULL;
    return rc;
}

/* Per layer and KV head: K, the blocks holding n slots, one run (the last
 * block whole: its slots from n on are free in dst); V, each slice's first
 * n slots. */
void hmti_backbone_seq_copy(hmti_backbone *b, int32_t src, int32_t dst, int32_t n) {
    if (src == dst || n <= 0) return;
    const hmt_model *m = b->m;
    const int64_t hd = m->head_dim;
    const size_t e = b->kv_elt, keys = hmti_kt_head_elems(hd, n), values = (size_t)b->n_ctx * (size_t)hd;
    const unsigned char *ks = hmti_backbone_kt(b, src), *vs = hmti_backbone_v(b, src);
    unsigned char *kd = hmti_backbone_kt(b, dst), *vd = hmti_backbone_v(b, dst);
    for (size_t h = 0; h < (size_t)m->n_layer * m->n_head_kv; h++) {
        memcpy(kd + h * b->kt_head * e, ks + h * b->kt_head * e, keys * e);
        for (int64_t c0 = 0; c0 < hd; c0 += HMTI_V_SLICE) {
            const size_t at = (h * values + hmti_v_at(hd, b->n_ctx, c0, 0)) * e;
            memcpy(vd + at, vs + at, (size_t)n * (size_t)hmti_v_width(hd, c0) * e);
        }
    }
}
