/* The GGUF reader: every value type through the getters, tensors and their
 * layout, and corrupt files (truncations, bit flips, hand-made bad fields)
 * that must fail cleanly with the right code and a message naming the field.
 * Buffers are copied into exactly-sized blocks so ASan sees any over-read. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hmt/hmt.h"
#include "io/gguf.h"
#include "util/gguf_build.h"
#include "util/testutil.h"

/* ---- helpers ----------------------------------------------------------------- */
typedef struct {
    hmti_gguf *g;
    uint8_t *buf;
} opened;

static int open_copy(opened *o, const uint8_t *file, size_t len) {
    o->buf = gb_dup(file, len);
    o->g = (hmti_gguf *)1; /* must be reset to NULL on failure */
    return hmti_gguf_open_buffer(&o->g, o->buf, len);
}

static void close_copy(opened *o) {
    hmti_gguf_close(o->g);
    free(o->buf);
}

/* Open must fail with code and a message containing want. */
static void expect_fail(const uint8_t *file, size_t len, int code, const char *want) {
    opened o;
    int rc = open_copy(&o, file, len);
    ck_assert_msg(rc == code, "expected %d, got %d (%s)", code, rc, hmt_last_error_msg());
    ck_assert_ptr_null(o.g);
    ck_assert_msg(strstr(hmt_last_error_msg(), want), "message '%s' lacks '%s'",
                  hmt_last_error_msg(), want);
    close_copy(&o);
}

