/*
 * libhmt — memory-augmented LLM inference on the CPU.
 *
 * This header is the specification of libhmt's stable API: anything not
 * declared here is not part of it. It is self-contained C99, includes only
 * standard headers, and compiles as C and as C++. The pages of docs/ it
 * cites are installed with it, in <prefix>/share/doc/hmt.
 *
 * Walkthrough
 * -----------
 *     hmt_model *model = NULL;
 *     if (hmt_model_load(&model, "model.gguf", NULL) != HMT_OK) {
 *         fprintf(stderr, "%s\n", hmt_last_error_msg());
 *         return 1;
 *     }
 *     hmt_ctx *ctx = NULL;
 *     if (hmt_ctx_create(&ctx, model, NULL) != HMT_OK) { ... }
 *
 *     hmt_token toks[256]; size_t n = 0;
 *     hmt_tokenize(model, "Hello", 5, HMT_TOKENIZE_ADD_BOS, toks, 256, &n);
 *     hmt_ctx_eval_tokens(ctx, toks, n, 0);        // logits of the last token
 *     const float *logits = hmt_ctx_logits(ctx, -1);
 *
 *     hmt_ctx_free(ctx);
 *     hmt_model_free(model);
 *
 * Conventions (they hold for every function unless its comment says otherwise)
 * -----------
 * - Status: functions returning `int` return HMT_OK (0) or a negative
 *   hmt_status. On failure a message is stored for the calling thread
 *   (hmt_last_error_msg()) and, where a handle was given, on the handle
 *   (hmt_model_errmsg(), hmt_ctx_errmsg()).
 * - Handles are opaque and created by the library. `hmt_x **out` arguments
 *   hand ownership to the caller, who releases them with hmt_x_free(); every
 *   _free() accepts NULL. On failure *out is set to NULL.
 * - Pointers returned by getters are borrowed: they belong to the handle and
 *   stay valid for the lifetime stated at the function.
 * - Options: creation options are given through an opaque hmt_params object
 *   filled with typed, enum-keyed setters (no public struct layout; see
 *   docs/API.md). NULL means "all defaults".
 * - Threads: an hmt_model is immutable after loading and may be shared by any
 *   number of threads and contexts. An hmt_ctx, hmt_stream, hmt_params or
 *   hmt_sampler is used by one thread at a time: a call that overlaps another
 *   call on the same handle (from another thread, or from one of the
 *   handle's own callbacks) returns HMT_E_MISUSE and changes nothing. The
 *   library never prints, exits or aborts.
 * - Freeing a handle twice, or using it after its _free(), is undefined, as
 *   with free(); libhmt catches it on a best-effort basis (HMT_E_MISUSE, the
 *   call is ignored; docs/API.md, "Misuse detection").
 * - Strings are UTF-8. Integers are fixed-width; token ids are int32_t.
 */
#ifndef HMT_H
#define HMT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Export and attribute macros
 * ------------------------------------------------------------------------- */
#if defined(_WIN32) && defined(HMT_BUILD_SHARED)
#define HMT_API __declspec(dllexport)
#elif defined(__GNUC__) && __GNUC__ >= 4
#define HMT_API __attribute__((visibility("default")))
#else
#define HMT_API
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define HMT_NODISCARD __attribute__((warn_unused_result))
#else
#define HMT_NODISCARD
#endif

/* ---------------------------------------------------------------------------
 * Versions
 * ------------------------------------------------------------------------- */
#define HMT_VERSION_MAJOR 0
#define HMT_VERSION_MINOR 1
#define HMT_VERSION_PATCH 0
#define HMT_VERSION_NUMBER \
    (HMT_VERSION_MAJOR * 10000 + HMT_VERSION_MINOR * 100 + HMT_VERSION_PATCH)
#define HMT_VERSION_STR_(x) #x
#define HMT_VERSION_STR(x) HMT_VERSION_STR_(x)
#define HMT_VERSION_STRING                                                   \
    HMT_VERSION_STR(HMT_VERSION_MAJOR) "." HMT_VERSION_STR(HMT_VERSION_MINOR) \
    "." HMT_VERSION_STR(HMT_VERSION_PATCH)
#define HMT_AT_LEAST_VERSION(x, y, z) \
    (HMT_VERSION_NUMBER >= ((x) * 10000 + (y) * 100 + (z)))

/* The ABI number: the N of the SONAME libhmt.so.N. It changes only when a
 * released symbol is removed or changes meaning (docs/ABI.md). */
#define HMT_ABI_VERSION 0

