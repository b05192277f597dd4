/*
 * libhmt — kNN-LM datastores (Khandelwal et al., ICLR 2020; docs/KNN.md).
 *
 * A datastore maps keys (the last block's feed-forward input after its norm,
 * n_embd floats, one per position of a training text) to values (the token
 * that followed that position). At inference, the key of the current position
 * retrieves its k nearest stored keys by squared L2 distance, their values
 * form a distribution p_kNN, and the next-token distribution becomes
 * p = λ·p_kNN + (1−λ)·p_LM.
 *
 * Walkthrough
 * -----------
 *     // build: run the model over a token stream, write the file
 *     hmt_knn_builder *b = NULL;
 *     hmt_knn_builder_create(&b, model, "wiki.knn", NULL);
 *     hmt_knn_builder_add_ctx(b, ctx, tokens, n_tokens, NULL, NULL);
 *     hmt_knn_builder_finish(b);
 *     hmt_knn_builder_free(b);
 *
 *     // use: load (mmap + validation), then a processor for a sampler, or
 *     // hmt_knn_interpolate() directly when scoring a text
 *     hmt_knn *knn = NULL;
 *     hmt_knn_load(&knn, model, "wiki.knn", NULL);
 *     hmt_proc *p = NULL;
 *     hmt_proc_knn_create(&p, knn, params);   // HMT_P_KNN_* keys
 *     ...
 *     hmt_sampler_add(sampler, p);             // the sampler retains p
 *     hmt_proc_free(p);                        // any order: every handle that
 *     hmt_knn_free(knn);                       // needs another retains it
 *
 * Conventions are those of <hmt/hmt.h>. A loaded hmt_knn is immutable: any number
 * of threads may search it at once. Failures are reported through the status
 * code and hmt_last_error_msg() (a datastore is shared, so it keeps no
 * message of its own). A builder is used by one thread at a time.
 *
 * Search is exact by default. Datastores that outgrow exact search can get
 * an approximate FAISS IVF-PQ index (experimental, <hmt/experimental.h>;
 * optional at build time: see hmt_knn_faiss_available), built once into a file beside the datastore and
 * attached after loading; the distances returned are still the exact ones.
 */
#ifndef INCLUDE_HMT_KNN_H
#define INCLUDE_HMT_KNN_H

#include "sampler.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hmt_knn hmt_knn;
typedef struct hmt_knn_builder hmt_knn_builder;

/* Key storage types of a datastore file (hmt_knn_key_dtype). */
typedef enum hmt_knn_dtype {
    HMT_KNN_F32 = 0,
    HMT_KNN_F16 = 1
} hmt_knn_dtype;

/* Progress of a long build: done out of total tokens of the current call.
 * Called on the building thread after each chunk; a nonzero return stops
 * the call with HMT_E_ABORTED (keys added so far stay in the builder). */
typedef int (*hmt_knn_progress_fn)(void *user_data, int64_t done, int64_t total);

/* ---------------------------------------------------------------------------
 * Building a datastore file
 * ------------------------------------------------------------------------- */

/** Start a datastore for model, written to path. Keys are n_embd floats;
 *  params key: HMT_P_KNN_KEY_F16 (store keys as F16; default F32).
 *  Keys stream to a temporary "<path>.tmp-XXXXXX" (unique: two builds to one
 *  path never share it) as they are added (values are kept in memory,
 *  4 bytes each); hmt_knn_builder_finish() completes that file and renames
 *  it to path, so path never holds a partial datastore and a failed build
 *  leaves the file already there untouched. The builder records
 *  the model's fingerprint but keeps no reference to the model.
 *  Errors: HMT_E_INVAL (NULL argument), HMT_E_IO (cannot create the file),
 *  HMT_E_NOMEM. */
HMT_API HMT_NODISCARD int hmt_knn_builder_create(hmt_knn_builder **out, const hmt_model *model,
                                                 const char *path, const hmt_params *params);

/** Free a builder (NULL is a no-op). An unfinished build's temporary file is
 *  removed. */
HMT_API void hmt_knn_builder_free(hmt_knn_builder *builder);

