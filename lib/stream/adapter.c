/* Loading and validating HMT adapters (docs/HMT.md, "The adapter format"). */
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/fnv.h"
#include "core/params.h"
#include "kernels/quant.h"
#include "stream/adapter.h"

static int get_u32(const hmti_gguf *g, const char *key, int required, uint32_t def,
                   uint32_t lo, uint32_t hi, int32_t *out) {
    uint32_t v = def;
    if (hmti_gguf_find_key(g, key) >= 0) {
        int rc = hmti_gguf_get_u32(g, key, &v);
        if (rc) return rc;
    } else if (required) {
        return hmti_errf(HMT_E_FORMAT, "adapter: missing key '%s'", key);
    }
    if (v < lo || v > hi)
        return hmti_errf(HMT_E_FORMAT, "adapter: '%s' = %u is outside [%u, %u]", key, v, lo, hi);
    *out = (int32_t)v;
    return HMT_OK;
}

/* A tensor with ne = {d, rows} (rows = 1: a vector), converted to F32. */
static int get_tensor(const hmti_gguf *g, const char *name, int32_t d, int32_t rows,
                      float **out, int32_t *rows_out) {
    const hmti_gguf_tensor *t = hmti_gguf_find_tensor(g, name);
    if (!t) return hmti_errf(HMT_E_FORMAT, "adapter: missing tensor '%s'", name);
    const uint64_t r = t->n_dims > 1 ? t->ne[1] : 1;
    if (t->ne[0] != (uint64_t)d || (t->n_dims > 2) || (rows > 0 && r != (uint64_t)rows) ||
        r < 1 || r > 1u << 20)
        return hmti_errf(HMT_E_FORMAT,
                         "adapter: tensor '%s' has shape [%llu, %llu]; the model's width is %d",
                         name, (unsigned long long)t->ne[0], (unsigned long long)r, d);
    /* any weight type the model takes; dequantized to F32 here (small tensors) */
    const size_t rb = hmti_qrow_bytes(t->type, d);
    if (!hmti_qtraits_of(t->type))
        return hmti_errf(HMT_E_UNSUPPORTED, "adapter: tensor '%s' has unsupported type %s; "
                         "supported: " HMTI_QTYPES_LIST, name, hmti_tensor_type_name(t->type));
    if (!rb)
        return hmti_errf(HMT_E_FORMAT, "adapter: tensor '%s': a row of %d is not whole %s blocks",
                         name, d, hmti_tensor_type_name(t->type));
    float *v = hmti_malloc((size_t)r * (size_t)d * sizeof *v);
    if (!v) return hmti_errf(HMT_E_NOMEM, "adapter: out of memory for '%s'", name);
    for (uint64_t i = 0; i < r; i++)
        hmti_dequantize_row(t->type, (const char *)t->data + i * rb, v + i * (size_t)d, d);
    const int64_t bad = hmti_first_nonfinite(v, (int64_t)r * d);
    if (bad >= 0) {
        int rc = hmti_errf(HMT_E_FORMAT, "adapter: tensor '%s' element %lld (row %lld, column "
                           "%lld) is %s", name, (long long)bad, (long long)(bad / d),
                           (long long)(bad % d), hmti_nonfinite_name(v[bad]));
        free(v);
        return rc;
    }
    *out = v;
    if (rows_out) *rows_out = (int32_t)r;
    return HMT_OK;
}

