#include "core/bigalloc.h"

#include "core/alloc.h"

#include <sys/mman.h>

void *hmti_big_alloc(size_t bytes) {
    if (bytes == 0) bytes = 1;
    if (hmti_alloc_inject()) return NULL;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    if (bytes >= (2u << 20)) (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

void hmti_big_free(void *p, size_t bytes) {
    if (p) munmap(p, bytes ? bytes : 1);
}
