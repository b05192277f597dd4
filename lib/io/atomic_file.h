/* Atomic file replacement, the way SQLite and git commit a file: write a
 * uniquely named temporary in the target's folder, flush and fsync it, rename
 * it over the target, fsync the folder. Until the rename the old file is
 * untouched; on any failure the temporary is removed. Every file libhmt
 * writes (snapshots, kNN datastores, FAISS index files) goes through here.
 *
 * The temporary is "<path>.tmp-XXXXXX" created with O_CREAT|O_EXCL and mode
 * 0666, so the umask (and a default ACL) applies exactly as for a plain
 * fopen(path, "wb"); an existing target's own mode is not carried over. A
 * symbolic link at path is followed: the file it points to is replaced.
 *
 * Errors are sticky: after a failed write the later ones do nothing and
 * commit reports the first failure (HMT_E_IO, "who: cannot write 'path':
 * strerror"). */
#ifndef HMT_ATOMIC_FILE_H
#define HMT_ATOMIC_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *f;
    char *path; /* the target (symlinks resolved)   */
    char *tmp;  /* the temporary, NULL once renamed */
    const char *who; /* prefix of error messages     */
    int err;    /* first errno, 0 while all is well */
    const char *step; /* what failed: "write", "fsync"... */
} hmti_afile;

/* Create the temporary for path. HMT_E_IO / HMT_E_NOMEM with a message. */
int hmti_afile_begin(hmti_afile *a, const char *path, const char *who);
/* Append n bytes (buffered). 0, or -1 after recording the error. */
int hmti_afile_write(hmti_afile *a, const void *p, size_t n);
/* Overwrite n bytes at offset off (a header written last). 0 or -1. */
int hmti_afile_write_at(hmti_afile *a, uint64_t off, const void *p, size_t n);
/* Flush what was written so far (before mapping the temporary back). 0 or -1. */
int hmti_afile_flush(hmti_afile *a);
/* Flush, fsync, close, rename over the target, fsync the folder; on failure
 * remove the temporary. Always releases a. HMT_OK or HMT_E_IO. */
int hmti_afile_commit(hmti_afile *a);
/* Give up: close and remove the temporary, release a. Safe after commit. */
void hmti_afile_abort(hmti_afile *a);

/* Test hook: the n-th I/O step from now (create, write, flush, fsync, close,
 * rename, folder fsync) fails with errno err (n = 0: none). Returns how many
 * injected failures happened since the previous call. */
long hmti_afile_fail_at(long n, int err);
/* Test hook: I/O steps taken since the last hmti_afile_fail_at. */
long hmti_afile_steps(void);

#endif
