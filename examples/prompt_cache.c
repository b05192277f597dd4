/* prompt_cache: evaluate a prompt once, keep the context's state in a file,
 * and start a generation from that file instead of evaluating the prompt
 * again (a host's prompt cache, or a conversation resumed in another
 * process). The continuation from the restored context is the same as the
 * original's, logit for logit.
 *
 *     build/examples/prompt_cache MODEL STATE_FILE [PROMPT] [N_TOKENS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hmt/hmt.h>

static int fail(const char *what, int rc) {
    fprintf(stderr, "prompt_cache: %s: %s (%s)\n", what, hmt_last_error_msg(), hmt_strerror(rc));
    return 1;
}

static hmt_token argmax(const float *logits, int32_t n) {
    hmt_token best = 0;
    for (int32_t v = 1; v < n; v++)
        if (logits[v] > logits[best]) best = v;
    return best;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: prompt_cache MODEL STATE_FILE [PROMPT] [N_TOKENS]\n");
        return 2;
    }
    const char *path = argv[2], *prompt = argc > 3 ? argv[3] : "The history of";
    const int n_new = argc > 4 ? atoi(argv[4]) : 16;
    if (n_new < 1 || n_new > 4096) {
        fprintf(stderr, "prompt_cache: N_TOKENS must be in [1, 4096]\n");
        return 2;
    }
    hmt_model *model = NULL;
    hmt_params *params = NULL;
    hmt_ctx *first = NULL, *later = NULL;
    hmt_token toks[512];
    size_t n_prompt = 0;
    int rc, status = 1;

    if ((rc = hmt_model_load(&model, argv[1], NULL))) return fail("loading the model", rc);
    if ((rc = hmt_tokenize(model, prompt, strlen(prompt), HMT_TOKENIZE_ADD_BOS, toks, 512, &n_prompt))) {
        status = fail("tokenizing", rc);
        goto out;
    }
    if ((rc = hmt_params_create(&params)) ||
        (rc = hmt_params_set_int(params, HMT_P_N_CTX, (int64_t)n_prompt + n_new)) ||
        (rc = hmt_ctx_create(&first, model, params)) || (rc = hmt_ctx_create(&later, model, params))) {
        status = fail("creating the contexts", rc);
        goto out;
    }
    /* the prompt, evaluated once; its state (KV cache and last logits) to a file */
    if (n_prompt == 0 || (rc = hmt_ctx_eval_tokens(first, toks, n_prompt, 0))) {
        status = fail("evaluating the prompt", n_prompt ? rc : HMT_E_INVAL);
        goto out;
    }
    if ((rc = hmt_ctx_save_file(first, path))) {
        status = fail("saving the state", rc);
        goto out;
    }
    /* later, possibly in another process: a fresh context from the file */
    if ((rc = hmt_ctx_restore_file(later, path))) {
        status = fail("restoring the state", rc);
        goto out;
    }
    printf("restored %d positions from %s\n%s", hmt_ctx_n_past(later), path, prompt);
    /* both contexts go on greedily, in step */
    const int32_t n_vocab = hmt_model_n_vocab(model);
    int same = 1;
    for (int i = 0; i < n_new; i++) {
        const float *a = hmt_ctx_logits(first, -1), *b = hmt_ctx_logits(later, -1);
        same = same && !memcmp(a, b, (size_t)n_vocab * sizeof *a);
        hmt_token t = argmax(b, n_vocab);
        if (t == hmt_model_token_eos(model) || i == n_new - 1) break;
        char piece[128];
        size_t len;
        if (!hmt_detokenize(model, &t, 1, 0, piece, sizeof piece, &len)) fwrite(piece, 1, len, stdout);
        if ((rc = hmt_ctx_eval_tokens(first, &t, 1, 0)) || (rc = hmt_ctx_eval_tokens(later, &t, 1, 0))) {
            status = fail("evaluating", rc);
            goto out;
        }
    }
    printf("\nrestored context: %s\n", same ? "the same logits at every step" : "DIFFERENT logits");
    status = same ? 0 : 1;
out:
    hmt_ctx_free(first);
    hmt_ctx_free(later);
    hmt_params_free(params);
    hmt_model_free(model);
    return status;
}
