/* Where the KV cache keeps a key or value component.
 *
 * K: per layer and KV head the slots
 * are cut into blocks of HMTI_KT_BLOCK, each block [head_dim][HMTI_KT_BLOCK]
 * (component-major, so scores = K·q is a column-major GEMM per block, of
 * hmti_gemm_cm's tile height): a step reads a head's keys as consecutive
 * blocks whatever n_ctx. One row of n_ctx slots per component read 64
 * short rows n_ctx apart instead: a SmolLM2-shaped context of 2048 / 4096
 * slots filled to 300 decoded 0.93x / 0.89x as fast as one of 321
 * (docs/QUANTS.md, sixteenth session). */
#ifndef HMT_KV_LAYOUT_H
#define HMT_KV_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define HMTI_KT_BLOCK 32

/* Elements of one layer's keys of one KV head in a cache of n_ctx slots
 * (n_ctx rounded up to whole blocks). */
static inline size_t hmti_kt_head_elems(int64_t head_dim, int64_t n_ctx) {
    return (size_t)((n_ctx + HMTI_KT_BLOCK - 1) / HMTI_KT_BLOCK) * (size_t)head_dim * HMTI_KT_BLOCK;
}

/* Component c of slot t, as an element offset within one head's keys. */
static inline size_t hmti_kt_at(int64_t head_dim, int64_t c, int64_t t) {
    return ((size_t)(t / HMTI_KT_BLOCK) * (size_t)head_dim + (size_t)c) * HMTI_KT_BLOCK +
           (size_t)(t % HMTI_KT_BLOCK);
}

/* Slots from t on that stay in t's block, at most n. */
static inline int64_t hmti_kt_run(int64_t t, int64_t n) {
    const int64_t room = HMTI_KT_BLOCK - t % HMTI_KT_BLOCK;
    return n < room ? n : room;
}

/* V: per layer and KV head, n_ctx × head_dim values, the components in
 * slices of HMTI_V_SLICE (the last one narrower when head_dim is not a
 * multiple), each slice [n_ctx][its width]: a decode step's values product
 * walks the slots of one slice (a pass of the kernel, kv_row.h) as one run
 * of memory, and a prompt's V·P is a column-major GEMM per slice. Slots of
 * kv_dim values read each head's 256 bytes of a slot a pass, kv_dim apart:
 * SmolLM2's 3 heads' values on 2 threads took 1.58x the time of the same
 * bytes of keys at 1800 slots (docs/QUANTS.md, seventeenth session). */
#define HMTI_V_SLICE 32

/* Elements of one layer's values of one KV head in a cache of n_ctx slots. */
static inline size_t hmti_v_head_elems(int64_t head_dim, int64_t n_ctx) {
    return (size_t)n_ctx * (size_t)head_dim;
}

/* The width of the slice starting at component c0 (a multiple of the slice). */
static inline int64_t hmti_v_width(int64_t head_dim, int64_t c0) {
    return head_dim - c0 < HMTI_V_SLICE ? head_dim - c0 : HMTI_V_SLICE;
}

/* Component c of slot t, as an element offset within one head's values
 * (n_ctx slots). */
static inline size_t hmti_v_at(int64_t head_dim, int64_t n_ctx, int64_t c, int64_t t) {
    const int64_t c0 = c / HMTI_V_SLICE * HMTI_V_SLICE;
    return (size_t)c0 * (size_t)n_ctx + (size_t)t * (size_t)hmti_v_width(head_dim, c0) + (size_t)(c - c0);
}

#endif
