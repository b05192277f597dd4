/* processors: generation through a sampler with next-token processors: the
 * built-in DITTO sentence-repetition penalty, then a processor of our own
 * that forbids one token, then the sampler's seeded draw. The sampler runs
 * every processor in order on each position's logits, checks what they
 * return, and feeds the chosen token back to each of them (accept).
 *
 *     build/examples/processors MODEL [PROMPT] [BANNED_WORD]
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <hmt/hmt.h>

static int fail(const char *what, int rc) {
    fprintf(stderr, "processors: %s: %s (%s)\n", what, hmt_last_error_msg(), hmt_strerror(rc));
    return 1;
}

/* Our processor: the token in user_data may never be chosen. */
static int ban_apply(void *user_data, float *logits, int32_t n_vocab, const float *key, int32_t n_key) {
    (void)key, (void)n_key;
    const hmt_token banned = *(const hmt_token *)user_data;
    if (banned >= 0 && banned < n_vocab) logits[banned] = -INFINITY;
    return HMT_OK;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: processors MODEL [PROMPT] [BANNED_WORD]\n");
        return 2;
    }
    const char *prompt = argc > 2 ? argv[2] : "The jury said";
    const char *word = argc > 3 ? argv[3] : "the";
    hmt_model *model = NULL;
    hmt_params *sp = NULL, *dp = NULL;
    hmt_ctx *ctx = NULL;
    hmt_sampler *sampler = NULL;
    hmt_proc *ditto = NULL, *ban = NULL;
    hmt_token toks[512], banned = -1;
    size_t n = 0, nb = 0;
    int rc, status = 1;

    if ((rc = hmt_model_load(&model, argv[1], NULL))) return fail("loading the model", rc);
    if ((rc = hmt_tokenize(model, prompt, strlen(prompt), HMT_TOKENIZE_ADD_BOS, toks, 512, &n)) ||
        (rc = hmt_tokenize(model, word, strlen(word), 0, &banned, 1, &nb))) {
        status = fail("tokenizing (the banned word must be one token)", rc);
        goto out;
    }
    /* each object gets the keys it reads: the sampler's, DITTO's */
    if ((rc = hmt_params_create(&sp)) || (rc = hmt_params_set_float(sp, HMT_P_TEMPERATURE, 0.7)) ||
        (rc = hmt_params_set_int(sp, HMT_P_SEED, 42)) || (rc = hmt_params_create(&dp)) ||
        (rc = hmt_params_set_float(dp, HMT_P_DITTO_LAMBDA, 0.5)) ||
        (rc = hmt_ctx_create(&ctx, model, NULL)) || (rc = hmt_sampler_create(&sampler, sp))) {
        status = fail("creating the context and sampler", rc);
        goto out;
    }
    const hmt_proc_i ban_i = {.struct_size = sizeof ban_i, .name = "ban", .apply = ban_apply};
    if ((rc = hmt_proc_ditto_create(&ditto, model, dp)) || (rc = hmt_sampler_add(sampler, ditto)) ||
        (rc = hmt_proc_create(&ban, &ban_i, &banned)) || (rc = hmt_sampler_add(sampler, ban))) {
        status = fail("adding the processors", rc);
        goto out;
    }
    for (size_t i = 0; i < n; i++) /* the prompt is the processors' history too */
        if ((rc = hmt_sampler_accept(sampler, toks[i]))) {
            status = fail("accepting the prompt", rc);
            goto out;
        }
    if ((rc = hmt_ctx_eval_tokens(ctx, toks, n, 0))) {
        status = fail("evaluating the prompt", rc);
        goto out;
    }
    fputs(prompt, stdout);
    for (int i = 0; i < 40; i++) {
        hmt_token t;
        /* DITTO then ban on the last row's logits, a draw, t accepted by both */
        if ((rc = hmt_sampler_sample_ctx(sampler, ctx, -1, &t))) {
            status = fail("sampling", rc);
            goto out;
        }
        if (t == hmt_model_token_eos(model)) break;
        char piece[128];
        size_t len;
        if (!hmt_detokenize(model, &t, 1, 0, piece, sizeof piece, &len)) fwrite(piece, 1, len, stdout);
        if ((rc = hmt_ctx_eval_tokens(ctx, &t, 1, 0))) {
            status = rc == HMT_E_CTX_FULL ? 0 : fail("evaluating", rc);
            goto out;
        }
    }
    putchar('\n');
    status = 0;
out: /* any order: the sampler holds its processors */
    hmt_proc_free(ditto);
    hmt_proc_free(ban);
    hmt_sampler_free(sampler);
    hmt_ctx_free(ctx);
    hmt_params_free(sp);
    hmt_params_free(dp);
    hmt_model_free(model);
    return status;
}
