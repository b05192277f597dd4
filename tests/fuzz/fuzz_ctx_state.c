/* libFuzzer: restore arbitrary bytes as a context state (hmt_ctx_restore).
 * Each input is restored twice: as it is, where the checksum is the first
 * gate, and with its trailing checksum recomputed, so that mutations reach
 * the checks behind it. A refused state must leave the context exactly as
 * it was (its own saved bytes unchanged); an accepted one must save back to
 * the same bytes and leave a context that keeps evaluating.
 * Every input goes to two contexts, one with an F32 and one with an F16 KV
 * cache (format versions 1 and 2). With HMT_FUZZ_SEEDS=DIR,
 * LLVMFuzzerInitialize writes real states of both (several lengths and
 * output requests) into DIR. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixed_checksum.h"
#include "hmt/hmt.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { N_CTX = 16 };
static hmt_model *model;
static hmt_ctx *ctxs[2]; /* F32 and F16 KV caches */

static void must(int rc, const char *what) {
    if (rc == HMT_OK) return;
    fprintf(stderr, "fuzz_ctx_state: %s: %s\n", what, hmt_last_error_msg());
    abort();
}

/* A small cache keeps the states small (a few to 40 kB). */
static hmt_ctx *make_ctx(int kv_type) {
    hmt_params *p = NULL;
    hmt_ctx *c = NULL;
    must(hmt_params_create(&p), "params");
    must(hmt_params_set_int(p, HMT_P_KV_TYPE, kv_type), "kv type");
    must(hmt_params_set_int(p, HMT_P_N_THREADS, 1), "threads");
    must(hmt_params_set_int(p, HMT_P_N_CTX, N_CTX), "n_ctx");
    must(hmt_ctx_create(&c, model, p), "context");
    hmt_params_free(p);
    return c;
}

static void write_seeds(const char *dir, int kv_type) {
    static const uint8_t flags[4] = {HMT_OUT_LOGITS, HMT_OUT_HIDDEN | HMT_OUT_FFN_INPUT, 0,
                                     HMT_OUT_LOGITS | HMT_OUT_HIDDEN};
    const char *kv = kv_type == HMT_KV_F32 ? "" : "f16-";
    hmt_ctx *c = make_ctx(kv_type);
    char path[512];
    for (int n = 0; n <= 12; n += 4) {
        if (n) {
            hmt_token t[4];
            for (int i = 0; i < 4; i++) t[i] = (hmt_token)((n + i) * 37 % 1000 + 3);
            must(hmt_ctx_eval(c, t, NULL, 4, NULL, n == 8 ? flags : NULL), "eval");
        }
        snprintf(path, sizeof path, "%s/%sn_past%d.state", dir, kv, n);
        must(hmt_ctx_save_file(c, path), path);
    }
    must(hmt_ctx_kv_rewind(c, 3), "rewind"); /* no outputs */
    snprintf(path, sizeof path, "%s/%srewound.state", dir, kv);
    must(hmt_ctx_save_file(c, path), path);
    hmt_ctx_free(c);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    must(hmt_model_load(&model, "models/demo-random-f16.gguf", NULL), "model");
    const char *dir = getenv("HMT_FUZZ_SEEDS");
    if (dir) write_seeds(dir, HMT_KV_F32), write_seeds(dir, HMT_KV_F16);
    ctxs[0] = make_ctx(HMT_KV_F32);
    ctxs[1] = make_ctx(HMT_KV_F16);
    return 0;
}

/* The context's own state, malloc'd. */
static uint8_t *state_of(hmt_ctx *ctx, size_t *len) {
    if (hmt_ctx_save(ctx, NULL, 0, len) != HMT_E_BUFFER) abort();
    uint8_t *b = malloc(*len);
    if (!b || hmt_ctx_save(ctx, b, *len, len)) abort();
    return b;
}

static void restore_one(const uint8_t *data, size_t size, void *arg) {
    hmt_ctx *ctx = arg;
    size_t before_len, after_len;
    uint8_t *before = state_of(ctx, &before_len);
    if (hmt_ctx_restore(ctx, data, size) != HMT_OK) {
        uint8_t *after = state_of(ctx, &after_len);
        if (after_len != before_len || memcmp(after, before, after_len)) abort();
        free(after);
        free(before);
        return;
    }
    free(before);
    uint8_t *after = state_of(ctx, &after_len); /* the accepted state is what a save gives back */
    if (after_len != size || memcmp(after, data, size)) abort();
    free(after);
    hmt_token t = 5; /* and it carries on where there is room */
    const int full = hmt_ctx_n_past(ctx) == N_CTX;
    if (hmt_ctx_eval_tokens(ctx, &t, 1, 0) != (full ? HMT_E_CTX_FULL : HMT_OK)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int k = 0; k < 2; k++) run_as_is_and_fixed(data, size, restore_one, ctxs[k]);
    return 0;
}
