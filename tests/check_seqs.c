/* Several sequences in one context (hmt_ctx_eval_seqs): each sequence's rows
 * give the NumPy reference's outputs (the backbone golden cases A, B and D,
 * tests/reference/make_testdata.py) however the rows of different sequences
 * are interleaved, chunked or forked; and every misuse is refused with the
 * context unchanged. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmt/hmt.h"
#include "util/golden.h"
#include "util/testutil.h"

#define TOL_LOGIT 1e-4 /* as check_backbone.c */
#define MAX_MODELS 32
#define N_SEQ 4

typedef struct {
    char file[96], name[64];
} model_entry;

/* The manifest's float models (block-quantized ones run the 8-bit
 * activation path at one row per call: check_qmodel.c covers it). */
static int float_models(model_entry *out) {
    FILE *f = fopen(hmt_test_data("manifest.txt"), "r");
    ck_assert_msg(f != NULL, "missing manifest.txt (run make testdata)");
    char line[1024], wtype[16];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < MAX_MODELS) {
        if (line[0] == '#' || line[0] == '\n') continue;
        hmt_test_field(line, "wtype", wtype, sizeof wtype);
        if (strcmp(wtype, "f32") && strcmp(wtype, "f16") && strcmp(wtype, "bf16")) continue;
        hmt_test_field(line, "file", out[n].file, sizeof out[n].file);
        hmt_test_field(line, "name", out[n].name, sizeof out[n].name);
        n++;
    }
    fclose(f);
    return n;
}

/* n_ctx HMT_AUTO: the training context, as the golden replays use (phi3
 * picks its LongRoPE table by the context size). */
static hmt_ctx *make_ctx(hmt_model *m, int n_seq, int n_ctx, int n_batch, int threads) {
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_SEQ, n_seq), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_CTX, n_ctx), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_BATCH, n_batch), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, threads), HMT_OK);
    hmt_ctx *ctx;
    ck_assert_msg(hmt_ctx_create(&ctx, m, p) == HMT_OK, "%s", hmt_last_error_msg());
    hmt_params_free(p);
    return ctx;
}

/* One sequence's plan: a golden case's rows (token rows only) and how far
 * they have been fed. */
typedef struct {
    hmt_golden g;
    uint32_t next;
} plan;

static double row_error(const plan *p, uint32_t row, const float *logits) {
    double worst = 0;
    for (uint32_t v = 0; v < p->g.n_vocab; v++) {
        const double d = fabs((double)logits[v] - p->g.logits[(size_t)row * p->g.n_vocab + v]);
        if (!(d <= worst)) worst = d;
    }
    return worst;
}

/* Feed every plan to completion: each call takes up to `take[k % 3]` rows
 * of each unfinished sequence, in round-robin order over the sequences
 * (so runs of one sequence are interleaved with others'), and checks each
 * row's logits against its golden row. */
static double feed_all(hmt_ctx *ctx, plan *plans, const int32_t *seq_of, int n_plans,
                       const int *take, const char *what) {
    hmt_token tok[64];
    int32_t seq[64], pos[64], plan_of[64];
    uint32_t row_of[64];
    uint8_t outs[64];
    double worst = 0;
    for (int k = 0;; k++) {
        size_t n = 0;
        for (int round = 0; round < take[k % 3]; round++)
            for (int s = 0; s < n_plans; s++) {
                plan *p = &plans[s];
                if (p->next >= p->g.n_rows) continue;
                tok[n] = p->g.tokens[p->next];
                pos[n] = p->g.pos[p->next];
                seq[n] = seq_of[s];
                plan_of[n] = s;
                row_of[n] = p->next++;
                outs[n++] = HMT_OUT_LOGITS;
            }
        if (!n) break;
        ck_assert_msg(hmt_ctx_eval_seqs(ctx, tok, NULL, seq, n, pos, outs) == HMT_OK, "%s: %s",
                      what, hmt_last_error_msg());
        for (size_t i = 0; i < n; i++) {
            const float *l = hmt_ctx_logits(ctx, (int32_t)i);
            ck_assert_ptr_nonnull(l);
            const double e = row_error(&plans[plan_of[i]], row_of[i], l);
            if (!(e <= worst)) worst = e;
        }
    }
    return worst;
}

