/* Context states (hmt_ctx_save / _restore / _save_file / _restore_file,
 * docs/API.md "Context state"): a restored context gives the saved outputs
 * and continues bit-identically, in the same context and in fresh ones;
 * states are refused by contexts too small or of another model; every
 * corruption is refused with the context unchanged; files are read and
 * written safely. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backbone/model.h"
#include "core/alloc.h"
#include "core/fnv.h"
#include "hmt/hmt.h"
#include "io/atomic_file.h"
#include "util/testutil.h"

enum { HEAD = 24 }; /* "HMTC", version, fingerprint, n_past, n_rows */

static hmt_ctx *new_ctx(hmt_model *m, int n_ctx, int n_threads, int n_batch) {
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_CTX, n_ctx), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, n_threads), HMT_OK);
    if (n_batch) ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_BATCH, n_batch), HMT_OK);
    hmt_ctx *c = NULL;
    ck_assert_msg(hmt_ctx_create(&c, m, p) == HMT_OK, "%s", hmt_last_error_msg());
    hmt_params_free(p);
    return c;
}

static void fill_tokens(hmt_token *t, int n, uint64_t seed, const hmt_model *m) {
    for (int i = 0; i < n; i++) t[i] = (hmt_token)(hmt_test_urand(&seed) * hmt_model_n_vocab(m));
}

/* The state of c, as a malloc'd buffer (the size query first). */
static unsigned char *save(const hmt_ctx *c, size_t *len) {
    ck_assert_int_eq(hmt_ctx_save(c, NULL, 0, len), HMT_E_BUFFER);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "needs"));
    unsigned char *b = malloc(*len);
    size_t again = 0;
    ck_assert_int_eq(hmt_ctx_save(c, b, *len - 1, &again), HMT_E_BUFFER);
    ck_assert_uint_eq(again, *len);
    ck_assert_int_eq(hmt_ctx_save(c, b, *len, &again), HMT_OK);
    ck_assert_uint_eq(again, *len);
    return b;
}

/* c's state is still exactly `want` (its cache, n_past and outputs). */
static void expect_state(const hmt_ctx *c, const unsigned char *want, size_t want_len,
                         const char *after) {
    size_t len = 0;
    EXPECT_MSG(hmt_ctx_save(c, NULL, 0, &len) == HMT_E_BUFFER, "%s: size query", after);
    unsigned char *b = malloc(len);
    EXPECT_MSG(hmt_ctx_save(c, b, len, &len) == HMT_OK, "%s: save", after);
    EXPECT_MSG(len == want_len && !memcmp(b, want, len), "%s: the context changed", after);
    free(b);
}

/* The output rows of c's last eval, compared with another context's. */
static void expect_same_outputs(const hmt_ctx *a, const hmt_ctx *b, int n_rows) {
    const hmt_model *m = hmt_ctx_model(a);
    const size_t nv = (size_t)hmt_model_n_vocab(m) * 4, ne = (size_t)hmt_model_n_embd(m) * 4;
    for (int i = -1; i <= n_rows; i++) {
        const float *x[3] = {hmt_ctx_logits(a, i), hmt_ctx_hidden(a, i), hmt_ctx_ffn_input(a, i)};
        const float *y[3] = {hmt_ctx_logits(b, i), hmt_ctx_hidden(b, i), hmt_ctx_ffn_input(b, i)};
        for (int k = 0; k < 3; k++) {
            ck_assert_msg(!x[k] == !y[k], "row %d output %d: present in one context only", i, k);
            if (x[k]) ck_assert_msg(!memcmp(x[k], y[k], k ? ne : nv), "row %d output %d differs", i, k);
        }
    }
}

/* Prompt A in two evals, the second with mixed output requests. */
enum { A1 = 37, A2 = 6, NB = 5 }; /* A1 + A2 past one 32-slot block of keys */
static const uint8_t A2_FLAGS[A2] = {HMT_OUT_LOGITS | HMT_OUT_HIDDEN | HMT_OUT_FFN_INPUT, 0,
                                     HMT_OUT_HIDDEN, HMT_OUT_FFN_INPUT, 0,
                                     HMT_OUT_LOGITS | HMT_OUT_HIDDEN};

