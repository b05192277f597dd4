/* Tokenizers from tokenizer.ggml.* metadata, following llama.cpp's
 * llama-vocab.cpp and SentencePiece:
 *
 * - Loading copies token texts into one arena, indexes them in an
 *   open-addressing hash table, pre-renders every token's detokenized bytes,
 *   and (gpt2) indexes merges by the pair of token ids. Everything is
 *   validated: array types and lengths, token types, ids, merges.
 * - Special tokens: user-defined tokens (type 4) are always cut out of the
 *   input as whole tokens (as SentencePiece, Hugging Face and llama.cpp do);
 *   control and unknown tokens (types 3, 2) only with HMT_TOKENIZE_SPECIAL.
 *   Matching is leftmost-longest. The text between them forms fragments.
 * - "llama" (SentencePiece BPE): each fragment gets a leading space when
 *   add_space_prefix is set and it starts the text or follows a special
 *   token (llama.cpp); spaces become U+2581; characters are merged pairwise,
 *   best score first (ties: leftmost), with a priority queue; pieces that are
 *   not tokens fall back to <0xXX> byte tokens (or unk). Control, unknown and
 *   byte tokens never take part in merges (SentencePiece); unused tokens are
 *   split back into their parts.
 * - "gpt2" (byte-level BPE): fragments are split by the pre-tokenizer regex
 *   chain of tokenizer.ggml.pre (lib/text/unicode.c), each byte becomes its GPT-2
 *   character token, and pairs are merged by lowest merge rank (ties:
 *   leftmost) with a priority queue. Ill-formed UTF-8 bytes are kept as bytes
 *   (llama.cpp would turn them into U+FFFD), so every byte string round-trips.
 * - Detokenization concatenates pre-rendered pieces, so decoding token by
 *   token gives the same bytes as decoding all at once: no space is stripped
 *   and no clean-up of spaces is applied. */
#include "core/alloc.h"
#include "text/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/eog.h"
#include "text/unicode.h"

enum { TT_UNDEFINED = 0, TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3,
       TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };
enum { MODEL_SPM = 1, MODEL_BPE = 2 };

#define K_MODEL "tokenizer.ggml.model"
#define K_TOKENS "tokenizer.ggml.tokens"
#define K_SCORES "tokenizer.ggml.scores"
#define K_TYPES "tokenizer.ggml.token_type"
#define K_MERGES "tokenizer.ggml.merges"
#define K_PRE "tokenizer.ggml.pre"

/* Fragments longer than this (bytes) are rejected: symbol indices are int32. */
#define MAX_FRAGMENT ((size_t)1 << 30)

typedef struct {
    uint32_t off, len;             /* text in v->text                       */
    uint32_t piece_off, piece_len; /* rendered bytes in v->piece            */
    float score;
    uint8_t type;
    uint8_t mergeable; /* SPM: may be formed by merging / matched as a piece */
    uint8_t special;   /* rendered only with HMT_DETOKENIZE_SPECIAL          */
} tok_info;

typedef struct {
    uint32_t tag;
    int32_t id; /* -1: empty */
} tslot;

typedef struct {
    uint64_t key; /* (left << 32) | right */
    int32_t rank; /* -1: empty            */
    int32_t result;
} mslot;

typedef struct {
    int32_t id;
    uint32_t len;
} spec_ent;

struct hmti_vocab {
    int model;
    int32_t n;
    tok_info *tok;
    char *text;
    char *piece;
    tslot *tmap;
    uint64_t tmask;
    mslot *mmap;
    uint64_t mmask;
    int32_t n_merges;
    int32_t byte_tok[256];
    char byte_enc[256][2]; /* gpt2: UTF-8 of each byte's character */
    uint8_t byte_enc_len[256];
    hmt_token bos, eos, unk, pad;
    int add_bos, add_space_prefix, ignore_merges;
    int spm_words; /* SPM: no token has U+2581 after another character */
    hmti_pre_type pre;
    spec_ent *spec; /* special tokens by first byte, longest first */
    uint32_t spec_start[257];
    hmti_eog eog;        /* end-of-generation set (text/eog.c)          */
    char *chat_template; /* tokenizer.chat_template, NUL-terminated, or NULL */
};

/* ---------------------------------------------------------------------------
 * Hashing
 * ------------------------------------------------------------------------- */
static uint64_t mix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_bytes(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0x100000001b3ULL);
    while (n >= 8) {
        uint64_t k;
        memcpy(&k, p, 8);
        h = (h ^ mix64(k)) * 0x9E3779B97F4A7C15ULL;
        p += 8;
        n -= 8;
    }
    uint64_t k = 0;
    for (size_t i = 0; i < n; i++) k |= (uint64_t)p[i] << (8 * i);
    return mix64(h ^ k);
}

/* Power of two with a load factor of at most 3/4. */
static uint64_t table_size(uint64_t n) {
    uint64_t s = 16;
    while (s < n + n / 3 + 1) s <<= 1;
    return s;
}

/* Token id with exactly this text, or -1. */
static int32_t text_find(const hmti_vocab *v, const char *s, size_t n) {
    uint64_t h = hash_bytes(s, n);
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint64_t i = h & v->tmask;; i = (i + 1) & v->tmask) {
        const tslot *sl = &v->tmap[i];
        if (sl->id < 0) return -1;
        if (sl->tag == tag) {
            const tok_info *t = &v->tok[sl->id];
            if (t->len == n && memcmp(v->text + t->off, s, n) == 0) return sl->id;
        }
    }
}

/* Insert id; returns the id already holding that text, or -1. */
static int32_t text_insert(hmti_vocab *v, int32_t id) {
    const tok_info *t = &v->tok[id];
    const char *s = v->text + t->off;
    uint64_t h = hash_bytes(s, t->len);
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint64_t i = h & v->tmask;; i = (i + 1) & v->tmask) {
        tslot *sl = &v->tmap[i];
        if (sl->id < 0) {
            sl->id = id;
            sl->tag = tag;
            return -1;
        }
        if (sl->tag == tag) {
            const tok_info *o = &v->tok[sl->id];
            if (o->len == t->len && memcmp(v->text + o->off, s, t->len) == 0) return sl->id;
        }
    }
}

