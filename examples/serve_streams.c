/* serve_streams: several users generating at once, each with an HMT stream
 * of its own (its memory of everything it was fed), all of their next
 * tokens evaluated together by one hmt_streams_feed call per step. Then the
 * same continuations again, one user at a time, to show they are the same.
 *
 *     build/examples/serve_streams MODEL ADAPTER [N_TOKENS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hmt/hmt.h>

enum { USERS = 3, MAX_NEW = 256 };
static const char *const PROMPTS[USERS] = {"The jury said", "In the morning the",
                                           "Mrs. Kennedy had"};

static int fail(const char *what, int rc) {
    fprintf(stderr, "serve_streams: %s: %s (%s)\n", what, hmt_last_error_msg(), hmt_strerror(rc));
    return 1;
}

static hmt_token argmax(const float *logits, int32_t n) {
    hmt_token best = 0;
    for (int32_t v = 1; v < n; v++)
        if (logits[v] > logits[best]) best = v;
    return best;
}

/* Each user's stream (mode full, generation rule) fed its prompt: the
 * prompt's last logits give its first token, in next[]. */
static int open_users(hmt_model *m, hmt_adapter *a, hmt_stream **s, hmt_token *next) {
    hmt_params *p = NULL;
    int rc = hmt_params_create(&p);
    if (!rc) rc = hmt_params_set_int(p, HMT_P_LOOKAHEAD, 0);
    for (int u = 0; !rc && u < USERS; u++) {
        hmt_token toks[128];
        size_t n = 0;
        int64_t first, end;
        rc = hmt_stream_create(&s[u], m, a, p);
        if (!rc) rc = hmt_tokenize(m, PROMPTS[u], strlen(PROMPTS[u]), HMT_TOKENIZE_ADD_BOS, toks, 128, &n);
        if (!rc) rc = hmt_stream_feed(s[u], toks, n);
        if (rc) break;
        hmt_stream_ready_range(s[u], &first, &end);
        next[u] = argmax(hmt_stream_logits(s[u], end - 1), hmt_model_n_vocab(m));
    }
    hmt_params_free(p);
    return rc;
}

/* n_new greedy tokens per user into out[u][*]; together: one call per step
 * for all users, else each user's stream fed alone. */
static int generate(hmt_model *m, hmt_adapter *a, int n_new, int together, hmt_token out[][MAX_NEW]) {
    hmt_stream *s[USERS] = {0};
    hmt_token next[USERS];
    int rc = open_users(m, a, s, next);
    for (int i = 0; !rc && i < n_new; i++) {
        for (int u = 0; u < USERS; u++) out[u][i] = next[u];
        if (together) {
            rc = hmt_streams_feed(s, USERS, next);
        } else {
            for (int u = 0; !rc && u < USERS; u++) rc = hmt_stream_feed(s[u], &next[u], 1);
        }
        for (int u = 0; !rc && u < USERS; u++)
            next[u] = argmax(hmt_stream_logits(s[u], hmt_stream_n_ready(s[u]) - 1), hmt_model_n_vocab(m));
    }
    for (int u = 0; u < USERS; u++) hmt_stream_free(s[u]);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: serve_streams MODEL ADAPTER [N_TOKENS]\n");
        return 2;
    }
    const int n_new = argc > 3 ? atoi(argv[3]) : 24;
    if (n_new < 1 || n_new > MAX_NEW) {
        fprintf(stderr, "serve_streams: N_TOKENS must be in [1, %d]\n", MAX_NEW);
        return 2;
    }
    static hmt_token both[2][USERS][MAX_NEW];
    hmt_model *m = NULL;
    hmt_adapter *a = NULL;
    int rc, status = 1;
    if ((rc = hmt_model_load(&m, argv[1], NULL))) return fail("loading the model", rc);
    if ((rc = hmt_adapter_load(&a, m, argv[2]))) {
        status = fail("loading the adapter", rc);
        goto out;
    }
    for (int together = 1; together >= 0; together--)
        if ((rc = generate(m, a, n_new, together, both[together]))) {
            status = fail(together ? "generating together" : "generating alone", rc);
            goto out;
        }
    for (int u = 0; u < USERS; u++) {
        char text[4096];
        size_t len = 0;
        if (!hmt_detokenize(m, both[1][u], (size_t)n_new, 0, text, sizeof text, &len))
            printf("user %d: %s%.*s\n", u, PROMPTS[u], (int)len, text);
    }
    status = memcmp(both[0], both[1], sizeof both[0]) != 0;
    puts(status ? "the users' tokens differ from generating alone"
                : "the same tokens as each user generating alone");
out: /* a stream keeps its model and adapter alive: any order works */
    hmt_adapter_free(a);
    hmt_model_free(m);
    return status;
}
