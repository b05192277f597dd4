#include "testutil.h"

#include <math.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *hmt_test_data(const char *name) {
    static char path[4096];
    const char *dir = getenv("HMT_TESTDATA");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "build/testdata", name);
    return path;
}

long hmt_test_field(const char *line, const char *key, char *out, size_t cap) {
    const size_t klen = strlen(key);
    for (const char *p = line; (p = strstr(p, key)) != NULL; p += klen) {
        if ((p != line && p[-1] != ' ') || p[klen] != '=') continue;
        p += klen + 1;
        if (out && cap) {
            size_t n = strcspn(p, " \n");
            if (n >= cap) n = cap - 1;
            memcpy(out, p, n);
            out[n] = '\0';
        }
        return strtol(p, NULL, 10);
    }
    if (out && cap) out[0] = '\0';
    return -1;
}

void *hmt_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = 0; /* text files read as strings */
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

int hmt_test_temporaries(const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : path;
    char prefix[4200];
    snprintf(prefix, sizeof prefix, "%s.tmp", base);
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += !strncmp(e->d_name, prefix, strlen(prefix));
    if (d) closedir(d);
    return n;
}

hmt_model *hmt_test_load_model(const char *name) {
    hmt_model *m = NULL;
    ck_assert_msg(hmt_model_load(&m, hmt_test_data(name), NULL) == HMT_OK, "%s: %s", name,
                  hmt_last_error_msg());
    return m;
}

const char *hmt_test_tmp_path(const char *suffix) {
    static char path[4096];
    static unsigned counter;
    const char *dir = getenv("TMPDIR");
    /* pids recur: a file some earlier run left under the same name is
     * skipped, so the path is fresh when returned */
    do
        snprintf(path, sizeof path, "%s/hmt-test-%ld-%u%s", dir ? dir : "/tmp", (long)getpid(),
                 counter++, suffix ? suffix : "");
    while (access(path, F_OK) == 0);
    return path;
}

double hmt_test_urand(uint64_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (double)(*state >> 11) / 9007199254740992.0;
}

float hmt_test_nrand(uint64_t *state) {
    double u = hmt_test_urand(state) + 1e-12, v = hmt_test_urand(state);
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}
