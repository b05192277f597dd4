/* GGUF v2/v3 reader. The whole file is parsed and checked once, at open time;
 * afterwards every accessor reads only from positions that were validated.
 *
 * Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 metadata
 * count; the metadata (string key, u32 value type, value); the tensor infos
 * (string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset); padding up
 * to general.alignment; the tensor data, offsets relative to its start. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/file_open.h"
#include "io/gguf.h"
#include "kernels/quant.h"

#define DEFAULT_ALIGNMENT 32
#define MAX_ARRAY_DEPTH 8     /* arrays of arrays nested deeper are rejected */
#define MIN_KV_BYTES 13       /* key length, value type, a one-byte value */
#define MIN_TENSOR_BYTES 32   /* name length, n_dims, one ne, type, offset */
#define MIN_ARRAY_BYTES 12    /* element type, count */
#define N_VTYPES 13
#define MAX_DIMS 4

typedef struct {
    hmti_str key;
    uint32_t type;
    uint32_t elem_type; /* arrays: element type                          */
    uint64_t n;         /* arrays: element count                         */
    uint64_t pos;       /* file offset of the value (arrays: 1st element) */
    uint64_t *str_pos;  /* string arrays: offset of each element's length */
} gguf_kv;

typedef struct {
    hmti_gguf_tensor pub;
    uint64_t offset; /* relative to the data section */
} gguf_tensor;

/* Open-addressing hash from names to item indices (slot = index + 1). */
typedef struct {
    uint64_t *slot;
    uint64_t mask;
} name_index;

struct hmti_gguf {
    const uint8_t *base;
    uint64_t size;
    void *map; /* our mmap, or NULL for a caller buffer */
    size_t map_len;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_pos;
    uint64_t n_kv, n_tensors; /* entries allocated so far, then the counts */
    gguf_kv *kv;
    gguf_tensor *tensors;
    name_index kv_index, tensor_index;
};

static const uint8_t EMPTY[1];
static const uint8_t SCALAR_SIZE[N_VTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
static const char *const VTYPE_NAME[N_VTYPES] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32",  "float32",
    "bool",  "string", "array", "uint64", "int64", "float64"};

/* ---- little-endian loads (the mapping may be unaligned) -------------------- */
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

/* ---- parser state and error reporting ------------------------------------ */
typedef struct {
    const uint8_t *b;
    uint64_t size, pos;
    char where[160]; /* "metadata key 7 ('general.name')", for messages */
} parser;

