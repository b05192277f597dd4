/* BF16 compute for the prompt path (HMT_P_COMPUTE_TYPE = HMT_COMPUTE_BF16):
 * the matmul of hmti_matmul with the products taken in BF16 and summed in
 * F32.
 *
 * Per matmul call, the activation rows are rounded to BF16 once (one pool
 * job, into the pool's shared scratch). The weights are rounded per thread,
 * one block of up to 64 rows × BF16_KB columns at a time, from their F32
 * form (the packed panel as it lies; a stored matrix's block dequantized by
 * matrix_q.c) into a VNNI-2 tile in L2, which then meets every input row:
 * each weight is rounded once per call and the cost is amortised over the
 * n rows, as the stored path's dequantization is. Keeping a second, BF16
 * copy of every weight would cost half the F32 model's memory again, for a
 * conversion that is a few % of the GEMM (docs/QUANTS.md, "BF16 compute").
 *
 * Engines, the best the CPU has (hmti_bf16_engine):
 * - AMX (Sapphire Rapids and later): TDPBF16PS on 16×16 F32 tiles, a 32×32
 *   block of the output per 4 tile products; the OS grants the tile state
 *   on the first use (arch_prctl ARCH_REQ_XCOMP_PERM).
 * - own (AVX512-BF16: Cooper Lake, Zen 4/5): VDPBF16PS on 6 input rows ×
 *   64 weight rows at a time in zmm registers, the next F32 block
 *   prefetched meanwhile.
 * - libxsmm's BF16 GEMM (AVX512-BF16; reached only through the test hook):
 *   libxsmm_bsmmdispatch with LIBXSMM_GEMM_FLAG_VNNI_A, F32 output.
 * - none: hmti_matmul_bf16 computes in F32 (hmti_matmul).
 *
 * Layouts. VNNI-2 weight tile: element (r, c) of the block at
 * t[(c / 2) * 2 * BF16_TR + 2 * r + c % 2], i.e. libxsmm's VNNI A operand
 * with lda = BF16_TR and, read 16 rows at a time, AMX's B operand. The
 * columns are padded with zeros to a multiple of 32 (AMX's k step).
 * Activations: row i at xb + i * ldxb, ldxb a multiple of 32, zero padded;
 * the row count padded to a multiple of 32 (libxsmm's B, AMX's A). */
#include <cpuid.h>
#include <immintrin.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <libxsmm.h>

#include "kernels/cpu.h"
#include "kernels/kernels.h"

#define BF16_TARGET \
    __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16")))
#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw")))

enum {
    BF16_TR = 64,  /* weight rows per item: the packed panel, matrix_q's TILE_ROWS */
    BF16_KB = 512, /* columns per weight tile: 64 KiB of BF16, stays in L2 */
    BF16_NT = 64,  /* input rows per libxsmm call, as the F32 path */
    AMX_B = 32,    /* AMX block: 32 input rows × 32 weight rows (4 C tiles) */
};

static size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

/* ---- engine ------------------------------------------------------------------ */
static int cpu_bf16(void) { /* AVX512-BF16: CPUID leaf 7 sub-leaf 1, EAX bit 5 */
    unsigned a, b, c, d;
    return hmti_cpu_level() == 2 && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5));
}

static int cpu_amx(void) { /* AMX-BF16 (EDX bit 22) and AMX-TILE (bit 24), then the OS */
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 22)) || !(d & (1u << 24)))
        return 0;
    /* Linux hands out the 8 KiB tile state per process on request:
     * ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18). */
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

static int g_cpu_engine = -1;
static atomic_int g_engine_cap = INT_MAX; /* test hook: hmti_bf16_set_engine */
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void engine_init(void) {
    hmti_kernels_init();
    if (!cpu_bf16())
        g_cpu_engine = HMTI_BF16_NONE;
    else if (cpu_amx())
        g_cpu_engine = HMTI_BF16_AMX;
    else
        g_cpu_engine = HMTI_BF16_OWN;
}

int hmti_bf16_engine(void) {
    pthread_once(&engine_once, engine_init);
    const int cap = atomic_load_explicit(&g_engine_cap, memory_order_relaxed);
    return g_cpu_engine < cap ? g_cpu_engine : cap;
}

