#include "core/alloc.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long countdown; /* 0: off */
static atomic_long failures;

int hmti_alloc_inject(void) {
    if (atomic_load_explicit(&countdown, memory_order_relaxed) <= 0) return 0;
    if (atomic_fetch_sub(&countdown, 1) == 1) {
        atomic_fetch_add(&failures, 1);
        return 1;
    }
    return 0;
}

long hmti_alloc_fail_at(long n) {
    atomic_store(&countdown, n);
    return atomic_exchange(&failures, 0);
}

void *hmti_malloc(size_t n) { return hmti_alloc_inject() ? NULL : malloc(n); }
void *hmti_calloc(size_t n, size_t size) { return hmti_alloc_inject() ? NULL : calloc(n, size); }
void *hmti_realloc(void *p, size_t n) { return hmti_alloc_inject() ? NULL : realloc(p, n); }

char *hmti_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = hmti_malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

int hmti_posix_memalign(void **p, size_t align, size_t n) {
    return hmti_alloc_inject() ? ENOMEM : posix_memalign(p, align, n);
}