static const mslot *merge_find(const hmti_vocab *v, int32_t a, int32_t b) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (uint64_t i = mix64(key) & v->mmask;; i = (i + 1) & v->mmask) {
        const mslot *sl = &v->mmap[i];
        if (sl->rank < 0) return NULL;
        if (sl->key == key) return sl;
    }
}

/* ---------------------------------------------------------------------------
 * Metadata helpers
 * ------------------------------------------------------------------------- */
/* Optional key: HMT_OK (found), 1 (absent) or an error from the getter. */
/* An optional key: absent (1) without a message (a successful load leaves
 * the thread's last error alone), else the getter's result. */
#define OPTIONAL(g, key, get) (hmti_gguf_find_key(g, key) < 0 ? 1 : (get))

static int is_int_type(hmti_gguf_vtype t) {
    return t == HMTI_GGUF_UINT8 || t == HMTI_GGUF_INT8 || t == HMTI_GGUF_UINT16 ||
           t == HMTI_GGUF_INT16 || t == HMTI_GGUF_UINT32 || t == HMTI_GGUF_INT32 ||
           t == HMTI_GGUF_UINT64 || t == HMTI_GGUF_INT64;
}

static int64_t arr_int(hmti_gguf_vtype t, const void *data, uint64_t i) {
    const unsigned char *p = data;
    switch (t) {
    case HMTI_GGUF_UINT8: return p[i];
    case HMTI_GGUF_INT8: return (int8_t)p[i];
    case HMTI_GGUF_UINT16: { uint16_t x; memcpy(&x, p + 2 * i, 2); return x; }
    case HMTI_GGUF_INT16: { int16_t x; memcpy(&x, p + 2 * i, 2); return x; }
    case HMTI_GGUF_UINT32: { uint32_t x; memcpy(&x, p + 4 * i, 4); return x; }
    case HMTI_GGUF_INT32: { int32_t x; memcpy(&x, p + 4 * i, 4); return x; }
    case HMTI_GGUF_UINT64: { uint64_t x; memcpy(&x, p + 8 * i, 8); return x > INT64_MAX ? -1 : (int64_t)x; }
    case HMTI_GGUF_INT64: { int64_t x; memcpy(&x, p + 8 * i, 8); return x; }
    default: return -1;
    }
}

static float arr_float(hmti_gguf_vtype t, const void *data, uint64_t i) {
    const unsigned char *p = data;
    if (t == HMTI_GGUF_FLOAT32) {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    if (t == HMTI_GGUF_FLOAT64) {
        double d;
        memcpy(&d, p + 8 * i, 8);
        return (float)d;
    }
    return (float)arr_int(t, data, i);
}

/* Parse "<0xXX>" (either case of hex digits); -1 if s is not of that form. */
static int parse_byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = (c >= '0' && c <= '9') ? c - '0'
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static int pre_from_name(hmti_vocab *v, const char *s, size_t n) {
    static const struct {
        const char *name;
        hmti_pre_type pre;
        int ignore_merges;
    } names[] = {
        {"default", HMTI_PRE_DEFAULT, 0},
        {"gpt-2", HMTI_PRE_GPT2, 0}, {"gpt2", HMTI_PRE_GPT2, 0},
        {"phi-2", HMTI_PRE_GPT2, 0}, {"mpt", HMTI_PRE_GPT2, 0}, {"olmo", HMTI_PRE_GPT2, 0},
        {"jais", HMTI_PRE_GPT2, 0}, {"roberta-bpe", HMTI_PRE_GPT2, 0},
        {"llama3", HMTI_PRE_LLAMA3, 1}, {"llama-v3", HMTI_PRE_LLAMA3, 1},
        {"llama-bpe", HMTI_PRE_LLAMA3, 1}, {"falcon3", HMTI_PRE_LLAMA3, 1},
        {"pixtral", HMTI_PRE_LLAMA3, 1}, {"dbrx", HMTI_PRE_LLAMA3, 0},
        {"smaug-bpe", HMTI_PRE_LLAMA3, 0},
        {"qwen2", HMTI_PRE_QWEN2, 0}, {"deepseek-r1-qwen", HMTI_PRE_QWEN2, 0},
        {"stablelm2", HMTI_PRE_QWEN2, 0}, {"megrez", HMTI_PRE_QWEN2, 0},
        {"smollm", HMTI_PRE_SMOLLM, 0}, {"starcoder", HMTI_PRE_SMOLLM, 0},
        {"refact", HMTI_PRE_SMOLLM, 0}, {"command-r", HMTI_PRE_SMOLLM, 0},
        {"codeshell", HMTI_PRE_SMOLLM, 0}, {"exaone", HMTI_PRE_SMOLLM, 0},
        {"minerva-7b", HMTI_PRE_SMOLLM, 0},
        /* whole-word lookup as tiktoken's encoder and HF's TikTokenConverter
         * (ignore_merges); llama.cpp runs the merges here */
        {"gpt-4o", HMTI_PRE_GPT4O, 1},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i].name) == n && memcmp(names[i].name, s, n) == 0) {
            v->pre = names[i].pre;
            v->ignore_merges = names[i].ignore_merges;
            return HMT_OK;
        }
    }
    return hmti_errf(HMT_E_UNSUPPORTED, "%s: pre-tokenizer '%.*s' is not supported", K_PRE,
                     (int)(n > 64 ? 64 : n), s);
}

/* ---------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------- */
void hmti_vocab_free(hmti_vocab *v) {
    if (!v) return;
    free(v->tok);
    free(v->text);
    free(v->piece);
    free(v->tmap);
    free(v->mmap);
    free(v->spec);
    free(v->chat_template);
    free(v);
}

