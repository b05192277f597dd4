/* Public model and tokenizer entry points: argument checks, then the
 * internal call, then the error copied onto the model. */
#include <string.h>

#include "backbone/model.h"
#include "core/params.h"

HMT_API int hmt_model_load(hmt_model **out, const char *path, const hmt_params *params) {
    if (!out) return hmti_errf(HMT_E_INVAL, "hmt_model_load: out is NULL");
    *out = NULL;
    int rc = hmti_params_only(params, NULL, 0, "hmt_model_load"); /* no model keys yet */
    if (rc) return rc;
    if (!path) return hmti_errf(HMT_E_INVAL, "hmt_model_load: path is NULL");
    return hmti_model_load(out, path);
}

/* The caller's reference is released once: contexts, streams and adapters
 * keep the model alive, so a second free would destroy it under them. */
HMT_API void hmt_model_free(hmt_model *model) {
    if (!model || hmti_guard_check(&model->guard, HMTI_MAGIC_MODEL, "hmt_model_free")) return;
    if (hmti_user_free_once(&model->user_freed, "hmt_model_free", "model")) return;
    hmti_model_release(model);
}

#define GETTER(name, field)                                                   \
    HMT_API int32_t hmt_model_##name(const hmt_model *m) { return m ? m->field : 0; }
GETTER(n_vocab, n_vocab)
GETTER(n_embd, n_embd)
GETTER(n_layer, n_layer)
GETTER(n_head, n_head)
GETTER(n_head_kv, n_head_kv)
GETTER(n_ff, n_ff)
GETTER(n_ctx_train, n_ctx_train)
#undef GETTER

HMT_API const char *hmt_model_arch(const hmt_model *m) { return m ? m->arch_name : NULL; }
HMT_API uint64_t hmt_model_n_params(const hmt_model *m) { return m ? m->n_params : 0; }


HMT_API int hmt_model_meta_str(const hmt_model *m, const char *key, char *buf, size_t cap,
                               size_t *len_out) {
    if (!m || !key || (!buf && cap))
        return hmti_errf(HMT_E_INVAL, "hmt_model_meta_str: %s is NULL", !m ? "model"
                                 : !key ? "key" : "buf (with cap > 0)");
    int64_t idx = hmti_gguf_find_key(m->gguf, key);
    if (idx < 0)
        return hmti_errf(HMT_E_INVAL, "hmt_model_meta_str: metadata key '%s' not found "
                                 "in the model file", key);
    size_t len = hmti_gguf_value_text(m->gguf, idx, buf, cap);
    if (len_out) *len_out = len;
    if (len >= cap)
        return hmti_errf(HMT_E_BUFFER, "hmt_model_meta_str: '%s' needs %zu bytes", key,
                                 len + 1);
    return HMT_OK;
}

HMT_API hmt_token hmt_model_token_bos(const hmt_model *m) {
    return m && m->vocab ? hmti_vocab_bos(m->vocab) : -1;
}

HMT_API hmt_token hmt_model_token_eos(const hmt_model *m) {
    return m && m->vocab ? hmti_vocab_eos(m->vocab) : -1;
}

HMT_API int hmt_model_token_embedding(const hmt_model *m, hmt_token token, float *out,
                                      size_t cap) {
    if (!m || !out)
        return hmti_errf(HMT_E_INVAL, "hmt_model_token_embedding: %s is NULL",
                                 !m ? "model" : "out");
    if (token < 0 || token >= m->n_vocab)
        return hmti_errf(HMT_E_TOKEN, "token %d outside [0, %d)", token, m->n_vocab);
    if (cap < (size_t)m->n_embd)
        return hmti_errf(HMT_E_BUFFER, "hmt_model_token_embedding: need %d floats, have %zu",
                                 m->n_embd, cap);
    hmti_model_embed(m, token, out);
    return HMT_OK;
}

static int need_vocab(const hmt_model *m, const char *fn) {
    if (!m) return hmti_errf(HMT_E_INVAL, "%s: model is NULL", fn);
    if (hmti_guard_check(&m->guard, HMTI_MAGIC_MODEL, fn)) return HMT_E_MISUSE;
    if (!m->vocab)
        return hmti_errf(HMT_E_UNSUPPORTED, "%s: the model file has no tokenizer", fn);
    return HMT_OK;
}

HMT_API int hmt_tokenize(const hmt_model *m, const char *text, size_t len, uint32_t flags,
                         hmt_token *out, size_t cap, size_t *n_out) {
    int rc = need_vocab(m, "hmt_tokenize");
    if (rc) return rc;
    if ((!text && len) || (!out && cap) || !n_out)
        return hmti_errf(HMT_E_INVAL, "hmt_tokenize: %s is NULL", !n_out ? "n_out"
                                 : !out && cap ? "out (with cap > 0)" : "text (with len > 0)");
    if (flags & ~(uint32_t)(HMT_TOKENIZE_ADD_BOS | HMT_TOKENIZE_SPECIAL))
        return hmti_errf(HMT_E_INVAL, "hmt_tokenize: unknown flags 0x%x", flags);
    rc = hmti_tokenize(m->vocab, text ? text : "", len, flags, out, cap, n_out);
    return rc ? rc : HMT_OK;
}

HMT_API int hmt_detokenize(const hmt_model *m, const hmt_token *tokens, size_t n,
                           uint32_t flags, char *buf, size_t cap, size_t *len_out) {
    int rc = need_vocab(m, "hmt_detokenize");
    if (rc) return rc;
    if ((!tokens && n) || (!buf && cap) || !len_out)
        return hmti_errf(HMT_E_INVAL, "hmt_detokenize: %s is NULL", !len_out ? "len_out"
                                 : !buf && cap ? "buf (with cap > 0)" : "tokens (with n > 0)");
    if (flags & ~(uint32_t)HMT_DETOKENIZE_SPECIAL)
        return hmti_errf(HMT_E_INVAL, "hmt_detokenize: unknown flags 0x%x", flags);
    rc = hmti_detokenize(m->vocab, tokens, n, flags, buf, cap, len_out);
    return rc ? rc : HMT_OK;
}
