/* A model's RoPE as llama.cpp reads it from GGUF metadata (llama-model.cpp's
 * hyperparameters, llama-context.cpp's YaRN attention factor, ggml's
 * rope_yarn): every variant libhmt implements is, for a given position,
 * angle_i = pos * freq[i] for pair i < n_rot/2 with one per-dimension
 * frequency, and one magnitude mscale multiplying cos and sin. So the table
 * and mscale are computed once here and the kernel only multiplies.
 *
 *   theta_i = base^(-2i/n_rot) / ff_i        ff: rope_freqs.weight (llama3), LongRoPE's
 *                                            short or long factors (phi3), else 1
 *   none / linear: freq_i = theta_i * fs      fs = 1/factor (1 for none or no factor)
 *   yarn:          freq_i = theta_i * (fs * (1 - r_i) + r_i)
 *                  r_i = 1 - clamp((i - lo) / max(0.001, hi - lo), 0, 1)
 *                  lo, hi = ggml_rope_yarn_corr_dims(n_rot, n_ctx_orig, base, 32, 1)
 *   mscale = attn_factor * (yarn and factor > 1 ? 1 + 0.1 ln(factor) : 1)
 *
 * LongRoPE (phi3) keeps two tables, the short factors' and the long
 * factors'; each context takes one by its size (hmti_model_rope_freqs).
 *
 * The YaRN magnitude is llama.cpp's net value: it sets the context's
 * attn_factor to get_mscale(factor) / (1 + 0.1 ln factor) · attn_factor and
 * ggml multiplies that by 1 + 0.1 ln(1/fs) again. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backbone/model.h"
#include "core/alloc.h"

static int key_of(char *key, size_t n, const hmt_model *m, const char *suffix) {
    snprintf(key, n, "%s.%s", m->arch_name, suffix);
    return hmti_gguf_find_key(m->gguf, key) >= 0;
}

/* An optional float key: *out = def when absent; HMT_E_FORMAT unless finite
 * and > 0 (or >= 0 when zero_ok). */
static int opt_float(const hmt_model *m, const char *suffix, float def, int zero_ok, float *out,
                     int *present) {
    char key[128];
    *out = def;
    *present = key_of(key, sizeof key, m, suffix);
    if (!*present) return HMT_OK;
    int rc = hmti_gguf_get_f32(m->gguf, key, out);
    if (rc) return rc;
    if (!isfinite(*out) || *out < 0 || (*out == 0 && !zero_ok))
        return hmti_errf(HMT_E_FORMAT, "model: '%s' = %g is out of range", key, *out);
    return HMT_OK;
}

/* LongRoPE (Phi-3 128k, Phi-3.5): rope_factors_short.weight and
 * rope_factors_long.weight divide the frequencies as rope_freqs.weight does;
 * a context longer than rope.scaling.original_context_length uses the long
 * ones (llama.cpp's get_rope_factors), and rope.scaling.attn_factor (the
 * converter's sqrt(1 + ln(s) / ln(n_ctx_orig))) multiplies cos and sin
 * either way. llama.cpp's phi3 graph reads them; its llama graph only under
 * rope.scaling.type "longrope", which libhmt refuses (read above). */
static int read_longrope(hmt_model *m) {
    static const char *const NAMES[2] = {"rope_factors_short.weight", "rope_factors_long.weight"};
    const int has[2] = {hmti_gguf_find_tensor(m->gguf, NAMES[0]) != NULL,
                        hmti_gguf_find_tensor(m->gguf, NAMES[1]) != NULL};
    m->rope.longrope = has[0] && has[1];
    if (!has[0] && !has[1]) return HMT_OK;
    const char *name = NAMES[has[0] ? 0 : 1];
    if (m->arch != HMTI_ARCH_PHI3)
        return hmti_errf(HMT_E_UNSUPPORTED, "model: tensor '%s' (LongRoPE frequency factors) in a "
                         "'%s' file: libhmt applies them to architecture phi3 only "
                         "(docs/MODELS.md)", name, m->arch_name);
    if (!m->rope.longrope)
        return hmti_errf(HMT_E_FORMAT, "model: tensor '%s' without '%s': LongRoPE needs both "
                         "the short and the long factors", name, NAMES[has[0] ? 1 : 0]);
    if (m->rope.scaling == HMTI_ROPE_YARN) {
        char key[128];
        key_of(key, sizeof key, m, "rope.scaling.type");
        return hmti_model_refuse(key, "'yarn'", "together with LongRoPE factors (two scalings "
                                                "of one frequency table)");
    }
    return HMT_OK;
}

