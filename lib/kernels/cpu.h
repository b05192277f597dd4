/* Which vector code paths this CPU can run. The library is compiled for
 * generic x86-64; hot loops carry AVX2 / AVX-512 variants (target attributes)
 * chosen at run time by hmti_cpu_level(). */
#ifndef HMT_KERNELS_CPU_H
#define HMT_KERNELS_CPU_H

#define AVX512_TARGET \
    __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c")))
#define AVX2_TARGET __attribute__((target("avx2,fma,f16c")))

/* 2: AVX-512 F/VL/BW/DQ (+ level 1), 1: AVX2 + FMA + F16C, 0: neither.
 * Cached after the first call. */
int hmti_cpu_level(void);

#endif