static int load_tokens(hmti_vocab *v, const hmti_gguf *g) {
    hmti_gguf_vtype et;
    uint64_t n;
    const void *data;
    int rc = hmti_gguf_get_arr(g, K_TOKENS, &et, &n, &data);
    if (rc == HMT_E_INVAL) return hmti_errf(HMT_E_FORMAT, "%s: missing", K_TOKENS);
    if (rc) return rc;
    if (et != HMTI_GGUF_STRING)
        return hmti_errf(HMT_E_FORMAT, "%s: array of %s, expected strings", K_TOKENS,
                         hmti_gguf_vtype_name(et));
    if (n == 0 || n > INT32_MAX)
        return hmti_errf(HMT_E_FORMAT, "%s: %llu tokens", K_TOKENS, (unsigned long long)n);
    v->n = (int32_t)n;
    v->tok = hmti_calloc(n, sizeof *v->tok);
    if (!v->tok) return hmti_errf(HMT_E_NOMEM, "tokenizer: out of memory");
    /* one pass: the arena grows geometrically (texts average a few bytes) */
    size_t cap = (size_t)n * 8, off = 0;
    v->text = hmti_malloc(cap);
    if (!v->text) return hmti_errf(HMT_E_NOMEM, "tokenizer: out of memory");
    for (uint64_t i = 0; i < n; i++) {
        hmti_str s;
        if ((rc = hmti_gguf_arr_str(g, K_TOKENS, i, &s)) != 0) return rc;
        if (s.len > UINT32_MAX - off)
            return hmti_errf(HMT_E_FORMAT, "%s: token texts exceed 4 GiB", K_TOKENS);
        if (off + s.len > cap) {
            while (off + s.len > cap) cap *= 2;
            char *p = hmti_realloc(v->text, cap);
            if (!p) return hmti_errf(HMT_E_NOMEM, "tokenizer: out of memory");
            v->text = p;
        }
        if (s.len) memcpy(v->text + off, s.ptr, s.len);
        v->tok[i].off = (uint32_t)off;
        v->tok[i].len = (uint32_t)s.len;
        v->tok[i].type = TT_NORMAL;
        off += s.len;
    }
    v->piece = hmti_malloc(off ? off : 1); /* rendered pieces are never longer */
    if (!v->piece) return hmti_errf(HMT_E_NOMEM, "tokenizer: out of memory");
    return HMT_OK;
}

/* A numeric array parallel to the tokens: absent (1), or HMT_OK with the same
 * length, or HMT_E_FORMAT. */
static int parallel_array(const hmti_vocab *v, const hmti_gguf *g, const char *key, int want_float,
                          hmti_gguf_vtype *et, const void **data) {
    uint64_t n;
    int rc = OPTIONAL(g, key, hmti_gguf_get_arr(g, key, et, &n, data));
    if (rc) return rc;
    int ok = is_int_type(*et) ||
             (want_float && (*et == HMTI_GGUF_FLOAT32 || *et == HMTI_GGUF_FLOAT64));
    if (!ok)
        return hmti_errf(HMT_E_FORMAT, "%s: array of %s, expected %s", key,
                         hmti_gguf_vtype_name(*et), want_float ? "numbers" : "integers");
    if (n != (uint64_t)v->n)
        return hmti_errf(HMT_E_FORMAT, "%s: %llu elements but %s has %d", key,
                         (unsigned long long)n, K_TOKENS, v->n);
    return HMT_OK;
}

static int load_scores_types(hmti_vocab *v, const hmti_gguf *g) {
    hmti_gguf_vtype et;
    const void *data;
    int rc = parallel_array(v, g, K_SCORES, 1, &et, &data);
    if (rc < 0) return rc;
    if (rc == HMT_OK)
        for (int32_t i = 0; i < v->n; i++) v->tok[i].score = arr_float(et, data, (uint64_t)i);
    rc = parallel_array(v, g, K_TYPES, 0, &et, &data);
    if (rc < 0) return rc;
    if (rc == HMT_OK) {
        for (int32_t i = 0; i < v->n; i++) {
            int64_t t = arr_int(et, data, (uint64_t)i);
            if (t < TT_UNDEFINED || t > TT_BYTE)
                return hmti_errf(HMT_E_FORMAT, "%s[%d]: token type %lld is not 0..6", K_TYPES, i,
                                 (long long)t);
            v->tok[i].type = (uint8_t)t;
        }
    }
    return HMT_OK;
}

static int build_text_map(hmti_vocab *v) {
    uint64_t size = table_size((uint64_t)v->n);
    v->tmap = hmti_malloc(size * sizeof *v->tmap);
    if (!v->tmap) return hmti_errf(HMT_E_NOMEM, "tokenizer: out of memory");
    v->tmask = size - 1;
    for (uint64_t i = 0; i < size; i++) v->tmap[i].id = -1;
    for (int32_t i = 0; i < v->n; i++) {
        if (v->tok[i].len == 0) continue; /* never matched */
        int32_t dup = text_insert(v, i);
        if (dup >= 0)
            return hmti_errf(HMT_E_FORMAT, "%s[%d]: duplicate of token %d ('%.*s')", K_TOKENS, i,
                             dup, (int)(v->tok[i].len > 64 ? 64 : v->tok[i].len),
                             v->text + v->tok[i].off);
    }
    return HMT_OK;
}

