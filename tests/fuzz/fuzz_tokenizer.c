/* libFuzzer: tokenize arbitrary bytes (invalid UTF-8 included) with every
 * committed test vocabulary (llama SentencePiece and the gpt2 pre-tokenizers),
 * check the round trip where it is promised, and detokenize arbitrary ids. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const VOCABS[] = {
    "tests/data/tokenizer/spm.gguf", "tests/data/tokenizer/bpe_gpt2.gguf",
    "tests/data/tokenizer/bpe_llama3.gguf", "tests/data/tokenizer/bpe_qwen2.gguf",
    "tests/data/tokenizer/bpe_smollm.gguf", "tests/data/tokenizer/bpe_default.gguf"};
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
        char out[512];
        size_t olen;
        (void)hmti_detokenize(v, t, m, HMT_DETOKENIZE_SPECIAL, out, sizeof out, &olen);
    }
    free(t);
    free(back);
    return 0;
}
