/* Models with weights kept in their stored GGML types (issue 13, docs/QUANTS.md):
 * the block-quantized test models of quant-manifest.txt plus llama-q8.
 *
 * - prompt path (weights dequantized into F32 tiles, exact activations):
 *   against the float64 reference on the dequantized weights, with
 *   check_backbone.c's tolerances;
 * - decode path (activations quantized to 8-bit blocks): against the same
 *   reference with the activation quantization applied (quant_act_ref.py,
 *   <name>.<case>.qact.golden), plus KL / top-1 against the plain reference;
 * - the default split (decode for chunks of <= HMTI_DECODE_ROWS rows);
 * - unsupported tensor types and non-finite block scales refused at load;
 * - resident memory after load and evaluation stays near the file size. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hmt/hmt.h"
#include "io/gguf.h"
#include "kernels/kernels.h"
#include "util/golden.h"
#include "util/testutil.h"

#define TOL_LOGIT 1e-4  /* check_backbone.c's */
#define TOL_HIDDEN 5e-5
/* Decode vs the activation-quantized reference: equal up to float rounding
 * (measured <= 2e-6), except where an activation the C code computes in
 * float32 lies within rounding of a boundary of its 8-bit block and rounds
 * to the neighbouring step (d = max|x|/127) — measured in 3 of the 20
 * cases here (max |dlogit| 0.13; the activation quantization itself moves
 * the logits by up to 0.32). So: at least half of each model's replays
 * within TOL_LOGIT (a kernel or wiring bug shows in every replay), and every
 * replay within TOL_QACT_FLIP. */
#define TOL_QACT_FLIP 0.25
#define MAX_QMODELS 8

static char qmodels[MAX_QMODELS][64];
static int n_qmodels;

static void read_models(void) {
    if (n_qmodels) return;
    FILE *f = fopen(hmt_test_data("quant-manifest.txt"), "r");
    ck_assert_msg(f != NULL, "missing quant-manifest.txt (run make testdata)");
    char line[2048];
    while (fgets(line, sizeof line, f) && n_qmodels < MAX_QMODELS - 1) {
        if (line[0] == '#' || line[0] == '\n') continue;
        hmt_test_field(line, "name", qmodels[n_qmodels++], sizeof qmodels[0]);
    }
    fclose(f);
    snprintf(qmodels[n_qmodels++], sizeof qmodels[0], "llama-q8"); /* manifest.txt's Q8_0 model */
}

static hmt_model *load(const char *name) {
    char file[96];
    snprintf(file, sizeof file, "%s.gguf", name);
    hmt_model *m;
    ck_assert_msg(hmt_model_load(&m, hmt_test_data(file), NULL) == HMT_OK, "%s: %s", file,
                  hmt_last_error_msg());
    return m;
}

typedef struct {
    double dlogit, dhidden, kl_sum, max_kl;
    long n_rows, top1_agree;
    int n_replays, n_exact; /* replays, and those within TOL_LOGIT / TOL_HIDDEN */
} cmp_stats;

/* Compare outputs with a golden: max |Δ| and KL(golden ‖ outputs) per row. */
static void compare(const hmt_golden *g, const float *l, const float *h, cmp_stats *s) {
    for (uint32_t r = 0; r < g->n_rows; r++) {
        const float *a = g->logits + (size_t)r * g->n_vocab, *b = l + (size_t)r * g->n_vocab;
        double ma = -INFINITY, mb = -INFINITY;
        uint32_t ia = 0, ib = 0;
        for (uint32_t v = 0; v < g->n_vocab; v++) {
            double d = fabs((double)a[v] - b[v]);
            if (!(d <= s->dlogit)) s->dlogit = d;
            if (a[v] > ma) ma = a[v], ia = v;
            if (b[v] > mb) mb = b[v], ib = v;
        }
        double za = 0, zb = 0;
        for (uint32_t v = 0; v < g->n_vocab; v++) za += exp(a[v] - ma), zb += exp(b[v] - mb);
        double kl = 0;
        for (uint32_t v = 0; v < g->n_vocab; v++) {
            const double la = a[v] - ma - log(za), lb = b[v] - mb - log(zb);
            kl += exp(la) * (la - lb);
        }
        s->kl_sum += kl;
        if (kl > s->max_kl) s->max_kl = kl;
        s->top1_agree += ia == ib;
        s->n_rows++;
    }
    for (size_t i = 0; i < (size_t)g->n_rows * g->n_embd; i++) {
        double d = fabs((double)h[i] - g->hidden[i]);
        if (!(d <= s->dhidden)) s->dhidden = d;
    }
}

