/* Stream snapshots: everything a stream needs to continue bit-identically in
 * another process (docs/HMT.md, "Snapshots"). Layout, little-endian:
 *   "HMTS", u32 version, u64 model fingerprint, u64 adapter fingerprint,
 *   u32 settings[SETTINGS], i64 counters[COUNTERS], the arrays below in a
 *   fixed order, then u64 FNV-1a of all preceding bytes.
 * Restore validates all of it before changing the stream. */
#include <stdlib.h>
#include <string.h>

#include "backbone/kv_io.h"
#include "core/alloc.h"
#include "core/fnv.h"
#include "io/state_io.h"
#include "stream/stream.h"

#define SNAP_VERSION 1u

static uint64_t adapter_fingerprint(const hmt_adapter *a) { return a ? a->fingerprint : 0; }

/* KV slots of the open pass, from the counters that decide it. */
static int64_t kv_slots_of(int mode, int64_t n_fed, int64_t win_base, int64_t prefix_done,
                           int64_t sens_len, int64_t seg_eval) {
    if (!hmti_mode_segmented(mode)) return n_fed - win_base;
    if (!prefix_done) return 0;
    return (mode == HMT_MODE_SEGMENTS ? 0 : 1 + sens_len) + seg_eval;
}

static int32_t kv_slots(const hmt_stream *s) {
    return (int32_t)kv_slots_of(s->mode, s->n_fed, s->win_base, s->prefix_done, s->sens_len,
                                s->seg_eval);
}

enum { N_SETTINGS = 12, N_COUNTERS = 16 };

/* Sinks mode has no sensory memory: its sink count takes k's place. */
static void settings_of(const hmt_stream *s, uint32_t v[N_SETTINGS]) {
    const uint32_t k = (uint32_t)(s->mode == HMT_MODE_SINKS ? s->n_sinks : s->k);
    /* the KV type shares the recall-BF16 flag's word: 0 there for an F32
     * cache, so snapshots of F32 streams keep the layout they had */
    const uint32_t bf16_kv = (uint32_t)s->bf16 | (uint32_t)s->bb.kv_type << 8;
    const uint32_t x[N_SETTINGS] = {(uint32_t)s->mode, (uint32_t)s->L, k, (uint32_t)s->N,
                                    (uint32_t)s->j, (uint32_t)s->j_gen, bf16_kv,
                                    (uint32_t)s->W, (uint32_t)s->d, (uint32_t)s->model->n_vocab,
                                    (uint32_t)(s->ad ? s->ad->d_h : 0), (uint32_t)s->bb.n_ctx};
    memcpy(v, x, sizeof x);
}

/* ctr: lookahead all_logits seg_index seg_len seg_eval p_known prefix_done
 *      prev_len sens_len fill has_last_m rn n_fed n_ready win_base kv */
static void counters_of(const hmt_stream *s, int64_t ctr[N_COUNTERS]) {
    const int64_t x[N_COUNTERS] = {s->lookahead, s->all_logits, s->seg_index, s->seg_len,
                                   s->seg_eval, s->p_known, s->prefix_done, s->prev_len,
                                   s->sens_len, s->fill, s->has_last_m, s->rn,
                                   s->n_fed, s->n_ready, s->win_base, kv_slots(s)};
    memcpy(ctr, x, sizeof x);
}

static int counters_valid(const hmt_stream *s, const int64_t *c) {
    return c[0] >= 0 && c[0] <= 1 && c[1] >= 0 && c[1] <= 1 && c[2] >= 0 && c[3] >= 0 &&
           c[3] <= s->L && c[4] >= 0 && c[4] <= c[3] && c[5] >= 0 && c[5] <= 1 && c[6] >= 0 &&
           c[6] <= 1 && c[7] >= 0 && c[7] <= s->L && c[8] >= 0 && c[8] <= s->k && c[9] >= 0 &&
           c[9] <= s->N && c[10] >= 0 && c[10] <= 1 && c[11] >= 0 && c[11] <= c[9] &&
           c[12] >= 0 && c[13] >= 0 && c[13] <= c[12] && c[14] >= 0 && c[14] <= c[12] &&
           c[15] >= 0 && c[15] <= s->bb.n_ctx &&
           /* the KV count must be the one the other counters imply: the next
            * feed trusts them (a window of n_fed - win_base > W overflowed) */
           c[15] == kv_slots_of(s->mode, c[12], c[14], c[6], c[8], c[4]);
}

