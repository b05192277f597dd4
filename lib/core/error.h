/* Internal error reporting: every failure inside libhmt records a message for
 * the calling thread and returns its status code (the one error channel,
 * include/hmt/error.h). Successful calls never touch the message. */
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

/* Log through the user's callback (hmt_log_set); no-op without one. */
void hmti_log(hmt_log_level level, const char *fmt, ...) HMTI_PRINTF(2, 3);

#endif
