#define _XOPEN_SOURCE 700 /* isatty, mkstemp, realpath, fsync */
/* hmt-perplexity: perplexity of a text file under the HMT stream modes
 * (full, rmt, segments, window, sinks), using only the public API.
 *
 * The main figure is the token-weighted corpus perplexity
 *   exp( (1 / (n-1)) * sum_{i=1}^{n-1} -log p(t_i | t_<i) )
 * over every predicted token of the tokenized text (BOS added), computed from
 * the stream's logits with a log-softmax in double precision.
 * --reference-protocol adds HMT-pytorch's own evaluation protocol (windows of
 * T + L tokens at stride L, the last L tokens of each scored, arithmetic mean
 * of per-batch perplexities); docs/PERPLEXITY.md says exactly what is done.
 * --ditto and --knn score the final distribution of a sampler's processors
 * (include/hmt/sampler.h) instead, fed the text itself as history.
 *
 * Exit codes: 0 success, 1 runtime failure (unreadable file, model without a
 * tokenizer, library error), 2 usage error (bad option, a mode the model and
 * adapter do not allow). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hmt/experimental.h> /* HMT_P_SEGMENT_SINKS (--segment-sinks) */
#include <hmt/hmt.h>

#include "progress.h"

#define PROG "hmt-perplexity"

/* ---- output files, written atomically -----------------------------------------
 * As the library's own writers (docs/ROBUSTNESS.md, "Files"): a temporary
 * PATH.tmp-XXXXXX in the target's folder (mode 0666 less the umask, as a
 * plain create; a symbolic link at PATH is followed), written, flushed,
 * fsynced, then renamed over PATH only when the run succeeded; on any
 * failure the temporary is removed and an existing PATH is untouched.
 * Examples link only the public API, so this is a copy of a few lines, not
 * lib/io/atomic_file.c. */
typedef struct {
    FILE *f;
    char *path, *tmp;
} out_file;

static void out_free(out_file *o) {
    free(o->path);
    free(o->tmp);
    o->path = o->tmp = NULL;
    o->f = NULL;
}

/* 0, or -1 with errno set (o is left empty). */
static int out_open(out_file *o, const char *path) {
    struct stat st;
    o->f = NULL;
    o->path = lstat(path, &st) == 0 && S_ISLNK(st.st_mode) ? realpath(path, NULL) : NULL;
    if (!o->path) o->path = strdup(path);
    o->tmp = o->path ? malloc(strlen(o->path) + 12) : NULL;
    if (!o->tmp) {
        out_free(o);
        errno = ENOMEM;
        return -1;
    }
    strcat(strcpy(o->tmp, o->path), ".tmp-XXXXXX");
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        int e = errno;
        out_free(o);
        errno = e;
        return -1;
    }
    const mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) || !(o->f = fdopen(fd, "w"))) {
        int e = errno;
        close(fd);
        unlink(o->tmp);
        out_free(o);
        errno = e;
        return -1;
    }
    return 0;
}

/* Closes o; commit: rename it over the target (else only remove the
 * temporary). 0, or -1 with errno set and the temporary removed. */
static int out_close(out_file *o, int commit) {
    if (!o->f) return 0;
    int err = 0;
    errno = 0;
    if (commit) {
        if (fflush(o->f)) err = errno ? errno : EIO;
        else if (ferror(o->f)) err = EIO; /* an earlier write failed */
        else if (fsync(fileno(o->f))) err = errno;
    }
    if (fclose(o->f) && !err) err = errno ? errno : EIO;
    if (commit && !err && rename(o->tmp, o->path)) err = errno;
    if (!commit || err) {
        unlink(o->tmp);
    } else { /* make the rename durable; a folder that cannot sync is no error */
        char *slash = strrchr(o->path, '/');
        if (slash) *slash = '\0';
        int dfd = open(slash ? (*o->path ? o->path : "/") : ".", O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    out_free(o);
    errno = err;
    return err ? -1 : 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: " PROG " -m MODEL [-a ADAPTER] -f TEXTFILE [options]\n"
            "  -m, --model PATH        GGUF model file with a tokenizer (llama, qwen2, qwen3,\n"
            "                          gemma2, gemma3)\n"
            "  -a, --adapter PATH      HMT adapter GGUF (needed by modes full and rmt)\n"
            "  -f, --file PATH         UTF-8 text to score ('-' = standard input); repeat for more\n"
            "                          documents: each is a fresh stream, the PPL token-weighted\n"
            "      --mode M            full | rmt | segments | window | sinks | all (default: full\n"
            "                          with an adapter, else segments with -L, else window).\n"
            "                          'all' runs every mode the model and adapter allow\n"
            "  -L, --segment-length N  segment length L (default: the adapter's; required for\n"
            "                          segments without an adapter; overrides the adapter's L\n"
            "                          for full and rmt too)\n"
            "  -c, --ctx-size N        window length W of mode window, and cache size (sinks +\n"
            "                          recent) of mode sinks (default: the model's context)\n"
            "      --sinks N           sink tokens of mode sinks (default 4)\n"
            "      --segment-sinks N   experimental: segment passes of full, rmt and segments\n"
            "                          after the first also keep the text's first N tokens\n"
            "      --max-tokens N      score only the first N tokens of the text (BOS included)\n"
            "      --csv FILE          write per-segment rows: mode,segment,first_token,tokens,mean_nll\n"
            "                          (replaces FILE atomically, only after a successful run)\n"
            "      --chunk N           tokens per hmt_stream_feed call (default: L; window, sinks:\n"
            "                          512)\n"
            "  -t, --threads N         worker threads (default: all CPUs)\n"
            "      --compute T         f32 (default) or bf16: the weight matmuls of segment\n"
            "                          passes in BF16 with F32 accumulation (docs/QUANTS.md)\n"
            "      --kv-type T         f32 (default), f16 or bf16: the KV cache's element type\n"
            "                          (docs/API.md \"KV cache types\")\n"
            "  -q, --quiet             no progress on stderr\n"
            "Next-token processors (scored on the processors' final distribution, the text\n"
            "itself as history; docs/PERPLEXITY.md):\n"
            "      --ditto L           DITTO sentence-repetition penalty, lambda L in (0,1]\n"
            "      --knn FILE          kNN-LM datastore (hmt-datastore) to interpolate with\n"
            "      --knn-lambda L      kNN interpolation weight in [0,1] (default 0.25)\n"
            "      --knn-k K           neighbours retrieved (default 1024)\n"
            "  -h, --help              show this help\n"
            "HMT-pytorch reference protocol (docs/PERPLEXITY.md):\n"
            "      --reference-protocol also report the reference's windowed PPL\n"
            "      --ref-length T      test_length: context before the scored block (default 2000)\n"
            "      --ref-batch B       windows per batch, PPL averaged over batches (default 2)\n"
            "      --ref-batches N     at most N batches, 0 = all full windows (default 100)\n"
            "Exit status: 0 success, 1 runtime failure, 2 usage error.\n");
}

/* -log softmax(logits)[target], numerically stable, in double. */
static double token_nll(const float *lg, int32_t n_vocab, hmt_token target) {
    float mx = lg[0];
    for (int32_t i = 1; i < n_vocab; i++)
        if (lg[i] > mx) mx = lg[i];
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++) sum += exp((double)lg[i] - (double)mx);
    return log(sum) + (double)mx - (double)lg[target];
}