/* Finish b, expect failure, free everything. */
static void expect_build_fails(gguf_builder *b, int code, const char *want) {
    size_t len;
    uint8_t *file = gguf_build_finish(b, &len);
    expect_fail(file, len, code, want);
    free(file);
    gguf_build_free(b);
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Deterministic tensor contents. */
static uint8_t DATA_F32[48], DATA_F16[16], DATA_Q8[136], DATA_BF16[32];

static void fill(uint8_t *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(seed + 7 * i + 1);
}

static const char *const TOKENS[] = {"<s>", "</s>", "hello", "", "w\xc3\xb6rld"};

/* One metadata entry of every type, nested arrays included. */
static void add_all_values(gguf_builder *b) {
    gguf_build_string(b, "general.architecture", "llama");
    gguf_build_key(b, "v.u8", HMTI_GGUF_UINT8);
    gb_u8(&b->kv, 200);
    gguf_build_key(b, "v.i8", HMTI_GGUF_INT8);
    gb_u8(&b->kv, (uint8_t)(int8_t)-100);
    gguf_build_key(b, "v.u16", HMTI_GGUF_UINT16);
    gb_u16(&b->kv, 60000);
    gguf_build_key(b, "v.i16", HMTI_GGUF_INT16);
    gb_u16(&b->kv, (uint16_t)(int16_t)-30000);
    gguf_build_u32(b, "v.u32", 4000000000u);
    gguf_build_i32(b, "v.i32", -2000000000);
    gguf_build_f32(b, "v.f32", 0.5f);
    gguf_build_bool(b, "v.bool", 1);
    gguf_build_bool(b, "v.false", 0);
    gguf_build_u64(b, "v.u64", 4096);
    gguf_build_u64(b, "v.big", UINT64_MAX);
    gguf_build_key(b, "v.i64", HMTI_GGUF_INT64);
    gb_u64(&b->kv, (uint64_t)INT64_C(-5000000000));
    gguf_build_key(b, "v.f64", HMTI_GGUF_FLOAT64);
    gb_f64(&b->kv, 1e-5);
    gguf_build_i32(b, "v.zero", 0);
    gguf_build_string(b, "v.empty", "");
    gguf_build_arr_str(b, "tokenizer.ggml.tokens", TOKENS, 5);
    const int32_t ints[3] = {1, -2, 3};
    uint8_t le[12];
    for (int i = 0; i < 3; i++) put_u32(le + 4 * i, (uint32_t)ints[i]);
    gguf_build_arr(b, "a.i32", HMTI_GGUF_INT32, le, 3, 4);
    const float fl[2] = {1.5f, -2.25f};
    gguf_build_arr(b, "a.f32", HMTI_GGUF_FLOAT32, fl, 2, 4); /* host is little-endian */
    const uint8_t bools[3] = {1, 0, 1};
    gguf_build_arr(b, "a.bool", HMTI_GGUF_BOOL, bools, 3, 1);
    gguf_build_arr_str(b, "a.nostr", NULL, 0);
    gguf_build_key(b, "a.nested", HMTI_GGUF_ARRAY); /* [[7, 8], [9]] */
    gb_u32(&b->kv, HMTI_GGUF_ARRAY);
    gb_u64(&b->kv, 2);
    gb_u32(&b->kv, HMTI_GGUF_UINT32);
    gb_u64(&b->kv, 2);
    gb_u32(&b->kv, 7);
    gb_u32(&b->kv, 8);
    gb_u32(&b->kv, HMTI_GGUF_UINT32);
    gb_u64(&b->kv, 1);
    gb_u32(&b->kv, 9);
}

/* One tensor of each supported type. */
static void add_tensors(gguf_builder *b) {
    fill(DATA_F32, sizeof DATA_F32, 1);
    fill(DATA_F16, sizeof DATA_F16, 2);
    fill(DATA_Q8, sizeof DATA_Q8, 3);
    fill(DATA_BF16, sizeof DATA_BF16, 4);
    gguf_build_tensor(b, "token_embd.weight", HMTI_TYPE_F32, 2, (uint64_t[]){4, 3}, DATA_F32, 48);
    gguf_build_tensor(b, "output_norm.weight", HMTI_TYPE_F16, 1, (uint64_t[]){8}, DATA_F16, 16);
    gguf_build_tensor(b, "blk.0.attn_q.weight", HMTI_TYPE_Q8_0, 2, (uint64_t[]){64, 2}, DATA_Q8,
                      136);
    gguf_build_tensor(b, "blk.0.bf", HMTI_TYPE_BF16, 4, (uint64_t[]){2, 2, 2, 2}, DATA_BF16, 32);
}

/* A complete valid file; alignment 0 = default (no general.alignment key). */
static uint8_t *sample_file(uint32_t version, uint32_t alignment, size_t *len, size_t *data_pos) {
    gguf_builder b;
    gguf_build_init(&b);
    b.version = version;
    if (alignment) gguf_build_alignment(&b, alignment);
    add_all_values(&b);
    add_tensors(&b);
    uint8_t *file = gguf_build_finish(&b, len);
    if (data_pos) *data_pos = b.data_pos;
    gguf_build_free(&b);
    return file;
}

/* Read everything a successfully opened (possibly fuzzed) file offers, so
 * that ASan sees any pointer outside the buffer. */
static volatile unsigned sink;

static void exercise(const hmti_gguf *g, const uint8_t *buf, size_t len) {
    char text[48];
    for (uint64_t i = 0; i < hmti_gguf_n_kv(g); i++) {
        EXPECT(hmti_gguf_value_text(g, (int64_t)i, text, sizeof text) < len + 64);
        hmti_str k = hmti_gguf_key_name(g, (int64_t)i);
        if (k.len) sink += (uint8_t)k.ptr[k.len - 1];
        char key[128];
        if (k.len >= sizeof key || memchr(k.ptr, 0, k.len)) continue;
        memcpy(key, k.ptr, k.len);
        key[k.len] = '\0';
        EXPECT_EQ(hmti_gguf_find_key(g, key), i);
        hmti_gguf_vtype et;
        uint64_t n;
        const void *data;
        hmti_str s;
        if (hmti_gguf_get_str(g, key, &s) == HMT_OK && s.len) sink += (uint8_t)s.ptr[s.len - 1];
        if (hmti_gguf_get_arr(g, key, &et, &n, &data) != HMT_OK) continue;
        for (uint64_t j = 0; et == HMTI_GGUF_STRING && j < n; j++) {
            EXPECT_EQ(hmti_gguf_arr_str(g, key, j, &s), HMT_OK);
            EXPECT((const uint8_t *)s.ptr >= buf && (const uint8_t *)s.ptr + s.len <= buf + len);
            if (s.len) sink += (uint8_t)s.ptr[s.len - 1];
        }
        if (n && et != HMTI_GGUF_STRING && et != HMTI_GGUF_ARRAY) sink += *(const uint8_t *)data;
    }
    for (uint64_t i = 0; i < hmti_gguf_n_tensors(g); i++) {
        const hmti_gguf_tensor *t = hmti_gguf_tensor_at(g, i);
        EXPECT(t != NULL);
        const uint8_t *d = t->data;
        EXPECT(d >= buf && t->nbytes <= (size_t)(buf + len - d));
        if (t->nbytes) sink += d[0] + d[t->nbytes - 1];
    }
}

/* ---- values ------------------------------------------------------------------- */
START_TEST(values_roundtrip) {
    size_t len;
    uint8_t *file = sample_file(3, 0, &len, NULL);
    opened o;
    ck_assert_int_eq(open_copy(&o, file, len), HMT_OK);
    hmti_gguf *g = o.g;
    ck_assert_uint_eq(hmti_gguf_version(g), 3);
    ck_assert_uint_eq(hmti_gguf_n_kv(g), 22);
    ck_assert_uint_eq(hmti_gguf_n_tensors(g), 4);

    uint32_t u;
    int64_t i;
    float f;
    int bv;
    hmti_str s;
    ck_assert_int_eq(hmti_gguf_get_u32(g, "v.u8", &u), HMT_OK);
    ck_assert_uint_eq(u, 200);
    ck_assert_int_eq(hmti_gguf_get_i64(g, "v.i8", &i), HMT_OK);
    ck_assert_int_eq(i, -100);
    ck_assert_int_eq(hmti_gguf_get_u32(g, "v.u16", &u), HMT_OK);
    ck_assert_uint_eq(u, 60000);
    ck_assert_int_eq(hmti_gguf_get_i64(g, "v.i16", &i), HMT_OK);
    ck_assert_int_eq(i, -30000);
    ck_assert_int_eq(hmti_gguf_get_u32(g, "v.u32", &u), HMT_OK);
    ck_assert_uint_eq(u, 4000000000u);
    ck_assert_int_eq(hmti_gguf_get_i64(g, "v.i32", &i), HMT_OK);
    ck_assert_int_eq(i, -2000000000);
    ck_assert_int_eq(hmti_gguf_get_f32(g, "v.f32", &f), HMT_OK);
    ck_assert(f == 0.5f);
    ck_assert_int_eq(hmti_gguf_get_bool(g, "v.bool", &bv), HMT_OK);
    ck_assert_int_eq(bv, 1);
    ck_assert_int_eq(hmti_gguf_get_bool(g, "v.false", &bv), HMT_OK);
    ck_assert_int_eq(bv, 0);
    ck_assert_int_eq(hmti_gguf_get_i64(g, "v.u64", &i), HMT_OK);
    ck_assert_int_eq(i, 4096);
    ck_assert_int_eq(hmti_gguf_get_i64(g, "v.i64", &i), HMT_OK);
    ck_assert_int_eq(i, INT64_C(-5000000000));
    ck_assert_int_eq(hmti_gguf_get_f32(g, "v.f64", &f), HMT_OK);
    ck_assert_float_eq_tol(f, 1e-5f, 1e-12f);
    ck_assert_int_eq(hmti_gguf_get_str(g, "general.architecture", &s), HMT_OK);
    ck_assert(hmti_str_eq(s, "llama"));
    ck_assert_int_eq(hmti_gguf_get_str(g, "v.empty", &s), HMT_OK);
    ck_assert_uint_eq(s.len, 0);

    /* index access */
    int64_t k = hmti_gguf_find_key(g, "v.f32");
    ck_assert_int_ge(k, 0);
    ck_assert(hmti_str_eq(hmti_gguf_key_name(g, k), "v.f32"));
    ck_assert_int_eq(hmti_gguf_kv_type(g, k), HMTI_GGUF_FLOAT32);
    ck_assert_int_eq(hmti_gguf_find_key(g, "v.f3"), -1);
    ck_assert_int_eq(hmti_gguf_find_key(g, "nope"), -1);
    for (int64_t j = 0; j < (int64_t)hmti_gguf_n_kv(g); j++) {
        hmti_str name = hmti_gguf_key_name(g, j);
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)name.len, name.ptr);
        ck_assert_int_eq(hmti_gguf_find_key(g, key), j);
    }
    close_copy(&o);
    free(file);
}
END_TEST