/** Append n (key, value) pairs: keys is row-major n × n_embd, values are
 *  token ids in [0, n_vocab). Nothing is appended on error.
 *  Errors: HMT_E_INVAL (NULL with n > 0, a non-finite key), HMT_E_TOKEN
 *  (a value out of range), HMT_E_MISUSE (already finished), HMT_E_IO,
 *  HMT_E_NOMEM. */
HMT_API HMT_NODISCARD int hmt_knn_builder_add(hmt_knn_builder *builder, const float *keys,
                                              const hmt_token *values, size_t n);

/** Run ctx over n tokens and append the pair (key of position t, token t+1)
 *  for every t < n−1. The text is cut into windows of hmt_ctx_n_ctx(ctx)
 *  tokens; the KV cache is cleared before each window (the context's
 *  previous contents are lost), so a key sees at most n_ctx tokens, all of
 *  them from its own window. Each window is evaluated in chunks of the
 *  context's batch size with HMT_OUT_FFN_INPUT; tokens are read in place,
 *  never copied. progress (may be NULL) is called after each chunk.
 *  ctx must belong to the builder's model (HMT_E_INVAL otherwise).
 *  Errors: those of hmt_ctx_eval and hmt_knn_builder_add; HMT_E_ABORTED. */
HMT_API HMT_NODISCARD int hmt_knn_builder_add_ctx(hmt_knn_builder *builder, hmt_ctx *ctx,
                                                  const hmt_token *tokens, size_t n,
                                                  hmt_knn_progress_fn progress,
                                                  void *user_data);

/** The same through an HMT stream (the keys then carry HMT's memory): the
 *  tokens are fed in chunks with HMT_P_KEEP_FFN_INPUT and HMT_P_ALL_LOGITS
 *  set on the stream for the call (the caller's values are restored before
 *  it returns), the stream is flushed at the end, and every stream index
 *  i made ready whose next token is among these n tokens gives the pair
 *  (hmt_stream_ffn_input(i), token i+1). Use a fresh stream per document.
 *  Errors: those of hmt_stream_feed/flush and hmt_knn_builder_add. */
HMT_API HMT_NODISCARD int hmt_knn_builder_add_stream(hmt_knn_builder *builder,
                                                     hmt_stream *stream,
                                                     const hmt_token *tokens, size_t n,
                                                     hmt_knn_progress_fn progress,
                                                     void *user_data);

/** Abort callback of a build, polled between the layers of every forward
 *  pass that hmt_knn_builder_add_ctx / _add_stream run (besides the
 *  context's or stream's own abort callback, which is polled too) and
 *  between their chunks: a nonzero return stops the call with
 *  HMT_E_ABORTED. NULL removes it. Called on the building thread. After an
 *  abort the builder keeps the pairs added so far and stays usable (add
 *  more, or finish with what it has); the context of add_ctx is usable (its
 *  KV cache holds part of the text); the stream of add_stream is unusable
 *  until restored (hmt_stream_set_abort_callback). */
HMT_API HMT_NODISCARD int hmt_knn_builder_set_abort_callback(hmt_knn_builder *builder,
                                                             hmt_abort_fn fn, void *user_data);

/** Pairs appended so far. */
HMT_API int64_t hmt_knn_builder_count(const hmt_knn_builder *builder);

/** Write the values and the header, sync, and rename the file to its final
 *  path (then sync its folder). Afterwards the builder only accepts hmt_knn_builder_free().
 *  Errors: HMT_E_MISUSE (finished twice, or no pair was added), HMT_E_IO. */
HMT_API HMT_NODISCARD int hmt_knn_builder_finish(hmt_knn_builder *builder);

/* ---------------------------------------------------------------------------
 * Loading and searching
 * ------------------------------------------------------------------------- */

