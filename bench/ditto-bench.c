#define _POSIX_C_SOURCE 200809L /* clock_gettime */
/* ditto-bench: greedy generation from prompts taken from a text file, with and
 * without the DITTO sentence-repetition penalty (include/hmt/hmt_proc.h),
 * reporting the repetition metrics of algorithms.md §3.5:
 *   seq-rep-n (Welleck, n = 1..4): 1 − unique n-grams / n-grams, per continuation
 *   rep-sen: (#sentences − #unique) / #sentences, sentences split at '.' tokens
 *            (text before the first period excluded, the last span drops its
 *            final token, as DITTO's report_metrics.py)
 *   rep-w (Fu, w = 16): fraction of tokens that occur in the previous w tokens
 *   rep-r (Fu): fraction of tokens in a bigram that occurs more than once
 *   uniq: distinct tokens over all continuations
 *   diverted: greedy steps where the penalty changed the chosen token
 *   tok/s: generated tokens per second, prompt evaluation included
 * Each metric is averaged over continuations (uniq is pooled).
 *
 *   ditto-bench -m models/demo-random-f16.gguf -f README.md [--lambda 0.5,0.9]
 *               [--mode power|relative] [--scope consecutive|window] [--window W]
 *               [--prompt-len 50] [--gen 100] [--prompts 20] [-a ADAPTER|-] [-t N]
 * Only the public API is used. Exit codes: 0 ok, 1 runtime failure, 2 usage. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hmt/hmt.h>
#include <hmt/hmt_proc.h>

#define MAX_RUNS 8

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int die(const char *what, int rc) {
    fprintf(stderr, "ditto-bench: %s: %s (%s)\n", what, hmt_last_error_msg(), hmt_strerror(rc));
    return 1;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: ditto-bench -m MODEL -f TEXT [options]\n"
            "  -m, --model PATH      GGUF model\n"
            "  -f, --file PATH       text whose tokens are cut into prompts\n"
            "      --prompt-len N    prompt tokens (default 50)\n"
            "      --gen N           tokens generated greedily per prompt (default 100)\n"
            "      --prompts N       at most N prompts (default 20)\n"
            "      --lambda L[,L..]  DITTO λ values to compare with no penalty (default 0.5)\n"
            "      --mode M          power (default) or relative\n"
            "      --scope S         consecutive (default) or window\n"
            "      --window W        sentences looked back in window scope (default 8)\n"
            "      --min-match N     tokens of a repeat before the penalty fires (default 0)\n"
            "      --delims CHARS    sentence ends: tokens whose text ends in one of CHARS\n"
            "                        (default \".\", DITTO's); used by the penalty and rep-sen\n"
            "  -a, --adapter PATH    run through an HMT stream with this adapter (\"-\": the\n"
            "                        model file's own); default: a plain context\n"
            "  -t, --threads N       worker threads (default: all CPUs)\n");
}

/* ---- metrics ------------------------------------------------------------- */
static int cmp_ngram(const void *a, const void *b, void *n) {
    return memcmp(*(const hmt_token *const *)a, *(const hmt_token *const *)b,
                  (size_t)(*(int *)n) * sizeof(hmt_token));
}

static int g_n; /* n for the qsort comparator */
static int cmp_ngram_q(const void *a, const void *b) { return cmp_ngram(a, b, &g_n); }

/* Number of distinct n-grams of s[0..len). */
static int distinct_ngrams(const hmt_token *s, int len, int n, const hmt_token **tmp) {
    int m = len - n + 1;
    if (m <= 0) return 0;
    for (int i = 0; i < m; i++) tmp[i] = s + i;
    g_n = n;
    qsort(tmp, (size_t)m, sizeof *tmp, cmp_ngram_q);
    int u = 1;
    for (int i = 1; i < m; i++) u += cmp_ngram(&tmp[i - 1], &tmp[i], &n) != 0;
    return u;
}

typedef struct {
    double seq_rep[5], rep_sen, rep_w, rep_r;
    int n_cont[5], n_sen_cont, n_w_cont;
    int64_t n_tokens, diverted;
    double seconds;
} metrics;

static int same_span(const hmt_token *a, int la, const hmt_token *b, int lb) {
    return la == lb && !memcmp(a, b, (size_t)la * sizeof *a);
}