START_TEST(arrays) {
    size_t len;
    uint8_t *file = sample_file(3, 0, &len, NULL);
    opened o;
    ck_assert_int_eq(open_copy(&o, file, len), HMT_OK);
    hmti_gguf *g = o.g;
    hmti_gguf_vtype et;
    uint64_t n;
    const void *data;
    hmti_str s;
    ck_assert_int_eq(hmti_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, &data), HMT_OK);
    ck_assert_int_eq(et, HMTI_GGUF_STRING);
    ck_assert_uint_eq(n, 5);
    for (uint64_t j = 0; j < 5; j++) {
        ck_assert_int_eq(hmti_gguf_arr_str(g, "tokenizer.ggml.tokens", j, &s), HMT_OK);
        ck_assert(hmti_str_eq(s, TOKENS[j]));
    }
    ck_assert_int_eq(hmti_gguf_arr_str(g, "tokenizer.ggml.tokens", 5, &s), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "out of range"));

    ck_assert_int_eq(hmti_gguf_get_arr(g, "a.i32", &et, &n, &data), HMT_OK);
    ck_assert_int_eq(et, HMTI_GGUF_INT32);
    ck_assert_uint_eq(n, 3);
    int32_t ints[3];
    memcpy(ints, data, sizeof ints);
    ck_assert_int_eq(ints[1], -2);
    ck_assert_int_eq(hmti_gguf_arr_str(g, "a.i32", 0, &s), HMT_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "array of int32"));

    ck_assert_int_eq(hmti_gguf_get_arr(g, "a.f32", &et, &n, &data), HMT_OK);
    float fl[2];
    memcpy(fl, data, sizeof fl);
    ck_assert(et == HMTI_GGUF_FLOAT32 && n == 2 && fl[1] == -2.25f);
    ck_assert_int_eq(hmti_gguf_get_arr(g, "a.bool", &et, &n, &data), HMT_OK);
    ck_assert(et == HMTI_GGUF_BOOL && n == 3 && ((const uint8_t *)data)[2] == 1);
    ck_assert_int_eq(hmti_gguf_get_arr(g, "a.nostr", &et, &n, NULL), HMT_OK);
    ck_assert(et == HMTI_GGUF_STRING && n == 0);
    ck_assert_int_eq(hmti_gguf_arr_str(g, "a.nostr", 0, &s), HMT_E_INVAL);
    ck_assert_int_eq(hmti_gguf_get_arr(g, "a.nested", &et, &n, &data), HMT_OK);
    ck_assert(et == HMTI_GGUF_ARRAY && n == 2);
    ck_assert_int_eq(hmti_gguf_get_arr(g, "v.u8", &et, &n, &data), HMT_E_FORMAT);
    ck_assert_int_eq(hmti_gguf_get_arr(g, "missing", &et, &n, &data), HMT_E_INVAL);
    close_copy(&o);
    free(file);
}
END_TEST

START_TEST(conversion_rules) {
    size_t len;
    uint8_t *file = sample_file(3, 0, &len, NULL);
    opened o;
    ck_assert_int_eq(open_copy(&o, file, len), HMT_OK);
    hmti_gguf *g = o.g;
    uint32_t u = 77;
    int64_t i;
    float f;
    int bv;
    hmti_str s;
    /* integers convert when the value fits */
    ck_assert_int_eq(hmti_gguf_get_u32(g, "v.u64", &u), HMT_OK);
    ck_assert_uint_eq(u, 4096);
    ck_assert_int_eq(hmti_gguf_get_i64(g, "v.u32", &i), HMT_OK);
    ck_assert_int_eq(i, 4000000000);
    u = 77;
    ck_assert_int_eq(hmti_gguf_get_u32(g, "v.i32", &u), HMT_E_FORMAT);
    ck_assert_uint_eq(u, 77); /* untouched on failure */
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "'v.i32' = -2000000000 (int32)"));
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "does not fit in uint32"));
    ck_assert_int_eq(hmti_gguf_get_u32(g, "v.i64", &u), HMT_E_FORMAT);
    ck_assert_int_eq(hmti_gguf_get_u32(g, "v.big", &u), HMT_E_FORMAT);
    ck_assert_int_eq(hmti_gguf_get_i64(g, "v.big", &i), HMT_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "18446744073709551615"));
    ck_assert_int_eq(hmti_gguf_get_u32(g, "v.f32", &u), HMT_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "has type float32, expected integer"));
    ck_assert_int_eq(hmti_gguf_get_u32(g, "v.bool", &u), HMT_E_FORMAT);
    ck_assert_int_eq(hmti_gguf_get_u32(g, "general.architecture", &u), HMT_E_FORMAT);
    ck_assert_int_eq(hmti_gguf_get_u32(g, "a.i32", &u), HMT_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "array of int32"));
    /* floats accept integers */
    ck_assert_int_eq(hmti_gguf_get_f32(g, "v.u32", &f), HMT_OK);
    ck_assert(f == 4e9f);
    ck_assert_int_eq(hmti_gguf_get_f32(g, "v.i8", &f), HMT_OK);
    ck_assert(f == -100.0f);
    ck_assert_int_eq(hmti_gguf_get_f32(g, "general.architecture", &f), HMT_E_FORMAT);
    ck_assert_int_eq(hmti_gguf_get_f32(g, "v.bool", &f), HMT_E_FORMAT);
    /* bools accept integers 0 and 1 only */
    ck_assert_int_eq(hmti_gguf_get_bool(g, "v.zero", &bv), HMT_OK);
    ck_assert_int_eq(bv, 0);
    ck_assert_int_eq(hmti_gguf_get_bool(g, "v.u8", &bv), HMT_E_FORMAT);
    ck_assert_int_eq(hmti_gguf_get_bool(g, "v.f32", &bv), HMT_E_FORMAT);
    /* strings only from strings */
    ck_assert_int_eq(hmti_gguf_get_str(g, "v.u8", &s), HMT_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "'v.u8' has type uint8, expected string"));
    /* absent keys */
    ck_assert_int_eq(hmti_gguf_get_u32(g, "llama.block_count", &u), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "'llama.block_count' not found"));
    ck_assert_int_eq(hmti_gguf_get_str(g, "x", &s), HMT_E_INVAL);
    ck_assert_int_eq(hmti_gguf_get_u32(NULL, "x", &u), HMT_E_INVAL);
    ck_assert_int_eq(hmti_gguf_get_u32(g, NULL, &u), HMT_E_INVAL);
    close_copy(&o);
    free(file);
}
END_TEST

