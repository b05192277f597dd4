/* The slow paths of the handle guards (busy.h): messages that name the
 * function and the handle, and the debug-build abort. */
#include <stdio.h>
#include <stdlib.h>

#include "core/busy.h"

static const char *kind(uint32_t magic) {
    switch (magic) {
    case HMTI_MAGIC_MODEL: return "model";
    case HMTI_MAGIC_CTX: return "context";
    case HMTI_MAGIC_STREAM: return "stream";
    case HMTI_MAGIC_ADAPTER: return "adapter";
    case HMTI_MAGIC_SAMPLER: return "sampler";
    case HMTI_MAGIC_CHAIN: return "chain";
    case HMTI_MAGIC_PROC: return "processor";
    case HMTI_MAGIC_BUILDER: return "datastore builder";
    case HMTI_MAGIC_KNN: return "datastore";
    case HMTI_MAGIC_PARAMS: return "params object";
    default: return "handle";
    }
}

int hmti_guard_bad(uint32_t found, uint32_t magic, const char *fn) {
    int rc;
    if (found == HMTI_MAGIC_FREED)
        rc = hmti_errf(HMT_E_MISUSE, "%s: this %s was already freed (use after free or double "
                       "free); the call was ignored", fn, kind(magic));
    else if ((found & 0xffffff00u) == HMTI_MAGIC(0))
        rc = hmti_errf(HMT_E_MISUSE, "%s: the handle is a %s, not a %s; the call was ignored",
                       fn, kind(found), kind(magic));
    else
        rc = hmti_errf(HMT_E_MISUSE, "%s: not a live %s (freed, or a pointer to something "
                       "else); the call was ignored", fn, kind(magic));
#ifdef HMT_DEBUG_HANDLES
    fprintf(stderr, "libhmt: %s\n", hmti_tls_errmsg());
    abort();
#endif
    hmti_log(HMT_LOG_ERROR, "%s", hmti_tls_errmsg());
    return rc;
}

int hmti_guard_busy(uint32_t magic, const char *fn) {
    if (magic == HMTI_MAGIC_KNN) /* shared: only attach, detach and free are exclusive */
        return hmti_errf(HMT_E_MISUSE, "%s: the datastore is in use by another call (a search, "
                         "an index build, or attach/detach/free; another thread, or a callback "
                         "of that call): attach, detach and free it only while nothing else "
                         "uses it", fn);
    return hmti_errf(HMT_E_MISUSE, "%s: this %s is in use by another call (another thread, or a "
                     "callback re-entering it); a %s may be used by one thread at a time and "
                     "not from its own callbacks", fn, kind(magic), kind(magic));
}

int hmti_user_free_once(atomic_int *user_freed, const char *fn, const char *what) {
    if (!atomic_exchange(user_freed, 1)) return 0;
    hmti_errf(HMT_E_MISUSE, "%s: the %s was already freed (double free); the call was ignored", fn,
              what);
    hmti_log(HMT_LOG_ERROR, "%s", hmti_tls_errmsg());
    return 1;
}