static void add_metrics(metrics *m, const hmt_token *s, int len, const unsigned char *is_dot,
                        int32_t n_vocab, const hmt_token **tmp) {
    for (int n = 1; n <= 4; n++) {
        int total = len - n + 1;
        if (total <= 0) continue;
        m->seq_rep[n] += 1.0 - (double)distinct_ngrams(s, len, n, tmp) / total;
        m->n_cont[n]++;
    }
    /* rep-sen: spans after each period, up to the next one (the last span
       stops one token before the end) */
    int starts[1024], lens[1024], ns = 0, prev = -1;
    for (int i = 0; i < len && ns < 1024; i++) {
        if (s[i] < 0 || s[i] >= n_vocab || !is_dot[s[i]]) continue;
        if (prev >= 0) {
            starts[ns] = prev + 1;
            lens[ns++] = i - prev - 1;
        }
        prev = i;
    }
    if (prev >= 0 && ns < 1024) {
        starts[ns] = prev + 1;
        lens[ns] = len - 1 - (prev + 1);
        if (lens[ns] < 0) lens[ns] = 0;
        ns++;
    }
    if (ns > 0) {
        int uniq = 0;
        for (int i = 0; i < ns; i++) {
            int seen = 0;
            for (int j = 0; j < i && !seen; j++)
                seen = same_span(s + starts[i], lens[i], s + starts[j], lens[j]);
            uniq += !seen;
        }
        m->rep_sen += (double)(ns - uniq) / ns;
    }
    m->n_sen_cont++; /* 0 for a continuation without a period */
    if (len > 0) {
        int hits = 0;
        for (int i = 0; i < len; i++) {
            int lo = i - 16 < 0 ? 0 : i - 16;
            for (int j = lo; j < i; j++)
                if (s[j] == s[i]) {
                    hits++;
                    break;
                }
        }
        m->rep_w += (double)hits / len;
        /* rep-r: a token counts if (s[i-1], s[i]) or (s[i], s[i+1]) occurs twice */
        int rr = 0;
        for (int i = 0; i < len; i++) {
            int rep = 0;
            for (int side = 0; side < 2 && !rep; side++) {
                int a = side == 0 ? i - 1 : i;
                if (a < 0 || a + 1 >= len) continue;
                for (int j = 0; j + 1 < len && !rep; j++)
                    if (j != a && s[j] == s[a] && s[j + 1] == s[a + 1]) rep = 1;
            }
            rr += rep;
        }
        m->rep_r += (double)rr / len;
        m->n_w_cont++;
    }
}

/* ---- a plain context or an HMT stream -------------------------------------- */
typedef struct {
    hmt_model *model;
    hmt_adapter *adapter;
    hmt_params *params;
    hmt_ctx *ctx;
    hmt_stream *stream;
    int32_t n_vocab;
    int64_t next_pred; /* stream: next prompt position the chain has not seen */
    int64_t diverted;  /* greedy steps where the chain changed the argmax */
} runner;

/* Every ready position of the last stream call predicts a prompt token: let
 * the chain see it (apply, then accept), as when scoring a text. */
static int stream_prompt_ready(runner *r, hmt_chain *chain, const hmt_token *prompt, int n,
                               float *scratch) {
    int64_t first, end;
    hmt_stream_ready_range(r->stream, &first, &end);
    for (int64_t i = first; i < end; i++) {
        if (i + 1 >= n) break;
        if (i != r->next_pred) continue; /* each position once, in order */
        r->next_pred++;
        const float *lg = hmt_stream_logits(r->stream, i);
        int rc = hmt_chain_apply(chain, lg, r->n_vocab, NULL, 0, scratch);
        if (!rc) rc = hmt_chain_accept(chain, prompt[i + 1]);
        if (rc) return rc;
    }
    return HMT_OK;
}

