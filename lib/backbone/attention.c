/* Attention of one layer's rows over their sequences' KV cache
 * (attention.h): the prompt path (a GEMM per key block and value slice,
 * HMTI_ATT_ROWS query rows at a time), the decode path (one row's heads of
 * a KV group at once, the cache read in place: kernels/kv_row.h), and
 * their splits over the pool's threads. The K cache is stored per KV head
 * in blocks of slots, each [head_dim][HMTI_KT_BLOCK] (kv_layout.h), so that
 * scores = K·q is a plain column-major GEMM per block; V per KV head in
 * slices of components, each [slot][HMTI_V_SLICE], so that out = V·p is
 * one per slice. */
#include <string.h>

#include "backbone/attention.h"
#include "kernels/kv_row.h"

/* One thread's share of b->scores, in floats. */
static size_t scores_floats(const hmti_backbone *b) {
    const size_t widen = b->kv_gtype == HMTI_TYPE_F32 ? 0 : b->kt_head + hmti_v_head_elems(b->m->head_dim, b->n_ctx);
    return (size_t)HMTI_ATT_ROWS * (size_t)b->n_ctx + widen;
}

/* The split decode step's scores, [n_head][n_ctx], after the threads' own. */
static float *step_scores(const hmti_backbone *b) {
    return b->scores + (size_t)b->n_threads * scores_floats(b);
}

size_t hmti_attention_scratch_floats(const hmti_backbone *b, int n_threads) {
    const size_t step = n_threads > 1 ? (size_t)b->m->n_head * (size_t)b->n_ctx : 0;
    return (size_t)n_threads * scores_floats(b) + step;
}

typedef struct {
    hmti_backbone *b;
    int layer;
    int32_t n_runs; /* b->runs[3 i]: first row, rows, sequence; slots follow row_slot */
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
            memcpy((float *)v + hmti_v_at(hd, n_ctx, c0, slot), vv + c0,
                   (size_t)hmti_v_width(hd, c0) * sizeof(float));
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

/* HMTI_ATT_BY_ITEMS (a decode step: runs of distinct sequences, or one
 * row; hmti_attention_plan): items (run, KV head) split over the threads, each storing its rows' keys
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

/* HMTI_ATT_BY_HEADS: heads [h0, h1) of this thread, every run; a run's
 * cache viewed once per KV head. */
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

/* The split step of one layer: the decode row sees slots [first, slot]
 * (first > 0 on a sliding window). */
typedef struct {
    const hmti_backbone *b;
    int layer;
    int64_t first, slot;
} step_job;

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
    const int64_t first = j->first, slot = j->slot;
    int64_t i0, i1;
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
    const int64_t first = j->first, n = j->slot + 1 - first;
    int64_t i0, i1;
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

static void run_split_step(const hmti_backbone *b, int layer) {
    const int64_t slot = b->row_slot[b->runs[0]];
    step_job sj = {b, layer, window_start(slot, b->m->layers[layer].swa ? b->m->n_swa : 0), slot};
    hmti_pool_run(b->pool, job_step_scores, &sj);
    hmti_pool_run(b->pool, job_step_values, &sj);
}

/* Attention over a short context runs on the caller alone: below 2^15
 * multiply-adds per K·q product (rows × heads × visible slots × head_dim),
 * ~10 µs at decode, a pool job's wake-up and barrier can cost more than the
 * second thread saves (SmolLM2 at 48 slots on a loaded 2-core machine: 65 µs
 * per layer on 2 threads, 9-14 µs on 1). Each head's result is the same
 * either way. */
void hmti_attention(hmti_backbone *b, int layer, int32_t n, int32_t n_runs, hmti_att_plan plan) {
    if (plan == HMTI_ATT_SPLIT) { /* past HMTI_SPLIT_MACS: never on the caller alone */
        run_split_step(b, layer);
        return;
    }
    att_job aj = {b, layer, n_runs};
    if (plan == HMTI_ATT_BY_HEADS) store_kv(b, layer, n);
    const hmti_job_fn fn = plan == HMTI_ATT_BY_ITEMS ? job_attention_items : job_attention;
    if (attention_macs(b, n_runs) < (1 << 15))
        fn(&aj, 0, 1);
    else
        hmti_pool_run(b->pool, fn, &aj);
}

/* Runs of distinct sequences only: an item then never reads a row another
 * item stores. */
static int distinct_runs(const hmti_backbone *b, int32_t n_runs) {
    for (int32_t r = 1; r < n_runs; r++)
        for (int32_t q = 0; q < r; q++)
            if (b->runs[3 * r + 2] == b->runs[3 * q + 2]) return 0;
    return 1;
}

/* The jobs store the keys and values (by KV head, in parallel) rather
 * than the caller before them in a batched decode step of distinct
 * sequences (an item then never reads a row another item stores), and for
 * a single row when every thread can take whole KV groups, or when the
 * row splits its groups (its first job stores them). A single row's
 * stores (one line per key component) were ~3 of the ~7 kilocycles of
 * serial work before each layer's attention at 2 threads on the SmolLM2
 * shape, whose 3 groups split 2 / 1 read no more a thread than its 9
 * heads split 5 / 4 did (docs/QUANTS.md, sixteenth session). */
hmti_att_plan hmti_attention_plan(const hmti_backbone *b, int32_t n, int32_t n_runs) {
    if (b->decode_batch) return distinct_runs(b, n_runs) ? HMTI_ATT_BY_ITEMS : HMTI_ATT_BY_HEADS;
    if (n != 1) return HMTI_ATT_BY_HEADS;
    if (splits_step(b, n_runs)) return HMTI_ATT_SPLIT;
    return b->m->n_head_kv >= b->n_threads ? HMTI_ATT_BY_ITEMS : HMTI_ATT_BY_HEADS;
}
