#define _XOPEN_SOURCE 700 /* clock_gettime, mkstemp, realpath, fsync */
/* ditto-bench: greedy generation from prompts taken from text files, through
 * a sampler's processors (include/hmt/sampler.h) with and without the DITTO
 * sentence-repetition penalty and, with --knn, a kNN-LM datastore
 * (include/hmt/knn.h), reporting the repetition metrics of
 * algorithms.md §3.5 (bench/internal/rep_metrics.h):
 *   seq-rep-1..4, rep-sen, rep-w16, rep-r: averaged over continuations
 *   uniq: distinct tokens over all continuations
 *   diverted: greedy steps where the processors changed the chosen token
 *   tok/s: generated tokens per second, prompt evaluation included
 * Runs: no processor, DITTO at each --lambda; with --knn also kNN alone and
 * DITTO then kNN (hmt-generate's order) at each --lambda.
 *
 *   ditto-bench -m MODEL -f TEXT [-f TEXT ...] [--lambda 0.5,0.9]
 *               [--prompt-len 50] [--prompt-lines S] [--gen 100] [--prompts 20]
 *               [--knn FILE [--knn-lambda 0.25] [--knn-k 1024]]
 *               [--mode power|relative] [--scope consecutive|window] [--window W]
 *               [-a ADAPTER|-] [--dump FILE] [-t N]
 * The public API only, but for lib/io/atomic_file.c (--dump). Exit codes: 0 ok,
 * 1 runtime failure, 2 usage. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hmt/hmt.h>

#include "io/atomic_file.h"
#include "rep_metrics.h"

#define MAX_RUNS 16
#define MAX_FILES 256

/* --dump FILE is written as the library's own files are (lib/io/atomic_file.c,
 * docs/ROBUSTNESS.md "Files"): a temporary next to FILE, renamed over it
 * only when the run succeeded; on any failure an existing FILE is untouched.
 * A benchmark links libhmt.a, so it uses that module rather than a copy. */
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
            "usage: ditto-bench -m MODEL -f TEXT [-f TEXT ...] [options]\n"
            "  -m, --model PATH      GGUF model\n"
            "  -f, --file PATH       text the prompts come from (repeatable, at most %d)\n"
            "      --prompt-len N    prompt tokens (default 50); with --prompt-lines the\n"
            "                        most a prompt may have\n"
            "      --prompt-lines S  one prompt per file: BOS + its first S lines (one\n"
            "                        sentence per line in the Brown files); default 0:\n"
            "                        prompts of --prompt-len tokens cut one after another\n"
            "      --gen N           tokens generated greedily per prompt (default 100)\n"
            "      --prompts N       at most N prompts (default 20)\n"
            "      --lambda L[,L..]  DITTO λ values to compare with no penalty (default 0.5)\n"
            "      --mode M          power (default) or relative\n"
            "      --scope S         consecutive (default) or window\n"
            "      --window W        sentences looked back in window scope (default 8)\n"
            "      --min-match N     tokens of a repeat before the penalty fires (default 0)\n"
            "      --delims CHARS    sentence ends: tokens whose text ends in one of CHARS\n"
            "                        (default \".\", DITTO's); used by the penalty and rep-sen\n"
            "      --knn FILE        also run a kNN-LM datastore (hmt-datastore), alone and\n"
            "                        after DITTO\n"
            "      --knn-lambda L    kNN interpolation weight (default 0.25)\n"
            "      --knn-k K         neighbours retrieved (default 1024)\n"
            "  -a, --adapter PATH    run through an HMT stream with this adapter (\"-\": the\n"
            "                        model file's own); default: a plain context\n"
            "      --dump FILE       write every continuation's text (run, prompt, text);\n"
            "                        FILE is replaced atomically, only after a successful run\n"
            "  -t, --threads N       worker threads (default: all CPUs)\n",
            MAX_FILES);
}

/* ---- a plain context or an HMT stream -------------------------------------- */
typedef struct {
    hmt_model *model;
    hmt_adapter *adapter;
    hmt_params *params;  /* the context or stream's keys */
    hmt_params *dparams; /* DITTO's */
    hmt_params *kparams; /* the kNN processor's */
    hmt_params *sparams; /* the sampler's */
    hmt_ctx *ctx;
    hmt_stream *stream;
    int32_t n_vocab, n_embd;
    int keys;          /* pass each position's kNN key to the processors */
    uint8_t *flags;    /* ctx: per-row output flags of the prompt */
    int64_t next_pred; /* stream: next prompt position the processors have not seen */
    int64_t diverted;  /* greedy steps where the processors changed the argmax */
} runner;

