/* Weight type traits, activation buffer sizes, the one-time choice of dot
 * kernels by CPU features, and the GEMV over quantized rows. */
#include <cpuid.h>
#include <pthread.h>

#include "kernels/cpu.h"
#include "kernels/quant_impl.h"

static const hmti_qtraits TRAITS[] = {
    {"F32", HMTI_T_F32, 1, 4, 0},         {"F16", HMTI_T_F16, 1, 2, 0},
    {"BF16", HMTI_T_BF16, 1, 2, 0},       {"Q4_0", HMTI_T_Q4_0, 32, 18, 32},
    {"Q4_1", HMTI_T_Q4_1, 32, 20, 32},    {"Q5_0", HMTI_T_Q5_0, 32, 22, 32},
    {"Q5_1", HMTI_T_Q5_1, 32, 24, 32},    {"Q8_0", HMTI_T_Q8_0, 32, 34, 32},
    {"Q2_K", HMTI_T_Q2_K, 256, 84, 256},  {"Q3_K", HMTI_T_Q3_K, 256, 110, 256},
    {"Q4_K", HMTI_T_Q4_K, 256, 144, 256}, {"Q5_K", HMTI_T_Q5_K, 256, 176, 256},
    {"Q6_K", HMTI_T_Q6_K, 256, 210, 256}, {"IQ4_NL", HMTI_T_IQ4_NL, 32, 18, 32},
    {"IQ4_XS", HMTI_T_IQ4_XS, 256, 136, 256},
};
#define N_TRAITS ((int)(sizeof TRAITS / sizeof TRAITS[0]))
#define MAX_TYPE 31

const int8_t hmti_iq4_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                    1,    13,   25,  38,  53,  69,  89,  113};

const hmti_qtraits *hmti_qtraits_of(uint32_t type) {
    for (int i = 0; i < N_TRAITS; i++)
        if (TRAITS[i].type == type) return &TRAITS[i];
    return NULL;
}

size_t hmti_qrow_bytes(uint32_t type, int64_t n) {
    const hmti_qtraits *t = hmti_qtraits_of(type);
    if (!t || n <= 0 || n % t->block_elems) return 0;
    return (size_t)(n / t->block_elems) * (size_t)t->block_bytes;
}

size_t hmti_qact_bytes(uint32_t type, int64_t n) {
    const hmti_qtraits *t = hmti_qtraits_of(type);
    if (!t || n <= 0 || t->act_block == 0 || n % t->act_block) return 0;
    return t->act_block == 32 ? (size_t)(n / 32) * sizeof(hmti_q8_32)
                              : (size_t)(n / HMTI_QK_K) * sizeof(hmti_q8_256);
}

void hmti_quantize_act(uint32_t type, const float *x, int64_t n, void *out) {
    const hmti_qtraits *t = hmti_qtraits_of(type);
    if (!t || t->act_block == 0) return;
    if (t->act_block == 32)
        hmti_quantize_q8_32(x, n, out);
    else
        hmti_quantize_q8_256(x, n, out);
}

/* ---- dispatch ------------------------------------------------------------------- */
/* AVX512-VNNI: CPUID leaf 7, sub-leaf 0, ECX bit 11 (read directly: not every
 * compiler's __builtin_cpu_supports knows the name). */
static int has_avx512_vnni(void) {
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 11));
}

static int g_path = -1;
static hmti_vec_dot_fn g_best[MAX_TYPE + 1];
static hmti_vec_dot4_fn g_best4[MAX_TYPE + 1]; /* only with g_best from the same path */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

hmti_vec_dot_fn hmti_vec_dot_path(uint32_t type, int path) {
    if (!hmti_qtraits_of(type)) return NULL;
    switch (path) {
    case HMTI_QPATH_REF: return hmti_qdot_ref(type);
    case HMTI_QPATH_AVX2: return hmti_qdot_avx2(type);
    case HMTI_QPATH_AVX512: return hmti_qdot_avx512(type);
    case HMTI_QPATH_VNNI: return hmti_qdot_vnni(type);
    default: return NULL;
    }
}

/* The 4-row kernel of path for type, or NULL: paths without one run the
 * single-row kernel row by row. */
static hmti_vec_dot4_fn vec_dot4_path(uint32_t type, int path) {
    switch (path) {
    case HMTI_QPATH_AVX512: return hmti_qdot4_avx512(type);
    case HMTI_QPATH_VNNI: return hmti_qdot4_vnni(type);
    default: return NULL;
    }
}

