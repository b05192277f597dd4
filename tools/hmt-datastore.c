/* hmt-datastore: build a kNN-LM datastore (docs/KNN.md) from a text file with
 * a GGUF model, using only the public API: key = the last block's normalized
 * feed-forward input at each position, value = the next token. With -a the
 * keys come from HMT streams (memory included); with --faiss a FAISS IVF-PQ
 * index is built beside it (OUT.faiss). Exit codes: 0 success,
 * 1 runtime failure, 2 usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hmt/experimental.h>

#include "progress.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: hmt-datastore -m MODEL -f TEXT -o OUT [options]\n"
            "  -m, --model PATH     GGUF model file (llama, qwen2, qwen3, gemma2, gemma3)\n"
            "  -f, --file PATH      UTF-8 training text\n"
            "  -o, --output PATH    datastore file to write (through a temporary next to it, then renamed)\n"
            "  -a, --adapter PATH   build through HMT with this adapter (\"-\": the model\n"
            "                       file's own); the default is the plain backbone\n"
            "  -c, --ctx-size N     window of the plain backbone in tokens (default: the\n"
            "                       model's training context, at most 2048)\n"
            "  -b, --batch N        tokens per forward chunk (default 512)\n"
            "      --f16            store the keys as F16 (half the size)\n"
            "      --faiss          also build a FAISS IVF-PQ index for approximate search,\n"
            "                       written to OUT.faiss (libhmt built with FAISS only)\n"
            "      --nlist N        its IVF lists (default: automatic, ~sqrt of the keys)\n"
            "      --pq-m M         its PQ sub-quantizers = bytes per key (default: automatic,\n"
            "                       a divisor of the key width up to 64)\n"
            "  -t, --threads N      worker threads (default: all CPUs)\n"
            "  -q, --quiet          no progress line (drawn only when stderr is a terminal,\n"
            "                       or with HMT_PROGRESS=1)\n"
            "  -h, --help           show this help\n");
}

static int parse_num(const char *s, double *out) {
    char *end;
    *out = strtod(s, &end);
    return *s && !*end;
}

static int die(const char *what, int rc) {
    fprintf(stderr, "hmt-datastore: %s: %s (%s)\n", what, hmt_last_error_msg(), hmt_strerror(rc));
    return 1;
}

/* hmt_knn_builder_add_* and hmt_knn_faiss_build report (done, total). */
static int on_progress(void *user_data, int64_t done, int64_t total) {
    progress_update(user_data, done, total, done);
    return 0;
}

/* Build OUT.faiss for the datastore just written. */
static int build_index(hmt_model *model, const char *out_path, const hmt_params *load_params,
                       const hmt_params *faiss_params, int quiet) {
    if (!hmt_knn_faiss_available()) {
        fprintf(stderr, "hmt-datastore: --faiss: this libhmt is built without FAISS\n");
        return 1;
    }
    size_t n = strlen(out_path) + 7;
    char *path = malloc(n);
    if (!path) return 1;
    snprintf(path, n, "%s.faiss", out_path);
    hmt_knn *knn = NULL;
    int rc = hmt_knn_load(&knn, model, out_path, load_params);
    double t0 = progress_now();
    progress pr;
    progress_start(&pr, quiet, "hmt-datastore: FAISS index");
    pr.unit = "key";
    if (!rc) rc = hmt_knn_faiss_build(knn, path, faiss_params, on_progress, &pr);
    progress_end(&pr);
    int status = rc ? die("building the FAISS index", rc) : 0;
    if (!rc)
        fprintf(stderr, "hmt-datastore: wrote %s in %.2f s (attach it with "
                "hmt_knn_faiss_attach after hmt_knn_load)\n", path, progress_now() - t0);
    hmt_knn_free(knn);
    free(path);
    return status;
}

