/* Tokenizers built from a GGUF's tokenizer.ggml.* metadata:
 *   "llama": SentencePiece BPE (scores as merge priorities, U+2581 for
 *            spaces, <0xXX> byte-fallback tokens, add_space_prefix);
 *   "gpt2":  byte-level BPE (merges by rank, GPT-2 byte-to-unicode map,
 *            regex pre-tokenizer chosen by tokenizer.ggml.pre for the
 *            Llama 3, SmolLM and Qwen2 families).
 * A vocabulary is immutable after loading: every function is thread-safe. */
#ifndef HMT_TOKENIZER_H
#define HMT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "hmt/hmt.h"
#include "io/gguf.h"

typedef struct hmti_vocab hmti_vocab;

/* Build from metadata. HMT_E_FORMAT for inconsistent metadata (array lengths
 * differ, ids out of range, malformed merges), HMT_E_UNSUPPORTED for an
 * unknown tokenizer.ggml.model. The vocab copies what it needs: it does not
 * reference g after returning. */
int hmti_vocab_load(hmti_vocab **out, const hmti_gguf *g);
void hmti_vocab_free(hmti_vocab *v);

int32_t hmti_vocab_n_tokens(const hmti_vocab *v);
hmt_token hmti_vocab_bos(const hmti_vocab *v); /* -1 if none */
hmt_token hmti_vocab_eos(const hmti_vocab *v); /* -1 if none */
const char *hmti_vocab_model_name(const hmti_vocab *v); /* "llama" / "gpt2" */
/* Id of the token with exactly this text, or -1. */
hmt_token hmti_vocab_find(const hmti_vocab *v, const char *text, size_t len);
/* End of generation (text/eog.h): 1 or 0; 0 outside the vocabulary. */
int hmti_vocab_is_eog(const hmti_vocab *v, hmt_token t);
hmt_token hmti_vocab_eot(const hmti_vocab *v); /* -1 if none */
/* tokenizer.chat_template as a C string, or NULL when the file has none. */
const char *hmti_vocab_chat_template(const hmti_vocab *v);

/* Same contracts as hmt_tokenize / hmt_detokenize in hmt.h. */
int hmti_tokenize(const hmti_vocab *v, const char *text, size_t len, uint32_t flags,
                  hmt_token *out, size_t cap, size_t *n_out);
int hmti_detokenize(const hmti_vocab *v, const hmt_token *tokens, size_t n, uint32_t flags,
                    char *buf, size_t cap, size_t *len_out);

#endif