/* The arrays, sized by the counters ctr (the stream's own when saving, the
 * snapshot's when checking or loading). Token ids are walked as tokens so
 * that CHECK validates them: the stream feeds them to the model again
 * (window refill, sensory tokens, lookahead summary). */
static void walk_arrays(hmti_walk *c, hmt_stream *s, const int64_t *ctr) {
    const size_t d = (size_t)s->d, dh = s->ad ? (size_t)s->ad->d_h : 0;
    const size_t fill = (size_t)ctr[9], rn = (size_t)ctr[11], kv = (size_t)ctr[15];
    hmti_walk_tokens(c, s->seg_tok, (size_t)ctr[3]);
    hmti_walk_tokens(c, s->prev_tok, (size_t)ctr[7]);
    hmti_walk_tokens(c, s->sens, (size_t)ctr[8]);
    hmti_walk_floats(c, s->p, d, "P", 0);
    hmti_walk_floats(c, s->s, d, "S", 0);
    hmti_walk_floats(c, s->last_m, d, "last M", 0);
    hmti_walk_floats(c, s->mem, fill * d, "memory cache", 0);
    hmti_walk_floats(c, s->keys, fill * dh, "memory keys", 0);
    hmti_walk_bytes(c, s->mem_seg, fill * sizeof(int64_t));
    hmti_walk_floats(c, s->rw, rn, "recall weights", 0);
    hmti_walk_bytes(c, s->rseg, rn * sizeof(int64_t));
    if (s->mode == HMT_MODE_WINDOW) hmti_walk_tokens(c, s->win, (size_t)s->W);
    const hmt_model *m = s->model;
    const hmti_kv_region region = {s->bb.kt, s->bb.v, (size_t)s->bb.n_ctx, (int32_t)kv,
                                   s->bb.kv_gtype};
    hmti_kv_walk(c, m, &region);
    /* the last ready token's logits, so sampling can continue after a restore */
    if (ctr[13] > 0) {
        float *row = c->kind == HMTI_SAVE ? (float *)hmt_stream_logits(s, ctr[13] - 1) : s->logits;
        hmti_walk_floats(c, row, (size_t)m->n_vocab, "logits", 0);
    }
}

static size_t save_into(const hmt_stream *cs, unsigned char *out) {
    hmt_stream *s = (hmt_stream *)cs; /* saving only reads the stream */
    hmti_walk c = {.kind = HMTI_SAVE, .out = out};
    uint32_t head[2] = {0x53544d48u /* "HMTS" */, SNAP_VERSION}, set[N_SETTINGS];
    uint64_t fp[2] = {s->model->fingerprint, adapter_fingerprint(s->ad)};
    int64_t ctr[N_COUNTERS];
    settings_of(s, set);
    counters_of(s, ctr);
    hmti_walk_bytes(&c, head, sizeof head);
    hmti_walk_bytes(&c, fp, sizeof fp);
    hmti_walk_bytes(&c, set, sizeof set);
    hmti_walk_bytes(&c, ctr, sizeof ctr);
    walk_arrays(&c, s, ctr);
    if (out) {
        uint64_t h = hmti_fnv1a(HMTI_FNV_INIT, out, c.pos);
        memcpy(out + c.pos, &h, sizeof h);
    }
    return c.pos + sizeof(uint64_t);
}


