/* f16 / bf16 <-> f32 conversion (exact, round to nearest even) and rows of
 * ggml tensor types to F32. Scalar functions are pure bit manipulation; the
 * row converters use F16C / AVX-512 when the CPU has them (checked at run
 * time: the library is built for generic x86-64). */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"

enum { TYPE_F32 = 0, TYPE_F16 = 1, TYPE_Q8_0 = 8, TYPE_BF16 = 30 };
enum { Q8_0_BLOCK = 32, Q8_0_BYTES = 2 + 32 };

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* NaNs come out quiet (bit 22 set) with the payload kept, as F16C's
 * vcvtph2ps does, so the scalar and vector paths agree bit for bit. */
float hmti_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    if (exp == 0x1F) {
        if (man == 0) return bits_f32(sign | 0x7F800000u);
        return bits_f32(sign | 0x7FC00000u | (man << 13));
    }
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        /* subnormal: man * 2^-24, exact in f32 */
        float v = (float)man * 0x1p-24f;
        return bits_f32(sign | f32_bits(v));
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t hmti_f32_to_f16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) /* NaN: quiet, keep the top payload bits */
        return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
    if (a >= 0x477FF000u) /* >= 65520 rounds to infinity (and Inf itself) */
        return (uint16_t)(sign | 0x7C00u);
    if (a < 0x38800000u) { /* below the smallest normal f16, 2^-14 */
        if (a < 0x33000000u) return sign; /* < 2^-25 (half the smallest subnormal): 0 */
        /* subnormal result: value / 2^-24 rounded to nearest even integer */
        uint32_t e = a >> 23;                 /* 102 .. 112 */
        uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126u - e;            /* 14 .. 24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    /* normal: rebias exponent and round the 13 dropped mantissa bits */
    uint32_t r = a - 0x38000000u; /* exponent 127 -> 15 */
    r += 0xFFFu + ((r >> 13) & 1u);
    return (uint16_t)(sign | (r >> 13)); /* carry may reach Inf correctly */
}

float hmti_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t hmti_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

size_t hmti_row_size(uint32_t type, int64_t n) {
    if (n < 0) return 0;
    switch (type) {
    case TYPE_F32: return (size_t)n * 4;
    case TYPE_F16:
    case TYPE_BF16: return (size_t)n * 2;
    case TYPE_Q8_0: return n % Q8_0_BLOCK ? 0 : (size_t)(n / Q8_0_BLOCK) * Q8_0_BYTES;
    default: return 0;
    }
}

/* ---- vector row converters ---------------------------------------------- */
#include "kernels/cpu.h"

AVX512_TARGET static void f16_row_avx512(const uint16_t *s, float *d, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(d + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + i))));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);
        __m256i v = _mm256_maskz_loadu_epi16(k, s + i);
        _mm512_mask_storeu_ps(d + i, k, _mm512_cvtph_ps(v));
    }
}

AVX2_TARGET static void f16_row_avx2(const uint16_t *s, float *d, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
    for (; i < n; i++) d[i] = hmti_f16_to_f32(s[i]);
}

AVX512_TARGET static void bf16_row_avx512(const uint16_t *s, float *d, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + i)));
        _mm512_storeu_si512(d + i, _mm512_slli_epi32(v, 16));
    }
    for (; i < n; i++) d[i] = hmti_bf16_to_f32(s[i]);
}

AVX512_TARGET static void q8_0_row_avx512(const uint8_t *s, float *d, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, s += Q8_0_BYTES, d += Q8_0_BLOCK) {
        uint16_t dh;
        memcpy(&dh, s, 2);
        __m512 scale = _mm512_set1_ps(hmti_f16_to_f32(dh));
        __m512i q0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(s + 2)));
        __m512i q1 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(s + 18)));
        _mm512_storeu_ps(d, _mm512_mul_ps(scale, _mm512_cvtepi32_ps(q0)));
        _mm512_storeu_ps(d + 16, _mm512_mul_ps(scale, _mm512_cvtepi32_ps(q1)));
    }
}

