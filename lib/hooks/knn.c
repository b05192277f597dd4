/* kNN-LM datastore files: the builder (streams keys to a unique temporary
 * next to the target, then values, content checksum and header, then renames
 * it into place: lib/io/atomic_file.c) and the loader (mmap, complete validation
 * before use, key norms). Format: lib/hooks/knn.h and docs/KNN.md. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backbone/model.h"
#include "core/abort.h"
#include "core/alloc.h"
#include "core/busy.h"
#include "core/fnv.h"
#include "core/params.h"
#include "hooks/knn.h"
#include "hooks/knn_faiss.h"
#include "io/atomic_file.h"
#include "io/file_open.h"
#include "io/le_bytes.h"
#include "stream/stream.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the datastore format is little-endian; add byte swapping for this host"
#endif

#define CHUNK_TOKENS 512 /* tokens per stream feed in hmt_knn_builder_add_stream */

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* ==== builder ============================================================== */
struct hmt_knn_builder {
    hmti_afile out; /* the temporary; out.f NULL once committed or given up */
    int32_t dim, n_vocab;
    hmt_knn_dtype dtype;
    uint64_t fingerprint;
    int64_t count;
    int32_t *values;
    size_t values_cap;
    uint16_t *f16_buf; /* one key converted, F16 builds */
    float *key_buf;    /* one key, for add_stream/ctx copies */
    int finished, failed;
    hmti_guard guard; /* last: see busy.h */
    hmt_abort_fn abort_fn; /* polled between the layers of add_ctx/add_stream */
    void *abort_data;
};

HMT_API int hmt_knn_builder_create(hmt_knn_builder **out, const hmt_model *model,
                                   const char *path, const hmt_params *params) {
    if (out) *out = NULL;
    if (!out || !model || !path) return hmti_errf(HMT_E_INVAL, "knn builder: NULL argument");
    if (hmti_guard_check(&model->guard, HMTI_MAGIC_MODEL, "hmt_knn_builder_create"))
        return HMT_E_MISUSE;
    static const hmt_param keys[] = {HMT_P_KNN_KEY_F16};
    int rc = hmti_params_only(params, keys, HMTI_NKEYS(keys), "hmt_knn_builder_create");
    if (rc) return rc;
    hmt_knn_builder *b = hmti_calloc(1, sizeof *b);
    if (!b) return hmti_errf(HMT_E_NOMEM, "knn builder: out of memory");
    hmti_guard_init(&b->guard, HMTI_MAGIC_BUILDER);
    b->dim = model->n_embd;
    b->n_vocab = model->n_vocab;
    b->dtype = hmti_param_value(params, HMT_P_KNN_KEY_F16) != 0 ? HMT_KNN_F16 : HMT_KNN_F32;
    b->fingerprint = model->fingerprint;
    b->f16_buf = hmti_malloc((size_t)b->dim * sizeof *b->f16_buf);
    b->key_buf = hmti_malloc((size_t)b->dim * sizeof *b->key_buf);
    if (!b->f16_buf || !b->key_buf) {
        hmt_knn_builder_free(b);
        return hmti_errf(HMT_E_NOMEM, "knn builder: out of memory");
    }
    rc = hmti_afile_begin(&b->out, path, "knn builder");
    if (rc) {
        hmt_knn_builder_free(b);
        return rc;
    }
    /* header placeholder up to the keys section */
    static const uint8_t zero[HMTI_KNN_ALIGN];
    uint64_t koff = align_up(HMTI_KNN_HEADER_SIZE, HMTI_KNN_ALIGN);
    for (uint64_t w = 0; w < koff; w += sizeof zero)
        hmti_afile_write(&b->out, zero, koff - w < sizeof zero ? (size_t)(koff - w) : sizeof zero);
    if (b->out.err) {
        rc = hmti_afile_commit(&b->out); /* reports the error, removes the temporary */
        hmt_knn_builder_free(b);
        return rc;
    }
    *out = b;
    return HMT_OK;
}

