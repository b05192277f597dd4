/* Helpers shared by the Check suites. */
#ifndef HMT_TESTUTIL_H
#define HMT_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "hmt/hmt.h"

/* Check records a checkpoint (a write to its control file) for every
 * passing ck_assert; loops that compare millions of values (tens of seconds
 * of system time, more under ASan) test with plain ifs and call into Check
 * only on failure. */
#define EXPECT(c)                                                              \
    do {                                                                       \
        if (!(c)) ck_abort_msg("line %d: check failed: %s", __LINE__, #c);     \
    } while (0)
#define EXPECT_MSG(c, ...)                        \
    do {                                          \
        if (!(c)) ck_abort_msg(__VA_ARGS__);      \
    } while (0)
#define EXPECT_EQ(a, b)                                                                 \
    do {                                                                                \
        uintmax_t a_ = (uintmax_t)(a), b_ = (uintmax_t)(b);                             \
        if (a_ != b_)                                                                   \
            ck_abort_msg("line %d: %s == %s failed: %#jx vs %#jx", __LINE__, #a, #b, a_, b_); \
    } while (0)

/* Path of a file in the generated test data directory ($HMT_TESTDATA,
 * default build/testdata). Returns a static buffer. */
const char *hmt_test_data(const char *name);

/* The test model build/testdata/<name>, loaded (the test fails with the
 * library's message otherwise). */
hmt_model *hmt_test_load_model(const char *name);

/* Manifest lines are space-separated key=value pairs: copy the value of key
 * into out (truncated to cap) and return its leading integer; "" and -1 when
 * the key is absent. */
long hmt_test_field(const char *line, const char *key, char *out, size_t cap);

/* Read a whole file into a malloc'd buffer, followed by a 0 byte that *len
 * does not count (a text file is a string); NULL on failure. */
void *hmt_test_read_file(const char *path, size_t *len);

/* Write buf to path; 0 on success. */
int hmt_test_write_file(const char *path, const void *buf, size_t len);

/* xorshift64 uniform in [0, 1) and Box-Muller normal, on the caller's
 * state (seed it non-zero): reproducible data per suite. */
double hmt_test_urand(uint64_t *state);
float hmt_test_nrand(uint64_t *state);

/* How many temporaries of an atomic write to path ("<path>.tmp-XXXXXX",
 * lib/io/atomic_file.c) its folder holds. */
int hmt_test_temporaries(const char *path);

/* A fresh temporary file path (unique per call, under $TMPDIR or /tmp; no
 * file of that name exists when it returns). */
const char *hmt_test_tmp_path(const char *suffix);

#endif
