/* Load-time finiteness check of weights kept in their stored type: the
 * weights are never converted, so this is the one place a NaN or Inf in the
 * file is caught. Reads every element of F32/F16/BF16 rows and the f16
 * scale fields (d, and dmin or m where the block has one) of the block
 * types; the integer quants are finite by construction. */
#include "kernels/quant_impl.h"

/* Byte offsets of a block type's f16 fields, -1 terminated. */
static const int16_t *f16_fields(uint32_t type) {
    static const int16_t D0[] = {0, -1}, DM0[] = {0, 2, -1}, Q2K[] = {80, 82, -1},
                        Q3K[] = {108, -1}, Q6K[] = {208, -1};
    switch (type) {
    case HMTI_T_Q4_0:
    case HMTI_T_Q5_0:
    case HMTI_T_Q8_0:
    case HMTI_T_IQ4_NL:
    case HMTI_T_IQ4_XS: return D0;
    case HMTI_T_Q4_1:
    case HMTI_T_Q5_1:
    case HMTI_T_Q4_K:
    case HMTI_T_Q5_K: return DM0;
    case HMTI_T_Q2_K: return Q2K;
    case HMTI_T_Q3_K: return Q3K;
    case HMTI_T_Q6_K: return Q6K;
    default: return NULL;
    }
}

int64_t hmti_quant_first_nonfinite(uint32_t type, const void *data, int64_t n_elems, float *value) {
    const hmti_qtraits *t = hmti_qtraits_of(type);
    if (!t || n_elems <= 0 || n_elems % t->block_elems) return -1;
    const uint8_t *p = data;
    if (type == HMTI_T_F32) { /* GGUF data is aligned: a float array */
        const int64_t i = hmti_first_nonfinite(data, n_elems);
        if (i >= 0 && value) memcpy(value, p + 4 * i, 4);
        return i;
    }
    if (t->block_elems == 1) { /* F16: exponent 0x1F; BF16: exponent 0xFF */
        const int64_t i = hmti_first_nonfinite_half(p, n_elems, type == HMTI_T_BF16);
        if (i >= 0 && value) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            *value = type == HMTI_T_F16 ? hmti_f16_to_f32(h) : hmti_bf16_to_f32(h);
        }
        return i;
    }
    const int16_t *f = f16_fields(type);
    const int64_t nb = n_elems / t->block_elems;
    for (int64_t b = 0; b < nb; b++, p += t->block_bytes)
        for (int k = 0; f[k] >= 0; k++) {
            uint16_t h;
            memcpy(&h, p + f[k], 2);
            if ((h & 0x7C00u) == 0x7C00u) {
                if (value) *value = hmti_f16_to_f32(h);
                return b * t->block_elems;
            }
        }
    return -1;
}
