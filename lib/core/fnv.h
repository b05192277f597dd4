/* FNV-1a 64: checksums and fingerprints in libhmt's own file formats
 * (snapshots, kNN datastores). */
#ifndef HMT_FNV_H
#define HMT_FNV_H

#include <stddef.h>
#include <stdint.h>

#define HMTI_FNV_INIT 0xcbf29ce484222325ull

static inline uint64_t hmti_fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

#endif
