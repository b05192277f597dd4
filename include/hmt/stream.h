/*
 * libhmt — HMT adapters and document streams (docs/HMT.md).
 * Part of <hmt/hmt.h>; self-contained C99, compiles as C and as C++.
 */
#ifndef INCLUDE_HMT_STREAM_H
#define INCLUDE_HMT_STREAM_H

#include "context.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Modes, compared through one API. */
typedef enum hmt_mode {
    HMT_MODE_FULL = 0,     /* HMT: summary pass, recall, memory passing    */
    HMT_MODE_RMT = 1,      /* memory passing without recall (P_n = M_n-1)  */
    HMT_MODE_SEGMENTS = 2, /* plain backbone, segment by segment, no memory */
    HMT_MODE_WINDOW = 3,   /* plain backbone, sliding window of HMT_P_WINDOW */
    HMT_MODE_SINKS = 4     /* plain backbone, attention sinks (StreamingLLM):
                              the first HMT_P_SINKS tokens' KV plus the most
                              recent ones, HMT_P_WINDOW slots in all; positions
                              are slot indices (docs/HMT.md, "Sinks")        */
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
 *  HMT_P_SENSORY_LENGTH, HMT_P_CACHE_SIZE, HMT_P_RECALL_BF16 (experimental),
 *  HMT_P_SUMMARY_LENGTH, HMT_P_GEN_SUMMARY_LENGTH, HMT_P_RECALL_DIM. */
HMT_API HMT_NODISCARD int hmt_adapter_get(const hmt_adapter *adapter, hmt_param key,
                                          double *out);

typedef struct hmt_stream hmt_stream;

/** Create a document stream. adapter may be NULL for HMT_MODE_SEGMENTS,
 *  HMT_MODE_WINDOW and HMT_MODE_SINKS (then HMT_P_SEGMENT_LENGTH must be set
 *  for SEGMENTS; WINDOW and SINKS ignore an adapter). SINKS needs
 *  HMT_P_SINKS < HMT_P_WINDOW (HMT_E_INVAL otherwise).
 *  params keys: the stream keys (200…), HMT_P_N_BATCH, HMT_P_N_THREADS,
 *  HMT_P_COMPUTE_TYPE, and the experimental HMT_P_RECALL_BF16 (another key
 *  set on params: HMT_E_INVAL naming it). The stream holds references to
 *  model and adapter.
 *  Errors: HMT_E_INVAL (bad combination: the message says which),
 *  HMT_E_NOMEM. */
HMT_API HMT_NODISCARD int hmt_stream_create(hmt_stream **out, hmt_model *model,
                                            hmt_adapter *adapter,
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
/** One token for each of n streams (1 ≤ n ≤ 256, distinct, one model):
 *  the same as hmt_stream_feed(streams[i], &tokens[i], 1) for each i, but
 *  the streams whose token is one backbone row (a token inside an open
 *  segment, or into a window or sink cache with room) are evaluated
 *  together, at most 16 per pass over the weights, when they share n_ctx,
 *  KV type and compute type: the decode steps of many generating streams
 *  read each weight once per pass. A token that starts a segment, or needs
 *  a refill or shift, is fed to its stream alone. Each stream's outputs are
 *  those of a one-token hmt_stream_feed (bit for bit on F16, BF16 and
 *  block-quantized weights; F32 weights sum in another order). The first
 *  stream of each pass lends its thread pool and abort callback to it.
 *  Errors: every argument, handle, model and token is checked before any
 *  stream changes (HMT_E_INVAL, HMT_E_MISUSE, HMT_E_TOKEN); a later
 *  failure names the stream; streams fed before it keep their token
 *  (hmt_stream_n_fed tells), the failing one is as after a failed
 *  hmt_stream_feed or, when a batched pass failed, unchanged. Since 0.2. */
HMT_API HMT_NODISCARD int hmt_streams_feed(hmt_stream *const *streams, int32_t n,
                                           const hmt_token *tokens);
/** Make every fed token ready: under the lookahead rule, a segment with fewer
 *  than j tokens is summarized from those present (end of a text, or the
 *  switch to generation). No-op when nothing is pending. */
HMT_API HMT_NODISCARD int hmt_stream_flush(hmt_stream *stream);

/** Run this stream's work on tp from now on, holding a reference to it
 *  (NULL: the process's shared pool); as hmt_ctx_attach_threadpool. */
HMT_API HMT_NODISCARD int hmt_stream_attach_threadpool(hmt_stream *stream, hmt_threadpool *tp);

/** The model this stream runs (borrowed: valid while the stream lives). */
HMT_API const hmt_model *hmt_stream_model(const hmt_stream *stream);

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

#ifdef __cplusplus
}
#endif

#endif /* INCLUDE_HMT_STREAM_H */