static void expect_text(const hmti_gguf *g, const char *key, const char *want) {
    char buf[64];
    int64_t k = hmti_gguf_find_key(g, key);
    ck_assert_int_ge(k, 0);
    size_t n = hmti_gguf_value_text(g, k, buf, sizeof buf);
    ck_assert_str_eq(buf, want);
    ck_assert_uint_eq(n, strlen(want));
}

START_TEST(value_text) {
    size_t len;
    uint8_t *file = sample_file(3, 0, &len, NULL);
    opened o;
    ck_assert_int_eq(open_copy(&o, file, len), HMT_OK);
    hmti_gguf *g = o.g;
    expect_text(g, "v.u8", "200");
    expect_text(g, "v.i8", "-100");
    expect_text(g, "v.u16", "60000");
    expect_text(g, "v.i16", "-30000");
    expect_text(g, "v.u32", "4000000000");
    expect_text(g, "v.i32", "-2000000000");
    expect_text(g, "v.f32", "0.5");
    expect_text(g, "v.bool", "true");
    expect_text(g, "v.false", "false");
    expect_text(g, "v.big", "18446744073709551615");
    expect_text(g, "v.i64", "-5000000000");
    expect_text(g, "v.f64", "1e-05");
    expect_text(g, "v.empty", "");
    expect_text(g, "general.architecture", "llama");
    expect_text(g, "tokenizer.ggml.tokens", "[array of 5 string]");
    expect_text(g, "a.i32", "[array of 3 int32]");
    expect_text(g, "a.nested", "[array of 2 array]");
    /* snprintf contract: truncated, NUL-terminated, full length returned */
    int64_t k = hmti_gguf_find_key(g, "general.architecture");
    char small[3] = {'x', 'x', 'x'};
    ck_assert_uint_eq(hmti_gguf_value_text(g, k, small, sizeof small), 5);
    ck_assert_str_eq(small, "ll");
    ck_assert_uint_eq(hmti_gguf_value_text(g, k, NULL, 0), 5);
    k = hmti_gguf_find_key(g, "v.u32");
    ck_assert_uint_eq(hmti_gguf_value_text(g, k, small, 1), 10);
    ck_assert_str_eq(small, "");
    ck_assert_uint_eq(hmti_gguf_value_text(g, -1, small, sizeof small), 0);
    ck_assert_uint_eq(hmti_gguf_value_text(g, 1000, small, sizeof small), 0);
    ck_assert_str_eq(small, "");
    close_copy(&o);
    free(file);
}
END_TEST

/* ---- tensors -------------------------------------------------------------------- */
static const uint32_t ALIGNMENTS[] = {0, 64, 256, 1, 8};

START_TEST(tensors_layout) {
    uint32_t align = ALIGNMENTS[_i], eff = align ? align : 32;
    size_t len, data_pos;
    uint8_t *file = sample_file(3, align, &len, &data_pos);
    opened o;
    ck_assert_int_eq(open_copy(&o, file, len), HMT_OK);
    hmti_gguf *g = o.g;
    ck_assert_uint_eq(data_pos % eff, 0);
    struct {
        const char *name;
        uint32_t type, n_dims;
        uint64_t ne[4], n, nbytes;
        const uint8_t *data;
    } want[] = {
        {"token_embd.weight", HMTI_TYPE_F32, 2, {4, 3, 1, 1}, 12, 48, DATA_F32},
        {"output_norm.weight", HMTI_TYPE_F16, 1, {8, 1, 1, 1}, 8, 16, DATA_F16},
        {"blk.0.attn_q.weight", HMTI_TYPE_Q8_0, 2, {64, 2, 1, 1}, 128, 136, DATA_Q8},
        {"blk.0.bf", HMTI_TYPE_BF16, 4, {2, 2, 2, 2}, 16, 32, DATA_BF16},
    };
    for (uint64_t i = 0; i < 4; i++) {
        const hmti_gguf_tensor *t = hmti_gguf_tensor_at(g, i);
        ck_assert_ptr_nonnull(t);
        ck_assert_ptr_eq(hmti_gguf_find_tensor(g, want[i].name), t);
        ck_assert(hmti_str_eq(t->name, want[i].name));
        ck_assert_uint_eq(t->type, want[i].type);
        ck_assert_uint_eq(t->n_dims, want[i].n_dims);
        for (int d = 0; d < 4; d++) ck_assert_uint_eq(t->ne[d], want[i].ne[d]);
        ck_assert_uint_eq(t->n_elements, want[i].n);
        ck_assert_uint_eq(t->nbytes, want[i].nbytes);
        size_t off = (size_t)((const uint8_t *)t->data - o.buf);
        ck_assert_uint_ge(off, data_pos);
        ck_assert_uint_eq((off - data_pos) % eff, 0);
        ck_assert_uint_eq(off % eff, 0);
        ck_assert_mem_eq(t->data, want[i].data, want[i].nbytes);
    }
    ck_assert_ptr_null(hmti_gguf_tensor_at(g, 4));
    ck_assert_ptr_null(hmti_gguf_find_tensor(g, "token_embd"));
    ck_assert_ptr_null(hmti_gguf_find_tensor(g, NULL));
    if (align) {
        uint32_t a;
        ck_assert_int_eq(hmti_gguf_get_u32(g, "general.alignment", &a), HMT_OK);
        ck_assert_uint_eq(a, align);
    }
    close_copy(&o);
    free(file);
}
END_TEST

