/* Context states: a context's KV cache and the outputs of its last eval,
 * saved to a buffer or file and restored into any context of the same model
 * with room for them, which then continues bit-identically (docs/API.md,
 * "Context state"). Layout, little-endian:
 *   "HMTC", u32 version, u64 model fingerprint, i32 n_past, i32 n_rows,
 *   (version 2 only) u32 KV type (hmt_kv_type),
 *   u8 flags[n_rows] (each output row's HMT_OUT_* bits),
 *   the n_past KV slots of every layer in the cache's type (backbone/kv_io.h),
 *   per row: its logits, hidden state and FFN input as its flags say,
 *   u64 FNV-1a of all preceding bytes.
 * Restore validates all of it before changing the context. The work is
 * done on one KV region (kt, v, n_past): the cache of one sequence. A whole
 * context's state (n_seq 1) has the outputs; a sequence's has none.
 * An F32 cache is saved as version 1 (as before KV types existed), a half
 * one as version 2, which names its type: a state restores only into a
 * context whose cache has the same type. */
#include <stdlib.h>
#include <string.h>

#include "backbone/ctx_state.h"
#include "backbone/kv_io.h"
#include "core/alloc.h"
#include "core/fnv.h"
#include "io/state_io.h"

enum { HEAD = 24, CHECKSUM = 8 }; /* magic, version, fingerprint, n_past, n_rows */

/* The version a cache of this type is saved as, and its header's bytes. */
static uint32_t version_of(uint32_t gtype) { return gtype == HMTI_TYPE_F32 ? 1u : 2u; }
static size_t head_of(uint32_t version) { return version == 1 ? HEAD : HEAD + 4; }

static const hmt_model *model_of(hmt_ctx *ctx) { return hmti_ctx_backbone(ctx)->m; }

/* Sequence seq's cache as a region holding n slots. */
static hmti_kv_region region_of(hmt_ctx *ctx, int32_t seq, int32_t n) {
    const hmti_backbone *b = hmti_ctx_backbone(ctx);
    return (hmti_kv_region){hmti_backbone_kt(b, seq), hmti_backbone_v(b, seq), (size_t)b->n_ctx,
                            n, b->kv_gtype};
}

/* What an output row with these HMT_OUT_* flags holds, in floats. */
static uint64_t row_floats(const hmt_model *m, uint8_t f) {
    return ((f & HMT_OUT_LOGITS) ? (uint64_t)m->n_vocab : 0) +
           ((f & HMT_OUT_HIDDEN) ? (uint64_t)m->n_embd : 0) +
           ((f & HMT_OUT_FFN_INPUT) ? (uint64_t)m->n_embd : 0);
}

static const char *kv_name(uint32_t kv_type) {
    return kv_type == HMT_KV_F32 ? "F32" : kv_type == HMT_KV_F16 ? "F16" : "BF16";
}

/* The flags of row i of the context's last eval: the outputs it has. */
static uint8_t row_flags(hmt_ctx *ctx, int32_t i) {
    return (uint8_t)((hmt_ctx_logits(ctx, i) ? HMT_OUT_LOGITS : 0) |
                     (hmt_ctx_hidden(ctx, i) ? HMT_OUT_HIDDEN : 0) |
                     (hmt_ctx_ffn_input(ctx, i) ? HMT_OUT_FFN_INPUT : 0));
}

/* Bytes of a state with n_past slots and these output rows (flags NULL:
 * the context's own). */
static uint64_t state_bytes(hmt_ctx *ctx, int64_t n_past, int32_t n_rows, const uint8_t *flags) {
    const hmt_model *m = model_of(ctx);
    const uint32_t gtype = hmti_ctx_backbone(ctx)->kv_gtype;
    uint64_t floats = 0;
    for (int32_t i = 0; i < n_rows; i++)
        floats += row_floats(m, flags ? flags[i] : row_flags(ctx, i));
    return head_of(version_of(gtype)) + (uint64_t)n_rows + hmti_kv_walk_bytes(m, n_past, gtype) +
           floats * sizeof(float) + CHECKSUM;
}