static int fail(const parser *p, int code, const char *fmt, ...) HMTI_PRINTF(3, 4);
static int fail(const parser *p, int code, const char *fmt, ...) {
    char detail[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return hmti_errf(code, "gguf: %s: %s", p->where, detail);
}

static int need(const parser *p, uint64_t n, const char *field) {
    if (p->size - p->pos >= n) return HMT_OK;
    return fail(p, HMT_E_FORMAT,
                "%s (%" PRIu64 " bytes) at offset %" PRIu64 " runs past end of file (size %" PRIu64
                ")",
                field, n, p->pos, p->size);
}

static int rd_u32(parser *p, const char *field, uint32_t *out) {
    int rc = need(p, 4, field);
    if (rc) return rc;
    *out = le32(p->b + p->pos);
    p->pos += 4;
    return HMT_OK;
}

static int rd_u64(parser *p, const char *field, uint64_t *out) {
    int rc = need(p, 8, field);
    if (rc) return rc;
    *out = le64(p->b + p->pos);
    p->pos += 8;
    return HMT_OK;
}

static int rd_str(parser *p, const char *field, hmti_str *out) {
    uint64_t at = p->pos, len;
    int rc = rd_u64(p, field, &len);
    if (rc) return rc;
    if (len > p->size - p->pos)
        return fail(p, HMT_E_FORMAT,
                    "%s: string length %" PRIu64 " exceeds file size at offset %" PRIu64
                    " (size %" PRIu64 ")",
                    field, len, at, p->size);
    out->ptr = (const char *)p->b + p->pos;
    out->len = len;
    p->pos += len;
    return HMT_OK;
}

static int check_vtype(const parser *p, uint32_t t, const char *field) {
    if (t < N_VTYPES) return HMT_OK;
    return fail(p, HMT_E_FORMAT, "%s %" PRIu32 " at offset %" PRIu64 " is not a GGUF type", field,
                t, p->pos - 4);
}

/* ---- metadata values --------------------------------------------------------- */
static int skip_value(parser *p, uint32_t type, unsigned depth);

static int read_array_head(parser *p, unsigned depth, uint32_t *elem, uint64_t *n) {
    if (depth >= MAX_ARRAY_DEPTH)
        return fail(p, HMT_E_FORMAT, "arrays nested more than %d deep at offset %" PRIu64,
                    MAX_ARRAY_DEPTH, p->pos);
    int rc = rd_u32(p, "array element type", elem);
    if (!rc) rc = check_vtype(p, *elem, "array element type");
    uint64_t at = p->pos;
    if (!rc) rc = rd_u64(p, "array length", n);
    if (rc) return rc;
    /* Bound the count by the bytes left before anything loops or allocates. */
    uint64_t min = *elem == HMTI_GGUF_STRING  ? 8
                   : *elem == HMTI_GGUF_ARRAY ? MIN_ARRAY_BYTES
                                              : SCALAR_SIZE[*elem];
    if (*n > (p->size - p->pos) / min)
        return fail(p, HMT_E_FORMAT,
                    "array length %" PRIu64 " (%s) exceeds file size at offset %" PRIu64
                    " (size %" PRIu64 ")",
                    *n, VTYPE_NAME[*elem], at, p->size);
    return HMT_OK;
}

static int skip_elems(parser *p, uint32_t elem, uint64_t n, unsigned depth) {
    if (elem != HMTI_GGUF_STRING && elem != HMTI_GGUF_ARRAY && elem != HMTI_GGUF_BOOL) {
        p->pos += n * SCALAR_SIZE[elem]; /* in bounds: read_array_head checked */
        return HMT_OK;
    }
    for (uint64_t i = 0; i < n; i++) {
        int rc = skip_value(p, elem, depth);
        if (rc) return rc;
    }
    return HMT_OK;
}

/* Validate one value of the given type at p->pos and step over it. */
static int skip_value(parser *p, uint32_t type, unsigned depth) {
    if (type == HMTI_GGUF_STRING) {
        hmti_str s;
        return rd_str(p, "string value", &s);
    }
    if (type == HMTI_GGUF_ARRAY) {
        uint32_t elem;
        uint64_t n;
        int rc = read_array_head(p, depth, &elem, &n);
        return rc ? rc : skip_elems(p, elem, n, depth + 1);
    }
    int rc = need(p, SCALAR_SIZE[type], VTYPE_NAME[type]);
    if (rc) return rc;
    if (type == HMTI_GGUF_BOOL && p->b[p->pos] > 1)
        return fail(p, HMT_E_FORMAT, "bool value %u at offset %" PRIu64 " is not 0 or 1",
                    p->b[p->pos], p->pos);
    p->pos += SCALAR_SIZE[type];
    return HMT_OK;
}

/* String arrays: validate, then record where each element starts so that
 * element i is found in O(1) (vocabularies hold 100k+ strings). */
static int index_strings(parser *p, gguf_kv *kv) {
    int rc = skip_elems(p, HMTI_GGUF_STRING, kv->n, 1);
    if (rc || kv->n == 0) return rc;
    if (kv->n > SIZE_MAX / sizeof *kv->str_pos)
        return fail(p, HMT_E_NOMEM, "string array of %" PRIu64 " elements", kv->n);
    kv->str_pos = hmti_malloc(kv->n * sizeof *kv->str_pos);
    if (!kv->str_pos)
        return fail(p, HMT_E_NOMEM, "out of memory indexing %" PRIu64 " strings", kv->n);
    uint64_t pos = kv->pos;
    for (uint64_t i = 0; i < kv->n; i++) {
        kv->str_pos[i] = pos;
        pos += 8 + le64(p->b + pos);
    }
    return HMT_OK;
}

static int parse_kv(parser *p, gguf_kv *kv, uint64_t i) {
    snprintf(p->where, sizeof p->where, "metadata key %" PRIu64, i);
    int rc = rd_str(p, "key", &kv->key);
    if (rc) return rc;
    snprintf(p->where, sizeof p->where, "metadata key %" PRIu64 " ('%.*s')", i,
             (int)(kv->key.len < 64 ? kv->key.len : 64), kv->key.ptr);
    rc = rd_u32(p, "value type", &kv->type);
    if (!rc) rc = check_vtype(p, kv->type, "value type");
    if (rc) return rc;
    kv->pos = p->pos;
    if (kv->type != HMTI_GGUF_ARRAY) return skip_value(p, kv->type, 0);
    rc = read_array_head(p, 0, &kv->elem_type, &kv->n);
    if (rc) return rc;
    kv->pos = p->pos;
    if (kv->elem_type == HMTI_GGUF_STRING) return index_strings(p, kv);
    return skip_elems(p, kv->elem_type, kv->n, 1);
}

/* ---- tensors --------------------------------------------------------------- */
static int mul_ok(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}

static int tensor_size(const parser *p, hmti_gguf_tensor *t) {
    uint64_t n = 1;
    for (int d = 0; d < MAX_DIMS; d++)
        if (!mul_ok(n, t->ne[d], &n) || n > INT64_MAX)
            return fail(p, HMT_E_FORMAT,
                        "element count overflows (ne = [%" PRIu64 ", %" PRIu64 ", %" PRIu64
                        ", %" PRIu64 "])",
                        t->ne[0], t->ne[1], t->ne[2], t->ne[3]);
    t->n_elements = n;
    const hmti_qtraits *qt = hmti_qtraits_of(t->type);
    if (!qt)
        return fail(p, HMT_E_UNSUPPORTED,
                    "tensor type %s (%" PRIu32 ") is not supported (supported: " HMTI_QTYPES_LIST
                    ")", hmti_tensor_type_name(t->type), t->type);
    if (t->ne[0] % (uint64_t)qt->block_elems)
        return fail(p, HMT_E_FORMAT, "%s row length ne[0] = %" PRIu64
                    " is not a multiple of %d", hmti_tensor_type_name(t->type),
                    t->ne[0], (int)qt->block_elems);
    int ok = mul_ok(n / (uint64_t)qt->block_elems, (uint64_t)qt->block_bytes, &t->nbytes);
    if (!ok) return fail(p, HMT_E_FORMAT, "byte size of %" PRIu64 " elements overflows", n);
    return HMT_OK;
}

static int parse_tensor_info(parser *p, gguf_tensor *gt, uint64_t i) {
    static const char *const NE_FIELD[MAX_DIMS] = {"ne[0]", "ne[1]", "ne[2]", "ne[3]"};
    hmti_gguf_tensor *t = &gt->pub;
    snprintf(p->where, sizeof p->where, "tensor %" PRIu64, i);
    int rc = rd_str(p, "name", &t->name);
    if (rc) return rc;
    snprintf(p->where, sizeof p->where, "tensor %" PRIu64 " ('%.*s')", i,
             (int)(t->name.len < 64 ? t->name.len : 64), t->name.ptr);
    if ((rc = rd_u32(p, "n_dims", &t->n_dims))) return rc;
    if (t->n_dims < 1 || t->n_dims > MAX_DIMS)
        return fail(p, HMT_E_FORMAT, "n_dims %" PRIu32 " at offset %" PRIu64 " is not in 1..%d",
                    t->n_dims, p->pos - 4, MAX_DIMS);
    for (uint32_t d = 0; d < MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d >= t->n_dims) continue;
        if ((rc = rd_u64(p, NE_FIELD[d], &t->ne[d]))) return rc;
        if (t->ne[d] > INT64_MAX)
            return fail(p, HMT_E_FORMAT, "%s = %" PRIu64 " at offset %" PRIu64 " is negative",
                        NE_FIELD[d], t->ne[d], p->pos - 8);
    }
    if ((rc = rd_u32(p, "type", &t->type))) return rc;
    if ((rc = rd_u64(p, "data offset", &gt->offset))) return rc;
    return tensor_size(p, t);
}