/* Run one prompt and generate n_gen tokens greedily through chain. */
static int generate(runner *r, hmt_chain *chain, hmt_sampler *sampler, const hmt_token *prompt,
                    int n_prompt, int n_gen, hmt_token *out, int *n_out, float *scratch) {
    int rc;
    hmt_chain_reset(chain);
    if ((rc = hmt_chain_accept(chain, prompt[0]))) return rc;
    const float *lg;
    if (r->ctx) {
        if ((rc = hmt_ctx_kv_clear(r->ctx)) ||
            (rc = hmt_ctx_eval_tokens(r->ctx, prompt, (size_t)n_prompt, 1)))
            return rc;
        for (int i = 0; i + 1 < n_prompt; i++)
            if ((rc = hmt_chain_apply(chain, hmt_ctx_logits(r->ctx, i), r->n_vocab, NULL, 0,
                                      scratch)) ||
                (rc = hmt_chain_accept(chain, prompt[i + 1])))
                return rc;
        lg = hmt_ctx_logits(r->ctx, n_prompt - 1);
    } else {
        hmt_stream_free(r->stream);
        r->stream = NULL;
        r->next_pred = 0;
        if ((rc = hmt_stream_create(&r->stream, r->model, r->adapter, r->params)) ||
            (rc = hmt_stream_feed(r->stream, prompt, (size_t)n_prompt)) ||
            (rc = stream_prompt_ready(r, chain, prompt, n_prompt, scratch)) ||
            (rc = hmt_stream_flush(r->stream)) ||
            (rc = stream_prompt_ready(r, chain, prompt, n_prompt, scratch)) ||
            (rc = hmt_stream_set_int(r->stream, HMT_P_LOOKAHEAD, 0)))
            return rc;
        lg = hmt_stream_logits(r->stream, hmt_stream_n_ready(r->stream) - 1);
    }
    hmt_token eos = hmt_model_token_eos(r->model);
    int n = 0;
    while (n < n_gen) {
        hmt_token t;
        int32_t best = 0;
        for (int32_t v = 1; v < r->n_vocab; v++)
            if (lg[v] > lg[best]) best = v;
        if ((rc = hmt_chain_sample(chain, sampler, lg, r->n_vocab, NULL, 0, &t))) return rc;
        r->diverted += t != best;
        if (t == eos) break;
        out[n++] = t;
        if (n == n_gen) break;
        if (r->ctx) {
            rc = hmt_ctx_eval_tokens(r->ctx, &t, 1, 0);
            lg = hmt_ctx_logits(r->ctx, -1);
        } else {
            rc = hmt_stream_feed(r->stream, &t, 1);
            lg = hmt_stream_logits(r->stream, hmt_stream_n_ready(r->stream) - 1);
        }
        if (rc == HMT_E_CTX_FULL) break;
        if (rc) return rc;
    }
    *n_out = n;
    return HMT_OK;
}

