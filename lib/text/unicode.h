/* Unicode support for the tokenizers: strict UTF-8 decoding, the character
 * classes the byte-level BPE pre-tokenizers use (generated tables, see
 * tools/gen_unicode_tables.py), the GPT-2 byte<->character map, and
 * hand-written matchers for the pre-tokenizer regexes of llama.cpp.
 * Everything here is pure and thread-safe. */
#ifndef HMT_UNICODE_H
#define HMT_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Character class bits. A codepoint with none of LETTER, NUMBER and SPACE is
 * "other" (\S that is neither \p{L} nor \p{N}); so is every byte of an
 * invalid UTF-8 sequence (no bits at all). UPPER, LOWER and MARK exist for the
 * GPT-4o regex's case classes; a letter with neither UPPER nor LOWER is Lm or
 * Lo (modifier and other letters: CJK, Arabic, ...). */
enum {
    HMTI_UC_LETTER = 1, /* \p{L}: general category L*            */
    HMTI_UC_NUMBER = 2, /* \p{N}: general category N*            */
    HMTI_UC_PUNCT = 4,  /* \p{P}: general category P*            */
    HMTI_UC_SPACE = 8,  /* \s: the Unicode White_Space property  */
    HMTI_UC_UPPER = 16, /* \p{Lu} or \p{Lt} (with LETTER)        */
    HMTI_UC_LOWER = 32, /* \p{Ll} (with LETTER)                  */
    HMTI_UC_MARK = 64   /* \p{M}: general category M*            */
};

/* Generated (lib/text/unicode_tables.c): runs of (first codepoint << 8) | flags
 * covering U+0000..U+10FFFF in increasing order. */
extern const uint32_t hmti_uc_runs[];
extern const size_t hmti_uc_n_runs;

/* Class bits of a codepoint (0 beyond U+10FFFF). */
unsigned hmti_uc_flags(uint32_t cp);

/* Decode one UTF-8 character at s (n > 0 bytes available). Returns its length
 * 1..4 and stores the codepoint, or 0 if s does not start a well-formed
 * sequence (overlong forms, surrogates, values above U+10FFFF, truncated or
 * stray continuation bytes are all ill-formed). Never reads past n. */
size_t hmti_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Encode cp (<= 0x10FFFF) as UTF-8 into out[4]; returns the length. */
size_t hmti_utf8_encode(uint32_t cp, char out[4]);

/* GPT-2 bytes_to_unicode: the printable character standing for byte b. */
uint32_t hmti_gpt2_byte_to_cp(uint8_t b);
/* Inverse map: the byte for cp, or -1 if cp stands for no byte. */
int hmti_gpt2_cp_to_byte(uint32_t cp);

/* A decoded text: per unit (a character, or one byte of an ill-formed
 * sequence, which decodes as U+FFFD with no class bits) its codepoint, class
 * bits and byte offset; off[n] is the text length. */
typedef struct {
    uint32_t *cp;
    uint8_t *fl;
    size_t *off;
    size_t n;
} hmti_utext;

/* Decode len bytes. HMT_OK or HMT_E_NOMEM. hmti_utext_free accepts a zeroed
 * struct. */
int hmti_utext_decode(hmti_utext *u, const char *s, size_t len);
void hmti_utext_free(hmti_utext *u);

/* Pre-tokenizers of llama.cpp's "gpt2" vocabularies, by tokenizer.ggml.pre. */
typedef enum {
    HMTI_PRE_DEFAULT = 0, /* "default" or missing: 4 chained regexes */
    HMTI_PRE_GPT2 = 1,    /* "gpt-2", "gpt2"                         */
    HMTI_PRE_LLAMA3 = 2,  /* "llama3", "llama-v3", "llama-bpe", ...  */
    HMTI_PRE_QWEN2 = 3,   /* "qwen2", "deepseek-r1-qwen", ...        */
    HMTI_PRE_SMOLLM = 4,  /* "smollm", "starcoder", "refact", ...    */
    HMTI_PRE_GPT4O = 5    /* "gpt-4o": o200k's regex, real case classes */
} hmti_pre_type;

/* Called for each piece, in order; pieces tile the text exactly. A nonzero
 * return stops the split and is returned by hmti_pretokenize. */
typedef int (*hmti_piece_fn)(void *user_data, size_t byte_lo, size_t byte_hi);

/* Split the decoded text u into pieces with the regex chain of `pre`, as
 * llama.cpp's unicode_regex_split does (each regex splits the pieces of the
 * previous one; text between matches forms pieces of its own). GPT4O runs
 * the regex of tiktoken's o200k_base as written, where llama.cpp runs an
 * ASCII-only approximation of its case classes (docs/MODELS.md). */
int hmti_pretokenize(hmti_pre_type pre, const hmti_utext *u, hmti_piece_fn fn,
                     void *user_data);

#endif