static int load_merges(hmti_vocab *v, const hmti_gguf *g) {
    hmti_gguf_vtype et;
    uint64_t n;
    const void *data;
    int rc = hmti_gguf_get_arr(g, K_MERGES, &et, &n, &data);
    if (rc == HMT_E_INVAL) return hmti_errf(HMT_E_FORMAT, "%s: missing (required by gpt2)", K_MERGES);
    if (rc) return rc;
    if (et != HMTI_GGUF_STRING)
        return hmti_errf(HMT_E_FORMAT, "%s: array of %s, expected strings", K_MERGES,
                         hmti_gguf_vtype_name(et));
    if (n > INT32_MAX)
        return hmti_errf(HMT_E_FORMAT, "%s: %llu merges", K_MERGES, (unsigned long long)n);
    v->n_merges = (int32_t)n;
    uint64_t size = table_size(n);
    v->mmap = hmti_malloc(size * sizeof *v->mmap);
    if (!v->mmap) return hmti_errf(HMT_E_NOMEM, "tokenizer: out of memory");
    v->mmask = size - 1;
    for (uint64_t i = 0; i < size; i++) v->mmap[i].rank = -1;
    char stack_buf[256];
    char *cat = stack_buf;
    size_t cat_cap = sizeof stack_buf;
    for (uint64_t i = 0; i < n; i++) {
        hmti_str s;
        if ((rc = hmti_gguf_arr_str(g, K_MERGES, i, &s)) != 0) goto done;
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        if (!sp || (size_t)(sp - s.ptr) + 1 >= s.len) {
            rc = hmti_errf(HMT_E_FORMAT, "%s[%llu]: '%.*s' is not two tokens separated by a space",
                           K_MERGES, (unsigned long long)i, (int)(s.len > 64 ? 64 : s.len), s.ptr);
            goto done;
        }
        size_t la = (size_t)(sp - s.ptr), lb = s.len - la - 1;
        int32_t a = text_find(v, s.ptr, la), b = text_find(v, sp + 1, lb);
        if (a < 0 || b < 0) {
            rc = hmti_errf(HMT_E_FORMAT, "%s[%llu]: '%.*s' is not a token", K_MERGES,
                           (unsigned long long)i, (int)((a < 0 ? la : lb) > 64 ? 64 : (a < 0 ? la : lb)),
                           a < 0 ? s.ptr : sp + 1);
            goto done;
        }
        if (la + lb > cat_cap) {
            if (cat != stack_buf) free(cat);
            cat_cap = 2 * (la + lb);
            cat = hmti_malloc(cat_cap);
            if (!cat) {
                rc = hmti_errf(HMT_E_NOMEM, "tokenizer: out of memory");
                goto done;
            }
        }
        memcpy(cat, s.ptr, la);
        memcpy(cat + la, sp + 1, lb);
        int32_t r = text_find(v, cat, la + lb);
        if (r < 0) {
            rc = hmti_errf(HMT_E_FORMAT, "%s[%llu]: the merged text '%.*s' is not a token",
                           K_MERGES, (unsigned long long)i, (int)(la + lb > 64 ? 64 : la + lb), cat);
            goto done;
        }
        uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
        for (uint64_t j = mix64(key) & v->mmask;; j = (j + 1) & v->mmask) {
            mslot *sl = &v->mmap[j];
            if (sl->rank < 0) {
                sl->key = key;
                sl->rank = (int32_t)i;
                sl->result = r;
                break;
            }
            if (sl->key == key) break; /* a repeated pair keeps its first rank */
        }
    }
    rc = HMT_OK;
done:
    if (cat != stack_buf) free(cat);
    return rc;
}

/* Special token id: absent -> def (if in range), present -> must be in range
 * (strict: HMT_E_FORMAT; lenient: ignored). A stored -1 means "none". */
static int special_id(const hmti_vocab *v, const hmti_gguf *g, const char *key, hmt_token def,
                      int strict, hmt_token *out) {
    int64_t x;
    int rc = OPTIONAL(g, key, hmti_gguf_get_i64(g, key, &x));
    if (rc < 0) return rc;
    if (rc == 1) {
        *out = (def >= 0 && def < v->n) ? def : -1;
        return HMT_OK;
    }
    if (x == -1 || x == (int64_t)UINT32_MAX) { /* "none", also as a u32 */
        *out = -1;
        return HMT_OK;
    }
    if (x < 0 || x >= v->n) {
        if (!strict) {
            hmti_log(HMT_LOG_WARN, "tokenizer: %s = %lld is outside [0, %d): ignored", key,
                     (long long)x, v->n);
            *out = -1;
            return HMT_OK;
        }
        return hmti_errf(HMT_E_FORMAT, "%s: id %lld outside [0, %d)", key, (long long)x, v->n);
    }
    *out = (hmt_token)x;
    return HMT_OK;
}

static int optional_bool(const hmti_gguf *g, const char *key, int def, int *out) {
    int b;
    int rc = OPTIONAL(g, key, hmti_gguf_get_bool(g, key, &b));
    if (rc < 0) return rc;
    *out = rc == 1 ? def : (b != 0);
    return HMT_OK;
}

/* Render each token's bytes once: detokenization is then a concatenation. */
static void render_pieces(hmti_vocab *v) {
    uint32_t off = 0;
    for (int32_t i = 0; i < v->n; i++) {
        tok_info *t = &v->tok[i];
        const char *s = v->text + t->off;
        char *o = v->piece + off;
        size_t n = 0;
        t->special = t->type == TT_CONTROL || t->type == TT_UNKNOWN || t->type == TT_UNUSED;
        int byte = t->type == TT_BYTE ? parse_byte_token(s, t->len) : -1;
        if (byte >= 0) {
            o[n++] = (char)byte;
        } else if (t->special || t->type == TT_USER) {
            memcpy(o, s, t->len);
            n = t->len;
        } else if (v->model == MODEL_SPM) { /* U+2581 -> space */
            for (size_t k = 0; k < t->len;) {
                if (k + 3 <= t->len && memcmp(s + k, "\xE2\x96\x81", 3) == 0) {
                    o[n++] = ' ';
                    k += 3;
                } else {
                    o[n++] = s[k++];
                }
            }
        } else { /* GPT-2 characters -> bytes; anything else is kept */
            for (size_t k = 0; k < t->len;) {
                uint32_t cp;
                size_t l = hmti_utf8_decode((const unsigned char *)s + k, t->len - k, &cp);
                int b = l ? hmti_gpt2_cp_to_byte(cp) : -1;
                if (b >= 0) {
                    o[n++] = (char)b;
                    k += l;
                } else {
                    if (!l) l = 1;
                    memcpy(o + n, s + k, l);
                    n += l;
                    k += l;
                }
            }
        }
        t->piece_off = off;
        t->piece_len = (uint32_t)n;
        off += (uint32_t)n;
    }
}

static int cmp_u64(const void *pa, const void *pb) {
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return a < b ? -1 : a > b;
}