/* Runs once the data section's start is known. */
static int place_tensor(parser *p, const hmti_gguf *g, gguf_tensor *gt, uint64_t i) {
    hmti_gguf_tensor *t = &gt->pub;
    snprintf(p->where, sizeof p->where, "tensor %" PRIu64 " ('%.*s')", i,
             (int)(t->name.len < 64 ? t->name.len : 64), t->name.ptr);
    if (gt->offset % g->alignment)
        return fail(p, HMT_E_FORMAT,
                    "data offset %" PRIu64 " is not a multiple of the alignment %" PRIu32,
                    gt->offset, g->alignment);
    uint64_t avail = g->size - g->data_pos;
    if (gt->offset > avail || t->nbytes > avail - gt->offset) {
        uint64_t abs = gt->offset > UINT64_MAX - g->data_pos ? UINT64_MAX
                                                             : g->data_pos + gt->offset;
        return fail(p, HMT_E_FORMAT,
                    "data [offset %" PRIu64 ", %" PRIu64
                    " bytes] extends past end of file (size %" PRIu64 ")",
                    abs, t->nbytes, g->size);
    }
    t->data = g->base + g->data_pos + gt->offset;
    return HMT_OK;
}

/* ---- name index ------------------------------------------------------------ */
typedef hmti_str (*name_fn)(const hmti_gguf *g, uint64_t i);

static hmti_str kv_name(const hmti_gguf *g, uint64_t i) { return g->kv[i].key; }
static hmti_str tensor_name(const hmti_gguf *g, uint64_t i) { return g->tensors[i].pub.name; }