START_TEST(versions_2_and_3) {
    for (uint32_t v = 2; v <= 3; v++) {
        size_t len;
        uint8_t *file = sample_file(v, 0, &len, NULL);
        opened o;
        ck_assert_int_eq(open_copy(&o, file, len), HMT_OK);
        ck_assert_uint_eq(hmti_gguf_version(o.g), v);
        exercise(o.g, o.buf, len);
        close_copy(&o);
        free(file);
    }
}
END_TEST

START_TEST(empty_file_no_tensors) {
    gguf_builder b;
    gguf_build_init(&b);
    size_t len;
    uint8_t *file = gguf_build_finish(&b, &len);
    ck_assert_uint_eq(len, 24);
    opened o;
    ck_assert_int_eq(open_copy(&o, file, len), HMT_OK);
    ck_assert_uint_eq(hmti_gguf_n_kv(o.g), 0);
    ck_assert_uint_eq(hmti_gguf_n_tensors(o.g), 0);
    ck_assert_int_eq(hmti_gguf_find_key(o.g, "a"), -1);
    ck_assert_ptr_null(hmti_gguf_find_tensor(o.g, "a"));
    close_copy(&o);
    free(file);
    gguf_build_free(&b);
}
END_TEST

START_TEST(open_file) {
    size_t len, data_pos;
    uint8_t *file = sample_file(3, 64, &len, &data_pos);
    char path[4096];
    snprintf(path, sizeof path, "%s", hmt_test_tmp_path(".gguf"));
    ck_assert_int_eq(hmt_test_write_file(path, file, len), 0);
    hmti_gguf *g = (hmti_gguf *)1;
    ck_assert_int_eq(hmti_gguf_open(&g, path), HMT_OK);
    const hmti_gguf_tensor *t = hmti_gguf_find_tensor(g, "blk.0.attn_q.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq((uintptr_t)t->data % 64, 0); /* the mapping is page-aligned */
    ck_assert_mem_eq(t->data, DATA_Q8, sizeof DATA_Q8);
    hmti_str s;
    ck_assert_int_eq(hmti_gguf_arr_str(g, "tokenizer.ggml.tokens", 4, &s), HMT_OK);
    ck_assert(hmti_str_eq(s, TOKENS[4]));
    hmti_gguf_close(g);

    /* a truncated file, an empty file, a directory, a missing file */
    ck_assert_int_eq(hmt_test_write_file(path, file, len - 1), 0);
    ck_assert_int_eq(hmti_gguf_open(&g, path), HMT_E_FORMAT);
    ck_assert_ptr_null(g);
    ck_assert_int_eq(hmt_test_write_file(path, file, 0), 0);
    ck_assert_int_eq(hmti_gguf_open(&g, path), HMT_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "magic"));
    unlink(path);
    ck_assert_int_eq(hmti_gguf_open(&g, path), HMT_E_IO);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "No such file"));
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), path));
    ck_assert_int_eq(hmti_gguf_open(&g, "/"), HMT_E_IO);
    ck_assert_ptr_null(g);
    free(file);
}
END_TEST

START_TEST(big_string_array) {
    enum { N = 150000 };
    char(*words)[16] = malloc(N * sizeof *words);
    const char **ptrs = malloc(N * sizeof *ptrs);
    for (int i = 0; i < N; i++) {
        snprintf(words[i], sizeof words[i], "tok%d", i);
        ptrs[i] = words[i];
    }
    gguf_builder b;
    gguf_build_init(&b);
    gguf_build_arr_str(&b, "tokenizer.ggml.tokens", ptrs, N);
    size_t len;
    uint8_t *file = gguf_build_finish(&b, &len);
    opened o;
    ck_assert_int_eq(open_copy(&o, file, len), HMT_OK);
    hmti_str s;
    for (int i = N - 1; i >= 0; i--) { /* backwards: no sequential shortcut helps */
        EXPECT_EQ(hmti_gguf_arr_str(o.g, "tokenizer.ggml.tokens", (uint64_t)i, &s), HMT_OK);
        EXPECT_MSG(hmti_str_eq(s, words[i]), "token %d", i);
    }
    close_copy(&o);
    free(file);
    gguf_build_free(&b);
    free(ptrs);
    free(words);
}
END_TEST

START_TEST(bad_arguments) {
    hmti_gguf *g = (hmti_gguf *)1;
    ck_assert_int_eq(hmti_gguf_open_buffer(NULL, "GGUF", 4), HMT_E_INVAL);
    ck_assert_int_eq(hmti_gguf_open_buffer(&g, NULL, 10), HMT_E_INVAL);
    ck_assert_ptr_null(g);
    ck_assert_int_eq(hmti_gguf_open_buffer(&g, NULL, 0), HMT_E_FORMAT);
    ck_assert_int_eq(hmti_gguf_open(NULL, "x"), HMT_E_INVAL);
    ck_assert_int_eq(hmti_gguf_open(&g, NULL), HMT_E_INVAL);
    hmti_gguf_close(NULL);
    ck_assert_int_eq(hmti_gguf_find_key(NULL, "x"), -1);
    ck_assert_ptr_null(hmti_gguf_tensor_at(NULL, 0));
    ck_assert_ptr_null(hmti_gguf_key_name(NULL, 0).ptr);
    ck_assert_uint_eq(hmti_gguf_n_kv(NULL), 0);
    ck_assert_str_eq(hmti_gguf_vtype_name(HMTI_GGUF_FLOAT64), "float64");
    ck_assert_str_eq(hmti_gguf_vtype_name((hmti_gguf_vtype)13), "?");
    ck_assert_str_eq(hmti_tensor_type_name(HMTI_TYPE_Q8_0), "q8_0");
    ck_assert_str_eq(hmti_tensor_type_name(HMTI_TYPE_BF16), "bf16");
    ck_assert_str_eq(hmti_tensor_type_name(4), "?");
    ck_assert_str_eq(hmti_tensor_type_name(99), "?");
    hmti_str s = {"ab", 2};
    ck_assert(hmti_str_eq(s, "ab"));
    ck_assert(!hmti_str_eq(s, "a"));
    ck_assert(!hmti_str_eq(s, "abc"));
    ck_assert(!hmti_str_eq(s, NULL));
}
END_TEST