/** Release version of the loaded library, as HMT_VERSION_NUMBER. Thread-safe. */
HMT_API uint32_t hmt_version_number(void);
/** Release version of the loaded library, "X.Y.Z"; static storage. Thread-safe. */
HMT_API const char *hmt_version_string(void);
/** ABI number of the loaded library (HMT_ABI_VERSION it was built with). */
HMT_API uint32_t hmt_abi_version(void);

/* ---------------------------------------------------------------------------
 * Status codes
 * ------------------------------------------------------------------------- */
/* Values are fixed forever; new codes are only appended. */
typedef enum hmt_status {
    HMT_OK = 0,
    HMT_E_INVAL = -1,       /* an argument is invalid (NULL, out of range)  */
    HMT_E_NOMEM = -2,       /* an allocation failed                          */
    HMT_E_IO = -3,          /* a file could not be opened, read or written   */
    HMT_E_FORMAT = -4,      /* a file's contents are malformed or corrupt    */
    HMT_E_UNSUPPORTED = -5, /* valid but not supported (arch, tensor type)   */
    HMT_E_CTX_FULL = -6,    /* the KV cache has no room for the batch        */
    HMT_E_ABORTED = -7,     /* the abort callback asked to stop              */
    HMT_E_MISUSE = -8,      /* API called in the wrong order or state        */
    HMT_E_BUFFER = -9,      /* the caller's output buffer is too small       */
    HMT_E_TOKEN = -10,      /* a token id is outside [0, n_vocab)            */
    HMT_E_INTERNAL = -11    /* a bug in libhmt; please report it             */
} hmt_status;

/** Static English text for a status code ("unknown status" for others).
 *  Thread-safe; never NULL. */
HMT_API const char *hmt_strerror(int status);

/** Detail of the last failure on the calling thread (any function, handle or
 *  not). Thread-local storage owned by the library, valid until the next
 *  libhmt call on this thread; "" when nothing failed yet. Never NULL. */
HMT_API const char *hmt_last_error_msg(void);

/* ---------------------------------------------------------------------------
 * Parameters: an opaque bag of typed, enum-keyed options
 * ------------------------------------------------------------------------- */
/* Keys are banded by the object they configure and only ever appended.
 * Every key has a type (int or float), a default and bounds
 * (hmt_param_bounds). A key set on a params object is used by any function
 * that reads it and ignored by the others. */