int hmti_model_read_rope(hmt_model *m) {
    const hmti_gguf *g = m->gguf;
    char key[128];
    hmti_rope_cfg *r = &m->rope;
    int rc;
    /* n_rot: the dims of each head that rotate (llama.cpp's n_rot) */
    r->n_rot = m->head_dim;
    if (key_of(key, sizeof key, m, "rope.dimension_count")) {
        uint32_t v;
        if ((rc = hmti_gguf_get_u32(g, key, &v))) return rc;
        if (v < 2 || v % 2 || v > (uint32_t)m->head_dim)
            return hmti_errf(HMT_E_FORMAT, "model: '%s' = %u must be even and in 2..%d (the head "
                             "size)", key, v, m->head_dim);
        r->n_rot = (int32_t)v;
    }
    /* scaling type: llama.cpp's default is "linear" (a factor alone scales) */
    r->scaling = HMTI_ROPE_LINEAR;
    if (key_of(key, sizeof key, m, "rope.scaling.type")) {
        hmti_str t;
        if ((rc = hmti_gguf_get_str(g, key, &t))) return rc;
        if (hmti_str_eq(t, "none"))
            r->scaling = HMTI_ROPE_NONE;
        else if (hmti_str_eq(t, "yarn"))
            r->scaling = HMTI_ROPE_YARN;
        else if (!hmti_str_eq(t, "linear")) {
            char s[48];
            snprintf(s, sizeof s, "'%.*s'", (int)(t.len > 32 ? 32 : t.len), t.ptr);
            return hmti_model_refuse(key, s, "asks for a RoPE scaling kind (implemented: none, "
                                             "linear, yarn)");
        }
    }
    /* factor: rope.scaling.factor, else the old rope.scale_linear; 0 = unset */
    int present;
    float factor;
    const char *factor_key = "rope.scaling.factor";
    if ((rc = opt_float(m, factor_key, 0.0f, 1, &factor, &present))) return rc;
    if (!present) {
        factor_key = "rope.scale_linear";
        if ((rc = opt_float(m, factor_key, 0.0f, 1, &factor, &present))) return rc;
    }
    if (factor == 0.0f) factor = 1.0f;
    if (r->scaling == HMTI_ROPE_NONE && factor != 1.0f) {
        /* llama.cpp drops the factor under type none: the file contradicts itself */
        char s[32];
        snprintf(s, sizeof s, "%g", factor);
        key_of(key, sizeof key, m, factor_key);
        return hmti_model_refuse(key, s, "with rope.scaling.type 'none' is ambiguous (llama.cpp "
                                         "ignores the factor)");
    }
    r->factor = factor;
    if ((rc = opt_float(m, "rope.scaling.attn_factor", 1.0f, 0, &r->attn_factor, &present)))
        return rc;
    r->n_ctx_orig = m->n_ctx_train;
    if (key_of(key, sizeof key, m, "rope.scaling.original_context_length")) {
        uint32_t v;
        if ((rc = hmti_gguf_get_u32(g, key, &v))) return rc;
        if (v == 0 || v > INT32_MAX)
            return hmti_errf(HMT_E_FORMAT, "model: '%s' = %u is out of range", key, v);
        r->n_ctx_orig = (int32_t)v;
    }
    /* YaRN's extrapolation mix: llama.cpp derives it (1 for yarn, else 0);
     * a file that sets another value is refused (these architectures' graph
     * does not read it) */
    if (key_of(key, sizeof key, m, "rope.scaling.yarn_ext_factor")) {
        float v;
        if ((rc = hmti_gguf_get_f32(g, key, &v))) return rc;
        if (!(v < 0) && v != (r->scaling == HMTI_ROPE_YARN ? 1.0f : 0.0f)) {
            char s[32];
            snprintf(s, sizeof s, "%g", v);
            return hmti_model_refuse(key, s, "asks for a YaRN extrapolation mix other than "
                                             "llama.cpp's");
        }
    }
    /* rope_freqs.weight: llama.cpp's llama graph divides by it; its qwen2 and
     * qwen3 graphs have no such tensor (the loader refuses an extra one) */
    r->has_freq_factors = hmti_gguf_find_tensor(g, "rope_freqs.weight") != NULL;
    if (r->has_freq_factors && m->arch != HMTI_ARCH_LLAMA)
        return hmti_errf(HMT_E_UNSUPPORTED, "model: tensor 'rope_freqs.weight' (per-dimension RoPE "
                         "frequency factors) in a '%s' file: llama.cpp applies them only to "
                         "architecture llama, and so does libhmt (docs/MODELS.md)", m->arch_name);
    return read_longrope(m);
}

