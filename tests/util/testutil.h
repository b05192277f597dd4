/* Helpers shared by the Check suites. */
#ifndef HMT_TESTUTIL_H
#define HMT_TESTUTIL_H

#include <stddef.h>

/* Path of a file in the generated test data directory ($HMT_TESTDATA,
 * default build/testdata). Returns a static buffer. */
const char *hmt_test_data(const char *name);

/* Manifest lines are space-separated key=value pairs: copy the value of key
 * into out (truncated to cap) and return its leading integer; "" and -1 when
 * the key is absent. */
long hmt_test_field(const char *line, const char *key, char *out, size_t cap);

/* Read a whole file into a malloc'd buffer; NULL on failure. */
void *hmt_test_read_file(const char *path, size_t *len);

/* Write buf to path; 0 on success. */
int hmt_test_write_file(const char *path, const void *buf, size_t len);

/* A fresh temporary file path (unique per call, under $TMPDIR or /tmp). */
const char *hmt_test_tmp_path(const char *suffix);

#endif