static void eval_a(hmt_ctx *c) {
    const hmt_model *m = hmt_ctx_model(c);
    hmt_token t[A1 + A2];
    fill_tokens(t, A1 + A2, 0xA11CE, m);
    ck_assert_int_eq(hmt_ctx_eval_tokens(c, t, A1, 0), HMT_OK);
    ck_assert_int_eq(hmt_ctx_eval(c, t + A1, NULL, A2, NULL, A2_FLAGS), HMT_OK);
}

/* Batch B with every row's logits, copied to a malloc'd block. */
static float *eval_b(hmt_ctx *c) {
    const hmt_model *m = hmt_ctx_model(c);
    const size_t nv = (size_t)hmt_model_n_vocab(m);
    hmt_token t[NB];
    fill_tokens(t, NB, 0xB0B, m);
    ck_assert_msg(hmt_ctx_eval_tokens(c, t, NB, 1) == HMT_OK, "%s", hmt_last_error_msg());
    float *x = malloc(NB * nv * sizeof *x);
    for (int i = 0; i < NB; i++) memcpy(x + i * nv, hmt_ctx_logits(c, i), nv * sizeof *x);
    return x;
}

static const char *MODELS[] = {"llama-f32.gguf",  "qwen2-f32.gguf",    "llama-mha-f32.gguf",
                               "llama-q8.gguf",   "llama-bf16.gguf",   "qwen3-f32.gguf",
                               "gemma2-f32.gguf", "gemma3-f32.gguf",   "llama-hd128-f32.gguf"};
enum { N_MODELS = sizeof MODELS / sizeof *MODELS };

/* Eval A, save, eval B -> X; restore, eval B -> X bit for bit: in the same
 * context, a fresh one, one with a larger n_ctx. A smaller n_batch or more
 * threads restore the same state, but B's arithmetic is then split
 * differently (more threads: X within float32 rounding). */
