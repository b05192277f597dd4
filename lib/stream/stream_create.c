/* Creating and freeing HMT streams: settings resolved from the params, the
 * adapter and the model; every buffer allocated once. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/params.h"
#include "stream/stream.h"

/* The key's value, or the adapter's when it is HMT_AUTO. */
static int32_t pick(const hmt_params *p, hmt_param key, int32_t adapter_value) {
    int32_t v = (int32_t)hmti_param_value(p, key);
    return v == HMT_AUTO ? adapter_value : v;
}

static const hmt_param STREAM_KEYS[] = {
    HMT_P_MODE, HMT_P_LOOKAHEAD, HMT_P_ALL_LOGITS, HMT_P_SEGMENT_LENGTH, HMT_P_SENSORY_LENGTH,
    HMT_P_CACHE_SIZE, HMT_P_SUMMARY_LENGTH, HMT_P_GEN_SUMMARY_LENGTH, HMT_P_KEEP_FFN_INPUT,
    HMT_P_WINDOW, HMT_P_SINKS, HMT_P_N_BATCH, HMT_P_KV_TYPE, HMT_P_N_THREADS, HMT_P_COMPUTE_TYPE, HMT_P_RECALL_BF16,
    HMT_P_SEGMENT_SINKS};

/* Resolve L, k, N, j, j_gen, bf16 and *slots, the KV slots of one backbone
 * pass (window, sinks: the cache); check they fit. */
static int resolve(hmt_stream *s, const hmt_params *p, int32_t *slots) {
    const hmt_adapter *a = s->ad;
    const hmt_model *m = s->model;
    s->mode = (int)hmti_param_value(p, HMT_P_MODE);
    s->lookahead = (int)hmti_param_value(p, HMT_P_LOOKAHEAD);
    s->all_logits = (int)hmti_param_value(p, HMT_P_ALL_LOGITS);
    s->keep_ffn = (int)hmti_param_value(p, HMT_P_KEEP_FFN_INPUT);
    s->d = m->n_embd;
    if (!a && (s->mode == HMT_MODE_FULL || s->mode == HMT_MODE_RMT))
        return hmti_errf(HMT_E_INVAL, "stream: mode %s needs an HMT adapter",
                         s->mode == HMT_MODE_FULL ? "full" : "rmt");
    if (a && a->model->n_embd != m->n_embd)
        return hmti_errf(HMT_E_INVAL, "stream: the adapter was loaded for a model of width %d, "
                                      "this model has %d", a->model->n_embd, m->n_embd);
    s->L = pick(p, HMT_P_SEGMENT_LENGTH, a ? a->segment_length : 0);
    s->k = pick(p, HMT_P_SENSORY_LENGTH, a ? a->sensory_length : 0);
    s->N = pick(p, HMT_P_CACHE_SIZE, a ? a->cache_size : 1);
    s->bf16 = pick(p, HMT_P_RECALL_BF16, a ? a->recall_bf16 : 0);
    s->j = pick(p, HMT_P_SUMMARY_LENGTH, a ? hmti_adapter_summary_length(a, s->L) : 1);
    /* the causal rule's default is half of this stream's L (which may be
     * shorter than the adapter's) unless the adapter states its own */
    const int32_t half = s->L / 2 > 0 ? s->L / 2 : 1;
    s->j_gen = pick(p, HMT_P_GEN_SUMMARY_LENGTH,
                    a && a->gen_summary_given ? a->gen_summary_length : half);
    if (s->mode == HMT_MODE_SEGMENTS || s->mode == HMT_MODE_SINKS) s->k = 0;
    s->seg_sinks = (int32_t)hmti_param_value(p, HMT_P_SEGMENT_SINKS);
    if (s->seg_sinks && !hmti_mode_segmented(s->mode))
        return hmti_errf(HMT_E_INVAL, "stream: segment_sinks is a key of the segment modes "
                         "(full, rmt, segments)");
    if (!hmti_mode_segmented(s->mode)) {
        int64_t w = (int64_t)hmti_param_value(p, HMT_P_WINDOW);
        s->W = (int32_t)(w != HMT_AUTO ? w : m->n_ctx_train);
        if (s->W < 2) return hmti_errf(HMT_E_INVAL, "stream: a window of %d tokens is too short", s->W);
        s->L = s->W; /* scratch for the refill ids */
        if (s->mode == HMT_MODE_SINKS) {
            s->n_sinks = (int32_t)hmti_param_value(p, HMT_P_SINKS);
            if (s->n_sinks >= s->W)
                return hmti_errf(HMT_E_INVAL, "stream: %d sink tokens leave no room for recent "
                                 "ones in a cache of %d slots (HMT_P_WINDOW)", s->n_sinks, s->W);
        }
        *slots = s->W;
        return HMT_OK;
    }
    if (s->L < 1)
        return hmti_errf(HMT_E_INVAL, "stream: set HMT_P_SEGMENT_LENGTH (no adapter gives one)");
    if (s->seg_sinks > s->L)
        return hmti_errf(HMT_E_INVAL, "stream: segment_sinks %d > segment length %d", s->seg_sinks,
                         s->L);
    if (s->k > s->L) return hmti_errf(HMT_E_INVAL, "stream: sensory length %d > segment length %d", s->k, s->L);
    if (s->j < 1 || s->j > s->L || s->j_gen < 1 || s->j_gen > s->L)
        return hmti_errf(HMT_E_INVAL, "stream: summary lengths %d / %d outside [1, %d]", s->j,
                         s->j_gen, s->L);
    const int64_t need = (int64_t)s->seg_sinks +
                         (s->mode == HMT_MODE_SEGMENTS ? s->L : (int64_t)s->k + s->L + 2);
    if (need > m->n_ctx_train)
        return hmti_errf(HMT_E_INVAL, "stream: a segment pass needs %lld positions, the model's "
                                      "context is %d", (long long)need, m->n_ctx_train);
    *slots = (int32_t)need;
    return HMT_OK;
}