HMT_API void hmt_knn_builder_free(hmt_knn_builder *b) {
    if (!b || hmti_retire(&b->guard, HMTI_MAGIC_BUILDER, "hmt_knn_builder_free")) return;
    if (b->out.f) hmti_afile_abort(&b->out);
    free(b->values);
    free(b->f16_buf);
    free(b->key_buf);
    free(b);
}

HMT_API int64_t hmt_knn_builder_count(const hmt_knn_builder *b) { return b ? b->count : 0; }

HMT_API int hmt_knn_builder_set_abort_callback(hmt_knn_builder *b, hmt_abort_fn fn,
                                               void *user_data) {
    if (!b) return hmti_errf(HMT_E_INVAL, "hmt_knn_builder_set_abort_callback: builder is NULL");
    b->abort_fn = fn;
    b->abort_data = user_data;
    return HMT_OK;
}

static int builder_usable(const hmt_knn_builder *b) {
    if (b->finished) return hmti_errf(HMT_E_MISUSE, "knn builder: already finished");
    if (b->failed)
        return hmti_errf(HMT_E_MISUSE, "knn builder: a write failed earlier; the build is lost");
    return HMT_OK;
}

static int builder_add(hmt_knn_builder *b, const float *keys, const hmt_token *values,
                       size_t n) {
    if (!b || (n > 0 && (!keys || !values)))
        return hmti_errf(HMT_E_INVAL, "knn builder add: NULL argument");
    int rc = builder_usable(b);
    if (rc) return rc;
    if (n == 0) return HMT_OK;
    const size_t d = (size_t)b->dim;
    for (size_t i = 0; i < n; i++) {
        if (values[i] < 0 || values[i] >= b->n_vocab)
            return hmti_errf(HMT_E_TOKEN, "knn builder add: value %" PRId32 " of pair %zu is "
                             "outside [0, %" PRId32 ")", values[i], i, b->n_vocab);
        for (size_t j = 0; j < d; j++)
            if (!isfinite(keys[i * d + j]))
                return hmti_errf(HMT_E_INVAL, "knn builder add: key %zu is not finite", i);
    }
    if ((size_t)b->count + n > b->values_cap) {
        size_t cap = b->values_cap ? b->values_cap : 4096;
        while (cap < (size_t)b->count + n) cap *= 2;
        int32_t *v = hmti_realloc(b->values, cap * sizeof *v);
        if (!v) return hmti_errf(HMT_E_NOMEM, "knn builder add: out of memory");
        b->values = v;
        b->values_cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        const float *k = keys + i * d;
        int wrote;
        if (b->dtype == HMT_KNN_F16) {
            for (size_t j = 0; j < d; j++) b->f16_buf[j] = hmti_f32_to_f16(k[j]);
            wrote = hmti_afile_write(&b->out, b->f16_buf, d * sizeof(uint16_t));
        } else {
            wrote = hmti_afile_write(&b->out, k, d * sizeof(float));
        }
        if (wrote != 0) {
            b->failed = 1;
            char eb[128];
            int r = hmti_errf(HMT_E_IO, "knn builder add: cannot write '%s': %s", b->out.path,
                              strerror_r(b->out.err, eb, sizeof eb));
            hmti_afile_abort(&b->out); /* the build is lost: no temporary left behind */
            return r;
        }
        b->values[b->count++] = values[i];
    }
    return HMT_OK;
}

