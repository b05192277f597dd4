/* The end-of-generation (EOG) set of a vocabulary, built from GGUF metadata
 * the way llama.cpp's vocabulary loader builds it (llama-vocab.cpp, read as
 * a statement of the rules; no code taken):
 *  - the ids of tokenizer.ggml.eos_token_id, eot_token_id and eom_token_id;
 *  - the fill-in-the-middle pad, repo and separator tokens
 *    (tokenizer.ggml.fim_{pad,rep,sep}_token_id, else found by their text:
 *    "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", ...);
 *  - every token, of any type, whose text is one of the known end-of-turn
 *    texts ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
 *    "<|endoftext|>", "<|eom_id|>", "<EOT>", ... the list is in eog.c);
 *  - then llama.cpp's two exceptions: "<|end|>" leaves the set when
 *    "<|return|>" and "<|call|>" (or "<|calls|>" and "<|flush|>") are in it
 *    (gpt-oss's harmony format, solar-open), and "</s>" leaves it when
 *    "<|tool_response>" is in it (gemma4).
 * The end-of-turn token (hmt_model_token_eot) is tokenizer.ggml.eot_token_id,
 * else the lowest id whose text is one of llama.cpp's EOT texts.
 * Ids in metadata outside the vocabulary are ignored with a warning in the
 * log (llama.cpp does the same); absent keys leave no error message. */
#ifndef HMT_TEXT_EOG_H
#define HMT_TEXT_EOG_H

#include <stdint.h>

#include "hmt/hmt.h"
#include "io/gguf.h"
#include "text/tokenizer.h"

/* 3 ids from metadata + 3 FIM + the texts of eog.c: never more than this. */
#define HMTI_EOG_MAX 40

typedef struct hmti_eog {
    int32_t n;                   /* ids[0..n): sorted, distinct */
    hmt_token ids[HMTI_EOG_MAX];
    hmt_token eot, eom;          /* -1: none */
} hmti_eog;

/* Build the set of a loaded vocabulary v (its tokens and eos id) from g.
 * HMT_E_FORMAT only for a key of the wrong type (not an integer). */
int hmti_eog_init(hmti_eog *e, const hmti_vocab *v, const hmti_gguf *g);

/* 1 if t is in the set, else 0 (also for any id outside the vocabulary). */
int hmti_eog_has(const hmti_eog *e, hmt_token t);

#endif