START_TEST(round_trip_is_bit_identical) {
    hmt_model *m = hmt_test_load_model(MODELS[_i]);
    const size_t nv = (size_t)hmt_model_n_vocab(m);
    hmt_ctx *a = new_ctx(m, 64, 1, 0);
    eval_a(a);
    size_t len;
    unsigned char *s = save(a, &len);
    /* only the positions in use are saved */
    const size_t kvd = (size_t)m->n_head_kv * (size_t)m->head_dim;
    const size_t outs = 2 * nv + (3 + 1 + 1) * (size_t)m->n_embd; /* by A2_FLAGS */
    ck_assert_uint_eq(len, HEAD + A2 + 2 * (size_t)m->n_layer * kvd * (A1 + A2) * 4 + outs * 4 + 8);
    float *x = eval_b(a);
    ck_assert_int_eq(hmt_ctx_restore(a, s, len), HMT_OK);
    ck_assert_int_eq(hmt_ctx_n_past(a), A1 + A2);
    expect_state(a, s, len, "restore into the same context");
    for (int i = 0; i < A2; i++) { /* the saved outputs, row by row */
        ck_assert(!hmt_ctx_logits(a, i) == !(A2_FLAGS[i] & HMT_OUT_LOGITS));
        ck_assert(!hmt_ctx_hidden(a, i) == !(A2_FLAGS[i] & HMT_OUT_HIDDEN));
        ck_assert(!hmt_ctx_ffn_input(a, i) == !(A2_FLAGS[i] & HMT_OUT_FFN_INPUT));
    }
    ck_assert_ptr_null(hmt_ctx_logits(a, A2));
    float *y = eval_b(a);
    ck_assert_msg(!memcmp(x, y, NB * nv * sizeof *x), "%s: the same context diverged", MODELS[_i]);
    free(y);

    struct {
        int n_ctx, n_threads, n_batch;
    } fresh[] = {{64, 1, 0}, {A1 + A2, 1, 0}, {128, 1, 0}, {64, 1, 3}};
    hmt_ctx *ref = new_ctx(m, 64, 1, 0);
    eval_a(ref);
    for (size_t f = 0; f < sizeof fresh / sizeof *fresh; f++) {
        hmt_ctx *b = new_ctx(m, fresh[f].n_ctx, fresh[f].n_threads, fresh[f].n_batch);
        ck_assert_int_eq(hmt_ctx_restore(b, s, len), HMT_OK);
        ck_assert_int_eq(hmt_ctx_n_past(b), A1 + A2);
        expect_same_outputs(ref, b, A2);
        expect_state(b, s, len, "restore into a fresh context");
        if (fresh[f].n_ctx >= A1 + A2 + NB && !fresh[f].n_batch) {
            y = eval_b(b);
            ck_assert_msg(!memcmp(x, y, NB * nv * sizeof *x),
                          "%s: fresh context (n_ctx %d) diverged", MODELS[_i], fresh[f].n_ctx);
            free(y);
        } else if (fresh[f].n_batch) {
            /* B split in chunks takes other kernels (quantized weights: other
             * activation rounding), so compare with a twin context */
            hmt_ctx *twin = new_ctx(m, fresh[f].n_ctx, 1, fresh[f].n_batch);
            ck_assert_int_eq(hmt_ctx_restore(twin, s, len), HMT_OK);
            float *z = eval_b(twin);
            y = eval_b(b);
            ck_assert_msg(!memcmp(z, y, NB * nv * sizeof *y), "n_batch %d: twins diverged",
                          fresh[f].n_batch);
            free(y);
            free(z);
            hmt_ctx_free(twin);
        } else { /* exactly full: the next token does not fit, as in a */
            hmt_token t = 1;
            ck_assert_int_eq(hmt_ctx_eval_tokens(b, &t, 1, 0), HMT_E_CTX_FULL);
        }
        hmt_ctx_free(b);
    }
    /* other thread counts: the same state; arithmetic may split differently */
    hmt_ctx *t2 = new_ctx(m, 64, 2, 0);
    ck_assert_int_eq(hmt_ctx_restore(t2, s, len), HMT_OK);
    expect_same_outputs(ref, t2, A2);
    y = eval_b(t2);
    for (size_t i = 0; i < NB * nv; i++)
        EXPECT_MSG(fabsf(x[i] - y[i]) <= 1e-4f, "2 threads: logit %zu: %g vs %g", i, x[i], y[i]);
    free(y);
    hmt_ctx_free(t2);

    /* an empty context's state: nothing cached, no outputs */
    ck_assert_int_eq(hmt_ctx_kv_clear(ref), HMT_OK);
    size_t elen;
    unsigned char *e = save(ref, &elen);
    ck_assert_uint_eq(elen, HEAD + 8);
    ck_assert_int_eq(hmt_ctx_restore(a, e, elen), HMT_OK);
    ck_assert_int_eq(hmt_ctx_n_past(a), 0);
    ck_assert_ptr_null(hmt_ctx_logits(a, -1));
    free(e);
    hmt_ctx_free(ref);
    free(x);
    free(s);
    hmt_ctx_free(a);
    hmt_model_free(m);
}
END_TEST

/* BF16 compute: a state saved there continues bit-identically in another
 * BF16 context; an F32 context takes it too (the state is F32 values). */
START_TEST(bf16_compute_round_trip) {
    hmt_model *m = hmt_test_load_model(_i ? "llama-q8.gguf" : "llama-f32.gguf");
    const size_t nv = (size_t)hmt_model_n_vocab(m);
    hmt_ctx *a = new_ctx(m, 64, 1, 0), *b = new_ctx(m, 64, 1, 0), *f = new_ctx(m, 64, 1, 0);
    ck_assert_int_eq(hmt_ctx_set_int(a, HMT_P_COMPUTE_TYPE, HMT_COMPUTE_BF16), HMT_OK);
    ck_assert_int_eq(hmt_ctx_set_int(b, HMT_P_COMPUTE_TYPE, HMT_COMPUTE_BF16), HMT_OK);
    eval_a(a);
    size_t len;
    unsigned char *s = save(a, &len);
    float *x = eval_b(a);
    ck_assert_int_eq(hmt_ctx_restore(b, s, len), HMT_OK);
    float *y = eval_b(b);
    ck_assert_msg(!memcmp(x, y, NB * nv * sizeof *x), "BF16 contexts diverged");
    ck_assert_int_eq(hmt_ctx_restore(f, s, len), HMT_OK);
    expect_state(f, s, len, "an F32 context");
    free(x), free(y), free(s);
    hmt_ctx_free(a), hmt_ctx_free(b), hmt_ctx_free(f);
    hmt_model_free(m);
}
END_TEST