static int builder_add_ctx(hmt_knn_builder *b, hmt_ctx *ctx, const hmt_token *tokens,
                           size_t n, hmt_knn_progress_fn progress, void *user_data) {
    if (!b || !ctx || (n > 0 && !tokens))
        return hmti_errf(HMT_E_INVAL, "knn builder add_ctx: NULL argument");
    int rc = builder_usable(b);
    if (rc) return rc;
    const hmt_model *m = hmt_ctx_model(ctx);
    if (hmt_model_n_embd(m) != b->dim || m->fingerprint != b->fingerprint)
        return hmti_errf(HMT_E_INVAL, "knn builder add_ctx: the context runs another model than "
                         "the one the builder was created for");
    double nb;
    rc = hmt_ctx_get(ctx, HMT_P_N_BATCH, &nb);
    if (rc) return rc;
    const size_t window = (size_t)hmt_ctx_n_ctx(ctx);
    size_t batch = nb >= 1 ? (size_t)nb : 512;
    if (batch > window) batch = window;
    uint8_t *outs = hmti_malloc(batch);
    if (!outs) return hmti_errf(HMT_E_NOMEM, "knn builder add_ctx: out of memory");
    memset(outs, HMT_OUT_FFN_INPUT, batch);
    hmti_ctx_set_extra_abort(ctx, b->abort_fn, b->abort_data); /* removed below */
    for (size_t w0 = 0; w0 + 1 < n && !rc; w0 += window) {
        rc = hmt_ctx_kv_clear(ctx);
        size_t wend = w0 + window < n ? w0 + window : n;
        for (size_t c0 = w0; c0 < wend && !rc; c0 += batch) {
            size_t cn = wend - c0 < batch ? wend - c0 : batch;
            rc = hmt_ctx_eval(ctx, tokens + c0, NULL, cn, NULL, outs);
            for (size_t i = 0; i < cn && !rc; i++) {
                if (c0 + i + 1 >= n) break; /* the last token has no next token */
                const float *key = hmt_ctx_ffn_input(ctx, (int32_t)i);
                if (!key) {
                    rc = hmti_errf(HMT_E_INTERNAL, "knn builder add_ctx: no FFN input");
                    break;
                }
                rc = builder_add(b, key, &tokens[c0 + i + 1], 1);
            }
            if (!rc && progress && progress(user_data, (int64_t)(c0 + cn), (int64_t)n))
                rc = hmti_errf(HMT_E_ABORTED, "knn builder add_ctx: stopped by the progress "
                               "callback");
        }
    }
    hmti_ctx_set_extra_abort(ctx, NULL, NULL);
    free(outs);
    return rc;
}

/* Add the pairs of the indices made ready since *done (a no-op flush leaves
 * the previous range in place: the watermark keeps it from being added twice). */
static int stream_collect(hmt_knn_builder *b, hmt_stream *s, const hmt_token *tokens, size_t n,
                          int64_t base, int64_t *done) {
    int64_t first, end;
    hmt_stream_ready_range(s, &first, &end);
    if (first < *done) first = *done;
    if (end > *done) *done = end;
    for (int64_t i = first; i < end; i++) {
        int64_t nxt = i + 1 - base; /* index of the next token in tokens */
        if (nxt < 0 || nxt >= (int64_t)n) continue;
        const float *key = hmt_stream_ffn_input(s, i);
        if (!key)
            return hmti_errf(HMT_E_INTERNAL, "knn builder add_stream: no FFN input for %" PRId64,
                             i);
        int rc = builder_add(b, key, &tokens[nxt], 1);
        if (rc) return rc;
    }
    return HMT_OK;
}