typedef enum hmt_param {
    /* context creation (100…) */
    HMT_P_N_CTX = 100,      /* int: KV cache length in tokens; 0 = model's
                               context length (default 0)                   */
    HMT_P_N_BATCH = 101,    /* int: max tokens per forward chunk; a longer
                               batch is split internally (default 512)      */
    /* HMT streams (200…); see docs/HMT.md. Overrides default to the adapter */
    HMT_P_MODE = 200,           /* int: hmt_mode (default HMT_MODE_FULL)           */
    HMT_P_LOOKAHEAD = 201,      /* int: 1 = scoring rule (segment n's own first j
                                   tokens form its query; default), 0 = causal
                                   (generation) rule. Runtime-settable.            */
    HMT_P_ALL_LOGITS = 202,     /* int: 1 = keep logits of every token made ready
                                   by a call (default), 0 = the last one only.
                                   Runtime-settable.                               */
    HMT_P_SEGMENT_LENGTH = 203, /* int: L; 0 = the adapter's (required without one) */
    HMT_P_SENSORY_LENGTH = 204, /* int: k; -1 = the adapter's (default; 0 without) */
    HMT_P_CACHE_SIZE = 205,     /* int: N; 0 = the adapter's                       */
    HMT_P_RECALL_BF16 = 206,    /* int: -1 = the adapter's, 0 off, 1 on            */
    HMT_P_SUMMARY_LENGTH = 207, /* int: j for the lookahead rule; 0 = from the
                                   adapter's summary fraction                      */
    HMT_P_GEN_SUMMARY_LENGTH = 208, /* int: j for the causal rule; 0 = adapter's
                                   (L // 2 unless it says otherwise)               */
    HMT_P_RECALL_DIM = 209,     /* int, read-only: d_h of the adapter              */
    HMT_P_KEEP_FFN_INPUT = 210, /* int: 1 = also keep each ready token's last-block
                                   feed-forward input (hmt_stream_ffn_input), for
                                   kNN-LM keys; default 0. Runtime-settable.        */
    /* kNN-LM (300…), include/hmt/hmt_knn.h */
    HMT_P_KNN_K = 300,           /* int: neighbours retrieved (default 1024)        */
    HMT_P_KNN_LAMBDA = 301,      /* float: interpolation weight λ (0.25)           */
    HMT_P_KNN_TEMPERATURE = 302, /* float: softmax temperature over -distance (1)  */
    HMT_P_KNN_LAMBDA_MODE = 303, /* int: 0 fixed (default), 1 entropy_gap,
                                    2 entropy_norm (docs/KNN.md)                  */
    HMT_P_KNN_BETA = 304,        /* float: entropy_gap slope β (0)                 */
    HMT_P_KNN_BIAS = 305,        /* float: entropy_gap offset b (0)                */
    HMT_P_KNN_LAMBDA_MAX = 306,  /* float: upper clip of adaptive λ (1)            */
    HMT_P_KNN_KEY_F16 = 307,     /* int: store datastore keys as F16 (0 = F32)     */
    HMT_P_KNN_NPROBE = 308,      /* int: IVF lists probed by a FAISS index (32)    */
    HMT_P_KNN_NLIST = 309,       /* int: IVF lists of a FAISS index; 0 = automatic  */
    HMT_P_KNN_PQ_M = 310,        /* int: PQ sub-quantizers (bytes per key) of a
                                    FAISS index; 0 = automatic                     */
    HMT_P_KNN_TRAIN_SIZE = 311,  /* int: keys sampled to train a FAISS index;
                                    0 = automatic                                  */
    HMT_P_KNN_RERANK = 312,      /* int: FAISS candidates per neighbour whose
                                    distances are recomputed exactly (4)           */
    /* runtime (400…): also settable on a live context, hmt_ctx_set_int */
    HMT_P_N_THREADS = 400,  /* int: worker threads for this context
                               (default 0 = number of online CPUs)          */
    HMT_P_COMPUTE_TYPE = 401, /* int: HMT_COMPUTE_F32 (default) or
                               HMT_COMPUTE_BF16 for the matmuls of prompt
                               processing and scoring; docs/QUANTS.md    */
    /* sampling (500…) */
    HMT_P_TEMPERATURE = 500, /* float: 0 = greedy (default 0.8)             */
    HMT_P_TOP_K = 501,       /* int: keep the k most likely; 0 = all (40)   */
    HMT_P_TOP_P = 502,       /* float: nucleus mass in (0,1]; 1 = off (0.95)*/
    HMT_P_SEED = 503,        /* int: RNG seed (default 0x484d54)            */
    /* DITTO sentence-repetition penalty (600…), include/hmt/hmt_proc.h */
    HMT_P_DITTO_LAMBDA = 600,       /* float: λ in (0, 1]; 1 = no effect (0.5)     */
    HMT_P_DITTO_MODE = 601,         /* int: 0 power (λ^r), 1 relative (λ·p_prev)  */
    HMT_P_DITTO_SCOPE = 602,        /* int: 0 consecutive repeats, 1 window       */
    HMT_P_DITTO_WINDOW = 603,       /* int: sentences looked back in scope window (8) */
    HMT_P_DITTO_MIN_SENTENCE = 604, /* int: shorter sentences never count (2)     */
    HMT_P_DITTO_MIN_MATCH = 605,    /* int: tokens of a repeat before firing (0)  */
    HMT_P_DITTO_RENORM = 606        /* int: 0 exact renormalisation, 1 logit shift */
} hmt_param;

/** Values of HMT_P_COMPUTE_TYPE: how the weight matmuls of calls with more
 *  than 4 rows (prompts, scoring, HMT segments) compute; decode (1-4 rows)
 *  is the same under both. */
enum {
    HMT_COMPUTE_F32 = 0, /* F32 products and sums                            */
    HMT_COMPUTE_BF16 = 1 /* weights and activations rounded to BF16, F32 sums:
                            faster where the CPU has AMX or AVX512-BF16, F32
                            elsewhere; logits within the bound docs/QUANTS.md
                            states                                          */
};

typedef struct hmt_params hmt_params;

/** Create a params object holding every default. *out owned by the caller. */
HMT_API HMT_NODISCARD int hmt_params_create(hmt_params **out);
/** Free a params object (NULL is a no-op). */
HMT_API void hmt_params_free(hmt_params *params);
/** Set an integer key. HMT_E_INVAL for an unknown key, a float key, or a value
 *  outside the bounds; the object is unchanged then. */
HMT_API HMT_NODISCARD int hmt_params_set_int(hmt_params *params, hmt_param key, int64_t value);
/** Set a float key (same errors as hmt_params_set_int; NaN and ±inf are
 *  outside every key's bounds). */
HMT_API HMT_NODISCARD int hmt_params_set_float(hmt_params *params, hmt_param key, double value);
/** Read a key's current value (ints are returned exactly as double). */
HMT_API HMT_NODISCARD int hmt_params_get(const hmt_params *params, hmt_param key, double *out);
/** Bounds and default of a key; any out pointer may be NULL. HMT_E_INVAL for
 *  an unknown key. *is_int is 1 for integer keys. Thread-safe. */
