/* libFuzzer: the GGUF reader over arbitrary bytes; when a file opens, every
 * key, string, array element and tensor byte is read, so ASan sees any
 * pointer the validation let through. Then the tokenizer vocabulary loader
 * runs on the same metadata. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"
#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1); /* exact size: over-reads trap */
    if (!copy) return 0;
    memcpy(copy, data, size);
    hmti_gguf *g = NULL;
    if (hmti_gguf_open_buffer(&g, copy, size) == 0) {
        volatile uint64_t sink = 0;
        char text[64];
        for (uint64_t i = 0; i < hmti_gguf_n_kv(g); i++) {
            hmti_str k = hmti_gguf_key_name(g, (int64_t)i);
            sink += k.len ? (uint8_t)k.ptr[k.len - 1] : 0;
            sink += hmti_gguf_value_text(g, (int64_t)i, text, sizeof text);
        }
        for (uint64_t i = 0; i < hmti_gguf_n_tensors(g); i++) {
            const hmti_gguf_tensor *t = hmti_gguf_tensor_at(g, i);
            for (uint64_t b = 0; b < t->nbytes; b += 61) sink += ((const uint8_t *)t->data)[b];
            if (t->nbytes) sink += ((const uint8_t *)t->data)[t->nbytes - 1];
        }
        hmti_vocab *v = NULL;
        if (hmti_vocab_load(&v, g) == 0) {
            static const char probe[] = "Hello, world! 123 <s> \xe2\x96\x81x \xff";
            hmt_token toks[64];
            size_t n = 0;
            if (hmti_tokenize(v, probe, sizeof probe - 1, HMT_TOKENIZE_SPECIAL, toks, 64, &n) == 0) {
                char out[256];
                size_t len;
                (void)hmti_detokenize(v, toks, n, HMT_DETOKENIZE_SPECIAL, out, sizeof out, &len);
            }
            hmti_vocab_free(v);
        }
        (void)sink;
        hmti_gguf_close(g);
    }
    free(copy);
    return 0;
}
