/*
 * libhmt — options: an opaque bag of typed, enum-keyed values.
 * Part of <hmt/hmt.h>; self-contained C99, compiles as C and as C++.
 *
 * Every key belongs to the objects listed beside it below, and only those
 * read it: a create function given a params object on which a key of
 * another object was set fails with HMT_E_INVAL naming the key (a sampler's
 * top_k set for a context is a mistake, not something to ignore). Keys never
 * set keep their default and are never refused. One value, HMT_AUTO, means
 * "derive it from the model, the adapter or the machine" for every key whose
 * comment offers it; such keys default to it. Multi-valued settings are
 * named enums. docs/API.md lists the keys per object in one table.
 */
#ifndef INCLUDE_HMT_PARAMS_H
#define INCLUDE_HMT_PARAMS_H

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The one "derive it" value (see above). */
#define HMT_AUTO (-1)

/* Keys are banded by the object they configure and only ever appended.
 * Experimental keys (numbered from 1000) are in <hmt/experimental.h>. */
typedef enum hmt_param {
    /* contexts (100…): hmt_ctx_create */
    HMT_P_N_CTX = 100,   /* int: KV cache length in tokens, or HMT_AUTO for the
                            model's training context (default)              */
    HMT_P_N_BATCH = 101, /* int: max rows per forward chunk; a longer batch is
                            split internally (default 512). Also streams.    */
    HMT_P_N_SEQ = 102,   /* int: independent sequences, each with its own KV
                            cache of n_ctx slots (default 1; at most 256):
                            hmt_ctx_eval_seqs                                */
    HMT_P_KV_TYPE = 103, /* int: hmt_kv_type, the element type of the KV
                            cache (default HMT_KV_F32). Also streams.        */
    /* HMT streams (200…): hmt_stream_create; docs/HMT.md */
    HMT_P_MODE = 200,           /* int: hmt_mode (default HMT_MODE_FULL)            */
    HMT_P_LOOKAHEAD = 201,      /* int: 1 = scoring rule (segment n's own first j
                                   tokens form its query; default), 0 = causal
                                   (generation) rule. Runtime-settable.             */
    HMT_P_ALL_LOGITS = 202,     /* int: 1 = keep logits of every token made ready
                                   by a call (default), 0 = the last one only.
                                   Runtime-settable.                                */
    HMT_P_SEGMENT_LENGTH = 203, /* int: L, or HMT_AUTO for the adapter's (default;
                                   a value is required without an adapter)         */
    HMT_P_SENSORY_LENGTH = 204, /* int: k, or HMT_AUTO for the adapter's (default;
                                   0 without one)                                  */
    HMT_P_CACHE_SIZE = 205,     /* int: N, or HMT_AUTO for the adapter's (default) */
    HMT_P_SUMMARY_LENGTH = 207, /* int: j of the lookahead rule, or HMT_AUTO for
                                   the adapter's summary fraction of L (default)   */
    HMT_P_GEN_SUMMARY_LENGTH = 208, /* int: j of the causal rule, or HMT_AUTO for
                                   the adapter's (L / 2 unless it says otherwise)   */
    HMT_P_RECALL_DIM = 209,     /* int, read-only: d_h of the adapter (get only)    */
    HMT_P_KEEP_FFN_INPUT = 210, /* int: 1 = also keep each ready token's last-block
                                   feed-forward input (hmt_stream_ffn_input), for
                                   kNN-LM keys; default 0. Runtime-settable.        */
    HMT_P_WINDOW = 211,         /* int: window length of HMT_MODE_WINDOW, or
                                   HMT_AUTO for the model's training context; also
                                   the cache size (sinks + recent) of
                                   HMT_MODE_SINKS                                  */
    HMT_P_SINKS = 212,          /* int: sink tokens of HMT_MODE_SINKS, kept for the
                                   whole document (default 4, as StreamingLLM)     */
    /* kNN-LM (300…): hmt_proc_knn_create, hmt_knn_interpolate(_neighbors) */
    HMT_P_KNN_K = 300,           /* int: neighbours retrieved (default 1024)        */
    HMT_P_KNN_LAMBDA = 301,      /* float: interpolation weight λ (0.25)           */
    HMT_P_KNN_TEMPERATURE = 302, /* float: softmax temperature over -distance (1)  */
    /* kNN-LM datastore builds (350…): hmt_knn_builder_create */
    HMT_P_KNN_KEY_F16 = 350,     /* int: 1 = store keys as F16 (default 0: F32)    */
    /* threads and arithmetic (400…): contexts, streams; runtime-settable */
    HMT_P_N_THREADS = 400,    /* int: a private pool of this many threads, or
                                 HMT_AUTO for the process's shared pool
                                 (default; <hmt/threadpool.h>). Also
                                 hmt_knn_load.                                 */
    HMT_P_COMPUTE_TYPE = 401, /* int: hmt_compute_type (default HMT_COMPUTE_F32) */
    /* samplers (500…): hmt_sampler_create */
    HMT_P_TEMPERATURE = 500, /* float: 0 = greedy (default 0.8)                */
    HMT_P_TOP_K = 501,       /* int: keep the k most likely; 0 = all (40)      */
    HMT_P_TOP_P = 502,       /* float: nucleus mass in (0,1]; 1 = off (0.95)   */
    HMT_P_SEED = 503,        /* int: RNG seed (default 0x484d54)               */
    /* built-in sampling processors (docs/PROCESSORS.md; defaults are
       llama.cpp's): hmt_proc_min_p_create, _typical_create, _penalties_create */
    HMT_P_MIN_P = 504,             /* float: min-p in [0, 1]; 0 = off (0.05)   */
    HMT_P_MIN_KEEP = 505,          /* int: min-p and typical keep at least this
                                      many tokens (0)                          */
    HMT_P_TYPICAL_P = 506,         /* float: typical mass in [0, 1]; 1 = off (1) */
    HMT_P_PENALTY_LAST_N = 507,    /* int: penalties look at the last n accepted
                                      tokens; 0 = off (64)                     */
    HMT_P_REPEAT_PENALTY = 508,    /* float: repeat penalty; 1 = off (1)       */
    HMT_P_FREQUENCY_PENALTY = 509, /* float: per occurrence; 0 = off (0)       */
    HMT_P_PRESENCE_PENALTY = 510,  /* float: once if present; 0 = off (0)      */
    /* the DITTO sentence-repetition penalty (600…): hmt_proc_ditto_create */
    HMT_P_DITTO_LAMBDA = 600,       /* float: λ in (0, 1]; 1 = no effect (0.5)        */
    HMT_P_DITTO_MODE = 601,         /* int: hmt_ditto_mode (HMT_DITTO_POWER)          */
    HMT_P_DITTO_SCOPE = 602,        /* int: hmt_ditto_scope (HMT_DITTO_CONSECUTIVE)   */
    HMT_P_DITTO_WINDOW = 603,       /* int: sentences looked back by
                                       HMT_DITTO_WINDOWED (8)                         */
    HMT_P_DITTO_MIN_SENTENCE = 604, /* int: shorter sentences never count (2)        */
    HMT_P_DITTO_MIN_MATCH = 605,    /* int: tokens of a repeat before firing (0)     */
    HMT_P_DITTO_RENORM = 606        /* int: hmt_ditto_renorm (HMT_DITTO_RENORM_EXACT)  */
} hmt_param;

