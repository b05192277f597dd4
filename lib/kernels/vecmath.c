/* Element-wise and row kernels: dot, axpy, add, scale, RMSNorm, softmax,
 * SiLU·mul, GELU·mul, soft-capping, RoPE, log-sum-exp. Each has an AVX-512 path, an AVX2+FMA path and a scalar
 * path, chosen at run time (the library is built for generic x86-64);
 * transcendental functions come from SLEEF's vector entry points. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

/* sleef.h declares its AVX-512 / AVX2 entry points only when the compiler
 * targets those ISAs; enable them for the declarations alone. clang has no
 * target pragma: it gets the macros sleef.h tests, for the include only, and
 * the target attribute on the declarations it makes. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#if !defined(__AVX512F__)
#define __AVX512F__ 1
#define HMT_UNDEF_AVX512F
#endif
#if !defined(__AVX__)
#define __AVX__ 1
#define HMT_UNDEF_AVX
#endif
#include <sleef.h>
#ifdef HMT_UNDEF_AVX512F
#undef __AVX512F__
#endif
#ifdef HMT_UNDEF_AVX
#undef __AVX__
#endif
#pragma clang attribute pop
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#include <sleef.h>
#pragma GCC pop_options
#endif

#include "kernels/kernels.h"

#include "kernels/cpu.h"

static __mmask16 tail_mask(int64_t r) { return (__mmask16)((1u << r) - 1u); }

AVX2_TARGET static float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_TARGET static float hmax256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- dot -------------------------------------------------------------------- */
AVX512_TARGET static float dot_avx512(const float *a, const float *b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

AVX2_TARGET static float dot_avx2(const float *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static float dot_scalar(const float *a, const float *b, int64_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

float hmti_dot(const float *a, const float *b, int64_t n) {
    if (n <= 0) return 0.0f;
    int l = hmti_cpu_level();
    if (l == 2) return dot_avx512(a, b, n);
    if (l == 1) return dot_avx2(a, b, n);
    return dot_scalar(a, b, n);
}

/* ---- axpy / add / scale -------------------------------------------------------- */
/* op: 0 = y += a·x, 1 = y += x, 2 = y *= a */
AVX512_TARGET static void ew_avx512(float *y, float a, const float *x, int64_t n, int op) {
    __m512 av = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 yv = _mm512_loadu_ps(y + i);
        if (op == 0)
            yv = _mm512_fmadd_ps(av, _mm512_loadu_ps(x + i), yv);
        else if (op == 1)
            yv = _mm512_add_ps(yv, _mm512_loadu_ps(x + i));
        else
            yv = _mm512_mul_ps(yv, av);
        _mm512_storeu_ps(y + i, yv);
    }
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        __m512 yv = _mm512_maskz_loadu_ps(k, y + i);
        if (op == 0)
            yv = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(k, x + i), yv);
        else if (op == 1)
            yv = _mm512_add_ps(yv, _mm512_maskz_loadu_ps(k, x + i));
        else
            yv = _mm512_mul_ps(yv, av);
        _mm512_mask_storeu_ps(y + i, k, yv);
    }
}

AVX2_TARGET static void ew_avx2(float *y, float a, const float *x, int64_t n, int op) {
    __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 yv = _mm256_loadu_ps(y + i);
        if (op == 0)
            yv = _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), yv);
        else if (op == 1)
            yv = _mm256_add_ps(yv, _mm256_loadu_ps(x + i));
        else
            yv = _mm256_mul_ps(yv, av);
        _mm256_storeu_ps(y + i, yv);
    }
    for (; i < n; i++) {
        if (op == 0)
            y[i] = fmaf(a, x[i], y[i]);
        else if (op == 1)
            y[i] += x[i];
        else
            y[i] *= a;
    }
}

