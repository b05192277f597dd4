/* Saving, checking and loading one KV region through a state walk
 * (io/state_io.h): the stream snapshots' open segment and the context
 * states share this layout. Per layer: the K cache as rows of n values, one
 * row per K component (kv_dim of them, whatever the cache's blocks), then
 * the V cache (n slots of kv_dim values). A non-finite value is reported as "K cache" / "V cache"
 * with its index in that array over all layers (layer-major, as saved). */
#ifndef HMT_KV_IO_H
#define HMT_KV_IO_H

#include <stddef.h>
#include <stdint.h>

#include "backbone/kv_layout.h"
#include "backbone/model.h"
#include "io/state_io.h"

/* A KV region: K per layer and KV head in blocks of slots, V per layer
 * and KV head in slices of components (kv_layout.h, for a cache of stride
 * slots; a backbone's kt / v with stride n_ctx), its first n slots in use, its elements of GGML
 * type gtype (F32, F16 or BF16: the cache's, saved as they are). */
typedef struct {
    unsigned char *kt, *v;
    size_t stride;
    int32_t n;
    uint32_t gtype;
} hmti_kv_region;

/* Walk the n slots of r (CHECK reads only the buffer: r's pointers are not
 * used, and n may exceed r's stride). */
void hmti_kv_walk(hmti_walk *c, const hmt_model *m, const hmti_kv_region *r);

/* The bytes hmti_kv_walk moves for n slots of elements of type gtype. */
uint64_t hmti_kv_walk_bytes(const hmt_model *m, int64_t n, uint32_t gtype);

#endif