/* Too small a context, another model: HMT_E_INVAL, nothing changed. */
START_TEST(wrong_target_is_refused) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    hmt_ctx *a = new_ctx(m, 64, 1, 0);
    hmt_token t[20];
    fill_tokens(t, 20, 7, m);
    ck_assert_int_eq(hmt_ctx_eval_tokens(a, t, 20, 0), HMT_OK);
    size_t len, tlen;
    unsigned char *s = save(a, &len);

    hmt_ctx *small = new_ctx(m, 19, 1, 0);
    ck_assert_int_eq(hmt_ctx_eval_tokens(small, t, 4, 1), HMT_OK);
    unsigned char *before = save(small, &tlen);
    ck_assert_int_eq(hmt_ctx_restore(small, s, len), HMT_E_INVAL);
    ck_assert_msg(strstr(hmt_last_error_msg(), "20 positions") &&
                      strstr(hmt_last_error_msg(), "n_ctx of 19"),
                  "message: %s", hmt_last_error_msg());
    expect_state(small, before, tlen, "too small a context");
    free(before);
    hmt_ctx_free(small);
    hmt_ctx *exact = new_ctx(m, 20, 1, 0);
    ck_assert_int_eq(hmt_ctx_restore(exact, s, len), HMT_OK);
    hmt_ctx_free(exact);

    /* same shapes, other weights (RoPE); and another family altogether */
    const char *others[] = {"llama-partial-f32.gguf", "qwen2-f32.gguf", "llama-mha-f32.gguf"};
    for (int k = 0; k < 3; k++) {
        hmt_model *o = hmt_test_load_model(others[k]);
        hmt_ctx *c = new_ctx(o, 64, 1, 0);
        ck_assert_int_eq(hmt_ctx_eval_tokens(c, t, 3, 0), HMT_OK);
        before = save(c, &tlen);
        ck_assert_int_eq(hmt_ctx_restore(c, s, len), HMT_E_INVAL);
        ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "another model"));
        expect_state(c, before, tlen, others[k]);
        free(before);
        hmt_ctx_free(c);
        hmt_model_free(o);
    }
    free(s);
    hmt_ctx_free(a);
    hmt_model_free(m);
}
END_TEST

/* A copy of s with n bytes at `at` replaced and the checksum recomputed. */
static unsigned char *patched(const unsigned char *s, size_t len, size_t at, const void *v,
                              size_t n) {
    unsigned char *b = malloc(len);
    memcpy(b, s, len);
    memcpy(b + at, v, n);
    const uint64_t h = hmti_fnv1a(HMTI_FNV_INIT, b, len - 8);
    memcpy(b + len - 8, &h, 8);
    return b;
}

typedef struct {
    hmt_ctx *t;
    const unsigned char *before;
    size_t before_len;
} target;

/* Restore b into the target: rc `want`, the message holding `msg`, the
 * target unchanged. */
static void refused(const target *g, const unsigned char *b, size_t len, int want,
                    const char *msg, const char *what) {
    const int rc = hmt_ctx_restore(g->t, b, len);
    EXPECT_MSG(rc == want, "%s: rc %d, want %d (%s)", what, rc, want, hmt_last_error_msg());
    EXPECT_MSG(!msg || strstr(hmt_last_error_msg(), msg), "%s: message '%s' lacks '%s'", what,
               hmt_last_error_msg(), msg);
    expect_state(g->t, g->before, g->before_len, what);
}

