/* libFuzzer: restore arbitrary bytes as an HMT stream snapshot, into one
 * stream per mode (full, rmt, segments, window, sinks; the snapshot's own mode
 * setting picks the stream, so a real snapshot reaches the stream it fits).
 * Each input is restored twice: as it is, where the checksum is the first
 * gate, and with its trailing checksum recomputed, so that mutations reach
 * the validation behind it. A refused snapshot must leave the stream as it
 * was; an accepted one must save back to the same bytes and leave a stream
 * that keeps working.
 * With HMT_FUZZ_SEEDS=DIR, LLVMFuzzerInitialize writes real snapshots of
 * each mode, taken at several points of a document, into DIR. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixed_checksum.h"
#include "hmt/hmt.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { N_MODES = 5 };
static hmt_model *model;
static hmt_adapter *adapter;
static hmt_stream *stream[N_MODES];
static uint8_t *scratch;
static size_t scratch_cap;

/* Set-up steps must work: say which one did not. */
static void must(int rc, const char *what) {
    if (rc == HMT_OK) return;
    fprintf(stderr, "fuzz_snapshot: %s: %s\n", what, hmt_last_error_msg());
    abort();
}

/* Small segments and caches keep the snapshots small (a few kB), so the
 * fuzzer mutates them quickly. */
static hmt_stream *make_stream(int mode) {
    hmt_params *p = NULL;
    hmt_stream *s = NULL;
    must(hmt_params_create(&p), "params");
    must(hmt_params_set_int(p, HMT_P_N_THREADS, 1), "threads");
    must(hmt_params_set_int(p, HMT_P_MODE, mode), "mode");
    const int plain = mode == HMT_MODE_WINDOW || mode == HMT_MODE_SINKS;
    if (plain) {
        must(hmt_params_set_int(p, HMT_P_WINDOW, 12), "window");
        if (mode == HMT_MODE_SINKS) must(hmt_params_set_int(p, HMT_P_SINKS, 3), "sinks");
    } else {
        must(hmt_params_set_int(p, HMT_P_SEGMENT_LENGTH, 8), "segment length");
        must(hmt_params_set_int(p, HMT_P_SENSORY_LENGTH, 3), "sensory length");
        must(hmt_params_set_int(p, HMT_P_CACHE_SIZE, 3), "cache size");
        must(hmt_params_set_int(p, HMT_P_GEN_SUMMARY_LENGTH, 4), "summary length");
    }
    must(hmt_stream_create(&s, model, plain ? NULL : adapter, p), "stream");
    hmt_params_free(p);
    return s;
}

static void write_seeds(const char *dir) {
    static const int points[] = {0, 3, 8, 13, 30};
    for (int mode = 0; mode < N_MODES; mode++) {
        hmt_stream *s = make_stream(mode);
        int fed = 0;
        for (size_t i = 0; i < sizeof points / sizeof points[0]; i++) {
            for (; fed < points[i]; fed++) {
                hmt_token t = (hmt_token)(fed * 37 % 1000 + 3);
                must(hmt_stream_feed(s, &t, 1), "feed");
            }
            for (int flushed = 0; flushed < 2; flushed++) {
                char path[512];
                snprintf(path, sizeof path, "%s/mode%d-fed%d%s.snap", dir, mode, fed,
                         flushed ? "-flushed" : "");
                must(hmt_stream_save_file(s, path), path);
                if (!flushed) must(hmt_stream_flush(s), "flush");
            }
        }
        hmt_stream_free(s);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    must(hmt_model_load(&model, "models/demo-random-f16.gguf", NULL), "model");
    must(hmt_adapter_load(&adapter, model, "models/demo-random-hmt.gguf"), "adapter");
    const char *dir = getenv("HMT_FUZZ_SEEDS");
    if (dir) write_seeds(dir);
    for (int mode = 0; mode < N_MODES; mode++) stream[mode] = make_stream(mode);
    return 0;
}

static void restore_one(const uint8_t *data, size_t size, void *stream_) {
    hmt_stream *s = stream_;
    const int64_t fed = hmt_stream_n_fed(s);
    hmt_token t = 5;
    if (hmt_stream_restore(s, data, size) != HMT_OK) {
        if (hmt_stream_n_fed(s) != fed || hmt_stream_feed(s, &t, 1) != HMT_OK) abort();
        return;
    }
    size_t len = 0;
    if (size > scratch_cap || hmt_stream_save(s, scratch, scratch_cap, &len) || len != size ||
        memcmp(scratch, data, size))
        abort(); /* the accepted state is exactly what a save gives back */
    /* and it carries on: the open segment's pass runs on the restored state */
    if (hmt_stream_feed(s, &t, 1) != HMT_OK || hmt_stream_flush(s) != HMT_OK) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint32_t mode = 0; /* settings[0], after magic, version and fingerprints */
    if (size >= 28) memcpy(&mode, data + 24, 4);
    hmt_stream *s = stream[mode % N_MODES];
    if (size > scratch_cap) {
        free(scratch);
        scratch_cap = size;
        if (!(scratch = malloc(scratch_cap))) abort();
    }
    run_as_is_and_fixed(data, size, restore_one, s);
    return 0;
}