HMT_API HMT_NODISCARD int hmt_param_bounds(hmt_param key, double *lo, double *hi,
                                           double *def, int *is_int);

/* ---------------------------------------------------------------------------
 * Logging
 * ------------------------------------------------------------------------- */
typedef enum hmt_log_level {
    HMT_LOG_ERROR = 0,
    HMT_LOG_WARN = 1,
    HMT_LOG_INFO = 2,
    HMT_LOG_DEBUG = 3
} hmt_log_level;

typedef void (*hmt_log_fn)(hmt_log_level level, const char *msg, void *user_data);

/** Route the library's log lines to fn (NULL: discard, the default).
 *  Global state: call before other threads use the library. */
HMT_API void hmt_log_set(hmt_log_fn fn, void *user_data);

/* ---------------------------------------------------------------------------
 * Models
 * ------------------------------------------------------------------------- */
typedef int32_t hmt_token;
typedef struct hmt_model hmt_model;

/** Load a model from a GGUF file (architectures llama and qwen2).
 *  The file is memory-mapped and validated completely before use; F16, BF16
 *  and block-quantized weights (docs/MODELS.md) are computed on in the
 *  mapping, F32 ones packed into panels at load (docs/API.md, memory).
 *  params: NULL or a params object (no model keys exist yet).
 *  Errors: HMT_E_INVAL (NULL out/path), HMT_E_IO, HMT_E_FORMAT (corrupt file;
 *  the message names the field; also a NaN or infinite weight: the message
 *  names the tensor, element, row and column), HMT_E_UNSUPPORTED (architecture or tensor
 *  type), HMT_E_NOMEM. On failure *out is NULL and nothing is leaked.
 *  Thread-safe (distinct calls share nothing). */
HMT_API HMT_NODISCARD int hmt_model_load(hmt_model **out, const char *path,
                                         const hmt_params *params);

/** Release the caller's reference to a model (NULL is a no-op). Contexts hold
 *  their own reference, so a model freed while contexts live is destroyed
 *  when the last of them is freed. */
HMT_API void hmt_model_free(hmt_model *model);

/** Shape queries; 0 / NULL for a NULL model. Thread-safe. */
HMT_API int32_t hmt_model_n_vocab(const hmt_model *model);
HMT_API int32_t hmt_model_n_embd(const hmt_model *model);
HMT_API int32_t hmt_model_n_layer(const hmt_model *model);
HMT_API int32_t hmt_model_n_head(const hmt_model *model);
HMT_API int32_t hmt_model_n_head_kv(const hmt_model *model);
HMT_API int32_t hmt_model_n_ff(const hmt_model *model);
HMT_API int32_t hmt_model_n_ctx_train(const hmt_model *model);
/** Architecture name from general.architecture ("llama", "qwen2"); owned by
 *  the model, valid until it is destroyed. */
HMT_API const char *hmt_model_arch(const hmt_model *model);
/** Number of parameters in the backbone's weight tensors. */
HMT_API uint64_t hmt_model_n_params(const hmt_model *model);

/** Copy a metadata value rendered as text into buf (snprintf-style: always
 *  NUL-terminated when cap > 0). *len_out (may be NULL) receives the full
 *  length without the NUL. Arrays render as "[array of N <type>]".
 *  HMT_E_INVAL if the key is missing; HMT_E_BUFFER if cap is too small (the
 *  text is truncated, *len_out says how much room is needed). */
HMT_API HMT_NODISCARD int hmt_model_meta_str(const hmt_model *model, const char *key,
                                             char *buf, size_t cap, size_t *len_out);

/** Special tokens; -1 when the model defines none. */
HMT_API hmt_token hmt_model_token_bos(const hmt_model *model);
HMT_API hmt_token hmt_model_token_eos(const hmt_model *model);

/** Copy the input embedding of a token (n_embd floats) into out. */
HMT_API HMT_NODISCARD int hmt_model_token_embedding(const hmt_model *model, hmt_token token,
                                                    float *out, size_t cap);

/** Detail of the last failure of a call that took this model; library-owned,
 *  valid until the next failing call on it. Never NULL. Because a model is
 *  shared between threads, prefer hmt_last_error_msg() in threaded code. */
HMT_API const char *hmt_model_errmsg(const hmt_model *model);

/* ---------------------------------------------------------------------------
 * Tokenizer (from the GGUF's tokenizer.ggml.* metadata: "llama" SentencePiece
 * BPE with byte fallback, or "gpt2" byte-level BPE). Thread-safe.
 * ------------------------------------------------------------------------- */
