/* Internal error reporting: every failure inside libhmt records a message for
 * the calling thread and returns its status code. Public entry points copy the
 * message onto the handle involved (see api_*.c). */
#ifndef HMT_ERROR_H
#define HMT_ERROR_H

#include "hmt/hmt.h"

#if defined(__GNUC__)
#define HMTI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define HMTI_PRINTF(a, b)
#endif

#define HMTI_ERRMSG_MAX 512

/* Record "fmt..." as the calling thread's last error and return code. */
int hmti_errf(int code, const char *fmt, ...) HMTI_PRINTF(2, 3);

/* The calling thread's last error message ("" if none). */
const char *hmti_tls_errmsg(void);

/* Clear the calling thread's message (start of a public call that may fail). */
void hmti_clear_error(void);

/* Copy the thread's last message into a handle's buffer. */
void hmti_copy_errmsg(char dst[HMTI_ERRMSG_MAX]);

/* Log through the user's callback (hmt_log_set); no-op without one. */
void hmti_log(hmt_log_level level, const char *fmt, ...) HMTI_PRINTF(2, 3);

#endif
