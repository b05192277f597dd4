/* Model loading: read llama.cpp metadata keys, check every tensor's presence,
 * shape and type against them, then make the weight matrices: F32 tensors
 * are packed into F32 panels (the packed path), every other supported type
 * (docs/MODELS.md) is used as stored, in the mapped file, never expanded. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backbone/model.h"
#include "core/alloc.h"
#include "core/bigalloc.h"
#include "core/fnv.h"
#include "kernels/quant.h"

#define NAME_MAX_LEN 96
/* q k v o, gate up down, two norms; phi3: qkv o, gate|up down, two norms */
#define TENSORS_PER_LAYER(m) ((m)->arch == HMTI_ARCH_PHI3 ? 6 : 9)

static int meta_u32(const hmti_gguf *g, const char *arch, const char *suffix, int32_t *out,
                    int required, int32_t def) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint32_t v;
    if (hmti_gguf_find_key(g, key) < 0) {
        if (required) return hmti_errf(HMT_E_FORMAT, "model: missing metadata key '%s'", key);
        *out = def;
        return HMT_OK;
    }
    int rc = hmti_gguf_get_u32(g, key, &v);
    if (rc) return rc;
    if (v > INT32_MAX) return hmti_errf(HMT_E_FORMAT, "model: '%s' = %u is too large", key, v);
    *out = (int32_t)v;
    return HMT_OK;
}

static int meta_f32(const hmti_gguf *g, const char *arch, const char *suffix, float *out,
                    float def) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (hmti_gguf_find_key(g, key) < 0) {
        *out = def;
        return HMT_OK;
    }
    return hmti_gguf_get_f32(g, key, out);
}

/* Find a tensor and check it is a [rows][cols] matrix (ne = {cols, rows}). */
static int find_tensor(const hmti_gguf *g, const char *name, int64_t cols, int64_t rows,
                       int required, const hmti_gguf_tensor **out) {
    const hmti_gguf_tensor *t = hmti_gguf_find_tensor(g, name);
    *out = NULL;
    if (!t) {
        if (required) return hmti_errf(HMT_E_FORMAT, "model: missing tensor '%s'", name);
        return HMT_OK;
    }
    int64_t want_dims = rows > 1 ? 2 : 1;
    int ok = t->ne[0] == (uint64_t)cols && (int64_t)t->n_dims <= 2 &&
             (want_dims == 1 ? (t->n_dims == 1 || t->ne[1] == 1) : t->ne[1] == (uint64_t)rows);
    if (!ok)
        return hmti_errf(HMT_E_FORMAT,
                         "model: tensor '%s' has shape [%llu, %llu], expected [%lld, %lld]", name,
                         (unsigned long long)t->ne[0],
                         (unsigned long long)(t->n_dims > 1 ? t->ne[1] : 1), (long long)cols,
                         (long long)rows);
    if (!hmti_qtraits_of(t->type))
        return hmti_errf(HMT_E_UNSUPPORTED, "model: tensor '%s' has unsupported type %s (%u); "
                         "supported: " HMTI_QTYPES_LIST, name, hmti_tensor_type_name(t->type),
                         (unsigned)t->type);
    const size_t rb = hmti_qrow_bytes(t->type, cols);
    if (!rb || t->nbytes / rb != (uint64_t)rows || t->nbytes % rb)
        return hmti_errf(HMT_E_FORMAT, "model: tensor '%s' (%s) holds %llu bytes, not %lld rows "
                         "of %zu", name, hmti_tensor_type_name(t->type),
                         (unsigned long long)t->nbytes, (long long)rows, rb);
    /* every weight passes here once: refuse NaN/inf at their source, not as
     * NaN logits later (one pass over the mapped data; for block types the
     * f16 scales, since the integer quants are finite by construction) */
    float bad_v = 0;
    const int64_t bad = hmti_quant_first_nonfinite(t->type, t->data, (int64_t)t->n_elements, &bad_v);
    if (bad >= 0)
        return hmti_errf(HMT_E_FORMAT, "model: tensor '%s' (%s) element %lld (row %lld, column %lld) "
                         "is %s%s", name, hmti_tensor_type_name(t->type), (long long)bad,
                         (long long)(bad / cols), (long long)(bad % cols), hmti_nonfinite_name(bad_v),
                         hmti_qtraits_of(t->type)->block_elems > 1 ? " (its block's scale)" : "");
    *out = t;
    return HMT_OK;
}