enum {
    HMT_TOKENIZE_ADD_BOS = 1u << 0, /* prepend BOS when the model has one    */
    HMT_TOKENIZE_SPECIAL = 1u << 1  /* parse control-token text ("<s>") as
                                       the token instead of as plain text     */
};

/** Tokenize len bytes of UTF-8 text (invalid bytes are handled, never read
 *  past len). Writes up to cap ids into out and the count into *n_out.
 *  HMT_E_BUFFER if cap is too small: *n_out then holds the needed count.
 *  out may be NULL when cap is 0 (count only). */
HMT_API HMT_NODISCARD int hmt_tokenize(const hmt_model *model, const char *text, size_t len,
                                       uint32_t flags, hmt_token *out, size_t cap,
                                       size_t *n_out);

enum {
    HMT_DETOKENIZE_SPECIAL = 1u << 0 /* render control tokens (<s>, </s>) */
};

/** Turn ids into UTF-8 text, snprintf-style: the text (NUL-terminated when
 *  cap > 0) in buf, its length without NUL in *len_out. HMT_E_BUFFER when it
 *  does not fit (truncated output, *len_out the needed length); HMT_E_TOKEN
 *  for an id outside the vocabulary. A leading SentencePiece space is kept;
 *  decoding ids one at a time and concatenating gives the same bytes as
 *  decoding them together. */
HMT_API HMT_NODISCARD int hmt_detokenize(const hmt_model *model, const hmt_token *tokens,
                                         size_t n_tokens, uint32_t flags, char *buf,
                                         size_t cap, size_t *len_out);

/* ---------------------------------------------------------------------------
 * Contexts: one document stream with its KV cache
 * ------------------------------------------------------------------------- */
typedef struct hmt_ctx hmt_ctx;

/** Create a context for model, holding a reference to it.
 *  params keys used: HMT_P_N_CTX, HMT_P_N_BATCH, HMT_P_N_THREADS,
 *  HMT_P_COMPUTE_TYPE.
 *  All buffers (KV cache, activations) are allocated here, once.
 *  Errors: HMT_E_INVAL, HMT_E_NOMEM. Thread-safe with respect to other
 *  contexts of the same model. */
HMT_API HMT_NODISCARD int hmt_ctx_create(hmt_ctx **out, hmt_model *model,
                                         const hmt_params *params);
/** Free a context and drop its model reference (NULL is a no-op). */
HMT_API void hmt_ctx_free(hmt_ctx *ctx);

/** Set a runtime key on a live context (HMT_P_N_THREADS, HMT_P_COMPUTE_TYPE). */
HMT_API HMT_NODISCARD int hmt_ctx_set_int(hmt_ctx *ctx, hmt_param key, int64_t value);
/** Read a key's value as the context uses it (e.g. the actual HMT_P_N_CTX). */
HMT_API HMT_NODISCARD int hmt_ctx_get(const hmt_ctx *ctx, hmt_param key, double *out);

/** The model this context runs (borrowed). */
HMT_API const hmt_model *hmt_ctx_model(const hmt_ctx *ctx);
/** Number of positions held in the KV cache. */
HMT_API int32_t hmt_ctx_n_past(const hmt_ctx *ctx);
/** KV cache capacity in positions. */
HMT_API int32_t hmt_ctx_n_ctx(const hmt_ctx *ctx);

/** Per-row output requests for hmt_ctx_eval(). */
enum {
    HMT_OUT_LOGITS = 1u << 0, /* compute this row's logits                    */
    HMT_OUT_HIDDEN = 1u << 1, /* keep this row's final normalized hidden state */
    HMT_OUT_FFN_INPUT = 1u << 2 /* keep the last block's feed-forward input after
                                   its norm (the kNN-LM key, docs/KNN.md)       */
};

/** Evaluate a batch of n rows appended to the KV cache at slots
 *  n_past … n_past+n-1, each row being either a token id (tokens != NULL) or
 *  an input embedding of n_embd floats (embd != NULL, row-major n × n_embd);
 *  exactly one of the two is given.
 *  pos:     RoPE position of each row, or NULL for n_past + i.
 *  outputs: per-row HMT_OUT_* flags, or NULL for "logits and hidden state of
 *           the last row only".
 *  Rows attend causally to every cached slot and to earlier rows.
 *  On HMT_OK, n_past grows by n and the requested outputs are readable with
 *  hmt_ctx_logits() / hmt_ctx_hidden() until the next eval or clear.
 *  Errors (the KV cache and n_past are then as before the call):
 *  HMT_E_INVAL (n = 0, both or neither of tokens/embd, bad flags, a NaN or
 *  infinite embedding value: the message gives its row and column),
 *  HMT_E_TOKEN (an id out of range), HMT_E_CTX_FULL (n_past + n > n_ctx),
 *  HMT_E_ABORTED (the abort callback returned nonzero between layers). */