static void refused_patch(const target *g, const unsigned char *s, size_t len, size_t at,
                          const void *v, size_t n, int want, const char *msg, const char *what) {
    unsigned char *b = patched(s, len, at, v, n);
    refused(g, b, len, want, msg, what);
    free(b);
}

START_TEST(corruption_is_refused) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    hmt_ctx *a = new_ctx(m, 32, 1, 0);
    hmt_token tok[5];
    fill_tokens(tok, 5, 99, m);
    static const uint8_t flags[5] = {0, HMT_OUT_HIDDEN, 0, 0, HMT_OUT_LOGITS};
    ck_assert_int_eq(hmt_ctx_eval(a, tok, NULL, 5, NULL, flags), HMT_OK);
    size_t len;
    unsigned char *s = save(a, &len);
    target g = {new_ctx(m, 32, 1, 0), NULL, 0};
    ck_assert_int_eq(hmt_ctx_eval_tokens(g.t, tok + 1, 3, 1), HMT_OK);
    g.before = save(g.t, &g.before_len);

    /* truncation at every length */
    for (size_t n = 0; n < len; n++) {
        const int rc = hmt_ctx_restore(g.t, s, n);
        EXPECT_MSG(rc == HMT_E_FORMAT, "truncated to %zu of %zu bytes: rc %d", n, len, rc);
    }
    expect_state(g.t, g.before, g.before_len, "truncations");
    /* one byte flipped: every header and checksum byte, a sample of the rest */
    unsigned char *b = malloc(len);
    for (size_t i = 0; i < len; i += (i < HEAD + 5 || i >= len - 8) ? 1 : 61)
        for (int mask = 1; mask < 256; mask <<= 3) {
            memcpy(b, s, len);
            b[i] ^= (unsigned char)mask;
            const int rc = hmt_ctx_restore(g.t, b, len);
            /* the magic and version are read first, then the checksum */
            const char *why = i < 4 ? "not a libhmt" : i < 8 ? "version" : "checksum";
            EXPECT_MSG(rc == HMT_E_FORMAT && strstr(hmt_last_error_msg(), why),
                       "byte %zu ^ 0x%x: rc %d (%s)", i, mask, rc, hmt_last_error_msg());
        }
    free(b);
    expect_state(g.t, g.before, g.before_len, "flipped bytes");

    /* consistent checksums over inconsistent content */
    refused_patch(&g, s, len, 0, "HMTS", 4, HMT_E_FORMAT, "not a libhmt context state", "magic");
    const uint32_t v3 = 3;
    refused_patch(&g, s, len, 4, &v3, 4, HMT_E_FORMAT, "version 3", "version");
    const unsigned char fp_flip = s[9] ^ 1;
    refused_patch(&g, s, len, 9, &fp_flip, 1, HMT_E_INVAL, "another model", "fingerprint");
    const int32_t counts[][2] = {{6, 5}, {4, 5}, {-1, 5}, {INT32_MAX, 5}, {5, 6}, {5, -1},
                                 {5, INT32_MAX}, {1, 1}, {5, 3}, {0, 0}, {INT32_MIN, INT32_MIN}};
    for (size_t k = 0; k < sizeof counts / sizeof *counts; k++) {
        char what[64];
        snprintf(what, sizeof what, "n_past %d, n_rows %d", counts[k][0], counts[k][1]);
        refused_patch(&g, s, len, 16, counts[k], 8, HMT_E_FORMAT, NULL, what);
    }
    /* the saved row flags: 5 rows, hidden on row 1, logits on row 4 */
    ck_assert_int_eq(s[HEAD + 1], HMT_OUT_HIDDEN);
    ck_assert_int_eq(s[HEAD + 4], HMT_OUT_LOGITS);
    const uint8_t unknown = 0x08, more = HMT_OUT_LOGITS, less = 0;
    refused_patch(&g, s, len, HEAD + 2, &unknown, 1, HMT_E_FORMAT, "row 2: unknown output flags",
                  "unknown flag");
    refused_patch(&g, s, len, HEAD + 0, &more, 1, HMT_E_FORMAT, "sizes", "an extra output");
    refused_patch(&g, s, len, HEAD + 4, &less, 1, HMT_E_FORMAT, "sizes", "a missing output");
    /* non-finite values, named by field, index and layer or row */
    const size_t kvd = (size_t)m->n_head_kv * (size_t)m->head_dim, n = 5;
    const size_t kv0 = HEAD + 5, layer_bytes = 2 * kvd * n * 4;
    const size_t outs = kv0 + (size_t)m->n_layer * layer_bytes;
    const float nan = NAN, inf = INFINITY;
    char want[96];
    refused_patch(&g, s, len, kv0, &nan, 4, HMT_E_FORMAT, "K cache value 0 (layer 0) is not finite",
                  "NaN in K");
    snprintf(want, sizeof want, "K cache value %zu (layer 1)", kvd * n + 3 * n + 2);
    refused_patch(&g, s, len, kv0 + layer_bytes + (3 * n + 2) * 4, &nan, 4, HMT_E_FORMAT, want,
                  "NaN in layer 1's K");
    snprintf(want, sizeof want, "V cache value %zu (layer 1)", kvd * n + 7);
    refused_patch(&g, s, len, kv0 + layer_bytes + (kvd * n + 7) * 4, &inf, 4, HMT_E_FORMAT, want,
                  "inf in layer 1's V");
    refused_patch(&g, s, len, outs + 3 * 4, &nan, 4, HMT_E_FORMAT,
                  "row 1: hidden state value 3 is not finite", "NaN in a hidden state");
    snprintf(want, sizeof want, "row 4: logits value 11 is not finite");
    refused_patch(&g, s, len, outs + ((size_t)m->n_embd + 11) * 4, &inf, 4, HMT_E_FORMAT, want,
                  "inf in the logits");
    ck_assert_uint_eq(outs + ((size_t)m->n_embd + (size_t)m->n_vocab) * 4 + 8, len);
    /* the intact state still restores after all this */
    ck_assert_int_eq(hmt_ctx_restore(g.t, s, len), HMT_OK);
    expect_state(g.t, s, len, "the intact state");
    free((void *)g.before);
    hmt_ctx_free(g.t);
    free(s);
    hmt_ctx_free(a);
    hmt_model_free(m);
}
END_TEST

