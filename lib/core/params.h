/* The opaque parameter bag behind hmt_params_*: a value per known key. */
#ifndef HMT_PARAMS_H
#define HMT_PARAMS_H

#include "hmt/hmt.h"

/* Value of key in p, or its default when p is NULL. Key must be known. */
double hmti_param_value(const hmt_params *p, hmt_param key);
/* Check a value against the key's type and bounds (message names the key). */
int hmti_param_check(hmt_param key, double value, int as_int);

/* HMT_P_N_THREADS value to a thread count: 0 = the online CPUs. */
int hmti_resolve_threads(int64_t n);

#endif