/* ---- hand-made corruptions ------------------------------------------------------- */
START_TEST(bad_header) {
    size_t len;
    uint8_t *file = sample_file(3, 0, &len, NULL);
    uint8_t *f = gb_dup(file, len);
    f[0] = 'X';
    expect_fail(f, len, HMT_E_FORMAT, "bad magic");
    memcpy(f, file, len);
    put_u32(f + 4, 1);
    expect_fail(f, len, HMT_E_UNSUPPORTED, "version 1 is not supported");
    put_u32(f + 4, 99);
    expect_fail(f, len, HMT_E_UNSUPPORTED, "version 99 is not supported");
    put_u32(f + 4, 0);
    expect_fail(f, len, HMT_E_FORMAT, "version 0");
    put_u32(f + 4, 0x03000000u);
    expect_fail(f, len, HMT_E_UNSUPPORTED, "big-endian");
    memcpy(f, file, len);
    put_u64(f + 8, UINT64_MAX);
    expect_fail(f, len, HMT_E_FORMAT, "header: tensor count 18446744073709551615 exceeds");
    memcpy(f, file, len);
    put_u64(f + 16, UINT64_MAX / 2);
    expect_fail(f, len, HMT_E_FORMAT, "header: metadata count 9223372036854775807 exceeds");
    memcpy(f, file, len);
    put_u64(f + 16, 23); /* one more key than present: runs into the tensor infos */
    opened o;
    ck_assert_int_eq(open_copy(&o, f, len), HMT_E_FORMAT);
    close_copy(&o);
    expect_fail(file, 3, HMT_E_FORMAT, "magic (4 bytes) at offset 0 runs past end of file");
    expect_fail(file, 20, HMT_E_FORMAT, "metadata count (8 bytes) at offset 16");
    free(f);
    free(file);
}
END_TEST

START_TEST(huge_lengths) {
    gguf_builder b;
    gguf_build_init(&b);
    gguf_build_u32(&b, "ok", 1);
    gguf_build_key(&b, "s", HMTI_GGUF_STRING);
    gb_u64(&b.kv, UINT64_MAX);
    gb_put(&b.kv, "abc", 3);
    expect_build_fails(&b, HMT_E_FORMAT,
                       "gguf: metadata key 1 ('s'): string value: string length "
                       "18446744073709551615 exceeds file size at offset 55 (size 66)");

    gguf_build_init(&b);
    gb_str(&b.kv, "x"); /* a key of absurd length */
    gb_u32(&b.kv, HMTI_GGUF_UINT32);
    gb_u32(&b.kv, 1);
    b.kv.data[0] = 0xff, b.kv.data[7] = 0x7f;
    b.n_kv = 1;
    expect_build_fails(&b, HMT_E_FORMAT, "metadata key 0: key: string length 9151314442816848127");

    gguf_build_init(&b);
    gguf_build_key(&b, "arr", HMTI_GGUF_ARRAY);
    gb_u32(&b.kv, HMTI_GGUF_UINT32);
    gb_u64(&b.kv, UINT64_C(1) << 62);
    gb_u32(&b.kv, 1);
    expect_build_fails(&b, HMT_E_FORMAT,
                       "('arr'): array length 4611686018427387904 (uint32) exceeds");

    gguf_build_init(&b);
    gguf_build_key(&b, "vocab", HMTI_GGUF_ARRAY);
    gb_u32(&b.kv, HMTI_GGUF_STRING);
    gb_u64(&b.kv, UINT64_MAX);
    gb_str(&b.kv, "a");
    expect_build_fails(&b, HMT_E_FORMAT, "array length 18446744073709551615 (string) exceeds");

    gguf_build_init(&b); /* count fits the file but the strings do not */
    gguf_build_key(&b, "vocab", HMTI_GGUF_ARRAY);
    gb_u32(&b.kv, HMTI_GGUF_STRING);
    gb_u64(&b.kv, 3);
    gb_str(&b.kv, "a");
    gb_str(&b.kv, "b");
    gb_u64(&b.kv, 1);
    expect_build_fails(&b, HMT_E_FORMAT,
                       "('vocab'): string value: string length 1 exceeds file size at offset 71");
}
END_TEST

