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

typedef struct {
    hmt_model *model;
    hmt_params *ctx_params, *greedy;
    hmt_ctx *first, *later; /* the prompt's context, and the one restored from the file */
    hmt_sampler *sampler;
} session;

static void session_free(session *s) { /* each free takes NULL */
    hmt_sampler_free(s->sampler);
    hmt_ctx_free(s->first);
    hmt_ctx_free(s->later);
    hmt_params_free(s->greedy);
    hmt_params_free(s->ctx_params);
    hmt_model_free(s->model);
}

/* Generate n tokens greedily from both contexts in step; 1 when their logits
 * were equal at every step. */
static int continue_both(session *s, int n, int *rc) {
    const int32_t n_vocab = hmt_model_n_vocab(s->model);
    int same = 1;
    for (int i = 0; i < n; i++) {
        const float *a = hmt_ctx_logits(s->first, -1), *b = hmt_ctx_logits(s->later, -1);
        same = same && !memcmp(a, b, (size_t)n_vocab * sizeof *a);
        hmt_token t;
        if ((*rc = hmt_sampler_sample_ctx(s->sampler, s->later, -1, &t))) return same;
        if (t == hmt_model_token_eos(s->model) || i == n - 1) break;
        char piece[128];
        size_t len;
        if (!hmt_detokenize(s->model, &t, 1, 0, piece, sizeof piece, &len)) fwrite(piece, 1, len, stdout);
        if ((*rc = hmt_ctx_eval_tokens(s->first, &t, 1, 0)) ||
            (*rc = hmt_ctx_eval_tokens(s->later, &t, 1, 0)))
            return same;
    }
    return same;
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
    session s = {0};
    hmt_token toks[512];
    size_t n_prompt = 0;
    int rc, same = 0;
    const char *step = "loading the model";
    if ((rc = hmt_model_load(&s.model, argv[1], NULL))) goto out;
    step = "tokenizing";
    if ((rc = hmt_tokenize(s.model, prompt, strlen(prompt), HMT_TOKENIZE_ADD_BOS, toks, 512,
                           &n_prompt)))
        goto out;
    step = "creating the contexts and the sampler";
    if ((rc = hmt_params_create(&s.ctx_params)) ||
        (rc = hmt_params_set_int(s.ctx_params, HMT_P_N_CTX, (int64_t)n_prompt + n_new)) ||
        (rc = hmt_ctx_create(&s.first, s.model, s.ctx_params)) ||
        (rc = hmt_ctx_create(&s.later, s.model, s.ctx_params)) ||
        (rc = hmt_params_create(&s.greedy)) ||
        (rc = hmt_params_set_float(s.greedy, HMT_P_TEMPERATURE, 0)) ||
        (rc = hmt_sampler_create(&s.sampler, s.greedy)))
        goto out;
    /* the prompt, evaluated once; its state (KV cache, last logits) to a file */
    step = "evaluating the prompt";
    if ((rc = n_prompt ? hmt_ctx_eval_tokens(s.first, toks, n_prompt, 0) : HMT_E_INVAL)) goto out;
    step = "saving the state";
    if ((rc = hmt_ctx_save_file(s.first, path))) goto out;
    /* later, possibly in another process: a fresh context from the file */
    step = "restoring the state";
    if ((rc = hmt_ctx_restore_file(s.later, path))) goto out;
    step = "generating";
    printf("restored %d positions from %s\n%s", hmt_ctx_n_past(s.later), path, prompt);
    same = continue_both(&s, n_new, &rc);
    if (!rc)
        printf("\nrestored context: %s\n", same ? "the same logits at every step" : "DIFFERENT logits");
out:
    if (rc)
        fprintf(stderr, "prompt_cache: %s: %s (%s)\n", step, hmt_last_error_msg(), hmt_strerror(rc));
    session_free(&s);
    return rc || !same ? 1 : 0;
}