/** Values of HMT_P_COMPUTE_TYPE: how the weight matmuls of calls with more
 *  than 4 rows (prompts, scoring, HMT segments) compute; decode (1-4 rows)
 *  is the same under both. */
typedef enum hmt_compute_type {
    HMT_COMPUTE_F32 = 0, /* F32 products and sums                            */
    HMT_COMPUTE_BF16 = 1 /* weights and activations rounded to BF16, F32 sums:
                            faster where the CPU has AMX or AVX512-BF16, F32
                            elsewhere; logits within the bound docs/QUANTS.md
                            states                                          */
} hmt_compute_type;

/** Values of HMT_P_KV_TYPE: how the KV cache stores keys and values
 *  (after RoPE); attention widens them to F32 as it reads them. The half
 *  types halve the cache's memory at an accuracy cost docs/API.md states. */
typedef enum hmt_kv_type {
    HMT_KV_F32 = 0,  /* exact (default)                                      */
    HMT_KV_F16 = 1,  /* IEEE half: 11-bit significand, range ±65504          */
    HMT_KV_BF16 = 2  /* bfloat16: 8-bit significand, F32's range             */
} hmt_kv_type;

/** Values of HMT_P_DITTO_MODE (docs/PROCESSORS.md). */
typedef enum hmt_ditto_mode {
    HMT_DITTO_POWER = 0,   /* p' = λ^r · p for the r-th repeat               */
    HMT_DITTO_RELATIVE = 1 /* p' = min(p, λ · p at the previous copy)        */
} hmt_ditto_mode;