START_TEST(bad_values) {
    gguf_builder b;
    gguf_build_init(&b);
    gguf_build_key(&b, "t", 13);
    gb_u32(&b.kv, 0);
    expect_build_fails(&b, HMT_E_FORMAT, "('t'): value type 13 at offset 33 is not a GGUF type");

    gguf_build_init(&b);
    gguf_build_key(&b, "a", HMTI_GGUF_ARRAY);
    gb_u32(&b.kv, 99);
    gb_u64(&b.kv, 0);
    expect_build_fails(&b, HMT_E_FORMAT, "array element type 99");

    gguf_build_init(&b);
    gguf_build_key(&b, "flag", HMTI_GGUF_BOOL);
    gb_u8(&b.kv, 2);
    expect_build_fails(&b, HMT_E_FORMAT, "('flag'): bool value 2");

    gguf_build_init(&b);
    const uint8_t bools[2] = {1, 5};
    gguf_build_arr(&b, "flags", HMTI_GGUF_BOOL, bools, 2, 1);
    expect_build_fails(&b, HMT_E_FORMAT, "bool value 5");

    gguf_build_init(&b); /* arrays nested 9 deep */
    gguf_build_key(&b, "deep", HMTI_GGUF_ARRAY);
    for (int d = 0; d < 8; d++) {
        gb_u32(&b.kv, HMTI_GGUF_ARRAY);
        gb_u64(&b.kv, 1);
    }
    gb_u32(&b.kv, HMTI_GGUF_UINT8);
    gb_u64(&b.kv, 0);
    gb_put(&b.kv, (uint8_t[64]){0}, 64); /* room, so only the depth is wrong */
    expect_build_fails(&b, HMT_E_FORMAT, "('deep'): arrays nested more than 8 deep");

    gguf_build_init(&b); /* 8 deep is fine */
    gguf_build_key(&b, "deep", HMTI_GGUF_ARRAY);
    for (int d = 0; d < 7; d++) {
        gb_u32(&b.kv, HMTI_GGUF_ARRAY);
        gb_u64(&b.kv, 1);
    }
    gb_u32(&b.kv, HMTI_GGUF_UINT8);
    gb_u64(&b.kv, 0);
    size_t len;
    uint8_t *file = gguf_build_finish(&b, &len);
    opened o;
    ck_assert_int_eq(open_copy(&o, file, len), HMT_OK);
    close_copy(&o);
    free(file);
    gguf_build_free(&b);

    gguf_build_init(&b);
    gguf_build_u32(&b, "a.b", 1);
    gguf_build_u32(&b, "c", 1);
    gguf_build_string(&b, "a.b", "again");
    expect_build_fails(&b, HMT_E_FORMAT, "metadata key 2 ('a.b'): duplicate of key 0");
}
END_TEST

START_TEST(bad_alignment) {
    const uint32_t bad[] = {0, 3, 48, 0x80000001u};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gguf_builder b;
        gguf_build_init(&b);
        gguf_build_u32(&b, "general.alignment", bad[i]);
        add_tensors(&b);
        char want[96];
        snprintf(want, sizeof want, "('general.alignment'): alignment %u is not a nonzero power",
                 (unsigned)bad[i]);
        expect_build_fails(&b, HMT_E_FORMAT, want);
    }
    gguf_builder b;
    gguf_build_init(&b);
    gguf_build_u64(&b, "general.alignment", 64);
    expect_build_fails(&b, HMT_E_FORMAT, "has type uint64, expected uint32");
}
END_TEST

/* A builder holding the sample tensors; returns tensor i for adjustment. */
static gb_tensor *tensor_case(gguf_builder *b, int i) {
    gguf_build_init(b);
    gguf_build_string(b, "general.architecture", "llama");
    add_tensors(b);
    return &b->tensors[i];
}

START_TEST(bad_tensors) {
    gguf_builder b;
    tensor_case(&b, 1)->n_dims = 0;
    expect_build_fails(&b, HMT_E_FORMAT, "tensor 1 ('output_norm.weight'): n_dims 0 at offset");
    tensor_case(&b, 2)->n_dims = 5;
    expect_build_fails(&b, HMT_E_FORMAT, "tensor 2 ('blk.0.attn_q.weight'): n_dims 5");

    gb_tensor *t = tensor_case(&b, 0); /* 2^32 * 2^32 elements */
    t->ne[0] = t->ne[1] = UINT64_C(1) << 32;
    expect_build_fails(&b, HMT_E_FORMAT, "element count overflows (ne = [4294967296, 4294967296");
    t = tensor_case(&b, 0); /* 2^62 elements fit, 2^64 bytes do not */
    t->ne[0] = t->ne[1] = UINT64_C(1) << 31;
    expect_build_fails(&b, HMT_E_FORMAT, "byte size of 4611686018427387904 elements overflows");
    t = tensor_case(&b, 3);
    t->ne[2] = UINT64_MAX; /* -1 as int64 */
    expect_build_fails(&b, HMT_E_FORMAT, "ne[2] = 18446744073709551615");
    t = tensor_case(&b, 2);
    t->ne[0] = 48;
    expect_build_fails(&b, HMT_E_FORMAT, "q8_0 row length ne[0] = 48 is not a multiple of 32");

    t = tensor_case(&b, 1);
    t->fixed_offset = 1, t->offset = 48 + 16 + 1;
    expect_build_fails(&b, HMT_E_FORMAT,
                       "tensor 1 ('output_norm.weight'): data offset 65 is not a multiple of "
                       "the alignment 32");
    t = tensor_case(&b, 3);
    t->fixed_offset = 1, t->offset = 320; /* data is 288 bytes, the tensor 32 */
    expect_build_fails(&b, HMT_E_FORMAT, "tensor 3 ('blk.0.bf'): data [offset");
    t = tensor_case(&b, 3);
    t->fixed_offset = 1, t->offset = UINT64_MAX - 31;
    expect_build_fails(&b, HMT_E_FORMAT, "extends past end of file (size");

    t = tensor_case(&b, 3);
    t->type = 99;
    expect_build_fails(&b, HMT_E_UNSUPPORTED,
                       "tensor 3 ('blk.0.bf'): tensor type ? (99) is not supported");
    t = tensor_case(&b, 0);
    t->type = 16; /* the block-quantized types of docs/QUANTS.md are read; IQ2_XXS is not */
    expect_build_fails(&b, HMT_E_UNSUPPORTED, "tensor type iq2_xxs (16) is not supported");
    t = tensor_case(&b, 0);
    t->type = 2; /* Q4_0 is, but its rows are whole 32-element blocks */
    expect_build_fails(&b, HMT_E_FORMAT, "q4_0 row length ne[0] = 4 is not a multiple of 32");

    t = tensor_case(&b, 3);
    t->name = "output_norm.weight";
    expect_build_fails(&b, HMT_E_FORMAT,
                       "tensor 3 ('output_norm.weight'): duplicate of tensor 1");
}
END_TEST