static void read_plan(plan *p, const char *model, char which) {
    char name[128];
    snprintf(name, sizeof name, "%s.%c.golden", model, which);
    hmt_golden_read(&p->g, name);
    p->next = 0;
    for (uint32_t r = 0; r < p->g.n_rows; r++) ck_assert_int_ge(p->g.tokens[r], 0);
}

/* Cases A, B, D and A again in four sequences, interleaved and chunked
 * (n_batch 5 splits calls across sequences), with 1 and 2 threads: every
 * row equals the reference. */
START_TEST(interleaved_sequences_match_reference) {
    static model_entry models[MAX_MODELS];
    const int n_models = float_models(models);
    ck_assert_int_ge(n_models, 4);
    const int threads = 1 + _i;
    for (int mi = 0; mi < n_models; mi++) {
        hmt_model *m;
        ck_assert_int_eq(hmt_model_load(&m, hmt_test_data(models[mi].file), NULL), HMT_OK);
        plan plans[N_SEQ];
        read_plan(&plans[0], models[mi].name, 'A');
        read_plan(&plans[1], models[mi].name, 'B');
        read_plan(&plans[2], models[mi].name, 'D');
        read_plan(&plans[3], models[mi].name, 'A');
        static const int32_t seq_of[N_SEQ] = {2, 0, 3, 1};
        static const int takes[][3] = {{1, 1, 1}, {3, 1, 2}, {11, 11, 11}};
        for (size_t t = 0; t < sizeof takes / sizeof takes[0]; t++) {
            hmt_ctx *ctx = make_ctx(m, N_SEQ, HMT_AUTO, t == 1 ? 5 : 64, threads);
            for (int s = 0; s < N_SEQ; s++) plans[s].next = 0;
            char what[160];
            snprintf(what, sizeof what, "%s threads=%d schedule %zu", models[mi].name, threads, t);
            const double e = feed_all(ctx, plans, seq_of, N_SEQ, takes[t], what);
            ck_assert_msg(e <= TOL_LOGIT, "%s: max |dlogit| %.3g", what, e);
            for (int s = 0; s < N_SEQ; s++)
                ck_assert_int_eq(hmt_ctx_seq_n_past(ctx, seq_of[s]), (int32_t)plans[s].g.n_rows);
            hmt_ctx_free(ctx);
        }
        for (int s = 0; s < N_SEQ; s++) free(plans[s].g.buf);
        hmt_model_free(m);
    }
}
END_TEST

/* A shared prefix evaluated once and forked: sequence 0 takes case A's first
 * 5 rows; 1 and 2 copy it, 2 rewinds to 3; then all three finish case A
 * together and match the reference. */
START_TEST(copied_prefix_continues_like_the_original) {
    static model_entry models[MAX_MODELS];
    const int n_models = float_models(models);
    for (int mi = 0; mi < n_models; mi++) {
        hmt_model *m;
        ck_assert_int_eq(hmt_model_load(&m, hmt_test_data(models[mi].file), NULL), HMT_OK);
        plan plans[3];
        for (int s = 0; s < 3; s++) read_plan(&plans[s], models[mi].name, 'A');
        hmt_ctx *ctx = make_ctx(m, 3, HMT_AUTO, 64, 2);
        static const int32_t seq_of[3] = {0, 1, 2};
        static const int one[3] = {5, 5, 5}, all[3] = {64, 64, 64};
        plans[1].next = plans[2].next = plans[0].g.n_rows; /* only seq 0 for now */
        double e = feed_all(ctx, plans, seq_of, 3, one, models[mi].name);
        ck_assert_msg(e <= TOL_LOGIT, "%s prefix: max |dlogit| %.3g", models[mi].name, e);
        ck_assert_int_eq(hmt_ctx_seq_n_past(ctx, 0), 11);
        /* again, stopping after 5 rows this time */
        ck_assert_int_eq(hmt_ctx_seq_rewind(ctx, 0, 5), HMT_OK);
        ck_assert_int_eq(hmt_ctx_seq_copy(ctx, 0, 1), HMT_OK);
        ck_assert_int_eq(hmt_ctx_seq_copy(ctx, 0, 2), HMT_OK);
        ck_assert_int_eq(hmt_ctx_seq_copy(ctx, 2, 2), HMT_OK); /* no-op */
        ck_assert_int_eq(hmt_ctx_seq_rewind(ctx, 2, 3), HMT_OK);
        ck_assert_int_eq(hmt_ctx_seq_n_past(ctx, 1), 5);
        ck_assert_int_eq(hmt_ctx_seq_n_past(ctx, 2), 3);
        plans[0].next = plans[1].next = 5;
        plans[2].next = 3;
        e = feed_all(ctx, plans, seq_of, 3, all, models[mi].name);
        ck_assert_msg(e <= TOL_LOGIT, "%s forked: max |dlogit| %.3g", models[mi].name, e);
        for (int s = 0; s < 3; s++) free(plans[s].g.buf);
        hmt_ctx_free(ctx);
        hmt_model_free(m);
    }
}
END_TEST

