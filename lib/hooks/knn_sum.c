/* The content checksum of a datastore file (format version 2): one hash over
 * bytes [keys_offset, file size), i.e. keys, padding and values together, so
 * a file that mixes one build's keys with another's header or values never
 * validates. Loading hashes the whole mapping, so the hash is word-wise
 * (8 bytes a step) and cut into 1 MiB blocks that the pool shares; the block
 * hashes are combined with FNV-1a in file order. Not cryptographic: it
 * catches accidents (mixed or torn files, bit rot), not forgery. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/fnv.h"
#include "hooks/knn.h"

#define BLOCK ((uint64_t)1 << 20)

static uint64_t block_sum(const uint8_t *p, size_t n, uint64_t index) {
    uint64_t h = HMTI_FNV_INIT ^ (index * 0x9E3779B97F4A7C15ull);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
    }
    return hmti_fnv1a(h, p + i, n - i);
}

typedef struct {
    const uint8_t *p;
    uint64_t len, nb;
    uint64_t *sums;
} sum_job;

static void sum_share(void *arg, int ith, int nth) {
    sum_job *j = arg;
    int64_t lo, hi;
    hmti_split_range((int64_t)j->nb, ith, nth, 1, &lo, &hi);
    for (int64_t b = lo; b < hi; b++) {
        uint64_t off = (uint64_t)b * BLOCK, n = j->len - off < BLOCK ? j->len - off : BLOCK;
        j->sums[b] = block_sum(j->p + off, (size_t)n, (uint64_t)b);
    }
}

int hmti_knn_content_sum(hmti_pool *pool, const uint8_t *p, uint64_t len, uint64_t *out) {
    sum_job j = {.p = p, .len = len, .nb = (len + BLOCK - 1) / BLOCK};
    j.sums = hmti_malloc((size_t)(j.nb ? j.nb : 1) * sizeof *j.sums);
    if (!j.sums) return hmti_errf(HMT_E_NOMEM, "knn: out of memory (checksum)");
    if (pool && j.nb > 1)
        hmti_pool_run(pool, sum_share, &j);
    else
        sum_share(&j, 0, 1);
    uint64_t h = hmti_fnv1a(HMTI_FNV_INIT, &len, sizeof len);
    *out = hmti_fnv1a(h, j.sums, (size_t)j.nb * sizeof *j.sums);
    free(j.sums);
    return HMT_OK;
}
