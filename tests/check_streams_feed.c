/* hmt_streams_feed: several streams, one token each per call, give every
 * stream the outputs of feeding it alone (bit for bit on quantized and
 * half weights, within check_backbone's tolerance on F32 ones) in every
 * mode, the streams at different segment positions, most steps batched;
 * every misuse is refused with no stream changed. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hmt/hmt.h"
#include "stream/stream.h"
#include "util/testutil.h"

enum { N_STREAMS = 5, N_TOK = 40 };

typedef struct {
    const char *model, *adapter;
    int mode, lookahead, L, window;
    double tol; /* 0: bit-identical */
} config;

static const config CONFIGS[] = {
    {"llama-f32.gguf", "hmt-full-a.adapter.gguf", HMT_MODE_FULL, 1, 0, 0, 1e-4},
    {"llama-f32.gguf", "hmt-full-causal.adapter.gguf", HMT_MODE_FULL, 0, 0, 0, 1e-4},
    {"llama-f32.gguf", "hmt-rmt.adapter.gguf", HMT_MODE_RMT, 0, 0, 0, 1e-4},
    {"llama-q4km.gguf", NULL, HMT_MODE_SEGMENTS, 0, 8, 0, 0},
    {"llama-q8.gguf", NULL, HMT_MODE_WINDOW, 0, 0, 12, 0},
    {"llama-q4km.gguf", NULL, HMT_MODE_SINKS, 0, 0, 12, 0},
    {"llama-tied-f16.gguf", NULL, HMT_MODE_SEGMENTS, 0, 8, 0, 0},
};

static hmt_stream *new_stream(hmt_model *m, hmt_adapter *a, const config *c) {
    hmt_params *p;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_MODE, c->mode), HMT_OK);
    if (a) ck_assert_int_eq(hmt_params_set_int(p, HMT_P_LOOKAHEAD, c->lookahead), HMT_OK);
    if (c->L) ck_assert_int_eq(hmt_params_set_int(p, HMT_P_SEGMENT_LENGTH, c->L), HMT_OK);
    if (c->window) ck_assert_int_eq(hmt_params_set_int(p, HMT_P_WINDOW, c->window), HMT_OK);
    if (c->mode == HMT_MODE_SINKS) ck_assert_int_eq(hmt_params_set_int(p, HMT_P_SINKS, 2), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, 1), HMT_OK);
    hmt_stream *s;
    ck_assert_msg(hmt_stream_create(&s, m, a, p) == HMT_OK, "%s", hmt_last_error_msg());
    hmt_params_free(p);
    return s;
}

/* The ready ranges of a and b after the same call match, their logits
 * within tol. */
static void expect_same(hmt_stream *a, hmt_stream *b, int n_vocab, double tol, const char *what,
                        int step) {
    int64_t fa, ea, fb, eb;
    hmt_stream_ready_range(a, &fa, &ea);
    hmt_stream_ready_range(b, &fb, &eb);
    ck_assert_msg(fa == fb && ea == eb, "%s step %d: ready [%lld, %lld) vs [%lld, %lld)", what,
                  step, (long long)fa, (long long)ea, (long long)fb, (long long)eb);
    for (int64_t i = fa; i < ea; i++) {
        const float *x = hmt_stream_logits(a, i), *y = hmt_stream_logits(b, i);
        double d = 0;
        for (int v = 0; v < n_vocab; v++) d = fmax(d, fabs((double)x[v] - y[v]));
        ck_assert_msg(tol ? d <= tol : !memcmp(x, y, (size_t)n_vocab * sizeof *x),
                      "%s step %d token %lld: max |dlogit| %.3g", what, step, (long long)i, d);
    }
}

