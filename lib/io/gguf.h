/* GGUF v2/v3 reader: memory-maps a file, validates every header field, string,
 * array, tensor descriptor and tensor extent before anything is used, and gives
 * typed read-only access. Knows nothing about models. */
#ifndef HMT_GGUF_H
#define HMT_GGUF_H

#include <stddef.h>
#include <stdint.h>

/* Metadata value types, numbered as in the GGUF specification. */
typedef enum {
    HMTI_GGUF_UINT8 = 0,
    HMTI_GGUF_INT8 = 1,
    HMTI_GGUF_UINT16 = 2,
    HMTI_GGUF_INT16 = 3,
    HMTI_GGUF_UINT32 = 4,
    HMTI_GGUF_INT32 = 5,
    HMTI_GGUF_FLOAT32 = 6,
    HMTI_GGUF_BOOL = 7,
    HMTI_GGUF_STRING = 8,
    HMTI_GGUF_ARRAY = 9,
    HMTI_GGUF_UINT64 = 10,
    HMTI_GGUF_INT64 = 11,
    HMTI_GGUF_FLOAT64 = 12
} hmti_gguf_vtype;

/* Tensor element types, numbered as ggml's ggml_type. */
typedef enum {
    HMTI_TYPE_F32 = 0,
    HMTI_TYPE_F16 = 1,
    HMTI_TYPE_Q8_0 = 8,
    HMTI_TYPE_BF16 = 30
} hmti_tensor_type;

/* A string inside the mapping: not NUL-terminated. */
typedef struct {
    const char *ptr;
    uint64_t len;
} hmti_str;

typedef struct {
    hmti_str name;
    uint32_t n_dims;      /* 1..4 */
    uint64_t ne[4];       /* ne[0] is the fastest-varying (row length); unused = 1 */
    uint32_t type;        /* hmti_tensor_type value (validated: known type)   */
    uint64_t n_elements;  /* product of ne, checked for overflow             */
    uint64_t nbytes;      /* storage size                                    */
    const void *data;     /* inside the mapping, aligned to general.alignment */
} hmti_gguf_tensor;

typedef struct hmti_gguf hmti_gguf;

/* Open and validate a file (read-only mmap). HMT_E_IO / HMT_E_FORMAT /
 * HMT_E_NOMEM with a message naming the offending field. */
int hmti_gguf_open(hmti_gguf **out, const char *path);
/* Same over a caller-owned buffer that must outlive the handle (fuzzing, tests). */
int hmti_gguf_open_buffer(hmti_gguf **out, const void *buf, size_t len);
void hmti_gguf_close(hmti_gguf *g);
/* Tell the kernel the whole pages inside [p, p + n) of the file mapping are
 * not needed now (after they were converted): they leave the resident set
 * and are read from the file again if touched. No-op for a caller buffer. */
void hmti_gguf_drop_pages(const hmti_gguf *g, const void *p, size_t n);
/* The same for the header and metadata (everything before the tensor data),
 * once a loader has copied out what it needs. */
void hmti_gguf_drop_header(const hmti_gguf *g);

uint32_t hmti_gguf_version(const hmti_gguf *g);
uint64_t hmti_gguf_n_kv(const hmti_gguf *g);
uint64_t hmti_gguf_n_tensors(const hmti_gguf *g);

/* Metadata. Keys are looked up by exact name; -1 if absent. */
int64_t hmti_gguf_find_key(const hmti_gguf *g, const char *key);
hmti_str hmti_gguf_key_name(const hmti_gguf *g, int64_t idx);
hmti_gguf_vtype hmti_gguf_kv_type(const hmti_gguf *g, int64_t idx);

/* Typed getters: HMT_OK, HMT_E_INVAL (absent: message names the key) or
 * HMT_E_FORMAT (present with a type that does not convert: message names key
 * and type). Integer getters accept any integer type whose value fits;
 * get_f32 accepts FLOAT32/FLOAT64 and integers. */
int hmti_gguf_get_u32(const hmti_gguf *g, const char *key, uint32_t *out);
int hmti_gguf_get_i64(const hmti_gguf *g, const char *key, int64_t *out);
int hmti_gguf_get_f32(const hmti_gguf *g, const char *key, float *out);
int hmti_gguf_get_bool(const hmti_gguf *g, const char *key, int *out);
int hmti_gguf_get_str(const hmti_gguf *g, const char *key, hmti_str *out);

/* Arrays: element type and count. For numeric element types *data points at
 * the little-endian elements in the mapping (possibly unaligned: read with
 * memcpy). For string arrays use hmti_gguf_arr_str (O(1) per element). */
int hmti_gguf_get_arr(const hmti_gguf *g, const char *key, hmti_gguf_vtype *elem_type,
                      uint64_t *n, const void **data);
int hmti_gguf_arr_str(const hmti_gguf *g, const char *key, uint64_t i, hmti_str *out);

/* Render any value as text (arrays as "[array of N <type>]"), snprintf-style:
 * returns the full length, writes at most cap bytes including the NUL. */
size_t hmti_gguf_value_text(const hmti_gguf *g, int64_t idx, char *buf, size_t cap);

/* Tensors. */
const hmti_gguf_tensor *hmti_gguf_tensor_at(const hmti_gguf *g, uint64_t i);
const hmti_gguf_tensor *hmti_gguf_find_tensor(const hmti_gguf *g, const char *name);

/* Name of a value type / tensor type ("?" if unknown). */
const char *hmti_gguf_vtype_name(hmti_gguf_vtype t);
const char *hmti_tensor_type_name(uint32_t t);

/* hmti_str helpers. */
int hmti_str_eq(hmti_str s, const char *cstr);

#endif
