/* libFuzzer: arbitrary bytes as an HMT adapter GGUF for the demo model. The
 * GGUF container is parsed first (fuzz_gguf covers it in depth); here the
 * hmt.* keys and tensors are validated against the model. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream/adapter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hmt_model *model;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!model && hmt_model_load(&model, "models/demo-random-f16.gguf", NULL)) abort();
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    hmti_gguf *g = NULL;
    if (hmti_gguf_open_buffer(&g, copy, size) == 0) {
        hmt_adapter *a = NULL;
        if (hmti_adapter_load_gguf(&a, model, g) == 0) {
            double v;
            if (hmt_adapter_get(a, HMT_P_RECALL_DIM, &v) || v < 1) abort();
            hmt_adapter_free(a);
        }
        hmti_gguf_close(g);
    }
    free(copy);
    return 0;
}