/* Replay every case of model mi with the given decode-row limit against
 * the goldens with suffix ("golden" or "qact.golden"). */
static void run_model(int mi, int decode_rows, const char *suffix, cmp_stats *s) {
    hmt_model *m = load(qmodels[mi]);
    static const int configs[][2] = {{1, 512}, {2, 512}, {2, 3}};
    const int old = hmti_matmul_set_decode_rows(decode_rows);
    memset(s, 0, sizeof *s);
    for (int c = 0; c < 4; c++) {
        char name[128];
        snprintf(name, sizeof name, "%s.%c.%s", qmodels[mi], "ABCD"[c], suffix);
        hmt_golden g;
        hmt_golden_read(&g, name);
        float *l = malloc((size_t)g.n_rows * g.n_vocab * sizeof *l);
        float *h = malloc((size_t)g.n_rows * g.n_embd * sizeof *h);
        ck_assert(l && h);
        for (size_t k = 0; k < sizeof configs / sizeof configs[0]; k++) {
            hmt_golden_replay(&g, m, configs[k][0], configs[k][1], l, h);
            cmp_stats one;
            memset(&one, 0, sizeof one);
            compare(&g, l, h, &one);
            compare(&g, l, h, s);
            s->n_replays++;
            s->n_exact += one.dlogit <= TOL_LOGIT && one.dhidden <= TOL_HIDDEN;
        }
        free(l);
        free(h);
        free(g.buf);
    }
    hmti_matmul_set_decode_rows(old);
    hmt_model_free(m);
}

START_TEST(prompt_path_matches_reference) {
    read_models();
    if (_i >= n_qmodels) return;
    cmp_stats s;
    run_model(_i, 0, "golden", &s);
    printf("qmodel %-20s prompt path: max |dlogit| %.2e |dhidden| %.2e\n", qmodels[_i], s.dlogit,
           s.dhidden);
    fflush(stdout);
    ck_assert_msg(s.dlogit <= TOL_LOGIT && s.dhidden <= TOL_HIDDEN,
                  "%s prompt path: max |dlogit| %.3g, |dhidden| %.3g", qmodels[_i], s.dlogit,
                  s.dhidden);
}
END_TEST

START_TEST(decode_path_matches_act_reference) {
    read_models();
    if (_i >= n_qmodels) return;
    cmp_stats q, e;
    run_model(_i, 1 << 30, "qact.golden", &q);
    run_model(_i, 1 << 30, "golden", &e);
    printf("qmodel %-20s decode path: vs act-quantized ref %d/%d replays within 1e-4, max "
           "|dlogit| %.2e |dhidden| %.2e; vs exact ref max |dlogit| %.2e, mean KL %.2e (max "
           "%.2e), top-1 %ld/%ld\n", qmodels[_i], q.n_exact, q.n_replays, q.dlogit, q.dhidden,
           e.dlogit, e.kl_sum / (double)e.n_rows, e.max_kl, e.top1_agree, e.n_rows);
    fflush(stdout);
    ck_assert_msg(2 * q.n_exact >= q.n_replays && q.dlogit <= TOL_QACT_FLIP,
                  "%s decode path vs act-quantized ref: %d/%d replays within %g, max |dlogit| "
                  "%.3g", qmodels[_i], q.n_exact, q.n_replays, TOL_LOGIT, q.dlogit);
}
END_TEST

/* The default split: decode for short chunks, prompt for long ones. */
START_TEST(default_split_close_to_reference) {
    read_models();
    if (_i >= n_qmodels) return;
    cmp_stats e;
    run_model(_i, -1, "golden", &e);
    const double mean_kl = e.kl_sum / (double)e.n_rows;
    printf("qmodel %-20s default split: vs exact ref max |dlogit| %.2e, mean KL %.2e, top-1 "
           "%ld/%ld\n", qmodels[_i], e.dlogit, mean_kl, e.top1_agree, e.n_rows);
    fflush(stdout);
    /* The KL bar (mean KL <= 1e-3 nats) holds on these random models;
     * its top-1 bar (>= 99%) is meant for real text on a trained model
     * (tests/reference/quant_accuracy_text.py, docs/QUANTS.md): random weights
     * give near-flat distributions whose top two logits often differ by less
     * than the decode path's 8-bit activation rounding moves them, so here
     * top-1 is only held to 95% (llama-q8 measured 105/108 on this data). */
    ck_assert_msg(mean_kl <= 1e-3 && e.top1_agree * 100 >= 95 * e.n_rows,
                  "%s: mean KL %.3g, top-1 %ld/%ld", qmodels[_i], mean_kl, e.top1_agree, e.n_rows);
}
END_TEST

