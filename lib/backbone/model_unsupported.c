/* Metadata keys that change a model's arithmetic in llama.cpp's reading of a
 * GGUF file but that libhmt does not implement (a sliding window on qwen3,
 * soft-capping outside the gemma architectures, scaled embeddings, logits or residuals, mixtures of experts,
 * DeepSeek's YaRN multiplier and YaRN corrections other than llama.cpp's
 * defaults). A file that sets one would otherwise load and give wrong
 * logits without a word, so each is refused with HMT_E_UNSUPPORTED naming
 * it. A key at its neutral value (a window no shorter than the context,
 * no experts) changes nothing and is accepted. The RoPE keys libhmt
 * implements, and the scaling kinds it refuses, are read in rope.c. */
#include <stdio.h>
#include <string.h>

#include "backbone/model.h"

/* Float keys and the value that leaves the arithmetic unchanged. */
static const struct {
    const char *suffix, *what;
    float neutral;
} FLOAT_KEYS[] = {
    {"rope.scaling.yarn_log_multiplier", "YaRN's attention factor of DeepSeek (mscale_all_dim)",
     0.0f},
    /* llama.cpp reads these for a few architectures only (its llama, qwen2
     * and qwen3 graphs use the defaults): a file that sets them means
     * something llama.cpp does not compute for it */
    {"rope.scaling.yarn_beta_fast", "a YaRN ramp other than llama.cpp's (beta_fast 32)", 32.0f},
    {"rope.scaling.yarn_beta_slow", "a YaRN ramp other than llama.cpp's (beta_slow 1)", 1.0f},
    {"rope.scaling.yarn_attn_factor", "a YaRN attention factor set apart from the scaling", 1.0f},
    {"attn_logit_softcapping", "attention logit soft-capping", 0.0f},
    {"final_logit_softcapping", "final logit soft-capping", 0.0f},
    {"attention.scale", "a custom attention scale", 0.0f},
    {"logit_scale", "logit scaling", 1.0f},
    {"embedding_scale", "embedding scaling", 1.0f},
    {"residual_scale", "residual scaling", 1.0f},
};

int hmti_model_refuse(const char *key, const char *value, const char *why) {
    return hmti_errf(HMT_E_UNSUPPORTED, "model: '%s' = %s %s, which libhmt does not implement "
                     "(docs/MODELS.md); running the file without it would give wrong logits", key,
                     value, why);
}

int hmti_model_float_must_be(const hmti_gguf *g, const char *key, float want, const char *why) {
    if (hmti_gguf_find_key(g, key) < 0) return HMT_OK;
    float v;
    int rc = hmti_gguf_get_f32(g, key, &v);
    if (rc) return rc;
    if (v == want) return HMT_OK;
    char s[32];
    snprintf(s, sizeof s, "%g", v);
    return hmti_model_refuse(key, s, why);
}

/* "asks for <what>": the wording of this file's tables. */
static int refuse(const char *key, const char *what, const char *value) {
    char why[160];
    snprintf(why, sizeof why, "asks for %s", what);
    return hmti_model_refuse(key, value, why);
}

static int check_float(const hmti_gguf *g, const char *key, const char *what, float neutral) {
    char why[160];
    snprintf(why, sizeof why, "asks for %s", what);
    return hmti_model_float_must_be(g, key, neutral, why);
}

/* An integer key; accepted when ok(value, limit). */
static int check_int(const hmti_gguf *g, const char *key, const char *what, int64_t limit,
                     int (*ok)(uint32_t v, int64_t limit)) {
    if (hmti_gguf_find_key(g, key) < 0) return HMT_OK;
    uint32_t v;
    int rc = hmti_gguf_get_u32(g, key, &v);
    if (rc) return rc;
    if (ok(v, limit)) return HMT_OK;
    char s[32];
    snprintf(s, sizeof s, "%u", v);
    return refuse(key, what, s);
}

static int is_zero(uint32_t v, int64_t limit) { return (void)limit, v == 0; }
static int covers(uint32_t v, int64_t limit) { return v == 0 || (int64_t)v >= limit; }

/* Keys an architecture implements (gemma.c reads them): not checked here. */
static int implemented(hmti_arch a, const char *suffix) {
    if (a == HMTI_ARCH_GEMMA2)
        return !strcmp(suffix, "attn_logit_softcapping") ||
               !strcmp(suffix, "final_logit_softcapping") ||
               !strcmp(suffix, "attention.sliding_window");
    /* gemma3, and every layer of llama, qwen2, phi3 (gemma.c) */
    return a != HMTI_ARCH_QWEN3 && !strcmp(suffix, "attention.sliding_window");
}

int hmti_model_refuse_unimplemented(const hmti_gguf *g, const char *arch, int32_t n_ctx_train,
                                    hmti_arch a) {
    char key[128];
    int rc = HMT_OK;
    for (size_t i = 0; !rc && i < sizeof FLOAT_KEYS / sizeof FLOAT_KEYS[0]; i++) {
        if (implemented(a, FLOAT_KEYS[i].suffix)) continue;
        snprintf(key, sizeof key, "%s.%s", arch, FLOAT_KEYS[i].suffix);
        rc = check_float(g, key, FLOAT_KEYS[i].what, FLOAT_KEYS[i].neutral);
    }
    static const struct {
        const char *suffix, *what;
        int (*ok)(uint32_t, int64_t);
        int limit; /* 0: none, 2: the context length */
    } INT_KEYS[] = {
        {"expert_count", "a mixture of experts", is_zero, 0},
        {"attention.sliding_window", "sliding-window attention", covers, 2},
    };
    for (size_t i = 0; !rc && i < sizeof INT_KEYS / sizeof INT_KEYS[0]; i++) {
        if (implemented(a, INT_KEYS[i].suffix)) continue;
        snprintf(key, sizeof key, "%s.%s", arch, INT_KEYS[i].suffix);
        const int64_t limit = INT_KEYS[i].limit == 2 ? n_ctx_train : 0;
        rc = check_int(g, key, INT_KEYS[i].what, limit, INT_KEYS[i].ok);
    }
    return rc;
}
