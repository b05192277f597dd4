/* Abort callbacks: a handle's own (hmt_*_set_abort_callback) plus an "extra"
 * one that a caller inside the library (a datastore builder running a
 * context or stream) installs for the duration of its call, so both are
 * polled between layers. */
#ifndef HMT_ABORT_H
#define HMT_ABORT_H

#include "hmt/hmt.h"

typedef struct {
    hmt_abort_fn fn, extra_fn;
    void *data, *extra_data;
} hmti_abort;

/* Nonzero when either callback asks to stop (an hmt_abort_fn over hmti_abort). */
int hmti_abort_poll(void *abort);

/* The callback pair to hand to hmti_backbone_forward: (NULL, NULL) when
 * neither is set, so an eval without callbacks pays nothing. */
static inline hmt_abort_fn hmti_abort_fn_of(const hmti_abort *a) {
    return a->fn || a->extra_fn ? hmti_abort_poll : NULL;
}

/* Install (fn != NULL) or remove the extra callback of a context / stream. */
void hmti_ctx_set_extra_abort(hmt_ctx *ctx, hmt_abort_fn fn, void *data);
void hmti_stream_set_extra_abort(hmt_stream *s, hmt_abort_fn fn, void *data);

#endif