static int build_specials(hmti_vocab *v) {
    uint32_t n = 0;
    for (int32_t i = 0; i < v->n; i++) {
        uint8_t t = v->tok[i].type;
        if ((t == TT_CONTROL || t == TT_UNKNOWN || t == TT_USER) && v->tok[i].len) n++;
    }
    v->spec = hmti_malloc((n ? n : 1) * sizeof *v->spec);
    if (!v->spec) return hmti_errf(HMT_E_NOMEM, "tokenizer: out of memory");
    uint32_t k = 0;
    for (int32_t i = 0; i < v->n; i++) {
        uint8_t t = v->tok[i].type;
        if ((t == TT_CONTROL || t == TT_UNKNOWN || t == TT_USER) && v->tok[i].len) {
            v->spec[k].id = i;
            v->spec[k].len = v->tok[i].len;
            k++;
        }
    }
    /* Sort by first byte, then longest first, then id: packed integer keys. */
    uint64_t *keys = hmti_malloc((n ? n : 1) * sizeof *keys);
    if (!keys) return hmti_errf(HMT_E_NOMEM, "tokenizer: out of memory");
    for (uint32_t i = 0; i < n; i++) {
        const spec_ent *e = &v->spec[i];
        uint64_t first = (unsigned char)v->text[v->tok[e->id].off];
        uint64_t inv_len = 0xFFFFFu - (e->len > 0xFFFFFu ? 0xFFFFFu : e->len);
        keys[i] = (first << 52) | (inv_len << 32) | (uint32_t)e->id;
    }
    qsort(keys, n, sizeof *keys, cmp_u64);
    for (uint32_t i = 0; i < n; i++) {
        int32_t id = (int32_t)(keys[i] & 0xFFFFFFFFu);
        v->spec[i].id = id;
        v->spec[i].len = v->tok[id].len;
    }
    free(keys);
    memset(v->spec_start, 0, sizeof v->spec_start);
    for (uint32_t i = 0; i < n; i++)
        v->spec_start[(unsigned char)v->text[v->tok[v->spec[i].id].off] + 1]++;
    for (int b = 0; b < 256; b++) v->spec_start[b + 1] += v->spec_start[b];
    return HMT_OK;
}

/* SPM: does every mergeable token keep U+2581 in a leading run only? */
static int words_ok(const hmti_vocab *v) {
    for (int32_t i = 0; i < v->n; i++) {
        const tok_info *t = &v->tok[i];
        if (!t->mergeable) continue;
        const char *s = v->text + t->off;
        size_t k = 0;
        while (k + 3 <= t->len && memcmp(s + k, "\xE2\x96\x81", 3) == 0) k += 3;
        for (; k + 3 <= t->len; k++)
            if (memcmp(s + k, "\xE2\x96\x81", 3) == 0) return 0;
    }
    return 1;
}

/* tokenizer.chat_template, kept as a C string for hmt_model_chat_template
 * (a text with a NUL inside is cut there). */
static int load_chat_template(hmti_vocab *v, const hmti_gguf *g) {
    static const char key[] = "tokenizer.chat_template";
    hmti_str t;
    int rc = OPTIONAL(g, key, hmti_gguf_get_str(g, key, &t));
    if (rc) return rc < 0 ? rc : HMT_OK;
    v->chat_template = hmti_malloc(t.len + 1);
    if (!v->chat_template) return hmti_errf(HMT_E_NOMEM, "tokenizer: out of memory");
    if (t.len) memcpy(v->chat_template, t.ptr, t.len);
    v->chat_template[t.len] = 0;
    return HMT_OK;
}

static int load(hmti_vocab *v, const hmti_gguf *g) {
    hmti_str model;
    int rc = hmti_gguf_get_str(g, K_MODEL, &model);
    if (rc == HMT_E_INVAL) return hmti_errf(HMT_E_FORMAT, "%s: missing", K_MODEL);
    if (rc) return rc;
    if (hmti_str_eq(model, "llama"))
        v->model = MODEL_SPM;
    else if (hmti_str_eq(model, "gpt2"))
        v->model = MODEL_BPE;
    else
        return hmti_errf(HMT_E_UNSUPPORTED, "%s: '%.*s' is not supported (llama, gpt2)", K_MODEL,
                         (int)(model.len > 64 ? 64 : model.len), model.ptr);

    if ((rc = load_tokens(v, g)) || (rc = load_scores_types(v, g)) || (rc = build_text_map(v)))
        return rc;

    for (int b = 0; b < 256; b++) v->byte_tok[b] = -1;
    for (int32_t i = 0; i < v->n; i++) {
        tok_info *t = &v->tok[i];
        t->mergeable = t->type != TT_CONTROL && t->type != TT_UNKNOWN && t->type != TT_BYTE;
        if (t->type == TT_BYTE) {
            int b = parse_byte_token(v->text + t->off, t->len);
            if (b < 0 && v->model == MODEL_SPM)
                return hmti_errf(HMT_E_FORMAT, "%s[%d]: byte token '%.*s' is not <0xXX>", K_TOKENS,
                                 i, (int)(t->len > 64 ? 64 : t->len), v->text + t->off);
            if (b >= 0 && v->model == MODEL_SPM && v->byte_tok[b] < 0) v->byte_tok[b] = i;
        }
    }
    if (v->model == MODEL_SPM) {
        /* no <0xXX> token: an ASCII byte may still be its own one-character token */
        for (int b = 0; b < 128; b++) {
            if (v->byte_tok[b] >= 0) continue;
            char c = (char)b;
            int32_t id = text_find(v, &c, 1);
            if (id >= 0 && v->tok[id].mergeable) v->byte_tok[b] = id;
        }
    } else {
        for (int b = 0; b < 256; b++) {
            char enc[4];
            size_t l = hmti_utf8_encode(hmti_gpt2_byte_to_cp((uint8_t)b), enc);
            memcpy(v->byte_enc[b], enc, l);
            v->byte_enc_len[b] = (uint8_t)l;
            v->byte_tok[b] = text_find(v, enc, l);
        }
        if ((rc = load_merges(v, g))) return rc;
    }

    int spm = v->model == MODEL_SPM;
    if ((rc = special_id(v, g, "tokenizer.ggml.bos_token_id", spm ? 1 : -1, 1, &v->bos)) ||
        (rc = special_id(v, g, "tokenizer.ggml.eos_token_id", spm ? 2 : -1, 1, &v->eos)) ||
        (rc = special_id(v, g, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, 1, &v->unk)) ||
        (rc = special_id(v, g, "tokenizer.ggml.padding_token_id", -1, 0, &v->pad)))
        return rc;
    if ((rc = optional_bool(g, "tokenizer.ggml.add_bos_token", spm, &v->add_bos)) ||
        (rc = optional_bool(g, "tokenizer.ggml.add_space_prefix", spm, &v->add_space_prefix)))
        return rc;
    if (!spm) v->add_space_prefix = 0;

    v->pre = HMTI_PRE_DEFAULT;
    if (!spm) {
        hmti_str pre;
        rc = OPTIONAL(g, K_PRE, hmti_gguf_get_str(g, K_PRE, &pre));
        if (rc < 0) return rc;
        if (rc == HMT_OK && (rc = pre_from_name(v, pre.ptr, pre.len))) return rc;
    }
    if ((rc = build_specials(v))) return rc;
    render_pieces(v);
    v->spm_words = spm && words_ok(v);
    if ((rc = hmti_eog_init(&v->eog, v, g))) return rc;
    return load_chat_template(v, g);
}

