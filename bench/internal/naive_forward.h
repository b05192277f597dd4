/* A plain-loop forward pass in the style of llama2.c: one token at a time,
 * scalar loops, no libxsmm, no threads. It is the benchmark's baseline (what
 * the optimized path is measured against), and a second, independent C
 * implementation. Weights are unpacked from the loaded model into plain
 * row-major F32 arrays. Header-only: include it in one bench program. */
#ifndef HMT_NAIVE_FORWARD_H
#define HMT_NAIVE_FORWARD_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backbone/model.h"

typedef struct {
    float *wq, *wk, *wv, *wo, *gate, *up, *down;
} naive_layer;

typedef struct {
    const hmt_model *m;
    int n_ctx;
    naive_layer *layers;
    float *out;                      /* [vocab][d] */
    float *kc, *vc;                  /* [layer][n_ctx][kv_dim] */
    float *x, *xn, *q, *k, *v, *att, *sc, *g, *u, *tmp;
} naive_model;

/* Rows [r0, r0 + n) of a packed matrix as a plain row-major array. */
static float *naive_unpack_rows(const hmti_matrix *w, int64_t r0, int64_t n) {
    float *a = malloc((size_t)n * (size_t)w->cols * sizeof *a);
    if (!a) return NULL;
    for (int64_t r = 0; r < n; r++) hmti_matrix_get_row(w, r0 + r, a + r * w->cols);
    return a;
}

static float *naive_unpack(const hmti_matrix *w) { return naive_unpack_rows(w, 0, w->rows); }

static void naive_free(naive_model *nm) {
    if (nm->layers)
        for (int l = 0; l < nm->m->n_layer; l++) {
            naive_layer *L = &nm->layers[l];
            free(L->wq), free(L->wk), free(L->wv), free(L->wo);
            free(L->gate), free(L->up), free(L->down);
        }
    free(nm->layers);
    free(nm->out);
    free(nm->kc), free(nm->vc);
    free(nm->x), free(nm->xn), free(nm->q), free(nm->k), free(nm->v);
    free(nm->att), free(nm->sc), free(nm->g), free(nm->u), free(nm->tmp);
}

static int naive_init(naive_model *nm, const hmt_model *m, int n_ctx) {
    memset(nm, 0, sizeof *nm);
    nm->m = m;
    nm->n_ctx = n_ctx;
    const size_t d = (size_t)m->n_embd, qd = (size_t)m->n_head * m->head_dim;
    const size_t kvd = (size_t)m->n_head_kv * m->head_dim, ff = (size_t)m->n_ff;
    nm->layers = calloc((size_t)m->n_layer, sizeof *nm->layers);
    if (!nm->layers) return -1;
    for (int l = 0; l < m->n_layer; l++) {
        const hmti_layer *S = &m->layers[l];
        naive_layer *L = &nm->layers[l];
        if (!(L->wq = naive_unpack_rows(&S->wqkv, 0, (int64_t)qd)) ||
            !(L->wk = naive_unpack_rows(&S->wqkv, (int64_t)qd, (int64_t)kvd)) ||
            !(L->wv = naive_unpack_rows(&S->wqkv, (int64_t)(qd + kvd), (int64_t)kvd)) ||
            !(L->wo = naive_unpack(&S->wo)) || !(L->gate = naive_unpack_rows(&S->gate_up, 0, (int64_t)ff)) ||
            !(L->up = naive_unpack_rows(&S->gate_up, (int64_t)ff, (int64_t)ff)) ||
            !(L->down = naive_unpack(&S->down)))
            return naive_free(nm), -1;
    }
    nm->out = naive_unpack(&m->output);
    nm->kc = calloc((size_t)m->n_layer * (size_t)n_ctx * kvd, sizeof(float));
    nm->vc = calloc((size_t)m->n_layer * (size_t)n_ctx * kvd, sizeof(float));
    nm->x = malloc(d * sizeof(float)), nm->xn = malloc(d * sizeof(float));
    nm->tmp = malloc(d * sizeof(float));
    nm->q = malloc(qd * sizeof(float)), nm->att = malloc(qd * sizeof(float));
    nm->k = malloc(kvd * sizeof(float)), nm->v = malloc(kvd * sizeof(float));
    nm->sc = malloc((size_t)n_ctx * sizeof(float));
    nm->g = malloc(ff * sizeof(float)), nm->u = malloc(ff * sizeof(float));
    if (!nm->out || !nm->kc || !nm->vc || !nm->x || !nm->xn || !nm->tmp || !nm->q || !nm->att ||
        !nm->k || !nm->v || !nm->sc || !nm->g || !nm->u)
        return naive_free(nm), -1;
    return 0;
}

