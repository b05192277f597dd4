#include "gguf_build.h"

#include <stdlib.h>
#include <string.h>

/* Value type numbers from the GGUF specification (kept local so the builder
 * does not depend on the library it tests). */
enum { T_UINT32 = 4, T_INT32 = 5, T_FLOAT32 = 6, T_BOOL = 7, T_STRING = 8, T_ARRAY = 9,
       T_UINT64 = 10 };

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) abort(); /* tests only */
    return q;
}

void gb_put(gb_bytes *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_le(gb_bytes *b, uint64_t v, int n) {
    uint8_t tmp[8];
    for (int i = 0; i < n; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    gb_put(b, tmp, (size_t)n);
}

void gb_u8(gb_bytes *b, uint8_t v) { put_le(b, v, 1); }
void gb_u16(gb_bytes *b, uint16_t v) { put_le(b, v, 2); }
void gb_u32(gb_bytes *b, uint32_t v) { put_le(b, v, 4); }
void gb_u64(gb_bytes *b, uint64_t v) { put_le(b, v, 8); }

void gb_f32(gb_bytes *b, float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    gb_u32(b, u);
}

void gb_f64(gb_bytes *b, double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    gb_u64(b, u);
}

void gb_str(gb_bytes *b, const char *s) {
    size_t n = strlen(s);
    gb_u64(b, n);
    gb_put(b, s, n);
}

void gguf_build_init(gguf_builder *b) {
    memset(b, 0, sizeof *b);
    b->version = 3;
    b->alignment = 32;
}

void gguf_build_free(gguf_builder *b) {
    free(b->kv.data);
    memset(b, 0, sizeof *b);
}

void gguf_build_key(gguf_builder *b, const char *key, uint32_t type) {
    gb_str(&b->kv, key);
    gb_u32(&b->kv, type);
    b->n_kv++;
}

void gguf_build_u32(gguf_builder *b, const char *key, uint32_t v) {
    gguf_build_key(b, key, T_UINT32);
    gb_u32(&b->kv, v);
}

void gguf_build_i32(gguf_builder *b, const char *key, int32_t v) {
    gguf_build_key(b, key, T_INT32);
    gb_u32(&b->kv, (uint32_t)v);
}

void gguf_build_u64(gguf_builder *b, const char *key, uint64_t v) {
    gguf_build_key(b, key, T_UINT64);
    gb_u64(&b->kv, v);
}

void gguf_build_f32(gguf_builder *b, const char *key, float v) {
    gguf_build_key(b, key, T_FLOAT32);
    gb_f32(&b->kv, v);
}

void gguf_build_bool(gguf_builder *b, const char *key, int v) {
    gguf_build_key(b, key, T_BOOL);
    gb_u8(&b->kv, v ? 1 : 0);
}

void gguf_build_string(gguf_builder *b, const char *key, const char *v) {
    gguf_build_key(b, key, T_STRING);
    gb_str(&b->kv, v);
}

void gguf_build_arr_str(gguf_builder *b, const char *key, const char *const *v, uint64_t n) {
    gguf_build_key(b, key, T_ARRAY);
    gb_u32(&b->kv, T_STRING);
    gb_u64(&b->kv, n);
    for (uint64_t i = 0; i < n; i++) gb_str(&b->kv, v[i]);
}

void gguf_build_arr(gguf_builder *b, const char *key, uint32_t elem_type, const void *v,
                    uint64_t n, size_t elem_size) {
    gguf_build_key(b, key, T_ARRAY);
    gb_u32(&b->kv, elem_type);
    gb_u64(&b->kv, n);
    gb_put(&b->kv, v, (size_t)n * elem_size);
}

void gguf_build_alignment(gguf_builder *b, uint32_t alignment) {
    gguf_build_u32(b, "general.alignment", alignment);
    b->alignment = alignment;
}

gb_tensor *gguf_build_tensor(gguf_builder *b, const char *name, uint32_t type, uint32_t n_dims,
                             const uint64_t *ne, const void *data, size_t nbytes) {
    if (b->n_tensors >= GB_MAX_TENSORS) abort();
    gb_tensor *t = &b->tensors[b->n_tensors++];
    memset(t, 0, sizeof *t);
    t->name = name;
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < n_dims && d < 4; d++) t->ne[d] = ne[d];
    t->data = data;
    t->nbytes = nbytes;
    return t;
}

static size_t align_up(size_t x, size_t a) { return a ? (x + a - 1) / a * a : x; }

uint8_t *gguf_build_finish(gguf_builder *b, size_t *len) {
    gb_bytes out = {0};
    gb_put(&out, "GGUF", 4);
    gb_u32(&out, b->version);
    gb_u64(&out, b->n_tensors);
    gb_u64(&out, b->n_kv);
    gb_put(&out, b->kv.data, b->kv.len);
    b->info_pos = out.len;
    size_t off = 0;
    uint64_t offsets[GB_MAX_TENSORS];
    for (uint32_t i = 0; i < b->n_tensors; i++) {
        const gb_tensor *t = &b->tensors[i];
        off = align_up(off, b->alignment);
        offsets[i] = off;
        off += t->nbytes;
        gb_str(&out, t->name);
        gb_u32(&out, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims && d < 4; d++) gb_u64(&out, t->ne[d]);
        gb_u32(&out, t->type);
        gb_u64(&out, t->fixed_offset ? t->offset : offsets[i]);
    }
    b->data_pos = align_up(out.len, b->alignment);
    size_t start = out.len;
    size_t end = b->n_tensors ? b->data_pos + off : start; /* no tensors: no padding */
    out.data = xrealloc(out.data, end);
    memset(out.data + start, 0, end - start);
    for (uint32_t i = 0; i < b->n_tensors; i++)
        if (b->tensors[i].data)
            memcpy(out.data + b->data_pos + offsets[i], b->tensors[i].data,
                   b->tensors[i].nbytes);
    *len = end;
    return out.data; /* exactly *len bytes */
}

uint8_t *gb_dup(const void *buf, size_t len) {
    uint8_t *p = malloc(len ? len : 1);
    if (!p) abort();
    if (len) memcpy(p, buf, len);
    return p;
}
