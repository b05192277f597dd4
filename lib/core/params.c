/* hmt_params: typed, enum-keyed options with bounds and defaults. One table
 * lists every key; adding a key is one line here and one in hmt/params.h
 * (or hmt/experimental.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/busy.h"
#include "core/error.h"
#include "core/params.h"

typedef struct {
    hmt_param key;
    const char *name;
    const char *object; /* who reads it, for messages */
    int is_int, has_auto, read_only;
    double lo, hi, def; /* [lo, hi], plus HMT_AUTO when has_auto */
} param_info;

#define AUTO HMT_AUTO
static const param_info PARAMS[] = {
    {HMT_P_N_CTX, "n_ctx", "context", 1, 1, 0, 1, 1 << 20, AUTO},
    {HMT_P_N_BATCH, "n_batch", "context and stream", 1, 0, 0, 1, 1 << 16, 512},
    {HMT_P_N_SEQ, "n_seq", "context", 1, 0, 0, 1, 256, 1},
    {HMT_P_KV_TYPE, "kv_type", "context and stream", 1, 0, 0, HMT_KV_F32, HMT_KV_BF16, HMT_KV_F32},
    {HMT_P_N_THREADS, "n_threads", "context, stream and datastore", 1, 1, 0, 1, 1024, AUTO},
    {HMT_P_COMPUTE_TYPE, "compute_type", "context and stream", 1, 0, 0, HMT_COMPUTE_F32,
     HMT_COMPUTE_BF16, HMT_COMPUTE_F32},
    {HMT_P_MODE, "mode", "stream", 1, 0, 0, 0, 4, 0},
    {HMT_P_LOOKAHEAD, "lookahead", "stream", 1, 0, 0, 0, 1, 1},
    {HMT_P_ALL_LOGITS, "all_logits", "stream", 1, 0, 0, 0, 1, 1},
    {HMT_P_SEGMENT_LENGTH, "segment_length", "stream", 1, 1, 0, 1, 1 << 20, AUTO},
    {HMT_P_SENSORY_LENGTH, "sensory_length", "stream", 1, 1, 0, 0, 1 << 20, AUTO},
    {HMT_P_CACHE_SIZE, "cache_size", "stream", 1, 1, 0, 1, 65536, AUTO},
    {HMT_P_SUMMARY_LENGTH, "summary_length", "stream", 1, 1, 0, 1, 1 << 20, AUTO},
    {HMT_P_GEN_SUMMARY_LENGTH, "gen_summary_length", "stream", 1, 1, 0, 1, 1 << 20, AUTO},
    {HMT_P_RECALL_DIM, "recall_dim", "stream (read-only)", 1, 0, 1, 0, 0, 0},
    {HMT_P_KEEP_FFN_INPUT, "keep_ffn_input", "stream", 1, 0, 0, 0, 1, 0},
    {HMT_P_WINDOW, "window", "stream", 1, 1, 0, 1, 1 << 20, AUTO},
    {HMT_P_SINKS, "sinks", "stream", 1, 0, 0, 0, 1 << 20, 4},
    {HMT_P_TEMPERATURE, "temperature", "sampler", 0, 0, 0, 0, 100, 0.8},
    {HMT_P_TOP_K, "top_k", "sampler", 1, 0, 0, 0, 1 << 30, 40},
    {HMT_P_TOP_P, "top_p", "sampler", 0, 0, 0, 0, 1, 0.95},
    {HMT_P_SEED, "seed", "sampler", 1, 0, 0, 0, 9007199254740991.0, 0x484d54},
    {HMT_P_MIN_P, "min_p", "min-p processor", 0, 0, 0, 0, 1, 0.05},
    {HMT_P_MIN_KEEP, "min_keep", "min-p and typical processors", 1, 0, 0, 0, 1 << 30, 0},
    {HMT_P_TYPICAL_P, "typical_p", "typical processor", 0, 0, 0, 0, 1, 1},
    {HMT_P_PENALTY_LAST_N, "penalty_last_n", "penalties processor", 1, 0, 0, 0, 1 << 20, 64},
    {HMT_P_REPEAT_PENALTY, "repeat_penalty", "penalties processor", 0, 0, 0, 1e-6, 1e6, 1},
    {HMT_P_FREQUENCY_PENALTY, "frequency_penalty", "penalties processor", 0, 0, 0, -1e6, 1e6, 0},
    {HMT_P_PRESENCE_PENALTY, "presence_penalty", "penalties processor", 0, 0, 0, -1e6, 1e6, 0},
    {HMT_P_KNN_K, "knn_k", "kNN processor", 1, 0, 0, 1, 65536, 1024},
    {HMT_P_KNN_LAMBDA, "knn_lambda", "kNN processor", 0, 0, 0, 0, 1, 0.25},
    {HMT_P_KNN_TEMPERATURE, "knn_temperature", "kNN processor", 0, 0, 0, 1e-6, 1e6, 1},
    {HMT_P_KNN_KEY_F16, "knn_key_f16", "datastore builder", 1, 0, 0, 0, 1, 0},
    {HMT_P_DITTO_LAMBDA, "ditto_lambda", "DITTO processor", 0, 0, 0, 1e-9, 1, 0.5},
    {HMT_P_DITTO_MODE, "ditto_mode", "DITTO processor", 1, 0, 0, 0, 1, 0},
    {HMT_P_DITTO_SCOPE, "ditto_scope", "DITTO processor", 1, 0, 0, 0, 1, 0},
    {HMT_P_DITTO_WINDOW, "ditto_window", "DITTO processor", 1, 0, 0, 1, 1 << 20, 8},
    {HMT_P_DITTO_MIN_SENTENCE, "ditto_min_sentence", "DITTO processor", 1, 0, 0, 1, 1 << 20, 2},
    {HMT_P_DITTO_MIN_MATCH, "ditto_min_match", "DITTO processor", 1, 0, 0, 0, 1 << 20, 0},
    {HMT_P_DITTO_RENORM, "ditto_renorm", "DITTO processor", 1, 0, 0, 0, 1, 0},
    /* experimental (hmt/experimental.h) */
    {HMT_P_RECALL_BF16, "recall_bf16", "stream", 1, 1, 0, 0, 1, AUTO},
    {HMT_P_KNN_LAMBDA_MODE, "knn_lambda_mode", "kNN processor", 1, 0, 0, 0, 2, 0},
    {HMT_P_KNN_BETA, "knn_beta", "kNN processor", 0, 0, 0, -1e6, 1e6, 0},
    {HMT_P_KNN_BIAS, "knn_bias", "kNN processor", 0, 0, 0, -1e6, 1e6, 0},
    {HMT_P_KNN_LAMBDA_MAX, "knn_lambda_max", "kNN processor", 0, 0, 0, 0, 1, 1},
    {HMT_P_KNN_NPROBE, "knn_nprobe", "FAISS attach", 1, 0, 0, 1, 1 << 20, 32},
    {HMT_P_KNN_NLIST, "knn_nlist", "FAISS build", 1, 1, 0, 1, 1 << 20, AUTO},
    {HMT_P_KNN_PQ_M, "knn_pq_m", "FAISS build", 1, 1, 0, 1, 1 << 20, AUTO},
    {HMT_P_KNN_TRAIN_SIZE, "knn_train_size", "FAISS build", 1, 1, 0, 1, 1e15, AUTO},
    {HMT_P_KNN_RERANK, "knn_rerank", "FAISS attach", 1, 0, 0, 1, 256, 4},
    {HMT_P_KNN_SEED, "knn_seed", "FAISS build", 1, 0, 0, 0, 9007199254740991.0, 0x484d54},
    {HMT_P_SEGMENT_SINKS, "segment_sinks", "stream", 1, 0, 0, 0, 1 << 20, 0},
};
#define N_PARAMS (sizeof PARAMS / sizeof PARAMS[0])