static int read_adapter(hmt_adapter *a, const hmti_gguf *g) {
    int32_t version, width;
    int rc;
    hmti_str arch;
    /* the usual mistake: the model given as the adapter. A probe: looked up
     * only when present as a string, so it never records a failure. */
    const int64_t ai = hmti_gguf_find_key(g, "general.architecture");
    if (hmti_gguf_find_key(g, "hmt.version") < 0 && ai >= 0 &&
        hmti_gguf_kv_type(g, ai) == HMTI_GGUF_STRING &&
        hmti_gguf_get_str(g, "general.architecture", &arch) == HMT_OK && arch.len > 0 &&
        !hmti_str_eq(arch, "hmt"))
        return hmti_errf(HMT_E_FORMAT, "adapter: no hmt.* keys in this file: it is a model "
                         "(architecture '%.*s'), not an HMT adapter; an adapter is its own GGUF "
                         "(tools/convert_hmt_pytorch.py) given with -a (hmt_adapter_load), the "
                         "model with -m (hmt_model_load)",
                         (int)(arch.len > 32 ? 32 : arch.len), arch.ptr);
    if ((rc = get_u32(g, "hmt.version", 1, 0, 1, 1, &version)) ||
        (rc = get_u32(g, "hmt.embedding_length", 1, 0, 1, UINT32_MAX, &width)))
        return rc;
    if (width != a->d)
        return hmti_errf(HMT_E_FORMAT, "adapter: hmt.embedding_length %d differs from the model's %d",
                         width, a->d);
    if ((rc = get_u32(g, "hmt.segment_length", 1, 0, 1, 1u << 20, &a->segment_length)) ||
        (rc = get_u32(g, "hmt.sensory_length", 0, 0, 0, (uint32_t)a->segment_length,
                      &a->sensory_length)) ||
        (rc = get_u32(g, "hmt.cache_size", 1, 0, 1, 65536, &a->cache_size)) ||
        (rc = get_u32(g, "hmt.generation_summary_length", 0, (uint32_t)a->segment_length / 2, 0,
                      (uint32_t)a->segment_length, &a->gen_summary_length)))
        return rc;
    if (a->gen_summary_length < 1) a->gen_summary_length = 1;
    a->gen_summary_given = hmti_gguf_find_key(g, "hmt.generation_summary_length") >= 0;
    a->summary_fraction = 0.5f;
    if (hmti_gguf_find_key(g, "hmt.summary_fraction") >= 0 &&
        (rc = hmti_gguf_get_f32(g, "hmt.summary_fraction", &a->summary_fraction)))
        return rc;
    if (!(a->summary_fraction > 0 && a->summary_fraction <= 1))
        return hmti_errf(HMT_E_FORMAT, "adapter: hmt.summary_fraction %g is outside (0, 1]",
                         a->summary_fraction);
    a->scale = HMTI_SCALE_SQRT;
    if (hmti_gguf_find_key(g, "hmt.recall_scale") >= 0) {
        hmti_str s;
        if ((rc = hmti_gguf_get_str(g, "hmt.recall_scale", &s))) return rc;
        if (hmti_str_eq(s, "linear"))
            a->scale = HMTI_SCALE_LINEAR;
        else if (!hmti_str_eq(s, "sqrt"))
            return hmti_errf(HMT_E_FORMAT, "adapter: hmt.recall_scale '%.*s' is not sqrt or linear",
                             (int)(s.len > 32 ? 32 : s.len), s.ptr);
    }
    a->recall_bf16 = 0;
    if (hmti_gguf_find_key(g, "hmt.recall_bf16") >= 0 &&
        (rc = hmti_gguf_get_bool(g, "hmt.recall_bf16", &a->recall_bf16)))
        return rc;
    int32_t dk;
    if ((rc = get_tensor(g, "hmt.summary_prompt", a->d, 1, &a->summary_prompt, NULL)) ||
        (rc = get_tensor(g, "hmt.memory_init", a->d, 1, &a->memory_init, NULL)) ||
        (rc = get_tensor(g, "hmt.recall.wq", a->d, 0, &a->wq, &a->d_h)) ||
        (rc = get_tensor(g, "hmt.recall.wk", a->d, 0, &a->wk, &dk)))
        return rc;
    if (dk != a->d_h)
        return hmti_errf(HMT_E_FORMAT, "adapter: hmt.recall.wk has %d rows, hmt.recall.wq %d", dk,
                         a->d_h);
    const int32_t hp[] = {a->d, a->d_h, a->segment_length, a->sensory_length, a->cache_size};
    const size_t vec = (size_t)a->d * sizeof(float), mat = (size_t)a->d_h * vec;
    uint64_t h = hmti_fnv1a(HMTI_FNV_INIT, hp, sizeof hp);
    h = hmti_fnv1a(h, a->summary_prompt, vec);
    h = hmti_fnv1a(h, a->memory_init, vec);
    h = hmti_fnv1a(h, a->wq, mat);
    a->fingerprint = hmti_fnv1a(h, a->wk, mat);
    return HMT_OK;
}

