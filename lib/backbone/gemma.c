/* Gemma 2 and Gemma 3 (text) hyperparameters as llama.cpp reads them from a
 * GGUF file (llama-model.cpp's load_hparams for LLM_ARCH_GEMMA2 / GEMMA3,
 * its gemma2 / gemma3 graphs), and the neutral values for the other
 * architectures:
 *
 *   gemma2: window attention.sliding_window (default 4096) on every other
 *           layer (il % 2 == 0), attention logit soft-capping
 *           attn_logit_softcapping (default 50), final logit soft-capping
 *           final_logit_softcapping (default 30), every input row (token or
 *           caller embedding) scaled by sqrt(n_embd)
 *   gemma3: window attention.sliding_window (absent or 0: no sliding
 *           layers) on 5 of every 6 layers (il % 6 < 5), whose RoPE base is
 *           10000 and unscaled; no soft-capping; token rows scaled by
 *           sqrt(n_embd) (caller embeddings are not: llama.cpp scales only
 *           token input, as Hugging Face's scaled embedding module does)
 *   both:   q scaled by 1/sqrt(n_embd / n_head) for llama.cpp's "27B" type
 *           (46 layers for gemma2, 62 for gemma3; Gemma's
 *           query_pre_attn_scalar), else 1/sqrt(head size); GELU-tanh gate
 *
 * llama, qwen2, phi3: attention.sliding_window (absent or 0: none) on every
 *         layer, as Mistral's and Phi-3's Hugging Face definitions apply it.
 *         llama.cpp reads no window for llama and qwen2 files and ignores
 *         phi3's (its warning "Phi SWA is currently disabled" cites its
 *         PR 13676): libhmt follows the file
 *         and Hugging Face, so past the window its logits differ from
 *         llama.cpp's (docs/MODELS.md).
 *
 * Keys that would ask for something else (another layer pattern, another
 * local RoPE base, YaRN, a gemma2 linear factor whose reach to the local
 * layers llama.cpp versions disagree on) are refused naming them. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backbone/model.h"

/* An optional float key > 0 (finite); *out unchanged when absent. */
static int positive_key(const hmt_model *m, const char *suffix, float *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->arch_name, suffix);
    if (hmti_gguf_find_key(m->gguf, key) < 0) return HMT_OK;
    int rc = hmti_gguf_get_f32(m->gguf, key, out);
    if (rc) return rc;
    if (!(*out > 0) || !isfinite(*out))
        return hmti_errf(HMT_E_FORMAT, "model: '%s' = %g must be finite and > 0", key, *out);
    return HMT_OK;
}

/* A float key that must be absent or equal to want (what llama.cpp computes). */
static int float_must_be(const hmt_model *m, const char *suffix, float want, const char *why) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->arch_name, suffix);
    return hmti_model_float_must_be(m->gguf, key, want, why);
}

static int read_window(hmt_model *m, int32_t def, int32_t period) {
    char key[128], s[48];
    m->n_swa = def;
    snprintf(key, sizeof key, "%s.attention.sliding_window", m->arch_name);
    if (hmti_gguf_find_key(m->gguf, key) >= 0) {
        uint32_t v;
        int rc = hmti_gguf_get_u32(m->gguf, key, &v);
        if (rc) return rc;
        if (v > INT32_MAX || (v == 0 && m->arch == HMTI_ARCH_GEMMA2))
            return hmti_errf(HMT_E_FORMAT, "model: '%s' = %u is out of range (1 .. 2^31 - 1)", key,
                             v);
        m->n_swa = (int32_t)v;
    }
    /* newer converters may write the layer pattern: only llama.cpp's fixed
     * one is implemented */
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", m->arch_name);
    const int64_t idx = hmti_gguf_find_key(m->gguf, key);
    if (idx < 0) return HMT_OK;
    uint32_t v;
    if (hmti_gguf_get_u32(m->gguf, key, &v) == HMT_OK && v == (uint32_t)period) return HMT_OK;
    hmti_gguf_value_text(m->gguf, idx, s, sizeof s);
    char why[96];
    snprintf(why, sizeof why, "asks for a sliding-window layer pattern other than llama.cpp's "
             "(period %d)", period);
    return hmti_model_refuse(key, s, why);
}

