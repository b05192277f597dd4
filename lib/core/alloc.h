/* Every heap allocation libhmt makes goes through these, so a test can make
 * the n-th one fail (tests/check_oom.c) and check that each error path
 * returns a clean status, leaks nothing and leaves earlier objects usable. */
#ifndef HMT_ALLOC_H
#define HMT_ALLOC_H

#include <stddef.h>

void *hmti_malloc(size_t n);
void *hmti_calloc(size_t n, size_t size);
void *hmti_realloc(void *p, size_t n);
char *hmti_strdup(const char *s);
int hmti_posix_memalign(void **p, size_t align, size_t n);

/* Test hook: the n-th allocation from now fails (n = 0: none); returns how
 * many injected failures happened since the previous call. */
long hmti_alloc_fail_at(long n);
/* True when the next allocation must fail (used by hmti_big_alloc too). */
int hmti_alloc_inject(void);

#endif
