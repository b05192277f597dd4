/* Chat formatting without a template engine: a template text (a GGUF's
 * tokenizer.chat_template) is recognised by the substrings llama.cpp's
 * llm_chat_detect_template looks for, and a conversation is then written
 * out by code that reproduces what the family's Hugging Face template
 * renders (docs/API.md, "Chat templates", lists the families, the models
 * whose templates are checked and the conventions). */
#ifndef HMT_TEXT_CHAT_H
#define HMT_TEXT_CHAT_H

#include <stddef.h>

#include "hmt/hmt.h"

typedef enum {
    HMTI_CHAT_LLAMA2,     /* Llama-2-chat: <<SYS>>, BOS inside the history */
    HMTI_CHAT_LLAMA3,     /* Meta-Llama-3-Instruct                          */
    HMTI_CHAT_CHATML,     /* <|im_start|> ... (Qwen2/2.5, SmolLM2)          */
    HMTI_CHAT_GEMMA,      /* gemma / gemma-2 -it                            */
    HMTI_CHAT_PHI3,       /* Phi-3 / Phi-3.5 -instruct                      */
    HMTI_CHAT_MISTRAL_V1, /* Mistral-7B-Instruct-v0.1/v0.2, Mixtral 8x7B    */
    HMTI_CHAT_MISTRAL_V3, /* Mistral-7B-Instruct-v0.3, Large 2407, Nemo     */
    HMTI_CHAT_MISTRAL_V7, /* Mistral-Large-Instruct-2411; tekken: Small 3.x */
    HMTI_CHAT_PHI4,       /* phi-4: <|im_start|>role<|im_sep|>              */
    HMTI_CHAT_DEEPSEEK3   /* DeepSeek-R1-Distill-Llama/Qwen                 */
} hmti_chat_family;

#define HMTI_CHAT_DEFAULT_SYSTEM_MAX 1024

/* DeepSeek's texts, with fullwidth bars (U+FF5C) and U+2581 for spaces */
#define DS_BAR "\xEF\xBD\x9C"
#define DS_USER "<" DS_BAR "User" DS_BAR ">"
#define DS_ASSISTANT "<" DS_BAR "Assistant" DS_BAR ">"
#define DS_EOS "<" DS_BAR "end\xE2\x96\x81of\xE2\x96\x81sentence" DS_BAR ">"

typedef struct {
    hmti_chat_family family;
    const char *name;     /* "llama2", "llama3", "chatml", ...           */
    int phi3_skip_empty_system; /* Phi-3.5: an empty system message is left out */
    int phi3_eos_at_end;        /* without a generation prompt, end with the EOS text */
    int tekken;                 /* mistral-v3/v7 "tekken": no spaces around the texts */
    int gemma_system_prefix;    /* Gemma 3: the system message opens the first user turn */
    int phi4_first_revision;    /* phi-4's first template: the assistant opening after
                                 * every user turn, whatever add_generation_prompt says */
    int deepseek_cut_reasoning; /* answers keep only the text after their last </think> */
    int deepseek_think;         /* the generation prompt opens with "<think>\n" */
    int qwen3_reasoning;        /* chatml of Qwen3: answers before the last user turn lose
                                 * their reasoning, later ones get a <think> block */
    /* chatml, mistral-v7-tekken: the system turn written when the conversation
     * has none ("" = none) */
    char default_system[HMTI_CHAT_DEFAULT_SYSTEM_MAX];
    /* llama3 of Llama 3.1 and later: the system turn always comes first,
     * with "Cutting Knowledge Date: December 2023\nToday Date: <date>\n\n"
     * ("" = Llama 3's template, without it) */
    char today_date[32];
} hmti_chat_style;

/* Recognise tmpl (NUL-terminated): a family name ("llama2", "llama3",
 * "chatml", "gemma", "phi3", "phi4", "mistral-v1", "mistral-v3",
 * "mistral-v3-tekken", "mistral-v7", "mistral-v7-tekken", "deepseek3") or a template
 * text.
 * HMT_E_UNSUPPORTED (with a message naming what was seen and telling the
 * host to format the text itself) when it is neither. */
int hmti_chat_detect(const char *tmpl, hmti_chat_style *out);

/* Format n messages (roles "system", "user", "assistant"), snprintf-style
 * into buf: HMT_E_BUFFER when size <= the length (truncated, NUL-terminated
 * when size > 0), *len the full length without the NUL. HMT_E_INVAL for an
 * unknown role, a NULL role or content, an order of roles the family's
 * template refuses, or a message it would silently leave out (the message
 * says which). */
int hmti_chat_format(const hmti_chat_style *st, const char *const *roles,
                     const char *const *contents, size_t n, int add_generation_prompt,
                     char *buf, size_t size, size_t *len);

#endif
