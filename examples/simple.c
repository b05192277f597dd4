/* simple: greedy continuation of a prompt with a plain context, the
 * smallest complete use of the library: load a model, tokenize, evaluate
 * the prompt once, then one token at a time, free everything.
 *
 *     build/examples/simple MODEL [PROMPT] [N_TOKENS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hmt/hmt.h>

/* Report a failed call with the library's message for it. */
static int fail(const char *what, int rc) {
    fprintf(stderr, "simple: %s: %s (%s)\n", what, hmt_last_error_msg(), hmt_strerror(rc));
    return 1;
}

/* The most likely next token: the greedy choice. */
static hmt_token argmax(const float *logits, int32_t n) {
    hmt_token best = 0;
    for (int32_t v = 1; v < n; v++)
        if (logits[v] > logits[best]) best = v;
    return best;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: simple MODEL [PROMPT] [N_TOKENS]\n");
        return 2;
    }
    const char *prompt = argc > 2 ? argv[2] : "The history of";
    const int n_new = argc > 3 ? atoi(argv[3]) : 16;
    if (n_new < 0 || n_new > 4096) {
        fprintf(stderr, "simple: N_TOKENS must be in [0, 4096]\n");
        return 2;
    }

    hmt_model *model = NULL;
    hmt_params *params = NULL;
    hmt_ctx *ctx = NULL;
    hmt_token toks[512];
    size_t n_prompt = 0;
    int rc, status = 1;

    if ((rc = hmt_model_load(&model, argv[1], NULL))) return fail("loading the model", rc);
    /* BOS first, as the model was trained; HMT_E_BUFFER if the prompt is longer than toks */
    if ((rc = hmt_tokenize(model, prompt, strlen(prompt), HMT_TOKENIZE_ADD_BOS, toks, 512, &n_prompt))) {
        status = fail("tokenizing", rc);
        goto out;
    }
    /* a context sized for the prompt and the new tokens (KV cache length) */
    if ((rc = hmt_params_create(&params)) ||
        (rc = hmt_params_set_int(params, HMT_P_N_CTX, (int64_t)n_prompt + n_new)) ||
        (rc = hmt_ctx_create(&ctx, model, params))) {
        status = fail("creating the context", rc);
        goto out;
    }
    /* the whole prompt in one call; logits of its last token only */
    if (n_prompt == 0 || (rc = hmt_ctx_eval_tokens(ctx, toks, n_prompt, 0))) {
        status = fail("evaluating the prompt", n_prompt ? rc : HMT_E_INVAL);
        goto out;
    }
    fputs(prompt, stdout);
    for (int i = 0; i < n_new; i++) {
        hmt_token t = argmax(hmt_ctx_logits(ctx, -1), hmt_model_n_vocab(model));
        if (t == hmt_model_token_eos(model)) break;
        char piece[128];
        size_t len;
        if (!hmt_detokenize(model, &t, 1, 0, piece, sizeof piece, &len)) fwrite(piece, 1, len, stdout);
        if ((rc = hmt_ctx_eval_tokens(ctx, &t, 1, 0))) {
            status = fail("evaluating", rc);
            goto out;
        }
    }
    putchar('\n');
    status = 0;
out: /* every free takes NULL; a context keeps its model alive, so any order works */
    hmt_ctx_free(ctx);
    hmt_params_free(params);
    hmt_model_free(model);
    return status;
}