/* The exact message of a tensor extending past the end of the file. */
START_TEST(tensor_past_end_message) {
    gguf_builder b;
    gguf_build_init(&b);
    gguf_build_tensor(&b, "w", HMTI_TYPE_F32, 1, (uint64_t[]){8}, NULL, 32);
    size_t len;
    uint8_t *file = gguf_build_finish(&b, &len);
    ck_assert_uint_eq(len, b.data_pos + 32);
    char want[160];
    snprintf(want, sizeof want,
             "gguf: tensor 0 ('w'): data [offset %zu, 32 bytes] extends past end of file "
             "(size %zu)",
             b.data_pos, len - 1);
    expect_fail(file, len - 1, HMT_E_FORMAT, want);
    free(file);
    gguf_build_free(&b);
}
END_TEST

/* ---- truncation and fuzzing ---------------------------------------------------------- */
START_TEST(truncate_every_length) {
    size_t len;
    uint8_t *file = sample_file(3, 64, &len, NULL);
    for (size_t n = 0; n < len; n++) {
        opened o;
        int rc = open_copy(&o, file, n);
        ck_assert_msg(rc == HMT_E_FORMAT, "length %zu: rc %d", n, rc);
        ck_assert_ptr_null(o.g);
        ck_assert(strncmp(hmt_last_error_msg(), "gguf: ", 6) == 0);
        close_copy(&o);
    }
    free(file);
}
END_TEST

START_TEST(truncate_files) {
    size_t len;
    uint8_t *file = sample_file(2, 0, &len, NULL);
    char path[4096];
    snprintf(path, sizeof path, "%s", hmt_test_tmp_path(".gguf"));
    for (size_t n = 0; n < len; n += 1 + n / 64) {
        ck_assert_int_eq(hmt_test_write_file(path, file, n), 0);
        hmti_gguf *g = (hmti_gguf *)1;
        int rc = hmti_gguf_open(&g, path);
        ck_assert_msg(rc == HMT_E_FORMAT || rc == HMT_E_IO, "length %zu: rc %d", n, rc);
        ck_assert_ptr_null(g);
    }
    unlink(path);
    free(file);
}
END_TEST

static void check_mutant(const uint8_t *f, size_t len, const char *what, size_t at) {
    opened o;
    int rc = open_copy(&o, f, len);
    EXPECT_MSG(rc == HMT_OK || rc == HMT_E_FORMAT || rc == HMT_E_UNSUPPORTED,
               "%s at byte %zu: rc %d (%s)", what, at, rc, hmt_last_error_msg());
    if (rc == HMT_OK)
        exercise(o.g, o.buf, len);
    else
        EXPECT(o.g == NULL);
    close_copy(&o);
}

/* Every single-bit flip of the header, metadata and tensor infos. */
START_TEST(flip_every_metadata_bit) {
    size_t len, data_pos;
    uint8_t *file = sample_file(3, 0, &len, &data_pos);
    uint8_t *f = gb_dup(file, len);
    for (size_t at = 0; at < data_pos; at++)
        for (int bit = 0; bit < 8; bit++) {
            f[at] ^= (uint8_t)(1u << bit);
            check_mutant(f, len, "bit flip", at);
            f[at] = file[at];
        }
    free(f);
    free(file);
}
END_TEST

static uint64_t xorshift(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Seeded random bit flips and byte overwrites anywhere in the file. */
START_TEST(random_mutations) {
    size_t len, data_pos;
    uint8_t *file = sample_file(3, 64, &len, &data_pos);
    uint8_t *f = gb_dup(file, len);
    uint64_t seed = 0x484d54u;
    static const uint8_t SPECIAL[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0x20, 0x40};
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(f, file, len);
        int n_mut = 1 + (int)(xorshift(&seed) % 4);
        size_t at = 0;
        for (int m = 0; m < n_mut; m++) {
            uint64_t r = xorshift(&seed);
            /* bias towards the metadata, where the parsing happens */
            at = (r & 1) ? (size_t)(r >> 8) % data_pos : (size_t)(r >> 8) % len;
            switch ((r >> 1) % 3) {
            case 0: f[at] ^= (uint8_t)(1u << ((r >> 4) % 8)); break;
            case 1: f[at] = (uint8_t)(r >> 40); break;
            default: f[at] = SPECIAL[(r >> 40) % sizeof SPECIAL]; break;
            }
        }
        check_mutant(f, len, "mutation", at);
    }
    free(f);
    free(file);
}
END_TEST

Suite *hmt_suite_gguf(void);
Suite *hmt_suite_gguf(void) {
    Suite *s = suite_create("gguf");
    TCase *tc = tcase_create("values");
    tcase_add_test(tc, values_roundtrip);
    tcase_add_test(tc, arrays);
    tcase_add_test(tc, conversion_rules);
    tcase_add_test(tc, value_text);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_add_loop_test(tc, tensors_layout, 0, (int)(sizeof ALIGNMENTS / sizeof ALIGNMENTS[0]));
    tcase_add_test(tc, versions_2_and_3);
    tcase_add_test(tc, empty_file_no_tensors);
    tcase_add_test(tc, open_file);
    tcase_add_test(tc, big_string_array);
    suite_add_tcase(s, tc);

    tc = tcase_create("corrupt");
    tcase_add_test(tc, bad_header);
    tcase_add_test(tc, huge_lengths);
    tcase_add_test(tc, bad_values);
    tcase_add_test(tc, bad_alignment);
    tcase_add_test(tc, bad_tensors);
    tcase_add_test(tc, tensor_past_end_message);
    suite_add_tcase(s, tc);

    tc = tcase_create("fuzz");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, truncate_every_length);
    tcase_add_test(tc, truncate_files);
    tcase_add_test(tc, flip_every_metadata_bit);
    tcase_add_test(tc, random_mutations);
    suite_add_tcase(s, tc);
    return s;
}
