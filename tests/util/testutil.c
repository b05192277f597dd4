#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const char *hmt_test_data(const char *name) {
    static char path[4096];
    const char *dir = getenv("HMT_TESTDATA");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "build/testdata", name);
    return path;
}

void *hmt_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf && len) *len = (size_t)n;
    return buf;
}

int hmt_test_write_file(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(buf, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

const char *hmt_test_tmp_path(const char *suffix) {
    static char path[4096];
    static unsigned counter;
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/hmt-test-%ld-%u%s", dir ? dir : "/tmp", (long)getpid(),
             counter++, suffix ? suffix : "");
    return path;
}
