/* Little-endian integers in file headers (the kNN datastore and its index).
 * The formats are little-endian; knn.c refuses to build on a big-endian host. */
#ifndef HMT_LE_BYTES_H
#define HMT_LE_BYTES_H

#include <stdint.h>
#include <string.h>

static inline void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint32_t get32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint64_t get64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

#endif