/* ---- small helpers ----------------------------------------------------------- */

static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static int parse_double(const char *s, double *out) {
    char *end;
    *out = strtod(s, &end);
    return *s && !*end;
}

static int lib_fail(const char *what, int rc) {
    fprintf(stderr, PROG ": %s: %s (%s)\n", what, hmt_last_error_msg(), hmt_strerror(rc));
    return 1;
}

/* Whole file (or stdin) into memory. NULL with a message on failure. */
static char *read_file(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, PROG ": cannot open '%s': ", path);
        perror(NULL);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf) {
        fprintf(stderr, PROG ": out of memory reading '%s'\n", path);
        return NULL;
    }
    if (bad) {
        fprintf(stderr, PROG ": read error on '%s'\n", path);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* ---- options ----------------------------------------------------------------- */

enum { MODE_ALL = -1 };
enum { N_MODES = 5 };
static const char *const MODE_NAME[N_MODES] = {"full", "rmt", "segments", "window", "sinks"};

typedef struct {
    const char *model, *adapter, *csv;
    const char **files; /* -f, one or more: each file is a document, a fresh stream */
    int n_files;
    int mode; /* hmt_mode, MODE_ALL, or -2 = default */
    int64_t L, n_ctx, max_tokens, chunk, threads;
    int64_t sinks; /* --sinks, or -1: the library's default */
    int64_t segment_sinks; /* --segment-sinks (experimental), 0 = off */
    int quiet, ref;
    int compute; /* HMT_COMPUTE_F32 or HMT_COMPUTE_BF16 (--compute) */
    int kv_type; /* hmt_kv_type (--kv-type) */
    int64_t ref_T, ref_batch, ref_batches;
    /* processors (none unless their option is given) */
    double ditto, knn_lambda;
    int64_t knn_k;
    int ditto_set, knn_lambda_set, knn_k_set;
    const char *knn;
} options;

/* ---- progress: tools/progress.h (a line on a terminal only) ------------------- */

/* ---- the processors (--ditto, --knn) ----------------------------------------- */

/* With processors on, a position's NLL is read from the sampler's final
 * distribution instead of the raw logits. The sampler is told every token of
 * the text in order (teacher forcing): DITTO tracks sentences on it. Before
 * a run of positions, their kNN-LM keys are handed to hmt_sampler_prepare so
 * that the library's kNN processor searches up to PREP_BATCH of them at once
 * (a single query streams the whole datastore; a batch was 4x faster on the
 * Brown datastore). */
enum { PREP_BATCH = 256 };

typedef struct {
    hmt_sampler *smp; /* NULL: score the logits themselves */
    float *lp;        /* n_vocab: the sampler's output      */
    int32_t dim;      /* key width when a kNN processor is on, else 0 */
    float *keys;      /* PREP_BATCH × dim: keys gathered for prepare */
    int64_t prep_end; /* positions below it are prepared */
} hooks;

/* Hand the keys of [i, min(i + PREP_BATCH, end)) to the sampler. */
static int hooks_prepare(hooks *h, const hmt_stream *st, int64_t i, int64_t end) {
    const int64_t n = end - i < PREP_BATCH ? end - i : PREP_BATCH;
    for (int64_t r = 0; r < n; r++) {
        const float *key = hmt_stream_ffn_input(st, i + r);
        if (!key) return HMT_E_MISUSE; /* cannot happen: the stream keeps the keys */
        memcpy(h->keys + r * h->dim, key, (size_t)h->dim * sizeof *key);
    }
    h->prep_end = i + n;
    return hmt_sampler_prepare(h->smp, h->keys, (size_t)n, h->dim);
}

/* NLL of target = token i + 1 from stream position i (ready positions up to
 * end), then the sampler accepts target. */
static double position_nll(hooks *h, const hmt_stream *st, int64_t i, int64_t end,
                           const float *lg, int32_t n_vocab, hmt_token target, int *rc) {
    if (!h->smp) return token_nll(lg, n_vocab, target);
    const float *key = h->dim ? hmt_stream_ffn_input(st, i) : NULL;
    if (h->dim && i >= h->prep_end && (*rc = hooks_prepare(h, st, i, end))) return NAN;
    if ((*rc = hmt_sampler_apply(h->smp, lg, n_vocab, key, key ? h->dim : 0, h->lp))) return NAN;
    const double nll = token_nll(h->lp, n_vocab, target); /* renormalised in double */
    *rc = hmt_sampler_accept(h->smp, target);
    return nll;
}

/* ---- scoring a stream --------------------------------------------------------- */

typedef struct {
    hooks *hk;
    const hmt_token *tok;
    int64_t n;       /* tokens in the text                      */
    int32_t n_vocab;
    double sum;      /* sum of NLL                              */
    int64_t count;   /* tokens scored                           */
    int64_t next;    /* first predictor index not yet scored    */
    int64_t bad;     /* non-finite NLLs                         */
    /* per-block rows for --csv: block b = predictor indices [bB, bB + B) */
    FILE *csv;
    const char *mode;
    int64_t B, block;
    double bsum;
    int64_t bcount;
} scorer;

static void block_flush(scorer *s) {
    if (s->csv && s->bcount > 0)
        fprintf(s->csv, "%s,%lld,%lld,%lld,%.9f\n", s->mode, (long long)s->block,
                (long long)(s->block * s->B + 1), (long long)s->bcount, s->bsum / (double)s->bcount);
    s->bsum = 0;
    s->bcount = 0;
}

/* Score the predictions the last feed/flush made ready. A call that makes
 * nothing ready leaves the previous call's range readable, so indices
 * already scored are skipped. Returns a processor error, else HMT_OK. */
static int score_ready(scorer *s, const hmt_stream *st) {
    int64_t first, end;
    hmt_stream_ready_range(st, &first, &end);
    if (first < s->next) first = s->next;
    if (end > s->next) s->next = end;
    for (int64_t i = first; i < end && i + 1 < s->n; i++) {
        const float *lg = hmt_stream_logits(st, i);
        if (!lg) continue; /* cannot happen with HMT_P_ALL_LOGITS = 1 */
        int rc = HMT_OK;
        const int64_t last = end < s->n - 1 ? end : s->n - 1; /* positions with a target */
        double nll = position_nll(s->hk, st, i, last, lg, s->n_vocab, s->tok[i + 1], &rc);
        if (rc) return rc;
        if (!(nll > -1e300 && nll < 1e300)) s->bad++;
        s->sum += nll;
        s->count++;
        if (i / s->B != s->block) {
            block_flush(s);
            s->block = i / s->B;
        }
        s->bsum += nll;
        s->bcount++;
    }
    return HMT_OK;
}

typedef struct {
    hmt_model *model;
    hmt_adapter *adapter;
    const options *o;
    FILE *csv;
    int64_t block_len;       /* B of the csv rows in window mode         */
    hmt_params *ditto_params, *knn_params; /* --ditto, --knn-*: NULL if off */
    hmt_knn *knn;            /* --knn datastore, or NULL                 */
} env;

/* A fresh sampler for one document (a mode's text, a reference window):
 * DITTO first, then kNN, as hmt-generate builds it. No processors: h->smp
 * stays NULL and the raw logits are scored, exactly as without hooks. */
static int hooks_open(const env *e, hooks *h) {
    memset(h, 0, sizeof *h);
    h->prep_end = -1;
    if (!e->ditto_params && !e->knn) return HMT_OK;
    int rc = hmt_sampler_create(&h->smp, NULL);
    if (!rc && e->ditto_params) {
        hmt_proc *dp = NULL;
        rc = hmt_proc_ditto_create(&dp, e->model, e->ditto_params);
        if (!rc) rc = hmt_sampler_add(h->smp, dp);
        hmt_proc_free(dp); /* the sampler holds it */
    }
    if (!rc && e->knn) {
        hmt_proc *kp = NULL;
        rc = hmt_proc_knn_create(&kp, e->knn, e->knn_params);
        if (!rc) rc = hmt_sampler_add(h->smp, kp);
        hmt_proc_free(kp);
        h->dim = hmt_knn_dim(e->knn);
        if (!rc && !(h->keys = malloc((size_t)PREP_BATCH * (size_t)h->dim * sizeof *h->keys)))
            rc = HMT_E_NOMEM;
    }
    if (!rc && !(h->lp = malloc((size_t)hmt_model_n_vocab(e->model) * sizeof *h->lp)))
        rc = HMT_E_NOMEM;
    return rc;
}

static void hooks_close(hooks *h) {
    hmt_sampler_free(h->smp); /* and its processors */
    free(h->lp);
    free(h->keys);
    memset(h, 0, sizeof *h);
}

/* The sampler's history starts with the tokens before the first scored
 * prediction (BOS, or a reference window's context). */
static int hooks_accept(hooks *h, const hmt_token *tok, int64_t n) {
    int rc = HMT_OK;
    for (int64_t i = 0; h->smp && i < n && !rc; i++) rc = hmt_sampler_accept(h->smp, tok[i]);
    return rc;
}

/* A stream of the given mode with the command line's settings. */
static int make_stream(const env *e, int mode, hmt_stream **out) {
    hmt_params *p = NULL;
    int rc = hmt_params_create(&p);
    if (!rc) rc = hmt_params_set_int(p, HMT_P_MODE, mode);
    if (!rc) rc = hmt_params_set_int(p, HMT_P_N_THREADS, e->o->threads ? e->o->threads : HMT_AUTO);
    if (!rc) rc = hmt_params_set_int(p, HMT_P_COMPUTE_TYPE, e->o->compute);
    if (!rc) rc = hmt_params_set_int(p, HMT_P_KV_TYPE, e->o->kv_type);
    const int plain = mode == HMT_MODE_WINDOW || mode == HMT_MODE_SINKS; /* no segments */
    if (!rc && e->o->L > 0 && !plain)
        rc = hmt_params_set_int(p, HMT_P_SEGMENT_LENGTH, e->o->L);
    if (!rc && e->o->n_ctx > 0 && plain)
        rc = hmt_params_set_int(p, HMT_P_WINDOW, e->o->n_ctx);
    if (!rc && e->o->sinks >= 0 && mode == HMT_MODE_SINKS)
        rc = hmt_params_set_int(p, HMT_P_SINKS, e->o->sinks);
    if (!rc && e->o->segment_sinks > 0 && !plain)
        rc = hmt_params_set_int(p, HMT_P_SEGMENT_SINKS, e->o->segment_sinks);
    if (!rc && e->knn) rc = hmt_params_set_int(p, HMT_P_KEEP_FFN_INPUT, 1); /* the kNN keys */
    /* segments takes L from the adapter when -L is not given; window and sinks need none */
    if (!rc) rc = hmt_stream_create(out, e->model, plain ? NULL : e->adapter, p);
    hmt_params_free(p);
    return rc;
}

/* "L=222 k=32 j=111 N=100" etc. */
static void describe(const hmt_stream *st, int mode, char *buf, size_t cap) {
    double L = 0, k = 0, j = 0, N = 0, W = 0;
    if (mode == HMT_MODE_WINDOW) {
        if (hmt_stream_get(st, HMT_P_WINDOW, &W)) W = 0;
        snprintf(buf, cap, "W=%.0f", W);
        return;
    }
    if (mode == HMT_MODE_SINKS) {
        double S = 0;
        if (hmt_stream_get(st, HMT_P_WINDOW, &W) || hmt_stream_get(st, HMT_P_SINKS, &S)) W = S = 0;
        snprintf(buf, cap, "W=%.0f S=%.0f", W, S);
        return;
    }
    if (hmt_stream_get(st, HMT_P_SEGMENT_LENGTH, &L) || hmt_stream_get(st, HMT_P_SENSORY_LENGTH, &k) ||
        hmt_stream_get(st, HMT_P_SUMMARY_LENGTH, &j) || hmt_stream_get(st, HMT_P_CACHE_SIZE, &N)) {
        snprintf(buf, cap, "?");
        return;
    }
    double S = 0;
    if (hmt_stream_get(st, HMT_P_SEGMENT_SINKS, &S)) S = 0;
    char sinks[32] = "";
    if (S > 0) snprintf(sinks, sizeof sinks, " S=%.0f", S);
    if (mode == HMT_MODE_FULL)
        snprintf(buf, cap, "L=%.0f k=%.0f j=%.0f N=%.0f%s", L, k, j, N, sinks);
    else if (mode == HMT_MODE_RMT)
        snprintf(buf, cap, "L=%.0f k=%.0f%s", L, k, sinks);
    else
        snprintf(buf, cap, "L=%.0f%s", L, sinks);
}

static int64_t stream_L(const hmt_stream *st) {
    double L = 0;
    return hmt_stream_get(st, HMT_P_SEGMENT_LENGTH, &L) ? 0 : (int64_t)L;
}

/* One document (a fresh stream and sampler) of a mode: adds to *sum, *count,
 * *bad. Returns an exit code. */
static int score_doc(const env *e, int mode, const hmt_token *tok, int64_t n, progress *pr,
                     int64_t *fed, int64_t total, char *desc, size_t desc_cap, double *sum,
                     int64_t *count, int64_t *bad) {
    hmt_stream *st = NULL;
    int rc = make_stream(e, mode, &st);
    if (rc) {
        fprintf(stderr, PROG ": mode %s: %s (%s)\n", MODE_NAME[mode], hmt_last_error_msg(),
                hmt_strerror(rc));
        return 1;
    }
    hooks hk;
    if ((rc = hooks_open(e, &hk)) || (rc = hooks_accept(&hk, tok, 1))) {
        fprintf(stderr, PROG ": mode %s: setting up the processors: %s (%s)\n", MODE_NAME[mode],
                hmt_last_error_msg(), hmt_strerror(rc));
        hooks_close(&hk);
        hmt_stream_free(st);
        return 1;
    }
    describe(st, mode, desc, desc_cap);
    const int64_t L = mode == HMT_MODE_WINDOW || mode == HMT_MODE_SINKS ? 0 : stream_L(st);
    int64_t chunk = e->o->chunk > 0 ? e->o->chunk : (L > 0 ? L : 512);
    scorer sc;
    memset(&sc, 0, sizeof sc);
    sc.hk = &hk;
    sc.tok = tok;
    sc.n = n;
    sc.n_vocab = hmt_model_n_vocab(e->model);
    sc.csv = e->csv;
    sc.mode = MODE_NAME[mode];
    sc.B = L > 0 ? L : e->block_len;
    int status = 0, proc_rc = HMT_OK;
    for (int64_t done = 0; done < n;) {
        int64_t c = n - done < chunk ? n - done : chunk;
        if ((rc = hmt_stream_feed(st, tok + done, (size_t)c))) break;
        if ((proc_rc = score_ready(&sc, st))) break;
        done += c;
        progress_update(pr, *fed + done, total, *fed + done);
    }
    if (!rc && !proc_rc && !(rc = hmt_stream_flush(st))) proc_rc = score_ready(&sc, st);
    if (proc_rc) {
        fprintf(stderr, PROG ": mode %s: processors: %s (%s)\n", MODE_NAME[mode],
                hmt_last_error_msg(), hmt_strerror(proc_rc));
        status = 1;
    } else if (rc) {
        fprintf(stderr, PROG ": mode %s: %s (%s)\n", MODE_NAME[mode], hmt_last_error_msg(),
                hmt_strerror(rc));
        status = 1;
    } else if (hmt_stream_n_ready(st) != n || sc.count != n - 1) {
        fprintf(stderr, PROG ": mode %s: internal inconsistency: %lld tokens fed, %lld ready, "
                "%lld scored (expected %lld)\n", MODE_NAME[mode], (long long)n,
                (long long)hmt_stream_n_ready(st), (long long)sc.count, (long long)(n - 1));
        status = 1;
    } else {
        block_flush(&sc);
        *sum += sc.sum;
        *count += sc.count;
        *bad += sc.bad;
        *fed += n;
    }
    hooks_close(&hk);
    hmt_stream_free(st);
    return status;
}

typedef struct {
    hmt_token *tok;
    int64_t n;
} document;

/* Token-weighted corpus perplexity of one mode over all documents. Returns an
 * exit code. */
static int run_mode(const env *e, int mode, const document *docs, int n_docs) {
    int64_t total = 0, fed = 0, count = 0, bad = 0;
    for (int d = 0; d < n_docs; d++) total += docs[d].n;
    double sum = 0;
    char desc[96] = "?";
    progress pr;
    progress_start(&pr, e->o->quiet, MODE_NAME[mode]);
    int status = 0;
    for (int d = 0; d < n_docs && !status; d++)
        status = score_doc(e, mode, docs[d].tok, docs[d].n, &pr, &fed, total, desc, sizeof desc,
                           &sum, &count, &bad);
    const double el = progress_now() - pr.t0;
    progress_end(&pr);
    if (status) return status;
    const double mean = sum / (double)count;
    printf("%-9s %-24s %10lld %11.6f %14.4f %10.1f\n", MODE_NAME[mode], desc, (long long)count,
           mean, exp(mean), (double)total / el);
    if (bad)
        fprintf(stderr, PROG ": mode %s: warning: %lld tokens had a non-finite NLL\n",
                MODE_NAME[mode], (long long)bad);
    fflush(stdout);
    return 0;
}

/* ---- the HMT-pytorch reference protocol (algorithms.md §1.7) ------------------ */

/* Windows w = 0, 1, ...: start i = w*L, tokens [max(0, i - L), i + T); only
 * windows that fit in the text are used. The last m = L tokens of a window are
 * scored (m = len - 1 if len <= L), each by a fresh stream over the window.
 * Batches of B consecutive windows (the last incomplete one dropped): batch
 * PPL = exp(mean NLL over the batch's scored tokens); the reported figure is
 * the arithmetic mean of the batch PPLs. */
static int64_t ref_batches(const options *o, int64_t n, int64_t Lr) {
    const int64_t n_win = n >= o->ref_T ? (n - o->ref_T) / Lr + 1 : 0;
    int64_t n_batch = n_win / o->ref_batch;
    if (o->ref_batches > 0 && n_batch > o->ref_batches) n_batch = o->ref_batches;
    return n_batch;
}

static int run_reference(const env *e, int mode, const hmt_token *tok, int64_t n, int64_t Lr) {
    const int64_t T = e->o->ref_T, B = e->o->ref_batch;
    const int64_t n_batch = ref_batches(e->o, n, Lr), n_win = n_batch * B;
    const int32_t nv = hmt_model_n_vocab(e->model);
    char label[32], desc[96] = "?";
    snprintf(label, sizeof label, "ref-%s", MODE_NAME[mode]);
    progress pr;
    progress_start(&pr, e->o->quiet, label);
    double ppl_sum = 0, all_sum = 0, bsum = 0;
    int64_t all_count = 0, bcount = 0, fed = 0, bad = 0;
    int status = 0;
    for (int64_t w = 0; w < n_win && !status; w++) {
        const int64_t i0 = w * Lr, start = i0 > Lr ? i0 - Lr : 0, end = i0 + T;
        const int64_t len = end - start, m = len > Lr ? Lr : len - 1;
        const hmt_token *win = tok + start;
        const int64_t cut = len - m - 1; /* first predictor index scored */
        hmt_stream *st = NULL;
        hooks hk;
        memset(&hk, 0, sizeof hk);
        int rc = make_stream(e, mode, &st);
        if (!rc && w == 0) describe(st, mode, desc, sizeof desc);
        /* the processors' history: the window up to the first scored prediction */
        if (!rc) rc = hooks_open(e, &hk);
        if (!rc) rc = hooks_accept(&hk, win, cut + 1);
        double wsum = 0;
        int64_t wcount = 0, next = cut;
        for (int part = 0; part < 3 && !rc; part++) {
            /* part 0: the context, last-row logits only; 1: the scored tail; 2: flush */
            if (part == 0 && cut > 0) {
                if (!(rc = hmt_stream_set_int(st, HMT_P_ALL_LOGITS, 0)))
                    rc = hmt_stream_feed(st, win, (size_t)cut);
            } else if (part == 1) {
                if (!(rc = hmt_stream_set_int(st, HMT_P_ALL_LOGITS, 1)))
                    rc = hmt_stream_feed(st, win + cut, (size_t)(len - cut));
            } else if (part == 2) {
                rc = hmt_stream_flush(st);
            }
            if (rc || part == 0) continue;
            int64_t first, last;
            hmt_stream_ready_range(st, &first, &last);
            if (first < next) first = next;
            if (last > next) next = last;
            for (int64_t i = first; i < last && i + 1 < len && !rc; i++) {
                const float *lg = hmt_stream_logits(st, i);
                if (!lg) continue;
                const int64_t stop = last < len - 1 ? last : len - 1;
                double nll = position_nll(&hk, st, i, stop, lg, nv, win[i + 1], &rc);
                if (rc) break;
                if (!(nll > -1e300 && nll < 1e300)) bad++;
                wsum += nll;
                wcount++;
            }
        }
        if (rc) {
            fprintf(stderr, PROG ": %s, window %lld: %s (%s)\n", label, (long long)w, hmt_last_error_msg(),
                    hmt_strerror(rc));
            status = 1;
        } else if (wcount != m) {
            fprintf(stderr, PROG ": %s, window %lld: internal inconsistency: %lld tokens scored, "
                    "expected %lld\n", label, (long long)w, (long long)wcount, (long long)m);
            status = 1;
        }
        hooks_close(&hk);
        hmt_stream_free(st);
        if (status) break;
        if (e->csv)
            fprintf(e->csv, "%s,%lld,%lld,%lld,%.9f\n", label, (long long)w,
                    (long long)(start + cut + 1), (long long)wcount, wsum / (double)wcount);
        all_sum += wsum;
        all_count += wcount;
        bsum += wsum;
        bcount += wcount;
        if ((w + 1) % B == 0) {
            ppl_sum += exp(bsum / (double)bcount);
            bsum = 0;
            bcount = 0;
        }
        fed += len;
        progress_update(&pr, w + 1, n_win, fed);
    }
    progress_end(&pr);
    if (status) return status;
    const double mean = all_sum / (double)all_count;
    printf("%-13s %-24s %6lld %6lld %8lld %8lld %14.4f %14.4f\n", label, desc, (long long)T,
           (long long)Lr, (long long)n_win, (long long)n_batch, ppl_sum / (double)n_batch,
           exp(mean));
    if (bad)
        fprintf(stderr, PROG ": %s: warning: %lld tokens had a non-finite NLL\n", label, (long long)bad);
    fflush(stdout);
    return 0;
}

/* ---- documents ---------------------------------------------------------------- */

/* BOS + the tokens of one file (cut to --max-tokens). Returns an exit code. */
static int load_document(const env *e, const char *path, document *out) {
    size_t text_len = 0, n_tok = 0;
    char *text = read_file(path, &text_len);
    if (!text) return 1;
    int status = 1;
    hmt_token *tok = malloc((text_len + 2) * sizeof *tok);
    if (!tok) {
        fprintf(stderr, PROG ": out of memory for %zu tokens\n", text_len + 2);
        goto done;
    }
    int rc = hmt_tokenize(e->model, text, text_len, HMT_TOKENIZE_ADD_BOS, tok, text_len + 2, &n_tok);
    if (rc == HMT_E_BUFFER) { /* more tokens than bytes + 2: retry at the size asked */
        hmt_token *t2 = realloc(tok, n_tok * sizeof *tok);
        if (!t2) goto done;
        tok = t2;
        rc = hmt_tokenize(e->model, text, text_len, HMT_TOKENIZE_ADD_BOS, tok, n_tok, &n_tok);
    }
    if (rc) {
        status = lib_fail(rc == HMT_E_UNSUPPORTED ? "tokenizing (a tokenizer is needed)" : "tokenizing", rc);
        goto done;
    }
    if (e->o->max_tokens > 0 && (int64_t)n_tok > e->o->max_tokens) n_tok = (size_t)e->o->max_tokens;
    if (n_tok < 2) {
        fprintf(stderr, PROG ": '%s' gives %zu token(s): nothing to score (at least 2 are needed)\n",
                path, n_tok);
        goto done;
    }
    out->tok = tok;
    out->n = (int64_t)n_tok;
    tok = NULL;
    status = 0;
done:
    free(tok);
    free(text);
    return status;
}

/* ---- main -------------------------------------------------------------------- */

int main(int argc, char **argv) {
    options o;
    memset(&o, 0, sizeof o);
    enum { MAX_FILES = 4096 };
    static const char *files[MAX_FILES];
    o.files = files;
    o.mode = -2;
    o.sinks = -1;
    o.ref_T = 2000;
    o.ref_batch = 2;
    o.ref_batches = 100;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o.quiet = 1;
            continue;
        }
        if (!strcmp(a, "--reference-protocol")) {
            o.ref = 1;
            continue;
        }
        if (a[0] != '-' || i + 1 >= argc) {
            fprintf(stderr, PROG ": unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        int64_t *num = NULL, lo = 1, hi = INT32_MAX;
        double *real = NULL;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o.model = v;
        else if (!strcmp(a, "-a") || !strcmp(a, "--adapter")) o.adapter = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (o.n_files == MAX_FILES) {
                fprintf(stderr, PROG ": more than %d files\n", MAX_FILES);
                return 2;
            }
            files[o.n_files++] = v;
        }
        else if (!strcmp(a, "--csv")) o.csv = v;
        else if (!strcmp(a, "--compute")) {
            o.compute = !strcmp(v, "bf16") ? HMT_COMPUTE_BF16 : !strcmp(v, "f32") ? HMT_COMPUTE_F32 : -1;
            if (o.compute < 0) {
                fprintf(stderr, PROG ": --compute takes f32 or bf16, got '%s'\n", v);
                return 2;
            }
        }
        else if (!strcmp(a, "--kv-type")) {
            o.kv_type = !strcmp(v, "f32") ? HMT_KV_F32 : !strcmp(v, "f16") ? HMT_KV_F16
                      : !strcmp(v, "bf16") ? HMT_KV_BF16 : -1;
            if (o.kv_type < 0) {
                fprintf(stderr, PROG ": --kv-type takes f32, f16 or bf16, got '%s'\n", v);
                return 2;
            }
        }
        else if (!strcmp(a, "--mode")) {
            o.mode = -3;
            for (int k = 0; k < N_MODES; k++)
                if (!strcmp(v, MODE_NAME[k])) o.mode = k;
            if (!strcmp(v, "all")) o.mode = MODE_ALL;
            if (o.mode == -3) {
                fprintf(stderr, PROG ": unknown mode '%s' (full, rmt, segments, window, sinks, all)\n", v);
                return 2;
            }
        } else if (!strcmp(a, "-L") || !strcmp(a, "--segment-length")) num = &o.L;
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) num = &o.n_ctx, lo = 2;
        else if (!strcmp(a, "--sinks")) num = &o.sinks, lo = 0;
        else if (!strcmp(a, "--segment-sinks")) num = &o.segment_sinks, lo = 0;
        else if (!strcmp(a, "--max-tokens")) num = &o.max_tokens, lo = 2, hi = INT64_MAX;
        else if (!strcmp(a, "--chunk")) num = &o.chunk;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) num = &o.threads, lo = 0, hi = 1024;
        else if (!strcmp(a, "--ref-length")) num = &o.ref_T;
        else if (!strcmp(a, "--ref-batch")) num = &o.ref_batch;
        else if (!strcmp(a, "--ref-batches")) num = &o.ref_batches, lo = 0;
        else if (!strcmp(a, "--ditto")) real = &o.ditto, o.ditto_set = 1;
        else if (!strcmp(a, "--knn")) o.knn = v;
        else if (!strcmp(a, "--knn-lambda")) real = &o.knn_lambda, o.knn_lambda_set = 1;
        else if (!strcmp(a, "--knn-k")) num = &o.knn_k, o.knn_k_set = 1;
        else {
            fprintf(stderr, PROG ": unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (num && !parse_int(v, lo, hi, num)) {
            fprintf(stderr, PROG ": %s needs an integer in [%lld, %lld], got '%s'\n", a,
                    (long long)lo, (long long)hi, v);
            return 2;
        }
        if (real && !parse_double(v, real)) {
            fprintf(stderr, PROG ": %s needs a number, got '%s'\n", a, v);
            return 2;
        }
    }
    if (!o.model || !o.n_files) {
        fprintf(stderr, PROG ": %s is required\n", !o.model ? "-m MODEL" : "-f TEXTFILE");
        usage(stderr);
        return 2;
    }
    if (hmt_version_number() != HMT_VERSION_NUMBER)
        fprintf(stderr, PROG ": warning: built against libhmt %s, running %s\n", HMT_VERSION_STRING,
                hmt_version_string());
    /* The usage checks that need no file come first. */
    if ((o.mode == HMT_MODE_FULL || o.mode == HMT_MODE_RMT) && !o.adapter) {
        fprintf(stderr, PROG ": mode %s needs an HMT adapter (-a ADAPTER)\n", MODE_NAME[o.mode]);
        return 2;
    }
    if (o.mode == HMT_MODE_SEGMENTS && !o.adapter && !o.L) {
        fprintf(stderr, PROG ": mode segments needs a segment length: give -L N or -a ADAPTER\n");
        return 2;
    }
    if (o.ref && !o.adapter && !o.L) {
        fprintf(stderr, PROG ": --reference-protocol needs the segment length L (the stride and "
                        "scored block): give -a ADAPTER or -L N\n");
        return 2;
    }
    if (o.ref && o.n_files > 1) {
        fprintf(stderr, PROG ": --reference-protocol scores one file (got %d)\n", o.n_files);
        return 2;
    }
    if (!o.knn && (o.knn_lambda_set || o.knn_k_set)) {
        fprintf(stderr, PROG ": %s needs --knn FILE\n", o.knn_k_set ? "--knn-k" : "--knn-lambda");
        return 2;
    }
    /* one params object per kind of object: each reads only its keys; the
     * library checks the ranges */
    hmt_params *ditto_params = NULL, *knn_params = NULL, *load_params = NULL;
    int prc = HMT_OK;
    if (o.ditto_set && !(prc = hmt_params_create(&ditto_params)))
        prc = hmt_params_set_float(ditto_params, HMT_P_DITTO_LAMBDA, o.ditto);
    if (!prc && o.knn && !(prc = hmt_params_create(&knn_params))) {
        if (o.knn_lambda_set) prc = hmt_params_set_float(knn_params, HMT_P_KNN_LAMBDA, o.knn_lambda);
        if (!prc && o.knn_k_set) prc = hmt_params_set_int(knn_params, HMT_P_KNN_K, o.knn_k);
        if (!prc && !(prc = hmt_params_create(&load_params)))
            prc = hmt_params_set_int(load_params, HMT_P_N_THREADS, o.threads ? o.threads : HMT_AUTO);
    }
    if (prc) {
        fprintf(stderr, PROG ": %s\n", hmt_last_error_msg());
        hmt_params_free(ditto_params);
        hmt_params_free(knn_params);
        hmt_params_free(load_params);
        return 2;
    }

    env e;
    memset(&e, 0, sizeof e);
    e.o = &o;
    e.ditto_params = ditto_params;
    e.knn_params = knn_params;
    int rc, status = 1;
    document *docs = NULL;
    int n_docs = 0;
    out_file csv = {0};
    int64_t n_tok = 0;
    if ((rc = hmt_model_load(&e.model, o.model, NULL))) {
        status = lib_fail("loading the model", rc);
        goto done;
    }
    if (o.adapter && (rc = hmt_adapter_load(&e.adapter, e.model, o.adapter))) {
        status = lib_fail("loading the adapter", rc);
        goto done;
    }
    if (o.knn && (rc = hmt_knn_load(&e.knn, e.model, o.knn, load_params))) {
        status = lib_fail("loading the kNN datastore", rc);
        goto done;
    }
    if (!(docs = calloc((size_t)o.n_files, sizeof *docs))) goto done;
    for (; n_docs < o.n_files; n_docs++) {
        if ((status = load_document(&e, o.files[n_docs], &docs[n_docs]))) goto done;
        n_tok += docs[n_docs].n;
    }
    status = 1;
    if (o.csv) {
        if (out_open(&csv, o.csv)) {
            fprintf(stderr, PROG ": cannot write '%s': %s\n", o.csv, strerror(errno));
            goto done;
        }
        fprintf(csv.f, "mode,segment,first_token,tokens,mean_nll\n");
        e.csv = csv.f;
    }
    double adL = 0;
    if (e.adapter && hmt_adapter_get(e.adapter, HMT_P_SEGMENT_LENGTH, &adL)) adL = 0;
    const int64_t Lref = o.L > 0 ? o.L : (int64_t)adL;
    e.block_len = Lref > 0 ? Lref : 256;

    /* the modes to run */
    int modes[N_MODES], n_modes = 0;
    if (o.mode == -2) /* default */
        modes[n_modes++] = e.adapter ? HMT_MODE_FULL : o.L ? HMT_MODE_SEGMENTS : HMT_MODE_WINDOW;
    else if (o.mode == MODE_ALL) {
        if (e.adapter) {
            modes[n_modes++] = HMT_MODE_FULL;
            modes[n_modes++] = HMT_MODE_RMT;
        }
        if (e.adapter || o.L) modes[n_modes++] = HMT_MODE_SEGMENTS;
        modes[n_modes++] = HMT_MODE_WINDOW;
        modes[n_modes++] = HMT_MODE_SINKS;
        if (!e.adapter)
            fprintf(stderr, PROG ": no adapter: modes full and rmt skipped%s\n",
                    o.L ? "" : ", and segments (no -L)");
    } else
        modes[n_modes++] = o.mode;

    /* Check every stream's settings and the text's length before printing. */
    for (int i = 0; i < n_modes; i++) {
        hmt_stream *st = NULL;
        if ((rc = make_stream(&e, modes[i], &st))) {
            fprintf(stderr, PROG ": mode %s: %s (%s)\n", MODE_NAME[modes[i]], hmt_last_error_msg(),
                    hmt_strerror(rc));
            status = rc == HMT_E_INVAL ? 2 : 1;
            goto done;
        }
        hmt_stream_free(st);
    }
    if (o.ref && ref_batches(&o, n_tok, Lref) == 0) {
        fprintf(stderr, PROG ": reference protocol: the text has %lld tokens; one batch of %lld "
                "window(s) needs at least %lld (--ref-length %lld, L %lld, --ref-batch %lld)\n",
                (long long)n_tok, (long long)o.ref_batch, (long long)(o.ref_T + (o.ref_batch - 1) * Lref),
                (long long)o.ref_T, (long long)Lref, (long long)o.ref_batch);
        goto done;
    }

    char arch[64] = "?";
    if (hmt_model_meta_str(e.model, "general.architecture", arch, sizeof arch, NULL)) strcpy(arch, "?");
    printf("# model %s (%s, %.1f M params, vocab %d, context %d)%s%s\n", o.model, arch,
           (double)hmt_model_n_params(e.model) / 1e6, hmt_model_n_vocab(e.model),
           hmt_model_n_ctx_train(e.model), o.adapter ? ", adapter " : "", o.adapter ? o.adapter : "");
    if (o.n_files == 1)
        printf("# text %s: %lld tokens (BOS %s)%s\n", o.files[0], (long long)n_tok,
               hmt_model_token_bos(e.model) >= 0 ? "added" : "none: the model has no BOS",
               o.max_tokens > 0 && n_tok == o.max_tokens ? ", cut by --max-tokens" : "");
    else
        printf("# text: %d files, %lld tokens (each file a document: BOS %s, a fresh stream; "
               "the PPL is token-weighted over all)\n", o.n_files, (long long)n_tok,
               hmt_model_token_bos(e.model) >= 0 ? "added" : "none: the model has no BOS");
    printf("# corpus PPL = exp(mean NLL over tokens 1..n-1, each predicted from all earlier "
           "tokens the mode lets it see)\n");
    if (ditto_params || knn_params) {
        double kl = 0, kk = 0;
        if (knn_params && (hmt_params_get(knn_params, HMT_P_KNN_LAMBDA, &kl) ||
                           hmt_params_get(knn_params, HMT_P_KNN_K, &kk)))
            kl = kk = 0;
        char ditto[48] = "", knn[96] = "";
        if (o.ditto_set) snprintf(ditto, sizeof ditto, "DITTO lambda=%g (power, consecutive)", o.ditto);
        if (e.knn)
            snprintf(knn, sizeof knn, "kNN-LM lambda=%g k=%.0f over %lld keys", kl, kk,
                     (long long)hmt_knn_count(e.knn));
        printf("# NLL from the final distribution of the sampler's processors: %s%s%s (the text "
               "is their history)\n", ditto, *ditto && *knn ? ", then " : "", knn);
    }
    printf("%-9s %-24s %10s %11s %14s %10s\n", "mode", "settings", "scored", "mean_nll",
           "corpus_ppl", "tok/s");
    fflush(stdout);
    status = 0;
    for (int i = 0; i < n_modes && !status; i++) status = run_mode(&e, modes[i], docs, n_docs);
    if (!status && o.ref) {
        printf("# HMT-pytorch reference protocol (docs/PERPLEXITY.md): windows tokens[max(0,i-L), "
               "i+T) for i = 0, L, 2L, ..., fresh stream per window,\n# the last L tokens of each "
               "scored; ref_ppl = arithmetic mean over batches of %lld windows of exp(batch mean "
               "NLL);\n# tw_ppl = exp(mean NLL) over the same scored tokens (token-weighted)\n",
               (long long)o.ref_batch);
        printf("%-13s %-24s %6s %6s %8s %8s %14s %14s\n", "ref-mode", "settings", "T", "L",
               "windows", "batches", "ref_ppl", "tw_ppl");
        fflush(stdout);
        for (int i = 0; i < n_modes && !status; i++)
            status = run_reference(&e, modes[i], docs[0].tok, docs[0].n, Lref);
    }
done:
    /* the CSV replaces an old one only after a successful run */
    if (out_close(&csv, status == 0) && status == 0) {
        fprintf(stderr, PROG ": cannot write '%s': %s\n", o.csv, strerror(errno));
        status = 1;
    }
    for (int d = 0; d < n_docs; d++) free(docs[d].tok);
    free(docs);
    hmt_knn_free(e.knn);
    hmt_params_free(ditto_params);
    hmt_params_free(knn_params);
    hmt_params_free(load_params);
    hmt_adapter_free(e.adapter);
    hmt_model_free(e.model);
    return status;
}