void hmti_row_to_f32(const void *src, uint32_t src_type, float *dst, int64_t n) {
    if (n <= 0) return;
    int level = hmti_cpu_level();
    switch (src_type) {
    case TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case TYPE_F16: {
        const uint16_t *s = src;
        if (level == 2)
            f16_row_avx512(s, dst, n);
        else if (level == 1)
            f16_row_avx2(s, dst, n);
        else
            for (int64_t i = 0; i < n; i++) dst[i] = hmti_f16_to_f32(s[i]);
        break;
    }
    case TYPE_BF16: {
        const uint16_t *s = src;
        if (level == 2)
            bf16_row_avx512(s, dst, n);
        else
            for (int64_t i = 0; i < n; i++) dst[i] = hmti_bf16_to_f32(s[i]);
        break;
    }
    case TYPE_Q8_0: {
        const uint8_t *s = src;
        int64_t nb = n / Q8_0_BLOCK;
        if (level == 2) {
            q8_0_row_avx512(s, dst, nb);
        } else {
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = s + b * Q8_0_BYTES;
                uint16_t dh;
                memcpy(&dh, blk, 2);
                float scale = hmti_f16_to_f32(dh);
                for (int j = 0; j < Q8_0_BLOCK; j++)
                    dst[b * Q8_0_BLOCK + j] = scale * (float)(int8_t)blk[2 + j];
            }
        }
        break;
    }
    default: break; /* callers validate the type with hmti_row_size first */
    }
}

/* ---- non-finite checks ------------------------------------------------------ */
/* An element is non-finite when its exponent bits are all ones. The vector
 * loops test 64 (F32) or 128 (F16/BF16) elements per turn and stop at the
 * first turn that has one; the scalar loop then finds it (and does the
 * tail, and CPUs without AVX-512). This scan reads every weight of a float
 * file at load: scalar, it was half of a load's time (1.1B F32: 3.5 s of
 * 7 s). Weights in their stored types: hmti_quant_first_nonfinite
 * (quant_check.c). */
/* Elements of `size` bytes (4 or 2) and their exponent mask. */
static int64_t first_all_ones(const uint8_t *p, int64_t n, int size, uint32_t mask) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = 0;
        memcpy(&u, p + (size_t)size * i, (size_t)size); /* little-endian: the element's bits */
        if ((u & mask) == mask) return i;
    }
    return -1;
}

/* The elements before the first 256-byte turn that holds one. */
AVX512_TARGET static int64_t clean_prefix_avx512(const uint8_t *p, int64_t n, int size, uint32_t mask) {
    const __m512i m = size == 4 ? _mm512_set1_epi32((int)mask) : _mm512_set1_epi16((short)mask);
    const int64_t per_turn = 256 / size;
    int64_t i = 0;
    for (; i + per_turn <= n; i += per_turn) {
        uint64_t k = 0;
        for (int q = 0; q < 4; q++) {
            const __m512i v = _mm512_and_si512(_mm512_loadu_si512(p + (size_t)size * i + 64 * q), m);
            k |= size == 4 ? _mm512_cmpeq_epi32_mask(v, m) : _mm512_cmpeq_epi16_mask(v, m);
        }
        if (k) break;
    }
    return i;
}

static int64_t first_nonfinite(const uint8_t *p, int64_t n, int size, uint32_t mask) {
    const int64_t i0 = hmti_cpu_level() >= 2 ? clean_prefix_avx512(p, n, size, mask) : 0;
    const int64_t i = first_all_ones(p + (size_t)size * i0, n - i0, size, mask);
    return i < 0 ? -1 : i0 + i;
}

int64_t hmti_first_nonfinite(const float *v, int64_t n) {
    return first_nonfinite((const uint8_t *)v, n, 4, 0x7F800000u);
}

int64_t hmti_first_nonfinite_half(const void *h, int64_t n, int bf16) {
    return first_nonfinite(h, n, 2, bf16 ? 0x7F80u : 0x7C00u);
}

const char *hmti_nonfinite_name(float v) { return isnan(v) ? "NaN" : v > 0 ? "+inf" : "-inf"; }
