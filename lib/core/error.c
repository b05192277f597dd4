/* Status table, thread-local error messages, and the log hook. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

static _Thread_local char tls_msg[HMTI_ERRMSG_MAX];

/* One table: the code and its static text. */
#define HMT_STATUS_TABLE(X)                                   \
    X(HMT_OK, "success")                                      \
    X(HMT_E_INVAL, "invalid argument")                        \
    X(HMT_E_NOMEM, "out of memory")                           \
    X(HMT_E_IO, "input/output error")                         \
    X(HMT_E_FORMAT, "malformed or corrupt file")              \
    X(HMT_E_UNSUPPORTED, "unsupported feature")               \
    X(HMT_E_CTX_FULL, "context (KV cache) is full")           \
    X(HMT_E_ABORTED, "aborted by callback")                   \
    X(HMT_E_MISUSE, "API misuse (wrong call order or state)") \
    X(HMT_E_BUFFER, "output buffer too small")                \
    X(HMT_E_TOKEN, "token id out of range")                   \
    X(HMT_E_INTERNAL, "internal error")

HMT_API const char *hmt_strerror(int status) {
#define HMT_STATUS_CASE(code, text) \
    case code:                      \
        return text;
    switch (status) { HMT_STATUS_TABLE(HMT_STATUS_CASE) }
#undef HMT_STATUS_CASE
    return "unknown status";
}

/* Formatted into a local buffer first: callers wrap the previous message,
 * hmti_errf(rc, "...: %s", hmti_tls_errmsg()), and vsnprintf into the buffer
 * it reads from is undefined (the detail came out garbled or empty). */
int hmti_errf(int code, const char *fmt, ...) {
    char msg[HMTI_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(tls_msg, msg, sizeof msg);
    return code;
}

const char *hmti_tls_errmsg(void) { return tls_msg; }

HMT_API const char *hmt_last_error_msg(void) { return tls_msg; }

HMT_API void hmt_last_error_clear(void) { tls_msg[0] = '\0'; }

/* Log hook: global, documented as "set before threads start". */
static hmt_log_fn log_fn;
static void *log_user;

HMT_API void hmt_log_set(hmt_log_fn fn, void *user_data) {
    log_fn = fn;
    log_user = user_data;
}

void hmti_log(hmt_log_level level, const char *fmt, ...) {
    if (!log_fn) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_fn(level, line, log_user);
}

HMT_API uint32_t hmt_version_number(void) { return HMT_VERSION_NUMBER; }
HMT_API const char *hmt_version_string(void) { return HMT_VERSION_STRING; }
HMT_API uint32_t hmt_abi_version(void) { return HMT_ABI_VERSION; }
