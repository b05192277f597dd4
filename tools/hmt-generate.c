#define _POSIX_C_SOURCE 200809L /* clock_gettime */
/* hmt-generate: continue a prompt with a GGUF model, using only the public
 * API. Exit codes: 0 success, 1 runtime failure, 2 usage error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hmt/hmt.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: hmt-generate -m MODEL [-p PROMPT] [-n N] [options]\n"
            "  -m, --model PATH     GGUF model file (llama, qwen2, qwen3, gemma2, gemma3)\n"
            "  -p, --prompt TEXT    prompt text (default: empty, starts from BOS)\n"
            "  -n, --n-predict N    tokens to generate (default 32)\n"
            "      --temp T         temperature, 0 = greedy (default 0.8)\n"
            "      --top-k K        keep the K most likely tokens, 0 = all (default 40)\n"
            "      --top-p P        nucleus mass in (0,1], 1 = off (default 0.95)\n"
            "      --seed S         random seed (default 0x484d54)\n"
            "  -t, --threads N      worker threads (default: all CPUs)\n"
            "  -c, --ctx-size N     context length (default: prompt + n, at most the model's)\n"
            "      --ditto L        DITTO sentence-repetition penalty, lambda L in (0,1]\n"
            "      --knn FILE       kNN-LM datastore (hmt-datastore) to interpolate with\n"
            "      --knn-lambda L   kNN interpolation weight (default 0.25)\n"
            "      --knn-k K        neighbours retrieved (default 1024)\n"
            "  -a, --adapter PATH   generate through HMT with this adapter (\"-\": the\n"
            "                       model file's own): the prompt is scored with the\n"
            "                       lookahead rule, new segments use the causal rule\n"
            "      --chat           the prompt is a user message: format it with the\n"
            "                       model's chat template and generate the assistant's\n"
            "                       turn (only the reply is printed)\n"
            "      --system TEXT    with --chat: a system message before the user's\n"
            "      --chat-template T  with --chat: a template family (llama2, llama3,\n"
            "                       chatml, gemma, phi3, phi4, mistral-v1, mistral-v3,\n"
            "                       mistral-v3-tekken, mistral-v7, mistral-v7-tekken,\n"
            "                       deepseek3) or template text\n"
            "                       instead of the model's tokenizer.chat_template\n"
            "Built-in samplers (llama.cpp's definitions; each added only when given):\n"
            "      --logit-bias TOKEN=BIAS  add BIAS to TOKEN's logit (-inf bans it);\n"
            "                       repeatable\n"
            "      --repeat-penalty R  divide a repeated token's positive logit by R,\n"
            "                       multiply a negative one (1 = off)\n"
            "      --frequency-penalty F  minus F per occurrence (0 = off)\n"
            "      --presence-penalty P   minus P once if present (0 = off)\n"
            "      --repeat-last-n N  tokens the three penalties look back (default 64)\n"
            "      --typical P      locally typical sampling, mass P in [0,1] (1 = off)\n"
            "      --min-p P        drop tokens below P times the best one's probability\n"
            "                       (0 = off)\n"
            "  Order: logit bias, penalties, DITTO, kNN-LM, typical, min-p, then top-k,\n"
            "  temperature, top-p and the seeded draw.\n"
            "  -h, --help           show this help\n"
            "Generation stops after N tokens or at an end-of-generation token (eos,\n"
            "eot, eom or another end-of-turn token of the model: hmt_token_is_eog).\n");
}

/* The prompt and each new token go to a plain context, or to an HMT stream. */
typedef struct {
    hmt_ctx *ctx;
    hmt_stream *stream;
} runner;

/* Rows evaluated here keep the last block's FFN input too: the kNN-LM key. */
static int run_prompt(runner *r, const hmt_token *t, size_t n) {
    if (r->ctx) {
        uint8_t *flags = calloc(n, 1);
        if (!flags) return HMT_E_NOMEM;
        flags[n - 1] = HMT_OUT_LOGITS | HMT_OUT_FFN_INPUT;
        int rc = hmt_ctx_eval(r->ctx, t, NULL, n, NULL, flags);
        free(flags);
        return rc;
    }
    int rc = hmt_stream_feed(r->stream, t, n);
    if (!rc) rc = hmt_stream_flush(r->stream); /* end of the known text */
    if (!rc) rc = hmt_stream_set_int(r->stream, HMT_P_LOOKAHEAD, 0);
    return rc;
}

