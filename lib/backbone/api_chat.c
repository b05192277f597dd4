/* Public entry points for chat templates and end-of-generation tokens
 * (recognising and formatting in lib/text/chat_detect.c and chat.c, the
 * EOG set in lib/text/eog.c). */
#include "backbone/model.h"
#include "text/chat.h"

HMT_API int hmt_token_is_eog(const hmt_model *m, hmt_token token) {
    return m && m->vocab ? hmti_vocab_is_eog(m->vocab, token) : 0;
}

HMT_API hmt_token hmt_model_token_eot(const hmt_model *m) {
    return m && m->vocab ? hmti_vocab_eot(m->vocab) : -1;
}

HMT_API const char *hmt_model_chat_template(const hmt_model *m) {
    return m && m->vocab ? hmti_vocab_chat_template(m->vocab) : NULL;
}

HMT_API int hmt_chat_apply(const hmt_model *m, const char *tmpl, const char *const *roles,
                           const char *const *contents, size_t n, int add_generation_prompt,
                           char *buf, size_t size, size_t *len) {
    if (!len || (!buf && size) || !roles || !contents)
        return hmti_errf(HMT_E_INVAL, "hmt_chat_apply: %s is NULL",
                         !len ? "len" : !roles ? "roles" : !contents ? "contents"
                                                           : "buf (with size > 0)");
    if (n == 0) return hmti_errf(HMT_E_INVAL, "hmt_chat_apply: no messages (n is 0)");
    if (!tmpl) {
        if (!m)
            return hmti_errf(HMT_E_INVAL, "hmt_chat_apply: model and tmpl are both NULL "
                                          "(the model's template needs the model)");
        if (hmti_guard_check(&m->guard, HMTI_MAGIC_MODEL, "hmt_chat_apply")) return HMT_E_MISUSE;
        tmpl = m->vocab ? hmti_vocab_chat_template(m->vocab) : NULL;
        if (!tmpl)
            return hmti_errf(HMT_E_UNSUPPORTED,
                             "hmt_chat_apply: the model file has no tokenizer.chat_template: "
                             "pass a template family (\"llama3\", \"chatml\", ...) or format "
                             "the conversation yourself and tokenize the text with "
                             "HMT_TOKENIZE_SPECIAL");
    }
    hmti_chat_style st;
    int rc = hmti_chat_detect(tmpl, &st);
    if (rc) return rc;
    return hmti_chat_format(&st, roles, contents, n, add_generation_prompt, buf, size, len);
}