/* The cache region, then the output rows, their values read or written
 * through the public accessors (flags NULL: the context's own). *bad_row:
 * the row of the first non-finite output value CHECK finds. */
static void walk_state(hmti_walk *c, hmt_ctx *ctx, const hmti_kv_region *kv, int32_t n_rows,
                       const uint8_t *flags, int32_t *bad_row) {
    const hmt_model *m = model_of(ctx);
    hmti_kv_walk(c, m, kv);
    for (int32_t i = 0; i < n_rows; i++) {
        const uint8_t f = flags ? flags[i] : row_flags(ctx, i);
        const int clean = !c->bad_float;
        if (f & HMT_OUT_LOGITS)
            hmti_walk_floats(c, (float *)hmt_ctx_logits(ctx, i), (size_t)m->n_vocab, "logits", 0);
        if (f & HMT_OUT_HIDDEN)
            hmti_walk_floats(c, (float *)hmt_ctx_hidden(ctx, i), (size_t)m->n_embd, "hidden state",
                             0);
        if (f & HMT_OUT_FFN_INPUT)
            hmti_walk_floats(c, (float *)hmt_ctx_ffn_input(ctx, i), (size_t)m->n_embd, "FFN input",
                             0);
        if (clean && c->bad_float) *bad_row = i;
    }
}

/* Save region kv (its n slots are the state's n_past) and, with_outputs,
 * the outputs of the last eval into out (cap bytes); *len_out = the size
 * needed. fn: the caller, for messages. */
static int save_region(hmt_ctx *ctx, const hmti_kv_region *kv, int with_outputs,
                       unsigned char *out, size_t cap, size_t *len_out, const char *fn) {
    const hmt_model *m = model_of(ctx);
    const int32_t n_rows = with_outputs ? hmti_ctx_n_rows(ctx) : 0;
    const uint64_t need = state_bytes(ctx, kv->n, n_rows, NULL);
    *len_out = need > SIZE_MAX ? SIZE_MAX : (size_t)need;
    if (need > SIZE_MAX || cap < need)
        return hmti_errf(HMT_E_BUFFER, "%s: needs %llu bytes", fn, (unsigned long long)need);
    hmti_walk c = {.kind = HMTI_SAVE, .out = out};
    uint32_t version = version_of(kv->gtype), kv_type = (uint32_t)hmti_ctx_backbone(ctx)->kv_type;
    int32_t counts[2] = {kv->n, n_rows};
    hmti_walk_bytes(&c, (void *)"HMTC", 4);
    hmti_walk_bytes(&c, &version, sizeof version);
    hmti_walk_bytes(&c, (void *)&m->fingerprint, sizeof m->fingerprint);
    hmti_walk_bytes(&c, counts, sizeof counts);
    if (version > 1) hmti_walk_bytes(&c, &kv_type, sizeof kv_type);
    for (int32_t i = 0; i < n_rows; i++) {
        uint8_t f = row_flags(ctx, i);
        hmti_walk_bytes(&c, &f, 1);
    }
    int32_t unused;
    walk_state(&c, ctx, kv, n_rows, NULL, &unused);
    const uint64_t h = hmti_fnv1a(HMTI_FNV_INIT, out, c.pos);
    memcpy(out + c.pos, &h, sizeof h);
    return HMT_OK;
}

/* Check a state against this context, then load it into region kv (whose
 * stride is its capacity) of sequence seq: with the outputs when seq is -1
 * (the whole context: sequence 0), else the cache only. Nothing changes on
 * failure. */
