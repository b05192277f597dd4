/* UTF-8, character classes, the GPT-2 byte map and the pre-tokenizer regexes
 * of llama.cpp written out as matchers (no regex library). */
#include "core/alloc.h"
#include "text/unicode.h"

#include <stdlib.h>

#include "hmt/hmt.h"

/* ---------------------------------------------------------------------------
 * Character classes
 * ------------------------------------------------------------------------- */
unsigned hmti_uc_flags(uint32_t cp) {
    if (cp > 0x10FFFF) return 0;
    /* last run whose first codepoint is <= cp */
    size_t lo = 0, hi = hmti_uc_n_runs;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((hmti_uc_runs[mid] >> 8) <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return hmti_uc_runs[lo] & 0xFFu;
}

/* ASCII classes, filled once from the table (constant data, thread-safe to
 * compute redundantly, but we simply compute per decode call: 128 lookups). */
static void ascii_flags(uint8_t out[128]) {
    for (uint32_t c = 0; c < 128; c++) out[c] = (uint8_t)hmti_uc_flags(c);
}

/* ---------------------------------------------------------------------------
 * UTF-8
 * ------------------------------------------------------------------------- */
size_t hmti_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0; /* continuation byte, C0/C1, F5..FF */
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

size_t hmti_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---------------------------------------------------------------------------
 * GPT-2 bytes_to_unicode: printable Latin-1 bytes stand for themselves, the
 * other 68 bytes map in order to U+0100..U+0143.
 * ------------------------------------------------------------------------- */
static int gpt2_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t hmti_gpt2_byte_to_cp(uint8_t b) {
    if (gpt2_printable(b)) return b;
    uint32_t n = 0; /* number of non-printable bytes below b */
    for (unsigned i = 0; i < b; i++) n += !gpt2_printable(i);
    return 256 + n;
}

int hmti_gpt2_cp_to_byte(uint32_t cp) {
    if (cp < 256) return gpt2_printable(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    uint32_t k = cp - 256;
    for (unsigned b = 0; b < 256; b++) {
        if (!gpt2_printable(b)) {
            if (k == 0) return (int)b;
            k--;
        }
    }
    return -1;
}

/* ---------------------------------------------------------------------------
 * Decoded text
 * ------------------------------------------------------------------------- */
int hmti_utext_decode(hmti_utext *u, const char *s, size_t len) {
    u->n = 0;
    u->cp = hmti_malloc((len ? len : 1) * sizeof *u->cp);
    u->fl = hmti_malloc(len ? len : 1);
    u->off = hmti_malloc((len + 1) * sizeof *u->off);
    if (!u->cp || !u->fl || !u->off) {
        hmti_utext_free(u);
        return HMT_E_NOMEM;
    }
    uint8_t af[128];
    ascii_flags(af);
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, n = 0;
    while (i < len) {
        uint32_t cp;
        size_t l;
        if (p[i] < 0x80) {
            cp = p[i];
            l = 1;
            u->fl[n] = af[cp];
        } else {
            l = hmti_utf8_decode(p + i, len - i, &cp);
            if (l == 0) {
                cp = 0xFFFD; /* one ill-formed byte: "other" */
                l = 1;
                u->fl[n] = 0;
            } else {
                u->fl[n] = (uint8_t)hmti_uc_flags(cp);
            }
        }
        u->cp[n] = cp;
        u->off[n] = i;
        n++;
        i += l;
    }
    u->off[n] = len;
    u->n = n;
    return HMT_OK;
}

void hmti_utext_free(hmti_utext *u) {
    free(u->cp);
    free(u->fl);
    free(u->off);
    u->cp = NULL;
    u->fl = NULL;
    u->off = NULL;
    u->n = 0;
}

/* ---------------------------------------------------------------------------
 * Regex matchers. Each returns the length (in units) of the match that the
 * regex would find starting exactly at p within the piece [.., hi), trying
 * alternatives in order as a backtracking engine does, or 0 for none.
 * ------------------------------------------------------------------------- */
#define LNS (HMTI_UC_LETTER | HMTI_UC_NUMBER | HMTI_UC_SPACE)

typedef size_t (*matcher_fn)(const uint32_t *cp, const uint8_t *fl, size_t p, size_t hi);

/* How a contraction's letters compare: exactly (GPT-2), ASCII case-blind
 * (llama.cpp's spelling of (?i:...)), or by Unicode simple case folding, as
 * (?i:...) does in tiktoken's and Hugging Face's regex engines: among these
 * letters that only adds U+017F LONG S, which folds to 's'. */
typedef enum { CASE_EXACT, CASE_ASCII, CASE_UNICODE } case_mode;

static uint32_t fold(uint32_t c, case_mode m) {
    if (m == CASE_EXACT) return c;
    if (c >= 'A' && c <= 'Z') return c + 32;
    return (m == CASE_UNICODE && c == 0x17F) ? 's' : c;
}

/* 's|'t|'re|'ve|'m|'ll|'d at p (p < hi). */
static size_t contraction(const uint32_t *cp, size_t p, size_t hi, case_mode m) {
    if (cp[p] != '\'' || p + 1 >= hi) return 0;
    uint32_t a = fold(cp[p + 1], m);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (p + 2 >= hi) return 0;
    uint32_t b = fold(cp[p + 2], m);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* \s+(?!\S)|\s+ at p (p is whitespace). */
static size_t trailing_space(const uint8_t *fl, size_t p, size_t hi) {
    size_t k = 0;
    while (p + k < hi && (fl[p + k] & HMTI_UC_SPACE)) k++;
    if (k > 1 && p + k < hi) return k - 1; /* leave one space for the next word */
    return k;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t match_gpt2(const uint32_t *cp, const uint8_t *fl, size_t p, size_t hi) {
    size_t m = contraction(cp, p, hi, CASE_EXACT);
    if (m) return m;
    size_t q = (cp[p] == ' ' && p + 1 < hi) ? p + 1 : p;
    unsigned f = fl[q];
    size_t e = q + 1;
    if (f & HMTI_UC_LETTER) {
        while (e < hi && (fl[e] & HMTI_UC_LETTER)) e++;
        return e - p;
    }
    if (f & HMTI_UC_NUMBER) {
        while (e < hi && (fl[e] & HMTI_UC_NUMBER)) e++;
        return e - p;
    }
    if (!(f & LNS)) {
        while (e < hi && !(fl[e] & LNS)) e++;
        return e - p;
    }
    return trailing_space(fl, p, hi);
}

/* The alternatives after the words, shared by Llama 3, Qwen2 and GPT-4o:
 * \p{N}{1,max_digits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * (GPT-4o: [\r\n/]* after the symbols). */
static size_t llama3_tail(const uint32_t *cp, const uint8_t *fl, size_t p, size_t hi,
                          size_t max_digits, int slash) {
    if (fl[p] & HMTI_UC_NUMBER) {
        size_t e = p + 1;
        while (e < hi && e - p < max_digits && (fl[e] & HMTI_UC_NUMBER)) e++;
        return e - p;
    }
    size_t q = (cp[p] == ' ' && p + 1 < hi) ? p + 1 : p;
    if (!(fl[q] & LNS)) {
        size_t e = q + 1;
        while (e < hi && !(fl[e] & LNS)) e++;
        while (e < hi && (cp[e] == '\r' || cp[e] == '\n' || (slash && cp[e] == '/'))) e++;
        return e - p;
    }
    /* whitespace: \s*[\r\n]+ ends after the run's last \r or \n */
    size_t k = 0, end_rn = 0;
    while (p + k < hi && (fl[p + k] & HMTI_UC_SPACE)) {
        if (cp[p + k] == '\r' || cp[p + k] == '\n') end_rn = k + 1;
        k++;
    }
    if (end_rn) return end_rn;
    return trailing_space(fl, p, hi);
}

/* Llama 3 (max_digits 3) and Qwen2 (max_digits 1):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t match_llama3_n(const uint32_t *cp, const uint8_t *fl, size_t p, size_t hi,
                             size_t max_digits) {
    size_t m = contraction(cp, p, hi, CASE_ASCII);
    if (m) return m;
    uint32_t c = cp[p];
    unsigned f = fl[p];
    if (c != '\r' && c != '\n' && !(f & HMTI_UC_NUMBER)) {
        size_t e = 0;
        if (f & HMTI_UC_LETTER)
            e = p + 1;
        else if (p + 1 < hi && (fl[p + 1] & HMTI_UC_LETTER))
            e = p + 2;
        if (e) {
            while (e < hi && (fl[e] & HMTI_UC_LETTER)) e++;
            return e - p;
        }
    }
    return llama3_tail(cp, fl, p, hi, max_digits, 0);
}

static size_t match_llama3(const uint32_t *cp, const uint8_t *fl, size_t p, size_t hi) {
    return match_llama3_n(cp, fl, p, hi, 3);
}

static size_t match_qwen2(const uint32_t *cp, const uint8_t *fl, size_t p, size_t hi) {
    return match_llama3_n(cp, fl, p, hi, 1);
}

/* GPT-4o (tiktoken's o200k_base, also in Hugging Face's tokenizer.json), with
 * U = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}], W = [\p{Ll}\p{Lm}\p{Lo}\p{M}],
 * X = [^\r\n\p{L}\p{N}] and C = (?i:'s|'t|'re|'ve|'m|'ll|'d):
 *   X?U*W+C?|X?U+W*C?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * Marks are in U and W but not \p{L}, so X may take one too. */
static int o200k_u(unsigned f) {
    return (f & HMTI_UC_MARK) || ((f & HMTI_UC_LETTER) && !(f & HMTI_UC_LOWER));
}

static int o200k_w(unsigned f) {
    return (f & HMTI_UC_MARK) || ((f & HMTI_UC_LETTER) && !(f & HMTI_UC_UPPER));
}

/* U*W+ at q: its end, or q for no match. When no W follows the greedy U run,
 * backtracking hands W+ the run's last character that is in both classes
 * (Lm, Lo or M), and the match ends after it. */
static size_t o200k_mixed_word(const uint8_t *fl, size_t q, size_t hi) {
    size_t a = q, after_both = q;
    while (a < hi && o200k_u(fl[a])) {
        a++;
        if (o200k_w(fl[a - 1])) after_both = a;
    }
    if (a == hi || !o200k_w(fl[a])) return after_both;
    while (a < hi && o200k_w(fl[a])) a++;
    return a;
}

/* U+W* at q: its end, or q for no match. */
static size_t o200k_upper_word(const uint8_t *fl, size_t q, size_t hi) {
    size_t a = q;
    while (a < hi && o200k_u(fl[a])) a++;
    if (a == q) return q;
    while (a < hi && o200k_w(fl[a])) a++;
    return a;
}

static size_t match_gpt4o(const uint32_t *cp, const uint8_t *fl, size_t p, size_t hi) {
    static size_t (*const words[2])(const uint8_t *, size_t, size_t) = {o200k_mixed_word,
                                                                         o200k_upper_word};
    int x = cp[p] != '\r' && cp[p] != '\n' && !(fl[p] & (HMTI_UC_LETTER | HMTI_UC_NUMBER));
    /* each word alternative with X? taken first, then empty */
    for (size_t k = 0; k < 2; k++) {
        for (size_t q = p + (size_t)x;; q--) {
            size_t e = q < hi ? words[k](fl, q, hi) : q;
            if (e > q) return e - p + (e < hi ? contraction(cp, e, hi, CASE_UNICODE) : 0);
            if (q == p) break;
        }
    }
    return llama3_tail(cp, fl, p, hi, 3, 1);
}

/* \p{N} */
static size_t match_digit(const uint32_t *cp, const uint8_t *fl, size_t p, size_t hi) {
    (void)cp;
    (void)hi;
    return (fl[p] & HMTI_UC_NUMBER) ? 1 : 0;
}

/* \p{N}+ */
static size_t match_digits(const uint32_t *cp, const uint8_t *fl, size_t p, size_t hi) {
    (void)cp;
    size_t e = p;
    while (e < hi && (fl[e] & HMTI_UC_NUMBER)) e++;
    return e - p;
}

/* [\p{P}\$\+<=>\^~\|]+ */
static int default_punct(uint32_t c, unsigned f) {
    return (f & HMTI_UC_PUNCT) || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' ||
           c == '^' || c == '~' || c == '|';
}

static size_t match_punct_run(const uint32_t *cp, const uint8_t *fl, size_t p, size_t hi) {
    size_t e = p;
    while (e < hi && default_punct(cp[e], fl[e])) e++;
    return e - p;
}

/* [0-9][0-9][0-9] */
static size_t match_ascii3(const uint32_t *cp, const uint8_t *fl, size_t p, size_t hi) {
    (void)fl;
    if (hi - p < 3) return 0;
    for (size_t i = 0; i < 3; i++)
        if (cp[p + i] < '0' || cp[p + i] > '9') return 0;
    return 3;
}

/* ---------------------------------------------------------------------------
 * Chained splitting, depth first: every piece of stage k is split by stage
 * k+1 before the next piece of stage k is looked at, so pieces come out in
 * text order without intermediate arrays.
 * ------------------------------------------------------------------------- */
typedef struct {
    const matcher_fn *stages;
    size_t n_stages;
    const hmti_utext *u;
    hmti_piece_fn fn;
    void *ud;
} split_ctx;

static int split(const split_ctx *s, size_t k, size_t lo, size_t hi) {
    if (lo >= hi) return 0;
    if (k == s->n_stages) return s->fn(s->ud, s->u->off[lo], s->u->off[hi]);
    matcher_fn match = s->stages[k];
    size_t p = lo, gap = lo;
    int rc;
    while (p < hi) {
        size_t m = match(s->u->cp, s->u->fl, p, hi);
        if (!m) {
            p++;
            continue;
        }
        if (gap < p && (rc = split(s, k + 1, gap, p)) != 0) return rc;
        if ((rc = split(s, k + 1, p, p + m)) != 0) return rc;
        p += m;
        gap = p;
    }
    return gap < hi ? split(s, k + 1, gap, hi) : 0;
}

int hmti_pretokenize(hmti_pre_type pre, const hmti_utext *u, hmti_piece_fn fn,
                     void *user_data) {
    static const matcher_fn st_default[] = {match_punct_run, match_gpt2, match_digits,
                                            match_ascii3};
    static const matcher_fn st_gpt2[] = {match_gpt2};
    static const matcher_fn st_llama3[] = {match_llama3};
    static const matcher_fn st_qwen2[] = {match_qwen2};
    static const matcher_fn st_smollm[] = {match_digit, match_gpt2};
    static const matcher_fn st_gpt4o[] = {match_gpt4o};
    split_ctx s = {NULL, 0, u, fn, user_data};
    switch (pre) {
    case HMTI_PRE_GPT2:
        s.stages = st_gpt2;
        s.n_stages = 1;
        break;
    case HMTI_PRE_LLAMA3:
        s.stages = st_llama3;
        s.n_stages = 1;
        break;
    case HMTI_PRE_QWEN2:
        s.stages = st_qwen2;
        s.n_stages = 1;
        break;
    case HMTI_PRE_SMOLLM:
        s.stages = st_smollm;
        s.n_stages = 2;
        break;
    case HMTI_PRE_GPT4O:
        s.stages = st_gpt4o;
        s.n_stages = 1;
        break;
    case HMTI_PRE_DEFAULT:
    default:
        s.stages = st_default;
        s.n_stages = 4;
        break;
    }
    return split(&s, 0, 0, u->n);
}