static uint64_t hash_bytes(const char *s, uint64_t n) {
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (uint64_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211u;
    return h;
}

static int same(hmti_str a, const char *s, uint64_t n) {
    return a.len == n && (n == 0 || memcmp(a.ptr, s, n) == 0);
}

/* Index of the item named (s, n), or -1. */
static int64_t index_find(const name_index *ix, const hmti_gguf *g, name_fn name, const char *s,
                          uint64_t n) {
    if (!ix->slot) return -1;
    for (uint64_t h = hash_bytes(s, n) & ix->mask;; h = (h + 1) & ix->mask) {
        uint64_t v = ix->slot[h];
        if (!v) return -1;
        if (same(name(g, v - 1), s, n)) return (int64_t)(v - 1);
    }
}

/* Index n items; a repeated name is HMT_E_FORMAT (*first, *dup say which). */
static int index_build(name_index *ix, const hmti_gguf *g, uint64_t n, name_fn name,
                       uint64_t *first, uint64_t *dup) {
    uint64_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    if (cap > SIZE_MAX / sizeof *ix->slot) return HMT_E_NOMEM;
    ix->slot = hmti_calloc(cap, sizeof *ix->slot);
    if (!ix->slot) return HMT_E_NOMEM;
    ix->mask = cap - 1;
    for (uint64_t i = 0; i < n; i++) {
        hmti_str s = name(g, i);
        int64_t j = index_find(ix, g, name, s.ptr, s.len);
        if (j >= 0) {
            *first = (uint64_t)j;
            *dup = i;
            return HMT_E_FORMAT;
        }
        uint64_t h = hash_bytes(s.ptr, s.len) & ix->mask;
        while (ix->slot[h]) h = (h + 1) & ix->mask;
        ix->slot[h] = i + 1;
    }
    return HMT_OK;
}

static int build_indexes(hmti_gguf *g) {
    uint64_t a = 0, b = 0;
    int rc = index_build(&g->kv_index, g, g->n_kv, kv_name, &a, &b);
    if (rc == HMT_E_FORMAT) {
        hmti_str k = g->kv[b].key;
        return hmti_errf(rc, "gguf: metadata key %" PRIu64 " ('%.*s'): duplicate of key %" PRIu64,
                         b, (int)(k.len < 64 ? k.len : 64), k.ptr, a);
    }
    if (!rc) rc = index_build(&g->tensor_index, g, g->n_tensors, tensor_name, &a, &b);
    if (rc == HMT_E_FORMAT) {
        hmti_str t = g->tensors[b].pub.name;
        return hmti_errf(rc, "gguf: tensor %" PRIu64 " ('%.*s'): duplicate of tensor %" PRIu64, b,
                         (int)(t.len < 64 ? t.len : 64), t.ptr, a);
    }
    if (rc) return hmti_errf(rc, "gguf: out of memory building the name index");
    return HMT_OK;
}

/* ---- whole-file parse -------------------------------------------------------- */
/* Make room for element n of a doubling array. */
static int grow(void **arr, uint64_t *cap, uint64_t n, size_t elsz) {
    if (n < *cap) return HMT_OK;
    uint64_t nc = *cap ? *cap * 2 : 16;
    void *q = nc <= SIZE_MAX / elsz ? hmti_realloc(*arr, nc * elsz) : NULL;
    if (!q) return hmti_errf(HMT_E_NOMEM, "gguf: out of memory for %" PRIu64 " entries", nc);
    *arr = q;
    *cap = nc;
    return HMT_OK;
}

static int parse_header(parser *p, hmti_gguf *g, uint64_t *n_tensors, uint64_t *n_kv) {
    snprintf(p->where, sizeof p->where, "header");
    int rc = need(p, 4, "magic");
    if (rc) return rc;
    if (memcmp(p->b, "GGUF", 4) != 0)
        return fail(p, HMT_E_FORMAT, "bad magic 0x%08" PRIx32 " at offset 0 (expected \"GGUF\")",
                    le32(p->b));
    p->pos = 4;
    if ((rc = rd_u32(p, "version", &g->version))) return rc;
    uint32_t v = g->version;
    if (v == 1)
        return fail(p, HMT_E_UNSUPPORTED, "version 1 is not supported (only 2 and 3 are)");
    if (v == 0x02000000u || v == 0x03000000u)
        return fail(p, HMT_E_UNSUPPORTED, "big-endian GGUF is not supported");
    if (v == 0) return fail(p, HMT_E_FORMAT, "version 0 is invalid");
    if (v > 3)
        return fail(p, HMT_E_UNSUPPORTED,
                    "version %" PRIu32 " is not supported (only 2 and 3 are)", v);
    if ((rc = rd_u64(p, "tensor count", n_tensors))) return rc;
    if ((rc = rd_u64(p, "metadata count", n_kv))) return rc;
    uint64_t left = p->size - p->pos;
    if (*n_tensors > left / MIN_TENSOR_BYTES)
        return fail(p, HMT_E_FORMAT,
                    "tensor count %" PRIu64 " exceeds what the file (size %" PRIu64 ") can hold",
                    *n_tensors, p->size);
    if (*n_kv > (left - *n_tensors * MIN_TENSOR_BYTES) / MIN_KV_BYTES)
        return fail(p, HMT_E_FORMAT,
                    "metadata count %" PRIu64 " exceeds what the file (size %" PRIu64 ") can hold",
                    *n_kv, p->size);
    return HMT_OK;
}

static int parse_alignment(parser *p, hmti_gguf *g) {
    g->alignment = DEFAULT_ALIGNMENT;
    hmti_str want = {"general.alignment", 17};
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        if (!same(kv->key, want.ptr, want.len)) continue;
        snprintf(p->where, sizeof p->where, "metadata key %" PRIu64 " ('general.alignment')", i);
        if (kv->type != HMTI_GGUF_UINT32)
            return fail(p, HMT_E_FORMAT, "has type %s, expected uint32", VTYPE_NAME[kv->type]);
        uint32_t a = le32(p->b + kv->pos);
        if (a == 0 || (a & (a - 1)))
            return fail(p, HMT_E_FORMAT, "alignment %" PRIu32 " is not a nonzero power of two", a);
        g->alignment = a;
        return HMT_OK; /* a duplicate key is reported by the index */
    }
    return HMT_OK;
}

