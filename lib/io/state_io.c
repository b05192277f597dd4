/* The walk cursor and the files of saved states (state_io.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/file_open.h"
#include "io/state_io.h"

void hmti_walk_bytes(hmti_walk *c, void *field, size_t n) {
    if (c->kind != HMTI_SAVE) {
        if (c->pos + n > c->len || c->pos + n < c->pos) {
            c->bad = 1;
            return;
        }
        if (c->kind == HMTI_LOAD) memcpy(field, c->in + c->pos, n);
    } else if (c->out) {
        memcpy(c->out + c->pos, field, n);
    }
    c->pos += n;
}

void hmti_walk_tokens(hmti_walk *c, hmt_token *field, size_t n) {
    if (c->kind == HMTI_CHECK && !c->bad && n <= (c->len - c->pos) / sizeof *field)
        for (size_t i = 0; i < n; i++) {
            hmt_token t;
            memcpy(&t, c->in + c->pos + i * sizeof t, sizeof t);
            if (t < 0 || t >= c->n_vocab) c->bad_id = 1;
        }
    hmti_walk_bytes(c, field, n * sizeof *field);
}

/* CHECK: the first of the n values ahead in the input (`size` bytes each,
 * little-endian) whose exponent bits `exp` are all set (inf or NaN) is
 * named by bad_float and bad_float_at (its index plus base). */
static void check_finite(hmti_walk *c, size_t n, size_t size, uint32_t exp, const char *name,
                         int64_t base) {
    if (c->kind != HMTI_CHECK || c->bad || c->bad_float || n > (c->len - c->pos) / size) return;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = 0;
        memcpy(&v, c->in + c->pos + i * size, size);
        if ((v & exp) == exp) {
            c->bad_float = name;
            c->bad_float_at = base + (int64_t)i;
            return;
        }
    }
}

void hmti_walk_floats(hmti_walk *c, float *field, size_t n, const char *name, int64_t base) {
    check_finite(c, n, sizeof(float), 0x7f800000u, name, base);
    hmti_walk_bytes(c, field, n * sizeof(float));
}

void hmti_walk_halves(hmti_walk *c, uint16_t *field, size_t n, int bf16, const char *name,
                      int64_t base) {
    /* half: 5 exponent bits, bfloat16: 8 */
    check_finite(c, n, sizeof(uint16_t), bf16 ? 0x7f80u : 0x7c00u, name, base);
    hmti_walk_bytes(c, field, n * sizeof(uint16_t));
}

int hmti_state_write_file(const char *path, const void *buf, size_t len, const char *who) {
    hmti_afile out;
    /* a temporary replaces path only once complete: a full disk or a crash
     * leaves the previous file as it was */
    int rc = hmti_afile_begin(&out, path, who);
    if (rc) return rc;
    hmti_afile_write(&out, buf, len);
    return hmti_afile_commit(&out);
}

/* Read exactly len bytes (the size fstat gave: a file that grows meanwhile
 * is not followed, one that shrinks is an error). */
static int read_all(int fd, unsigned char *buf, size_t len, const char *path, const char *who) {
    for (size_t got = 0; got < len;) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            char eb[128];
            return hmti_errf(HMT_E_IO, "%s: cannot read '%s': %s", who, path,
                             r < 0 ? strerror_r(errno, eb, sizeof eb) : "file shrank while read");
        }
        got += (size_t)r;
    }
    return HMT_OK;
}

int hmti_state_read_file(const char *path, size_t max, const char *what, const char *who,
                         unsigned char **buf, size_t *len) {
    int fd;
    uint64_t size;
    *buf = NULL;
    *len = 0;
    int rc = hmti_open_regular(path, who, &fd, &size);
    if (rc) return rc;
    if (size > max) {
        close(fd);
        return hmti_errf(HMT_E_FORMAT, "%s: '%s' has %llu bytes, more than any %s (at most %zu)",
                         who, path, (unsigned long long)size, what, max);
    }
    unsigned char *b = hmti_malloc(size ? (size_t)size : 1);
    rc = b ? read_all(fd, b, (size_t)size, path, who)
           : hmti_errf(HMT_E_NOMEM, "%s: out of memory", who);
    close(fd);
    if (rc) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = (size_t)size;
    return HMT_OK;
}