static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb) free(buf);
        buf = nb;
    }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *text_path = NULL, *adapter_path = NULL,
               *lambdas = "0.5", *mode = "power", *scope = "consecutive", *delims = ".";
    int prompt_len = 50, n_gen = 100, max_prompts = 20, window = 8, min_match = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) text_path = v;
        else if (!strcmp(a, "-a") || !strcmp(a, "--adapter")) adapter_path = v;
        else if (!strcmp(a, "--lambda")) lambdas = v;
        else if (!strcmp(a, "--mode")) mode = v;
        else if (!strcmp(a, "--delims")) delims = v;
        else if (!strcmp(a, "--scope")) scope = v;
        else if (!strcmp(a, "--prompt-len")) prompt_len = atoi(v);
        else if (!strcmp(a, "--gen")) n_gen = atoi(v);
        else if (!strcmp(a, "--prompts")) max_prompts = atoi(v);
        else if (!strcmp(a, "--window")) window = atoi(v);
        else if (!strcmp(a, "--min-match")) min_match = atoi(v);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) threads = atoi(v);
        else {
            fprintf(stderr, "ditto-bench: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    int mode_i = !strcmp(mode, "relative") ? 1 : !strcmp(mode, "power") ? 0 : -1;
    int scope_i = !strcmp(scope, "window") ? 1 : !strcmp(scope, "consecutive") ? 0 : -1;
    if (!model_path || !text_path || prompt_len < 1 || n_gen < 1 || max_prompts < 1 ||
        mode_i < 0 || scope_i < 0) {
        usage(stderr);
        return 2;
    }
    double lam[MAX_RUNS];
    int n_runs = 1; /* run 0: no penalty */
    lam[0] = 1.0;
    for (const char *p = lambdas; *p && n_runs < MAX_RUNS;) {
        char *end;
        lam[n_runs++] = strtod(p, &end);
        if (end == p) {
            fprintf(stderr, "ditto-bench: bad --lambda '%s'\n", lambdas);
            return 2;
        }
        p = *end == ',' ? end + 1 : end;
    }

    int status = 1, rc;
    runner r;
    memset(&r, 0, sizeof r);
    hmt_sampler *sampler = NULL;
    hmt_token *toks = NULL, *gen = NULL;
    const hmt_token **tmp = NULL;
    unsigned char *is_dot = NULL;
    float *scratch = NULL;
    char *text = NULL;
    hmt_token *delim_ids = NULL;
    metrics met[MAX_RUNS];
    memset(met, 0, sizeof met);
    unsigned char *seen[MAX_RUNS] = {0};

    if ((rc = hmt_params_create(&r.params)) ||
        (rc = hmt_params_set_float(r.params, HMT_P_TEMPERATURE, 0.0)) ||
        (rc = hmt_params_set_int(r.params, HMT_P_N_THREADS, threads)) ||
        (rc = hmt_params_set_int(r.params, HMT_P_DITTO_MODE, mode_i)) ||
        (rc = hmt_params_set_int(r.params, HMT_P_DITTO_SCOPE, scope_i)) ||
        (rc = hmt_params_set_int(r.params, HMT_P_DITTO_WINDOW, window)) ||
        (rc = hmt_params_set_int(r.params, HMT_P_DITTO_MIN_MATCH, min_match))) {
        status = die("params", rc);
        goto done;
    }
    if ((rc = hmt_model_load(&r.model, model_path, NULL))) {
        status = die("loading the model", rc);
        goto done;
    }
    r.n_vocab = hmt_model_n_vocab(r.model);
    size_t tlen = 0;
    if (!(text = read_text(text_path, &tlen))) {
        fprintf(stderr, "ditto-bench: cannot read %s\n", text_path);
        goto done;
    }
    size_t n_tok = 0;
    rc = hmt_tokenize(r.model, text, tlen, 0, NULL, 0, &n_tok);
    if (rc && rc != HMT_E_BUFFER) {
        status = die("tokenizing", rc);
        goto done;
    }
    toks = malloc((n_tok + 1) * sizeof *toks);
    gen = malloc((size_t)n_gen * sizeof *gen);
    tmp = malloc((size_t)n_gen * sizeof *tmp);
    is_dot = calloc((size_t)r.n_vocab, 1);
    scratch = malloc((size_t)r.n_vocab * sizeof *scratch);
    for (int k = 0; k < n_runs; k++) seen[k] = calloc((size_t)r.n_vocab, 1);
    if (!toks || !gen || !tmp || !is_dot || !scratch || !seen[n_runs - 1]) goto done;
    if ((rc = hmt_tokenize(r.model, text, tlen, 0, toks, n_tok + 1, &n_tok))) {
        status = die("tokenizing", rc);
        goto done;
    }
    for (hmt_token v = 0; v < r.n_vocab; v++) { /* rep-sen's periods: as DITTO's default */
        char piece[256];
        size_t len;
        if (!hmt_detokenize(r.model, &v, 1, 0, piece, sizeof piece, &len) && len > 0)
            is_dot[v] = strchr(delims, piece[len - 1]) != NULL;
    }
    int n_delims = 0;
    for (hmt_token v = 0; v < r.n_vocab; v++) n_delims += is_dot[v];
    delim_ids = malloc((size_t)(n_delims + 1) * sizeof *delim_ids);
    if (!delim_ids) goto done;
    n_delims = 0;
    for (hmt_token v = 0; v < r.n_vocab; v++)
        if (is_dot[v]) delim_ids[n_delims++] = v;
    int n_prompts = (int)(n_tok / (size_t)prompt_len);
    if (n_prompts > max_prompts) n_prompts = max_prompts;
    if (n_prompts < 1) {
        fprintf(stderr, "ditto-bench: %s has %zu tokens, fewer than one prompt\n", text_path, n_tok);
        goto done;
    }
    if (adapter_path) {
        if ((rc = hmt_adapter_load(&r.adapter, r.model,
                                   strcmp(adapter_path, "-") ? adapter_path : NULL)) ||
            (rc = hmt_params_set_int(r.params, HMT_P_ALL_LOGITS, 1))) {
            status = die("loading the adapter", rc);
            goto done;
        }
    } else {
        int64_t n_ctx = prompt_len + n_gen;
        if (n_ctx > hmt_model_n_ctx_train(r.model)) n_ctx = hmt_model_n_ctx_train(r.model);
        if ((rc = hmt_params_set_int(r.params, HMT_P_N_CTX, n_ctx)) ||
            (rc = hmt_ctx_create(&r.ctx, r.model, r.params))) {
            status = die("creating the context", rc);
            goto done;
        }
    }
    if ((rc = hmt_sampler_create(&sampler, r.params))) {
        status = die("creating the sampler", rc);
        goto done;
    }
    fprintf(stderr,
            "ditto-bench: %s, %d prompts x (%d prompt + %d generated tokens), greedy, %s, "
            "%d delimiter tokens (\"%s\")\n",
            model_path, n_prompts, prompt_len, n_gen, r.ctx ? "plain context" : "HMT stream",
            n_delims, delims);
    for (int k = 0; k < n_runs; k++) {
        hmt_chain *chain = NULL;
        if ((rc = hmt_chain_create(&chain))) {
            status = die("chain", rc);
            goto done;
        }
        if (k > 0) {
            hmt_proc *d = NULL;
            if ((rc = hmt_params_set_float(r.params, HMT_P_DITTO_LAMBDA, lam[k])) ||
                (rc = hmt_proc_ditto_create(&d, r.model, r.params)) ||
                (rc = hmt_proc_ditto_set_delimiters(d, delim_ids, (size_t)n_delims)) ||
                (rc = hmt_chain_add(chain, d))) {
                if (d && rc) hmt_proc_free(d); /* not added: still ours (NULL-safe, no-op if owned) */
                hmt_chain_free(chain);
                status = die("DITTO processor", rc);
                goto done;
            }
        }
        double t0 = now();
        r.diverted = 0;
        for (int pi = 0; pi < n_prompts; pi++) {
            int n = 0;
            rc = generate(&r, chain, sampler, toks + (size_t)pi * (size_t)prompt_len, prompt_len,
                          n_gen, gen, &n, scratch);
            if (rc) {
                hmt_chain_free(chain);
                status = die("generating", rc);
                goto done;
            }
            add_metrics(&met[k], gen, n, is_dot, r.n_vocab, tmp);
            for (int i = 0; i < n; i++) seen[k][gen[i]] = 1;
            met[k].n_tokens += n;
        }
        met[k].seconds = now() - t0;
        met[k].diverted = r.diverted;
        hmt_chain_free(chain);
    }
    const char *scope_s = scope_i ? "window" : "consec";
    printf("%-26s %9s %9s %9s %9s %8s %8s %8s %6s %8s %8s\n", "run", "seq-rep-1", "seq-rep-2",
           "seq-rep-3", "seq-rep-4", "rep-sen", "rep-w16", "rep-r", "uniq", "tok/s", "diverted");
    for (int k = 0; k < n_runs; k++) {
        char name[64];
        if (k == 0) snprintf(name, sizeof name, "no penalty");
        else snprintf(name, sizeof name, "ditto %s/%s lambda=%g", mode_i ? "rel" : "pow", scope_s, lam[k]);
        const metrics *m = &met[k];
        int uniq = 0;
        for (int32_t v = 0; v < r.n_vocab; v++) uniq += seen[k][v];
        printf("%-26s", name);
        for (int n = 1; n <= 4; n++) printf(" %9.4f", m->n_cont[n] ? m->seq_rep[n] / m->n_cont[n] : 0.0);
        printf(" %8.4f %8.4f %8.4f %6d %8.1f %8lld\n", m->n_sen_cont ? m->rep_sen / m->n_sen_cont : 0.0,
               m->n_w_cont ? m->rep_w / m->n_w_cont : 0.0, m->n_w_cont ? m->rep_r / m->n_w_cont : 0.0,
               uniq, m->seconds > 0 ? (double)m->n_tokens / m->seconds : 0.0,
               (long long)m->diverted);
    }
    status = 0;
done:
    free(delim_ids);
    for (int k = 0; k < MAX_RUNS; k++) free(seen[k]);
    free(text);
    free(toks);
    free(gen);
    free(tmp);
    free(is_dot);
    free(scratch);
    hmt_sampler_free(sampler);
    hmt_ctx_free(r.ctx);
    hmt_stream_free(r.stream);
    hmt_adapter_free(r.adapter);
    hmt_model_free(r.model);
    hmt_params_free(r.params);
    return status;
}