static int restore_region(hmt_ctx *ctx, const hmti_kv_region *kv, int32_t seq,
                          const unsigned char *b, size_t len) {
    const hmt_model *m = model_of(ctx);
    if (len < HEAD + CHECKSUM || memcmp(b, "HMTC", 4))
        return hmti_errf(HMT_E_FORMAT, "context state: not a libhmt context state");
    uint32_t ver;
    memcpy(&ver, b + 4, 4);
    if (ver != 1 && ver != 2)
        return hmti_errf(HMT_E_FORMAT, "context state: version %u, this library reads 1 and 2",
                         ver);
    const size_t head = head_of(ver);
    if (len < head + CHECKSUM)
        return hmti_errf(HMT_E_FORMAT, "context state: not a libhmt context state");
    uint64_t h, fp;
    memcpy(&h, b + len - sizeof h, sizeof h);
    if (hmti_fnv1a(HMTI_FNV_INIT, b, len - sizeof h) != h)
        return hmti_errf(HMT_E_FORMAT, "context state: checksum mismatch (truncated or corrupt)");
    memcpy(&fp, b + 8, sizeof fp);
    if (fp != m->fingerprint)
        return hmti_errf(HMT_E_INVAL, "context state: taken with another model");
    /* version 1 holds an F32 cache */
    uint32_t kv_type = HMT_KV_F32;
    if (ver > 1) memcpy(&kv_type, b + HEAD, sizeof kv_type);
    const int own = hmti_ctx_backbone(ctx)->kv_type;
    /* one encoding per state: an F32 cache is version 1 */
    if (kv_type > HMT_KV_BF16 || (ver > 1 && kv_type == HMT_KV_F32))
        return hmti_errf(HMT_E_FORMAT, "context state: version %u with KV type %u", ver, kv_type);
    if (kv_type != (uint32_t)own)
        return hmti_errf(HMT_E_INVAL, "context state: its KV cache is %s, this context's is %s "
                         "(HMT_P_KV_TYPE)", kv_name(kv_type), kv_name((uint32_t)own));
    int32_t counts[2];
    memcpy(counts, b + 16, sizeof counts);
    const int32_t n_past = counts[0], n_rows = counts[1];
    if (n_past < 0 || n_rows < 0 || n_rows > n_past)
        return hmti_errf(HMT_E_FORMAT, "context state: %d output rows for %d positions", n_rows,
                         n_past);
    if ((size_t)n_rows > len - head - CHECKSUM)
        return hmti_errf(HMT_E_FORMAT, "context state: sizes do not match its counts");
    const uint8_t *flags = b + head;
    for (int32_t i = 0; i < n_rows; i++)
        if (flags[i] & ~(HMT_OUT_LOGITS | HMT_OUT_HIDDEN | HMT_OUT_FFN_INPUT))
            return hmti_errf(HMT_E_FORMAT, "context state: row %d: unknown output flags 0x%x", i,
                             flags[i]);
    if (state_bytes(ctx, n_past, n_rows, flags) != len)
        return hmti_errf(HMT_E_FORMAT, "context state: sizes do not match its counts");
    if ((size_t)n_past > kv->stride)
        return hmti_errf(HMT_E_INVAL, "context state: holds %d positions, more than this "
                         "context's n_ctx of %zu", n_past, kv->stride);
    const hmti_kv_region into = {kv->kt, kv->v, kv->stride, n_past, kv->gtype};
    hmti_walk c = {.kind = HMTI_CHECK, .in = b, .pos = head + (size_t)n_rows, .len = len - CHECKSUM};
    int32_t bad_row = -1;
    walk_state(&c, ctx, &into, n_rows, flags, &bad_row);
    if (c.bad || c.pos != c.len) /* state_bytes said otherwise: a bug */
        return hmti_errf(HMT_E_FORMAT, "context state: sizes do not match its counts");
    if (c.bad_float && bad_row >= 0)
        return hmti_errf(HMT_E_FORMAT, "context state: row %d: %s value %lld is not finite",
                         bad_row, c.bad_float, (long long)c.bad_float_at);
    if (c.bad_float) {
        const int64_t per_layer = (int64_t)n_past * m->n_head_kv * m->head_dim;
        return hmti_errf(HMT_E_FORMAT, "context state: %s value %lld (layer %lld) is not finite",
                         c.bad_float, (long long)c.bad_float_at,
                         (long long)(c.bad_float_at / per_layer));
    }
    /* Everything checked: the outputs' room (HMT_E_NOMEM changes nothing),
     * then the values; a sequence takes the cache only (it comes first). */
    if (seq >= 0) {
        hmti_ctx_set_seq_n_past(ctx, seq, n_past);
    } else {
        int rc = hmti_ctx_set_outputs(ctx, n_past, n_rows, flags);
        if (rc) return rc;
    }
    c.kind = HMTI_LOAD;
    c.pos = head + (size_t)n_rows;
    walk_state(&c, ctx, &into, seq >= 0 ? 0 : n_rows, flags, &bad_row);
    return HMT_OK;
}