/* A copy of 37 slots (a whole 32-slot block of keys and part of the next)
 * continues with the source's bits, in models with and without sliding
 * windows, with F32 and half caches. */
START_TEST(copy_past_a_key_block_is_exact) {
    static const char *const files[] = {"llama-f32.gguf", "gemma3-f32.gguf", "llama-hd128-f32.gguf"};
    for (int kv = HMT_KV_F32; kv <= HMT_KV_F16; kv++)
        for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
            hmt_model *m;
            ck_assert_int_eq(hmt_model_load(&m, hmt_test_data(files[f]), NULL), HMT_OK);
            const int V = hmt_model_n_vocab(m);
            hmt_params *p;
            ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
            ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_SEQ, 2), HMT_OK);
            ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_CTX, 80), HMT_OK);
            ck_assert_int_eq(hmt_params_set_int(p, HMT_P_KV_TYPE, kv), HMT_OK);
            hmt_ctx *ctx;
            ck_assert_int_eq(hmt_ctx_create(&ctx, m, p), HMT_OK);
            hmt_params_free(p);
            hmt_token toks[38];
            for (int i = 0; i < 38; i++) toks[i] = (hmt_token)((i * 7919 + 13) % V);
            ck_assert_int_eq(hmt_ctx_eval_tokens(ctx, toks, 37, 0), HMT_OK);
            ck_assert_int_eq(hmt_ctx_seq_copy(ctx, 0, 1), HMT_OK);
            float *l[2];
            for (int32_t s = 0; s < 2; s++) {
                static const uint8_t want = HMT_OUT_LOGITS;
                ck_assert_int_eq(hmt_ctx_eval_seqs(ctx, toks + 37, NULL, &s, 1, NULL, &want), HMT_OK);
                l[s] = malloc((size_t)V * sizeof(float));
                memcpy(l[s], hmt_ctx_logits(ctx, 0), (size_t)V * sizeof(float));
            }
            ck_assert_msg(!memcmp(l[0], l[1], (size_t)V * sizeof(float)), "%s, KV type %d: the copy diverged",
                          files[f], kv);
            free(l[0]), free(l[1]);
            hmt_ctx_free(ctx);
            hmt_model_free(m);
        }
}
END_TEST

/* One sequence's rows give the same bits through hmt_ctx_eval (sequence 0)
 * and through hmt_ctx_eval_seqs on another sequence. */
