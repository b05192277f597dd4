/* Dropping slots from a KV cache whose keys are stored after RoPE
 * (attention sinks, docs/HMT.md "Sinks"). */
#ifndef HMT_KV_SHIFT_H
#define HMT_KV_SHIFT_H

#include "backbone/backbone.h"

/* Remove slots [first, first + count) of the n_past filled slots of a
 * backbone's (single) cache: slots
 * first + count .. n_past - 1 move down by count, and their keys turn by
 * -count positions (each rotated pair i by the angle -count * f_i of the
 * table the layer uses in a cache of n_ctx slots, hmti_model_rope_freqs;
 * a pure rotation: the RoPE magnitude already in the keys is
 * kept), so a key computed at position p reads as computed at p - count.
 * Values only move. Slots below first are untouched; the caller's fill
 * becomes n_past - count. The cache is hmti_backbone's (kt [layer][kv_head]
 * in blocks of slots, v [layer][kv_head] in slices of components,
 * kv_layout.h; elements of its kv_gtype; a half cache's turned keys are
 * rounded again); the caller
 * checks 0 <= first, 0 <= count, first + count <= n_past <= n_ctx. */
void hmti_kv_drop(hmti_backbone *b, int32_t first, int32_t count, int32_t n_past);

#endif