/** Memory-map a datastore file and validate it completely: magic, version,
 *  header checksum, key width = n_embd of model, dtypes, the section offsets
 *  and sizes against the file size (with overflow checks), every value in
 *  [0, n_vocab), every key finite; the squared norms of the keys are
 *  computed here. params key: HMT_P_N_THREADS (search threads; HMT_AUTO =
 *  one per online CPU). The datastore keeps no reference to model.
 *  Errors: HMT_E_INVAL (NULL argument; a file built for another model: the
 *  message says so), HMT_E_IO, HMT_E_FORMAT (the message names the field),
 *  HMT_E_UNSUPPORTED (a newer version), HMT_E_NOMEM. */
HMT_API HMT_NODISCARD int hmt_knn_load(hmt_knn **out, const hmt_model *model, const char *path,
                                       const hmt_params *params);

/** Run this datastore's searches on tp from now on, holding a reference to
 *  it (NULL: the process's shared pool). Like hmt_knn_faiss_attach, call it
 *  before the datastore is shared: HMT_E_MISUSE while another call uses it. */
HMT_API HMT_NODISCARD int hmt_knn_attach_threadpool(hmt_knn *knn, hmt_threadpool *tp);

/** Release the caller's reference (NULL is a no-op). kNN processors hold
 *  their own reference, so the datastore is unmapped and freed when the last
 *  of them is freed; the caller must not use knn after this call. */
HMT_API void hmt_knn_free(hmt_knn *knn);

/** Shape queries (0 for NULL). Thread-safe. */
HMT_API int64_t hmt_knn_count(const hmt_knn *knn);
HMT_API int32_t hmt_knn_dim(const hmt_knn *knn);
HMT_API int32_t hmt_knn_n_vocab(const hmt_knn *knn);
HMT_API hmt_knn_dtype hmt_knn_key_dtype(const hmt_knn *knn);
/** Bytes held per stored key: key + value + its precomputed norm. */
HMT_API double hmt_knn_bytes_per_key(const hmt_knn *knn);

/** Copy stored entry i: its key as F32 (dim floats, cap >= dim) and value;
 *  either output may be NULL. Errors: HMT_E_INVAL (i out of range),
 *  HMT_E_BUFFER (cap too small). */
HMT_API HMT_NODISCARD int hmt_knn_copy_entry(const hmt_knn *knn, int64_t i, float *key,
                                             size_t cap, hmt_token *value);

/** Exact k-nearest-neighbour search by squared L2 distance (with a FAISS
 *  index attached: approximate candidates, exact distances — see
 *  hmt_knn_faiss_attach in <hmt/experimental.h>) for n_queries
 *  queries (row-major n_queries × dim). For query q, dist_out[q*k + j],
 *  idx_out[q*k + j] and values_out[q*k + j] (j < k) receive the distance,
 *  index and value of the j-th nearest stored key, nearest first, ties
 *  broken by the lower index; with k > count the slots past count get
 *  idx −1, value −1 and distance +inf. Candidates are selected with
 *  ‖q‖² − 2q·k + ‖k‖² from libxsmm GEMMs (batches of queries) with a bounded
 *  heap per query, keeping a margin of extra candidates; their distances are
 *  then recomputed directly as Σ(q−k)² in double (differences first, so
 *  without the cancellation of the GEMM form), which fixes the order and the
 *  returned values (docs/KNN.md: when the set can differ from brute force).
 *  Any output may be NULL. Runs on the datastore's threads; concurrent
 *  calls are safe (a call that finds them busy runs on its own
 *  thread). Errors: HMT_E_INVAL (NULL, k < 1, n_queries = 0, a non-finite
 *  query), HMT_E_NOMEM. */
HMT_API HMT_NODISCARD int hmt_knn_search(const hmt_knn *knn, const float *queries,
                                         size_t n_queries, int32_t k, float *dist_out,
                                         int64_t *idx_out, hmt_token *values_out);

/* ---------------------------------------------------------------------------
 * The kNN-LM distribution and interpolation (docs/KNN.md)
 * ------------------------------------------------------------------------- */
