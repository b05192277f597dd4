/*
 * libhmt — contexts: a model with a KV cache, evaluated batch by batch.
 * Part of <hmt/hmt.h>; self-contained C99, compiles as C and as C++.
 */
#ifndef INCLUDE_HMT_CONTEXT_H
#define INCLUDE_HMT_CONTEXT_H

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hmt_ctx hmt_ctx;

/** Create a context for model, holding a reference to it.
 *  params keys: HMT_P_N_CTX, HMT_P_N_BATCH, HMT_P_N_SEQ, HMT_P_N_THREADS,
 *  HMT_P_COMPUTE_TYPE (another key set on params: HMT_E_INVAL naming it).
 *  All buffers (KV caches: one of n_ctx slots per sequence, activations)
 *  are allocated here, once.
 *  Errors: HMT_E_INVAL, HMT_E_NOMEM. Thread-safe with respect to other
 *  contexts of the same model. */
HMT_API HMT_NODISCARD int hmt_ctx_create(hmt_ctx **out, hmt_model *model,
                                         const hmt_params *params);
/** Free a context and drop its model reference (NULL is a no-op). */
HMT_API void hmt_ctx_free(hmt_ctx *ctx);

/** Set a runtime key on a live context (HMT_P_N_THREADS, HMT_P_COMPUTE_TYPE;
 *  any other key: HMT_E_INVAL naming it). */
HMT_API HMT_NODISCARD int hmt_ctx_set_int(hmt_ctx *ctx, hmt_param key, int64_t value);
/** Read a key's value as the context uses it (e.g. the actual HMT_P_N_CTX). */
HMT_API HMT_NODISCARD int hmt_ctx_get(const hmt_ctx *ctx, hmt_param key, double *out);

/** Run this context's work on tp from now on, holding a reference to it
 *  (NULL: the process's shared pool). The previous pool is released.
 *  Errors: HMT_E_NOMEM (scratch for this context on tp). */
HMT_API HMT_NODISCARD int hmt_ctx_attach_threadpool(hmt_ctx *ctx, hmt_threadpool *tp);

