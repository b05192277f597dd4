/* A model's weight memory: the packed and repacked matrices carved, 64-byte
 * aligned, out of a few large anonymous regions that are 2 MiB aligned and
 * advised as transparent huge pages, and freed all at once with the model.
 *
 * Why: a SmolLM2-sized model's matrices are 0.3-2 MB each. Allocated one by
 * one (malloc), they sat on 4 KiB pages (20% of a 135M Q8_0 model's weights
 * were on huge pages), and a decode step, which streams every weight once,
 * paid a TLB miss per 4 KiB: the same model decoded 2-12% faster with its
 * weights here (docs/QUANTS.md, "Weights on huge pages").
 *
 * A region's untouched tail is address space only. The partly used huge
 * page at the end of each region is resident whole until hmti_arena_trim
 * (regions are HMTI_ARENA_REGION bytes, or one piece if larger). */
#ifndef HMT_ARENA_H
#define HMT_ARENA_H

#include <stddef.h>

#define HMTI_ARENA_REGION ((size_t)256 << 20)

typedef struct hmti_arena_region hmti_arena_region;
typedef struct hmti_arena {
    hmti_arena_region *last; /* regions, newest first; NULL: none yet */
} hmti_arena;

/* `bytes` of zeroed memory, 64-byte aligned, valid until hmti_arena_free;
 * NULL when out of memory (hmti_alloc_inject counts it as one allocation). */
void *hmti_arena_alloc(hmti_arena *a, size_t bytes);
/* Gives back the unused part of each region's last huge page (up to 2 MiB
 * each): call once the arena is complete. Pieces allocated after it are
 * still zeroed and valid. */
void hmti_arena_trim(hmti_arena *a);
/* Unmaps every region; the arena is then empty and reusable. */
void hmti_arena_free(hmti_arena *a);

#endif