/* With neighbours (d_i, v_i), i < k, and the LM's logits:
 *   p_kNN(v) = Σ_{i: v_i = v} softmax(−d/τ)_i            τ = HMT_P_KNN_TEMPERATURE
 *   p(v)     = λ·p_kNN(v) + (1−λ)·p_LM(v)                 in log space (logsumexp)
 * λ per position (experimental HMT_P_KNN_LAMBDA_MODE; λ0 = HMT_P_KNN_LAMBDA):
 *   0 fixed:        λ = λ0                      (default: the original kNN-LM)
 *   1 entropy_gap:  λ = clip(λ0·σ(β(H_LM − H_kNN) + b)/σ(b), 0, λ_max)
 *   2 entropy_norm: λ = clip(λ0·clip(1 − H_kNN/log k_eff, 0, 1), 0, λ_max),
 *                   k_eff = distinct retrieved tokens (1 − … := 1 when k_eff = 1)
 * Outputs are log-probabilities; a token gets −inf only when λ = 1 and no
 * neighbour has it. */

/** The interpolation for n positions at once (scoring a text): keys is
 *  row-major n × dim (hmt_ctx_ffn_input of each position), logits n ×
 *  n_vocab, logprobs_out n × n_vocab (may alias logits). lambda_out (n
 *  floats, may be NULL) receives the λ used per position. params keys
 *  (read once per call; NULL = defaults): HMT_P_KNN_K, HMT_P_KNN_LAMBDA,
 *  HMT_P_KNN_TEMPERATURE and the experimental HMT_P_KNN_LAMBDA_MODE,
 *  HMT_P_KNN_BETA, HMT_P_KNN_BIAS, HMT_P_KNN_LAMBDA_MAX. The search is
 *  batched.
 *  Errors: HMT_E_INVAL (NULL, n = 0, n_vocab differs from the datastore's,
 *  non-finite keys, a NaN or +inf logit or a row of -inf only: the sampler's
 *  rule, <hmt/sampler.h>), HMT_E_NOMEM. Thread-safe. */
HMT_API HMT_NODISCARD int hmt_knn_interpolate(const hmt_knn *knn, const hmt_params *params,
                                              const float *keys, size_t n,
                                              const float *logits, int32_t n_vocab,
                                              float *logprobs_out, float *lambda_out);

/** The same math from given neighbours (no datastore): n_neighbors distances
 *  and values (as returned by hmt_knn_search plus the stored values, or from
 *  another index); neighbours with value −1 are ignored. Same params keys
 *  except HMT_P_KNN_K. For one position; logprobs_out may alias logits.
 *  Errors: HMT_E_INVAL (NULL, n_vocab < 1, a NaN or +inf logit or only
 *  -inf ones), HMT_E_TOKEN (a value >= n_vocab), HMT_E_NOMEM. Thread-safe. */
HMT_API HMT_NODISCARD int hmt_knn_interpolate_neighbors(const hmt_params *params,
                                                        const float *dists,
                                                        const hmt_token *values,
                                                        int32_t n_neighbors,
                                                        const float *logits, int32_t n_vocab,
                                                        float *logprobs_out, float *lambda_out);

/* ---------------------------------------------------------------------------
 * The kNN-LM processor for a sampler (<hmt/sampler.h>)
 * ------------------------------------------------------------------------- */
/** A processor that replaces the logits of the current position with the
 *  interpolated log-probabilities above. The HMT_P_KNN_* keys of params are
 *  read once, here. Its apply needs the key of the current position (the
 *  sampler passes hmt_ctx_ffn_input / hmt_stream_ffn_input): without one it
 *  fails with HMT_E_MISUSE, with a key of the wrong width or logits of the
 *  wrong vocabulary with HMT_E_INVAL. It implements prepare: the keys given
 *  to hmt_sampler_prepare are searched in one batch, and each later apply
 *  whose key equals the next prepared one uses its neighbours (any other key
 *  is searched alone). The processor holds a reference to knn (free them in
 *  any order); it owns its scratch, so it is used by one thread at a time
 *  (like its sampler). Errors: HMT_E_INVAL (NULL), HMT_E_NOMEM. */
HMT_API HMT_NODISCARD int hmt_proc_knn_create(hmt_proc **out, hmt_knn *knn,
                                              const hmt_params *params);

#ifdef __cplusplus
}
#endif

#endif /* INCLUDE_HMT_KNN_H */