/** The model this context runs (borrowed). */
HMT_API const hmt_model *hmt_ctx_model(const hmt_ctx *ctx);
/** Number of positions held in the KV cache (of sequence 0). */
HMT_API int32_t hmt_ctx_n_past(const hmt_ctx *ctx);
/** KV cache capacity in positions (of each sequence). */
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
HMT_API HMT_NODISCARD int hmt_ctx_eval(hmt_ctx *ctx, const hmt_token *tokens,
                                       const float *embd, size_t n, const int32_t *pos,
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

/** Forget every cached position of every sequence (n_past = 0). */
HMT_API HMT_NODISCARD int hmt_ctx_kv_clear(hmt_ctx *ctx);
/** Keep the first n_keep cached positions of sequence 0 and drop the rest
 *  (HMT_E_INVAL if n_keep > n_past). */
HMT_API HMT_NODISCARD int hmt_ctx_kv_rewind(hmt_ctx *ctx, int32_t n_keep);

/* ---- several sequences in one context (docs/API.md "Sequences") ----------
 * A context created with HMT_P_N_SEQ = S holds S independent sequences
 * (0 … S-1), each with its own KV cache of n_ctx slots; the calls above act
 * on sequence 0 (hmt_ctx_kv_clear: on all). One hmt_ctx_eval_seqs call
 * evaluates rows of several sequences in one pass over the weights: the
 * weight matmuls see every row at once, attention stays within each
 * sequence. */

/** Evaluate n rows, row i appended to sequence seq[i] at that sequence's
 *  next slot (rows of one sequence take consecutive slots in row order; the
 *  sequences' rows may interleave). tokens / embd / pos / outputs as in
 *  hmt_ctx_eval (pos NULL: each row's slot in its sequence); the outputs
 *  are read with hmt_ctx_logits(ctx, i) etc. by batch row i. Rows attend
 *  causally to their own sequence's cached slots and earlier rows of it.
 *  Errors (every sequence is then as before the call): those of
 *  hmt_ctx_eval; HMT_E_INVAL also for seq NULL or a sequence outside
 *  [0, HMT_P_N_SEQ); HMT_E_CTX_FULL naming the sequence that overflows. */
HMT_API HMT_NODISCARD int hmt_ctx_eval_seqs(hmt_ctx *ctx, const hmt_token *tokens,
                                            const float *embd, const int32_t *seq, size_t n,
                                            const int32_t *pos, const uint8_t *outputs);
/** Positions cached in sequence seq; -1 for a NULL ctx or seq out of range. */
HMT_API int32_t hmt_ctx_seq_n_past(const hmt_ctx *ctx, int32_t seq);
/** Keep the first n_keep cached positions of sequence seq (0 clears it).
 *  Other sequences and the last eval's outputs are untouched.
 *  Errors: HMT_E_INVAL (seq out of range, n_keep outside [0, n_past]). */
HMT_API HMT_NODISCARD int hmt_ctx_seq_rewind(hmt_ctx *ctx, int32_t seq, int32_t n_keep);
/** Make sequence dst a copy of sequence src (its cached positions and
 *  their K/V; dst's previous content is dropped): a shared prefix such as a
 *  system prompt is evaluated once and forked. Costs one copy of src's
 *  cached K/V. src == dst is a no-op. Errors: HMT_E_INVAL (out of range). */
HMT_API HMT_NODISCARD int hmt_ctx_seq_copy(hmt_ctx *ctx, int32_t src, int32_t dst);

/** Abort callback, polled between layers: a nonzero return stops the eval
 *  with HMT_E_ABORTED. NULL removes it. Called on the thread running eval.
 *  After an abort the context is as before the eval (n_past and the cached
 *  positions unchanged; the outputs of the previous eval are gone) and
 *  usable. The same type serves streams (hmt_stream_set_abort_callback) and
 *  datastore builds (hmt_knn_builder_set_abort_callback). */
typedef int (*hmt_abort_fn)(void *user_data);
HMT_API HMT_NODISCARD int hmt_ctx_set_abort_callback(hmt_ctx *ctx, hmt_abort_fn fn,
                                                     void *user_data);

/** Context state: save the context's cache (its n_past positions of every
 *  layer's K and V, as F32) and the outputs of its last successful eval
 *  (which rows had logits, hidden state, FFN input, and their values), so
 *  that a context restored from it returns the same hmt_ctx_logits /
 *  hmt_ctx_hidden / hmt_ctx_ffn_input and continues bit-identically (with
 *  the same n_batch, threads and compute type; n_ctx may differ). Only the
 *  positions in use are saved, not n_ctx. A state restores into any context
 *  of the same model whose n_ctx is at least the saved n_past (n_batch,
 *  threads and compute type may differ: the state is F32 values); the
 *  restored context has the saved n_past. Layout and guarantees:
 *  docs/API.md, "Context state".
 *  save: snprintf-style (HMT_E_BUFFER with *len_out = needed size; buf may
 *  be NULL when cap is 0). restore validates the whole state before changing
 *  anything (on any error the context is as before): HMT_E_FORMAT for a
 *  corrupt or truncated state (bad magic, version, checksum or sizes; a NaN
 *  or infinite number in the K/V cache or the outputs, the message naming
 *  the field and index), HMT_E_INVAL for one taken with another model or
 *  holding more positions than this context's n_ctx, HMT_E_NOMEM.
 *  After a restore, pointers from hmt_ctx_logits and friends follow the
 *  same rule as after an eval. save_file writes a temporary next to path
 *  and renames it over path once complete and synced: on failure (HMT_E_IO,
 *  with the system's reason) path is unchanged. restore_file reads regular
 *  files only (HMT_E_IO for a FIFO, folder or device) and none larger than
 *  this context's largest possible state (HMT_E_FORMAT). A context of
 *  several sequences (HMT_P_N_SEQ > 1) is saved sequence by sequence with
 *  hmt_ctx_seq_save: these four return HMT_E_INVAL for it. Since 0.2. */
HMT_API HMT_NODISCARD int hmt_ctx_save(const hmt_ctx *ctx, void *buf, size_t cap,
                                       size_t *len_out);
HMT_API HMT_NODISCARD int hmt_ctx_restore(hmt_ctx *ctx, const void *buf, size_t len);
HMT_API HMT_NODISCARD int hmt_ctx_save_file(const hmt_ctx *ctx, const char *path);
HMT_API HMT_NODISCARD int hmt_ctx_restore_file(hmt_ctx *ctx, const char *path);

/** The state of one sequence: its cached positions only (no outputs; the
 *  same format, with no output rows). seq_restore loads the cache of any
 *  state of the same model (a whole-context state's outputs are checked but
 *  not loaded) into sequence seq, which then continues bit-identically; the
 *  other sequences and the last eval's outputs are untouched. Errors as
 *  hmt_ctx_save / hmt_ctx_restore, plus HMT_E_INVAL for seq outside
 *  [0, HMT_P_N_SEQ). Since 0.2. */
HMT_API HMT_NODISCARD int hmt_ctx_seq_save(const hmt_ctx *ctx, int32_t seq, void *buf,
                                           size_t cap, size_t *len_out);
HMT_API HMT_NODISCARD int hmt_ctx_seq_restore(hmt_ctx *ctx, int32_t seq, const void *buf,
                                              size_t len);

#ifdef __cplusplus
}
#endif

#endif /* INCLUDE_HMT_CONTEXT_H */
