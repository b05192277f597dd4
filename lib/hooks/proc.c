/* Next-token processors (include/hmt/sampler.h): a copy of the caller's
 * vtable and user data, reference counted so that the creator and the
 * sampler it is added to may free it in either order. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "hooks/proc.h"

#define APPLY_END (offsetof(hmt_proc_i, apply) + sizeof(((hmt_proc_i *)0)->apply))

static int proc_new(hmt_proc **out, const hmt_proc_i *iface, void *user_data,
                    hmti_accept_final_fn accept_final) {
    if (!out) return hmti_errf(HMT_E_INVAL, "hmt_proc_create: out is NULL");
    *out = NULL;
    if (!iface) return hmti_errf(HMT_E_INVAL, "hmt_proc_create: iface is NULL");
    if (iface->struct_size < APPLY_END)
        return hmti_errf(HMT_E_INVAL,
                         "hmt_proc_create: iface->struct_size %u is smaller than the "
                         "interface's required part (%zu bytes)",
                         (unsigned)iface->struct_size, (size_t)APPLY_END);
    if (!iface->apply) return hmti_errf(HMT_E_INVAL, "hmt_proc_create: iface->apply is NULL");
    hmt_proc *p = hmti_calloc(1, sizeof *p);
    if (!p) return hmti_errf(HMT_E_NOMEM, "hmt_proc_create: out of memory");
    size_t n = iface->struct_size < sizeof p->vt ? iface->struct_size : sizeof p->vt;
    memcpy(&p->vt, iface, n); /* fields past n stay NULL */
    p->vt.struct_size = (uint32_t)sizeof p->vt;
    p->user_data = user_data;
    p->accept_final = accept_final;
    atomic_init(&p->refs, 1);
    atomic_init(&p->in_sampler, 0);
    hmti_guard_init(&p->guard, HMTI_MAGIC_PROC);
    *out = p;
    return HMT_OK;
}

HMT_API int hmt_proc_create(hmt_proc **out, const hmt_proc_i *iface, void *user_data) {
    return proc_new(out, iface, user_data, NULL);
}

int hmti_proc_create_builtin(hmt_proc **out, const hmt_proc_i *iface, void *user_data,
                             hmti_accept_final_fn accept_final) {
    return proc_new(out, iface, user_data, accept_final);
}

void *hmti_proc_data_if(const hmt_proc *p,
                        int (*apply)(void *, float *, int32_t, const float *, int32_t)) {
    return p && p->vt.apply == apply ? p->user_data : NULL;
}

void hmti_proc_retain(hmt_proc *p) { atomic_fetch_add(&p->refs, 1); }

void hmti_proc_release(hmt_proc *p) {
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1) return;
    hmti_guard_poison(&p->guard);
    if (p->vt.free_data) p->vt.free_data(p->user_data);
    free(p);
}

HMT_API void hmt_proc_free(hmt_proc *p) {
    if (!p || hmti_guard_check(&p->guard, HMTI_MAGIC_PROC, "hmt_proc_free")) return;
    hmti_proc_release(p);
}

int hmti_proc_enter(hmt_proc *p, const char *fn) {
    return hmti_enter(HMTI_GUARD(p), HMTI_MAGIC_PROC, fn);
}
void hmti_proc_leave(hmt_proc *p) { hmti_leave(HMTI_GUARD(p)); }
