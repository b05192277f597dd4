/* Random GGML weight blocks for the decode benchmarks (quant-bench,
 * gemv-stream): the speed does not depend on the values, but the f16
 * scales must be normal numbers (a subnormal or an FMA on one takes a slow
 * microcode path), and so must F32/F16/BF16 weights. */
#ifndef HMT_BENCH_QFILL_H
#define HMT_BENCH_QFILL_H

#include <stdint.h>
#include <string.h>

#include "kernels/quant.h"

/* The type called s (GGML's name, e.g. "Q4_K"), or 999. */
static inline uint32_t hmtb_qtype(const char *s) {
    static const uint32_t all[] = {0, 1, 30, 2, 3, 6, 7, 8, 10, 11, 12, 13, 14, 20, 23};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(hmti_qtraits_of(all[i])->name, s) == 0) return all[i];
    return 999;
}

/* bytes of random blocks of type, with normal scales. */
static inline void hmtb_qfill(uint32_t type, uint8_t *w, size_t bytes) {
    uint64_t s = 88172645463325252ULL;
    for (size_t i = 0; i < bytes; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        w[i] = (uint8_t)s;
    }
    const hmti_qtraits *t = hmti_qtraits_of(type);
    if (t->block_elems == 1) {
        /* finite, normal values of magnitude in [2^-15, 2), as trained weights
         * are: for F32/BF16 the top byte s0111xxx (exponent 112..127); clearing
         * only the exponent's top bit left 1 value in 256 subnormal, and an FMA
         * on one takes a microcode assist (BF16 ran at a sixth of its speed).
         * F16: clear the exponent's top bit (subnormal F16 converts exactly) */
        const size_t es = type == 0 ? 4 : 2;
        for (size_t i = es - 1; i < bytes; i += es) {
            if (type == 1)
                w[i] &= 0xBF;
            else
                w[i] = (uint8_t)((w[i] & 0x80) | 0x38 | (w[i] & 0x07)); /* exp 112..127 */
        }
        return;
    }
    /* f16 scale (and min) fields: normal values in [1/16, 1/8) (no subnormal slow paths) */
    int d_off = type == 10 ? 80 : type == 11 ? 108 : type == 14 ? 208 : 0;
    int m_off = type == 10 ? 82 : (type == 3 || type == 7 || type == 12 || type == 13) ? 2 : -1;
    for (size_t b = 0; b < bytes; b += (size_t)t->block_bytes)
        for (int f = 0; f < 2; f++) {
            int o = f ? m_off : d_off;
            if (o < 0) continue;
            w[b + (size_t)o + 1] = (uint8_t)(0x2C | (w[b + (size_t)o + 1] & 0x03));
        }
}

#endif