/** Values of HMT_P_DITTO_SCOPE. */
typedef enum hmt_ditto_scope {
    HMT_DITTO_CONSECUTIVE = 0, /* the run of identical sentences just ended  */
    HMT_DITTO_WINDOWED = 1     /* any of the last HMT_P_DITTO_WINDOW sentences */
} hmt_ditto_scope;

/** Values of HMT_P_DITTO_RENORM. */
typedef enum hmt_ditto_renorm {
    HMT_DITTO_RENORM_EXACT = 0, /* p'(y*) exact, the rest rescaled            */
    HMT_DITTO_RENORM_LOGIT = 1  /* z(y*) += ln(p'/p), as HF's repetition penalty */
} hmt_ditto_renorm;

typedef struct hmt_params hmt_params;

/** Create a params object holding every default. *out owned by the caller. */
HMT_API HMT_NODISCARD int hmt_params_create(hmt_params **out);
/** A new params object with src's values and set keys. */
HMT_API HMT_NODISCARD int hmt_params_copy(hmt_params **out, const hmt_params *src);
/** Free a params object (NULL is a no-op). Objects created from it keep
 *  their own copy of the values: free it whenever. */
HMT_API void hmt_params_free(hmt_params *params);
/** Set an integer key. HMT_E_INVAL for an unknown key, a float key, a
 *  read-only key, or a value outside the bounds (HMT_AUTO is inside them for
 *  the keys that offer it); the object is unchanged then. */
HMT_API HMT_NODISCARD int hmt_params_set_int(hmt_params *params, hmt_param key, int64_t value);
/** Set a float key (same errors as hmt_params_set_int; NaN and ±inf are
 *  outside every key's bounds). */
HMT_API HMT_NODISCARD int hmt_params_set_float(hmt_params *params, hmt_param key, double value);
/** Read a key's current value (ints are returned exactly as double). */
HMT_API HMT_NODISCARD int hmt_params_get(const hmt_params *params, hmt_param key, double *out);
/** Bounds and default of a key; any out pointer may be NULL. HMT_E_INVAL for
 *  an unknown key. *is_int is 1 for integer keys; *lo is HMT_AUTO for the
 *  keys that offer it (the values between HMT_AUTO and the smallest real
 *  one are refused). Thread-safe. */
HMT_API HMT_NODISCARD int hmt_param_bounds(hmt_param key, double *lo, double *hi,
                                           double *def, int *is_int);
/** The key's name as messages print it ("top_k"); NULL for an unknown key.
 *  Static storage. Thread-safe. */
HMT_API const char *hmt_param_name(hmt_param key);

#ifdef __cplusplus
}
#endif

#endif /* INCLUDE_HMT_PARAMS_H */