START_TEST(single_sequence_calls_are_sequence_zero) {
    hmt_model *m;
    ck_assert_int_eq(hmt_model_load(&m, hmt_test_data("llama-f32.gguf"), NULL), HMT_OK);
    const int V = hmt_model_n_vocab(m);
    hmt_ctx *ctx = make_ctx(m, 2, 16, 64, 1);
    const hmt_token toks[4] = {1, 9, 33, 7};
    const int32_t ones[4] = {1, 1, 1, 1};
    ck_assert_int_eq(hmt_ctx_eval(ctx, toks, NULL, 4, NULL, NULL), HMT_OK);
    float *a = malloc((size_t)V * sizeof *a);
    memcpy(a, hmt_ctx_logits(ctx, -1), (size_t)V * sizeof *a);
    ck_assert_int_eq(hmt_ctx_eval_seqs(ctx, toks, NULL, ones, 4, NULL, NULL), HMT_OK);
    ck_assert_mem_eq(hmt_ctx_logits(ctx, -1), a, (size_t)V * sizeof *a);
    ck_assert_int_eq(hmt_ctx_n_past(ctx), 4);
    ck_assert_int_eq(hmt_ctx_seq_n_past(ctx, 1), 4);
    ck_assert_int_eq(hmt_ctx_kv_rewind(ctx, 2), HMT_OK); /* sequence 0 only */
    ck_assert_int_eq(hmt_ctx_seq_n_past(ctx, 1), 4);
    ck_assert_int_eq(hmt_ctx_kv_clear(ctx), HMT_OK); /* every sequence */
    ck_assert_int_eq(hmt_ctx_seq_n_past(ctx, 0), 0);
    ck_assert_int_eq(hmt_ctx_seq_n_past(ctx, 1), 0);
    double v;
    ck_assert_int_eq(hmt_ctx_get(ctx, HMT_P_N_SEQ, &v), HMT_OK);
    ck_assert_int_eq((int)v, 2);
    free(a);
    hmt_ctx_free(ctx);
    hmt_model_free(m);
}
END_TEST

/* Decode steps of several sequences in one call give each sequence the
 * bits of its own one-row step, on stored (block-quantized, F16) and
 * packed F32 weights: the batch takes the decode path, reading each weight
 * once. */
START_TEST(batched_decode_steps_equal_single_steps) {
    static const char *const files[] = {"llama-q8.gguf", "llama-q4km.gguf", "llama-q3k.gguf",
                                        "llama-iq4xs.gguf", "qwen2-q4km-fallback.gguf",
                                        "llama-tied-f16.gguf", "llama-bf16.gguf", "llama-f32.gguf",
                                        "llama-q4_0.gguf"};
    const char *file = files[_i];
    hmt_model *m;
    ck_assert_msg(hmt_model_load(&m, hmt_test_data(file), NULL) == HMT_OK, "%s: %s", file,
                  hmt_last_error_msg());
    const int V = hmt_model_n_vocab(m), S = 6, steps = 4;
    hmt_ctx *together = make_ctx(m, S, 16, 64, 2), *alone = make_ctx(m, S, 16, 64, 2);
    hmt_token tok[6];
    int32_t seq[6];
    uint8_t outs[6];
    uint64_t rng = 7;
    for (int k = 0; k < steps; k++) {
        for (int s = 0; s < S; s++) {
            tok[s] = (hmt_token)(hmt_test_urand(&rng) * V) % V;
            seq[s] = S - 1 - s;
            outs[s] = HMT_OUT_LOGITS;
        }
        ck_assert_int_eq(hmt_ctx_eval_seqs(together, tok, NULL, seq, (size_t)S, NULL, outs),
                         HMT_OK);
        for (int s = 0; s < S; s++) {
            ck_assert_int_eq(hmt_ctx_eval_seqs(alone, tok + s, NULL, seq + s, 1, NULL, outs),
                             HMT_OK);
            ck_assert_msg(!memcmp(hmt_ctx_logits(together, s), hmt_ctx_logits(alone, 0),
                                  (size_t)V * sizeof(float)),
                          "%s step %d sequence %d: batched logits differ from its own step",
                          file, k, seq[s]);
        }
    }
    hmt_ctx_free(together);
    hmt_ctx_free(alone);
    hmt_model_free(m);
}
END_TEST

/* One sequence's state (hmt_ctx_seq_save) restored into another sequence,
 * or into a fresh context, continues with the same bits; whole-context
 * saves refuse a context of several sequences; a bad state changes nothing. */