/* ggml_rope_yarn_corr_dim, in float as ggml computes it (a floor/ceil of it
 * decides which dims are interpolated). */
static float corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base) {
    return (float)n_dims * logf((float)n_ctx_orig / (n_rot * 2.0f * 3.14159265358979323846f)) /
           (2.0f * logf(base));
}

/* One table: theta_i / ff_i (ff NULL: 1), then the scaling. */
static void fill_table(const hmt_model *m, const float *ff, double *freq) {
    const hmti_rope_cfg *r = &m->rope;
    hmti_rope_freqs(freq, r->n_rot, m->rope_base);
    const double fs = 1.0 / (double)r->factor;
    float lo = 0, hi = 0;
    if (r->scaling == HMTI_ROPE_YARN) {
        lo = floorf(corr_dim(r->n_rot, r->n_ctx_orig, 32.0f, m->rope_base));
        hi = ceilf(corr_dim(r->n_rot, r->n_ctx_orig, 1.0f, m->rope_base));
        lo = lo > 0 ? lo : 0;
        hi = hi < (float)(r->n_rot - 1) ? hi : (float)(r->n_rot - 1);
    }
    for (int i = 0; i < r->n_rot / 2; i++) {
        double f = freq[i];
        if (ff) f /= (double)ff[i];
        if (r->scaling == HMTI_ROPE_YARN) {
            double y = ((double)i - lo) / (hi - lo > 0.001f ? (double)(hi - lo) : 0.001);
            const double ramp = 1.0 - (y < 0 ? 0 : y > 1 ? 1 : y);
            f *= fs * (1.0 - ramp) + ramp;
        } else {
            f *= fs;
        }
        freq[i] = f;
    }
}

/* After the weights are checked (so n_rot, bounded by the head size, is
 * backed by tensors the file holds). */
int hmti_model_rope_table(hmt_model *m, const float *freq_factors, const float *long_factors) {
    const hmti_rope_cfg *r = &m->rope;
    const int half = r->n_rot / 2;
    m->rope_freq = hmti_malloc((size_t)half * sizeof *m->rope_freq);
    if (!m->rope_freq) return hmti_errf(HMT_E_NOMEM, "model: out of memory");
    fill_table(m, freq_factors, m->rope_freq);
    if (long_factors) {
        m->rope_freq_long = hmti_malloc((size_t)half * sizeof *m->rope_freq_long);
        if (!m->rope_freq_long) return hmti_errf(HMT_E_NOMEM, "model: out of memory");
        fill_table(m, long_factors, m->rope_freq_long);
    }
    m->rope_mscale = r->attn_factor;
    if (r->scaling == HMTI_ROPE_YARN && r->factor > 1.0f)
        m->rope_mscale = (float)((double)r->attn_factor * (1.0 + 0.1 * log((double)r->factor)));
    /* gemma3's sliding-window layers: base 10000, no scaling (llama.cpp's
     * rope_freq_base_train_swa / _scale_train_swa); the same magnitude
     * (attn_factor: YaRN is refused for gemma, gemma.c) */
    m->rope_freq_swa = m->rope_freq;
    if (m->arch == HMTI_ARCH_GEMMA3) {
        m->rope_freq_swa = hmti_malloc((size_t)half * sizeof *m->rope_freq_swa);
        if (!m->rope_freq_swa) return hmti_errf(HMT_E_NOMEM, "model: out of memory");
        hmti_rope_freqs(m->rope_freq_swa, r->n_rot, 10000.0);
    }
    return HMT_OK;
}