struct hmt_params {
    double value[N_PARAMS];
    unsigned char set[N_PARAMS]; /* set by the caller: checked by hmti_params_only */
    hmti_guard guard;            /* last: see busy.h */
};

static int find(hmt_param key) {
    for (size_t i = 0; i < N_PARAMS; i++)
        if (PARAMS[i].key == key) return (int)i;
    return -1;
}

static hmt_params *params_new(void) {
    hmt_params *p = hmti_calloc(1, sizeof *p);
    if (!p) return NULL;
    for (size_t i = 0; i < N_PARAMS; i++) p->value[i] = PARAMS[i].def;
    hmti_guard_init(&p->guard, HMTI_MAGIC_PARAMS);
    return p;
}

HMT_API int hmt_params_create(hmt_params **out) {
    if (!out) return hmti_errf(HMT_E_INVAL, "hmt_params_create: out is NULL");
    *out = params_new();
    return *out ? HMT_OK : hmti_errf(HMT_E_NOMEM, "hmt_params_create: out of memory");
}

HMT_API int hmt_params_copy(hmt_params **out, const hmt_params *src) {
    if (!out) return hmti_errf(HMT_E_INVAL, "hmt_params_copy: out is NULL");
    *out = NULL;
    if (!src) return hmti_errf(HMT_E_INVAL, "hmt_params_copy: src is NULL");
    if (hmti_guard_check(&src->guard, HMTI_MAGIC_PARAMS, "hmt_params_copy")) return HMT_E_MISUSE;
    hmt_params *p = params_new();
    if (!p) return hmti_errf(HMT_E_NOMEM, "hmt_params_copy: out of memory");
    memcpy(p->value, src->value, sizeof p->value);
    memcpy(p->set, src->set, sizeof p->set);
    *out = p;
    return HMT_OK;
}

