/*
 * libhmt — samplers: next-token processors run in order, then a draw.
 * Part of <hmt/hmt.h>; self-contained C99, compiles as C and as C++.
 * See docs/PROCESSORS.md.
 *
 * A sampler turns a position's logits into a token: its processors run in
 * the order they were added (the built-in DITTO sentence-repetition penalty,
 * kNN-LM interpolation from <hmt/knn.h>, llama.cpp's min-p, typical,
 * penalties and logit bias, user callbacks), then top-k,
 * temperature, top-p and a seeded draw pick the token, and every processor
 * is told the token chosen. A sampler without processors is a plain
 * sampler; hmt_sampler_apply alone gives the processed distribution for
 * scoring.
 *
 *     hmt_sampler *smpl = NULL;
 *     hmt_proc *ditto = NULL;
 *     if (hmt_sampler_create(&smpl, params) != HMT_OK) { ... }
 *     if (hmt_proc_ditto_create(&ditto, model, NULL) != HMT_OK) { ... }
 *     if (hmt_sampler_add(smpl, ditto) != HMT_OK) { ... }  // smpl retains ditto
 *     hmt_proc_free(ditto);                                // any time: ours only
 *     for (;;) {
 *         hmt_token t;
 *         if (hmt_sampler_sample_ctx(smpl, ctx, -1, &t) != HMT_OK) break;
 *         // t is accepted by the processors; evaluate it next
 *     }
 *     hmt_sampler_free(smpl);
 *
 * Threads: a sampler and a processor are used by one thread at a time; the
 * library calls a processor's callbacks only from the thread calling into
 * its sampler.
 */
#ifndef INCLUDE_HMT_SAMPLER_H
#define INCLUDE_HMT_SAMPLER_H

#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Processors: a vtable with user data
 * ------------------------------------------------------------------------- */
/* New fields are only appended; the library reads a field only when
 * struct_size says the caller's struct contains it. */
typedef struct hmt_proc_i {
    uint32_t struct_size; /* sizeof(hmt_proc_i) as the caller compiled it; the
                             library reads only fields inside it              */
    const char *name;     /* for messages; may be NULL. Must outlive the proc */
    /* required: turn logits[n_vocab] (unnormalized log-probabilities) into new
       ones, in place. Entries may be set to -INFINITY (token forbidden); NaN
       and +INFINITY are rejected by the sampler right after this processor
       (HMT_E_INVAL, the message names the processor and the entry).
       key: the kNN-LM key of the current position (n_key floats, the last
       block's normalized FFN input) or NULL (then n_key is 0).
       Return HMT_OK or a negative hmt_status (the sampler stops and reports
       it; a positive return is reported as HMT_E_INVAL). */
    int (*apply)(void *user_data, float *logits, int32_t n_vocab, const float *key,
                 int32_t n_key);
    void (*accept)(void *user_data, hmt_token token); /* optional: the token chosen / fed next */
    void (*reset)(void *user_data);                   /* optional: a new document starts */
    void (*free_data)(void *user_data);               /* optional: the processor is freed */
    /* optional (since 0.2): the keys of the next n positions (row-major
       n × n_key), given before their apply calls by hmt_sampler_prepare, so
       that work can be done for all of them at once (the kNN processor
       searches them in one batch). apply must still work without it. */
    int (*prepare)(void *user_data, const float *keys, size_t n, int32_t n_key);
} hmt_proc_i;

/** A processor instance: a copy of the vtable + user_data; reference
 *  counted (a sampler it is added to holds a reference). */
typedef struct hmt_proc hmt_proc;

/** Create a processor from a vtable. The vtable is copied (iface need not
 *  outlive the call; iface->name must outlive the processor). user_data is
 *  borrowed until the processor is destroyed, when iface->free_data(user_data)
 *  is called if given. Errors: HMT_E_INVAL (NULL out or iface, NULL apply,
 *  struct_size smaller than the fields up to apply), HMT_E_NOMEM. On failure
 *  *out is NULL and free_data is NOT called: user_data stays the caller's. */
HMT_API HMT_NODISCARD int hmt_proc_create(hmt_proc **out, const hmt_proc_i *iface,
                                          void *user_data);
/** Release the caller's reference (NULL is a no-op). The processor is
 *  destroyed (free_data called) when the sampler holding it is freed too. */
HMT_API void hmt_proc_free(hmt_proc *p);

/* ---------------------------------------------------------------------------
 * Samplers
 * ------------------------------------------------------------------------- */
typedef struct hmt_sampler hmt_sampler;

/** Create a sampler without processors. params keys: HMT_P_TEMPERATURE,
 *  HMT_P_TOP_K, HMT_P_TOP_P, HMT_P_SEED. The same seed, processors and
 *  logits give the same tokens on every run. */