static void ew(float *y, float a, const float *x, int64_t n, int op) {
    if (n <= 0) return;
    int l = hmti_cpu_level();
    if (l == 2) {
        ew_avx512(y, a, x, n, op);
    } else if (l == 1) {
        ew_avx2(y, a, x, n, op);
    } else {
        for (int64_t i = 0; i < n; i++) {
            if (op == 0)
                y[i] += a * x[i];
            else if (op == 1)
                y[i] += x[i];
            else
                y[i] *= a;
        }
    }
}

void hmti_axpy(float *y, float a, const float *x, int64_t n) { ew(y, a, x, n, 0); }
void hmti_add(float *y, const float *x, int64_t n) { ew(y, 0.0f, x, n, 1); }
void hmti_scale(float *y, float a, int64_t n) { ew(y, a, NULL, n, 2); }

/* ---- RMSNorm ------------------------------------------------------------------- */
/* y = (x · s) · w with s = 1 / sqrt(mean(x²) + eps); the sum of squares is
 * accumulated in 16 float lanes × 4 and finished in double. */
AVX512_TARGET static double sumsq_avx512(const float *x, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
        __m512 c = _mm512_loadu_ps(x + i + 32), d = _mm512_loadu_ps(x + i + 48);
        s0 = _mm512_fmadd_ps(a, a, s0);
        s1 = _mm512_fmadd_ps(b, b, s1);
        s2 = _mm512_fmadd_ps(c, c, s2);
        s3 = _mm512_fmadd_ps(d, d, s3);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 a = _mm512_loadu_ps(x + i);
        s0 = _mm512_fmadd_ps(a, a, s0);
    }
    if (i < n) {
        __m512 a = _mm512_maskz_loadu_ps(tail_mask(n - i), x + i);
        s1 = _mm512_fmadd_ps(a, a, s1);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3));
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(s));
    __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
    return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}

AVX512_TARGET static void mul2_avx512(float *y, const float *x, float s, const float *w, int64_t n) {
    __m512 sv = _mm512_set1_ps(s);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), sv),
                                              _mm512_loadu_ps(w + i)));
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, k,
                              _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), sv),
                                            _mm512_maskz_loadu_ps(k, w + i)));
    }
}

AVX2_TARGET static double sumsq_avx2(const float *x, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        __m256 c = _mm256_loadu_ps(x + i + 16), d = _mm256_loadu_ps(x + i + 24);
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
        s2 = _mm256_fmadd_ps(c, c, s2);
        s3 = _mm256_fmadd_ps(d, d, s3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(x + i);
        s0 = _mm256_fmadd_ps(a, a, s0);
    }
    double s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

AVX2_TARGET static void mul2_avx2(float *y, const float *x, float s, const float *w, int64_t n) {
    __m256 sv = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), sv),
                                              _mm256_loadu_ps(w + i)));
    for (; i < n; i++) y[i] = x[i] * s * w[i];
}

void hmti_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps) {
    if (n <= 0) return;
    int l = hmti_cpu_level();
    double ss;
    if (l == 2) {
        ss = sumsq_avx512(x, n);
    } else if (l == 1) {
        ss = sumsq_avx2(x, n);
    } else {
        ss = 0.0;
        for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    }
    float s = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    if (l == 2)
        mul2_avx512(y, x, s, w, n);
    else if (l == 1)
        mul2_avx2(y, x, s, w, n);
    else
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * s * w[i];
}

/* ---- softmax ------------------------------------------------------------------- */
AVX512_TARGET static void softmax_avx512(float *x, int64_t n) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 mv = ninf;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(x + i));
    if (i < n) mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(ninf, tail_mask(n - i), x + i));
    float mx = _mm512_reduce_max_ps(mv);
    if (mx == -INFINITY || isnan(mx)) { /* nothing to normalize against */
        float u = mx == -INFINITY ? 1.0f / (float)n : NAN;
        for (int64_t j = 0; j < n; j++) x[j] = u;
        return;
    }
    __m512 m = _mm512_set1_ps(mx), sum = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 e = Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_loadu_ps(x + i), m));
        _mm512_storeu_ps(x + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        __m512 e = Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_mask_loadu_ps(ninf, k, x + i), m));
        e = _mm512_maskz_mov_ps(k, e);
        _mm512_mask_storeu_ps(x + i, k, e);
        sum = _mm512_add_ps(sum, e);
    }
    ew_avx512(x, (float)(1.0 / (double)_mm512_reduce_add_ps(sum)), NULL, n, 2);
}

