#include "io/file_open.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

static const char *kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

int hmti_open_regular(const char *path, const char *who, int *fd_out, uint64_t *size) {
    char eb[128];
    *fd_out = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return hmti_errf(HMT_E_IO, "%s: cannot open '%s': %s", who, path,
                         strerror_r(errno, eb, sizeof eb));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return hmti_errf(HMT_E_IO, "%s: cannot stat '%s': %s", who, path,
                         strerror_r(e, eb, sizeof eb));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return hmti_errf(HMT_E_IO, "%s: '%s' is %s; only regular files are read", who, path,
                         kind_of(st.st_mode));
    }
    /* regular files never block, but reads should not see EAGAIN either */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        return hmti_errf(HMT_E_IO, "%s: cannot use '%s': %s", who, path,
                         strerror_r(e, eb, sizeof eb));
    }
    *fd_out = fd;
    *size = (uint64_t)st.st_size;
    return HMT_OK;
}
