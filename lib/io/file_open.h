/* Opening a file for reading, for every loader (models, adapters, datastores,
 * FAISS index files, snapshots). Only regular files are accepted: open() of
 * a FIFO blocks until a writer appears, and a device or /proc-like stream
 * never ends, so both are refused before a byte is read. */
#ifndef HMT_FILE_OPEN_H
#define HMT_FILE_OPEN_H

#include <stdint.h>

/* Open path read-only (O_NONBLOCK while opening, so a FIFO cannot block;
 * cleared afterwards), fstat it and refuse anything but a regular file with
 * HMT_E_IO "who: 'path' is a directory / FIFO / device...". On success *fd
 * (close-on-exec) and *size (st_size) are set. Messages carry strerror. */
int hmti_open_regular(const char *path, const char *who, int *fd, uint64_t *size);

#endif