AVX2_TARGET static void softmax_avx2(float *x, int64_t n) {
    __m256 mv = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
    float mx = hmax256(mv);
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    if (mx == -INFINITY || isnan(mx)) {
        float u = mx == -INFINITY ? 1.0f / (float)n : NAN;
        for (int64_t j = 0; j < n; j++) x[j] = u;
        return;
    }
    __m256 m = _mm256_set1_ps(mx), sum = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float s = hsum256(sum);
    for (; i < n; i++) {
        x[i] = expf(x[i] - mx);
        s += x[i];
    }
    ew_avx2(x, (float)(1.0 / (double)s), NULL, n, 2);
}

void hmti_softmax(float *x, int64_t n) {
    if (n <= 0) return;
    int l = hmti_cpu_level();
    if (l == 2) {
        softmax_avx512(x, n);
        return;
    }
    if (l == 1) {
        softmax_avx2(x, n);
        return;
    }
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    if (mx == -INFINITY) {
        for (int64_t i = 0; i < n; i++) x[i] = 1.0f / (float)n;
        return;
    }
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        s += x[i];
    }
    float inv = (float)(1.0 / s);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

/* ---- log-sum-exp ------------------------------------------------------------------ */
/* Double precision throughout (the float logits widened exactly, exp in
 * double): the log-probabilities the chain, DITTO and kNN-LM hand on must
 * not lose the small probabilities a float sum of 10^5 terms would round
 * away. The entropy term e * (z - max) is skipped where e is 0 (z = -inf
 * would give 0 * -inf). */
AVX512_TARGET static double lse_avx512(const float *z, int64_t n, double mx, double *spl) {
    const __m512d m = _mm512_set1_pd(mx), zero = _mm512_setzero_pd();
    __m512d se = zero, sp = zero;
    for (int64_t i = 0; i < n; i += 8) {
        const __mmask8 k = n - i >= 8 ? 0xFF : (__mmask8)((1u << (n - i)) - 1u);
        const __m512d d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(k, z + i)), m);
        const __m512d e = _mm512_maskz_mov_pd(k, Sleef_expd8_u10avx512f(d));
        se = _mm512_add_pd(se, e);
        sp = _mm512_add_pd(sp, _mm512_maskz_mul_pd(_mm512_cmp_pd_mask(e, zero, _CMP_GT_OQ), e, d));
    }
    *spl = _mm512_reduce_add_pd(sp);
    return _mm512_reduce_add_pd(se);
}

AVX2_TARGET static double hsum256d(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

AVX2_TARGET static double lse_avx2(const float *z, int64_t n, double mx, double *spl) {
    const __m256d m = _mm256_set1_pd(mx), zero = _mm256_setzero_pd();
    __m256d se = zero, sp = zero;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const __m256d d = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(z + i)), m);
        const __m256d e = Sleef_expd4_u10avx2(d);
        se = _mm256_add_pd(se, e);
        sp = _mm256_add_pd(sp, _mm256_and_pd(_mm256_cmp_pd(e, zero, _CMP_GT_OQ), _mm256_mul_pd(e, d)));
    }
    double s = hsum256d(se), p = hsum256d(sp);
    for (; i < n; i++) {
        const double d = (double)z[i] - mx, e = exp(d);
        s += e;
        if (e > 0) p += e * d;
    }
    *spl = p;
    return s;
}

static float max_of(const float *z, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = z[i] > mx ? z[i] : mx;
    return mx;
}