START_TEST(sequence_state_moves_between_sequences) {
    hmt_model *m;
    ck_assert_int_eq(hmt_model_load(&m, hmt_test_data("llama-f32.gguf"), NULL), HMT_OK);
    const int V = hmt_model_n_vocab(m);
    hmt_ctx *ctx = make_ctx(m, 3, 16, 64, 1);
    const hmt_token toks[6] = {1, 9, 33, 7, 12, 5};
    const int32_t s0[6] = {0, 0, 0, 0, 0, 0}, s1[3] = {1, 1, 1}, s2[1] = {2};
    ck_assert_int_eq(hmt_ctx_eval_seqs(ctx, toks, NULL, s0, 2, NULL, NULL), HMT_OK);
    ck_assert_int_eq(hmt_ctx_eval_seqs(ctx, toks + 1, NULL, s1, 3, NULL, NULL), HMT_OK);
    size_t need = 0;
    ck_assert_int_eq(hmt_ctx_seq_save(ctx, 1, NULL, 0, &need), HMT_E_BUFFER);
    unsigned char *st = malloc(need);
    size_t len;
    ck_assert_int_eq(hmt_ctx_seq_save(ctx, 1, st, need, &len), HMT_OK);
    ck_assert_uint_eq(len, need);
    /* sequence 1 continues with token 5 */
    ck_assert_int_eq(hmt_ctx_eval_seqs(ctx, toks + 5, NULL, s1, 1, NULL, NULL), HMT_OK);
    float *want = malloc((size_t)V * sizeof *want);
    memcpy(want, hmt_ctx_logits(ctx, -1), (size_t)V * sizeof *want);
    /* into sequence 2 of the same context, then the same step */
    ck_assert_int_eq(hmt_ctx_seq_restore(ctx, 2, st, len), HMT_OK);
    ck_assert_int_eq(hmt_ctx_seq_n_past(ctx, 2), 3);
    ck_assert_int_eq(hmt_ctx_seq_n_past(ctx, 0), 2); /* untouched */
    ck_assert_int_eq(hmt_ctx_seq_n_past(ctx, 1), 4);
    ck_assert_mem_eq(hmt_ctx_logits(ctx, -1), want, (size_t)V * sizeof *want); /* outputs kept */
    ck_assert_int_eq(hmt_ctx_eval_seqs(ctx, toks + 5, NULL, s2, 1, NULL, NULL), HMT_OK);
    ck_assert_mem_eq(hmt_ctx_logits(ctx, -1), want, (size_t)V * sizeof *want);
    /* into a fresh single-sequence context: its sequence 0 */
    hmt_ctx *one = make_ctx(m, 1, 16, 64, 1);
    ck_assert_int_eq(hmt_ctx_seq_restore(one, 0, st, len), HMT_OK);
    ck_assert_int_eq(hmt_ctx_eval(one, toks + 5, NULL, 1, NULL, NULL), HMT_OK);
    ck_assert_mem_eq(hmt_ctx_logits(one, -1), want, (size_t)V * sizeof *want);
    /* refusals, nothing changed */
    size_t l2;
    ck_assert_int_eq(hmt_ctx_save(ctx, NULL, 0, &l2), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "hmt_ctx_seq_save"));
    ck_assert_int_eq(hmt_ctx_restore(ctx, st, len), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_seq_save(ctx, 3, st, len, &l2), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_seq_restore(ctx, -1, st, len), HMT_E_INVAL);
    st[len / 2] ^= 1;
    ck_assert_int_eq(hmt_ctx_seq_restore(ctx, 2, st, len), HMT_E_FORMAT);
    st[len / 2] ^= 1;
    hmt_ctx *small = make_ctx(m, 2, 2, 64, 1); /* 3 positions do not fit */
    ck_assert_int_eq(hmt_ctx_seq_restore(small, 1, st, len), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_seq_n_past(small, 1), 0);
    ck_assert_int_eq(hmt_ctx_seq_n_past(ctx, 2), 4);
    free(st);
    free(want);
    hmt_ctx_free(small);
    hmt_ctx_free(one);
    hmt_ctx_free(ctx);
    hmt_model_free(m);
}
END_TEST