static void naive_matvec(float *y, const float *w, const float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        float s = 0;
        for (int c = 0; c < cols; c++) s += w[(size_t)r * cols + c] * x[c];
        y[r] = s;
    }
}

static void naive_rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
    float ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++) y[i] = x[i] * inv * w[i];
}

static void naive_rope(float *x, int n_head, int hd, int pos, float base, int neox) {
    for (int h = 0; h < n_head; h++)
        for (int i = 0; i < hd / 2; i++) {
            double ang = pos * pow(base, -2.0 * i / hd);
            float c = (float)cos(ang), s = (float)sin(ang);
            float *a = x + h * hd + (neox ? i : 2 * i), *b = neox ? a + hd / 2 : a + 1;
            float x0 = *a, x1 = *b;
            *a = x0 * c - x1 * s;
            *b = x0 * s + x1 * c;
        }
}

/* Evaluate one token at cache slot = pos; logits (n_vocab) into out. */
static void naive_forward_token(naive_model *nm, hmt_token tok, int pos, float *logits) {
    const hmt_model *m = nm->m;
    const int d = m->n_embd, hd = m->head_dim, nh = m->n_head, nkv = m->n_head_kv;
    const int qd = nh * hd, kvd = nkv * hd, ff = m->n_ff;
    hmti_model_embed(m, tok, nm->x);
    for (int l = 0; l < m->n_layer; l++) {
        const hmti_layer *S = &m->layers[l];
        const naive_layer *L = &nm->layers[l];
        naive_rmsnorm(nm->xn, nm->x, S->attn_norm, d, m->rms_eps);
        naive_matvec(nm->q, L->wq, nm->xn, qd, d);
        naive_matvec(nm->k, L->wk, nm->xn, kvd, d);
        naive_matvec(nm->v, L->wv, nm->xn, kvd, d);
        for (int i = 0; S->bqkv && i < qd; i++) nm->q[i] += S->bqkv[i];
        for (int i = 0; S->bqkv && i < kvd; i++)
            nm->k[i] += S->bqkv[qd + i], nm->v[i] += S->bqkv[qd + kvd + i];
        naive_rope(nm->q, nh, hd, pos, m->rope_base, m->rope_neox);
        naive_rope(nm->k, nkv, hd, pos, m->rope_base, m->rope_neox);
        float *kc = nm->kc + ((size_t)l * nm->n_ctx) * kvd, *vc = nm->vc + ((size_t)l * nm->n_ctx) * kvd;
        memcpy(kc + (size_t)pos * kvd, nm->k, (size_t)kvd * sizeof(float));
        memcpy(vc + (size_t)pos * kvd, nm->v, (size_t)kvd * sizeof(float));
        for (int h = 0; h < nh; h++) {
            const int g = h / (nh / nkv);
            float mx = -INFINITY, sum = 0;
            for (int t = 0; t <= pos; t++) {
                float s = 0;
                for (int i = 0; i < hd; i++) s += nm->q[h * hd + i] * kc[(size_t)t * kvd + g * hd + i];
                nm->sc[t] = s / sqrtf((float)hd);
                if (nm->sc[t] > mx) mx = nm->sc[t];
            }
            for (int t = 0; t <= pos; t++) sum += (nm->sc[t] = expf(nm->sc[t] - mx));
            for (int i = 0; i < hd; i++) {
                float o = 0;
                for (int t = 0; t <= pos; t++) o += nm->sc[t] * vc[(size_t)t * kvd + g * hd + i];
                nm->att[h * hd + i] = o / sum;
            }
        }
        naive_matvec(nm->tmp, L->wo, nm->att, d, qd);
        for (int i = 0; i < d; i++) nm->x[i] += nm->tmp[i];
        naive_rmsnorm(nm->xn, nm->x, S->ffn_norm, d, m->rms_eps);
        naive_matvec(nm->g, L->gate, nm->xn, ff, d);
        naive_matvec(nm->u, L->up, nm->xn, ff, d);
        for (int i = 0; i < ff; i++) nm->g[i] = nm->g[i] / (1.0f + expf(-nm->g[i])) * nm->u[i];
        naive_matvec(nm->tmp, L->down, nm->g, d, ff);
        for (int i = 0; i < d; i++) nm->x[i] += nm->tmp[i];
    }
    naive_rmsnorm(nm->xn, nm->x, m->output_norm, d, m->rms_eps);
    naive_matvec(logits, nm->out, nm->xn, m->n_vocab, d);
}

#endif