static int stream_save(const hmt_stream *s, void *buf, size_t cap, size_t *len_out) {
    if (!s || !len_out || (!buf && cap)) return hmti_errf(HMT_E_INVAL, "hmt_stream_save: NULL argument");
    if (s->seg_sinks)
        return hmti_errf(HMT_E_UNSUPPORTED, "hmt_stream_save: streams with the experimental "
                         "segment_sinks cannot be saved");
    if (s->broken)
        return hmti_errf(HMT_E_MISUSE, "hmt_stream_save: an earlier failure "
                                                             "left the stream unusable; restore a "
                                                             "snapshot or free it");
    const size_t need = save_into(s, NULL);
    *len_out = need;
    if (cap < need)
        return hmti_errf(HMT_E_BUFFER, "hmt_stream_save: needs %zu bytes", need);
    save_into(s, buf);
    return HMT_OK;
}

static int stream_restore(hmt_stream *s, const void *buf, size_t len) {
    if (!s || !buf) return hmti_errf(HMT_E_INVAL, "hmt_stream_restore: NULL argument");
    if (s->seg_sinks)
        return hmti_errf(HMT_E_UNSUPPORTED, "hmt_stream_restore: streams with the experimental "
                         "segment_sinks cannot be restored");
    const unsigned char *b = buf;
    if (len < 8 + 16 + sizeof(uint64_t) || memcmp(b, "HMTS", 4))
        return hmti_errf(HMT_E_FORMAT, "snapshot: not a libhmt stream snapshot");
    uint32_t ver;
    memcpy(&ver, b + 4, 4);
    if (ver != SNAP_VERSION)
        return hmti_errf(HMT_E_FORMAT, "snapshot: version %u, this library reads %u", ver,
                                 SNAP_VERSION);
    uint64_t h, fp[2];
    memcpy(&h, b + len - sizeof h, sizeof h);
    if (hmti_fnv1a(HMTI_FNV_INIT, b, len - sizeof h) != h)
        return hmti_errf(HMT_E_FORMAT, "snapshot: checksum mismatch (truncated or corrupt)");
    memcpy(fp, b + 8, sizeof fp);
    if (fp[0] != s->model->fingerprint || fp[1] != adapter_fingerprint(s->ad))
        return hmti_errf(HMT_E_INVAL, "snapshot: taken with another %s",
                                 fp[0] != s->model->fingerprint ? "model" : "adapter");
    uint32_t set[N_SETTINGS], mine[N_SETTINGS];
    hmti_walk c = {.kind = HMTI_LOAD, .in = b, .pos = 8 + sizeof fp, .len = len - sizeof h}; /* into locals */
    hmti_walk_bytes(&c, set, sizeof set);
    settings_of(s, mine);
    if (c.bad || memcmp(set, mine, sizeof set))
        return hmti_errf(HMT_E_INVAL, "snapshot: taken with other stream settings "
                                              "(mode, L, k, N, j, bf16, window, context or KV type)");
    int64_t ctr[N_COUNTERS];
    hmti_walk_bytes(&c, ctr, sizeof ctr);
    if (c.bad || !counters_valid(s, ctr))
        return hmti_errf(HMT_E_FORMAT, "snapshot: counters out of range");
    hmti_walk check = c;
    check.kind = HMTI_CHECK;
    check.n_vocab = s->model->n_vocab;
    walk_arrays(&check, s, ctr);
    if (check.bad || check.pos != check.len)
        return hmti_errf(HMT_E_FORMAT, "snapshot: sizes do not match its counters");
    if (check.bad_id)
        return hmti_errf(HMT_E_FORMAT, "snapshot: a token id outside the vocabulary");
    if (check.bad_float)
        return hmti_errf(HMT_E_FORMAT, "snapshot: %s value %lld is not finite",
                                 check.bad_float, (long long)check.bad_float_at);
    if (ctr[13] > 0 && s->logits_cap < 1) {
        float *row = hmti_malloc((size_t)s->model->n_vocab * sizeof *row);
        if (!row) return hmti_errf(HMT_E_NOMEM, "snapshot: out of memory");
        free(s->logits);
        s->logits = row;
        s->logits_cap = 1;
    }
    /* Everything checked: load. */
    walk_arrays(&c, s, ctr);
    s->lookahead = (int)ctr[0], s->all_logits = (int)ctr[1], s->seg_index = ctr[2];
    s->seg_len = (int32_t)ctr[3], s->seg_eval = (int32_t)ctr[4], s->p_known = (int)ctr[5];
    s->prefix_done = (int)ctr[6], s->prev_len = (int32_t)ctr[7], s->sens_len = (int32_t)ctr[8];
    s->fill = (int32_t)ctr[9], s->has_last_m = (int)ctr[10], s->rn = (int32_t)ctr[11];
    s->n_fed = ctr[12], s->n_ready = ctr[13], s->win_base = ctr[14];
    s->ready_first = s->n_ready > 0 ? s->n_ready - 1 : 0;
    s->broken = 0;
    return HMT_OK;
}