/* n tensors [rows_i][cols] as one stored matrix (parts in the mapped file). */
static int stored_matrix(hmt_model *m, const char *const *names,
                         const hmti_gguf_tensor *const *t, const int64_t *rows, int n,
                         int64_t cols, hmti_matrix *dst) {
    const void *data[HMTI_MATRIX_MAX_PARTS] = {0};
    uint32_t types[HMTI_MATRIX_MAX_PARTS] = {0}; /* -O1: maybe-uninitialized */
    for (int i = 0; i < n; i++) {
        data[i] = t[i]->data;
        types[i] = t[i]->type;
    }
    int rc = hmti_matrix_stored(dst, n, data, types, rows, cols);
    if (rc) return hmti_errf(rc, "model: tensor '%s': %s", names[0], hmti_tls_errmsg());
    /* parts repacked for the decode kernels (a copy of the same size): the
     * file's pages are dropped as for packed F32 (drop_copied_tensors too) */
    const int mask = hmti_matrix_repack(dst, &m->weights);
    for (int i = 0; i < n && mask > 0; i++)
        if (mask >> i & 1) hmti_gguf_drop_pages(m->gguf, t[i]->data, t[i]->nbytes);
    return HMT_OK;
}

static int load_matrix(hmt_model *m, const char *name, int64_t rows, int64_t cols,
                       hmti_matrix *dst) {
    const hmti_gguf_tensor *t;
    int rc = find_tensor(m->gguf, name, cols, rows, 1, &t);
    if (rc) return rc;
    m->n_params += (uint64_t)rows * (uint64_t)cols;
    if (t->type != HMTI_TYPE_F32) return stored_matrix(m, &name, &t, &rows, 1, cols, dst);
    rc = hmti_matrix_pack(dst, t->data, t->type, rows, cols, &m->weights);
    if (rc) return hmti_errf(rc, "model: tensor '%s': %s", name, hmti_tls_errmsg());
    hmti_gguf_drop_pages(m->gguf, t->data, t->nbytes); /* the packed copy replaces them */
    return HMT_OK;
}

/* Several [rows_i][cols] tensors as one matrix: stacked into one packed
 * matrix when all are F32, else one stored matrix with a part each (no
 * copy; the parts may differ in type). */
static int load_stacked(hmt_model *m, const char *const *names, const int64_t *rows, int n,
                        int64_t cols, hmti_matrix *dst) {
    const hmti_gguf_tensor *t[3];
    int64_t total = 0;
    int all_f32 = 1;
    for (int i = 0; i < n; i++) {
        int rc = find_tensor(m->gguf, names[i], cols, rows[i], 1, &t[i]);
        if (rc) return rc;
        total += rows[i];
        all_f32 &= t[i]->type == HMTI_TYPE_F32;
    }
    if (!all_f32) {
        for (int i = 0; i < n; i++) m->n_params += (uint64_t)rows[i] * (uint64_t)cols;
        return stored_matrix(m, names, t, rows, n, cols, dst);
    }
    /* its own mapping, returned to the system on free: from the heap, it
     * would stay resident as a hole between the packed matrices */
    const size_t tmp_bytes = (size_t)total * (size_t)cols * sizeof(float);
    float *tmp = hmti_big_alloc(tmp_bytes);
    if (!tmp) return hmti_errf(HMT_E_NOMEM, "model: out of memory stacking '%s'", names[0]);
    float *row = tmp;
    for (int i = 0; i < n; i++) {
        const size_t rb = hmti_row_size(t[i]->type, cols);
        for (int64_t r = 0; r < rows[i]; r++, row += cols)
            hmti_row_to_f32((const char *)t[i]->data + (size_t)r * rb, t[i]->type, row, cols);
        m->n_params += (uint64_t)rows[i] * (uint64_t)cols;
    }
    int rc = hmti_matrix_pack(dst, tmp, HMTI_TYPE_F32, total, cols, &m->weights);
    hmti_big_free(tmp, tmp_bytes);
    for (int i = 0; i < n && !rc; i++) hmti_gguf_drop_pages(m->gguf, t[i]->data, t[i]->nbytes);
    return rc ? hmti_errf(rc, "model: tensor '%s': %s", names[0], hmti_tls_errmsg()) : HMT_OK;
}