int hmti_bf16_set_engine(int e) {
    const int old = hmti_bf16_engine();
    atomic_store(&g_engine_cap, e < 0 ? INT_MAX : e);
    return old;
}

/* ---- rounding to BF16 (round to nearest even; subnormals flush to zero) ------ */
/* xb[i * ldxb + c] = x[i * ldx + c] for rows [i0, i1), zero in [k, ldxb). */
BF16_TARGET static void rows_to_bf16(const float *x, int64_t ldx, int64_t k, uint16_t *xb,
                                     int64_t ldxb, int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
        const float *s = x + i * ldx;
        uint16_t *d = xb + i * ldxb;
        for (int64_t c = 0; c < ldxb; c += 16) {
            const int64_t w = k - c;
            const __mmask16 m = w >= 16 ? 0xFFFF : w > 0 ? (__mmask16)((1u << w) - 1) : 0;
            const __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, s + c));
            _mm256_storeu_si256((__m256i *)(d + c), (__m256i)h);
        }
    }
}

/* The VNNI-2 tile of the nr × kk column-major F32 block a (leading dimension
 * lda): rows up to a multiple of 16, columns up to kb = kk rounded up to 32
 * (padding zero). */
BF16_TARGET static void tile_to_bf16(const float *a, int64_t lda, int64_t nr, int64_t kk,
                                     uint16_t *t) {
    /* word j of the result: column c's row j/2 (j even), column c+1's (odd) */
    const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                           24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                           16, 0);
    const int64_t kb = (int64_t)round_up((size_t)kk, 32);
    for (int64_t c = 0; c < kb; c += 2) {
        const float *c0 = a + c * lda, *c1 = c0 + lda;
        uint16_t *o = t + c * BF16_TR;
        for (int64_t r = 0; r < nr; r += 16) {
            const int64_t w = nr - r;
            const __mmask16 m = w >= 16 ? 0xFFFF : (__mmask16)((1u << w) - 1);
            const __m512 v0 = c < kk ? _mm512_maskz_loadu_ps(m, c0 + r) : _mm512_setzero_ps();
            const __m512 v1 = c + 1 < kk ? _mm512_maskz_loadu_ps(m, c1 + r) : _mm512_setzero_ps();
            const __m512i p = (__m512i)_mm512_cvtne2ps_pbh(v1, v0);
            _mm512_storeu_si512(o + 2 * r, _mm512_permutexvar_epi16(inter, p));
        }
    }
}

/* ---- libxsmm engine ----------------------------------------------------------- */
typedef struct {
    int32_t m, n, k, ldb, ldc, beta, valid;
    libxsmm_bsmmfunction fn;
} bcache_entry;

#define BCACHE_SIZE 128 /* per thread; a model uses a few dozen shapes */
static _Thread_local bcache_entry bcache[BCACHE_SIZE];

/* C(m×n) (+)= A·B: A the VNNI tile (lda BF16_TR), B column-major k × n. */
static libxsmm_bsmmfunction bsmm_kernel(int64_t m, int64_t n, int64_t k, int64_t ldb, int64_t ldc,
                                        int beta) {
    if (ldb > INT_MAX || ldc > INT_MAX) return NULL;
    const uint64_t h = ((uint64_t)m * 0x9E3779B97F4A7C15u) ^ ((uint64_t)n * 0xC2B2AE3D27D4EB4Fu) ^
                       ((uint64_t)k * 0x165667B19E3779F9u) ^ ((uint64_t)ldb * 0x27D4EB2F165667C5u) ^
                       ((uint64_t)ldc * 0x94D049BB133111EBu) ^ (uint64_t)beta;
    bcache_entry *e = &bcache[(h ^ (h >> 29)) % BCACHE_SIZE];
    if (e->valid && e->m == m && e->n == n && e->k == k && e->ldb == ldb && e->ldc == ldc &&
        e->beta == beta)
        return e->fn;
    const libxsmm_blasint lda = BF16_TR, xldb = (libxsmm_blasint)ldb, xldc = (libxsmm_blasint)ldc;
    const float alpha = 1.0f, fbeta = beta ? 1.0f : 0.0f;
    const int flags = LIBXSMM_GEMM_FLAG_VNNI_A | (beta ? 0 : LIBXSMM_GEMM_FLAG_BETA_0);
    const int prefetch = LIBXSMM_GEMM_PREFETCH_NONE;
    *e = (bcache_entry){(int32_t)m, (int32_t)n, (int32_t)k, (int32_t)ldb, (int32_t)ldc, beta, 1,
                        libxsmm_bsmmdispatch((libxsmm_blasint)m, (libxsmm_blasint)n,
                                             (libxsmm_blasint)k, &lda, &xldb, &xldc, &alpha,
                                             &fbeta, &flags, &prefetch)};
    return e->fn;
}