HMT_API HMT_NODISCARD int hmt_ctx_eval(hmt_ctx *ctx, size_t n, const hmt_token *tokens,
                                       const float *embd, const int32_t *pos,
                                       const uint8_t *outputs);

/** Shorthand: evaluate token ids at the next positions; logits for every row
 *  when all_logits is nonzero, else for the last row only. */
HMT_API HMT_NODISCARD int hmt_ctx_eval_tokens(hmt_ctx *ctx, const hmt_token *tokens, size_t n,
                                              int all_logits);

/** Logits (n_vocab floats) of batch row i of the last successful eval, or of
 *  its last row for i = -1. NULL if that row's logits were not requested.
 *  Its values are those of that eval until the next eval, clear or rewind;
 *  the memory itself stays readable (possibly overwritten by a later eval,
 *  or stale) until hmt_ctx_free, so a host that hands out views of it (the
 *  Python binding) never reads freed memory. The same holds for
 *  hmt_ctx_hidden and hmt_ctx_ffn_input. */
HMT_API const float *hmt_ctx_logits(const hmt_ctx *ctx, int32_t i);
/** Final normalized hidden state (n_embd floats) of batch row i (-1 = last);
 *  NULL if not requested. Same lifetime as hmt_ctx_logits(). */
HMT_API const float *hmt_ctx_hidden(const hmt_ctx *ctx, int32_t i);

/** The last block's normalized feed-forward input (n_embd floats) of batch
 *  row i (-1 = last); NULL if HMT_OUT_FFN_INPUT was not requested for it.
 *  Same lifetime as hmt_ctx_logits(). */
HMT_API const float *hmt_ctx_ffn_input(const hmt_ctx *ctx, int32_t i);

/** Forget every cached position (n_past = 0). */
HMT_API HMT_NODISCARD int hmt_ctx_kv_clear(hmt_ctx *ctx);
/** Keep the first n_keep cached positions and drop the rest
 *  (HMT_E_INVAL if n_keep > n_past). */
HMT_API HMT_NODISCARD int hmt_ctx_kv_rewind(hmt_ctx *ctx, int32_t n_keep);

/** Abort callback, polled between layers: a nonzero return stops the eval
 *  with HMT_E_ABORTED. NULL removes it. Called on the thread running eval.
 *  After an abort the context is as before the eval (n_past and the cached
 *  positions unchanged; the outputs of the previous eval are gone) and
 *  usable. The same type serves streams (hmt_stream_set_abort_callback) and
 *  datastore builds (hmt_knn_builder_set_abort_callback). */
typedef int (*hmt_abort_fn)(void *user_data);
HMT_API HMT_NODISCARD int hmt_ctx_set_abort_callback(hmt_ctx *ctx, hmt_abort_fn fn,
                                                     void *user_data);

/** Detail of the last failure on this context; library-owned, valid until
 *  the next call on ctx. "" if none. Never NULL. */
HMT_API const char *hmt_ctx_errmsg(const hmt_ctx *ctx);

/* ---------------------------------------------------------------------------
 * Sampling: greedy, temperature, top-k, top-p with a seeded RNG
 * ------------------------------------------------------------------------- */
typedef struct hmt_sampler hmt_sampler;

/** Create a sampler. Keys used: HMT_P_TEMPERATURE, HMT_P_TOP_K, HMT_P_TOP_P,
 *  HMT_P_SEED. The same seed and logits give the same tokens on every run. */
HMT_API HMT_NODISCARD int hmt_sampler_create(hmt_sampler **out, const hmt_params *params);
HMT_API void hmt_sampler_free(hmt_sampler *sampler);
/** Draw a token from n_vocab logits (not modified). Order: top-k, then
 *  temperature softmax, then top-p, then a draw; temperature 0 is argmax
 *  (lowest id on ties). Non-finite logits follow the processor chain's rule
 *  (hmt_proc.h): -inf bans a token (it is never drawn, at any temperature);
 *  NaN and +inf have no probability and are refused, as is a vector whose
 *  every entry is -inf (no token allowed): HMT_E_INVAL naming the first bad
 *  entry, *out unchanged. HMT_E_INVAL also for NULL or n_vocab <= 0. */
HMT_API HMT_NODISCARD int hmt_sampler_sample(hmt_sampler *sampler, const float *logits,
                                             int32_t n_vocab, hmt_token *out);
