/* hmt_params: typed, enum-keyed options with bounds and defaults. One table
 * lists every key; adding a key is one line here and one in hmt.h. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/busy.h"
#include "core/error.h"
#include "core/params.h"

typedef struct {
    hmt_param key;
    const char *name;
    int is_int;
    double lo, hi, def;
} param_info;

static const param_info PARAMS[] = {
    {HMT_P_N_CTX, "n_ctx", 1, 0, 1 << 20, 0},
    {HMT_P_N_BATCH, "n_batch", 1, 1, 1 << 16, 512},
    {HMT_P_N_THREADS, "n_threads", 1, 0, 1024, 0},
    {HMT_P_COMPUTE_TYPE, "compute_type", 1, HMT_COMPUTE_F32, HMT_COMPUTE_BF16, HMT_COMPUTE_F32},
    {HMT_P_MODE, "mode", 1, 0, 3, 0},
    {HMT_P_LOOKAHEAD, "lookahead", 1, 0, 1, 1},
    {HMT_P_ALL_LOGITS, "all_logits", 1, 0, 1, 1},
    {HMT_P_SEGMENT_LENGTH, "segment_length", 1, 0, 1 << 20, 0},
    {HMT_P_SENSORY_LENGTH, "sensory_length", 1, -1, 1 << 20, -1},
    {HMT_P_CACHE_SIZE, "cache_size", 1, 0, 65536, 0},
    {HMT_P_RECALL_BF16, "recall_bf16", 1, -1, 1, -1},
    {HMT_P_SUMMARY_LENGTH, "summary_length", 1, 0, 1 << 20, 0},
    {HMT_P_GEN_SUMMARY_LENGTH, "gen_summary_length", 1, 0, 1 << 20, 0},
    {HMT_P_RECALL_DIM, "recall_dim (read-only)", 1, 0, 0, 0},
    {HMT_P_KEEP_FFN_INPUT, "keep_ffn_input", 1, 0, 1, 0},
    {HMT_P_TEMPERATURE, "temperature", 0, 0, 100, 0.8},
    {HMT_P_TOP_K, "top_k", 1, 0, 1 << 30, 40},
    {HMT_P_TOP_P, "top_p", 0, 0, 1, 0.95},
    {HMT_P_SEED, "seed", 1, 0, 9007199254740991.0, 0x484d54},
    {HMT_P_KNN_K, "knn_k", 1, 1, 65536, 1024},
    {HMT_P_KNN_LAMBDA, "knn_lambda", 0, 0, 1, 0.25},
    {HMT_P_KNN_TEMPERATURE, "knn_temperature", 0, 1e-6, 1e6, 1},
    {HMT_P_KNN_LAMBDA_MODE, "knn_lambda_mode", 1, 0, 2, 0},
    {HMT_P_KNN_BETA, "knn_beta", 0, -1e6, 1e6, 0},
    {HMT_P_KNN_BIAS, "knn_bias", 0, -1e6, 1e6, 0},
    {HMT_P_KNN_LAMBDA_MAX, "knn_lambda_max", 0, 0, 1, 1},
    {HMT_P_KNN_KEY_F16, "knn_key_f16", 1, 0, 1, 0},
    {HMT_P_KNN_NPROBE, "knn_nprobe", 1, 1, 1 << 20, 32},
    {HMT_P_KNN_NLIST, "knn_nlist", 1, 0, 1 << 20, 0},
    {HMT_P_KNN_PQ_M, "knn_pq_m", 1, 0, 1 << 20, 0},
    {HMT_P_KNN_TRAIN_SIZE, "knn_train_size", 1, 0, 1e15, 0},
    {HMT_P_KNN_RERANK, "knn_rerank", 1, 1, 256, 4},
    {HMT_P_DITTO_LAMBDA, "ditto_lambda", 0, 1e-9, 1, 0.5},
    {HMT_P_DITTO_MODE, "ditto_mode", 1, 0, 1, 0},
    {HMT_P_DITTO_SCOPE, "ditto_scope", 1, 0, 1, 0},
    {HMT_P_DITTO_WINDOW, "ditto_window", 1, 1, 1 << 20, 8},
    {HMT_P_DITTO_MIN_SENTENCE, "ditto_min_sentence", 1, 1, 1 << 20, 2},
    {HMT_P_DITTO_MIN_MATCH, "ditto_min_match", 1, 0, 1 << 20, 0},
    {HMT_P_DITTO_RENORM, "ditto_renorm", 1, 0, 1, 0},
};
#define N_PARAMS (sizeof PARAMS / sizeof PARAMS[0])

struct hmt_params {
    double value[N_PARAMS];
    hmti_guard guard; /* last: see busy.h */
};

static int find(hmt_param key) {
    for (size_t i = 0; i < N_PARAMS; i++)
        if (PARAMS[i].key == key) return (int)i;
    return -1;
}

HMT_API int hmt_params_create(hmt_params **out) {
    if (!out) return hmti_errf(HMT_E_INVAL, "hmt_params_create: out is NULL");
    *out = NULL;
    hmt_params *p = hmti_malloc(sizeof *p);
    if (!p) return hmti_errf(HMT_E_NOMEM, "hmt_params_create: out of memory");
    for (size_t i = 0; i < N_PARAMS; i++) p->value[i] = PARAMS[i].def;
    hmti_guard_init(&p->guard, HMTI_MAGIC_PARAMS);
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
    if (pi->is_int != as_int)
        return hmti_errf(HMT_E_INVAL, "parameter %s is %s-valued", pi->name,
                         pi->is_int ? "integer" : "float");
    if (!(value >= pi->lo && value <= pi->hi))
        return hmti_errf(HMT_E_INVAL, "parameter %s = %g is outside [%g, %g]", pi->name, value,
                         pi->lo, pi->hi);
    return HMT_OK;
}

static int set(hmt_params *p, hmt_param key, double value, int as_int) {
    if (!p) return hmti_errf(HMT_E_INVAL, "%s: params is NULL", as_int ? "hmt_params_set_int"
                                                                     : "hmt_params_set_float");
    int rc = hmti_enter(&p->guard, HMTI_MAGIC_PARAMS, as_int ? "hmt_params_set_int" : "hmt_params_set_float");
    if (rc) return rc;
    rc = hmti_param_check(key, value, as_int);
    if (!rc) p->value[find(key)] = value;
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
    if (lo) *lo = PARAMS[i].lo;
    if (hi) *hi = PARAMS[i].hi;
    if (def) *def = PARAMS[i].def;
    if (is_int) *is_int = PARAMS[i].is_int;
    return HMT_OK;
}

double hmti_param_value(const hmt_params *p, hmt_param key) {
    int i = find(key);
    if (i < 0) return NAN;
    return p ? p->value[i] : PARAMS[i].def;
}

int hmti_resolve_threads(int64_t n) {
    if (n > 0) return (int)n;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 0 ? (int)cpus : 1;
}