/* Apply the processors at one position (its logits and, for kNN, its key). */
static int smp_apply(runner *r, hmt_sampler *smp, const float *lg, const float *key,
                     float *scratch) {
    if (!r->keys) key = NULL;
    return hmt_sampler_apply(smp, lg, r->n_vocab, key, key ? r->n_embd : 0, scratch);
}

/* Every ready position of the last stream call predicts a prompt token: let
 * the processors see it (apply, then accept), as when scoring a text. */
static int stream_prompt_ready(runner *r, hmt_sampler *smp, const hmt_token *prompt, int n,
                               float *scratch) {
    int64_t first, end;
    hmt_stream_ready_range(r->stream, &first, &end);
    for (int64_t i = first; i < end; i++) {
        if (i + 1 >= n) break;
        if (i != r->next_pred) continue; /* each position once, in order */
        r->next_pred++;
        int rc = smp_apply(r, smp, hmt_stream_logits(r->stream, i),
                             hmt_stream_ffn_input(r->stream, i), scratch);
        if (!rc) rc = hmt_sampler_accept(smp, prompt[i + 1]);
        if (rc) return rc;
    }
    return HMT_OK;
}

/* Run one prompt and generate n_gen tokens greedily through smp. */
static int generate(runner *r, hmt_sampler *smp, const hmt_token *prompt,
                    int n_prompt, int n_gen, hmt_token *out, int *n_out, float *scratch) {
    int rc;
    hmt_sampler_reset(smp);
    if ((rc = hmt_sampler_accept(smp, prompt[0]))) return rc;
    const uint8_t want = (uint8_t)(HMT_OUT_LOGITS | (r->keys ? HMT_OUT_FFN_INPUT : 0));
    const float *lg; /* the sample calls read the kNN key themselves */
    if (r->ctx) {
        memset(r->flags, want, (size_t)n_prompt);
        if ((rc = hmt_ctx_kv_clear(r->ctx)) ||
            (rc = hmt_ctx_eval(r->ctx, prompt, NULL, (size_t)n_prompt, NULL, r->flags)))
            return rc;
        for (int i = 0; i + 1 < n_prompt; i++)
            if ((rc = smp_apply(r, smp, hmt_ctx_logits(r->ctx, i), hmt_ctx_ffn_input(r->ctx, i),
                                scratch)) ||
                (rc = hmt_sampler_accept(smp, prompt[i + 1])))
                return rc;
        lg = hmt_ctx_logits(r->ctx, n_prompt - 1);
    } else {
        hmt_stream_free(r->stream);
        r->stream = NULL;
        r->next_pred = 0;
        if ((rc = hmt_stream_create(&r->stream, r->model, r->adapter, r->params)) ||
            (rc = hmt_stream_feed(r->stream, prompt, (size_t)n_prompt)) ||
            (rc = stream_prompt_ready(r, smp, prompt, n_prompt, scratch)) ||
            (rc = hmt_stream_flush(r->stream)) ||
            (rc = stream_prompt_ready(r, smp, prompt, n_prompt, scratch)) ||
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
        if ((rc = r->ctx ? hmt_sampler_sample_ctx(smp, r->ctx, -1, &t)
                         : hmt_sampler_sample_stream(smp, r->stream,
                                                     hmt_stream_n_ready(r->stream) - 1, &t)))
            return rc;
        r->diverted += t != best;
        if (t == eos) break;
        out[n++] = t;
        if (n == n_gen) break;
        if (r->ctx) {
            rc = hmt_ctx_eval(r->ctx, &t, NULL, 1, NULL, &want);
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

/* ---- prompts ---------------------------------------------------------------- */
typedef struct {
    hmt_token *tok; /* all prompts, one after another */
    int *start, *len;
    int n, cap_tok, max_len;
} prompts;

static int prompts_add(prompts *p, const hmt_token *t, int n) {
    hmt_token *nt = realloc(p->tok, (size_t)(p->cap_tok + n) * sizeof *nt);
    int *ns = realloc(p->start, (size_t)(p->n + 1) * sizeof *ns);
    if (ns) p->start = ns;
    int *nl = ns ? realloc(p->len, (size_t)(p->n + 1) * sizeof *nl) : NULL;
    if (nt) p->tok = nt;
    if (!nt || !ns || !nl) return 0;
    p->len = nl;
    memcpy(p->tok + p->cap_tok, t, (size_t)n * sizeof *t);
    p->start[p->n] = p->cap_tok;
    p->len[p->n++] = n;
    p->cap_tok += n;
    if (n > p->max_len) p->max_len = n;
    return 1;
}

/* Prompts of one file: consecutive cuts of prompt_len tokens (no BOS), or
 * with lines > 0 one prompt of BOS + the first lines (newline included), at
 * most prompt_len tokens. Returns an exit code (0 ok). */
static int prompts_from_file(prompts *p, const hmt_model *m, const char *path, int prompt_len,
                             int lines, int max_prompts) {
    size_t tlen = 0, n_tok = 0;
    char *text = read_text(path, &tlen);
    if (!text) {
        fprintf(stderr, "ditto-bench: cannot read %s\n", path);
        return 1;
    }
    if (lines > 0) { /* keep the first lines only */
        size_t end = 0;
        for (int seen = 0; end < tlen && seen < lines; end++) seen += text[end] == '\n';
        tlen = end;
    }
    const uint32_t flags = lines > 0 ? HMT_TOKENIZE_ADD_BOS : 0;
    hmt_token *toks = malloc((tlen + 2) * sizeof *toks);
    int rc = toks ? hmt_tokenize(m, text, tlen, flags, toks, tlen + 2, &n_tok) : HMT_E_NOMEM;
    free(text);
    if (rc) {
        free(toks);
        return die("tokenizing", rc);
    }
    int ok = 1;
    if (lines > 0) {
        int n = n_tok < (size_t)prompt_len ? (int)n_tok : prompt_len;
        if (n >= 2 && p->n < max_prompts) ok = prompts_add(p, toks, n);
    } else {
        for (size_t s = 0; s + (size_t)prompt_len <= n_tok && p->n < max_prompts && ok;
             s += (size_t)prompt_len)
            ok = prompts_add(p, toks + s, prompt_len);
    }
    free(toks);
    if (!ok) fprintf(stderr, "ditto-bench: out of memory for the prompts\n");
    return !ok;
}

/* ---- runs ------------------------------------------------------------------- */
typedef struct {
    double ditto; /* λ, or 0 for none */
    int knn;
} run_cfg;

/* DITTO first, then kNN, as hmt-generate builds its sampler. */
static int make_sampler(const run_cfg *c, runner *r, hmt_knn *knn, const hmt_token *delims,
                        int n_delims, hmt_sampler **out) {
    int rc = hmt_sampler_create(out, r->sparams);
    if (!rc && c->ditto > 0) {
        hmt_proc *d = NULL;
        if (!(rc = hmt_params_set_float(r->dparams, HMT_P_DITTO_LAMBDA, c->ditto)) &&
            !(rc = hmt_proc_ditto_create(&d, r->model, r->dparams)) &&
            !(rc = hmt_proc_ditto_set_delimiters(d, delims, (size_t)n_delims)))
            rc = hmt_sampler_add(*out, d);
        hmt_proc_free(d); /* the sampler holds it */
    }
    if (!rc && c->knn) {
        hmt_proc *k = NULL;
        if (!(rc = hmt_proc_knn_create(&k, knn, r->kparams))) rc = hmt_sampler_add(*out, k);
        hmt_proc_free(k);
    }
    return rc;
}

static void run_name(const run_cfg *c, int mode_i, int scope_i, double knn_lambda, char *buf,
                     size_t cap) {
    char d[48] = "", k[40] = "";
    if (c->ditto > 0)
        snprintf(d, sizeof d, "ditto %s/%s lambda=%g", mode_i ? "rel" : "pow",
                 scope_i ? "window" : "consec", c->ditto);
    if (c->knn) snprintf(k, sizeof k, "knn lambda=%g", knn_lambda);
    snprintf(buf, cap, "%s%s%s", d, *d && *k ? " + " : "", *d || *k ? k : "no processor");
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *adapter_path = NULL, *knn_path = NULL, *dump_path = NULL,
               *lambdas = "0.5", *mode = "power", *scope = "consecutive", *delims = ".";
    const char *files[MAX_FILES];
    int n_files = 0, prompt_len = 50, n_gen = 100, max_prompts = 20, window = 8, min_match = 0,
        threads = 0, lines = 0, knn_k = 1024;
    double knn_lambda = 0.25;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ditto-bench: unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (n_files == MAX_FILES) {
                fprintf(stderr, "ditto-bench: more than %d files\n", MAX_FILES);
                return 2;
            }
            files[n_files++] = v;
        } else if (!strcmp(a, "-a") || !strcmp(a, "--adapter")) adapter_path = v;
        else if (!strcmp(a, "--lambda")) lambdas = v;
        else if (!strcmp(a, "--mode")) mode = v;
        else if (!strcmp(a, "--delims")) delims = v;
        else if (!strcmp(a, "--scope")) scope = v;
        else if (!strcmp(a, "--knn")) knn_path = v;
        else if (!strcmp(a, "--knn-lambda")) knn_lambda = atof(v);
        else if (!strcmp(a, "--knn-k")) knn_k = atoi(v);
        else if (!strcmp(a, "--dump")) dump_path = v;
        else if (!strcmp(a, "--prompt-len")) prompt_len = atoi(v);
        else if (!strcmp(a, "--prompt-lines")) lines = atoi(v);
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
    const char *bad = !model_path ? "-m MODEL is required"
                      : !n_files ? "at least one -f TEXT is required"
                      : prompt_len < 2 ? "--prompt-len must be a whole number >= 2"
                      : n_gen < 1 ? "--gen must be a whole number >= 1"
                      : max_prompts < 1 ? "--prompts must be a whole number >= 1"
                      : lines < 0 ? "--prompt-lines must be a whole number >= 0"
                      : mode_i < 0 ? "--mode takes power or relative"
                      : scope_i < 0 ? "--scope takes consecutive or window"
                                    : NULL;
    if (bad) {
        fprintf(stderr, "ditto-bench: %s\n", bad);
        usage(stderr);
        return 2;
    }
    run_cfg runs[MAX_RUNS];
    double lam[MAX_RUNS];
    int n_lam = 0, n_runs = 0;
    for (const char *p = lambdas; *p && n_lam < MAX_RUNS / 2 - 1;) {
        char *end;
        lam[n_lam++] = strtod(p, &end);
        if (end == p) {
            fprintf(stderr, "ditto-bench: bad --lambda '%s'\n", lambdas);
            return 2;
        }
        p = *end == ',' ? end + 1 : end;
    }
    for (int with_knn = 0; with_knn <= (knn_path != NULL); with_knn++) {
        runs[n_runs++] = (run_cfg){0, with_knn};
        for (int i = 0; i < n_lam; i++) runs[n_runs++] = (run_cfg){lam[i], with_knn};
    }

    int status = 1, rc;
    runner r;
    memset(&r, 0, sizeof r);
    prompts pr;
    memset(&pr, 0, sizeof pr);
    hmt_knn *knn = NULL;
    hmt_token *gen = NULL;
    const hmt_token **tmp = NULL;
    unsigned char *is_dot = NULL;
    float *scratch = NULL;
    hmt_token *delim_ids = NULL;
    hmti_afile dump_out = {0};
    FILE *dump = NULL;
    repm met[MAX_RUNS];
    int64_t n_tokens[MAX_RUNS] = {0}, diverted[MAX_RUNS] = {0};
    double seconds[MAX_RUNS] = {0};
    memset(met, 0, sizeof met);
    unsigned char *seen[MAX_RUNS] = {0};

    r.keys = knn_path != NULL;
    hmt_params *load_params = NULL; /* the datastore's threads */
    if ((rc = hmt_params_create(&r.sparams)) ||
        (rc = hmt_params_set_float(r.sparams, HMT_P_TEMPERATURE, 0.0)) ||
        (rc = hmt_params_create(&r.params)) ||
        (rc = hmt_params_set_int(r.params, HMT_P_N_THREADS, threads ? threads : HMT_AUTO)) ||
        (rc = hmt_params_copy(&load_params, r.params)) ||
        (rc = hmt_params_create(&r.dparams)) ||
        (rc = hmt_params_set_int(r.dparams, HMT_P_DITTO_MODE, mode_i)) ||
        (rc = hmt_params_set_int(r.dparams, HMT_P_DITTO_SCOPE, scope_i)) ||
        (rc = hmt_params_set_int(r.dparams, HMT_P_DITTO_WINDOW, window)) ||
        (rc = hmt_params_set_int(r.dparams, HMT_P_DITTO_MIN_MATCH, min_match)) ||
        (rc = hmt_params_create(&r.kparams)) ||
        (rc = hmt_params_set_float(r.kparams, HMT_P_KNN_LAMBDA, knn_lambda)) ||
        (rc = hmt_params_set_int(r.kparams, HMT_P_KNN_K, knn_k))) {
        fprintf(stderr, "ditto-bench: %s\n", hmt_last_error_msg());
        hmt_params_free(r.params), hmt_params_free(r.sparams), hmt_params_free(load_params);
        hmt_params_free(r.dparams), hmt_params_free(r.kparams);
        return 2;
    }
    if ((rc = hmt_model_load(&r.model, model_path, NULL))) {
        status = die("loading the model", rc);
        goto done;
    }
    r.n_vocab = hmt_model_n_vocab(r.model);
    r.n_embd = hmt_model_n_embd(r.model);
    if (knn_path && (rc = hmt_knn_load(&knn, r.model, knn_path, load_params))) {
        status = die("loading the kNN datastore", rc);
        goto done;
    }
    is_dot = calloc((size_t)r.n_vocab, 1);
    scratch = malloc((size_t)r.n_vocab * sizeof *scratch);
    for (int k = 0; k < n_runs; k++) seen[k] = calloc((size_t)r.n_vocab, 1);
    if (!is_dot || !scratch || !seen[n_runs - 1]) goto done;
    for (hmt_token v = 0; v < r.n_vocab; v++) { /* the sentence ends: as DITTO's default */
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
    for (int f = 0; f < n_files && pr.n < max_prompts; f++)
        if ((status = prompts_from_file(&pr, r.model, files[f], prompt_len, lines, max_prompts)))
            goto done;
    status = 1;
    if (pr.n < 1) {
        fprintf(stderr, "ditto-bench: the files give no prompt (too short)\n");
        goto done;
    }
    gen = malloc((size_t)n_gen * sizeof *gen);
    tmp = malloc((size_t)n_gen * sizeof *tmp);
    r.flags = malloc((size_t)pr.max_len);
    if (!gen || !tmp || !r.flags) goto done;
    if (adapter_path) {
        if ((rc = hmt_adapter_load(&r.adapter, r.model,
                                   strcmp(adapter_path, "-") ? adapter_path : NULL)) ||
            (rc = hmt_params_set_int(r.params, HMT_P_ALL_LOGITS, 1)) ||
            (rc = hmt_params_set_int(r.params, HMT_P_KEEP_FFN_INPUT, r.keys))) {
            status = die("loading the adapter", rc);
            goto done;
        }
    } else {
        int64_t n_ctx = pr.max_len + n_gen;
        if (n_ctx > hmt_model_n_ctx_train(r.model)) n_ctx = hmt_model_n_ctx_train(r.model);
        if ((rc = hmt_params_set_int(r.params, HMT_P_N_CTX, n_ctx)) ||
            (rc = hmt_ctx_create(&r.ctx, r.model, r.params))) {
            status = die("creating the context", rc);
            goto done;
        }
    }
    if (dump_path) {
        if (hmti_afile_begin(&dump_out, dump_path, "ditto-bench --dump")) {
            fprintf(stderr, "%s\n", hmt_last_error_msg());
            goto done;
        }
        dump = dump_out.f;
    }
    int total_prompt = 0;
    for (int i = 0; i < pr.n; i++) total_prompt += pr.len[i];
    fprintf(stderr,
            "ditto-bench: %s, %d prompts (%s, %.1f tokens on average) x %d generated tokens, "
            "greedy, %s, %d delimiter tokens (\"%s\")%s%s\n",
            model_path, pr.n, lines > 0 ? "first lines, BOS" : "fixed length",
            (double)total_prompt / pr.n, n_gen, r.ctx ? "plain context" : "HMT stream", n_delims,
            delims, knn ? ", kNN datastore " : "", knn ? knn_path : "");
    for (int k = 0; k < n_runs; k++) {
        hmt_sampler *smp = NULL;
        char name[96];
        run_name(&runs[k], mode_i, scope_i, knn_lambda, name, sizeof name);
        if ((rc = make_sampler(&runs[k], &r, knn, delim_ids, n_delims, &smp))) {
            hmt_sampler_free(smp);
            status = die("building the sampler", rc);
            goto done;
        }
        double t0 = now();
        r.diverted = 0;
        for (int pi = 0; pi < pr.n; pi++) {
            int n = 0;
            rc = generate(&r, smp, pr.tok + pr.start[pi], pr.len[pi], n_gen, gen, &n,
                          scratch);
            if (rc) {
                hmt_sampler_free(smp);
                status = die("generating", rc);
                goto done;
            }
            repm_add(&met[k], gen, n, is_dot, r.n_vocab, tmp);
            for (int i = 0; i < n; i++) seen[k][gen[i]] = 1;
            n_tokens[k] += n;
            if (dump) {
                char piece[256];
                size_t len;
                fprintf(dump, "== %s | prompt %d:", name, pi);
                for (int i = 0; i < pr.len[pi]; i++)
                    if (!hmt_detokenize(r.model, pr.tok + pr.start[pi] + i, 1, 0, piece,
                                        sizeof piece, &len))
                        fwrite(piece, 1, len, dump);
                fprintf(dump, "\n-> ");
                for (int i = 0; i < n; i++)
                    if (!hmt_detokenize(r.model, &gen[i], 1, 0, piece, sizeof piece, &len))
                        fwrite(piece, 1, len, dump);
                fprintf(dump, "\n");
            }
        }
        seconds[k] = now() - t0;
        diverted[k] = r.diverted;
        hmt_sampler_free(smp);
        fprintf(stderr, "ditto-bench: %s: %.1f s\n", name, seconds[k]);
    }
    printf("%-44s %9s %9s %9s %9s %8s %8s %8s %6s %8s %8s\n", "run", "seq-rep-1", "seq-rep-2",
           "seq-rep-3", "seq-rep-4", "rep-sen", "rep-w16", "rep-r", "uniq", "tok/s", "diverted");
    for (int k = 0; k < n_runs; k++) {
        char name[96];
        run_name(&runs[k], mode_i, scope_i, knn_lambda, name, sizeof name);
        double v[7];
        repm_mean(&met[k], v);
        int uniq = 0;
        for (int32_t t = 0; t < r.n_vocab; t++) uniq += seen[k][t];
        printf("%-44s %9.4f %9.4f %9.4f %9.4f %8.4f %8.4f %8.4f %6d %8.1f %8lld\n", name, v[0], v[1],
               v[2], v[3], v[4], v[5], v[6], uniq,
               seconds[k] > 0 ? (double)n_tokens[k] / seconds[k] : 0.0, (long long)diverted[k]);
    }
    status = 0;
done:
    /* the dump replaces an old one only after a successful run */
    if (dump_out.f && status != 0) hmti_afile_abort(&dump_out);
    if (dump_out.f && hmti_afile_commit(&dump_out)) {
        fprintf(stderr, "%s\n", hmt_last_error_msg());
        status = 1;
    }
    free(delim_ids);
    for (int k = 0; k < MAX_RUNS; k++) free(seen[k]);
    free(pr.tok);
    free(pr.start);
    free(pr.len);
    free(gen);
    free(tmp);
    free(is_dot);
    free(scratch);
    free(r.flags);
    hmt_knn_free(knn); /* any order: kNN processors hold the datastore */
    hmt_ctx_free(r.ctx);
    hmt_stream_free(r.stream);
    hmt_adapter_free(r.adapter);
    hmt_model_free(r.model);
    hmt_params_free(r.params), hmt_params_free(r.sparams), hmt_params_free(load_params);
    hmt_params_free(r.dparams), hmt_params_free(r.kparams);
    return status;
}
