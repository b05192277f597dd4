/* The opaque parameter bag behind hmt_params_*: a value per known key. */
#ifndef HMT_PARAMS_H
#define HMT_PARAMS_H

#include "hmt/experimental.h"

/* Value of key in p, or its default when p is NULL. Key must be known. */
double hmti_param_value(const hmt_params *p, hmt_param key);
/* Check a value against the key's type and bounds (message names the key). */
int hmti_param_check(hmt_param key, double value, int as_int);

/* HMT_OK when every key set on p (p may be NULL) is among keys[0..n);
 * else HMT_E_INVAL naming the first other key and the object it is for. */
int hmti_params_only(const hmt_params *p, const hmt_param *keys, size_t n, const char *fn);
#define HMTI_NKEYS(a) (sizeof(a) / sizeof((a)[0]))

/* A key's name for messages ("?" for an unknown key). */
const char *hmti_param_name(hmt_param key);

/* HMT_P_N_THREADS value to a thread count: 0 = the online CPUs. */
int hmti_resolve_threads(int64_t n);

#endif
