/* A small GGUF writer for tests: builds files in memory, valid or deliberately
 * broken. Metadata is written as it is added; tensor infos and data are laid
 * out by gguf_build_finish. Out of memory aborts the (forked) test. */
#ifndef HMT_GGUF_BUILD_H
#define HMT_GGUF_BUILD_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data;
    size_t len, cap;
} gb_bytes;

void gb_put(gb_bytes *b, const void *p, size_t n);
void gb_u8(gb_bytes *b, uint8_t v);
void gb_u16(gb_bytes *b, uint16_t v);
void gb_u32(gb_bytes *b, uint32_t v);
void gb_u64(gb_bytes *b, uint64_t v);
void gb_f32(gb_bytes *b, float v);
void gb_f64(gb_bytes *b, double v);
void gb_str(gb_bytes *b, const char *s); /* u64 length + bytes */

#define GB_MAX_TENSORS 16

typedef struct {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[4];
    uint32_t type;
    const void *data; /* nbytes bytes, copied by finish (NULL: zeros) */
    size_t nbytes;
    int fixed_offset; /* 1: write `offset` instead of the computed one */
    uint64_t offset;
} gb_tensor;

typedef struct {
    uint32_t version;   /* default 3 */
    uint32_t alignment; /* layout alignment, default 32 (see gguf_build_alignment) */
    gb_bytes kv;
    uint64_t n_kv;
    gb_tensor tensors[GB_MAX_TENSORS];
    uint32_t n_tensors;
    /* set by finish: where the tensor infos and the data section start */
    size_t info_pos, data_pos;
} gguf_builder;

void gguf_build_init(gguf_builder *b);
void gguf_build_free(gguf_builder *b);

/* Start a metadata entry: key and value type; the caller appends the value
 * to b->kv with the gb_* writers. */
void gguf_build_key(gguf_builder *b, const char *key, uint32_t type);
void gguf_build_u32(gguf_builder *b, const char *key, uint32_t v);
void gguf_build_i32(gguf_builder *b, const char *key, int32_t v);
void gguf_build_u64(gguf_builder *b, const char *key, uint64_t v);
void gguf_build_f32(gguf_builder *b, const char *key, float v);
void gguf_build_bool(gguf_builder *b, const char *key, int v);
void gguf_build_string(gguf_builder *b, const char *key, const char *v);
void gguf_build_arr_str(gguf_builder *b, const char *key, const char *const *v, uint64_t n);
/* Numeric array: n elements of elem_size bytes each, already little-endian. */
void gguf_build_arr(gguf_builder *b, const char *key, uint32_t elem_type, const void *v,
                    uint64_t n, size_t elem_size);
/* Write general.alignment and lay the data out with it. */
void gguf_build_alignment(gguf_builder *b, uint32_t alignment);

/* Add a tensor; returns it so a test can adjust fields before finish. */
gb_tensor *gguf_build_tensor(gguf_builder *b, const char *name, uint32_t type, uint32_t n_dims,
                             const uint64_t *ne, const void *data, size_t nbytes);

/* The whole file in an exactly-sized malloc'd buffer (no padding after the
 * last tensor, so any truncation cuts into something). */
uint8_t *gguf_build_finish(gguf_builder *b, size_t *len);

/* Copy of buf in an exactly-sized malloc'd block (ASan sees over-reads). */
uint8_t *gb_dup(const void *buf, size_t len);

#endif