/* y rows [0, n), columns [0, nr) (+)= tile · xb over kb columns. 0 when
 * libxsmm gave no kernel (the caller then computes in F32). */
static int gemm_libxsmm(const uint16_t *t, int64_t nr, int64_t kb, const uint16_t *xb,
                        int64_t ldxb, int64_t n, float *y, int64_t ldy, int beta) {
    for (int64_t c0 = 0; c0 < n; c0 += BF16_NT) {
        const int64_t nn = n - c0 < BF16_NT ? n - c0 : BF16_NT;
        libxsmm_bsmmfunction fn = bsmm_kernel(nr, nn, kb, ldxb, ldy, beta);
        if (!fn) return 0;
        fn((const libxsmm_bfloat16 *)t, (const libxsmm_bfloat16 *)(xb + c0 * ldxb),
           y + c0 * ldy);
    }
    return 1;
}

/* ---- own AVX512-BF16 engine ------------------------------------------------------ */
/* Register block: OWN_NI input rows × up to 64 weight rows (4 zmm of 16
 * F32 sums): 24 accumulators, 4 weight registers, a broadcast. Per column
 * pair, 4 loads of the VNNI tile and 6 broadcasts of an input row's BF16
 * pair feed 24 VDPBF16PS (two per cycle on Zen 5). */
enum { OWN_NI = 6 }; /* input rows per register block */

/* y[i * ldy + r] (+)= sum over kb columns (a multiple of 2) of t(r, c) ·
 * x[i * ldx + c], for ni input rows and nz zmm of weight rows (16 each; the
 * last stored through mask last). Inlined with constant ni and nz. */
BF16_TARGET static inline __attribute__((always_inline)) void
own_block(const uint16_t *t, int64_t kb, const uint16_t *x, int64_t ldx, float *y, int64_t ldy,
          int beta, __mmask16 last, const char *pf, int64_t npf, const int ni, const int nz) {
    __m512 acc[OWN_NI][4];
#pragma GCC unroll 8
    for (int i = 0; i < ni; i++)
#pragma GCC unroll 4
        for (int z = 0; z < nz; z++) {
            const __mmask16 m = z == nz - 1 ? last : 0xFFFF;
            acc[i][z] = beta ? _mm512_maskz_loadu_ps(m, y + i * ldy + 16 * z)
                             : _mm512_setzero_ps();
        }
    for (int64_t c = 0; c < kb; c += 2) {
        const uint16_t *w = t + c * BF16_TR;
        /* T0 (measured ~4% faster than T1 on Zen 5): the rounding reads it next */
        if (c < 2 * npf) _mm_prefetch(pf + 32 * c, _MM_HINT_T0);
        __m512bh wv[4];
#pragma GCC unroll 4
        for (int z = 0; z < nz; z++) wv[z] = (__m512bh)_mm512_loadu_si512(w + 32 * z);
#pragma GCC unroll 8
        for (int i = 0; i < ni; i++) {
            const __m512bh b =
                (__m512bh)_mm512_broadcastd_epi32(_mm_loadu_si32(x + i * ldx + c));
#pragma GCC unroll 4
            for (int z = 0; z < nz; z++) acc[i][z] = _mm512_dpbf16_ps(acc[i][z], wv[z], b);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < ni; i++)
#pragma GCC unroll 4
        for (int z = 0; z < nz; z++) {
            const __mmask16 m = z == nz - 1 ? last : 0xFFFF;
            _mm512_mask_storeu_ps(y + i * ldy + 16 * z, m, acc[i][z]);
        }
}

typedef void (*own_fn)(const uint16_t *t, int64_t kb, const uint16_t *x, int64_t ldx, float *y,
                       int64_t ldy, int beta, __mmask16 last, const char *pf, int64_t npf);

#define OWN_FN(ni, nz)                                                                           \
    BF16_TARGET static void own_##ni##_##nz(const uint16_t *t, int64_t kb, const uint16_t *x,    \
                                            int64_t ldx, float *y, int64_t ldy, int beta,        \
                                            __mmask16 last, const char *pf, int64_t npf) {       \
        own_block(t, kb, x, ldx, y, ldy, beta, last, pf, npf, ni, nz);                           \
    }
