/* Handle guards: every handle carries a magic word naming its type and an
 * "in use" flag. Public entry points check the magic (one load and compare)
 * and, on handles that are used by one thread at a time, take the flag with
 * one atomic operation per call, so two threads (or a callback re-entering
 * the handle from inside a call) get HMT_E_MISUSE instead of corrupting it.
 *
 * Freeing poisons the magic. A later call with the stale pointer finds the
 * poison (or whatever the allocator wrote there) and is refused: best
 * effort, since freed memory may already hold a new object. Keep the guard
 * at the END of each struct: glibc writes its free-list pointers over the
 * first 16 bytes of a freed block, which would erase the poison there. */
#ifndef HMT_BUSY_H
#define HMT_BUSY_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/error.h"

typedef struct {
    uint32_t magic;
    atomic_int busy;
} hmti_guard;

/* One word per handle type ("HMTc", "HMTs", ...), and the poison. */
#define HMTI_MAGIC(c) (0x484d5400u | (uint32_t)(unsigned char)(c))
enum {
    HMTI_MAGIC_MODEL = HMTI_MAGIC('m'),
    HMTI_MAGIC_CTX = HMTI_MAGIC('c'),
    HMTI_MAGIC_STREAM = HMTI_MAGIC('s'),
    HMTI_MAGIC_ADAPTER = HMTI_MAGIC('a'),
    HMTI_MAGIC_SAMPLER = HMTI_MAGIC('r'),
    HMTI_MAGIC_CHAIN = HMTI_MAGIC('h'),
    HMTI_MAGIC_PROC = HMTI_MAGIC('p'),
    HMTI_MAGIC_BUILDER = HMTI_MAGIC('b'),
    HMTI_MAGIC_KNN = HMTI_MAGIC('k'),
    HMTI_MAGIC_PARAMS = HMTI_MAGIC('o'),
    HMTI_MAGIC_POOL = HMTI_MAGIC('t'),
    HMTI_MAGIC_FREED = 0xdead4d54u
};

/* The guard of handle h, or NULL for a NULL handle (whose entry point then
 * reports the NULL argument itself). */
#define HMTI_GUARD(h) ((h) ? &(h)->guard : NULL)

/* Slow paths (busy.c): record the message; with -DHMT_DEBUG_HANDLES a bad
 * magic is printed to stderr and aborts instead. Return HMT_E_MISUSE. */
int hmti_guard_bad(uint32_t found, uint32_t magic, const char *fn);
int hmti_guard_busy(uint32_t magic, const char *fn);

static inline void hmti_guard_init(hmti_guard *g, uint32_t magic) {
    g->magic = magic;
    atomic_init(&g->busy, 0);
}

/* Magic only: immutable shared handles (models, adapters, datastores). */
static inline int hmti_guard_check(const hmti_guard *g, uint32_t magic, const char *fn) {
    if (!g || g->magic == magic) return 0;
    return hmti_guard_bad(g->magic, magic, fn);
}

/* Magic, then take the in-use flag (0 -> 1); pair with hmti_leave on
 * success. One atomic operation each way. */
static inline int hmti_enter(hmti_guard *g, uint32_t magic, const char *fn) {
    if (!g) return 0;
    if (g->magic != magic) return hmti_guard_bad(g->magic, magic, fn);
    int idle = 0;
    if (!atomic_compare_exchange_strong_explicit(&g->busy, &idle, 1, memory_order_acquire,
                                                 memory_order_relaxed))
        return hmti_guard_busy(magic, fn);
    return 0;
}

/* A subtraction, not a store of 0: on a shared handle, readers (below) may
 * have counted themselves in and out meanwhile. */
static inline void hmti_leave(hmti_guard *g) {
    if (g) atomic_fetch_sub_explicit(&g->busy, 1, memory_order_release);
}

/* Shared handles with a rare mutating call (a datastore: any number of
 * concurrent searches, but attaching or detaching a FAISS index only when
 * nothing else runs): readers count in steps of 2 and back off when the
 * writer's bit 0 is set; the writer is hmti_enter/hmti_leave. */
static inline int hmti_read_enter(hmti_guard *g, uint32_t magic, const char *fn) {
    if (!g) return 0;
    if (g->magic != magic) return hmti_guard_bad(g->magic, magic, fn);
    if (atomic_fetch_add_explicit(&g->busy, 2, memory_order_acquire) & 1) {
        atomic_fetch_sub_explicit(&g->busy, 2, memory_order_relaxed);
        return hmti_guard_busy(magic, fn);
    }
    return 0;
}

static inline void hmti_read_leave(hmti_guard *g) {
    if (g) atomic_fetch_sub_explicit(&g->busy, 2, memory_order_release);
}

/* Poison a handle about to be freed. A volatile store: the compiler would
 * otherwise drop a store into memory that free() releases right after. */
static inline void hmti_guard_poison(hmti_guard *g) {
    *(volatile uint32_t *)&g->magic = HMTI_MAGIC_FREED;
}

/* The body of a guarded entry point: `call` (an int status expression) runs
 * inside the in-use flag of guard g (NULL for a NULL handle); its status is
 * returned. HMTI_GUARDED: the guard of handle h, whose layout the caller
 * sees; HMTI_GUARDED_AT: a guard from an accessor (an opaque handle). */
#define HMTI_GUARDED_AT(g, magic, fn, call)                                    \
    do {                                                                       \
        hmti_guard *guard_ = (g);                                              \
        int guarded_rc_ = hmti_enter(guard_, magic, fn);                       \
        if (guarded_rc_) return guarded_rc_;                                   \
        guarded_rc_ = (call);                                                  \
        hmti_leave(guard_);                                                    \
        return guarded_rc_;                                                    \
    } while (0)
#define HMTI_GUARDED(h, magic, fn, call) HMTI_GUARDED_AT(HMTI_GUARD(h), magic, fn, call)

/* Reference-counted handles (model, adapter, datastore): the caller's own
 * reference is dropped once. Nonzero when *user_freed was already set: the
 * second call is reported as a double free (message and log) and must be
 * ignored. */
int hmti_user_free_once(atomic_int *user_freed, const char *fn, const char *what);

/* A free function: the handle must be valid and not in a call; then poison
 * it so a second free or a later use is caught. Nonzero: do not free. */
static inline int hmti_retire(hmti_guard *g, uint32_t magic, const char *fn) {
    int rc = hmti_enter(g, magic, fn);
    if (!rc && g) hmti_guard_poison(g);
    return rc;
}

#endif
