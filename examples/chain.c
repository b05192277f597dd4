/* chain: generation through a chain of next-token processors: the built-in
 * DITTO sentence-repetition penalty, then a processor of our own that
 * forbids one token, then a seeded sampler. The chain runs every processor
 * in order on each position's logits, checks what they return, and feeds
 * the chosen token back to each of them (accept).
 *
 *     build/examples/chain MODEL [PROMPT] [BANNED_WORD]
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <hmt/hmt.h>
#include <hmt/hmt_proc.h>

static int fail(const char *what, int rc) {
    fprintf(stderr, "chain: %s: %s (%s)\n", what, hmt_last_error_msg(), hmt_strerror(rc));
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
        fprintf(stderr, "usage: chain MODEL [PROMPT] [BANNED_WORD]\n");
        return 2;
    }
    const char *prompt = argc > 2 ? argv[2] : "The jury said";
    const char *word = argc > 3 ? argv[3] : "the";
    hmt_model *model = NULL;
    hmt_params *params = NULL;
    hmt_ctx *ctx = NULL;
    hmt_sampler *sampler = NULL;
    hmt_chain *chain = NULL;
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
    /* one params object carries every setting; each object reads its own keys */
    if ((rc = hmt_params_create(&params)) ||
        (rc = hmt_params_set_float(params, HMT_P_TEMPERATURE, 0.7)) ||
        (rc = hmt_params_set_int(params, HMT_P_SEED, 42)) ||
        (rc = hmt_params_set_float(params, HMT_P_DITTO_LAMBDA, 0.5)) ||
        (rc = hmt_ctx_create(&ctx, model, params)) || (rc = hmt_sampler_create(&sampler, params))) {
        status = fail("creating the context and sampler", rc);
        goto out;
    }
    const hmt_proc_i ban_i = {.struct_size = sizeof ban_i, .name = "ban", .apply = ban_apply};
    if ((rc = hmt_chain_create(&chain)) || (rc = hmt_proc_ditto_create(&ditto, model, params)) ||
        (rc = hmt_chain_add(chain, ditto)) || /* the chain owns ditto from here, even on failure */
        (rc = hmt_proc_create(&ban, &ban_i, &banned)) || (rc = hmt_chain_add(chain, ban))) {
        status = fail("building the chain", rc);
        goto out;
    }
    for (size_t i = 0; i < n; i++) /* the prompt is the processors' history too */
        if ((rc = hmt_chain_accept(chain, toks[i]))) {
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
        /* apply DITTO then ban, sample, and accept t into both processors */
        if ((rc = hmt_chain_sample(chain, sampler, hmt_ctx_logits(ctx, -1), hmt_model_n_vocab(model),
                                   NULL, 0, &t))) {
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
out:
    hmt_chain_free(chain); /* frees ditto and ban */
    hmt_sampler_free(sampler);
    hmt_ctx_free(ctx);
    hmt_params_free(params);
    hmt_model_free(model);
    return status;
}
