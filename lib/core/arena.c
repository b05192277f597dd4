#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "core/alloc.h"

#define HUGE ((size_t)2 << 20)

struct hmti_arena_region {
    hmti_arena_region *prev;
    void *map;          /* the mapping, for munmap */
    size_t map_bytes;
    char *base;         /* 2 MiB aligned, inside the mapping */
    size_t size, used;  /* from base */
};

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

/* A region of at least `bytes` from base; NULL when out of memory. */
static hmti_arena_region *new_region(size_t bytes) {
    hmti_arena_region *r = hmti_malloc(sizeof *r);
    if (!r) return NULL;
    size_t want[2] = {HMTI_ARENA_REGION, round_up(bytes, HUGE)}, n = 0;
    if (want[1] > want[0]) want[0] = want[1];
    /* the full region, else just this piece (a strict overcommit policy may
     * refuse address space that would never be touched) */
    for (int i = 0; i < 2; i++) {
        n = want[i] + HUGE; /* room to align base */
        r->map = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (r->map != MAP_FAILED) break;
    }
    if (r->map == MAP_FAILED) {
        free(r);
        return NULL;
    }
    r->map_bytes = n;
    r->base = (char *)round_up((uintptr_t)r->map, HUGE);
    r->size = n - HUGE;
#ifdef MADV_HUGEPAGE
    (void)madvise(r->base, r->size, MADV_HUGEPAGE); /* advisory */
#endif
    r->used = 0;
    return r;
}

void *hmti_arena_alloc(hmti_arena *a, size_t bytes) {
    if (hmti_alloc_inject() || bytes > SIZE_MAX - 2 * HUGE) return NULL;
    bytes = round_up(bytes ? bytes : 1, 64);
    hmti_arena_region *r = a->last;
    if (!r || r->size - r->used < bytes) {
        if (!(r = new_region(bytes))) return NULL;
        r->prev = a->last;
        a->last = r;
    }
    void *p = r->base + r->used;
    r->used += bytes;
    return p;
}

void hmti_arena_trim(hmti_arena *a) {
    for (hmti_arena_region *r = a->last; r; r = r->prev) {
        const size_t lo = round_up(r->used, 4096), hi = round_up(r->used, HUGE);
        if (lo < hi) (void)madvise(r->base + lo, hi - lo, MADV_DONTNEED); /* advisory */
    }
}

void hmti_arena_free(hmti_arena *a) {
    while (a->last) {
        hmti_arena_region *r = a->last;
        a->last = r->prev;
        munmap(r->map, r->map_bytes);
        free(r);
    }
}
