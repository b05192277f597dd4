/* snapshot: save an HMT stream in the middle of a text, go on, then return
 * to the saved point and go on again: the second continuation gives the
 * same logits bit for bit. Also through a file, into a second stream (a
 * host resuming a document in another process would do this).
 *
 *     build/examples/snapshot MODEL ADAPTER [SNAPSHOT_FILE]
 *
 * ADAPTER: an HMT adapter GGUF, or "-" for the one stored in the model file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hmt/hmt.h>

static int fail(const char *what, int rc) {
    fprintf(stderr, "snapshot: %s: %s (%s)\n", what, hmt_last_error_msg(), hmt_strerror(rc));
    return 1;
}

/* Feed the tokens, make them all ready, and copy the logits of the last one. */
static int continue_text(hmt_stream *s, const hmt_token *t, size_t n, float *out, int32_t n_vocab) {
    int rc = hmt_stream_feed(s, t, n);
    if (!rc) rc = hmt_stream_flush(s);
    if (rc) return rc;
    memcpy(out, hmt_stream_logits(s, hmt_stream_n_ready(s) - 1), (size_t)n_vocab * sizeof *out);
    return HMT_OK;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: snapshot MODEL ADAPTER [SNAPSHOT_FILE]\n");
        return 2;
    }
    const char *path = argc > 3 ? argv[3] : "snapshot.hmts";
    const char *text = "The jury further said in term-end presentments that the City Executive "
                       "Committee, which had over-all charge of the election, deserves the praise "
                       "and thanks of the City of Atlanta for the manner in which it was conducted.";
    hmt_model *model = NULL;
    hmt_adapter *adapter = NULL;
    hmt_stream *s = NULL, *s2 = NULL;
    void *snap = NULL;
    float *first = NULL, *again = NULL;
    hmt_token toks[256];
    size_t n = 0, size = 0;
    int rc, status = 1;

    if ((rc = hmt_model_load(&model, argv[1], NULL))) return fail("loading the model", rc);
    const int32_t n_vocab = hmt_model_n_vocab(model);
    first = malloc((size_t)n_vocab * sizeof *first);
    again = malloc((size_t)n_vocab * sizeof *again);
    if (!first || !again) goto out;
    if ((rc = hmt_adapter_load(&adapter, model, strcmp(argv[2], "-") ? argv[2] : NULL)) ||
        (rc = hmt_tokenize(model, text, strlen(text), HMT_TOKENIZE_ADD_BOS, toks, 256, &n)) ||
        (rc = hmt_stream_create(&s, model, adapter, NULL))) {
        status = fail("setting up", rc);
        goto out;
    }
    const size_t half = n / 2;
    if ((rc = hmt_stream_feed(s, toks, half))) {
        status = fail("feeding the first half", rc);
        goto out;
    }
    /* snprintf-style: ask for the size, then save into a buffer that large */
    if ((rc = hmt_stream_save(s, NULL, 0, &size)) != HMT_E_BUFFER || !(snap = malloc(size)) ||
        (rc = hmt_stream_save(s, snap, size, &size)) || (rc = hmt_stream_save_file(s, path))) {
        status = fail("saving", rc);
        goto out;
    }
    printf("%zu of %zu tokens fed; snapshot of %zu bytes (also in %s)\n", half, n, size, path);

    /* go on to the end, then back to the snapshot and to the end again */
    if ((rc = continue_text(s, toks + half, n - half, first, n_vocab)) ||
        (rc = hmt_stream_restore(s, snap, size)) ||
        (rc = continue_text(s, toks + half, n - half, again, n_vocab))) {
        status = fail("continuing", rc);
        goto out;
    }
    const int same_buffer = !memcmp(first, again, (size_t)n_vocab * sizeof *first);
    printf("after restoring the buffer: %s\n", same_buffer ? "the same logits" : "DIFFERENT");

    /* a second stream of the same model, adapter and settings, from the file */
    if ((rc = hmt_stream_create(&s2, model, adapter, NULL)) || (rc = hmt_stream_restore_file(s2, path)) ||
        (rc = continue_text(s2, toks + half, n - half, again, n_vocab))) {
        status = fail("restoring the file", rc);
        goto out;
    }
    const int same_file = !memcmp(first, again, (size_t)n_vocab * sizeof *first);
    printf("a second stream from the file: %s\n", same_file ? "the same logits" : "DIFFERENT");
    status = !(same_buffer && same_file);
out:
    hmt_stream_free(s2);
    hmt_stream_free(s);
    hmt_adapter_free(adapter);
    hmt_model_free(model);
    free(snap);
    free(first);
    free(again);
    return status;
}