/* Misuse: clear errors, and every sequence as before the call. */
START_TEST(bad_calls_leave_every_sequence_unchanged) {
    hmt_model *m;
    ck_assert_int_eq(hmt_model_load(&m, hmt_test_data("llama-f32.gguf"), NULL), HMT_OK);
    const int V = hmt_model_n_vocab(m);
    hmt_ctx *ctx = make_ctx(m, 3, 8, 64, 1);
    const hmt_token toks[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const int32_t s1[6] = {1, 1, 1, 1, 1, 1};
    ck_assert_int_eq(hmt_ctx_eval_seqs(ctx, toks, NULL, s1, 6, NULL, NULL), HMT_OK);
    float *before = malloc((size_t)V * sizeof *before);
    memcpy(before, hmt_ctx_logits(ctx, -1), (size_t)V * sizeof *before);

    const int32_t over[4] = {0, 1, 1, 1}; /* sequence 1: 6 + 3 > 8 */
    ck_assert_int_eq(hmt_ctx_eval_seqs(ctx, toks, NULL, over, 4, NULL, NULL), HMT_E_CTX_FULL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "sequence 1"));
    /* more rows than all sequences have room for: refused before the rows
     * get any output buffer (2 + 8 + 8 free slots) */
    static const hmt_token zeros[19];
    static const int32_t seq0[19];
    ck_assert_int_eq(hmt_ctx_eval_seqs(ctx, zeros, NULL, seq0, 19, NULL, NULL), HMT_E_CTX_FULL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "18 free positions"));
    const int32_t bad[2] = {0, 3};
    ck_assert_int_eq(hmt_ctx_eval_seqs(ctx, toks, NULL, bad, 2, NULL, NULL), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "sequence 3"));
    const int32_t neg[1] = {-1};
    ck_assert_int_eq(hmt_ctx_eval_seqs(ctx, toks, NULL, neg, 1, NULL, NULL), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_eval_seqs(ctx, toks, NULL, NULL, 1, NULL, NULL), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_eval_seqs(NULL, toks, NULL, s1, 1, NULL, NULL), HMT_E_INVAL);
    const hmt_token bad_tok[2] = {1, (hmt_token)V};
    ck_assert_int_eq(hmt_ctx_eval_seqs(ctx, bad_tok, NULL, over, 2, NULL, NULL), HMT_E_TOKEN);
    ck_assert_int_eq(hmt_ctx_seq_copy(ctx, 0, 3), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_seq_copy(ctx, -1, 0), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_seq_rewind(ctx, 1, 7), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_seq_rewind(ctx, 4, 0), HMT_E_INVAL);
    ck_assert_int_eq(hmt_ctx_seq_n_past(ctx, 3), -1);
    ck_assert_int_eq(hmt_ctx_seq_n_past(NULL, 0), -1);
    for (int s = 0; s < 3; s++) ck_assert_int_eq(hmt_ctx_seq_n_past(ctx, s), s == 1 ? 6 : 0);
    /* the last successful eval's outputs are still readable */
    ck_assert_mem_eq(hmt_ctx_logits(ctx, -1), before, (size_t)V * sizeof *before);

    /* sequence 1 still continues as if nothing had happened: its next row
     * equals the same row evaluated in a fresh single-sequence context */
    ck_assert_int_eq(hmt_ctx_eval_seqs(ctx, toks + 6, NULL, s1, 1, NULL, NULL), HMT_OK);
    hmt_ctx *ref = make_ctx(m, 1, 8, 64, 1);
    ck_assert_int_eq(hmt_ctx_eval(ref, toks, NULL, 7, NULL, NULL), HMT_OK);
    for (int v = 0; v < V; v++)
        ck_assert_float_eq_tol(hmt_ctx_logits(ctx, -1)[v], hmt_ctx_logits(ref, -1)[v], 1e-5);

    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_SEQ, 0), HMT_E_INVAL);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_SEQ, 257), HMT_E_INVAL);
    hmt_params_free(p);
    free(before);
    hmt_ctx_free(ref);
    hmt_ctx_free(ctx);
    hmt_model_free(m);
}
END_TEST

Suite *hmt_suite_seqs(void);
Suite *hmt_suite_seqs(void) {
    Suite *s = suite_create("seqs");
    TCase *tc = tcase_create("seqs");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, interleaved_sequences_match_reference, 0, 2);
    tcase_add_test(tc, copied_prefix_continues_like_the_original);
    tcase_add_test(tc, copy_past_a_key_block_is_exact);
    tcase_add_loop_test(tc, batched_decode_steps_equal_single_steps, 0, 9);
    tcase_add_test(tc, single_sequence_calls_are_sequence_zero);
    tcase_add_test(tc, bad_calls_leave_every_sequence_unchanged);
    tcase_add_test(tc, sequence_state_moves_between_sequences);
    suite_add_tcase(s, tc);
    return s;
}