#define OWN_FNS(ni) OWN_FN(ni, 1) OWN_FN(ni, 2) OWN_FN(ni, 3) OWN_FN(ni, 4)
OWN_FNS(1)
OWN_FNS(2)
OWN_FNS(3)
OWN_FNS(4)
OWN_FNS(5)
OWN_FNS(6)
#define OWN_ROW(ni) {own_##ni##_1, own_##ni##_2, own_##ni##_3, own_##ni##_4}
/* [ni - 1][nz - 1] */
static const own_fn own_fns[OWN_NI][4] = {OWN_ROW(1), OWN_ROW(2), OWN_ROW(3),
                                          OWN_ROW(4), OWN_ROW(5), OWN_ROW(6)};

/* y rows [0, n), columns [0, nr) (nr <= BF16_TR) (+)= tile · xb over kb
 * columns. next/next_bytes: memory to prefetch meanwhile (NULL: none), a
 * few lines in each register block's first steps. */
static void gemm_own(const uint16_t *t, int64_t nr, int64_t kb, const uint16_t *xb,
                     int64_t ldxb, int64_t n, float *y, int64_t ldy, int beta, const void *next,
                     size_t next_bytes) {
    if (n <= 0) return;
    const int nz = (int)(nr + 15) / 16;
    const __mmask16 last = nr % 16 ? (__mmask16)((1u << nr % 16) - 1) : 0xFFFF;
    /* the rows in blocks as even as can be (8: 4 + 4, not 6 + 2) */
    const int64_t blocks = (n + OWN_NI - 1) / OWN_NI, base = n / blocks, extra = n % blocks;
    int64_t left = next ? (int64_t)next_bytes / 64 : 0; /* lines not yet prefetched */
    const int64_t lines = (left + blocks - 1) / blocks;
    const char *pf = next ? next : (const char *)t;
    for (int64_t b = 0, i0 = 0; b < blocks; b++) {
        const int ni = (int)(base + (b < extra));
        const int64_t l = left < lines ? left : lines;
        own_fns[ni - 1][nz - 1](t, kb, xb + i0 * ldxb, ldxb, y + i0 * ldy, ldy, beta, last, pf,
                                l);
        i0 += ni;
        pf += 64 * l;
        left -= l;
    }
}

/* ---- AMX engine --------------------------------------------------------------- */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

/* GCC 12's AMX intrinsics are asm statements that tell the compiler of no
 * memory they read or write (ldtilecfg: 8 bytes of its 64): a compiler
 * barrier before and after each run of them keeps the C around in order. */
#define AMX_FENCE() __asm__ volatile("" ::: "memory")

/* Tiles 0-3: C (16 × 16 F32), 4-5: A (16 input rows × 32 BF16), 6-7: B (16
 * column pairs × 16 weight rows × 2 BF16): all 16 rows of 64 bytes. */
AMX_TARGET static void amx_begin(void) {
    amx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.rows[i] = 16;
        cfg.colsb[i] = 64;
    }
    AMX_FENCE();
    _tile_loadconfig(&cfg);
    AMX_FENCE();
}

/* Release the tile state: a thread that holds it makes every context
 * switch save 8 KiB more. */
AMX_TARGET static void amx_end(void) { _tile_release(); }

/* The next weight block's F32 lines (packed panels), fetched while the
 * tile products run: without it each block's rounding waits on memory. */
typedef struct {
    const char *next;
    int64_t lines_per_step; /* 64-byte lines per k step of amx_block */
} amx_prefetch;