static int alloc_all(hmt_stream *s) {
    const size_t d = (size_t)s->d, L = (size_t)s->L, N = (size_t)s->N;
    const size_t dh = s->ad ? (size_t)s->ad->d_h : 1;
    s->seg_tok = hmti_calloc(L, sizeof *s->seg_tok);
    s->prev_tok = hmti_calloc(L, sizeof *s->prev_tok);
    s->sens = hmti_calloc((size_t)s->k + 1, sizeof *s->sens);
    s->p = hmti_calloc(d, sizeof(float));
    s->s = hmti_calloc(d, sizeof(float));
    s->hidden = hmti_calloc(d, sizeof(float));
    s->last_m = hmti_calloc(d, sizeof(float));
    s->mem = hmti_calloc(N * d, sizeof(float));
    s->keys = hmti_calloc(N * dh, sizeof(float));
    s->mem_seg = hmti_calloc(N, sizeof *s->mem_seg);
    s->rw = hmti_calloc(N, sizeof *s->rw);
    s->rseg = hmti_calloc(N, sizeof *s->rseg);
    s->q = hmti_calloc(dh, sizeof(float));
    s->win = hmti_calloc(s->mode == HMT_MODE_WINDOW ? (size_t)s->W : 1, sizeof *s->win);
    s->flags = hmti_calloc((size_t)s->bb.n_batch, 1);
    s->sink_tok = hmti_calloc((size_t)s->seg_sinks + 1, sizeof *s->sink_tok);
    if (!s->seg_tok || !s->prev_tok || !s->sens || !s->p || !s->s || !s->hidden || !s->last_m ||
        !s->mem || !s->keys || !s->mem_seg || !s->rw || !s->rseg || !s->q || !s->win || !s->flags ||
        !s->sink_tok)
        return hmti_errf(HMT_E_NOMEM, "stream: out of memory");
    return HMT_OK;
}

HMT_API void hmt_stream_free(hmt_stream *s) {
    if (!s || hmti_retire(&s->guard, HMTI_MAGIC_STREAM, "hmt_stream_free")) return;
    hmti_backbone_release(&s->bb);
    free(s->seg_tok), free(s->prev_tok), free(s->sens);
    free(s->p), free(s->s), free(s->hidden), free(s->last_m);
    free(s->mem), free(s->keys), free(s->mem_seg), free(s->rw), free(s->rseg), free(s->q);
    free(s->win), free(s->flags), free(s->logits), free(s->ffn), free(s->sink_tok);
    free(s->pass_buf);
    hmti_outbuf_release(&s->retired);
    hmti_adapter_release(s->ad);
    hmti_model_release(s->model);
    free(s);
}

HMT_API int hmt_stream_create(hmt_stream **out, hmt_model *model, hmt_adapter *adapter,
                              const hmt_params *params) {
    if (!out) return hmti_errf(HMT_E_INVAL, "hmt_stream_create: out is NULL");
    *out = NULL;
    if (!model) return hmti_errf(HMT_E_INVAL, "hmt_stream_create: model is NULL");
    if (hmti_guard_check(&model->guard, HMTI_MAGIC_MODEL, "hmt_stream_create") ||
        hmti_guard_check(HMTI_GUARD(adapter), HMTI_MAGIC_ADAPTER, "hmt_stream_create"))
        return HMT_E_MISUSE;
    int rc = hmti_params_only(params, STREAM_KEYS, HMTI_NKEYS(STREAM_KEYS), "hmt_stream_create");
    if (rc) return rc;
    hmt_stream *s = hmti_calloc(1, sizeof *s);
    if (!s) return hmti_errf(HMT_E_NOMEM, "hmt_stream_create: out of memory");
    hmti_guard_init(&s->guard, HMTI_MAGIC_STREAM); /* hmt_stream_free checks it */
    hmti_model_retain(model);
    s->model = model;
    if (adapter) hmti_adapter_retain(adapter);
    s->ad = adapter;
    int32_t n_ctx = 0;
    rc = resolve(s, params, &n_ctx);
    if (!rc) {
        const int32_t n_batch = (int32_t)hmti_param_value(params, HMT_P_N_BATCH);
        rc = hmti_backbone_init(&s->bb, model, n_ctx, n_batch < n_ctx ? n_batch : n_ctx,
                                (int)hmti_param_value(params, HMT_P_KV_TYPE),
                                (int64_t)hmti_param_value(params, HMT_P_N_THREADS));
    }
    if (!rc) rc = hmti_backbone_set_compute(&s->bb,
                                            (int)hmti_param_value(params, HMT_P_COMPUTE_TYPE));
    if (!rc) rc = alloc_all(s);
    if (rc) {
        hmt_stream_free(s);
        return rc;
    }
    *out = s;
    return HMT_OK;
}