/* ---- refusals ------------------------------------------------------------------ */
/* The file with one byte range patched, loaded from a temporary path. */
static int load_patched(const char *file, size_t off, const void *bytes, size_t n) {
    size_t len;
    unsigned char *b = hmt_test_read_file(hmt_test_data(file), &len);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_le(off + n, len);
    memcpy(b + off, bytes, n);
    const char *path = hmt_test_tmp_path(".gguf");
    ck_assert_int_eq(hmt_test_write_file(path, b, len), 0);
    free(b);
    hmt_model *m = NULL;
    int rc = hmt_model_load(&m, path, NULL);
    hmt_model_free(m);
    unlink(path);
    return rc;
}

/* Offset of a tensor's type field in its tensor info (after the name,
 * n_dims and ne[n_dims]). */
static size_t type_field_offset(const char *file, const char *tensor) {
    size_t len;
    unsigned char *b = hmt_test_read_file(hmt_test_data(file), &len);
    ck_assert_ptr_nonnull(b);
    const size_t nl = strlen(tensor);
    unsigned char *p = memmem(b, len, tensor, nl);
    ck_assert_ptr_nonnull(p);
    uint32_t n_dims;
    memcpy(&n_dims, p + nl, 4);
    const size_t off = (size_t)(p - b) + nl + 4 + 8 * (size_t)n_dims;
    free(b);
    return off;
}

START_TEST(unsupported_type_refused) {
    static const uint32_t types[] = {9, 16, 15}; /* Q8_1, IQ2_XXS, Q8_K */
    static const char *const names[] = {"q8_1", "iq2_xxs", "q8_K"};
    const size_t off = type_field_offset("llama-f32.gguf", "blk.0.attn_q.weight");
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(load_patched("llama-f32.gguf", off, &types[i], 4), HMT_E_UNSUPPORTED);
        const char *msg = hmt_last_error_msg();
        ck_assert_msg(strstr(msg, "blk.0.attn_q.weight") && strstr(msg, names[i]) &&
                          strstr(msg, "Q4_K") && strstr(msg, "IQ4_XS"),
                      "message: %s", msg);
    }
}
END_TEST

/* Byte offset (in the file) of a tensor's data. */
static size_t data_offset(const char *file, const char *tensor, uint32_t *type) {
    size_t len;
    unsigned char *b = hmt_test_read_file(hmt_test_data(file), &len);
    ck_assert_ptr_nonnull(b);
    hmti_gguf *g;
    ck_assert_int_eq(hmti_gguf_open_buffer(&g, b, len), HMT_OK);
    const hmti_gguf_tensor *t = hmti_gguf_find_tensor(g, tensor);
    ck_assert_ptr_nonnull(t);
    const size_t off = (size_t)((const unsigned char *)t->data - b);
    *type = t->type;
    hmti_gguf_close(g);
    free(b);
    return off;
}

START_TEST(nonfinite_scale_refused) {
    /* block 3 of a Q4_K tensor gets d = +Inf (f16 0x7C00); the block's
     * first element is 3 * 256 */
    uint32_t type;
    size_t off = data_offset("llama-q4km.gguf", "blk.0.attn_q.weight", &type);
    ck_assert_uint_eq(type, 12);
    const uint16_t inf = 0x7C00, nan = 0x7E00;
    ck_assert_int_eq(load_patched("llama-q4km.gguf", off + 3 * 144, &inf, 2), HMT_E_FORMAT);
    const char *msg = hmt_last_error_msg();
    ck_assert_msg(strstr(msg, "blk.0.attn_q.weight") && strstr(msg, "element 768"), "%s", msg);
    /* dmin (bytes 2..3) of block 0 */
    ck_assert_int_eq(load_patched("llama-q4km.gguf", off + 2, &nan, 2), HMT_E_FORMAT);
    msg = hmt_last_error_msg();
    ck_assert_msg(strstr(msg, "blk.0.attn_q.weight") && strstr(msg, "element 0"), "%s", msg);
    /* d (byte 208) of block 1 of a Q6_K tensor: the LM head */
    off = data_offset("llama-q4km.gguf", "output.weight", &type);
    ck_assert_uint_eq(type, 14);
    ck_assert_int_eq(load_patched("llama-q4km.gguf", off + 210 + 208, &inf, 2), HMT_E_FORMAT);
    msg = hmt_last_error_msg();
    ck_assert_msg(strstr(msg, "output.weight") && strstr(msg, "element 256"), "%s", msg);
    /* an F16 element (the f16 model's embedding table, element 5) */
    off = data_offset("llama-tied-f16.gguf", "token_embd.weight", &type);
    ck_assert_uint_eq(type, 1);
    ck_assert_int_eq(load_patched("llama-tied-f16.gguf", off + 5 * 2, &nan, 2), HMT_E_FORMAT);
    msg = hmt_last_error_msg();
    ck_assert_msg(strstr(msg, "token_embd.weight") && strstr(msg, "element 5"), "%s", msg);
    /* an untied F32 embedding table is never converted either: element 70 */
    const float fnan = NAN;
    off = data_offset("llama-f32.gguf", "token_embd.weight", &type);
    ck_assert_uint_eq(type, 0);
    ck_assert_int_eq(load_patched("llama-f32.gguf", off + 70 * 4, &fnan, 4), HMT_E_FORMAT);
    msg = hmt_last_error_msg();
    ck_assert_msg(strstr(msg, "token_embd.weight") && strstr(msg, "element 70"), "%s", msg);
}
END_TEST

