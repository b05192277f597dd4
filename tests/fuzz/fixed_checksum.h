/* For the fuzz targets of checksummed formats (stream snapshots, context
 * states): run an input as it is, where the checksum is the first gate, and
 * again with its trailing u64 FNV-1a recomputed, so that mutations reach
 * the checks behind it. */
#ifndef HMT_FUZZ_FIXED_CHECKSUM_H
#define HMT_FUZZ_FIXED_CHECKSUM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/fnv.h"

static void run_as_is_and_fixed(const uint8_t *data, size_t size,
                                void (*run)(const uint8_t *data, size_t size, void *arg),
                                void *arg) {
    run(data, size, arg);
    if (size < 8) return;
    uint8_t *fixed = malloc(size); /* exact size: over-reads trap */
    if (!fixed) abort();
    memcpy(fixed, data, size);
    const uint64_t h = hmti_fnv1a(HMTI_FNV_INIT, fixed, size - 8);
    memcpy(fixed + size - 8, &h, 8);
    run(fixed, size, arg);
    free(fixed);
}

#endif
