/*
 * libhmt — versions and the export macros every other header uses.
 * Part of <hmt/hmt.h>; self-contained C99, compiles as C and as C++.
 */
#ifndef INCLUDE_HMT_VERSION_H
#define INCLUDE_HMT_VERSION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(HMT_BUILD_SHARED)
#define HMT_API __declspec(dllexport)
#elif defined(__GNUC__) && __GNUC__ >= 4
#define HMT_API __attribute__((visibility("default")))
#else
#define HMT_API
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define HMT_NODISCARD __attribute__((warn_unused_result))
#else
#define HMT_NODISCARD
#endif

#define HMT_VERSION_MAJOR 0
#define HMT_VERSION_MINOR 2
#define HMT_VERSION_PATCH 0
#define HMT_VERSION_NUMBER \
    (HMT_VERSION_MAJOR * 10000 + HMT_VERSION_MINOR * 100 + HMT_VERSION_PATCH)
#define HMT_VERSION_STR_(x) #x
#define HMT_VERSION_STR(x) HMT_VERSION_STR_(x)
#define HMT_VERSION_STRING                                                   \
    HMT_VERSION_STR(HMT_VERSION_MAJOR) "." HMT_VERSION_STR(HMT_VERSION_MINOR) \
    "." HMT_VERSION_STR(HMT_VERSION_PATCH)
#define HMT_AT_LEAST_VERSION(x, y, z) \
    (HMT_VERSION_NUMBER >= ((x) * 10000 + (y) * 100 + (z)))

/* The ABI number: the N of the SONAME libhmt.so.N. It changes only when a
 * released symbol is removed or changes meaning (docs/ABI.md). */
#define HMT_ABI_VERSION 1

/** Release version of the loaded library, as HMT_VERSION_NUMBER. */
HMT_API uint32_t hmt_version_number(void);
/** Release version of the loaded library, "X.Y.Z"; static storage. */
HMT_API const char *hmt_version_string(void);
/** ABI number of the loaded library (HMT_ABI_VERSION it was built with). */
HMT_API uint32_t hmt_abi_version(void);

#ifdef __cplusplus
}
#endif

#endif /* INCLUDE_HMT_VERSION_H */