static int parse(hmti_gguf *g) {
    parser p = {.b = g->base, .size = g->size, .pos = 0};
    uint64_t n_tensors, n_kv, cap = 0;
    int rc = parse_header(&p, g, &n_tensors, &n_kv);
    for (uint64_t i = 0; !rc && i < n_kv; i++) {
        if ((rc = grow((void **)&g->kv, &cap, i, sizeof *g->kv))) break;
        memset(&g->kv[i], 0, sizeof g->kv[i]);
        g->n_kv = i + 1; /* so that close frees a half-parsed entry */
        rc = parse_kv(&p, &g->kv[i], i);
    }
    if (!rc) rc = parse_alignment(&p, g);
    cap = 0;
    for (uint64_t i = 0; !rc && i < n_tensors; i++) {
        if ((rc = grow((void **)&g->tensors, &cap, i, sizeof *g->tensors))) break;
        memset(&g->tensors[i], 0, sizeof g->tensors[i]);
        g->n_tensors = i + 1;
        rc = parse_tensor_info(&p, &g->tensors[i], i);
    }
    if (rc) return rc;
    snprintf(p.where, sizeof p.where, "data section");
    uint64_t pad = (g->alignment - p.pos % g->alignment) % g->alignment;
    if (pad > UINT64_MAX - p.pos) return fail(&p, HMT_E_FORMAT, "offset overflows");
    g->data_pos = p.pos + pad;
    if (g->data_pos > g->size) {
        if (n_tensors)
            return fail(&p, HMT_E_FORMAT,
                        "starts at offset %" PRIu64 " (alignment %" PRIu32
                        "), past end of file (size %" PRIu64 ")",
                        g->data_pos, g->alignment, g->size);
        g->data_pos = g->size; /* no tensors: the padding may be omitted */
    }
    for (uint64_t i = 0; !rc && i < n_tensors; i++) rc = place_tensor(&p, g, &g->tensors[i], i);
    return rc ? rc : build_indexes(g);
}

/* Takes ownership of map (munmapped on failure). */
static int open_common(hmti_gguf **out, const uint8_t *base, uint64_t size, void *map,
                       size_t map_len) {
    hmti_gguf *g = hmti_calloc(1, sizeof *g);
    if (!g) {
        if (map) munmap(map, map_len);
        return hmti_errf(HMT_E_NOMEM, "gguf: out of memory");
    }
    g->base = base;
    g->size = size;
    g->map = map;
    g->map_len = map_len;
    int rc = parse(g);
    if (rc) {
        hmti_gguf_close(g);
        return rc;
    }
    *out = g;
    return HMT_OK;
}

int hmti_gguf_open_buffer(hmti_gguf **out, const void *buf, size_t len) {
    if (!out) return hmti_errf(HMT_E_INVAL, "gguf: out is NULL");
    *out = NULL;
    if (!buf && len) return hmti_errf(HMT_E_INVAL, "gguf: buffer is NULL");
    return open_common(out, len ? buf : EMPTY, len, NULL, 0);
}

