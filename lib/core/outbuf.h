/* Output buffers (logits, hidden states, FFN inputs) that grow without
 * moving what a caller holds: a grown buffer gets a new block and the old
 * one is retired, kept until the handle is freed. A pointer returned by
 * hmt_ctx_logits / hmt_stream_logits thus stays readable for the handle's
 * lifetime (its contents may be overwritten or go stale), which is what
 * lets the Python binding hand out zero-copy views safely. Growth is at
 * least 1.5x, so the retired blocks together stay smaller than twice the
 * live one. */
#ifndef HMT_OUTBUF_H
#define HMT_OUTBUF_H

#include <stddef.h>

typedef struct {
    void **blocks; /* retired blocks, freed by hmti_outbuf_release */
    size_t n, cap;
} hmti_retired;

/* Make *buf hold at least rows rows of width floats (*cap counts rows),
 * keeping its contents. HMT_OK or HMT_E_NOMEM (then nothing changed). */
int hmti_outbuf_reserve(hmti_retired *r, float **buf, size_t *cap, size_t rows, size_t width);

/* Free the retired blocks (not the live buffers, which their owner frees). */
void hmti_outbuf_release(hmti_retired *r);

#endif
