/* The FAISS IVF-PQ index of a datastore (include/hmt/experimental.h,
 * docs/KNN.md): choosing its shape, building it from the mapped keys, its
 * file (a libhmt header that ties it to one datastore, then FAISS's own
 * serialization), attaching it, and searching through it with the exact
 * re-ranking. FAISS itself is reached only through lib/knn_faiss.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/fnv.h"
#include "core/params.h"
#include "hooks/knn.h"
#include "hooks/knn_faiss.h"
#include "io/atomic_file.h"
#include "io/file_open.h"
#include "io/le_bytes.h"

/* ---- file format (docs/KNN.md) ---------------------------------------------
 * Little-endian. A 128-byte header, then FAISS's write_index bytes. */
#define IX_MAGIC "HMTKNNIX"
#define IX_VERSION 1u
#define IX_HEADER_SIZE 128u
#define IX_CHECKED_BYTES 88u
enum {
    IX_OFF_MAGIC = 0,      /* char[8]                                         */
    IX_OFF_VERSION = 8,    /* u32                                             */
    IX_OFF_HSIZE = 12,     /* u32 header size (128)                           */
    IX_OFF_DIM = 16,       /* u32 key width                                   */
    IX_OFF_NLIST = 20,     /* u32 IVF lists                                   */
    IX_OFF_PQ_M = 24,      /* u32 PQ sub-quantizers                           */
    IX_OFF_PQ_NBITS = 28,  /* u32 bits per sub-quantizer code (8)             */
    IX_OFF_COUNT = 32,     /* u64 keys indexed (= the datastore's count)      */
    IX_OFF_IDENTITY = 40,  /* u64 the datastore's identity (ds_identity)      */
    IX_OFF_PAYLOAD = 48,   /* u64 payload offset (128)                        */
    IX_OFF_PSIZE = 56,     /* u64 payload size                                */
    IX_OFF_PSUM = 64,      /* u64 FNV-1a of the payload                       */
    IX_OFF_TRAIN = 72,     /* u64 training keys                               */
    IX_OFF_SEED = 80,      /* u64 seed                                        */
    IX_OFF_CHECKSUM = 88   /* u64 FNV-1a of bytes [0, 88)                     */
};

#define MIN_PER_CENTROID 39 /* below this FAISS's k-means warns (and is poor) */
#define PQ_KSUB 256         /* 8-bit codes                                     */
#define IDENTITY_SAMPLES 64 /* key rows hashed into the identity               */


static int not_built(const char *what) {
    return hmti_errf(HMT_E_UNSUPPORTED, "%s: the FAISS backend is not built into this libhmt "
                     "(install libfaiss-dev and rebuild; see docs/KNN.md)", what);
}

/* What ties an index to its datastore: the datastore's checked header (count,
 * width, dtype, model) and its checksum, every value, and IDENTITY_SAMPLES
 * key rows spread over the file plus the last one. Cheap at load (4 bytes per
 * key), and different for two datastores built from different texts. */
static uint64_t ds_identity(const hmt_knn *knn) {
    uint64_t h = hmti_fnv1a(HMTI_FNV_INIT, knn->map, HMTI_KNN_CHECKED_BYTES + 8);
    h = hmti_fnv1a(h, knn->values, (size_t)knn->count * sizeof *knn->values);
    const size_t row = (size_t)knn->dim * (knn->dtype == HMT_KNN_F16 ? 2 : 4);
    for (int64_t s = 0; s <= IDENTITY_SAMPLES; s++) {
        int64_t i = s == IDENTITY_SAMPLES ? knn->count - 1 : knn->count * s / IDENTITY_SAMPLES;
        h = hmti_fnv1a(h, knn->keys_raw + (size_t)i * row, row);
    }
    return h;
}

/* ==== shape ================================================================= */
typedef struct {
    int64_t nlist, m, train;
    uint64_t seed;
} ix_cfg;

static int64_t pow2_floor(int64_t v) {
    int64_t p = 1;
    while (p <= v / 2) p *= 2;
    return p;
}