double hmti_logsumexp(const float *z, int64_t n, double *entropy) {
    const double mx = n > 0 ? (double)max_of(z, n) : -INFINITY;
    if (isinf(mx)) {
        if (entropy) *entropy = NAN;
        return mx;
    }
    double se, spl;
    const int l = hmti_cpu_level();
    if (l == 2)
        se = lse_avx512(z, n, mx, &spl);
    else if (l == 1)
        se = lse_avx2(z, n, mx, &spl);
    else {
        se = spl = 0;
        for (int64_t i = 0; i < n; i++) {
            const double d = (double)z[i] - mx, e = exp(d);
            se += e;
            if (e > 0) spl += e * d;
        }
    }
    if (entropy) *entropy = log(se) - spl / se;
    return mx + log(se);
}

/* ---- SiLU · mul ----------------------------------------------------------------- */
AVX512_TARGET static __m512 silu_mul16(__m512 g, __m512 u) {
    __m512 e = Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_setzero_ps(), g));
    return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), u);
}

/* g[i] = f16(g, u) over n elements, 16 at a time, the tail masked (SiLU
 * and GELU gates: the function is inlined into each instance). */
#define GATED_AVX512(name, f16)                                                                   \
    AVX512_TARGET static void name(float *g, const float *u, int64_t n) {                        \
        int64_t i = 0;                                                                            \
        for (; i + 16 <= n; i += 16)                                                              \
            _mm512_storeu_ps(g + i, f16(_mm512_loadu_ps(g + i), _mm512_loadu_ps(u + i)));         \
        if (i < n) {                                                                              \
            __mmask16 k = tail_mask(n - i);                                                       \
            _mm512_mask_storeu_ps(g + i, k,                                                       \
                                  f16(_mm512_maskz_loadu_ps(k, g + i), _mm512_maskz_loadu_ps(k, u + i))); \
        }                                                                                         \
    }

GATED_AVX512(silu_mul_avx512, silu_mul16)

AVX2_TARGET static void silu_mul_avx2(float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        __m256 e = Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_setzero_ps(), gv));
        __m256 r = _mm256_div_ps(gv, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(r, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void hmti_silu_mul(float *g, const float *u, int64_t n) {
    if (n <= 0) return;
    int l = hmti_cpu_level();
    if (l == 2)
        silu_mul_avx512(g, u, n);
    else if (l == 1)
        silu_mul_avx2(g, u, n);
    else
        for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* ---- GELU (tanh form) · mul, soft-capping ------------------------------------------ */
/* gelu(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))), the tanh form
 * (PyTorch's approximate="tanh", ggml_gelu); tanh from SLEEF (1 ulp). */
#define GELU_C0 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C1 0.044715f

static float gelu_scalar(float g) {
    return 0.5f * g * (1.0f + tanhf(GELU_C0 * g * (1.0f + GELU_C1 * g * g)));
}

AVX512_TARGET static __m512 gelu_mul16(__m512 g, __m512 u) {
    const __m512 g2 = _mm512_mul_ps(g, g);
    const __m512 in = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(GELU_C0), g),
                                    _mm512_fmadd_ps(_mm512_set1_ps(GELU_C1), g2, _mm512_set1_ps(1.0f)));
    const __m512 t = Sleef_tanhf16_u10avx512f(in);
    const __m512 h = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), g),
                                   _mm512_add_ps(_mm512_set1_ps(1.0f), t));
    return _mm512_mul_ps(h, u);
}

GATED_AVX512(gelu_mul_avx512, gelu_mul16)

AVX2_TARGET static void gelu_mul_avx2(float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 gv = _mm256_loadu_ps(g + i);
        const __m256 in = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(GELU_C0), gv),
                                        _mm256_fmadd_ps(_mm256_set1_ps(GELU_C1), _mm256_mul_ps(gv, gv),
                                                        _mm256_set1_ps(1.0f)));
        const __m256 h = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), gv),
                                       _mm256_add_ps(_mm256_set1_ps(1.0f), Sleef_tanhf8_u10avx2(in)));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(h, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = gelu_scalar(g[i]) * u[i];
}