START_TEST(null_arguments) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    hmt_ctx *c = new_ctx(m, 16, 1, 0);
    hmt_token t[2] = {3, 4};
    ck_assert_int_eq(hmt_ctx_eval_tokens(c, t, 2, 0), HMT_OK);
    size_t len = 0;
    unsigned char *s = save(c, &len);
    char buf[8];
    ck_assert_int_eq(hmt_ctx_save(NULL, NULL, 0, &len), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_save(c, NULL, 0, NULL), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_save(c, NULL, 5, &len), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_save(c, buf, sizeof buf, &len), HMT_E_BUFFER);
    ck_assert_int_eq(hmt_ctx_restore(NULL, s, len), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_restore(c, NULL, len), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_save_file(NULL, "x"), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_save_file(c, NULL), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_restore_file(NULL, "x"), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_restore_file(c, NULL), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_n_past(c), 2);
    expect_state(c, s, len, "NULL arguments");
    free(s);
    hmt_ctx_free(c);
    hmt_model_free(m);
}
END_TEST

/* An abort callback that tries to save and restore the context whose eval
 * is running: both are refused by the handle guard (HMT_E_MISUSE). */
typedef struct {
    hmt_ctx *c;
    const unsigned char *s;
    size_t len;
    int save_rc, restore_rc, calls;
} reentry;

static int reenter(void *ud) {
    reentry *r = ud;
    size_t len;
    if (r->calls++ == 0) {
        r->save_rc = hmt_ctx_save(r->c, NULL, 0, &len);
        r->restore_rc = hmt_ctx_restore(r->c, r->s, r->len);
    }
    return 0;
}