/* A vector (norm weight, bias) as an owned F32 copy; NULL if optional and absent. */
static int load_vector(hmt_model *m, const char *name, int64_t n, int required, float **dst) {
    const hmti_gguf_tensor *t;
    *dst = NULL;
    int rc = find_tensor(m->gguf, name, n, 1, required, &t);
    if (rc || !t) return rc;
    float *v = hmti_malloc((size_t)n * sizeof *v);
    if (!v) return hmti_errf(HMT_E_NOMEM, "model: out of memory for '%s'", name);
    hmti_dequantize_row(t->type, t->data, v, n); /* find_tensor checked n fits the type */
    m->n_params += (uint64_t)n;
    *dst = v;
    return HMT_OK;
}

/* n_rot/2 frequency factors (finite and > 0, as llama.cpp's converter writes). */
static int load_factors(hmt_model *m, const char *name, float **ff) {
    int rc = load_vector(m, name, m->rope.n_rot / 2, 1, ff);
    for (int i = 0; !rc && i < m->rope.n_rot / 2; i++)
        if (!((*ff)[i] > 0) || !isfinite((*ff)[i]))
            rc = hmti_errf(HMT_E_FORMAT, "model: tensor '%s' element %d is %g (frequency factors "
                           "are finite and > 0)", name, i, (*ff)[i]);
    if (rc) {
        free(*ff);
        *ff = NULL;
    }
    return rc;
}

/* The RoPE table, with rope_freqs.weight's factors when the file has them,
 * or LongRoPE's short and long tables (rope.c). */
static int load_rope(hmt_model *m) {
    float *ff = NULL, *ff_long = NULL;
    int rc = HMT_OK;
    if (m->rope.has_freq_factors) rc = load_factors(m, "rope_freqs.weight", &ff);
    if (!rc && m->rope.longrope &&
        !(rc = load_factors(m, "rope_factors_short.weight", &ff)))
        rc = load_factors(m, "rope_factors_long.weight", &ff_long);
    if (!rc) rc = hmti_model_rope_table(m, ff, ff_long);
    free(ff);
    free(ff_long);
    return rc;
}

