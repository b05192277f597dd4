#include "io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"

/* ---- failure injection (tests) --------------------------------------------- */
static atomic_long countdown; /* 0: off */
static atomic_long failures;
static atomic_int fail_errno;
static atomic_long steps;

long hmti_afile_steps(void) { return atomic_load(&steps); }

long hmti_afile_fail_at(long n, int err) {
    atomic_store(&steps, 0);
    atomic_store(&fail_errno, err);
    atomic_store(&countdown, n);
    return atomic_exchange(&failures, 0);
}

/* True (with errno set) when this step must fail. */
static int inject(void) {
    atomic_fetch_add_explicit(&steps, 1, memory_order_relaxed);
    if (atomic_load_explicit(&countdown, memory_order_relaxed) <= 0) return 0;
    if (atomic_fetch_sub(&countdown, 1) != 1) return 0;
    atomic_fetch_add(&failures, 1);
    errno = atomic_load(&fail_errno);
    return 1;
}

/* ---- helpers ------------------------------------------------------------------ */
static int set_err(hmti_afile *a, const char *step) {
    if (!a->err) {
        a->err = errno ? errno : EIO;
        a->step = step;
    }
    return -1;
}

static int io_error(const hmti_afile *a) {
    char eb[128];
    return hmti_errf(HMT_E_IO, "%s: cannot %s '%s': %s", a->who, a->step, a->path,
                     strerror_r(a->err, eb, sizeof eb));
}

static void release(hmti_afile *a) {
    free(a->path);
    free(a->tmp);
    a->path = a->tmp = NULL;
    a->f = NULL;
}

/* The target: a symbolic link is followed so that the file it names is
 * replaced, as fopen(path, "wb") would have written through it. */
static char *target_of(const char *path) {
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        char *real = realpath(path, NULL);
        if (real) {
            char *copy = hmti_strdup(real);
            free(real);
            return copy;
        }
    }
    return hmti_strdup(path);
}

static void random_suffix(char out[7]) {
    static const char ALNUM[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char r[6];
    if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        static atomic_uint seq;
        uint64_t x = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^ (uint64_t)time(NULL) ^
                     (uint64_t)atomic_fetch_add(&seq, 1) << 40;
        for (int i = 0; i < 6; i++, x >>= 8) r[i] = (unsigned char)x;
    }
    for (int i = 0; i < 6; i++) out[i] = ALNUM[r[i] % (sizeof ALNUM - 1)];
    out[6] = '\0';
}

/* ---- the module ----------------------------------------------------------------- */
int hmti_afile_begin(hmti_afile *a, const char *path, const char *who) {
    memset(a, 0, sizeof *a);
    a->who = who;
    a->path = target_of(path);
    const size_t n = a->path ? strlen(a->path) : 0;
    a->tmp = a->path ? hmti_malloc(n + 12) : NULL;
    if (!a->tmp) {
        release(a);
        return hmti_errf(HMT_E_NOMEM, "%s: out of memory", who);
    }
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        char sfx[7];
        random_suffix(sfx);
        memcpy(a->tmp, a->path, n);
        memcpy(a->tmp + n, ".tmp-", 5);
        memcpy(a->tmp + n + 5, sfx, 7);
        /* mode 0666: the umask applies, as for any new file; read-write so
         * that a writer can map back what it wrote (datastore checksum) */
        fd = inject() ? -1
                      : open(a->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd >= 0 && !(a->f = fdopen(fd, "wb"))) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        errno = e;
        fd = -1;
    }
    if (fd < 0) {
        char eb[128];
        int rc = errno == ENOMEM
                     ? hmti_errf(HMT_E_NOMEM, "%s: out of memory", who)
                     : hmti_errf(HMT_E_IO, "%s: cannot create a temporary file next to '%s': %s",
                                 who, a->path, strerror_r(errno, eb, sizeof eb));
        release(a);
        return rc;
    }
    return HMT_OK;
}

int hmti_afile_write(hmti_afile *a, const void *p, size_t n) {
    if (a->err) return -1;
    errno = 0;
    if (n && (inject() || fwrite(p, 1, n, a->f) != n)) return set_err(a, "write");
    return 0;
}

int hmti_afile_flush(hmti_afile *a) {
    if (a->err) return -1;
    errno = 0;
    /* ferror: a write through a->f itself (a caller's fprintf) may have failed */
    if (inject() || fflush(a->f) != 0 || ferror(a->f)) return set_err(a, "write");
    return 0;
}

int hmti_afile_write_at(hmti_afile *a, uint64_t off, const void *p, size_t n) {
    if (hmti_afile_flush(a)) return -1;
    const unsigned char *b = p;
    const int fd = fileno(a->f);
    while (n) {
        errno = 0;
        ssize_t w = inject() ? -1 : pwrite(fd, b, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return set_err(a, "write");
        b += w, off += (uint64_t)w, n -= (size_t)w;
    }
    return 0;
}

void hmti_afile_abort(hmti_afile *a) {
    if (a->f) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    release(a);
}

/* Make the rename durable. The rename was the commit point and the new file
 * is in place, so a failure here is only logged (SQLite does the same: some
 * filesystems cannot fsync a folder). dir: a buffer of strlen(path) + 1. */
static void sync_folder(const hmti_afile *a, char *dir) {
    strcpy(dir, a->path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else
        slash[slash == dir] = '\0'; /* "/x" -> "/" */
    errno = 0;
    int fd = inject() ? -1 : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        char eb[128];
        hmti_log(HMT_LOG_WARN, "%s: '%s' replaced, but its folder '%s' could not be synced: %s",
                 a->who, a->path, dir, strerror_r(errno, eb, sizeof eb));
    }
    if (fd >= 0) close(fd);
}

int hmti_afile_commit(hmti_afile *a) {
    if (!a->err) {
        hmti_afile_flush(a);
        errno = 0;
        if (!a->err && (inject() || fsync(fileno(a->f)) != 0)) set_err(a, "fsync");
    }
    /* closed exactly once, whatever happened before */
    errno = 0;
    int closed = inject() ? -1 : 0;
    if (fclose(a->f) != 0) closed = -1;
    a->f = NULL;
    if (closed && !a->err) set_err(a, "close");
    errno = 0;
    if (!a->err && (inject() || rename(a->tmp, a->path) != 0)) set_err(a, "rename the temporary file to");
    if (a->err) {
        int rc = io_error(a);
        hmti_afile_abort(a);
        return rc;
    }
    sync_folder(a, a->tmp); /* the temporary's name is no longer needed */
    release(a);
    return HMT_OK;
}