START_TEST(reentry_is_refused) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    hmt_ctx *c = new_ctx(m, 16, 1, 0);
    hmt_token t[3] = {7, 8, 9};
    ck_assert_int_eq(hmt_ctx_eval_tokens(c, t, 1, 0), HMT_OK);
    size_t len;
    unsigned char *s = save(c, &len);
    reentry r = {c, s, len, 0, 0, 0};
    ck_assert_int_eq(hmt_ctx_set_abort_callback(c, reenter, &r), HMT_OK);
    ck_assert_int_eq(hmt_ctx_eval_tokens(c, t + 1, 2, 0), HMT_OK);
    ck_assert_int_ge(r.calls, 1);
    ck_assert_int_eq(r.save_rc, HMT_E_MISUSE);
    ck_assert_int_eq(r.restore_rc, HMT_E_MISUSE);
    ck_assert_int_eq(hmt_ctx_n_past(c), 3); /* the eval went on, unharmed */
    ck_assert_int_eq(hmt_ctx_set_abort_callback(c, NULL, NULL), HMT_OK);
    ck_assert_int_eq(hmt_ctx_restore(c, s, len), HMT_OK);
    ck_assert_int_eq(hmt_ctx_n_past(c), 1);
    free(s);
    hmt_ctx_free(c);
    hmt_model_free(m);
}
END_TEST

static int same_file(const char *path, const void *want, size_t len) {
    size_t got = 0;
    void *b = hmt_test_read_file(path, &got);
    const int ok = b && got == len && !memcmp(b, want, len);
    free(b);
    return ok;
}

START_TEST(files) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    hmt_ctx *c = new_ctx(m, 16, 1, 0);
    hmt_token t[6] = {5, 6, 7, 8, 9, 10};
    ck_assert_int_eq(hmt_ctx_eval_tokens(c, t, 6, 1), HMT_OK);
    size_t len;
    unsigned char *s = save(c, &len);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", hmt_test_tmp_path("-ctxstate"));
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    char path[4200], fifo[4200], missing[4200], big[4200];
    snprintf(path, sizeof path, "%s/state", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(missing, sizeof missing, "%s/no/such/dir/state", dir);
    snprintf(big, sizeof big, "%s/big", dir);

    /* the file holds exactly the buffer's bytes, and restores */
    hmt_last_error_clear();
    ck_assert_int_eq(hmt_ctx_save_file(c, path), HMT_OK);
    ck_assert_str_eq(hmt_last_error_msg(), ""); /* no size query's message left */
    ck_assert(same_file(path, s, len));
    ck_assert_int_eq(hmt_test_temporaries(path), 0);
    hmt_ctx *d = new_ctx(m, 16, 1, 0);
    ck_assert_int_eq(hmt_ctx_restore_file(d, path), HMT_OK);
    expect_state(d, s, len, "restore_file");

    /* a failed write leaves the old file as it was (lib/io/atomic_file.c) */
    ck_assert_int_eq(hmt_ctx_eval_tokens(c, t, 2, 0), HMT_OK);
    for (long step = 1; step <= 4; step++) {
        hmti_afile_fail_at(step, ENOSPC);
        ck_assert_int_eq(hmt_ctx_save_file(c, path), HMT_E_IO);
        ck_assert_int_eq(hmti_afile_fail_at(0, 0), 1);
        ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "No space left"));
        ck_assert(same_file(path, s, len));
        ck_assert_int_eq(hmt_test_temporaries(path), 0);
    }
    ck_assert_int_eq(hmt_ctx_save_file(c, missing), HMT_E_IO);
    ck_assert_int_eq(hmt_ctx_save_file(c, dir), HMT_E_IO); /* a folder is not replaced */
    struct stat st;
    ck_assert(stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
    ck_assert_int_eq(hmt_test_temporaries(dir), 0);

    /* restore_file: regular files only, none larger than any state */
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    const char *bad[] = {dir, fifo, missing, "/dev/zero"};
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(hmt_ctx_restore_file(d, bad[k]), HMT_E_IO);
        expect_state(d, s, len, bad[k]);
    }
    /* n_ctx 16: 16 F32 slots of K and V, 16 rows of every output, the
     * version-2 header (which names a KV type) */
    const size_t kvd = (size_t)m->n_head_kv * (size_t)m->head_dim;
    const size_t max = HEAD + 4 + 16 + 2 * (size_t)m->n_layer * kvd * 16 * 4 +
                       16 * ((size_t)m->n_vocab + 2 * (size_t)m->n_embd) * 4 + 8;
    FILE *f = fopen(big, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(ftruncate(fileno(f), (off_t)max + 1), 0);
    fclose(f);
    ck_assert_int_eq(hmt_ctx_restore_file(d, big), HMT_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "more than any state of this context"));
    f = fopen(big, "r+b");
    ck_assert_int_eq(ftruncate(fileno(f), (off_t)max), 0); /* at the limit: read, then refused */
    fclose(f);
    ck_assert_int_eq(hmt_ctx_restore_file(d, big), HMT_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "not a libhmt context state"));
    ck_assert_int_eq(hmt_test_write_file(big, s, len - 1), 0);
    ck_assert_int_eq(hmt_ctx_restore_file(d, big), HMT_E_FORMAT);
    expect_state(d, s, len, "a truncated file");

    unlink(path), unlink(fifo), unlink(big), rmdir(dir);
    hmt_ctx_free(d);
    free(s);
    hmt_ctx_free(c);
    hmt_model_free(m);
}
END_TEST

