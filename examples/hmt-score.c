/* hmt-score: the perplexity of a text read through HMT, and what each
 * segment recalled. The text is fed to an HMT stream (segments, memory
 * passing, recall over the cached memories); every token made ready comes
 * with the logits that predicted it, and a recall callback shows, per
 * segment, which earlier segment's memory weighed most.
 *
 *     build/examples/hmt-score MODEL ADAPTER TEXT_FILE
 *
 * ADAPTER is an HMT adapter GGUF (models/brown-hmt.gguf for
 * models/brown-f16.gguf), or "-" for the one stored in the model file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hmt/hmt.h>

static int fail(const char *what, int rc) {
    fprintf(stderr, "hmt-score: %s: %s (%s)\n", what, hmt_last_error_msg(), hmt_strerror(rc));
    return 1;
}

/* Called once per segment, on the thread running feed/flush. */
static void on_recall(void *user, int64_t segment, const float *w, const int64_t *from, int32_t n) {
    (void)user;
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (w[i] > w[best]) best = i;
    if (n > 0)
        printf("segment %3lld recalls %2d memories; the heaviest is segment %lld's (%.2f)\n",
               (long long)segment, (int)n, (long long)from[best], w[best]);
}

/* -log p(next | logits), in double. */
static double nll(const float *z, int32_t n_vocab, hmt_token next) {
    double mx = z[0], s = 0;
    for (int32_t v = 1; v < n_vocab; v++) mx = z[v] > mx ? z[v] : mx;
    for (int32_t v = 0; v < n_vocab; v++) s += exp((double)z[v] - mx);
    return mx + log(s) - (double)z[next];
}

/* The file's first MiB (an example: a host would stream a long text). */
static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = f ? malloc(1 << 20) : NULL;
    *len = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    if (f) fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: hmt-score MODEL ADAPTER TEXT_FILE\n");
        return 2;
    }
    hmt_model *model = NULL;
    hmt_adapter *adapter = NULL;
    hmt_stream *stream = NULL;
    hmt_token *toks = NULL;
    size_t len = 0, n = 0;
    int rc, status = 1;
    char *text = read_text(argv[3], &len);
    if (!text) {
        fprintf(stderr, "hmt-score: cannot read %s\n", argv[3]);
        return 1;
    }
    if ((rc = hmt_model_load(&model, argv[1], NULL))) {
        status = fail("loading the model", rc);
        goto out;
    }
    if ((rc = hmt_adapter_load(&adapter, model, strcmp(argv[2], "-") ? argv[2] : NULL))) {
        status = fail("loading the adapter", rc);
        goto out;
    }
    toks = malloc((len + 2) * sizeof *toks); /* at most one token per byte, plus BOS */
    if (!toks || (rc = hmt_tokenize(model, text, len, HMT_TOKENIZE_ADD_BOS, toks, len + 2, &n))) {
        status = fail("tokenizing", toks ? rc : HMT_E_NOMEM);
        goto out;
    }
    /* NULL params: HMT_MODE_FULL with the adapter's own segment length, cache size... */
    if ((rc = hmt_stream_create(&stream, model, adapter, NULL)) ||
        (rc = hmt_stream_set_recall_callback(stream, on_recall, NULL))) {
        status = fail("creating the stream", rc);
        goto out;
    }
    const int32_t n_vocab = hmt_model_n_vocab(model);
    double total = 0;
    int64_t scored = 0, next = 0; /* next: the first index not yet scored */
    for (size_t i = 0; i <= n; i += 64) {
        /* feed 64 tokens at a time (as they would arrive), flush at the end */
        rc = i < n ? hmt_stream_feed(stream, toks + i, n - i < 64 ? n - i : 64) : hmt_stream_flush(stream);
        if (rc) {
            status = fail("feeding", rc);
            goto out;
        }
        int64_t first, end;
        hmt_stream_ready_range(stream, &first, &end);
        for (int64_t t = first > next ? first : next; t < end; t++)
            if (t + 1 < (int64_t)n) { /* the logits of token t predict token t + 1 */
                total += nll(hmt_stream_logits(stream, t), n_vocab, toks[t + 1]);
                scored++;
            }
        if (end > next) next = end;
    }
    printf("%lld tokens in %lld segments: perplexity %.4f\n", (long long)scored,
           (long long)hmt_stream_n_segments(stream), exp(total / (double)(scored ? scored : 1)));
    status = 0;
out:
    hmt_stream_free(stream);
    hmt_adapter_free(adapter);
    hmt_model_free(model);
    free(toks);
    free(text);
    return status;
}