HMT_API HMT_NODISCARD int hmt_sampler_create(hmt_sampler **out, const hmt_params *params);
/** Free a sampler and release its processors (NULL is a no-op). */
HMT_API void hmt_sampler_free(hmt_sampler *sampler);
/** Append p to the processors, holding a reference to it. A processor
 *  belongs to at most one sampler, once (it keeps per-document history).
 *  Errors: HMT_E_INVAL (NULL), HMT_E_MISUSE (p already in a sampler),
 *  HMT_E_NOMEM; nothing changes on failure. */
HMT_API HMT_NODISCARD int hmt_sampler_add(hmt_sampler *sampler, hmt_proc *p);
/** Number of processors (0 for NULL). */
HMT_API int32_t hmt_sampler_n_procs(const hmt_sampler *sampler);

/** Run every processor, in order, on a copy of logits[n_vocab] (not
 *  modified), then write the normalized log-probabilities of the final
 *  distribution into logprobs_out[n_vocab] (may alias logits). key/n_key are
 *  passed to each processor (NULL/0 when there is no key). The sampler keeps
 *  the final distribution until the next apply: hmt_sampler_accept uses it
 *  (DITTO's relative mode records the accepted token's probability).
 *  Non-finite logits, one rule for the input and after every processor:
 *  -inf bans a token, NaN and +inf are refused, and so is a distribution
 *  with every token banned.
 *  Errors: HMT_E_INVAL (NULL argument, n_vocab <= 0, n_key < 0, key NULL with
 *  n_key > 0, a NaN/+inf input logit or one written by a processor: the
 *  message says which, all tokens -inf), or the first processor's error (the
 *  later processors are not run; the message names the processor).
 *  logprobs_out is unspecified on failure. */
HMT_API HMT_NODISCARD int hmt_sampler_apply(hmt_sampler *sampler, const float *logits,
                                            int32_t n_vocab, const float *key, int32_t n_key,
                                            float *logprobs_out);
/** Tell every processor that token is the next token of the sequence (the
 *  one sampled, or the prompt/ground-truth token fed). Call once per token
 *  in order, after hmt_sampler_apply for that position when there was one.
 *  The sample functions below accept the token they return themselves.
 *  Errors: HMT_E_INVAL (NULL sampler, token < 0). */
HMT_API HMT_NODISCARD int hmt_sampler_accept(hmt_sampler *sampler, hmt_token token);
/** The keys of the next n positions to be applied, in order (row-major
 *  n × n_key): processors that can, work ahead on all of them at once (the
 *  kNN processor searches them in one batch, several times faster than one
 *  query per apply). Optional; the results are the same without it.
 *  Errors: HMT_E_INVAL (NULL, n = 0, n_key <= 0), a processor's error. */
HMT_API HMT_NODISCARD int hmt_sampler_prepare(hmt_sampler *sampler, const float *keys,
                                              size_t n, int32_t n_key);
/** A new document starts: every processor forgets its history. NULL no-op. */
HMT_API void hmt_sampler_reset(hmt_sampler *sampler);
/** Restart the RNG from seed. */
HMT_API void hmt_sampler_reseed(hmt_sampler *sampler, uint64_t seed);

/** Draw a token from n_vocab logits (not modified): hmt_sampler_apply
 *  without a key, then top-k, temperature softmax, top-p and a draw on the
 *  processed log-probabilities (temperature 0 is argmax, lowest id on
 *  ties), then hmt_sampler_accept of the token. -inf bans a token at any
 *  temperature. Errors: those of apply; HMT_E_NOMEM. *out is unchanged on
 *  failure. */
HMT_API HMT_NODISCARD int hmt_sampler_sample(hmt_sampler *sampler, const float *logits,
                                             int32_t n_vocab, hmt_token *out);
/** The same for batch row i of ctx's last eval (-1 = its last row): its
 *  logits, and its kNN-LM key (hmt_ctx_ffn_input) when it was kept.
 *  Errors: as hmt_sampler_sample; HMT_E_INVAL when the row has no logits. */
HMT_API HMT_NODISCARD int hmt_sampler_sample_ctx(hmt_sampler *sampler, const hmt_ctx *ctx,
                                                 int32_t i, hmt_token *out);
/** The same for a ready index of stream (hmt_stream_logits, and
 *  hmt_stream_ffn_input when HMT_P_KEEP_FFN_INPUT is on). */
HMT_API HMT_NODISCARD int hmt_sampler_sample_stream(hmt_sampler *sampler,
                                                    const hmt_stream *stream, int64_t index,
                                                    hmt_token *out);

/* ---------------------------------------------------------------------------
 * Built-in: the DITTO sentence-repetition penalty (docs/PROCESSORS.md)
 * ------------------------------------------------------------------------- */
