/* A downstream C program, built by tests/abi/check_downstream.sh with nothing
 * but `pkg-config --cflags --libs hmt` against a staged `make install`.
 * usage: hello MODEL.gguf */
#include <hmt/hmt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "hello.c:%d: %s failed (%s)\n", __LINE__, #cond,            \
                    hmt_last_error_msg());                                              \
            return 1;                                                                   \
        }                                                                               \
    } while (0)

int main(int argc, char **argv) {
    CHECK(argc == 2);
    /* the header and the library agree */
    CHECK(hmt_version_number() == HMT_VERSION_NUMBER);
    CHECK(strcmp(hmt_version_string(), HMT_VERSION_STRING) == 0);
    CHECK(hmt_abi_version() == HMT_ABI_VERSION);

    hmt_model *model = NULL;
    CHECK(hmt_model_load(&model, argv[1], NULL) == HMT_OK);
    const int32_t n_vocab = hmt_model_n_vocab(model);
    CHECK(n_vocab > 0 && hmt_model_n_embd(model) > 0);

    /* tokenization round trip */
    const char *text = "Hello world";
    hmt_token toks[64];
    size_t n = 0;
    CHECK(hmt_tokenize(model, text, strlen(text), HMT_TOKENIZE_ADD_BOS, toks, 64, &n) == HMT_OK);
    CHECK(n > 1);
    char buf[256];
    size_t len = 0;
    CHECK(hmt_detokenize(model, toks, n, 0, buf, sizeof buf, &len) == HMT_OK);
    CHECK(strstr(buf, text) != NULL);

    /* one eval: finite logits, greedy sampling picks the argmax */
    hmt_params *params = NULL, *sparams = NULL; /* each object gets its own keys */
    CHECK(hmt_params_create(&params) == HMT_OK);
    CHECK(hmt_params_set_int(params, HMT_P_N_THREADS, 2) == HMT_OK);
    CHECK(hmt_params_create(&sparams) == HMT_OK);
    CHECK(hmt_params_set_float(sparams, HMT_P_TEMPERATURE, 0.0) == HMT_OK);
    hmt_ctx *ctx = NULL;
    CHECK(hmt_ctx_create(&ctx, model, sparams) == HMT_E_INVAL); /* not a context key */
    CHECK(strstr(hmt_last_error_msg(), "temperature") != NULL);
    CHECK(hmt_ctx_create(&ctx, model, params) == HMT_OK);
    CHECK(hmt_ctx_eval_tokens(ctx, toks, n, 0) == HMT_OK);
    CHECK(hmt_ctx_n_past(ctx) == (int32_t)n);
    const float *logits = hmt_ctx_logits(ctx, -1);
    CHECK(logits != NULL);
    int32_t best = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        CHECK(isfinite(logits[i]));
        if (logits[i] > logits[best]) best = i;
    }
    hmt_sampler *sampler = NULL;
    CHECK(hmt_sampler_create(&sampler, sparams) == HMT_OK);
    hmt_token next = -1;
    CHECK(hmt_sampler_sample(sampler, logits, n_vocab, &next) == HMT_OK);
    CHECK(next == best);

    /* errors are codes with a message */
    hmt_token bad = n_vocab;
    CHECK(hmt_ctx_eval_tokens(ctx, &bad, 1, 0) == HMT_E_TOKEN);
    CHECK(strstr(hmt_last_error_msg(), "token") != NULL);

    printf("hello.c: libhmt %s, %s model, %zu tokens, next token %d\n", hmt_version_string(),
           hmt_model_arch(model), n, (int)next);
    hmt_sampler_free(sampler);
    hmt_ctx_free(ctx);
    hmt_params_free(params);
    hmt_params_free(sparams);
    hmt_model_free(model);
    return 0;
}