int hmti_vocab_load(hmti_vocab **out, const hmti_gguf *g) {
    if (!out) return hmti_errf(HMT_E_INVAL, "hmti_vocab_load: out is NULL");
    *out = NULL;
    if (!g) return hmti_errf(HMT_E_INVAL, "hmti_vocab_load: gguf is NULL");
    hmti_vocab *v = hmti_calloc(1, sizeof *v);
    if (!v) return hmti_errf(HMT_E_NOMEM, "tokenizer: out of memory");
    int rc = load(v, g);
    if (rc) {
        hmti_vocab_free(v);
        return rc;
    }
    *out = v;
    return HMT_OK;
}

int32_t hmti_vocab_n_tokens(const hmti_vocab *v) { return v ? v->n : 0; }
hmt_token hmti_vocab_bos(const hmti_vocab *v) { return v ? v->bos : -1; }
hmt_token hmti_vocab_eos(const hmti_vocab *v) { return v ? v->eos : -1; }
hmt_token hmti_vocab_find(const hmti_vocab *v, const char *text, size_t len) {
    return v && text && len ? text_find(v, text, len) : -1;
}
int hmti_vocab_is_eog(const hmti_vocab *v, hmt_token t) {
    return v && t >= 0 && t < v->n && hmti_eog_has(&v->eog, t);
}
hmt_token hmti_vocab_eot(const hmti_vocab *v) { return v ? v->eog.eot : -1; }
const char *hmti_vocab_chat_template(const hmti_vocab *v) { return v ? v->chat_template : NULL; }
const char *hmti_vocab_model_name(const hmti_vocab *v) {
    return !v ? "" : v->model == MODEL_SPM ? "llama" : "gpt2";
}

/* ---------------------------------------------------------------------------
 * Tokenization: shared state
 * ------------------------------------------------------------------------- */
typedef struct {
    hmt_token *out;
    size_t cap, n;
} sink;

static void emit(sink *s, hmt_token t) {
    if (s->n < s->cap) s->out[s->n] = t;
    s->n++;
}

/* Growable scratch arrays reused across fragments and words of one call. */
typedef struct {
    void *p;
    size_t cap; /* bytes */
} scratch;

static int reserve(scratch *b, size_t bytes) {
    if (bytes <= b->cap) return 0;
    size_t c = b->cap ? b->cap : 256;
    while (c < bytes) c *= 2;
    void *p = hmti_realloc(b->p, c);
    if (!p) return -1;
    b->p = p;
    b->cap = c;
    return 0;
}

typedef struct {
    const hmti_vocab *v;
    sink *out;
    const char *text; /* the fragment being encoded (gpt2) */
    scratch sym, heap, node, stack, esc;
} session;

static void session_free(session *s) {
    free(s->sym.p);
    free(s->heap.p);
    free(s->node.p);
    free(s->stack.p);
    free(s->esc.p);
}

static int nomem(void) { return hmti_errf(HMT_E_NOMEM, "tokenize: out of memory"); }

/* ---------------------------------------------------------------------------
 * SentencePiece BPE
 * ------------------------------------------------------------------------- */
typedef struct {
    uint32_t start, n; /* bytes of the escaped fragment */
    int32_t prev, next;
    int32_t node;
} spm_sym;

typedef struct {
    float score;
    int32_t left, right;
    uint32_t size;
} spm_pair;

typedef struct {
    uint32_t start, n;
    int32_t a, b; /* children, -1 for a character */
} spm_node;

/* max-heap: higher score first, then smaller left */
static int spm_before(const spm_pair *x, const spm_pair *y) {
    return x->score > y->score || (x->score == y->score && x->left < y->left);
}