static int builder_add_stream(hmt_knn_builder *b, hmt_stream *s, const hmt_token *tokens,
                              size_t n, hmt_knn_progress_fn progress, void *user_data) {
    if (!b || !s || (n > 0 && !tokens))
        return hmti_errf(HMT_E_INVAL, "knn builder add_stream: NULL argument");
    int rc = builder_usable(b);
    if (rc) return rc;
    if (s->model->n_embd != b->dim || s->model->fingerprint != b->fingerprint)
        return hmti_errf(HMT_E_INVAL, "knn builder add_stream: the stream runs another model "
                         "than the one the builder was created for");
    /* every position's FFN input is needed: set for this call only, the
     * caller's settings restored below */
    const int keep_ffn = s->keep_ffn, all_logits = s->all_logits;
    rc = hmt_stream_set_int(s, HMT_P_KEEP_FFN_INPUT, 1);
    if (!rc) rc = hmt_stream_set_int(s, HMT_P_ALL_LOGITS, 1);
    if (rc) return rc;
    const int64_t base = hmt_stream_n_fed(s);
    int64_t done = hmt_stream_n_ready(s);
    hmti_stream_set_extra_abort(s, b->abort_fn, b->abort_data); /* removed below */
    for (size_t c0 = 0; c0 < n && !rc; c0 += CHUNK_TOKENS) {
        size_t cn = n - c0 < CHUNK_TOKENS ? n - c0 : CHUNK_TOKENS;
        rc = hmt_stream_feed(s, tokens + c0, cn);
        if (!rc) rc = stream_collect(b, s, tokens, n, base, &done);
        if (!rc && progress && progress(user_data, (int64_t)(c0 + cn), (int64_t)n))
            rc = hmti_errf(HMT_E_ABORTED, "knn builder add_stream: stopped by the progress "
                           "callback");
    }
    if (!rc) rc = hmt_stream_flush(s);
    if (!rc) rc = stream_collect(b, s, tokens, n, base, &done);
    hmti_stream_set_extra_abort(s, NULL, NULL);
    s->keep_ffn = keep_ffn;
    s->all_logits = all_logits;
    return rc;
}

/* The content checksum, read back from the temporary once flushed (the keys
 * were streamed out as they came). A write error is left for commit to report. */
static int content_sum(hmt_knn_builder *b, uint64_t koff, uint64_t fsize, uint8_t *dst) {
    if (hmti_afile_flush(&b->out)) return HMT_OK;
    void *map = mmap(NULL, (size_t)fsize, PROT_READ, MAP_SHARED, fileno(b->out.f), 0);
    if (map == MAP_FAILED) {
        char eb[128];
        return hmti_errf(HMT_E_IO, "knn builder finish: cannot map '%s' back: %s", b->out.tmp,
                         strerror_r(errno, eb, sizeof eb));
    }
    uint64_t sum;
    int rc = hmti_knn_content_sum(NULL, (const uint8_t *)map + koff, fsize - koff, &sum);
    munmap(map, (size_t)fsize);
    if (!rc) put64(dst, sum);
    return rc;
}

static int builder_finish(hmt_knn_builder *b) {
    if (!b) return hmti_errf(HMT_E_INVAL, "knn builder finish: NULL builder");
    int rc = builder_usable(b);
    if (rc) return rc;
    if (b->count == 0) return hmti_errf(HMT_E_MISUSE, "knn builder finish: no pair was added");
    const uint64_t esz = b->dtype == HMT_KNN_F16 ? 2 : 4;
    const uint64_t koff = align_up(HMTI_KNN_HEADER_SIZE, HMTI_KNN_ALIGN);
    const uint64_t kend = koff + (uint64_t)b->count * (uint64_t)b->dim * esz;
    const uint64_t voff = align_up(kend, HMTI_KNN_ALIGN);
    const uint64_t fsize = voff + (uint64_t)b->count * 4;
    static const uint8_t zero[HMTI_KNN_ALIGN];
    uint8_t h[HMTI_KNN_HEADER_SIZE] = {0};
    memcpy(h + HMTI_KNN_OFF_MAGIC, HMTI_KNN_MAGIC, 8);
    put32(h + HMTI_KNN_OFF_VERSION, HMTI_KNN_VERSION);
    put32(h + HMTI_KNN_OFF_HSIZE, HMTI_KNN_HEADER_SIZE);
    put32(h + HMTI_KNN_OFF_DIM, (uint32_t)b->dim);
    put32(h + HMTI_KNN_OFF_KEY_DTYPE, (uint32_t)b->dtype);
    put32(h + HMTI_KNN_OFF_VAL_DTYPE, 0);
    put32(h + HMTI_KNN_OFF_ALIGN, HMTI_KNN_ALIGN);
    put64(h + HMTI_KNN_OFF_COUNT, (uint64_t)b->count);
    put64(h + HMTI_KNN_OFF_KEYS, koff);
    put64(h + HMTI_KNN_OFF_VALUES, voff);
    put64(h + HMTI_KNN_OFF_FSIZE, fsize);
    put64(h + HMTI_KNN_OFF_MODEL_FP, b->fingerprint);
    put32(h + HMTI_KNN_OFF_N_VOCAB, (uint32_t)b->n_vocab);
    put32(h + HMTI_KNN_OFF_KEY_KIND, 0);
    hmti_afile_write(&b->out, zero, (size_t)(voff - kend));
    hmti_afile_write(&b->out, b->values, (size_t)b->count * 4);
    rc = content_sum(b, koff, fsize, h + HMTI_KNN_OFF_CONTENT);
    if (rc) {
        b->failed = 1;
        hmti_afile_abort(&b->out);
        return rc;
    }
    put64(h + HMTI_KNN_OFF_CHECKSUM, hmti_fnv1a(HMTI_FNV_INIT, h, HMTI_KNN_CHECKED_BYTES));
    hmti_afile_write_at(&b->out, 0, h, sizeof h);
    rc = hmti_afile_commit(&b->out);
    if (rc) {
        b->failed = 1;
        return rc;
    }
    b->finished = 1;
    return HMT_OK;
}

