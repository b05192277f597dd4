/* libFuzzer: restore arbitrary bytes as an HMT stream snapshot. A refused
 * snapshot must leave the stream as it was (it keeps feeding); an accepted
 * one must leave a stream that keeps working. The checksum makes random
 * inputs fail early, so the seeds (real snapshots) matter: the fuzzer
 * mutates them and the checksum check is the first gate. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "hmt/hmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hmt_model *model;
static hmt_adapter *adapter;
static hmt_stream *stream;

static void setup(void) {
    hmt_params *p = NULL;
    if (hmt_model_load(&model, "models/demo-random-f16.gguf", NULL) ||
        hmt_adapter_load(&adapter, model, "models/demo-random-hmt.gguf") || hmt_params_create(&p) ||
        hmt_params_set_int(p, HMT_P_N_THREADS, 1) ||
        hmt_stream_create(&stream, model, adapter, p))
        abort();
    hmt_params_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!stream) setup();
    int64_t fed = hmt_stream_n_fed(stream);
    int rc = hmt_stream_restore(stream, data, size);
    if (rc != HMT_OK && hmt_stream_n_fed(stream) != fed) abort();
    hmt_token t = 5;
    if (hmt_stream_feed(stream, &t, 1) != HMT_OK) abort();
    return 0;
}