static void spm_push(spm_pair *h, size_t *n, spm_pair e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!spm_before(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static spm_pair spm_pop(spm_pair *h, size_t *n) {
    spm_pair top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && spm_before(&h[c + 1], &h[c])) c++;
        if (!spm_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

/* Mergeable token with this text, or -1. */
static int32_t spm_piece(const hmti_vocab *v, const char *s, size_t n) {
    int32_t id = text_find(v, s, n);
    return (id >= 0 && v->tok[id].mergeable) ? id : -1;
}

static void spm_try_pair(session *ss, const char *s, spm_sym *sym, spm_pair *heap,
                         size_t *n_heap, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    uint32_t size = sym[l].n + sym[r].n;
    int32_t id = spm_piece(ss->v, s + sym[l].start, size);
    if (id < 0) return;
    spm_pair e = {ss->v->tok[id].score, l, r, size};
    spm_push(heap, n_heap, e);
}

static void spm_emit_bytes(session *ss, const char *s, uint32_t n) {
    const hmti_vocab *v = ss->v;
    for (uint32_t i = 0; i < n; i++) {
        if (v->byte_tok[(unsigned char)s[i]] < 0) {
            if (v->unk >= 0) emit(ss->out, v->unk);
            return;
        }
    }
    for (uint32_t i = 0; i < n; i++) emit(ss->out, v->byte_tok[(unsigned char)s[i]]);
}

/* Encode an escaped fragment (spaces already U+2581). */
static int spm_encode(session *ss, const char *s, size_t len) {
    if (len == 0) return HMT_OK;
    if (len > MAX_FRAGMENT) return hmti_errf(HMT_E_INVAL, "tokenize: text fragment too long");
    if (reserve(&ss->sym, len * sizeof(spm_sym)) || reserve(&ss->node, 2 * len * sizeof(spm_node)) ||
        reserve(&ss->heap, 2 * len * sizeof(spm_pair)) ||
        reserve(&ss->stack, 2 * len * sizeof(int32_t)))
        return nomem();
    spm_sym *sym = ss->sym.p;
    spm_node *node = ss->node.p;
    spm_pair *heap = ss->heap.p;
    int32_t n_sym = 0, n_node = 0;
    size_t n_heap = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = hmti_utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (!l) l = 1;
        sym[n_sym] = (spm_sym){(uint32_t)i, (uint32_t)l, n_sym - 1, -1, n_node};
        if (n_sym > 0) sym[n_sym - 1].next = n_sym;
        node[n_node++] = (spm_node){(uint32_t)i, (uint32_t)l, -1, -1};
        n_sym++;
        i += l;
    }
    for (int32_t i = 1; i < n_sym; i++) spm_try_pair(ss, s, sym, heap, &n_heap, i - 1, i);
    /* Heap bound: n_sym - 1 initial pairs; each merge follows a pop and pushes
     * at most 2, so the heap holds at most (n_sym - 1) + merges < 2 * len. */
    while (n_heap) {
        spm_pair e = spm_pop(heap, &n_heap);
        spm_sym *L = &sym[e.left], *R = &sym[e.right];
        if (L->n == 0 || R->n == 0 || L->n + R->n != e.size) continue;
        node[n_node] = (spm_node){L->start, e.size, L->node, R->node};
        L->node = n_node++;
        L->n = e.size;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) sym[R->next].prev = e.left;
        spm_try_pair(ss, s, sym, heap, &n_heap, L->prev, e.left);
        spm_try_pair(ss, s, sym, heap, &n_heap, e.left, L->next);
    }
    int32_t *stack = ss->stack.p;
    for (int32_t i = 0; i >= 0; i = sym[i].next) {
        size_t sp = 0;
        stack[sp++] = sym[i].node;
        while (sp) {
            const spm_node *nd = &node[stack[--sp]];
            int32_t id = spm_piece(ss->v, s + nd->start, nd->n);
            if (id >= 0 && ss->v->tok[id].type == TT_UNUSED && nd->a >= 0) {
                stack[sp++] = nd->b; /* resegment an unused piece into its parts */
                stack[sp++] = nd->a;
            } else if (id >= 0) {
                emit(ss->out, id);
            } else {
                spm_emit_bytes(ss, s + nd->start, nd->n);
            }
        }
    }
    return HMT_OK;
}

/* Escape one text fragment (optional leading space; ' ' -> U+2581) and encode. */
static int spm_fragment(session *ss, const char *text, size_t len, int prefix) {
    size_t spaces = prefix;
    for (size_t i = 0; i < len; i++) spaces += text[i] == ' ';
    if (len > MAX_FRAGMENT || spaces > MAX_FRAGMENT)
        return hmti_errf(HMT_E_INVAL, "tokenize: text fragment too long");
    size_t n = len + 2 * spaces + prefix;
    if (reserve(&ss->esc, n ? n : 1)) return nomem();
    char *o = ss->esc.p;
    size_t k = 0;
    if (prefix) {
        memcpy(o, "\xE2\x96\x81", 3);
        k = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(o + k, "\xE2\x96\x81", 3);
            k += 3;
        } else {
            o[k++] = text[i];
        }
    }
    if (!ss->v->spm_words) return spm_encode(ss, o, k);
    /* No token contains U+2581 after a non-U+2581 character, so no merge can
     * cross such a boundary: encode each "word" on its own (same result,
     * small heaps). */
    size_t seg = 0;
    for (size_t i = 1; i + 3 <= k; i++) {
        if (memcmp(o + i, "\xE2\x96\x81", 3) == 0 && !(i >= 3 && memcmp(o + i - 3, "\xE2\x96\x81", 3) == 0)) {
            int rc = spm_encode(ss, o + seg, i - seg);
            if (rc) return rc;
            seg = i;
            i += 2;
        }
    }
    return spm_encode(ss, o + seg, k - seg);
}

/* ---------------------------------------------------------------------------
 * Byte-level BPE
 * ------------------------------------------------------------------------- */
typedef struct {
    int32_t id; /* token id, -1 for a byte without a token, -3 when merged away */
    int32_t prev, next;
} bpe_sym;

typedef struct {
    int32_t rank, left, right;
    int32_t lid, rid, result;
} bpe_pair;

static int bpe_before(const bpe_pair *x, const bpe_pair *y) {
    return x->rank < y->rank || (x->rank == y->rank && x->left < y->left);
}