static int run_next(runner *r, hmt_token t) {
    const uint8_t flags = HMT_OUT_LOGITS | HMT_OUT_FFN_INPUT;
    return r->ctx ? hmt_ctx_eval(r->ctx, &t, NULL, 1, NULL, &flags)
                  : hmt_stream_feed(r->stream, &t, 1);
}

/* Add the processor a create call just made (rc its status) to the sampler,
 * which holds it; our reference is dropped either way. */
static int add_proc(hmt_sampler *s, int rc, hmt_proc **p) {
    if (!rc) rc = hmt_sampler_add(s, *p);
    hmt_proc_free(*p);
    *p = NULL;
    return rc;
}

/* Draw the next token from the last position's logits (and kNN-LM key). */
static int sample_next(const runner *r, hmt_sampler *s, hmt_token *t) {
    return r->ctx ? hmt_sampler_sample_ctx(s, r->ctx, -1, t)
                  : hmt_sampler_sample_stream(s, r->stream, hmt_stream_n_ready(r->stream) - 1, t);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_num(const char *s, double *out) {
    char *end;
    *out = strtod(s, &end);
    return *s && !*end;
}

#define MAX_BIAS 4096 /* --logit-bias pairs */

/* TOKEN=BIAS: a token id (checked by the library) and a number. */
static int parse_bias(const char *s, hmt_token *tok, float *bias) {
    char *end;
    long t = strtol(s, &end, 10);
    double b;
    if (end == s || *end != '=' || t < INT32_MIN || t > INT32_MAX || !parse_num(end + 1, &b))
        return 0;
    *tok = (hmt_token)t;
    *bias = (float)b;
    return 1;
}

/* A whole number in [lo, hi], or a message naming the option: exit code 2. */
static int check_count(const char *opt, double v, double lo, double hi) {
    if (v >= lo && v <= hi && v == (double)(long long)v) return 1;
    fprintf(stderr, "hmt-generate: %s must be a whole number in [%.0f, %.0f], got %g\n", opt, lo,
            hi, v);
    return 0;
}

/* Print the library's message for a failed call and return exit code 1. */
static int die(const char *what, int rc) {
    fprintf(stderr, "hmt-generate: %s: %s (%s)\n", what, hmt_last_error_msg(), hmt_strerror(rc));
    return 1;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *prompt = "", *adapter_path = NULL, *knn_path = NULL;
    const char *system_msg = NULL, *chat_template = NULL;
    int chat = 0;
    double n_predict = 32, temp = 0.8, top_k = 40, top_p = 0.95, seed = 0x484d54, threads = 0,
           n_ctx = 0, ditto = 0, knn_lambda = 0.25, knn_k = 1024;
    /* built-in samplers: NAN = not given */
    double min_p = NAN, typical = NAN, rep_pen = NAN, freq_pen = NAN, pres_pen = NAN,
           last_n = NAN;
    static hmt_token bias_tok[MAX_BIAS];
    static float bias_val[MAX_BIAS];
    size_t n_bias = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--chat")) {
            chat = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "hmt-generate: unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        double *num = NULL;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = v;
        else if (!strcmp(a, "-a") || !strcmp(a, "--adapter")) adapter_path = v;
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) num = &n_predict;
        else if (!strcmp(a, "--temp")) num = &temp;
        else if (!strcmp(a, "--ditto")) num = &ditto;
        else if (!strcmp(a, "--min-p")) num = &min_p;
        else if (!strcmp(a, "--typical")) num = &typical;
        else if (!strcmp(a, "--repeat-penalty")) num = &rep_pen;
        else if (!strcmp(a, "--frequency-penalty")) num = &freq_pen;
        else if (!strcmp(a, "--presence-penalty")) num = &pres_pen;
        else if (!strcmp(a, "--repeat-last-n")) num = &last_n;
        else if (!strcmp(a, "--logit-bias")) {
            if (n_bias == MAX_BIAS || !parse_bias(v, &bias_tok[n_bias], &bias_val[n_bias])) {
                fprintf(stderr, "hmt-generate: --logit-bias takes TOKEN=BIAS (a token id and a "
                                "number, -inf to ban; at most %d), got '%s'\n", MAX_BIAS, v);
                return 2;
            }
            n_bias++;
        }
        else if (!strcmp(a, "--knn")) knn_path = v;
        else if (!strcmp(a, "--system")) system_msg = v;
        else if (!strcmp(a, "--chat-template")) chat_template = v;
        else if (!strcmp(a, "--knn-lambda")) num = &knn_lambda;
        else if (!strcmp(a, "--knn-k")) num = &knn_k;
        else if (!strcmp(a, "--top-k")) num = &top_k;
        else if (!strcmp(a, "--top-p")) num = &top_p;
        else if (!strcmp(a, "--seed")) num = &seed;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) num = &threads;
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) num = &n_ctx;
        else {
            fprintf(stderr, "hmt-generate: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (num && !parse_num(v, num)) {
            fprintf(stderr, "hmt-generate: %s needs a number, got '%s'\n", a, v);
            return 2;
        }
    }
    if (!model_path) {
        fprintf(stderr, "hmt-generate: -m MODEL is required\n");
        usage(stderr);
        return 2;
    }
    if (!check_count("-n/--n-predict", n_predict, 0, 1 << 20) ||
        !check_count("-t/--threads", threads, 0, 1024) ||
        !check_count("-c/--ctx-size", n_ctx, 0, 1 << 20))
        return 2;
    if (!chat && (system_msg || chat_template)) {
        fprintf(stderr, "hmt-generate: --system and --chat-template need --chat\n");
        return 2;
    }
    if (ditto < 0 || ditto > 1) {
        fprintf(stderr, "hmt-generate: --ditto takes a lambda in (0, 1] (0: off), got %g\n", ditto);
        return 2;
    }
    if (hmt_version_number() != HMT_VERSION_NUMBER)
        fprintf(stderr, "hmt-generate: warning: built against libhmt %s, running %s\n",
                HMT_VERSION_STRING, hmt_version_string());

    /* one params object per object created: each reads only its own keys */
    hmt_params *sp = NULL, *rp = NULL, *hp = NULL, *mp = NULL, *tp = NULL, *pp = NULL;
    hmt_model *model = NULL;
    hmt_adapter *adapter = NULL;
    runner run = {NULL, NULL};
    hmt_sampler *sampler = NULL;
    hmt_proc *proc = NULL;
    hmt_knn *knn = NULL;
    hmt_token *toks = NULL;
    char *chat_text = NULL;
    int rc, status = 1;
    if ((rc = hmt_params_create(&sp)) || (rc = hmt_params_create(&rp)) ||
        (rc = hmt_params_create(&hp)) || (rc = hmt_params_create(&mp)) ||
        (rc = hmt_params_create(&tp)) || (rc = hmt_params_create(&pp))) {
        status = die("params", rc);
        goto done;
    }
    if ((rc = hmt_params_set_float(sp, HMT_P_TEMPERATURE, temp)) ||
        (rc = hmt_params_set_int(sp, HMT_P_TOP_K, (int64_t)top_k)) ||
        (rc = hmt_params_set_float(sp, HMT_P_TOP_P, top_p)) ||
        (rc = hmt_params_set_int(sp, HMT_P_SEED, (int64_t)seed)) ||
        (rc = hmt_params_set_int(rp, HMT_P_N_THREADS, threads > 0 ? (int64_t)threads : HMT_AUTO))) {
        fprintf(stderr, "hmt-generate: %s\n", hmt_last_error_msg());
        status = 2;
        goto done;
    }
    /* the library checks the values (bounds, NaN); a bad one is a usage error */
    const int penalties = !isnan(rep_pen) || !isnan(freq_pen) || !isnan(pres_pen);
    if ((!isnan(min_p) && (rc = hmt_params_set_float(mp, HMT_P_MIN_P, min_p))) ||
        (!isnan(typical) && (rc = hmt_params_set_float(tp, HMT_P_TYPICAL_P, typical))) ||
        (!isnan(rep_pen) && (rc = hmt_params_set_float(pp, HMT_P_REPEAT_PENALTY, rep_pen))) ||
        (!isnan(freq_pen) && (rc = hmt_params_set_float(pp, HMT_P_FREQUENCY_PENALTY, freq_pen))) ||
        (!isnan(pres_pen) && (rc = hmt_params_set_float(pp, HMT_P_PRESENCE_PENALTY, pres_pen))) ||
        (!isnan(last_n) && !check_count("--repeat-last-n", last_n, 0, 1 << 20) &&
         (rc = HMT_E_INVAL)) ||
        (!isnan(last_n) && (rc = hmt_params_set_int(pp, HMT_P_PENALTY_LAST_N, (int64_t)last_n)))) {
        if (hmt_last_error_msg()[0]) fprintf(stderr, "hmt-generate: %s\n", hmt_last_error_msg());
        status = 2;
        goto done;
    }
    if (!isnan(last_n) && !penalties) {
        fprintf(stderr, "hmt-generate: --repeat-last-n needs --repeat-penalty, "
                        "--frequency-penalty or --presence-penalty\n");
        status = 2;
        goto done;
    }
    if ((rc = hmt_model_load(&model, model_path, NULL))) {
        status = die("loading the model", rc);
        goto done;
    }
    uint32_t tok_flags = HMT_TOKENIZE_ADD_BOS;
    if (chat) { /* the prompt becomes the formatted conversation */
        const char *roles[2] = {"system", "user"}, *contents[2] = {system_msg, prompt};
        size_t first = system_msg ? 0 : 1, need = 0;
        rc = hmt_chat_apply(model, chat_template, roles + first, contents + first, 2 - first, 1,
                            NULL, 0, &need);
        if (rc == HMT_E_BUFFER && (chat_text = malloc(need + 1)) != NULL)
            rc = hmt_chat_apply(model, chat_template, roles + first, contents + first, 2 - first,
                                1, chat_text, need + 1, &need);
        else if (rc == HMT_E_BUFFER)
            rc = HMT_E_NOMEM;
        if (rc) {
            status = die("formatting the chat (--chat)", rc);
            goto done;
        }
        prompt = chat_text;
        tok_flags |= HMT_TOKENIZE_SPECIAL; /* the template's control texts are tokens */
    }
    size_t plen = strlen(prompt), n_prompt = 0;
    size_t cap = plen + 2;
    toks = malloc((cap + (size_t)n_predict) * sizeof *toks);
    if (!toks) {
        fprintf(stderr, "hmt-generate: out of memory for %zu tokens\n", cap + (size_t)n_predict);
        goto done;
    }
    if ((rc = hmt_tokenize(model, prompt, plen, tok_flags, toks, cap, &n_prompt))) {
        status = die("tokenizing the prompt", rc);
        goto done;
    }
    if (n_prompt == 0) {
        fprintf(stderr, "hmt-generate: the prompt is empty and the model has no BOS token\n");
        goto done;
    }
    int64_t want_ctx = n_ctx > 0 ? (int64_t)n_ctx : (int64_t)(n_prompt + (size_t)n_predict);
    if (want_ctx > hmt_model_n_ctx_train(model)) want_ctx = hmt_model_n_ctx_train(model);
    if (adapter_path) {
        if ((rc = hmt_adapter_load(&adapter, model, strcmp(adapter_path, "-") ? adapter_path : NULL)) ||
            (rc = hmt_params_set_int(rp, HMT_P_ALL_LOGITS, 0)) ||
            (rc = hmt_params_set_int(rp, HMT_P_KEEP_FFN_INPUT, 1)) ||
            (rc = hmt_stream_create(&run.stream, model, adapter, rp))) {
            status = die("setting up HMT", rc);
            goto done;
        }
    } else if ((rc = hmt_params_set_int(rp, HMT_P_N_CTX, want_ctx)) ||
               (rc = hmt_ctx_create(&run.ctx, model, rp))) {
        status = die("creating the context", rc);
        goto done;
    }
    if ((rc = hmt_sampler_create(&sampler, sp))) {
        status = die("creating the sampler", rc);
        goto done;
    }
    /* llama.cpp's order: logit bias and penalties first, filters last */
    if (n_bias > 0 && (rc = add_proc(sampler, hmt_proc_logit_bias_create(&proc, model, bias_tok,
                                                                          bias_val, n_bias),
                                     &proc))) {
        status = die("setting up the logit bias", rc);
        goto done;
    }
    if (penalties && (rc = add_proc(sampler, hmt_proc_penalties_create(&proc, pp), &proc))) {
        status = die("setting up the penalties", rc);
        goto done;
    }
    if (ditto > 0) {
        hmt_proc *dp = NULL;
        if ((rc = hmt_params_set_float(hp, HMT_P_DITTO_LAMBDA, ditto)) ||
            (rc = hmt_proc_ditto_create(&dp, model, hp)) || (rc = hmt_sampler_add(sampler, dp))) {
            hmt_proc_free(dp);
            status = die("setting up DITTO", rc);
            goto done;
        }
        hmt_proc_free(dp); /* the sampler holds it */
    }
    if (knn_path) {
        hmt_proc *kp = NULL;
        hmt_params *kp_params = NULL;
        if ((rc = hmt_params_create(&kp_params)) ||
            (rc = hmt_params_set_float(kp_params, HMT_P_KNN_LAMBDA, knn_lambda)) ||
            (rc = hmt_params_set_int(kp_params, HMT_P_KNN_K, (int64_t)knn_k)) ||
            (rc = hmt_knn_load(&knn, model, knn_path, NULL)) ||
            (rc = hmt_proc_knn_create(&kp, knn, kp_params)) ||
            (rc = hmt_sampler_add(sampler, kp))) {
            hmt_proc_free(kp);
            hmt_params_free(kp_params);
            status = die("setting up the kNN-LM", rc);
            goto done;
        }
        hmt_proc_free(kp); /* the sampler holds it, and it holds the datastore */
        hmt_params_free(kp_params);
    }
    if (!isnan(typical) && (rc = add_proc(sampler, hmt_proc_typical_create(&proc, tp), &proc))) {
        status = die("setting up typical sampling", rc);
        goto done;
    }
    if (!isnan(min_p) && (rc = add_proc(sampler, hmt_proc_min_p_create(&proc, mp), &proc))) {
        status = die("setting up min-p", rc);
        goto done;
    }
    for (size_t i = 0; i < n_prompt; i++) /* the prompt is the processors' history */
        if ((rc = hmt_sampler_accept(sampler, toks[i]))) {
            status = die("accepting the prompt", rc);
            goto done;
        }
    char piece[256];
    size_t len;
    for (size_t i = 0; i < n_prompt && !chat; i++) /* --chat prints the reply only */
        if (!hmt_detokenize(model, &toks[i], 1, 0, piece, sizeof piece, &len))
            fwrite(piece, 1, len, stdout);
    fflush(stdout);

    double t0 = now();
    if ((rc = run_prompt(&run, toks, n_prompt))) {
        status = die("evaluating the prompt", rc);
        goto done;
    }
    double t1 = now();
    int n_gen = 0;
    for (; n_gen < (int)n_predict; n_gen++) {
        hmt_token t;
        if ((rc = sample_next(&run, sampler, &t))) {
            status = die("sampling", rc);
            goto done;
        }
        if (hmt_token_is_eog(model, t)) break; /* eos, eot, eom, end of turn */
        if (!hmt_detokenize(model, &t, 1, 0, piece, sizeof piece, &len)) fwrite(piece, 1, len, stdout);
        fflush(stdout);
        if (n_gen + 1 == (int)n_predict) {
            n_gen++;
            break;
        }
        if ((rc = run_next(&run, t))) {
            if (rc == HMT_E_CTX_FULL) {
                n_gen++;
                break;
            }
            status = die("evaluating", rc);
            goto done;
        }
    }
    double t2 = now();
    printf("\n");
    fflush(stdout); /* the text before the figures on stderr */
    fprintf(stderr, "hmt-generate: prompt %zu tokens in %.3f s (%.1f tok/s), generated %d in %.3f s (%.1f tok/s)\n",
            n_prompt, t1 - t0, (double)n_prompt / (t1 - t0), n_gen, t2 - t1,
            n_gen > 0 ? n_gen / (t2 - t1) : 0.0);
    status = 0;
done:
    free(toks);
    free(chat_text);
    hmt_knn_free(knn); /* any order: every handle holds what it needs */
    hmt_sampler_free(sampler);
    hmt_ctx_free(run.ctx);
    hmt_stream_free(run.stream);
    hmt_adapter_free(adapter);
    hmt_model_free(model);
    hmt_params_free(sp);
    hmt_params_free(rp);
    hmt_params_free(hp);
    hmt_params_free(mp);
    hmt_params_free(tp);
    hmt_params_free(pp);
    return status;
}