/* Defaults (docs/KNN.md): nlist = the power of two nearest √N, at most
 * N/39; m = the largest divisor of d up to min(64, d/4) (64 bytes per key at
 * d ≥ 256, as in the paper); training keys = max(64·nlist, 16384), at least
 * 39·max(nlist, 256), at most N. */
static int ix_cfg_read(ix_cfg *c, const hmt_knn *knn, const hmt_params *params) {
    static const hmt_param keys[] = {HMT_P_KNN_NLIST, HMT_P_KNN_PQ_M, HMT_P_KNN_TRAIN_SIZE,
                                     HMT_P_KNN_SEED};
    int rc = hmti_params_only(params, keys, HMTI_NKEYS(keys), "hmt_knn_faiss_build");
    if (rc) return rc;
    const int64_t n = knn->count, d = knn->dim;
    c->nlist = (int64_t)hmti_param_value(params, HMT_P_KNN_NLIST);
    c->m = (int64_t)hmti_param_value(params, HMT_P_KNN_PQ_M);
    c->train = (int64_t)hmti_param_value(params, HMT_P_KNN_TRAIN_SIZE);
    c->seed = (uint64_t)hmti_param_value(params, HMT_P_KNN_SEED);
    if (c->nlist == HMT_AUTO) {
        int64_t r = 1;
        while ((r + 1) * (r + 1) <= n) r++;
        int64_t lo = pow2_floor(r);
        c->nlist = r - lo <= 2 * lo - r ? lo : 2 * lo; /* nearest power of two */
        int64_t cap = n / MIN_PER_CENTROID;
        if (c->nlist > cap) c->nlist = cap >= 1 ? pow2_floor(cap) : 1;
    }
    if (c->m == HMT_AUTO) {
        int64_t cap = d / 4 < 64 ? d / 4 : 64;
        c->m = 1;
        for (int64_t v = cap; v >= 1; v--)
            if (d % v == 0) {
                c->m = v;
                break;
            }
    }
    const int64_t centroids = c->nlist > PQ_KSUB ? c->nlist : PQ_KSUB;
    if (c->train == HMT_AUTO) {
        c->train = 64 * c->nlist > 16384 ? 64 * c->nlist : 16384;
        if (c->train < MIN_PER_CENTROID * centroids) c->train = MIN_PER_CENTROID * centroids;
        if (c->train > n) c->train = n;
    }
    if (d % c->m != 0)
        return hmti_errf(HMT_E_INVAL, "knn faiss build: %" PRId64 " sub-quantizers do not divide "
                         "the key width %" PRId64, c->m, d);
    if (c->nlist > n)
        return hmti_errf(HMT_E_INVAL, "knn faiss build: %" PRId64 " lists for %" PRId64 " keys",
                         c->nlist, n);
    if (c->train > n)
        return hmti_errf(HMT_E_INVAL, "knn faiss build: training size %" PRId64 " exceeds the %"
                         PRId64 " keys", c->train, n);
    if (c->train < MIN_PER_CENTROID * centroids)
        return hmti_errf(HMT_E_INVAL, "knn faiss build: %" PRId64 " training keys for %" PRId64
                         " centroids (k-means needs %d per centroid: at least %" PRId64 "; a "
                         "datastore this small is searched fast exactly)", c->train, centroids,
                         MIN_PER_CENTROID, MIN_PER_CENTROID * centroids);
    return HMT_OK;
}