int hmti_model_read_gemma(hmt_model *m) {
    m->attn_scale = 1.0f / sqrtf((float)m->head_dim);
    m->attn_softcap = m->final_softcap = 0.0f;
    m->embd_scale = m->input_scale = 1.0f;
    m->gelu = 0;
    m->n_swa = 0;
    m->swa_period = 0;
    /* Mistral-style: one window on every layer (llama.cpp's pattern 0) */
    if (m->arch == HMTI_ARCH_LLAMA || m->arch == HMTI_ARCH_QWEN2 || m->arch == HMTI_ARCH_PHI3)
        return read_window(m, 0, 0);
    if (m->arch != HMTI_ARCH_GEMMA2 && m->arch != HMTI_ARCH_GEMMA3) return HMT_OK;
    const int g2 = m->arch == HMTI_ARCH_GEMMA2;
    int rc;
    m->gelu = 1;
    m->swa_period = g2 ? 2 : 6;
    if ((rc = read_window(m, g2 ? 4096 : 0, m->swa_period))) return rc;
    if (g2) {
        m->input_scale = sqrtf((float)m->n_embd);
        m->attn_softcap = 50.0f;
        m->final_softcap = 30.0f;
        if ((rc = positive_key(m, "attn_logit_softcapping", &m->attn_softcap)) ||
            (rc = positive_key(m, "final_logit_softcapping", &m->final_softcap)))
            return rc;
    } else {
        m->embd_scale = sqrtf((float)m->n_embd);
    }
    /* llama.cpp's query_pre_attn_scalar: n_embd / n_head for the 27B type */
    if (m->n_layer == (g2 ? 46 : 62))
        m->attn_scale = 1.0f / sqrtf((float)(m->n_embd / m->n_head));
    /* the local layers' RoPE: gemma2 the global one, gemma3 base 10000 */
    if ((rc = float_must_be(m, "rope.freq_base_swa", g2 ? m->rope_base : 10000.0f,
                            g2 ? "asks for a local RoPE base other than rope.freq_base (llama.cpp "
                                 "versions differ on gemma2)"
                               : "asks for a local RoPE base other than the 10000 llama.cpp uses "
                                 "for gemma3")))
        return rc;
    char key[128], s[32];
    if (m->rope.scaling == HMTI_ROPE_YARN) {
        snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch_name);
        return hmti_model_refuse(key, "'yarn'", "on a gemma architecture (local and global "
                                                "layers would need their own YaRN tables)");
    }
    if (g2 && m->rope.factor != 1.0f) {
        snprintf(key, sizeof key, "%s.rope.scaling.factor", m->arch_name);
        snprintf(s, sizeof s, "%g", m->rope.factor);
        return hmti_model_refuse(key, s, "on gemma2 (whether it reaches the sliding-window layers "
                                         "differs between llama.cpp versions)");
    }
    return HMT_OK;
}

/* llama.cpp writes a Gemma 3 vision tower to a separate mmproj file; its
 * tensors (v.*, mm.*) in a text model are not run by libhmt. */
int hmti_model_refuse_vision(const hmt_model *m) {
    for (uint64_t i = 0; i < hmti_gguf_n_tensors(m->gguf); i++) {
        const hmti_str n = hmti_gguf_tensor_at(m->gguf, i)->name;
        if ((n.len > 2 && !memcmp(n.ptr, "v.", 2)) || (n.len > 3 && !memcmp(n.ptr, "mm.", 3)))
            return hmti_errf(HMT_E_UNSUPPORTED, "model: tensor '%.*s' belongs to a vision tower "
                             "(Gemma 3 image input), which libhmt does not implement: give the "
                             "text model only (docs/MODELS.md)", (int)(n.len > 96 ? 96 : n.len),
                             n.ptr);
    }
    return HMT_OK;
}
