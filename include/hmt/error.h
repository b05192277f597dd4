/*
 * libhmt — status codes, the last error of the calling thread, and logging.
 * Part of <hmt/hmt.h>; self-contained C99, compiles as C and as C++.
 *
 * One error channel: every function that can fail returns an hmt_status
 * (HMT_OK = 0, failures negative) and, on failure, stores a message for the
 * calling thread, read with hmt_last_error_msg(). Handles keep no messages
 * of their own. The message stays until the next failure on the same thread
 * or hmt_last_error_clear(): a successful call never changes it (libgit2's
 * rule), so read it right after the failure it describes.
 */
#ifndef INCLUDE_HMT_ERROR_H
#define INCLUDE_HMT_ERROR_H

#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values are fixed forever; new codes are only appended. */
typedef enum hmt_status {
    HMT_OK = 0,
    HMT_E_INVAL = -1,       /* an argument is invalid (NULL, out of range)  */
    HMT_E_NOMEM = -2,       /* an allocation failed                          */
    HMT_E_IO = -3,          /* a file could not be opened, read or written   */
    HMT_E_FORMAT = -4,      /* a file's contents are malformed or corrupt    */
    HMT_E_UNSUPPORTED = -5, /* valid but not supported (arch, tensor type)   */
    HMT_E_CTX_FULL = -6,    /* the KV cache has no room for the batch        */
    HMT_E_ABORTED = -7,     /* the abort callback asked to stop              */
    HMT_E_MISUSE = -8,      /* API called in the wrong order or state        */
    HMT_E_BUFFER = -9,      /* the caller's output buffer is too small       */
    HMT_E_TOKEN = -10,      /* a token id is outside [0, n_vocab)            */
    HMT_E_INTERNAL = -11    /* a bug in libhmt; please report it             */
} hmt_status;

/** Static English text for a status code ("unknown status" for others).
 *  Thread-safe; never NULL. */
HMT_API const char *hmt_strerror(int status);

/** The message of the last failure on the calling thread: what failed and
 *  why, naming the argument, key, tensor or file field involved. Thread-local
 *  storage owned by the library; the pointer stays valid until the thread's
 *  next failure or hmt_last_error_clear(). "" when nothing has failed on this
 *  thread since it started or since the last clear. Never NULL. */
HMT_API const char *hmt_last_error_msg(void);

/** Empty the calling thread's message (hmt_last_error_msg() returns ""). */
HMT_API void hmt_last_error_clear(void);

typedef enum hmt_log_level {
    HMT_LOG_ERROR = 0,
    HMT_LOG_WARN = 1,
    HMT_LOG_INFO = 2,
    HMT_LOG_DEBUG = 3
} hmt_log_level;

typedef void (*hmt_log_fn)(hmt_log_level level, const char *msg, void *user_data);

/** Route the library's log lines to fn (NULL: discard, the default). The
 *  library never prints otherwise. Global state: call before other threads
 *  use the library. */
HMT_API void hmt_log_set(hmt_log_fn fn, void *user_data);

#ifdef __cplusplus
}
#endif

#endif /* INCLUDE_HMT_ERROR_H */
