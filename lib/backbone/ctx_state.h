/* What lib/backbone/ctx_state.c (saving and restoring a context's state)
 * needs of a context beyond its public API; defined in ctx.c. */
#ifndef HMT_CTX_STATE_H
#define HMT_CTX_STATE_H

#include "backbone/backbone.h"
#include "core/busy.h"

/* The context's guard (NULL for a NULL context) and backbone. */
hmti_guard *hmti_ctx_guard(hmt_ctx *ctx);
hmti_backbone *hmti_ctx_backbone(hmt_ctx *ctx);
/* Rows of the last successful eval (0 after clear, rewind or a failure). */
int32_t hmti_ctx_n_rows(const hmt_ctx *ctx);
/* Set n_past (of sequence 0) and make the last eval's outputs n_rows rows with the
 * HMT_OUT_* flags given (checked by the caller), their values to be written
 * through hmt_ctx_logits / _hidden / _ffn_input. HMT_E_NOMEM leaves the
 * context as it was. */
int hmti_ctx_set_outputs(hmt_ctx *ctx, int32_t n_past, int32_t n_rows, const uint8_t *flags);
/* HMT_E_INVAL unless 0 <= seq < HMT_P_N_SEQ ("fn: what seq outside [0, n)"). */
int hmti_ctx_check_seq(const hmt_ctx *ctx, int32_t seq, const char *fn, const char *what);
/* Set sequence seq's n_past (checked by the caller); nothing else changes. */
void hmti_ctx_set_seq_n_past(hmt_ctx *ctx, int32_t seq, int32_t n_past);

#endif
