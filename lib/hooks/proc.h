/* Internal side of next-token processors (include/hmt/sampler.h). */
#ifndef HMT_PROC_INTERNAL_H
#define HMT_PROC_INTERNAL_H

#include <stdatomic.h>

#include "core/busy.h"
#include "hmt/hmt.h"

/* Called by the sampler instead of iface.accept for built-in processors that
 * need the final (post-processor) probability of the accepted token: p_final
 * is exp of the last hmt_sampler_apply's log-probability of token, or NaN
 * when no apply preceded this accept (prompt tokens). */
typedef void (*hmti_accept_final_fn)(void *user_data, hmt_token token, double p_final);

struct hmt_proc {
    hmt_proc_i vt; /* the caller's vtable, zero-extended to our size */
    void *user_data;
    hmti_accept_final_fn accept_final; /* built-ins only */
    atomic_int refs;                   /* the creator's + the sampler's */
    atomic_int in_sampler;             /* added to a sampler (at most one) */
    hmti_guard guard;                  /* last: see busy.h */
};

/* hmt_proc_create for built-ins: same contract, plus the accept_final hook. */
int hmti_proc_create_builtin(hmt_proc **out, const hmt_proc_i *iface, void *user_data,
                             hmti_accept_final_fn accept_final);

/* A sampler's reference. */
void hmti_proc_retain(hmt_proc *p);
void hmti_proc_release(hmt_proc *p);

/* user_data of p if p was created with this apply function, else NULL (how a
 * built-in recognises its own processors). */
void *hmti_proc_data_if(const hmt_proc *p,
                        int (*apply)(void *, float *, int32_t, const float *, int32_t));

/* The processor's handle guard (busy.h) for calls that change it outside a
 * sampler (hmt_proc_ditto_set_delimiters). */
int hmti_proc_enter(hmt_proc *p, const char *fn);
void hmti_proc_leave(hmt_proc *p);

#endif