/* ---- memory ----------------------------------------------------------------------- */
static long resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
    fclose(f);
    return res < 0 ? -1 : res * sysconf(_SC_PAGESIZE);
}

/* Resident set growth (statm field 2: anonymous memory plus the pages of
 * the mapped GGUF that were touched) from before hmt_model_load to after a
 * prompt and a decode step: at most file × 1.05 + KV cache + scratch + a
 * fixed 4 MiB for the allocator, libxsmm's code buffers and the tokenizer.
 * Every weight is read by the evaluation, so the whole file is resident;
 * an F32 expansion of this Q4_K model would add ~50 MB more. */
START_TEST(resident_memory_near_file_size) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    printf("qmodel rss: skipped under a sanitizer (shadow memory)\n");
    return;
#endif
    const char *file = "llama-q4k-rss.gguf";
    size_t len;
    void *b = hmt_test_read_file(hmt_test_data(file), &len);
    ck_assert_ptr_nonnull(b);
    free(b);
    hmt_model *warm = load("llama-f32"); /* libxsmm and pool first use, outside the window */
    hmt_model_free(warm);
    const long before = resident_bytes();
    hmt_model *m = load("llama-q4k-rss");
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_CTX, 64), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_BATCH, 32), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, 2), HMT_OK);
    hmt_ctx *ctx;
    ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_OK);
    hmt_params_free(p);
    hmt_token toks[32];
    for (int i = 0; i < 32; i++) toks[i] = (hmt_token)(i * 31 % 1024);
    ck_assert_int_eq(hmt_ctx_eval(ctx, toks, NULL, 32, NULL, NULL), HMT_OK);
    ck_assert_int_eq(hmt_ctx_eval(ctx, toks, NULL, 1, NULL, NULL), HMT_OK);
    const long after = resident_bytes();
    const int d = hmt_model_n_embd(m), L = hmt_model_n_layer(m), ff = hmt_model_n_ff(m);
    const int V = hmt_model_n_vocab(m);
    const double kv = 2.0 * L * 64 * d * 4;                       /* K and V, F32  */
    const double arena = 32.0 * (7.0 * d + 2.0 * ff) * 4 + 32.0 * V * 4; /* + logits */
    const double scratch = 2 * 2 * 64 * 256 * 4.0 + 4 * ff * 2.0;
    const double limit = 1.05 * (double)len + kv + arena + scratch + 4.0 * 1048576;
    printf("qmodel rss: file %.2f MB, growth %.2f MB, limit %.2f MB (KV %.2f, arena %.2f)\n",
           len / 1e6, (after - before) / 1e6, limit / 1e6, kv / 1e6, arena / 1e6);
    ck_assert_msg((double)(after - before) <= limit, "resident growth %ld > %.0f", after - before,
                  limit);
    hmt_ctx_free(ctx);
    hmt_model_free(m);
}
END_TEST

Suite *hmt_suite_qmodel(void);
Suite *hmt_suite_qmodel(void) {
    Suite *s = suite_create("qmodel");
    TCase *tc = tcase_create("reference");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, prompt_path_matches_reference, 0, MAX_QMODELS);
    tcase_add_loop_test(tc, decode_path_matches_act_reference, 0, MAX_QMODELS);
    tcase_add_loop_test(tc, default_split_close_to_reference, 0, MAX_QMODELS);
    tcase_add_test(tc, unsupported_type_refused);
    tcase_add_test(tc, nonfinite_scale_refused);
    tcase_add_test(tc, resident_memory_near_file_size);
    suite_add_tcase(s, tc);
    return s;
}