static void choose(void) {
    int level = hmti_cpu_level(); /* 0 scalar, 1 AVX2+FMA+F16C, 2 AVX-512 F/BW/VL/DQ */
    int path = level == 2 ? (has_avx512_vnni() ? HMTI_QPATH_VNNI : HMTI_QPATH_AVX512)
                          : level == 1 ? HMTI_QPATH_AVX2 : HMTI_QPATH_REF;
    for (int i = 0; i < N_TRAITS; i++) {
        hmti_vec_dot_fn f = NULL;
        int p = path;
        for (; p >= 0 && !(f = hmti_vec_dot_path(TRAITS[i].type, p)); p--) {}
        g_best[TRAITS[i].type] = f;
        g_best4[TRAITS[i].type] = f ? vec_dot4_path(TRAITS[i].type, p) : NULL;
    }
    g_path = path;
}

int hmti_quant_path(void) {
    pthread_once(&g_once, choose);
    return g_path;
}

hmti_vec_dot_fn hmti_vec_dot_best(uint32_t type) {
    pthread_once(&g_once, choose);
    return type <= MAX_TYPE ? g_best[type] : NULL;
}

/* ---- GEMV ------------------------------------------------------------------------- */
/* Prefetch distances of the row loop: into L1 2 KB ahead, measured best on
 * quant-bench's decode step (1 KB: the wait shows again; 4-8 KB: evictions
 * before use); and into L2 only, PF_L2_BYTES beyond that, so that short
 * rows are on their way from memory early (several rows per 4 KB page, read
 * interleaved by the 4-row kernels: likely a pattern the hardware streamer
 * follows poorly). F16 GEMVs of SmolLM2's shapes (576-wide rows) +5-18% on
 * 1 thread in interleaved runs, TinyLlama's 2048-wide rows unchanged (+-3%). */
enum { PF_BYTES = 2048, PF_L2_BYTES = 8192 };

/* The lines of [p, p + bytes) PF_BYTES and PF_BYTES + PF_L2_BYTES ahead
 * (ahead: PF_BYTES rounded up to whole rows). */
static inline void prefetch_rows(const uint8_t *p, size_t bytes, size_t ahead) {
    for (size_t o = 0; o < bytes; o += 64) {
        __builtin_prefetch(p + ahead + o, 0, 3);
        __builtin_prefetch(p + ahead + PF_L2_BYTES + o, 0, 2);
    }
}

void hmti_gemv_q_rows(uint32_t type, int64_t r0, int64_t r1, int64_t cols, const void *w,
                      size_t row_stride, const void *act, float *y) {
    hmti_vec_dot_fn dot = hmti_vec_dot_best(type);
    if (!dot) return;
    const uint8_t *row = (const uint8_t *)w + (size_t)r0 * row_stride;
    /* Software prefetch of the row PF_BYTES ahead (rounded to whole rows):
     * the kernels are compute-heavy enough that the hardware prefetcher alone
     * leaves memory idle while a row is dotted. Past r1 it touches the next
     * thread's rows or nothing mapped: prefetches never fault. */
    const size_t rb = hmti_qrow_bytes(type, cols);
    const size_t ahead = row_stride * ((PF_BYTES + row_stride - 1) / row_stride);
    int64_t r = r0;
    hmti_vec_dot4_fn dot4 = g_best4[type];
    if (dot4)
        for (; r + 4 <= r1; r += 4, row += 4 * row_stride) {
            prefetch_rows(row, 3 * row_stride + rb, ahead);
            dot4(cols, row, row_stride, act, y + r);
        }
    for (; r < r1; r++, row += row_stride) {
        prefetch_rows(row, rb, ahead);
        y[r] = dot(cols, row, act);
    }
}

void hmti_gemv_q(uint32_t type, int64_t rows, int64_t cols, const void *w, size_t row_stride,
                 const float *x, float *y, void *scratch) {
    const hmti_qtraits *t = hmti_qtraits_of(type);
    if (!t || rows <= 0 || cols <= 0) return;
    const void *act = x;
    if (t->act_block) {
        hmti_quantize_act(type, x, cols, scratch);
        act = scratch;
    }
    hmti_gemv_q_rows(type, 0, rows, cols, w, row_stride, act, y);
}