/* The handle guard (busy.h): a save racing a feed would read a half-updated
 * stream. The file variants go through these two. */
HMT_API int hmt_stream_save(const hmt_stream *cs, void *buf, size_t cap, size_t *len_out) {
    hmt_stream *s = (hmt_stream *)cs; /* only the guard's flag changes */
    HMTI_GUARDED(s, HMTI_MAGIC_STREAM, "hmt_stream_save", stream_save(s, buf, cap, len_out));
}

HMT_API int hmt_stream_restore(hmt_stream *s, const void *buf, size_t len) {
    HMTI_GUARDED(s, HMTI_MAGIC_STREAM, "hmt_stream_restore", stream_restore(s, buf, len));
}

/* The largest snapshot this stream can produce: every array at the size its
 * settings allow (segment of L, k sensory ids, N memories, a full KV cache,
 * one logits row). restore_file reads no file larger than this. */
static size_t max_snapshot_size(const hmt_stream *cs) {
    hmt_stream *s = (hmt_stream *)cs; /* measuring only: nothing is read or written */
    int64_t ctr[N_COUNTERS] = {0};
    ctr[3] = ctr[7] = s->L, ctr[8] = s->k, ctr[9] = ctr[11] = s->N, ctr[15] = s->bb.n_ctx;
    hmti_walk c = {.kind = HMTI_SAVE};
    walk_arrays(&c, s, ctr); /* ctr[13] = 0: the logits row is added below */
    return 8 + 16 + N_SETTINGS * 4 + N_COUNTERS * 8 + c.pos +
           (size_t)s->model->n_vocab * sizeof(float) + sizeof(uint64_t);
}

HMT_API int hmt_stream_save_file(const hmt_stream *s, const char *path) {
    if (!s || !path) return hmti_errf(HMT_E_INVAL, "hmt_stream_save_file: NULL argument");
    if (hmti_guard_check(&s->guard, HMTI_MAGIC_STREAM, "hmt_stream_save_file")) return HMT_E_MISUSE;
    size_t len = 0;
    if (s->broken) return stream_save(s, NULL, 0, &len); /* its refusal */
    len = save_into(s, NULL); /* not a size query: success leaves no message */
    void *buf = hmti_malloc(len);
    if (!buf) return hmti_errf(HMT_E_NOMEM, "hmt_stream_save_file: out of memory");
    int rc = hmt_stream_save(s, buf, len, &len);
    if (!rc) rc = hmti_state_write_file(path, buf, len, "hmt_stream_save_file");
    free(buf);
    return rc;
}

HMT_API int hmt_stream_restore_file(hmt_stream *s, const char *path) {
    if (!s || !path) return hmti_errf(HMT_E_INVAL, "hmt_stream_restore_file: NULL argument");
    unsigned char *buf;
    size_t len;
    int rc = hmti_state_read_file(path, max_snapshot_size(s), "snapshot of this stream",
                                  "hmt_stream_restore_file", &buf, &len);
    if (!rc) rc = hmt_stream_restore(s, buf, len);
    free(buf);
    return rc ? rc : HMT_OK;
}
