/* Weight type traits, activation buffer sizes, the one-time choice of dot
 * kernels by CPU features, and the GEMV over quantized rows. */
#include <cpuid.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu.h"
#include "kernels/dequant.h"
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
static const hmti_il16_family *g_fam[MAX_TYPE + 1]; /* the 16-row layout's family, or NULL */
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

/* The family laying type out in groups of 16 rows on this CPU (quant_il16*.c),
 * or NULL: the half types need AVX-512, the quantized ones AVX512-VNNI. */
static const hmti_il16_family *family_of(uint32_t type, int avx512, int vnni) {
    if (hmti_il16_half(type)) return avx512 ? &hmti_il16_half_family : NULL;
    if (!vnni || !hmti_il16_type(type)) return NULL;
    return type == HMTI_T_Q6_K                           ? &hmti_il16_q6k_family
           : type == HMTI_T_Q4_K || type == HMTI_T_Q5_K ? &hmti_il16_q4k_family
           : type == HMTI_T_IQ4_XS                      ? &hmti_il16_iq4xs_family
                                                         : &hmti_il16_q32_family;
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
        const hmti_il16_family *fam =
            family_of(TRAITS[i].type, level == 2, path == HMTI_QPATH_VNNI && p == HMTI_QPATH_VNNI);
        g_fam[TRAITS[i].type] = fam;
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
/* Prefetch of the single-row loop (rows left over by the 4-row kernels, and
 * types without one): a row's bytes 2 KB ahead into L1 and PF_L2_BYTES
 * beyond that into L2, in one burst per row. The 4-row kernels prefetch
 * their group spread through their loop instead (hmti_pf_span). */
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
    if (dot4) /* prefetches inside */
        for (; r + 4 <= r1; r += 4, row += 4 * row_stride) dot4(cols, row, row_stride, act, y + r);
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

/* ---- several activation rows ------------------------------------------------------- */
int hmti_qmulti_kind(uint32_t type) {
    pthread_once(&g_once, choose);
    const hmti_vec_dotn_fn fn = hmti_qdotn_avx512(type);
    if (fn) /* only where the single-row kernel is that file's */
        return type <= MAX_TYPE && g_path >= HMTI_QPATH_AVX512 && g_best[type] == hmti_qdot_avx512(type) ? 3 : 0;
    if (hmti_qmulti_vnni_k(type)) /* likewise: the K-quants read their activation blocks as they are */
        return g_path == HMTI_QPATH_VNNI && g_best[type] == hmti_qdot_vnni_k(type) ? 3 : 0;
    return hmti_qmulti_vnni_kind(type);
}

static void rows_multi_il16(uint32_t type, int64_t rows, int64_t r0, int64_t r1, int64_t cols, const void *w,
                            const void *act, size_t act_stride, int64_t n_act, float *y, int64_t ldy);

void hmti_gemv_q_rows_multi(uint32_t type, int il, int64_t rows, int64_t r0, int64_t r1, int64_t cols,
                            const void *w, size_t row_bytes, const void *act, size_t act_stride,
                            const void *wide, size_t wide_stride, int64_t n_act, float *y, int64_t ldy) {
    if (il) { /* a matrix is interleaved only when its type has the 16-row layout (g_fam) */
        rows_multi_il16(type, rows, r0, r1, cols, w, act, act_stride, n_act, y, ldy);
        return;
    }
    if (!hmti_qtraits_of(type)->act_block) { /* float rows: the activations are floats */
        const hmti_vec_dotn_fn dotn = hmti_qdotn_avx512(type);
        const int64_t ldx = (int64_t)(act_stride / sizeof(float));
        for (int64_t r = r0; r < r1; r += 2) /* rows in pairs: each activation load serves two */
            for (int64_t a = 0; a < n_act; a += 16)
                dotn(cols, (const uint8_t *)w + (size_t)r * row_bytes, row_bytes, r + 1 < r1 ? 2 : 1,
                     (const float *)act + a * ldx, ldx, (int)(n_act - a < 16 ? n_act - a : 16), y + a * ldy + r,
                     ldy);
        return;
    }
    /* stored rows: whole groups of 4 rows go to the multi-row kernel, the
     * rows around them one activation at a time */
    const int64_t g0 = (r0 + 3) / 4 * 4, g1 = g0 < r1 ? g0 + (r1 - g0) / 4 * 4 : g0;
    for (int64_t a = 0; a < n_act; a++) {
        const void *x = (const uint8_t *)act + (size_t)a * act_stride;
        if (g0 >= g1) {
            hmti_gemv_q_rows(type, r0, r1, cols, w, row_bytes, x, y + a * ldy);
            continue;
        }
        hmti_gemv_q_rows(type, r0, g0, cols, w, row_bytes, x, y + a * ldy);
        hmti_gemv_q_rows(type, g1, r1, cols, w, row_bytes, x, y + a * ldy);
    }
    if (g0 < g1 && hmti_qtraits_of(type)->act_block == HMTI_QK_K)
        hmti_gemv_q_groups_vnni_k(type, (g1 - g0) / 4, cols, (const uint8_t *)w + (size_t)g0 * row_bytes, row_bytes,
                                  act, act_stride, n_act, y + g0, ldy);
    else if (g0 < g1)
        hmti_gemv_q_groups_vnni(type, (g1 - g0) / 4, cols, (const uint8_t *)w + (size_t)g0 * row_bytes,
                                row_bytes, wide, wide_stride, n_act, y + g0, ldy);
}

/* ---- interleaved layout ----------------------------------------------------------- */
int hmti_q_il_rows(uint32_t type) {
    pthread_once(&g_once, choose);
    return type <= MAX_TYPE && g_fam[type] ? HMTI_IL16_ROWS : 0;
}

int hmti_q_il_fits(uint32_t type, int64_t rows, int64_t cols) {
    const int R = hmti_q_il_rows(type);
    return R && rows >= R && cols % 32 == 0;
}

/* ---- groups of 16 rows (g_fam: quant_il16*.c) ----------------------------------- */
/* Bytes of a row of cols columns (the file's: the layout only rearranges
 * them), without hmti_qrow_bytes's table search: the decode path asks per
 * grab of rows. */
static inline size_t il16_row_bytes(uint32_t type, int64_t cols) {
    return (size_t)(cols / g_fam[type]->cols) * (hmti_il16_block(type) / HMTI_IL16_ROWS);
}

int hmti_q_il_dequant16(uint32_t type, int64_t rows, int64_t cols, const void *w, int64_t r, int64_t b0,
                        int64_t nb, float *dst, int64_t ld) {
    if (hmti_q_il_rows(type) != HMTI_IL16_ROWS || r % 16 || r + 16 > rows) return 0;
    const hmti_il16_family *f = g_fam[type];
    const int64_t c0 = 32 * b0, n = 32 * nb;
    if ((c0 | n) & (f->cols - 1)) return 0; /* not whole blocks of the layout */
    f->dequant_cols(type, (const uint8_t *)w + (size_t)r * il16_row_bytes(type, cols), c0, n, dst, ld);
    return 1;
}

/* Rows [r0, r1): whole groups by the kernel, a group entered or left in its
 * middle into a buffer, the stored rows past the groups by the row kernel. */
static void rows_il16(uint32_t type, int64_t rows, int64_t r0, int64_t r1, int64_t cols, const void *w,
                      const void *act, float *y) {
    if (r0 >= r1) return; /* the batched path asks for the (often empty) rows around its groups */
    const int64_t rows16 = rows / 16 * 16, e16 = r1 < rows16 ? r1 : rows16;
    const size_t rb = il16_row_bytes(type, cols), gb = 16 * rb;
    int64_t r = r0;
    while (r < e16) {
        const int64_t g = r / 16, whole = (e16 - 16 * g) / 16;
        if (r % 16 || !whole) {
            float t[16];
            g_fam[type]->dot(type, 1, cols, (const uint8_t *)w + (size_t)g * gb, act, t);
            for (; r < e16 && r < 16 * g + 16; r++) y[r] = t[r % 16];
            continue;
        }
        g_fam[type]->dot(type, whole, cols, (const uint8_t *)w + (size_t)g * gb, act, y + r);
        r += 16 * whole;
    }
    if (r < r1) hmti_gemv_q_rows(type, r, r1, cols, w, rb, act, y);
}

static void rows_multi_il16(uint32_t type, int64_t rows, int64_t r0, int64_t r1, int64_t cols, const void *w,
                            const void *act, size_t act_stride, int64_t n_act, float *y, int64_t ldy) {
    const int64_t rows16 = rows / 16 * 16, e16 = r1 < rows16 ? r1 : rows16;
    const int64_t g0 = (r0 + 15) / 16 * 16, g1 = g0 < e16 ? e16 / 16 * 16 : g0;
    const size_t gb = 16 * il16_row_bytes(type, cols);
    /* the rows around the whole groups one activation at a time */
    for (int64_t a = 0; a < n_act; a++) {
        const void *x = (const uint8_t *)act + (size_t)a * act_stride;
        if (g0 >= g1) {
            rows_il16(type, rows, r0, r1, cols, w, x, y + a * ldy);
            continue;
        }
        rows_il16(type, rows, r0, g0, cols, w, x, y + a * ldy);
        rows_il16(type, rows, g1, r1, cols, w, x, y + a * ldy);
    }
    if (g0 >= g1) return;
    g_fam[type]->multi(type, (g1 - g0) / 16, cols, (const uint8_t *)w + (size_t)(g0 / 16) * gb, act, act_stride,
                       n_act, y + g0, ldy);
}

void hmti_q_interleave(uint32_t type, int64_t rows, int64_t cols, const void *src, void *dst) {
    const int64_t rows16 = rows / 16 * 16;
    const size_t rb = il16_row_bytes(type, cols);
    const uint8_t *s = src;
    uint8_t *d = dst;
    for (int64_t g = 0; g < rows16; g += 16) g_fam[type]->pack(type, cols, s + (size_t)g * rb, rb, d + (size_t)g * rb);
    if (rows > rows16) memcpy(d + (size_t)rows16 * rb, s + (size_t)rows16 * rb, (size_t)(rows - rows16) * rb);
}

void hmti_q_il_dequant(uint32_t type, int64_t rows, int64_t cols, const void *w, int64_t r, int64_t b0,
                       int64_t nb_want, float *dst) {
    /* g_fam is set: a matrix is interleaved only after choose; rows of a group entered in its middle */
    const hmti_qtraits *t = hmti_qtraits_of(type);
    const size_t rb = il16_row_bytes(type, cols);
    if (r >= (rows & ~(int64_t)15)) /* the stored rows past the groups */
        hmti_dequant_best(type)((const uint8_t *)w + (size_t)r * rb + (size_t)b0 * t->block_bytes, dst,
                                nb_want * t->block_elems);
    else
        g_fam[type]->dequant_row(type, (const uint8_t *)w + (size_t)(r & ~(int64_t)15) * rb, (int)(r & 15),
                                 b0 * t->block_elems, nb_want * t->block_elems, dst);
}

int64_t hmti_q_il_stream_min(uint32_t type) {
    pthread_once(&g_once, choose);
    return type <= MAX_TYPE && g_fam[type] && g_fam[type]->dot4 ? g_fam[type]->dot4_min(type) : -1;
}

void hmti_gemv_q_il4(uint32_t type, int64_t n_groups, int64_t cols, const uint8_t *const g[4], const void *act,
                     float *const y[4]) {
    g_fam[type]->dot4(type, n_groups, cols, g, act, y); /* type has one: hmti_q_il_stream_min */
}

void hmti_gemv_q_rows_il(uint32_t type, int64_t rows, int64_t r0, int64_t r1, int64_t cols,
                         const void *w, const void *act, float *y) {
    pthread_once(&g_once, choose);
    if (type <= MAX_TYPE && g_fam[type]) /* not reached otherwise: a matrix is interleaved only when it has one */
        rows_il16(type, rows, r0, r1, cols, w, act, y);
}