/* Read a whole file; NULL on failure. */
static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *text_path = NULL, *out_path = NULL, *adapter_path = NULL;
    double threads = 0, n_ctx = 0, n_batch = 512, nlist = 0, pq_m = 0;
    int f16 = 0, quiet = 0, faiss = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--f16")) {
            f16 = 1;
            continue;
        }
        if (!strcmp(a, "--faiss")) {
            faiss = 1;
            continue;
        }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "hmt-datastore: unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        double *num = NULL;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) text_path = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out_path = v;
        else if (!strcmp(a, "-a") || !strcmp(a, "--adapter")) adapter_path = v;
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) num = &n_ctx;
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) num = &n_batch;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) num = &threads;
        else if (!strcmp(a, "--nlist")) num = &nlist;
        else if (!strcmp(a, "--pq-m")) num = &pq_m;
        else {
            fprintf(stderr, "hmt-datastore: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (num && !parse_num(v, num)) {
            fprintf(stderr, "hmt-datastore: %s needs a number, got '%s'\n", a, v);
            return 2;
        }
    }
    if (!model_path || !text_path || !out_path) {
        fprintf(stderr, "hmt-datastore: -m MODEL, -f TEXT and -o OUT are required\n");
        usage(stderr);
        return 2;
    }
    /* per object: tp threads (datastore load), rp the context or stream (tp's
     * keys and more), bp the builder, fp the FAISS build */
    hmt_params *tp = NULL, *rp = NULL, *bp = NULL, *fp = NULL;
    hmt_model *model = NULL;
    hmt_adapter *adapter = NULL;
    hmt_ctx *ctx = NULL;
    hmt_stream *stream = NULL;
    hmt_knn_builder *builder = NULL;
    hmt_token *toks = NULL;
    char *text = NULL;
    int rc, status = 1;
    if ((rc = hmt_params_create(&tp)) ||
        (rc = hmt_params_set_int(tp, HMT_P_N_THREADS, threads > 0 ? (int64_t)threads : HMT_AUTO)) ||
        (rc = hmt_params_copy(&rp, tp)) ||
        (rc = hmt_params_set_int(rp, HMT_P_N_BATCH, (int64_t)n_batch)) ||
        (rc = hmt_params_create(&bp)) || (rc = hmt_params_set_int(bp, HMT_P_KNN_KEY_F16, f16)) ||
        (rc = hmt_params_create(&fp)) ||
        (rc = hmt_params_set_int(fp, HMT_P_KNN_NLIST, nlist > 0 ? (int64_t)nlist : HMT_AUTO)) ||
        (rc = hmt_params_set_int(fp, HMT_P_KNN_PQ_M, pq_m > 0 ? (int64_t)pq_m : HMT_AUTO))) {
        fprintf(stderr, "hmt-datastore: %s\n", hmt_last_error_msg());
        status = 2;
        goto done;
    }
    if ((rc = hmt_model_load(&model, model_path, NULL))) {
        status = die("loading the model", rc);
        goto done;
    }
    size_t text_len = 0, n_tok = 0;
    text = read_text(text_path, &text_len);
    if (!text) {
        fprintf(stderr, "hmt-datastore: cannot read '%s'\n", text_path);
        goto done;
    }
    /* count, then tokenize; the text is freed before the model runs, so the
     * corpus is held once (as tokens) during the build */
    rc = hmt_tokenize(model, text, text_len, HMT_TOKENIZE_ADD_BOS, NULL, 0, &n_tok);
    if (rc && rc != HMT_E_BUFFER) {
        status = die("tokenizing", rc);
        goto done;
    }
    toks = malloc((n_tok + 1) * sizeof *toks);
    if (!toks) {
        fprintf(stderr, "hmt-datastore: out of memory\n");
        goto done;
    }
    if ((rc = hmt_tokenize(model, text, text_len, HMT_TOKENIZE_ADD_BOS, toks, n_tok + 1,
                           &n_tok))) {
        status = die("tokenizing", rc);
        goto done;
    }
    free(text);
    text = NULL;
    if (n_tok < 2) {
        fprintf(stderr, "hmt-datastore: the text has fewer than 2 tokens\n");
        goto done;
    }
    if (!quiet)
        fprintf(stderr, "hmt-datastore: %zu tokens from %s (%zu bytes)\n", n_tok, text_path,
                text_len);
    if ((rc = hmt_knn_builder_create(&builder, model, out_path, bp))) {
        status = die("creating the datastore", rc);
        goto done;
    }
    double t0 = progress_now();
    progress pr;
    progress_start(&pr, quiet, "hmt-datastore");
    if (adapter_path) {
        if ((rc = hmt_adapter_load(&adapter, model,
                                   strcmp(adapter_path, "-") ? adapter_path : NULL)) ||
            (rc = hmt_stream_create(&stream, model, adapter, rp))) {
            status = die("setting up HMT", rc);
            goto done;
        }
        rc = hmt_knn_builder_add_stream(builder, stream, toks, n_tok, on_progress, &pr);
    } else {
        int64_t c = n_ctx > 0 ? (int64_t)n_ctx : hmt_model_n_ctx_train(model);
        if (n_ctx <= 0 && c > 2048) c = 2048;
        if ((rc = hmt_params_set_int(rp, HMT_P_N_CTX, c)) ||
            (rc = hmt_ctx_create(&ctx, model, rp))) {
            status = die("creating the context", rc);
            goto done;
        }
        rc = hmt_knn_builder_add_ctx(builder, ctx, toks, n_tok, on_progress, &pr);
    }
    progress_end(&pr);
    if (rc) {
        status = die("building", rc);
        goto done;
    }
    if ((rc = hmt_knn_builder_finish(builder))) {
        status = die("writing the datastore", rc);
        goto done;
    }
    double dt = progress_now() - t0;
    int64_t count = hmt_knn_builder_count(builder);
    fprintf(stderr, "hmt-datastore: wrote %s: %lld keys of %d %s (%.1f bytes/key on disk) in %.2f s\n",
            out_path, (long long)count, hmt_model_n_embd(model), f16 ? "F16" : "F32",
            hmt_model_n_embd(model) * (f16 ? 2.0 : 4.0) + 4.0, dt);
    status = faiss ? build_index(model, out_path, tp, fp, quiet) : 0;
done:
    hmt_knn_builder_free(builder);
    hmt_stream_free(stream);
    hmt_adapter_free(adapter);
    hmt_ctx_free(ctx);
    hmt_model_free(model);
    hmt_params_free(tp);
    hmt_params_free(rp);
    hmt_params_free(bp);
    hmt_params_free(fp);
    free(toks);
    free(text);
    return status;
}
