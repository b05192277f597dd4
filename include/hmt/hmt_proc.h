/*
 * libhmt — next-token processors: a chain of hooks between the model's logits
 * and the sampler (built-in DITTO sentence-repetition penalty, kNN-LM
 * interpolation in hmt_knn.h, and user callbacks). See docs/PROCESSORS.md.
 *
 *     hmt_chain *chain = NULL;
 *     hmt_proc *ditto = NULL;
 *     if (hmt_chain_create(&chain) != HMT_OK) { ... }
 *     if (hmt_proc_ditto_create(&ditto, model, params) != HMT_OK) { ... }
 *     if (hmt_chain_add(chain, ditto) != HMT_OK) { ... }  // chain owns ditto
 *     for (;;) {
 *         const float *logits = hmt_ctx_logits(ctx, -1);
 *         hmt_token t;
 *         if (hmt_chain_sample(chain, sampler, logits, n_vocab, NULL, 0, &t)) break;
 *         // t is accepted by the chain; feed it to the model next
 *     }
 *     hmt_chain_free(chain);  // frees ditto too
 *
 * The conventions of hmt.h hold (status codes, *out set to NULL on failure,
 * _free(NULL) is a no-op, messages in hmt_last_error_msg()). Threads: a
 * processor and a chain are used by one thread at a time; the library calls
 * a processor's callbacks only from the thread calling into its chain.
 * The header is self-contained C99 and compiles as C and as C++.
 */
#ifndef HMT_PROC_H
#define HMT_PROC_H

#include "hmt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * The processor interface (a vtable with user data)
 * ------------------------------------------------------------------------- */
/* New fields are only appended; the library reads a field only when
 * struct_size says the caller's struct contains it. */
typedef struct hmt_proc_i {
    uint32_t struct_size; /* sizeof(hmt_proc_i) as the caller compiled it; the
                             library reads only fields inside it              */
    const char *name;     /* for messages; may be NULL. Must outlive the proc */
    /* required: turn logits[n_vocab] (unnormalized log-probabilities) into new
       ones, in place. Entries may be set to -INFINITY (token forbidden); NaN
       and +INFINITY are rejected by the chain right after this processor
       (HMT_E_INVAL, the message names the processor and the entry).
       key: the kNN-LM key of the current position (n_key floats, the last
       block's normalized FFN input) or NULL (then n_key is 0).
       Return HMT_OK or a negative hmt_status (the chain stops and reports
       it; a positive return is reported as HMT_E_INVAL). */
    int (*apply)(void *user_data, float *logits, int32_t n_vocab, const float *key,
                 int32_t n_key);
    void (*accept)(void *user_data, hmt_token token); /* optional: the token chosen / fed next */
    void (*reset)(void *user_data);                   /* optional: a new document starts */
    void (*free_data)(void *user_data);               /* optional: the processor is freed */
} hmt_proc_i;

/** A processor instance: a copy of the vtable + user_data. */
typedef struct hmt_proc hmt_proc;

/** Create a processor from a vtable. The vtable is copied (iface need not
 *  outlive the call; iface->name must outlive the processor). user_data is
 *  borrowed until the processor is freed, when iface->free_data(user_data)
 *  is called if given (ownership of user_data passes to the processor only
 *  in that sense). Errors: HMT_E_INVAL (NULL out or iface, NULL apply,
 *  struct_size smaller than the fields up to apply), HMT_E_NOMEM. On failure
 *  *out is NULL and free_data is NOT called: user_data stays the caller's. */
HMT_API HMT_NODISCARD int hmt_proc_create(hmt_proc **out, const hmt_proc_i *iface,
                                          void *user_data);
/** Free a processor that no chain owns: calls free_data(user_data) if set.
 *  NULL is a no-op, and so is a processor owned by a chain (the chain frees
 *  it in hmt_chain_free). */
HMT_API void hmt_proc_free(hmt_proc *p);