/** Create a DITTO processor for model's vocabulary (the model is only read
 *  during the call; no reference is kept). params keys: HMT_P_DITTO_LAMBDA,
 *  _MODE, _SCOPE, _WINDOW, _MIN_SENTENCE, _MIN_MATCH, _RENORM.
 *  Delimiters default to every token whose detokenized text ends in "."
 *  (control tokens excluded). model may be NULL: then there are no
 *  delimiters until hmt_proc_ditto_set_delimiters, and token ids are not
 *  bounded by a vocabulary. apply() fails with HMT_E_INVAL when n_vocab
 *  differs from the model's. The processor feeds on accept(): it penalises
 *  nothing until tokens are accepted. Errors: HMT_E_INVAL, HMT_E_NOMEM. */
HMT_API HMT_NODISCARD int hmt_proc_ditto_create(hmt_proc **out, const hmt_model *model,
                                                const hmt_params *params);
/** Replace the delimiter set of a DITTO processor with ids[0..n) (n = 0: no
 *  sentence ever ends). Resets its history. Errors: HMT_E_INVAL (p is not a
 *  DITTO processor, ids NULL with n > 0, an id < 0 or >= the model's
 *  n_vocab), HMT_E_NOMEM (the old set is kept). */
HMT_API HMT_NODISCARD int hmt_proc_ditto_set_delimiters(hmt_proc *p, const hmt_token *ids,
                                                        size_t n);

/* ---------------------------------------------------------------------------
 * Built-in: llama.cpp's common samplers as processors (docs/PROCESSORS.md)
 *
 * Each has llama.cpp's definition (src/llama-sampling.cpp); a token a
 * filter removes is set to -inf. They run where they are added, before the
 * sampler's own top-k, temperature, top-p and seeded draw (the "dist"
 * sampler of llama.cpp is hmt_sampler_sample with temperature 1, top_k 0,
 * top_p 1). llama.cpp's usual order is logit bias, penalties, then the
 * filters: add them in that order. None holds a reference to anything.
 * ------------------------------------------------------------------------- */
/** Min-p: keep the tokens whose probability is at least p times the largest
 *  one (logit >= max logit + ln p), and at least HMT_P_MIN_KEEP tokens (the
 *  highest; ties by the lower id). p = 0 changes nothing. params keys:
 *  HMT_P_MIN_P, HMT_P_MIN_KEEP. Errors: HMT_E_INVAL (NULL out, another key
 *  set), HMT_E_NOMEM. Since 0.2. */
HMT_API HMT_NODISCARD int hmt_proc_min_p_create(hmt_proc **out, const hmt_params *params);
/** Locally typical sampling: with H the entropy of the distribution, keep
 *  the tokens closest to it in |-ln p - H| (ties by the lower id) until
 *  their mass exceeds HMT_P_TYPICAL_P, and at least HMT_P_MIN_KEEP of them.
 *  p = 1 changes nothing. params keys: HMT_P_TYPICAL_P, HMT_P_MIN_KEEP.
 *  Errors: HMT_E_INVAL, HMT_E_NOMEM. Since 0.2. */
HMT_API HMT_NODISCARD int hmt_proc_typical_create(hmt_proc **out, const hmt_params *params);
/** Repetition, frequency and presence penalties over the last
 *  HMT_P_PENALTY_LAST_N accepted tokens (hmt_sampler_accept, or a sample
 *  function): a token seen c > 0 times there has its logit divided by the
 *  repeat penalty when positive, multiplied by it otherwise, then lowered by
 *  c * frequency + presence. Reset forgets the tokens. params keys:
 *  HMT_P_PENALTY_LAST_N, HMT_P_REPEAT_PENALTY, HMT_P_FREQUENCY_PENALTY,
 *  HMT_P_PRESENCE_PENALTY. apply fails with HMT_E_INVAL when a logit
 *  overflows. Errors: HMT_E_INVAL, HMT_E_NOMEM. Since 0.2. */
HMT_API HMT_NODISCARD int hmt_proc_penalties_create(hmt_proc **out, const hmt_params *params);
/** Logit bias: biases[i] is added to the logit of tokens[i], for i < n
 *  (a token listed twice gets both; -INFINITY bans it). The arrays are
 *  copied. model may be NULL; with it, ids are checked against its
 *  vocabulary here and apply refuses another n_vocab; without it, apply
 *  refuses an id >= n_vocab. Errors: HMT_E_INVAL (NULL out, tokens or
 *  biases NULL with n > 0, an id < 0 or outside the model's vocabulary, a
 *  NaN or +inf bias), HMT_E_NOMEM. Since 0.2. */
HMT_API HMT_NODISCARD int hmt_proc_logit_bias_create(hmt_proc **out, const hmt_model *model,
                                                     const hmt_token *tokens,
                                                     const float *biases, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* INCLUDE_HMT_SAMPLER_H */
