/* libFuzzer: tokenize arbitrary bytes (invalid UTF-8 included) with every
 * committed test vocabulary (llama SentencePiece and the gpt2 pre-tokenizers),
 * check the round trip where it is promised, and detokenize arbitrary ids
 * (check_detokenize: the buffer contract and id-at-a-time decoding). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"
#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const VOCABS[] = {
    "tests/data/tokenizer/spm.gguf", "tests/data/tokenizer/bpe_gpt2.gguf",
    "tests/data/tokenizer/bpe_llama3.gguf", "tests/data/tokenizer/bpe_qwen2.gguf",
    "tests/data/tokenizer/bpe_smollm.gguf", "tests/data/tokenizer/bpe_default.gguf",
    "tests/data/tokenizer/bpe_gpt-4o.gguf"};
#define N_VOCABS (sizeof VOCABS / sizeof VOCABS[0])
static hmti_vocab *vocab[N_VOCABS];
static int ready;

static void load_all(void) {
    for (size_t i = 0; i < N_VOCABS; i++) {
        hmti_gguf *g = NULL;
        if (hmti_gguf_open(&g, VOCABS[i]) == 0) {
            if (hmti_vocab_load(&vocab[i], g) != 0) vocab[i] = NULL;
            hmti_gguf_close(g);
        }
    }
    ready = 1;
}

/* The snprintf contract of hmti_detokenize on arbitrary ids: a size query,
 * an exact-size buffer (heap, so ASan sees one byte too many), a short one,
 * and the promise that decoding one id at a time gives the same bytes. */
static void check_detokenize(const hmti_vocab *v, const hmt_token *ids, size_t m, uint8_t knob) {
    const uint32_t flags = knob & 1 ? HMT_DETOKENIZE_SPECIAL : 0;
    int in_range = 1;
    for (size_t i = 0; i < m; i++) in_range &= ids[i] >= 0 && ids[i] < hmti_vocab_n_tokens(v);
    size_t need = 0;
    int rc = hmti_detokenize(v, ids, m, flags, NULL, 0, &need);
    if (!in_range) {
        if (rc != HMT_E_TOKEN) abort();
        return;
    }
    if (rc != HMT_E_BUFFER) abort(); /* not even the NUL fits in 0 bytes */
    char *full = malloc(need + 1), *part = malloc(need + 1);
    if (!full || !part) abort();
    size_t len = 0;
    if (hmti_detokenize(v, ids, m, flags, full, need + 1, &len) || len != need || full[need])
        abort();
    const size_t short_cap = need ? (size_t)(knob >> 1) % need + 1 : 0; /* 1..need */
    if (short_cap) {
        char *s = malloc(short_cap);
        if (!s) abort();
        if (hmti_detokenize(v, ids, m, flags, s, short_cap, &len) != HMT_E_BUFFER || len != need ||
            s[short_cap - 1] || memcmp(s, full, short_cap - 1))
            abort();
        free(s);
    }
    size_t at = 0;
    for (size_t i = 0; i < m; i++) {
        if (hmti_detokenize(v, ids + i, 1, flags, part + at, need + 1 - at, &len) || at + len > need)
            abort();
        at += len;
    }
    if (at != need || memcmp(part, full, need)) abort();
    free(full);
    free(part);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!ready) load_all();
    if (size == 0) return 0;
    hmti_vocab *v = vocab[data[0] % N_VOCABS];
    if (!v) return 0;
    const char *text = (const char *)data + 1;
    const size_t len = size - 1;
    size_t n = 0;
    hmti_tokenize(v, text, len, 0, NULL, 0, &n);
    const size_t cap = n + 1;
    hmt_token *t = malloc(cap * sizeof *t);
    char *back = malloc(4 * len + 64);
    if (t && back && hmti_tokenize(v, text, len, 0, t, cap, &n) == 0) {
        size_t blen;
        if (hmti_detokenize(v, t, n, 0, back, 4 * len + 64, &blen) == 0 &&
            !strcmp(hmti_vocab_model_name(v), "gpt2") && (blen != len || memcmp(back, text, len)))
            abort(); /* gpt2 promises an exact byte round trip */
    }
    /* arbitrary ids, in range or not */
    if (t && size >= 8) {
        size_t m = (size - 1) / 4;
        if (m > cap) m = cap;
        for (size_t i = 0; i < m; i++) {
            int32_t id;
            memcpy(&id, data + 1 + 4 * i, 4);
            t[i] = id % (hmti_vocab_n_tokens(v) + 2);
        }
        check_detokenize(v, t, m, data[size - 1]);
    }
    free(t);
    free(back);
    return 0;
}