static int read_hparams(hmt_model *m) {
    const hmti_gguf *g = m->gguf;
    hmti_str arch;
    if (hmti_gguf_find_key(g, "general.architecture") < 0) /* a file defect, not an argument */
        return hmti_errf(HMT_E_FORMAT, "model: missing metadata key 'general.architecture' "
                         "(a GGUF model names its architecture: llama, qwen2, qwen3, gemma2, "
                         "gemma3 or phi3; re-convert it "
                         "with tools/convert_hf.py)");
    int rc = hmti_gguf_get_str(g, "general.architecture", &arch);
    if (rc) return rc;
    /* llama.cpp's RoPE pairing per architecture: adjacent for llama, NEOX else */
    static const struct {
        const char *name;
        hmti_arch arch;
        int neox;
    } ARCHS[] = {{"llama", HMTI_ARCH_LLAMA, 0},  {"qwen2", HMTI_ARCH_QWEN2, 1},
                 {"qwen3", HMTI_ARCH_QWEN3, 1},  {"gemma2", HMTI_ARCH_GEMMA2, 1},
                 {"gemma3", HMTI_ARCH_GEMMA3, 1}, {"phi3", HMTI_ARCH_PHI3, 1}};
    size_t ai = 0;
    while (ai < sizeof ARCHS / sizeof ARCHS[0] && !hmti_str_eq(arch, ARCHS[ai].name)) ai++;
    if (ai < sizeof ARCHS / sizeof ARCHS[0]) {
        m->arch = ARCHS[ai].arch;
        m->rope_neox = ARCHS[ai].neox;
    } else if (hmti_str_eq(arch, "hmt")) {
        return hmti_errf(HMT_E_UNSUPPORTED,
                         "model: this file is an HMT adapter (architecture 'hmt'), not a model: "
                         "load the base model as the model (-m, hmt_model_load) and give this "
                         "file as the adapter (-a, hmt_adapter_load)");
    } else {
        return hmti_errf(HMT_E_UNSUPPORTED,
                         "model: architecture '%.*s' is not supported (llama, qwen2, qwen3, "
                         "gemma2, gemma3, phi3)",
                         (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
    }
    snprintf(m->arch_name, sizeof m->arch_name, "%.*s", (int)arch.len, arch.ptr);
    const char *a = m->arch_name;
    if ((rc = meta_u32(g, a, "embedding_length", &m->n_embd, 1, 0)) ||
        (rc = meta_u32(g, a, "block_count", &m->n_layer, 1, 0)) ||
        (rc = meta_u32(g, a, "feed_forward_length", &m->n_ff, 1, 0)) ||
        (rc = meta_u32(g, a, "attention.head_count", &m->n_head, 1, 0)) ||
        (rc = meta_u32(g, a, "attention.head_count_kv", &m->n_head_kv, 0, m->n_head)) ||
        (rc = meta_u32(g, a, "context_length", &m->n_ctx_train, 1, 0)) ||
        (rc = meta_f32(g, a, "rope.freq_base", &m->rope_base, 10000.0f)) ||
        (rc = meta_f32(g, a, "attention.layer_norm_rms_epsilon", &m->rms_eps, 1e-5f)))
        return rc;
    if (m->n_embd <= 0 || m->n_layer <= 0 || m->n_ff <= 0 || m->n_head <= 0 ||
        m->n_head_kv <= 0 || m->n_ctx_train <= 0)
        return hmti_errf(HMT_E_FORMAT,
                         "model: hyperparameters must be positive (embd %d, layers %d, ff %d, "
                         "heads %d, kv heads %d, context %d)",
                         m->n_embd, m->n_layer, m->n_ff, m->n_head, m->n_head_kv, m->n_ctx_train);
    /* head size: attention.key_length (qwen3, Mistral-Nemo-style llama) or
     * embedding / heads, as llama.cpp reads it; values must have the same */
    int32_t hd_k, hd_v;
    const int32_t hd_def = m->n_embd / m->n_head;
    if ((rc = meta_u32(g, a, "attention.key_length", &hd_k, 0, hd_def)) ||
        (rc = meta_u32(g, a, "attention.value_length", &hd_v, 0, hd_def)))
        return rc;
    if (hd_k != hd_v)
        return hmti_errf(HMT_E_UNSUPPORTED, "model: '%s.attention.key_length' = %d and "
                         "'%s.attention.value_length' = %d (embedding / heads = %d when absent): "
                         "key and value heads of different sizes are not implemented "
                         "(docs/MODELS.md)", a, hd_k, a, hd_v, hd_def);
    if (hd_k <= 0 || hd_k % 2 || m->n_head % m->n_head_kv ||
        (hd_k == hd_def && m->n_embd % m->n_head))
        return hmti_errf(HMT_E_FORMAT,
                         "model: embedding %d, heads %d, kv heads %d, head size %d do not divide "
                         "evenly into an even head size",
                         m->n_embd, m->n_head, m->n_head_kv, hd_k);
    m->head_dim = hd_k;
    if ((rc = hmti_model_refuse_unimplemented(g, a, m->n_ctx_train, m->arch)) ||
        (rc = hmti_model_read_rope(m)) || (rc = hmti_model_read_gemma(m)) ||
        (m->arch == HMTI_ARCH_GEMMA3 && (rc = hmti_model_refuse_vision(m))))
        return rc;
    if (!(m->rope_base > 0) || !(m->rms_eps > 0) || m->rms_eps > 1)
        return hmti_errf(HMT_E_FORMAT, "model: rope.freq_base %g / rms epsilon %g out of range",
                         m->rope_base, m->rms_eps);
    return HMT_OK;
}

/* Layer i's q|k|v and gate|up matrices. llama.cpp's phi3 files hold them
 * fused, in the same row order libhmt keeps them in (attn_qkv: q, k, v;
 * ffn_up: gate then up, 2 n_ff rows, as Hugging Face's gate_up_proj and
 * ggml's swiglu split it), so they load as one matrix each; phi3's
 * separate attn_q/k/v (llama.cpp accepts either) and every other
 * architecture's separate tensors are stacked. */
static int load_qkv_gate_up(hmt_model *m, int i, hmti_matrix *qkv, hmti_matrix *gate_up) {
    const int64_t d = m->n_embd, hd = m->head_dim, ff = m->n_ff;
    const int64_t q_dim = (int64_t)m->n_head * hd, kv_dim = (int64_t)m->n_head_kv * hd;
    const int phi3 = m->arch == HMTI_ARCH_PHI3;
    char n0[NAME_MAX_LEN], n1[NAME_MAX_LEN], n2[NAME_MAX_LEN];
#define LNAME(buf, suffix) (snprintf(buf, sizeof buf, "blk.%d." suffix, i), buf)
    int rc;
    /* llama.cpp's phi3 graph adds a fused bias when the file has one; no
     * Phi-3 has it, and libhmt's biases are qwen2's separate ones */
    if (phi3 && hmti_gguf_find_tensor(m->gguf, LNAME(n0, "attn_qkv.bias")))
        return hmti_errf(HMT_E_UNSUPPORTED, "model: tensor '%s' (a fused q|k|v bias) is not "
                         "implemented (docs/MODELS.md)", n0);
    if (phi3 && hmti_gguf_find_tensor(m->gguf, LNAME(n0, "attn_qkv.weight"))) {
        if (hmti_gguf_find_tensor(m->gguf, LNAME(n1, "attn_q.weight")))
            return hmti_errf(HMT_E_FORMAT, "model: both '%s' and '%s': q, k and v given twice",
                             n0, n1);
        rc = load_matrix(m, n0, q_dim + 2 * kv_dim, d, qkv);
    } else {
        const char *names[3] = {LNAME(n0, "attn_q.weight"), LNAME(n1, "attn_k.weight"),
                                LNAME(n2, "attn_v.weight")};
        const int64_t rows[3] = {q_dim, kv_dim, kv_dim};
        rc = load_stacked(m, names, rows, 3, d, qkv);
    }
    if (rc) return rc;
    if (phi3) {
        if (hmti_gguf_find_tensor(m->gguf, LNAME(n0, "ffn_gate.weight")))
            return hmti_errf(HMT_E_FORMAT, "model: tensor '%s' in a phi3 file: phi3's "
                             "ffn_up.weight holds the gate and up rows together", n0);
        return load_matrix(m, LNAME(n0, "ffn_up.weight"), 2 * ff, d, gate_up);
    }
    const char *gu[2] = {LNAME(n0, "ffn_gate.weight"), LNAME(n1, "ffn_up.weight")};
    const int64_t gu_rows[2] = {ff, ff};
    return load_stacked(m, gu, gu_rows, 2, d, gate_up);
#undef LNAME
}

static int load_weights(hmt_model *m) {
    const int64_t d = m->n_embd, hd = m->head_dim, ff = m->n_ff;
    const int64_t q_dim = (int64_t)m->n_head * hd, kv_dim = (int64_t)m->n_head_kv * hd;
    const hmti_gguf_tensor *emb = hmti_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!emb) return hmti_errf(HMT_E_FORMAT, "model: missing tensor 'token_embd.weight'");
    if (emb->n_dims != 2 || emb->ne[0] != (uint64_t)d || emb->ne[1] < 1 || emb->ne[1] > INT32_MAX)
        return hmti_errf(HMT_E_FORMAT, "model: token_embd.weight shape [%llu, %llu] vs embedding %lld",
                         (unsigned long long)emb->ne[0], (unsigned long long)emb->ne[1],
                         (long long)d);
    m->n_vocab = (int32_t)emb->ne[1];
    int rc = find_tensor(m->gguf, "token_embd.weight", d, m->n_vocab, 1, &m->tok_embd);
    if (rc) return rc;
    m->n_params += (uint64_t)m->n_vocab * (uint64_t)d;
    /* The layer count is only metadata: bound it by the tensors the file
     * holds before the layer table is allocated (10^7 layers in a few MB
     * cost gigabytes and seconds before the first missing tensor). */
    const uint64_t n_tensors = hmti_gguf_n_tensors(m->gguf);
    if ((uint64_t)m->n_layer > n_tensors / TENSORS_PER_LAYER(m))
        return hmti_errf(HMT_E_FORMAT, "model: '%s.block_count' = %d layers, but the file holds "
                         "%llu tensors (a layer needs %d)", m->arch_name, m->n_layer,
                         (unsigned long long)n_tensors, TENSORS_PER_LAYER(m));

    m->layers = hmti_calloc((size_t)m->n_layer, sizeof *m->layers);
    if (!m->layers) return hmti_errf(HMT_E_NOMEM, "model: out of memory");
    char n0[NAME_MAX_LEN], n1[NAME_MAX_LEN], n2[NAME_MAX_LEN];
#define TNAME(buf, suffix) (snprintf(buf, sizeof buf, "blk.%d." suffix, i), buf)
    for (int i = 0; i < m->n_layer; i++) {
        hmti_layer *L = &m->layers[i];
        const int64_t qkv_rows[3] = {q_dim, kv_dim, kv_dim};
        if ((rc = load_qkv_gate_up(m, i, &L->wqkv, &L->gate_up)) ||
            (rc = load_matrix(m, TNAME(n0, "attn_output.weight"), d, q_dim, &L->wo)) ||
            (rc = load_matrix(m, TNAME(n0, "ffn_down.weight"), d, ff, &L->down)) ||
            (rc = load_vector(m, TNAME(n0, "attn_norm.weight"), d, 1, &L->attn_norm)) ||
            (rc = load_vector(m, TNAME(n0, "ffn_norm.weight"), d, 1, &L->ffn_norm)))
            return rc;
        if ((m->arch == HMTI_ARCH_QWEN3 || m->arch == HMTI_ARCH_GEMMA3) &&
            ((rc = load_vector(m, TNAME(n0, "attn_q_norm.weight"), hd, 1, &L->q_norm)) ||
             (rc = load_vector(m, TNAME(n0, "attn_k_norm.weight"), hd, 1, &L->k_norm))))
            return rc;
        if (m->gelu && /* gemma: the norms of the attention and FFN outputs */
            ((rc = load_vector(m, TNAME(n0, "post_attention_norm.weight"), d, 1,
                               &L->attn_post_norm)) ||
             (rc = load_vector(m, TNAME(n0, "post_ffw_norm.weight"), d, 1, &L->ffn_post_norm))))
            return rc;
        L->swa = m->n_swa > 0 && (!m->swa_period || i % m->swa_period < m->swa_period - 1);
        /* q, k, v biases (qwen2 always has them), stacked like the weights */
        if (m->arch == HMTI_ARCH_QWEN2 || hmti_gguf_find_tensor(m->gguf, TNAME(n0, "attn_q.bias"))) {
            float *b[3] = {NULL, NULL, NULL};
            const char *bn[3] = {TNAME(n0, "attn_q.bias"), TNAME(n1, "attn_k.bias"),
                                 TNAME(n2, "attn_v.bias")};
            for (int j = 0; j < 3 && !rc; j++) rc = load_vector(m, bn[j], qkv_rows[j], 1, &b[j]);
            if (!rc && !(L->bqkv = hmti_malloc((size_t)(q_dim + 2 * kv_dim) * sizeof(float))))
                rc = hmti_errf(HMT_E_NOMEM, "model: out of memory");
            if (!rc) {
                memcpy(L->bqkv, b[0], (size_t)q_dim * sizeof(float));
                memcpy(L->bqkv + q_dim, b[1], (size_t)kv_dim * sizeof(float));
                memcpy(L->bqkv + q_dim + kv_dim, b[2], (size_t)kv_dim * sizeof(float));
            }
            free(b[0]), free(b[1]), free(b[2]);
            if (rc) return rc;
        }
    }
#undef TNAME
    if ((rc = load_vector(m, "output_norm.weight", d, 1, &m->output_norm))) return rc;
    if ((rc = load_rope(m))) return rc;
    if (hmti_gguf_find_tensor(m->gguf, "output.weight") && m->arch == HMTI_ARCH_GEMMA2)
        return hmti_errf(HMT_E_UNSUPPORTED, "model: tensor 'output.weight' in a gemma2 file: "
                         "llama.cpp's gemma2 always ties the LM head to token_embd.weight (and "
                         "refuses the extra tensor), so libhmt does not choose between them");
    if (hmti_gguf_find_tensor(m->gguf, "output.weight"))
        return load_matrix(m, "output.weight", m->n_vocab, d, &m->output);
    /* Tied embeddings: the LM head is the embedding table, packed when F32,
     * else used as stored (already checked above; repacked where
     * hmti_matrix_repack applies). */
    if (m->tok_embd->type == HMTI_TYPE_F32) {
        rc = hmti_matrix_pack(&m->output, m->tok_embd->data, m->tok_embd->type, m->n_vocab, d,
                              &m->weights);
        m->embd_from_output = !rc; /* embedding rows then come from the packed copy */
        if (!rc) hmti_gguf_drop_pages(m->gguf, m->tok_embd->data, m->tok_embd->nbytes);
    } else {
        rc = hmti_matrix_stored(&m->output, 1, &m->tok_embd->data, &m->tok_embd->type,
                                &(int64_t){m->n_vocab}, d);
        /* repacked (as stored_matrix): embedding rows then come from the copy too */
        if (!rc && hmti_matrix_repack(&m->output, &m->weights) == 1) {
            m->embd_from_output = 1;
            hmti_gguf_drop_pages(m->gguf, m->tok_embd->data, m->tok_embd->nbytes);
        }
    }
    return rc ? hmti_errf(rc, "model: tied LM head: %s", hmti_tls_errmsg()) : HMT_OK;
}

static int load_vocab(hmt_model *m) {
    if (hmti_gguf_find_key(m->gguf, "tokenizer.ggml.model") < 0) return HMT_OK;
    uint64_t n;
    /* more token texts than embedding rows: refused before they are copied */
    if (hmti_gguf_get_arr(m->gguf, "tokenizer.ggml.tokens", NULL, &n, NULL) == HMT_OK &&
        n > (uint64_t)m->n_vocab)
        return hmti_errf(HMT_E_FORMAT, "model: 'tokenizer.ggml.tokens' has %llu tokens but the "
                         "embedding table %d rows", (unsigned long long)n, m->n_vocab);
    int rc = hmti_vocab_load(&m->vocab, m->gguf);
    if (rc) return rc;
    if (hmti_vocab_n_tokens(m->vocab) > m->n_vocab)
        return hmti_errf(HMT_E_FORMAT, "model: tokenizer has %d tokens but the embedding table %d rows",
                         hmti_vocab_n_tokens(m->vocab), m->n_vocab);
    return HMT_OK;
}

/* Shape, the norms' weights and the last embedding row as stored in the
 * file: cheap, and different for any two models that would give different
 * keys or states in practice. */
static uint64_t fingerprint(const hmt_model *m) {
    const int32_t shape[] = {m->n_vocab, m->n_embd, m->n_layer, m->n_head, m->n_head_kv, m->n_ff};
    const size_t d = (size_t)m->n_embd * sizeof(float);
    uint64_t h = hmti_fnv1a(HMTI_FNV_INIT, shape, sizeof shape);
    h = hmti_fnv1a(h, m->output_norm, d);
    for (int l = 0; l < m->n_layer; l++) {
        h = hmti_fnv1a(h, m->layers[l].attn_norm, d);
        h = hmti_fnv1a(h, m->layers[l].ffn_norm, d);
    }
    /* a RoPE other than base^(-2i/head size) changes every state: hashed
     * then (so plain models keep the fingerprints they always had) */
    int plain = m->rope.n_rot == m->head_dim && m->rope_mscale == 1.0f && !m->rope_freq_long;
    for (int i = 0; plain && i < m->rope.n_rot / 2; i++)
        plain = m->rope_freq[i] == pow(m->rope_base, -2.0 * (double)i / (double)m->rope.n_rot);
    if (!plain) {
        h = hmti_fnv1a(h, &m->rope.n_rot, sizeof m->rope.n_rot);
        h = hmti_fnv1a(h, &m->rope_mscale, sizeof m->rope_mscale);
        h = hmti_fnv1a(h, m->rope_freq, (size_t)(m->rope.n_rot / 2) * sizeof *m->rope_freq);
        if (m->rope_freq_long)
            h = hmti_fnv1a(h, m->rope_freq_long,
                           (size_t)(m->rope.n_rot / 2) * sizeof *m->rope_freq_long);
    }
    const size_t rb = hmti_qrow_bytes(m->tok_embd->type, m->n_embd);
    return hmti_fnv1a(h, (const char *)m->tok_embd->data + (size_t)(m->n_vocab - 1) * rb, rb);
}

/* Every F32 tensor has been packed or copied (vectors) by now, except an
 * untied F32 embedding table, read in place. Each was dropped from the
 * mapping when copied, but the next tensor's read of a page range that the
 * kernel maps whole (a transparent huge page of the file, or fault-around)
 * brought back the shared extent: up to 2 MiB per tensor boundary, 121 MB
 * on a SmolLM2-shaped F32 file. Nothing reads them now: drop them again. */
static void drop_copied_tensors(const hmt_model *m) {
    for (uint64_t i = 0; i < hmti_gguf_n_tensors(m->gguf); i++) {
        const hmti_gguf_tensor *t = hmti_gguf_tensor_at(m->gguf, i);
        /* matrices only: a norm vector's page or two is not worth it, and
         * dropping them unmaps the whole huge page a stored neighbour shares */
        /* packed F32, or a type hmti_matrix_repack copies (stored_matrix) */
        const int copied = t->type == HMTI_TYPE_F32 || hmti_q_il_fits(t->type, (int64_t)t->ne[1], (int64_t)t->ne[0]);
        if (!copied || t->n_dims < 2 || (t == m->tok_embd && !m->embd_from_output)) continue;
        hmti_gguf_drop_pages(m->gguf, t->data, t->nbytes);
    }
    /* the vocabulary and hyperparameters are copied out too (a later
     * metadata lookup reads its pages back from the file): 1.3 MB of a
     * 77 MB SmolLM2-shaped Q4_0 file */
    hmti_gguf_drop_header(m->gguf);
}

static void destroy(hmt_model *m) {
    if (m->layers) {
        for (int i = 0; i < m->n_layer; i++) {
            hmti_layer *L = &m->layers[i];
            hmti_matrix_release(&L->wqkv);
            hmti_matrix_release(&L->wo);
            hmti_matrix_release(&L->gate_up);
            hmti_matrix_release(&L->down);
            free(L->attn_norm);
            free(L->ffn_norm);
            free(L->bqkv);
            free(L->q_norm);
            free(L->k_norm);
            free(L->attn_post_norm);
            free(L->ffn_post_norm);
        }
        free(m->layers);
    }
    hmti_matrix_release(&m->output);
    hmti_arena_free(&m->weights); /* every matrix's copy, now unused */
    free(m->output_norm);
    if (m->rope_freq_swa != m->rope_freq) free(m->rope_freq_swa);
    free(m->rope_freq);
    free(m->rope_freq_long);
    hmti_vocab_free(m->vocab);
    hmti_gguf_close(m->gguf);
    hmti_guard_poison(&m->guard);
    free(m);
}

int hmti_model_load(hmt_model **out, const char *path) {
    *out = NULL;
    hmt_model *m = hmti_calloc(1, sizeof *m);
    if (!m) return hmti_errf(HMT_E_NOMEM, "model: out of memory");
    atomic_init(&m->refs, 1);
    hmti_guard_init(&m->guard, HMTI_MAGIC_MODEL);
    hmti_kernels_init();
    int rc = hmti_gguf_open(&m->gguf, path);
    if (!rc) rc = read_hparams(m);
    if (!rc) rc = load_weights(m);
    if (!rc) rc = load_vocab(m);
    if (!rc) m->fingerprint = fingerprint(m);
    if (!rc) drop_copied_tensors(m);
    if (!rc) hmti_arena_trim(&m->weights);
    if (rc) {
        destroy(m);
        char msg[HMTI_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s", hmti_tls_errmsg());
        return strstr(msg, path) ? rc : hmti_errf(rc, "%s: %s", path, msg);
    }
    *out = m;
    return HMT_OK;
}

void hmti_model_retain(hmt_model *m) { atomic_fetch_add(&m->refs, 1); }

void hmti_model_release(hmt_model *m) {
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) destroy(m);
}

void hmti_model_embed(const hmt_model *m, hmt_token t, float *out) {
    if (m->embd_from_output) {
        hmti_matrix_get_row(&m->output, t, out);
        if (m->embd_scale != 1.0f) hmti_scale(out, m->embd_scale, m->n_embd);
        return;
    }
    const size_t row = hmti_qrow_bytes(m->tok_embd->type, m->n_embd);
    hmti_dequantize_row(m->tok_embd->type, (const char *)m->tok_embd->data + (size_t)t * row, out,
                        m->n_embd);
    if (m->embd_scale != 1.0f) hmti_scale(out, m->embd_scale, m->n_embd);
}