/* ---- public builder entry points: the handle guard (busy.h) around each
 * call; a progress callback re-entering its builder gets HMT_E_MISUSE ---- */
#define GUARDED(fn, call) HMTI_GUARDED(b, HMTI_MAGIC_BUILDER, fn, call)

HMT_API int hmt_knn_builder_add(hmt_knn_builder *b, const float *keys, const hmt_token *values,
                                size_t n) {
    GUARDED("hmt_knn_builder_add", builder_add(b, keys, values, n));
}
HMT_API int hmt_knn_builder_add_ctx(hmt_knn_builder *b, hmt_ctx *ctx, const hmt_token *tokens,
                                    size_t n, hmt_knn_progress_fn progress, void *user_data) {
    GUARDED("hmt_knn_builder_add_ctx", builder_add_ctx(b, ctx, tokens, n, progress, user_data));
}
HMT_API int hmt_knn_builder_add_stream(hmt_knn_builder *b, hmt_stream *s,
                                       const hmt_token *tokens, size_t n,
                                       hmt_knn_progress_fn progress, void *user_data) {
    GUARDED("hmt_knn_builder_add_stream",
            builder_add_stream(b, s, tokens, n, progress, user_data));
}
HMT_API int hmt_knn_builder_finish(hmt_knn_builder *b) {
    GUARDED("hmt_knn_builder_finish", builder_finish(b));
}
#undef GUARDED

/* ==== loader =============================================================== */
void hmti_knn_key(const hmt_knn *knn, int64_t i, float *out) {
    const size_t d = (size_t)knn->dim;
    if (knn->dtype == HMT_KNN_F16)
        hmti_row_to_f32((const uint16_t *)knn->keys_raw + (size_t)i * d, 1, out, (int64_t)d);
    else
        memcpy(out, (const float *)knn->keys_raw + (size_t)i * d, d * sizeof(float));
}

typedef struct {
    hmt_knn *knn;
    float **scratch;
    _Atomic int64_t bad; /* first key found non-finite + 1, or 0 */
} norm_job;

static void norms_share(void *arg, int ith, int nth) {
    norm_job *j = arg;
    hmt_knn *knn = j->knn;
    int64_t lo, hi;
    hmti_split_range(knn->count, ith, nth, 64, &lo, &hi);
    float *buf = j->scratch[ith];
    for (int64_t i = lo; i < hi; i++) {
        hmti_knn_key(knn, i, buf);
        double s = 0;
        for (int32_t c = 0; c < knn->dim; c++) s += (double)buf[c] * buf[c];
        if (!isfinite(s) || s > 1e30) {
            int64_t expect = 0;
            atomic_compare_exchange_strong(&j->bad, &expect, i + 1);
            s = 0;
        }
        knn->norms[i] = (float)s;
    }
}