void hmti_gelu_mul(float *g, const float *u, int64_t n) {
    if (n <= 0) return;
    int l = hmti_cpu_level();
    if (l == 2)
        gelu_mul_avx512(g, u, n);
    else if (l == 1)
        gelu_mul_avx2(g, u, n);
    else
        for (int64_t i = 0; i < n; i++) g[i] = gelu_scalar(g[i]) * u[i];
}

/* x = cap · tanh(x · scale / cap) */
AVX512_TARGET static void softcap_avx512(float *x, float a, float cap, int64_t n) {
    const __m512 av = _mm512_set1_ps(a), cv = _mm512_set1_ps(cap);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_mul_ps(cv, Sleef_tanhf16_u10avx512f(
                                                      _mm512_mul_ps(_mm512_loadu_ps(x + i), av))));
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(cv, Sleef_tanhf16_u10avx512f(_mm512_mul_ps(
                                                               _mm512_maskz_loadu_ps(k, x + i), av))));
    }
}

AVX2_TARGET static void softcap_avx2(float *x, float a, float cap, int64_t n) {
    const __m256 av = _mm256_set1_ps(a), cv = _mm256_set1_ps(cap);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(cv, Sleef_tanhf8_u10avx2(
                                                      _mm256_mul_ps(_mm256_loadu_ps(x + i), av))));
    for (; i < n; i++) x[i] = cap * tanhf(x[i] * a);
}

void hmti_softcap(float *x, float scale, float cap, int64_t n) {
    if (n <= 0) return;
    const float a = scale / cap;
    int l = hmti_cpu_level();
    if (l == 2)
        softcap_avx512(x, a, cap, n);
    else if (l == 1)
        softcap_avx2(x, a, cap, n);
    else
        for (int64_t i = 0; i < n; i++) x[i] = cap * tanhf(x[i] * a);
}

/* ---- RoPE ------------------------------------------------------------------------ */
/* Angles pos·freq[i] are formed in double from the model's table (computed
 * once at load in double, scaling included), and their cos/sin taken in
 * double by SLEEF (full-range argument reduction), then rounded to float. */
#define ROPE_MAX_PAIRS 512

AVX512_TARGET static void sincos_avx512(const double *ang, float *c, float *s, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        Sleef___m512d_2 r = Sleef_sincosd8_u10avx512f(_mm512_loadu_pd(ang + i));
        _mm256_storeu_ps(s + i, _mm512_cvtpd_ps(r.x));
        _mm256_storeu_ps(c + i, _mm512_cvtpd_ps(r.y));
    }
    for (; i < n; i++) {
        s[i] = (float)sin(ang[i]);
        c[i] = (float)cos(ang[i]);
    }
}

AVX2_TARGET static void sincos_avx2(const double *ang, float *c, float *s, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        Sleef___m256d_2 r = Sleef_sincosd4_u10avx2(_mm256_loadu_pd(ang + i));
        _mm_storeu_ps(s + i, _mm256_cvtpd_ps(r.x));
        _mm_storeu_ps(c + i, _mm256_cvtpd_ps(r.y));
    }
    for (; i < n; i++) {
        s[i] = (float)sin(ang[i]);
        c[i] = (float)cos(ang[i]);
    }
}