/* The whole-context calls keep their promise (the outputs of the last eval
 * belong to the state) only for a context of one sequence. */
static int one_sequence(hmt_ctx *ctx, const char *fn) {
    const int32_t n_seq = hmti_ctx_backbone(ctx)->n_seq;
    if (n_seq == 1) return HMT_OK;
    return hmti_errf(HMT_E_INVAL, "%s: the context holds %d sequences: save and restore each "
                     "with hmt_ctx_seq_save / hmt_ctx_seq_restore", fn, n_seq);
}

static int ctx_save(hmt_ctx *ctx, void *buf, size_t cap, size_t *len_out) {
    if (!ctx || !len_out || (!buf && cap))
        return hmti_errf(HMT_E_INVAL, "hmt_ctx_save: NULL argument");
    int rc = one_sequence(ctx, "hmt_ctx_save");
    if (rc) return rc;
    const hmti_kv_region kv = region_of(ctx, 0, hmt_ctx_n_past(ctx));
    return save_region(ctx, &kv, 1, buf, cap, len_out, "hmt_ctx_save");
}

static int ctx_restore(hmt_ctx *ctx, const void *buf, size_t len) {
    if (!ctx || !buf) return hmti_errf(HMT_E_INVAL, "hmt_ctx_restore: NULL argument");
    int rc = one_sequence(ctx, "hmt_ctx_restore");
    if (rc) return rc;
    const hmti_kv_region kv = region_of(ctx, 0, 0);
    return restore_region(ctx, &kv, -1, buf, len);
}

static int ctx_seq_save(hmt_ctx *ctx, int32_t seq, void *buf, size_t cap, size_t *len_out) {
    if (!ctx || !len_out || (!buf && cap))
        return hmti_errf(HMT_E_INVAL, "hmt_ctx_seq_save: NULL argument");
    int rc = hmti_ctx_check_seq(ctx, seq, "hmt_ctx_seq_save", "sequence");
    if (rc) return rc;
    const hmti_kv_region kv = region_of(ctx, seq, hmt_ctx_seq_n_past(ctx, seq));
    return save_region(ctx, &kv, 0, buf, cap, len_out, "hmt_ctx_seq_save");
}

static int ctx_seq_restore(hmt_ctx *ctx, int32_t seq, const void *buf, size_t len) {
    if (!ctx || !buf) return hmti_errf(HMT_E_INVAL, "hmt_ctx_seq_restore: NULL argument");
    int rc = hmti_ctx_check_seq(ctx, seq, "hmt_ctx_seq_restore", "sequence");
    if (rc) return rc;
    const hmti_kv_region kv = region_of(ctx, seq, 0);
    return restore_region(ctx, &kv, seq, buf, len);
}

/* The handle guard (busy.h): a save racing an eval would read a half-written
 * cache. The file variants go through these two. */
#define GUARDED(fn, call) HMTI_GUARDED_AT(hmti_ctx_guard(ctx), HMTI_MAGIC_CTX, fn, call)