/* c[i * ldc + r] (+)= sum over kb columns, for a 32 × 32 block: input rows
 * from a (stride lda BF16), weight rows from the VNNI tile t. */
AMX_TARGET static void amx_block(const uint16_t *a, int64_t lda, const uint16_t *t, int64_t kb,
                                 float *c, int64_t ldc, int beta, amx_prefetch *pf) {
    const size_t sc = (size_t)ldc * sizeof(float), sa = (size_t)lda * sizeof(uint16_t);
    const size_t sb = 2 * BF16_TR * sizeof(uint16_t);
    AMX_FENCE();
    if (beta) {
        _tile_loadd(0, c, sc);
        _tile_loadd(1, c + 16, sc);
        _tile_loadd(2, c + 16 * ldc, sc);
        _tile_loadd(3, c + 16 * ldc + 16, sc);
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    for (int64_t k = 0; k < kb; k += 32) {
        const uint16_t *b = t + k * BF16_TR;
        _tile_loadd(4, a + k, sa);
        _tile_loadd(5, a + 16 * lda + k, sa);
        _tile_loadd(6, b, sb);
        _tile_loadd(7, b + 32, sb);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
        for (int64_t l = 0; l < pf->lines_per_step; l++, pf->next += 64)
            _mm_prefetch(pf->next, _MM_HINT_T1);
    }
    _tile_stored(0, c, sc);
    _tile_stored(1, c + 16, sc);
    _tile_stored(2, c + 16 * ldc, sc);
    _tile_stored(3, c + 16 * ldc + 16, sc);
    AMX_FENCE();
}

/* y rows [0, n), columns [0, nr) (+)= tile · xb. Blocks that cross the
 * edges go through edge (32 × 32 floats): y's columns past nr belong to
 * other items. xb's rows are padded to a multiple of 32. next/next_bytes:
 * memory to prefetch meanwhile (NULL: none). */
static void gemm_amx(const uint16_t *t, int64_t nr, int64_t kb, const uint16_t *xb, int64_t ldxb,
                     int64_t n, float *y, int64_t ldy, int beta, float *edge, const void *next,
                     size_t next_bytes) {
    const int64_t steps = (n + AMX_B - 1) / AMX_B * ((nr + AMX_B - 1) / AMX_B) * (kb / 32);
    amx_prefetch pf = {next, next ? ((int64_t)next_bytes / 64 + steps - 1) / steps : 0};
    for (int64_t i0 = 0; i0 < n; i0 += AMX_B) {
        const int64_t ni = n - i0 < AMX_B ? n - i0 : AMX_B;
        for (int64_t r0 = 0; r0 < nr; r0 += AMX_B) {
            const int64_t nc = nr - r0 < AMX_B ? nr - r0 : AMX_B;
            float *c = y + i0 * ldy + r0;
            const uint16_t *a = xb + i0 * ldxb;
            if (ni == AMX_B && nc == AMX_B) {
                amx_block(a, ldxb, t + 2 * r0, kb, c, ldy, beta, &pf);
                continue;
            }
            if (beta)
                for (int64_t i = 0; i < ni; i++)
                    memcpy(edge + i * AMX_B, c + i * ldy, (size_t)nc * sizeof(float));
            amx_block(a, ldxb, t + 2 * r0, kb, edge, AMX_B, beta, &pf);
            for (int64_t i = 0; i < ni; i++)
                memcpy(c + i * ldy, edge + i * AMX_B, (size_t)nc * sizeof(float));
        }
    }
}

/* ---- the matmul ----------------------------------------------------------------- */
/* The F32 part of a thread's scratch: the stored path's tiles. */
static size_t stored_local(void) {
    size_t shared, local;
    hmti_matmul_scratch(0, &shared, &local);
    return local;
}

/* After the F32 part: the VNNI tile, the AMX edge block. */
static size_t bf16_local(void) {
    return stored_local() + (size_t)BF16_TR * BF16_KB * 2 + AMX_B * AMX_B * sizeof(float);
}

void hmti_matmul_scratch_bf16(int64_t max_cols, int64_t max_n, size_t *shared_bytes,
                              size_t *local_bytes) {
    hmti_matmul_scratch(max_cols, shared_bytes, local_bytes);
    const size_t xb = round_up((size_t)max_n, AMX_B) * round_up((size_t)max_cols, 32) * 2;
    if (xb > *shared_bytes) *shared_bytes = xb;
    *local_bytes = bf16_local();
}

typedef struct {
    const hmti_matrix *w;
    const float *x;
    int64_t ldx, n;
    float *y;
    int64_t ldy;
    const float *bias;
    hmti_pool *pool;
    int engine;
    uint16_t *xb;
    int64_t ldxb;
    int64_t sub, n_sub;      /* items: panels of BF16_TR rows, each in n_sub row blocks */
    atomic_int failed;       /* libxsmm declined a shape: the call is redone in F32 */
    hmti_work work;
} bf_job;

static void xb_job(void *arg, int ith, int nth) {
    bf_job *j = arg;
    int64_t lo, hi;
    hmti_split_range(j->n, ith, nth, 1, &lo, &hi);
    rows_to_bf16(j->x, j->ldx, j->w->cols, j->xb, j->ldxb, lo, hi);
    if (ith == nth - 1) /* the padding rows up to the AMX block */
        memset(j->xb + j->n * j->ldxb, 0,
               (round_up((size_t)j->n, AMX_B) - (size_t)j->n) * (size_t)j->ldxb * 2);
}

/* The F32 column-major block of rows [r0, r0 + nr), columns [k0, k0 + kk):
 * in place in a packed panel, else dequantized into f32 (matrix_q.c). */
static const float *block_f32(const hmti_matrix *w, int64_t r0, int64_t nr, int64_t k0,
                              int64_t kk, float *f32, int64_t *lda) {
    if (!w->n_parts) {
        const int64_t pr = w->panel_rows, p = r0 / pr;
        *lda = pr;
        return w->data + p * pr * w->cols + k0 * pr + (r0 - p * pr);
    }
    *lda = BF16_TR; /* matrix_q.c's TILE_ROWS */
    return hmti_stored_block_f32(w, r0, nr, k0, kk, f32);
}

static void item(bf_job *j, int64_t it, float *f32, uint16_t *tile, float *edge) {
    const hmti_matrix *w = j->w;
    const int64_t r0 = it / j->n_sub * BF16_TR + it % j->n_sub * j->sub;
    const int64_t nr = w->rows - r0 < j->sub ? w->rows - r0 : j->sub;
    if (nr <= 0) return;
    float *y = j->y + r0;
    for (int64_t k0 = 0; k0 < w->cols; k0 += BF16_KB) {
        const int64_t kk = w->cols - k0 < BF16_KB ? w->cols - k0 : BF16_KB;
        const int64_t kb = (int64_t)round_up((size_t)kk, 32);
        int64_t lda = BF16_TR;
        const float *a = block_f32(w, r0, nr, k0, kk, f32, &lda);
        tile_to_bf16(a, lda, nr, kk, tile);
        const uint16_t *xb = j->xb + k0;
        /* a packed panel's next block follows this one in memory */
        const int64_t kn = w->cols - k0 - kk < BF16_KB ? w->cols - k0 - kk : BF16_KB;
        const float *next = !w->n_parts && kn > 0 ? block_f32(w, r0, nr, k0 + kk, kn, f32, &lda)
                                                  : NULL;
        if (j->engine == HMTI_BF16_AMX)
            gemm_amx(tile, nr, kb, xb, j->ldxb, j->n, y, j->ldy, k0 > 0, edge, next,
                     (size_t)(kn * lda) * sizeof(float));
        else if (j->engine == HMTI_BF16_OWN) {
            /* past a panel's last block: the next panel's first, the item a
             * thread most often takes next */
            const char *nx = w->n_parts ? NULL : (const char *)(a + kk * lda);
            const char *end = (const char *)w->data + w->nbytes;
            const size_t nb = nx && nx < end ? (size_t)(end - nx) : 0;
            const size_t want = (size_t)BF16_KB * BF16_TR * sizeof(float);
            gemm_own(tile, nr, kb, xb, j->ldxb, j->n, y, j->ldy, k0 > 0, nb ? nx : NULL,
                     nb < want ? nb : want);
        }
        else if (!gemm_libxsmm(tile, nr, kb, xb, j->ldxb, j->n, y, j->ldy, k0 > 0))
            atomic_store(&j->failed, 1);
    }
    if (j->bias)
        for (int64_t i = 0; i < j->n; i++)
            for (int64_t r = 0; r < nr; r++) y[i * j->ldy + r] += j->bias[r0 + r];
}

static void gemm_job(void *arg, int ith, int nth) {
    (void)nth;
    bf_job *j = arg;
    size_t have;
    float *f32 = hmti_pool_local(j->pool, ith, &have);
    uint16_t *tile = (uint16_t *)((char *)f32 + stored_local());
    float *edge = (float *)(tile + BF16_TR * BF16_KB);
    if (j->engine == HMTI_BF16_AMX) amx_begin();
    int64_t lo, hi;
    while (hmti_work_take(&j->work, &lo, &hi))
        for (int64_t it = lo; it < hi; it++) item(j, it, f32, tile, edge);
    if (j->engine == HMTI_BF16_AMX) amx_end();
}

/* Runs of about 1/4 of a thread's share (as matrix_q.c's prompt). */
static int64_t grab_size(int64_t n_items, int nth) {
    const int64_t g = n_items / ((int64_t)nth * 4);
    return g < 1 ? 1 : g;
}

/* Input rows [0, j->n) through the engine, with the pool's threads. */
static void run(hmti_pool *pool, bf_job *j) {
    int nth = hmti_pool_n_threads(pool);
    const hmti_matrix *w = j->w;
    if (nth > 1 && 2 * w->rows * w->cols * j->n < 1000000) nth = 1;
    if (nth == 1)
        xb_job(j, 0, 1);
    else
        hmti_pool_run(pool, xb_job, j);
    const int64_t n_panels = (w->rows + BF16_TR - 1) / BF16_TR;
    /* Panels split into row blocks when too few to balance the threads
     * (SmolLM2's 9 output panels on 2 threads). */
    j->n_sub = 1;
    j->sub = BF16_TR;
    while (nth > 1 && j->sub > AMX_B) {
        const int64_t items = n_panels * j->n_sub;
        if (items % nth == 0 || items >= 8 * nth) break;
        j->n_sub *= 2;
        j->sub /= 2;
    }
    const int64_t n_items = n_panels * j->n_sub;
    hmti_work_init(&j->work, n_items, grab_size(n_items, nth));
    if (nth == 1)
        gemm_job(j, 0, 1);
    else
        hmti_pool_run(pool, gemm_job, j);
}

void hmti_matmul_bf16(hmti_pool *pool, const hmti_matrix *w, const float *x, int64_t ldx,
                      int64_t n, float *y, int64_t ldy, const float *bias) {
    /* the packed layout read in place: panels of BF16_TR rows */
    const int layout_ok = w->n_parts || w->panel_rows == BF16_TR;
    const int engine = n > hmti_matmul_decode_rows() && layout_ok ? hmti_bf16_engine() : 0;
    size_t shared = 0, local;
    uint16_t *xb = engine ? hmti_pool_shared(pool, &shared) : NULL;
    hmti_pool_local(pool, 0, &local);
    const int64_t ldxb = (int64_t)round_up((size_t)w->cols, 32);
    /* input rows per group: a multiple of the AMX block that fits the scratch */
    const int64_t group = xb ? (int64_t)(shared / ((size_t)ldxb * 2)) / AMX_B * AMX_B : 0;
    if (!engine || local < bf16_local() || group < AMX_B) {
        hmti_matmul(pool, w, x, ldx, n, y, ldy, bias);
        return;
    }
    for (int64_t i0 = 0; i0 < n; i0 += group) {
        bf_job j = {.w = w, .x = x + i0 * ldx, .ldx = ldx, .n = n - i0 < group ? n - i0 : group,
                    .y = y + i0 * ldy, .ldy = ldy, .bias = bias, .pool = pool, .engine = engine,
                    .xb = xb, .ldxb = ldxb};
        atomic_init(&j.failed, 0);
        run(pool, &j);
        if (atomic_load(&j.failed))
            hmti_matmul(pool, w, j.x, ldx, j.n, j.y, ldy, bias);
    }
}
