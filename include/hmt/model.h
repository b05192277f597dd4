/*
 * libhmt — models (GGUF files) and their tokenizers.
 * Part of <hmt/hmt.h>; self-contained C99, compiles as C and as C++.
 */
#ifndef INCLUDE_HMT_MODEL_H
#define INCLUDE_HMT_MODEL_H

#include "threadpool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t hmt_token;
typedef struct hmt_model hmt_model;

/** Load a model from a GGUF file (architectures llama and qwen2).
 *  The file is memory-mapped and validated completely before use; F16, BF16
 *  and block-quantized weights (docs/MODELS.md) are computed on in the
 *  mapping, F32 ones packed into panels at load (docs/API.md, memory).
 *  params: NULL, or a params object with no key set (models have no keys
 *  yet: a set key is refused with HMT_E_INVAL naming it).
 *  Errors: HMT_E_INVAL (NULL out/path), HMT_E_IO, HMT_E_FORMAT (corrupt file;
 *  the message names the field; also a NaN or infinite weight: the message
 *  names the tensor, element, row and column), HMT_E_UNSUPPORTED (architecture or tensor
 *  type), HMT_E_NOMEM. On failure *out is NULL and nothing is leaked.
 *  Thread-safe (distinct calls share nothing). */
HMT_API HMT_NODISCARD int hmt_model_load(hmt_model **out, const char *path,
                                         const hmt_params *params);

/** Release the caller's reference to a model (NULL is a no-op). Contexts,
 *  streams and adapters hold their own reference (docs/API.md, lifetimes),
 *  so the model is destroyed when the last of them is freed. */
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
/** The end-of-turn token: tokenizer.ggml.eot_token_id, else the lowest id
 *  whose text is one of llama.cpp's end-of-turn texts ("<|eot_id|>",
 *  "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", ...); -1 when
 *  there is none. Thread-safe. Since 0.2. */
HMT_API hmt_token hmt_model_token_eot(const hmt_model *model);

/** 1 if generation should stop at this token, else 0 (also for a NULL
 *  model, a model without a tokenizer, and an id outside the vocabulary).
 *  The end-of-generation set is llama.cpp's: the eos, eot and eom ids of the
 *  metadata, the fill-in-the-middle pad/repo/separator tokens, and every
 *  token whose text is a known end-of-turn text ("<|eot_id|>", "<|eom_id|>",
 *  "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", ...;
 *  docs/API.md lists them and the exceptions). A host that samples should
 *  stop at any of them, not only at hmt_model_token_eos. Thread-safe.
 *  Since 0.2. */
HMT_API int hmt_token_is_eog(const hmt_model *model, hmt_token token);

/** Copy the input embedding of a token (n_embd floats) into out. */
HMT_API HMT_NODISCARD int hmt_model_token_embedding(const hmt_model *model, hmt_token token,
                                                    float *out, size_t cap);


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
 * Chat templates (docs/API.md, "Chat templates and end of generation").
 * There is no template engine: a template text is recognised by the
 * substrings llama.cpp looks for, and the families libhmt recognises are
 * written by code checked against Hugging Face's rendering of each model's
 * real template. Thread-safe.
 * ------------------------------------------------------------------------- */

/** The model's tokenizer.chat_template (a Jinja template text), or NULL
 *  when the file has none. Owned by the model, valid until it is destroyed.
 *  Since 0.2. */
HMT_API const char *hmt_model_chat_template(const hmt_model *model);

/** Format a conversation of n messages as the prompt text of a chat model.
 *  Message i has role roles[i] ("system", "user" or "assistant") and text
 *  contents[i] (UTF-8, NUL-terminated).
 *  tmpl: NULL for the model's own tokenizer.chat_template; else a family
 *  name ("llama2", "llama3", "chatml", "gemma", "phi3", "phi4",
 *  "mistral-v1", "mistral-v3", "mistral-v3-tekken", "mistral-v7",
 *  "mistral-v7-tekken", "deepseek3") or a
 *  whole template text to recognise. model may be NULL when tmpl is given.
 *  add_generation_prompt: non-zero to end with the opening of an assistant
 *  turn (for families whose template has one).
 *  The text leaves out the BOS text the template starts with: tokenize it
 *  with HMT_TOKENIZE_ADD_BOS | HMT_TOKENIZE_SPECIAL (the special flag turns
 *  the template's control texts, "<|im_start|>" and so on, into their
 *  tokens).
 *  Output snprintf-style, like hmt_detokenize: the text (NUL-terminated when
 *  size > 0) in buf, its length without the NUL in *len; HMT_E_BUFFER when
 *  size <= that length (truncated output, *len the needed length; call with
 *  size 0 and buf NULL to measure).
 *  Errors: HMT_E_INVAL (NULL len, roles, contents, a NULL roles[i] or
 *  contents[i], buf NULL with size > 0, n == 0, model and tmpl both NULL, an
 *  unknown role, or an order of roles the family's template refuses, such as
 *  a system message for Gemma 2's template or turns that do not alternate
 *  for llama2, mistral-v1/v3 and gemma, or a system message the template
 *  would silently leave out (no user turn to put it in): the message says
 *  which; buf then holds "" when
 *  size > 0, and *len is not set); HMT_E_UNSUPPORTED when the
 *  model has no template or the template is not one libhmt formats (the
 *  message names it; format the text yourself and tokenize it with
 *  HMT_TOKENIZE_SPECIAL). Since 0.2. */
HMT_API HMT_NODISCARD int hmt_chat_apply(const hmt_model *model, const char *tmpl,
                                         const char *const *roles,
                                         const char *const *contents, size_t n,
                                         int add_generation_prompt, char *buf, size_t size,
                                         size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* INCLUDE_HMT_MODEL_H */