/** Restart the RNG from seed. */
HMT_API void hmt_sampler_reseed(hmt_sampler *sampler, uint64_t seed);

/* ---------------------------------------------------------------------------
 * HMT: adapters and document streams (docs/HMT.md)
 * ------------------------------------------------------------------------- */
/* Modes, compared through one API. */
typedef enum hmt_mode {
    HMT_MODE_FULL = 0,     /* HMT: summary pass, recall, memory passing    */
    HMT_MODE_RMT = 1,      /* memory passing without recall (P_n = M_n-1)  */
    HMT_MODE_SEGMENTS = 2, /* plain backbone, segment by segment, no memory */
    HMT_MODE_WINDOW = 3    /* plain backbone, sliding window of n_ctx      */
} hmt_mode;

typedef struct hmt_adapter hmt_adapter;

/** Load the HMT parameters (hmt.* keys and tensors) for model from a GGUF
 *  file, or from the model's own file when path is NULL. Validated against
 *  the model: HMT_E_FORMAT for a missing or mis-shaped tensor, a width that
 *  differs from the model's, a bad hyperparameter, or a NaN or infinite
 *  tensor element (the message names it);
 *  HMT_E_IO for an unreadable file. The adapter holds a reference to model.
 *  Immutable once loaded: shareable between threads and streams. */
HMT_API HMT_NODISCARD int hmt_adapter_load(hmt_adapter **out, hmt_model *model,
                                           const char *path);
HMT_API void hmt_adapter_free(hmt_adapter *adapter);
/** The adapter's hyperparameters under the stream keys: HMT_P_SEGMENT_LENGTH,
 *  HMT_P_SENSORY_LENGTH, HMT_P_CACHE_SIZE, HMT_P_RECALL_BF16,
 *  HMT_P_SUMMARY_LENGTH, HMT_P_GEN_SUMMARY_LENGTH, HMT_P_RECALL_DIM. */
HMT_API HMT_NODISCARD int hmt_adapter_get(const hmt_adapter *adapter, hmt_param key,
                                          double *out);

typedef struct hmt_stream hmt_stream;

/** Create a document stream. adapter may be NULL for HMT_MODE_SEGMENTS and
 *  HMT_MODE_WINDOW (then HMT_P_SEGMENT_LENGTH must be set for SEGMENTS).
 *  Keys used: the HMT keys (200…), HMT_P_N_CTX (window length for WINDOW),
 *  HMT_P_N_THREADS, HMT_P_COMPUTE_TYPE. The stream holds references to
 *  model and adapter.
 *  Errors: HMT_E_INVAL (bad combination: the message says which),
 *  HMT_E_NOMEM. */
HMT_API HMT_NODISCARD int hmt_stream_create(hmt_stream **out, hmt_model *model,
                                            const hmt_adapter *adapter,
                                            const hmt_params *params);
HMT_API void hmt_stream_free(hmt_stream *stream);
/** Runtime keys: HMT_P_LOOKAHEAD, HMT_P_ALL_LOGITS, HMT_P_N_THREADS,
 *  HMT_P_COMPUTE_TYPE. */
HMT_API HMT_NODISCARD int hmt_stream_set_int(hmt_stream *stream, hmt_param key, int64_t value);
/** Any stream key as resolved for this stream (e.g. the actual L, k, N). */
HMT_API HMT_NODISCARD int hmt_stream_get(const hmt_stream *stream, hmt_param key, double *out);

/** Append n tokens to the stream and evaluate everything that can be
 *  evaluated (under the lookahead rule, a segment's tokens wait until j of
 *  them are known). Tokens made ready by this call have their logits
 *  readable until the next feed/flush/restore (hmt_stream_ready_range).
 *  Errors: HMT_E_TOKEN (nothing was consumed), HMT_E_ABORTED, HMT_E_NOMEM.
 *  After an error other than HMT_E_TOKEN the stream is unusable except for
 *  hmt_stream_restore/free: further feeds return HMT_E_MISUSE. */
HMT_API HMT_NODISCARD int hmt_stream_feed(hmt_stream *stream, const hmt_token *tokens,
                                          size_t n);
/** Make every fed token ready: under the lookahead rule, a segment with fewer
 *  than j tokens is summarized from those present (end of a text, or the
 *  switch to generation). No-op when nothing is pending. */
HMT_API HMT_NODISCARD int hmt_stream_flush(hmt_stream *stream);

/** Tokens fed so far, and tokens whose next-token logits are computed. */
HMT_API int64_t hmt_stream_n_fed(const hmt_stream *stream);
HMT_API int64_t hmt_stream_n_ready(const hmt_stream *stream);
/** [*first, *end): stream indices whose logits are readable: those the
 *  most recent feed/flush that made any token ready made ready (with
 *  HMT_P_ALL_LOGITS = 0: only end - 1). A call that makes nothing ready
 *  (tokens pending under the lookahead rule) leaves the range as it was, so
 *  a consumer should remember the last index it used. */