int hmti_gguf_open(hmti_gguf **out, const char *path) {
    if (!out) return hmti_errf(HMT_E_INVAL, "gguf: out is NULL");
    *out = NULL;
    if (!path) return hmti_errf(HMT_E_INVAL, "gguf: path is NULL");
    char eb[128];
    int fd;
    uint64_t fsize;
    int rc = hmti_open_regular(path, "gguf", &fd, &fsize);
    if (rc) return rc;
    if (fsize > SIZE_MAX) {
        close(fd);
        return hmti_errf(HMT_E_IO, "gguf: '%s' is too large to map", path);
    }
    size_t size = (size_t)fsize;
    if (size == 0) { /* mmap rejects length 0; the parser reports the truncation */
        close(fd);
        return open_common(out, EMPTY, 0, NULL, 0);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return hmti_errf(HMT_E_IO, "gguf: cannot map '%s' (%zu bytes): %s", path, size,
                         strerror_r(e, eb, sizeof eb));
    return open_common(out, map, size, map, size);
}

void hmti_gguf_close(hmti_gguf *g) {
    if (!g) return;
    for (uint64_t i = 0; i < g->n_kv; i++) free(g->kv[i].str_pos);
    free(g->kv);
    free(g->tensors);
    free(g->kv_index.slot);
    free(g->tensor_index.slot);
    if (g->map) munmap(g->map, g->map_len);
    free(g);
}

uint32_t hmti_gguf_version(const hmti_gguf *g) { return g ? g->version : 0; }
uint64_t hmti_gguf_n_kv(const hmti_gguf *g) { return g ? g->n_kv : 0; }
uint64_t hmti_gguf_n_tensors(const hmti_gguf *g) { return g ? g->n_tensors : 0; }

/* ---- metadata access ---------------------------------------------------------- */
int64_t hmti_gguf_find_key(const hmti_gguf *g, const char *key) {
    if (!g || !key) return -1;
    return index_find(&g->kv_index, g, kv_name, key, strlen(key));
}

hmti_str hmti_gguf_key_name(const hmti_gguf *g, int64_t idx) {
    hmti_str none = {NULL, 0};
    if (!g || idx < 0 || (uint64_t)idx >= g->n_kv) return none;
    return g->kv[idx].key;
}

hmti_gguf_vtype hmti_gguf_kv_type(const hmti_gguf *g, int64_t idx) {
    if (!g || idx < 0 || (uint64_t)idx >= g->n_kv) return (hmti_gguf_vtype)-1;
    return (hmti_gguf_vtype)g->kv[idx].type;
}

static int get_kv(const hmti_gguf *g, const char *key, const gguf_kv **out) {
    if (!g || !key) return hmti_errf(HMT_E_INVAL, "gguf: NULL handle or key");
    int64_t i = hmti_gguf_find_key(g, key);
    if (i < 0) return hmti_errf(HMT_E_INVAL, "gguf: metadata key '%s' not found", key);
    *out = &g->kv[i];
    return HMT_OK;
}

static int wrong_type(const gguf_kv *kv, const char *key, const char *want) {
    if (kv->type == HMTI_GGUF_ARRAY)
        return hmti_errf(HMT_E_FORMAT, "gguf: metadata key '%s' has type array of %s, expected %s",
                         key, VTYPE_NAME[kv->elem_type], want);
    return hmti_errf(HMT_E_FORMAT, "gguf: metadata key '%s' has type %s, expected %s", key,
                     VTYPE_NAME[kv->type], want);
}

/* An integer value as (negative?, two's-complement bits); 0 if not an integer. */
static int int_value(const uint8_t *p, uint32_t type, int *neg, uint64_t *bits) {
    int64_t s;
    switch (type) {
    case HMTI_GGUF_UINT8: *neg = 0, *bits = p[0]; return 1;
    case HMTI_GGUF_UINT16: *neg = 0, *bits = le16(p); return 1;
    case HMTI_GGUF_UINT32: *neg = 0, *bits = le32(p); return 1;
    case HMTI_GGUF_UINT64: *neg = 0, *bits = le64(p); return 1;
    case HMTI_GGUF_INT8: s = (int8_t)p[0]; break;
    case HMTI_GGUF_INT16: s = (int16_t)le16(p); break;
    case HMTI_GGUF_INT32: s = (int32_t)le32(p); break;
    case HMTI_GGUF_INT64: s = (int64_t)le64(p); break;
    default: return 0;
    }
    *neg = s < 0;
    *bits = (uint64_t)s;
    return 1;
}

static double float_value(const uint8_t *p, uint32_t type) {
    if (type == HMTI_GGUF_FLOAT32) {
        uint32_t u = le32(p);
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    uint64_t u = le64(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static int does_not_fit(const hmti_gguf *g, const gguf_kv *kv, const char *key, const char *to) {
    char text[32];
    hmti_gguf_value_text(g, kv - g->kv, text, sizeof text);
    return hmti_errf(HMT_E_FORMAT, "gguf: metadata key '%s' = %s (%s) does not fit in %s", key,
                     text, VTYPE_NAME[kv->type], to);
}

int hmti_gguf_get_u32(const hmti_gguf *g, const char *key, uint32_t *out) {
    const gguf_kv *kv;
    int rc = get_kv(g, key, &kv), neg;
    uint64_t bits;
    if (rc) return rc;
    if (!int_value(g->base + kv->pos, kv->type, &neg, &bits)) return wrong_type(kv, key, "integer");
    if (neg || bits > UINT32_MAX) return does_not_fit(g, kv, key, "uint32");
    *out = (uint32_t)bits;
    return HMT_OK;
}

int hmti_gguf_get_i64(const hmti_gguf *g, const char *key, int64_t *out) {
    const gguf_kv *kv;
    int rc = get_kv(g, key, &kv), neg;
    uint64_t bits;
    if (rc) return rc;
    if (!int_value(g->base + kv->pos, kv->type, &neg, &bits)) return wrong_type(kv, key, "integer");
    if (!neg && bits > INT64_MAX) return does_not_fit(g, kv, key, "int64");
    *out = (int64_t)bits;
    return HMT_OK;
}

int hmti_gguf_get_f32(const hmti_gguf *g, const char *key, float *out) {
    const gguf_kv *kv;
    int rc = get_kv(g, key, &kv), neg;
    uint64_t bits;
    if (rc) return rc;
    const uint8_t *p = g->base + kv->pos;
    if (kv->type == HMTI_GGUF_FLOAT32 || kv->type == HMTI_GGUF_FLOAT64)
        *out = (float)float_value(p, kv->type);
    else if (int_value(p, kv->type, &neg, &bits))
        *out = neg ? (float)(int64_t)bits : (float)bits;
    else
        return wrong_type(kv, key, "float");
    return HMT_OK;
}

int hmti_gguf_get_bool(const hmti_gguf *g, const char *key, int *out) {
    const gguf_kv *kv;
    int rc = get_kv(g, key, &kv), neg;
    uint64_t bits;
    if (rc) return rc;
    if (kv->type == HMTI_GGUF_BOOL) {
        *out = g->base[kv->pos];
        return HMT_OK;
    }
    if (!int_value(g->base + kv->pos, kv->type, &neg, &bits)) return wrong_type(kv, key, "bool");
    if (neg || bits > 1) return does_not_fit(g, kv, key, "bool");
    *out = (int)bits;
    return HMT_OK;
}

int hmti_gguf_get_str(const hmti_gguf *g, const char *key, hmti_str *out) {
    const gguf_kv *kv;
    int rc = get_kv(g, key, &kv);
    if (rc) return rc;
    if (kv->type != HMTI_GGUF_STRING) return wrong_type(kv, key, "string");
    out->len = le64(g->base + kv->pos);
    out->ptr = (const char *)g->base + kv->pos + 8;
    return HMT_OK;
}

int hmti_gguf_get_arr(const hmti_gguf *g, const char *key, hmti_gguf_vtype *elem_type,
                      uint64_t *n, const void **data) {
    const gguf_kv *kv;
    int rc = get_kv(g, key, &kv);
    if (rc) return rc;
    if (kv->type != HMTI_GGUF_ARRAY) return wrong_type(kv, key, "array");
    if (elem_type) *elem_type = (hmti_gguf_vtype)kv->elem_type;
    if (n) *n = kv->n;
    if (data) *data = g->base + kv->pos;
    return HMT_OK;
}

int hmti_gguf_arr_str(const hmti_gguf *g, const char *key, uint64_t i, hmti_str *out) {
    const gguf_kv *kv;
    int rc = get_kv(g, key, &kv);
    if (rc) return rc;
    if (kv->type != HMTI_GGUF_ARRAY || kv->elem_type != HMTI_GGUF_STRING)
        return wrong_type(kv, key, "array of string");
    if (i >= kv->n)
        return hmti_errf(HMT_E_INVAL, "gguf: index %" PRIu64 " is out of range for '%s' (%" PRIu64
                         " elements)", i, key, kv->n);
    const uint8_t *p = g->base + kv->str_pos[i];
    out->len = le64(p);
    out->ptr = (const char *)p + 8;
    return HMT_OK;
}

/* Copy n bytes snprintf-style; returns n. */
static size_t copy_text(char *buf, size_t cap, const char *s, size_t n) {
    if (cap) {
        size_t k = n < cap - 1 ? n : cap - 1;
        if (k) memcpy(buf, s, k);
        buf[k] = '\0';
    }
    return n;
}

size_t hmti_gguf_value_text(const hmti_gguf *g, int64_t idx, char *buf, size_t cap) {
    if (!buf) cap = 0;
    if (!g || idx < 0 || (uint64_t)idx >= g->n_kv) return copy_text(buf, cap, "", 0);
    const gguf_kv *kv = &g->kv[idx];
    const uint8_t *p = g->base + kv->pos;
    char tmp[96];
    int neg = 0, n;
    uint64_t bits = 0;
    if (kv->type == HMTI_GGUF_STRING)
        return copy_text(buf, cap, (const char *)p + 8, (size_t)le64(p));
    if (kv->type == HMTI_GGUF_ARRAY)
        n = snprintf(tmp, sizeof tmp, "[array of %" PRIu64 " %s]", kv->n,
                     VTYPE_NAME[kv->elem_type]);
    else if (kv->type == HMTI_GGUF_BOOL)
        n = snprintf(tmp, sizeof tmp, "%s", p[0] ? "true" : "false");
    else if (kv->type == HMTI_GGUF_FLOAT32 || kv->type == HMTI_GGUF_FLOAT64)
        n = snprintf(tmp, sizeof tmp, "%g", float_value(p, kv->type));
    else if (int_value(p, kv->type, &neg, &bits) && neg)
        n = snprintf(tmp, sizeof tmp, "%" PRId64, (int64_t)bits);
    else
        n = snprintf(tmp, sizeof tmp, "%" PRIu64, bits);
    return copy_text(buf, cap, tmp, n > 0 ? (size_t)n : 0);
}

/* ---- tensors ------------------------------------------------------------------ */
const hmti_gguf_tensor *hmti_gguf_tensor_at(const hmti_gguf *g, uint64_t i) {
    return g && i < g->n_tensors ? &g->tensors[i].pub : NULL;
}

const hmti_gguf_tensor *hmti_gguf_find_tensor(const hmti_gguf *g, const char *name) {
    if (!g || !name) return NULL;
    int64_t i = index_find(&g->tensor_index, g, tensor_name, name, strlen(name));
    return i < 0 ? NULL : &g->tensors[i].pub;
}

/* ---- names ------------------------------------------------------------------ */
const char *hmti_gguf_vtype_name(hmti_gguf_vtype t) {
    return (unsigned)t < N_VTYPES ? VTYPE_NAME[t] : "?";
}

const char *hmti_tensor_type_name(uint32_t t) {
    /* ggml's names, so that messages about unsupported files are precise. */
    static const char *const NAMES[] = {
        [0] = "f32",      [1] = "f16",     [2] = "q4_0",     [3] = "q4_1",    [6] = "q5_0",
        [7] = "q5_1",     [8] = "q8_0",    [9] = "q8_1",     [10] = "q2_K",   [11] = "q3_K",
        [12] = "q4_K",    [13] = "q5_K",   [14] = "q6_K",    [15] = "q8_K",   [16] = "iq2_xxs",
        [17] = "iq2_xs",  [18] = "iq3_xxs", [19] = "iq1_s",  [20] = "iq4_nl", [21] = "iq3_s",
        [22] = "iq2_s",   [23] = "iq4_xs", [24] = "i8",      [25] = "i16",    [26] = "i32",
        [27] = "i64",     [28] = "f64",    [29] = "iq1_m",   [30] = "bf16",   [34] = "tq1_0",
        [35] = "tq2_0"};
    if (t < sizeof NAMES / sizeof NAMES[0] && NAMES[t]) return NAMES[t];
    return "?";
}

int hmti_str_eq(hmti_str s, const char *cstr) {
    return cstr && same(s, cstr, strlen(cstr));
}

void hmti_gguf_drop_pages(const hmti_gguf *g, const void *p, size_t n) {
    if (!g || !g->map || !p || !n) return; /* a caller's buffer is not ours to drop */
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + n) / page * page;
    if (hi > lo) {
        /* no huge page may span these bytes again: one would come back
         * whole when a stored neighbour is read (up to 2 MiB per tensor
         * boundary of a mixed file) */
        madvise((void *)lo, hi - lo, MADV_NOHUGEPAGE);
        madvise((void *)lo, hi - lo, MADV_DONTNEED); /* advisory; re-read on access */
    }
}

void hmti_gguf_drop_header(const hmti_gguf *g) {
    if (g && g->map) hmti_gguf_drop_pages(g, g->map, (size_t)g->data_pos);
}