START_TEST(batched_equals_one_at_a_time) {
    const config *c = &CONFIGS[_i];
    hmt_model *m;
    ck_assert_int_eq(hmt_model_load(&m, hmt_test_data(c->model), NULL), HMT_OK);
    hmt_adapter *a = NULL;
    if (c->adapter)
        ck_assert_msg(hmt_adapter_load(&a, m, hmt_test_data(c->adapter)) == HMT_OK, "%s",
                      hmt_last_error_msg());
    const int n_vocab = hmt_model_n_vocab(m);
    hmt_stream *bat[N_STREAMS], *one[N_STREAMS];
    hmt_token tok[N_STREAMS][N_TOK];
    uint64_t rng = 100 + (uint64_t)_i;
    for (int i = 0; i < N_STREAMS; i++) {
        bat[i] = new_stream(m, a, c);
        one[i] = new_stream(m, a, c);
        for (int t = 0; t < N_TOK; t++) tok[i][t] = (hmt_token)(hmt_test_urand(&rng) * n_vocab);
        /* prompts of 1..5 tokens: the streams sit at different positions */
        ck_assert_int_eq(hmt_stream_feed(bat[i], tok[i], (size_t)i + 1), HMT_OK);
        ck_assert_int_eq(hmt_stream_feed(one[i], tok[i], (size_t)i + 1), HMT_OK);
    }
    const long long before = hmti_streams_rows_batched();
    for (int step = 0; step + N_STREAMS < N_TOK; step++) {
        hmt_token now[N_STREAMS];
        for (int i = 0; i < N_STREAMS; i++) now[i] = tok[i][i + 1 + step];
        ck_assert_msg(hmt_streams_feed(bat, N_STREAMS, now) == HMT_OK, "%s",
                      hmt_last_error_msg());
        for (int i = 0; i < N_STREAMS; i++) {
            ck_assert_int_eq(hmt_stream_feed(one[i], &now[i], 1), HMT_OK);
            ck_assert_int_eq(hmt_stream_n_fed(bat[i]), hmt_stream_n_fed(one[i]));
            ck_assert_int_eq(hmt_stream_n_segments(bat[i]), hmt_stream_n_segments(one[i]));
            expect_same(bat[i], one[i], n_vocab, c->tol, c->model, step);
        }
    }
    /* a third or more of the steps went through batched passes (the others
     * opened a segment, waited for the lookahead rule's j tokens (half of
     * each segment of hmt-full-a), refilled a window or shifted sinks) */
    const long long batched = hmti_streams_rows_batched() - before;
    const long long steps = (long long)N_STREAMS * (N_TOK - N_STREAMS);
    ck_assert_msg(batched * 3 > steps, "%lld of %lld steps batched", batched, steps);
    for (int i = 0; i < N_STREAMS; i++) hmt_stream_free(bat[i]), hmt_stream_free(one[i]);
    hmt_adapter_free(a);
    hmt_model_free(m);
}
END_TEST

/* Each misuse is refused before any stream changes. */
START_TEST(misuse_changes_nothing) {
    hmt_model *m, *m2;
    ck_assert_int_eq(hmt_model_load(&m, hmt_test_data("llama-q8.gguf"), NULL), HMT_OK);
    ck_assert_int_eq(hmt_model_load(&m2, hmt_test_data("llama-q8.gguf"), NULL), HMT_OK);
    const config c = {NULL, NULL, HMT_MODE_WINDOW, 0, 0, 12, 0};
    hmt_stream *s[3] = {new_stream(m, NULL, &c), new_stream(m, NULL, &c), new_stream(m2, NULL, &c)};
    const hmt_token t[3] = {1, 2, 3}, bad[3] = {1, 2, 100000};
    hmt_stream *dup[2] = {s[0], s[0]}, *with_null[2] = {s[0], NULL};
    ck_assert_int_eq(hmt_streams_feed(NULL, 1, t), HMT_E_INVAL);
    ck_assert_int_eq(hmt_streams_feed(s, 1, NULL), HMT_E_INVAL);
    ck_assert_int_eq(hmt_streams_feed(s, 0, t), HMT_E_INVAL);
    ck_assert_int_eq(hmt_streams_feed(s, 257, t), HMT_E_INVAL);
    ck_assert_int_eq(hmt_streams_feed(dup, 2, t), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "same stream"));
    ck_assert_int_eq(hmt_streams_feed(with_null, 2, t), HMT_E_INVAL);
    ck_assert_int_eq(hmt_streams_feed(s, 3, t), HMT_E_INVAL); /* s[2]: another model */
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "another model"));
    ck_assert_int_eq(hmt_streams_feed(s, 2, bad + 1), HMT_E_TOKEN);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(hmt_stream_n_fed(s[i]), 0);
    /* still usable, and the guards were left */
    ck_assert_int_eq(hmt_streams_feed(s, 2, t), HMT_OK);
    ck_assert_int_eq(hmt_stream_n_fed(s[0]), 1);
    ck_assert_int_eq(hmt_stream_feed(s[1], t, 1), HMT_OK);
    for (int i = 0; i < 3; i++) hmt_stream_free(s[i]);
    hmt_model_free(m), hmt_model_free(m2);
}
END_TEST

Suite *hmt_suite_streams_feed(void);
Suite *hmt_suite_streams_feed(void) {
    Suite *s = suite_create("streams_feed");
    TCase *tc = tcase_create("streams_feed");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, batched_equals_one_at_a_time, 0,
                        (int)(sizeof CONFIGS / sizeof CONFIGS[0]));
    tcase_add_test(tc, misuse_changes_nothing);
    suite_add_tcase(s, tc);
    return s;
}