HMT_API void hmt_stream_ready_range(const hmt_stream *stream, int64_t *first, int64_t *end);
/** Logits (n_vocab floats) predicting token index + 1, for an index in the
 *  ready range; NULL otherwise. Its values hold until the next
 *  feed/flush/restore; the memory stays readable (possibly overwritten or
 *  stale) until hmt_stream_free, as for hmt_ctx_logits. */
HMT_API const float *hmt_stream_logits(const hmt_stream *stream, int64_t index);

/** The kNN-LM key of a ready token (n_embd floats: the last block's
 *  normalized feed-forward input when the token was evaluated), kept when
 *  HMT_P_KEEP_FFN_INPUT is 1; same index range and lifetime as
 *  hmt_stream_logits(); NULL otherwise. */
HMT_API const float *hmt_stream_ffn_input(const hmt_stream *stream, int64_t index);

/** Introspection. Segments opened so far (the open one included), the
 *  memories held in the cache, and the recall of the open segment: its
 *  weights over the cached memories (oldest first) and the segment index each
 *  memory came from. *n_out receives the count (<= N); HMT_E_BUFFER if cap is
 *  too small. Before the open segment's P is known, *n_out is 0. */
HMT_API int64_t hmt_stream_n_segments(const hmt_stream *stream);
HMT_API int32_t hmt_stream_cache_fill(const hmt_stream *stream);
HMT_API HMT_NODISCARD int hmt_stream_recall(const hmt_stream *stream, float *weights,
                                            int64_t *segments, size_t cap, size_t *n_out);

/** Called each time a segment's memorization prompt P is computed (full
 *  mode), on the thread running feed/flush, with the same data as
 *  hmt_stream_recall. The pointers are valid during the call only. */
typedef void (*hmt_recall_fn)(void *user_data, int64_t segment, const float *weights,
                              const int64_t *segments, int32_t n);
HMT_API HMT_NODISCARD int hmt_stream_set_recall_callback(hmt_stream *stream, hmt_recall_fn fn,
                                                         void *user_data);

/** Snapshots of the whole stream state (memory cache, sensory ids, the open
 *  segment with its KV cache, pending tokens, counters), versioned; restoring
 *  one into a stream of the same model, adapter and settings continues with
 *  bit-identical results. save: snprintf-style (HMT_E_BUFFER with *len_out =
 *  needed size; buf may be NULL when cap is 0). restore: HMT_E_FORMAT for a
 *  corrupt or truncated snapshot (including any NaN or infinite number in
 *  it: memories, keys, recall weights, KV cache, logits; the message names
 *  the field and index), HMT_E_INVAL for one taken with another
 *  model, adapter or settings; the stream is unchanged on failure.
 *  save_file writes a temporary next to path and renames it over path once
 *  complete and synced: on failure (HMT_E_IO, with the system's reason)
 *  path is unchanged. restore_file reads regular files only (HMT_E_IO for a
 *  FIFO, folder or device) and none larger than this stream's largest
 *  snapshot (HMT_E_FORMAT). */
HMT_API HMT_NODISCARD int hmt_stream_save(const hmt_stream *stream, void *buf, size_t cap,
                                          size_t *len_out);
HMT_API HMT_NODISCARD int hmt_stream_restore(hmt_stream *stream, const void *buf, size_t len);
HMT_API HMT_NODISCARD int hmt_stream_save_file(const hmt_stream *stream, const char *path);
HMT_API HMT_NODISCARD int hmt_stream_restore_file(hmt_stream *stream, const char *path);

/** Abort callback of a stream, polled between the layers of every forward
 *  pass that feed/flush run (summary, memory and main passes; a long feed
 *  runs many), so a nonzero return stops the call within one layer's time
 *  with HMT_E_ABORTED. NULL removes it. Called on the thread running
 *  feed/flush. After an abort the stream is unusable, as after any error of
 *  feed/flush: feed/flush/save return HMT_E_MISUSE until
 *  hmt_stream_restore (a snapshot taken before the call) or free. */
HMT_API HMT_NODISCARD int hmt_stream_set_abort_callback(hmt_stream *stream, hmt_abort_fn fn,
                                                        void *user_data);

/** Detail of the last failure on this stream ("" if none). */
HMT_API const char *hmt_stream_errmsg(const hmt_stream *stream);

#ifdef __cplusplus
}
#endif

#endif /* HMT_H */
