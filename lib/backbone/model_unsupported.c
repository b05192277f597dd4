/* Metadata keys and tensors that change a model's arithmetic in llama.cpp's
 * reading of a GGUF file but that libhmt does not implement (RoPE scaling of
 * every kind, sliding windows, soft-capping, scaled embeddings, logits or
 * residuals, mixtures of experts, attention head sizes other than
 * embedding / heads). A file that sets one would otherwise load and give
 * wrong logits without a word, so each is refused with HMT_E_UNSUPPORTED
 * naming it. A key at its neutral value (a scaling factor of 1, a window no
 * shorter than the context, type "none") changes nothing and is accepted. */
#include <stdio.h>
#include <string.h>

#include "backbone/model.h"

/* Float keys and the value that leaves the arithmetic unchanged. */
static const struct {
    const char *suffix, *what;
    float neutral;
} FLOAT_KEYS[] = {
    {"rope.scaling.factor", "RoPE scaling", 1.0f},
    {"rope.scale_linear", "linear RoPE scaling", 1.0f},
    {"rope.scaling.attn_factor", "YaRN's attention factor", 1.0f},
    {"rope.scaling.yarn_log_multiplier", "YaRN's attention factor", 0.0f},
    {"attn_logit_softcapping", "attention logit soft-capping", 0.0f},
    {"final_logit_softcapping", "final logit soft-capping", 0.0f},
    {"attention.scale", "a custom attention scale", 0.0f},
    {"logit_scale", "logit scaling", 1.0f},
    {"embedding_scale", "embedding scaling", 1.0f},
    {"residual_scale", "residual scaling", 1.0f},
};

static int refuse(const char *key, const char *what, const char *value) {
    return hmti_errf(HMT_E_UNSUPPORTED, "model: '%s' = %s asks for %s, which libhmt does not "
                     "implement (docs/MODELS.md); running the file without it would give wrong "
                     "logits", key, value, what);
}

static int check_float(const hmti_gguf *g, const char *key, const char *what, float neutral) {
    if (hmti_gguf_find_key(g, key) < 0) return HMT_OK;
    float v;
    int rc = hmti_gguf_get_f32(g, key, &v);
    if (rc) return rc;
    if (v == neutral) return HMT_OK;
    char s[32];
    snprintf(s, sizeof s, "%g", v);
    return refuse(key, what, s);
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
static int equals(uint32_t v, int64_t limit) { return (int64_t)v == limit; }
static int covers(uint32_t v, int64_t limit) { return v == 0 || (int64_t)v >= limit; }

int hmti_model_refuse_unimplemented(const hmti_gguf *g, const char *arch, int32_t head_dim,
                                    int32_t n_ctx_train) {
    char key[128];
    int rc = HMT_OK;
    for (size_t i = 0; !rc && i < sizeof FLOAT_KEYS / sizeof FLOAT_KEYS[0]; i++) {
        snprintf(key, sizeof key, "%s.%s", arch, FLOAT_KEYS[i].suffix);
        rc = check_float(g, key, FLOAT_KEYS[i].what, FLOAT_KEYS[i].neutral);
    }
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    hmti_str type;
    if (!rc && hmti_gguf_find_key(g, key) >= 0 && !(rc = hmti_gguf_get_str(g, key, &type)) &&
        !hmti_str_eq(type, "none")) {
        char s[40];
        snprintf(s, sizeof s, "'%.*s'", (int)(type.len > 32 ? 32 : type.len), type.ptr);
        return refuse(key, "RoPE scaling", s);
    }
    static const struct {
        const char *suffix, *what;
        int (*ok)(uint32_t, int64_t);
        int limit; /* 0: none, 1: the head size, 2: the context length */
    } INT_KEYS[] = {
        {"expert_count", "a mixture of experts", is_zero, 0},
        {"attention.sliding_window", "sliding-window attention", covers, 2},
        {"attention.key_length", "a key head size other than embedding / heads", equals, 1},
        {"attention.value_length", "a value head size other than embedding / heads", equals, 1},
    };
    for (size_t i = 0; !rc && i < sizeof INT_KEYS / sizeof INT_KEYS[0]; i++) {
        snprintf(key, sizeof key, "%s.%s", arch, INT_KEYS[i].suffix);
        const int64_t limit = INT_KEYS[i].limit == 1 ? head_dim : n_ctx_train;
        rc = check_int(g, key, INT_KEYS[i].what, limit, INT_KEYS[i].ok);
    }
    if (!rc && hmti_gguf_find_tensor(g, "rope_freqs.weight"))
        return hmti_errf(HMT_E_UNSUPPORTED, "model: tensor 'rope_freqs.weight' holds per-dimension "
                         "RoPE frequency factors (Llama 3.1's rope scaling), which libhmt does not "
                         "implement (docs/MODELS.md); running the file without them would give "
                         "wrong logits");
    return rc;
}