HMT_API void hmt_params_free(hmt_params *p) {
    if (!p || hmti_retire(&p->guard, HMTI_MAGIC_PARAMS, "hmt_params_free")) return;
    free(p);
}

int hmti_param_check(hmt_param key, double value, int as_int) {
    int i = find(key);
    if (i < 0) return hmti_errf(HMT_E_INVAL, "unknown parameter key %d", (int)key);
    const param_info *pi = &PARAMS[i];
    if (pi->read_only) return hmti_errf(HMT_E_INVAL, "parameter %s is read-only", pi->name);
    if (pi->is_int != as_int)
        return hmti_errf(HMT_E_INVAL, "parameter %s is %s-valued", pi->name,
                         pi->is_int ? "integer" : "float");
    if (pi->has_auto && value == HMT_AUTO) return HMT_OK;
    if (!(value >= pi->lo && value <= pi->hi))
        return hmti_errf(HMT_E_INVAL, "parameter %s = %g is outside [%g, %g]%s", pi->name, value,
                         pi->lo, pi->hi, pi->has_auto ? " (or HMT_AUTO = -1)" : "");
    return HMT_OK;
}

static int set(hmt_params *p, hmt_param key, double value, int as_int) {
    const char *fn = as_int ? "hmt_params_set_int" : "hmt_params_set_float";
    if (!p) return hmti_errf(HMT_E_INVAL, "%s: params is NULL", fn);
    int rc = hmti_enter(&p->guard, HMTI_MAGIC_PARAMS, fn);
    if (rc) return rc;
    rc = hmti_param_check(key, value, as_int);
    if (!rc) {
        const int i = find(key);
        p->value[i] = value;
        p->set[i] = 1;
    }
    hmti_leave(&p->guard);
    return rc;
}

HMT_API int hmt_params_set_int(hmt_params *p, hmt_param key, int64_t value) {
    return set(p, key, (double)value, 1);
}

HMT_API int hmt_params_set_float(hmt_params *p, hmt_param key, double value) {
    return set(p, key, value, 0);
}

HMT_API int hmt_params_get(const hmt_params *p, hmt_param key, double *out) {
    if (!p || !out) return hmti_errf(HMT_E_INVAL, "hmt_params_get: %s is NULL", !p ? "params" : "out");
    if (hmti_guard_check(&p->guard, HMTI_MAGIC_PARAMS, "hmt_params_get")) return HMT_E_MISUSE;
    int i = find(key);
    if (i < 0) return hmti_errf(HMT_E_INVAL, "unknown parameter key %d", (int)key);
    *out = p->value[i];
    return HMT_OK;
}

HMT_API int hmt_param_bounds(hmt_param key, double *lo, double *hi, double *def, int *is_int) {
    int i = find(key);
    if (i < 0) return hmti_errf(HMT_E_INVAL, "unknown parameter key %d", (int)key);
    if (lo) *lo = PARAMS[i].has_auto ? HMT_AUTO : PARAMS[i].lo;
    if (hi) *hi = PARAMS[i].hi;
    if (def) *def = PARAMS[i].def;
    if (is_int) *is_int = PARAMS[i].is_int;
    return HMT_OK;
}

HMT_API const char *hmt_param_name(hmt_param key) {
    int i = find(key);
    return i < 0 ? NULL : PARAMS[i].name;
}

const char *hmti_param_name(hmt_param key) {
    const char *n = hmt_param_name(key);
    return n ? n : "?";
}

double hmti_param_value(const hmt_params *p, hmt_param key) {
    int i = find(key);
    if (i < 0) return NAN;
    return p ? p->value[i] : PARAMS[i].def;
}

int hmti_params_only(const hmt_params *p, const hmt_param *keys, size_t n, const char *fn) {
    if (!p) return HMT_OK;
    if (hmti_guard_check(&p->guard, HMTI_MAGIC_PARAMS, fn)) return HMT_E_MISUSE;
    for (size_t i = 0; i < N_PARAMS; i++) {
        if (!p->set[i]) continue;
        size_t j = 0;
        while (j < n && keys[j] != PARAMS[i].key) j++;
        if (j == n)
            return hmti_errf(HMT_E_INVAL, "%s: parameter %s is not one of its keys (it is read "
                             "by the %s)", fn, PARAMS[i].name, PARAMS[i].object);
    }
    return HMT_OK;
}

int hmti_resolve_threads(int64_t n) {
    if (n > 0) return (int)n; /* else HMT_AUTO */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 0 ? (int)cpus : 1;
}