HMT_API int hmt_ctx_save(const hmt_ctx *cctx, void *buf, size_t cap, size_t *len_out) {
    hmt_ctx *ctx = (hmt_ctx *)cctx; /* only the guard's flag changes */
    GUARDED("hmt_ctx_save", ctx_save(ctx, buf, cap, len_out));
}

HMT_API int hmt_ctx_restore(hmt_ctx *ctx, const void *buf, size_t len) {
    GUARDED("hmt_ctx_restore", ctx_restore(ctx, buf, len));
}

HMT_API int hmt_ctx_seq_save(const hmt_ctx *cctx, int32_t seq, void *buf, size_t cap,
                             size_t *len_out) {
    hmt_ctx *ctx = (hmt_ctx *)cctx; /* only the guard's flag changes */
    GUARDED("hmt_ctx_seq_save", ctx_seq_save(ctx, seq, buf, cap, len_out));
}

HMT_API int hmt_ctx_seq_restore(hmt_ctx *ctx, int32_t seq, const void *buf, size_t len) {
    GUARDED("hmt_ctx_seq_restore", ctx_seq_restore(ctx, seq, buf, len));
}

HMT_API int hmt_ctx_save_file(const hmt_ctx *cctx, const char *path) {
    hmt_ctx *ctx = (hmt_ctx *)cctx; /* saving only reads the context */
    if (!ctx || !path) return hmti_errf(HMT_E_INVAL, "hmt_ctx_save_file: NULL argument");
    if (hmti_guard_check(hmti_ctx_guard(ctx), HMTI_MAGIC_CTX, "hmt_ctx_save_file"))
        return HMT_E_MISUSE;
    /* measured here, not by a size query: success leaves no message */
    const uint64_t need = state_bytes(ctx, hmt_ctx_n_past(ctx), hmti_ctx_n_rows(ctx), NULL);
    void *buf = need > SIZE_MAX ? NULL : hmti_malloc((size_t)need);
    if (!buf) return hmti_errf(HMT_E_NOMEM, "hmt_ctx_save_file: out of memory");
    size_t len;
    int rc = hmt_ctx_save(ctx, buf, (size_t)need, &len);
    if (!rc) rc = hmti_state_write_file(path, buf, len, "hmt_ctx_save_file");
    free(buf);
    return rc;
}

/* The largest state this context can hold: n_ctx slots, each an output
 * row with every output (an F32 cache's size, so that a state of another
 * KV type is read and refused by name). restore_file reads no file larger
 * than this. */
static uint64_t max_state_bytes(hmt_ctx *ctx) {
    const hmt_model *m = model_of(ctx);
    const uint64_t n = (uint64_t)hmti_ctx_backbone(ctx)->n_ctx;
    return head_of(2) + n + hmti_kv_walk_bytes(m, (int64_t)n, HMTI_TYPE_F32) +
           n * ((uint64_t)m->n_vocab + 2 * (uint64_t)m->n_embd) * sizeof(float) + CHECKSUM;
}

HMT_API int hmt_ctx_restore_file(hmt_ctx *ctx, const char *path) {
    if (!ctx || !path) return hmti_errf(HMT_E_INVAL, "hmt_ctx_restore_file: NULL argument");
    if (hmti_guard_check(hmti_ctx_guard(ctx), HMTI_MAGIC_CTX, "hmt_ctx_restore_file"))
        return HMT_E_MISUSE;
    const uint64_t max = max_state_bytes(ctx);
    unsigned char *buf;
    size_t len;
    int rc = hmti_state_read_file(path, max > SIZE_MAX ? SIZE_MAX : (size_t)max,
                                  "state of this context", "hmt_ctx_restore_file", &buf, &len);
    if (!rc) rc = hmt_ctx_restore(ctx, buf, len);
    free(buf);
    return rc ? rc : HMT_OK;
}