/* Out of memory while making room for the outputs (or reading the file):
 * HMT_E_NOMEM, the context unchanged; then the restore succeeds. */
START_TEST(out_of_memory_changes_nothing) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    hmt_ctx *a = new_ctx(m, 32, 1, 0), *t = new_ctx(m, 32, 1, 0);
    hmt_token tok[9];
    fill_tokens(tok, 9, 5, m);
    ck_assert_int_eq(hmt_ctx_eval_tokens(a, tok, 9, 1), HMT_OK); /* 9 rows of logits */
    size_t len, tlen;
    unsigned char *s = save(a, &len);
    const char *path = hmt_test_tmp_path(".hmtc");
    ck_assert_int_eq(hmt_ctx_save_file(a, path), HMT_OK);
    ck_assert_int_eq(hmt_ctx_eval_tokens(t, tok, 1, 0), HMT_OK); /* room for one row */
    unsigned char *before = save(t, &tlen);
    for (int file = 0; file < 2; file++) {
        long n = 1;
        for (;; n++) {
            hmti_alloc_fail_at(n);
            const int rc = file ? hmt_ctx_restore_file(t, path) : hmt_ctx_restore(t, s, len);
            const long failed = hmti_alloc_fail_at(0);
            if (!failed) {
                ck_assert_msg(rc == HMT_OK, "no failure, yet: %s", hmt_last_error_msg());
                break;
            }
            ck_assert_int_eq(rc, HMT_E_NOMEM);
            expect_state(t, before, tlen, "out of memory");
        }
        ck_assert_int_ge(n, 2); /* at least one allocation was made to fail */
        expect_state(t, s, len, "the restore after the failures");
        ck_assert_int_eq(hmt_ctx_kv_clear(t), HMT_OK);
        ck_assert_int_eq(hmt_ctx_eval_tokens(t, tok, 1, 0), HMT_OK);
        ck_assert_int_eq(hmt_ctx_restore(t, before, tlen), HMT_OK);
    }
    unlink(path);
    free(before);
    free(s);
    hmt_ctx_free(t);
    hmt_ctx_free(a);
    hmt_model_free(m);
}
END_TEST

Suite *hmt_suite_ctx_state(void);
Suite *hmt_suite_ctx_state(void) {
    Suite *s = suite_create("ctx_state");
    TCase *tc = tcase_create("ctx_state");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, round_trip_is_bit_identical, 0, N_MODELS);
    tcase_add_loop_test(tc, bf16_compute_round_trip, 0, 2);
    tcase_add_test(tc, wrong_target_is_refused);
    tcase_add_test(tc, corruption_is_refused);
    tcase_add_test(tc, null_arguments);
    tcase_add_test(tc, reentry_is_refused);
    tcase_add_test(tc, files);
    tcase_add_test(tc, out_of_memory_changes_nothing);
    suite_add_tcase(s, tc);
    return s;
}
