/* Large buffers (KV cache, activation arenas): anonymous mappings, so pages
 * cost nothing until touched, advised as huge pages because first touch of a
 * 4 KiB page is expensive on the VMs we run on (docs/performance). */
#ifndef HMT_BIGALLOC_H
#define HMT_BIGALLOC_H

#include <stddef.h>

void *hmti_big_alloc(size_t bytes); /* NULL on failure; zero-filled */
void hmti_big_free(void *p, size_t bytes);

#endif