static void destroy(hmt_adapter *a) {
    free(a->summary_prompt);
    free(a->memory_init);
    free(a->wq);
    free(a->wk);
    hmti_model_release(a->model);
    hmti_guard_poison(&a->guard);
    free(a);
}

int hmti_adapter_load_gguf(hmt_adapter **out, hmt_model *model, const hmti_gguf *g) {
    *out = NULL;
    hmt_adapter *a = hmti_calloc(1, sizeof *a);
    if (!a) return hmti_errf(HMT_E_NOMEM, "hmt_adapter_load: out of memory");
    atomic_init(&a->refs, 1);
    hmti_guard_init(&a->guard, HMTI_MAGIC_ADAPTER);
    hmti_model_retain(model);
    a->model = model;
    a->d = model->n_embd;
    int rc = read_adapter(a, g);
    if (rc) {
        destroy(a);
        return rc;
    }
    *out = a;
    return HMT_OK;
}

HMT_API int hmt_adapter_load(hmt_adapter **out, hmt_model *model, const char *path) {
    if (!out) return hmti_errf(HMT_E_INVAL, "hmt_adapter_load: out is NULL");
    *out = NULL;
    if (!model) return hmti_errf(HMT_E_INVAL, "hmt_adapter_load: model is NULL");
    if (hmti_guard_check(&model->guard, HMTI_MAGIC_MODEL, "hmt_adapter_load")) return HMT_E_MISUSE;
    hmti_gguf *g = NULL;
    int rc = path ? hmti_gguf_open(&g, path) : HMT_OK;
    if (!rc) rc = hmti_adapter_load_gguf(out, model, path ? g : model->gguf);
    hmti_gguf_close(g);
    if (rc) {
        char msg[HMTI_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s", hmti_tls_errmsg());
        return strstr(msg, path ? path : "\x01") ? rc
                                                 : hmti_errf(rc, "%s: %s", path ? path : "(model file)", msg);
    }
    return HMT_OK;
}

void hmti_adapter_retain(const hmt_adapter *a) {
    atomic_fetch_add(&((hmt_adapter *)a)->refs, 1);
}

void hmti_adapter_release(const hmt_adapter *ca) {
    hmt_adapter *a = (hmt_adapter *)ca;
    if (a && atomic_fetch_sub(&a->refs, 1) == 1) destroy(a);
}

/* Like hmt_model_free: the caller's reference is released once. */
HMT_API void hmt_adapter_free(hmt_adapter *a) {
    if (!a || hmti_guard_check(&a->guard, HMTI_MAGIC_ADAPTER, "hmt_adapter_free")) return;
    if (hmti_user_free_once(&a->user_freed, "hmt_adapter_free", "adapter")) return;
    hmti_adapter_release(a);
}

int32_t hmti_adapter_summary_length(const hmt_adapter *a, int32_t L) {
    /* Python's round(): half to even; rint does that in the default mode */
    int32_t j = (int32_t)rint((double)L * (double)a->summary_fraction);
    if (j < 1) j = 1;
    return j > L ? L : j;
}

HMT_API int hmt_adapter_get(const hmt_adapter *a, hmt_param key, double *out) {
    if (!a || !out) return hmti_errf(HMT_E_INVAL, "hmt_adapter_get: %s is NULL", !a ? "adapter" : "out");
    switch ((int)key) { /* int: experimental keys are outside the enum */
    case HMT_P_SEGMENT_LENGTH: *out = a->segment_length; break;
    case HMT_P_SENSORY_LENGTH: *out = a->sensory_length; break;
    case HMT_P_CACHE_SIZE: *out = a->cache_size; break;
    case HMT_P_RECALL_BF16: *out = a->recall_bf16; break;
    case HMT_P_SUMMARY_LENGTH: *out = hmti_adapter_summary_length(a, a->segment_length); break;
    case HMT_P_GEN_SUMMARY_LENGTH: *out = a->gen_summary_length; break;
    case HMT_P_RECALL_DIM: *out = a->d_h; break;
    default:
        return hmti_errf(HMT_E_INVAL, "hmt_adapter_get: %s (key %d) is not an adapter key",
                         hmti_param_name(key), (int)key);
    }
    return HMT_OK;
}