/* ==== build ================================================================= */
static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The training sample: t of the n keys without replacement, in file order
 * (Knuth's selection sampling: one pass, no index array). */
static void sample_keys(const hmt_knn *knn, int64_t t, uint64_t seed, float *out) {
    uint64_t s = seed;
    int64_t picked = 0;
    for (int64_t i = 0; i < knn->count && picked < t; i++) {
        double u = (double)(splitmix(&s) >> 11) / 9007199254740992.0;
        if ((double)(knn->count - i) * u < (double)(t - picked))
            hmti_knn_key(knn, i, out + (size_t)picked++ * (size_t)knn->dim);
    }
}

typedef struct {
    hmti_afile *out;
    uint64_t sum, size;
} payload_writer;

static int write_payload(void *ud, const void *bytes, size_t n) {
    payload_writer *w = ud;
    if (hmti_afile_write(w->out, bytes, n)) {
        char eb[128];
        return hmti_errf(HMT_E_IO, "knn faiss build: cannot write '%s': %s", w->out->path,
                         strerror_r(w->out->err, eb, sizeof eb));
    }
    w->sum = hmti_fnv1a(w->sum, bytes, n);
    w->size += n;
    return HMT_OK;
}

/* Header placeholder, FAISS's bytes, then the header: into a temporary that
 * replaces path only once complete (lib/io/atomic_file.c). */
static int write_file(const hmt_knn *knn, const hmti_faiss *f, const ix_cfg *c,
                      const char *path) {
    hmti_afile out;
    int rc = hmti_afile_begin(&out, path, "knn faiss build");
    if (rc) return rc;
    payload_writer w = {.out = &out, .sum = HMTI_FNV_INIT};
    uint8_t h[IX_HEADER_SIZE] = {0};
    hmti_afile_write(&out, h, sizeof h);
    if (!out.err) rc = hmti_faiss_write(f, write_payload, &w);
    if (rc && !out.err) { /* FAISS itself failed: its message stands */
        hmti_afile_abort(&out);
        return rc;
    }
    memcpy(h + IX_OFF_MAGIC, IX_MAGIC, 8);
    put32(h + IX_OFF_VERSION, IX_VERSION);
    put32(h + IX_OFF_HSIZE, IX_HEADER_SIZE);
    put32(h + IX_OFF_DIM, (uint32_t)knn->dim);
    put32(h + IX_OFF_NLIST, (uint32_t)c->nlist);
    put32(h + IX_OFF_PQ_M, (uint32_t)c->m);
    put32(h + IX_OFF_PQ_NBITS, 8);
    put64(h + IX_OFF_COUNT, (uint64_t)knn->count);
    put64(h + IX_OFF_IDENTITY, ds_identity(knn));
    put64(h + IX_OFF_PAYLOAD, IX_HEADER_SIZE);
    put64(h + IX_OFF_PSIZE, w.size);
    put64(h + IX_OFF_PSUM, w.sum);
    put64(h + IX_OFF_TRAIN, (uint64_t)c->train);
    put64(h + IX_OFF_SEED, c->seed);
    put64(h + IX_OFF_CHECKSUM, hmti_fnv1a(HMTI_FNV_INIT, h, IX_CHECKED_BYTES));
    hmti_afile_write_at(&out, 0, h, sizeof h);
    return hmti_afile_commit(&out); /* reports the first write error, if any */
}

HMT_API int32_t hmt_knn_faiss_available(void) { return hmti_faiss_available(); }

static int faiss_build(const hmt_knn *knn, const char *path, const hmt_params *params,
                       hmt_knn_progress_fn progress, void *user_data) {
    if (!knn || !path) return hmti_errf(HMT_E_INVAL, "knn faiss build: NULL argument");
    if (!hmti_faiss_available()) return not_built("knn faiss build");
    ix_cfg c;
    int rc = ix_cfg_read(&c, knn, params);
    if (rc) return rc;
    const int64_t d = knn->dim;
    /* keys travel as F32 in chunks of ~16 MiB (the training sample at once) */
    int64_t chunk = ((int64_t)1 << 22) / d;
    if (chunk < 1) chunk = 1;
    hmti_faiss *f = NULL;
    float *buf = hmti_malloc((size_t)c.train * (size_t)d * sizeof *buf);
    if (!buf) return hmti_errf(HMT_E_NOMEM, "knn faiss build: out of memory (training sample "
                               "of %" PRId64 " keys)", c.train);
    if ((rc = hmti_pool_acquire(knn->pool, "knn faiss build"))) {
        free(buf);
        return rc;
    }
    hmti_pool *pool = knn->n_threads > 1 ? knn->pool : NULL;
    rc = hmti_faiss_create(&f, knn->dim, (int32_t)c.nlist, (int32_t)c.m, c.seed);
    if (!rc) {
        sample_keys(knn, c.train, c.seed, buf);
        rc = hmti_faiss_train(f, pool, c.train, buf);
    }
    if (!rc && c.train < chunk) {
        float *nb = hmti_realloc(buf, (size_t)chunk * (size_t)d * sizeof *buf);
        if (nb)
            buf = nb;
        else
            rc = hmti_errf(HMT_E_NOMEM, "knn faiss build: out of memory");
    }
    for (int64_t i0 = 0; !rc && i0 < knn->count; i0 += chunk) {
        int64_t n = knn->count - i0 < chunk ? knn->count - i0 : chunk;
        for (int64_t i = 0; i < n; i++) hmti_knn_key(knn, i0 + i, buf + (size_t)i * (size_t)d);
        rc = hmti_faiss_add(f, pool, i0, n, buf);
        if (!rc && progress && progress(user_data, i0 + n, knn->count))
            rc = hmti_errf(HMT_E_ABORTED, "knn faiss build: stopped by the progress callback");
    }
    hmti_pool_unlock(knn->pool);
    free(buf);
    if (!rc) rc = write_file(knn, f, &c, path);
    hmti_faiss_free(f);
    return rc;
}

/* ==== attach ================================================================ */
static int read_index(const hmt_knn *knn, const char *path, const uint8_t *h, uint64_t fsize,
                      hmti_faiss **out) {
#define BAD(...) hmti_errf(HMT_E_FORMAT, "knn faiss attach: '%s': " __VA_ARGS__)
    if (fsize < IX_HEADER_SIZE) return BAD("truncated header (%" PRIu64 " bytes)", path, fsize);
    if (memcmp(h, IX_MAGIC, 8) != 0) return BAD("bad magic (not a libhmt FAISS index)", path);
    const uint32_t version = get32(h + IX_OFF_VERSION);
    if (version > IX_VERSION)
        return hmti_errf(HMT_E_UNSUPPORTED, "knn faiss attach: '%s': version %" PRIu32 " is newer "
                         "than this library's (%u)", path, version, IX_VERSION);
    if (version == 0) return BAD("version 0", path);
    if (get64(h + IX_OFF_CHECKSUM) != hmti_fnv1a(HMTI_FNV_INIT, h, IX_CHECKED_BYTES))
        return BAD("header checksum mismatch (corrupt header)", path);
    if (get32(h + IX_OFF_HSIZE) != IX_HEADER_SIZE) return BAD("header size", path);
    if (get32(h + IX_OFF_PQ_NBITS) != 8)
        return BAD("%" PRIu32 "-bit PQ codes (only 8)", path, get32(h + IX_OFF_PQ_NBITS));
    const uint32_t dim = get32(h + IX_OFF_DIM);
    const uint64_t count = get64(h + IX_OFF_COUNT), id = get64(h + IX_OFF_IDENTITY);
    if (dim != (uint32_t)knn->dim || count != (uint64_t)knn->count)
        return hmti_errf(HMT_E_INVAL, "knn faiss attach: '%s' indexes another datastore (%" PRIu64
                         " keys of width %" PRIu32 "; this one: %" PRId64 " keys of width %"
                         PRId32 ")", path, count, dim, knn->count, knn->dim);
    if (id != ds_identity(knn))
        return hmti_errf(HMT_E_INVAL, "knn faiss attach: '%s' indexes another datastore (same "
                         "shape, different keys or values: identity %016" PRIx64 ")", path, id);
    const uint64_t poff = get64(h + IX_OFF_PAYLOAD), psize = get64(h + IX_OFF_PSIZE);
    if (poff != IX_HEADER_SIZE) return BAD("payload offset %" PRIu64, path, poff);
    if (psize != fsize - poff)
        return BAD("file size %" PRIu64 " differs from the header's %" PRIu64 " (truncated?)",
                   path, fsize, poff + psize);
    if (get64(h + IX_OFF_PSUM) != hmti_fnv1a(HMTI_FNV_INIT, h + poff, (size_t)psize))
        return BAD("index checksum mismatch (corrupt file)", path);
    int rc = hmti_faiss_read(out, h + poff, (size_t)psize);
    if (rc) return rc;
    hmti_faiss_shape s;
    hmti_faiss_get_shape(*out, &s);
    if ((uint32_t)s.d != dim || s.ntotal != (int64_t)count ||
        (uint32_t)s.nlist != get32(h + IX_OFF_NLIST) || (uint32_t)s.m != get32(h + IX_OFF_PQ_M)) {
        hmti_faiss_free(*out);
        *out = NULL;
        return BAD("the index (d %" PRId32 ", %" PRId64 " keys, nlist %" PRId32 ", m %" PRId32
                   ") differs from its header", path, s.d, s.ntotal, s.nlist, s.m);
    }
    return HMT_OK;
#undef BAD
}

static int faiss_attach(hmt_knn *knn, const char *path, const hmt_params *params) {
    if (!knn || !path) return hmti_errf(HMT_E_INVAL, "knn faiss attach: NULL argument");
    if (!hmti_faiss_available()) return not_built("knn faiss attach");
    static const hmt_param keys[] = {HMT_P_KNN_NPROBE, HMT_P_KNN_RERANK};
    int rc = hmti_params_only(params, keys, HMTI_NKEYS(keys), "hmt_knn_faiss_attach");
    if (rc) return rc;
    int fd;
    uint64_t fsize;
    rc = hmti_open_regular(path, "knn faiss attach", &fd, &fsize);
    if (rc) return rc;
    if (fsize < IX_HEADER_SIZE) {
        close(fd);
        return hmti_errf(HMT_E_FORMAT, "knn faiss attach: '%s': truncated header (%" PRIu64
                         " bytes)", path, fsize);
    }
    void *map = mmap(NULL, (size_t)fsize, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return hmti_errf(HMT_E_IO, "knn faiss attach: cannot map '%s': %s", path, strerror(e));
    hmti_faiss *f = NULL;
    rc = read_index(knn, path, map, fsize, &f);
    munmap(map, (size_t)fsize);
    if (rc) return rc;
    hmti_faiss_free(knn->faiss);
    knn->faiss = f;
    knn->nprobe = (int32_t)hmti_param_value(params, HMT_P_KNN_NPROBE);
    knn->rerank = (int32_t)hmti_param_value(params, HMT_P_KNN_RERANK);
    return HMT_OK;
}

/* The datastore's guard (busy.h): a build reads it like a search; attach and
 * detach change it, so they need it to themselves. */
HMT_API int hmt_knn_faiss_build(const hmt_knn *knn, const char *path, const hmt_params *params,
                                hmt_knn_progress_fn progress, void *user_data) {
    hmti_guard *g = knn ? (hmti_guard *)&knn->guard : NULL;
    int rc = hmti_read_enter(g, HMTI_MAGIC_KNN, "hmt_knn_faiss_build");
    if (rc) return rc;
    rc = faiss_build(knn, path, params, progress, user_data);
    hmti_read_leave(g);
    return rc;
}

HMT_API int hmt_knn_faiss_attach(hmt_knn *knn, const char *path, const hmt_params *params) {
    int rc = hmti_enter(HMTI_GUARD(knn), HMTI_MAGIC_KNN, "hmt_knn_faiss_attach");
    if (rc) return rc;
    rc = faiss_attach(knn, path, params);
    hmti_leave(HMTI_GUARD(knn));
    return rc;
}

/* Exclusive, as attach: searches read the pool without a lock. */
HMT_API int hmt_knn_attach_threadpool(hmt_knn *knn, hmt_threadpool *tp) {
    int rc = hmti_enter(HMTI_GUARD(knn), HMTI_MAGIC_KNN, "hmt_knn_attach_threadpool");
    if (rc) return rc;
    hmti_pool *pool = tp;
    if ((rc = hmti_pool_check(tp, "hmt_knn_attach_threadpool")) == HMT_OK) {
        if (pool) hmti_pool_retain(pool);
        else rc = hmti_pool_default(&pool);
    }
    if (!rc) {
        hmti_pool_release(knn->pool);
        knn->pool = pool;
        knn->n_threads = hmti_pool_n_threads(pool);
    }
    hmti_leave(HMTI_GUARD(knn));
    return rc;
}

HMT_API void hmt_knn_faiss_detach(hmt_knn *knn) {
    if (!knn || hmti_enter(&knn->guard, HMTI_MAGIC_KNN, "hmt_knn_faiss_detach")) return;
    hmti_faiss_free(knn->faiss);
    knn->faiss = NULL;
    hmti_leave(&knn->guard);
}

/* ==== search ================================================================ */
typedef struct {
    const hmt_knn *knn;
    const float *q;
    const int64_t *cand;
    int64_t nq, kc, k;
    float *dist_out;
    int64_t *idx_out;
    void **scratch; /* per share: dim floats + kc candidates (16 bytes) */
} rerank_job;

static void rerank_share(void *arg, int ith, int nth) {
    rerank_job *j = arg;
    int64_t lo, hi;
    hmti_split_range(j->nq, ith, nth, 1, &lo, &hi);
    float *kbuf = j->scratch[ith];
    void *cs = kbuf + ((j->knn->dim + 3) & ~3);
    for (int64_t q = lo; q < hi; q++)
        hmti_knn_rerank(j->knn, j->q + q * j->knn->dim, j->cand + q * j->kc, j->kc, j->k,
                        j->dist_out ? j->dist_out + q * j->k : NULL,
                        j->idx_out ? j->idx_out + q * j->k : NULL, kbuf, cs);
}

int hmti_knn_faiss_search(const hmt_knn *knn, const float *queries, size_t n, int64_t k,
                          float *dist_out, int64_t *idx_out) {
    int64_t kc = k * (int64_t)knn->rerank;
    if (kc > knn->count) kc = knn->count;
    if (kc < 1) kc = 1;
    /* candidate buffers (12 bytes each) bounded by ~24 MiB per group */
    int64_t group = ((int64_t)1 << 21) / kc;
    group = group < 1 ? 1 : group > 256 ? 256 : group;
    if ((size_t)group > n) group = (int64_t)n;
    int locked = knn->pool && knn->n_threads > 1 && hmti_pool_try_acquire(knn->pool);
    const int nth = locked ? knn->n_threads : 1;
    float *fd = hmti_malloc((size_t)group * kc * sizeof *fd);
    int64_t *fi = hmti_malloc((size_t)group * kc * sizeof *fi);
    void **scratch = hmti_calloc((size_t)nth, sizeof *scratch);
    const size_t per = (((size_t)knn->dim + 3) & ~(size_t)3) * sizeof(float) + (size_t)kc * 16;
    int ok = fd && fi && scratch;
    for (int t = 0; ok && t < nth; t++) ok = (scratch[t] = hmti_malloc(per)) != NULL;
    int rc = ok ? HMT_OK : hmti_errf(HMT_E_NOMEM, "knn search: out of memory");
    for (size_t q0 = 0; !rc && q0 < n; q0 += (size_t)group) {
        int64_t nq = (int64_t)(n - q0 < (size_t)group ? n - q0 : (size_t)group);
        const float *q = queries + q0 * (size_t)knn->dim;
        rc = hmti_faiss_search(knn->faiss, knn->n_threads, q, nq, kc, knn->nprobe, fd, fi);
        if (rc) break;
        rerank_job j = {.knn = knn, .q = q, .cand = fi, .nq = nq, .kc = kc, .k = k,
                        .dist_out = dist_out ? dist_out + q0 * (size_t)k : NULL,
                        .idx_out = idx_out ? idx_out + q0 * (size_t)k : NULL,
                        .scratch = scratch};
        if (locked && nq > 1)
            hmti_pool_run(knn->pool, rerank_share, &j);
        else
            rerank_share(&j, 0, 1);
    }
    if (locked) hmti_pool_unlock(knn->pool);
    for (int t = 0; scratch && t < nth; t++) free(scratch[t]);
    free(scratch);
    free(fd);
    free(fi);
    return rc;
}