static void bpe_push(bpe_pair *h, size_t *n, bpe_pair e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bpe_before(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static bpe_pair bpe_pop(bpe_pair *h, size_t *n) {
    bpe_pair top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && bpe_before(&h[c + 1], &h[c])) c++;
        if (!bpe_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

static void bpe_try_pair(const hmti_vocab *v, bpe_sym *sym, bpe_pair *heap, size_t *n_heap,
                         int32_t l, int32_t r) {
    if (l < 0 || r < 0 || sym[l].id < 0 || sym[r].id < 0) return;
    const mslot *m = merge_find(v, sym[l].id, sym[r].id);
    if (!m) return;
    bpe_pair e = {m->rank, l, r, sym[l].id, sym[r].id, m->result};
    bpe_push(heap, n_heap, e);
}

/* One pre-tokenized word (raw bytes [lo, hi) of the fragment). */
static int bpe_word(void *ud, size_t lo, size_t hi) {
    session *ss = ud;
    const hmti_vocab *v = ss->v;
    const unsigned char *w = (const unsigned char *)ss->text + lo;
    size_t n = hi - lo;
    if (n > MAX_FRAGMENT) return hmti_errf(HMT_E_INVAL, "tokenize: word too long");
    if (v->ignore_merges) { /* the whole word is a token: take it as is */
        if (reserve(&ss->esc, 2 * n)) return nomem();
        char *e = ss->esc.p;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(e + k, v->byte_enc[w[i]], v->byte_enc_len[w[i]]);
            k += v->byte_enc_len[w[i]];
        }
        int32_t id = text_find(v, e, k);
        if (id >= 0) {
            emit(ss->out, id);
            return 0;
        }
    }
    if (n == 1) {
        int32_t id = v->byte_tok[w[0]];
        if (id >= 0)
            emit(ss->out, id);
        else if (v->unk >= 0)
            emit(ss->out, v->unk);
        return 0;
    }
    if (reserve(&ss->sym, n * sizeof(bpe_sym)) || reserve(&ss->heap, 2 * n * sizeof(bpe_pair)))
        return nomem();
    bpe_sym *sym = ss->sym.p;
    bpe_pair *heap = ss->heap.p;
    size_t n_heap = 0;
    for (size_t i = 0; i < n; i++)
        sym[i] = (bpe_sym){v->byte_tok[w[i]], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1};
    for (size_t i = 1; i < n; i++) bpe_try_pair(v, sym, heap, &n_heap, (int32_t)i - 1, (int32_t)i);
    /* as for SPM: the heap holds at most (n - 1) + merges < 2n pairs */
    while (n_heap) {
        bpe_pair e = bpe_pop(heap, &n_heap);
        bpe_sym *L = &sym[e.left], *R = &sym[e.right];
        if (L->id != e.lid || R->id != e.rid || L->next != e.right) continue;
        L->id = e.result;
        R->id = -3;
        L->next = R->next;
        if (R->next >= 0) sym[R->next].prev = e.left;
        bpe_try_pair(v, sym, heap, &n_heap, L->prev, e.left);
        bpe_try_pair(v, sym, heap, &n_heap, e.left, L->next);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next) {
        if (sym[i].id >= 0)
            emit(ss->out, sym[i].id);
        else if (v->unk >= 0)
            emit(ss->out, v->unk);
    }
    return 0;
}

static int bpe_fragment(session *ss, const char *text, size_t len) {
    hmti_utext u = {0};
    if (hmti_utext_decode(&u, text, len)) return nomem();
    ss->text = text;
    int rc = hmti_pretokenize(ss->v->pre, &u, bpe_word, ss);
    hmti_utext_free(&u);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Entry points
 * ------------------------------------------------------------------------- */
/* Text fragments always start the text or follow a special token, so with
 * add_space_prefix each of them gets the leading space (as in llama.cpp). */
static int fragment(session *ss, const char *text, size_t len) {
    if (len == 0) return HMT_OK;
    if (ss->v->model == MODEL_SPM) return spm_fragment(ss, text, len, ss->v->add_space_prefix);
    return bpe_fragment(ss, text, len);
}

int hmti_tokenize(const hmti_vocab *v, const char *text, size_t len, uint32_t flags,
                  hmt_token *out, size_t cap, size_t *n_out) {
    if (!v || (!text && len) || (!out && cap) || !n_out)
        return hmti_errf(HMT_E_INVAL, "tokenize: NULL argument");
    if (!text) text = "";
    sink sk = {out, cap, 0};
    session ss;
    memset(&ss, 0, sizeof ss);
    ss.v = v;
    ss.out = &sk;
    if ((flags & HMT_TOKENIZE_ADD_BOS) && v->bos >= 0) emit(&sk, v->bos);
    int parse_control = (flags & HMT_TOKENIZE_SPECIAL) != 0;
    int rc = HMT_OK;
    size_t start = 0;
    for (size_t pos = 0; pos < len && rc == HMT_OK;) {
        unsigned char b = (unsigned char)text[pos];
        int32_t hit = -1;
        for (uint32_t k = v->spec_start[b]; k < v->spec_start[b + 1]; k++) {
            const spec_ent *e = &v->spec[k];
            if (e->len > len - pos) continue;
            if (v->tok[e->id].type != TT_USER && !parse_control) continue;
            if (memcmp(text + pos, v->text + v->tok[e->id].off, e->len) == 0) {
                hit = e->id;
                break;
            }
        }
        if (hit < 0) {
            pos++;
            continue;
        }
        rc = fragment(&ss, text + start, pos - start);
        emit(&sk, hit);
        pos += v->tok[hit].len;
        start = pos;
    }
    if (rc == HMT_OK) rc = fragment(&ss, text + start, len - start);
    session_free(&ss);
    if (rc) return rc;
    *n_out = sk.n;
    if (sk.n > cap)
        return hmti_errf(HMT_E_BUFFER, "tokenize: %zu tokens do not fit in %zu", sk.n, cap);
    return HMT_OK;
}

int hmti_detokenize(const hmti_vocab *v, const hmt_token *tokens, size_t n, uint32_t flags,
                    char *buf, size_t cap, size_t *len_out) {
    if (!v || (!tokens && n) || (!buf && cap) || !len_out)
        return hmti_errf(HMT_E_INVAL, "detokenize: NULL argument");
    int special = (flags & HMT_DETOKENIZE_SPECIAL) != 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        hmt_token t = tokens[i];
        if (t < 0 || t >= v->n)
            return hmti_errf(HMT_E_TOKEN, "detokenize: token %d at index %zu outside [0, %d)", t,
                             i, v->n);
        const tok_info *ti = &v->tok[t];
        if (ti->special && !special) continue;
        size_t l = ti->piece_len;
        if (total < cap) {
            size_t room = cap - 1 - total; /* keep one byte for the NUL */
            memcpy(buf + total, v->piece + ti->piece_off, l < room ? l : room);
        }
        total += l;
    }
    if (cap) buf[total < cap ? total : cap - 1] = '\0';
    *len_out = total;
    if (total >= cap)
        return hmti_errf(HMT_E_BUFFER, "detokenize: %zu bytes (+ NUL) do not fit in %zu", total,
                         cap);
    return HMT_OK;
}