/* Rotate one head. neox: pairs (i, i+half); else (2i, 2i+1). */
AVX512_TARGET static void rope_head_avx512(float *x, const float *c, const float *s, int64_t half,
                                           int neox) {
    int64_t i = 0;
    if (neox) {
        for (; i + 16 <= half; i += 16) {
            __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + half + i);
            __m512 cv = _mm512_loadu_ps(c + i), sv = _mm512_loadu_ps(s + i);
            _mm512_storeu_ps(x + i, _mm512_fmsub_ps(a, cv, _mm512_mul_ps(b, sv)));
            _mm512_storeu_ps(x + half + i, _mm512_fmadd_ps(a, sv, _mm512_mul_ps(b, cv)));
        }
        for (; i < half; i++) {
            float a = x[i], b = x[half + i];
            x[i] = a * c[i] - b * s[i];
            x[half + i] = a * s[i] + b * c[i];
        }
        return;
    }
    /* interleaved: 8 pairs per vector; cos/sin duplicated into both lanes */
    const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    const __m512 sign = _mm512_set_ps(1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1);
    for (; i + 8 <= half; i += 8) {
        __m512 cv = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(c + i)));
        __m512 sv = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(s + i)));
        __m512 v = _mm512_loadu_ps(x + 2 * i);
        __m512 sw = _mm512_permute_ps(v, 0xB1); /* (x1, x0) per pair */
        /* even: x0 c - x1 s; odd: x1 c + x0 s */
        _mm512_storeu_ps(x + 2 * i, _mm512_fmadd_ps(v, cv, _mm512_mul_ps(_mm512_mul_ps(sw, sv), sign)));
    }
    for (; i < half; i++) {
        float a = x[2 * i], b = x[2 * i + 1];
        x[2 * i] = a * c[i] - b * s[i];
        x[2 * i + 1] = a * s[i] + b * c[i];
    }
}

static void rope_head_scalar(float *x, const float *c, const float *s, int64_t half, int neox) {
    for (int64_t i = 0; i < half; i++) {
        int64_t i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        float a = x[i0], b = x[i1];
        x[i0] = a * c[i] - b * s[i];
        x[i1] = a * s[i] + b * c[i];
    }
}

void hmti_rope_freqs(double *freq, int n_rot, double base) {
    for (int i = 0; i < n_rot / 2; i++) freq[i] = pow(base, -2.0 * (double)i / (double)n_rot);
}

void hmti_rope(float *x, int n_head, int head_dim, int n_rot, int32_t pos, const double *freq,
               float mscale, int neox) {
    if (n_head <= 0 || n_rot < 2 || n_rot > head_dim) return;
    const int64_t half = n_rot / 2;
    double ang[64];
    float cs[ROPE_MAX_PAIRS], sn[ROPE_MAX_PAIRS];
    const int l = hmti_cpu_level();
    for (int64_t b0 = 0; b0 < half; b0 += ROPE_MAX_PAIRS) { /* n_rot > 1024: several passes */
        const int64_t nb = half - b0 < ROPE_MAX_PAIRS ? half - b0 : ROPE_MAX_PAIRS;
        for (int64_t i = 0; i < nb; i += 64) {
            const int64_t w = nb - i < 64 ? nb - i : 64;
            for (int64_t t = 0; t < w; t++) ang[t] = (double)pos * freq[b0 + i + t];
            if (l == 2)
                sincos_avx512(ang, cs + i, sn + i, w);
            else if (l == 1)
                sincos_avx2(ang, cs + i, sn + i, w);
            else
                for (int64_t t = 0; t < w; t++) {
                    cs[i + t] = (float)cos(ang[t]);
                    sn[i + t] = (float)sin(ang[t]);
                }
        }
        if (mscale != 1.0f)
            for (int64_t i = 0; i < nb; i++) cs[i] *= mscale, sn[i] *= mscale;
        if (b0 == 0 && nb == half) {
            for (int h = 0; h < n_head; h++) {
                float *xh = x + (int64_t)h * head_dim;
                if (l == 2)
                    rope_head_avx512(xh, cs, sn, half, neox);
                else
                    rope_head_scalar(xh, cs, sn, half, neox);
            }
        } else { /* very large heads: rotate this block of pairs */
            for (int h = 0; h < n_head; h++) {
                float *xh = x + (int64_t)h * head_dim;
                for (int64_t i = 0; i < nb; i++) {
                    int64_t p = b0 + i;
                    int64_t i0 = neox ? p : 2 * p, i1 = neox ? p + half : 2 * p + 1;
                    float a = xh[i0], b = xh[i1];
                    xh[i0] = a * cs[i] - b * sn[i];
                    xh[i1] = a * sn[i] + b * cs[i];
                }
            }
        }
    }
}