static int load_fail(hmt_knn *knn, int code) {
    hmt_knn_free(knn);
    return code;
}

HMT_API int hmt_knn_load(hmt_knn **out, const hmt_model *model, const char *path,
                         const hmt_params *params) {
    if (out) *out = NULL;
    if (!out || !model || !path) return hmti_errf(HMT_E_INVAL, "knn load: NULL argument");
    if (hmti_guard_check(&model->guard, HMTI_MAGIC_MODEL, "hmt_knn_load")) return HMT_E_MISUSE;
    static const hmt_param keys[] = {HMT_P_N_THREADS};
    int prc = hmti_params_only(params, keys, HMTI_NKEYS(keys), "hmt_knn_load");
    if (prc) return prc;
    hmt_knn *knn = hmti_calloc(1, sizeof *knn);
    if (!knn) return hmti_errf(HMT_E_NOMEM, "knn load: out of memory");
    hmti_guard_init(&knn->guard, HMTI_MAGIC_KNN);
    atomic_init(&knn->refs, 1);
    int fd;
    uint64_t fsize;
    int rc = hmti_open_regular(path, "knn load", &fd, &fsize);
    if (rc) return load_fail(knn, rc);
    if (fsize < HMTI_KNN_HEADER_SIZE) {
        close(fd);
        return load_fail(knn, hmti_errf(HMT_E_FORMAT, "knn load: '%s': truncated header (%" PRIu64
                                        " bytes)", path, fsize));
    }
    void *map = mmap(NULL, (size_t)fsize, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return load_fail(knn, hmti_errf(HMT_E_IO, "knn load: cannot map '%s': %s", path,
                                        strerror(e)));
    knn->map = map;
    knn->map_len = (size_t)fsize;
    const uint8_t *h = map;
#define BAD(...) return load_fail(knn, hmti_errf(HMT_E_FORMAT, "knn load: '%s': " __VA_ARGS__))
    if (memcmp(h, HMTI_KNN_MAGIC, 8) != 0) BAD("bad magic (not a libhmt datastore)", path);
    uint32_t version = get32(h + HMTI_KNN_OFF_VERSION);
    if (version > HMTI_KNN_VERSION)
        return load_fail(knn, hmti_errf(HMT_E_UNSUPPORTED, "knn load: '%s': version %" PRIu32
                                        " is newer than this library's (%u)", path, version,
                                        HMTI_KNN_VERSION));
    if (version == 0) BAD("version 0", path);
    if (version < HMTI_KNN_VERSION)
        return load_fail(knn, hmti_errf(HMT_E_UNSUPPORTED, "knn load: '%s': version %" PRIu32
                                        " datastore, whose keys and values no checksum covers; "
                                        "rebuild it (hmt-datastore)", path, version));
    if (get64(h + HMTI_KNN_OFF_CHECKSUM) != hmti_fnv1a(HMTI_FNV_INIT, h, HMTI_KNN_CHECKED_BYTES))
        BAD("header checksum mismatch (corrupt header)", path);
    uint32_t hsize = get32(h + HMTI_KNN_OFF_HSIZE), dim = get32(h + HMTI_KNN_OFF_DIM);
    uint32_t kdt = get32(h + HMTI_KNN_OFF_KEY_DTYPE), vdt = get32(h + HMTI_KNN_OFF_VAL_DTYPE);
    uint32_t al = get32(h + HMTI_KNN_OFF_ALIGN);
    uint64_t count = get64(h + HMTI_KNN_OFF_COUNT), koff = get64(h + HMTI_KNN_OFF_KEYS);
    uint64_t voff = get64(h + HMTI_KNN_OFF_VALUES), hfsize = get64(h + HMTI_KNN_OFF_FSIZE);
    uint64_t fp = get64(h + HMTI_KNN_OFF_MODEL_FP);
    int32_t nv = (int32_t)get32(h + HMTI_KNN_OFF_N_VOCAB);
    if (hsize != HMTI_KNN_HEADER_SIZE) BAD("header size %" PRIu32 " (expected %u)", path, hsize,
                                          HMTI_KNN_HEADER_SIZE);
    if (kdt > HMT_KNN_F16) BAD("key dtype %" PRIu32 " unknown", path, kdt);
    if (vdt != 0) BAD("value dtype %" PRIu32 " unknown (only int32)", path, vdt);
    if (al == 0 || (al & (al - 1)) || al > 1u << 20) BAD("alignment %" PRIu32, path, al);
    if (dim == 0 || dim > 1u << 20) BAD("key width %" PRIu32, path, dim);
    if (count == 0 || count > (uint64_t)INT64_MAX / 8) BAD("count %" PRIu64, path, count);
    if (hfsize != fsize)
        BAD("file size %" PRIu64 " differs from the header's %" PRIu64 " (truncated?)", path,
            fsize, hfsize);
    const uint64_t esz = kdt == HMT_KNN_F16 ? 2 : 4;
    if (count > UINT64_MAX / dim / esz) BAD("keys size overflows", path);
    const uint64_t kbytes = count * dim * esz, vbytes = count * 4;
    if (koff < hsize || koff % al || koff > fsize || kbytes > fsize - koff)
        BAD("keys section [%" PRIu64 ", +%" PRIu64 ") outside the file", path, koff, kbytes);
    if (voff < koff + kbytes || voff % al || voff > fsize || vbytes > fsize - voff)
        BAD("values section [%" PRIu64 ", +%" PRIu64 ") outside the file or overlapping the keys",
            path, voff, vbytes);
    if ((uint32_t)model->n_embd != dim || model->n_vocab != nv ||
        fp != model->fingerprint)
        return load_fail(knn, hmti_errf(HMT_E_INVAL, "knn load: '%s' was built for another model "
                                        "(fingerprint %016" PRIx64 ", width %" PRIu32 ", vocab %"
                                        PRId32 "; this model: width %" PRId32 ", vocab %" PRId32
                                        ")", path, fp, dim, nv, model->n_embd, model->n_vocab));
    knn->keys_raw = h + koff;
    knn->values = (const int32_t *)(const void *)(h + voff);
    knn->count = (int64_t)count;
    knn->dim = (int32_t)dim;
    knn->n_vocab = nv;
    knn->dtype = (hmt_knn_dtype)kdt;
    /* threads; the content checksum before anything reads keys or values */
    rc = hmti_pool_for_threads(&knn->pool, (int64_t)hmti_param_value(params, HMT_P_N_THREADS));
    if (rc) return load_fail(knn, rc);
    knn->n_threads = hmti_pool_n_threads(knn->pool);
    uint64_t sum;
    if ((rc = hmti_pool_acquire(knn->pool, "knn load"))) return load_fail(knn, rc);
    rc = hmti_knn_content_sum(knn->pool, h + koff, fsize - koff, &sum);
    hmti_pool_unlock(knn->pool);
    if (rc) return load_fail(knn, rc);
    if (sum != get64(h + HMTI_KNN_OFF_CONTENT))
        BAD("content checksum mismatch (keys or values corrupt, or from another build)", path);
    for (uint64_t i = 0; i < count; i++)
        if (knn->values[i] < 0 || knn->values[i] >= nv)
            BAD("value %" PRId32 " of pair %" PRIu64 " outside [0, %" PRId32 ")", path,
                knn->values[i], i, nv);
    /* norms (which also check that every key is finite) */
    knn->norms = hmti_malloc((size_t)count * sizeof *knn->norms);
    if (!knn->norms) return load_fail(knn, hmti_errf(HMT_E_NOMEM, "knn load: out of memory"));
    norm_job job = {.knn = knn};
    job.scratch = hmti_calloc((size_t)knn->n_threads, sizeof *job.scratch);
    int ok = job.scratch != NULL;
    for (int t = 0; ok && t < knn->n_threads; t++)
        ok = (job.scratch[t] = hmti_malloc(dim * sizeof(float))) != NULL;
    if (ok && (rc = hmti_pool_acquire(knn->pool, "knn load"))) ok = 0;
    if (ok) {
        hmti_pool_run(knn->pool, norms_share, &job);
        hmti_pool_unlock(knn->pool);
    }
    for (int t = 0; job.scratch && t < knn->n_threads; t++) free(job.scratch[t]);
    free(job.scratch);
    if (!ok) return load_fail(knn, hmti_errf(HMT_E_NOMEM, "knn load: out of memory"));
    if (job.bad) BAD("key %" PRId64 " is not finite (or too large)", path, (int64_t)job.bad - 1);
#undef BAD
    *out = knn;
    return HMT_OK;
}

/* The caller's reference, dropped once: refused while a search runs on the
 * datastore (busy.h), ignored with a message on a second call. The memory
 * goes with the last reference (a kNN processor may hold one). */
HMT_API void hmt_knn_free(hmt_knn *knn) {
    if (!knn || hmti_enter(&knn->guard, HMTI_MAGIC_KNN, "hmt_knn_free")) return;
    hmti_leave(&knn->guard);
    if (hmti_user_free_once(&knn->user_freed, "hmt_knn_free", "datastore")) return;
    hmti_knn_release(knn);
}

void hmti_knn_retain(const hmt_knn *knn) { atomic_fetch_add(&((hmt_knn *)knn)->refs, 1); }

void hmti_knn_release(const hmt_knn *cknn) {
    hmt_knn *knn = (hmt_knn *)cknn;
    if (!knn || atomic_fetch_sub(&knn->refs, 1) != 1) return;
    hmti_guard_poison(&knn->guard);
    hmti_faiss_free(knn->faiss);
    hmti_pool_release(knn->pool);
    if (knn->map) munmap(knn->map, knn->map_len);
    free(knn->norms);
    free(knn);
}

HMT_API int64_t hmt_knn_count(const hmt_knn *knn) { return knn ? knn->count : 0; }
HMT_API int32_t hmt_knn_dim(const hmt_knn *knn) { return knn ? knn->dim : 0; }
HMT_API int32_t hmt_knn_n_vocab(const hmt_knn *knn) { return knn ? knn->n_vocab : 0; }
HMT_API hmt_knn_dtype hmt_knn_key_dtype(const hmt_knn *knn) {
    return knn ? knn->dtype : HMT_KNN_F32;
}
HMT_API double hmt_knn_bytes_per_key(const hmt_knn *knn) {
    if (!knn) return 0;
    return (double)knn->dim * (knn->dtype == HMT_KNN_F16 ? 2 : 4) + 4 + 4;
}

HMT_API int hmt_knn_copy_entry(const hmt_knn *knn, int64_t i, float *key, size_t cap,
                               hmt_token *value) {
    if (!knn) return hmti_errf(HMT_E_INVAL, "hmt_knn_copy_entry: NULL datastore");
    if (i < 0 || i >= knn->count)
        return hmti_errf(HMT_E_INVAL, "hmt_knn_copy_entry: index %" PRId64 " outside [0, %" PRId64 ")", i,
                         knn->count);
    if (key) {
        if (cap < (size_t)knn->dim)
            return hmti_errf(HMT_E_BUFFER, "hmt_knn_copy_entry: key buffer of %zu floats < %" PRId32, cap,
                             knn->dim);
        hmti_knn_key(knn, i, key);
    }
    if (value) *value = knn->values[i];
    return HMT_OK;
}