/* ---------------------------------------------------------------------------
 * Chains: processors run in the order they were added
 * ------------------------------------------------------------------------- */
typedef struct hmt_chain hmt_chain;

/** Create an empty chain (which outputs the log-softmax of the logits).
 *  Errors: HMT_E_INVAL (NULL out), HMT_E_NOMEM. */
HMT_API HMT_NODISCARD int hmt_chain_create(hmt_chain **out);
/** Append p to the chain, which takes ownership of p, also on failure (p is
 *  then freed with hmt_proc_free before returning). A processor belongs to
 *  at most one chain, once. Errors: HMT_E_INVAL (NULL chain or p; p is freed
 *  if non-NULL), HMT_E_MISUSE (p already in a chain: p is left to its
 *  owner, nothing is freed), HMT_E_NOMEM (p freed). */
HMT_API HMT_NODISCARD int hmt_chain_add(hmt_chain *chain, hmt_proc *p);
/** Number of processors in the chain (0 for NULL). */
HMT_API int32_t hmt_chain_n_procs(const hmt_chain *chain);

/** Run every processor, in order, on a copy of logits[n_vocab] (not
 *  modified), then write the normalized log-probabilities of the final
 *  distribution into logprobs_out[n_vocab] (may alias logits). key/n_key are
 *  passed to each processor (NULL/0 when there is no key). The chain keeps
 *  the final distribution until the next apply: hmt_chain_accept uses it
 *  (DITTO's relative mode records the accepted token's probability).
 *  Non-finite logits, one rule for the input and after every processor (the
 *  sampler's too, hmt_sampler_sample): -inf bans a token, NaN and +inf are
 *  refused, and so is a distribution with every token banned.
 *  Errors: HMT_E_INVAL (NULL argument, n_vocab <= 0, n_key < 0, key NULL with
 *  n_key > 0, a NaN/+inf input logit or one written by a processor: the
 *  message says which, all tokens -inf), or the
 *  first processor's error (the later processors are not run; the message
 *  names the processor). logprobs_out is unspecified on failure. */
HMT_API HMT_NODISCARD int hmt_chain_apply(hmt_chain *chain, const float *logits,
                                          int32_t n_vocab, const float *key, int32_t n_key,
                                          float *logprobs_out);
/** Tell every processor that token is the next token of the sequence (the
 *  one sampled, or the prompt/ground-truth token fed). Call once per token
 *  in order, after hmt_chain_apply for that position when there was one.
 *  Errors: HMT_E_INVAL (NULL chain, token < 0). */
HMT_API HMT_NODISCARD int hmt_chain_accept(hmt_chain *chain, hmt_token token);
/** A new document starts: every processor forgets its history. NULL no-op. */
HMT_API void hmt_chain_reset(hmt_chain *chain);
/** Free the chain and every processor it owns. NULL is a no-op. */
HMT_API void hmt_chain_free(hmt_chain *chain);

/** hmt_chain_apply, then draw a token from the final distribution with
 *  sampler (its top-k, temperature, top-p and RNG apply to the processed
 *  log-probabilities; temperature 0 = argmax), then hmt_chain_accept it.
 *  Errors: those of apply; HMT_E_NOMEM. *out is unchanged on failure. */
HMT_API HMT_NODISCARD int hmt_chain_sample(hmt_chain *chain, hmt_sampler *sampler,
                                           const float *logits, int32_t n_vocab,
                                           const float *key, int32_t n_key, hmt_token *out);

/* ---------------------------------------------------------------------------
 * Built-in: the DITTO sentence-repetition penalty (docs/PROCESSORS.md)
 * ------------------------------------------------------------------------- */
/** Create a DITTO processor for model's vocabulary (the model is only read
 *  during the call; no reference is kept). Keys used: HMT_P_DITTO_LAMBDA,
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

#ifdef __cplusplus
}
#endif

#endif /* HMT_PROC_H */
